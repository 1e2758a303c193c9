//! The virtio-blk device and its [`VirtioDevice`] implementation.

use std::fs::File;
use std::sync::Arc;

use log::{error, info, warn};
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::GuestAddress;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::metrics::BlockMetrics;
use super::request::{self, Disk};
use super::{
    BlockConfig, BlockError, DRIVE_ID_LEN, NUM_QUEUES, QUEUE_SIZE, SECTOR_SHIFT, SEG_MAX,
    features as blk_features, is_valid_drive_id,
};
use crate::GuestMemoryMmap;
use crate::virtio::{
    InterruptKind, VirtioDevice, VirtioDeviceError, VirtioInterrupt, device_type, feature, features,
    queue_wants_interrupt, read_config_bytes,
};

/// What the device holds between `DRIVER_OK` and reset.
struct Active {
    mem: GuestMemoryMmap,
    queue: Queue,
}

/// A virtio-blk device backed by a host file or block device.
pub struct Block {
    config: BlockConfig,
    file: File,
    /// Capacity in 512-byte sectors.
    capacity: u64,
    id: [u8; DRIVE_ID_LEN],
    avail_features: u64,
    acked_features: u64,
    config_space: Vec<u8>,
    queue_sizes: [u16; NUM_QUEUES],
    queue_evts: Vec<EventFd>,
    interrupt: Arc<VirtioInterrupt>,
    metrics: Arc<BlockMetrics>,
    active: Option<Active>,
    failed: bool,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("config", &self.config)
            .field("capacity", &self.capacity)
            .field("acked_features", &self.acked_features)
            .field("active", &self.active.is_some())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Block {
    /// Validates `config`, opens the backing file and creates the device (not yet
    /// activated). A file size that is not a multiple of 512 loses its trailing bytes.
    pub fn new(config: BlockConfig) -> Result<Self, BlockError> {
        let file = config.open()?;
        Self::with_file(config, file)
    }

    /// The device over `file`, the backing file its caller opened already (the VMM opens
    /// it once, when the drive is configured): opened for writing unless `config` is
    /// read-only. Only the drive id is checked here, the file being the caller's.
    pub fn with_file(config: BlockConfig, mut file: File) -> Result<Self, BlockError> {
        if !is_valid_drive_id(&config.drive_id) {
            return Err(BlockError::DriveIdInvalid(config.drive_id));
        }
        let size = config.size_of(&mut file)?;
        let capacity = size >> SECTOR_SHIFT;
        if size % (1 << SECTOR_SHIFT) != 0 {
            warn!(
                "virtio-blk {}: size {size} of {} is not a multiple of 512; the last {} bytes are not visible",
                config.drive_id,
                config.path.display(),
                size % (1 << SECTOR_SHIFT)
            );
        }
        let mut avail_features = feature(features::VIRTIO_F_VERSION_1)
            | feature(features::VIRTIO_RING_F_EVENT_IDX)
            | feature(blk_features::VIRTIO_BLK_F_FLUSH)
            | feature(blk_features::VIRTIO_BLK_F_SEG_MAX);
        if config.read_only {
            avail_features |= feature(blk_features::VIRTIO_BLK_F_RO);
        }
        // struct virtio_blk_config: capacity (le64), size_max (le32, not offered), seg_max.
        let mut config_space = Vec::with_capacity(16);
        config_space.extend_from_slice(&capacity.to_le_bytes());
        config_space.extend_from_slice(&0u32.to_le_bytes());
        config_space.extend_from_slice(&SEG_MAX.to_le_bytes());

        let mut id = [0u8; DRIVE_ID_LEN];
        id[..config.drive_id.len()].copy_from_slice(config.drive_id.as_bytes());

        let queue_evts = (0..NUM_QUEUES)
            .map(|_| EventFd::new(EFD_NONBLOCK).map_err(VirtioDeviceError::EventFd))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            config,
            file,
            capacity,
            id,
            avail_features,
            acked_features: 0,
            config_space,
            queue_sizes: [QUEUE_SIZE; NUM_QUEUES],
            queue_evts,
            interrupt: Arc::new(VirtioInterrupt::new()?),
            metrics: Arc::new(BlockMetrics::default()),
            active: None,
            failed: false,
        })
    }

    /// The configuration this device was made from.
    pub fn config(&self) -> &BlockConfig {
        &self.config
    }

    /// The drive id (`GET_ID`).
    pub fn drive_id(&self) -> &str {
        &self.config.drive_id
    }

    /// Capacity in 512-byte sectors, as reported in the config space.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The device's counters; keep the `Arc` to read them while the device runs.
    pub fn metrics(&self) -> &Arc<BlockMetrics> {
        &self.metrics
    }

    /// Drains the request queue: executes every available request, fills the used ring
    /// and interrupts the guest if it wants to be told. Called by the event handler on a
    /// queue notification; does nothing while the device is inactive or failed.
    pub fn process_queue(&mut self) {
        let started = std::time::Instant::now();
        self.serve_queue();
        self.metrics.add_busy(started.elapsed());
    }

    fn serve_queue(&mut self) {
        if self.failed {
            return;
        }
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let disk = Disk {
            file: &self.file,
            capacity: self.capacity,
            read_only: self.config.read_only,
            id: &self.id,
        };
        let mem = &active.mem;
        let queue = &mut active.queue;
        let desc_table = GuestAddress(queue.desc_table());
        let mut used = false;
        let mut failure: Option<String> = None;
        loop {
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => {
                    failure = Some(format!("available ring: {e}"));
                    break;
                }
            };
            let Some(chain) = chain else {
                // With EVENT_IDX, re-arm notifications and look once more so that a request
                // made available meanwhile is not missed.
                if queue.event_idx_enabled() {
                    match queue.enable_notification(mem) {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => failure = Some(format!("enabling notifications: {e}")),
                    }
                }
                break;
            };
            let head = chain.head_index();
            match request::execute(mem, chain, desc_table, &disk, &self.metrics) {
                Ok(len) => {
                    if let Err(e) = queue.add_used(mem, head, len) {
                        failure = Some(format!("used ring: {e}"));
                        break;
                    }
                    used = true;
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        if used {
            match queue_wants_interrupt(mem, queue) {
                Ok(true) => {
                    if let Err(e) = self.interrupt.trigger(InterruptKind::UsedRing) {
                        error!("virtio-blk {}: {e}", self.config.drive_id);
                    }
                }
                Ok(false) => {}
                Err(e) => failure = Some(e),
            }
        }
        if let Some(reason) = failure {
            self.fail(&reason);
        }
    }

    /// Stops the device on a malformed queue: no more requests until the driver resets it,
    /// which it learns from `DEVICE_NEEDS_RESET` and a configuration interrupt.
    fn fail(&mut self, reason: &str) {
        error!(
            "virtio-blk {}: malformed queue ({reason}); device needs reset",
            self.config.drive_id
        );
        self.failed = true;
        self.metrics.set_failed(true);
        if let Err(e) = self.interrupt.trigger(InterruptKind::Config) {
            error!("virtio-blk {}: {e}", self.config.drive_id);
        }
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        device_type::BLOCK
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
            "virtio-blk {}: write of {} bytes to read-only config space at {offset:#x} ignored",
            self.config.drive_id,
            data.len()
        );
    }

    fn activate(&mut self, mem: GuestMemoryMmap, queues: Vec<Queue>) -> Result<(), VirtioDeviceError> {
        if self.active.is_some() {
            return Err(VirtioDeviceError::AlreadyActivated);
        }
        let actual = queues.len();
        let Ok([queue]) = <[Queue; NUM_QUEUES]>::try_from(queues) else {
            return Err(VirtioDeviceError::QueueCount {
                expected: NUM_QUEUES,
                actual,
            });
        };
        info!(
            "virtio-blk {}: activated ({} sectors{}, queue size {})",
            self.config.drive_id,
            self.capacity,
            if self.config.read_only { ", read-only" } else { "" },
            queue.size()
        );
        self.active = Some(Active { mem, queue });
        // Requests made available before activation (a notify that raced DRIVER_OK) are
        // picked up on the next notification; the driver notifies after DRIVER_OK.
        Ok(())
    }

    fn is_activated(&self) -> bool {
        self.active.is_some()
    }

    fn reset(&mut self) {
        self.active = None;
        self.acked_features = 0;
        self.failed = false;
        self.metrics.set_failed(false);
    }

    fn needs_reset(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::sync::Mutex;

    use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
    use virtio_queue::desc::split::Descriptor as SplitDescriptor;
    use vm_memory::Bytes;

    use super::*;
    use crate::virtio::block::{BlockMetricsSnapshot, request_status, request_type};
    use crate::virtio::mmio::MmioTransport;
    use crate::virtio::status;
    use crate::virtio::test_utils::{GuestQueue, MmioDriver, TestQueue, guest_memory, read_reg, write_reg};

    const QUEUE_ADDR: u64 = 0x1_0000;
    const HDR: u64 = 0x10_0000;
    const DATA: u64 = 0x20_0000;
    const STATUS: u64 = 0x30_0000;
    const SECTORS: u64 = 128;
    const F_NEXT: u16 = VRING_DESC_F_NEXT as u16;
    const F_WRITE: u16 = VRING_DESC_F_WRITE as u16;

    /// A block device on a temp file of `SECTORS` sectors (sector i filled with byte i),
    /// activated through a real transport with a 16-entry queue.
    struct Harness {
        file: tempfile::NamedTempFile,
        mem: GuestMemoryMmap,
        block: Arc<Mutex<Block>>,
        transport: MmioTransport,
    }

    impl Harness {
        fn new(read_only: bool) -> Self {
            Self::with_features(read_only, None)
        }

        fn with_features(read_only: bool, driver_features: Option<u64>) -> Self {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            for i in 0..SECTORS {
                file.write_all(&[i as u8; 512]).unwrap();
            }
            let block = Block::new(BlockConfig {
                drive_id: "disk-7".into(),
                path: file.path().into(),
                read_only,
            })
            .unwrap();
            let offered = block.avail_features();
            let block = Arc::new(Mutex::new(block));
            let mem = guest_memory();
            let mut transport = MmioTransport::new(mem.clone(), block.clone()).unwrap();
            let q = TestQueue::new(GuestAddress(QUEUE_ADDR), 16);
            MmioDriver::new(&mut transport)
                .init(driver_features.unwrap_or(offered), &[q])
                .unwrap();
            assert!(block.lock().unwrap().is_activated());
            Self {
                file,
                mem,
                block,
                transport,
            }
        }

        fn gq(&self) -> GuestQueue<'_> {
            GuestQueue::new(&self.mem, TestQueue::new(GuestAddress(QUEUE_ADDR), 16))
        }

        fn header(&self, at: u64, req_type: u32, sector: u64) {
            self.mem.write_obj(req_type.to_le(), GuestAddress(at)).unwrap();
            self.mem.write_obj(0u32, GuestAddress(at + 4)).unwrap();
            self.mem.write_obj(sector.to_le(), GuestAddress(at + 8)).unwrap();
            self.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
        }

        /// Stores `descs` (as given) at descriptor `offset..`, makes `offset` available and
        /// runs the queue.
        fn submit(&self, descs: &[SplitDescriptor], offset: u16) {
            self.gq().add_chain(offset, descs);
            self.block.lock().unwrap().process_queue();
        }

        fn request(&self, req_type: u32, sector: u64, data_len: u32, data_flags: u16) {
            self.header(HDR, req_type, sector);
            let mut descs = vec![SplitDescriptor::new(HDR, 16, F_NEXT, 1)];
            if data_len > 0 {
                descs.push(SplitDescriptor::new(DATA, data_len, data_flags | F_NEXT, 2));
            }
            let n = descs.len() as u16;
            descs.push(SplitDescriptor::new(STATUS, 1, F_WRITE, 0));
            descs[n as usize - 1].set_next(n);
            self.submit(&descs, 0);
        }

        fn status(&self) -> u8 {
            self.mem.read_obj(GuestAddress(STATUS)).unwrap()
        }

        fn used(&self, i: u16) -> (u32, u32) {
            self.gq().used_elem(i)
        }

        fn used_idx(&self) -> u16 {
            self.gq().used_idx()
        }

        fn metrics(&self) -> BlockMetricsSnapshot {
            self.block.lock().unwrap().metrics().snapshot()
        }

        fn file_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
            let mut f = self.file.reopen().unwrap();
            f.seek(SeekFrom::Start(offset)).unwrap();
            let mut buf = vec![0; len];
            f.read_exact(&mut buf).unwrap();
            buf
        }

        fn irq_signalled(&self) -> bool {
            self.transport.interrupt().irq_evt().read().is_ok()
        }

        fn needs_reset(&mut self) -> bool {
            read_reg(&mut self.transport, 0x70) & status::DEVICE_NEEDS_RESET != 0
        }
    }

    #[test]
    fn new_block_reports_features_and_config() {
        let h = Harness::new(false);
        let b = h.block.lock().unwrap();
        assert_eq!(b.device_type(), 2);
        assert_eq!(b.capacity(), SECTORS);
        let f = b.avail_features();
        assert_ne!(f & (1 << 32), 0, "VERSION_1");
        assert_ne!(f & (1 << 9), 0, "FLUSH");
        assert_ne!(f & (1 << 2), 0, "SEG_MAX");
        assert_eq!(f & (1 << 5), 0, "not RO");
        let mut cap = [0u8; 8];
        b.read_config(0, &mut cap);
        assert_eq!(u64::from_le_bytes(cap), SECTORS);
        let mut seg_max = [0u8; 4];
        b.read_config(12, &mut seg_max);
        assert_eq!(u32::from_le_bytes(seg_max), SEG_MAX);
        let mut past = [0xffu8; 4];
        b.read_config(0x1000, &mut past);
        assert_eq!(past, [0; 4]);
    }

    #[test]
    fn config_space_through_transport() {
        let mut h = Harness::new(false);
        assert_eq!(read_reg(&mut h.transport, 0x100), SECTORS as u32);
        assert_eq!(read_reg(&mut h.transport, 0x104), 0);
        // Writes are ignored.
        write_reg(&mut h.transport, 0x100, 1);
        assert_eq!(read_reg(&mut h.transport, 0x100), SECTORS as u32);
    }

    #[test]
    fn read_request_fills_guest_memory_from_file() {
        let h = Harness::new(false);
        h.request(request_type::IN, 3, 4 * 512, F_WRITE);
        assert_eq!(h.status(), request_status::OK);
        let mut buf = vec![0u8; 4 * 512];
        h.mem.read_slice(&mut buf, GuestAddress(DATA)).unwrap();
        for s in 0..4 {
            assert!(buf[s * 512..(s + 1) * 512].iter().all(|&b| b == 3 + s as u8));
        }
        assert_eq!(h.used_idx(), 1);
        assert_eq!(h.used(0), (0, 4 * 512 + 1));
        assert!(h.irq_signalled());
        assert_eq!(h.transport.interrupt().status(), 1);
        let m = h.metrics();
        assert_eq!((m.read_requests, m.read_bytes, m.errors), (1, 2048, 0));
    }

    #[test]
    fn write_request_lands_in_file() {
        let h = Harness::new(false);
        let pattern: Vec<u8> = (0..64 * 512).map(|i| (i * 7 % 251) as u8).collect();
        h.mem.write_slice(&pattern, GuestAddress(DATA)).unwrap();
        h.request(request_type::OUT, 10, pattern.len() as u32, 0);
        assert_eq!(h.status(), request_status::OK);
        assert_eq!(h.file_bytes(10 * 512, pattern.len()), pattern);
        assert_eq!(h.file_bytes(9 * 512, 512), vec![9u8; 512], "neighbour untouched");
        assert_eq!(h.used(0), (0, 1));
        let m = h.metrics();
        assert_eq!((m.write_requests, m.write_bytes), (1, pattern.len() as u64));
        // And read it back through the device.
        h.mem
            .write_slice(&vec![0u8; pattern.len()], GuestAddress(DATA))
            .unwrap();
        h.header(HDR, request_type::IN, 10);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 4),
                SplitDescriptor::new(DATA, pattern.len() as u32, F_WRITE | F_NEXT, 5),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            3,
        );
        assert_eq!(h.status(), request_status::OK);
        let mut back = vec![0u8; pattern.len()];
        h.mem.read_slice(&mut back, GuestAddress(DATA)).unwrap();
        assert_eq!(back, pattern);
    }

    #[test]
    fn arbitrary_framing_is_accepted() {
        // Header split over two descriptors, data over three, status sharing the last
        // writable descriptor with data.
        let h = Harness::new(false);
        h.header(HDR, request_type::IN, 1);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 5, F_NEXT, 1),
                SplitDescriptor::new(HDR + 5, 11, F_NEXT, 2),
                SplitDescriptor::new(DATA, 100, F_WRITE | F_NEXT, 3),
                SplitDescriptor::new(DATA + 0x1000, 412, F_WRITE | F_NEXT, 4),
                SplitDescriptor::new(DATA + 0x2000, 513, F_WRITE, 0),
            ],
            0,
        );
        let status: u8 = h.mem.read_obj(GuestAddress(DATA + 0x2000 + 512)).unwrap();
        assert_eq!(status, request_status::OK);
        let mut a = [0u8; 100];
        h.mem.read_slice(&mut a, GuestAddress(DATA)).unwrap();
        assert_eq!(a, [1u8; 100]);
        let mut c = [0u8; 512];
        h.mem.read_slice(&mut c, GuestAddress(DATA + 0x2000)).unwrap();
        assert_eq!(c, [2u8; 512]);
        assert_eq!(h.used(0), (0, 1025));
    }

    #[test]
    fn flush_succeeds_even_read_only() {
        for ro in [false, true] {
            let h = Harness::new(ro);
            h.request(request_type::FLUSH, 0, 0, 0);
            assert_eq!(h.status(), request_status::OK);
            assert_eq!(h.metrics().flush_requests, 1);
        }
    }

    #[test]
    fn get_id_returns_drive_id() {
        let h = Harness::new(false);
        h.mem.write_slice(&[0xaa; 20], GuestAddress(DATA)).unwrap();
        h.request(request_type::GET_ID, 0, 20, F_WRITE);
        assert_eq!(h.status(), request_status::OK);
        let mut id = [0u8; 20];
        h.mem.read_slice(&mut id, GuestAddress(DATA)).unwrap();
        assert_eq!(&id[..6], b"disk-7");
        assert!(id[6..].iter().all(|&b| b == 0));
        assert_eq!(h.used(0), (0, 21));
        // A shorter buffer gets a prefix.
        h.mem.write_slice(&[0xaa; 20], GuestAddress(DATA)).unwrap();
        h.header(HDR, request_type::GET_ID, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 4),
                SplitDescriptor::new(DATA, 4, F_WRITE | F_NEXT, 5),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            3,
        );
        h.mem.read_slice(&mut id, GuestAddress(DATA)).unwrap();
        assert_eq!(&id[..5], b"disk\xaa");
    }

    #[test]
    fn read_only_refuses_writes_and_keeps_data() {
        let h = Harness::new(true);
        assert_ne!(h.block.lock().unwrap().acked_features() & (1 << 5), 0);
        h.mem.write_slice(&[0x55; 512], GuestAddress(DATA)).unwrap();
        h.request(request_type::OUT, 2, 512, 0);
        assert_eq!(h.status(), request_status::IOERR);
        assert_eq!(h.file_bytes(2 * 512, 512), vec![2u8; 512]);
        let m = h.metrics();
        assert_eq!((m.write_requests, m.errors, m.failed), (0, 1, false));
        // Reads still work.
        h.header(HDR, request_type::IN, 2);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 4),
                SplitDescriptor::new(DATA, 512, F_WRITE | F_NEXT, 5),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            3,
        );
        assert_eq!(h.status(), request_status::OK);
    }

    #[test]
    fn unsupported_request_type() {
        let h = Harness::new(false);
        h.request(11, 0, 512, 0); // DISCARD, not offered
        assert_eq!(h.status(), request_status::UNSUPP);
        assert_eq!(h.metrics().errors, 1);
    }

    #[test]
    fn no_interrupt_flag_is_honoured() {
        // VIRTQ_AVAIL_F_NO_INTERRUPT applies when EVENT_IDX is not negotiated.
        let offered = Harness::new(false).block.lock().unwrap().avail_features();
        let h = Harness::with_features(false, Some(offered & !(1 << 29)));
        h.gq().set_avail_flags(1);
        h.request(request_type::FLUSH, 0, 0, 0);
        assert_eq!(h.status(), request_status::OK);
        assert_eq!(h.used_idx(), 1);
        assert!(!h.irq_signalled());
        h.gq().set_avail_flags(0);
        h.header(HDR, request_type::FLUSH, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 3),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            2,
        );
        assert!(h.irq_signalled());
    }

    #[test]
    fn event_idx_suppresses_interrupts_until_used_event() {
        let h = Harness::new(false);
        assert!(h.block.lock().unwrap().acked_features() & (1 << 29) != 0);
        // used_event (after the avail ring entries) = 1: interrupt only once used idx passes 1.
        h.gq().set_used_event(1);
        h.request(request_type::FLUSH, 0, 0, 0);
        assert!(!h.irq_signalled(), "used idx 1 does not pass used_event 1");
        h.header(HDR, request_type::FLUSH, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 3),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            2,
        );
        assert!(h.irq_signalled());
    }

    // ---- malicious guests -------------------------------------------------------------

    #[test]
    fn data_buffer_outside_guest_memory_is_ioerr() {
        let h = Harness::new(false);
        let outside = crate::virtio::test_utils::MEM_SIZE - 256;
        h.header(HDR, request_type::IN, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 1),
                SplitDescriptor::new(outside, 512, F_WRITE | F_NEXT, 2),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            0,
        );
        assert_eq!(h.status(), request_status::IOERR);
        h.header(HDR, request_type::OUT, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 4),
                SplitDescriptor::new(u64::MAX - 100, 512, F_NEXT, 5),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            3,
        );
        assert_eq!(h.status(), request_status::IOERR);
        assert_eq!(h.file_bytes(0, 512), vec![0u8; 512]);
        let m = h.metrics();
        assert_eq!((m.errors, m.failed), (2, false));
        assert_eq!(h.used_idx(), 2);
    }

    #[test]
    fn header_outside_guest_memory_is_ioerr() {
        let h = Harness::new(false);
        h.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
        h.submit(
            &[
                SplitDescriptor::new(1 << 40, 16, F_NEXT, 1),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            0,
        );
        assert_eq!(h.status(), request_status::IOERR);
    }

    #[test]
    fn sectors_beyond_capacity_are_ioerr() {
        let h = Harness::new(false);
        h.request(request_type::IN, SECTORS, 512, F_WRITE);
        assert_eq!(h.status(), request_status::IOERR);
        h.header(HDR, request_type::IN, SECTORS - 1);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 4),
                SplitDescriptor::new(DATA, 1024, F_WRITE | F_NEXT, 5),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            3,
        );
        assert_eq!(h.status(), request_status::IOERR, "crosses the end");
        h.header(HDR, request_type::OUT, u64::MAX);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 7),
                SplitDescriptor::new(DATA, 512, F_NEXT, 8),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            6,
        );
        assert_eq!(h.status(), request_status::IOERR, "overflowing sector");
        // Length larger than the whole file.
        h.header(HDR, request_type::IN, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 10),
                SplitDescriptor::new(DATA, (SECTORS as u32 + 1) * 512, F_WRITE | F_NEXT, 11),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            9,
        );
        assert_eq!(h.status(), request_status::IOERR, "longer than the file");
        let m = h.metrics();
        assert_eq!((m.errors, m.read_requests, m.failed), (4, 0, false));
    }

    #[test]
    fn partial_sector_is_ioerr() {
        let h = Harness::new(false);
        h.request(request_type::IN, 0, 100, F_WRITE);
        assert_eq!(h.status(), request_status::IOERR);
    }

    #[test]
    fn short_header_is_ioerr() {
        let h = Harness::new(false);
        h.header(HDR, request_type::IN, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 8, F_NEXT, 1),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            0,
        );
        assert_eq!(h.status(), request_status::IOERR);
        assert_eq!(h.metrics().errors, 1);
    }

    #[test]
    fn readable_after_writable_is_ioerr() {
        let h = Harness::new(false);
        h.header(HDR, request_type::OUT, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 1),
                SplitDescriptor::new(DATA, 512, F_WRITE | F_NEXT, 2),
                SplitDescriptor::new(DATA + 512, 512, F_NEXT, 3),
                SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
            ],
            0,
        );
        assert_eq!(h.status(), request_status::IOERR);
    }

    #[test]
    fn unwritable_or_empty_status_is_counted_not_answered() {
        let h = Harness::new(false);
        h.header(HDR, request_type::FLUSH, 0);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 1),
                SplitDescriptor::new(STATUS, 1, 0, 0), // not writable
            ],
            0,
        );
        assert_eq!(h.status(), 0xff, "status untouched");
        assert_eq!(h.used(0), (0, 0));
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 3),
                SplitDescriptor::new(STATUS, 0, F_WRITE, 0), // no room
            ],
            2,
        );
        assert_eq!(h.status(), 0xff);
        h.submit(
            &[
                SplitDescriptor::new(HDR, 16, F_NEXT, 5),
                SplitDescriptor::new(1 << 40, 1, F_WRITE, 0), // outside memory
            ],
            4,
        );
        let m = h.metrics();
        assert_eq!((m.errors, m.flush_requests, m.failed), (3, 0, false));
        assert_eq!(h.used_idx(), 3);
    }

    #[test]
    fn looping_chain_fails_the_device() {
        let mut h = Harness::new(false);
        h.header(HDR, request_type::IN, 0);
        // 0 -> 1 -> 0 -> ...
        h.gq().set_desc(0, SplitDescriptor::new(HDR, 16, F_NEXT, 1));
        h.gq()
            .set_desc(1, SplitDescriptor::new(DATA, 512, F_WRITE | F_NEXT, 0));
        h.gq().set_avail_ring(0, 0);
        h.gq().set_avail_idx(1);
        h.block.lock().unwrap().process_queue();
        assert!(h.needs_reset());
        assert!(h.metrics().failed);
        assert_eq!(h.transport.interrupt().status() & 2, 2, "config interrupt");
        assert!(h.irq_signalled());
        assert_eq!(h.used_idx(), 0);
        // Further notifications are ignored until reset.
        h.transport.bus_write(0x50, &0u32.to_le_bytes());
        h.block.lock().unwrap().process_queue();
        assert_eq!(h.used_idx(), 0);
        // Reset clears the failure; the device works again after re-initialisation.
        write_reg(&mut h.transport, 0x70, 0);
        assert!(!h.needs_reset());
        assert!(!h.metrics().failed);
    }

    #[test]
    fn chain_longer_than_queue_fails_the_device() {
        let mut h = Harness::new(false);
        // 16 descriptors all chained, the last pointing back to the first: no end within
        // the queue size.
        for i in 0..16u16 {
            let d = SplitDescriptor::new(DATA + u64::from(i) * 16, 16, F_NEXT, (i + 1) % 16);
            h.gq().set_desc(i, d);
        }
        h.gq().set_avail_ring(0, 0);
        h.gq().set_avail_idx(1);
        h.block.lock().unwrap().process_queue();
        assert!(h.needs_reset());
    }

    #[test]
    fn invalid_descriptor_index_fails_the_device() {
        let mut h = Harness::new(false);
        h.header(HDR, request_type::FLUSH, 0);
        let d = SplitDescriptor::new(HDR, 16, F_NEXT, 200); // next beyond the queue
        h.gq().set_desc(0, d);
        h.gq().set_avail_ring(0, 0);
        h.gq().set_avail_idx(1);
        h.block.lock().unwrap().process_queue();
        assert!(h.needs_reset());
    }

    #[test]
    fn invalid_head_index_fails_the_device() {
        let mut h = Harness::new(false);
        h.gq().set_avail_ring(0, 300);
        h.gq().set_avail_idx(1);
        h.block.lock().unwrap().process_queue();
        assert!(h.needs_reset());
    }

    /// Found by the block fuzzer: virtio-queue's chain iterator follows
    /// `VIRTQ_DESC_F_INDIRECT` whatever was negotiated, so the device served requests out of
    /// an indirect table it never offered. Such a chain is malformed now, first or later in
    /// the chain: the device stops and asks for a reset, and nothing is answered.
    #[test]
    fn indirect_descriptor_without_the_feature_fails_the_device() {
        let indirect = virtio_bindings::virtio_ring::VRING_DESC_F_INDIRECT as u16;
        for position in 0..2u16 {
            let mut h = Harness::new(false);
            h.header(HDR, request_type::GET_ID, 0);
            // The indirect table at DATA: header, 20-byte id buffer, status.
            let table: [(u64, u32, u16, u16); 3] = [
                (HDR, 16, F_NEXT, 1),
                (DATA + 0x1000, 20, F_WRITE | F_NEXT, 2),
                (STATUS, 1, F_WRITE, 0),
            ];
            for (i, (addr, len, flags, next)) in table.into_iter().enumerate() {
                let at = DATA + 16 * i as u64;
                h.mem.write_obj(addr, GuestAddress(at)).unwrap();
                h.mem.write_obj(len, GuestAddress(at + 8)).unwrap();
                h.mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
                h.mem.write_obj(next, GuestAddress(at + 14)).unwrap();
            }
            if position == 0 {
                h.gq().set_desc(0, SplitDescriptor::new(DATA, 48, indirect, 0));
            } else {
                // A direct header first, then the indirect descriptor.
                h.gq().set_desc(0, SplitDescriptor::new(HDR, 16, F_NEXT, 1));
                h.gq()
                    .set_desc(1, SplitDescriptor::new(DATA + 16, 32, indirect, 0));
            }
            h.gq().set_avail_ring(0, 0);
            h.gq().set_avail_idx(1);
            h.block.lock().unwrap().process_queue();
            assert!(h.needs_reset(), "indirect descriptor at position {position}");
            assert_eq!(h.status(), 0xff, "not answered");
            assert_eq!(h.used_idx(), 0);
            assert!(h.metrics().failed);
        }
    }

    #[test]
    fn bogus_avail_index_fails_the_device() {
        let mut h = Harness::new(false);
        h.gq().set_avail_idx(1000); // more entries than the queue holds
        h.block.lock().unwrap().process_queue();
        assert!(h.needs_reset());
        assert!(h.metrics().failed);
        assert_eq!(h.used_idx(), 0);
    }

    #[test]
    fn requests_before_a_bad_one_complete() {
        let mut h = Harness::new(false);
        h.header(HDR, request_type::FLUSH, 0);
        let descs = [
            SplitDescriptor::new(HDR, 16, F_NEXT, 1),
            SplitDescriptor::new(STATUS, 1, F_WRITE, 0),
        ];
        h.gq().add_chain(0, &descs);
        h.gq().set_desc(2, SplitDescriptor::new(HDR, 16, F_NEXT, 2));
        h.gq().set_avail_ring(1, 2);
        h.gq().set_avail_idx(2);
        h.block.lock().unwrap().process_queue();
        assert_eq!(h.used_idx(), 1);
        assert_eq!(h.status(), request_status::OK);
        assert!(h.needs_reset());
        assert_eq!(h.transport.interrupt().status(), 3);
    }

    #[test]
    fn inactive_device_ignores_processing() {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(512).unwrap();
        let mut b = Block::new(BlockConfig {
            drive_id: "x".into(),
            path: file.path().into(),
            read_only: false,
        })
        .unwrap();
        b.process_queue();
        assert!(!b.is_activated());
        let mem = guest_memory();
        assert!(matches!(
            b.activate(mem, vec![]),
            Err(VirtioDeviceError::QueueCount {
                expected: 1,
                actual: 0
            })
        ));
    }

    #[test]
    fn unaligned_file_size_hides_the_tail() {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(1000).unwrap();
        let b = Block::new(BlockConfig {
            drive_id: "x".into(),
            path: file.path().into(),
            read_only: true,
        })
        .unwrap();
        assert_eq!(b.capacity(), 1);
        assert_ne!(b.avail_features() & (1 << 5), 0, "RO offered");
    }
}
