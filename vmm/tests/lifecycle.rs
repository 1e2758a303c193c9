//! The API's lifecycle through the real binary: bad input refused with the right status
//! and field, wrong-phase calls refused, pause/resume, Ctrl-Alt-Del, Shutdown, console
//! input, and the process staying up after the VM exits.

mod common;

use std::time::Duration;

use common::{connect, console_after_exit, guest_elf, guests, spawn_vmm, wait_exited};
use tonic::Code;
use vmctl_vmm_api::v1 as pb;

fn boot_source(test: &str) -> pb::BootSource {
    pb::BootSource {
        kernel_image_path: guest_elf(),
        boot_args: format!("console=ttyS0 vmctl.test={test}"),
        initrd_path: String::new(),
    }
}

fn machine(vcpus: u32, mem: u32) -> pb::MachineConfig {
    pb::MachineConfig {
        vcpu_count: vcpus,
        mem_size_mib: mem,
    }
}

fn assert_status<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, field: &str) {
    let s = r.expect_err("the call should fail");
    assert_eq!(s.code(), code, "{s:?}");
    assert!(
        s.message().starts_with(field),
        "message {:?} should name {field}",
        s.message()
    );
}

#[tokio::test]
async fn bad_configuration_is_refused_naming_the_field_and_a_fix_is_accepted() {
    let vmm = spawn_vmm();
    let mut c = connect(&vmm.socket).await;

    assert_status(
        c.put_machine_config(machine(0, 32)).await,
        Code::InvalidArgument,
        "machine_config.vcpu_count",
    );
    assert_status(
        c.put_machine_config(machine(1, 0)).await,
        Code::InvalidArgument,
        "machine_config.mem_size_mib",
    );
    let stored = c
        .get_machine_config(pb::GetMachineConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (stored.vcpu_count, stored.mem_size_mib),
        (1, 128),
        "defaults kept after refusals"
    );

    // Start with no kernel at all.
    assert_status(
        c.start(pb::StartRequest {}).await,
        Code::FailedPrecondition,
        "boot_source",
    );
    // A kernel path that does not exist, and a file that is not a kernel.
    let mut missing = boot_source("hello");
    missing.kernel_image_path = "/nonexistent/vmlinux".into();
    assert_status(
        c.put_boot_source(missing).await,
        Code::InvalidArgument,
        "boot_source.kernel_image_path",
    );
    let mut not_elf = boot_source("hello");
    not_elf.kernel_image_path = guests().join("not-elf.bin").display().to_string();
    let s = c.put_boot_source(not_elf).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(
        s.message().contains("neither an ELF64 vmlinux nor a bzImage"),
        "{}",
        s.message()
    );

    // Drives: a path that does not exist, a second root device.
    let disk = vmm.dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 64 * 1024]).unwrap();
    let disk2 = vmm.dir.path().join("disk2.img");
    std::fs::write(&disk2, vec![0u8; 64 * 1024]).unwrap();
    let drive = |id: &str, path: &std::path::Path, root: bool| pb::Drive {
        drive_id: id.into(),
        path_on_host: path.display().to_string(),
        is_read_only: false,
        is_root_device: root,
    };
    assert_status(
        c.put_drive(drive("root", std::path::Path::new("/nonexistent/disk.img"), true))
            .await,
        Code::InvalidArgument,
        "drive.path_on_host",
    );
    c.put_drive(drive("root", &disk, true))
        .await
        .expect("a good drive");
    assert_status(
        c.put_drive(drive("other", &disk2, true)).await,
        Code::AlreadyExists,
        "drive.is_root_device",
    );
    assert_status(
        c.put_drive(drive("alias", &disk, false)).await,
        Code::AlreadyExists,
        "drive.path_on_host",
    );
    // Two drives with one id: the second is refused and the first is kept.
    assert_status(
        c.put_drive(drive("root", &disk2, true)).await,
        Code::AlreadyExists,
        "drive.drive_id",
    );
    let drives = c
        .list_drives(pb::ListDrivesRequest {})
        .await
        .unwrap()
        .into_inner()
        .drives;
    assert_eq!(drives.len(), 1);
    assert_eq!(drives[0].path_on_host, disk.display().to_string());

    // Memory below what the kernel needs is found at Start, and the VM stays configurable.
    let vmm2 = spawn_vmm();
    let mut c2 = connect(&vmm2.socket).await;
    c2.put_machine_config(machine(1, 1))
        .await
        .expect("1 MiB is a valid size");
    c2.put_boot_source(boot_source("hello")).await.unwrap();
    assert_status(
        c2.start(pb::StartRequest {}).await,
        Code::InvalidArgument,
        "machine_config.mem_size_mib",
    );
    let state = c2.get_state(pb::GetStateRequest {}).await.unwrap().into_inner();
    assert_eq!(state.phase, pb::Phase::Configuring as i32);
    c2.put_machine_config(machine(1, 16)).await.unwrap();
    c2.start(pb::StartRequest {})
        .await
        .expect("corrected configuration starts");
    let state = wait_exited(&mut c2, Duration::from_secs(20)).await;
    assert_eq!(
        (state.exit_reason, state.exit_code),
        (pb::ExitReason::GuestExit as i32, 0)
    );

    // Put after Start.
    assert_status(
        c2.put_machine_config(machine(1, 32)).await,
        Code::FailedPrecondition,
        "configuration",
    );
    assert_status(
        c2.put_boot_source(boot_source("hello")).await,
        Code::FailedPrecondition,
        "configuration",
    );
    assert_status(
        c2.start(pb::StartRequest {}).await,
        Code::FailedPrecondition,
        "Start",
    );
    assert_status(
        c2.pause(pb::PauseRequest {}).await,
        Code::FailedPrecondition,
        "Pause",
    );
}

async fn start(
    test: &str,
    vcpus: u32,
) -> (
    common::RunningVmm,
    vmctl_vmm_api::v1::vmm_client::VmmClient<tonic::transport::Channel>,
) {
    let vmm = spawn_vmm();
    let mut c = connect(&vmm.socket).await;
    c.put_machine_config(machine(vcpus, 32)).await.unwrap();
    c.put_boot_source(boot_source(test)).await.unwrap();
    let s = c.start(pb::StartRequest {}).await.unwrap().into_inner();
    assert_eq!(s.phase, pb::Phase::Running as i32);
    (vmm, c)
}

async fn console_text(c: &mut vmctl_vmm_api::v1::vmm_client::VmmClient<tonic::transport::Channel>) -> String {
    // GetMetrics' console byte count tells when output moved without a stream.
    let m = c
        .get_metrics(pb::GetMetricsRequest {})
        .await
        .unwrap()
        .into_inner();
    m.console_bytes_out.to_string()
}

#[tokio::test]
async fn pause_stops_the_guest_and_resume_continues_it() {
    let (_vmm, mut c) = start("ticker", 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let paused = c.pause(pb::PauseRequest {}).await.expect("Pause").into_inner();
    assert_eq!(paused.phase, pb::Phase::Paused as i32);
    let before = console_text(&mut c).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(console_text(&mut c).await, before, "output moved while paused");
    assert_status(
        c.pause(pb::PauseRequest {}).await,
        Code::FailedPrecondition,
        "Pause",
    );
    let resumed = c.resume(pb::ResumeRequest {}).await.expect("Resume").into_inner();
    assert_eq!(resumed.phase, pb::Phase::Running as i32);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_ne!(
        console_text(&mut c).await,
        before,
        "output did not continue after Resume"
    );
    let end = c
        .shutdown(pb::ShutdownRequest { timeout_ms: Some(0) })
        .await
        .expect("Shutdown")
        .into_inner();
    assert_eq!(end.exit_reason, pb::ExitReason::Forced as i32);
}

#[tokio::test]
async fn shutdown_presses_ctrl_alt_del_and_the_guest_resets() {
    let (_vmm, mut c) = start("ctrl_alt_del", 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let end = c
        .shutdown(pb::ShutdownRequest {
            timeout_ms: Some(5000),
        })
        .await
        .expect("Shutdown")
        .into_inner();
    assert_eq!(end.phase, pb::Phase::Exited as i32);
    assert_eq!(end.exit_reason, pb::ExitReason::Reset as i32, "{end:?}");
    let console = console_after_exit(&mut c).await;
    assert!(console.contains("ctrl-alt-del received"), "{console}");
}

#[tokio::test]
async fn shutdown_forces_a_guest_that_ignores_ctrl_alt_del() {
    let (vmm, mut c) = start("idle", 2).await;
    let t0 = std::time::Instant::now();
    let end = c
        .shutdown(pb::ShutdownRequest {
            timeout_ms: Some(300),
        })
        .await
        .expect("Shutdown")
        .into_inner();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(end.exit_reason, pb::ExitReason::Forced as i32, "{end:?}");
    assert!(end.exit_detail.contains("300 ms"), "{}", end.exit_detail);
    // The process keeps serving after the VM exited: state and metrics stay readable.
    let state = c.get_state(pb::GetStateRequest {}).await.unwrap().into_inner();
    assert_eq!(state.phase, pb::Phase::Exited as i32);
    let m = c
        .get_metrics(pb::GetMetricsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(m.boot_done_us > 0);
    drop(vmm);
}

#[tokio::test]
async fn console_input_reaches_the_guest() {
    let (_vmm, mut c) = start("echo", 1).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::ConsoleInput {
        data: vec![],
        replay: true,
    })
    .await
    .unwrap();
    let mut out = c
        .console(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("Console")
        .into_inner();
    let mut seen = String::new();
    let mut sent = false;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), out.message())
        .await
        .expect("console stalled")
        .expect("console stream")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.data));
        if !sent && seen.contains("ready\n") {
            tx.send(pb::ConsoleInput {
                data: b"hello guest\n".to_vec(),
                replay: false,
            })
            .await
            .unwrap();
            sent = true;
        }
    }
    assert!(seen.contains("got=hello guest\n"), "{seen}");
    let state = c.get_state(pb::GetStateRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (state.exit_reason, state.exit_code),
        (pb::ExitReason::GuestExit as i32, 0)
    );
}

#[tokio::test]
async fn sigterm_stops_a_running_vm_and_the_process() {
    let (mut vmm, _c) = start("idle", 1).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &vmm.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = vmm.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", vmm.log());
    assert!(vmm.log().contains("SIGTERM"), "{}", vmm.log());
}

#[tokio::test]
async fn get_info_reports_the_vm_id_given_on_the_command_line() {
    let vmm = common::spawn_vmm_with(&["--id", "test-vm-1"]);
    let mut c = connect(&vmm.socket).await;
    let info = c.get_info(pb::GetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.vm_id, "test-vm-1");
    let vmm2 = spawn_vmm();
    let mut c2 = connect(&vmm2.socket).await;
    assert!(
        !c2.get_info(pb::GetInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .vm_id
            .is_empty()
    );
}
