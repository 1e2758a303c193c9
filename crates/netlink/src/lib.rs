//! A synchronous rtnetlink socket: one request, its answer (an ACK or a dump). Blocking
//! calls on a socket opened by the calling thread, so the socket lives in that thread's
//! network namespace (tests rely on it) and a request costs one round trip, no runtime.
//! Shared by the host side (crates/native) and the guest agent, which has no async
//! runtime at boot and must stay a small static binary.

use std::io;

pub use netlink_packet_core;
pub use netlink_packet_route;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

const RECV_BUFFER: usize = 64 * 1024;

pub struct RtSocket {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

impl RtSocket {
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // The kernel's own words on a refused request, when it has them.
        let _ = socket.set_ext_ack(true);
        Ok(Self {
            socket,
            sequence: 0,
            buffer: vec![0; RECV_BUFFER],
        })
    }

    /// Sends a request (`flags` beyond REQUEST|ACK: CREATE, EXCL...) and collects what
    /// answers it up to its ACK; a NACK is the kernel's errno.
    pub fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.exchange(message, NLM_F_REQUEST | NLM_F_ACK | flags)
    }

    /// Sends a dump request and collects every message until DONE.
    pub fn dump(&mut self, message: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.exchange(message, NLM_F_REQUEST | NLM_F_DUMP)
    }

    fn exchange(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        let sequence = self.send(message, flags)?;
        let mut out = Vec::new();
        loop {
            for reply in self.receive(sequence)? {
                match reply.payload {
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(out),
                    _ => {}
                }
            }
        }
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        Ok(self.sequence)
    }

    /// One datagram's messages that answer `sequence` (others, stale, are dropped).
    fn receive(&mut self, sequence: u32) -> io::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        let size = self.socket.recv(&mut &mut self.buffer[..], 0)?;
        let mut messages = Vec::new();
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buffer[offset..size])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {e}")))?;
            let length = message.header.length as usize;
            if message.header.sequence_number == sequence {
                messages.push(message);
            }
            if length == 0 {
                break;
            }
            offset += (length + 3) & !3;
        }
        Ok(messages)
    }
}
