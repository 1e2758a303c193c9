//! virtio-vsock through virtio-mmio, through real KVM: the `virtio-vsock` C guest
//! (tests/guests/tests/virtio_vsock.c) against `vmctl-devices`' `Vsock`, wired by the VMM in
//! the slot after the drives, with real unix sockets on the host side.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use common::{GuestRun, connect, console_after_exit, guest_elf, spawn_vmm, wait_exited};
use vmctl_vmm_api::v1 as pb;

const HOST_PORT: u32 = 1234;
const GUEST_PORT: u32 = 5000;
const PING: &[u8] = b"ping from the host\n";

/// The guest's peer at `<uds>_<port>`: reads a line, answers one; returns the line.
fn host_listener(path: std::path::PathBuf) -> std::thread::JoinHandle<String> {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        (&stream).write_all(b"hello from the host\n").unwrap();
        line
    })
}

/// A host-initiated connection: `CONNECT`, `OK <port>`, one line echoed. A CONNECT the
/// guest cannot take yet (its driver not up) is closed unanswered and tried again.
fn connect_and_echo(uds: std::path::PathBuf) -> std::thread::JoinHandle<(String, Vec<u8>)> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut s = UnixStream::connect(&uds).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let _ = s.write_all(format!("CONNECT {GUEST_PORT}\n").as_bytes());
            let mut ok = String::new();
            let got = BufReader::new(&s).read_line(&mut ok).unwrap_or(0);
            if got == 0 {
                assert!(Instant::now() < deadline, "the guest never accepted");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            s.write_all(PING).unwrap();
            let mut echo = vec![0u8; PING.len()];
            s.read_exact(&mut echo).unwrap();
            return (ok, echo);
        }
    })
}

#[tokio::test]
async fn bytes_flow_both_ways_in_the_last_slot_and_the_socket_goes_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let uds = dir.path().join("v.sock");
    let listener = host_listener(dir.path().join(format!("v.sock_{HOST_PORT}")));
    let vmm = spawn_vmm();
    let mut client = connect(&vmm.socket).await;
    let info = client.get_info(pb::GetInfoRequest {}).await.unwrap().into_inner();
    let max_drives = info.limits.unwrap().max_drives as usize;
    for i in 0..max_drives {
        let path = dir.path().join(format!("d{i}.img"));
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        client
            .put_drive(pb::Drive {
                drive_id: format!("d{i}"),
                path_on_host: path.display().to_string(),
                is_read_only: true,
                is_root_device: false,
            })
            .await
            .expect("PutDrive");
    }
    let vsock = pb::Vsock {
        guest_cid: 77,
        uds_path: uds.display().to_string(),
    };
    assert_eq!(client.put_vsock(vsock.clone()).await.unwrap().into_inner(), vsock);
    client
        .put_machine_config(pb::MachineConfig {
            vcpu_count: 1,
            mem_size_mib: 32,
        })
        .await
        .unwrap();
    client
        .put_boot_source(pb::BootSource {
            kernel_image_path: guest_elf(),
            boot_args: format!(
                "console=ttyS0 vmctl.test=virtio-vsock vmctl.cid=77 vmctl.host_port={HOST_PORT} vmctl.guest_port={GUEST_PORT}"
            ),
            initrd_path: String::new(),
        })
        .await
        .unwrap();
    assert!(!uds.exists(), "nothing is made before Start");
    client.start(pb::StartRequest {}).await.expect("Start");
    assert!(uds.exists(), "the socket is made at Start");
    let host = connect_and_echo(uds.clone());
    let state = wait_exited(&mut client, Duration::from_secs(60)).await;
    assert!(!uds.exists(), "the socket is gone once EXITED is published");
    let run = GuestRun {
        state,
        console: console_after_exit(&mut client).await,
        metrics: client
            .get_metrics(pb::GetMetricsRequest {})
            .await
            .unwrap()
            .into_inner(),
        log: vmm.log(),
    };
    run.assert_passed("virtio-vsock");
    // 18 slots: the drives take 0..=16, the vsock 17, at GSI 23 (8 skipped).
    assert_eq!(run.fact("vsock_dev"), Some(max_drives.to_string().as_str()));
    assert_eq!(run.fact("vsock_irq"), Some("23"));
    assert_eq!(run.fact("guest_cid"), Some("77"));
    assert_eq!(listener.join().unwrap(), "hello from the guest\n");
    assert_eq!(run.fact("host_reply"), Some("hello from the host"));
    let (ok, echo) = host.join().unwrap();
    assert!(ok.starts_with("OK "), "{ok:?}");
    assert_eq!(echo, PING);
    let v = run.metrics.vsock.expect("vsock metrics");
    assert_eq!((v.host_connections_opened, v.guest_connections_opened), (1, 1));
    assert_eq!(
        v.bytes_from_guest,
        (b"hello from the guest\n".len() + PING.len()) as u64
    );
    assert_eq!(
        v.bytes_to_guest,
        (b"hello from the host\n".len() + PING.len()) as u64
    );
    assert!(!v.failed);
}

#[tokio::test]
async fn put_vsock_is_refused_naming_the_field_and_after_start() {
    let dir = tempfile::tempdir().unwrap();
    let vmm = spawn_vmm();
    let mut client = connect(&vmm.socket).await;
    let bad = client
        .put_vsock(pb::Vsock {
            guest_cid: 2,
            uds_path: dir.path().join("v.sock").display().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().starts_with("vsock.guest_cid: "),
        "{}",
        bad.message()
    );
    let long = client
        .put_vsock(pb::Vsock {
            guest_cid: 3,
            uds_path: format!("/tmp/{}", "x".repeat(200)),
        })
        .await
        .unwrap_err();
    assert_eq!(long.code(), tonic::Code::InvalidArgument);
    assert!(
        long.message().starts_with("vsock.uds_path: "),
        "{}",
        long.message()
    );
    assert_eq!(
        client
            .get_vsock(pb::GetVsockRequest {})
            .await
            .unwrap()
            .into_inner()
            .vsock,
        None
    );

    client
        .put_boot_source(pb::BootSource {
            kernel_image_path: guest_elf(),
            boot_args: "console=ttyS0 vmctl.test=idle".into(),
            initrd_path: String::new(),
        })
        .await
        .unwrap();
    client.start(pb::StartRequest {}).await.expect("Start");
    let late = client
        .put_vsock(pb::Vsock {
            guest_cid: 3,
            uds_path: dir.path().join("v.sock").display().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(late.code(), tonic::Code::FailedPrecondition);
    assert!(!dir.path().join("v.sock").exists());
}
