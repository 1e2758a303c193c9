//! The configuration of a net device, as the API gives it: its id, the guest's MAC and
//! the TAP's name. The rules live here, once; the VMM only names the API's fields.

use std::fmt;
use std::str::FromStr;

use super::{NetError, tap::IFNAME_MAX};
use crate::virtio::block::is_valid_drive_id;

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Parses `aa:bb:cc:dd:ee:ff` (case-insensitive) and checks it is a usable unicast
    /// address: not multicast or broadcast (the low bit of the first octet clear) and not
    /// all zeros.
    pub fn parse_unicast(s: &str) -> Result<Self, NetError> {
        let mac: MacAddr = s.parse()?;
        if mac.0[0] & 1 != 0 {
            return Err(NetError::MacMulticast(mac.to_string()));
        }
        if mac.0 == [0; 6] {
            return Err(NetError::MacZero);
        }
        Ok(mac)
    }
}

impl FromStr for MacAddr {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = || NetError::MacSyntax(s.to_owned());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Interface ids follow the drive id rule (1 to 20 of `[A-Za-z0-9_-]`): one rule for every
/// id of the API.
pub fn is_valid_iface_id(id: &str) -> bool {
    is_valid_drive_id(id)
}

/// Checks a TAP name without touching the host: not empty, at most `IFNAMSIZ - 1` bytes,
/// no NUL, `/`, `:` or whitespace (what the kernel's `dev_valid_name` refuses).
pub fn check_host_dev_name(name: &str) -> Result<(), NetError> {
    if name.is_empty() {
        return Err(NetError::HostDevNameEmpty);
    }
    if name.len() > IFNAME_MAX {
        return Err(NetError::HostDevNameTooLong {
            name: name.to_owned(),
            len: name.len(),
        });
    }
    if name.contains('\0') {
        return Err(NetError::HostDevNameNul(name.to_owned()));
    }
    if name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err(NetError::HostDevNameChars(name.to_owned()));
    }
    Ok(())
}

/// A net device as the API describes it (the TAP is given separately, as a [`super::Tap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The interface's id, unique in the VM.
    pub iface_id: String,
    /// The guest's MAC, in the device's config space (`VIRTIO_NET_F_MAC`).
    pub guest_mac: MacAddr,
}

impl NetConfig {
    /// Validates raw API values.
    pub fn new(iface_id: &str, guest_mac: &str) -> Result<Self, NetError> {
        if !is_valid_iface_id(iface_id) {
            return Err(NetError::IfaceId(iface_id.to_owned()));
        }
        Ok(Self {
            iface_id: iface_id.to_owned(),
            guest_mac: MacAddr::parse_unicast(guest_mac)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_print_and_must_be_unicast() {
        let m = MacAddr::parse_unicast("02:AB:cd:00:01:ff").unwrap();
        assert_eq!(m.0, [2, 0xab, 0xcd, 0, 1, 0xff]);
        assert_eq!(m.to_string(), "02:ab:cd:00:01:ff");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:00:00:00:00:00",
            "02-00-00-00-00-01",
            "0g:00:00:00:00:01",
            "02:00:00:00:00:+1",
        ] {
            let e = MacAddr::parse_unicast(bad).unwrap_err();
            assert!(matches!(e, NetError::MacSyntax(_)), "{bad:?}: {e}");
            assert!(e.to_string().starts_with("guest_mac: "), "{e}");
        }
        for multicast in ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01"] {
            assert!(matches!(
                MacAddr::parse_unicast(multicast),
                Err(NetError::MacMulticast(_))
            ));
        }
        assert!(matches!(
            MacAddr::parse_unicast("00:00:00:00:00:00"),
            Err(NetError::MacZero)
        ));
    }

    #[test]
    fn host_dev_names_are_checked_like_the_kernel_does() {
        check_host_dev_name("tap0").unwrap();
        check_host_dev_name(&"x".repeat(15)).unwrap();
        for (bad, want) in [
            ("", "must not be empty"),
            (&"x".repeat(16)[..], "is 16 bytes"),
            ("ta\0p", "NUL"),
            ("a/b", "'/'"),
            ("a b", "'/'"),
            ("a:1", "'/'"),
            ("..", "'/'"),
        ] {
            let e = check_host_dev_name(bad).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with("host_dev_name: ") && msg.contains(want),
                "{bad:?}: {msg}"
            );
        }
    }

    #[test]
    fn iface_ids_follow_the_drive_id_rule() {
        NetConfig::new("eth0_x-1", "02:00:00:00:00:01").unwrap();
        for bad in ["", "a b", "é", &"x".repeat(21)] {
            let e = NetConfig::new(bad, "02:00:00:00:00:01").unwrap_err();
            assert!(e.to_string().starts_with("iface_id: "), "{e}");
        }
    }
}
