//! virtio-net through its real entry points, driven by arbitrary bytes, on a real TAP in a
//! network namespace of the harness's own (made once per thread: the namespace is
//! per-thread, so the rest of the test process keeps its own).
//!
//! One case: reset the transport, bring the device up through `bus_write` with an
//! arbitrary subset of the offered features (offloads included) and queues of arbitrary
//! sizes, then for up to four rounds let the TAP's far end act (raw packet sockets send
//! frames of any size, plain or as GSO frames with an arbitrary `virtio_net_hdr`) and an
//! arbitrary guest driver act (descriptor chains of one to three buffers anywhere in and
//! around guest memory, with wrong directions, indirect flags, broken `next` links,
//! arbitrary TX headers and available rings, notifications of any queue), and run the
//! device's event-loop subscriber until it is idle.
//!
//! After every round these must hold:
//! - the event loop goes idle (no busy loop on the TAP or an eventfd);
//! - guest memory changed only in the used rings and in device-writable RX buffers (never
//!   in TX buffers, descriptor tables or available rings), and never outside guest memory
//!   (guard pages turn that into a crash);
//! - every TX chain returned has used length 0; every RX used length is a header at least
//!   and at most the chain's writable bytes, and the RX header says `num_buffers` = 1;
//! - `failed` in the metrics agrees with `DEVICE_NEEDS_RESET` in `Status`;
//! - every TX chain the device returned is counted once, sent or dropped.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use arbitrary::{Result as ArbResult, Unstructured};
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use vm_memory::{Bytes, GuestAddress};
use vmctl_devices::GuestMemoryMmap;
use vmctl_devices::virtio::VirtioDevice;
use vmctl_devices::virtio::mmio::MmioTransport;
use vmctl_devices::virtio::net::tap::testing::{create_tap, enter_new_netns, packet_socket};
use vmctl_devices::virtio::net::test_driver::{packet_send, tcp4_frame};
use vmctl_devices::virtio::net::{MacAddr, NET_HDR_LEN, Net, NetConfig, Tap};

use super::memory::{REGIONS, Snapshot, guarded_memory};
use super::regs;

const TAP: &str = "fuzztap0";
const GUEST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;
/// Queue structures live in R0 at these addresses (16 entries fit in 0x400).
const QUEUE_AT: [u64; 2] = [0x0, 0x400];
const QUEUES_END: u64 = 0x800;

/// The device on guarded guest memory, behind a transport, in a real event loop, on a TAP
/// whose far end is two packet sockets (plain and with a vnet header).
pub struct NetHarness {
    mem: GuestMemoryMmap,
    device: Arc<Mutex<Net>>,
    transport: MmioTransport,
    events: EventManager<Arc<Mutex<dyn MutEventSubscriber + Send>>>,
    plain: OwnedFd,
    gso: OwnedFd,
    avail_features: u64,
    /// The guest wrote a buffer over the queue structures in this case.
    clobbered: bool,
}

impl NetHarness {
    pub fn new() -> Self {
        enter_new_netns();
        create_tap(TAP);
        let tap = Tap::open(TAP).expect("open the TAP");
        let config = NetConfig {
            iface_id: "fuzz".into(),
            guest_mac: MacAddr(GUEST_MAC),
        };
        let device = Arc::new(Mutex::new(Net::new(config, tap).expect("net device")));
        let avail_features = device.lock().unwrap().avail_features();
        let mem = guarded_memory();
        let transport = MmioTransport::new(mem.clone(), device.clone()).expect("transport");
        let mut events =
            EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new().expect("event manager");
        events.add_subscriber(device.clone());
        Self {
            mem,
            device,
            transport,
            events,
            plain: packet_socket(TAP, false),
            gso: packet_socket(TAP, true),
            avail_features,
            clobbered: false,
        }
    }

    fn write_reg(&mut self, offset: u64, value: u32) {
        self.transport.bus_write(offset, &value.to_le_bytes());
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        let mut data = [0u8; 4];
        self.transport.bus_read(offset, &mut data);
        u32::from_le_bytes(data)
    }

    /// Runs the event loop until nothing is ready; a loop that never settles is a failure.
    fn pump(&mut self) -> Result<(), String> {
        for _ in 0..500 {
            match self.events.run_with_timeout(0) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("event loop: {e:?}")),
            }
        }
        Err("the event loop never went idle (busy loop)".into())
    }

    /// Drains what the TAP's far end received (the device's TX frames), so sockets never
    /// fill up between cases.
    fn drain_sockets(&self) {
        for s in [&self.plain, &self.gso] {
            let mut buf = vec![0u8; 0x1_0100];
            // SAFETY: a writable buffer of its length; MSG_DONTWAIT never blocks.
            while unsafe {
                libc::recv(
                    std::os::fd::AsRawFd::as_raw_fd(s),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            } > 0
            {}
        }
    }
}

impl Default for NetHarness {
    fn default() -> Self {
        Self::new()
    }
}

/// What a failed case reports.
pub struct Failure {
    pub message: String,
    pub trace: Vec<String>,
}

struct Trace(Option<Vec<String>>);

impl Trace {
    fn note(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.0 {
            t.push(f());
        }
    }
}

/// Runs one case from `data`. `Ok(true)` when a frame went through the device either way.
pub fn run_case(h: &mut NetHarness, data: &[u8], trace: bool) -> Result<bool, Failure> {
    let mut t = Trace(trace.then(Vec::new));
    let mut u = Unstructured::new(data);
    let moved = |h: &NetHarness| {
        let m = h.device.lock().unwrap().metrics().snapshot();
        m.rx_packets + m.tx_packets
    };
    let before = moved(h);
    let r = case(h, &mut u, &mut t).map(|_| moved(h) > before);
    h.drain_sockets();
    match r {
        Ok(moved) => Ok(moved),
        Err(message) => Err(Failure {
            message,
            trace: t.0.unwrap_or_default(),
        }),
    }
}

#[derive(Debug, Clone, Copy)]
struct Q {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
}

impl Q {
    fn new(at: u64, size: u16) -> Self {
        let n = u64::from(size);
        let avail = at + 16 * n;
        let used = (avail + 6 + 2 * n + 3) & !3;
        Self {
            size,
            desc: at,
            avail,
            used,
        }
    }

    fn used_end(&self) -> u64 {
        self.used + 6 + 8 * u64::from(self.size)
    }
}

fn one_in(u: &mut Unstructured, n: u32) -> ArbResult<bool> {
    Ok(u.int_in_range(1..=n)? == n)
}

fn case(h: &mut NetHarness, u: &mut Unstructured, t: &mut Trace) -> Result<(), String> {
    h.write_reg(regs::STATUS, 0);
    h.clobbered = false;
    let _ = h.transport.interrupt().irq_evt().read();
    Snapshot::zero().restore(&h.mem);
    h.pump()?;
    // Frames an earlier case left in the TAP would make this one depend on it.
    h.device.lock().unwrap().drain_tap();

    let generr = |e: arbitrary::Error| format!("generator: {e}");
    let mut queues = [Q::new(0, 1); 2];
    for (i, q) in queues.iter_mut().enumerate() {
        let size = *u.choose(&[1u16, 2, 4, 8, 16, 16]).unwrap_or(&16);
        *q = Q::new(QUEUE_AT[i], size);
    }
    // Any subset of what is offered, with VERSION_1 (the transport insists).
    let features = (u.arbitrary::<u64>().unwrap_or(u64::MAX) & h.avail_features) | (1 << 32);
    h.write_reg(regs::STATUS, 1);
    h.write_reg(regs::STATUS, 3);
    for sel in 0..2u32 {
        h.write_reg(regs::DRIVER_FEATURES_SEL, sel);
        h.write_reg(regs::DRIVER_FEATURES, (features >> (32 * sel)) as u32);
    }
    h.write_reg(regs::STATUS, 0xb);
    for (i, q) in queues.iter().enumerate() {
        h.write_reg(regs::QUEUE_SEL, i as u32);
        h.write_reg(regs::QUEUE_NUM, u32::from(q.size));
        for (low, addr) in [
            (regs::QUEUE_DESC_LOW, q.desc),
            (regs::QUEUE_AVAIL_LOW, q.avail),
            (regs::QUEUE_USED_LOW, q.used),
        ] {
            h.write_reg(low, addr as u32);
            h.write_reg(low + 4, (addr >> 32) as u32);
        }
        h.write_reg(regs::QUEUE_READY, 1);
    }
    h.write_reg(regs::STATUS, 0xf);
    if !h.device.lock().unwrap().is_activated() {
        return Err("device not activated by a well-formed bring-up".into());
    }
    t.note(|| format!("activated with features {features:#x}: {queues:?}"));

    let mut next_avail = [0u16; 2];
    let mut seen_used = [0u16; 2];
    let rounds = u.int_in_range(1..=4).unwrap_or(1);
    for round in 0..rounds {
        let tx_before = h.device.lock().unwrap().metrics().snapshot();
        far_end(h, u, t).map_err(generr)?;
        guest_actions(h, u, t, &queues, &mut next_avail).map_err(generr)?;
        let before = Snapshot::take(&h.mem);
        let notify = u.int_in_range(0..=2).unwrap_or(0);
        t.note(|| format!("round {round}: QueueNotify {notify}"));
        h.write_reg(regs::QUEUE_NOTIFY, notify);
        if one_in(u, 4).unwrap_or(false) {
            h.write_reg(regs::QUEUE_NOTIFY, 1 - notify.min(1));
        }
        h.pump()?;
        let returned = check(h, &queues, &before, &mut seen_used, t)?;
        let m = h.device.lock().unwrap().metrics().snapshot();
        let counted = (m.tx_packets + m.tx_dropped) - (tx_before.tx_packets + tx_before.tx_dropped);
        if !h.clobbered && !m.failed && counted != returned {
            return Err(format!(
                "{returned} TX chains returned but {counted} counted sent or dropped"
            ));
        }
    }
    Ok(())
}

/// The far end of the TAP: frames out of it, which the device reads.
fn far_end(h: &mut NetHarness, u: &mut Unstructured, t: &mut Trace) -> ArbResult<()> {
    let n = u.int_in_range(0..=4)?;
    for _ in 0..n {
        if one_in(u, 3)? {
            // A TCP frame with an arbitrary virtio_net_hdr (GSO or not).
            let payload = usize::from(u.int_in_range(0u16..=6000)?);
            let (mut hdr, frame) = tcp4_frame(GUEST_MAC, [2, 0, 0, 0, 0, 2], payload, 1448);
            if one_in(u, 2)? {
                u.fill_buffer(&mut hdr)?;
            }
            let mut wire = hdr.to_vec();
            wire.extend_from_slice(&frame);
            let shown = hdr;
            t.note(|| {
                format!(
                    "far end: GSO-socket frame of {} bytes, header {shown:02x?}",
                    frame.len()
                )
            });
            let _ = packet_send(&h.gso, &wire);
        } else {
            let len = usize::from(u.int_in_range(14u16..=3000)?);
            let mut frame = vec![0u8; len];
            frame[..6].copy_from_slice(&GUEST_MAC);
            frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
            frame[12..14].copy_from_slice(&[0x88, 0xb5]);
            t.note(|| format!("far end: frame of {len} bytes"));
            let _ = packet_send(&h.plain, &frame);
        }
    }
    Ok(())
}

/// A buffer address: usually in the buffer area of R0/R1, sometimes anywhere.
fn buf_addr(u: &mut Unstructured) -> ArbResult<u64> {
    Ok(match u.int_in_range(0..=15)? {
        15 => u.arbitrary()?,
        14 => REGIONS[2].0 + u64::from(u.int_in_range(0u32..=0x4000)?),
        13 => REGIONS[1].0 + REGIONS[1].1 - u64::from(u.int_in_range(0u32..=64)?),
        _ => 0x1000 + 0x100 * u64::from(u.int_in_range(0u32..=0xaf)?),
    })
}

fn write_desc(mem: &GuestMemoryMmap, q: &Q, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let at = q.desc + 16 * u64::from(index);
    let _ = mem.write_obj(addr.to_le(), GuestAddress(at));
    let _ = mem.write_obj(len.to_le(), GuestAddress(at + 8));
    let _ = mem.write_obj(flags.to_le(), GuestAddress(at + 12));
    let _ = mem.write_obj(next.to_le(), GuestAddress(at + 14));
}

/// The guest: chains of one to three buffers in RX and TX, made available.
fn guest_actions(
    h: &mut NetHarness,
    u: &mut Unstructured,
    t: &mut Trace,
    queues: &[Q; 2],
    next_avail: &mut [u16; 2],
) -> ArbResult<()> {
    for (qi, q) in queues.iter().enumerate() {
        let chains = u.int_in_range(0..=q.size.min(4))?;
        for c in 0..chains {
            let parts = u.int_in_range(1..=3u16)?.min(q.size);
            let head = (c * 3) % q.size;
            let mut descs = Vec::new();
            for p in 0..parts {
                let index = (head + p) % q.size;
                let last = p + 1 == parts;
                let mut flags = if qi == 0 { F_WRITE } else { 0 };
                if one_in(u, 16)? {
                    flags ^= F_WRITE;
                }
                if one_in(u, 64)? {
                    flags |= F_INDIRECT;
                }
                if !last {
                    flags |= F_NEXT;
                }
                let addr = buf_addr(u)?;
                let len: u32 = match u.int_in_range(0..=7)? {
                    0 => u.arbitrary()?,
                    1 => u.int_in_range(0..=16)?,
                    _ => u.int_in_range(12..=2048)?,
                };
                if qi == 1 {
                    // TX: an arbitrary header then a plausible frame.
                    let mut bytes = vec![0u8; len.min(2048) as usize];
                    if p == 0 && one_in(u, 2)? {
                        let n = bytes.len().min(NET_HDR_LEN);
                        u.fill_buffer(&mut bytes[..n])?;
                    }
                    let _ = h.mem.write_slice(&bytes, GuestAddress(addr));
                }
                if addr < QUEUES_END && addr.saturating_add(u64::from(len)) > 0 {
                    h.clobbered = true;
                }
                let next = if one_in(u, 32)? {
                    u.arbitrary()?
                } else {
                    (index + 1) % q.size
                };
                descs.push((index, addr, len, flags, next));
            }
            for &(index, addr, len, flags, next) in &descs {
                write_desc(&h.mem, q, index, addr, len, flags, next);
            }
            let slot = next_avail[qi] % q.size;
            let ring_head = if one_in(u, 32)? { u.arbitrary()? } else { head };
            let _ = h
                .mem
                .write_obj(ring_head.to_le(), GuestAddress(q.avail + 4 + 2 * u64::from(slot)));
            next_avail[qi] = next_avail[qi].wrapping_add(1);
            t.note(|| format!("guest: queue {qi} chain head {head}: {descs:x?}"));
        }
        let idx = if one_in(u, 64)? {
            u.arbitrary()?
        } else {
            next_avail[qi]
        };
        let _ = h.mem.write_obj(idx.to_le(), GuestAddress(q.avail + 2));
    }
    Ok(())
}

fn read_u16(mem: &Snapshot, addr: u64) -> u16 {
    u16::from_le_bytes([mem.get(addr).unwrap_or(0), mem.get(addr + 1).unwrap_or(0)])
}

fn read_u32(mem: &Snapshot, addr: u64) -> u32 {
    u32::from_le_bytes(mem.read(addr, 4).try_into().unwrap())
}

/// The device-writable buffers of the chain at `head` (as the table was before the round),
/// in order; stops at a loop or an index outside the table.
fn chain_writable(before: &Snapshot, q: &Q, head: u16) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut index = head;
    for _ in 0..q.size {
        if index >= q.size {
            break;
        }
        let at = q.desc + 16 * u64::from(index);
        let addr = u64::from_le_bytes(before.read(at, 8).try_into().unwrap());
        let len = u64::from(read_u32(before, at + 8));
        let flags = read_u16(before, at + 12);
        if flags & F_WRITE != 0 {
            out.push((addr, len));
        }
        if flags & F_NEXT == 0 {
            break;
        }
        index = read_u16(before, at + 14);
    }
    out
}

/// Checks the round; returns how many TX chains the device returned.
fn check(
    h: &mut NetHarness,
    queues: &[Q; 2],
    before: &Snapshot,
    seen_used: &mut [u16; 2],
    t: &mut Trace,
) -> Result<u64, String> {
    let after = Snapshot::take(&h.mem);
    let rx = &queues[0];
    let mut allowed: Vec<(u64, u64)> = queues.iter().map(|q| (q.used, q.used_end())).collect();
    for i in 0..rx.size {
        let at = rx.desc + 16 * u64::from(i);
        let addr = u64::from_le_bytes(before.read(at, 8).try_into().unwrap());
        let len = u64::from(read_u32(before, at + 8));
        if read_u16(before, at + 12) & F_WRITE != 0 {
            allowed.push((addr, addr.saturating_add(len)));
        }
    }
    // A device-writable buffer over the queue structures makes the rings unknowable for
    // the harness; only the guard pages check such a round.
    let rings_clobbered = allowed[2..].iter().any(|&(s, e)| s < QUEUES_END && e > s);
    if !rings_clobbered {
        for addr in before.diff(&after) {
            if !allowed.iter().any(|&(s, e)| addr >= s && addr < e) {
                return Err(format!(
                    "the device wrote guest memory at {addr:#x}, outside the used rings and RX buffers"
                ));
            }
        }
    }
    let mut tx_returned = 0u64;
    let mut used_rx: Vec<(u16, Vec<(u64, u64)>)> = Vec::new();
    for (qi, q) in queues.iter().enumerate() {
        let used_idx = read_u16(&after, q.used + 2);
        if rings_clobbered || h.clobbered {
            seen_used[qi] = used_idx;
            continue;
        }
        let new = used_idx.wrapping_sub(seen_used[qi]);
        if new > q.size {
            return Err(format!(
                "queue {qi}: used idx advanced by {new}, more than the queue size"
            ));
        }
        for k in 0..new {
            let slot = seen_used[qi].wrapping_add(k) % q.size;
            let at = q.used + 4 + 8 * u64::from(slot);
            let id = read_u32(&after, at);
            let len = read_u32(&after, at + 4);
            if id >= u32::from(q.size) {
                return Err(format!("queue {qi}: used id {id} outside the queue"));
            }
            if qi == 1 {
                if len != 0 {
                    return Err(format!("TX chain {id} used with length {len}"));
                }
                tx_returned += 1;
                continue;
            }
            if len == 0 {
                continue;
            }
            let bufs = chain_writable(before, q, id as u16);
            let room: u64 = bufs.iter().map(|&(_, l)| l).sum();
            if (len as usize) < NET_HDR_LEN || u64::from(len) > room {
                return Err(format!("RX chain {id} used with length {len} (room {room})"));
            }
            used_rx.push((id as u16, bufs));
        }
        seen_used[qi] = used_idx;
    }
    // num_buffers (bytes 10..12) of the last RX chain of the round, unless memory of it is
    // also in another chain the guest offered (chains may share descriptors and buffers,
    // and the device may write into an offered buffer it then gives back, as for a frame
    // that did not fit): then a later write may have covered it.
    if let Some((last_id, last)) = used_rx.last() {
        let mut hdr = Vec::new();
        for &(a, l) in last {
            let want = (NET_HDR_LEN - hdr.len()) as u64;
            hdr.extend(after.read(a, l.min(want) as usize));
            if hdr.len() >= NET_HDR_LEN {
                break;
            }
        }
        let covers = |&(s, l): &(u64, u64)| {
            last.iter()
                .any(|&(a, n)| a < s.saturating_add(l.max(1)) && s < a.saturating_add(n))
        };
        let offered: Vec<u16> = (0..rx.size)
            .map(|slot| read_u16(before, rx.avail + 4 + 2 * u64::from(slot)))
            .collect();
        let shared = offered.iter().filter(|&h| h == last_id).count() > 1
            || offered
                .iter()
                .filter(|&h| h != last_id)
                .any(|&head| chain_writable(before, rx, head).iter().any(covers));
        if !shared && hdr.len() >= NET_HDR_LEN && hdr[10..12] != [1, 0] {
            t.note(|| format!("last RX chain: {last:x?}"));
            return Err(format!("RX header: num_buffers is not 1: {:02x?}", &hdr[..12]));
        }
    }
    let device = h.device.lock().unwrap();
    let m = device.metrics().snapshot();
    let needs_reset = device.needs_reset();
    drop(device);
    if m.failed != needs_reset {
        return Err(format!(
            "metrics failed = {}, device needs_reset = {needs_reset}",
            m.failed
        ));
    }
    let status = h.read_reg(regs::STATUS);
    if needs_reset && status & 0x40 == 0 {
        return Err("device failed but DEVICE_NEEDS_RESET is not in Status".into());
    }
    Ok(tx_returned)
}
