//! The image store on disk: content-addressed blobs, one base disk per image digest,
//! and a scratch area. Everything becomes visible by a rename, so what a reader sees
//! under `blobs/` or `disks/` is always complete; `tmp/` is garbage after a crash.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{ImageError, Result};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating when needed) the store rooted at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let store = Self {
            root: root.to_path_buf(),
        };
        for dir in [
            store.blob_dir(),
            store.disk_dir(),
            store.tmp_dir(),
            store.template_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(|e| ImageError::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn disk_dir(&self) -> PathBuf {
        self.root.join("disks")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn template_dir(&self) -> PathBuf {
        self.root.join("templates")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn disk_path(&self, image: &Digest) -> PathBuf {
        self.disk_dir().join(format!("{}.ext4", image.hex()))
    }

    /// A fresh scratch directory under `tmp/`, removed when the guard drops.
    pub fn scratch(&self, purpose: &str) -> Result<Scratch> {
        let name = format!(
            "{purpose}-{}-{}",
            std::process::id(),
            SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.tmp_dir().join(name);
        fs::create_dir(&path).map_err(|e| ImageError::io(format!("creating {}", path.display()), e))?;
        Ok(Scratch {
            path,
            in_memory: false,
        })
    }

    /// Stores `bytes` (small: manifests, configs) as a blob, checking them against `expected`.
    pub fn put_bytes(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let mut writer = self.blob_writer()?;
        writer
            .write_all(bytes)
            .map_err(|e| ImageError::io("writing a blob", e))?;
        writer.commit(expected, None)
    }

    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let scratch = self.scratch("blob")?;
        let tmp = scratch.path.join("data");
        let file =
            File::create(&tmp).map_err(|e| ImageError::io(format!("creating {}", tmp.display()), e))?;
        Ok(BlobWriter {
            store: self.clone(),
            scratch,
            file,
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// Moves a finished file into place at `dest` (atomic rename, then the directory synced).
    pub fn publish(&self, from: &Path, dest: &Path) -> Result<()> {
        fs::rename(from, dest).map_err(|e| ImageError::io(format!("publishing {}", dest.display()), e))?;
        if let Some(parent) = dest.parent() {
            File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| ImageError::io(format!("syncing {}", parent.display()), e))?;
        }
        Ok(())
    }
}

/// A scratch directory that removes itself, so no failure leaves work behind.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    in_memory: bool,
}

impl Scratch {
    /// Takes charge of a directory made elsewhere (removed on drop like any scratch).
    pub fn adopt(path: PathBuf, in_memory: bool) -> Self {
        Self { path, in_memory }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when it lives in memory (a tmpfs), not in the store.
    pub fn in_memory(&self) -> bool {
        self.in_memory
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            log::warn!("could not remove scratch {}: {err}", self.path.display());
        }
    }
}

/// Writes one blob while hashing it; `commit` verifies digest and size before the blob
/// becomes visible, so a corrupt or truncated download never lands in the store.
pub struct BlobWriter {
    store: Store,
    scratch: Scratch,
    file: File,
    hasher: Sha256,
    written: u64,
}

impl BlobWriter {
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn commit(mut self, expected: Option<&Digest>, expected_size: Option<u64>) -> Result<Digest> {
        self.file
            .flush()
            .map_err(|e| ImageError::io("writing a blob", e))?;
        let actual = Digest::from_hasher(self.hasher.clone());
        if let Some(size) = expected_size
            && size != self.written
        {
            return Err(ImageError::data_loss(format!(
                "blob {}: {} bytes received, {size} expected (truncated or padded)",
                expected.map_or_else(|| actual.to_string(), ToString::to_string),
                self.written
            )));
        }
        if let Some(expected) = expected
            && *expected != actual
        {
            return Err(ImageError::data_loss(format!(
                "blob {expected}: content has digest {actual} (corrupted)"
            )));
        }
        self.file
            .sync_all()
            .map_err(|e| ImageError::io("syncing a blob", e))?;
        let dest = self.store.blob_path(&actual);
        self.store.publish(&self.scratch.path.join("data"), &dest)?;
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_lands_only_when_its_digest_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let good = Digest::of(b"hello");
        assert_eq!(store.put_bytes(b"hello", Some(&good)).unwrap(), good);
        assert!(store.has_blob(&good));

        let wrong = Digest::of(b"other");
        let err = store.put_bytes(b"hello!", Some(&wrong)).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::DataLoss);
        assert!(!store.has_blob(&wrong));
        assert!(!store.has_blob(&Digest::of(b"hello!")));
        assert_eq!(
            fs::read_dir(store.tmp_dir()).unwrap().count(),
            0,
            "scratch left behind"
        );
    }

    #[test]
    fn truncated_blob_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut writer = store.blob_writer().unwrap();
        writer.write_all(b"hel").unwrap();
        let err = writer.commit(Some(&Digest::of(b"hello")), Some(5)).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::DataLoss);
        assert!(err.message.contains("truncated"), "{}", err.message);
    }
}
