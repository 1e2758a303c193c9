//! Virtio devices and their transport.
//!
//! A device (e.g. [`block::Block`]) implements [`VirtioDevice`]: it knows its type, its
//! features, its configuration space and what to do with its queues once the driver is
//! ready. It does not know how the guest reaches it. [`mmio::MmioTransport`] puts a device
//! behind the virtio-mmio register layout (version 2) and runs the device-status state
//! machine; the VMM maps the transport on its MMIO bus.
//!
//! Notifications travel over eventfds so that device work happens off the vCPU thread:
//! - guest → device: one [`EventFd`] per queue, written by KVM (ioeventfd on `QueueNotify`)
//!   or by the transport itself when a `QueueNotify` write reaches it;
//! - device → guest: [`VirtioInterrupt`], which sets a bit in the interrupt status register
//!   and then writes its [`EventFd`] (registered by the VMM as an irqfd for the device's GSI).

pub mod block;
mod interrupt;
pub mod mmio;
pub mod net;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
pub mod vsock;

use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

pub use interrupt::{InterruptKind, VirtioInterrupt};

use crate::GuestMemoryMmap;

/// Device status bits (virtio 1.2, section 2.1), as read and written through `Status`.
pub mod status {
    /// The guest has found the device.
    pub const ACKNOWLEDGE: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_ACKNOWLEDGE;
    /// The guest knows how to drive the device.
    pub const DRIVER: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_DRIVER;
    /// The driver is set up and ready to drive the device.
    pub const DRIVER_OK: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_DRIVER_OK;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_FEATURES_OK;
    /// The device hit an error it cannot recover from; the driver must reset it.
    pub const DEVICE_NEEDS_RESET: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_NEEDS_RESET;
    /// The guest gave up on the device.
    pub const FAILED: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_FAILED;
}

/// Feature bits common to every device.
pub mod features {
    /// The device follows virtio 1.0 or later; required by the modern MMIO transport.
    pub const VIRTIO_F_VERSION_1: u32 = virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
    /// `used_event`/`avail_event` notification suppression.
    pub const VIRTIO_RING_F_EVENT_IDX: u32 = virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
}

/// Virtio device types (virtio 1.2, section 5).
pub mod device_type {
    /// Block device.
    pub const BLOCK: u32 = virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
    /// Network device.
    pub const NET: u32 = virtio_bindings::virtio_ids::VIRTIO_ID_NET;
    /// Socket device (vsock).
    pub const VSOCK: u32 = virtio_bindings::virtio_ids::VIRTIO_ID_VSOCK;
}

/// Errors of the device/transport plumbing shared by every virtio device.
#[derive(Debug, thiserror::Error)]
pub enum VirtioDeviceError {
    /// An eventfd could not be created.
    #[error("cannot create eventfd: {0}")]
    EventFd(#[source] std::io::Error),
    /// Signalling the guest failed.
    #[error("cannot signal the guest interrupt: {0}")]
    Interrupt(#[source] std::io::Error),
    /// The driver handed over a different number of queues than the device has.
    #[error("device expects {expected} queues, the driver set up {actual}")]
    QueueCount {
        /// Queues the device has.
        expected: usize,
        /// Queues handed over.
        actual: usize,
    },
    /// A queue is not ready or does not fit in guest memory.
    #[error("queue {0} is not ready or does not fit in guest memory")]
    InvalidQueue(usize),
    /// The driver put a queue's available ring at guest address 0, which virtio-queue takes
    /// for "never configured" and refuses to serve.
    #[error("queue {0}: an available ring at guest address 0 is not supported")]
    AvailRingAtZero(usize),
    /// A queue's maximum size is not a power of two in 1..=32768.
    #[error("invalid queue maximum size {0}")]
    QueueMaxSize(u16),
    /// `activate` was called on a device that is already active.
    #[error("device is already activated")]
    AlreadyActivated,
}

/// A virtio device as seen by a transport.
///
/// The transport owns the register state (feature selectors, queue configuration, status);
/// the device owns what the driver negotiates with it (acknowledged features), its
/// configuration space, its queue notification eventfds and its interrupt.
pub trait VirtioDevice: Send {
    /// The virtio device type (`device_type::BLOCK`, ...).
    fn device_type(&self) -> u32;

    /// Feature bits the device offers.
    fn avail_features(&self) -> u64;

    /// Feature bits the driver accepted (set by the transport at `FEATURES_OK`).
    fn acked_features(&self) -> u64;

    /// Records the feature bits the driver accepted. The transport only calls this with a
    /// subset of [`VirtioDevice::avail_features`] that includes `VIRTIO_F_VERSION_1`.
    fn set_acked_features(&mut self, features: u64);

    /// Maximum size of each queue; its length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];

    /// One notification eventfd per queue, in queue order.
    fn queue_events(&self) -> &[EventFd];

    /// The interrupt the device raises towards the guest.
    fn interrupt(&self) -> &std::sync::Arc<VirtioInterrupt>;

    /// Reads the device configuration space at `offset`; bytes past its end read as zero.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// Writes the device configuration space at `offset`. Read-only fields are ignored.
    fn write_config(&mut self, offset: u64, data: &[u8]);

    /// Starts the device with validated, ready queues (one per entry of
    /// [`VirtioDevice::queue_max_sizes`]).
    fn activate(&mut self, mem: GuestMemoryMmap, queues: Vec<Queue>) -> Result<(), VirtioDeviceError>;

    /// Whether [`VirtioDevice::activate`] succeeded and no reset happened since.
    fn is_activated(&self) -> bool;

    /// Stops the device and forgets negotiated state; called when the driver writes 0 to
    /// `Status`. The device must not touch guest memory after this returns.
    fn reset(&mut self);

    /// Whether the device hit an unrecoverable error (malformed queue) and wants the driver
    /// to reset it; the transport reports it as `DEVICE_NEEDS_RESET` in `Status`.
    fn needs_reset(&self) -> bool;
}

/// Whether the driver wants an interrupt after the device used buffers of `queue`: with
/// `EVENT_IDX` the queue decides (`used_event`); otherwise the driver's
/// `VIRTQ_AVAIL_F_NO_INTERRUPT` flag does.
pub(crate) fn queue_wants_interrupt(mem: &GuestMemoryMmap, queue: &mut Queue) -> Result<bool, String> {
    use virtio_queue::QueueT;
    use vm_memory::{Bytes, GuestAddress};
    if queue.event_idx_enabled() {
        return queue
            .needs_notification(mem)
            .map_err(|e| format!("used_event: {e}"));
    }
    // Order the used-ring updates before reading the driver's flags.
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    let flags: u16 = mem
        .read_obj(GuestAddress(queue.avail_ring()))
        .map_err(|e| format!("available ring flags: {e}"))?;
    let no_interrupt = virtio_bindings::virtio_ring::VRING_AVAIL_F_NO_INTERRUPT as u16;
    Ok(u16::from_le(flags) & no_interrupt == 0)
}

/// Why [`direct_chain`] refused a descriptor chain (its head index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadChain {
    /// An invalid index, a loop, a chain too long or unreadable.
    Malformed(u16),
    /// An indirect table, when `VIRTIO_F_INDIRECT_DESC` was not offered.
    Indirect(u16),
}

/// The descriptors of a chain, none of them indirect. `DescriptorChain` stops silently on
/// an invalid index, an unreadable descriptor, or after `queue size` descriptors (loops);
/// in each case the last descriptor it yielded still says "next", which is how a
/// malformed chain is told from a complete one.
///
/// `DescriptorChain` also follows `VIRTQ_DESC_F_INDIRECT` whatever was negotiated, and
/// then yields the indirect table's entries in place of the table entry that pointed to
/// them. No device here offers indirect descriptors, so each descriptor the chain yields
/// is checked against the queue's own table entry it should come from: if that entry is
/// indirect, the driver used a feature it was not given and the chain is refused.
pub(crate) fn direct_chain(
    mem: &GuestMemoryMmap,
    chain: virtio_queue::DescriptorChain<&GuestMemoryMmap>,
    desc_table: vm_memory::GuestAddress,
) -> Result<Vec<virtio_queue::desc::split::Descriptor>, BadChain> {
    use vm_memory::{Bytes, GuestAddress};
    let head = chain.head_index();
    let indirect = virtio_bindings::virtio_ring::VRING_DESC_F_INDIRECT as u16;
    let mut descs = Vec::new();
    let mut more = true;
    let mut index = head;
    for desc in chain {
        // The chain read this entry a moment ago, so it is inside guest memory; a read
        // failure can only mean the table moved, which is malformed too.
        let flags_at = desc_table
            .0
            .checked_add(u64::from(index) * 16 + 12)
            .ok_or(BadChain::Malformed(head))?;
        let flags = mem
            .read_obj::<u16>(GuestAddress(flags_at))
            .map_err(|_| BadChain::Malformed(head))?;
        if u16::from_le(flags) & indirect != 0 {
            return Err(BadChain::Indirect(head));
        }
        more = desc.has_next();
        index = desc.next();
        descs.push(desc);
    }
    if descs.is_empty() || more {
        return Err(BadChain::Malformed(head));
    }
    Ok(descs)
}

/// Returns bit `bit` of a 64-bit feature word.
pub(crate) const fn feature(bit: u32) -> u64 {
    1u64 << bit
}

/// Locks a mutex, recovering the data if a previous holder panicked: a device must keep
/// answering the guest (and the VMM keep shutting down cleanly) rather than cascade panics.
pub(crate) fn lock<T: ?Sized>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Copies `config[offset..]` into `data`, zero-filling whatever lies past the end of `config`.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    if let Some(src) = config.get(start..) {
        let n = src.len().min(data.len());
        data[..n].copy_from_slice(&src[..n]);
    }
}
