//! COM1: an 8250 UART (vm-superio) whose output goes to a [`ConsoleBuffer`] (the last
//! 64 KiB, replayable, and read by live readers at their own pace) and whose input comes
//! from the API through an [`InputQueue`] drained on the event loop.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use tokio::sync::watch;
use vm_superio::Serial;
use vm_superio::serial::SerialEvents;
use vmm_sys_util::eventfd::EventFd;

use super::IrqTrigger;
use crate::device_manager::bus::BusDevice;
use crate::metrics::VmmMetrics;

/// How much console output is kept, for replay and for live readers that fall behind.
pub const CONSOLE_BUFFER_SIZE: usize = 64 * 1024;

struct BufferInner {
    /// The last output, at most [`CONSOLE_BUFFER_SIZE`] bytes; its allocation grows with
    /// the output (a VM that prints little costs little) and never past that bound.
    ring: VecDeque<u8>,
    /// Bytes printed since the VMM started: the position just after `ring`'s last byte.
    end: u64,
}

/// Console output: the last [`CONSOLE_BUFFER_SIZE`] bytes, kept for replay. Live readers
/// read the same bytes by position ([`ConsoleCursor`]), so there is one copy of the output
/// however many read it, and nothing is allocated per byte printed.
pub struct ConsoleBuffer {
    inner: Mutex<BufferInner>,
    /// [`BufferInner::end`], published to wake live readers.
    written: watch::Sender<u64>,
}

impl Default for ConsoleBuffer {
    fn default() -> Self {
        Self {
            inner: Mutex::new(BufferInner {
                ring: VecDeque::new(),
                end: 0,
            }),
            written: watch::Sender::new(0),
        }
    }
}

/// A live reader's place in the console output, and its wake-up when more is printed.
pub struct ConsoleCursor {
    pos: u64,
    written: watch::Receiver<u64>,
}

impl ConsoleCursor {
    /// Waits until output may have been printed since the reader last read; `false` when
    /// the console is gone. Cancel-safe.
    pub async fn changed(&mut self) -> bool {
        self.written.changed().await.is_ok()
    }
}

/// What a live reader got from [`ConsoleBuffer::read`].
#[derive(Debug, PartialEq, Eq)]
pub struct ConsoleRead {
    /// Output the reader had not seen, in order; empty when there is none.
    pub data: Vec<u8>,
    /// Bytes the reader missed: printed after its position but dropped from the buffer
    /// before it read them (it fell more than [`CONSOLE_BUFFER_SIZE`] behind).
    pub lost: u64,
}

impl ConsoleBuffer {
    fn lock(&self) -> MutexGuard<'_, BufferInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn push(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        let ring = &mut inner.ring;
        let kept = &bytes[bytes.len() - bytes.len().min(CONSOLE_BUFFER_SIZE)..];
        let overflow = (ring.len() + kept.len()).saturating_sub(CONSOLE_BUFFER_SIZE);
        ring.drain(..overflow.min(ring.len()));
        let needed = ring.len() + kept.len();
        if needed > ring.capacity() {
            // Doubling, as a Vec grows, but capped at the bound (which `needed` is within).
            let capacity = needed.max(ring.capacity() * 2).min(CONSOLE_BUFFER_SIZE);
            ring.reserve_exact(capacity - ring.len());
        }
        ring.extend(kept);
        inner.end += bytes.len() as u64;
        // Under the lock, so readers see positions in the order they were reached.
        self.written.send_replace(inner.end);
    }

    /// A live reader starting at the end of the output so far, with that output when
    /// `replay` is set. Taken under one lock, so no byte is lost or repeated between the
    /// two.
    pub fn subscribe(&self, replay: bool) -> (Vec<u8>, ConsoleCursor) {
        let inner = self.lock();
        let past = if replay {
            inner.ring.iter().copied().collect()
        } else {
            Vec::new()
        };
        let cursor = ConsoleCursor {
            pos: inner.end,
            written: self.written.subscribe(),
        };
        (past, cursor)
    }

    /// The output printed since `cursor`'s position, moving it to the end.
    pub fn read(&self, cursor: &mut ConsoleCursor) -> ConsoleRead {
        let inner = self.lock();
        let start = inner.end - inner.ring.len() as u64;
        let lost = start.saturating_sub(cursor.pos);
        // Within the ring: `cursor.pos` never passes `end`, and `start` is at most `end`.
        let from = usize::try_from(cursor.pos.max(start) - start).unwrap_or(usize::MAX);
        let data = inner.ring.range(from.min(inner.ring.len())..).copied().collect();
        cursor.pos = inner.end;
        ConsoleRead { data, lost }
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
    fn output_is_buffered_counted_and_read_live() {
        let (mut dev, buffer, metrics) = device();
        let (past, mut cursor) = buffer.subscribe(true);
        assert!(past.is_empty());
        for b in b"hi\n" {
            dev.write(0, &[*b]);
        }
        assert_eq!(buffer.snapshot(), b"hi\n");
        assert_eq!(metrics.console_bytes_out(), 3);
        // Everything printed since the last read, at once.
        let read = buffer.read(&mut cursor);
        assert_eq!((read.data.as_slice(), read.lost), (&b"hi\n"[..], 0));
        assert!(buffer.read(&mut cursor).data.is_empty());
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
        // One push longer than the buffer keeps its own tail.
        let mut long = vec![b'b'; CONSOLE_BUFFER_SIZE + 10];
        long.extend(b"end");
        buffer.push(&long);
        let snap = buffer.snapshot();
        assert_eq!(snap.len(), CONSOLE_BUFFER_SIZE);
        assert!(snap.ends_with(b"bend"));
    }

    #[test]
    fn the_buffer_costs_what_was_printed_up_to_its_bound() {
        let buffer = ConsoleBuffer::default();
        assert_eq!(
            buffer.lock().ring.capacity(),
            0,
            "nothing allocated before output"
        );
        buffer.push(b"boot\n");
        assert!(buffer.lock().ring.capacity() < 64);
        for _ in 0..3 * CONSOLE_BUFFER_SIZE {
            buffer.push(b"x");
        }
        assert_eq!(buffer.lock().ring.capacity(), CONSOLE_BUFFER_SIZE);
    }

    #[test]
    fn replay_and_live_output_neither_overlap_nor_leave_a_gap() {
        let buffer = ConsoleBuffer::default();
        buffer.push(b"before ");
        let (past, mut cursor) = buffer.subscribe(true);
        buffer.push(b"after");
        assert_eq!(past, b"before ");
        assert_eq!(buffer.read(&mut cursor).data, b"after");
        // Without replay the reader still starts where it attached.
        let (past, mut late) = buffer.subscribe(false);
        assert!(past.is_empty());
        buffer.push(b"!");
        assert_eq!(buffer.read(&mut late).data, b"!");
        assert_eq!(buffer.read(&mut cursor).data, b"!");
    }

    #[test]
    fn a_reader_that_falls_behind_the_buffer_is_told_how_much_it_missed() {
        let buffer = ConsoleBuffer::default();
        let (_, mut cursor) = buffer.subscribe(false);
        buffer.push(&[b'a'; 100]);
        buffer.push(&vec![b'b'; CONSOLE_BUFFER_SIZE]);
        let read = buffer.read(&mut cursor);
        assert_eq!(read.lost, 100);
        assert_eq!(read.data, vec![b'b'; CONSOLE_BUFFER_SIZE]);
        buffer.push(b"c");
        assert_eq!(
            buffer.read(&mut cursor),
            ConsoleRead {
                data: b"c".to_vec(),
                lost: 0
            }
        );
    }

    #[tokio::test]
    async fn a_live_reader_is_woken_by_output() {
        let buffer = Arc::new(ConsoleBuffer::default());
        let (_, mut cursor) = buffer.subscribe(false);
        let printer = {
            let buffer = buffer.clone();
            std::thread::spawn(move || {
                for chunk in [&b"one "[..], b"two ", b"three"] {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    buffer.push(chunk);
                }
            })
        };
        let mut seen = Vec::new();
        while seen.len() < b"one two three".len() {
            let read = buffer.read(&mut cursor);
            if read.data.is_empty() {
                assert!(cursor.changed().await);
            }
            seen.extend(read.data);
        }
        printer.join().unwrap();
        assert_eq!(seen, b"one two three");
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
