//! The virtio-mmio transport, register layout version 2 ("modern", virtio 1.2 section 4.2.2).
//!
//! [`MmioTransport`] sits on the VMM's MMIO bus at a 4 KiB window and turns guest register
//! accesses into calls on a [`VirtioDevice`]. It owns the driver-facing state: feature
//! selectors, the driver's feature words, the queue configuration and the device status
//! state machine. On `DRIVER_OK` it validates the queues and hands them to the device.
//!
//! A misbehaving driver never makes the transport panic: accesses of the wrong width, at
//! unknown offsets or in the wrong state are logged and ignored; features the device did
//! not offer make `FEATURES_OK` stay clear; queues that do not fit in guest memory make
//! activation fail, which is reported as `DEVICE_NEEDS_RESET` plus a configuration-change
//! interrupt.

use std::sync::{Arc, Mutex};

use log::{debug, error, warn};
use virtio_bindings::virtio_mmio as regs;
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

use super::{
    InterruptKind, VirtioDevice, VirtioDeviceError, VirtioInterrupt, feature, features, lock, status,
};
use crate::GuestMemoryMmap;

/// `MagicValue`: "virt" in little endian.
pub const MMIO_MAGIC_VALUE: u32 = 0x7472_6976;
/// `Version` of the register layout implemented here (2: modern, no legacy registers).
pub const MMIO_VERSION: u32 = 2;
/// `VendorID` reported to the guest ("vmtl" in little endian).
pub const MMIO_VENDOR_ID: u32 = 0x6c74_6d76;
/// Size of the MMIO window of one device, as declared on the kernel command line (`4K@`).
pub const MMIO_WINDOW_SIZE: u64 = 0x1000;
/// Offset of `QueueNotify` in the window: the VMM registers each queue's eventfd as an
/// ioeventfd at `base + MMIO_NOTIFY_OFFSET`, 4 bytes, with datamatch = queue index.
pub const MMIO_NOTIFY_OFFSET: u64 = regs::VIRTIO_MMIO_QUEUE_NOTIFY as u64;
/// Offset where the device configuration space starts.
pub const MMIO_CONFIG_OFFSET: u64 = regs::VIRTIO_MMIO_CONFIG as u64;

const MAGIC_VALUE: u64 = regs::VIRTIO_MMIO_MAGIC_VALUE as u64;
const VERSION: u64 = regs::VIRTIO_MMIO_VERSION as u64;
const DEVICE_ID: u64 = regs::VIRTIO_MMIO_DEVICE_ID as u64;
const VENDOR_ID: u64 = regs::VIRTIO_MMIO_VENDOR_ID as u64;
const DEVICE_FEATURES: u64 = regs::VIRTIO_MMIO_DEVICE_FEATURES as u64;
const DEVICE_FEATURES_SEL: u64 = regs::VIRTIO_MMIO_DEVICE_FEATURES_SEL as u64;
const DRIVER_FEATURES: u64 = regs::VIRTIO_MMIO_DRIVER_FEATURES as u64;
const DRIVER_FEATURES_SEL: u64 = regs::VIRTIO_MMIO_DRIVER_FEATURES_SEL as u64;
const QUEUE_SEL: u64 = regs::VIRTIO_MMIO_QUEUE_SEL as u64;
const QUEUE_NUM_MAX: u64 = regs::VIRTIO_MMIO_QUEUE_NUM_MAX as u64;
const QUEUE_NUM: u64 = regs::VIRTIO_MMIO_QUEUE_NUM as u64;
const QUEUE_READY: u64 = regs::VIRTIO_MMIO_QUEUE_READY as u64;
const QUEUE_NOTIFY: u64 = regs::VIRTIO_MMIO_QUEUE_NOTIFY as u64;
const INTERRUPT_STATUS: u64 = regs::VIRTIO_MMIO_INTERRUPT_STATUS as u64;
const INTERRUPT_ACK: u64 = regs::VIRTIO_MMIO_INTERRUPT_ACK as u64;
const STATUS: u64 = regs::VIRTIO_MMIO_STATUS as u64;
const QUEUE_DESC_LOW: u64 = regs::VIRTIO_MMIO_QUEUE_DESC_LOW as u64;
const QUEUE_DESC_HIGH: u64 = regs::VIRTIO_MMIO_QUEUE_DESC_HIGH as u64;
const QUEUE_AVAIL_LOW: u64 = regs::VIRTIO_MMIO_QUEUE_AVAIL_LOW as u64;
const QUEUE_AVAIL_HIGH: u64 = regs::VIRTIO_MMIO_QUEUE_AVAIL_HIGH as u64;
const QUEUE_USED_LOW: u64 = regs::VIRTIO_MMIO_QUEUE_USED_LOW as u64;
const QUEUE_USED_HIGH: u64 = regs::VIRTIO_MMIO_QUEUE_USED_HIGH as u64;
const CONFIG_GENERATION: u64 = regs::VIRTIO_MMIO_CONFIG_GENERATION as u64;

/// The status bits a driver sets, in the order the spec requires (3.1.1).
const STATUS_STEPS: [u32; 4] = [
    status::ACKNOWLEDGE,
    status::DRIVER,
    status::FEATURES_OK,
    status::DRIVER_OK,
];

/// A virtio device behind the virtio-mmio (version 2) register window.
pub struct MmioTransport {
    device: Arc<Mutex<dyn VirtioDevice>>,
    mem: GuestMemoryMmap,
    queues: Vec<Queue>,
    queue_evts: Vec<EventFd>,
    interrupt: Arc<VirtioInterrupt>,
    device_type: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    status: u32,
    activation_failed: bool,
    config_generation: u32,
}

impl std::fmt::Debug for MmioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmioTransport")
            .field("device_type", &self.device_type)
            .field("status", &self.status)
            .field("queues", &self.queues)
            .finish_non_exhaustive()
    }
}

impl MmioTransport {
    /// Puts `device` behind a virtio-mmio window. `mem` is the guest memory the queues live
    /// in; it is handed to the device on activation.
    pub fn new(
        mem: GuestMemoryMmap,
        device: Arc<Mutex<dyn VirtioDevice>>,
    ) -> Result<Self, VirtioDeviceError> {
        let (device_type, queues, queue_evts, interrupt) = {
            let dev = lock(&device);
            let queues = dev
                .queue_max_sizes()
                .iter()
                .map(|&max| Queue::new(max).map_err(|_| VirtioDeviceError::QueueMaxSize(max)))
                .collect::<Result<Vec<_>, _>>()?;
            let queue_evts = dev
                .queue_events()
                .iter()
                .map(|evt| evt.try_clone().map_err(VirtioDeviceError::EventFd))
                .collect::<Result<Vec<_>, _>>()?;
            if queue_evts.len() != queues.len() {
                return Err(VirtioDeviceError::QueueCount {
                    expected: queues.len(),
                    actual: queue_evts.len(),
                });
            }
            (dev.device_type(), queues, queue_evts, dev.interrupt().clone())
        };
        Ok(Self {
            device,
            mem,
            queues,
            queue_evts,
            interrupt,
            device_type,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            status: 0,
            activation_failed: false,
            config_generation: 0,
        })
    }

    /// The device behind this window.
    pub fn device(&self) -> &Arc<Mutex<dyn VirtioDevice>> {
        &self.device
    }

    /// One eventfd per queue, in queue order. Register queue `i`'s as an ioeventfd at
    /// `base + MMIO_NOTIFY_OFFSET` (4 bytes) with datamatch `i`.
    pub fn queue_evts(&self) -> &[EventFd] {
        &self.queue_evts
    }

    /// The device's interrupt; register [`VirtioInterrupt::irq_evt`] as an irqfd for the
    /// device's GSI.
    pub fn interrupt(&self) -> &Arc<VirtioInterrupt> {
        &self.interrupt
    }

    /// The `Status` register as the driver reads it (including `DEVICE_NEEDS_RESET`).
    pub fn device_status(&self) -> u32 {
        let needs_reset = self.activation_failed || lock(&self.device).needs_reset();
        if needs_reset {
            self.status | status::DEVICE_NEEDS_RESET
        } else {
            self.status
        }
    }

    /// Handles a guest read of `data.len()` bytes at `offset` into the window.
    pub fn bus_read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= MMIO_CONFIG_OFFSET {
            lock(&self.device).read_config(offset - MMIO_CONFIG_OFFSET, data);
            return;
        }
        if data.len() != 4 || offset % 4 != 0 {
            warn!(
                "virtio-mmio: {}-byte read at register offset {offset:#x} ignored (registers are 32-bit)",
                data.len()
            );
            data.fill(0);
            return;
        }
        let value = match offset {
            MAGIC_VALUE => MMIO_MAGIC_VALUE,
            VERSION => MMIO_VERSION,
            DEVICE_ID => self.device_type,
            VENDOR_ID => MMIO_VENDOR_ID,
            DEVICE_FEATURES => {
                let avail = lock(&self.device).avail_features();
                match self.device_features_sel {
                    0 => avail as u32,
                    1 => (avail >> 32) as u32,
                    _ => 0,
                }
            }
            QUEUE_NUM_MAX => self.selected_queue().map_or(0, |q| u32::from(q.max_size())),
            QUEUE_NUM => self.selected_queue().map_or(0, |q| u32::from(q.size())),
            QUEUE_READY => self.selected_queue().map_or(0, |q| u32::from(q.ready())),
            QUEUE_DESC_LOW => self.selected_queue().map_or(0, |q| q.desc_table() as u32),
            QUEUE_DESC_HIGH => self.selected_queue().map_or(0, |q| (q.desc_table() >> 32) as u32),
            QUEUE_AVAIL_LOW => self.selected_queue().map_or(0, |q| q.avail_ring() as u32),
            QUEUE_AVAIL_HIGH => self.selected_queue().map_or(0, |q| (q.avail_ring() >> 32) as u32),
            QUEUE_USED_LOW => self.selected_queue().map_or(0, |q| q.used_ring() as u32),
            QUEUE_USED_HIGH => self.selected_queue().map_or(0, |q| (q.used_ring() >> 32) as u32),
            INTERRUPT_STATUS => self.interrupt.status(),
            STATUS => self.device_status(),
            CONFIG_GENERATION => self.config_generation,
            _ => {
                debug!("virtio-mmio: read of unknown register {offset:#x}");
                0
            }
        };
        data.copy_from_slice(&value.to_le_bytes());
    }

    /// Handles a guest write of `data` at `offset` into the window.
    pub fn bus_write(&mut self, offset: u64, data: &[u8]) {
        if offset >= MMIO_CONFIG_OFFSET {
            if self.status & status::FAILED != 0 {
                warn!("virtio-mmio: config write after FAILED ignored");
                return;
            }
            lock(&self.device).write_config(offset - MMIO_CONFIG_OFFSET, data);
            return;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            warn!(
                "virtio-mmio: {}-byte write at register offset {offset:#x} ignored (registers are 32-bit)",
                data.len()
            );
            return;
        };
        if offset % 4 != 0 {
            warn!("virtio-mmio: unaligned write at register offset {offset:#x} ignored");
            return;
        }
        let value = u32::from_le_bytes(bytes);
        match offset {
            DEVICE_FEATURES_SEL => self.device_features_sel = value,
            DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            DRIVER_FEATURES => self.write_driver_features(value),
            QUEUE_SEL => self.queue_sel = value,
            QUEUE_NUM => self.update_queue("QueueNum", |q| {
                // `try_set_size` takes a u16: refuse a value that does not fit before it is
                // truncated (0x1_0010 would otherwise set 16).
                let size = u16::try_from(value).map_err(|_| format!("size {value} too large"))?;
                q.try_set_size(size).map_err(|e| format!("size {value}: {e}"))
            }),
            QUEUE_READY => self.write_queue_ready(value),
            QUEUE_DESC_LOW => self.update_queue("QueueDescLow", |q| {
                q.set_desc_table_address(Some(value), None);
                Ok(())
            }),
            QUEUE_DESC_HIGH => self.update_queue("QueueDescHigh", |q| {
                q.set_desc_table_address(None, Some(value));
                Ok(())
            }),
            QUEUE_AVAIL_LOW => self.update_queue("QueueDriverLow", |q| {
                q.set_avail_ring_address(Some(value), None);
                Ok(())
            }),
            QUEUE_AVAIL_HIGH => self.update_queue("QueueDriverHigh", |q| {
                q.set_avail_ring_address(None, Some(value));
                Ok(())
            }),
            QUEUE_USED_LOW => self.update_queue("QueueDeviceLow", |q| {
                q.set_used_ring_address(Some(value), None);
                Ok(())
            }),
            QUEUE_USED_HIGH => self.update_queue("QueueDeviceHigh", |q| {
                q.set_used_ring_address(None, Some(value));
                Ok(())
            }),
            QUEUE_NOTIFY => self.notify(value),
            INTERRUPT_ACK => self.interrupt.ack(value),
            STATUS => self.write_status(value),
            _ => warn!("virtio-mmio: write {value:#x} to unknown or read-only register {offset:#x} ignored"),
        }
    }

    fn selected_queue(&self) -> Option<&Queue> {
        self.queues.get(self.queue_sel as usize)
    }

    fn write_driver_features(&mut self, value: u32) {
        if self.status & (status::DRIVER | status::FEATURES_OK | status::FAILED) != status::DRIVER {
            warn!(
                "virtio-mmio: DriverFeatures write in status {:#x} ignored",
                self.status
            );
            return;
        }
        match self.driver_features_sel {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(value),
            1 => self.driver_features = (self.driver_features & 0xffff_ffff) | (u64::from(value) << 32),
            sel => {
                if value != 0 {
                    warn!("virtio-mmio: driver features word {sel} does not exist");
                }
            }
        }
    }

    /// Queue configuration may change only between `FEATURES_OK` and `DRIVER_OK`, and only
    /// while the selected queue is not ready (4.2.3.2).
    fn queue_config_allowed(&self, what: &str) -> bool {
        let mask = status::FEATURES_OK | status::DRIVER_OK | status::FAILED;
        if self.status & mask != status::FEATURES_OK {
            warn!(
                "virtio-mmio: {what} write in status {:#x} ignored (queues are configured after FEATURES_OK and before DRIVER_OK)",
                self.status
            );
            return false;
        }
        true
    }

    fn update_queue(&mut self, what: &str, f: impl FnOnce(&mut Queue) -> Result<(), String>) {
        if !self.queue_config_allowed(what) {
            return;
        }
        let sel = self.queue_sel;
        let Some(queue) = self.queues.get_mut(sel as usize) else {
            warn!("virtio-mmio: {what} write for non-existent queue {sel} ignored");
            return;
        };
        if queue.ready() {
            warn!("virtio-mmio: {what} write for queue {sel} while it is ready ignored");
            return;
        }
        if let Err(e) = f(queue) {
            warn!("virtio-mmio: {what} write for queue {sel} refused: {e}");
        }
    }

    fn write_queue_ready(&mut self, value: u32) {
        if !self.queue_config_allowed("QueueReady") {
            return;
        }
        let sel = self.queue_sel;
        match self.queues.get_mut(sel as usize) {
            Some(queue) => queue.set_ready(value == 1),
            None => warn!("virtio-mmio: QueueReady write for non-existent queue {sel} ignored"),
        }
    }

    fn notify(&self, queue_index: u32) {
        match self.queue_evts.get(queue_index as usize) {
            Some(evt) => {
                if let Err(e) = evt.write(1) {
                    error!("virtio-mmio: cannot signal queue {queue_index}: {e}");
                }
            }
            None => warn!("virtio-mmio: notify for non-existent queue {queue_index} ignored"),
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        // DEVICE_NEEDS_RESET belongs to the device; a driver echoing it back is not setting it.
        let value = value & !status::DEVICE_NEEDS_RESET;
        let old = self.status;
        if value & old != old {
            warn!("virtio-mmio: status {value:#x} clears bits of {old:#x}; only a reset (0) may do that");
            return;
        }
        let new_bits = value & !old;
        if new_bits & status::FAILED != 0 {
            debug!("virtio-mmio: driver set FAILED");
            self.status |= status::FAILED;
            return;
        }
        if self.status & status::FAILED != 0 {
            warn!("virtio-mmio: status write {value:#x} after FAILED ignored");
            return;
        }
        for step in STATUS_STEPS {
            if new_bits & step == 0 {
                continue;
            }
            let required = match step {
                status::ACKNOWLEDGE => 0,
                status::DRIVER => status::ACKNOWLEDGE,
                status::FEATURES_OK => status::DRIVER,
                _ => status::FEATURES_OK,
            };
            if self.status & required != required {
                warn!(
                    "virtio-mmio: status bit {step:#x} set before {required:#x} (status {:#x}); ignored",
                    self.status
                );
                return;
            }
            match step {
                status::FEATURES_OK if !self.accept_features() => return,
                status::DRIVER_OK => self.activate(),
                _ => {}
            }
            self.status |= step;
        }
        let unknown = new_bits & !(STATUS_STEPS.iter().fold(0, |a, b| a | b));
        if unknown != 0 {
            warn!("virtio-mmio: unknown status bits {unknown:#x} ignored");
        }
    }

    /// Checks the driver's features; on success the device records them. On failure
    /// `FEATURES_OK` stays clear, which is how the driver learns of the refusal (3.1.1).
    fn accept_features(&mut self) -> bool {
        let mut device = lock(&self.device);
        let offered = device.avail_features();
        let unknown = self.driver_features & !offered;
        if unknown != 0 {
            warn!(
                "virtio-mmio: driver accepted features {unknown:#x} the device did not offer; FEATURES_OK refused"
            );
            return false;
        }
        if self.driver_features & feature(features::VIRTIO_F_VERSION_1) == 0 {
            warn!("virtio-mmio: driver did not accept VIRTIO_F_VERSION_1; FEATURES_OK refused");
            return false;
        }
        device.set_acked_features(self.driver_features);
        true
    }

    fn activate(&mut self) {
        if let Err(e) = self.try_activate() {
            error!(
                "virtio-mmio: activating device type {} failed: {e}",
                self.device_type
            );
            self.activation_failed = true;
            if let Err(e) = self.interrupt.trigger(InterruptKind::Config) {
                error!("virtio-mmio: {e}");
            }
        }
    }

    fn try_activate(&mut self) -> Result<(), VirtioDeviceError> {
        let mut device = lock(&self.device);
        if device.is_activated() {
            return Err(VirtioDeviceError::AlreadyActivated);
        }
        let event_idx = device.acked_features() & feature(features::VIRTIO_RING_F_EVENT_IDX) != 0;
        let mut queues = Vec::with_capacity(self.queues.len());
        for (i, queue) in self.queues.iter().enumerate() {
            if !queue.is_valid(&self.mem) {
                return Err(VirtioDeviceError::InvalidQueue(i));
            }
            // The spec allows any address, but virtio-queue's `iter` answers QueueNotReady
            // for an available ring at 0, so the device would fail at the first
            // notification; refusing here tells the driver at DRIVER_OK instead.
            if queue.avail_ring() == 0 {
                return Err(VirtioDeviceError::AvailRingAtZero(i));
            }
            let mut q = Queue::try_from(queue.state()).map_err(|_| VirtioDeviceError::InvalidQueue(i))?;
            q.set_event_idx(event_idx);
            queues.push(q);
        }
        device.activate(self.mem.clone(), queues)
    }

    fn reset(&mut self) {
        lock(&self.device).reset();
        for queue in &mut self.queues {
            queue.reset();
        }
        for evt in &self.queue_evts {
            // Drop notifications left over from before the reset.
            let _ = evt.read();
        }
        self.interrupt.clear();
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.status = 0;
        self.activation_failed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::test_utils::{DummyDevice, MmioDriver, TestQueue, guest_memory, read_reg, write_reg};
    use vm_memory::GuestAddress;

    fn transport() -> (MmioTransport, Arc<Mutex<DummyDevice>>) {
        let dev = Arc::new(Mutex::new(DummyDevice::new(&[16, 8])));
        let t = MmioTransport::new(guest_memory(), dev.clone()).unwrap();
        (t, dev)
    }

    fn set_status(t: &mut MmioTransport, value: u32) {
        write_reg(t, STATUS, value);
    }

    #[test]
    fn identification_registers() {
        let (mut t, _) = transport();
        assert_eq!(read_reg(&mut t, MAGIC_VALUE), 0x7472_6976);
        assert_eq!(read_reg(&mut t, VERSION), 2);
        assert_eq!(read_reg(&mut t, DEVICE_ID), DummyDevice::TYPE);
        assert_eq!(read_reg(&mut t, VENDOR_ID), MMIO_VENDOR_ID);
        assert_eq!(read_reg(&mut t, STATUS), 0);
        assert_eq!(read_reg(&mut t, CONFIG_GENERATION), 0);
        assert_eq!(read_reg(&mut t, 0x0f0), 0, "unknown register reads as zero");
    }

    #[test]
    fn device_features_by_selector() {
        let (mut t, _) = transport();
        write_reg(&mut t, DEVICE_FEATURES_SEL, 0);
        assert_eq!(read_reg(&mut t, DEVICE_FEATURES), DummyDevice::FEATURES as u32);
        write_reg(&mut t, DEVICE_FEATURES_SEL, 1);
        assert_eq!(
            read_reg(&mut t, DEVICE_FEATURES),
            (DummyDevice::FEATURES >> 32) as u32
        );
        write_reg(&mut t, DEVICE_FEATURES_SEL, 2);
        assert_eq!(read_reg(&mut t, DEVICE_FEATURES), 0);
    }

    #[test]
    fn wrong_width_and_unaligned_accesses_are_ignored() {
        let (mut t, _) = transport();
        let mut two = [0xffu8; 2];
        t.bus_read(MAGIC_VALUE, &mut two);
        assert_eq!(two, [0, 0]);
        let mut eight = [0xffu8; 8];
        t.bus_read(MAGIC_VALUE, &mut eight);
        assert_eq!(eight, [0; 8]);
        let mut four = [0xffu8; 4];
        t.bus_read(MAGIC_VALUE + 1, &mut four);
        assert_eq!(four, [0; 4]);
        t.bus_write(STATUS, &[1]);
        t.bus_write(STATUS, &[1, 0, 0, 0, 0, 0, 0, 0]);
        t.bus_write(STATUS + 1, &[1, 0, 0, 0]);
        t.bus_write(STATUS, &[]);
        assert_eq!(read_reg(&mut t, STATUS), 0);
    }

    #[test]
    fn garbage_writes_everywhere_never_panic() {
        let (mut t, _) = transport();
        for step in [0, status::ACKNOWLEDGE, status::DRIVER, status::FEATURES_OK] {
            if step != 0 {
                let s = read_reg(&mut t, STATUS);
                set_status(&mut t, s | step);
            }
            for offset in (0..0x200).step_by(4) {
                if offset == STATUS {
                    continue;
                }
                write_reg(&mut t, offset, 0xdead_beef);
                write_reg(&mut t, offset, u32::MAX);
                let _ = read_reg(&mut t, offset);
            }
        }
        // Queue 0xdeadbeef / u32::MAX selected: queue registers read as zero.
        assert_eq!(read_reg(&mut t, QUEUE_NUM_MAX), 0);
    }

    #[test]
    fn status_machine_happy_path_activates() {
        let (mut t, dev) = transport();
        let mem = guest_memory();
        let queues = [
            TestQueue::new(GuestAddress(0x1_0000), 16),
            TestQueue::new(GuestAddress(0x2_0000), 8),
        ];
        let mut driver = MmioDriver::new(&mut t);
        driver.init(DummyDevice::FEATURES, &queues).unwrap();
        assert_eq!(
            driver.status(),
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK
        );
        let d = lock(&dev);
        assert!(d.is_activated());
        assert_eq!(d.acked_features(), DummyDevice::FEATURES);
        let q = d.queues.as_ref().unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].desc_table(), 0x1_0000);
        assert_eq!(q[1].size(), 8);
        assert!(q.iter().all(|q| q.is_valid(&mem)));
    }

    #[test]
    fn status_bits_out_of_order_are_refused() {
        let (mut t, _) = transport();
        set_status(&mut t, status::DRIVER);
        assert_eq!(read_reg(&mut t, STATUS), 0, "DRIVER before ACKNOWLEDGE");
        set_status(&mut t, status::ACKNOWLEDGE);
        set_status(&mut t, status::ACKNOWLEDGE | status::FEATURES_OK);
        assert_eq!(read_reg(&mut t, STATUS), status::ACKNOWLEDGE);
        set_status(&mut t, status::ACKNOWLEDGE | status::DRIVER_OK);
        assert_eq!(read_reg(&mut t, STATUS), status::ACKNOWLEDGE);
        // Several steps at once, in order, are fine.
        set_status(&mut t, status::ACKNOWLEDGE | status::DRIVER);
        assert_eq!(read_reg(&mut t, STATUS), status::ACKNOWLEDGE | status::DRIVER);
        // Clearing a bit without a reset is refused.
        set_status(&mut t, status::DRIVER);
        assert_eq!(read_reg(&mut t, STATUS), status::ACKNOWLEDGE | status::DRIVER);
    }

    #[test]
    fn features_not_offered_keep_features_ok_clear() {
        let (mut t, dev) = transport();
        set_status(&mut t, status::ACKNOWLEDGE | status::DRIVER);
        write_reg(&mut t, DRIVER_FEATURES_SEL, 0);
        write_reg(&mut t, DRIVER_FEATURES, 1 << 3); // never offered
        write_reg(&mut t, DRIVER_FEATURES_SEL, 1);
        write_reg(&mut t, DRIVER_FEATURES, 1); // VERSION_1
        set_status(&mut t, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        assert_eq!(read_reg(&mut t, STATUS) & status::FEATURES_OK, 0);
        assert_eq!(lock(&dev).acked_features(), 0);
        // Fix the features and try again.
        write_reg(&mut t, DRIVER_FEATURES_SEL, 0);
        write_reg(&mut t, DRIVER_FEATURES, 0);
        set_status(&mut t, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        assert_ne!(read_reg(&mut t, STATUS) & status::FEATURES_OK, 0);
        assert_eq!(lock(&dev).acked_features(), 1 << 32);
        // Features are frozen after FEATURES_OK.
        write_reg(&mut t, DRIVER_FEATURES, 0);
        write_reg(&mut t, DRIVER_FEATURES_SEL, 1);
        write_reg(&mut t, DRIVER_FEATURES, 0);
        assert_eq!(t.driver_features, 1 << 32);
    }

    #[test]
    fn version_1_is_required() {
        let (mut t, _) = transport();
        set_status(&mut t, status::ACKNOWLEDGE | status::DRIVER);
        write_reg(&mut t, DRIVER_FEATURES_SEL, 0);
        write_reg(&mut t, DRIVER_FEATURES, DummyDevice::FEATURES as u32);
        set_status(&mut t, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        assert_eq!(read_reg(&mut t, STATUS) & status::FEATURES_OK, 0);
    }

    #[test]
    fn driver_features_before_driver_are_ignored() {
        let (mut t, _) = transport();
        write_reg(&mut t, DRIVER_FEATURES, 0xffff_ffff);
        assert_eq!(t.driver_features, 0);
    }

    #[test]
    fn queue_registers_follow_selector_and_state() {
        let (mut t, _) = transport();
        write_reg(&mut t, QUEUE_SEL, 1);
        assert_eq!(read_reg(&mut t, QUEUE_NUM_MAX), 8);
        write_reg(&mut t, QUEUE_SEL, 2);
        assert_eq!(read_reg(&mut t, QUEUE_NUM_MAX), 0);
        // Before FEATURES_OK queue configuration is ignored.
        write_reg(&mut t, QUEUE_SEL, 0);
        write_reg(&mut t, QUEUE_NUM, 4);
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 16);
        let mut driver = MmioDriver::new(&mut t);
        driver.negotiate(DummyDevice::FEATURES).unwrap();
        write_reg(&mut t, QUEUE_NUM, 4);
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 4);
        write_reg(&mut t, QUEUE_NUM, 5); // not a power of two
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 4);
        write_reg(&mut t, QUEUE_NUM, 32); // above max
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 4);
        write_reg(&mut t, QUEUE_NUM, 0x1_0004); // truncation must not sneak through
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 4);
        // Found by the register fuzzer: a value whose low 16 bits are a valid size other
        // than the current one used to be applied (truncated) and only then refused.
        write_reg(&mut t, QUEUE_NUM, 0x1_0008);
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 4);
        write_reg(&mut t, QUEUE_NUM, 0x1_0010);
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 4);
        write_reg(&mut t, QUEUE_DESC_LOW, 0x1000);
        write_reg(&mut t, QUEUE_DESC_HIGH, 0x1);
        assert_eq!(read_reg(&mut t, QUEUE_DESC_LOW), 0x1000);
        assert_eq!(read_reg(&mut t, QUEUE_DESC_HIGH), 0x1);
        write_reg(&mut t, QUEUE_DESC_LOW, 0x1001); // misaligned
        assert_eq!(read_reg(&mut t, QUEUE_DESC_LOW), 0x1000);
        write_reg(&mut t, QUEUE_READY, 1);
        assert_eq!(read_reg(&mut t, QUEUE_READY), 1);
        // While ready, the queue's configuration is frozen.
        write_reg(&mut t, QUEUE_NUM, 8);
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 4);
        write_reg(&mut t, QUEUE_READY, 0);
        assert_eq!(read_reg(&mut t, QUEUE_READY), 0);
    }

    #[test]
    fn queue_changes_after_driver_ok_are_ignored() {
        let (mut t, dev) = transport();
        let queues = [
            TestQueue::new(GuestAddress(0x1_0000), 16),
            TestQueue::new(GuestAddress(0x2_0000), 8),
        ];
        MmioDriver::new(&mut t)
            .init(DummyDevice::FEATURES, &queues)
            .unwrap();
        write_reg(&mut t, QUEUE_SEL, 0);
        write_reg(&mut t, QUEUE_READY, 0);
        write_reg(&mut t, QUEUE_DESC_LOW, 0x5000);
        assert_eq!(read_reg(&mut t, QUEUE_READY), 1);
        assert_eq!(read_reg(&mut t, QUEUE_DESC_LOW), 0x1_0000);
        assert!(lock(&dev).is_activated());
        assert_eq!(read_reg(&mut t, STATUS) & status::DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn queue_outside_memory_fails_activation_with_needs_reset() {
        let (mut t, dev) = transport();
        let queues = [
            TestQueue::new(GuestAddress(0x1_0000), 16),
            // Used ring beyond the end of guest memory.
            TestQueue::new(GuestAddress(crate::virtio::test_utils::MEM_SIZE - 0x40), 8),
        ];
        MmioDriver::new(&mut t)
            .init(DummyDevice::FEATURES, &queues)
            .unwrap();
        assert!(!lock(&dev).is_activated());
        let s = read_reg(&mut t, STATUS);
        assert_ne!(s & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(read_reg(&mut t, INTERRUPT_STATUS), 2, "config change interrupt");
        assert_eq!(t.interrupt().irq_evt().read().unwrap(), 1);
        // Reset clears it all.
        set_status(&mut t, 0);
        assert_eq!(read_reg(&mut t, STATUS), 0);
        assert_eq!(read_reg(&mut t, INTERRUPT_STATUS), 0);
    }

    /// Found by the block fuzzer: a queue whose available ring is at guest address 0 (here:
    /// never programmed, so at its reset value) was activated, and the device then failed
    /// at the first notification because virtio-queue refuses to iterate it. It is refused
    /// at DRIVER_OK instead.
    #[test]
    fn available_ring_at_guest_address_zero_is_refused_at_activation() {
        let (mut t, dev) = transport();
        let mut second = TestQueue::new(GuestAddress(0x2_0000), 8);
        second.avail = GuestAddress(0);
        MmioDriver::new(&mut t)
            .init(
                DummyDevice::FEATURES,
                &[TestQueue::new(GuestAddress(0x1_0000), 16), second],
            )
            .unwrap();
        assert!(!lock(&dev).is_activated());
        assert_ne!(read_reg(&mut t, STATUS) & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(read_reg(&mut t, INTERRUPT_STATUS), 2, "config change interrupt");
    }

    #[test]
    fn queue_not_ready_fails_activation() {
        let (mut t, dev) = transport();
        let mut driver = MmioDriver::new(&mut t);
        driver.negotiate(DummyDevice::FEATURES).unwrap();
        driver.setup_queue(0, &TestQueue::new(GuestAddress(0x1_0000), 16));
        driver.set_status_bits(status::DRIVER_OK);
        assert!(!lock(&dev).is_activated());
        assert_ne!(read_reg(&mut t, STATUS) & status::DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn reset_clears_device_and_transport_state() {
        let (mut t, dev) = transport();
        let queues = [
            TestQueue::new(GuestAddress(0x1_0000), 16),
            TestQueue::new(GuestAddress(0x2_0000), 8),
        ];
        MmioDriver::new(&mut t)
            .init(DummyDevice::FEATURES, &queues)
            .unwrap();
        t.interrupt().trigger(InterruptKind::UsedRing).unwrap();
        let resets_before = lock(&dev).resets;
        set_status(&mut t, 0);
        assert_eq!(read_reg(&mut t, STATUS), 0);
        assert_eq!(read_reg(&mut t, INTERRUPT_STATUS), 0);
        assert_eq!(read_reg(&mut t, QUEUE_READY), 0);
        assert_eq!(read_reg(&mut t, QUEUE_NUM), 16);
        let d = lock(&dev);
        assert!(!d.is_activated());
        assert_eq!(d.resets, resets_before + 1);
        drop(d);
        // The device can be brought up again.
        MmioDriver::new(&mut t)
            .init(DummyDevice::FEATURES, &queues)
            .unwrap();
        assert!(lock(&dev).is_activated());
    }

    #[test]
    fn failed_status_is_sticky_until_reset() {
        let (mut t, _) = transport();
        set_status(&mut t, status::ACKNOWLEDGE);
        set_status(&mut t, status::ACKNOWLEDGE | status::FAILED);
        assert_eq!(read_reg(&mut t, STATUS), status::ACKNOWLEDGE | status::FAILED);
        set_status(&mut t, status::ACKNOWLEDGE | status::FAILED | status::DRIVER);
        assert_eq!(read_reg(&mut t, STATUS), status::ACKNOWLEDGE | status::FAILED);
        set_status(&mut t, 0);
        assert_eq!(read_reg(&mut t, STATUS), 0);
    }

    #[test]
    fn device_needs_reset_is_reported_and_not_writable() {
        let (mut t, dev) = transport();
        set_status(&mut t, status::ACKNOWLEDGE | status::DEVICE_NEEDS_RESET);
        assert_eq!(read_reg(&mut t, STATUS), status::ACKNOWLEDGE);
        lock(&dev).failed = true;
        assert_eq!(
            read_reg(&mut t, STATUS),
            status::ACKNOWLEDGE | status::DEVICE_NEEDS_RESET
        );
        // A read-modify-write that echoes NEEDS_RESET back still works.
        set_status(
            &mut t,
            status::ACKNOWLEDGE | status::DEVICE_NEEDS_RESET | status::DRIVER,
        );
        assert_ne!(read_reg(&mut t, STATUS) & status::DRIVER, 0);
    }

    #[test]
    fn notify_writes_queue_eventfd_and_interrupt_ack_clears_bits() {
        let (mut t, _) = transport();
        write_reg(&mut t, QUEUE_NOTIFY, 1);
        assert!(t.queue_evts()[0].read().is_err());
        assert_eq!(t.queue_evts()[1].read().unwrap(), 1);
        write_reg(&mut t, QUEUE_NOTIFY, 7); // no such queue: ignored
        t.interrupt().trigger(InterruptKind::UsedRing).unwrap();
        t.interrupt().trigger(InterruptKind::Config).unwrap();
        assert_eq!(read_reg(&mut t, INTERRUPT_STATUS), 3);
        write_reg(&mut t, INTERRUPT_ACK, 1);
        assert_eq!(read_reg(&mut t, INTERRUPT_STATUS), 2);
        write_reg(&mut t, INTERRUPT_ACK, 2);
        assert_eq!(read_reg(&mut t, INTERRUPT_STATUS), 0);
    }

    #[test]
    fn config_space_is_forwarded_to_the_device() {
        let (mut t, dev) = transport();
        let mut data = [0u8; 8];
        t.bus_read(MMIO_CONFIG_OFFSET, &mut data);
        assert_eq!(data, [1, 2, 3, 4, 5, 6, 7, 8]);
        let mut one = [0u8; 1];
        t.bus_read(MMIO_CONFIG_OFFSET + 2, &mut one);
        assert_eq!(one, [3]);
        t.bus_write(MMIO_CONFIG_OFFSET + 1, &[0xaa]);
        assert_eq!(lock(&dev).config[1], 0xaa);
    }
}
