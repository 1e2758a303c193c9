//! Device → guest interrupts: the interrupt status bits plus the eventfd behind the irqfd.

use std::sync::atomic::{AtomicU32, Ordering};

use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::VirtioDeviceError;

/// Why the device interrupts the guest; each kind is one bit of `InterruptStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptKind {
    /// The device used buffers in a queue.
    UsedRing,
    /// The device configuration (or device status, e.g. `DEVICE_NEEDS_RESET`) changed.
    Config,
}

impl InterruptKind {
    /// The bit this kind sets in `InterruptStatus`.
    pub const fn status_bit(self) -> u32 {
        match self {
            InterruptKind::UsedRing => virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_VRING,
            InterruptKind::Config => virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_CONFIG,
        }
    }
}

/// The interrupt line of one virtio device.
///
/// The VMM registers [`VirtioInterrupt::irq_evt`] with KVM as an irqfd for the device's GSI.
/// The transport reads [`VirtioInterrupt::status`] for `InterruptStatus` and calls
/// [`VirtioInterrupt::ack`] for `InterruptACK`.
#[derive(Debug)]
pub struct VirtioInterrupt {
    status: AtomicU32,
    irq_evt: EventFd,
}

impl VirtioInterrupt {
    /// Creates the interrupt with a fresh non-blocking eventfd.
    pub fn new() -> Result<Self, VirtioDeviceError> {
        Ok(Self {
            status: AtomicU32::new(0),
            irq_evt: EventFd::new(EFD_NONBLOCK).map_err(VirtioDeviceError::EventFd)?,
        })
    }

    /// Sets the status bit for `kind`, then signals the eventfd (spec order: the driver's
    /// handler must see the bit when the interrupt arrives).
    pub fn trigger(&self, kind: InterruptKind) -> Result<(), VirtioDeviceError> {
        self.status.fetch_or(kind.status_bit(), Ordering::SeqCst);
        self.irq_evt.write(1).map_err(VirtioDeviceError::Interrupt)
    }

    /// Current `InterruptStatus` bits.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// Clears the given `InterruptStatus` bits (`InterruptACK`).
    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Clears every status bit (device reset).
    pub fn clear(&self) {
        self.status.store(0, Ordering::SeqCst);
    }

    /// The eventfd to register as an irqfd.
    pub fn irq_evt(&self) -> &EventFd {
        &self.irq_evt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_sets_bit_then_signals() {
        let irq = VirtioInterrupt::new().unwrap();
        assert!(irq.irq_evt().read().is_err(), "nothing signalled yet");
        irq.trigger(InterruptKind::UsedRing).unwrap();
        assert_eq!(irq.status(), 1);
        assert_eq!(irq.irq_evt().read().unwrap(), 1);
        irq.trigger(InterruptKind::Config).unwrap();
        assert_eq!(irq.status(), 3);
        irq.ack(1);
        assert_eq!(irq.status(), 2);
        irq.clear();
        assert_eq!(irq.status(), 0);
    }
}
