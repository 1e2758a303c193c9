//! Persistent TAP devices: made here, opened later by the VMM. The VMM opens the same
//! name with the same flags (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR); the kernel keeps the
//! device while no one holds it because it is persistent.

use std::ffi::CStr;
use std::io;

use super::NetError;

const TUN_PATH: &CStr = c"/dev/net/tun";

/// Makes (or, when it already is one, reuses) the persistent TAP `name`.
pub fn create_persistent(name: &str) -> Result<(), NetError> {
    let ioctl_error = |op: &str| NetError::Io {
        what: format!("{op} {name}"),
        source: io::Error::last_os_error(),
    };
    // SAFETY: opens a path from a NUL-terminated constant; the result is checked.
    let fd = unsafe { libc::open(TUN_PATH.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(NetError::Io {
            what: "open /dev/net/tun".into(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq through the pointer, a live local;
    // TUNSETPERSIST takes an integer argument. Both on the descriptor opened above.
    let result = unsafe {
        if libc::ioctl(fd, libc::TUNSETIFF, &mut request) < 0 {
            Err(ioctl_error("TUNSETIFF"))
        } else if libc::ioctl(fd, libc::TUNSETPERSIST, 1 as libc::c_ulong) < 0 {
            Err(ioctl_error("TUNSETPERSIST"))
        } else {
            Ok(())
        }
    };
    // SAFETY: closes the descriptor opened above, once; the device stays (persistent).
    unsafe { libc::close(fd) };
    result.map_err(|e| match e {
        // A link of that name that is not a TAP (a bridge, a veth, a TUN).
        NetError::Io { source, .. } if source.raw_os_error() == Some(libc::EINVAL) => {
            NetError::AlreadyExists(format!("{name} exists and is not a TAP device"))
        }
        NetError::Io { source, .. } if source.raw_os_error() == Some(libc::EBUSY) => {
            NetError::AlreadyExists(format!("TAP {name} is in use with other flags"))
        }
        e => e,
    })
}
