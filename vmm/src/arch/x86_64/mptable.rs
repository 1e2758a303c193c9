//! The Intel MultiProcessor Specification (1.4) table: how a guest without ACPI finds
//! its processors, the IOAPIC and the ISA interrupt wiring. One processor entry per
//! vCPU (APIC id = vCPU index), one ISA bus, one IOAPIC with its 24 pins wired 1:1 to
//! GSIs, and the local interrupts (LINT0 = ExtINT on the BSP, LINT1 = NMI on all).
//!
//! Every IOAPIC pin, pin 0 included, is an ordinary interrupt (`mp_INT`) from the ISA
//! IRQ of the same number. That is how KVM's in-kernel irqchip is wired: without a
//! `KVM_SET_GSI_ROUTING` of our own, `KVM_CREATE_IRQCHIP` installs the default routing
//! (`kvm_setup_default_irq_routing`), GSI n -> IOAPIC pin n (and PIC pin n for n < 16),
//! and the in-kernel PIT raises GSI 0, so the timer arrives on IOAPIC pin 0. Firecracker
//! declares the same table for the same reason. Real PCs (and QEMU, which re-routes GSI
//! 0 to pin 2) wire the 8254 to pin 2 instead; declaring that here would send Linux's
//! `check_timer` to a pin the PIT never raises. Pin 0 must not be declared ExtINT: the
//! ExtINT path is the 8259 through LINT0, and an IOAPIC ExtINT pin makes Linux 6.1 warn
//! "ExtINT not setup in hardware but reported by MP table" and then dereference NULL in
//! `setup_IO_APIC`, because no ISA IRQ 0 entry exists for the timer.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{IOAPIC_ADDR, LAPIC_ADDR, MAX_GSI, MPTABLE_ADDR};

const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const SPEC_REV: u8 = 4;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const CPU_ENABLED: u8 = 1;
const CPU_BSP: u8 = 2;
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;
const BUS_ID_ISA: u8 = 0;
const BSP_APIC_ID: u8 = 0;
/// Destination "all local APICs" in a local interrupt entry.
const ALL_APICS: u8 = 0xff;
/// The MP table must fit in the 1 KiB EBDA.
pub const MAX_SIZE: usize = 1024;

/// Why the MP table could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum MptableError {
    #[error("an MP table for {0} vCPUs does not fit in the EBDA")]
    TooManyCpus(u8),
    #[error("writing the MP table: {0}")]
    Write(#[from] vm_memory::GuestMemoryError),
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)).wrapping_neg()
}

/// The IOAPIC's id: after the processors' APIC ids.
fn ioapic_id(cpus: u8) -> u8 {
    cpus + 1
}

/// Builds the floating pointer followed by the configuration table, for placing at
/// `base`.
pub fn build(cpus: u8, base: u64) -> Result<Vec<u8>, MptableError> {
    let mut entries = Vec::new();
    let mut count: u16 = 0;
    for id in 0..cpus {
        entries.extend_from_slice(&[ENTRY_PROCESSOR, id, APIC_VERSION]);
        entries.push(CPU_ENABLED | if id == 0 { CPU_BSP } else { 0 });
        entries.extend_from_slice(&0x600u32.to_le_bytes()); // family 6
        entries.extend_from_slice(&0x201u32.to_le_bytes()); // FPU, APIC
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, BUS_ID_ISA]);
    entries.extend_from_slice(b"ISA   ");
    count += 1;
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id(cpus), IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&(IOAPIC_ADDR as u32).to_le_bytes());
    count += 1;
    for pin in 0..=MAX_GSI as u8 {
        entries.extend_from_slice(&[
            ENTRY_IO_INTERRUPT,
            INT_TYPE_INT,
            0,
            0,
            BUS_ID_ISA,
            pin,
            ioapic_id(cpus),
            pin,
        ]);
        count += 1;
    }
    // The 8259's output reaches the BSP's LINT0 only (virtual wire mode: Linux uses it
    // until the IOAPIC is up); NMI is wired to every processor's LINT1.
    for (kind, apic, lint) in [
        (INT_TYPE_EXTINT, BSP_APIC_ID, 0u8),
        (INT_TYPE_NMI, ALL_APICS, 1u8),
    ] {
        entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, kind, 0, 0, BUS_ID_ISA, 0, apic, lint]);
        count += 1;
    }

    let table_len = HEADER_LEN + entries.len();
    if FLOATING_LEN + table_len > MAX_SIZE {
        return Err(MptableError::TooManyCpus(cpus));
    }
    let table_addr = base + FLOATING_LEN as u64;

    let mut header = Vec::with_capacity(table_len);
    header.extend_from_slice(b"PCMP");
    header.extend_from_slice(&(table_len as u16).to_le_bytes());
    header.push(SPEC_REV);
    header.push(0); // checksum, below
    header.extend_from_slice(b"VMCTL   ");
    header.extend_from_slice(b"MICROVM     ");
    header.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    header.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    header.extend_from_slice(&count.to_le_bytes());
    header.extend_from_slice(&(LAPIC_ADDR as u32).to_le_bytes());
    header.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    header.extend_from_slice(&entries);
    header[7] = checksum(&header);

    let mut floating = Vec::with_capacity(FLOATING_LEN);
    floating.extend_from_slice(b"_MP_");
    floating.extend_from_slice(&(table_addr as u32).to_le_bytes());
    floating.push(1); // length in 16-byte units
    floating.push(SPEC_REV);
    floating.push(0); // checksum, below
    floating.extend_from_slice(&[0; 5]); // features: configuration table present
    floating[10] = checksum(&floating);

    floating.extend_from_slice(&header);
    Ok(floating)
}

/// Writes the MP table for `cpus` vCPUs at [`MPTABLE_ADDR`].
pub fn write(mem: &GuestMemoryMmap, cpus: u8) -> Result<(), MptableError> {
    let bytes = build(cpus, MPTABLE_ADDR)?;
    mem.write_slice(&bytes, GuestAddress(MPTABLE_ADDR))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROCESSOR_LEN: usize = 20;
    const SHORT_ENTRY_LEN: usize = 8;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    #[test]
    fn floating_pointer_and_table_checksum_to_zero() {
        let t = build(2, MPTABLE_ADDR).unwrap();
        assert_eq!(&t[0..4], b"_MP_");
        assert_eq!(sum(&t[..16]), 0);
        let ptr = u32::from_le_bytes(t[4..8].try_into().unwrap()) as u64;
        assert_eq!(ptr, MPTABLE_ADDR + 16);
        let table = &t[16..];
        assert_eq!(&table[0..4], b"PCMP");
        let len = u16::from_le_bytes([table[4], table[5]]) as usize;
        assert_eq!(len, table.len());
        assert_eq!(sum(table), 0);
    }

    #[test]
    fn one_enabled_processor_entry_per_vcpu_and_one_bsp() {
        let t = build(3, MPTABLE_ADDR).unwrap();
        let table = &t[16..];
        let entries = &table[HEADER_LEN..];
        let mut off = 0;
        let mut cpus = vec![];
        while off < entries.len() {
            match entries[off] {
                ENTRY_PROCESSOR => {
                    cpus.push((entries[off + 1], entries[off + 3]));
                    off += PROCESSOR_LEN;
                }
                _ => off += SHORT_ENTRY_LEN,
            }
        }
        assert_eq!(cpus, vec![(0, 3), (1, 1), (2, 1)]);
    }

    /// (type, irq type, source bus IRQ, destination APIC, destination pin or LINT) of
    /// every interrupt entry (I/O and local).
    fn interrupt_entries(cpus: u8) -> Vec<(u8, u8, u8, u8, u8)> {
        let t = build(cpus, MPTABLE_ADDR).unwrap();
        let entries = &t[16 + HEADER_LEN..];
        let mut off = 0;
        let mut out = vec![];
        while off < entries.len() {
            let e = &entries[off..];
            match e[0] {
                ENTRY_PROCESSOR => off += PROCESSOR_LEN,
                ENTRY_IO_INTERRUPT | ENTRY_LOCAL_INTERRUPT => {
                    assert_eq!(e[4], BUS_ID_ISA);
                    out.push((e[0], e[1], e[5], e[6], e[7]));
                    off += SHORT_ENTRY_LEN;
                }
                _ => off += SHORT_ENTRY_LEN,
            }
        }
        out
    }

    #[test]
    fn every_isa_irq_is_an_ordinary_interrupt_on_its_own_ioapic_pin() {
        // Linux's check_timer looks up ISA IRQ 0 as mp_INT; KVM's default routing and
        // the in-kernel PIT put it on pin 0. An ExtINT pin 0 (the old table) crashed
        // Linux 6.1 in setup_IO_APIC.
        let cpus = 2;
        let io: Vec<_> = interrupt_entries(cpus)
            .into_iter()
            .filter(|e| e.0 == ENTRY_IO_INTERRUPT)
            .collect();
        let expected: Vec<_> = (0..=MAX_GSI as u8)
            .map(|irq| (ENTRY_IO_INTERRUPT, INT_TYPE_INT, irq, ioapic_id(cpus), irq))
            .collect();
        assert_eq!(io, expected);
        // The exact bytes of the timer's entry: type 3, mp_INT, flags 0 (conforms to
        // the ISA bus: edge, active high), ISA bus 0, IRQ 0, the IOAPIC, pin 0.
        let t = build(cpus, MPTABLE_ADDR).unwrap();
        let first_io = 16 + HEADER_LEN + PROCESSOR_LEN * cpus as usize + 8 + 8;
        assert_eq!(
            &t[first_io..first_io + 8],
            &[3, 0, 0, 0, 0, 0, ioapic_id(cpus), 0]
        );
    }

    #[test]
    fn extint_is_on_the_bsps_lint0_and_nmi_on_every_lint1() {
        let local: Vec<_> = interrupt_entries(4)
            .into_iter()
            .filter(|e| e.0 == ENTRY_LOCAL_INTERRUPT)
            .collect();
        assert_eq!(
            local,
            vec![
                (ENTRY_LOCAL_INTERRUPT, INT_TYPE_EXTINT, 0, 0, 0),
                (ENTRY_LOCAL_INTERRUPT, INT_TYPE_NMI, 0, 0xff, 1),
            ]
        );
    }

    #[test]
    fn the_largest_vm_still_fits_in_the_ebda() {
        assert!(build(32, MPTABLE_ADDR).unwrap().len() <= MAX_SIZE);
        assert!(matches!(
            build(40, MPTABLE_ADDR),
            Err(MptableError::TooManyCpus(40))
        ));
    }
}
