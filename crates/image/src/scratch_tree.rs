//! Where an image's layers are unpacked before `mkfs.ext4 -d` copies them into the base
//! disk. The tree is thrown away right after, so writing it to the store's disk is pure
//! cost (thousands of inodes made, written back and freed again): when it fits
//! comfortably it goes to a tmpfs (`/dev/shm`) instead, and to the store's scratch area
//! otherwise — or when the tmpfs fills up after all.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::store::{Scratch, Store};

/// `statfs` type of tmpfs.
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// Unpacked layers are rarely more than this many times their compressed size.
const EXPANSION: u64 = 4;
const HEADROOM: u64 = 64 * 1024 * 1024;
const PREFIX: &str = "vmctl-unpack-";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A scratch directory for the tree: in `memory_dir` when it is a tmpfs with room for
/// `compressed_bytes` unpacked (and the machine has the memory to spare), else in the store.
pub fn tree_scratch(store: &Store, compressed_bytes: u64, memory_dir: Option<&Path>) -> Result<Scratch> {
    if let Some(dir) = memory_dir
        && fits_in_memory(dir, compressed_bytes)
    {
        remove_stale(dir);
        let path = dir.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        if fs::create_dir(&path).is_ok() {
            return Ok(Scratch::adopt(path, true));
        }
    }
    store.scratch("unpack")
}

fn fits_in_memory(dir: &Path, compressed_bytes: u64) -> bool {
    let need = compressed_bytes
        .saturating_mul(EXPANSION)
        .saturating_add(HEADROOM);
    let Ok(stat) = rustix::fs::statfs(dir) else {
        return false;
    };
    // The statfs fields' widths differ between targets.
    #[allow(clippy::unnecessary_cast)]
    let (is_tmpfs, free) = (
        stat.f_type as u64 == TMPFS_MAGIC,
        (stat.f_bavail as u64).saturating_mul(stat.f_bsize as u64),
    );
    // Memory the kernel can give without swapping: the tree must leave most of it alone.
    let available = memory_available().unwrap_or(0);
    is_tmpfs && free >= need && available / 2 >= need
}

fn memory_available() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Trees a process that died (crash, kill -9) left in the tmpfs.
fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The default memory directory, when the host has one.
pub fn default_memory_dir() -> Option<PathBuf> {
    let dir = PathBuf::from("/dev/shm");
    dir.is_dir().then_some(dir)
}
