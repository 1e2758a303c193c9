//! Test helpers: guest memory, a register-level virtio-mmio driver and a trivial device.
//!
//! Compiled for this crate's tests and, with the `test-utils` feature, for the VMM's.

use std::sync::Arc;

use virtio_queue::Queue;
use virtio_queue::desc::RawDescriptor;
use virtio_queue::desc::split::Descriptor;
use virtio_queue::mock::DescriptorTable;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::mmio::MmioTransport;
use super::{VirtioDevice, VirtioDeviceError, VirtioInterrupt, status};
use crate::GuestMemoryMmap;

/// Size of the guest memory made by [`guest_memory`].
pub const MEM_SIZE: u64 = 0x40_0000;

/// A single-region guest memory of [`MEM_SIZE`] bytes at guest address 0.
pub fn guest_memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)])
        .expect("cannot allocate test guest memory")
}

/// Reads a 32-bit register of the transport.
pub fn read_reg(t: &mut MmioTransport, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    t.bus_read(offset, &mut data);
    u32::from_le_bytes(data)
}

/// Writes a 32-bit register of the transport.
pub fn write_reg(t: &mut MmioTransport, offset: u64, value: u32) {
    t.bus_write(offset, &value.to_le_bytes());
}

/// Where a split virtqueue lives in guest memory: descriptor table, then the available ring
/// (2-byte aligned), then the used ring (4-byte aligned), as a driver lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestQueue {
    /// Descriptor table.
    pub desc: GuestAddress,
    /// Available ring.
    pub avail: GuestAddress,
    /// Used ring.
    pub used: GuestAddress,
    /// Number of entries.
    pub size: u16,
}

impl TestQueue {
    /// A queue of `size` entries starting at `start`.
    pub fn new(start: GuestAddress, size: u16) -> Self {
        let n = u64::from(size);
        let avail = start.0 + 16 * n;
        let avail_end = avail + 4 + 2 * n + 2;
        let used = (avail_end + 3) & !3;
        Self {
            desc: start,
            avail: GuestAddress(avail),
            used: GuestAddress(used),
            size,
        }
    }
}

/// The driver's side of a split virtqueue in guest memory: descriptors (through
/// virtio-queue's mock `DescriptorTable`) and the available/used rings.
///
/// (virtio-queue's `MockSplitQueue` is not used for the rings: it zeroes them whenever it is
/// created and places the used ring over the tail of the available ring.)
pub struct GuestQueue<'a> {
    mem: &'a GuestMemoryMmap,
    layout: TestQueue,
    table: DescriptorTable<'a, GuestMemoryMmap>,
}

impl<'a> GuestQueue<'a> {
    /// A view of the queue at `layout`; nothing in memory changes.
    pub fn new(mem: &'a GuestMemoryMmap, layout: TestQueue) -> Self {
        Self {
            mem,
            layout,
            table: DescriptorTable::new(mem, layout.desc, layout.size),
        }
    }

    fn store_u16(&self, addr: u64, v: u16) {
        self.mem
            .write_obj(v.to_le(), GuestAddress(addr))
            .expect("queue outside test memory");
    }

    fn load_u16(&self, addr: u64) -> u16 {
        u16::from_le(
            self.mem
                .read_obj(GuestAddress(addr))
                .expect("queue outside test memory"),
        )
    }

    /// Writes descriptor `index` as given (flags and next included).
    pub fn set_desc(&self, index: u16, desc: Descriptor) {
        self.table
            .store(index, RawDescriptor::from(desc))
            .expect("descriptor index outside the table");
    }

    /// Writes `descs` at indices `first..`, exactly as given, and makes `first` available.
    pub fn add_chain(&self, first: u16, descs: &[Descriptor]) {
        for (i, d) in descs.iter().enumerate() {
            self.set_desc(first + i as u16, *d);
        }
        self.make_available(first);
    }

    /// Puts `head` in the next available-ring slot and bumps the available index.
    pub fn make_available(&self, head: u16) {
        let idx = self.avail_idx();
        self.set_avail_ring(idx % self.layout.size, head);
        self.set_avail_idx(idx.wrapping_add(1));
    }

    /// The available ring's `idx`.
    pub fn avail_idx(&self) -> u16 {
        self.load_u16(self.layout.avail.0 + 2)
    }

    /// Sets the available ring's `idx`.
    pub fn set_avail_idx(&self, idx: u16) {
        self.store_u16(self.layout.avail.0 + 2, idx);
    }

    /// Sets available-ring slot `slot` to `head`.
    pub fn set_avail_ring(&self, slot: u16, head: u16) {
        self.store_u16(self.layout.avail.0 + 4 + 2 * u64::from(slot), head);
    }

    /// Sets the available ring's `flags` (`VIRTQ_AVAIL_F_NO_INTERRUPT` = 1).
    pub fn set_avail_flags(&self, flags: u16) {
        self.store_u16(self.layout.avail.0, flags);
    }

    /// Sets `used_event` (the word after the available ring's entries).
    pub fn set_used_event(&self, v: u16) {
        self.store_u16(self.layout.avail.0 + 4 + 2 * u64::from(self.layout.size), v);
    }

    /// The used ring's `idx`.
    pub fn used_idx(&self) -> u16 {
        self.load_u16(self.layout.used.0 + 2)
    }

    /// Used-ring element `slot` as `(id, len)`.
    pub fn used_elem(&self, slot: u16) -> (u32, u32) {
        let at = self.layout.used.0 + 4 + 8 * u64::from(slot);
        let id: u32 = self.mem.read_obj(GuestAddress(at)).expect("used ring");
        let len: u32 = self.mem.read_obj(GuestAddress(at + 4)).expect("used ring");
        (u32::from_le(id), u32::from_le(len))
    }
}

/// Drives a [`MmioTransport`] through its registers the way a guest driver does.
pub struct MmioDriver<'a> {
    t: &'a mut MmioTransport,
}

impl<'a> MmioDriver<'a> {
    /// Wraps a transport.
    pub fn new(t: &'a mut MmioTransport) -> Self {
        Self { t }
    }

    /// The `Status` register.
    pub fn status(&mut self) -> u32 {
        read_reg(self.t, 0x70)
    }

    /// Adds `bits` to `Status`.
    pub fn set_status_bits(&mut self, bits: u32) {
        let s = self.status();
        write_reg(self.t, 0x70, s | bits);
    }

    /// Resets the device, then ACKNOWLEDGE, DRIVER, writes `features` and sets FEATURES_OK.
    /// Fails when the device leaves FEATURES_OK clear.
    pub fn negotiate(&mut self, features: u64) -> Result<(), String> {
        write_reg(self.t, 0x70, 0);
        self.set_status_bits(status::ACKNOWLEDGE);
        self.set_status_bits(status::DRIVER);
        write_reg(self.t, 0x24, 0);
        write_reg(self.t, 0x20, features as u32);
        write_reg(self.t, 0x24, 1);
        write_reg(self.t, 0x20, (features >> 32) as u32);
        self.set_status_bits(status::FEATURES_OK);
        if self.status() & status::FEATURES_OK == 0 {
            return Err(format!("device refused features {features:#x}"));
        }
        Ok(())
    }

    /// Programs queue `index` (size and addresses) without marking it ready.
    pub fn setup_queue(&mut self, index: u32, q: &TestQueue) {
        write_reg(self.t, 0x30, index);
        write_reg(self.t, 0x38, u32::from(q.size));
        for (low, addr) in [(0x80, q.desc), (0x90, q.avail), (0xa0, q.used)] {
            write_reg(self.t, low, addr.0 as u32);
            write_reg(self.t, low + 4, (addr.0 >> 32) as u32);
        }
    }

    /// Negotiates `features`, programs and readies every queue, then sets DRIVER_OK.
    pub fn init(&mut self, features: u64, queues: &[TestQueue]) -> Result<(), String> {
        self.negotiate(features)?;
        for (i, q) in queues.iter().enumerate() {
            self.setup_queue(i as u32, q);
            write_reg(self.t, 0x44, 1);
        }
        self.set_status_bits(status::DRIVER_OK);
        Ok(())
    }
}

/// A device that records what the transport does to it.
pub struct DummyDevice {
    queue_sizes: Vec<u16>,
    queue_evts: Vec<EventFd>,
    interrupt: Arc<VirtioInterrupt>,
    acked: u64,
    /// Queues received at activation.
    pub queues: Option<Vec<Queue>>,
    /// Configuration space (8 bytes, initially 1..=8).
    pub config: [u8; 8],
    /// What `needs_reset` answers.
    pub failed: bool,
    /// How many times `reset` ran.
    pub resets: u32,
}

impl DummyDevice {
    /// Device type reported.
    pub const TYPE: u32 = 0x42;
    /// Features offered: VIRTIO_F_VERSION_1 and bit 1.
    pub const FEATURES: u64 = (1 << 32) | (1 << 1);

    /// A device with one queue per entry of `queue_sizes`.
    pub fn new(queue_sizes: &[u16]) -> Self {
        Self {
            queue_sizes: queue_sizes.to_vec(),
            queue_evts: queue_sizes
                .iter()
                .map(|_| EventFd::new(EFD_NONBLOCK).expect("eventfd"))
                .collect(),
            interrupt: Arc::new(VirtioInterrupt::new().expect("eventfd")),
            acked: 0,
            queues: None,
            config: [1, 2, 3, 4, 5, 6, 7, 8],
            failed: false,
            resets: 0,
        }
    }
}

impl VirtioDevice for DummyDevice {
    fn device_type(&self) -> u32 {
        Self::TYPE
    }
    fn avail_features(&self) -> u64 {
        Self::FEATURES
    }
    fn acked_features(&self) -> u64 {
        self.acked
    }
    fn set_acked_features(&mut self, features: u64) {
        self.acked = features;
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
        crate::virtio::read_config_bytes(&self.config, offset, data);
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            if let Some(slot) = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| self.config.get_mut(o))
            {
                *slot = *b;
            }
        }
    }
    fn activate(&mut self, _mem: GuestMemoryMmap, queues: Vec<Queue>) -> Result<(), VirtioDeviceError> {
        self.queues = Some(queues);
        Ok(())
    }
    fn is_activated(&self) -> bool {
        self.queues.is_some()
    }
    fn reset(&mut self) {
        self.queues = None;
        self.acked = 0;
        self.failed = false;
        self.resets += 1;
    }
    fn needs_reset(&self) -> bool {
        self.failed
    }
}
