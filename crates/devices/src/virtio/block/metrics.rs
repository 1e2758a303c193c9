//! Block device counters, shared between the device (event-loop thread) and the VMM's
//! metrics endpoint.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Live counters of one block device. Cheap to update (relaxed atomics); read them with
/// [`BlockMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct BlockMetrics {
    read_requests: AtomicU64,
    write_requests: AtomicU64,
    flush_requests: AtomicU64,
    read_bytes: AtomicU64,
    write_bytes: AtomicU64,
    errors: AtomicU64,
    failed: AtomicBool,
    busy_ns: AtomicU64,
}

/// A copy of [`BlockMetrics`] at one moment (the fields of `vmm.v1.BlockMetrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockMetricsSnapshot {
    /// `IN` requests completed with `OK`.
    pub read_requests: u64,
    /// `OUT` requests completed with `OK`.
    pub write_requests: u64,
    /// `FLUSH` requests completed with `OK`.
    pub flush_requests: u64,
    /// Bytes read from the drive into guest memory.
    pub read_bytes: u64,
    /// Bytes written from guest memory to the drive.
    pub write_bytes: u64,
    /// Requests answered with an error status (or that could not be answered at all).
    pub errors: u64,
    /// The device stopped on a malformed queue and waits for the driver to reset it.
    pub failed: bool,
    /// Time the device model spent serving the queue (parsing requests, file I/O,
    /// completing them), in nanoseconds: what throughput "through the device model" is
    /// measured against.
    pub busy_ns: u64,
}

impl BlockMetrics {
    /// Copies every counter.
    pub fn snapshot(&self) -> BlockMetricsSnapshot {
        BlockMetricsSnapshot {
            read_requests: self.read_requests.load(Ordering::Relaxed),
            write_requests: self.write_requests.load(Ordering::Relaxed),
            flush_requests: self.flush_requests.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            write_bytes: self.write_bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn read_done(&self, bytes: u64) {
        self.read_requests.fetch_add(1, Ordering::Relaxed);
        self.read_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn write_done(&self, bytes: u64) {
        self.write_requests.fetch_add(1, Ordering::Relaxed);
        self.write_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn flush_done(&self) {
        self.flush_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_busy(&self, elapsed: std::time::Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub(crate) fn set_failed(&self, failed: bool) {
        self.failed.store(failed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_updates() {
        let m = BlockMetrics::default();
        m.read_done(512);
        m.read_done(1024);
        m.write_done(4096);
        m.flush_done();
        m.error();
        m.set_failed(true);
        m.add_busy(std::time::Duration::from_micros(3));
        m.add_busy(std::time::Duration::from_nanos(500));
        assert_eq!(
            m.snapshot(),
            BlockMetricsSnapshot {
                read_requests: 2,
                write_requests: 1,
                flush_requests: 1,
                read_bytes: 1536,
                write_bytes: 4096,
                errors: 1,
                failed: true,
                busy_ns: 3500,
            }
        );
    }
}
