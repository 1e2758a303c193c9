//! The configuration of a vsock device, as the API gives it.

use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::{MAX_GUEST_CID, MIN_GUEST_CID, UDS_PATH_MAX, VsockError};

/// A vsock device as the API describes it. [`super::Vsock::new`] turns it into a device
/// and [`super::Vsock::config`] gives it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsockConfig {
    /// The guest's context id, `3..=2^32-2`; the device reports it in its config space.
    pub guest_cid: u64,
    /// The unix socket the host connects to (`CONNECT <port>\n`); guest connections to host
    /// port `N` go to `<uds_path>_<N>`. At most 107 bytes, in an existing directory; a stale
    /// socket left there (nobody accepting) is replaced.
    pub uds_path: PathBuf,
}

impl VsockConfig {
    /// Checks every field without creating anything.
    pub fn validate(&self) -> Result<(), VsockError> {
        if !(MIN_GUEST_CID..=MAX_GUEST_CID).contains(&self.guest_cid) {
            return Err(VsockError::GuestCidInvalid(self.guest_cid));
        }
        let path = &self.uds_path;
        let bytes = path.as_os_str().as_bytes();
        if bytes.is_empty() {
            return Err(VsockError::UdsPathEmpty);
        }
        if bytes.len() > UDS_PATH_MAX {
            return Err(VsockError::UdsPathTooLong {
                path: path.clone(),
                len: bytes.len(),
            });
        }
        if bytes.contains(&0) {
            return Err(VsockError::UdsPathNul(path.clone()));
        }
        let parent = match path.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => return Err(VsockError::UdsPathNoParent(path.clone())),
        };
        if !parent.is_dir() || path.file_name().is_none() {
            return Err(VsockError::UdsPathNoParent(path.clone()));
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => Err(VsockError::UdsPathNotSocket(path.clone())),
            _ => Ok(()),
        }
    }

    /// Validates, removes a stale socket at `uds_path` (one nobody accepts on) and listens
    /// there (non-blocking).
    pub(crate) fn listen(&self) -> Result<UnixListener, VsockError> {
        self.validate()?;
        let path = &self.uds_path;
        if std::fs::symlink_metadata(path).is_ok() {
            match UnixStream::connect(path) {
                Ok(_) => return Err(VsockError::UdsPathInUse(path.clone())),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    let _ = std::fs::remove_file(path);
                }
                Err(_) => {}
            }
        }
        let bind_err = |source| VsockError::Bind {
            path: path.clone(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        Ok(listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(guest_cid: u64, uds_path: impl Into<PathBuf>) -> VsockConfig {
        VsockConfig {
            guest_cid,
            uds_path: uds_path.into(),
        }
    }

    #[test]
    fn guest_cid_range_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        for cid in [0, 1, 2, u64::from(u32::MAX), u64::MAX] {
            let err = config(cid, &path).validate().unwrap_err();
            assert!(err.to_string().starts_with("guest_cid: "), "{err}");
        }
        for cid in [3, 52, u64::from(u32::MAX) - 1] {
            config(cid, &path).validate().unwrap();
        }
    }

    #[test]
    fn uds_path_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("x".repeat(120));
        let file = dir.path().join("plain");
        std::fs::write(&file, b"").unwrap();
        for (path, want) in [
            (PathBuf::new(), "uds_path: must not be empty"),
            (long, "uds_path: "),
            (dir.path().join("missing/v.sock"), "uds_path: the directory of"),
            (file.clone(), "uds_path: "),
            (file.join("v.sock"), "uds_path: the directory of"),
        ] {
            let err = config(3, &path).validate().unwrap_err();
            assert!(err.to_string().starts_with(want), "{path:?}: {err}");
        }
        // Exactly 107 bytes is fine, 108 is not.
        let base = dir.path().as_os_str().len() + 1;
        if base < 100 {
            let ok = dir.path().join("y".repeat(UDS_PATH_MAX - base));
            config(3, &ok).validate().unwrap();
            let too_long = dir.path().join("y".repeat(UDS_PATH_MAX - base + 1));
            assert!(matches!(
                config(3, &too_long).validate(),
                Err(VsockError::UdsPathTooLong { len: 108, .. })
            ));
        }
        // A relative path in the current directory has a parent.
        config(3, "v.sock").validate().unwrap();
    }

    #[test]
    fn stale_socket_is_replaced_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        drop(UnixListener::bind(&path).unwrap()); // leaves a socket file nobody accepts on
        let live = config(3, &path).listen().unwrap();
        let err = config(3, &path).listen().unwrap_err();
        assert!(matches!(err, VsockError::UdsPathInUse(_)), "{err}");
        assert!(err.to_string().starts_with("uds_path: "), "{err}");
        drop(live);
    }

    #[test]
    fn the_device_removes_its_socket_file_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        let dev = crate::virtio::vsock::Vsock::new(config(3, &path)).unwrap();
        assert!(path.exists());
        drop(dev);
        assert!(!path.exists());
    }
}
