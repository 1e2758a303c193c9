//! `Vsock`: the VM's virtio-vsock device, host side on unix sockets.
//!
//! The rules are the device's own ([`VsockConfig::validate`] in `vmctl-devices`): this file
//! only turns raw API values into a [`VsockConfig`] and names the API's field for each of
//! the device's errors. Nothing is created here: the socket is bound at Start (see
//! `device_manager::virtio`), so a refused or replaced PutVsock leaves nothing behind.

use std::path::PathBuf;

use super::FieldError;

pub use vmctl_devices::virtio::vsock::{MAX_GUEST_CID, MIN_GUEST_CID, UDS_PATH_MAX, VsockConfig, VsockError};

/// Why a vsock configuration was refused: the device's error, which names its field.
#[derive(Debug, thiserror::Error)]
#[error("vsock.{0}")]
pub struct VsockConfigError(#[from] pub VsockError);

impl FieldError for VsockConfigError {
    fn field(&self) -> &'static str {
        vsock_field(&self.0).unwrap_or("vsock")
    }
}

/// The API's field for one of the device's errors (`None`: not about the configuration).
pub fn vsock_field(e: &VsockError) -> Option<&'static str> {
    match e {
        VsockError::GuestCidInvalid(_) => Some("vsock.guest_cid"),
        VsockError::UdsPathEmpty
        | VsockError::UdsPathTooLong { .. }
        | VsockError::UdsPathNul(_)
        | VsockError::UdsPathNoParent(_)
        | VsockError::UdsPathNotSocket(_)
        | VsockError::UdsPathInUse(_)
        | VsockError::Bind { .. } => Some("vsock.uds_path"),
        VsockError::Timer(_) | VsockError::Virtio(_) => None,
    }
}

/// Validates raw API values with the device's rules, without creating anything.
pub fn vsock_config(guest_cid: u64, uds_path: &str) -> Result<VsockConfig, VsockConfigError> {
    let config = VsockConfig {
        guest_cid,
        uds_path: PathBuf::from(uds_path),
    };
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_api_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        let path = path.to_str().unwrap();
        let ok = vsock_config(3, path).unwrap();
        assert_eq!((ok.guest_cid, ok.uds_path.to_str()), (3, Some(path)));
        vsock_config(MAX_GUEST_CID, path).unwrap();
        for cid in [0, 1, 2, u64::from(u32::MAX), u64::MAX] {
            let e = vsock_config(cid, path).unwrap_err();
            assert_eq!(e.field(), "vsock.guest_cid");
            assert!(e.to_string().starts_with("vsock.guest_cid: "), "{e}");
        }
        let long = format!("/tmp/{}", "x".repeat(UDS_PATH_MAX));
        let missing = dir.path().join("missing/v.sock");
        for bad in [
            "",
            long.as_str(),
            missing.to_str().unwrap(),
            dir.path().to_str().unwrap(),
            "/tmp/a\0b",
        ] {
            let e = vsock_config(3, bad).unwrap_err();
            assert_eq!(e.field(), "vsock.uds_path", "{bad:?}");
            assert!(e.to_string().starts_with("vsock.uds_path: "), "{e}");
        }
    }

    #[test]
    fn nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        vsock_config(3, path.to_str().unwrap()).unwrap();
        assert!(!path.exists());
    }
}
