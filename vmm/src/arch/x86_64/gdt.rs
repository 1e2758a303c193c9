//! The boot GDT and the segment registers derived from it.

use kvm_bindings::kvm_segment;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{GDT_ADDR, IDT_ADDR};

/// Selectors of the boot GDT (Linux boot protocol: code 0x10, data 0x18).
pub const CODE_SELECTOR: u16 = 0x10;
pub const DATA_SELECTOR: u16 = 0x18;
pub const TSS_SELECTOR: u16 = 0x20;

/// Packs a segment descriptor from flags (bits 8-15 access, 12-15 of the high flags),
/// base and limit.
pub const fn descriptor(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

/// null, null, 64-bit code, data, 64-bit TSS (busy).
pub const BOOT_GDT: [u64; 5] = [
    0,
    0,
    descriptor(0xa09b, 0, 0xfffff),
    descriptor(0xc093, 0, 0xfffff),
    descriptor(0x808b, 0, 0xfffff),
];

/// Decodes a descriptor into the form KVM takes.
pub fn segment(selector: u16, desc: u64) -> kvm_segment {
    let g = ((desc >> 55) & 1) as u8;
    let raw_limit = (((desc >> 32) & 0x000f_0000) | (desc & 0xffff)) as u32;
    let present = ((desc >> 47) & 1) as u8;
    kvm_segment {
        base: ((desc >> 16) & 0x00ff_ffff) | ((desc >> 32) & 0xff00_0000),
        limit: if g == 1 {
            (raw_limit << 12) | 0xfff
        } else {
            raw_limit
        },
        selector,
        type_: ((desc >> 40) & 0xf) as u8,
        present,
        dpl: ((desc >> 45) & 3) as u8,
        db: ((desc >> 54) & 1) as u8,
        s: ((desc >> 44) & 1) as u8,
        l: ((desc >> 53) & 1) as u8,
        g,
        avl: ((desc >> 52) & 1) as u8,
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

/// Why the GDT could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing the boot GDT/IDT: {0}")]
pub struct GdtError(#[from] vm_memory::GuestMemoryError);

/// Writes the GDT and an empty IDT into guest memory.
pub fn write(mem: &GuestMemoryMmap) -> Result<(), GdtError> {
    for (i, d) in BOOT_GDT.iter().enumerate() {
        mem.write_obj(*d, GuestAddress(GDT_ADDR + 8 * i as u64))?;
    }
    mem.write_obj(0u64, GuestAddress(IDT_ADDR))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_segment_is_64_bit_present_and_flat() {
        let cs = segment(CODE_SELECTOR, BOOT_GDT[2]);
        assert_eq!((cs.l, cs.db, cs.present, cs.s, cs.type_), (1, 0, 1, 1, 0xb));
        assert_eq!((cs.base, cs.limit, cs.g), (0, 0xffff_ffff, 1));
    }

    #[test]
    fn data_and_tss_segments_decode() {
        let ds = segment(DATA_SELECTOR, BOOT_GDT[3]);
        assert_eq!((ds.db, ds.type_, ds.s, ds.present), (1, 3, 1, 1));
        let tss = segment(TSS_SELECTOR, BOOT_GDT[4]);
        assert_eq!((tss.type_, tss.s, tss.present), (0xb, 0, 1));
        assert_eq!(segment(0, 0).unusable, 1);
    }

    #[test]
    fn descriptor_round_trips_base_and_limit() {
        let d = descriptor(0x0093, 0x1234_5678, 0xabcde);
        let s = segment(0x8, d);
        assert_eq!((s.base, s.limit), (0x1234_5678, 0xabcde));
    }
}
