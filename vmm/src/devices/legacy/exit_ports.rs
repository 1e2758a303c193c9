//! The vmctl ports: a write to 0x600 records "boot done" (boot-time metric); a write to
//! 0x604 ends the VM with the written value as the guest's exit code.

use std::sync::Arc;

use crate::device_manager::bus::BusDevice;
use crate::metrics::VmmMetrics;
use crate::vstate::exit::{ExitLatch, VmExit};

const BOOT_DONE_OFFSET: u64 = 0;
const EXIT_CODE_OFFSET: u64 = 4;

pub struct VmctlPorts {
    metrics: Arc<VmmMetrics>,
    latch: Arc<ExitLatch>,
}

impl VmctlPorts {
    pub fn new(metrics: Arc<VmmMetrics>, latch: Arc<ExitLatch>) -> Self {
        Self { metrics, latch }
    }
}

impl BusDevice for VmctlPorts {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match offset {
            BOOT_DONE_OFFSET => self.metrics.mark_boot_done(),
            EXIT_CODE_OFFSET => {
                let mut value = [0u8; 4];
                let n = data.len().min(4);
                value[..n].copy_from_slice(&data[..n]);
                self.latch.trigger(VmExit::guest_exit(i32::from_le_bytes(value)));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vstate::exit::ExitReason;

    #[test]
    fn exit_port_ends_the_vm_with_the_code_and_boot_done_is_recorded() {
        let metrics = Arc::new(VmmMetrics::default());
        metrics.mark_start(std::time::Instant::now());
        let latch = Arc::new(ExitLatch::default());
        let mut ports = VmctlPorts::new(metrics.clone(), latch.clone());
        ports.write(BOOT_DONE_OFFSET, &[1]);
        assert!(metrics.boot_done_us() > 0);
        assert!(!latch.is_set());
        ports.write(EXIT_CODE_OFFSET, &42u32.to_le_bytes());
        let exit = latch.get().unwrap();
        assert_eq!((exit.reason, exit.code), (ExitReason::GuestExit, 42));
    }

    #[test]
    fn an_8_bit_write_is_a_valid_exit_code() {
        let latch = Arc::new(ExitLatch::default());
        let mut ports = VmctlPorts::new(Arc::default(), latch.clone());
        ports.write(EXIT_CODE_OFFSET, &[3]);
        assert_eq!(latch.get().unwrap().code, 3);
    }
}
