//! Files in and out as tar streams (the `tar` crate): mode, owner and mtime kept both
//! ways; on the way in, an entry that would land outside the destination is refused.
//!
//! The tar work is blocking I/O and runs on tokio's blocking pool; the async side and it
//! meet at bounded channels, so neither direction holds more than a few chunks.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use tokio::sync::mpsc;

/// Size of the chunks CopyOut sends.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("destination: {} is not an absolute path", .0.display())]
    RelativeDestination(PathBuf),
    #[error("path: {} is not an absolute path", .0.display())]
    RelativePath(PathBuf),
    #[error("tar entry {entry:?} would land outside the destination (absolute or '..')")]
    Escape { entry: String },
    #[error("no such file or directory: {}", .0.display())]
    NotFound(PathBuf),
    #[error("tar: {0}")]
    Tar(#[source] io::Error),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// What CopyIn unpacked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: u64,
    pub bytes: u64,
}

/// Unpacks the tar stream arriving on `chunks` into `destination` (created if missing).
/// Blocking: run on the blocking pool.
pub fn unpack(destination: &Path, chunks: mpsc::Receiver<Vec<u8>>) -> Result<Unpacked, CopyError> {
    if !destination.is_absolute() {
        return Err(CopyError::RelativeDestination(destination.to_owned()));
    }
    std::fs::create_dir_all(destination).map_err(|source| CopyError::Io {
        action: "create",
        path: destination.to_owned(),
        source,
    })?;
    let mut archive = tar::Archive::new(ChannelReader {
        chunks,
        current: Vec::new(),
        offset: 0,
    });
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let mut unpacked = Unpacked::default();
    for entry in archive.entries().map_err(CopyError::Tar)? {
        let mut entry = entry.map_err(CopyError::Tar)?;
        let path = entry.path().map_err(CopyError::Tar)?.into_owned();
        check_inside(&path)?;
        if entry.header().entry_type().is_hard_link()
            && let Some(link) = entry.link_name().map_err(CopyError::Tar)?
        {
            check_inside(&link)?;
        }
        // unpack_in also refuses to write through a symlink that points outside.
        let inside = entry.unpack_in(destination).map_err(CopyError::Tar)?;
        if !inside {
            return Err(CopyError::Escape {
                entry: path.display().to_string(),
            });
        }
        unpacked.entries += 1;
        unpacked.bytes += entry.size();
    }
    Ok(unpacked)
}

/// Refuses absolute paths and any `..`.
fn check_inside(path: &Path) -> Result<(), CopyError> {
    let escapes = path.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    });
    if escapes {
        return Err(CopyError::Escape {
            entry: path.display().to_string(),
        });
    }
    Ok(())
}

/// Packs `path` (a file or a directory, under its own name) into a tar stream sent on
/// `chunks`; a send waits while the channel is full. Blocking: run on the blocking pool.
pub fn pack(path: &Path, chunks: mpsc::Sender<Vec<u8>>) -> Result<(), CopyError> {
    if !path.is_absolute() {
        return Err(CopyError::RelativePath(path.to_owned()));
    }
    let meta = std::fs::symlink_metadata(path).map_err(|_| CopyError::NotFound(path.to_owned()))?;
    let name = path.file_name().map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut builder = tar::Builder::new(ChannelWriter {
        chunks,
        buf: Vec::with_capacity(CHUNK_BYTES),
    });
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    let result = if meta.is_dir() {
        builder.append_dir_all(&name, path)
    } else {
        builder.append_path_with_name(path, &name)
    };
    result.map_err(CopyError::Tar)?;
    let mut writer = builder.into_inner().map_err(CopyError::Tar)?;
    writer.flush().map_err(CopyError::Tar)
}

/// A `Read` over chunks from a channel (blocking receive).
struct ChannelReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    offset: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => {
                    self.current = chunk;
                    self.offset = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.offset);
        buf[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// A `Write` that sends full chunks to a channel (blocking send).
struct ChannelWriter {
    chunks: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK_BYTES - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK_BYTES {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.chunks
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(path: &str) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        // set_path refuses '..', so write the name bytes directly.
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &b"hi"[..]).unwrap();
        builder.into_inner().unwrap()
    }

    fn unpack_bytes(dest: &Path, bytes: Vec<u8>) -> Result<Unpacked, CopyError> {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(bytes).unwrap();
        drop(tx);
        unpack(dest, rx)
    }

    #[test]
    fn escapes_are_refused_and_plain_entries_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        assert_eq!(unpack_bytes(&dest, tar_with("ok.txt")).unwrap().entries, 1);
        assert_eq!(std::fs::read(dest.join("ok.txt")).unwrap(), b"hi");
        for bad in ["../evil", "a/../../evil", "/abs"] {
            let err = unpack_bytes(&dest, tar_with(bad)).unwrap_err();
            assert!(matches!(err, CopyError::Escape { .. }), "{bad}: {err}");
        }
        assert!(!dir.path().join("evil").exists());
    }
}
