//! `Drive`: a virtio-blk device backed by a host file.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::FieldError;

/// Longest drive id: it is also the virtio-blk serial (GET_ID returns 20 bytes). The rule
/// is the block device's own (one rule, in the device crate): re-exported for the limits.
pub use vmctl_devices::virtio::block::{
    DRIVE_ID_EXTRA_CHARS, DRIVE_ID_LEN as MAX_DRIVE_ID_LEN, is_valid_drive_id,
};

/// The characters of a drive id, as a regular expression's character class.
fn drive_id_class() -> String {
    format!("[A-Za-z0-9{DRIVE_ID_EXTRA_CHARS}]")
}

/// The drive id rule as a whole-string regular expression (ECMAScript and RE2 syntax),
/// published in GetInfo's limits: the rule [`DriveConfig::new`] applies, from the same
/// constants.
pub fn drive_id_pattern() -> String {
    format!("^{}{{1,{MAX_DRIVE_ID_LEN}}}$", drive_id_class())
}

/// A validated drive, with its backing file opened (once: the block device is made over
/// this very file at Start, so what was checked is what the guest gets).
#[derive(Debug, Clone)]
pub struct DriveConfig {
    pub drive_id: String,
    pub path_on_host: PathBuf,
    pub is_read_only: bool,
    pub is_root_device: bool,
    pub file: Arc<File>,
}

/// Why a drive was refused.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("drive.drive_id: must be 1 to {MAX_DRIVE_ID_LEN} characters of {class} (got {0:?})", class = drive_id_class())]
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
        if !is_valid_drive_id(drive_id) {
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
            file: Arc::new(file),
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

    #[test]
    fn the_published_pattern_is_the_rule() {
        assert_eq!(drive_id_pattern(), "^[A-Za-z0-9_-]{1,20}$");
        assert!(
            DriveConfig::new("é", "/x", true, false)
                .unwrap_err()
                .to_string()
                .starts_with("drive.drive_id: must be 1 to 20 characters of [A-Za-z0-9_-] (got ")
        );
    }
}
