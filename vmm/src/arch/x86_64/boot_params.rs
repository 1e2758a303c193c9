//! The zero page (`struct boot_params`) and its e820 memory map.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{CMDLINE_ADDR, EBDA_START, HIMEM_START, ZERO_PAGE_ADDR, ram_ranges};

/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// `boot_flag` signature.
const BOOT_FLAG: u16 = 0xaa55;
/// `header` signature: "HdrS".
const HDR_MAGIC: u32 = 0x5372_6448;
/// `type_of_loader`: an unregistered boot loader.
const LOADER_UNDEFINED: u8 = 0xff;
/// `kernel_alignment` for ELF kernels (2 MiB is what Linux builds use).
const KERNEL_ALIGNMENT: u32 = 0x20_0000;
/// `loadflags`: LOADED_HIGH | CAN_USE_HEAP.
const LOADFLAGS: u8 = 0x01 | 0x80;

/// Why the zero page could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BootParamsError {
    #[error("guest memory too small for the e820 map")]
    NoHighMemory,
    #[error("writing the zero page into guest memory: {0}")]
    Write(#[from] vm_memory::GuestMemoryError),
}

/// `boot_params` wrapped so vm-memory can copy it (the bindings live in another crate).
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
pub struct BootParams(pub boot_params);

// SAFETY: `boot_params` is a plain-old-data C struct (integers and arrays of them);
// any bit pattern is valid and it has no padding the guest could misread.
unsafe impl ByteValued for BootParams {}

/// Where the initrd was loaded, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitrdRegion {
    pub addr: u64,
    pub size: u64,
}

/// The e820 map for `mem_bytes` of RAM: low memory below the EBDA, then RAM from 1 MiB
/// with the MMIO hole skipped.
pub fn e820_map(mem_bytes: u64) -> Result<Vec<boot_e820_entry>, BootParamsError> {
    if mem_bytes <= HIMEM_START {
        return Err(BootParamsError::NoHighMemory);
    }
    let mut map = vec![entry(0, EBDA_START)];
    for (start, len) in ram_ranges(mem_bytes) {
        let (start, len) = if start == 0 {
            (HIMEM_START, len - HIMEM_START)
        } else {
            (start, len)
        };
        map.push(entry(start, len));
    }
    Ok(map)
}

fn entry(addr: u64, size: u64) -> boot_e820_entry {
    boot_e820_entry {
        addr,
        size,
        r#type: E820_RAM,
    }
}

/// Builds the zero page. `setup_header` is the bzImage's own header when there is one;
/// for an ELF kernel a minimal header is made.
pub fn build(
    mem_bytes: u64,
    cmdline_len: usize,
    setup_header: Option<setup_header>,
    initrd: Option<InitrdRegion>,
) -> Result<BootParams, BootParamsError> {
    let mut params = boot_params::default();
    if let Some(hdr) = setup_header {
        params.hdr = hdr;
    } else {
        params.hdr.boot_flag = BOOT_FLAG;
        params.hdr.header = HDR_MAGIC;
        params.hdr.kernel_alignment = KERNEL_ALIGNMENT;
    }
    params.hdr.type_of_loader = LOADER_UNDEFINED;
    params.hdr.loadflags |= LOADFLAGS;
    params.hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
    params.hdr.cmdline_size = cmdline_len as u32;
    if let Some(initrd) = initrd {
        params.hdr.ramdisk_image = initrd.addr as u32;
        params.hdr.ramdisk_size = initrd.size as u32;
    }
    let map = e820_map(mem_bytes)?;
    for (slot, e) in params.e820_table.iter_mut().zip(&map) {
        *slot = *e;
    }
    params.e820_entries = map.len() as u8;
    Ok(BootParams(params))
}

/// Writes the zero page at [`ZERO_PAGE_ADDR`].
pub fn write(mem: &GuestMemoryMmap, params: &BootParams) -> Result<(), BootParamsError> {
    mem.write_obj(*params, GuestAddress(ZERO_PAGE_ADDR))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::layout::{MMIO_GAP_END, MMIO_GAP_START};

    #[test]
    fn e820_for_small_memory_has_low_and_high_ram() {
        let map = e820_map(128 << 20).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(({ map[0].addr }, { map[0].size }), (0, EBDA_START));
        assert_eq!(
            (map[1].addr, map[1].size),
            (HIMEM_START, (128 << 20) - HIMEM_START)
        );
        assert!(map.iter().all(|e| { e.r#type } == E820_RAM));
    }

    #[test]
    fn e820_for_large_memory_skips_the_hole() {
        let map = e820_map(5 << 30).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!({ map[1].addr } + { map[1].size }, MMIO_GAP_START);
        assert_eq!({ map[2].addr }, MMIO_GAP_END);
        let total: u64 = map.iter().map(|e| e.size).sum();
        assert_eq!(total, (5 << 30) - (HIMEM_START - EBDA_START));
    }

    #[test]
    fn e820_refuses_memory_without_room_for_a_kernel() {
        assert!(matches!(e820_map(1 << 20), Err(BootParamsError::NoHighMemory)));
    }

    #[test]
    fn zero_page_has_the_linux_signatures_at_the_abi_offsets() {
        let params = build(
            64 << 20,
            42,
            None,
            Some(InitrdRegion {
                addr: 0x300_0000,
                size: 0x1000,
            }),
        )
        .unwrap();
        let bytes = params.as_slice();
        assert_eq!(bytes.len(), 4096);
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        assert_eq!(u16_at(0x1fe), 0xaa55);
        assert_eq!(u32_at(0x202), HDR_MAGIC);
        assert_eq!(u32_at(0x228), CMDLINE_ADDR as u32);
        assert_eq!(u32_at(0x238), 42);
        assert_eq!(u32_at(0x218), 0x300_0000);
        assert_eq!(bytes[0x1e8], 2);
        // Second e820 entry: 20 bytes each from 0x2d0.
        let e1 = 0x2d0 + 20;
        assert_eq!(
            u64::from_le_bytes(bytes[e1..e1 + 8].try_into().unwrap()),
            HIMEM_START
        );
    }
}
