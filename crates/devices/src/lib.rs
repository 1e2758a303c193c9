//! Virtio devices for `vmctl-vmm`, independent of KVM.
//!
//! What is here:
//! - [`virtio::VirtioDevice`]: the trait every device implements;
//! - [`virtio::mmio::MmioTransport`]: the virtio-mmio (version 2) register window;
//! - [`virtio::block::Block`]: virtio-blk on a host file or block device;
//! - [`virtio::net::Net`]: virtio-net on a TAP device (opened by name or passed in);
//! - [`virtio::vsock::Vsock`]: virtio-vsock with the host side on unix sockets (Firecracker's
//!   "hybrid vsock" protocol: `CONNECT <port>\n` on `uds_path`, `<uds_path>_<port>` for
//!   guest-initiated connections);
//! - [`virtio::VirtioInterrupt`]: interrupt status bits plus the eventfd behind the irqfd.
//!
//! Nothing here talks to KVM. The VMM wires a device like this (see the README for code):
//!
//! 1. `Block::new(BlockConfig { .. })`, wrapped in `Arc<Mutex<_>>`;
//! 2. `MmioTransport::new(guest_memory, block.clone())`, placed on the MMIO bus at
//!    `base..base + MMIO_WINDOW_SIZE`; bus reads/writes go to `bus_read`/`bus_write` with
//!    the offset from `base`;
//! 3. for each queue `i`, `transport.queue_evts()[i]` registered as a KVM ioeventfd at
//!    `base + MMIO_NOTIFY_OFFSET`, 4 bytes, datamatch `i`;
//! 4. `transport.interrupt().irq_evt()` registered as a KVM irqfd for the device's GSI;
//! 5. `block` added to the `event_manager::EventManager` as a subscriber (it registers its
//!    queue eventfds itself and does all I/O on the event-loop thread);
//! 6. `block.lock().metrics().clone()` kept for the metrics endpoint;
//! 7. `virtio_mmio.device=4K@0x<base>:<gsi>` appended to the kernel command line.
//!
//! Test helpers (a register-level driver, a guest-side queue, a dummy device) are in
//! `virtio::test_utils`, behind the `test-utils` feature.

#![deny(missing_docs)]

pub mod virtio;

/// The guest memory type the devices work on (the VMM must use the same).
pub type GuestMemoryMmap = vm_memory::GuestMemoryMmap<()>;

/// The README's usage snippet, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
