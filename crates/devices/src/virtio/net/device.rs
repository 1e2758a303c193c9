//! The virtio-net device and its [`VirtioDevice`] implementation: the RX and TX queues,
//! moved to and from the TAP with one `readv`/`writev` per frame on guest memory.

use std::io;
use std::sync::Arc;

use log::{error, info, warn};
use virtio_bindings::virtio_net;
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, Permissions};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::metrics::{Counter, NetMetrics};
use super::tap::{Tap, offload};
use super::{MAX_FRAME_LEN, NET_HDR_LEN, NUM_QUEUES, NetConfig, NetError, QUEUE_SIZE, RX_QUEUE, TX_QUEUE};
use crate::GuestMemoryMmap;
use crate::virtio::{BadChain, direct_chain};
use crate::virtio::{
    InterruptKind, VirtioDevice, VirtioDeviceError, VirtioInterrupt, device_type, feature, features,
    queue_wants_interrupt, read_config_bytes,
};

/// What the device holds between `DRIVER_OK` and reset.
struct Active {
    mem: GuestMemoryMmap,
    queues: [Queue; NUM_QUEUES],
}

/// A virtio-net device on a TAP (see the module documentation).
pub struct Net {
    config: NetConfig,
    tap: Tap,
    avail_features: u64,
    acked_features: u64,
    config_space: [u8; 6],
    queue_sizes: [u16; NUM_QUEUES],
    queue_evts: Vec<EventFd>,
    interrupt: Arc<VirtioInterrupt>,
    metrics: Arc<NetMetrics>,
    active: Option<Active>,
    failed: bool,
    /// The TAP may have frames: set by its readable edge, cleared by `EAGAIN`.
    pub(super) rx_ready: bool,
    /// RX stopped for want of a buffer (counted once per stall).
    rx_stalled: bool,
    /// The TAP refused a write with `EAGAIN`; TX waits for its writable edge.
    pub(super) tx_blocked: bool,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("config", &self.config)
            .field("tap", &self.tap.name())
            .field("acked_features", &self.acked_features)
            .field("active", &self.active.is_some())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Why a chain cannot be served at all: the queue is malformed and the device stops.
#[derive(Debug, thiserror::Error)]
enum ChainError {
    #[error("descriptor chain at head {0} is malformed (invalid index, loop, too long or unreadable)")]
    Malformed(u16),
    #[error(
        "descriptor chain at head {0} uses an indirect table, but VIRTIO_F_INDIRECT_DESC was not offered"
    )]
    Indirect(u16),
}

/// The features a TAP with these capabilities lets the device offer.
fn offered_features(vnet_hdr: bool, tap_offloads: u32) -> u64 {
    let mut f = feature(features::VIRTIO_F_VERSION_1)
        | feature(features::VIRTIO_RING_F_EVENT_IDX)
        | feature(virtio_net::VIRTIO_NET_F_MAC);
    if vnet_hdr {
        // Frames the guest sends may carry a partial checksum or be GSO frames: a TAP with a
        // vnet header takes both (the kernel finishes them when the path needs it).
        f |= feature(virtio_net::VIRTIO_NET_F_CSUM)
            | feature(virtio_net::VIRTIO_NET_F_HOST_TSO4)
            | feature(virtio_net::VIRTIO_NET_F_HOST_TSO6);
    }
    if tap_offloads & offload::CSUM != 0 {
        f |= feature(virtio_net::VIRTIO_NET_F_GUEST_CSUM);
    }
    if tap_offloads & (offload::TSO4 | offload::TSO6) == offload::TSO4 | offload::TSO6 {
        f |= feature(virtio_net::VIRTIO_NET_F_GUEST_TSO4) | feature(virtio_net::VIRTIO_NET_F_GUEST_TSO6);
    }
    f
}

/// The TAP offloads matching what the driver accepted for its receive side. TSO without
/// checksum offload is not a combination the TAP takes (nor a valid driver choice).
fn tap_offloads_for(acked: u64) -> u32 {
    let has = |bit| acked & feature(bit) != 0;
    if !has(virtio_net::VIRTIO_NET_F_GUEST_CSUM) {
        return 0;
    }
    let mut flags = offload::CSUM;
    if has(virtio_net::VIRTIO_NET_F_GUEST_TSO4) {
        flags |= offload::TSO4;
    }
    if has(virtio_net::VIRTIO_NET_F_GUEST_TSO6) {
        flags |= offload::TSO6;
    }
    flags
}

impl Net {
    /// Creates the device (not yet activated) on `tap`: finds which offloads the TAP takes
    /// and offers those.
    pub fn new(config: NetConfig, tap: Tap) -> Result<Self, NetError> {
        let tap_offloads = tap.probe_offloads();
        let queue_evts = (0..NUM_QUEUES)
            .map(|_| EventFd::new(EFD_NONBLOCK).map_err(VirtioDeviceError::EventFd))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            // struct virtio_net_config { u8 mac[6]; ... }: only the MAC is offered.
            config_space: config.guest_mac.0,
            avail_features: offered_features(tap.has_vnet_hdr(), tap_offloads),
            config,
            tap,
            acked_features: 0,
            queue_sizes: [QUEUE_SIZE; NUM_QUEUES],
            queue_evts,
            interrupt: Arc::new(VirtioInterrupt::new()?),
            metrics: Arc::new(NetMetrics::default()),
            active: None,
            failed: false,
            rx_ready: true,
            rx_stalled: false,
            tx_blocked: false,
        })
    }

    /// The configuration this device was made from.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The TAP.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// The device's counters; keep the `Arc` to read them while the device runs.
    pub fn metrics(&self) -> &Arc<NetMetrics> {
        &self.metrics
    }

    /// Reads and discards every frame waiting in the TAP; returns how many. For tests
    /// that need a TAP with nothing left over from an earlier case.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn drain_tap(&mut self) -> usize {
        let mut buf = vec![0u8; NET_HDR_LEN + MAX_FRAME_LEN];
        let iov = [libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        }];
        let mut n = 0;
        while self.tap.readv(&iov).is_ok() {
            n += 1;
        }
        n
    }

    /// Moves frames both ways as far as buffers and the TAP allow. Called by the event
    /// handler after every event; does nothing while the device is inactive or failed.
    pub fn process(&mut self) {
        if self.failed || self.active.is_none() {
            return;
        }
        let mut used = [false; NUM_QUEUES];
        let result = (|| -> Result<(), String> {
            used[TX_QUEUE] = self.process_tx()?;
            used[RX_QUEUE] = self.process_rx()?;
            Ok(())
        })();
        self.signal_used(used);
        if let Err(reason) = result {
            self.fail(&reason);
        }
    }

    /// Reads frames from the TAP into RX buffers until the TAP is empty or the buffers run
    /// out. Returns whether any buffer was used.
    fn process_rx(&mut self) -> Result<bool, String> {
        let Some(active) = self.active.as_mut() else {
            return Ok(false);
        };
        let mem = &active.mem;
        let queue = &mut active.queues[RX_QUEUE];
        let desc_table = GuestAddress(queue.desc_table());
        let skip = if self.tap.has_vnet_hdr() { 0 } else { NET_HDR_LEN };
        let mut used = false;
        while self.rx_ready {
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => return Err(format!("RX available ring: {e}")),
            };
            let Some(chain) = chain else {
                if queue.event_idx_enabled() {
                    match queue.enable_notification(mem) {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => return Err(format!("RX notifications: {e}")),
                    }
                }
                if !self.rx_stalled {
                    self.rx_stalled = true;
                    self.metrics.inc(Counter::RxNoBuffer);
                }
                break;
            };
            self.rx_stalled = false;
            let head = chain.head_index();
            let descs = collect_chain(mem, chain, desc_table).map_err(|e| format!("RX: {e}"))?;
            let Some(iov) = Iovecs::of(mem, &descs, skip, true).filter(|v| v.total >= NET_HDR_LEN - skip)
            else {
                warn!(
                    "virtio-net {}: unusable RX buffer returned empty",
                    self.config.iface_id
                );
                self.metrics.inc(Counter::RxDropped);
                queue
                    .add_used(mem, head, 0)
                    .map_err(|e| format!("RX used ring: {e}"))?;
                used = true;
                continue;
            };
            // One spare byte past the guest's buffer: a read that reaches it means the
            // frame did not fit (the TAP copies what fits and says nothing).
            let mut spare = [0u8; 1];
            let mut vecs = iov.iov;
            vecs.push(libc::iovec {
                iov_base: spare.as_mut_ptr().cast(),
                iov_len: 1,
            });
            match self.tap.readv(&vecs) {
                Ok(n) if n > iov.total => {
                    // Truncated: the guest must not get its head as if it were the frame.
                    // The kernel has dropped it; the buffer is kept for the next frame.
                    queue.go_to_previous_position();
                    self.metrics.inc(Counter::RxDropped);
                }
                Ok(n) if n + skip >= NET_HDR_LEN => {
                    let len = n + skip;
                    // A TAP without a vnet header gives plain frames: the guest gets a
                    // header saying "nothing offloaded". Either way num_buffers is 1
                    // (no MRG_RXBUF).
                    let mut hdr = [0u8; NET_HDR_LEN];
                    hdr[10..12].copy_from_slice(&1u16.to_le_bytes());
                    if skip == 0 {
                        write_chain(mem, &descs, 10, &hdr[10..]);
                    } else {
                        write_chain(mem, &descs, 0, &hdr);
                    }
                    queue
                        .add_used(mem, head, len as u32)
                        .map_err(|e| format!("RX used ring: {e}"))?;
                    self.metrics.rx_frame((len - NET_HDR_LEN) as u64);
                    used = true;
                }
                Ok(_) => {
                    // Nothing a TAP reads is shorter than the header; count it and go on.
                    queue.go_to_previous_position();
                    self.metrics.inc(Counter::RxDropped);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    queue.go_to_previous_position();
                    self.rx_ready = false;
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EFAULT | libc::EINVAL | libc::EMSGSIZE)
                    ) =>
                {
                    // The kernel could not copy this frame out (and dropped it). The buffer
                    // is still the guest's, for the next frame.
                    queue.go_to_previous_position();
                    self.metrics.inc(Counter::RxDropped);
                }
                Err(e) => {
                    // The TAP itself is unusable (e.g. its interface was deleted): stop
                    // reading until it signals again rather than spin.
                    error!(
                        "virtio-net {}: reading TAP {}: {e}",
                        self.config.iface_id,
                        self.tap.name()
                    );
                    queue.go_to_previous_position();
                    self.metrics.inc(Counter::RxDropped);
                    self.rx_ready = false;
                }
            }
        }
        Ok(used)
    }

    /// Writes every available TX frame to the TAP, unless it would block. Returns whether
    /// any buffer was used.
    fn process_tx(&mut self) -> Result<bool, String> {
        let Some(active) = self.active.as_mut() else {
            return Ok(false);
        };
        let mem = &active.mem;
        let queue = &mut active.queues[TX_QUEUE];
        let desc_table = GuestAddress(queue.desc_table());
        let vnet_hdr = self.tap.has_vnet_hdr();
        let skip = if vnet_hdr { 0 } else { NET_HDR_LEN };
        let mut used = false;
        while !self.tx_blocked {
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => return Err(format!("TX available ring: {e}")),
            };
            let Some(chain) = chain else {
                if queue.event_idx_enabled() {
                    match queue.enable_notification(mem) {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => return Err(format!("TX notifications: {e}")),
                    }
                }
                break;
            };
            let head = chain.head_index();
            let descs = collect_chain(mem, chain, desc_table).map_err(|e| format!("TX: {e}"))?;
            let frame = Iovecs::of(mem, &descs, skip, false).filter(|v| {
                let len = v.total + skip;
                (NET_HDR_LEN..=NET_HDR_LEN + MAX_FRAME_LEN).contains(&len)
                    && (vnet_hdr || !asks_offload(mem, &descs))
            });
            let Some(iov) = frame else {
                warn!("virtio-net {}: unusable TX frame dropped", self.config.iface_id);
                self.metrics.inc(Counter::TxDropped);
                queue
                    .add_used(mem, head, 0)
                    .map_err(|e| format!("TX used ring: {e}"))?;
                used = true;
                continue;
            };
            match self.tap.writev(&iov.iov) {
                Ok(_) => self.metrics.tx_frame((iov.total + skip - NET_HDR_LEN) as u64),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    queue.go_to_previous_position();
                    self.tx_blocked = true;
                    self.metrics.inc(Counter::TxWouldBlock);
                    break;
                }
                Err(e) => {
                    warn!(
                        "virtio-net {}: TAP {} refused a frame: {e}",
                        self.config.iface_id,
                        self.tap.name()
                    );
                    self.metrics.inc(Counter::TxDropped);
                }
            }
            queue
                .add_used(mem, head, 0)
                .map_err(|e| format!("TX used ring: {e}"))?;
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
                Err(e) => warn!("virtio-net: {e}"),
            }
        }
        if wants {
            if let Err(e) = self.interrupt.trigger(InterruptKind::UsedRing) {
                error!("virtio-net {}: {e}", self.config.iface_id);
            }
        }
    }

    /// Stops the device on a malformed queue: no more queue work until the driver resets
    /// it, which it learns from `DEVICE_NEEDS_RESET` and a configuration interrupt.
    fn fail(&mut self, reason: &str) {
        error!(
            "virtio-net {}: malformed queue ({reason}); device needs reset",
            self.config.iface_id
        );
        self.failed = true;
        self.metrics.set_failed(true);
        if let Err(e) = self.interrupt.trigger(InterruptKind::Config) {
            error!("virtio-net {}: {e}", self.config.iface_id);
        }
    }
}

/// The descriptors of a chain, refusing indirect tables (never offered) and chains that
/// loop or run past the queue.
fn collect_chain(
    mem: &GuestMemoryMmap,
    chain: DescriptorChain<&GuestMemoryMmap>,
    desc_table: GuestAddress,
) -> Result<Vec<Descriptor>, ChainError> {
    direct_chain(mem, chain, desc_table).map_err(|bad| match bad {
        BadChain::Malformed(head) => ChainError::Malformed(head),
        BadChain::Indirect(head) => ChainError::Indirect(head),
    })
}

/// Host iovecs over a chain's buffers, the first `skip` bytes left out.
struct Iovecs {
    iov: Vec<libc::iovec>,
    total: usize,
}

impl Iovecs {
    /// `None` when a buffer has the wrong direction (`writable`: device-writable wanted) or
    /// lies outside guest memory.
    fn of(mem: &GuestMemoryMmap, descs: &[Descriptor], mut skip: usize, writable: bool) -> Option<Self> {
        let mut iov = Vec::with_capacity(descs.len());
        let mut total = 0usize;
        for d in descs {
            if d.is_write_only() != writable {
                return None;
            }
            let len = d.len() as usize;
            let cut = skip.min(len);
            skip -= cut;
            // Checked whole, even the part skipped: a buffer must be guest memory.
            let mut at = 0usize;
            let access = if writable {
                Permissions::Write
            } else {
                Permissions::Read
            };
            for slice in mem.get_slices(d.addr(), len, access).ok()? {
                let slice = slice.ok()?;
                let (start, end) = (at, at + slice.len());
                at = end;
                let from = cut.max(start);
                if from < end {
                    let ptr = slice.ptr_guard_mut().as_ptr();
                    iov.push(libc::iovec {
                        // SAFETY: `from - start` is within this slice.
                        iov_base: unsafe { ptr.add(from - start) }.cast(),
                        iov_len: end - from,
                    });
                    total += end - from;
                }
            }
        }
        Some(Self { iov, total })
    }
}

/// Whether a TX header asks for an offload (for a TAP without a vnet header, which cannot).
fn asks_offload(mem: &GuestMemoryMmap, descs: &[Descriptor]) -> bool {
    let mut hdr = [0u8; 2];
    read_chain(mem, descs, &mut hdr);
    hdr[0] & virtio_net::VIRTIO_NET_HDR_F_NEEDS_CSUM as u8 != 0
        || hdr[1] != virtio_net::VIRTIO_NET_HDR_GSO_NONE as u8
}

/// Reads the first bytes of a chain (its buffers already checked to be in memory).
fn read_chain(mem: &GuestMemoryMmap, descs: &[Descriptor], out: &mut [u8]) {
    let mut done = 0;
    for d in descs {
        if done == out.len() {
            break;
        }
        let n = (d.len() as usize).min(out.len() - done);
        let _ = mem.read_slice(&mut out[done..done + n], d.addr());
        done += n;
    }
}

/// Writes `bytes` at `offset` into a chain (its buffers already checked to be in memory).
fn write_chain(mem: &GuestMemoryMmap, descs: &[Descriptor], mut offset: usize, bytes: &[u8]) {
    let mut done = 0;
    for d in descs {
        if done == bytes.len() {
            break;
        }
        let len = d.len() as usize;
        if offset >= len {
            offset -= len;
            continue;
        }
        let n = (len - offset).min(bytes.len() - done);
        let _ = mem.write_slice(&bytes[done..done + n], d.addr().unchecked_add(offset as u64));
        done += n;
        offset = 0;
    }
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        device_type::NET
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
        // The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR's legacy path, not offered.
        warn!(
            "virtio-net {}: write of {} bytes to read-only config space at {offset:#x} ignored",
            self.config.iface_id,
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
        let offloads = tap_offloads_for(self.acked_features);
        if self.tap.has_vnet_hdr() {
            // The TAP hands over only what the driver takes. Should the ioctl fail the TAP
            // keeps its offloads off (as at probe and reset): plain frames, which every
            // driver takes, so the device still works.
            if let Err(e) = self.tap.set_offload(offloads) {
                warn!(
                    "virtio-net {}: TUNSETOFFLOAD {offloads:#x} on {}: {e}; receive offloads stay off",
                    self.config.iface_id,
                    self.tap.name()
                );
            }
        }
        info!(
            "virtio-net {}: activated on TAP {} (features {:#x}, TAP offloads {offloads:#x})",
            self.config.iface_id,
            self.tap.name(),
            self.acked_features
        );
        self.active = Some(Active { mem, queues });
        self.rx_stalled = false;
        Ok(())
    }

    fn is_activated(&self) -> bool {
        self.active.is_some()
    }

    fn reset(&mut self) {
        self.active = None;
        self.acked_features = 0;
        self.failed = false;
        self.rx_stalled = false;
        self.tx_blocked = false;
        self.metrics.set_failed(false);
        if self.tap.has_vnet_hdr() {
            let _ = self.tap.set_offload(0);
        }
    }

    fn needs_reset(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};

    use super::*;
    use crate::virtio::net::tap::testing::packet_socket;
    use crate::virtio::net::test_driver::{
        GUEST_MAC, NetDriver, RX_SLOTS, TAP_NAME, in_netns, packet_recv, packet_send, tcp4_frame, test_frame,
    };
    use crate::virtio::net::{MacAddr, NetMetricsSnapshot};
    use crate::virtio::test_utils::read_reg;

    const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const EXPERIMENTAL: [u8; 2] = [0x88, 0xb5];

    fn metrics(d: &NetDriver) -> NetMetricsSnapshot {
        d.device.lock().unwrap().metrics().snapshot()
    }

    /// Frames of ours (the experimental EtherType), not the IPv6 chatter of a fresh link.
    fn ours(frame: &[u8], at: usize) -> bool {
        frame.len() >= at + 14 && frame[at + 12..at + 14] == EXPERIMENTAL
    }

    /// Reads the next frame of ours from a packet socket.
    fn next_frame(sock: &OwnedFd) -> Option<Vec<u8>> {
        for _ in 0..100 {
            let f = packet_recv(sock, 2000)?;
            if ours(&f, 0) {
                return Some(f);
            }
        }
        None
    }

    /// Collects RX buffers (header + frame) carrying our frames until `n` are in.
    fn recv_ours(d: &mut NetDriver, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for _ in 0..50 {
            got.extend(d.recv().into_iter().filter(|b| ours(b, NET_HDR_LEN)));
            if got.len() >= n {
                break;
            }
        }
        got
    }

    const NO_HDR: [u8; NET_HDR_LEN] = [0; NET_HDR_LEN];

    #[test]
    fn device_identity_features_and_mac() {
        in_netns(|| {
            let mut d = NetDriver::new();
            assert_eq!(read_reg(&mut d.transport, 0x008), 1, "DeviceID");
            let mut mac = [0u8; 6];
            for (i, b) in mac.iter_mut().enumerate() {
                let mut one = [0u8; 1];
                d.transport.bus_read(0x100 + i as u64, &mut one);
                *b = one[0];
            }
            assert_eq!(mac, GUEST_MAC);
            // A real TAP takes every offload: all are offered.
            let f = d.features;
            for bit in [
                virtio_net::VIRTIO_NET_F_MAC,
                virtio_net::VIRTIO_NET_F_CSUM,
                virtio_net::VIRTIO_NET_F_GUEST_CSUM,
                virtio_net::VIRTIO_NET_F_HOST_TSO4,
                virtio_net::VIRTIO_NET_F_HOST_TSO6,
                virtio_net::VIRTIO_NET_F_GUEST_TSO4,
                virtio_net::VIRTIO_NET_F_GUEST_TSO6,
                features::VIRTIO_F_VERSION_1,
            ] {
                assert!(f & feature(bit) != 0, "feature bit {bit} not offered");
            }
            assert_eq!(f & feature(virtio_net::VIRTIO_NET_F_MRG_RXBUF), 0);
            assert_eq!(f & feature(virtio_net::VIRTIO_NET_F_CTRL_VQ), 0);
            // The config space is read-only.
            d.transport.bus_write(0x100, &[0xff]);
            let mut one = [0u8; 1];
            d.transport.bus_read(0x100, &mut one);
            assert_eq!(one[0], GUEST_MAC[0]);
        });
    }

    #[test]
    fn frames_flow_both_ways_through_a_real_tap() {
        in_netns(|| {
            let mut d = NetDriver::new();
            let sock = packet_socket(TAP_NAME, false);
            // Guest → TAP: the frame comes out of the TAP as the guest wrote it.
            for len in [60, 1514] {
                let frame = test_frame(PEER_MAC, GUEST_MAC, len, len as u8);
                d.send(&NO_HDR, &frame);
                assert_eq!(next_frame(&sock).as_deref(), Some(&frame[..]), "{len}-byte frame");
            }
            assert_eq!(d.tx_completed(), 2);
            // TAP → guest: header (no offload, num_buffers 1) then the frame.
            let frame = test_frame(GUEST_MAC, PEER_MAC, 1514, 7);
            packet_send(&sock, &frame).unwrap();
            let got = recv_ours(&mut d, 1);
            assert_eq!(got.len(), 1);
            assert_eq!(&got[0][..10], &[0u8; 10], "nothing offloaded");
            assert_eq!(u16::from_le_bytes([got[0][10], got[0][11]]), 1, "num_buffers");
            assert_eq!(&got[0][NET_HDR_LEN..], &frame[..]);
            let m = metrics(&d);
            assert_eq!((m.tx_packets, m.tx_bytes, m.tx_dropped), (2, 60 + 1514, 0));
            assert!(m.rx_packets >= 1 && m.rx_bytes >= 1514, "{m:?}");
            assert_eq!((m.rx_dropped, m.failed), (0, false));
            assert!(d.transport.interrupt().status() & 1 == 1, "used-ring interrupt");
        });
    }

    fn tcp4_gso(payload: usize, mss: u16) -> ([u8; 10], Vec<u8>) {
        tcp4_frame(GUEST_MAC, PEER_MAC, payload, mss)
    }

    /// Frames of ours are TCP from 10.0.0.2 here.
    fn is_tcp4(buf: &[u8]) -> bool {
        buf.len() > NET_HDR_LEN + 34
            && buf[NET_HDR_LEN + 12..NET_HDR_LEN + 14] == [0x08, 0x00]
            && buf[NET_HDR_LEN + 23] == 6
    }

    /// The TAP hands a 64 KiB GSO frame whole to a driver that accepted GUEST_TSO4, and
    /// segments it for one that did not: the TAP's offloads follow what was acked.
    #[test]
    fn receive_offloads_follow_what_the_driver_accepted() {
        const PAYLOAD: usize = 60_000;
        in_netns(|| {
            let sock = packet_socket(TAP_NAME, true);
            let (h, frame) = tcp4_gso(PAYLOAD, 1448);
            let mut wire = h.to_vec();
            wire.extend_from_slice(&frame);

            let mut d = NetDriver::new();
            packet_send(&sock, &wire).unwrap();
            let got: Vec<_> = (0..20).flat_map(|_| d.recv()).filter(|b| is_tcp4(b)).collect();
            assert_eq!(got.len(), 1, "one whole GSO frame");
            assert_eq!(got[0][1], virtio_net::VIRTIO_NET_HDR_GSO_TCPV4 as u8, "gso_type");
            assert_eq!(got[0].len(), NET_HDR_LEN + frame.len());
            drop(d);

            // Only VERSION_1 and MAC: the kernel segments and checksums before the TAP.
            let tap = Tap::open(TAP_NAME).unwrap();
            let basic = feature(features::VIRTIO_F_VERSION_1) | feature(virtio_net::VIRTIO_NET_F_MAC);
            let mut d = NetDriver::with(tap, Some(basic), 2048);
            packet_send(&sock, &wire).unwrap();
            let mut segments = Vec::new();
            for _ in 0..50 {
                segments.extend(d.recv().into_iter().filter(|b| is_tcp4(b)));
                let bytes: usize = segments.iter().map(|s| s.len() - NET_HDR_LEN - 54).sum();
                if bytes >= PAYLOAD {
                    break;
                }
            }
            let bytes: usize = segments.iter().map(|s| s.len() - NET_HDR_LEN - 54).sum();
            assert_eq!(bytes, PAYLOAD);
            assert_eq!(segments.len(), PAYLOAD.div_ceil(1448));
            assert!(segments.iter().all(|s| s[..2] == [0, 0]), "no flags, no GSO");
            assert_eq!(metrics(&d).rx_dropped, 0);
        });
    }

    /// A 64 KiB GSO frame from the guest (HOST_TSO4) leaves the TAP whole, with its header.
    #[test]
    fn a_gso_frame_from_the_guest_reaches_the_tap_whole() {
        in_netns(|| {
            let mut d = NetDriver::new();
            let sock = packet_socket(TAP_NAME, true);
            let (h, frame) = tcp4_gso(60_000, 1448);
            let mut hdr = NO_HDR;
            hdr[..10].copy_from_slice(&h);
            d.send(&hdr, &frame);
            let got = (0..100)
                .filter_map(|_| packet_recv(&sock, 2000))
                .find(|f| f.len() > 10 + 34 && f[10 + 12..10 + 14] == [0x08, 0x00])
                .expect("the frame on the TAP");
            assert_eq!(got[1], virtio_net::VIRTIO_NET_HDR_GSO_TCPV4 as u8);
            assert_eq!(&got[10..], &frame[..]);
            let m = metrics(&d);
            assert_eq!(
                (m.tx_packets, m.tx_bytes, m.tx_dropped),
                (1, frame.len() as u64, 0)
            );
        });
    }

    #[test]
    fn rx_without_buffers_waits_then_resumes_in_order() {
        in_netns(|| {
            let mut d = NetDriver::new();
            let sock = packet_socket(TAP_NAME, false);
            let n = usize::from(RX_SLOTS) + 8;
            let frames: Vec<_> = (0..n)
                .map(|i| test_frame(GUEST_MAC, PEER_MAC, 100 + i, i as u8))
                .collect();
            // Fill every buffer first, so the test's frames meet an empty queue.
            let mut stray = 0;
            while d.device.lock().unwrap().metrics().snapshot().rx_no_buffer == 0 {
                packet_send(&sock, &test_frame(GUEST_MAC, PEER_MAC, 60, 0xee)).unwrap();
                d.pump();
                stray += 1;
                assert!(stray <= RX_SLOTS as usize + 50);
            }
            for f in &frames {
                packet_send(&sock, f).unwrap();
            }
            d.pump();
            assert_eq!(metrics(&d).rx_no_buffer, 1, "one stall, counted once");
            let got: Vec<_> = recv_ours(&mut d, stray + n)
                .into_iter()
                .map(|b| b[NET_HDR_LEN..].to_vec())
                .filter(|f| f[14] != 0xee || f.len() != 60)
                .collect();
            assert_eq!(got, frames);
            assert_eq!(metrics(&d).rx_dropped, 0);
        });
    }

    #[test]
    fn a_frame_too_big_for_the_buffer_is_dropped_and_counted_the_buffer_reused() {
        in_netns(|| {
            let tap = Tap::open(TAP_NAME).unwrap();
            let mut d = NetDriver::with(tap, None, 256);
            let sock = packet_socket(TAP_NAME, false);
            let big = test_frame(GUEST_MAC, PEER_MAC, 1000, 1);
            let small = test_frame(GUEST_MAC, PEER_MAC, 200, 2);
            packet_send(&sock, &big).unwrap();
            packet_send(&sock, &small).unwrap();
            let got = recv_ours(&mut d, 1);
            assert_eq!(got.len(), 1);
            assert_eq!(&got[0][NET_HDR_LEN..], &small[..]);
            assert_eq!(metrics(&d).rx_dropped, 1);
        });
    }

    #[test]
    fn unusable_chains_are_returned_and_counted_malformed_queues_fail_the_device() {
        use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_WRITE};
        in_netns(|| {
            let mut d = NetDriver::new();
            let w = VRING_DESC_F_WRITE as u16;
            // TX: device-writable buffer; shorter than the header; outside guest memory;
            // longer than the largest frame.
            let bad = [
                Descriptor::new(0x30_0000, 100, w, 0),
                Descriptor::new(0x30_0000, 4, 0, 0),
                Descriptor::new(0x7fff_0000, 100, 0, 0),
                Descriptor::new(0x20_0000, (NET_HDR_LEN + MAX_FRAME_LEN + 1) as u32, 0, 0),
            ];
            for (i, desc) in bad.iter().enumerate() {
                d.tx_queue().add_chain(20 + i as u16, &[*desc]);
            }
            d.notify(1);
            assert_eq!(d.tx_completed(), 4);
            let m = metrics(&d);
            assert_eq!((m.tx_dropped, m.tx_packets, m.failed), (4, 0, false));
            // RX: a read-only buffer is returned empty.
            d.rx_queue()
                .add_chain(20, &[Descriptor::new(0x30_0000, 2048, 0, 0)]);
            let sock = packet_socket(TAP_NAME, false);
            // Drain the posted buffers so the read-only one is next.
            for _ in 0..RX_SLOTS {
                packet_send(&sock, &test_frame(GUEST_MAC, PEER_MAC, 60, 3)).unwrap();
            }
            d.pump();
            packet_send(&sock, &test_frame(GUEST_MAC, PEER_MAC, 60, 4)).unwrap();
            d.notify(0);
            assert!(metrics(&d).rx_dropped >= 1, "{:?}", metrics(&d));
            assert!(!d.device.lock().unwrap().needs_reset());
            // An indirect descriptor (never offered) is a malformed queue.
            d.tx_queue().add_chain(
                30,
                &[Descriptor::new(0x30_0000, 32, VRING_DESC_F_INDIRECT as u16, 0)],
            );
            d.notify(1);
            assert!(d.device.lock().unwrap().needs_reset());
            assert!(metrics(&d).failed);
            assert!(
                d.transport.interrupt().status() & 2 == 2,
                "configuration interrupt"
            );
            // Reset: the device works again.
            d.device.lock().unwrap().reset();
            assert!(!metrics(&d).failed);
        });
    }

    #[test]
    fn a_tap_descriptor_without_vnet_header_gets_plain_frames_and_no_offloads() {
        in_netns(|| {
            // Attach a second way: an fd opened here without IFF_VNET_HDR.
            let fd = {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/net/tun")
                    .unwrap();
                let mut req = [0u8; 40];
                req[..TAP_NAME.len()].copy_from_slice(TAP_NAME.as_bytes());
                let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as u16;
                req[16..18].copy_from_slice(&flags.to_ne_bytes());
                // SAFETY: a 40-byte ifreq.
                let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, req.as_mut_ptr()) };
                assert_eq!(rc, 0, "TUNSETIFF");
                OwnedFd::from(file)
            };
            let tap = Tap::from_fd(fd).unwrap();
            assert!(!tap.has_vnet_hdr());
            assert_eq!(tap.name(), TAP_NAME);
            let mut d = NetDriver::with(tap, None, 2048);
            let offload_bits = [
                virtio_net::VIRTIO_NET_F_CSUM,
                virtio_net::VIRTIO_NET_F_GUEST_CSUM,
                virtio_net::VIRTIO_NET_F_HOST_TSO4,
                virtio_net::VIRTIO_NET_F_GUEST_TSO4,
            ];
            assert!(offload_bits.iter().all(|b| d.features & feature(*b) == 0));
            let sock = packet_socket(TAP_NAME, false);
            let out = test_frame(PEER_MAC, GUEST_MAC, 300, 5);
            d.send(&NO_HDR, &out);
            assert_eq!(next_frame(&sock).as_deref(), Some(&out[..]));
            let inbound = test_frame(GUEST_MAC, PEER_MAC, 300, 6);
            packet_send(&sock, &inbound).unwrap();
            let got = recv_ours(&mut d, 1);
            assert_eq!(got.len(), 1);
            assert_eq!(&got[0][..NET_HDR_LEN], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
            assert_eq!(&got[0][NET_HDR_LEN..], &inbound[..]);
            // A header asking for an offload this TAP cannot do is dropped, counted.
            let mut h = NO_HDR;
            h[0] = virtio_net::VIRTIO_NET_HDR_F_NEEDS_CSUM as u8;
            d.send(&h, &out);
            assert_eq!(metrics(&d).tx_dropped, 1);
        });
    }

    #[test]
    fn opening_a_tap_that_is_missing_or_not_a_tap_says_so() {
        in_netns(|| {
            let e = Tap::open("nosuchtap").unwrap_err();
            assert!(matches!(e, NetError::TapNotFound(_)), "{e}");
            assert!(e.to_string().starts_with("host_dev_name: no TAP device"), "{e}");
            let e = Tap::open("lo").unwrap_err();
            assert!(matches!(e, NetError::NotATap(_)), "{e}");
            let e = Tap::open(&"x".repeat(16)).unwrap_err();
            assert!(matches!(e, NetError::HostDevNameTooLong { len: 16, .. }), "{e}");
            // A descriptor that is not a TAP.
            let file = std::fs::File::open("/dev/null").unwrap();
            let e = Tap::from_fd(OwnedFd::from(file)).unwrap_err();
            assert!(e.to_string().starts_with("tap_fd: "), "{e}");
        });
    }

    #[test]
    fn the_mac_is_what_the_config_space_says() {
        in_netns(|| {
            let tap = Tap::open(TAP_NAME).unwrap();
            let config = NetConfig {
                iface_id: "eth1".into(),
                guest_mac: MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            };
            let net = Net::new(config, tap).unwrap();
            let mut mac = [0u8; 8];
            net.read_config(0, &mut mac);
            assert_eq!(mac, [0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0]);
        });
    }
}
