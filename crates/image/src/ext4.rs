//! ext4 disks: the read-only base of an image (built from its unpacked tree by
//! `mkfs.ext4 -d`) and the empty writable layer each VM gets.
//!
//! Why ext4 and not EROFS: the guest kernel already has ext4 (the writable layer needs
//! it anyway, so one file system serves both), e2fsprogs' `debugfs` reads both disks on
//! the host without a mount, and `mkfs.ext4 -d` keeps owners, modes, hard links, devices
//! and xattrs. No journal on either: the base is never written, and the writable layer
//! lives no longer than its VM.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use rustix::fs::{CWD, RenameFlags, SeekFrom};

use crate::error::{ImageError, Result};
use crate::store::Store;

const BLOCK: u64 = 4096;
const MIB: u64 = 1024 * 1024;

/// What a tree needs on ext4: blocks for data and directories, and inodes.
#[derive(Debug, Default, Clone, Copy)]
pub struct TreeUsage {
    pub bytes: u64,
    pub inodes: u64,
}

/// Walks `root` (not following links), counting what `mkfs.ext4 -d` will copy.
pub fn measure_tree(root: &Path) -> Result<TreeUsage> {
    let mut usage = TreeUsage::default();
    let mut seen_links = std::collections::HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        usage.inodes += 1;
        usage.bytes += BLOCK;
        let entries =
            fs::read_dir(&dir).map_err(|e| ImageError::io(format!("reading {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ImageError::io(format!("reading {}", dir.display()), e))?;
            let meta = entry
                .metadata()
                .map_err(|e| ImageError::io("reading metadata", e))?;
            // A directory's entries take about 32 bytes each.
            usage.bytes += 32 + entry.file_name().len() as u64;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.nlink() > 1 && !seen_links.insert((meta.dev(), meta.ino())) {
                // A further name of a file already counted.
            } else {
                usage.inodes += 1;
                usage.bytes += meta.len().div_ceil(BLOCK) * BLOCK;
            }
        }
    }
    Ok(usage)
}

/// Builds a read-only ext4 image of `tree` at `disk`, sized to fit with some room for
/// file system metadata. Returns the disk's size in bytes.
pub fn build_base_disk(tree: &Path, disk: &Path) -> Result<u64> {
    let usage = measure_tree(tree)?;
    let inodes = usage.inodes + usage.inodes / 4 + 256;
    // Inode tables (256 bytes each), bitmaps, the superblock copies: 10% plus a floor.
    let bytes = usage.bytes + usage.bytes / 10 + inodes * 256 + 16 * MIB;
    let size = bytes.div_ceil(MIB) * MIB;
    let inodes = inodes.to_string();
    let tree = tree.as_os_str();
    mkfs(
        Mkfs {
            label: "vmctl-base",
            features: "^has_journal,^resize_inode",
            extended: "lazy_itable_init=0,nodiscard,root_owner=0:0",
        },
        &["-N".as_ref(), inodes.as_ref(), "-d".as_ref(), tree],
        disk,
        size,
    )?;
    Ok(size)
}

/// How a disk is formatted: 4 KiB blocks, no reserved blocks, root-owned root directory.
struct Mkfs {
    label: &'static str,
    features: &'static str,
    extended: &'static str,
}

/// Runs `mkfs.ext4` making `disk` of `size` bytes (then synced); `extra` goes before the
/// device (`-N`, `-d DIR`). A full disk is RESOURCE_EXHAUSTED.
fn mkfs(how: Mkfs, extra: &[&std::ffi::OsStr], disk: &Path, size: u64) -> Result<()> {
    let output = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-m",
            "0",
            "-L",
            how.label,
            "-O",
            how.features,
            "-E",
            how.extended,
        ])
        .args(extra)
        .arg(disk)
        .arg(format!("{}k", size / 1024))
        .output()
        .map_err(|e| ImageError::io("running mkfs.ext4 (is e2fsprogs installed?)", e))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = if stderr.contains("No space left") {
            crate::ErrorCode::ResourceExhausted
        } else {
            crate::ErrorCode::Internal
        };
        return Err(ImageError::new(
            code,
            format!(
                "mkfs.ext4 of {} failed ({}): {}",
                how.label,
                output.status,
                stderr.trim()
            ),
        ));
    }
    File::open(disk)
        .and_then(|f| f.sync_all())
        .map_err(|e| ImageError::io(format!("syncing {}", disk.display()), e))
}

/// Makes an empty, sparse ext4 disk of `size_bytes` at `path` for one VM's writes.
/// The first disk of a size formats a template (once); every later one is a sparse copy
/// of its few metadata blocks, so the cost does not grow with the disk or the image.
pub fn create_writable_layer(store: &Store, path: &Path, size_bytes: u64) -> Result<()> {
    if size_bytes < 16 * MIB || !size_bytes.is_multiple_of(MIB) {
        return Err(ImageError::invalid(format!(
            "disk size {size_bytes} bytes: must be a whole number of MiB, at least 16 MiB"
        )));
    }
    let template = store
        .template_dir()
        .join(format!("upper-{}m.ext4", size_bytes / MIB));
    if !template.is_file() {
        make_template(store, &template, size_bytes)?;
    }
    // The same name every time: a partial file is only ever left by a crash in here, and
    // the next attempt at this path clears it.
    let scratch_name = path.with_extension("partial");
    match fs::remove_file(&scratch_name) {
        Ok(()) => log::info!(
            "removed {} left by an interrupted attempt",
            scratch_name.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ImageError::io(format!("removing {}", scratch_name.display()), e)),
    }
    if fs::symlink_metadata(path).is_ok() {
        return Err(ImageError::invalid(format!("{} already exists", path.display())));
    }
    let result = sparse_copy(&template, &scratch_name, size_bytes).and_then(|()| {
        // NOREPLACE: a disk that appeared meanwhile is never overwritten.
        rustix::fs::renameat_with(CWD, &scratch_name, CWD, path, RenameFlags::NOREPLACE).map_err(
            |e| match e {
                rustix::io::Errno::EXIST => ImageError::invalid(format!("{} already exists", path.display())),
                other => ImageError::io(format!("publishing {}", path.display()), other.into()),
            },
        )
    });
    if result.is_err() {
        let _ = fs::remove_file(&scratch_name);
    }
    result
}

fn make_template(store: &Store, template: &Path, size_bytes: u64) -> Result<()> {
    let scratch = store.scratch("template")?;
    let disk = scratch.path().join("upper.ext4");
    mkfs(
        Mkfs {
            label: "vmctl-upper",
            features: "^has_journal",
            extended: "lazy_itable_init=1,nodiscard,root_owner=0:0",
        },
        &[],
        &disk,
        size_bytes,
    )?;
    store.publish(&disk, template)
}

/// Copies only the data extents of `from` (SEEK_DATA / SEEK_HOLE) into a new file
/// of `size` bytes, so holes stay holes.
fn sparse_copy(from: &Path, to: &Path, size: u64) -> Result<()> {
    let source = File::open(from).map_err(|e| ImageError::io(format!("opening {}", from.display()), e))?;
    let dest = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| ImageError::io(format!("creating {}", to.display()), e))?;
    dest.set_len(size)
        .map_err(|e| ImageError::io("sizing the writable layer", e))?;
    let mut offset = 0u64;
    loop {
        let data = match rustix::fs::seek(&source, SeekFrom::Data(offset)) {
            Ok(pos) => pos,
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(ImageError::io("finding data in the template", e.into())),
        };
        let hole = rustix::fs::seek(&source, SeekFrom::Hole(data))
            .map_err(|e| ImageError::io("finding a hole in the template", e.into()))?;
        copy_range(&source, &dest, data, hole - data)?;
        offset = hole;
    }
    dest.sync_all()
        .map_err(|e| ImageError::io("syncing the writable layer", e))
}

fn copy_range(source: &File, dest: &File, start: u64, len: u64) -> Result<()> {
    let mut done = 0u64;
    while done < len {
        let mut off_in = start + done;
        let mut off_out = start + done;
        let n = rustix::fs::copy_file_range(
            source,
            Some(&mut off_in),
            dest,
            Some(&mut off_out),
            (len - done) as usize,
        )
        .map_err(|e| ImageError::io("copying the template", io::Error::from(e)))?;
        if n == 0 {
            return Err(ImageError::new(
                crate::ErrorCode::Internal,
                "the template ended early",
            ));
        }
        done += n as u64;
    }
    Ok(())
}
