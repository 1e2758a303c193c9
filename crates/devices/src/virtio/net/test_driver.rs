//! A guest virtio-net driver for tests: the device behind a real [`MmioTransport`], served
//! by a real `EventManager`, on a real TAP in a network namespace of the test's own, with
//! RX and TX queues in guest memory that the test fills and reads through [`GuestQueue`].
//!
//! The far end of the TAP is a raw `AF_PACKET` socket bound to it
//! ([`super::tap::testing::packet_socket`]): what the socket sends, the device reads (and
//! puts in the RX queue); what the device writes, the socket receives.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use event_manager::{EventManager, SubscriberOps};
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::split::Descriptor;
use vm_memory::{Bytes, GuestAddress};

use super::tap::testing::{create_tap, enter_new_netns};
use super::{NET_HDR_LEN, Net, NetConfig, Tap};
use crate::GuestMemoryMmap;
use crate::virtio::VirtioDevice;
use crate::virtio::mmio::{MMIO_NOTIFY_OFFSET, MmioTransport};
use crate::virtio::test_utils::{GuestQueue, MmioDriver, TestQueue, guest_memory};

/// Entries per queue.
pub const DRIVER_QUEUE_SIZE: u16 = 32;
/// RX buffers the driver keeps posted (one descriptor each).
pub const RX_SLOTS: u16 = 16;
/// TX slots (two descriptors each: header, frame).
pub const TX_SLOTS: u16 = 16;
/// The largest RX buffer: a whole 64 KiB GSO frame with its header (Linux's "big packets").
pub const RX_BUF_MAX: u32 = 0x1_1000;
/// The largest TX frame (header excluded).
pub const TX_FRAME_MAX: u32 = 0x1_1000 - 0x100;
/// The TAP every driver uses, in its own namespace.
pub const TAP_NAME: &str = "vmtap0";
/// The guest's MAC.
pub const GUEST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

const RXQ: u64 = 0x1_0000;
const TXQ: u64 = 0x2_0000;
const RX_BUFS: u64 = 0x10_0000;
const TX_BUFS: u64 = 0x22_0000;
const F_NEXT: u16 = VRING_DESC_F_NEXT as u16;
const F_WRITE: u16 = VRING_DESC_F_WRITE as u16;

/// Runs `body` on a new thread in a new network namespace holding an up, persistent TAP
/// [`TAP_NAME`]; the namespace (and the TAP) go when the thread ends. Panics in `body` are
/// the test's.
pub fn in_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        enter_new_netns();
        create_tap(TAP_NAME);
        body()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn layout(at: u64) -> TestQueue {
    TestQueue::new(GuestAddress(at), DRIVER_QUEUE_SIZE)
}

/// The device, its transport and event loop, and a guest driver for its queues.
pub struct NetDriver {
    /// Guest memory.
    pub mem: GuestMemoryMmap,
    /// The transport the driver programs.
    pub transport: MmioTransport,
    /// The device.
    pub device: Arc<Mutex<Net>>,
    /// The event loop the device runs in.
    pub events: EventManager<Arc<Mutex<Net>>>,
    /// The features the driver accepted.
    pub features: u64,
    rx_buf_len: u32,
    rx_used_seen: u16,
    tx_slot: u16,
    tx_used_seen: u16,
}

impl NetDriver {
    /// A device on [`TAP_NAME`] (opened by name), activated with every feature it offers
    /// and [`RX_SLOTS`] RX buffers of [`RX_BUF_MAX`] bytes posted.
    pub fn new() -> Self {
        let tap = Tap::open(TAP_NAME).expect("open the test TAP");
        Self::with(tap, None, RX_BUF_MAX)
    }

    /// A device on `tap`, the driver accepting `features` (all offered when `None`), with
    /// RX buffers of `rx_buf_len` bytes.
    pub fn with(tap: Tap, features: Option<u64>, rx_buf_len: u32) -> Self {
        assert!(rx_buf_len <= RX_BUF_MAX);
        let config = NetConfig {
            iface_id: "eth0".into(),
            guest_mac: super::MacAddr(GUEST_MAC),
        };
        let device = Arc::new(Mutex::new(Net::new(config, tap).expect("net device")));
        let features = features.unwrap_or_else(|| device.lock().unwrap().avail_features());
        let mem = guest_memory();
        let mut transport = MmioTransport::new(mem.clone(), device.clone()).expect("transport");
        let mut events = EventManager::<Arc<Mutex<Net>>>::new().expect("event manager");
        events.add_subscriber(device.clone());
        MmioDriver::new(&mut transport)
            .init(features, &[layout(RXQ), layout(TXQ)])
            .expect("driver init");
        let mut d = Self {
            mem,
            transport,
            device,
            events,
            features,
            rx_buf_len,
            rx_used_seen: 0,
            tx_slot: 0,
            tx_used_seen: 0,
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

    fn rx_buf(slot: u16) -> u64 {
        RX_BUFS + u64::from(slot) * u64::from(RX_BUF_MAX)
    }

    /// Posts RX buffer `slot` (descriptor `slot`) without notifying.
    pub fn post_rx(&self, slot: u16) {
        self.rxq().add_chain(
            slot,
            &[Descriptor::new(Self::rx_buf(slot), self.rx_buf_len, F_WRITE, 0)],
        );
    }

    /// Writes `QueueNotify` for queue `index`, then runs the event loop until it is idle.
    pub fn notify(&mut self, index: u32) {
        self.transport.bus_write(MMIO_NOTIFY_OFFSET, &index.to_le_bytes());
        self.pump();
    }

    /// Writes `QueueNotify` for queue `index` without running the event loop.
    pub fn kick(&mut self, index: u32) {
        self.transport.bus_write(MMIO_NOTIFY_OFFSET, &index.to_le_bytes());
    }

    /// Runs one round of the event loop, waiting at most `timeout_ms` for an event.
    /// Returns the number of events handled.
    pub fn run_once(&mut self, timeout_ms: i32) -> usize {
        self.events.run_with_timeout(timeout_ms).expect("event loop")
    }

    /// Runs the event loop until nothing is ready.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            if self.events.run_with_timeout(2).expect("event loop") == 0 {
                return;
            }
        }
        panic!("the event loop never went idle (busy loop?)");
    }

    fn tx_buf(slot: u16) -> u64 {
        TX_BUFS + u64::from(slot) * u64::from(RX_BUF_MAX)
    }

    /// Sends one frame: a 12-byte header descriptor (`hdr`) and a frame descriptor;
    /// notifies without running the event loop. Returns false when all TX slots are
    /// in flight.
    pub fn queue_tx(&mut self, hdr: &[u8; NET_HDR_LEN], frame: &[u8]) -> bool {
        assert!(frame.len() <= TX_FRAME_MAX as usize);
        let slot = self.tx_slot % TX_SLOTS;
        let base = Self::tx_buf(slot);
        if self.tx_slot.wrapping_sub(self.txq().used_idx()) >= TX_SLOTS {
            return false;
        }
        self.mem.write_slice(hdr, GuestAddress(base)).unwrap();
        self.mem.write_slice(frame, GuestAddress(base + 0x100)).unwrap();
        self.post_tx(frame.len())
    }

    /// Writes `hdr` and `frame` into every TX slot, for [`NetDriver::post_tx`].
    pub fn prefill_tx(&self, hdr: &[u8; NET_HDR_LEN], frame: &[u8]) {
        for slot in 0..TX_SLOTS {
            let base = Self::tx_buf(slot);
            self.mem.write_slice(hdr, GuestAddress(base)).unwrap();
            self.mem.write_slice(frame, GuestAddress(base + 0x100)).unwrap();
        }
    }

    /// Makes the next TX slot available as it is in memory (header, then `len` bytes of
    /// frame), without notifying: a driver sending buffers it does not touch again.
    /// Returns false when all TX slots are in flight.
    pub fn post_tx(&mut self, len: usize) -> bool {
        if self.tx_slot.wrapping_sub(self.txq().used_idx()) >= TX_SLOTS {
            return false;
        }
        let slot = self.tx_slot % TX_SLOTS;
        self.tx_slot = self.tx_slot.wrapping_add(1);
        let base = Self::tx_buf(slot);
        self.txq().add_chain(
            2 * slot,
            &[
                Descriptor::new(base, NET_HDR_LEN as u32, F_NEXT, 2 * slot + 1),
                Descriptor::new(base + 0x100, len as u32, 0, 0),
            ],
        );
        true
    }

    /// Sends one frame (header descriptor + frame descriptor), notifies, runs the loop.
    pub fn send(&mut self, hdr: &[u8; NET_HDR_LEN], frame: &[u8]) {
        assert!(self.queue_tx(hdr, frame), "every TX slot is in flight");
        self.notify(1);
    }

    /// TX chains the device returned since the last call.
    pub fn tx_completed(&mut self) -> u16 {
        let used = self.txq().used_idx();
        let n = used.wrapping_sub(self.tx_used_seen);
        self.tx_used_seen = used;
        n
    }

    /// Runs the event loop, collects every frame the device put in the RX queue since the
    /// last call (header included, as long as the used length says), posts their buffers
    /// again and notifies the device.
    pub fn recv(&mut self) -> Vec<Vec<u8>> {
        self.pump();
        let mut out = Vec::new();
        while self.rxq().used_idx() != self.rx_used_seen {
            let (head, len) = self.rxq().used_elem(self.rx_used_seen % DRIVER_QUEUE_SIZE);
            self.rx_used_seen = self.rx_used_seen.wrapping_add(1);
            let mut buf = vec![0u8; len as usize];
            self.mem
                .read_slice(&mut buf, GuestAddress(Self::rx_buf(head as u16)))
                .unwrap();
            out.push(buf);
            self.post_rx(head as u16);
        }
        if !out.is_empty() {
            self.notify(0);
        }
        out
    }

    /// Counts the frames the device put in the RX queue since the last call and posts
    /// their buffers again (without reading them or notifying): the benchmark's receive.
    pub fn recycle_rx(&mut self) -> (usize, u64) {
        let (mut frames, mut bytes) = (0, 0);
        while self.rxq().used_idx() != self.rx_used_seen {
            let (head, len) = self.rxq().used_elem(self.rx_used_seen % DRIVER_QUEUE_SIZE);
            self.rx_used_seen = self.rx_used_seen.wrapping_add(1);
            frames += 1;
            bytes += u64::from(len);
            self.post_rx(head as u16);
        }
        (frames, bytes)
    }

    /// The RX queue view, for tests that hand-craft buffers.
    pub fn rx_queue(&self) -> GuestQueue<'_> {
        self.rxq()
    }

    /// The TX queue view, for tests that hand-craft chains.
    pub fn tx_queue(&self) -> GuestQueue<'_> {
        self.txq()
    }
}

impl Default for NetDriver {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends `frame` (with a 10-byte `virtio_net_hdr` first when the socket has
/// `PACKET_VNET_HDR`) out of the interface the socket is bound to.
pub fn packet_send(sock: &OwnedFd, frame: &[u8]) -> std::io::Result<usize> {
    // SAFETY: a readable buffer of its length.
    let r = unsafe { libc::send(sock.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// Receives one frame within `timeout_ms`, or `None`.
pub fn packet_recv(sock: &OwnedFd, timeout_ms: i32) -> Option<Vec<u8>> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd.
    if unsafe { libc::poll(&mut pfd, 1, timeout_ms) } <= 0 {
        return None;
    }
    let mut buf = vec![0u8; 0x1_1000];
    // SAFETY: a writable buffer of its length.
    let r = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

/// An Ethernet frame of `len` bytes from `src` to `dst` with an experimental EtherType
/// (0x88b5, "local experimental"): the stack ignores it, so only the test sees it.
pub fn test_frame(dst: [u8; 6], src: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    f.truncate(len);
    f
}

/// A TCP/IPv4 frame from `src` to `dst` (10.0.0.2:40000 → 10.0.0.1:5201) of `payload` bytes,
/// its TCP checksum left for the offload, and the 10-byte `virtio_net_hdr` that asks for
/// checksum offload and, past one `mss`, TCP segmentation (GSO).
pub fn tcp4_frame(dst: [u8; 6], src: [u8; 6], payload: usize, mss: u16) -> ([u8; 10], Vec<u8>) {
    use virtio_bindings::virtio_net;
    let mut f = Vec::with_capacity(54 + payload);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = u16::try_from(20 + 20 + payload).expect("an IPv4 packet holds at most 65535 bytes");
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 0, 0, 2]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
    let sum = !ip.chunks(2).fold(0u32, |s, c| {
        let s = s + u32::from(u16::from_be_bytes([c[0], c[1]]));
        (s & 0xffff) + (s >> 16)
    }) as u16;
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    f.extend_from_slice(&tcp);
    f.extend((0..payload).map(|i| i as u8));
    let mut h = [0u8; 10];
    h[0] = virtio_net::VIRTIO_NET_HDR_F_NEEDS_CSUM as u8;
    h[1] = if payload > usize::from(mss) {
        virtio_net::VIRTIO_NET_HDR_GSO_TCPV4 as u8
    } else {
        0
    };
    h[2..4].copy_from_slice(&54u16.to_le_bytes()); // hdr_len
    h[4..6].copy_from_slice(&mss.to_le_bytes()); // gso_size
    h[6..8].copy_from_slice(&34u16.to_le_bytes()); // csum_start
    h[8..10].copy_from_slice(&16u16.to_le_bytes()); // csum_offset
    (h, f)
}
