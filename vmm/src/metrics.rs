//! VMM-wide counters, updated lock-free from vCPU threads and devices and read by the
//! API's GetMetrics. Block, net and vsock metrics live with their devices.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use vmctl_devices::virtio::block::{BlockMetrics, BlockMetricsSnapshot};
use vmctl_devices::virtio::net::{NetMetrics, NetMetricsSnapshot};
use vmctl_devices::virtio::vsock::{VsockMetrics, VsockMetricsSnapshot};

/// Kinds of VM exit counted by the VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    IoIn,
    IoOut,
    MmioRead,
    MmioWrite,
    Hlt,
    Shutdown,
    SystemEvent,
    InternalError,
    FailEntry,
    /// KVM_RUN interrupted by a kick (pause, stop).
    Interrupted,
    Other,
}

impl ExitKind {
    pub const ALL: [ExitKind; 11] = [
        ExitKind::IoIn,
        ExitKind::IoOut,
        ExitKind::MmioRead,
        ExitKind::MmioWrite,
        ExitKind::Hlt,
        ExitKind::Shutdown,
        ExitKind::SystemEvent,
        ExitKind::InternalError,
        ExitKind::FailEntry,
        ExitKind::Interrupted,
        ExitKind::Other,
    ];

    /// The name used in the API's `vm_exits` map.
    pub fn name(self) -> &'static str {
        match self {
            ExitKind::IoIn => "io_in",
            ExitKind::IoOut => "io_out",
            ExitKind::MmioRead => "mmio_read",
            ExitKind::MmioWrite => "mmio_write",
            ExitKind::Hlt => "hlt",
            ExitKind::Shutdown => "shutdown",
            ExitKind::SystemEvent => "system_event",
            ExitKind::InternalError => "internal_error",
            ExitKind::FailEntry => "fail_entry",
            ExitKind::Interrupted => "interrupted",
            ExitKind::Other => "other",
        }
    }
}

/// The counters.
#[derive(Debug, Default)]
pub struct VmmMetrics {
    start: Mutex<Option<Instant>>,
    boot_done_us: AtomicU64,
    start_to_run_us: AtomicU64,
    exits: [AtomicU64; ExitKind::ALL.len()],
    console_bytes_out: AtomicU64,
    block: Mutex<Vec<(String, Arc<BlockMetrics>)>>,
    net: Mutex<Vec<(String, Arc<NetMetrics>)>>,
    vsock: Mutex<Option<Arc<VsockMetrics>>>,
}

impl VmmMetrics {
    /// Marks the Start call: the origin of the boot-time metrics.
    pub fn mark_start(&self, at: Instant) {
        *self.start.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
    }

    fn since_start_us(&self) -> u64 {
        let start = *self.start.lock().unwrap_or_else(PoisonError::into_inner);
        start.map_or(0, |s| (s.elapsed().as_micros() as u64).max(1))
    }

    /// The guest's boot-done write; only the first counts.
    pub fn mark_boot_done(&self) {
        let us = self.since_start_us();
        let _ = self
            .boot_done_us
            .compare_exchange(0, us, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// All vCPUs are running.
    pub fn mark_running(&self) {
        self.start_to_run_us
            .store(self.since_start_us(), Ordering::SeqCst);
    }

    pub fn count_exit(&self, kind: ExitKind) {
        self.exits[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_console_bytes(&self, n: usize) {
        self.console_bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn boot_done_us(&self) -> u64 {
        self.boot_done_us.load(Ordering::SeqCst)
    }

    pub fn start_to_run_us(&self) -> u64 {
        self.start_to_run_us.load(Ordering::SeqCst)
    }

    pub fn console_bytes_out(&self) -> u64 {
        self.console_bytes_out.load(Ordering::Relaxed)
    }

    /// The block devices' counters, by drive id (set when the VM is built).
    pub fn set_block_devices(&self, devices: Vec<(String, Arc<BlockMetrics>)>) {
        *self.block.lock().unwrap_or_else(PoisonError::into_inner) = devices;
    }

    pub fn block(&self) -> Vec<(String, BlockMetricsSnapshot)> {
        self.block
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, m)| (id.clone(), m.snapshot()))
            .collect()
    }

    /// The net devices' counters, by interface id (set when the VM is built).
    pub fn set_net_devices(&self, devices: Vec<(String, Arc<NetMetrics>)>) {
        *self.net.lock().unwrap_or_else(PoisonError::into_inner) = devices;
    }

    pub fn net(&self) -> Vec<(String, NetMetricsSnapshot)> {
        self.net
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, m)| (id.clone(), m.snapshot()))
            .collect()
    }

    /// The vsock device's counters (set when the VM is built with one).
    pub fn set_vsock_device(&self, metrics: Option<Arc<VsockMetrics>>) {
        *self.vsock.lock().unwrap_or_else(PoisonError::into_inner) = metrics;
    }

    pub fn vsock(&self) -> Option<VsockMetricsSnapshot> {
        self.vsock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|m| m.snapshot())
    }

    /// Non-zero exit counters by name.
    pub fn vm_exits(&self) -> Vec<(&'static str, u64)> {
        ExitKind::ALL
            .iter()
            .map(|k| (k.name(), self.exits[*k as usize].load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_exits_by_name_and_boot_done_once() {
        let m = VmmMetrics::default();
        assert_eq!(m.boot_done_us(), 0);
        m.mark_start(Instant::now());
        m.count_exit(ExitKind::IoOut);
        m.count_exit(ExitKind::IoOut);
        m.count_exit(ExitKind::Hlt);
        assert_eq!(m.vm_exits(), vec![("io_out", 2), ("hlt", 1)]);
        m.mark_boot_done();
        let first = m.boot_done_us();
        assert!(first > 0);
        std::thread::sleep(std::time::Duration::from_millis(2));
        m.mark_boot_done();
        assert_eq!(m.boot_done_us(), first);
    }
}
