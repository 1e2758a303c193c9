//! The host end of a virtio-net device: a TAP file descriptor, opened by name on
//! `/dev/net/tun` or handed over already open, always non-blocking.
//!
//! No maintained crate covers what the device needs (attach-only opening, vnet header
//! size, offload flags, readv/writev on guest memory), so this is the few ioctls it takes,
//! with the constants from `libc`.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::NetError;

/// Where TAP devices are opened.
const TUN_PATH: &str = "/dev/net/tun";
/// Longest interface name, without its NUL (`IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = libc::IFNAMSIZ - 1;

/// Offload flags of `TUNSETOFFLOAD`: what the reader of the TAP (the device, for the
/// guest) accepts in the frames it reads.
pub mod offload {
    /// Frames may come with a partial checksum (`NEEDS_CSUM`).
    pub const CSUM: u32 = libc::TUN_F_CSUM;
    /// TCP over IPv4 segmentation offload (needs `CSUM`).
    pub const TSO4: u32 = libc::TUN_F_TSO4;
    /// TCP over IPv6 segmentation offload (needs `CSUM`).
    pub const TSO6: u32 = libc::TUN_F_TSO6;
}

/// `struct ifreq` with the two members the TUN ioctls use.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    fn new(name: &str) -> Self {
        let mut req = Self {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        for (dst, src) in req.name.iter_mut().zip(name.bytes().take(IFNAME_MAX)) {
            *dst = src as libc::c_char;
        }
        req
    }

    fn name(&self) -> String {
        // SAFETY: the kernel (or `new`) leaves the array NUL-terminated within IFNAMSIZ.
        let c = unsafe { CStr::from_ptr(self.name.as_ptr()) };
        c.to_string_lossy().into_owned()
    }
}

/// An open TAP device.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
    /// Frames carry a `virtio_net_hdr_v1` (the TAP was set up with `IFF_VNET_HDR`).
    vnet_hdr: bool,
}

impl Tap {
    /// Attaches to the existing TAP `name` (never creates one: a missing device is the
    /// caller's mistake, not something to paper over with a fresh, unconnected TAP), with
    /// `IFF_VNET_HDR` and a 12-byte header (`virtio_net_hdr_v1`).
    pub fn open(name: &str) -> Result<Self, NetError> {
        check_exists(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(TUN_PATH)
            .map_err(|source| NetError::TapOpen {
                name: name.into(),
                source,
            })?;
        let mut req = IfReq::new(name);
        req.flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
            let source = io::Error::last_os_error();
            return Err(match source.raw_os_error() {
                // EINVAL: the device exists but is a TUN, a multi-queue TAP or not a TAP at all.
                Some(libc::EINVAL) => NetError::NotATap(name.into()),
                _ => NetError::TapOpen {
                    name: name.into(),
                    source,
                },
            });
        }
        let tap = Self {
            file,
            name: req.name(),
            vnet_hdr: true,
        };
        tap.set_vnet_hdr_size()?;
        Ok(tap)
    }

    /// Takes a TAP file descriptor opened elsewhere (e.g. by a privileged parent). It must be
    /// a TAP without packet information; with `IFF_VNET_HDR` the offloads can be used,
    /// without it frames go plain and no offload is offered. Made non-blocking here.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, NetError> {
        let raw = fd.as_raw_fd();
        let mut req = IfReq::new("");
        // SAFETY: TUNGETIFF writes an ifreq, which `req` is.
        if unsafe { libc::ioctl(raw, libc::TUNGETIFF, &mut req) } < 0 {
            return Err(NetError::TapFdNotATap {
                fd: raw,
                source: io::Error::last_os_error(),
            });
        }
        let flags = i32::from(req.flags);
        if flags & libc::IFF_TAP == 0 || flags & libc::IFF_NO_PI == 0 {
            return Err(NetError::TapFdFlags { fd: raw, flags });
        }
        set_nonblocking(raw).map_err(|source| NetError::TapFdNotATap { fd: raw, source })?;
        let tap = Self {
            file: File::from(fd),
            name: req.name(),
            vnet_hdr: flags & libc::IFF_VNET_HDR != 0,
        };
        if tap.vnet_hdr {
            tap.set_vnet_hdr_size()?;
        }
        Ok(tap)
    }

    fn set_vnet_hdr_size(&self) -> Result<(), NetError> {
        let size = super::NET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads an int, which `size` is.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) } < 0 {
            return Err(NetError::TapSetup {
                name: self.name.clone(),
                what: "TUNSETVNETHDRSZ",
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether frames carry a virtio-net header (and so offloads are possible).
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// Sets the offloads the reader accepts (`offload::*`).
    pub fn set_offload(&self, flags: u32) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes an unsigned long by value.
        if unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(flags),
            )
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Which of checksum, TSO4+TSO6 the TAP takes: the largest of {CSUM|TSO4|TSO6, CSUM,
    /// none} that `TUNSETOFFLOAD` accepts. Leaves the offloads off (no driver has asked yet).
    pub fn probe_offloads(&self) -> u32 {
        if !self.vnet_hdr {
            return 0;
        }
        let all = offload::CSUM | offload::TSO4 | offload::TSO6;
        let found = [all, offload::CSUM]
            .into_iter()
            .find(|f| self.set_offload(*f).is_ok())
            .unwrap_or(0);
        let _ = self.set_offload(0);
        found
    }

    /// Reads one frame into `iov`.
    pub fn readv(&self, iov: &[libc::iovec]) -> io::Result<usize> {
        let n = libc::c_int::try_from(iov.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the caller's iovecs point at writable memory it owns for the call.
        let r = unsafe { libc::readv(self.file.as_raw_fd(), iov.as_ptr(), n) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// Writes one frame gathered from `iov`.
    pub fn writev(&self, iov: &[libc::iovec]) -> io::Result<usize> {
        let n = libc::c_int::try_from(iov.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the caller's iovecs point at readable memory it owns for the call.
        let r = unsafe { libc::writev(self.file.as_raw_fd(), iov.as_ptr(), n) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }
}

/// Checks `name` (the rules of [`super::check_host_dev_name`]) and that an interface of
/// that name exists in the caller's network namespace, without opening anything.
pub fn check_exists(name: &str) -> Result<(), NetError> {
    super::check_host_dev_name(name)?;
    let cname = std::ffi::CString::new(name).map_err(|_| NetError::HostDevNameNul(name.into()))?;
    // SAFETY: a valid NUL-terminated string.
    if unsafe { libc::if_nametoindex(cname.as_ptr()) } == 0 {
        return Err(NetError::TapNotFound(name.into()));
    }
    Ok(())
}

/// Takes a copy (close-on-exec) of descriptor `fd` of this process after checking it is a
/// TAP as [`Tap::from_fd`] wants it; the original stays its owner's.
pub fn dup_tap_fd(fd: RawFd) -> Result<OwnedFd, NetError> {
    if fd < 0 {
        return Err(NetError::TapFdNotATap {
            fd,
            source: io::Error::from_raw_os_error(libc::EBADF),
        });
    }
    // SAFETY: F_DUPFD_CLOEXEC on a number; a closed one fails with EBADF.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(NetError::TapFdNotATap {
            fd,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: a fresh descriptor we own.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    let mut req = IfReq::new("");
    // SAFETY: TUNGETIFF writes an ifreq, which `req` is.
    if unsafe { libc::ioctl(owned.as_raw_fd(), libc::TUNGETIFF, &mut req) } < 0 {
        return Err(NetError::TapFdNotATap {
            fd,
            source: io::Error::last_os_error(),
        });
    }
    let flags = i32::from(req.flags);
    if flags & libc::IFF_TAP == 0 || flags & libc::IFF_NO_PI == 0 {
        return Err(NetError::TapFdFlags { fd, flags });
    }
    Ok(owned)
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on an fd we hold.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Test helpers: a persistent TAP made in the calling thread's network namespace, up, and
/// raw packet sockets on it.
#[cfg(any(test, feature = "test-utils"))]
pub mod testing {
    use std::os::fd::FromRawFd;

    use super::*;

    /// Moves the calling thread into a new network namespace (per-thread: the rest of the
    /// process keeps its own), with IPv6 off so that the kernel sends nothing of its own
    /// (router solicitations, MLD) out of the interfaces made there. Panics saying why when
    /// that is impossible.
    pub fn enter_new_netns() {
        // SAFETY: unshare with a flag; affects only this thread's namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "unshare(CLONE_NEWNET) failed: {} (these tests need root / CAP_SYS_ADMIN)",
                io::Error::last_os_error()
            );
        }
        // /proc/sys/net is the opening thread's namespace's.
        for conf in ["all", "default"] {
            let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
            if std::path::Path::new(&path).exists() {
                std::fs::write(&path, "1").unwrap_or_else(|e| panic!("{path}: {e}"));
            }
        }
    }

    /// Creates a persistent TAP `name` (with `extra_flags` such as `IFF_VNET_HDR` not
    /// needed: attach flags are per open) in this thread's namespace and sets it up.
    pub fn create_tap(name: &str) {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(TUN_PATH)
            .unwrap_or_else(|e| panic!("cannot open {TUN_PATH}: {e}"));
        let mut req = IfReq::new(name);
        req.flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: ifreq for TUNSETIFF; TUNSETPERSIST takes an int by value.
        unsafe {
            assert!(
                libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) == 0,
                "TUNSETIFF {name}: {}",
                io::Error::last_os_error()
            );
            assert!(
                libc::ioctl(file.as_raw_fd(), libc::TUNSETPERSIST, 1 as libc::c_ulong) == 0,
                "TUNSETPERSIST: {}",
                io::Error::last_os_error()
            );
        }
        set_up(name);
    }

    /// Sets interface `name` up.
    pub fn set_up(name: &str) {
        // SAFETY: a socket for the SIOC[GS]IFFLAGS ioctls, closed by OwnedFd.
        let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        assert!(sock >= 0, "socket: {}", io::Error::last_os_error());
        // SAFETY: a fresh fd we own.
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        let mut req = IfReq::new(name);
        // SAFETY: ifreq in and out.
        unsafe {
            assert!(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) == 0);
            req.flags |= libc::IFF_UP as libc::c_short;
            assert!(
                libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) == 0,
                "SIOCSIFFLAGS {name}: {}",
                io::Error::last_os_error()
            );
        }
    }

    /// A raw `AF_PACKET` socket bound to `name`: what it sends goes out of the interface
    /// (so the TAP's reader, the device, gets it); what it receives includes frames the
    /// device wrote into the TAP. With `vnet_hdr`, every frame carries a 10-byte
    /// `virtio_net_hdr` (`PACKET_VNET_HDR`), so GSO frames can be sent whole.
    pub fn packet_socket(name: &str, vnet_hdr: bool) -> OwnedFd {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2); the fd is owned right after.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let cname = std::ffi::CString::new(name).unwrap();
        // SAFETY: a valid C string.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        assert!(index != 0, "no interface {name}");
        if vnet_hdr {
            let one: libc::c_int = 1;
            // SAFETY: an int option.
            let r = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_VNET_HDR,
                    (&raw const one).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert!(r == 0, "PACKET_VNET_HDR: {}", io::Error::last_os_error());
        }
        // SAFETY: zeroed sockaddr_ll, then filled.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = index as i32;
        // SAFETY: a sockaddr_ll of its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert!(r == 0, "bind AF_PACKET: {}", io::Error::last_os_error());
        fd
    }
}
