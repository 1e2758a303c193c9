//! The virtio-vsock device and its [`VirtioDevice`] implementation: the three queues, and
//! the muxer (host side) they feed and drain.

use std::sync::Arc;

use log::{error, info, warn};
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use virtio_vsock::packet::{PKT_HEADER_SIZE, VsockPacket};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::metrics::{Counter, VsockMetrics};
use super::muxer::Muxer;
use super::packet::{RxPacket, TxHeader, check_chain};
use super::{
    EVENT_QUEUE, EVENT_TRANSPORT_RESET, MAX_PKT_DATA, NUM_QUEUES, QUEUE_SIZE, RX_QUEUE, TX_QUEUE,
    VsockConfig, VsockError,
};
use crate::GuestMemoryMmap;
use crate::virtio::{
    InterruptKind, VirtioDevice, VirtioDeviceError, VirtioInterrupt, device_type, feature, features,
    queue_wants_interrupt, read_config_bytes,
};

/// What the device holds between `DRIVER_OK` and reset.
struct Active {
    mem: GuestMemoryMmap,
    queues: [Queue; NUM_QUEUES],
}

/// A virtio-vsock device whose host side is a unix socket (see the module documentation).
pub struct Vsock {
    config: VsockConfig,
    avail_features: u64,
    acked_features: u64,
    config_space: [u8; 8],
    queue_sizes: [u16; NUM_QUEUES],
    queue_evts: Vec<EventFd>,
    /// Wakes the event loop for work that arose off it (activation, reset, a transport
    /// reset event) so that the muxer's changes reach the event loop.
    kick_evt: EventFd,
    interrupt: Arc<VirtioInterrupt>,
    metrics: Arc<VsockMetrics>,
    pub(super) muxer: Muxer,
    active: Option<Active>,
    failed: bool,
    transport_reset_pending: bool,
}

impl std::fmt::Debug for Vsock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vsock")
            .field("config", &self.config)
            .field("acked_features", &self.acked_features)
            .field("active", &self.active.is_some())
            .field("failed", &self.failed)
            .field("connections", &self.muxer.connection_count())
            .finish_non_exhaustive()
    }
}

impl Vsock {
    /// Validates `config`, listens on `uds_path` and creates the device (not yet
    /// activated). Host processes may connect from now on; their `CONNECT`s reach the guest
    /// once its driver is up.
    pub fn new(config: VsockConfig) -> Result<Self, VsockError> {
        let listener = config.listen()?;
        let metrics = Arc::new(VsockMetrics::default());
        let queue_evts = (0..NUM_QUEUES)
            .map(|_| EventFd::new(EFD_NONBLOCK).map_err(VirtioDeviceError::EventFd))
            .collect::<Result<Vec<_>, _>>()?;
        let kick_evt = EventFd::new(EFD_NONBLOCK).map_err(VirtioDeviceError::EventFd)?;
        let muxer = Muxer::new(
            config.guest_cid,
            config.uds_path.clone(),
            listener,
            metrics.clone(),
        )
        .map_err(VsockError::Timer)?;
        Ok(Self {
            muxer,
            // struct virtio_vsock_config { le64 guest_cid; }
            config_space: config.guest_cid.to_le_bytes(),
            config,
            avail_features: feature(features::VIRTIO_F_VERSION_1),
            acked_features: 0,
            queue_sizes: [QUEUE_SIZE; NUM_QUEUES],
            queue_evts,
            kick_evt,
            interrupt: Arc::new(VirtioInterrupt::new()?),
            metrics,
            active: None,
            failed: false,
            transport_reset_pending: false,
        })
    }

    /// The configuration this device was made from.
    pub fn config(&self) -> &VsockConfig {
        &self.config
    }

    /// The guest's CID.
    pub fn guest_cid(&self) -> u64 {
        self.config.guest_cid
    }

    /// The device's counters; keep the `Arc` to read them while the device runs.
    pub fn metrics(&self) -> &Arc<VsockMetrics> {
        &self.metrics
    }

    /// Connections open now (either side's).
    pub fn connection_count(&self) -> usize {
        self.muxer.connection_count()
    }

    pub(super) fn kick_evt(&self) -> &EventFd {
        &self.kick_evt
    }

    fn kick(&self) {
        if let Err(e) = self.kick_evt.write(1) {
            error!("virtio-vsock: cannot wake the event loop: {e}");
        }
    }

    /// Tells the guest that the transport was reset (`VIRTIO_VSOCK_EVENT_TRANSPORT_RESET` on
    /// the event queue, as after a snapshot restore): the guest drops every connection and
    /// so does the device (their host sockets are closed). Delivered when the event queue
    /// has a buffer, now or at its next notification.
    pub fn send_transport_reset(&mut self) {
        self.muxer.reset();
        self.transport_reset_pending = true;
        self.kick();
    }

    /// Serves every queue: TX packets to the host, owed packets into RX buffers, pending
    /// events. Called by the event handler after every event; does nothing while the device
    /// is inactive or failed.
    pub fn process_queues(&mut self) {
        if self.failed || self.active.is_none() {
            return;
        }
        // Which queues got used buffers (RX, TX, event).
        let mut used = [false; NUM_QUEUES];
        let result = (|| -> Result<(), String> {
            // TX may stop when the RST queue is full; RX drains it; go again while that helps.
            for _ in 0..4 {
                let (tx_used, tx_stalled) = self.process_tx()?;
                let rx_used = self.process_rx()?;
                used[TX_QUEUE] |= tx_used;
                used[RX_QUEUE] |= rx_used;
                if !(tx_stalled && rx_used) {
                    break;
                }
            }
            used[EVENT_QUEUE] |= self.process_events()?;
            Ok(())
        })();
        self.signal_used(used);
        if let Err(reason) = result {
            self.fail(&reason);
        }
    }

    /// Takes every available TX packet. Returns (used any, stopped for a full RST queue).
    fn process_tx(&mut self) -> Result<(bool, bool), String> {
        let Some(active) = self.active.as_mut() else {
            return Ok((false, false));
        };
        let mem = &active.mem;
        let queue = &mut active.queues[TX_QUEUE];
        let desc_table = GuestAddress(queue.desc_table());
        let mut used = false;
        loop {
            if self.muxer.rst_queue_full() {
                return Ok((used, true));
            }
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => return Err(format!("TX available ring: {e}")),
            };
            let Some(mut chain) = chain else {
                return Ok((used, false));
            };
            let head = chain.head_index();
            check_chain(&chain, mem, desc_table, queue.size()).map_err(|e| format!("TX: {e}"))?;
            let original = chain.clone();
            match VsockPacket::from_tx_virtq_chain(mem, &mut chain, MAX_PKT_DATA) {
                Ok(pkt) => {
                    let hdr = TxHeader::of(&pkt);
                    self.muxer.send(&hdr, pkt.data_slice());
                }
                Err(e) => {
                    warn!("virtio-vsock: unusable TX packet dropped: {e}");
                    self.metrics.inc(Counter::TxPackets);
                    self.metrics.inc(Counter::Dropped);
                    if let Some(hdr) = TxHeader::peek(&original, mem) {
                        self.muxer.reset_connection_of(&hdr);
                    }
                }
            }
            queue
                .add_used(mem, head, 0)
                .map_err(|e| format!("TX used ring: {e}"))?;
            used = true;
        }
    }

    /// Fills RX buffers with what the muxer owes the guest. Returns whether any was used.
    fn process_rx(&mut self) -> Result<bool, String> {
        let Some(active) = self.active.as_mut() else {
            return Ok(false);
        };
        let mem = &active.mem;
        let queue = &mut active.queues[RX_QUEUE];
        let desc_table = GuestAddress(queue.desc_table());
        let mut used = false;
        // Each round uses one buffer or stops; the queue size bounds the rounds.
        while self.muxer.has_pending_rx() {
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => return Err(format!("RX available ring: {e}")),
            };
            let Some(mut chain) = chain else {
                break;
            };
            let head = chain.head_index();
            check_chain(&chain, mem, desc_table, queue.size()).map_err(|e| format!("RX: {e}"))?;
            let len = match VsockPacket::from_rx_virtq_chain(mem, &mut chain, MAX_PKT_DATA) {
                Ok(pkt) => {
                    let mut pkt = RxPacket::new(pkt, self.config.guest_cid);
                    match self.muxer.recv(&mut pkt) {
                        Some(len) => PKT_HEADER_SIZE as u32 + len,
                        None => {
                            // Nothing owed after all (e.g. the host socket had no bytes):
                            // the buffer stays available.
                            queue.go_to_previous_position();
                            break;
                        }
                    }
                }
                Err(e) => {
                    warn!("virtio-vsock: unusable RX buffer returned empty: {e}");
                    self.metrics.inc(Counter::Dropped);
                    0
                }
            };
            queue
                .add_used(mem, head, len)
                .map_err(|e| format!("RX used ring: {e}"))?;
            used = true;
        }
        Ok(used)
    }

    /// Delivers a pending transport-reset event. Returns whether a buffer was used.
    fn process_events(&mut self) -> Result<bool, String> {
        let Some(active) = self.active.as_mut() else {
            return Ok(false);
        };
        let mem = &active.mem;
        let queue = &mut active.queues[EVENT_QUEUE];
        let desc_table = GuestAddress(queue.desc_table());
        let mut used = false;
        while self.transport_reset_pending {
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => return Err(format!("event available ring: {e}")),
            };
            let Some(mut chain) = chain else {
                break;
            };
            let head = chain.head_index();
            check_chain(&chain, mem, desc_table, queue.size()).map_err(|e| format!("event queue: {e}"))?;
            // struct virtio_vsock_event { le32 id; }
            let written = match chain.next() {
                Some(d) if d.is_write_only() && d.len() >= 4 => {
                    mem.write_obj(EVENT_TRANSPORT_RESET.to_le(), d.addr()).is_ok()
                }
                _ => false,
            };
            if written {
                self.transport_reset_pending = false;
            } else {
                warn!("virtio-vsock: unusable event buffer returned empty");
                self.metrics.inc(Counter::Dropped);
            }
            queue
                .add_used(mem, head, if written { 4 } else { 0 })
                .map_err(|e| format!("event used ring: {e}"))?;
            used = true;
        }
        Ok(used)
    }

    /// One interrupt for the queues that got used buffers, unless the driver suppressed it
    /// for each of them.
    fn signal_used(&mut self, used: [bool; NUM_QUEUES]) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut wants = false;
        for (queue, _) in active.queues.iter_mut().zip(used).filter(|(_, u)| *u) {
            match queue_wants_interrupt(&active.mem, queue) {
                Ok(w) => wants |= w,
                Err(e) => warn!("virtio-vsock: {e}"),
            }
        }
        if wants {
            if let Err(e) = self.interrupt.trigger(InterruptKind::UsedRing) {
                error!("virtio-vsock: {e}");
            }
        }
    }

    /// Stops the device on a malformed queue: no more queue work until the driver resets
    /// it, which it learns from `DEVICE_NEEDS_RESET` and a configuration interrupt.
    fn fail(&mut self, reason: &str) {
        error!("virtio-vsock: malformed queue ({reason}); device needs reset");
        self.failed = true;
        self.metrics.set_failed(true);
        if let Err(e) = self.interrupt.trigger(InterruptKind::Config) {
            error!("virtio-vsock: {e}");
        }
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        device_type::VSOCK
    }

    fn avail_features(&self) -> u64 {
        self.avail_features
    }

    fn acked_features(&self) -> u64 {
        self.acked_features
    }

    fn set_acked_features(&mut self, features: u64) {
        self.acked_features = features & self.avail_features;
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn queue_events(&self) -> &[EventFd] {
        &self.queue_evts
    }

    fn interrupt(&self) -> &Arc<VirtioInterrupt> {
        &self.interrupt
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config_space, offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        warn!(
            "virtio-vsock: write of {} bytes to read-only config space at {offset:#x} ignored",
            data.len()
        );
    }

    fn activate(&mut self, mem: GuestMemoryMmap, queues: Vec<Queue>) -> Result<(), VirtioDeviceError> {
        if self.active.is_some() {
            return Err(VirtioDeviceError::AlreadyActivated);
        }
        let actual = queues.len();
        let Ok(queues) = <[Queue; NUM_QUEUES]>::try_from(queues) else {
            return Err(VirtioDeviceError::QueueCount {
                expected: NUM_QUEUES,
                actual,
            });
        };
        info!("virtio-vsock: activated (guest CID {})", self.config.guest_cid);
        self.active = Some(Active { mem, queues });
        // Host connections that arrived before the driver was up are owed to the guest.
        self.kick();
        Ok(())
    }

    fn is_activated(&self) -> bool {
        self.active.is_some()
    }

    fn reset(&mut self) {
        // Only a driver that had the device forgets its connections. The reset every driver
        // does first at probe finds none of its own: host connections made while the guest
        // was still booting are for the driver that is coming, and wait for it.
        if self.active.take().is_some() {
            self.muxer.reset();
        }
        self.acked_features = 0;
        self.failed = false;
        self.transport_reset_pending = false;
        self.metrics.set_failed(false);
        self.kick();
    }

    fn needs_reset(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::time::Duration;

    use super::*;
    use crate::virtio::status;
    use crate::virtio::test_utils::read_reg;
    use crate::virtio::vsock::test_driver::{Packet, RX_DATA_LEN, VsockDriver};
    use crate::virtio::vsock::{
        CONN_BUF_SIZE, CREDIT_UPDATE_THRESHOLD, FIRST_LOCAL_PORT, HOST_CID, TYPE_STREAM, op, shutdown,
    };
    use virtio_bindings::virtio_ring::VRING_DESC_F_WRITE;

    const CID: u64 = 42;

    fn setup() -> (tempfile::TempDir, VsockDriver) {
        let dir = tempfile::tempdir().unwrap();
        let d = VsockDriver::new(CID, dir.path());
        (dir, d)
    }

    fn read_timeout(s: &UnixStream) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }

    /// Reads exactly `n` bytes from a host socket.
    fn read_n(s: &mut UnixStream, n: usize) -> Vec<u8> {
        read_timeout(s);
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).unwrap();
        buf
    }

    fn assert_eof(s: &mut UnixStream) {
        read_timeout(s);
        let mut b = [0u8; 16];
        assert_eq!(s.read(&mut b).unwrap(), 0, "expected end of file");
    }

    /// End of file, or a reset when the device closed with bytes of ours unread.
    fn assert_closed(s: &mut UnixStream) {
        read_timeout(s);
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected the socket closed, got {other:?}"),
        }
    }

    fn assert_nothing_to_read(s: &UnixStream) {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 16];
        let r = (&*s).read(&mut b);
        assert!(matches!(&r, Err(e) if e.kind() == ErrorKind::WouldBlock), "{r:?}");
        s.set_nonblocking(false).unwrap();
    }

    fn metrics(d: &VsockDriver) -> crate::virtio::vsock::VsockMetricsSnapshot {
        d.device.lock().unwrap().metrics().snapshot()
    }

    /// Host connects with `CONNECT port`; the guest answers RESPONSE with `buf_alloc`.
    /// Returns the host socket and the host-side port.
    fn host_connect(d: &mut VsockDriver, guest_port: u32, buf_alloc: u32) -> (UnixStream, u32) {
        let mut host = UnixStream::connect(&d.uds_path).unwrap();
        host.write_all(format!("CONNECT {guest_port}\n").as_bytes())
            .unwrap();
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        let req = &pkts[0];
        assert_eq!(
            (req.op, req.src_cid, req.dst_cid, req.dst_port, req.type_),
            (op::REQUEST, HOST_CID, CID, guest_port, TYPE_STREAM)
        );
        assert!(req.src_port >= FIRST_LOCAL_PORT);
        assert_eq!(req.buf_alloc, CONN_BUF_SIZE);
        let local = req.src_port;
        let mut resp = d.packet(guest_port, local, op::RESPONSE);
        resp.buf_alloc = buf_alloc;
        d.send(&resp);
        let line = format!("OK {local}\n");
        assert_eq!(read_n(&mut host, line.len()), line.as_bytes());
        (host, local)
    }

    fn rw(d: &VsockDriver, src: u32, dst: u32, data: &[u8], buf_alloc: u32, fwd_cnt: u32) -> Packet {
        let mut p = d.packet(src, dst, op::RW);
        p.data = data.to_vec();
        p.buf_alloc = buf_alloc;
        p.fwd_cnt = fwd_cnt;
        p
    }

    #[test]
    fn device_identity_and_config_space() {
        let (_dir, mut d) = setup();
        assert_eq!(read_reg(&mut d.transport, 0x008), 19, "DeviceID");
        let lo = read_reg(&mut d.transport, 0x100);
        let hi = read_reg(&mut d.transport, 0x104);
        assert_eq!(u64::from(lo) | (u64::from(hi) << 32), CID);
        // The config space is read-only.
        d.transport.bus_write(0x100, &7u32.to_le_bytes());
        assert_eq!(read_reg(&mut d.transport, 0x100), CID as u32);
        assert!(d.device.lock().unwrap().is_activated());
    }

    #[test]
    fn host_connects_to_guest_listener_and_bytes_flow_both_ways() {
        let (_dir, mut d) = setup();
        let (mut host, local) = host_connect(&mut d, 1234, 64 * 1024);
        // Host → guest.
        host.write_all(b"hello guest").unwrap();
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(
            (pkts[0].op, pkts[0].src_port, pkts[0].dst_port),
            (op::RW, local, 1234)
        );
        assert_eq!(pkts[0].data, b"hello guest");
        // Guest → host.
        d.send(&rw(&d, 1234, local, b"hello host", 64 * 1024, 11));
        assert_eq!(read_n(&mut host, 10), b"hello host");
        // The guest asks for our credit: 10 bytes forwarded.
        d.send(&d.packet(1234, local, op::CREDIT_REQUEST));
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(
            (pkts[0].op, pkts[0].fwd_cnt, pkts[0].buf_alloc),
            (op::CREDIT_UPDATE, 10, CONN_BUF_SIZE)
        );
        // Past the threshold, the device sends a CREDIT_UPDATE by itself.
        let chunk = vec![0x5a; CREDIT_UPDATE_THRESHOLD as usize];
        d.send(&rw(&d, 1234, local, &chunk, 64 * 1024, 11));
        assert_eq!(read_n(&mut host, chunk.len()), chunk);
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(pkts[0].op, op::CREDIT_UPDATE);
        assert_eq!(pkts[0].fwd_cnt, 10 + CREDIT_UPDATE_THRESHOLD);
        // A long host write is split over RX buffers.
        let big: Vec<u8> = (0..3 * RX_DATA_LEN + 5).map(|i| i as u8).collect();
        host.write_all(&big).unwrap();
        let got: Vec<u8> = d
            .recv()
            .into_iter()
            .flat_map(|p| {
                assert_eq!(p.op, op::RW);
                p.data
            })
            .collect();
        assert_eq!(got, big);
        let m = metrics(&d);
        assert_eq!(m.host_connections_opened, 1);
        assert_eq!(m.bytes_to_guest, 11 + big.len() as u64);
        assert_eq!(m.bytes_from_guest, 10 + u64::from(CREDIT_UPDATE_THRESHOLD));
        assert_eq!((m.packets_dropped, m.rsts_sent, m.failed), (0, 0, false));
        assert!(d.transport.interrupt().status() & 1 == 1, "used-ring interrupt");
    }

    #[test]
    fn a_host_connect_made_before_the_driver_came_survives_its_probe_reset() {
        let dir = tempfile::tempdir().unwrap();
        let mut early = None;
        let mut d = VsockDriver::new_after(CID, dir.path(), |uds, events| {
            let mut host = UnixStream::connect(uds).unwrap();
            host.write_all(b"CONNECT 4321\n").unwrap();
            // The device takes the connection and its line while no driver has it.
            for _ in 0..10 {
                events.run_with_timeout(10).unwrap();
            }
            early = Some(host);
        });
        let mut host = early.unwrap();
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!((pkts[0].op, pkts[0].dst_port), (op::REQUEST, 4321));
        let local = pkts[0].src_port;
        d.send(&d.packet(4321, local, op::RESPONSE));
        let line = format!("OK {local}\n");
        assert_eq!(read_n(&mut host, line.len()), line.as_bytes());
        assert_eq!(metrics(&d).connections_reset_by_device, 0);
    }

    #[test]
    fn guest_connects_to_host_listener_and_bytes_flow_both_ways() {
        let (_dir, mut d) = setup();
        let mut path = d.uds_path.clone().into_os_string();
        path.push("_5000");
        let listener = UnixListener::bind(&path).unwrap();
        let mut req = d.packet(1025, 5000, op::REQUEST);
        req.buf_alloc = 4096;
        d.send(&req);
        let (mut host, _) = listener.accept().unwrap();
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(
            (pkts[0].op, pkts[0].src_port, pkts[0].dst_port, pkts[0].dst_cid),
            (op::RESPONSE, 5000, 1025, CID)
        );
        d.send(&rw(&d, 1025, 5000, b"ping", 4096, 0));
        assert_eq!(read_n(&mut host, 4), b"ping");
        host.write_all(b"pong").unwrap();
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!((pkts[0].op, &pkts[0].data[..]), (op::RW, &b"pong"[..]));
        // The guest closes: SHUTDOWN of both directions, answered with RST; the host sees EOF.
        let mut shut = d.packet(1025, 5000, op::SHUTDOWN);
        shut.flags = shutdown::RCV | shutdown::SEND;
        d.send(&shut);
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(pkts[0].op, op::RST);
        assert_eof(&mut host);
        let m = metrics(&d);
        assert_eq!(
            (
                m.guest_connections_opened,
                m.connections_closed_by_guest,
                m.rsts_sent
            ),
            (1, 1, 1)
        );
        assert_eq!(d.device.lock().unwrap().connection_count(), 0);
    }

    /// 256 KiB each way through a 16 KiB guest window and the device's 64 KiB one, the
    /// guest driver behaving as Linux does (credit updates as it consumes, never past the
    /// device's credit): every byte arrives in order and neither side exceeds the other's
    /// credit.
    #[test]
    fn bulk_transfer_both_ways_within_credit() {
        const TOTAL: usize = 256 * 1024;
        const GUEST_BUF: u32 = 16 * 1024;
        let (_dir, mut d) = setup();
        let (host, local) = host_connect(&mut d, 5, GUEST_BUF);
        host.set_nonblocking(true).unwrap();
        let data: Vec<u8> = (0..TOTAL).map(|i| (i * 7 % 251) as u8).collect();
        let (mut host_sent, mut guest_got) = (0usize, Vec::new());
        let (mut guest_sent, mut host_got) = (0usize, Vec::new());
        // What the guest knows of the device's window: buf_alloc and fwd_cnt.
        let (mut dev_buf, mut dev_fwd) = (CONN_BUF_SIZE, 0u32);
        // The consumed count the guest last told the device.
        let mut told = 0usize;
        for _ in 0..10_000 {
            if guest_got.len() == TOTAL && host_got.len() == TOTAL {
                break;
            }
            // Host → guest: write what the socket takes.
            if host_sent < TOTAL {
                if let Ok(n) = (&host).write(&data[host_sent..(host_sent + 8192).min(TOTAL)]) {
                    host_sent += n;
                }
            }
            // Guest: take packets; the device must stay within the guest's window.
            for p in d.recv() {
                dev_buf = p.buf_alloc;
                dev_fwd = p.fwd_cnt;
                if p.op == op::RW {
                    guest_got.extend_from_slice(&p.data);
                }
            }
            assert!(
                guest_got.len() - told <= GUEST_BUF as usize,
                "the device exceeded the guest's credit"
            );
            // The guest's consumed count is everything it received: the in-flight bytes
            // the device may have are never more than the window.
            let mut upd = d.packet(5, local, op::CREDIT_UPDATE);
            upd.buf_alloc = GUEST_BUF;
            upd.fwd_cnt = guest_got.len() as u32;
            told = guest_got.len();
            d.send(&upd);
            // Guest → host, within the device's credit.
            let credit = dev_buf as usize - (guest_sent - dev_fwd as usize);
            let n = credit.min(4096).min(TOTAL - guest_sent);
            if n > 0 {
                let chunk = data[guest_sent..guest_sent + n].to_vec();
                d.send(&rw(&d, 5, local, &chunk, GUEST_BUF, guest_got.len() as u32));
                guest_sent += n;
            }
            // The host reads what is there.
            let mut buf = [0u8; 16384];
            while let Ok(n @ 1..) = (&host).read(&mut buf) {
                host_got.extend_from_slice(&buf[..n]);
            }
            d.pump();
        }
        assert!(
            guest_got == data,
            "host → guest: {} of {TOTAL} bytes",
            guest_got.len()
        );
        assert!(
            host_got == data,
            "guest → host: {} of {TOTAL} bytes",
            host_got.len()
        );
        let m = metrics(&d);
        assert_eq!(
            (m.bytes_to_guest, m.bytes_from_guest),
            (TOTAL as u64, TOTAL as u64)
        );
        assert_eq!((m.rsts_sent, m.packets_dropped), (0, 0));
    }

    /// A client that does not wait for `OK` (an HTTP/2 preface right behind the line): the
    /// device never reads past the newline, and the bytes reach the guest once it accepted.
    #[test]
    fn bytes_right_after_the_connect_line_wait_for_the_guest() {
        let (_dir, mut d) = setup();
        let mut host = UnixStream::connect(&d.uds_path).unwrap();
        host.write_all(b"CONNECT 1024\nPRI * HTTP/2.0").unwrap();
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "only the REQUEST: {pkts:?}");
        assert_eq!(pkts[0].op, op::REQUEST);
        let local = pkts[0].src_port;
        d.send(&d.packet(1024, local, op::RESPONSE));
        let line = format!("OK {local}\n");
        assert_eq!(read_n(&mut host, line.len()), line.as_bytes());
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!((pkts[0].op, &pkts[0].data[..]), (op::RW, &b"PRI * HTTP/2.0"[..]));
    }

    #[test]
    fn no_interrupt_flag_is_honoured_per_queue() {
        let (_dir, mut d) = setup();
        let (host, local) = host_connect(&mut d, 40, 64 * 1024);
        let irq = d.transport.interrupt().clone();
        let _ = irq.irq_evt().read();
        d.rx_queue().set_avail_flags(1);
        (&host).write_all(b"quiet").unwrap();
        d.pump();
        assert!(irq.irq_evt().read().is_err(), "RX interrupt suppressed");
        assert_eq!(d.recv()[0].data, b"quiet");
        // A TX buffer used: the TX queue did not suppress its interrupt.
        d.send(&d.packet(40, local, op::CREDIT_UPDATE));
        assert_eq!(irq.irq_evt().read().unwrap(), 1);
        d.rx_queue().set_avail_flags(0);
        (&host).write_all(b"loud").unwrap();
        d.pump();
        assert_eq!(irq.irq_evt().read().unwrap(), 1);
    }

    #[test]
    fn guest_half_close_shuts_the_host_write_side() {
        let (_dir, mut d) = setup();
        let (mut host, local) = host_connect(&mut d, 7, 64 * 1024);
        d.send(&rw(&d, 7, local, b"last words", 64 * 1024, 0));
        let mut shut = d.packet(7, local, op::SHUTDOWN);
        shut.flags = shutdown::SEND;
        d.send(&shut);
        assert_eq!(read_n(&mut host, 10), b"last words");
        assert_eof(&mut host);
        // The other direction still works.
        host.write_all(b"still here").unwrap();
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(pkts[0].data, b"still here");
    }

    #[test]
    fn no_listener_means_rst_both_ways() {
        let (_dir, mut d) = setup();
        // Guest → host port with nobody listening on <uds_path>_6000.
        d.send(&d.packet(1030, 6000, op::REQUEST));
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(
            (pkts[0].op, pkts[0].src_port, pkts[0].dst_port),
            (op::RST, 6000, 1030)
        );
        // Host → guest port with nobody listening: the guest answers RST; the host's socket
        // is closed without an OK.
        let mut host = UnixStream::connect(&d.uds_path).unwrap();
        host.write_all(b"connect 77\n").unwrap();
        let pkts = d.recv();
        assert_eq!(pkts[0].op, op::REQUEST);
        d.send(&d.packet(77, pkts[0].src_port, op::RST));
        assert_eof(&mut host);
        let m = metrics(&d);
        assert_eq!((m.connections_refused, m.rsts_sent), (2, 1));
        assert_eq!(d.device.lock().unwrap().connection_count(), 0);
        // Bad CONNECT lines are closed too.
        for line in [&b"CONNECT x\n"[..], b"HELLO 1\n", &[b'9'; 40]] {
            let mut host = UnixStream::connect(&d.uds_path).unwrap();
            host.write_all(line).unwrap();
            d.pump();
            assert_closed(&mut host);
        }
        assert!(d.recv().is_empty());
    }

    #[test]
    fn host_close_becomes_shutdown_then_guest_rst_ends_it() {
        let (_dir, mut d) = setup();
        let (host, local) = host_connect(&mut d, 99, 64 * 1024);
        (&host).write_all(b"bye").unwrap();
        host.shutdown(std::net::Shutdown::Write).unwrap();
        let pkts = d.recv();
        let ops: Vec<_> = pkts.iter().map(|p| (p.op, p.flags)).collect();
        assert_eq!(ops, [(op::RW, 0), (op::SHUTDOWN, shutdown::SEND)], "{pkts:?}");
        // Guest → host still flows after the host's half close.
        d.send(&rw(&d, 99, local, b"ok", 64 * 1024, 3));
        let mut host = host;
        assert_eq!(read_n(&mut host, 2), b"ok");
        drop(host);
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(
            (pkts[0].op, pkts[0].flags),
            (op::SHUTDOWN, shutdown::RCV | shutdown::SEND)
        );
        d.send(&d.packet(99, local, op::RST));
        assert_eq!(d.device.lock().unwrap().connection_count(), 0);
        let m = metrics(&d);
        assert_eq!((m.connections_closed_by_host, m.rsts_sent), (1, 0));
    }

    #[test]
    fn host_close_without_half_close_gives_one_full_shutdown() {
        let (_dir, mut d) = setup();
        let (host, _) = host_connect(&mut d, 100, 64 * 1024);
        (&host).write_all(b"x").unwrap();
        drop(host);
        let pkts = d.recv();
        let ops: Vec<_> = pkts.iter().map(|p| (p.op, p.flags)).collect();
        assert_eq!(
            ops,
            [(op::RW, 0), (op::SHUTDOWN, shutdown::RCV | shutdown::SEND)],
            "{pkts:?}"
        );
    }

    #[test]
    fn credit_exhaustion_stops_the_device_until_credit_update() {
        let (_dir, mut d) = setup();
        let (host, local) = host_connect(&mut d, 8, 8);
        (&host).write_all(&[1u8; 20]).unwrap();
        let pkts = d.recv();
        let ops: Vec<_> = pkts.iter().map(|p| (p.op, p.data.len())).collect();
        // 8 bytes fill the guest's buffer; then the device asks for credit, once.
        assert_eq!(ops, [(op::RW, 8), (op::CREDIT_REQUEST, 0)], "{pkts:?}");
        assert!(d.recv().is_empty(), "no more without credit");
        // The guest consumed 8 bytes.
        let mut upd = d.packet(8, local, op::CREDIT_UPDATE);
        upd.buf_alloc = 8;
        upd.fwd_cnt = 8;
        d.send(&upd);
        let pkts = d.recv();
        let ops: Vec<_> = pkts.iter().map(|p| (p.op, p.data.len())).collect();
        assert_eq!(ops, [(op::RW, 8), (op::CREDIT_REQUEST, 0)], "{pkts:?}");
        upd.fwd_cnt = 16;
        d.send(&upd);
        let pkts = d.recv();
        let ops: Vec<_> = pkts.iter().map(|p| (p.op, p.data.len())).collect();
        assert_eq!(ops, [(op::RW, 4)], "{pkts:?}");
        assert_eq!(metrics(&d).bytes_to_guest, 20);
    }

    #[test]
    fn guest_sending_past_its_credit_is_reset() {
        let (_dir, mut d) = setup();
        let (mut host, local) = host_connect(&mut d, 9, 64 * 1024);
        // The host reads nothing: the socket fills, then the device's buffer; a guest that
        // ignores the credit it was given is reset, the host socket closed.
        let chunk = vec![7u8; 60 * 1024];
        let mut rst = None;
        for i in 0..40 {
            d.send(&rw(&d, 9, local, &chunk, 64 * 1024, 0));
            let pkts = d.recv();
            if let Some(p) = pkts.iter().find(|p| p.op == op::RST) {
                rst = Some((i, p.clone()));
                break;
            }
        }
        let (_, p) = rst.expect("RST after exceeding credit");
        assert_eq!((p.src_port, p.dst_port), (local, 9));
        assert_eq!(metrics(&d).connections_reset_by_device, 1);
        // The host gets what the socket took, then EOF; never more than socket + 64 KiB.
        host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut all = Vec::new();
        host.read_to_end(&mut all).unwrap();
        assert!(all.iter().all(|&b| b == 7));
        assert_eq!(d.device.lock().unwrap().connection_count(), 0);
    }

    #[test]
    fn malformed_packets_never_panic() {
        let (_dir, mut d) = setup();
        let (mut host, local) = host_connect(&mut d, 11, 64 * 1024);
        let before = metrics(&d);
        // Short header.
        let hdr = rw(&d, 11, local, b"", 0, 0).header_bytes();
        d.send_raw(&[(&hdr[..20], 0)]);
        // Header in a device-writable buffer.
        d.send_raw(&[(&hdr[..], VRING_DESC_F_WRITE as u16)]);
        assert_eq!(metrics(&d).packets_dropped, before.packets_dropped + 2);
        assert!(d.recv().is_empty(), "nothing to reset: the header was unreadable");
        // len beyond the data descriptor: dropped, and its connection reset.
        let mut p = rw(&d, 11, local, b"0123456789", 0, 0);
        p.len = 100;
        d.send_raw(&[(&p.header_bytes(), 0), (&p.data, 0)]);
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(pkts[0].op, op::RST);
        assert_eof(&mut host);
        // len past the maximum packet size.
        p.len = 1 << 20;
        d.send_raw(&[(&p.header_bytes(), 0), (&p.data, 0)]);
        assert_eq!(d.recv()[0].op, op::RST, "unknown connection by now");
        // Unknown op on a live connection.
        let (mut host, local) = host_connect(&mut d, 12, 64 * 1024);
        d.send(&d.packet(12, local, 99));
        assert_eq!(d.recv()[0].op, op::RST);
        assert_eof(&mut host);
        // Data for a connection that does not exist; RST for one (no answer).
        d.send(&rw(&d, 13, 4444, b"?", 0, 0));
        assert_eq!(d.recv()[0].op, op::RST);
        d.send(&d.packet(13, 4444, op::RST));
        assert!(d.recv().is_empty());
        // Wrong CIDs: dropped without a word.
        let mut p = d.packet(14, 5555, op::REQUEST);
        p.src_cid = 77;
        d.send(&p);
        p.src_cid = CID;
        p.dst_cid = 1;
        d.send(&p);
        assert!(d.recv().is_empty());
        // A datagram type: RST.
        let mut p = d.packet(15, 5555, op::REQUEST);
        p.type_ = 2;
        d.send(&p);
        assert_eq!(d.recv()[0].op, op::RST);
        // A second REQUEST on a live connection resets it.
        let (mut host, local) = host_connect(&mut d, 16, 64 * 1024);
        d.send(&d.packet(16, local, op::REQUEST));
        assert_eq!(d.recv()[0].op, op::RST);
        assert_eof(&mut host);
        // RESPONSE out of turn (the connection is established already).
        let (mut host, local) = host_connect(&mut d, 17, 64 * 1024);
        d.send(&d.packet(17, local, op::RESPONSE));
        assert_eq!(d.recv()[0].op, op::RST);
        assert_eof(&mut host);
        let m = metrics(&d);
        assert!(!m.failed);
        assert_eq!(
            u64::from(d.tx_used()),
            m.tx_packets,
            "every TX chain returned and counted"
        );
        assert!(!d.device.lock().unwrap().needs_reset());
    }

    #[test]
    fn unusable_rx_buffers_are_returned_empty() {
        let (_dir, mut d) = setup();
        // The first posted RX buffer (descriptor 0) becomes a read-only 44-byte buffer.
        d.rx_queue()
            .set_desc(0, virtio_queue::desc::split::Descriptor::new(0x10_0000, 44, 0, 0));
        let mut host = UnixStream::connect(&d.uds_path).unwrap();
        host.write_all(b"CONNECT 5\n").unwrap();
        d.pump();
        assert_eq!(d.rx_queue().used_elem(0), (0, 0), "returned unused");
        assert_eq!(
            d.rx_queue().used_elem(1),
            (2, 44),
            "the REQUEST in the next buffer"
        );
        let m = metrics(&d);
        assert_eq!((m.packets_dropped, m.rx_packets, m.failed), (1, 1, false));
    }

    #[test]
    fn indirect_descriptor_or_bogus_index_fails_the_device() {
        let (_dir, mut d) = setup();
        let indirect = virtio_bindings::virtio_ring::VRING_DESC_F_INDIRECT as u16;
        let hdr = d.packet(1, 2, op::REQUEST).header_bytes();
        d.send_raw(&[(&hdr, indirect)]);
        assert!(d.device.lock().unwrap().needs_reset());
        assert!(metrics(&d).failed);
        assert_ne!(d.transport.device_status() & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(d.transport.interrupt().status() & 2, 2, "config interrupt");

        let (_dir, mut d) = setup();
        d.tx_queue().set_avail_idx(1000);
        d.notify(1);
        assert!(d.device.lock().unwrap().needs_reset());
    }

    #[test]
    fn transport_reset_event_drops_connections() {
        let (_dir, mut d) = setup();
        let (mut host, _) = host_connect(&mut d, 21, 64 * 1024);
        // A buffer too small first: returned empty; the event goes into the next.
        d.post_event_buffer(2, true);
        d.device.lock().unwrap().send_transport_reset();
        d.pump();
        assert_eq!(d.events_used(), [(0, 0xffff_ffff)]);
        d.post_event_buffer(8, true);
        assert_eq!(d.events_used(), [(4, 0)]);
        assert_eof(&mut host);
        assert_eq!(d.device.lock().unwrap().connection_count(), 0);
        assert_eq!(metrics(&d).connections_reset_by_device, 1);
    }

    #[test]
    fn device_reset_closes_host_sockets_and_keeps_listening() {
        let (dir, mut d) = setup();
        let (mut host, _) = host_connect(&mut d, 30, 64 * 1024);
        crate::virtio::test_utils::write_reg(&mut d.transport, 0x70, 0);
        d.pump();
        assert_eof(&mut host);
        assert!(!d.device.lock().unwrap().is_activated());
        // A host CONNECT while the driver is down waits for it.
        let mut host = UnixStream::connect(&d.uds_path).unwrap();
        host.write_all(b"CONNECT 31\n").unwrap();
        d.pump();
        assert_nothing_to_read(&host);
        let _ = dir;
    }

    #[test]
    fn unanswered_request_and_silent_host_socket_time_out() {
        use crate::virtio::vsock::{CONNECT_LINE_TIMEOUT, REQUEST_TIMEOUT};
        let (_dir, mut d) = setup();
        // A host socket that never sends its CONNECT line, one that sends half of it, and
        // one whose REQUEST the guest never answers.
        let mut silent = UnixStream::connect(&d.uds_path).unwrap();
        let mut partial = UnixStream::connect(&d.uds_path).unwrap();
        partial.write_all(b"CONN").unwrap();
        let mut waiting = UnixStream::connect(&d.uds_path).unwrap();
        waiting.write_all(b"CONNECT 3\n").unwrap();
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(pkts[0].op, op::REQUEST);
        let local = pkts[0].src_port;
        std::thread::sleep(CONNECT_LINE_TIMEOUT.max(REQUEST_TIMEOUT) + Duration::from_millis(100));
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!(
            (pkts[0].op, pkts[0].src_port, pkts[0].dst_port),
            (op::RST, local, 3)
        );
        for s in [&mut silent, &mut partial, &mut waiting] {
            assert_closed(s);
        }
        assert_eq!(d.device.lock().unwrap().connection_count(), 0);
        assert_eq!(metrics(&d).connections_refused, 3);
    }

    #[test]
    fn guest_connection_limit_holds() {
        use crate::virtio::vsock::MAX_CONNECTIONS;
        let (_dir, mut d) = setup();
        let mut path = d.uds_path.clone().into_os_string();
        path.push("_80");
        let listener = UnixListener::bind(&path).unwrap();
        let mut hosts = Vec::new();
        let mut responses = 0;
        for i in 0..MAX_CONNECTIONS as u32 {
            d.send(&d.packet(2000 + i, 80, op::REQUEST));
            hosts.push(listener.accept().unwrap().0);
            if i % 8 == 7 {
                responses += d.recv().iter().filter(|p| p.op == op::RESPONSE).count();
            }
        }
        responses += d.recv().iter().filter(|p| p.op == op::RESPONSE).count();
        assert_eq!(responses, MAX_CONNECTIONS);
        assert_eq!(d.device.lock().unwrap().connection_count(), MAX_CONNECTIONS);
        // One more is refused; nothing was connected for it.
        d.send(&d.packet(9999, 80, op::REQUEST));
        let pkts = d.recv();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert_eq!((pkts[0].op, pkts[0].dst_port), (op::RST, 9999));
        listener.set_nonblocking(true).unwrap();
        assert!(listener.accept().is_err());
        assert_eq!(metrics(&d).connections_refused, 1);
    }

    #[test]
    fn connection_and_pending_limits_hold() {
        let (_dir, mut d) = setup();
        // More host sockets than may wait for their CONNECT line: the extra ones are closed.
        let socks: Vec<_> = (0..crate::virtio::vsock::MAX_PENDING_HOST + 3)
            .map(|_| UnixStream::connect(&d.uds_path).unwrap())
            .collect();
        d.pump();
        let closed = socks
            .iter()
            .filter(|s| {
                s.set_nonblocking(true).unwrap();
                matches!((&**s).read(&mut [0u8; 1]), Ok(0))
            })
            .count();
        assert_eq!(closed, 3);
        assert_eq!(metrics(&d).connections_refused, 3);
    }
}
