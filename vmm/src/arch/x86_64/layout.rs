//! Where things live in guest-physical memory. The README's memory-layout table is
//! generated from these values by hand: keep them in sync.

/// The boot GDT (null, null, code 0x10, data 0x18, TSS 0x20), as the Linux boot
/// protocol expects (`__BOOT_CS` = 0x10, `__BOOT_DS` = 0x18).
pub const GDT_ADDR: u64 = 0x500;
/// An empty IDT: the guest installs its own before enabling interrupts.
pub const IDT_ADDR: u64 = 0x528;
/// The zero page (`struct boot_params`); its address is passed in RSI.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Initial RSP/RBP: top of the page at 0x8000.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Identity page tables: one PML4, one PDPT and four PDs of 2 MiB pages (4 GiB).
pub const PML4_ADDR: u64 = 0x9000;
pub const PDPT_ADDR: u64 = 0xa000;
pub const PD_ADDR: u64 = 0xb000;
/// Number of page directories (each maps 1 GiB).
pub const PD_COUNT: u64 = 4;
/// The kernel command line (NUL-terminated).
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Largest command line, NUL included (Linux x86 `COMMAND_LINE_SIZE` is 2048; newer
/// kernels accept more).
pub const CMDLINE_MAX_SIZE: usize = 4096;
/// Start of the extended BIOS data area; RAM below it is usable, the MP table lives in it.
pub const EBDA_START: u64 = 0x9fc00;
/// The MP floating pointer and configuration table.
pub const MPTABLE_ADDR: u64 = EBDA_START;
/// Where the kernel is loaded (and where "high" memory starts).
pub const HIMEM_START: u64 = 0x10_0000;
/// Guest-physical hole below 4 GiB for devices: RAM never goes here.
pub const MMIO_GAP_START: u64 = 0xd000_0000;
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// virtio-mmio devices: one 4 KiB window each, from the start of the hole.
pub const VIRTIO_MMIO_BASE: u64 = MMIO_GAP_START;
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// The first GSI given to a virtio-mmio device (0-4 are the legacy ISA devices).
pub const VIRTIO_FIRST_GSI: u32 = 5;
/// ISA IRQ 8, the CMOS RTC's. No virtio device gets it: Linux's `rtc_cmos` requests it
/// unshared, so a virtio-mmio device there would fail its probe (or take the RTC's).
pub const RTC_GSI: u32 = 8;
/// The IOAPIC has 24 pins: GSIs 0..=23.
pub const MAX_GSI: u32 = 23;
/// In-kernel IOAPIC and local APIC.
pub const IOAPIC_ADDR: u64 = 0xfec0_0000;
pub const LAPIC_ADDR: u64 = 0xfee0_0000;
/// KVM's TSS (three pages) and identity-map page, just below the BIOS area at 4 GiB.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;

/// Guest RAM for `mem_bytes` of memory: everything from 0, skipping the MMIO hole.
/// Returns `(start, len)` pairs in ascending order.
pub fn ram_ranges(mem_bytes: u64) -> Vec<(u64, u64)> {
    if mem_bytes <= MMIO_GAP_START {
        vec![(0, mem_bytes)]
    } else {
        vec![(0, MMIO_GAP_START), (MMIO_GAP_END, mem_bytes - MMIO_GAP_START)]
    }
}

/// Guest-physical base of the `n`-th virtio-mmio device.
pub fn virtio_mmio_addr(n: usize) -> u64 {
    VIRTIO_MMIO_BASE + n as u64 * VIRTIO_MMIO_SIZE
}

/// GSI of the `n`-th virtio-mmio device: 5, 6, 7, then 9 onwards ([`RTC_GSI`] skipped).
pub fn virtio_mmio_gsi(n: usize) -> u32 {
    let gsi = VIRTIO_FIRST_GSI + n as u32;
    if gsi >= RTC_GSI { gsi + 1 } else { gsi }
}

/// How many virtio-mmio devices fit in the GSIs the IOAPIC has (5..=23 without 8).
pub const MAX_VIRTIO_DEVICES: usize = (MAX_GSI - VIRTIO_FIRST_GSI) as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_structures_do_not_overlap_and_stay_below_the_ebda() {
        let mut regions = [
            (GDT_ADDR, 5 * 8),
            (IDT_ADDR, 8),
            (ZERO_PAGE_ADDR, 4096),
            (BOOT_STACK_POINTER - 0xff0, 0x1000),
            (PML4_ADDR, 4096),
            (PDPT_ADDR, 4096),
            (PD_ADDR, PD_COUNT * 4096),
            (CMDLINE_ADDR, CMDLINE_MAX_SIZE as u64),
        ];
        regions.sort();
        for w in regions.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{:x?} overlaps {:x?}", w[0], w[1]);
        }
        let last = regions.last().unwrap();
        assert!(last.0 + last.1 <= EBDA_START);
    }

    #[test]
    fn ram_skips_the_mmio_hole() {
        assert_eq!(ram_ranges(128 << 20), vec![(0, 128 << 20)]);
        assert_eq!(ram_ranges(MMIO_GAP_START), vec![(0, MMIO_GAP_START)]);
        assert_eq!(
            ram_ranges(4 << 30),
            vec![(0, MMIO_GAP_START), (MMIO_GAP_END, (4 << 30) - MMIO_GAP_START)]
        );
    }

    #[test]
    fn virtio_devices_fit_in_the_hole_and_the_ioapic() {
        assert_eq!(virtio_mmio_addr(0), 0xd000_0000);
        assert_eq!(virtio_mmio_addr(1), 0xd000_1000);
        assert_eq!(virtio_mmio_gsi(0), 5);
        assert_eq!(virtio_mmio_gsi(2), 7);
        assert_eq!(virtio_mmio_gsi(3), 9);
        assert!((0..MAX_VIRTIO_DEVICES).all(|n| virtio_mmio_gsi(n) != RTC_GSI));
        let last = MAX_VIRTIO_DEVICES - 1;
        assert_eq!(virtio_mmio_gsi(last), MAX_GSI);
        assert!(virtio_mmio_addr(last) + VIRTIO_MMIO_SIZE <= IOAPIC_ADDR);
    }
}
