//! virtio-blk backed by a host file or block device (virtio 1.2, section 5.2).
//!
//! - [`BlockConfig`]: what the API asks for (drive id, path, read-only), validated with
//!   errors that name the offending field.
//! - [`Block`]: the device. It implements [`crate::virtio::VirtioDevice`] for the transport
//!   and [`event_manager::MutEventSubscriber`] for the VMM's event loop, where all I/O
//!   happens: on a queue notification it drains the available ring, moves data with
//!   `pread`/`pwrite` straight between the file and guest memory, writes each status byte,
//!   fills the used ring and interrupts the guest.
//! - [`BlockMetrics`]: counters shared with the VMM's metrics endpoint.
//!
//! Requests: `IN`, `OUT`, `FLUSH`, `GET_ID`; anything else is answered `UNSUPP`. Bad
//! requests (short header, data outside guest memory, sectors past the end, writes to a
//! read-only drive, ...) are answered `IOERR` and counted in `errors`; a malformed queue
//! (invalid descriptor index, looping or over-long chain, bogus available index) makes the
//! device stop and ask for a reset (`DEVICE_NEEDS_RESET` and a configuration interrupt).

mod config;
mod device;
mod event_handler;
mod metrics;
mod request;

use std::path::PathBuf;

pub use config::BlockConfig;
pub use device::Block;
pub use metrics::{BlockMetrics, BlockMetricsSnapshot};
pub use request::RequestError;

use super::VirtioDeviceError;

/// Bytes per sector: virtio-blk addresses the disk in 512-byte sectors whatever the host's.
pub const SECTOR_SIZE: u64 = 512;
/// log2 of [`SECTOR_SIZE`].
pub const SECTOR_SHIFT: u32 = 9;
/// Number of queues (one request queue; no multi-queue).
pub const NUM_QUEUES: usize = 1;
/// Maximum size of the request queue.
pub const QUEUE_SIZE: u16 = 256;
/// Data segments per request we advertise (`seg_max`): the queue minus header and status.
pub const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// Length of the id returned by `GET_ID` (and the longest drive id accepted).
pub const DRIVE_ID_LEN: usize = virtio_bindings::virtio_blk::VIRTIO_BLK_ID_BYTES as usize;
/// What a drive id may hold besides ASCII letters and digits (`-` last: in a regular
/// expression's character class it is then itself, not a range).
pub const DRIVE_ID_EXTRA_CHARS: &str = "_-";

/// The one drive id rule (the VMM's API applies it, and publishes it in its limits): 1 to
/// [`DRIVE_ID_LEN`] bytes (the `GET_ID` serial) of ASCII letters, digits and
/// [`DRIVE_ID_EXTRA_CHARS`].
pub fn is_valid_drive_id(id: &str) -> bool {
    (1..=DRIVE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || DRIVE_ID_EXTRA_CHARS.as_bytes().contains(&b))
}

/// Request types (`type` field of the request header).
pub mod request_type {
    /// Read sectors into the driver's buffers.
    pub const IN: u32 = virtio_bindings::virtio_blk::VIRTIO_BLK_T_IN;
    /// Write sectors from the driver's buffers.
    pub const OUT: u32 = virtio_bindings::virtio_blk::VIRTIO_BLK_T_OUT;
    /// Make previous writes durable.
    pub const FLUSH: u32 = virtio_bindings::virtio_blk::VIRTIO_BLK_T_FLUSH;
    /// Return the 20-byte device id.
    pub const GET_ID: u32 = virtio_bindings::virtio_blk::VIRTIO_BLK_T_GET_ID;
}

/// Request completion status (the last byte of every request).
pub mod request_status {
    /// Success.
    pub const OK: u8 = virtio_bindings::virtio_blk::VIRTIO_BLK_S_OK as u8;
    /// The request failed (bad request, I/O error, read-only drive, out of range).
    pub const IOERR: u8 = virtio_bindings::virtio_blk::VIRTIO_BLK_S_IOERR as u8;
    /// The request type is not supported.
    pub const UNSUPP: u8 = virtio_bindings::virtio_blk::VIRTIO_BLK_S_UNSUPP as u8;
}

/// Block-specific feature bits we offer.
pub mod features {
    /// `seg_max` in the config space is valid.
    pub const VIRTIO_BLK_F_SEG_MAX: u32 = virtio_bindings::virtio_blk::VIRTIO_BLK_F_SEG_MAX;
    /// The device is read-only.
    pub const VIRTIO_BLK_F_RO: u32 = virtio_bindings::virtio_blk::VIRTIO_BLK_F_RO;
    /// The device handles `FLUSH`.
    pub const VIRTIO_BLK_F_FLUSH: u32 = virtio_bindings::virtio_blk::VIRTIO_BLK_F_FLUSH;
}

/// Why a block device could not be created. Messages start with the configuration field
/// they are about.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// `drive_id` breaks the one rule ([`is_valid_drive_id`]).
    #[error(
        "drive_id: must be 1 to {DRIVE_ID_LEN} characters of A-Z a-z 0-9 {DRIVE_ID_EXTRA_CHARS} (got {0:?})"
    )]
    DriveIdInvalid(String),
    /// `path` does not exist.
    #[error("path: {} does not exist", .0.display())]
    PathNotFound(PathBuf),
    /// `path` is neither a regular file nor a block device.
    #[error("path: {} is not a regular file or block device", .0.display())]
    PathNotFileOrBlockDevice(PathBuf),
    /// `path` could not be inspected.
    #[error("path: cannot stat {}: {source}", .path.display())]
    Stat {
        /// The path given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `path` could not be opened with the requested access.
    #[error("path: cannot open {} {}: {source}", .path.display(), if *.read_only { "read-only" } else { "read-write" })]
    Open {
        /// The path given.
        path: PathBuf,
        /// Whether read-only access was asked for.
        read_only: bool,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The size of `path` could not be determined.
    #[error("path: cannot determine the size of {}: {source}", .path.display())]
    Size {
        /// The path given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Eventfds or queues could not be set up.
    #[error("block device plumbing: {0}")]
    Virtio(#[from] VirtioDeviceError),
}
