//! The desired VM: everything configured through the API before Start.

use crate::arch::x86_64::layout::MAX_VIRTIO_DEVICES;
use crate::vmm_config::FieldError;
use crate::vmm_config::boot_source::BootSourceConfig;
use crate::vmm_config::drive::DriveConfig;
use crate::vmm_config::machine_config::MachineConfig;
use crate::vmm_config::vsock::VsockConfig;

/// Most drives a VM may have: every virtio-mmio slot but the one kept for the vsock device
/// (one per VM), so the published limit holds whether or not a vsock is configured.
pub const MAX_DRIVES: usize = MAX_VIRTIO_DEVICES - 1;

/// Why a drive cannot join the set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DriveSetError {
    #[error("drive.drive_id: a drive with id {0:?} already exists")]
    IdInUse(String),
    #[error("drive.is_root_device: drive {existing:?} is already the root device")]
    RootExists { existing: String },
    #[error("drive.path_on_host: {path} is already used by drive {existing:?} and one of them is writable")]
    PathInUse { path: String, existing: String },
    #[error("drive: at most {MAX_DRIVES} drives fit on the interrupt controller")]
    TooMany,
}

impl FieldError for DriveSetError {
    fn field(&self) -> &'static str {
        match self {
            DriveSetError::IdInUse(_) => "drive.drive_id",
            DriveSetError::RootExists { .. } => "drive.is_root_device",
            DriveSetError::PathInUse { .. } => "drive.path_on_host",
            DriveSetError::TooMany => "drive",
        }
    }
}

/// The configuration a VM is built from.
#[derive(Debug, Clone, Default)]
pub struct VmResources {
    pub machine: MachineConfig,
    pub boot_source: Option<BootSourceConfig>,
    /// In device order: the root device first, then in the order added.
    drives: Vec<DriveConfig>,
    /// The vsock device: one per VM, placed after the drives.
    vsock: Option<VsockConfig>,
}

impl VmResources {
    pub fn drives(&self) -> &[DriveConfig] {
        &self.drives
    }

    pub fn vsock(&self) -> Option<&VsockConfig> {
        self.vsock.as_ref()
    }

    /// Sets the vsock device (the API's PutVsock). One per VM: a second one replaces the
    /// first, as in Firecracker (nothing exists yet to be replaced: the socket is made at
    /// Start). Its slot is kept free of drives ([`MAX_DRIVES`]), so it always fits.
    pub fn put_vsock(&mut self, vsock: VsockConfig) {
        self.vsock = Some(vsock);
    }

    /// Adds `drive` (the API's PutDrive). Ids are unique: a second drive with the same
    /// id is refused rather than silently replacing the first.
    pub fn put_drive(&mut self, drive: DriveConfig) -> Result<(), DriveSetError> {
        if self.drives.iter().any(|d| d.drive_id == drive.drive_id) {
            return Err(DriveSetError::IdInUse(drive.drive_id));
        }
        if drive.is_root_device
            && let Some(root) = self.drives.iter().find(|d| d.is_root_device)
        {
            return Err(DriveSetError::RootExists {
                existing: root.drive_id.clone(),
            });
        }
        if let Some(d) = self
            .drives
            .iter()
            .find(|d| d.path_on_host == drive.path_on_host && !(d.is_read_only && drive.is_read_only))
        {
            return Err(DriveSetError::PathInUse {
                path: drive.path_on_host.display().to_string(),
                existing: d.drive_id.clone(),
            });
        }
        if self.drives.len() >= MAX_DRIVES {
            return Err(DriveSetError::TooMany);
        }
        self.drives.push(drive);
        // Stable: the root device first, the others keep their order.
        self.drives.sort_by_key(|d| !d.is_root_device);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn drive(id: &str, path: &str, ro: bool, root: bool) -> DriveConfig {
        DriveConfig {
            drive_id: id.into(),
            path_on_host: PathBuf::from(path),
            is_read_only: ro,
            is_root_device: root,
            // The set's rules go by path; any open file stands for the backing one.
            file: std::sync::Arc::new(std::fs::File::open("/dev/null").unwrap()),
        }
    }

    fn vsock(cid: u64, path: &str) -> VsockConfig {
        VsockConfig {
            guest_cid: cid,
            uds_path: PathBuf::from(path),
        }
    }

    #[test]
    fn a_second_vsock_replaces_the_first_and_fits_beside_the_most_drives() {
        let mut r = VmResources::default();
        assert!(r.vsock().is_none());
        r.put_vsock(vsock(3, "/a.sock"));
        r.put_vsock(vsock(7, "/b.sock"));
        assert_eq!(r.vsock(), Some(&vsock(7, "/b.sock")));
        for i in 0..MAX_DRIVES {
            r.put_drive(drive(&format!("d{i}"), &format!("/d{i}"), false, false))
                .unwrap();
        }
        // The vsock takes the slot after the drives: still on the interrupt controller.
        assert!(r.drives().len() < MAX_VIRTIO_DEVICES);
    }

    #[test]
    fn root_goes_first_and_a_second_drive_with_the_same_id_is_refused() {
        let mut r = VmResources::default();
        r.put_drive(drive("data", "/d", false, false)).unwrap();
        r.put_drive(drive("root", "/r", false, true)).unwrap();
        let ids: Vec<_> = r.drives().iter().map(|d| d.drive_id.as_str()).collect();
        assert_eq!(ids, ["root", "data"]);
        assert_eq!(
            r.put_drive(drive("data", "/d2", true, false)),
            Err(DriveSetError::IdInUse("data".into()))
        );
        assert_eq!(r.drives().len(), 2);
        assert_eq!(r.drives()[1].path_on_host, PathBuf::from("/d"));
    }

    #[test]
    fn a_second_root_or_a_shared_writable_file_is_refused() {
        let mut r = VmResources::default();
        r.put_drive(drive("root", "/r", false, true)).unwrap();
        assert_eq!(
            r.put_drive(drive("other", "/o", false, true)),
            Err(DriveSetError::RootExists {
                existing: "root".into()
            })
        );
        assert!(matches!(
            r.put_drive(drive("alias", "/r", true, false)),
            Err(DriveSetError::PathInUse { .. })
        ));
        r.put_drive(drive("ro1", "/shared", true, false)).unwrap();
        r.put_drive(drive("ro2", "/shared", true, false)).unwrap();
    }

    #[test]
    fn the_ioapic_limits_the_drive_count_with_a_slot_left_for_the_vsock() {
        assert_eq!(MAX_DRIVES + 1, MAX_VIRTIO_DEVICES);
        let mut r = VmResources::default();
        for i in 0..MAX_DRIVES {
            r.put_drive(drive(&format!("d{i}"), &format!("/d{i}"), false, false))
                .unwrap();
        }
        assert_eq!(
            r.put_drive(drive("x", "/x", false, false)),
            Err(DriveSetError::TooMany)
        );
    }
}
