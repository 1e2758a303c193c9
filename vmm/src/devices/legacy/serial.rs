//! COM1: an 8250 UART (vm-superio) whose output goes to a [`ConsoleBuffer`] (the last
//! 64 KiB, replayable, and broadcast to live readers) and whose input comes from the
//! API through an [`InputQueue`] drained on the event loop.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use tokio::sync::broadcast;
use vm_superio::Serial;
use vm_superio::serial::SerialEvents;
use vmm_sys_util::eventfd::EventFd;

use super::IrqTrigger;
use crate::device_manager::bus::BusDevice;
use crate::metrics::VmmMetrics;

/// How much console output is kept for replay.
pub const CONSOLE_BUFFER_SIZE: usize = 64 * 1024;
/// How many output chunks a slow live reader may fall behind before it loses some.
const BROADCAST_CAPACITY: usize = 4096;

struct BufferInner {
    ring: VecDeque<u8>,
    tx: broadcast::Sender<Vec<u8>>,
}

/// Console output: kept for replay and sent to live readers.
pub struct ConsoleBuffer {
    inner: Mutex<BufferInner>,
}

impl Default for ConsoleBuffer {
    fn default() -> Self {
        Self {
            inner: Mutex::new(BufferInner {
                ring: VecDeque::with_capacity(CONSOLE_BUFFER_SIZE),
                tx: broadcast::channel(BROADCAST_CAPACITY).0,
            }),
        }
    }
}

impl ConsoleBuffer {
    fn lock(&self) -> MutexGuard<'_, BufferInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn push(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        let overflow = (inner.ring.len() + bytes.len()).saturating_sub(CONSOLE_BUFFER_SIZE);
        let len = inner.ring.len();
        inner.ring.drain(..overflow.min(len));
        let keep = bytes.len().min(CONSOLE_BUFFER_SIZE);
        inner.ring.extend(&bytes[bytes.len() - keep..]);
        // No receivers is fine: output is still kept for replay.
        let _ = inner.tx.send(bytes.to_vec());
    }

    /// A live reader, with what was printed so far when `replay` is set. Taken under
    /// one lock, so no byte is lost or repeated between the two.
    pub fn subscribe(&self, replay: bool) -> (Vec<u8>, broadcast::Receiver<Vec<u8>>) {
        let inner = self.lock();
        let past = if replay {
            inner.ring.iter().copied().collect()
        } else {
            Vec::new()
        };
        (past, inner.tx.subscribe())
    }

    /// The last line kept that contains `needle` (lossy UTF-8, without its line end).
    pub fn last_line_containing(&self, needle: &str) -> Option<String> {
        let kept: Vec<u8> = self.lock().ring.iter().copied().collect();
        let text = String::from_utf8_lossy(&kept);
        text.lines()
            .rev()
            .find(|line| line.contains(needle))
            .map(|line| line.trim_end_matches('\r').to_owned())
    }

    /// Everything kept so far.
    #[cfg(test)]
    pub fn snapshot(&self) -> Vec<u8> {
        self.lock().ring.iter().copied().collect()
    }
}

/// The UART's output sink.
pub struct ConsoleWriter {
    buffer: Arc<ConsoleBuffer>,
    metrics: Arc<VmmMetrics>,
}

impl Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.push(buf);
        self.metrics.add_console_bytes(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Signals the event loop when the guest has drained the UART's receive FIFO, so more
/// queued input can go in.
pub struct RxSpace(EventFd);

impl SerialEvents for RxSpace {
    fn buffer_read(&self) {}
    fn out_byte(&self) {}
    fn tx_lost_byte(&self) {}
    fn in_buffer_empty(&self) {
        let _ = self.0.write(1);
    }
}

/// The UART on the port I/O bus.
pub struct SerialDevice {
    uart: Serial<IrqTrigger, RxSpace, ConsoleWriter>,
}

impl SerialDevice {
    /// `irq` is the COM1 irqfd; `rx_space` is signalled when the guest empties the
    /// receive FIFO.
    pub fn new(
        irq: IrqTrigger,
        rx_space: EventFd,
        buffer: Arc<ConsoleBuffer>,
        metrics: Arc<VmmMetrics>,
    ) -> Self {
        Self {
            uart: Serial::with_events(irq, RxSpace(rx_space), ConsoleWriter { buffer, metrics }),
        }
    }

    /// Moves as much of `pending` as fits into the receive FIFO.
    fn feed(&mut self, pending: &mut VecDeque<u8>) {
        let room = self.uart.fifo_capacity().min(pending.len());
        if room == 0 {
            return;
        }
        let chunk: Vec<u8> = pending.drain(..room).collect();
        if let Err(e) = self.uart.enqueue_raw_bytes(&chunk) {
            tracing::warn!("serial input dropped: {e:?}");
        }
    }
}

impl BusDevice for SerialDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        super::read_byte(data, self.uart.read(offset as u8));
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some(&b) = data.first()
            && let Err(e) = self.uart.write(offset as u8, b)
        {
            tracing::warn!("serial write at offset {offset}: {e:?}");
        }
    }
}

/// Most console input that may wait for the guest to read it. Without a bound a client
/// could queue input faster than the guest reads it (or before it runs at all) until the
/// VMM runs out of memory; a serial line has no more room than its FIFO either.
pub const MAX_PENDING_INPUT: usize = 64 * 1024;

/// Console input refused because the guest has not read what is already waiting.
#[derive(Debug, thiserror::Error)]
#[error(
    "console_input.data: {pending} bytes already wait for the guest to read them and at most {MAX_PENDING_INPUT} may wait; {len} more refused"
)]
pub struct InputFullError {
    pub pending: usize,
    pub len: usize,
}

/// Console input waiting for the guest: filled by the API, drained on the event loop.
pub struct InputQueue {
    pending: Mutex<VecDeque<u8>>,
    ready: EventFd,
}

impl InputQueue {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            pending: Mutex::new(VecDeque::new()),
            ready: EventFd::new(libc::EFD_NONBLOCK)?,
        })
    }

    /// Queues `bytes` for the guest, all or nothing, within [`MAX_PENDING_INPUT`].
    pub fn send(&self, bytes: &[u8]) -> Result<(), InputFullError> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() + bytes.len() > MAX_PENDING_INPUT {
            return Err(InputFullError {
                pending: pending.len(),
                len: bytes.len(),
            });
        }
        pending.extend(bytes);
        drop(pending);
        let _ = self.ready.write(1);
        Ok(())
    }
}

/// Event-loop subscriber that moves queued input into the UART.
pub struct SerialInput {
    serial: Arc<Mutex<SerialDevice>>,
    queue: Arc<InputQueue>,
    rx_space: EventFd,
}

const TOKEN_INPUT: u32 = 1;
const TOKEN_RX_SPACE: u32 = 2;

impl SerialInput {
    pub fn new(serial: Arc<Mutex<SerialDevice>>, queue: Arc<InputQueue>, rx_space: EventFd) -> Self {
        Self {
            serial,
            queue,
            rx_space,
        }
    }

    fn feed(&self) {
        let mut pending = self.queue.pending.lock().unwrap_or_else(PoisonError::into_inner);
        self.serial
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .feed(&mut pending);
    }
}

impl MutEventSubscriber for SerialInput {
    fn init(&mut self, ops: &mut EventOps) {
        for (fd, token) in [(&self.queue.ready, TOKEN_INPUT), (&self.rx_space, TOKEN_RX_SPACE)] {
            if let Err(e) = ops.add(Events::with_data(fd, token, EventSet::IN)) {
                tracing::error!("serial input: cannot watch eventfd: {e:?}");
            }
        }
        // Input sent before the VM started.
        self.feed();
    }

    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        let evt = match events.data() {
            TOKEN_INPUT => &self.queue.ready,
            _ => &self.rx_space,
        };
        let _ = evt.read();
        self.feed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> (SerialDevice, Arc<ConsoleBuffer>, Arc<VmmMetrics>) {
        let buffer = Arc::new(ConsoleBuffer::default());
        let metrics = Arc::new(VmmMetrics::default());
        let irq = IrqTrigger(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let rx = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        (
            SerialDevice::new(irq, rx, buffer.clone(), metrics.clone()),
            buffer,
            metrics,
        )
    }

    #[test]
    fn output_is_buffered_counted_and_broadcast() {
        let (mut dev, buffer, metrics) = device();
        let (past, mut rx) = buffer.subscribe(true);
        assert!(past.is_empty());
        for b in b"hi\n" {
            dev.write(0, &[*b]);
        }
        assert_eq!(buffer.snapshot(), b"hi\n");
        assert_eq!(metrics.console_bytes_out(), 3);
        assert_eq!(rx.try_recv().unwrap(), b"h");
        let (past, _) = buffer.subscribe(true);
        assert_eq!(past, b"hi\n");
    }

    #[test]
    fn the_buffer_keeps_the_last_64_kib() {
        let buffer = ConsoleBuffer::default();
        buffer.push(&vec![b'a'; CONSOLE_BUFFER_SIZE]);
        buffer.push(b"xyz");
        let snap = buffer.snapshot();
        assert_eq!(snap.len(), CONSOLE_BUFFER_SIZE);
        assert!(snap.ends_with(b"axyz"));
    }

    #[test]
    fn input_reaches_the_receive_register() {
        let (mut dev, _, _) = device();
        let mut pending: VecDeque<u8> = b"ok".iter().copied().collect();
        dev.feed(&mut pending);
        assert!(pending.is_empty());
        let mut lsr = [0u8];
        dev.read(5, &mut lsr);
        assert_ne!(lsr[0] & 1, 0);
        let mut b = [0u8];
        dev.read(0, &mut b);
        assert_eq!(b[0], b'o');
    }
}
