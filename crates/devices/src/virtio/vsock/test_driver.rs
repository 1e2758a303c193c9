//! A guest vsock driver for tests: the device behind a real [`MmioTransport`], served by a
//! real `EventManager`, with RX/TX/event queues in guest memory that the test fills and
//! reads through [`GuestQueue`], the way Linux's `virtio_transport` does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use event_manager::{EventManager, SubscriberOps};
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::split::Descriptor;
use virtio_vsock::packet::PKT_HEADER_SIZE;
use vm_memory::{Bytes, GuestAddress};

use super::{TYPE_STREAM, Vsock, VsockConfig};
use crate::GuestMemoryMmap;
use crate::virtio::VirtioDevice;
use crate::virtio::mmio::{MMIO_NOTIFY_OFFSET, MmioTransport};
use crate::virtio::test_utils::{GuestQueue, MmioDriver, TestQueue, guest_memory};

/// Entries per queue.
pub const DRIVER_QUEUE_SIZE: u16 = 32;
/// RX buffers (two descriptors each) the driver keeps posted.
pub const RX_SLOTS: u16 = 16;
/// Bytes of payload each RX buffer holds.
pub const RX_DATA_LEN: u32 = 4096;
/// Largest payload of one TX packet the driver can send.
pub const TX_DATA_MAX: u32 = 0x1_0000;

const RXQ: u64 = 0x1_0000;
const TXQ: u64 = 0x2_0000;
const EVQ: u64 = 0x3_0000;
const RX_BUFS: u64 = 0x10_0000;
const TX_BUFS: u64 = 0x20_0000;
const EV_BUFS: u64 = 0x3f_0000;
const TX_SLOTS: u16 = 16;
const F_NEXT: u16 = VRING_DESC_F_NEXT as u16;
const F_WRITE: u16 = VRING_DESC_F_WRITE as u16;

/// A vsock packet as the guest sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packet {
    /// Source CID.
    pub src_cid: u64,
    /// Destination CID.
    pub dst_cid: u64,
    /// Source port.
    pub src_port: u32,
    /// Destination port.
    pub dst_port: u32,
    /// `len` field.
    pub len: u32,
    /// `type` field.
    pub type_: u16,
    /// Operation.
    pub op: u16,
    /// Flags.
    pub flags: u32,
    /// Sender's buffer space.
    pub buf_alloc: u32,
    /// Sender's consumed byte count.
    pub fwd_cnt: u32,
    /// Payload (RX: as used by the device).
    pub data: Vec<u8>,
}

impl Packet {
    /// The 44-byte header.
    pub fn header_bytes(&self) -> [u8; PKT_HEADER_SIZE] {
        let mut h = [0u8; PKT_HEADER_SIZE];
        h[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        h[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        h[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        h[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        h[24..28].copy_from_slice(&self.len.to_le_bytes());
        h[28..30].copy_from_slice(&self.type_.to_le_bytes());
        h[30..32].copy_from_slice(&self.op.to_le_bytes());
        h[32..36].copy_from_slice(&self.flags.to_le_bytes());
        h[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        h[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        h
    }

    fn from_header(h: &[u8; PKT_HEADER_SIZE]) -> Self {
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
        Self {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            type_: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
            data: Vec::new(),
        }
    }
}

/// The device, its transport and event loop, and a guest driver for its queues.
pub struct VsockDriver {
    /// Guest memory.
    pub mem: GuestMemoryMmap,
    /// The transport the driver programs.
    pub transport: MmioTransport,
    /// The device.
    pub device: Arc<Mutex<Vsock>>,
    /// The event loop the device runs in.
    pub events: EventManager<Arc<Mutex<Vsock>>>,
    /// The guest CID.
    pub cid: u64,
    /// The device's `uds_path`.
    pub uds_path: PathBuf,
    rx_used_seen: u16,
    tx_slot: u16,
    ev_used_seen: u16,
}

fn layout(at: u64) -> TestQueue {
    TestQueue::new(GuestAddress(at), DRIVER_QUEUE_SIZE)
}

impl VsockDriver {
    /// A device for guest `cid` listening at `dir/v.sock`, activated by the driver with
    /// [`RX_SLOTS`] RX buffers posted.
    pub fn new(cid: u64, dir: &Path) -> Self {
        Self::new_after(cid, dir, |_, _| {})
    }

    /// [`VsockDriver::new`], with `before_driver` run once the device listens and its
    /// event loop exists, before the driver comes (resets the device and activates it): what
    /// a host does while the guest is still booting.
    pub fn new_after(
        cid: u64,
        dir: &Path,
        before_driver: impl FnOnce(&Path, &mut EventManager<Arc<Mutex<Vsock>>>),
    ) -> Self {
        let uds_path = dir.join("v.sock");
        let vsock = Vsock::new(VsockConfig {
            guest_cid: cid,
            uds_path: uds_path.clone(),
        })
        .expect("vsock device");
        let features = vsock.avail_features();
        let device = Arc::new(Mutex::new(vsock));
        let mem = guest_memory();
        let mut transport = MmioTransport::new(mem.clone(), device.clone()).expect("transport");
        let mut events = EventManager::<Arc<Mutex<Vsock>>>::new().expect("event manager");
        events.add_subscriber(device.clone());
        before_driver(&uds_path, &mut events);
        MmioDriver::new(&mut transport)
            .init(features, &[layout(RXQ), layout(TXQ), layout(EVQ)])
            .expect("driver init");
        let mut d = Self {
            mem,
            transport,
            device,
            events,
            cid,
            uds_path,
            rx_used_seen: 0,
            tx_slot: 0,
            ev_used_seen: 0,
        };
        for slot in 0..RX_SLOTS {
            d.post_rx(slot);
        }
        d.notify(0);
        d
    }

    fn rxq(&self) -> GuestQueue<'_> {
        GuestQueue::new(&self.mem, layout(RXQ))
    }

    fn txq(&self) -> GuestQueue<'_> {
        GuestQueue::new(&self.mem, layout(TXQ))
    }

    fn evq(&self) -> GuestQueue<'_> {
        GuestQueue::new(&self.mem, layout(EVQ))
    }

    fn rx_buf(slot: u16) -> u64 {
        RX_BUFS + u64::from(slot) * 0x2000
    }

    fn post_rx(&self, slot: u16) {
        let hdr = Self::rx_buf(slot);
        self.rxq().add_chain(
            2 * slot,
            &[
                Descriptor::new(hdr, PKT_HEADER_SIZE as u32, F_WRITE | F_NEXT, 2 * slot + 1),
                Descriptor::new(hdr + 0x100, RX_DATA_LEN, F_WRITE, 0),
            ],
        );
    }

    /// Writes `QueueNotify` for queue `index`, then runs the event loop until it is idle.
    pub fn notify(&mut self, index: u32) {
        self.transport.bus_write(MMIO_NOTIFY_OFFSET, &index.to_le_bytes());
        self.pump();
    }

    /// Runs the event loop until nothing is ready.
    pub fn pump(&mut self) {
        for _ in 0..1000 {
            if self.events.run_with_timeout(2).expect("event loop") == 0 {
                return;
            }
        }
        panic!("the event loop never went idle (busy loop?)");
    }

    /// A packet from this guest (`src_cid` = its CID) to the host, stream type.
    pub fn packet(&self, src_port: u32, dst_port: u32, op: u16) -> Packet {
        Packet {
            src_cid: self.cid,
            dst_cid: super::HOST_CID,
            src_port,
            dst_port,
            type_: TYPE_STREAM,
            op,
            buf_alloc: 64 * 1024,
            ..Packet::default()
        }
    }

    /// Sends `pkt` (header, then its data with `len` = data length unless `len` is set) in
    /// two descriptors, notifies, runs the event loop.
    pub fn send(&mut self, pkt: &Packet) {
        let mut pkt = pkt.clone();
        if pkt.len == 0 {
            pkt.len = pkt.data.len() as u32;
        }
        let hdr = pkt.header_bytes();
        self.send_raw(&[(&hdr, 0), (&pkt.data, 0)]);
    }

    /// Sends a chain of the given buffers (contents, extra descriptor flags); empty trailing
    /// buffers are left out. Notifies, runs the event loop.
    pub fn send_raw(&mut self, bufs: &[(&[u8], u16)]) {
        let bufs: Vec<_> = bufs
            .iter()
            .enumerate()
            .filter(|(i, (b, _))| *i == 0 || !b.is_empty())
            .map(|(_, b)| *b)
            .collect();
        let slot = self.tx_slot;
        self.tx_slot = (self.tx_slot + 1) % TX_SLOTS;
        let base = TX_BUFS + u64::from(slot) * 0x1_0000;
        let mut descs = Vec::new();
        let mut at = base;
        for (i, (b, flags)) in bufs.iter().enumerate() {
            assert!(b.len() <= TX_DATA_MAX as usize - 0x100);
            self.mem.write_slice(b, GuestAddress(at)).unwrap();
            let last = i + 1 == bufs.len();
            let next = 2 * slot + i as u16 + 1;
            let f = flags | if last { 0 } else { F_NEXT };
            descs.push(Descriptor::new(
                at,
                b.len() as u32,
                f,
                if last { 0 } else { next },
            ));
            at += if i == 0 { 0x100 } else { b.len() as u64 };
        }
        assert!(descs.len() <= 2, "two descriptors per TX slot");
        self.txq().add_chain(2 * slot, &descs);
        self.notify(1);
    }

    /// The used length of every TX packet the device returned so far, in order.
    pub fn tx_used(&self) -> u16 {
        self.txq().used_idx()
    }

    /// Runs the event loop, collects every packet the device put in the RX queue since the
    /// last call, posts their buffers again and notifies the device.
    pub fn recv(&mut self) -> Vec<Packet> {
        self.pump();
        let mut out = Vec::new();
        let mut reposted = false;
        loop {
            let used = self.rxq().used_idx();
            if used == self.rx_used_seen {
                break;
            }
            let (head, len) = self.rxq().used_elem(self.rx_used_seen % DRIVER_QUEUE_SIZE);
            self.rx_used_seen = self.rx_used_seen.wrapping_add(1);
            let slot = (head / 2) as u16;
            let mut hdr = [0u8; PKT_HEADER_SIZE];
            self.mem
                .read_slice(&mut hdr, GuestAddress(Self::rx_buf(slot)))
                .unwrap();
            let mut pkt = Packet::from_header(&hdr);
            let data_len = (len as usize).saturating_sub(PKT_HEADER_SIZE);
            assert_eq!(data_len, pkt.len as usize, "used length = header + len");
            pkt.data = vec![0u8; data_len];
            self.mem
                .read_slice(&mut pkt.data, GuestAddress(Self::rx_buf(slot) + 0x100))
                .unwrap();
            out.push(pkt);
            self.post_rx(slot);
            reposted = true;
        }
        if reposted {
            self.notify(0);
        }
        out
    }

    /// Posts one event buffer of `len` bytes, device-writable or not.
    pub fn post_event_buffer(&mut self, len: u32, writable: bool) {
        let slot = self.evq().avail_idx() % DRIVER_QUEUE_SIZE;
        let flags = if writable { F_WRITE } else { 0 };
        self.mem
            .write_obj(0xffff_ffffu32, GuestAddress(EV_BUFS + 8 * u64::from(slot)))
            .unwrap();
        self.evq().add_chain(
            slot,
            &[Descriptor::new(EV_BUFS + 8 * u64::from(slot), len, flags, 0)],
        );
        self.notify(2);
    }

    /// Events the device used since the last call: `(used length, event id)`.
    pub fn events_used(&mut self) -> Vec<(u32, u32)> {
        self.pump();
        let mut out = Vec::new();
        while self.evq().used_idx() != self.ev_used_seen {
            let (head, len) = self.evq().used_elem(self.ev_used_seen % DRIVER_QUEUE_SIZE);
            self.ev_used_seen = self.ev_used_seen.wrapping_add(1);
            let id: u32 = self
                .mem
                .read_obj(GuestAddress(EV_BUFS + 8 * u64::from(head)))
                .unwrap();
            out.push((len, u32::from_le(id)));
        }
        out
    }

    /// The RX queue view, for tests that hand-craft RX buffers.
    pub fn rx_queue(&self) -> GuestQueue<'_> {
        self.rxq()
    }

    /// The TX queue view, for tests that hand-craft chains.
    pub fn tx_queue(&self) -> GuestQueue<'_> {
        self.txq()
    }
}
