//! Identity page tables: the first 4 GiB mapped with 2 MiB pages, so the kernel, the
//! MMIO hole (virtio-mmio, IOAPIC, local APIC) are reachable from the first instruction.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{PD_ADDR, PD_COUNT, PDPT_ADDR, PML4_ADDR};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const PAGE_2M: u64 = 2 << 20;

/// Why the page tables could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing the identity page tables: {0}")]
pub struct PagingError(#[from] vm_memory::GuestMemoryError);

/// The table entries as `(guest address, value)` pairs, in write order.
pub fn entries() -> Vec<(u64, u64)> {
    let mut out = vec![(PML4_ADDR, PDPT_ADDR | PRESENT | WRITABLE)];
    for pd in 0..PD_COUNT {
        let pd_addr = PD_ADDR + pd * 4096;
        out.push((PDPT_ADDR + pd * 8, pd_addr | PRESENT | WRITABLE));
        for i in 0..512u64 {
            let phys = (pd * 512 + i) * PAGE_2M;
            out.push((pd_addr + i * 8, phys | PRESENT | WRITABLE | HUGE));
        }
    }
    out
}

/// Writes the tables; CR3 must then be [`PML4_ADDR`].
pub fn write(mem: &GuestMemoryMmap) -> Result<(), PagingError> {
    let mut pd_pages = vec![0u8; (PD_COUNT * 4096) as usize];
    let mut top = Vec::new();
    for (addr, value) in entries() {
        if addr >= PD_ADDR {
            let off = (addr - PD_ADDR) as usize;
            pd_pages[off..off + 8].copy_from_slice(&value.to_le_bytes());
        } else {
            top.push((addr, value));
        }
    }
    for (addr, value) in top {
        mem.write_obj(value, GuestAddress(addr))?;
    }
    mem.write_slice(&pd_pages, GuestAddress(PD_ADDR))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the tables like the MMU does for a 2 MiB page.
    fn translate(mem: &GuestMemoryMmap, va: u64) -> Option<u64> {
        let pml4e: u64 = mem
            .read_obj(GuestAddress(PML4_ADDR + ((va >> 39) & 0x1ff) * 8))
            .ok()?;
        if pml4e & PRESENT == 0 {
            return None;
        }
        let pdpte: u64 = mem
            .read_obj(GuestAddress((pml4e & !0xfff) + ((va >> 30) & 0x1ff) * 8))
            .ok()?;
        if pdpte & PRESENT == 0 {
            return None;
        }
        let pde: u64 = mem
            .read_obj(GuestAddress((pdpte & !0xfff) + ((va >> 21) & 0x1ff) * 8))
            .ok()?;
        if pde & PRESENT == 0 || pde & HUGE == 0 {
            return None;
        }
        Some((pde & !(PAGE_2M - 1) & !HUGE) + (va & (PAGE_2M - 1)))
    }

    #[test]
    fn identity_maps_the_first_4_gib() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        write(&mem).unwrap();
        for va in [
            0u64,
            0x10_0000,
            0x1234_5678,
            0xd000_0000,
            0xfee0_0000,
            0xffff_ffff,
        ] {
            assert_eq!(translate(&mem, va), Some(va), "va {va:#x}");
        }
        assert_eq!(translate(&mem, 0x1_0000_0000), None);
    }
}
