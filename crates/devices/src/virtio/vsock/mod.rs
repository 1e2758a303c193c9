//! virtio-vsock (virtio 1.2, section 5.10, device id 19) with the host side on unix sockets,
//! in the style of Firecracker's "hybrid vsock".
//!
//! - [`VsockConfig`]: what the API asks for (`guest_cid`, `uds_path`), validated with errors
//!   that name the offending field.
//! - [`Vsock`]: the device. It implements [`crate::virtio::VirtioDevice`] for the transport
//!   and [`event_manager::MutEventSubscriber`] for the VMM's event loop, where everything
//!   happens: its three queue eventfds, the unix listener at `uds_path`, every host
//!   connection's socket and an internal eventfd are registered there for readiness. No
//!   thread per connection.
//! - [`VsockMetrics`]: counters shared with the VMM's metrics endpoint.
//!
//! # The host side
//!
//! - *Host-initiated*: a host process connects to `uds_path` and writes `CONNECT <port>\n`
//!   (`connect` in any case). The device sends the guest a `REQUEST` to `port` from a fresh
//!   host-side port (counted up from 2^30); on the guest's `RESPONSE` it answers the host
//!   `OK <host-side port>\n` and relays bytes both ways; on the guest's `RST` (nobody
//!   listening) it closes the host socket without a word.
//! - *Guest-initiated*: a guest `REQUEST` to host port `N` connects (non-blocking) to the unix
//!   socket `<uds_path>_<N>`; if nobody listens there the guest gets `RST`, otherwise
//!   `RESPONSE` and the bytes are relayed.
//! - Closing, either way, is the stream protocol's: end of file from the host becomes a
//!   `SHUTDOWN` (`SEND`; `SEND|RCV` once the host socket hangs up entirely); a guest
//!   `SHUTDOWN(SEND)` becomes `shutdown(SHUT_WR)` on the host socket once the buffered bytes
//!   are out; a guest `SHUTDOWN` of both directions is answered with `RST` (what Linux waits
//!   for); `RST` from the guest closes the host socket at once.
//!
//! # Flow control and bounds
//!
//! Credit is the spec's (`buf_alloc`, `fwd_cnt`). Towards the guest the device never sends
//! more than the guest's advertised credit; with data waiting and no credit it sends one
//! `CREDIT_REQUEST` and stops reading the host socket until a `CREDIT_UPDATE` (or any packet
//! carrying credit) arrives. Towards the host the device advertises
//! [`CONN_BUF_SIZE`] (64 KiB) per connection: it writes guest data straight from guest memory
//! to the host socket and keeps only what the socket would not take, never more than
//! `CONN_BUF_SIZE` bytes (a guest that sends past its credit gets `RST`). It tells the guest
//! about freed space with `CREDIT_UPDATE` every [`CREDIT_UPDATE_THRESHOLD`] bytes and on
//! request. Host data is read straight into the guest's RX buffers, only when one is there
//! and credit allows, so nothing of the host's is buffered.
//!
//! What the VMM can be made to hold: at most [`MAX_CONNECTIONS`] connections (a guest
//! `REQUEST` beyond that gets `RST`, a host connection beyond it is closed), each with at
//! most `CONN_BUF_SIZE + 32` buffered bytes; at most [`MAX_PENDING_HOST`] host sockets that
//! have not yet sent their `CONNECT` line (32 bytes each; more are closed at once, and each
//! is closed after [`CONNECT_LINE_TIMEOUT`]); a host-initiated `REQUEST` the guest does not
//! answer within [`REQUEST_TIMEOUT`] is withdrawn (`RST`, host socket closed); at most
//! [`RST_QUEUE_LEN`] queued `RST`s for packets of unknown connections (when it is full the
//! device stops taking TX packets until the guest gives RX buffers). Worst case a little
//! over 16 MiB of buffers.
//!
//! # Misbehaving guests
//!
//! A TX packet that cannot be parsed (header short or in a write-only buffer, `len` past
//! the descriptor or past 64 KiB, buffers outside guest memory) is dropped and counted; if
//! its header could be read, its connection is reset (`RST`). Unknown operations, a second
//! `REQUEST` on a connection, data past credit, packets for unknown connections and
//! non-stream types get `RST`; packets with the wrong CIDs are dropped. An RX buffer that
//! cannot hold a packet (read-only, header short) is returned unused. A malformed queue
//! (invalid available index, an indirect descriptor, which is not offered, a used ring
//! that cannot be written) stops the device: `DEVICE_NEEDS_RESET` and a configuration
//! interrupt, as for virtio-blk. Nothing a guest or a host peer sends can panic the device.
//!
//! # Packets: the `virtio-vsock` crate
//!
//! Packet headers and buffers are handled by rust-vmm's `virtio-vsock` crate
//! ([`virtio_vsock::packet::VsockPacket`]): it is the rust-vmm packet abstraction, it is
//! built on exactly our `vm-memory` and `virtio-queue` versions (0.18), it reads the header
//! once (no time-of-check/time-of-use on guest memory), checks descriptor permissions,
//! lengths and the `len` field against a maximum, supports both the one-descriptor and the
//! two-descriptor layouts Linux uses, and gives the data as a `VolatileSlice` that the
//! device reads into and writes from the host socket directly. The one check it does not do
//! (indirect descriptors we never offered) is done here before a chain is parsed.

mod config;
mod connection;
mod device;
mod event_handler;
mod metrics;
mod muxer;
mod packet;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_driver;

use std::path::PathBuf;
use std::time::Duration;

pub use config::VsockConfig;
pub use device::Vsock;
pub use metrics::{VsockMetrics, VsockMetricsSnapshot};

use super::VirtioDeviceError;

/// Number of queues: RX (device → guest), TX (guest → device), event.
pub const NUM_QUEUES: usize = 3;
/// Maximum size of each queue.
pub const QUEUE_SIZE: u16 = 256;
/// Index of the RX queue.
pub const RX_QUEUE: usize = 0;
/// Index of the TX queue.
pub const TX_QUEUE: usize = 1;
/// Index of the event queue.
pub const EVENT_QUEUE: usize = 2;

/// The host's CID (the device's side of every connection).
pub const HOST_CID: u64 = 2;
/// The lowest CID a guest may have (0, 1 and 2 are reserved, 2^32-1 is `VMADDR_CID_ANY`).
pub const MIN_GUEST_CID: u64 = 3;
/// The highest CID a guest may have: the field is 64 bits, but Linux (`struct sockaddr_vm`)
/// carries 32 and `u32::MAX` means "any".
pub const MAX_GUEST_CID: u64 = u32::MAX as u64 - 1;

/// Bytes the device buffers per connection towards the host (`buf_alloc` it advertises).
pub const CONN_BUF_SIZE: u32 = 64 * 1024;
/// Freed bytes after which the device tells the guest with a `CREDIT_UPDATE`.
pub const CREDIT_UPDATE_THRESHOLD: u32 = CONN_BUF_SIZE / 4;
/// Largest payload of one packet, either way (Linux's `VIRTIO_VSOCK_MAX_PKT_BUF_SIZE`).
pub const MAX_PKT_DATA: u32 = 64 * 1024;
/// Most connections at once (either side's).
pub const MAX_CONNECTIONS: usize = 256;
/// Most accepted host sockets waiting for their `CONNECT` line.
pub const MAX_PENDING_HOST: usize = 32;
/// Longest `CONNECT` line, newline included.
pub const CONNECT_LINE_MAX: usize = 32;
/// How long a host socket may take to send its whole `CONNECT` line before it is closed.
pub const CONNECT_LINE_TIMEOUT: Duration = if cfg!(test) {
    Duration::from_millis(500)
} else {
    Duration::from_secs(5)
};
/// How long the guest may take to answer a host-initiated `REQUEST` (with `RESPONSE` or
/// `RST`) before the device withdraws it (`RST` to the guest, the host socket closed).
pub const REQUEST_TIMEOUT: Duration = if cfg!(test) {
    Duration::from_millis(500)
} else {
    Duration::from_secs(5)
};
/// How often the device looks for expired deadlines while any is pending.
pub const TIMER_TICK: Duration = if cfg!(test) {
    Duration::from_millis(20)
} else {
    Duration::from_millis(250)
};
/// Most queued `RST`s for packets of unknown connections.
pub const RST_QUEUE_LEN: usize = 64;
/// First host-side port given to host-initiated connections (counted up to 2^31 - 1, then
/// round again).
pub const FIRST_LOCAL_PORT: u32 = 1 << 30;
/// Longest `uds_path` in bytes: `sun_path` holds 108 bytes with the terminating NUL. The
/// per-port sockets `<uds_path>_<port>` must fit too, or guest connections to that port
/// are refused.
pub const UDS_PATH_MAX: usize = 107;

/// Packet operations and flags (virtio 1.2, 5.10.6).
pub mod op {
    /// Connection request.
    pub const REQUEST: u16 = 1;
    /// Connection accepted.
    pub const RESPONSE: u16 = 2;
    /// Connection reset / refused.
    pub const RST: u16 = 3;
    /// One or both directions closed (see [`super::shutdown`]).
    pub const SHUTDOWN: u16 = 4;
    /// Data.
    pub const RW: u16 = 5;
    /// "Here is my credit."
    pub const CREDIT_UPDATE: u16 = 6;
    /// "Tell me your credit."
    pub const CREDIT_REQUEST: u16 = 7;
}

/// `SHUTDOWN` flags.
pub mod shutdown {
    /// The sender will receive no more data.
    pub const RCV: u32 = 1;
    /// The sender will send no more data.
    pub const SEND: u32 = 2;
}

/// `type` of a stream socket packet (the only type offered).
pub const TYPE_STREAM: u16 = 1;

/// Event queue event: the transport was reset; the guest drops every connection.
pub const EVENT_TRANSPORT_RESET: u32 = 0;

/// Errors of the vsock device's configuration and set-up. The configuration errors' messages
/// start with the field they are about.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    /// `guest_cid` is reserved or too large.
    #[error("guest_cid: {0} is not a guest CID (must be {MIN_GUEST_CID}..={MAX_GUEST_CID})")]
    GuestCidInvalid(u64),
    /// `uds_path` is empty.
    #[error("uds_path: must not be empty")]
    UdsPathEmpty,
    /// `uds_path` does not fit in `sun_path`.
    #[error("uds_path: {} is {len} bytes, at most {UDS_PATH_MAX} fit in a unix socket address", .path.display())]
    UdsPathTooLong {
        /// The path given.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// `uds_path` contains a NUL byte.
    #[error("uds_path: {} contains a NUL byte", .0.display())]
    UdsPathNul(PathBuf),
    /// The directory of `uds_path` does not exist (or is not a directory).
    #[error("uds_path: the directory of {} does not exist", .0.display())]
    UdsPathNoParent(PathBuf),
    /// Something other than a stale socket is at `uds_path`.
    #[error("uds_path: {} already exists and is not a unix socket", .0.display())]
    UdsPathNotSocket(PathBuf),
    /// A live socket (someone accepts on it) is at `uds_path`.
    #[error("uds_path: {} is in use by another listener", .0.display())]
    UdsPathInUse(PathBuf),
    /// `uds_path` could not be bound.
    #[error("uds_path: cannot listen on {}: {source}", .path.display())]
    Bind {
        /// The path given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The device's timer could not be made.
    #[error("vsock device timer: {0}")]
    Timer(#[source] std::io::Error),
    /// Eventfds or queues could not be set up.
    #[error("vsock device plumbing: {0}")]
    Virtio(#[from] VirtioDeviceError),
}
