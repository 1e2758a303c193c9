//! virtio-blk through its real entry points, driven by arbitrary bytes.
//!
//! One case: reset the transport, bring the device up through `bus_write` the way a driver
//! would (with arbitrary features, queue sizes, ring addresses and stray register writes),
//! then for up to three rounds write arbitrary descriptor tables, request headers, data,
//! available rings and notification-suppression fields into guest memory, write
//! `QueueNotify` and let the device's event-loop subscriber serve the queue.
//!
//! After every round the outcome is compared with a reference model written from the
//! virtio 1.2 split-queue and virtio-blk rules plus the device's documented choices
//! (`crates/devices/README.md`, "Malicious guests"): every guest byte, the backing file
//! byte for byte (including the bytes past the last whole sector), the used ring, the
//! metrics counters, `DEVICE_NEEDS_RESET` and the interrupt status. The model executes the
//! requests one after the other on its own copy of guest memory, so overlapping buffers,
//! buffers over the rings and chains rewritten by an earlier request are predicted too.

use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use arbitrary::{Result as ArbResult, Unstructured};
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use vm_memory::{Bytes, GuestAddress};
use vmctl_devices::GuestMemoryMmap;
use vmctl_devices::virtio::VirtioDevice;
use vmctl_devices::virtio::block::{Block, BlockConfig, BlockMetricsSnapshot};
use vmctl_devices::virtio::mmio::MmioTransport;

use super::memory::{REGIONS, Snapshot, contains, guarded_memory, region_end};
use super::regs;

/// Sectors of the backing file, and bytes after them that the guest must never see or touch.
pub const SECTORS: u64 = 48;
pub const TAIL: u64 = 100;
const DRIVE_ID: &str = "fuzz-disk";
const QUEUE_MAX: u16 = 256;

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;

const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;

const EVENT_IDX: u64 = 1 << 29;
const VERSION_1: u64 = 1 << 32;
const BLK_F_RO: u64 = 1 << 5;

/// A block device on a file in tmpfs, behind a transport on guarded guest memory, served by a
/// real `EventManager`. Made once per thread and reset between cases.
pub struct BlockHarness {
    mem: GuestMemoryMmap,
    file: tempfile::NamedTempFile,
    block: Arc<Mutex<Block>>,
    transport: MmioTransport,
    events: EventManager<Arc<Mutex<dyn MutEventSubscriber + Send>>>,
    read_only: bool,
    offered: u64,
    /// What the backing file must contain.
    shadow: Vec<u8>,
    file_buf: Vec<u8>,
}

fn initial_file() -> Vec<u8> {
    (0..SECTORS * 512 + TAIL)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 9)) as u8)
        .collect()
}

impl BlockHarness {
    pub fn new(read_only: bool) -> Self {
        // tmpfs: FLUSH is an fsync, which must not cost a disk write per case.
        let mut file = match std::path::Path::new("/dev/shm").is_dir() {
            true => tempfile::Builder::new().tempfile_in("/dev/shm"),
            false => tempfile::NamedTempFile::new(),
        }
        .expect("backing file");
        let shadow = initial_file();
        file.write_all(&shadow).expect("fill backing file");
        let block = Block::new(BlockConfig {
            drive_id: DRIVE_ID.into(),
            path: file.path().into(),
            read_only,
        })
        .expect("block device");
        assert_eq!(block.capacity(), SECTORS);
        let offered = block.avail_features();
        let block = Arc::new(Mutex::new(block));
        let mem = guarded_memory();
        let transport = MmioTransport::new(mem.clone(), block.clone()).expect("transport");
        let mut events =
            EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new().expect("event manager");
        events.add_subscriber(block.clone());
        Self {
            mem,
            file,
            block,
            transport,
            events,
            read_only,
            offered,
            shadow,
            file_buf: Vec::new(),
        }
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        let mut data = [0u8; 4];
        self.transport.bus_read(offset, &mut data);
        u32::from_le_bytes(data)
    }

    fn write_reg(&mut self, offset: u64, value: u32) {
        self.transport.bus_write(offset, &value.to_le_bytes());
    }

    fn metrics(&self) -> BlockMetricsSnapshot {
        self.block.lock().unwrap().metrics().snapshot()
    }

    fn irq_pending(&self) -> bool {
        self.transport.interrupt().irq_evt().read().is_ok()
    }

    fn file_matches_shadow(&mut self) -> Result<(), String> {
        let f = self.file.as_file();
        let len = f.metadata().map_err(|e| e.to_string())?.len();
        if len != self.shadow.len() as u64 {
            return Err(format!(
                "backing file is {len} bytes, expected {} (written past its end?)",
                self.shadow.len()
            ));
        }
        self.file_buf.resize(self.shadow.len(), 0);
        f.read_exact_at(&mut self.file_buf, 0)
            .map_err(|e| e.to_string())?;
        if self.file_buf != self.shadow {
            let first = self
                .file_buf
                .iter()
                .zip(&self.shadow)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(format!(
                "backing file differs from the model at byte {first} (sector {}; tail starts at {})",
                first / 512,
                SECTORS * 512
            ));
        }
        Ok(())
    }
}

/// What a failed case reports.
pub struct Failure {
    pub message: String,
    pub trace: Vec<String>,
}

/// Records what the guest did, only when asked (a failing case is replayed with tracing on).
struct Trace(Option<Vec<String>>);

impl Trace {
    fn note(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.0 {
            t.push(f());
        }
    }
}

/// Runs one case from `data` on `h`. `Ok(true)` when the case got as far as serving a queue
/// (used for the coverage counters of the soak), `Err` when an invariant broke.
pub fn run_case(h: &mut BlockHarness, data: &[u8], trace: bool) -> Result<bool, Failure> {
    let mut t = Trace(trace.then(Vec::new));
    let mut u = Unstructured::new(data);
    match case(h, &mut u, &mut t) {
        Ok(served) => Ok(served),
        Err(message) => Err(Failure {
            message,
            trace: t.0.unwrap_or_default(),
        }),
    }
}

/// The queue as the driver programmed it and as the model tracks it.
#[derive(Debug, Clone, Copy)]
struct QueueModel {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    event_idx: bool,
    next_avail: u16,
    next_used: u16,
}

/// The device's state as the model sees it.
struct Model {
    mem: Snapshot,
    /// Some while the device is activated.
    queue: Option<QueueModel>,
    failed: bool,
    /// The transport refused the activation (`DEVICE_NEEDS_RESET` from DRIVER_OK on).
    refused: bool,
    read_only: bool,
    metrics: BlockMetricsSnapshot,
    irq_status: u32,
    irq: bool,
}

fn case(h: &mut BlockHarness, u: &mut Unstructured, t: &mut Trace) -> Result<bool, String> {
    // A clean device and zeroed memory; the file keeps what earlier cases wrote (the shadow
    // follows it).
    h.write_reg(regs::STATUS, 0);
    let _ = h.transport.interrupt().irq_evt().read();
    Snapshot::zero().restore(&h.mem);

    setup(h, u, t).map_err(|e| format!("generator: {e}"))?;
    // The VMM's event loop runs all the time: a stray QueueNotify during setup is served
    // (or dropped, before activation) right away, while memory is still all zeroes.
    h.events
        .run_with_timeout(0)
        .map_err(|e| format!("event loop: {e}"))?;
    let queue = check_activation(h)?;
    t.note(|| format!("activated: {queue:?}"));
    let mut model = Model {
        mem: Snapshot::take(&h.mem),
        queue,
        failed: false,
        refused: h.read_reg(regs::STATUS) & 0x40 != 0,
        read_only: h.read_only,
        metrics: h.metrics(),
        irq_status: h.read_reg(regs::INTERRUPT_STATUS),
        irq: h.irq_pending(),
    };
    if model.irq_status & 2 != 0 {
        // The configuration interrupt of a refused activation: acknowledge it.
        h.write_reg(regs::INTERRUPT_ACK, 2);
        model.irq_status &= !2;
    }
    model.irq = false;

    let rounds = u.int_in_range(1..=3).unwrap_or(1);
    let mut served = false;
    for round in 0..rounds {
        let q = model.queue.unwrap_or(QueueModel {
            size: 16,
            desc: 0,
            avail: 0x100,
            used: 0x200,
            event_idx: false,
            next_avail: 0,
            next_used: 0,
        });
        write_requests(h, u, &q, t).map_err(|e| format!("generator: {e}"))?;
        model.mem = Snapshot::take(&h.mem);
        // Notify: almost always queue 0, sometimes a queue that does not exist.
        let target = if one_in(u, 16).unwrap_or(false) { 1 } else { 0 };
        t.note(|| format!("round {round}: QueueNotify {target}"));
        h.write_reg(regs::QUEUE_NOTIFY, target);
        h.events
            .run_with_timeout(0)
            .map_err(|e| format!("event loop: {e}"))?;
        if target == 0 {
            model.serve(&mut h.shadow, t);
            served |= model.queue.is_some() && !model.failed;
        }
        compare(h, &mut model)?;
        // Between rounds: register writes a running driver must not be able to disturb the
        // queue with (they are refused after DRIVER_OK), acknowledged interrupts.
        if round + 1 < rounds {
            stray_writes_after_driver_ok(h, u, t, &mut model)?;
        }
    }
    Ok(served)
}

/// True one time in `n`; false when the input is used up, so that a short input means a
/// well-behaved driver.
fn one_in(u: &mut Unstructured, n: u32) -> ArbResult<bool> {
    Ok(u.int_in_range(1..=n)? == n)
}

/// Brings the device up the way a driver does, with arbitrary values and stray writes.
fn setup(h: &mut BlockHarness, u: &mut Unstructured, t: &mut Trace) -> ArbResult<()> {
    let offered = h.offered;
    let features: u64 = match u.int_in_range(0..=15)? {
        0..=7 => offered,
        8..=10 => offered & !EVENT_IDX,
        11..=13 => (u.arbitrary::<u64>()? & offered) | VERSION_1,
        14 => u.arbitrary::<u64>()?,
        _ => offered | (1 << 28), // INDIRECT_DESC, never offered
    };
    let size: u32 = *u.choose(&[
        256,
        256,
        128,
        64,
        16,
        16,
        8,
        4,
        2,
        1,
        0,
        3,
        100,
        257,
        512,
        0x1_0010,
        0xffff_ffff,
    ])?;
    let size16 = if size.is_power_of_two() && size <= u32::from(QUEUE_MAX) {
        size as u16
    } else {
        QUEUE_MAX
    };
    let (desc, avail, used) = ring_layout(u, size16)?;
    let ready = !one_in(u, 20)?;

    let mut steps: Vec<(u64, u32)> = vec![
        (regs::STATUS, 1),
        (regs::STATUS, 3),
        (regs::DRIVER_FEATURES_SEL, 0),
        (regs::DRIVER_FEATURES, features as u32),
        (regs::DRIVER_FEATURES_SEL, 1),
        (regs::DRIVER_FEATURES, (features >> 32) as u32),
        (regs::STATUS, 11),
        (regs::QUEUE_SEL, 0),
        (regs::QUEUE_NUM, size),
        (regs::QUEUE_DESC_LOW, desc as u32),
        (regs::QUEUE_DESC_HIGH, (desc >> 32) as u32),
        (regs::QUEUE_AVAIL_LOW, avail as u32),
        (regs::QUEUE_AVAIL_HIGH, (avail >> 32) as u32),
        (regs::QUEUE_USED_LOW, used as u32),
        (regs::QUEUE_USED_HIGH, (used >> 32) as u32),
    ];
    if ready {
        steps.push((regs::QUEUE_READY, 1));
    }
    steps.push((regs::STATUS, 15));
    // Stray writes anywhere in the sequence: any register, any value, any width.
    let strays = if one_in(u, 4)? { u.int_in_range(1..=4)? } else { 0 };
    for _ in 0..strays {
        let at = u.int_in_range(0..=steps.len())?;
        let offset = u.int_in_range(0u64..=0x10c)? & !if one_in(u, 8)? { 0 } else { 3 };
        let value = *u.choose(&[0, 1, 2, 4, 8, 0x40, 0x80, 0xffff_ffff])?;
        let value = if one_in(u, 2)? { u.arbitrary()? } else { value };
        steps.insert(at, (offset, value));
    }
    for (offset, value) in steps {
        if one_in(u, 512)? {
            // A wrong-width access: must be ignored.
            t.note(|| format!("write {offset:#x} = {value:#x} (2 bytes: ignored)"));
            h.transport.bus_write(offset, &value.to_le_bytes()[..2]);
        } else {
            t.note(|| format!("write {offset:#x} = {value:#x}"));
            h.write_reg(offset, value);
        }
    }
    Ok(())
}

/// Ring addresses: mostly a driver's layout in R0 or at the top region, sometimes anything.
fn ring_layout(u: &mut Unstructured, size: u16) -> ArbResult<(u64, u64, u64)> {
    let n = u64::from(size);
    let packed = |base: u64| {
        let avail = base + 16 * n;
        let used = (avail + 6 + 2 * n + 3) & !3;
        (base, avail, used)
    };
    Ok(match u.int_in_range(0..=9)? {
        0..=5 => packed(0),
        6 => packed(u.int_in_range(0u64..=0x200)? * 16),
        7 => packed(REGIONS[2].0),
        8 => {
            // The used ring crossing the end of R1 or R2, or into the hole.
            let (base, size_r) = REGIONS[*u.choose(&[1usize, 2])?];
            let end = base + size_r;
            (
                base,
                base + 0x1000,
                end - (6 + 8 * n) + 4 * u.int_in_range(0u64..=2)?,
            )
        }
        _ => (u.arbitrary()?, u.arbitrary()?, u.arbitrary()?),
    })
}

/// Bump allocator over the data area (R0 after the rings, and R1), so most buffers are
/// distinct; other addresses come from [`wild_addr`].
struct Alloc {
    next: u64,
}

impl Alloc {
    const START: u64 = 0x2100;
    const END: u64 = 0xc000;

    fn take(&mut self, len: u64) -> u64 {
        let len = len.min(0x4000);
        if self.next + len > Self::END {
            self.next = Self::START;
        }
        let at = self.next;
        self.next += (len + 15) & !15;
        at
    }
}

fn wild_addr(u: &mut Unstructured, q: &QueueModel) -> ArbResult<u64> {
    Ok(match u.int_in_range(0..=7)? {
        0 => u.int_in_range(0..=region_end(1) - 1)?,
        1 => region_end(*u.choose(&[0usize, 1, 2])?) - u.int_in_range(1..=600)?,
        2 => REGIONS[2].0 + u.int_in_range(0..=REGIONS[2].1 - 1)?,
        3 => u64::MAX - u.int_in_range(0..=600)?,
        4 => region_end(1) + u.int_in_range(0..=0x1000)?, // the hole
        5 => *u.choose(&[q.desc, q.avail, q.used, q.used + 4, q.avail + 2])?,
        6 => 0,
        _ => u.arbitrary()?,
    })
}

fn data_len(u: &mut Unstructured) -> ArbResult<u32> {
    Ok(match u.int_in_range(0..=15)? {
        0..=5 => 512 * u.int_in_range(1..=4)?,
        6 => 0,
        7 => 512 * u.int_in_range(5..=16)?,
        8 => *u.choose(&[1, 15, 16, 17, 20, 21, 511, 513, 1023])?,
        9 => u.int_in_range(1..=2048)?,
        10 => 512 * (SECTORS as u32 + 1),
        11 => *u.choose(&[u32::MAX, u32::MAX - 511, 0x8000_0000, 0xffff_fe00])?,
        _ => 512,
    })
}

fn sector(u: &mut Unstructured) -> ArbResult<u64> {
    Ok(match u.int_in_range(0..=11)? {
        0..=5 => u.int_in_range(0..=SECTORS - 1)?,
        6 => SECTORS - u.int_in_range(0..=2)?,
        7 => SECTORS + u.int_in_range(0..=2)?,
        8 => *u.choose(&[
            u64::MAX,
            u64::MAX >> 9,
            (u64::MAX >> 9) + 1,
            1 << 55,
            i64::MAX as u64,
        ])?,
        _ => u.arbitrary()?,
    })
}

fn req_type(u: &mut Unstructured) -> ArbResult<u32> {
    Ok(match u.int_in_range(0..=12)? {
        0..=3 => T_IN,
        4..=7 => T_OUT,
        8 => T_FLUSH,
        9 => T_GET_ID,
        10 => *u.choose(&[2, 3, 5, 11, 13, 0x8000_0000])?,
        _ => u.arbitrary()?,
    })
}

/// Writes descriptors, headers, data and the available ring for one round.
fn write_requests(
    h: &mut BlockHarness,
    u: &mut Unstructured,
    q: &QueueModel,
    t: &mut Trace,
) -> ArbResult<()> {
    let mem = &h.mem;
    let size = q.size;
    let mut alloc = Alloc { next: Alloc::START };
    let mut next_desc = u.int_in_range(0..=size - 1)?;
    let put_desc = |idx: u16, addr: u64, len: u32, flags: u16, next: u16, t: &mut Trace| {
        t.note(|| format!("desc[{idx}] = {addr:#x}+{len:#x} flags {flags:#x} next {next}"));
        let at = q.desc.wrapping_add(16 * u64::from(idx));
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..].copy_from_slice(&next.to_le_bytes());
        let _ = mem.write_slice(&raw, GuestAddress(at));
    };
    let chains = match u.int_in_range(0..=9)? {
        0 => 0,
        1..=6 => 1,
        7 | 8 => u.int_in_range(2..=4)?,
        _ => u.int_in_range(5..=20)?,
    };
    let avail_idx: u16 = mem
        .read_obj::<u16>(GuestAddress(q.avail.wrapping_add(2)))
        .map(u16::from_le)
        .unwrap_or(0);
    let mut heads = Vec::new();
    for _ in 0..chains {
        let head = next_desc;
        heads.push(head);
        let take = |next_desc: &mut u16| {
            let i = *next_desc;
            *next_desc = (*next_desc + 1) % size;
            i
        };
        match u.int_in_range(0..=9)? {
            0..=6 => {
                // A request as a driver frames it, with arbitrary values and flaws.
                let ty = req_type(u)?;
                let sec = sector(u)?;
                let mut descs: Vec<(u64, u32, u16)> = Vec::new();
                let hdr_len: u32 = *u.choose(&[16, 16, 16, 16, 8, 15, 17, 32, 0])?;
                let hdr = if one_in(u, 10)? {
                    wild_addr(u, q)?
                } else {
                    alloc.take(32)
                };
                let mut header = [0u8; 16];
                header[..4].copy_from_slice(&ty.to_le_bytes());
                header[4..8].copy_from_slice(&u.arbitrary::<u32>()?.to_le_bytes());
                header[8..].copy_from_slice(&sec.to_le_bytes());
                let _ = mem.write_slice(&header, GuestAddress(hdr));
                t.note(|| format!("header at {hdr:#x}: type {ty} sector {sec}"));
                if one_in(u, 6)? && hdr_len >= 2 {
                    // The header split over two descriptors.
                    let cut = u.int_in_range(1..=hdr_len - 1)?;
                    descs.push((hdr, cut, 0));
                    descs.push((hdr.wrapping_add(u64::from(cut)), hdr_len - cut, 0));
                } else {
                    descs.push((hdr, hdr_len, 0));
                }
                let data_descs = match u.int_in_range(0..=5)? {
                    0 => 0,
                    1..=3 => 1,
                    _ => u.int_in_range(2..=4)?,
                };
                for _ in 0..data_descs {
                    let len = data_len(u)?;
                    let addr = if one_in(u, 8)? {
                        wild_addr(u, q)?
                    } else {
                        alloc.take(u64::from(len))
                    };
                    // The right direction for the type, sometimes the wrong one.
                    let writable = match ty {
                        T_OUT => one_in(u, 8)?,
                        _ => !one_in(u, 8)?,
                    };
                    if !writable {
                        let fill: u8 = u.arbitrary()?;
                        let n = u64::from(len).min(0x4000);
                        if REGIONS.iter().any(|&(b, s)| addr >= b && addr - b < s) {
                            let _ = mem.write_slice(&vec![fill; n as usize], GuestAddress(addr));
                        }
                    }
                    descs.push((addr, len, if writable { F_WRITE } else { 0 }));
                }
                let status_len: u32 = *u.choose(&[1, 1, 1, 1, 1, 1, 0, 2, 513])?;
                let status_addr = if one_in(u, 10)? {
                    wild_addr(u, q)?
                } else {
                    alloc.take(16)
                };
                let status_flags = if one_in(u, 12)? { 0 } else { F_WRITE };
                descs.push((status_addr, status_len, status_flags));
                let n = descs.len();
                for (i, (addr, len, flags)) in descs.into_iter().enumerate() {
                    let idx = take(&mut next_desc);
                    let last = i + 1 == n;
                    let mut next = if last { 0 } else { next_desc };
                    let mut flags = if last { flags } else { flags | F_NEXT };
                    if one_in(u, 40)? {
                        // A flaw in the links: out of range, a loop, or a lost end.
                        match u.int_in_range(0..=2)? {
                            0 => next = u.arbitrary()?,
                            1 => next = head,
                            _ => flags |= F_NEXT,
                        }
                    }
                    if one_in(u, 60)? {
                        flags |= F_INDIRECT;
                    }
                    put_desc(idx, addr, len, flags, next, t);
                }
            }
            7 => {
                // An indirect table holding a whole request (never offered by the device).
                let table = alloc.take(64);
                let hdr = alloc.take(16);
                let status = alloc.take(16);
                let mut header = [0u8; 16];
                header[..4].copy_from_slice(&T_GET_ID.to_le_bytes());
                let _ = mem.write_slice(&header, GuestAddress(hdr));
                let entries: [(u64, u32, u16, u16); 2] = [(hdr, 16, F_NEXT, 1), (status, 1, F_WRITE, 0)];
                for (i, (addr, len, flags, next)) in entries.iter().enumerate() {
                    let mut raw = [0u8; 16];
                    raw[..8].copy_from_slice(&addr.to_le_bytes());
                    raw[8..12].copy_from_slice(&len.to_le_bytes());
                    raw[12..14].copy_from_slice(&flags.to_le_bytes());
                    raw[14..].copy_from_slice(&next.to_le_bytes());
                    let _ = mem.write_slice(&raw, GuestAddress(table + 16 * i as u64));
                }
                let idx = take(&mut next_desc);
                put_desc(idx, table, 32, F_INDIRECT, 0, t);
            }
            _ => {
                // Descriptors with arbitrary everything.
                let n = u.int_in_range(1..=6)?;
                for _ in 0..n {
                    let idx = take(&mut next_desc);
                    let addr = if one_in(u, 2)? {
                        wild_addr(u, q)?
                    } else {
                        alloc.take(512)
                    };
                    let len = data_len(u)?;
                    let flags: u16 = u.arbitrary::<u16>()? & 0x7;
                    let next = if !one_in(u, 4)? { next_desc } else { u.arbitrary()? };
                    put_desc(idx, addr, len, flags, next, t);
                }
            }
        }
    }
    // The available ring: the heads in order, sometimes a bogus entry or index.
    let mut idx = avail_idx;
    for head in heads {
        let head = if one_in(u, 50)? { u.arbitrary()? } else { head };
        let slot = q.avail.wrapping_add(4 + 2 * u64::from(idx % size));
        let _ = mem.write_obj(head.to_le(), GuestAddress(slot));
        idx = idx.wrapping_add(1);
    }
    if one_in(u, 30)? {
        idx = u.arbitrary()?;
    }
    let _ = mem.write_obj(idx.to_le(), GuestAddress(q.avail.wrapping_add(2)));
    let flags: u16 = if one_in(u, 4)? { 1 } else { 0 };
    let _ = mem.write_obj(flags.to_le(), GuestAddress(q.avail));
    let used_event: u16 = match u.int_in_range(0..=3)? {
        0 => q.next_used,
        1 => q.next_used.wrapping_add(1),
        2 => u.arbitrary()?,
        _ => idx,
    };
    let _ = mem.write_obj(
        used_event.to_le(),
        GuestAddress(q.avail.wrapping_add(4 + 2 * u64::from(size))),
    );
    t.note(|| format!("avail: idx {avail_idx} -> {idx}, flags {flags}, used_event {used_event}"));
    Ok(())
}

/// After setup: the transport activated the device exactly when the driver's configuration
/// was valid, and reports that in `Status`.
fn check_activation(h: &mut BlockHarness) -> Result<Option<QueueModel>, String> {
    let status = h.read_reg(regs::STATUS);
    h.write_reg(regs::QUEUE_SEL, 0);
    let size = h.read_reg(regs::QUEUE_NUM);
    let ready = h.read_reg(regs::QUEUE_READY);
    let addr =
        |h: &mut BlockHarness, low: u64| u64::from(h.read_reg(low)) | (u64::from(h.read_reg(low + 4)) << 32);
    let desc = addr(h, regs::QUEUE_DESC_LOW);
    let avail = addr(h, regs::QUEUE_AVAIL_LOW);
    let used = addr(h, regs::QUEUE_USED_LOW);
    let (activated, acked) = {
        let b = h.block.lock().unwrap();
        (b.is_activated(), b.acked_features())
    };
    let driver_ok = status & 4 != 0;
    let needs_reset = status & 0x40 != 0;
    if activated != (driver_ok && !needs_reset) {
        return Err(format!("device activated={activated} but Status={status:#x}"));
    }
    if !activated {
        return Ok(None);
    }
    if !(1..=u32::from(QUEUE_MAX)).contains(&size) || !size.is_power_of_two() {
        return Err(format!("activated with queue size {size}"));
    }
    let n = u64::from(size);
    let fits = ready == 1
        && desc % 16 == 0
        && avail % 2 == 0
        && used % 4 == 0
        && contains(desc, 16 * n)
        && contains(avail, 6 + 2 * n)
        && contains(used, 6 + 8 * n);
    if !fits {
        return Err(format!(
            "activated with a queue that is not ready or does not fit: ready={ready} size={size} desc={desc:#x} avail={avail:#x} used={used:#x}"
        ));
    }
    if acked & VERSION_1 == 0 || acked & !h.offered != 0 {
        return Err(format!(
            "activated with features {acked:#x} (offered {:#x})",
            h.offered
        ));
    }
    if h.read_only && acked & BLK_F_RO == 0 {
        // Not an error: a driver may ignore RO; the device must still refuse writes.
    }
    Ok(Some(QueueModel {
        size: size as u16,
        desc,
        avail,
        used,
        event_idx: acked & EVENT_IDX != 0,
        next_avail: 0,
        next_used: 0,
    }))
}

fn stray_writes_after_driver_ok(
    h: &mut BlockHarness,
    u: &mut Unstructured,
    t: &mut Trace,
    model: &mut Model,
) -> Result<(), String> {
    let n = u.int_in_range(0..=3).unwrap_or(0);
    for _ in 0..n {
        let (offset, value) = match u.int_in_range(0..=6).unwrap_or(0) {
            0 => (regs::QUEUE_NUM, *u.choose(&[1, 2, 8, 0x1_0002]).unwrap_or(&1)),
            1 => (regs::QUEUE_READY, u.int_in_range(0..=1).unwrap_or(0)),
            2 => (regs::QUEUE_DESC_LOW, u.arbitrary().unwrap_or(0)),
            3 => (regs::QUEUE_USED_HIGH, 1),
            4 => (regs::DRIVER_FEATURES, u.arbitrary().unwrap_or(0)),
            5 => (regs::INTERRUPT_ACK, u.int_in_range(0..=3).unwrap_or(0)),
            _ => (regs::QUEUE_SEL, u.int_in_range(0..=2).unwrap_or(0)),
        };
        t.note(|| format!("stray write {offset:#x} = {value:#x}"));
        h.write_reg(offset, value);
        if offset == regs::INTERRUPT_ACK {
            model.irq_status &= !value;
        }
    }
    h.write_reg(regs::QUEUE_SEL, 0);
    if let Some(q) = model.queue {
        let size = h.read_reg(regs::QUEUE_NUM);
        let desc = u64::from(h.read_reg(regs::QUEUE_DESC_LOW))
            | (u64::from(h.read_reg(regs::QUEUE_DESC_HIGH)) << 32);
        let used = u64::from(h.read_reg(regs::QUEUE_USED_LOW))
            | (u64::from(h.read_reg(regs::QUEUE_USED_HIGH)) << 32);
        if (size, desc, used) != (u32::from(q.size), q.desc, q.used) {
            return Err(format!(
                "queue configuration changed after DRIVER_OK: size {size} desc {desc:#x} used {used:#x}, was {q:?}"
            ));
        }
    }
    compare(h, model)
}

/// The device against the model: memory, file, metrics, status, interrupts.
fn compare(h: &mut BlockHarness, model: &mut Model) -> Result<(), String> {
    let actual = Snapshot::take(&h.mem);
    if actual != model.mem {
        let diff = actual.diff(&model.mem);
        let show: Vec<String> = diff
            .iter()
            .take(8)
            .map(|&a| {
                format!(
                    "{a:#x}: device {:#04x} model {:#04x}",
                    actual.get(a).unwrap_or(0),
                    model.mem.get(a).unwrap_or(0)
                )
            })
            .collect();
        return Err(format!(
            "guest memory differs from the model at {} bytes: {}",
            diff.len(),
            show.join(", ")
        ));
    }
    h.file_matches_shadow()?;
    let m = h.metrics();
    let expect = BlockMetricsSnapshot {
        busy_ns: m.busy_ns,
        ..model.metrics
    };
    if m != expect {
        return Err(format!("metrics {m:?}, model {expect:?}"));
    }
    let status = h.read_reg(regs::STATUS);
    if (status & 0x40 != 0) != (model.failed || model.refused) {
        return Err(format!(
            "Status {status:#x}: DEVICE_NEEDS_RESET should be {}",
            model.failed || model.refused
        ));
    }
    let irq_status = h.read_reg(regs::INTERRUPT_STATUS);
    if irq_status != model.irq_status {
        return Err(format!(
            "InterruptStatus {irq_status:#x}, model {:#x}",
            model.irq_status
        ));
    }
    let irq = h.irq_pending();
    if irq != model.irq {
        return Err(format!("irq signalled={irq}, model {}", model.irq));
    }
    model.irq = false;
    Ok(())
}

// ---- the reference model ---------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

impl Desc {
    fn writable(&self) -> bool {
        self.flags & F_WRITE != 0
    }
}

fn load_u16(mem: &Snapshot, addr: u64) -> Option<u16> {
    Some(u16::from_le_bytes([
        mem.get(addr)?,
        mem.get(addr.checked_add(1)?)?,
    ]))
}

fn store(mem: &mut Snapshot, addr: u64, bytes: &[u8]) -> bool {
    if !mem.contains(addr, bytes.len() as u64) {
        return false;
    }
    for (i, b) in bytes.iter().enumerate() {
        mem.set(addr + i as u64, *b);
    }
    true
}

/// Why the model stops the device.
struct Malformed;

impl Model {
    /// One queue notification: virtio 1.2 2.7 (split virtqueues) as the device implements it.
    fn serve(&mut self, file: &mut [u8], t: &mut Trace) {
        if self.failed {
            return;
        }
        let Some(mut q) = self.queue else {
            return;
        };
        let start_used = q.next_used;
        let mut failed = false;
        loop {
            let Some(avail_idx) = load_u16(&self.mem, q.avail + 2) else {
                failed = true;
                break;
            };
            if avail_idx.wrapping_sub(q.next_avail) > q.size {
                t.note(|| {
                    format!(
                        "model: avail idx {avail_idx} is more than a queue ahead of {}",
                        q.next_avail
                    )
                });
                failed = true;
                break;
            }
            if avail_idx == q.next_avail {
                if q.event_idx {
                    // Re-arm (avail_event = next_avail) and look again.
                    let at = q.used + 4 + 8 * u64::from(q.size);
                    store(&mut self.mem, at, &q.next_avail.to_le_bytes());
                    if load_u16(&self.mem, q.avail + 2) != Some(q.next_avail) {
                        continue;
                    }
                }
                break;
            }
            let slot = q.avail + 4 + 2 * u64::from(q.next_avail % q.size);
            let head = load_u16(&self.mem, slot).unwrap_or(u16::MAX);
            q.next_avail = q.next_avail.wrapping_add(1);
            let Ok(len) = self.execute(file, &q, head, t) else {
                t.note(|| format!("model: chain at head {head} is malformed"));
                failed = true;
                break;
            };
            let mut elem = [0u8; 8];
            elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
            elem[4..].copy_from_slice(&len.to_le_bytes());
            let at = q.used + 4 + 8 * u64::from(q.next_used % q.size);
            if !store(&mut self.mem, at, &elem) {
                failed = true;
                break;
            }
            q.next_used = q.next_used.wrapping_add(1);
            store(&mut self.mem, q.used + 2, &q.next_used.to_le_bytes());
        }
        if q.next_used != start_used {
            let wants = if q.event_idx {
                let used_event = load_u16(&self.mem, q.avail + 4 + 2 * u64::from(q.size)).unwrap_or(0);
                q.next_used.wrapping_sub(used_event).wrapping_sub(1) < q.next_used.wrapping_sub(start_used)
            } else {
                load_u16(&self.mem, q.avail).unwrap_or(0) & 1 == 0
            };
            if wants {
                self.irq_status |= 1;
                self.irq = true;
            }
        }
        if failed {
            self.failed = true;
            self.metrics.failed = true;
            self.irq_status |= 2;
            self.irq = true;
        }
        self.queue = Some(q);
    }

    /// Walks the chain at `head`: bounded by the queue size, indices in range, no indirect
    /// descriptors (not offered), at most 2^32 - 1 bytes in total.
    fn walk(&self, q: &QueueModel, head: u16) -> Result<Vec<Desc>, Malformed> {
        let mut descs = Vec::new();
        let mut idx = head;
        let mut total: u32 = 0;
        for _ in 0..q.size {
            if idx >= q.size {
                return Err(Malformed);
            }
            let at = q.desc + 16 * u64::from(idx);
            let raw = self.mem.read(at, 16);
            let d = Desc {
                addr: u64::from_le_bytes(raw[..8].try_into().unwrap()),
                len: u32::from_le_bytes(raw[8..12].try_into().unwrap()),
                flags: u16::from_le_bytes([raw[12], raw[13]]),
                next: u16::from_le_bytes([raw[14], raw[15]]),
            };
            if d.flags & F_INDIRECT != 0 {
                return Err(Malformed);
            }
            total = total.checked_add(d.len).ok_or(Malformed)?;
            descs.push(d);
            if d.flags & F_NEXT == 0 {
                return Ok(descs);
            }
            idx = d.next;
        }
        Err(Malformed)
    }

    /// One request (virtio 1.2 5.2.6); returns the used length.
    fn execute(
        &mut self,
        file: &mut [u8],
        q: &QueueModel,
        head: u16,
        t: &mut Trace,
    ) -> Result<u32, Malformed> {
        let descs = self.walk(q, head)?;
        let last = descs[descs.len() - 1];
        let status_addr = match last.addr.checked_add(u64::from(last.len).wrapping_sub(1)) {
            Some(a) if last.writable() && last.len > 0 && self.mem.contains(a, 1) => a,
            _ => {
                t.note(|| format!("model: head {head}: no status byte"));
                self.metrics.errors += 1;
                return Ok(0);
            }
        };
        let (status, data_len) = match self.request(file, &descs) {
            Ok(n) => (S_OK, n),
            Err(s) => {
                self.metrics.errors += 1;
                (s, 0)
            }
        };
        t.note(|| format!("model: head {head}: status {status}, {data_len} bytes"));
        store(&mut self.mem, status_addr, &[status]);
        Ok(data_len + 1)
    }

    fn request(&mut self, file: &mut [u8], descs: &[Desc]) -> Result<u32, u8> {
        let first_writable = descs.iter().position(Desc::writable).ok_or(S_IOERR)?;
        if descs[first_writable..].iter().any(|d| !d.writable()) {
            return Err(S_IOERR);
        }
        let readable: Vec<(u64, u64)> = descs[..first_writable]
            .iter()
            .map(|d| (d.addr, u64::from(d.len)))
            .collect();
        let mut writable: Vec<(u64, u64)> = descs[first_writable..]
            .iter()
            .map(|d| (d.addr, u64::from(d.len)))
            .collect();
        if let Some(l) = writable.last_mut() {
            l.1 -= 1;
        }
        let total = |s: &[(u64, u64)]| s.iter().map(|x| x.1).sum::<u64>();
        if total(&readable) < 16 {
            return Err(S_IOERR);
        }
        // The header: the first 16 readable bytes; only what is read must be in memory.
        let mut header = Vec::with_capacity(16);
        for &(addr, len) in &readable {
            let n = len.min(16 - header.len() as u64);
            if n == 0 {
                continue;
            }
            if !self.mem.contains(addr, n) {
                return Err(S_IOERR);
            }
            header.extend(self.mem.read(addr, n as usize));
            if header.len() == 16 {
                break;
            }
        }
        let ty = u32::from_le_bytes(header[..4].try_into().unwrap());
        let sector = u64::from_le_bytes(header[8..].try_into().unwrap());
        let in_memory = |mem: &Snapshot, segs: &[(u64, u64)]| segs.iter().all(|&(a, l)| mem.contains(a, l));
        let check_data = |mem: &Snapshot, segs: &[(u64, u64)]| -> Result<u64, u8> {
            let len = total(segs);
            if len % 512 != 0 {
                return Err(S_IOERR);
            }
            match sector.checked_add(len / 512) {
                Some(end) if end <= SECTORS => {}
                _ => return Err(S_IOERR),
            }
            if !in_memory(mem, segs) {
                return Err(S_IOERR);
            }
            Ok(len)
        };
        match ty {
            T_IN => {
                let len = check_data(&self.mem, &writable)?;
                let mut at = (sector * 512) as usize;
                for &(addr, l) in &writable {
                    store(&mut self.mem, addr, &file[at..at + l as usize]);
                    at += l as usize;
                }
                self.metrics.read_requests += 1;
                self.metrics.read_bytes += len;
                Ok(len as u32)
            }
            T_OUT => {
                if self.read_only {
                    return Err(S_IOERR);
                }
                // The data: the readable bytes after the header.
                let mut data = Vec::new();
                let mut skip = 16u64;
                for &(addr, l) in &readable {
                    if skip >= l {
                        skip -= l;
                        continue;
                    }
                    data.push((addr + skip, l - skip));
                    skip = 0;
                }
                let len = check_data(&self.mem, &data)?;
                let mut at = (sector * 512) as usize;
                for &(addr, l) in &data {
                    let bytes = self.mem.read(addr, l as usize);
                    file[at..at + l as usize].copy_from_slice(&bytes);
                    at += l as usize;
                }
                self.metrics.write_requests += 1;
                self.metrics.write_bytes += len;
                Ok(0)
            }
            T_FLUSH => {
                self.metrics.flush_requests += 1;
                Ok(0)
            }
            T_GET_ID => {
                let room = total(&writable);
                if room == 0 || !in_memory(&self.mem, &writable) {
                    return Err(S_IOERR);
                }
                let mut id = [0u8; 20];
                id[..DRIVE_ID.len()].copy_from_slice(DRIVE_ID.as_bytes());
                let n = room.min(20) as usize;
                let mut done = 0;
                for &(addr, l) in &writable {
                    if done == n {
                        break;
                    }
                    let k = (l as usize).min(n - done);
                    store(&mut self.mem, addr, &id[done..done + k]);
                    done += k;
                }
                Ok(n as u32)
            }
            _ => Err(S_UNSUPP),
        }
    }
}
