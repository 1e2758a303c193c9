//! Device-model fuzzing on stable Rust: virtio-blk requests and the virtio-mmio register
//! file, through the devices' real entry points (`MmioTransport::bus_write`/`bus_read`,
//! `QueueNotify`, the block device's event-loop subscriber), each checked against a model
//! after every step (see `fuzzer/block.rs` and `fuzzer/mmio.rs` for what is generated and
//! checked); and virtio-vsock with real host sockets, checked against invariants after
//! every round (`fuzzer/vsock.rs`: no busy loop, writes only where the device may write,
//! well-formed used rings and RX headers, limits, failure reporting); and virtio-net on a
//! real TAP in a network namespace of each test thread's own, its far end raw packet
//! sockets (`fuzzer/net.rs`: the same kind of invariants, and every TX chain counted).
//!
//! - `cargo test -p vmctl-devices --test fuzz`: proptest runs a small budget of each
//!   (about 10 s in a debug build), shrinking any failure to a small input.
//! - `VMCTL_SOAK_CASES=10000000 cargo test --release -p vmctl-devices --test fuzz --
//!   --ignored soak_ --nocapture`: the same generators fed by a seeded RNG on every core;
//!   `VMCTL_SOAK_CASES` is the total over the block and register soak tests (9 in 10 go to
//!   the block device, whose cases reach deeper); the vsock soak runs a tenth as many on
//!   top, and the net soak as many again. `VMCTL_SOAK_SEED` replays a run; a failure
//!   prints the input as hex for [`replay_block`] / [`replay_mmio`] / [`replay_vsock`] /
//!   [`replay_net`].

mod fuzzer;

use std::cell::RefCell;

use fuzzer::block::{self, BlockHarness};
use fuzzer::mmio::{self, MmioHarness};
use fuzzer::net::{self, NetHarness};
use fuzzer::soak;
use fuzzer::vsock::{self, VsockHarness};
use proptest::prelude::*;

thread_local! {
    static BLOCK_RW: RefCell<BlockHarness> = RefCell::new(BlockHarness::new(false));
    static BLOCK_RO: RefCell<BlockHarness> = RefCell::new(BlockHarness::new(true));
    static MMIO: RefCell<MmioHarness> = RefCell::new(MmioHarness::new());
    static VSOCK: RefCell<VsockHarness> = RefCell::new(VsockHarness::new());
    static NET: RefCell<NetHarness> = RefCell::new(NetHarness::new());
}

/// Runs one block case; on failure, replays it with tracing for the report.
fn block_case(h: &mut BlockHarness, data: &[u8]) -> Result<bool, String> {
    block::run_case(h, data, false).map_err(|_| {
        let f = match block::run_case(h, data, true) {
            Err(f) => f,
            Ok(_) => block::Failure {
                message: "failed once, passed on replay (state leaked between cases?)".into(),
                trace: Vec::new(),
            },
        };
        format!("{}\ntrace:\n  {}", f.message, f.trace.join("\n  "))
    })
}

fn mmio_case(h: &mut MmioHarness, data: &[u8]) -> Result<bool, String> {
    mmio::run_case(h, data, false).map(|()| true).map_err(|_| {
        let (message, trace) = mmio::run_case(h, data, true).err().unwrap_or_default();
        format!("{message}\ntrace:\n  {}", trace.join("\n  "))
    })
}

fn vsock_case(h: &mut VsockHarness, data: &[u8]) -> Result<bool, String> {
    vsock::run_case(h, data, false).map_err(|_| {
        let f = match vsock::run_case(h, data, true) {
            Err(f) => f,
            Ok(_) => vsock::Failure {
                message: "failed once, passed on replay (state leaked between cases?)".into(),
                trace: Vec::new(),
            },
        };
        format!("{}\ntrace:\n  {}", f.message, f.trace.join("\n  "))
    })
}

fn net_case(h: &mut NetHarness, data: &[u8]) -> Result<bool, String> {
    net::run_case(h, data, false).map_err(|first| {
        // The kernel's timing is part of a net case: a replay may not fail the same way.
        match net::run_case(h, data, true) {
            Err(f) => format!("{}\ntrace:\n  {}", f.message, f.trace.join("\n  ")),
            Ok(_) => format!("{} (not reproduced on replay)", first.message),
        }
    })
}

/// Replays a net input printed by a soak failure.
#[allow(dead_code)]
fn replay_net(hex: &str) -> Result<bool, String> {
    net_case(&mut NetHarness::new(), &soak::from_hex(hex))
}

/// Replays a vsock input printed by a soak failure.
#[allow(dead_code)]
fn replay_vsock(hex: &str) -> Result<bool, String> {
    vsock_case(&mut VsockHarness::new(), &soak::from_hex(hex))
}

/// Replays a block input printed by a soak failure.
#[allow(dead_code)]
fn replay_block(hex: &str, read_only: bool) -> Result<bool, String> {
    block_case(&mut BlockHarness::new(read_only), &soak::from_hex(hex))
}

/// Replays a register-sequence input printed by a soak failure.
#[allow(dead_code)]
fn replay_mmio(hex: &str) -> Result<bool, String> {
    mmio_case(&mut MmioHarness::new(), &soak::from_hex(hex))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 20_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn virtio_blk_requests_match_the_model(
        data in proptest::collection::vec(any::<u8>(), 0..1536),
        read_only in proptest::bool::weighted(0.2),
    ) {
        let harness = if read_only { &BLOCK_RO } else { &BLOCK_RW };
        let r = harness.with(|h| block_case(&mut h.borrow_mut(), &data));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn mmio_register_sequences_match_the_model(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let r = MMIO.with(|h| mmio_case(&mut h.borrow_mut(), &data));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

proptest! {
    // A vsock case makes real sockets and runs the event loop several times: fewer cases
    // for the same few seconds as the others.
    #![proptest_config(ProptestConfig {
        cases: 3_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn virtio_vsock_guests_and_host_peers_keep_the_invariants(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let r = VSOCK.with(|h| vsock_case(&mut h.borrow_mut(), &data));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

proptest! {
    // A net case sends real frames through a TAP and runs the event loop several times.
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn virtio_net_guests_and_the_tap_keep_the_invariants(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let r = NET.with(|h| net_case(&mut h.borrow_mut(), &data));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn report(name: &str, r: &soak::Report, interesting: &str) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "{name}: {} cases ({} {interesting}) in {secs:.1} s, {:.0} cases/s: {}",
        r.cases,
        r.interesting,
        r.cases as f64 / secs.max(1e-9),
        match &r.failure {
            None => "no failures".to_owned(),
            Some(_) => "FAILED".to_owned(),
        }
    );
    if let Some(f) = &r.failure {
        panic!("{name} found a failure:\n{f}");
    }
}

#[test]
#[ignore = "soak: run with --ignored soak_ and VMCTL_SOAK_CASES"]
fn soak_virtio_blk_requests() {
    let total = soak::cases_from_env(1_000_000) / 10 * 9;
    let seed = soak::seed_from_env();
    println!("soak_virtio_blk_requests: {total} cases, seed {seed}");
    let r = soak::run(
        total,
        threads(),
        seed,
        1536,
        || (BlockHarness::new(false), BlockHarness::new(true), 0u64),
        |(rw, ro, n), data| {
            *n += 1;
            // One case in five on the read-only drive.
            if *n % 5 == 0 {
                block_case(ro, data)
            } else {
                block_case(rw, data)
            }
        },
    );
    report("soak_virtio_blk_requests", &r, "served an active queue");
}

#[test]
#[ignore = "soak: run with --ignored soak_ and VMCTL_SOAK_CASES"]
fn soak_mmio_register_sequences() {
    let total = soak::cases_from_env(1_000_000) / 10;
    let seed = soak::seed_from_env();
    println!("soak_mmio_register_sequences: {total} cases, seed {seed}");
    let r = soak::run(total, threads(), seed, 512, MmioHarness::new, mmio_case);
    report("soak_mmio_register_sequences", &r, "sequences");
}

#[test]
#[ignore = "soak: run with --ignored soak_ and VMCTL_SOAK_CASES"]
fn soak_virtio_vsock() {
    let total = soak::cases_from_env(1_000_000) / 10;
    let seed = soak::seed_from_env();
    println!("soak_virtio_vsock: {total} cases, seed {seed}");
    let r = soak::run(total, threads(), seed, 2048, VsockHarness::new, vsock_case);
    report("soak_virtio_vsock", &r, "established a connection");
}

#[test]
#[ignore = "soak: run with --ignored soak_ and VMCTL_SOAK_CASES"]
fn soak_virtio_net() {
    let total = soak::cases_from_env(1_000_000) / 10;
    let seed = soak::seed_from_env();
    println!("soak_virtio_net: {total} cases, seed {seed}");
    let r = soak::run(total, threads(), seed, 2048, NetHarness::new, net_case);
    report("soak_virtio_net", &r, "moved a frame");
}
