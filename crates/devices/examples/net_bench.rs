//! virtio-net through the device model, one direction and frame size per run, for
//! `bench/vmm-net.bench.ts`: a guest driver (`NetDriver`, in guest memory, over the real
//! MMIO transport and event loop) against a real TAP in a network namespace of its own.
//! Prints one JSON line: `{"frames", "bytes", "secs", "dropped"}`.
//!
//! - `tx`: the driver keeps 16 frames in flight from buffers it wrote once; the device
//!   writes them to the TAP, where the namespace's stack drops them (not for it).
//! - `rx`: a thread sends frames out of the TAP from a raw packet socket as fast as it
//!   can; the device reads them into the driver's buffers, which the driver posts again.
//! - `--raw`: the same TAP traffic without the device model (write/read on the TAP fd from
//!   a plain buffer): the peer the device model is compared with.
//!
//! 1514-byte frames go without offloads; 65536-byte frames are TCP/IPv4 GSO frames with
//! checksum offload, which the driver accepts (`HOST_TSO4`, `GUEST_TSO4`).
//!
//! Usage: `net_bench tx|rx 1514|65536 SECONDS [--raw]` (root: it unshares its network
//! namespace).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vmctl_devices::virtio::VirtioDevice;
use vmctl_devices::virtio::net::tap::offload;
use vmctl_devices::virtio::net::tap::testing::{create_tap, enter_new_netns, packet_socket};
use vmctl_devices::virtio::net::test_driver::{
    GUEST_MAC, NetDriver, RX_BUF_MAX, TAP_NAME, packet_send, tcp4_frame,
};
use vmctl_devices::virtio::net::{NET_HDR_LEN, Tap};

const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: net_bench tx|rx 1514|65536 SECONDS [--raw]";
    let (dir, frame_len, secs) = match args.as_slice() {
        [d, f, s, ..] => (
            d.clone(),
            f.parse::<usize>().expect(usage),
            s.parse::<f64>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    let raw = args.iter().any(|a| a == "--raw");
    let big = frame_len > 1514;
    let duration = Duration::from_secs_f64(secs);

    enter_new_netns();
    create_tap(TAP_NAME);
    // A frame of exactly `frame_len` bytes; big ones are GSO frames.
    let (h, frame) = tcp4_frame(PEER_MAC, GUEST_MAC, frame_len - 54, if big { 1448 } else { 1500 });
    let mut hdr = [0u8; NET_HDR_LEN];
    if big {
        hdr[..10].copy_from_slice(&h);
    }
    let tap = Tap::open(TAP_NAME).expect("open the TAP");
    let (frames, bytes, dropped, took) = match (dir.as_str(), raw) {
        ("tx", false) => tx_device(tap, &hdr, &frame, big, duration),
        ("tx", true) => tx_raw(&tap, &hdr, &frame, duration),
        ("rx", raw) => rx(tap, &h, &frame, big, raw, duration),
        _ => panic!("{usage}"),
    };
    println!(
        "{{\"frames\":{frames},\"bytes\":{bytes},\"secs\":{},\"dropped\":{dropped}}}",
        took.as_secs_f64()
    );
}

fn driver(tap: Tap, big: bool) -> NetDriver {
    let basic = (1u64 << 32) | (1 << virtio_bindings::virtio_net::VIRTIO_NET_F_MAC);
    if big {
        NetDriver::with(tap, None, RX_BUF_MAX)
    } else {
        NetDriver::with(tap, Some(basic), 2048)
    }
}

fn tx_device(
    tap: Tap,
    hdr: &[u8; NET_HDR_LEN],
    frame: &[u8],
    big: bool,
    d: Duration,
) -> (u64, u64, u64, Duration) {
    let mut drv = driver(tap, big);
    drv.prefill_tx(hdr, frame);
    let start = Instant::now();
    let mut frames = 0u64;
    while start.elapsed() < d {
        while drv.post_tx(frame.len()) {}
        drv.kick(1);
        while drv.run_once(0) > 0 {}
        frames += u64::from(drv.tx_completed());
    }
    let took = start.elapsed();
    let m = drv.device.lock().unwrap().metrics().snapshot();
    assert_eq!(m.tx_packets, frames, "{m:?}");
    (frames, m.tx_bytes, m.tx_dropped, took)
}

fn tx_raw(tap: &Tap, hdr: &[u8; NET_HDR_LEN], frame: &[u8], d: Duration) -> (u64, u64, u64, Duration) {
    let iov = [
        libc::iovec {
            iov_base: hdr.as_ptr() as *mut libc::c_void,
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        },
    ];
    let start = Instant::now();
    let (mut frames, mut dropped) = (0u64, 0u64);
    while start.elapsed() < d {
        for _ in 0..16 {
            match tap.writev(&iov) {
                Ok(_) => frames += 1,
                Err(_) => dropped += 1,
            }
        }
    }
    (frames, frames * frame.len() as u64, dropped, start.elapsed())
}

fn rx(tap: Tap, h: &[u8; 10], frame: &[u8], big: bool, raw: bool, d: Duration) -> (u64, u64, u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut wire = Vec::new();
    if big {
        wire.extend_from_slice(h);
    }
    wire.extend_from_slice(frame);
    // The generator runs in this namespace too (threads inherit it).
    let sock = packet_socket(TAP_NAME, big);
    let generator = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = packet_send(&sock, &wire);
            }
        })
    };
    let result = if raw {
        rx_raw(&tap, big, d)
    } else {
        rx_device(tap, big, d)
    };
    stop.store(true, Ordering::Relaxed);
    generator.join().unwrap();
    result
}

fn rx_device(tap: Tap, big: bool, d: Duration) -> (u64, u64, u64, Duration) {
    let mut drv = driver(tap, big);
    let start = Instant::now();
    let (mut frames, mut bytes) = (0u64, 0u64);
    while start.elapsed() < d {
        drv.run_once(1);
        let (f, b) = drv.recycle_rx();
        if f > 0 {
            frames += f as u64;
            bytes += b - (f * NET_HDR_LEN) as u64;
            drv.kick(0);
        }
    }
    let took = start.elapsed();
    let m = drv.device.lock().unwrap().metrics().snapshot();
    assert!(!drv.device.lock().unwrap().needs_reset());
    (frames, bytes, m.rx_dropped, took)
}

fn rx_raw(tap: &Tap, big: bool, d: Duration) -> (u64, u64, u64, Duration) {
    if big {
        tap.set_offload(offload::CSUM | offload::TSO4 | offload::TSO6)
            .expect("TUNSETOFFLOAD");
    }
    let mut buf = vec![0u8; RX_BUF_MAX as usize];
    let iov = [libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    }];
    let fd = std::os::fd::AsRawFd::as_raw_fd(tap);
    let start = Instant::now();
    let (mut frames, mut bytes) = (0u64, 0u64);
    while start.elapsed() < d {
        match tap.readv(&iov) {
            Ok(n) => {
                frames += 1;
                bytes += (n - NET_HDR_LEN) as u64;
            }
            Err(_) => {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one pollfd.
                unsafe { libc::poll(&mut pfd, 1, 1) };
            }
        }
    }
    (frames, bytes, 0, start.elapsed())
}
