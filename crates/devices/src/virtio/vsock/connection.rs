//! One vsock stream connection: its state, flow control, and the host socket it is relayed
//! to. The connection knows nothing of epoll or queues; the muxer asks it what it wants to
//! be polled for ([`Connection::interest`]) and whether it has a packet for the guest
//! ([`Connection::has_pending_rx`]).

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::num::Wrapping;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use event_manager::EventSet;
use vm_memory::bitmap::BitmapSlice;
use vm_memory::{ReadVolatile, VolatileMemoryError, VolatileSlice};

use super::metrics::{Counter, VsockMetrics};
use super::packet::{self, RxHeader};
use super::{CONN_BUF_SIZE, CONNECT_LINE_MAX, CREDIT_UPDATE_THRESHOLD, MAX_PKT_DATA, op, shutdown};

/// A connection as the muxer keys it: the host-side port and the guest-side port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConnKey {
    /// The host's end (`src_port` of RX packets).
    pub local_port: u32,
    /// The guest's end (`dst_port` of RX packets).
    pub peer_port: u32,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Host-initiated: the `REQUEST` is queued or sent; waiting for the guest's answer.
    Connecting,
    /// Bytes flow.
    Established,
    /// The device gave up on it: the host socket is closed, an `RST` is queued for the guest,
    /// after which the connection is forgotten. Guest packets for it are ignored meanwhile.
    Killed,
}

/// What the muxer must do with a connection after a guest packet or a host event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Keep it.
    Keep,
    /// Forget it now, without telling the guest (it sent `RST`); count it under `Counter`.
    Remove(Counter),
    /// Close the host socket, send the guest `RST`, then forget it; count it under `Counter`.
    Kill(Counter),
}

/// Control packets waiting for an RX buffer (bits of `Connection::pending`).
mod pending {
    pub const REQUEST: u8 = 1;
    pub const RESPONSE: u8 = 2;
    pub const SHUTDOWN: u8 = 4;
    pub const CREDIT_UPDATE: u8 = 8;
    pub const CREDIT_REQUEST: u8 = 16;
}

/// One stream connection between a guest port and a host unix socket.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The host socket (non-blocking); `None` once killed.
    pub stream: Option<UnixStream>,
    /// The host socket after a kill, until the muxer takes it out of the event loop (an fd
    /// must leave epoll before it is closed, or the event loop's books go stale).
    pub orphan: Option<UnixStream>,
    pub host_initiated: bool,
    pub state: State,
    /// Whether the connection is in the muxer's RX schedule (so it is there once).
    pub scheduled: bool,
    /// The interest registered with the event loop (`None`: not registered).
    pub registered: Option<EventSet>,
    /// The counter to bump when an `RST` queued by [`Outcome::Kill`] goes out.
    pub kill_reason: Option<Counter>,
    /// Host-initiated: when the device gives up waiting for the guest's answer.
    pub request_deadline: Option<std::time::Instant>,
    pending: u8,
    // Flow control, all counters modulo 2^32 as the spec has them.
    peer_buf_alloc: u32,
    peer_fwd_cnt: Wrapping<u32>,
    /// Payload bytes sent to the guest.
    rx_cnt: Wrapping<u32>,
    /// Guest payload bytes passed on to the host socket.
    fwd_cnt: Wrapping<u32>,
    /// `fwd_cnt` as last told to the guest.
    fwd_cnt_told: Wrapping<u32>,
    /// Bytes for the host socket that it did not take yet: first `control_len` bytes of the
    /// device's own (`OK <port>\n`), then guest payload.
    tx_buf: VecDeque<u8>,
    control_len: usize,
    /// The host socket was readable and has not been drained since.
    host_readable: bool,
    /// A `CREDIT_REQUEST` went out and no credit came back since.
    credit_requested: bool,
    /// `SHUTDOWN` flags the guest sent.
    guest_shut: u32,
    /// `SHUTDOWN` flags the device sent, and the ones still to send.
    shut_sent: u32,
    shut_to_send: u32,
    /// The host will send no more (end of file read).
    host_eof: bool,
    /// The host socket hung up or failed: nothing more goes either way.
    host_hup: bool,
    /// `shutdown(SHUT_WR)` was done on the host socket.
    host_write_shut: bool,
}

impl Connection {
    fn new(stream: UnixStream, host_initiated: bool, state: State, pending: u8) -> Self {
        Self {
            stream: Some(stream),
            orphan: None,
            host_initiated,
            state,
            scheduled: false,
            registered: None,
            kill_reason: None,
            request_deadline: None,
            pending,
            peer_buf_alloc: 0,
            peer_fwd_cnt: Wrapping(0),
            rx_cnt: Wrapping(0),
            fwd_cnt: Wrapping(0),
            fwd_cnt_told: Wrapping(0),
            tx_buf: VecDeque::new(),
            control_len: 0,
            host_readable: false,
            credit_requested: false,
            guest_shut: 0,
            shut_sent: 0,
            shut_to_send: 0,
            host_eof: false,
            host_hup: false,
            host_write_shut: false,
        }
    }

    /// A host process asked (`CONNECT`) for a connection to the guest: `REQUEST` queued.
    pub fn host_initiated(stream: UnixStream) -> Self {
        let mut c = Self::new(stream, true, State::Connecting, pending::REQUEST);
        c.request_deadline = Some(std::time::Instant::now() + super::REQUEST_TIMEOUT);
        c
    }

    /// Whether the guest left a host-initiated `REQUEST` unanswered past its deadline.
    pub fn request_expired(&self, now: std::time::Instant) -> bool {
        self.state == State::Connecting && self.request_deadline.is_some_and(|d| d <= now)
    }

    /// The guest asked for a connection and a host listener took it: `RESPONSE` queued.
    pub fn guest_initiated(stream: UnixStream, buf_alloc: u32, fwd_cnt: u32) -> Self {
        let mut c = Self::new(stream, false, State::Established, pending::RESPONSE);
        c.peer_buf_alloc = buf_alloc;
        c.peer_fwd_cnt = Wrapping(fwd_cnt);
        c
    }

    /// Gives up the host socket (to [`Connection::orphan`]) and queues the `RST`.
    pub fn kill(&mut self, reason: Counter) {
        if self.state == State::Killed {
            return;
        }
        self.state = State::Killed;
        self.kill_reason = Some(reason);
        self.pending = 0;
        self.tx_buf = VecDeque::new();
        self.control_len = 0;
        if let Some(s) = self.stream.take() {
            self.orphan = Some(s);
        }
    }

    /// Bytes the guest may still send us before it must wait for credit.
    fn peer_credit(&self) -> u32 {
        let in_flight = (self.rx_cnt - self.peer_fwd_cnt).0;
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// Whether host bytes (or the end of file) may go to the guest: also after a hang-up,
    /// until the end of file has been read.
    fn can_read_host(&self) -> bool {
        self.state == State::Established
            && self.stream.is_some()
            && !self.host_eof
            && self.guest_shut & shutdown::RCV == 0
    }

    fn wants_credit_request(&self) -> bool {
        self.host_readable && self.can_read_host() && self.peer_credit() == 0 && !self.credit_requested
    }

    /// Whether the connection has a packet for the guest.
    pub fn has_pending_rx(&self) -> bool {
        self.state == State::Killed
            || self.pending != 0
            || (self.host_readable && self.can_read_host() && self.peer_credit() > 0)
            || self.wants_credit_request()
    }

    /// What to poll the host socket for, `None` for "leave the event loop": readable only
    /// when its bytes could go somewhere (established, credit, not already known readable),
    /// writable only while bytes wait. Registered with an empty set the socket still reports
    /// a hang-up; after one it leaves (a hang-up stays reported, it would spin the loop).
    pub fn interest(&self) -> Option<EventSet> {
        let mut set = EventSet::empty();
        if self.stream.is_none() || self.host_hup {
            return None;
        }
        if self.can_read_host() && !self.host_readable && self.peer_credit() > 0 {
            set |= EventSet::IN;
        }
        if !self.tx_buf.is_empty() {
            set |= EventSet::OUT;
        }
        Some(set)
    }

    /// Every guest packet carries the guest's buffer space and consumption.
    fn note_peer_credit(&mut self, buf_alloc: u32, fwd_cnt: u32) {
        if buf_alloc != self.peer_buf_alloc || Wrapping(fwd_cnt) != self.peer_fwd_cnt {
            self.credit_requested = false;
        }
        self.peer_buf_alloc = buf_alloc;
        self.peer_fwd_cnt = Wrapping(fwd_cnt);
    }

    /// Handles a guest packet for this connection (its header fields and, for `RW`, its
    /// payload in guest memory). `local_port` is the connection's host-side port.
    pub fn on_guest_packet<B: BitmapSlice>(
        &mut self,
        hdr: &packet::TxHeader,
        data: Option<&VolatileSlice<'_, B>>,
        local_port: u32,
        metrics: &VsockMetrics,
    ) -> Outcome {
        if self.state == State::Killed {
            // Our RST is on its way; the guest's RST crossing it ends the connection now.
            return if hdr.op == op::RST {
                Outcome::Remove(self.kill_reason.unwrap_or(Counter::ResetByDevice))
            } else {
                Outcome::Keep
            };
        }
        self.note_peer_credit(hdr.buf_alloc, hdr.fwd_cnt);
        match hdr.op {
            op::RESPONSE if self.state == State::Connecting => {
                self.state = State::Established;
                metrics.inc(Counter::HostOpened);
                let line = format!("OK {local_port}\n");
                debug_assert!(line.len() <= CONNECT_LINE_MAX);
                self.control_len = line.len();
                self.tx_buf.extend(line.as_bytes());
                self.flush_host()
            }
            op::RW if self.state == State::Established && self.guest_shut & shutdown::SEND == 0 => {
                let Some(data) = data else {
                    return Outcome::Keep;
                };
                self.write_host(data, metrics)
            }
            op::CREDIT_UPDATE => Outcome::Keep,
            op::CREDIT_REQUEST => {
                self.pending |= pending::CREDIT_UPDATE;
                Outcome::Keep
            }
            op::SHUTDOWN => {
                self.guest_shut |= hdr.flags & (shutdown::RCV | shutdown::SEND);
                self.after_host_progress()
            }
            op::RST => Outcome::Remove(match self.state {
                State::Connecting => Counter::Refused,
                _ if self.host_eof || self.host_hup => Counter::ClosedByHost,
                _ => Counter::ClosedByGuest,
            }),
            // A RESPONSE out of turn, data before the connection is up or after the guest
            // said it would send no more, a second REQUEST, an unknown operation.
            _ => Outcome::Kill(Counter::ResetByDevice),
        }
    }

    /// Guest payload to the host socket: straight from guest memory, the rest buffered.
    fn write_host<B: BitmapSlice>(&mut self, data: &VolatileSlice<'_, B>, metrics: &VsockMetrics) -> Outcome {
        let len = data.len();
        if self.host_hup {
            return Outcome::Kill(Counter::ClosedByHost);
        }
        if self.tx_buf.len() - self.control_len + len > CONN_BUF_SIZE as usize {
            log::warn!("virtio-vsock: guest sent {len} bytes past its credit; resetting the connection");
            return Outcome::Kill(Counter::ResetByDevice);
        }
        metrics.add_bytes_from_guest(len as u64);
        let mut done = 0;
        if self.tx_buf.is_empty() {
            while done < len {
                let Ok(rest) = data.offset(done) else { break };
                let guard = rest.ptr_guard();
                match send_nosignal(self.stream.as_ref(), guard.as_ptr(), rest.len()) {
                    Ok(n) => done += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Outcome::Kill(Counter::ClosedByHost),
                }
            }
            self.forwarded(done);
        }
        if done < len {
            let mut rest = vec![0u8; len - done];
            if let Ok(s) = data.offset(done) {
                s.copy_to(&mut rest[..]);
            }
            self.tx_buf.extend(rest);
        }
        self.after_host_progress()
    }

    /// `n` guest bytes reached the host socket.
    fn forwarded(&mut self, n: usize) {
        self.fwd_cnt += Wrapping(n as u32);
        if (self.fwd_cnt - self.fwd_cnt_told).0 >= CREDIT_UPDATE_THRESHOLD {
            self.pending |= pending::CREDIT_UPDATE;
        }
    }

    /// Writes buffered bytes to the host socket.
    fn flush_host(&mut self) -> Outcome {
        while !self.tx_buf.is_empty() {
            let (front, _) = self.tx_buf.as_slices();
            match send_nosignal(self.stream.as_ref(), front.as_ptr(), front.len()) {
                Ok(n) => {
                    self.tx_buf.drain(..n);
                    let control = n.min(self.control_len);
                    self.control_len -= control;
                    self.forwarded(n - control);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Outcome::Kill(Counter::ClosedByHost),
            }
        }
        if self.tx_buf.is_empty() {
            // Give the memory back; a connection that buffered once need not keep 64 KiB.
            self.tx_buf = VecDeque::new();
        }
        self.after_host_progress()
    }

    /// Closes what the guest closed, once the buffered bytes are out.
    fn after_host_progress(&mut self) -> Outcome {
        if !self.tx_buf.is_empty() {
            return Outcome::Keep;
        }
        if self.guest_shut == shutdown::RCV | shutdown::SEND {
            // Both directions closed by the guest: it waits for our RST.
            let by = if self.host_eof || self.host_hup {
                Counter::ClosedByHost
            } else {
                Counter::ClosedByGuest
            };
            return Outcome::Kill(by);
        }
        if self.guest_shut & shutdown::SEND != 0 && !self.host_write_shut {
            self.host_write_shut = true;
            if let Some(s) = &self.stream {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
        }
        Outcome::Keep
    }

    /// Handles readiness of the host socket.
    pub fn on_host_event(&mut self, set: EventSet) -> Outcome {
        if self.stream.is_none() {
            return Outcome::Keep;
        }
        if set.intersects(EventSet::HANG_UP | EventSet::ERROR) {
            self.host_hup = true;
            self.tx_buf = VecDeque::new();
            self.control_len = 0;
            if self.state == State::Connecting {
                // The host gave up before the guest answered: withdraw the request.
                return Outcome::Kill(Counter::ClosedByHost);
            }
            if self.host_eof {
                // End of file was told already (SEND); now the host is gone entirely.
                self.queue_shutdown(shutdown::RCV | shutdown::SEND);
            } else {
                // Deliver what is left to read, then end of file, from the RX path.
                self.host_readable = true;
            }
            return Outcome::Keep;
        }
        if set.contains(EventSet::IN) {
            self.host_readable = true;
        }
        if set.contains(EventSet::OUT) {
            return self.flush_host();
        }
        Outcome::Keep
    }

    fn queue_shutdown(&mut self, flags: u32) {
        let new = flags & !self.shut_sent;
        if new != 0 {
            self.shut_to_send |= flags;
            self.pending |= pending::SHUTDOWN;
        }
    }

    /// Produces the connection's next packet for the guest into `pkt` (an RX buffer), if
    /// it has one: `Some(len)` with the payload length, or `None`. After an `RST`
    /// ([`State::Killed`]) the muxer forgets the connection.
    pub fn recv<B: BitmapSlice>(
        &mut self,
        key: ConnKey,
        pkt: &mut packet::RxPacket<'_, B>,
        metrics: &VsockMetrics,
    ) -> Option<u32> {
        let mut hdr = RxHeader {
            local_port: key.local_port,
            peer_port: key.peer_port,
            op: 0,
            flags: 0,
            len: 0,
            buf_alloc: CONN_BUF_SIZE,
            fwd_cnt: self.fwd_cnt.0,
        };
        if self.state == State::Killed {
            hdr.op = op::RST;
            hdr.buf_alloc = 0;
            hdr.fwd_cnt = 0;
            pkt.write_header(&hdr);
            return Some(0);
        }
        if let Some(op) = self.take_control(&[pending::REQUEST, pending::RESPONSE]) {
            hdr.op = op;
        } else if let Some(len) = self.read_host(pkt, metrics) {
            if len > 0 {
                hdr.op = op::RW;
                hdr.len = len;
            } else {
                // End of file: queued by read_host; sent right away below.
                hdr.op = self.take_control(&[pending::SHUTDOWN])?;
            }
        } else if let Some(op) =
            self.take_control(&[pending::SHUTDOWN, pending::CREDIT_UPDATE, pending::CREDIT_REQUEST])
        {
            hdr.op = op;
        } else if self.wants_credit_request() {
            self.credit_requested = true;
            hdr.op = op::CREDIT_REQUEST;
        } else if self.state == State::Killed {
            // read_host found the host socket broken.
            hdr.op = op::RST;
        } else {
            return None;
        }
        if hdr.op == op::SHUTDOWN {
            hdr.flags = self.shut_to_send;
            self.shut_sent |= self.shut_to_send;
            self.shut_to_send = 0;
        }
        if hdr.op == op::RST {
            hdr.buf_alloc = 0;
            hdr.fwd_cnt = 0;
        } else {
            // Every packet tells the guest our credit.
            self.fwd_cnt_told = self.fwd_cnt;
            self.pending &= !pending::CREDIT_UPDATE;
        }
        pkt.write_header(&hdr);
        Some(hdr.len)
    }

    fn take_control(&mut self, order: &[u8]) -> Option<u16> {
        for &bit in order {
            if self.pending & bit != 0 {
                self.pending &= !bit;
                return Some(match bit {
                    pending::REQUEST => op::REQUEST,
                    pending::RESPONSE => op::RESPONSE,
                    pending::SHUTDOWN => op::SHUTDOWN,
                    pending::CREDIT_UPDATE => op::CREDIT_UPDATE,
                    _ => op::CREDIT_REQUEST,
                });
            }
        }
        None
    }

    /// Reads host bytes straight into the RX buffer's data area, within the guest's credit.
    /// `Some(n > 0)`: payload; `Some(0)`: end of file (a `SHUTDOWN` is queued); `None`:
    /// nothing to read now (or the socket broke, then the connection is killed).
    fn read_host<B: BitmapSlice>(
        &mut self,
        pkt: &mut packet::RxPacket<'_, B>,
        metrics: &VsockMetrics,
    ) -> Option<u32> {
        if !self.host_readable || !self.can_read_host() {
            return None;
        }
        let room = pkt.data_room().min(self.peer_credit()).min(MAX_PKT_DATA);
        if room == 0 {
            return None;
        }
        let stream = self.stream.as_ref()?;
        let slice = pkt.data_slice(room)?;
        let mut reader = stream;
        let result = reader.read_volatile(&mut slice.clone());
        match result {
            Ok(0) => {
                self.host_readable = false;
                self.host_eof = true;
                let flags = if self.host_hup {
                    shutdown::RCV | shutdown::SEND
                } else {
                    shutdown::SEND
                };
                self.queue_shutdown(flags);
                Some(0)
            }
            Ok(n) => {
                let n = n.min(room as usize) as u32;
                self.rx_cnt += Wrapping(n);
                metrics.add_bytes_to_guest(u64::from(n));
                Some(n)
            }
            Err(VolatileMemoryError::IOError(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) =>
            {
                self.host_readable = false;
                None
            }
            Err(_) => {
                self.kill(Counter::ClosedByHost);
                None
            }
        }
    }
}

/// `send(2)` with `MSG_NOSIGNAL`: a host peer that went away must give `EPIPE`, never
/// `SIGPIPE`, whatever the embedding process does with that signal.
fn send_nosignal(stream: Option<&UnixStream>, ptr: *const u8, len: usize) -> std::io::Result<usize> {
    let Some(stream) = stream else {
        return Err(ErrorKind::NotConnected.into());
    };
    // SAFETY: `ptr..ptr + len` is readable for the call: it comes from a live slice of guest
    // memory or of a `VecDeque` the caller borrows; send(2) only reads it.
    let n = unsafe { libc::send(stream.as_raw_fd(), ptr.cast(), len, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
