//! Vsock device counters, shared between the device (event-loop thread) and the VMM's
//! metrics endpoint.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Live counters of one vsock device. Cheap to update (relaxed atomics); read them with
/// [`VsockMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct VsockMetrics {
    host_connections_opened: AtomicU64,
    guest_connections_opened: AtomicU64,
    connections_closed_by_host: AtomicU64,
    connections_closed_by_guest: AtomicU64,
    connections_reset_by_device: AtomicU64,
    connections_refused: AtomicU64,
    bytes_to_guest: AtomicU64,
    bytes_from_guest: AtomicU64,
    rx_packets: AtomicU64,
    tx_packets: AtomicU64,
    packets_dropped: AtomicU64,
    rsts_sent: AtomicU64,
    failed: AtomicBool,
}

/// A copy of [`VsockMetrics`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VsockMetricsSnapshot {
    /// Host-initiated connections the guest accepted (`RESPONSE`).
    pub host_connections_opened: u64,
    /// Guest-initiated connections a host listener accepted.
    pub guest_connections_opened: u64,
    /// Established connections that ended because the host side closed (end of file, hang-up
    /// or a failed write) and the guest then reset.
    pub connections_closed_by_host: u64,
    /// Established connections the guest ended (`RST`, or `SHUTDOWN` of both directions).
    pub connections_closed_by_guest: u64,
    /// Connections the device reset because the guest broke the protocol (data past credit,
    /// unknown operation, a second `REQUEST`, an unparsable packet) or because of a reset of
    /// the device or transport.
    pub connections_reset_by_device: u64,
    /// Connection attempts refused: guest `REQUEST`s with no host listener (or over the
    /// limit), host `CONNECT`s the guest answered with `RST`, bad `CONNECT` lines.
    pub connections_refused: u64,
    /// Payload bytes delivered into guest RX buffers.
    pub bytes_to_guest: u64,
    /// Payload bytes taken from guest TX buffers (written to, or buffered for, the host).
    pub bytes_from_guest: u64,
    /// Packets the device put in the RX queue.
    pub rx_packets: u64,
    /// Packets the device took from the TX queue.
    pub tx_packets: u64,
    /// Packets dropped: unparsable TX packets, wrong CIDs, packets for unknown connections,
    /// RX buffers that could not hold a packet.
    pub packets_dropped: u64,
    /// `RST` packets sent to the guest.
    pub rsts_sent: u64,
    /// The device stopped on a malformed queue and waits for the driver to reset it.
    pub failed: bool,
}

/// One counter of [`VsockMetrics`] (for the device's internal updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    HostOpened,
    GuestOpened,
    ClosedByHost,
    ClosedByGuest,
    ResetByDevice,
    Refused,
    RxPackets,
    TxPackets,
    Dropped,
    RstsSent,
}

impl VsockMetrics {
    /// Copies every counter.
    pub fn snapshot(&self) -> VsockMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        VsockMetricsSnapshot {
            host_connections_opened: get(&self.host_connections_opened),
            guest_connections_opened: get(&self.guest_connections_opened),
            connections_closed_by_host: get(&self.connections_closed_by_host),
            connections_closed_by_guest: get(&self.connections_closed_by_guest),
            connections_reset_by_device: get(&self.connections_reset_by_device),
            connections_refused: get(&self.connections_refused),
            bytes_to_guest: get(&self.bytes_to_guest),
            bytes_from_guest: get(&self.bytes_from_guest),
            rx_packets: get(&self.rx_packets),
            tx_packets: get(&self.tx_packets),
            packets_dropped: get(&self.packets_dropped),
            rsts_sent: get(&self.rsts_sent),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn inc(&self, counter: Counter) {
        let c = match counter {
            Counter::HostOpened => &self.host_connections_opened,
            Counter::GuestOpened => &self.guest_connections_opened,
            Counter::ClosedByHost => &self.connections_closed_by_host,
            Counter::ClosedByGuest => &self.connections_closed_by_guest,
            Counter::ResetByDevice => &self.connections_reset_by_device,
            Counter::Refused => &self.connections_refused,
            Counter::RxPackets => &self.rx_packets,
            Counter::TxPackets => &self.tx_packets,
            Counter::Dropped => &self.packets_dropped,
            Counter::RstsSent => &self.rsts_sent,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_bytes_to_guest(&self, n: u64) {
        self.bytes_to_guest.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_bytes_from_guest(&self, n: u64) {
        self.bytes_from_guest.fetch_add(n, Ordering::Relaxed);
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
        let m = VsockMetrics::default();
        for c in [
            Counter::HostOpened,
            Counter::GuestOpened,
            Counter::GuestOpened,
            Counter::ClosedByHost,
            Counter::ClosedByGuest,
            Counter::ResetByDevice,
            Counter::Refused,
            Counter::RxPackets,
            Counter::TxPackets,
            Counter::Dropped,
            Counter::RstsSent,
        ] {
            m.inc(c);
        }
        m.add_bytes_to_guest(10);
        m.add_bytes_from_guest(7);
        m.set_failed(true);
        assert_eq!(
            m.snapshot(),
            VsockMetricsSnapshot {
                host_connections_opened: 1,
                guest_connections_opened: 2,
                connections_closed_by_host: 1,
                connections_closed_by_guest: 1,
                connections_reset_by_device: 1,
                connections_refused: 1,
                bytes_to_guest: 10,
                bytes_from_guest: 7,
                rx_packets: 1,
                tx_packets: 1,
                packets_dropped: 1,
                rsts_sent: 1,
                failed: true,
            }
        );
    }
}
