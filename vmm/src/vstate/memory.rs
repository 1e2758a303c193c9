//! Guest memory: anonymous host mappings laid out by [`crate::arch::x86_64::layout`].

use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::layout::ram_ranges;

/// Why guest memory could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot allocate {mib} MiB of guest memory: {source}")]
pub struct MemoryError {
    mib: u64,
    source: vm_memory::mmap::FromRangesError,
}

/// Maps `mem_bytes` of guest RAM.
pub fn create(mem_bytes: u64) -> Result<GuestMemoryMmap, MemoryError> {
    let ranges: Vec<_> = ram_ranges(mem_bytes)
        .into_iter()
        .map(|(start, len)| (GuestAddress(start), len as usize))
        .collect();
    GuestMemoryMmap::from_ranges(&ranges).map_err(|source| MemoryError {
        mib: mem_bytes >> 20,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemoryBackend};

    #[test]
    fn creates_one_region_below_the_hole() {
        let mem = create(2 << 20).unwrap();
        assert_eq!(mem.num_regions(), 1);
        mem.write_obj(0xabu8, GuestAddress((2 << 20) - 1)).unwrap();
        assert!(mem.write_obj(0u8, GuestAddress(2 << 20)).is_err());
    }
}
