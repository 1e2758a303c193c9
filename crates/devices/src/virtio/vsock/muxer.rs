//! The host side of the device: the unix listener, host sockets still sending their
//! `CONNECT` line, the connections keyed by (host port, guest port), which connection has a
//! packet for the guest next, and the `RST`s owed for packets of no connection.
//!
//! The muxer changes what it wants from the event loop as it goes (a connection stops
//! polling its socket while its bytes wait for an RX buffer, starts polling for writability
//! while bytes wait for the host...); [`Muxer::sync`] applies those changes, and takes the
//! sockets it dropped out of the event loop before closing them. The device calls it at the
//! end of every event, on the event-loop thread; what happens elsewhere (a device reset on a
//! vCPU thread) is applied at the next event, which the device's kick eventfd provides.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use event_manager::{EventOps, EventSet, Events};
use log::{debug, info, warn};
use vm_memory::VolatileSlice;
use vm_memory::bitmap::BitmapSlice;
use vmm_sys_util::timerfd::TimerFd;

use super::connection::{ConnKey, Connection, Outcome, State};
use super::metrics::{Counter, VsockMetrics};
use super::packet::{RxHeader, RxPacket, TxHeader};
use super::{
    CONNECT_LINE_MAX, CONNECT_LINE_TIMEOUT, FIRST_LOCAL_PORT, HOST_CID, MAX_CONNECTIONS, MAX_PENDING_HOST,
    RST_QUEUE_LEN, TIMER_TICK, TYPE_STREAM, op,
};

/// `data` of the event-loop registration of every host socket (connections and sockets
/// still sending their `CONNECT` line); the device's own fds use smaller values.
pub(crate) const STREAM_TOKEN: u32 = 16;

/// Most host connections accepted per listener event (the listener is level-triggered, so
/// more are taken at the next turn of the loop; other work is not starved meanwhile).
const ACCEPT_BATCH: usize = 16;

/// A host socket that has not sent its whole `CONNECT <port>\n` line yet.
#[derive(Debug)]
struct PendingHost {
    stream: UnixStream,
    line: Vec<u8>,
    registered: bool,
    deadline: Instant,
}

/// Every host-side resource of one vsock device.
#[derive(Debug)]
pub(crate) struct Muxer {
    guest_cid: u64,
    uds_path: PathBuf,
    listener: UnixListener,
    /// (device, inode) of the socket file the listener made, to remove it on drop only if
    /// it is still ours.
    socket_file: Option<(u64, u64)>,
    conns: HashMap<ConnKey, Connection>,
    /// The fd of every live connection's host socket.
    conn_fds: HashMap<RawFd, ConnKey>,
    pending_host: HashMap<RawFd, PendingHost>,
    /// Connections with a packet for the guest, each once, in turn.
    rx_schedule: VecDeque<ConnKey>,
    /// `RST`s for guest packets that belong to no connection.
    rst_queue: VecDeque<ConnKey>,
    local_ports: HashSet<u32>,
    next_local_port: u32,
    /// Sockets to take out of the event loop (if registered) and close.
    dropped: Vec<(UnixStream, bool)>,
    /// Connections whose interest may have changed since the last sync.
    dirty: Vec<ConnKey>,
    /// Ticks every [`TIMER_TICK`] while a deadline is pending (a `CONNECT` line, a
    /// host-initiated `REQUEST`); non-blocking.
    timer: TimerFd,
    timer_armed: bool,
    metrics: Arc<VsockMetrics>,
}

impl Muxer {
    pub fn new(
        guest_cid: u64,
        uds_path: PathBuf,
        listener: UnixListener,
        metrics: Arc<VsockMetrics>,
    ) -> std::io::Result<Self> {
        let timer = TimerFd::new()?;
        // SAFETY: fcntl on a descriptor we own; the result is checked.
        let rc = unsafe { libc::fcntl(timer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let socket_file = std::fs::symlink_metadata(&uds_path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Ok(Self {
            guest_cid,
            uds_path,
            listener,
            socket_file,
            conns: HashMap::new(),
            conn_fds: HashMap::new(),
            pending_host: HashMap::new(),
            rx_schedule: VecDeque::new(),
            rst_queue: VecDeque::new(),
            local_ports: HashSet::new(),
            next_local_port: FIRST_LOCAL_PORT,
            dropped: Vec::new(),
            dirty: Vec::new(),
            timer,
            timer_armed: false,
            metrics,
        })
    }

    pub fn timer(&self) -> &TimerFd {
        &self.timer
    }

    /// The timer ticked: close host sockets that did not finish their `CONNECT` line in
    /// time, withdraw `REQUEST`s the guest did not answer in time.
    pub fn on_timer(&mut self) {
        let mut ticks = [0u8; 8];
        // SAFETY: reads 8 bytes into a local buffer from the non-blocking timerfd we own.
        let _ = unsafe { libc::read(self.timer.as_raw_fd(), ticks.as_mut_ptr().cast(), ticks.len()) };
        self.expire(Instant::now());
    }

    fn expire(&mut self, now: Instant) {
        let late: Vec<RawFd> = self
            .pending_host
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&fd, _)| fd)
            .collect();
        for fd in late {
            if let Some(p) = self.pending_host.remove(&fd) {
                debug!("virtio-vsock: host connection closed: no CONNECT line in time");
                self.metrics.inc(Counter::Refused);
                self.dropped.push((p.stream, p.registered));
            }
        }
        let unanswered: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(_, c)| c.request_expired(now))
            .map(|(&k, _)| k)
            .collect();
        for key in unanswered {
            info!(
                "virtio-vsock: the guest did not answer the REQUEST to port {} in time",
                key.peer_port
            );
            self.settle(key, Outcome::Kill(Counter::Refused));
        }
    }

    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Live connections (killed ones waiting for their `RST` included).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether a packet waits for an RX buffer.
    pub fn has_pending_rx(&self) -> bool {
        !self.rst_queue.is_empty() || !self.rx_schedule.is_empty()
    }

    /// Whether the `RST` queue is full: the device then takes no more TX packets until RX
    /// buffers drain it (each TX packet may owe one).
    pub fn rst_queue_full(&self) -> bool {
        self.rst_queue.len() >= RST_QUEUE_LEN
    }

    /// Forgets every connection (device or transport reset); their host sockets are closed
    /// at the next [`Muxer::sync`]. The listener stays.
    pub fn reset(&mut self) {
        for (_, mut conn) in self.conns.drain() {
            if conn.state != State::Killed {
                self.metrics.inc(Counter::ResetByDevice);
            }
            let registered = conn.registered.is_some();
            if let Some(s) = conn.stream.take().or(conn.orphan.take()) {
                self.dropped.push((s, registered));
            }
        }
        for (_, p) in self.pending_host.drain() {
            self.dropped.push((p.stream, p.registered));
        }
        self.conn_fds.clear();
        self.rx_schedule.clear();
        self.rst_queue.clear();
        self.local_ports.clear();
        self.next_local_port = FIRST_LOCAL_PORT;
        self.dirty.clear();
    }

    // ---- guest → host -----------------------------------------------------------------

    /// Handles one packet from the guest's TX queue.
    pub fn send<B: BitmapSlice>(&mut self, hdr: &TxHeader, data: Option<&VolatileSlice<'_, B>>) {
        self.metrics.inc(Counter::TxPackets);
        if hdr.dst_cid != HOST_CID || hdr.src_cid != self.guest_cid {
            debug!(
                "virtio-vsock: packet from CID {} to CID {} dropped (guest CID {})",
                hdr.src_cid, hdr.dst_cid, self.guest_cid
            );
            self.metrics.inc(Counter::Dropped);
            return;
        }
        let key = ConnKey {
            local_port: hdr.dst_port,
            peer_port: hdr.src_port,
        };
        if hdr.type_ != TYPE_STREAM {
            self.metrics.inc(Counter::Dropped);
            self.refuse(key, hdr.op);
            return;
        }
        if let Some(conn) = self.conns.get_mut(&key) {
            let outcome = conn.on_guest_packet(hdr, data, key.local_port, &self.metrics);
            self.settle(key, outcome);
            return;
        }
        match hdr.op {
            op::REQUEST => self.connect_guest(key, hdr),
            _ => {
                debug!("virtio-vsock: op {} for unknown connection {key:?}", hdr.op);
                self.metrics.inc(Counter::Dropped);
                self.refuse(key, hdr.op);
            }
        }
    }

    /// The guest sent something the device could not parse, but its header names `hdr`'s
    /// connection: reset it.
    pub fn reset_connection_of(&mut self, hdr: &TxHeader) {
        if hdr.dst_cid != HOST_CID || hdr.src_cid != self.guest_cid {
            return;
        }
        let key = ConnKey {
            local_port: hdr.dst_port,
            peer_port: hdr.src_port,
        };
        if self.conns.contains_key(&key) {
            // Never answer an RST with one.
            let outcome = if hdr.op == op::RST {
                Outcome::Remove(Counter::ClosedByGuest)
            } else {
                Outcome::Kill(Counter::ResetByDevice)
            };
            self.settle(key, outcome);
        } else {
            self.refuse(key, hdr.op);
        }
    }

    /// Queues an `RST` for a packet of no connection (never in answer to an `RST`).
    fn refuse(&mut self, key: ConnKey, op_received: u16) {
        if op_received == op::RST {
            return;
        }
        if self.rst_queue.len() >= RST_QUEUE_LEN {
            // Only reachable if the device ignored `rst_queue_full`; the guest times out.
            warn!("virtio-vsock: RST queue full; RST for {key:?} not sent");
            return;
        }
        self.rst_queue.push_back(key);
    }

    /// A guest `REQUEST` to host port `key.local_port`: connect to `<uds_path>_<port>`.
    fn connect_guest(&mut self, key: ConnKey, hdr: &TxHeader) {
        if self.conns.len() >= MAX_CONNECTIONS {
            warn!(
                "virtio-vsock: {MAX_CONNECTIONS} connections open; guest REQUEST to port {} refused",
                key.local_port
            );
            self.metrics.inc(Counter::Refused);
            self.refuse(key, hdr.op);
            return;
        }
        let mut path = self.uds_path.as_os_str().to_owned();
        path.push(format!("_{}", key.local_port));
        match connect_nonblocking(Path::new(&path)) {
            Ok(stream) => {
                info!(
                    "virtio-vsock: guest port {} connected to {}",
                    key.peer_port,
                    Path::new(&path).display()
                );
                self.metrics.inc(Counter::GuestOpened);
                self.conn_fds.insert(stream.as_raw_fd(), key);
                let conn = Connection::guest_initiated(stream, hdr.buf_alloc, hdr.fwd_cnt);
                self.conns.insert(key, conn);
                self.settle(key, Outcome::Keep);
            }
            Err(e) => {
                debug!(
                    "virtio-vsock: guest REQUEST to port {}: {}: {e}",
                    key.local_port,
                    Path::new(&path).display()
                );
                self.metrics.inc(Counter::Refused);
                self.refuse(key, hdr.op);
            }
        }
    }

    // ---- host → guest -----------------------------------------------------------------

    /// Fills one RX buffer with the next packet owed to the guest: `Some(payload length)`, or
    /// `None` when nothing is owed (the buffer stays the guest's).
    pub fn recv<B: BitmapSlice>(&mut self, pkt: &mut RxPacket<'_, B>) -> Option<u32> {
        if let Some(key) = self.rst_queue.pop_front() {
            pkt.write_header(&RxHeader {
                local_port: key.local_port,
                peer_port: key.peer_port,
                op: op::RST,
                flags: 0,
                len: 0,
                buf_alloc: 0,
                fwd_cnt: 0,
            });
            self.metrics.inc(Counter::RstsSent);
            self.metrics.inc(Counter::RxPackets);
            return Some(0);
        }
        for _ in 0..self.rx_schedule.len() {
            let Some(key) = self.rx_schedule.pop_front() else {
                break;
            };
            let Some(conn) = self.conns.get_mut(&key) else {
                continue;
            };
            conn.scheduled = false;
            let sent = conn.recv(key, pkt, &self.metrics);
            let killed = conn.state == State::Killed;
            match sent {
                Some(len) if killed => {
                    // That was the RST.
                    self.metrics.inc(Counter::RstsSent);
                    self.metrics.inc(Counter::RxPackets);
                    let reason = conn.kill_reason.unwrap_or(Counter::ResetByDevice);
                    self.remove(key, reason);
                    return Some(len);
                }
                Some(len) => {
                    self.metrics.inc(Counter::RxPackets);
                    self.settle(key, Outcome::Keep);
                    return Some(len);
                }
                None => self.settle(key, Outcome::Keep),
            }
        }
        None
    }

    // ---- host events ------------------------------------------------------------------

    /// The listener is readable: accept host connections; each must send `CONNECT <port>\n`.
    pub fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.pending_host.len() >= MAX_PENDING_HOST || self.conns.len() >= MAX_CONNECTIONS {
                        warn!("virtio-vsock: too many host connections; one closed on arrival");
                        self.metrics.inc(Counter::Refused);
                        continue;
                    }
                    if let Err(e) = stream.set_nonblocking(true) {
                        warn!("virtio-vsock: host connection closed: {e}");
                        continue;
                    }
                    let fd = stream.as_raw_fd();
                    self.pending_host.insert(
                        fd,
                        PendingHost {
                            stream,
                            line: Vec::with_capacity(CONNECT_LINE_MAX),
                            registered: false,
                            deadline: Instant::now() + CONNECT_LINE_TIMEOUT,
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("virtio-vsock: accept on {}: {e}", self.uds_path.display());
                    break;
                }
            }
        }
    }

    /// Readiness of a host socket (a connection's, or one still sending `CONNECT`).
    pub fn on_stream_event(&mut self, fd: RawFd, set: EventSet) {
        if self.pending_host.contains_key(&fd) {
            self.read_connect_line(fd);
            return;
        }
        let Some(&key) = self.conn_fds.get(&fd) else {
            // A socket dropped earlier in this round of the event loop.
            return;
        };
        if let Some(conn) = self.conns.get_mut(&key) {
            let outcome = conn.on_host_event(set);
            self.settle(key, outcome);
        }
    }

    /// Reads the `CONNECT` line a byte at a time (never past the newline: what follows is
    /// payload for the guest, read once the guest accepted).
    fn read_connect_line(&mut self, fd: RawFd) {
        let Some(p) = self.pending_host.get_mut(&fd) else {
            return;
        };
        let port = loop {
            if p.line.len() >= CONNECT_LINE_MAX {
                break Err("line too long");
            }
            let mut byte = [0u8; 1];
            match (&p.stream).read(&mut byte) {
                Ok(0) => break Err("closed before a whole line"),
                Ok(_) => {
                    p.line.push(byte[0]);
                    if byte[0] == b'\n' {
                        break parse_connect(&p.line).ok_or("not `CONNECT <port>`");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break Err("read failed"),
            }
        };
        let Some(p) = self.pending_host.remove(&fd) else {
            return;
        };
        let port = match port {
            Ok(port) if self.conns.len() < MAX_CONNECTIONS => port,
            Ok(_) => {
                warn!("virtio-vsock: {MAX_CONNECTIONS} connections open; host CONNECT refused");
                self.metrics.inc(Counter::Refused);
                self.dropped.push((p.stream, p.registered));
                return;
            }
            Err(why) => {
                debug!("virtio-vsock: host connection closed: {why}");
                self.metrics.inc(Counter::Refused);
                self.dropped.push((p.stream, p.registered));
                return;
            }
        };
        let key = ConnKey {
            local_port: self.allocate_local_port(),
            peer_port: port,
        };
        debug!(
            "virtio-vsock: host CONNECT to guest port {port} as host port {}",
            key.local_port
        );
        let mut conn = Connection::host_initiated(p.stream);
        conn.registered = p.registered.then_some(EventSet::IN);
        self.conn_fds.insert(fd, key);
        self.conns.insert(key, conn);
        self.settle(key, Outcome::Keep);
    }

    fn allocate_local_port(&mut self) -> u32 {
        loop {
            let port = self.next_local_port;
            self.next_local_port = if port >= i32::MAX as u32 {
                FIRST_LOCAL_PORT
            } else {
                port + 1
            };
            // At most MAX_CONNECTIONS ports are taken out of 2^30: this ends quickly.
            if self.local_ports.insert(port) {
                return port;
            }
        }
    }

    // ---- bookkeeping ------------------------------------------------------------------

    /// Applies what a connection asked for, then schedules it for RX if it has something
    /// for the guest and marks its interest for the next sync.
    fn settle(&mut self, key: ConnKey, outcome: Outcome) {
        match outcome {
            Outcome::Keep => {}
            Outcome::Remove(reason) => {
                self.remove(key, reason);
                return;
            }
            Outcome::Kill(reason) => {
                if let Some(conn) = self.conns.get_mut(&key) {
                    conn.kill(reason);
                }
            }
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        if let Some(s) = conn.orphan.take() {
            self.conn_fds.remove(&s.as_raw_fd());
            self.dropped.push((s, conn.registered.is_some()));
            conn.registered = None;
        }
        if conn.has_pending_rx() && !conn.scheduled {
            conn.scheduled = true;
            self.rx_schedule.push_back(key);
        }
        self.dirty.push(key);
    }

    /// Forgets a connection (its host socket closes at the next sync).
    fn remove(&mut self, key: ConnKey, reason: Counter) {
        let Some(mut conn) = self.conns.remove(&key) else {
            return;
        };
        self.metrics.inc(reason);
        if conn.host_initiated {
            self.local_ports.remove(&key.local_port);
        }
        let registered = conn.registered.is_some();
        for s in [conn.stream.take(), conn.orphan.take()].into_iter().flatten() {
            self.conn_fds.remove(&s.as_raw_fd());
            self.dropped.push((s, registered));
        }
    }

    /// Brings the event loop in line with the muxer: dropped sockets leave it (then close),
    /// new host sockets join it, connections poll for what they now want, the timer ticks
    /// while a deadline is pending.
    pub fn sync(&mut self, ops: &mut EventOps) {
        let deadlines =
            !self.pending_host.is_empty() || self.conns.values().any(|c| c.state == State::Connecting);
        if deadlines != self.timer_armed {
            let result = if deadlines {
                self.timer.reset(TIMER_TICK, Some(TIMER_TICK))
            } else {
                self.timer.clear()
            };
            match result {
                Ok(()) => self.timer_armed = deadlines,
                Err(e) => warn!("virtio-vsock: cannot set the timer: {e}"),
            }
        }
        for (stream, registered) in self.dropped.drain(..) {
            if registered {
                if let Err(e) = ops.remove(Events::empty(&stream)) {
                    warn!("virtio-vsock: cannot unregister a host socket: {e:?}");
                }
            }
        }
        for p in self.pending_host.values_mut().filter(|p| !p.registered) {
            match ops.add(Events::with_data(&p.stream, STREAM_TOKEN, EventSet::IN)) {
                Ok(()) => p.registered = true,
                Err(e) => warn!("virtio-vsock: cannot register a host socket: {e:?}"),
            }
        }
        for key in std::mem::take(&mut self.dirty) {
            let Some(conn) = self.conns.get_mut(&key) else {
                continue;
            };
            let Some(stream) = conn.stream.as_ref() else {
                continue;
            };
            let want = conn.interest();
            let have = conn.registered;
            if want == have {
                continue;
            }
            let result = match (have, want) {
                (None, Some(set)) => ops.add(Events::with_data(stream, STREAM_TOKEN, set)),
                (Some(_), None) => ops.remove(Events::empty(stream)),
                (Some(_), Some(set)) => ops.modify(Events::with_data(stream, STREAM_TOKEN, set)),
                (None, None) => Ok(()),
            };
            match result {
                Ok(()) => conn.registered = want,
                Err(e) => warn!("virtio-vsock: cannot change the polling of {key:?} to {want:?}: {e:?}"),
            }
        }
    }
}

impl Drop for Muxer {
    /// Removes the socket file at `uds_path` if it is still the one this device made.
    fn drop(&mut self) {
        let now = std::fs::symlink_metadata(&self.uds_path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if now.is_some() && now == self.socket_file {
            let _ = std::fs::remove_file(&self.uds_path);
        }
    }
}

/// Parses `CONNECT <port>\n` (the word in any case, `\r\n` accepted).
fn parse_connect(line: &[u8]) -> Option<u32> {
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.trim_end_matches(['\n', '\r']).split(' ');
    let (verb, port) = (words.next()?, words.next()?);
    if words.next().is_some() || !verb.eq_ignore_ascii_case("connect") {
        return None;
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse().ok()
}

/// Connects a non-blocking unix stream socket: a listener whose backlog is full refuses
/// (`EAGAIN`) instead of stalling the event loop.
fn connect_nonblocking(path: &Path) -> std::io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(ErrorKind::InvalidInput.into());
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    // SAFETY: `addr` is a valid sockaddr_un of at least `len` bytes, alive for the call.
    let rc = unsafe {
        libc::connect(
            owned.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            len as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(UnixStream::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_lines() {
        assert_eq!(parse_connect(b"CONNECT 52\n"), Some(52));
        assert_eq!(parse_connect(b"connect 4294967295\r\n"), Some(u32::MAX));
        for bad in [
            &b"CONNECT\n"[..],
            b"CONNECT 4294967296\n",
            b"CONNECT -1\n",
            b"CONNECT +1\n",
            b"CONNECT 1 2\n",
            b"CONNECT  1\n",
            b"LISTEN 1\n",
            b"\xff\n",
        ] {
            assert_eq!(parse_connect(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn muxer(dir: &Path) -> Muxer {
        let path = dir.join("m.sock");
        let listener = UnixListener::bind(&path).unwrap();
        Muxer::new(3, path, listener, Arc::new(VsockMetrics::default())).unwrap()
    }

    fn header(src_port: u32, dst_port: u32, op: u16) -> TxHeader {
        TxHeader {
            src_cid: 3,
            dst_cid: HOST_CID,
            src_port,
            dst_port,
            len: 0,
            type_: TYPE_STREAM,
            op,
            flags: 0,
            buf_alloc: 0,
            fwd_cnt: 0,
        }
    }

    #[test]
    fn rst_queue_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = muxer(dir.path());
        for port in 0..RST_QUEUE_LEN as u32 + 10 {
            assert_eq!(m.rst_queue_full(), port >= RST_QUEUE_LEN as u32);
            m.send(&header(port, 9, op::RW), None::<&VolatileSlice<'_, ()>>);
        }
        assert_eq!(m.rst_queue.len(), RST_QUEUE_LEN);
        // An RST for an unknown connection is never answered.
        m.rst_queue.clear();
        m.send(&header(1, 9, op::RST), None::<&VolatileSlice<'_, ()>>);
        assert!(!m.has_pending_rx());
    }

    #[test]
    fn socket_file_is_removed_only_if_still_ours() {
        let dir = tempfile::tempdir().unwrap();
        let m = muxer(dir.path());
        let path = dir.path().join("m.sock");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        drop(m);
        assert!(path.exists(), "a file that replaced ours stays");
    }

    #[test]
    fn nonblocking_connect_refuses_without_listener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s_5");
        assert!(connect_nonblocking(&path).is_err());
        let _l = UnixListener::bind(&path).unwrap();
        connect_nonblocking(&path).unwrap();
        assert!(connect_nonblocking(&dir.path().join("x".repeat(200))).is_err());
    }
}
