//! virtio-net wired by the VMM, through real KVM, on real TAPs in a network namespace of
//! the test's own (the test thread unshares it; the VMM it spawns is born there): one TAP
//! named, one passed in as an inherited descriptor, in the slots between the drives and
//! the vsock (read back from the kernel command line the `boot_params` guest prints), the
//! per-interface metrics, and the passed-in TAP released when the VMM exits.

mod common;

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{GuestRun, connect, console_after_exit, guest_elf, spawn_vmm, wait_exited};
use vmctl_devices::virtio::net::tap::testing::{create_tap, enter_new_netns, set_up};
use vmctl_vmm_api::v1 as pb;

/// Whether interface `name` exists in this thread's namespace.
fn exists(name: &str) -> bool {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: a valid C string.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// Makes a (non-persistent) TAP `name` on a descriptor a child process inherits: it exists
/// as long as some process holds the descriptor.
fn inheritable_tap(name: &str) -> std::fs::File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap();
    let mut req = [0u8; 40];
    req[..name.len()].copy_from_slice(name.as_bytes());
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as u16;
    req[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: a 40-byte ifreq for TUNSETIFF; F_SETFD on our descriptor.
    unsafe {
        assert_eq!(
            libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, req.as_mut_ptr()),
            0
        );
        assert_eq!(libc::fcntl(file.as_raw_fd(), libc::F_SETFD, 0), 0);
    }
    file
}

#[tokio::test(flavor = "current_thread")]
async fn a_named_and_a_passed_in_tap_sit_between_the_drives_and_the_vsock() {
    enter_new_netns();
    create_tap("vmtap0");
    let passed = inheritable_tap("vmtap1");
    set_up("vmtap1");
    let fd = passed.as_raw_fd();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("d.img");
    std::fs::write(&disk, vec![0u8; 64 * 512]).unwrap();
    let vmm = spawn_vmm();
    // The VMM holds its own copy from here on.
    let mut client = connect(&vmm.socket).await;
    client
        .put_drive(pb::Drive {
            drive_id: "root".into(),
            path_on_host: disk.display().to_string(),
            is_read_only: false,
            is_root_device: true,
        })
        .await
        .unwrap();
    let eth0 = pb::NetworkInterface {
        iface_id: "eth0".into(),
        host_dev_name: "vmtap0".into(),
        guest_mac: "02:00:00:00:00:01".into(),
        tap_fd: None,
    };
    let eth1 = pb::NetworkInterface {
        iface_id: "eth1".into(),
        host_dev_name: String::new(),
        guest_mac: "02:00:00:00:00:02".into(),
        tap_fd: Some(fd),
    };
    for iface in [&eth0, &eth1] {
        let echoed = client
            .put_network_interface(iface.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&echoed, iface);
    }
    drop(passed);
    client
        .put_vsock(pb::Vsock {
            guest_cid: 3,
            uds_path: dir.path().join("v.sock").display().to_string(),
        })
        .await
        .unwrap();
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
            boot_args: "console=ttyS0 vmctl.test=boot_params".into(),
            initrd_path: String::new(),
        })
        .await
        .unwrap();
    client.start(pb::StartRequest {}).await.expect("Start");
    let state = wait_exited(&mut client, Duration::from_secs(30)).await;
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
    run.assert_passed("boot_params");
    // Slot 0 the drive, 1 and 2 the interfaces in the order added, 3 the vsock (GSI 8 is
    // the RTC's).
    let cmdline = run.fact("cmdline").expect("cmdline fact");
    assert!(
        cmdline.contains(
            "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 \
             virtio_mmio.device=4K@0xd0002000:7 virtio_mmio.device=4K@0xd0003000:9"
        ),
        "{cmdline}"
    );
    let ids: Vec<_> = run.metrics.net.iter().map(|n| n.iface_id.as_str()).collect();
    assert_eq!(ids, ["eth0", "eth1"]);
    assert!(run.metrics.net.iter().all(|n| !n.failed && n.tx_dropped == 0));
    let listed = client
        .list_network_interfaces(pb::ListNetworkInterfacesRequest {})
        .await
        .unwrap()
        .into_inner()
        .network_interfaces;
    assert_eq!(listed, [eth0, eth1]);

    // The passed-in TAP lives on the VMM's copy alone: it goes with the VMM.
    assert!(exists("vmtap1"));
    drop(client);
    drop(vmm);
    let deadline = Instant::now() + Duration::from_secs(5);
    while exists("vmtap1") {
        assert!(Instant::now() < deadline, "vmtap1 outlived the VMM");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(exists("vmtap0"), "a persistent TAP stays");
}

#[tokio::test(flavor = "current_thread")]
async fn put_network_interface_is_refused_naming_the_field_and_after_start() {
    enter_new_netns();
    create_tap("vmtap0");
    let vmm = spawn_vmm();
    let mut client = connect(&vmm.socket).await;
    let ok = pb::NetworkInterface {
        iface_id: "eth0".into(),
        host_dev_name: "vmtap0".into(),
        guest_mac: "02:00:00:00:00:01".into(),
        tap_fd: None,
    };
    for (bad, field) in [
        (
            pb::NetworkInterface {
                guest_mac: "03:00:00:00:00:01".into(),
                ..ok.clone()
            },
            "network_interface.guest_mac",
        ),
        (
            pb::NetworkInterface {
                host_dev_name: "vmtap0123456789x".into(),
                ..ok.clone()
            },
            "network_interface.host_dev_name",
        ),
        (
            pb::NetworkInterface {
                host_dev_name: "absent".into(),
                ..ok.clone()
            },
            "network_interface.host_dev_name",
        ),
        (
            pb::NetworkInterface {
                host_dev_name: String::new(),
                tap_fd: Some(2),
                ..ok.clone()
            },
            "network_interface.tap_fd",
        ),
    ] {
        let s = client.put_network_interface(bad.clone()).await.unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{bad:?}: {}", s.message());
        assert!(s.message().starts_with(&format!("{field}: ")), "{}", s.message());
    }
    client.put_network_interface(ok.clone()).await.unwrap();
    let dup = client.put_network_interface(ok.clone()).await.unwrap_err();
    assert_eq!(dup.code(), tonic::Code::AlreadyExists);
    client
        .put_boot_source(pb::BootSource {
            kernel_image_path: guest_elf(),
            boot_args: "console=ttyS0 vmctl.test=idle".into(),
            initrd_path: String::new(),
        })
        .await
        .unwrap();
    client.start(pb::StartRequest {}).await.expect("Start");
    let after = client
        .put_network_interface(pb::NetworkInterface {
            iface_id: "eth1".into(),
            guest_mac: "02:00:00:00:00:02".into(),
            ..ok
        })
        .await
        .unwrap_err();
    assert_eq!(
        after.code(),
        tonic::Code::FailedPrecondition,
        "{}",
        after.message()
    );
}
