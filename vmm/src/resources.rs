//! The desired VM: everything configured through the API before Start.

use crate::arch::x86_64::layout::MAX_VIRTIO_DEVICES;
use crate::vmm_config::FieldError;
use crate::vmm_config::boot_source::BootSourceConfig;
use crate::vmm_config::drive::DriveConfig;
use crate::vmm_config::machine_config::MachineConfig;
use crate::vmm_config::net::{NetworkInterfaceConfig, TapSource};
use crate::vmm_config::vsock::VsockConfig;

/// Most drives a VM may have: every virtio-mmio slot but the one kept for the vsock device
/// (one per VM), so the published limit holds whether or not a vsock is configured.
/// Network interfaces take slots from the same pool: drives and interfaces together fit
/// in `MAX_DRIVES`.
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
    #[error(
        "drive: at most {MAX_DRIVES} drives and network interfaces together fit on the interrupt controller"
    )]
    TooMany,
}

/// Why a network interface cannot join the set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetSetError {
    #[error("network_interface.iface_id: an interface with id {0:?} already exists")]
    IdInUse(String),
    #[error("network_interface.host_dev_name: TAP {name:?} is already used by interface {existing:?}")]
    TapInUse { name: String, existing: String },
    #[error("network_interface.tap_fd: descriptor {fd} is already used by interface {existing:?}")]
    TapFdInUse { fd: i32, existing: String },
    #[error("network_interface.guest_mac: {mac} is already the MAC of interface {existing:?}")]
    MacInUse { mac: String, existing: String },
    #[error(
        "network_interface: at most {MAX_DRIVES} drives and network interfaces together fit on the interrupt controller"
    )]
    TooMany,
}

impl FieldError for NetSetError {
    fn field(&self) -> &'static str {
        match self {
            NetSetError::IdInUse(_) => "network_interface.iface_id",
            NetSetError::TapInUse { .. } => "network_interface.host_dev_name",
            NetSetError::TapFdInUse { .. } => "network_interface.tap_fd",
            NetSetError::MacInUse { .. } => "network_interface.guest_mac",
            NetSetError::TooMany => "network_interface",
        }
    }
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
    /// In the order added, placed after the drives.
    net_interfaces: Vec<NetworkInterfaceConfig>,
    /// The vsock device: one per VM, placed after the drives and network interfaces.
    vsock: Option<VsockConfig>,
}

impl VmResources {
    pub fn drives(&self) -> &[DriveConfig] {
        &self.drives
    }

    pub fn net_interfaces(&self) -> &[NetworkInterfaceConfig] {
        &self.net_interfaces
    }

    /// Adds a network interface (the API's PutNetworkInterface). Ids, TAPs and MACs are
    /// unique: a second interface on the same TAP could not attach, and two NICs with one
    /// MAC on a bridge break each other.
    pub fn put_net_interface(&mut self, iface: NetworkInterfaceConfig) -> Result<(), NetSetError> {
        for existing in &self.net_interfaces {
            let other = || existing.iface_id().to_owned();
            if existing.iface_id() == iface.iface_id() {
                return Err(NetSetError::IdInUse(iface.iface_id().to_owned()));
            }
            match (&existing.tap, &iface.tap) {
                (TapSource::Name(a), TapSource::Name(b)) if a == b => {
                    return Err(NetSetError::TapInUse {
                        name: b.clone(),
                        existing: other(),
                    });
                }
                (TapSource::Fd { number: a, .. }, TapSource::Fd { number: b, .. }) if a == b => {
                    return Err(NetSetError::TapFdInUse {
                        fd: *b,
                        existing: other(),
                    });
                }
                _ => {}
            }
            if existing.config.guest_mac == iface.config.guest_mac {
                return Err(NetSetError::MacInUse {
                    mac: iface.config.guest_mac.to_string(),
                    existing: other(),
                });
            }
        }
        if self.drives.len() + self.net_interfaces.len() >= MAX_DRIVES {
            return Err(NetSetError::TooMany);
        }
        self.net_interfaces.push(iface);
        Ok(())
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
        if self.drives.len() + self.net_interfaces.len() >= MAX_DRIVES {
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

    fn nic(id: &str, tap: &str, mac_last: u8) -> NetworkInterfaceConfig {
        crate::vmm_config::net::network_interface_config(
            id,
            "lo",
            &format!("02:00:00:00:00:{mac_last:02x}"),
            None,
        )
        .map(|mut n| {
            n.tap = TapSource::Name(tap.into());
            n
        })
        .unwrap()
    }

    #[test]
    fn interface_ids_taps_and_macs_are_unique_and_share_the_slots_with_drives() {
        let mut r = VmResources::default();
        r.put_net_interface(nic("eth0", "tap0", 1)).unwrap();
        assert_eq!(
            r.put_net_interface(nic("eth0", "tap1", 2)),
            Err(NetSetError::IdInUse("eth0".into()))
        );
        assert!(matches!(
            r.put_net_interface(nic("eth1", "tap0", 2)),
            Err(NetSetError::TapInUse { .. })
        ));
        assert!(matches!(
            r.put_net_interface(nic("eth1", "tap1", 1)),
            Err(NetSetError::MacInUse { .. })
        ));
        r.put_net_interface(nic("eth1", "tap1", 2)).unwrap();
        assert_eq!(r.net_interfaces().len(), 2);
        for i in 0..MAX_DRIVES - 2 {
            r.put_drive(drive(&format!("d{i}"), &format!("/d{i}"), false, false))
                .unwrap();
        }
        assert_eq!(
            r.put_drive(drive("x", "/x", false, false)),
            Err(DriveSetError::TooMany)
        );
        assert_eq!(
            r.put_net_interface(nic("eth2", "tap2", 3)),
            Err(NetSetError::TooMany)
        );
        assert_eq!(NetSetError::TooMany.field(), "network_interface");
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
