//! Net device counters, shared between the device (event-loop thread) and the VMM's
//! metrics endpoint.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Live counters of one net device. Cheap to update (relaxed atomics); read them with
/// [`NetMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct NetMetrics {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    rx_no_buffer: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_dropped: AtomicU64,
    tx_would_block: AtomicU64,
    failed: AtomicBool,
}

/// A copy of [`NetMetrics`] at one moment (the fields of `vmm.v1.NetMetrics`). Bytes are
/// frame bytes (Ethernet header included), without the virtio-net header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetMetricsSnapshot {
    /// Frames delivered into guest RX buffers.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Frames towards the guest lost: too large for the guest's buffer (the kernel drops
    /// them as they are read), read errors, RX buffers unusable (read-only, outside guest
    /// memory, smaller than the header).
    pub rx_dropped: u64,
    /// Times the device stopped reading the TAP because the guest had no RX buffer (the
    /// frames wait in the TAP's queue, not lost here).
    pub rx_no_buffer: u64,
    /// Frames taken from the TX queue and written to the TAP.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// TX chains that could not be sent: malformed buffers, too short or too long, or
    /// refused by the TAP (bad offload header, TAP down).
    pub tx_dropped: u64,
    /// Times the TAP would not take a frame yet (`EAGAIN`); the frame waited, not lost.
    pub tx_would_block: u64,
    /// The device stopped on a malformed queue and waits for the driver to reset it.
    pub failed: bool,
}

/// One counter of [`NetMetrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    RxDropped,
    RxNoBuffer,
    TxDropped,
    TxWouldBlock,
}

impl NetMetrics {
    /// Copies every counter.
    pub fn snapshot(&self) -> NetMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetMetricsSnapshot {
            rx_packets: get(&self.rx_packets),
            rx_bytes: get(&self.rx_bytes),
            rx_dropped: get(&self.rx_dropped),
            rx_no_buffer: get(&self.rx_no_buffer),
            tx_packets: get(&self.tx_packets),
            tx_bytes: get(&self.tx_bytes),
            tx_dropped: get(&self.tx_dropped),
            tx_would_block: get(&self.tx_would_block),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn inc(&self, counter: Counter) {
        let c = match counter {
            Counter::RxDropped => &self.rx_dropped,
            Counter::RxNoBuffer => &self.rx_no_buffer,
            Counter::TxDropped => &self.tx_dropped,
            Counter::TxWouldBlock => &self.tx_would_block,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rx_frame(&self, bytes: u64) {
        self.rx_packets.fetch_add(1, Ordering::Relaxed);
        self.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn tx_frame(&self, bytes: u64) {
        self.tx_packets.fetch_add(1, Ordering::Relaxed);
        self.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn set_failed(&self, failed: bool) {
        self.failed.store(failed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_updates() {
        let m = NetMetrics::default();
        for c in [
            Counter::RxDropped,
            Counter::RxNoBuffer,
            Counter::RxNoBuffer,
            Counter::TxDropped,
            Counter::TxWouldBlock,
        ] {
            m.inc(c);
        }
        m.rx_frame(60);
        m.tx_frame(1514);
        m.tx_frame(6);
        m.set_failed(true);
        assert_eq!(
            m.snapshot(),
            NetMetricsSnapshot {
                rx_packets: 1,
                rx_bytes: 60,
                rx_dropped: 1,
                rx_no_buffer: 2,
                tx_packets: 2,
                tx_bytes: 1520,
                tx_dropped: 1,
                tx_would_block: 1,
                failed: true,
            }
        );
    }
}
