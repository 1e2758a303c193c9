//! `Drive`: a virtio-blk device backed by a host file.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::FieldError;

/// Longest drive id: it is also the virtio-blk serial (GET_ID returns 20 bytes).
pub const MAX_DRIVE_ID_LEN: usize = 20;

/// A validated drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveConfig {
    pub drive_id: String,
    pub path_on_host: PathBuf,
    pub is_read_only: bool,
    pub is_root_device: bool,
}

/// Why a drive was refused.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("drive.drive_id: must be 1 to {MAX_DRIVE_ID_LEN} characters of [A-Za-z0-9_-] (got {0:?})")]
    DriveId(String),
    #[error("drive.path_on_host: must not be empty")]
    PathMissing,
    #[error("drive.path_on_host: cannot open {} for {mode}: {source}", path.display())]
    PathUnusable {
        path: PathBuf,
        mode: &'static str,
        source: std::io::Error,
    },
    #[error("drive.path_on_host: {} is not a regular file or block device", .0.display())]
    PathNotAFile(PathBuf),
}

impl FieldError for DriveError {
    fn field(&self) -> &'static str {
        match self {
            DriveError::DriveId(_) => "drive.drive_id",
            _ => "drive.path_on_host",
        }
    }
}

impl DriveConfig {
    /// Validates raw API values; opens the backing file as the device will.
    pub fn new(
        drive_id: &str,
        path_on_host: &str,
        is_read_only: bool,
        is_root_device: bool,
    ) -> Result<Self, DriveError> {
        let id_ok = !drive_id.is_empty()
            && drive_id.len() <= MAX_DRIVE_ID_LEN
            && drive_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(DriveError::DriveId(drive_id.to_owned()));
        }
        if path_on_host.is_empty() {
            return Err(DriveError::PathMissing);
        }
        let path = PathBuf::from(path_on_host);
        let mode = if is_read_only {
            "reading"
        } else {
            "reading and writing"
        };
        // Non-blocking: opening a FIFO read-only blocks until a writer comes, and the API
        // must never wait on a path a client named. Regular files and block devices (all
        // that is accepted) ignore the flag.
        let file = OpenOptions::new()
            .read(true)
            .write(!is_read_only)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|source| DriveError::PathUnusable {
                path: path.clone(),
                mode,
                source,
            })?;
        let ft = file
            .metadata()
            .map_err(|source| DriveError::PathUnusable {
                path: path.clone(),
                mode,
                source,
            })?
            .file_type();
        use std::os::unix::fs::FileTypeExt;
        if !(ft.is_file() || ft.is_block_device()) {
            return Err(DriveError::PathNotAFile(path));
        }
        Ok(Self {
            drive_id: drive_id.to_owned(),
            path_on_host: path,
            is_read_only,
            is_root_device,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_id_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        std::fs::write(&disk, vec![0u8; 4096]).unwrap();
        let disk = disk.to_str().unwrap();
        let ok = DriveConfig::new("root_1-a", disk, false, true).unwrap();
        assert!(ok.is_root_device);
        for bad in ["", "has space", "a/b", "123456789012345678901"] {
            assert_eq!(
                DriveConfig::new(bad, disk, false, false).unwrap_err().field(),
                "drive.drive_id"
            );
        }
        let e = DriveConfig::new("d", "/nonexistent/disk.img", true, false).unwrap_err();
        assert_eq!(e.field(), "drive.path_on_host");
        assert!(e.to_string().contains("/nonexistent/disk.img"), "{e}");
        assert!(matches!(
            DriveConfig::new("d", "", true, false),
            Err(DriveError::PathMissing)
        ));
        assert!(matches!(
            DriveConfig::new("d", dir.path().to_str().unwrap(), true, false),
            Err(DriveError::PathNotAFile(_)) | Err(DriveError::PathUnusable { .. })
        ));
    }
}
