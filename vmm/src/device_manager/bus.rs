//! An address bus (port I/O or MMIO): devices claim ranges, accesses are routed to the
//! device owning the address with the offset into its range.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// A device on a bus. `offset` is relative to the start of the device's range.
pub trait BusDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// Why a device could not be placed on a bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("range {base:#x}+{len:#x} is empty or overflows")]
    BadRange { base: u64, len: u64 },
    #[error("range {base:#x}+{len:#x} overlaps a device at {other:#x}")]
    Overlap { base: u64, len: u64, other: u64 },
}

struct Slot {
    len: u64,
    device: Arc<Mutex<dyn BusDevice>>,
}

/// The bus. Built before the vCPUs start; read-only afterwards.
#[derive(Default)]
pub struct Bus {
    slots: BTreeMap<u64, Slot>,
}

impl Bus {
    pub fn insert(&mut self, base: u64, len: u64, device: Arc<Mutex<dyn BusDevice>>) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::BadRange { base, len })?;
        if let Some((&other, slot)) = self.slots.range(..end).next_back()
            && other + slot.len > base
        {
            return Err(BusError::Overlap { base, len, other });
        }
        self.slots.insert(base, Slot { len, device });
        Ok(())
    }

    fn find(&self, addr: u64) -> Option<(u64, &Slot)> {
        let (&base, slot) = self.slots.range(..=addr).next_back()?;
        (addr - base < slot.len).then_some((base, slot))
    }

    /// Routes a read; returns false (and fills `data` with 0xff, as an empty ISA bus
    /// reads) when no device claims `addr`.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr) {
            Some((base, slot)) => {
                slot.device
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .read(addr - base, data);
                true
            }
            None => {
                data.fill(0xff);
                false
            }
        }
    }

    /// Routes a write; returns false when no device claims `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr) {
            Some((base, slot)) => {
                slot.device
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .write(addr - base, data);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        last_write: Option<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.last_write = Some((offset, data.to_vec()));
        }
    }

    #[test]
    fn routes_by_range_with_offsets() {
        let mut bus = Bus::default();
        let dev = Arc::new(Mutex::new(Recorder::default()));
        bus.insert(0x3f8, 8, dev.clone()).unwrap();
        let mut b = [0u8; 1];
        assert!(bus.read(0x3fd, &mut b));
        assert_eq!(b, [5]);
        assert!(bus.write(0x3ff, &[9]));
        assert_eq!(dev.lock().unwrap().last_write, Some((7, vec![9])));
        assert!(!bus.read(0x400, &mut b));
        assert_eq!(b, [0xff]);
        assert!(!bus.write(0x3f7, &[1]));
    }

    #[test]
    fn refuses_overlaps_and_empty_ranges() {
        let mut bus = Bus::default();
        let dev = Arc::new(Mutex::new(Recorder::default()));
        bus.insert(0x100, 0x10, dev.clone()).unwrap();
        assert_eq!(
            bus.insert(0x108, 0x10, dev.clone()),
            Err(BusError::Overlap {
                base: 0x108,
                len: 0x10,
                other: 0x100
            })
        );
        assert!(matches!(
            bus.insert(0xf8, 0x10, dev.clone()),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert(0x0, 0, dev.clone()),
            Err(BusError::BadRange { .. })
        ));
        bus.insert(0x110, 0x10, dev).unwrap();
    }
}
