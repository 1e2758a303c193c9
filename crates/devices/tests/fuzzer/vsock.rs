//! virtio-vsock through its real entry points, driven by arbitrary bytes, with real unix
//! sockets on the host side.
//!
//! One case: reset the transport, bring the device up through `bus_write` (RX, TX and event
//! queues of arbitrary sizes), then for up to four rounds let arbitrary host peers act
//! (connect to `uds_path` and write anything, usually a `CONNECT` line and some bytes; write
//! to or close connections made earlier; accept the device's connections on a per-port
//! listener) and an arbitrary guest driver act (descriptor tables, packet headers with
//! fields drawn near the interesting values, payloads, available rings, notifications of
//! any queue), and run the device's event-loop subscriber until it is idle.
//!
//! There is no full model of the protocol here; after every round these must hold:
//! - the event loop goes idle (no busy loop on a socket or an eventfd);
//! - guest memory changed only in the used rings and in device-writable buffers of the RX
//!   and event queues (never in TX buffers, descriptor tables or available rings), and never
//!   outside guest memory (guard pages around every region turn that into a crash);
//! - every TX chain returned has used length 0; every RX used length is a header plus at
//!   most 64 KiB, and the last RX packet of the round has a well-formed header (host CID,
//!   the guest's CID, stream type, a known operation, `len` = used length - 44);
//! - the connection count stays within the limit; `failed` in the metrics agrees with
//!   `DEVICE_NEEDS_RESET` in `Status`.

use std::io::Write as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arbitrary::{Result as ArbResult, Unstructured};
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use vm_memory::{Bytes, GuestAddress};
use vmctl_devices::GuestMemoryMmap;
use vmctl_devices::virtio::VirtioDevice;
use vmctl_devices::virtio::mmio::MmioTransport;
use vmctl_devices::virtio::vsock::{MAX_CONNECTIONS, Vsock, VsockConfig};

use super::memory::{REGIONS, Snapshot, guarded_memory};
use super::regs;

const CID: u64 = 0x1234_5678;
const VERSION_1: u64 = 1 << 32;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;
const HDR: usize = 44;
/// Queue structures live in R0 at these addresses (16 entries fit in 0x400).
const QUEUE_AT: [u64; 3] = [0x0, 0x400, 0x800];
/// The guest port host peers `CONNECT` to, and the host port with a listener.
const GUEST_PORT: u32 = 1;
const HOST_PORT: u32 = 7;
const FIRST_LOCAL: u32 = 1 << 30;

/// The device on guarded guest memory, behind a transport, in a real event loop, with a
/// host listener on `<uds_path>_7`. Made once per thread, reset between cases.
pub struct VsockHarness {
    _dir: tempfile::TempDir,
    uds_path: PathBuf,
    mem: GuestMemoryMmap,
    device: Arc<Mutex<Vsock>>,
    transport: MmioTransport,
    events: EventManager<Arc<Mutex<dyn MutEventSubscriber + Send>>>,
    port_listener: UnixListener,
    /// Host ends: connections made to `uds_path` and ones accepted on the port listener.
    peers: Vec<UnixStream>,
    /// The guest wrote a buffer over the queue structures in this case: the used rings can
    /// no longer be read back reliably.
    clobbered: bool,
    /// (host port, guest port, op) of RX packets the guest received in this case: the
    /// generator answers them (a RESPONSE to a REQUEST, data and credit on a connection)
    /// so that cases get past the handshake.
    known: Vec<(u32, u32, u16)>,
}

impl VsockHarness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let uds_path = dir.path().join("v.sock");
        let device = Arc::new(Mutex::new(
            Vsock::new(VsockConfig {
                guest_cid: CID,
                uds_path: uds_path.clone(),
            })
            .expect("vsock device"),
        ));
        let mut port_path = uds_path.clone().into_os_string();
        port_path.push(format!("_{HOST_PORT}"));
        let port_listener = UnixListener::bind(&port_path).expect("port listener");
        port_listener.set_nonblocking(true).expect("non-blocking");
        let mem = guarded_memory();
        let transport = MmioTransport::new(mem.clone(), device.clone()).expect("transport");
        let mut events =
            EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new().expect("event manager");
        events.add_subscriber(device.clone());
        Self {
            _dir: dir,
            uds_path,
            mem,
            device,
            transport,
            events,
            port_listener,
            peers: Vec::new(),
            clobbered: false,
            known: Vec::new(),
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
}

impl Default for VsockHarness {
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

/// Runs one case from `data`. `Ok(true)` when a connection got established (either side),
/// the depth the soak counts.
pub fn run_case(h: &mut VsockHarness, data: &[u8], trace: bool) -> Result<bool, Failure> {
    let mut t = Trace(trace.then(Vec::new));
    let mut u = Unstructured::new(data);
    let opened = |h: &VsockHarness| {
        let m = h.device.lock().unwrap().metrics().snapshot();
        m.host_connections_opened + m.guest_connections_opened
    };
    let before = opened(h);
    let r = case(h, &mut u, &mut t).map(|_| opened(h) > before);
    // Host peers do not outlive the case (the device's sockets close at the reset of the
    // next case).
    h.peers.clear();
    let _ = h.pump();
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

fn case(h: &mut VsockHarness, u: &mut Unstructured, t: &mut Trace) -> Result<bool, String> {
    h.write_reg(regs::STATUS, 0);
    h.clobbered = false;
    h.known.clear();
    let _ = h.transport.interrupt().irq_evt().read();
    Snapshot::zero().restore(&h.mem);
    h.pump()?;

    let generr = |e: arbitrary::Error| format!("generator: {e}");
    let mut queues = [Q::new(0, 1); 3];
    for (i, q) in queues.iter_mut().enumerate() {
        let size = *u.choose(&[1u16, 2, 4, 8, 16, 16]).unwrap_or(&16);
        *q = Q::new(QUEUE_AT[i], size);
    }
    // Bring-up, as a driver does.
    h.write_reg(regs::STATUS, 1);
    h.write_reg(regs::STATUS, 3);
    h.write_reg(regs::DRIVER_FEATURES_SEL, 1);
    h.write_reg(regs::DRIVER_FEATURES, (VERSION_1 >> 32) as u32);
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
    t.note(|| format!("activated: {queues:?}"));

    let mut next_avail = [0u16; 3];
    let mut seen_used = [0u16; 3];
    let mut moved = false;
    let rounds = u.int_in_range(1..=4).unwrap_or(1);
    for round in 0..rounds {
        let before = Snapshot::take(&h.mem);
        host_actions(h, u, t).map_err(generr)?;
        h.pump()?;
        moved |= check(h, &queues, &before, &mut seen_used, t)?;
        guest_actions(h, u, t, &queues, &mut next_avail).map_err(generr)?;
        let before = Snapshot::take(&h.mem);
        let notify = u.int_in_range(0..=4).unwrap_or(0);
        t.note(|| format!("round {round}: QueueNotify {notify}"));
        h.write_reg(regs::QUEUE_NOTIFY, notify);
        if one_in(u, 8).unwrap_or(false) {
            h.write_reg(regs::QUEUE_NOTIFY, 0);
        }
        h.pump()?;
        moved |= check(h, &queues, &before, &mut seen_used, t)?;
    }
    Ok(moved)
}

/// Host peers: connect and write (usually a CONNECT line), write more, close, accept.
fn host_actions(h: &mut VsockHarness, u: &mut Unstructured, t: &mut Trace) -> ArbResult<()> {
    let n = u.int_in_range(0..=3)?;
    for _ in 0..n {
        match u.int_in_range(0..=5)? {
            0..=2 => {
                let Ok(mut s) = UnixStream::connect(&h.uds_path) else {
                    continue;
                };
                let line: Vec<u8> = match u.int_in_range(0..=7)? {
                    0 => u.arbitrary::<Vec<u8>>()?.into_iter().take(64).collect(),
                    1 => format!("connect {}\n", u.arbitrary::<u32>()?).into_bytes(),
                    _ => format!("CONNECT {GUEST_PORT}\n").into_bytes(),
                };
                let extra: Vec<u8> = u.arbitrary::<Vec<u8>>()?.into_iter().take(256).collect();
                t.note(|| {
                    format!(
                        "host: connect, write {:?} + {} bytes",
                        String::from_utf8_lossy(&line),
                        extra.len()
                    )
                });
                let _ = s.set_nonblocking(true);
                let _ = s.write_all(&line);
                let _ = s.write_all(&extra);
                h.peers.push(s);
            }
            3 if !h.peers.is_empty() => {
                let i = u.choose_index(h.peers.len())?;
                let len = u.int_in_range(1..=8192)?;
                t.note(|| format!("host: peer {i} writes {len} bytes"));
                let _ = (&h.peers[i]).write(&vec![0xa5; len]);
            }
            4 if !h.peers.is_empty() => {
                let i = u.choose_index(h.peers.len())?;
                if one_in(u, 2)? {
                    t.note(|| format!("host: peer {i} shuts its write side"));
                    let _ = h.peers[i].shutdown(std::net::Shutdown::Write);
                } else {
                    t.note(|| format!("host: peer {i} closes"));
                    h.peers.swap_remove(i);
                }
            }
            _ => {
                while let Ok((s, _)) = h.port_listener.accept() {
                    t.note(|| "host: accepted a guest connection".into());
                    let _ = s.set_nonblocking(true);
                    h.peers.push(s);
                }
            }
        }
    }
    Ok(())
}

/// A buffer address: usually in the buffer area of R0/R1, sometimes anywhere.
fn buf_addr(u: &mut Unstructured) -> ArbResult<u64> {
    // An exhausted input gives the first arm: a plain buffer.
    Ok(match u.int_in_range(0..=15)? {
        15 => u.arbitrary()?,
        14 => REGIONS[2].0 + u64::from(u.int_in_range(0u32..=0x4000)?),
        13 => REGIONS[1].0 + REGIONS[1].1 - u64::from(u.int_in_range(0u32..=64)?),
        _ => 0x1000 + 0x100 * u64::from(u.int_in_range(0u32..=0xaf)?),
    })
}

fn port(u: &mut Unstructured) -> ArbResult<u32> {
    Ok(match u.int_in_range(0..=9)? {
        9 => u.arbitrary()?,
        0..=2 => GUEST_PORT,
        3 | 4 => HOST_PORT,
        5..=7 => FIRST_LOCAL + u32::from(u.int_in_range(0u8..=1)?),
        _ => 1024 + u32::from(u.int_in_range(0u8..=3)?),
    })
}

fn header(u: &mut Unstructured, data_len: u32, known: &[(u32, u32, u16)]) -> ArbResult<[u8; HDR]> {
    let mut h = [0u8; HDR];
    let src_cid: u64 = if one_in(u, 16)? { u.arbitrary()? } else { CID };
    let dst_cid: u64 = if one_in(u, 16)? { u.arbitrary()? } else { 2 };
    let reply = if !known.is_empty() && !one_in(u, 3)? {
        Some(known[u.choose_index(known.len())?])
    } else {
        None
    };
    let (src_port, dst_port) = match reply {
        Some((host, guest, _)) => (guest, host),
        None => (port(u)?, port(u)?),
    };
    let len: u32 = match u.int_in_range(0..=7)? {
        0 => u.arbitrary()?,
        1 => data_len.wrapping_add(u.int_in_range(1..=64)?),
        _ => data_len,
    };
    let type_: u16 = if one_in(u, 16)? { u.arbitrary()? } else { 1 };
    // Mostly what opens connections and moves bytes.
    let op: u16 = match u.int_in_range(0..=15)? {
        // Accept a connection request the guest received.
        _ if matches!(reply, Some((_, _, 1))) && !one_in(u, 4)? => 2,
        15 => u.arbitrary()?,
        0..=2 => 1,
        3..=5 => 2,
        6..=9 => 5,
        x => x - 6, // SHUTDOWN, RST, CREDIT_UPDATE, CREDIT_REQUEST, RW
    };
    let flags: u32 = if one_in(u, 4)? {
        u.arbitrary()?
    } else {
        u.int_in_range(0..=3)?
    };
    let buf_alloc: u32 = match u.int_in_range(0..=3)? {
        0 => u.arbitrary()?,
        1 => u.int_in_range(0..=16)?,
        _ => 64 * 1024,
    };
    let fwd_cnt: u32 = if one_in(u, 4)? { u.arbitrary()? } else { 0 };
    h[0..8].copy_from_slice(&src_cid.to_le_bytes());
    h[8..16].copy_from_slice(&dst_cid.to_le_bytes());
    h[16..20].copy_from_slice(&src_port.to_le_bytes());
    h[20..24].copy_from_slice(&dst_port.to_le_bytes());
    h[24..28].copy_from_slice(&len.to_le_bytes());
    h[28..30].copy_from_slice(&type_.to_le_bytes());
    h[30..32].copy_from_slice(&op.to_le_bytes());
    h[32..36].copy_from_slice(&flags.to_le_bytes());
    h[36..40].copy_from_slice(&buf_alloc.to_le_bytes());
    h[40..44].copy_from_slice(&fwd_cnt.to_le_bytes());
    Ok(h)
}

fn write_desc(mem: &GuestMemoryMmap, q: &Q, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let at = q.desc + 16 * u64::from(index);
    let _ = mem.write_obj(addr.to_le(), GuestAddress(at));
    let _ = mem.write_obj(len.to_le(), GuestAddress(at + 8));
    let _ = mem.write_obj(flags.to_le(), GuestAddress(at + 12));
    let _ = mem.write_obj(next.to_le(), GuestAddress(at + 14));
}

/// The guest: chains in the TX, RX and event queues, made available.
fn guest_actions(
    h: &mut VsockHarness,
    u: &mut Unstructured,
    t: &mut Trace,
    queues: &[Q; 3],
    next_avail: &mut [u16; 3],
) -> ArbResult<()> {
    for (qi, q) in queues.iter().enumerate() {
        let chains = u.int_in_range(0..=q.size.min(4))?;
        for c in 0..chains {
            let head = (c * 2) % q.size;
            let two = q.size > 1 && !one_in(u, 4)?;
            let second = (head + 1) % q.size;
            let mut flags0: u16 = match qi {
                1 => 0,
                _ => F_WRITE,
            };
            if one_in(u, 16)? {
                flags0 ^= F_WRITE;
            }
            if one_in(u, 64)? {
                flags0 |= F_INDIRECT;
            }
            let hdr_addr = buf_addr(u)?;
            let data_addr = buf_addr(u)?;
            let data_len: u32 = match u.int_in_range(0..=7)? {
                0 => u.arbitrary()?,
                1 => 0,
                _ => u.int_in_range(1..=4096)?,
            };
            let mut hdr_len = if one_in(u, 16)? {
                u.int_in_range(0..=64)?
            } else {
                HDR as u32
            };
            if qi == 1 {
                let hdr = header(u, data_len, &h.known)?;
                let _ = h.mem.write_slice(&hdr, GuestAddress(hdr_addr));
                if !two {
                    // Header and data in one descriptor (Linux 6.2+).
                    hdr_len = hdr_len.saturating_add(data_len.min(4096));
                }
                let payload = vec![0x3c; data_len.min(4096) as usize];
                let _ = h.mem.write_slice(
                    &payload,
                    GuestAddress(if two { data_addr } else { hdr_addr + HDR as u64 }),
                );
            }
            let span = |a: u64, l: u32| a < 0xc00 && a.saturating_add(u64::from(l)) > 0;
            if qi == 1
                && (span(hdr_addr, HDR as u32 + data_len.min(4096)) || span(data_addr, data_len.min(4096)))
            {
                h.clobbered = true;
            }
            let next = if one_in(u, 32)? { u.arbitrary()? } else { second };
            if two {
                let f1 = if qi == 1 { 0 } else { F_WRITE } ^ if one_in(u, 16)? { F_WRITE } else { 0 };
                write_desc(&h.mem, q, head, hdr_addr, hdr_len, flags0 | F_NEXT, next);
                write_desc(&h.mem, q, second, data_addr, data_len, f1, 0);
            } else {
                write_desc(&h.mem, q, head, hdr_addr, hdr_len, flags0, 0);
            }
            let slot = next_avail[qi] % q.size;
            let ring_head = if one_in(u, 32)? { u.arbitrary()? } else { head };
            let _ = h
                .mem
                .write_obj(ring_head.to_le(), GuestAddress(q.avail + 4 + 2 * u64::from(slot)));
            next_avail[qi] = next_avail[qi].wrapping_add(1);
            t.note(|| format!("guest: queue {qi} chain head {head} (two: {two}, hdr {hdr_addr:#x}+{hdr_len}, data {data_addr:#x}+{data_len})"));
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

fn check(
    h: &mut VsockHarness,
    queues: &[Q; 3],
    before: &Snapshot,
    seen_used: &mut [u16; 3],
    t: &mut Trace,
) -> Result<bool, String> {
    let after = Snapshot::take(&h.mem);
    // Where the device may write: the used rings; device-writable buffers of RX and event.
    let mut allowed: Vec<(u64, u64)> = queues.iter().map(|q| (q.used, q.used_end())).collect();
    let mut event_bufs = Vec::new();
    for (qi, q) in [(0, &queues[0]), (2, &queues[2])] {
        for i in 0..q.size {
            let at = q.desc + 16 * u64::from(i);
            let addr = u64::from_le_bytes(before.read(at, 8).try_into().unwrap());
            let len = u64::from(read_u32(before, at + 8));
            if read_u16(before, at + 12) & F_WRITE != 0 {
                allowed.push((addr, addr.saturating_add(len)));
                if qi == 2 {
                    event_bufs.push((addr, addr.saturating_add(len)));
                }
            }
        }
    }
    // A device-writable buffer over the queue structures (a wild address) makes the rest
    // unknowable for the harness: the device may have written payload over the used rings
    // or over descriptors it then read. Nothing but the guard pages checks such a round.
    let rings_clobbered = allowed[3..].iter().any(|&(s, e)| s < 0xc00 && e > s);
    for addr in before.diff(&after) {
        if rings_clobbered {
            break;
        }
        if !allowed.iter().any(|&(s, e)| addr >= s && addr < e) {
            return Err(format!(
                "the device wrote guest memory at {addr:#x}, outside the used rings and RX/event buffers"
            ));
        }
    }
    let mut moved = false;
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
        let mut last = None;
        for k in 0..new {
            let slot = seen_used[qi].wrapping_add(k) % q.size;
            let at = q.used + 4 + 8 * u64::from(slot);
            let id = read_u32(&after, at);
            let len = read_u32(&after, at + 4);
            if id >= u32::from(q.size) {
                return Err(format!("queue {qi}: used id {id} outside the queue"));
            }
            match qi {
                1 if len != 0 => return Err(format!("TX chain {id} used with length {len}")),
                0 if len != 0 && (len < HDR as u32 || len > HDR as u32 + 64 * 1024) => {
                    return Err(format!("RX chain {id} used with length {len}"));
                }
                2 if len != 0 && len != 4 => return Err(format!("event chain {id} used with length {len}")),
                _ => {}
            }
            if qi == 0 && len != 0 {
                last = Some((id, len));
                let at = q.desc + 16 * u64::from(id);
                let hdr_addr = u64::from_le_bytes(before.read(at, 8).try_into().unwrap());
                let hdr = after.read(hdr_addr, HDR);
                let le32 = |o: usize| u32::from_le_bytes(hdr[o..o + 4].try_into().unwrap());
                let op = u16::from_le_bytes([hdr[30], hdr[31]]);
                if h.known.len() < 8 && !h.known.contains(&(le32(16), le32(20), op)) {
                    h.known.push((le32(16), le32(20), op));
                }
            }
            moved = true;
        }
        seen_used[qi] = used_idx;
        if let Some((id, len)) = last {
            // The last RX packet's header is intact (written after its payload).
            let at = q.desc + 16 * u64::from(id);
            let hdr_addr = u64::from_le_bytes(before.read(at, 8).try_into().unwrap());
            // Only when nothing written after it can overlap it: not the queue structures
            // (the used ring is written last), not an event buffer, and its descriptor
            // unchanged by the round.
            let end = hdr_addr.saturating_add(HDR as u64);
            let overlaps = |(s, e): (u64, u64)| hdr_addr < e && s < end;
            if overlaps((0, 0xc00))
                || event_bufs.iter().any(|&r| overlaps(r))
                || before.read(at, 16) != after.read(at, 16)
            {
                continue;
            }
            let hdr = after.read(hdr_addr, HDR);
            let le64 = |o: usize| u64::from_le_bytes(hdr[o..o + 8].try_into().unwrap());
            let le32 = |o: usize| u32::from_le_bytes(hdr[o..o + 4].try_into().unwrap());
            let le16 = |o: usize| u16::from_le_bytes(hdr[o..o + 2].try_into().unwrap());
            let (op, type_) = (le16(30), le16(28));
            t.note(|| {
                format!(
                    "last RX packet: op {op}, len {}, ports {} -> {}",
                    le32(24),
                    le32(16),
                    le32(20)
                )
            });
            if le64(0) != 2
                || le64(8) != CID
                || type_ != 1
                || !(1..=7).contains(&op)
                || le32(24) != len - HDR as u32
            {
                return Err(format!(
                    "malformed RX header from the device: {hdr:02x?} (used length {len})"
                ));
            }
        }
    }
    let device = h.device.lock().unwrap();
    let m = device.metrics().snapshot();
    if device.connection_count() > MAX_CONNECTIONS {
        return Err(format!("{} connections", device.connection_count()));
    }
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
    Ok(moved)
}
