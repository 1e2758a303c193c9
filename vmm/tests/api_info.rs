//! Starts the real `vmctl-vmm` binary and talks to it over its unix socket.

mod common;

use std::path::Path;
use std::process::Command;

use common::{connect, spawn_vmm};
use vmctl_vmm_api::v1::GetInfoRequest;

#[tokio::test]
async fn get_info_reports_version_pid_and_kvm() {
    let vmm = spawn_vmm();
    let mut client = connect(&vmm.socket).await;
    let info = client
        .get_info(GetInfoRequest {})
        .await
        .expect("GetInfo")
        .into_inner();
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.pid, vmm.child.id());
    let kvm = info.kvm.expect("kvm facts");
    assert_eq!(kvm.api_version, 12);
    assert!(kvm.max_vcpus >= 1);
    assert_eq!(kvm.pvm, Path::new("/sys/module/kvm_pvm").is_dir());
}

#[test]
fn refuses_an_existing_socket_path_and_leaves_it_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("taken.sock");
    std::fs::write(&socket, b"not ours").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_vmctl-vmm"))
        .arg("--api-sock")
        .arg(&socket)
        .output()
        .expect("run vmctl-vmm");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already exists"), "stderr: {stderr}");
    assert_eq!(std::fs::read(&socket).expect("still there"), b"not ours");
}

/// SIGTERM the moment the socket appears: the handlers must already be in place (they
/// are installed before the socket is bound), so every run stops cleanly.
#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    for _ in 0..10 {
        let mut vmm = spawn_vmm();
        let status = Command::new("kill")
            .args(["-TERM", &vmm.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = vmm.child.wait().expect("wait");
        assert!(exit.success(), "exit: {exit:?}; log: {}", vmm.log());
        assert!(!vmm.socket.exists());
    }
}
