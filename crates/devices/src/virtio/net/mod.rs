//! virtio-net (virtio 1.2, section 5.1, device id 1) backed by a TAP device.
//!
//! - [`NetConfig`]: what the API asks for (`iface_id`, `guest_mac`), validated with errors
//!   that name the field; [`MacAddr`] parses and checks the MAC.
//! - [`Tap`]: the host end, attached by name to an existing TAP (never created here) or
//!   taken as an open descriptor; non-blocking.
//! - [`Net`]: the device, with an RX queue (TAP → guest) and a TX queue (guest → TAP), no
//!   control queue. It implements [`crate::virtio::VirtioDevice`] for the transport and
//!   [`event_manager::MutEventSubscriber`] for the VMM's event loop, where all its work is
//!   done: the TAP (edge-triggered, readable and writable) and both queue eventfds.
//! - [`NetMetrics`]: counters per direction, shared with the VMM's metrics endpoint.
//!
//! # Frames and offloads
//!
//! Every frame in a queue starts with the 12-byte `virtio_net_hdr_v1` (`VIRTIO_F_VERSION_1`
//! is required, so `num_buffers` is always there). With `IFF_VNET_HDR` the TAP's header is
//! set to the same 12 bytes, so frames move between the TAP and guest memory with one
//! `readv`/`writev` on the guest's own buffers, header included, no copy in between.
//!
//! Offloads are offered only when the TAP takes them: checksum (`CSUM`, `GUEST_CSUM`) and
//! TSO for IPv4 and IPv6 (`HOST_TSO4/6`, `GUEST_TSO4/6`), found by trying `TUNSETOFFLOAD` at
//! creation. What the driver accepts for its receive side is what the TAP is then told it
//! may hand over (`TUNSETOFFLOAD` at activation; off again at reset). A TAP without a vnet
//! header (a descriptor opened without `IFF_VNET_HDR`) gets plain frames and no offloads:
//! the device writes a zero header into RX buffers and skips the header on TX.
//! `MRG_RXBUF` is not offered: a driver that accepts `GUEST_TSO*` then posts buffers big
//! enough for a whole 64 KiB frame (Linux's "big packets"), so every frame fits one chain
//! and is read straight into it.
//!
//! # Back-pressure and bounds
//!
//! - RX with no buffer: the device stops reading the TAP (frames wait in the TAP's own
//!   queue, which the kernel bounds and counts) and resumes at the guest's next RX
//!   notification; [`NetMetricsSnapshot::rx_no_buffer`] counts the stalls.
//! - TX when the TAP would block (`EAGAIN`): the chain stays in the queue and the device
//!   resumes when the TAP is writable again; nothing is dropped.
//! - A frame too large for the RX buffer: the TAP copies what fits without a word, so the
//!   device reads with one spare byte past the buffer; a read that reaches it is a
//!   truncated frame, which the guest does not get. The kernel has dropped it,
//!   the buffer goes back to the queue for the next frame and the drop is counted
//!   (`rx_dropped`).
//!
//! # Misbehaving guests
//!
//! A TX chain with a device-writable buffer, a buffer outside guest memory, shorter than
//! the header or longer than [`MAX_FRAME_LEN`] plus the header, or that the TAP refuses
//! (e.g. a bad GSO header) is returned and counted in `tx_dropped`. An RX chain with a
//! read-only buffer, one outside guest memory or smaller than the header is returned
//! empty and counted in `rx_dropped`. A malformed queue (invalid available index, an
//! indirect descriptor, which is not offered, a chain that loops, an unwritable used
//! ring) stops the device: `DEVICE_NEEDS_RESET` and a configuration interrupt, as for the
//! other devices. Nothing a guest sends can panic the device.

mod config;
mod device;
mod event_handler;
mod metrics;
pub mod tap;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_driver;

pub use config::{MacAddr, NetConfig, check_host_dev_name, is_valid_iface_id};
pub use device::Net;
pub use metrics::{NetMetrics, NetMetricsSnapshot};
pub use tap::Tap;

use super::VirtioDeviceError;

/// Number of queues: RX (device → guest), TX (guest → device).
pub const NUM_QUEUES: usize = 2;
/// Maximum size of each queue.
pub const QUEUE_SIZE: u16 = 256;
/// Index of the RX queue.
pub const RX_QUEUE: usize = 0;
/// Index of the TX queue.
pub const TX_QUEUE: usize = 1;
/// Bytes of `virtio_net_hdr_v1` before every frame.
pub const NET_HDR_LEN: usize = 12;
/// Largest frame after the header: a 64 KiB GSO frame plus its Ethernet header, with
/// room for a VLAN tag (Linux's own limit for a TAP write is 65535 + headers).
pub const MAX_FRAME_LEN: usize = 65_562;
/// Longest interface id (the drive id rule, shared by every API id).
pub const IFACE_ID_MAX: usize = super::block::DRIVE_ID_LEN;

/// Errors of the net device's configuration and set-up. The configuration errors'
/// messages start with the field they are about.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `iface_id` breaks the id rule.
    #[error("iface_id: must be 1 to {IFACE_ID_MAX} characters of [A-Za-z0-9_-] (got {0:?})")]
    IfaceId(String),
    /// `guest_mac` does not parse.
    #[error("guest_mac: {0:?} is not a MAC address (six hex pairs separated by ':')")]
    MacSyntax(String),
    /// `guest_mac` is a multicast (or broadcast) address.
    #[error(
        "guest_mac: {0} is multicast (the low bit of the first octet is set); a NIC needs a unicast address"
    )]
    MacMulticast(String),
    /// `guest_mac` is all zeros.
    #[error("guest_mac: 00:00:00:00:00:00 is not a usable address")]
    MacZero,
    /// Neither a TAP name nor a descriptor, or both.
    #[error("host_dev_name: give exactly one of host_dev_name and tap_fd")]
    NoBackend,
    /// `host_dev_name` is empty.
    #[error("host_dev_name: must not be empty")]
    HostDevNameEmpty,
    /// `host_dev_name` does not fit an interface name.
    #[error("host_dev_name: {name:?} is {len} bytes, an interface name has at most {max}", max = tap::IFNAME_MAX)]
    HostDevNameTooLong {
        /// The name given.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// `host_dev_name` contains a NUL byte.
    #[error("host_dev_name: {0:?} contains a NUL byte")]
    HostDevNameNul(String),
    /// `host_dev_name` contains a character no interface name may have.
    #[error("host_dev_name: {0:?} contains '/', ':' or whitespace, which no interface name may")]
    HostDevNameChars(String),
    /// No interface of that name exists (the VMM attaches to TAPs, it does not make them).
    #[error("host_dev_name: no TAP device {0:?} exists (create it first)")]
    TapNotFound(String),
    /// The interface exists but is not a (single-queue) TAP.
    #[error("host_dev_name: {0:?} is not a single-queue TAP device")]
    NotATap(String),
    /// The TAP could not be attached.
    #[error("host_dev_name: cannot attach to TAP {name:?}: {source}")]
    TapOpen {
        /// The name given.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The descriptor given is not a TAP.
    #[error("tap_fd: descriptor {fd} is not an open TAP device: {source}")]
    TapFdNotATap {
        /// The descriptor.
        fd: i32,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The descriptor is a TUN, or carries packet information (`IFF_NO_PI` clear).
    #[error("tap_fd: descriptor {fd} has flags {flags:#x}; a TAP with IFF_NO_PI is needed")]
    TapFdFlags {
        /// The descriptor.
        fd: i32,
        /// Its TUN flags.
        flags: i32,
    },
    /// A TAP ioctl the device needs failed.
    #[error("TAP {name:?}: {what} failed: {source}")]
    TapSetup {
        /// The interface.
        name: String,
        /// The ioctl.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Eventfds or queues could not be set up.
    #[error("net device plumbing: {0}")]
    Virtio(#[from] VirtioDeviceError),
}
