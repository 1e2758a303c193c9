//! Legacy PC devices on port I/O: COM1 (8250 UART), the i8042 controller, the CMOS/RTC,
//! and the two vmctl ports (boot done, exit code). See `tests/guests/ABI.md` for the
//! ports.

pub mod cmos;
pub mod exit_ports;
pub mod i8042;
pub mod serial;

use vmm_sys_util::eventfd::EventFd;

/// COM1's ports and GSI.
pub const COM1_PORT: u64 = 0x3f8;
pub const COM1_LEN: u64 = 8;
pub const COM1_GSI: u32 = 4;
/// The i8042's data and command/status ports (as one 5-byte range 0x60..=0x64) and GSI.
pub const I8042_PORT: u64 = 0x60;
pub const I8042_LEN: u64 = 5;
pub const I8042_GSI: u32 = 1;
/// The CMOS RAM / RTC index and data ports. Its interrupt (ISA IRQ 8) is not raised:
/// no alarm, periodic or update interrupt is modelled.
pub const CMOS_PORT: u64 = 0x70;
pub const CMOS_LEN: u64 = 2;
/// Boot done (any write) and exit code (8- or 32-bit write), as one 8-byte range.
pub const VMCTL_PORTS_BASE: u64 = 0x600;
pub const VMCTL_PORTS_LEN: u64 = 8;

/// Answers a port read with one byte: `value` in the first byte, zeros in the rest (a
/// wider access to an 8-bit port).
pub fn read_byte(data: &mut [u8], value: u8) {
    data.fill(0);
    if let Some(b) = data.first_mut() {
        *b = value;
    }
}

/// Raises an interrupt line by writing an eventfd registered with KVM as an irqfd.
#[derive(Debug)]
pub struct IrqTrigger(pub EventFd);

impl vm_superio::Trigger for IrqTrigger {
    type E = std::io::Error;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.write(1)
    }
}

/// Why a legacy device could not be made.
#[derive(Debug, thiserror::Error)]
#[error("creating an eventfd for {device}: {source}")]
pub struct LegacyDeviceError {
    pub device: &'static str,
    pub source: std::io::Error,
}

/// A non-blocking eventfd, or an error naming the device it was for.
pub fn eventfd(device: &'static str) -> Result<EventFd, LegacyDeviceError> {
    EventFd::new(libc::EFD_NONBLOCK).map_err(|source| LegacyDeviceError { device, source })
}
