//! The device's view of vsock packets, on top of `virtio-vsock`'s [`VsockPacket`] (see the
//! module documentation for why that crate): the header fields of a TX packet as plain
//! values, an RX buffer being filled, and the chain checks `virtio-vsock` leaves to us.

use std::ops::Deref;

use virtio_queue::DescriptorChain;
use virtio_vsock::packet::{PKT_HEADER_SIZE, VsockPacket};
use vm_memory::bitmap::BitmapSlice;
use vm_memory::{Bytes, GuestAddress, GuestMemory, VolatileSlice};

use super::{HOST_CID, TYPE_STREAM};

/// Why a chain cannot be used at all (the queue is malformed, the device stops).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChainError {
    /// A descriptor of the chain is `VIRTQ_DESC_F_INDIRECT`, which the device does not offer.
    #[error(
        "descriptor chain at head {0} uses an indirect table, but VIRTIO_F_INDIRECT_DESC was not offered"
    )]
    Indirect(u16),
    /// The descriptor table could not be read where the chain says it is.
    #[error("descriptor table entry {0} is unreadable")]
    Unreadable(u16),
}

/// virtio-queue's chain iterator follows `VIRTQ_DESC_F_INDIRECT` whatever was negotiated;
/// the device never offers indirect descriptors, so a chain whose first two entries in the
/// queue's own table (all a vsock packet uses) carry the flag is refused, as virtio-blk does.
/// The table is read directly: the iterator would already have followed the flag.
pub(crate) fn check_chain<M>(
    chain: &DescriptorChain<M>,
    mem: &impl GuestMemory,
    desc_table: GuestAddress,
    queue_size: u16,
) -> Result<(), ChainError>
where
    M: Deref + Clone,
    M::Target: GuestMemory,
{
    let indirect = virtio_bindings::virtio_ring::VRING_DESC_F_INDIRECT as u16;
    let next_flag = virtio_bindings::virtio_ring::VRING_DESC_F_NEXT as u16;
    let mut index = chain.head_index();
    for _ in 0..2 {
        if index >= queue_size {
            // An invalid index: the packet parser finds the chain too short.
            break;
        }
        let at = desc_table
            .0
            .checked_add(u64::from(index) * 16 + 12)
            .ok_or(ChainError::Unreadable(index))?;
        let flags_next: [u16; 2] = mem
            .read_obj(GuestAddress(at))
            .map_err(|_| ChainError::Unreadable(index))?;
        let (flags, next) = (u16::from_le(flags_next[0]), u16::from_le(flags_next[1]));
        if flags & indirect != 0 {
            return Err(ChainError::Indirect(chain.head_index()));
        }
        if flags & next_flag == 0 {
            break;
        }
        index = next;
    }
    Ok(())
}

/// The fields of a guest (TX) packet header, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxHeader {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub type_: u16,
    pub op: u16,
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

impl TxHeader {
    /// The header `virtio-vsock` parsed.
    pub fn of<B: BitmapSlice>(pkt: &VsockPacket<'_, B>) -> Self {
        Self {
            src_cid: pkt.src_cid(),
            dst_cid: pkt.dst_cid(),
            src_port: pkt.src_port(),
            dst_port: pkt.dst_port(),
            len: pkt.len(),
            type_: pkt.type_(),
            op: pkt.op(),
            flags: pkt.flags(),
            buf_alloc: pkt.buf_alloc(),
            fwd_cnt: pkt.fwd_cnt(),
        }
    }

    /// The header of a chain `virtio-vsock` refused, when the head descriptor is
    /// device-readable and holds a whole header: then the connection it names can be reset.
    pub fn peek<M>(chain: &DescriptorChain<M>, mem: &impl GuestMemory) -> Option<Self>
    where
        M: Deref + Clone,
        M::Target: GuestMemory,
    {
        let head = chain.clone().next()?;
        if head.is_write_only() || (head.len() as usize) < PKT_HEADER_SIZE {
            return None;
        }
        let mut raw = [0u8; PKT_HEADER_SIZE];
        mem.read_slice(&mut raw, head.addr()).ok()?;
        let u16_at = |o: usize| u16::from_le_bytes([raw[o], raw[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
        let u64_at = |o: usize| u64::from(u32_at(o)) | (u64::from(u32_at(o + 4)) << 32);
        Some(Self {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            type_: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
        })
    }
}

/// The header of a packet for the guest; CIDs and type are filled in by [`RxPacket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RxHeader {
    pub local_port: u32,
    pub peer_port: u32,
    pub op: u16,
    pub flags: u32,
    pub len: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

/// An RX buffer the guest gave, being filled with one packet.
pub(crate) struct RxPacket<'a, B: BitmapSlice> {
    pkt: VsockPacket<'a, B>,
    guest_cid: u64,
}

impl<'a, B: BitmapSlice> RxPacket<'a, B> {
    pub fn new(pkt: VsockPacket<'a, B>, guest_cid: u64) -> Self {
        Self { pkt, guest_cid }
    }

    /// Payload bytes the buffer can take.
    pub fn data_room(&self) -> u32 {
        self.pkt
            .data_slice()
            .map_or(0, |s| u32::try_from(s.len()).unwrap_or(u32::MAX))
    }

    /// The first `len` bytes of the data area (`len` ≤ [`RxPacket::data_room`]).
    pub fn data_slice(&self, len: u32) -> Option<VolatileSlice<'a, B>> {
        self.pkt.data_slice()?.subslice(0, len as usize).ok()
    }

    /// Writes the whole header into guest memory.
    pub fn write_header(&mut self, hdr: &RxHeader) {
        // The header slice is exactly PKT_HEADER_SIZE bytes (virtio-vsock checked it).
        let _ = self.pkt.set_header_from_raw(&[0u8; PKT_HEADER_SIZE]);
        self.pkt
            .set_src_cid(HOST_CID)
            .set_dst_cid(self.guest_cid)
            .set_src_port(hdr.local_port)
            .set_dst_port(hdr.peer_port)
            .set_type(TYPE_STREAM)
            .set_op(hdr.op)
            .set_flags(hdr.flags)
            .set_len(hdr.len)
            .set_buf_alloc(hdr.buf_alloc)
            .set_fwd_cnt(hdr.fwd_cnt);
    }
}
