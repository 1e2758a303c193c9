//! virtio-blk through virtio-mmio, through real KVM: the C guests in
//! tests/guests/tests/virtio_*.c against `vmctl-devices`, wired by the VMM
//! (ioeventfd on QueueNotify, irqfd for the GSI, event-loop subscriber).

mod common;

use common::{GuestRun, run_guest_with_drives};
use vmctl_vmm_api::v1 as pb;

/// A backing file of `sectors` 512-byte sectors with a recognisable pattern.
fn disk(dir: &std::path::Path, name: &str, sectors: usize) -> String {
    let path = dir.join(name);
    let data: Vec<u8> = (0..sectors * 512).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path.display().to_string()
}

fn drive(id: &str, path: &str, ro: bool, root: bool) -> pb::Drive {
    pb::Drive {
        drive_id: id.into(),
        path_on_host: path.into(),
        is_read_only: ro,
        is_root_device: root,
    }
}

fn block<'a>(run: &'a GuestRun, id: &str) -> &'a pb::BlockMetrics {
    run.metrics
        .block
        .iter()
        .find(|b| b.drive_id == id)
        .unwrap_or_else(|| panic!("no block metrics for {id}: {:?}", run.metrics))
}

#[tokio::test]
async fn discovery_finds_each_drive_at_its_address_and_gsi_root_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = disk(dir.path(), "data.img", 128);
    let root = disk(dir.path(), "root.img", 256);
    let drives = vec![
        drive("data", &data, true, false),
        drive("root", &root, false, true),
    ];
    let run = run_guest_with_drives("virtio-discovery", "", 1, 32, drives).await;
    run.assert_passed("virtio-discovery");
    assert_eq!(run.fact("virtio_devices"), Some("2"), "{}", run.console);
    assert_eq!(run.fact("dev0_addr"), Some("0xd0000000"));
    assert_eq!(run.fact("dev0_irq"), Some("5"));
    assert_eq!(run.fact("dev0_capacity"), Some("256"), "root device first");
    assert_eq!(run.fact("dev1_addr"), Some("0xd0001000"));
    assert_eq!(run.fact("dev1_irq"), Some("6"));
    assert_eq!(run.fact("dev1_read_only"), Some("1"));
}

#[tokio::test]
async fn feature_negotiation_follows_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), "d.img", 64);
    let run = run_guest_with_drives("virtio-features", "", 1, 32, vec![drive("d", &d, false, true)]).await;
    run.assert_passed("virtio-features");
}

#[tokio::test]
async fn read_write_flush_and_get_id_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), "rw.img", 128);
    let before = std::fs::read(&d).unwrap();
    let run = run_guest_with_drives(
        "virtio-blk-rw",
        "vmctl.drive_id=rootfs",
        1,
        32,
        vec![drive("rootfs", &d, false, true)],
    )
    .await;
    run.assert_passed("virtio-blk-rw");
    let after = std::fs::read(&d).unwrap();
    assert_ne!(
        before[8 * 512..72 * 512],
        after[8 * 512..72 * 512],
        "the guest's writes reached the file"
    );
    assert_eq!(before[..8 * 512], after[..8 * 512], "sectors before 8 untouched");
    let m = block(&run, "rootfs");
    assert!(
        m.write_requests >= 1 && m.read_requests >= 1 && m.flush_requests >= 1,
        "{m:?}"
    );
    assert!(m.write_bytes >= 64 * 512, "{m:?}");
    assert_eq!(m.errors, 0, "{m:?}");
    assert!(
        run.metrics.vm_exits.contains_key("mmio_write"),
        "{:?}",
        run.metrics
    );
}

#[tokio::test]
async fn a_read_only_drive_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), "ro.img", 64);
    let before = std::fs::read(&d).unwrap();
    let run = run_guest_with_drives("virtio-blk-ro", "", 1, 32, vec![drive("ro", &d, true, true)]).await;
    run.assert_passed("virtio-blk-ro");
    assert_eq!(std::fs::read(&d).unwrap(), before);
    assert!(block(&run, "ro").errors >= 1);
}

#[tokio::test]
async fn completion_interrupt_arrives_through_the_irqfd() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), "irq.img", 64);
    let run = run_guest_with_drives("virtio-blk-irq", "", 1, 32, vec![drive("d", &d, false, true)]).await;
    run.assert_passed("virtio-blk-irq");
}

#[tokio::test]
async fn malicious_drivers_get_errors_and_the_device_survives() {
    let dir = tempfile::tempdir().unwrap();
    for test in [
        "virtio-blk-evil-addr",
        "virtio-blk-evil-loop",
        "virtio-blk-evil-avail",
        "virtio-blk-evil-len",
        "virtio-blk-evil-desc",
        "virtio-blk-evil-mmio",
    ] {
        let d = disk(dir.path(), &format!("{test}.img"), 64);
        let run = run_guest_with_drives(test, "", 1, 32, vec![drive("d", &d, false, true)]).await;
        run.assert_passed(test);
    }
}
