//! Places devices on the buses and wires them to KVM: port I/O for the legacy devices,
//! MMIO for virtio-mmio transports, irqfds for interrupts, ioeventfds for queue
//! notifications, and event-loop subscribers for device work.

pub mod bus;
pub mod legacy;
pub mod virtio;

use std::sync::Arc;

use bus::Bus;

use crate::event_loop::Subscriber;

/// Why a device could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum DeviceManagerError {
    #[error(transparent)]
    Legacy(#[from] crate::devices::legacy::LegacyDeviceError),
    #[error("registering {device} with KVM: {source}")]
    Kvm {
        device: String,
        source: crate::vstate::vm::VmError,
    },
    #[error("placing {device} on the bus: {source}")]
    Bus { device: String, source: bus::BusError },
}

/// Everything the builder needs from the attached devices.
pub struct AttachedDevices {
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub legacy: legacy::LegacyDevices,
    /// Event-loop subscribers of all devices.
    pub subscribers: Vec<Subscriber>,
    /// Words the VMM adds to the kernel command line (virtio_mmio.device=...).
    pub cmdline: Vec<String>,
}
