//! Attaches the legacy devices: COM1, the i8042, the CMOS/RTC and the vmctl ports.

use std::sync::{Arc, Mutex};

use super::DeviceManagerError;
use super::bus::{Bus, BusDevice};
use crate::arch::x86_64::layout::ram_ranges;
use crate::devices::legacy::cmos::{Cmos, HostClock};
use crate::devices::legacy::exit_ports::VmctlPorts;
use crate::devices::legacy::i8042::I8042;
use crate::devices::legacy::serial::{ConsoleBuffer, InputQueue, SerialDevice, SerialInput};
use crate::devices::legacy::{
    CMOS_LEN, CMOS_PORT, COM1_GSI, COM1_LEN, COM1_PORT, I8042_GSI, I8042_LEN, I8042_PORT, IrqTrigger,
    VMCTL_PORTS_BASE, VMCTL_PORTS_LEN, eventfd,
};
use crate::event_loop::Subscriber;
use crate::metrics::VmmMetrics;
use crate::vstate::exit::ExitLatch;
use crate::vstate::vm::Vm;

/// The legacy devices the controller talks to after Start.
pub struct LegacyDevices {
    pub i8042: Arc<Mutex<I8042>>,
}

fn irq(vm: &Vm, device: &'static str, gsi: u32) -> Result<IrqTrigger, DeviceManagerError> {
    let evt = eventfd(device)?;
    vm.register_irqfd(&evt, gsi)
        .map_err(|source| DeviceManagerError::Kvm {
            device: device.into(),
            source,
        })?;
    Ok(IrqTrigger(evt))
}

fn place(
    bus: &mut Bus,
    device: &str,
    base: u64,
    len: u64,
    dev: Arc<Mutex<dyn BusDevice>>,
) -> Result<(), DeviceManagerError> {
    bus.insert(base, len, dev)
        .map_err(|source| DeviceManagerError::Bus {
            device: device.into(),
            source,
        })
}

/// Creates the legacy devices on `pio`; returns them and the serial input subscriber.
pub fn attach(
    vm: &Vm,
    pio: &mut Bus,
    mem_bytes: u64,
    latch: &Arc<ExitLatch>,
    metrics: &Arc<VmmMetrics>,
    console: &Arc<ConsoleBuffer>,
    input: &Arc<InputQueue>,
) -> Result<(LegacyDevices, Subscriber), DeviceManagerError> {
    let rx_space = eventfd("serial")?;
    let rx_space2 = rx_space
        .try_clone()
        .map_err(|source| crate::devices::legacy::LegacyDeviceError {
            device: "serial",
            source,
        })?;
    let serial = Arc::new(Mutex::new(SerialDevice::new(
        irq(vm, "serial", COM1_GSI)?,
        rx_space,
        console.clone(),
        metrics.clone(),
    )));
    place(pio, "serial", COM1_PORT, COM1_LEN, serial.clone())?;
    let serial_input: Subscriber = Arc::new(Mutex::new(SerialInput::new(serial, input.clone(), rx_space2)));

    let i8042 = Arc::new(Mutex::new(I8042::new(
        irq(vm, "i8042", I8042_GSI)?,
        latch.clone(),
    )));
    place(pio, "i8042", I8042_PORT, I8042_LEN, i8042.clone())?;

    let (below_4g, above_4g) = Cmos::ram_split(&ram_ranges(mem_bytes));
    let cmos = Arc::new(Mutex::new(Cmos::new(below_4g, above_4g, Box::new(HostClock))));
    place(pio, "cmos", CMOS_PORT, CMOS_LEN, cmos)?;

    let ports = Arc::new(Mutex::new(VmctlPorts::new(metrics.clone(), latch.clone())));
    place(pio, "vmctl ports", VMCTL_PORTS_BASE, VMCTL_PORTS_LEN, ports)?;

    Ok((LegacyDevices { i8042 }, serial_input))
}
