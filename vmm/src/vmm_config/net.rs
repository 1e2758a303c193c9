//! `NetworkInterface`: a virtio-net device on a TAP, named (`host_dev_name`, an existing
//! TAP in the VMM's network namespace) or passed in (`tap_fd`, a descriptor this process
//! inherited).
//!
//! The rules are the device's own (`vmctl_devices::virtio::net`): this file turns raw API
//! values into a [`NetworkInterfaceConfig`] and names the API's field for each of the
//! device's errors. Nothing is attached here: the TAP is opened at Start (see
//! `device_manager::virtio`), so a refused PutNetworkInterface leaves nothing behind. A
//! passed descriptor is checked and duplicated (close-on-exec) at Put; the copy is the
//! configuration's, closed when the interface is dropped.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::FieldError;

use vmctl_devices::virtio::net::tap;
pub use vmctl_devices::virtio::net::tap::IFNAME_MAX;
pub use vmctl_devices::virtio::net::{NetConfig, NetError};

/// Where the interface's TAP comes from.
#[derive(Debug, Clone)]
pub enum TapSource {
    /// An existing TAP, attached by name at Start.
    Name(String),
    /// A TAP descriptor the VMM was given (the number the client named, and our copy).
    Fd { number: i32, fd: Arc<OwnedFd> },
}

/// A validated network interface.
#[derive(Debug, Clone)]
pub struct NetworkInterfaceConfig {
    pub config: NetConfig,
    pub tap: TapSource,
}

impl NetworkInterfaceConfig {
    pub fn iface_id(&self) -> &str {
        &self.config.iface_id
    }

    /// The TAP's name (empty for a descriptor: its name is learnt when it is opened).
    pub fn host_dev_name(&self) -> &str {
        match &self.tap {
            TapSource::Name(n) => n,
            TapSource::Fd { .. } => "",
        }
    }

    pub fn tap_fd(&self) -> Option<i32> {
        match &self.tap {
            TapSource::Name(_) => None,
            TapSource::Fd { number, .. } => Some(*number),
        }
    }
}

/// Why a network interface was refused: the device's error, which names its field.
#[derive(Debug, thiserror::Error)]
#[error("network_interface.{0}")]
pub struct NetConfigError(#[from] pub NetError);

impl FieldError for NetConfigError {
    fn field(&self) -> &'static str {
        net_field(&self.0).unwrap_or("network_interface")
    }
}

/// The API's field for one of the device's errors (`None`: not about the configuration).
pub fn net_field(e: &NetError) -> Option<&'static str> {
    match e {
        NetError::IfaceId(_) => Some("network_interface.iface_id"),
        NetError::MacSyntax(_) | NetError::MacMulticast(_) | NetError::MacZero => {
            Some("network_interface.guest_mac")
        }
        NetError::NoBackend
        | NetError::HostDevNameEmpty
        | NetError::HostDevNameTooLong { .. }
        | NetError::HostDevNameNul(_)
        | NetError::HostDevNameChars(_)
        | NetError::TapNotFound(_)
        | NetError::NotATap(_)
        | NetError::TapOpen { .. } => Some("network_interface.host_dev_name"),
        NetError::TapFdNotATap { .. } | NetError::TapFdFlags { .. } => Some("network_interface.tap_fd"),
        NetError::TapSetup { .. } | NetError::Virtio(_) => None,
    }
}

/// Validates raw API values with the device's rules: exactly one of a TAP name (which must
/// exist now) and a descriptor (which must be a TAP now).
pub fn network_interface_config(
    iface_id: &str,
    host_dev_name: &str,
    guest_mac: &str,
    tap_fd: Option<i32>,
) -> Result<NetworkInterfaceConfig, NetConfigError> {
    let config = NetConfig::new(iface_id, guest_mac)?;
    let tap = match (host_dev_name, tap_fd) {
        (name, None) => {
            tap::check_exists(name)?;
            TapSource::Name(name.to_owned())
        }
        ("", Some(number)) => TapSource::Fd {
            number,
            fd: Arc::new(tap::dup_tap_fd(number)?),
        },
        (_, Some(_)) => return Err(NetError::NoBackend.into()),
    };
    Ok(NetworkInterfaceConfig { config, tap })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_api_field() {
        // "lo" exists in every namespace; whether it is a TAP is learnt at Start.
        let ok = network_interface_config("eth0", "lo", "02:00:00:00:00:01", None).unwrap();
        assert_eq!((ok.iface_id(), ok.host_dev_name()), ("eth0", "lo"));
        let long = "x".repeat(IFNAME_MAX + 1);
        for (id, name, mac, fd, field) in [
            ("", "lo", "02:00:00:00:00:01", None, "iface_id"),
            ("a b", "lo", "02:00:00:00:00:01", None, "iface_id"),
            ("eth0", "lo", "01:00:5e:00:00:01", None, "guest_mac"),
            ("eth0", "lo", "ff:ff:ff:ff:ff:ff", None, "guest_mac"),
            ("eth0", "lo", "02:00:00:00:01", None, "guest_mac"),
            ("eth0", "lo", "00:00:00:00:00:00", None, "guest_mac"),
            ("eth0", "", "02:00:00:00:00:01", None, "host_dev_name"),
            ("eth0", long.as_str(), "02:00:00:00:00:01", None, "host_dev_name"),
            ("eth0", "ta\0p", "02:00:00:00:00:01", None, "host_dev_name"),
            ("eth0", "a/b", "02:00:00:00:00:01", None, "host_dev_name"),
            (
                "eth0",
                "vmctl-no-such",
                "02:00:00:00:00:01",
                None,
                "host_dev_name",
            ),
            ("eth0", "lo", "02:00:00:00:00:01", Some(0), "host_dev_name"),
            ("eth0", "", "02:00:00:00:00:01", Some(-1), "tap_fd"),
            ("eth0", "", "02:00:00:00:00:01", Some(0), "tap_fd"),
            ("eth0", "", "02:00:00:00:00:01", Some(999_999), "tap_fd"),
        ] {
            let e = network_interface_config(id, name, mac, fd).unwrap_err();
            let want = format!("network_interface.{field}");
            assert_eq!(e.field(), want, "{id:?} {name:?} {mac:?} {fd:?}: {e}");
            assert!(e.to_string().starts_with(&format!("{want}: ")), "{e}");
        }
    }
}
