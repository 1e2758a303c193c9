//! One virtio-blk request: parsing a descriptor chain and carrying it out.
//!
//! The chain is read as the spec frames it (5.2.6): a device-readable part (the 16-byte
//! header `type, reserved, sector`, then for `OUT` the data) followed by a device-writable
//! part (for `IN`/`GET_ID` the data) whose very last byte is the status. No assumption is
//! made about how the driver splits those bytes over descriptors.
//!
//! Every guest address is checked against guest memory before any host I/O starts, and data
//! moves with `pread`/`pwrite` directly between the backing file and guest memory.

use std::fs::File;
use std::os::fd::AsRawFd;

use log::{debug, warn};
use virtio_queue::DescriptorChain;
use virtio_queue::desc::split::Descriptor;
use vm_memory::bitmap::BitmapSlice;
use vm_memory::{
    Bytes, GuestAddress, GuestMemory, GuestMemoryError, Permissions, ReadVolatile, VolatileMemoryError,
    VolatileSlice, WriteVolatile,
};

use super::metrics::BlockMetrics;
use super::{DRIVE_ID_LEN, SECTOR_SHIFT, SECTOR_SIZE, request_status, request_type};
use crate::GuestMemoryMmap;
use crate::virtio::{BadChain, direct_chain};

/// Size of the request header (`struct virtio_blk_outhdr`).
const HEADER_LEN: u64 = 16;

/// Why a request failed. [`RequestError::is_fatal`] errors mean the queue itself is broken.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The chain has an invalid descriptor index, loops, is longer than the queue, or its
    /// descriptors cannot be read: the queue is unusable.
    #[error("descriptor chain at head {0} is malformed (invalid index, loop, too long or unreadable)")]
    MalformedChain(u16),
    /// The chain uses an indirect descriptor table, which the device does not offer
    /// (`VIRTIO_F_INDIRECT_DESC`): the driver broke the negotiation, the queue is unusable.
    #[error(
        "descriptor chain at head {0} uses an indirect table, but VIRTIO_F_INDIRECT_DESC was not offered"
    )]
    IndirectDescriptor(u16),
    /// The last descriptor is not device-writable or is empty, so no status can be written.
    #[error("the status descriptor is not device-writable or has no room")]
    NoStatus,
    /// The status byte lies outside guest memory.
    #[error("the status byte at {0:#x} is outside guest memory")]
    StatusOutsideMemory(u64),
    /// Fewer than 16 device-readable bytes.
    #[error("request header is {0} bytes, 16 expected")]
    HeaderTooShort(u64),
    /// A device-readable descriptor follows a device-writable one.
    #[error("device-readable descriptor after a device-writable one")]
    Framing,
    /// A buffer lies (partly) outside guest memory.
    #[error("buffer {addr:#x}+{len:#x} is outside guest memory")]
    BufferOutsideMemory {
        /// Guest address of the buffer.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// Data length is not a whole number of sectors.
    #[error("data length {0} is not a multiple of 512")]
    DataLength(u64),
    /// Sectors past the end of the drive.
    #[error("sectors {sector}+{sectors} are beyond the capacity of {capacity} sectors")]
    OutOfRange {
        /// First sector.
        sector: u64,
        /// Number of sectors.
        sectors: u64,
        /// Drive capacity in sectors.
        capacity: u64,
    },
    /// Write to a read-only drive.
    #[error("write to a read-only drive")]
    ReadOnly,
    /// `GET_ID` with no room for the id.
    #[error("GET_ID without a device-writable data buffer")]
    GetIdBuffer,
    /// Unknown request type.
    #[error("unsupported request type {0}")]
    Unsupported(u32),
    /// Moving data between the file and guest memory failed.
    #[error("I/O on the backing file failed: {0}")]
    Transfer(#[source] GuestMemoryError),
    /// `fsync` failed.
    #[error("flush of the backing file failed: {0}")]
    Flush(#[source] std::io::Error),
}

impl RequestError {
    /// Whether the queue is broken (the device must stop and ask for a reset).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            RequestError::MalformedChain(_) | RequestError::IndirectDescriptor(_)
        )
    }

    /// The status byte that answers this error.
    pub fn status(&self) -> u8 {
        match self {
            RequestError::Unsupported(_) => request_status::UNSUPP,
            _ => request_status::IOERR,
        }
    }
}

/// The drive as requests see it.
pub(crate) struct Disk<'a> {
    pub file: &'a File,
    /// Capacity in sectors.
    pub capacity: u64,
    pub read_only: bool,
    /// The `GET_ID` answer: the drive id, NUL-padded.
    pub id: &'a [u8; DRIVE_ID_LEN],
}

/// A contiguous piece of guest memory taken from one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    addr: GuestAddress,
    len: u32,
}

/// Executes the request in `chain` and returns the number of bytes written into the
/// driver's buffers (the used-ring length), status byte included; 0 when no status could be
/// written. Only a fatal error (malformed chain) is returned as `Err`; every other failure
/// is answered through the status byte and counted in `metrics.errors`.
/// `desc_table` is the queue's descriptor table, where indirect descriptors are looked for.
pub(crate) fn execute(
    mem: &GuestMemoryMmap,
    chain: DescriptorChain<&GuestMemoryMmap>,
    desc_table: GuestAddress,
    disk: &Disk<'_>,
    metrics: &BlockMetrics,
) -> Result<u32, RequestError> {
    let descs = collect_chain(mem, chain, desc_table)?;
    let status_addr = match status_address(mem, &descs) {
        Ok(addr) => addr,
        Err(e) => {
            warn!("virtio-blk: request cannot be answered: {e}");
            metrics.error();
            return Ok(0);
        }
    };
    let (status, data_len) = match run(mem, &descs, disk, metrics) {
        Ok(n) => (request_status::OK, n),
        Err(e) => {
            debug!("virtio-blk: request failed: {e}");
            metrics.error();
            (e.status(), 0)
        }
    };
    if let Err(e) = mem.write_obj(status, status_addr) {
        // Checked above; only reachable if memory vanished underneath us.
        warn!("virtio-blk: cannot write status: {e}");
        metrics.error();
        return Ok(0);
    }
    Ok(data_len + 1)
}

/// The chain's descriptors, none of them indirect (`direct_chain`), as request errors.
fn collect_chain(
    mem: &GuestMemoryMmap,
    chain: DescriptorChain<&GuestMemoryMmap>,
    desc_table: GuestAddress,
) -> Result<Vec<Descriptor>, RequestError> {
    direct_chain(mem, chain, desc_table).map_err(|bad| match bad {
        BadChain::Malformed(head) => RequestError::MalformedChain(head),
        BadChain::Indirect(head) => RequestError::IndirectDescriptor(head),
    })
}

/// The status byte is the last byte of the last descriptor, which must be device-writable.
fn status_address(mem: &GuestMemoryMmap, descs: &[Descriptor]) -> Result<GuestAddress, RequestError> {
    let last = descs.last().ok_or(RequestError::NoStatus)?;
    if !last.is_write_only() || last.len() == 0 {
        return Err(RequestError::NoStatus);
    }
    let addr = last
        .addr()
        .0
        .checked_add(u64::from(last.len()) - 1)
        .ok_or(RequestError::StatusOutsideMemory(u64::MAX))?;
    if !GuestMemory::check_range(mem, GuestAddress(addr), 1, Permissions::Write) {
        return Err(RequestError::StatusOutsideMemory(addr));
    }
    Ok(GuestAddress(addr))
}

fn run(
    mem: &GuestMemoryMmap,
    descs: &[Descriptor],
    disk: &Disk<'_>,
    metrics: &BlockMetrics,
) -> Result<u32, RequestError> {
    let first_writable = descs
        .iter()
        .position(Descriptor::is_write_only)
        .ok_or(RequestError::NoStatus)?;
    if descs[first_writable..].iter().any(|d| !d.is_write_only()) {
        return Err(RequestError::Framing);
    }
    let to_segment = |d: &Descriptor| Segment {
        addr: d.addr(),
        len: d.len(),
    };
    let readable: Vec<Segment> = descs[..first_writable].iter().map(to_segment).collect();
    let mut writable: Vec<Segment> = descs[first_writable..].iter().map(to_segment).collect();
    // The status byte is not data.
    if let Some(last) = writable.last_mut() {
        last.len -= 1;
    }

    let readable_len = total_len(&readable);
    if readable_len < HEADER_LEN {
        return Err(RequestError::HeaderTooShort(readable_len));
    }
    let mut header = [0u8; HEADER_LEN as usize];
    gather(mem, &readable, &mut header)?;
    let req_type = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let sector = u64::from_le_bytes([
        header[8], header[9], header[10], header[11], header[12], header[13], header[14], header[15],
    ]);

    match req_type {
        request_type::IN => {
            let len = check_data(mem, &writable, sector, disk.capacity)?;
            let mut file = FileAt::new(disk.file, sector << SECTOR_SHIFT);
            for seg in nonempty(&writable) {
                mem.read_exact_volatile_from(seg.addr, &mut file, seg.len as usize)
                    .map_err(RequestError::Transfer)?;
            }
            metrics.read_done(len);
            // Bounded by the chain's total length, which DescriptorChain keeps below 4 GiB.
            Ok(u32::try_from(len).unwrap_or(u32::MAX))
        }
        request_type::OUT => {
            if disk.read_only {
                return Err(RequestError::ReadOnly);
            }
            let data = skip(&readable, HEADER_LEN);
            let len = check_data(mem, &data, sector, disk.capacity)?;
            let mut file = FileAt::new(disk.file, sector << SECTOR_SHIFT);
            for seg in nonempty(&data) {
                mem.write_all_volatile_to(seg.addr, &mut file, seg.len as usize)
                    .map_err(RequestError::Transfer)?;
            }
            metrics.write_done(len);
            Ok(0)
        }
        request_type::FLUSH => {
            if !disk.read_only {
                disk.file.sync_all().map_err(RequestError::Flush)?;
            }
            metrics.flush_done();
            Ok(0)
        }
        request_type::GET_ID => {
            let room = total_len(&writable);
            if room == 0 {
                return Err(RequestError::GetIdBuffer);
            }
            let n = room.min(DRIVE_ID_LEN as u64) as usize;
            check_in_memory(mem, &writable)?;
            scatter(mem, &writable, &disk.id[..n])?;
            Ok(n as u32)
        }
        other => Err(RequestError::Unsupported(other)),
    }
}

/// Checks a data transfer: whole sectors, inside the drive, buffers inside guest memory.
/// Returns its length in bytes.
fn check_data(
    mem: &GuestMemoryMmap,
    segs: &[Segment],
    sector: u64,
    capacity: u64,
) -> Result<u64, RequestError> {
    let len = total_len(segs);
    if len % SECTOR_SIZE != 0 {
        return Err(RequestError::DataLength(len));
    }
    let sectors = len >> SECTOR_SHIFT;
    match sector.checked_add(sectors) {
        Some(end) if end <= capacity => {}
        _ => {
            return Err(RequestError::OutOfRange {
                sector,
                sectors,
                capacity,
            });
        }
    }
    check_in_memory(mem, segs)?;
    Ok(len)
}

fn check_in_memory(mem: &GuestMemoryMmap, segs: &[Segment]) -> Result<(), RequestError> {
    for seg in nonempty(segs) {
        if !GuestMemory::check_range(mem, seg.addr, seg.len as usize, Permissions::ReadWrite) {
            return Err(RequestError::BufferOutsideMemory {
                addr: seg.addr.0,
                len: seg.len,
            });
        }
    }
    Ok(())
}

fn nonempty(segs: &[Segment]) -> impl Iterator<Item = &Segment> {
    segs.iter().filter(|s| s.len > 0)
}

fn total_len(segs: &[Segment]) -> u64 {
    segs.iter().map(|s| u64::from(s.len)).sum()
}

/// The segments that remain after the first `n` bytes.
fn skip(segs: &[Segment], mut n: u64) -> Vec<Segment> {
    let mut out = Vec::with_capacity(segs.len());
    for seg in segs {
        let len = u64::from(seg.len);
        if n >= len {
            n -= len;
            continue;
        }
        out.push(Segment {
            addr: GuestAddress(seg.addr.0.wrapping_add(n)),
            len: (len - n) as u32,
        });
        n = 0;
    }
    out
}

/// Reads the first `buf.len()` bytes spread over `segs` (the caller checked they exist).
fn gather(mem: &GuestMemoryMmap, segs: &[Segment], buf: &mut [u8]) -> Result<(), RequestError> {
    let mut done = 0;
    for seg in nonempty(segs) {
        if done == buf.len() {
            break;
        }
        let n = (seg.len as usize).min(buf.len() - done);
        mem.read_slice(&mut buf[done..done + n], seg.addr).map_err(|_| {
            RequestError::BufferOutsideMemory {
                addr: seg.addr.0,
                len: seg.len,
            }
        })?;
        done += n;
    }
    Ok(())
}

/// Writes `data` over the start of `segs` (the caller checked there is room).
fn scatter(mem: &GuestMemoryMmap, segs: &[Segment], data: &[u8]) -> Result<(), RequestError> {
    let mut done = 0;
    for seg in nonempty(segs) {
        if done == data.len() {
            break;
        }
        let n = (seg.len as usize).min(data.len() - done);
        mem.write_slice(&data[done..done + n], seg.addr)
            .map_err(|_| RequestError::BufferOutsideMemory {
                addr: seg.addr.0,
                len: seg.len,
            })?;
        done += n;
    }
    Ok(())
}

/// A file seen from a moving offset: `ReadVolatile`/`WriteVolatile` with `pread`/`pwrite`,
/// so data goes straight between the file and guest memory and the file position is never
/// used.
struct FileAt<'a> {
    file: &'a File,
    offset: u64,
}

impl<'a> FileAt<'a> {
    fn new(file: &'a File, offset: u64) -> Self {
        Self { file, offset }
    }

    fn offset(&self) -> Result<libc::off_t, VolatileMemoryError> {
        libc::off_t::try_from(self.offset)
            .map_err(|_| VolatileMemoryError::IOError(std::io::Error::from_raw_os_error(libc::EOVERFLOW)))
    }
}

impl ReadVolatile for FileAt<'_> {
    /// Fills as much of `buf` as the file has (short only at end of file).
    fn read_volatile<B: BitmapSlice>(
        &mut self,
        buf: &mut VolatileSlice<B>,
    ) -> Result<usize, VolatileMemoryError> {
        let guard = buf.ptr_guard_mut();
        let base = guard.as_ptr();
        let mut done = 0usize;
        while done < buf.len() {
            let offset = self.offset()?;
            // SAFETY: `base..base + buf.len()` is valid for writes by the invariants of
            // `VolatileSlice` (it points into mapped guest memory and the guard keeps the
            // mapping alive); `done < buf.len()` keeps the range in bounds. The fd is valid for
            // the lifetime of `self.file`.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    base.add(done).cast::<libc::c_void>(),
                    buf.len() - done,
                    offset,
                )
            };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                buf.bitmap().mark_dirty(0, buf.len());
                return Err(VolatileMemoryError::IOError(err));
            }
            if n == 0 {
                break;
            }
            let n = n as usize;
            done += n;
            self.offset += n as u64;
        }
        buf.bitmap().mark_dirty(0, done);
        Ok(done)
    }
}

impl WriteVolatile for FileAt<'_> {
    fn write_volatile<B: BitmapSlice>(
        &mut self,
        buf: &VolatileSlice<B>,
    ) -> Result<usize, VolatileMemoryError> {
        let offset = self.offset()?;
        let guard = buf.ptr_guard();
        // SAFETY: `guard.as_ptr()..+buf.len()` is valid for reads by the invariants of
        // `VolatileSlice`; the fd is valid for the lifetime of `self.file`.
        let n = unsafe {
            libc::pwrite(
                self.file.as_raw_fd(),
                guard.as_ptr().cast::<libc::c_void>(),
                buf.len(),
                offset,
            )
        };
        if n < 0 {
            return Err(VolatileMemoryError::IOError(std::io::Error::last_os_error()));
        }
        let n = n as usize;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(addr: u64, len: u32) -> Segment {
        Segment {
            addr: GuestAddress(addr),
            len,
        }
    }

    #[test]
    fn skip_splits_segments() {
        let segs = [seg(0x1000, 10), seg(0x2000, 20)];
        assert_eq!(skip(&segs, 0), segs.to_vec());
        assert_eq!(skip(&segs, 4), vec![seg(0x1004, 6), seg(0x2000, 20)]);
        assert_eq!(skip(&segs, 10), vec![seg(0x2000, 20)]);
        assert_eq!(skip(&segs, 15), vec![seg(0x2005, 15)]);
        assert_eq!(skip(&segs, 30), vec![]);
        assert_eq!(skip(&segs, 99), vec![]);
    }

    #[test]
    fn gather_and_scatter_cross_segments() {
        let mem = crate::virtio::test_utils::guest_memory();
        let segs = [seg(0x1000, 3), seg(0x2000, 0), seg(0x3000, 13)];
        let data: Vec<u8> = (1..=16).collect();
        scatter(&mem, &segs, &data).unwrap();
        let mut back = [0u8; 16];
        gather(&mem, &segs, &mut back).unwrap();
        assert_eq!(&back[..], &data[..]);
        assert_eq!(mem.read_obj::<u8>(GuestAddress(0x3000)).unwrap(), 4);
    }

    #[test]
    fn file_at_reads_and_writes_at_offsets() {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 1024]).unwrap();
        let mem = crate::virtio::test_utils::guest_memory();
        mem.write_slice(&[9u8; 100], GuestAddress(0x1000)).unwrap();
        let mut w = FileAt::new(&f, 512);
        mem.write_all_volatile_to(GuestAddress(0x1000), &mut w, 100)
            .unwrap();
        assert_eq!(w.offset, 612);
        let mut r = FileAt::new(&f, 500);
        mem.read_exact_volatile_from(GuestAddress(0x4000), &mut r, 24)
            .unwrap();
        let mut back = [0u8; 24];
        mem.read_slice(&mut back, GuestAddress(0x4000)).unwrap();
        assert_eq!(&back[..12], &[7u8; 12]);
        assert_eq!(&back[12..], &[9u8; 12]);
        // Reading past the end of the file is a short read, reported as an error.
        let mut r = FileAt::new(&f, 1000);
        assert!(
            mem.read_exact_volatile_from(GuestAddress(0x4000), &mut r, 100)
                .is_err()
        );
    }

    #[test]
    fn error_statuses() {
        assert_eq!(RequestError::Unsupported(99).status(), request_status::UNSUPP);
        assert_eq!(RequestError::ReadOnly.status(), request_status::IOERR);
        assert!(RequestError::MalformedChain(0).is_fatal());
        assert!(RequestError::IndirectDescriptor(0).is_fatal());
        assert!(!RequestError::NoStatus.is_fatal());
    }
}
