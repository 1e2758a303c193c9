//! Guest memory for the fuzzers: small regions with holes, one ending near the top of the
//! address space, each mapped between two inaccessible host pages.
//!
//! The guard pages turn any host access outside a region into a SIGSEGV that kills the
//! test binary, so "no access outside guest memory" is checked by the MMU, not only by what
//! the device chose to report. Snapshots let the checker compare every guest byte before
//! and after a case.

use vm_memory::mmap::MmapRegion;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion, GuestRegionMmap};
use vmctl_devices::GuestMemoryMmap;

/// `(guest address, size)` of each region. R0 and R1 touch in guest-physical space but are
/// separate host mappings (a buffer may cross from one into the other); then a hole; R2
/// ends 64 KiB below 2^64, so address arithmetic near `u64::MAX` is exercised.
pub const REGIONS: [(u64, u64); 3] = [(0, 0x8000), (0x8000, 0x4000), (0xffff_ffff_fffe_c000, 0x4000)];

/// The first guest address past every region's end, per region.
pub fn region_end(i: usize) -> u64 {
    REGIONS[i].0 + REGIONS[i].1
}

const PAGE: usize = 4096;

/// Maps the regions, each between two `PROT_NONE` pages. The mappings live as long as the
/// process (a harness is made once per test thread).
pub fn guarded_memory() -> GuestMemoryMmap {
    let regions = REGIONS
        .iter()
        .map(|&(gpa, size)| {
            let size = size as usize;
            // SAFETY: a fresh anonymous mapping; nothing else refers to it.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size + 2 * PAGE,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            assert_ne!(base, libc::MAP_FAILED, "mmap guest region");
            // SAFETY: `base + PAGE .. + size` lies inside the mapping made above.
            let inner = unsafe { base.cast::<u8>().add(PAGE) };
            // SAFETY: as above; only the inner part becomes accessible.
            let rc = unsafe { libc::mprotect(inner.cast(), size, libc::PROT_READ | libc::PROT_WRITE) };
            assert_eq!(rc, 0, "mprotect guest region");
            // SAFETY: `inner..inner + size` is a valid read/write mapping for the life of the
            // process (it is never unmapped), with the prot and flags given.
            let mapping = unsafe {
                MmapRegion::<()>::build_raw(
                    inner,
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                )
            }
            .expect("guest region");
            GuestRegionMmap::new(mapping, GuestAddress(gpa)).expect("region fits below 2^64")
        })
        .collect();
    GuestMemoryMmap::from_regions(regions).expect("guest memory")
}

/// A copy of every region.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot(pub Vec<Vec<u8>>);

impl Snapshot {
    pub fn take(mem: &GuestMemoryMmap) -> Self {
        Self(
            mem.iter()
                .map(|r| {
                    let mut v = vec![0u8; r.len() as usize];
                    mem.read_slice(&mut v, r.start_addr()).expect("read region");
                    v
                })
                .collect(),
        )
    }

    /// Writes the copy back (or zeroes everything with [`Snapshot::zero`]).
    pub fn restore(&self, mem: &GuestMemoryMmap) {
        for (r, bytes) in mem.iter().zip(&self.0) {
            mem.write_slice(bytes, r.start_addr()).expect("write region");
        }
    }

    pub fn zero() -> Self {
        Self(REGIONS.iter().map(|&(_, s)| vec![0u8; s as usize]).collect())
    }

    /// The byte at `addr`, if it is guest memory.
    pub fn get(&self, addr: u64) -> Option<u8> {
        REGIONS.iter().zip(&self.0).find_map(|(&(base, size), bytes)| {
            (addr >= base && addr - base < size).then(|| bytes[(addr - base) as usize])
        })
    }

    pub fn set(&mut self, addr: u64, value: u8) -> bool {
        for (&(base, size), bytes) in REGIONS.iter().zip(self.0.iter_mut()) {
            if addr >= base && addr - base < size {
                bytes[(addr - base) as usize] = value;
                return true;
            }
        }
        false
    }

    /// Whether `[addr, addr + len)` is all guest memory.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        contains(addr, len)
    }

    /// Reads `len` bytes at `addr` (the caller checked [`Snapshot::contains`]).
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        (0..len as u64).map(|i| self.get(addr + i).unwrap_or(0)).collect()
    }

    /// Addresses where `self` and `other` differ.
    pub fn diff(&self, other: &Snapshot) -> Vec<u64> {
        let mut out = Vec::new();
        for ((&(base, _), a), b) in REGIONS.iter().zip(&self.0).zip(&other.0) {
            if a != b {
                out.extend(
                    a.iter()
                        .zip(b)
                        .enumerate()
                        .filter(|(_, (x, y))| x != y)
                        .map(|(i, _)| base + i as u64),
                );
            }
        }
        out
    }
}

/// Whether `[addr, addr + len)` is all guest memory (no wrap, no hole). R0 and R1 are
/// contiguous, so a range may span them.
pub fn contains(addr: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    let Some(last) = addr.checked_add(len - 1) else {
        return false;
    };
    let mut at = addr;
    loop {
        let Some(&(base, size)) = REGIONS.iter().find(|&&(b, s)| at >= b && at - b < s) else {
            return false;
        };
        let end = base + size - 1;
        if last <= end {
            return true;
        }
        at = end + 1;
    }
}
