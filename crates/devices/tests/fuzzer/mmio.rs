//! The virtio-mmio transport under arbitrary register access sequences, checked against a
//! model of the register file after every access.
//!
//! The model is the transport's contract (virtio 1.2 4.2.2 and 3.1.1, plus the choices in
//! `crates/devices/README.md`): status bits only in order and only added (0 resets), features
//! only between DRIVER and FEATURES_OK and only a subset of the offer with VERSION_1, queue
//! registers only between FEATURES_OK and DRIVER_OK while the queue is not ready, sizes
//! that are powers of two up to the maximum, aligned ring addresses, activation only of a
//! ready queue inside guest memory (else DEVICE_NEEDS_RESET and a configuration interrupt),
//! wrong widths and offsets ignored.

// The model is written register by register, each arm saying when its write counts, as
// the spec lists them; folding the conditions into match guards would scatter that.
#![allow(clippy::collapsible_match)]

use std::sync::{Arc, Mutex};

use arbitrary::{Result as ArbResult, Unstructured};
use vmctl_devices::virtio::VirtioDevice;
use vmctl_devices::virtio::block::{Block, BlockConfig};
use vmctl_devices::virtio::mmio::MmioTransport;

use super::memory::{REGIONS, contains, guarded_memory};
use super::regs;

const QUEUE_MAX: u32 = 256;
const VERSION_1: u64 = 1 << 32;

pub struct MmioHarness {
    _file: tempfile::NamedTempFile,
    block: Arc<Mutex<Block>>,
    transport: MmioTransport,
    offered: u64,
    capacity: u64,
}

impl MmioHarness {
    pub fn new() -> Self {
        let file = tempfile::NamedTempFile::new().expect("backing file");
        file.as_file().set_len(8 * 512).expect("size");
        let block = Block::new(BlockConfig {
            drive_id: "mmio".into(),
            path: file.path().into(),
            read_only: false,
        })
        .expect("block device");
        let offered = block.avail_features();
        let capacity = block.capacity();
        let block = Arc::new(Mutex::new(block));
        let transport = MmioTransport::new(guarded_memory(), block.clone()).expect("transport");
        Self {
            _file: file,
            block,
            transport,
            offered,
            capacity,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Model {
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    size: u32,
    ready: bool,
    desc: u64,
    avail: u64,
    used: u64,
    activation_failed: bool,
    activated: bool,
    acked: u64,
    irq_status: u32,
}

impl Model {
    fn reset() -> Self {
        Self {
            size: QUEUE_MAX,
            ..Self::default()
        }
    }

    fn queue_config_allowed(&self) -> bool {
        self.status & (8 | 4 | 0x80) == 8 && self.queue_sel == 0 && !self.ready
    }

    fn write(&mut self, offset: u64, value: u32, offered: u64) {
        let v = u64::from(value);
        match offset {
            regs::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            regs::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            regs::DRIVER_FEATURES => {
                if self.status & (2 | 8 | 0x80) == 2 {
                    match self.driver_features_sel {
                        0 => self.driver_features = (self.driver_features & !0xffff_ffff) | v,
                        1 => self.driver_features = (self.driver_features & 0xffff_ffff) | (v << 32),
                        _ => {}
                    }
                }
            }
            regs::QUEUE_SEL => self.queue_sel = value,
            regs::QUEUE_NUM => {
                if self.queue_config_allowed() && value.is_power_of_two() && value <= QUEUE_MAX {
                    self.size = value;
                }
            }
            regs::QUEUE_READY => {
                if self.status & (8 | 4 | 0x80) == 8 && self.queue_sel == 0 {
                    self.ready = value == 1;
                }
            }
            regs::QUEUE_DESC_LOW | regs::QUEUE_DESC_HIGH => {
                if self.queue_config_allowed() {
                    let a = half(self.desc, offset == regs::QUEUE_DESC_HIGH, v);
                    if a % 16 == 0 {
                        self.desc = a;
                    }
                }
            }
            regs::QUEUE_AVAIL_LOW | regs::QUEUE_AVAIL_HIGH => {
                if self.queue_config_allowed() {
                    let a = half(self.avail, offset == regs::QUEUE_AVAIL_HIGH, v);
                    if a % 2 == 0 {
                        self.avail = a;
                    }
                }
            }
            regs::QUEUE_USED_LOW | regs::QUEUE_USED_HIGH => {
                if self.queue_config_allowed() {
                    let a = half(self.used, offset == regs::QUEUE_USED_HIGH, v);
                    if a % 4 == 0 {
                        self.used = a;
                    }
                }
            }
            regs::INTERRUPT_ACK => self.irq_status &= !value,
            regs::STATUS => self.write_status(value, offered),
            _ => {}
        }
    }

    fn write_status(&mut self, value: u32, offered: u64) {
        if value == 0 {
            *self = Self::reset();
            return;
        }
        let value = value & !0x40;
        let old = self.status;
        if value & old != old {
            return;
        }
        let new = value & !old;
        if new & 0x80 != 0 {
            self.status |= 0x80;
            return;
        }
        if self.status & 0x80 != 0 {
            return;
        }
        for (step, required) in [(1, 0), (2, 1), (8, 2), (4, 8)] {
            if new & step == 0 {
                continue;
            }
            if self.status & required != required {
                return;
            }
            if step == 8 {
                if self.driver_features & !offered != 0 || self.driver_features & VERSION_1 == 0 {
                    return;
                }
                self.acked = self.driver_features;
            }
            if step == 4 {
                let n = u64::from(self.size);
                // virtio-queue reserves an available ring at guest address 0 for "not
                // configured"; the transport refuses it at activation.
                let valid = self.ready
                    && self.avail != 0
                    && contains(self.desc, 16 * n)
                    && contains(self.avail, 6 + 2 * n)
                    && contains(self.used, 6 + 8 * n);
                if valid {
                    self.activated = true;
                } else {
                    self.activation_failed = true;
                    self.irq_status |= 2;
                }
            }
            self.status |= step;
        }
    }

    fn read(&self, offset: u64, offered: u64) -> u32 {
        let sel0 = self.queue_sel == 0;
        match offset {
            0x00 => 0x7472_6976,
            0x04 => 2,
            0x08 => 2,
            0x0c => 0x6c74_6d76,
            0x10 => match self.device_features_sel {
                0 => offered as u32,
                1 => (offered >> 32) as u32,
                _ => 0,
            },
            0x34 => {
                if sel0 {
                    QUEUE_MAX
                } else {
                    0
                }
            }
            regs::QUEUE_NUM => {
                if sel0 {
                    self.size
                } else {
                    0
                }
            }
            regs::QUEUE_READY => u32::from(sel0 && self.ready),
            regs::QUEUE_DESC_LOW => {
                if sel0 {
                    self.desc as u32
                } else {
                    0
                }
            }
            regs::QUEUE_DESC_HIGH => {
                if sel0 {
                    (self.desc >> 32) as u32
                } else {
                    0
                }
            }
            regs::QUEUE_AVAIL_LOW => {
                if sel0 {
                    self.avail as u32
                } else {
                    0
                }
            }
            regs::QUEUE_AVAIL_HIGH => {
                if sel0 {
                    (self.avail >> 32) as u32
                } else {
                    0
                }
            }
            regs::QUEUE_USED_LOW => {
                if sel0 {
                    self.used as u32
                } else {
                    0
                }
            }
            regs::QUEUE_USED_HIGH => {
                if sel0 {
                    (self.used >> 32) as u32
                } else {
                    0
                }
            }
            regs::INTERRUPT_STATUS => self.irq_status,
            regs::STATUS => self.status | if self.activation_failed { 0x40 } else { 0 },
            _ => 0,
        }
    }
}

fn half(addr: u64, high: bool, v: u64) -> u64 {
    if high {
        (addr & 0xffff_ffff) | (v << 32)
    } else {
        (addr & !0xffff_ffff) | v
    }
}

/// Registers compared after every access.
const OBSERVED: [u64; 17] = [
    0x00, 0x04, 0x08, 0x0c, 0x10, 0x34, 0x38, 0x44, 0x60, 0x70, 0x80, 0x84, 0x90, 0x94, 0xa0, 0xa4, 0xfc,
];

/// One case: an arbitrary access sequence, the register file compared with the model after
/// each access.
pub fn run_case(h: &mut MmioHarness, data: &[u8], trace: bool) -> Result<(), (String, Vec<String>)> {
    let mut u = Unstructured::new(data);
    let mut log = trace.then(Vec::new);
    let mut note = |s: String| {
        if let Some(l) = &mut log {
            l.push(s);
        }
    };
    h.transport.bus_write(regs::STATUS, &0u32.to_le_bytes());
    let _ = h.transport.interrupt().irq_evt().read();
    let mut model = Model::reset();
    let offered = h.offered;
    // Most sequences start as a driver does, up to an arbitrary step, so that the later
    // states (queue configuration, DRIVER_OK) are reached as often as the early ones.
    let prefix: Vec<(u64, u32)> = vec![
        (regs::STATUS, 1),
        (regs::STATUS, 3),
        (regs::DRIVER_FEATURES_SEL, 1),
        (regs::DRIVER_FEATURES, (offered >> 32) as u32),
        (regs::DRIVER_FEATURES_SEL, 0),
        (regs::DRIVER_FEATURES, offered as u32),
        (regs::STATUS, 11),
        (regs::QUEUE_NUM, 16),
        (regs::QUEUE_DESC_LOW, 0x1000),
        (regs::QUEUE_AVAIL_LOW, 0x2000),
        (regs::QUEUE_USED_LOW, 0x3000),
        (regs::QUEUE_READY, 1),
        (regs::STATUS, 15),
    ];
    let steps = u.int_in_range(0..=prefix.len()).unwrap_or(0);
    let ops = u.int_in_range(1..=60).unwrap_or(1);
    for i in 0..steps + ops {
        let next = match prefix.get(i) {
            Some(&(offset, value)) if i < steps => Ok((offset, value, 4)),
            _ => access(&mut u, &model, offered),
        };
        let Ok((offset, value, width)) = next else {
            break;
        };
        let bytes = value.to_le_bytes();
        let mut wide = [0u8; 8];
        wide[..4].copy_from_slice(&bytes);
        note(format!("{i}: write {offset:#x} = {value:#x} ({width} bytes)"));
        match width {
            4 => h.transport.bus_write(offset, &bytes),
            8 => h.transport.bus_write(offset, &wide),
            w => h.transport.bus_write(offset, &bytes[..w]),
        }
        if width == 4 && offset % 4 == 0 && offset < 0x100 {
            model.write(offset, value, offered);
        }
        // Every register against the model; config space against the capacity.
        for &reg in &OBSERVED {
            let mut data = [0u8; 4];
            h.transport.bus_read(reg, &mut data);
            let got = u32::from_le_bytes(data);
            let want = if reg == 0xfc { 0 } else { model.read(reg, offered) };
            if got != want {
                let d = format!(
                    "after access {i}: register {reg:#x} reads {got:#x}, model {want:#x} ({model:?})"
                );
                return Err((d, log.unwrap_or_default()));
            }
        }
        let mut cap = [0u8; 8];
        h.transport.bus_read(0x100, &mut cap);
        if u64::from_le_bytes(cap) != h.capacity {
            return Err((format!("capacity reads {cap:?}"), log.unwrap_or_default()));
        }
        let b = h.block.lock().unwrap();
        if b.is_activated() != model.activated || (model.activated && b.acked_features() != model.acked) {
            let d = format!(
                "after access {i}: device activated={} acked={:#x}, model {model:?}",
                b.is_activated(),
                b.acked_features()
            );
            return Err((d, log.unwrap_or_default()));
        }
    }
    Ok(())
}

/// The next access: mostly a driver's next plausible step with an arbitrary value, sometimes
/// anything at all.
fn access(u: &mut Unstructured, m: &Model, offered: u64) -> ArbResult<(u64, u32, usize)> {
    let width = match u.int_in_range(0..=31)? {
        0 => 1,
        1 => 2,
        2 => 8,
        _ => 4,
    };
    let offset = match u.int_in_range(0..=15)? {
        0..=3 => regs::STATUS,
        4 => *u.choose(&[
            regs::DRIVER_FEATURES,
            regs::DRIVER_FEATURES_SEL,
            regs::DEVICE_FEATURES_SEL,
        ])?,
        5..=6 => regs::QUEUE_NUM,
        7 => regs::QUEUE_READY,
        8..=10 => *u.choose(&[
            regs::QUEUE_DESC_LOW,
            regs::QUEUE_DESC_HIGH,
            regs::QUEUE_AVAIL_LOW,
            regs::QUEUE_AVAIL_HIGH,
            regs::QUEUE_USED_LOW,
            regs::QUEUE_USED_HIGH,
        ])?,
        11 => *u.choose(&[regs::QUEUE_SEL, regs::INTERRUPT_ACK, regs::QUEUE_NOTIFY])?,
        12 => u.int_in_range(0u64..=0x3f)? * 4,
        13 => u.int_in_range(0u64..=0x1ff)?,
        14 => 0x100 + u.int_in_range(0u64..=0x20)?,
        _ => u.arbitrary::<u16>()?.into(),
    };
    let value = match offset {
        regs::STATUS => match u.int_in_range(0..=9)? {
            // The next step in order, or the whole sequence at once.
            0..=4 => {
                let next = [1u32, 2, 8, 4]
                    .into_iter()
                    .find(|b| m.status & b == 0)
                    .unwrap_or(0x80);
                m.status | next
            }
            5 => 0,
            6 => 15,
            7 => m.status | *u.choose(&[0x40, 0x80, 0x10, 0x20])?,
            _ => u.arbitrary()?,
        },
        regs::DRIVER_FEATURES => match u.int_in_range(0..=3)? {
            0 => offered as u32,
            1 => (offered >> 32) as u32,
            2 => 1,
            _ => u.arbitrary()?,
        },
        regs::DRIVER_FEATURES_SEL | regs::DEVICE_FEATURES_SEL | regs::QUEUE_SEL | regs::QUEUE_NOTIFY => {
            *u.choose(&[0, 0, 1, 1, 2, u32::MAX])?
        }
        regs::QUEUE_NUM => *u.choose(&[
            1,
            2,
            4,
            16,
            64,
            128,
            256,
            0,
            3,
            100,
            257,
            512,
            0x1_0000,
            0x1_0010,
            0x1_0100,
            0xffff_ffff,
        ])?,
        regs::QUEUE_READY => *u.choose(&[0, 1, 1, 2, u32::MAX])?,
        regs::QUEUE_DESC_LOW | regs::QUEUE_AVAIL_LOW | regs::QUEUE_USED_LOW => match u.int_in_range(0..=4)? {
            0 => 0,
            1 => u.int_in_range(0u32..=0x800)? * 4,
            2 => (REGIONS[1].0 as u32) + u.int_in_range(0u32..=0x100)? * 16,
            3 => REGIONS[2].0 as u32 + u.int_in_range(0u32..=0x400)? * 16,
            _ => u.arbitrary()?,
        },
        regs::QUEUE_DESC_HIGH | regs::QUEUE_AVAIL_HIGH | regs::QUEUE_USED_HIGH => {
            *u.choose(&[0, 0, 0, (REGIONS[2].0 >> 32) as u32, u32::MAX, 1])?
        }
        _ => u.arbitrary()?,
    };
    Ok((offset, value, width))
}
