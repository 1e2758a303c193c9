//! A minimal i8042 PS/2 controller: enough for a Linux guest's keyboard probe, the CPU
//! reset line (command 0xfe on port 0x64), and Ctrl-Alt-Del injected by the VMM.
//!
//! It has no AUX (mouse) port, and says so the way Linux's `i8042_check_aux` can tell:
//! the AUX loopback comes back as keyboard data (not AUX data) and the AUX interface
//! test fails. Without that, Linux took the port for a real one whose disable bit did
//! not stick ("Failed to disable AUX port, but continuing anyway... Is this a SiS?")
//! and went on probing a mouse that is not there.

use std::collections::VecDeque;
use std::sync::Arc;

use vm_superio::Trigger;

use super::IrqTrigger;
use crate::device_manager::bus::BusDevice;
use crate::vstate::exit::{ExitLatch, ExitReason, VmExit};

const DATA_OFFSET: u64 = 0;
const COMMAND_OFFSET: u64 = 4;

const STATUS_OUTPUT_FULL: u8 = 0x01;
const STATUS_SYSTEM: u8 = 0x04;
const STATUS_LAST_WAS_COMMAND: u8 = 0x08;
/// "Keyboard not inhibited": the keylock switch is off. Clear, Linux warns "Keylock
/// active" (and a real keyboard would be locked).
const STATUS_NOT_INHIBITED: u8 = 0x10;

const CTR_KBD_INT: u8 = 0x01;
const CTR_KBD_DISABLED: u8 = 0x10;
const CTR_AUX_DISABLED: u8 = 0x20;
/// The controller translates the keyboard's set-2 scancodes to set 1.
const CTR_XLATE: u8 = 0x40;
/// What the VMM leaves as firmware: keyboard interrupt on, system flag, no translation,
/// so a guest (Linux's atkbd: "AT Set 2 keyboard") reads the keyboard's own set 2.
/// Firecracker leaves the same. A guest may turn translation on; keys follow the CTR.
const CTR_DEFAULT: u8 = 0x05;

const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_AUX_DISABLE: u8 = 0xa7;
const CMD_AUX_ENABLE: u8 = 0xa8;
const CMD_AUX_TEST: u8 = 0xa9;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_KBD_TEST: u8 = 0xab;
const CMD_KBD_DISABLE: u8 = 0xad;
const CMD_KBD_ENABLE: u8 = 0xae;
const CMD_WRITE_KBD_OUTPUT: u8 = 0xd2;
const CMD_WRITE_AUX_OUTPUT: u8 = 0xd3;
const CMD_RESET_CPU: u8 = 0xfe;

const KBD_ACK: u8 = 0xfa;
const KBD_RESET: u8 = 0xff;
const KBD_SELF_TEST_OK: u8 = 0xaa;
/// AUX interface test result "clock line stuck low": no device on the AUX port.
const AUX_TEST_NO_DEVICE: u8 = 0x01;

/// Right-Ctrl, Alt and Delete pressed, then released, in scancode set 2 (what the
/// keyboard sends)...
const CTRL_ALT_DEL_SET2: [u8; 13] = [
    0xe0, 0x14, 0x11, 0xe0, 0x71, // press
    0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xe0, 0xf0, 0x14, // release
];
/// ...and in set 1 (what the controller hands on while translating). Sent as set 2 to a
/// translating controller, Linux saw unknown keys and Ctrl-Alt-Del never reached init.
const CTRL_ALT_DEL_SET1: [u8; 10] = [
    0xe0, 0x1d, 0x38, 0xe0, 0x53, // press
    0xe0, 0xd3, 0xb8, 0xe0, 0x9d, // release
];
const BUFFER_SIZE: usize = 32;

/// Why Ctrl-Alt-Del could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum I8042Error {
    #[error("the i8042 output buffer is full: the guest is not reading its keyboard")]
    BufferFull,
    #[error("raising the keyboard interrupt: {0}")]
    Interrupt(std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Ctr,
    KbdOutput,
    AuxOutput,
}

pub struct I8042 {
    ctr: u8,
    last_was_command: bool,
    pending: Pending,
    buffer: VecDeque<u8>,
    irq: IrqTrigger,
    latch: Arc<ExitLatch>,
}

impl I8042 {
    pub fn new(irq: IrqTrigger, latch: Arc<ExitLatch>) -> Self {
        Self {
            ctr: CTR_DEFAULT,
            last_was_command: false,
            pending: Pending::None,
            buffer: VecDeque::new(),
            irq,
            latch,
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), I8042Error> {
        if self.buffer.len() + bytes.len() > BUFFER_SIZE {
            return Err(I8042Error::BufferFull);
        }
        self.buffer.extend(bytes);
        self.raise()
    }

    fn raise(&self) -> Result<(), I8042Error> {
        if self.ctr & CTR_KBD_INT != 0 && !self.buffer.is_empty() {
            self.irq.trigger().map_err(I8042Error::Interrupt)?;
        }
        Ok(())
    }

    /// Presses Ctrl-Alt-Del: the guest reads the scancodes and decides what to do.
    pub fn ctrl_alt_del(&mut self) -> Result<(), I8042Error> {
        if self.ctr & CTR_XLATE != 0 {
            self.push(&CTRL_ALT_DEL_SET1)
        } else {
            self.push(&CTRL_ALT_DEL_SET2)
        }
    }

    fn status(&self) -> u8 {
        let mut s = STATUS_SYSTEM | STATUS_NOT_INHIBITED;
        if !self.buffer.is_empty() {
            s |= STATUS_OUTPUT_FULL;
        }
        if self.last_was_command {
            s |= STATUS_LAST_WAS_COMMAND;
        }
        s
    }

    fn command(&mut self, cmd: u8) {
        self.last_was_command = true;
        let r = match cmd {
            CMD_READ_CTR => self.push(&[self.ctr]),
            CMD_WRITE_CTR => {
                self.pending = Pending::Ctr;
                Ok(())
            }
            CMD_SELF_TEST => self.push(&[0x55]),
            CMD_KBD_TEST => self.push(&[0x00]),
            CMD_KBD_DISABLE => {
                self.ctr |= CTR_KBD_DISABLED;
                Ok(())
            }
            CMD_KBD_ENABLE => {
                self.ctr &= !CTR_KBD_DISABLED;
                Ok(())
            }
            CMD_WRITE_KBD_OUTPUT => {
                self.pending = Pending::KbdOutput;
                Ok(())
            }
            CMD_WRITE_AUX_OUTPUT => {
                self.pending = Pending::AuxOutput;
                Ok(())
            }
            CMD_AUX_DISABLE => {
                self.ctr |= CTR_AUX_DISABLED;
                Ok(())
            }
            CMD_AUX_ENABLE => {
                self.ctr &= !CTR_AUX_DISABLED;
                Ok(())
            }
            CMD_AUX_TEST => {
                // The reply takes the place of the loopback byte the guest left unread
                // (a real 8042's output buffer holds one byte): Linux reads one byte
                // here and must see the test result, not the stale loopback.
                self.buffer.clear();
                self.push(&[AUX_TEST_NO_DEVICE])
            }
            CMD_RESET_CPU => {
                self.latch.trigger(VmExit::new(
                    ExitReason::Reset,
                    "guest pulsed the reset line (i8042 command 0xfe)",
                ));
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::debug!("i8042 command {cmd:#x}: {e}");
        }
    }

    fn data(&mut self, value: u8) {
        self.last_was_command = false;
        let r = match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::Ctr => {
                self.ctr = value;
                self.raise()
            }
            Pending::KbdOutput => self.push(&[value]),
            // No AUX port: the byte comes back without the AUX-data status bit, which
            // Linux's loopback check treats as "no AUX port here".
            Pending::AuxOutput => self.push(&[value]),
            Pending::None if value == KBD_RESET => self.push(&[KBD_ACK, KBD_SELF_TEST_OK]),
            Pending::None => self.push(&[KBD_ACK]),
        };
        if let Err(e) = r {
            tracing::debug!("i8042 data {value:#x}: {e}");
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let v = match offset {
            DATA_OFFSET => {
                let v = self.buffer.pop_front().unwrap_or(0);
                let _ = self.raise();
                v
            }
            COMMAND_OFFSET => self.status(),
            _ => 0xff,
        };
        super::read_byte(data, v);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match offset {
            DATA_OFFSET => self.data(value),
            COMMAND_OFFSET => self.command(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmm_sys_util::eventfd::EventFd;

    fn device() -> (I8042, Arc<ExitLatch>) {
        let latch = Arc::new(ExitLatch::default());
        let irq = IrqTrigger(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        (I8042::new(irq, latch.clone()), latch)
    }

    fn read(dev: &mut I8042, offset: u64) -> u8 {
        let mut b = [0u8];
        dev.read(offset, &mut b);
        b[0]
    }

    #[test]
    fn reset_command_ends_the_vm_with_reset() {
        let (mut dev, latch) = device();
        dev.write(COMMAND_OFFSET, &[CMD_RESET_CPU]);
        assert_eq!(latch.get().unwrap().reason, ExitReason::Reset);
    }

    fn drain(dev: &mut I8042) -> Vec<u8> {
        let mut got = vec![];
        while read(dev, COMMAND_OFFSET) & STATUS_OUTPUT_FULL != 0 {
            got.push(read(dev, DATA_OFFSET));
        }
        got
    }

    #[test]
    fn ctrl_alt_del_is_readable_and_raises_irq1() {
        let (mut dev, _) = device();
        dev.ctrl_alt_del().unwrap();
        assert!(dev.irq.0.read().unwrap() >= 1);
        // No translation by default: set 2, as the keyboard sends it.
        assert_eq!(drain(&mut dev), CTRL_ALT_DEL_SET2);
        assert_eq!(&CTRL_ALT_DEL_SET2[..5], &[0xe0, 0x14, 0x11, 0xe0, 0x71]);
    }

    #[test]
    fn ctrl_alt_del_follows_the_guests_translation_bit() {
        let (mut dev, _) = device();
        // Linux keeps what the firmware left; a guest that turns translation on reads set 1.
        command(&mut dev, CMD_WRITE_CTR, Some(CTR_DEFAULT | CTR_XLATE));
        dev.ctrl_alt_del().unwrap();
        assert_eq!(drain(&mut dev), CTRL_ALT_DEL_SET1);
        // Set 1: press Ctrl (E0 1D), Alt (38), Del (E0 53); releases have bit 7 set.
        assert_eq!(&CTRL_ALT_DEL_SET1[..5], &[0xe0, 0x1d, 0x38, 0xe0, 0x53]);
        command(&mut dev, CMD_WRITE_CTR, Some(CTR_DEFAULT));
        dev.ctrl_alt_del().unwrap();
        assert_eq!(drain(&mut dev), CTRL_ALT_DEL_SET2);
    }

    #[test]
    fn the_firmware_leaves_translation_off() {
        let (mut dev, _) = device();
        assert_eq!(command(&mut dev, CMD_READ_CTR, None), vec![CTR_DEFAULT]);
        assert_eq!(CTR_DEFAULT & CTR_XLATE, 0);
    }

    /// Sends a controller command and, optionally, its data byte; returns what the
    /// controller answered.
    fn command(dev: &mut I8042, cmd: u8, data: Option<u8>) -> Vec<u8> {
        dev.write(COMMAND_OFFSET, &[cmd]);
        if let Some(d) = data {
            dev.write(DATA_OFFSET, &[d]);
        }
        let mut got = vec![];
        while read(dev, COMMAND_OFFSET) & STATUS_OUTPUT_FULL != 0 {
            got.push(read(dev, DATA_OFFSET));
        }
        got
    }

    #[test]
    fn the_keylock_is_off() {
        let (mut dev, _) = device();
        assert_ne!(read(&mut dev, COMMAND_OFFSET) & STATUS_NOT_INHIBITED, 0);
    }

    #[test]
    fn the_aux_port_reads_as_absent_and_its_disable_bit_sticks() {
        let (mut dev, _) = device();
        // Linux's i8042_check_aux: loopback first. The byte comes back, but not as
        // AUX data (status bit 5 clear), so Linux reads the status and stops there...
        dev.write(COMMAND_OFFSET, &[CMD_WRITE_AUX_OUTPUT]);
        dev.write(DATA_OFFSET, &[0x5a]);
        let status = read(&mut dev, COMMAND_OFFSET);
        assert_eq!(status & (STATUS_OUTPUT_FULL | 0x20), STATUS_OUTPUT_FULL);
        // ...then the interface test, without reading the loopback byte: the one byte
        // it reads is the failed test, and nothing is left behind.
        assert_eq!(command(&mut dev, CMD_AUX_TEST, None), vec![AUX_TEST_NO_DEVICE]);
        // The AUX disable bit in the CTR follows 0xa7/0xa8.
        command(&mut dev, CMD_AUX_DISABLE, None);
        assert_ne!(command(&mut dev, CMD_READ_CTR, None)[0] & CTR_AUX_DISABLED, 0);
        command(&mut dev, CMD_AUX_ENABLE, None);
        assert_eq!(command(&mut dev, CMD_READ_CTR, None)[0] & CTR_AUX_DISABLED, 0);
    }

    #[test]
    fn ctr_round_trips_and_a_full_buffer_is_an_error() {
        let (mut dev, _) = device();
        dev.write(COMMAND_OFFSET, &[CMD_WRITE_CTR]);
        dev.write(DATA_OFFSET, &[0x44]);
        dev.write(COMMAND_OFFSET, &[CMD_READ_CTR]);
        assert_eq!(read(&mut dev, DATA_OFFSET), 0x44);
        // Translating (0x44): ten bytes each, so three fit in 32 and the fourth does not.
        for _ in 0..3 {
            dev.ctrl_alt_del().unwrap();
        }
        assert!(matches!(dev.ctrl_alt_del(), Err(I8042Error::BufferFull)));
    }
}
