//! Starts the real `vmctl-vmm` binary and talks to it over its unix socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};
use vmctl_vmm_api::v1::GetInfoRequest;
use vmctl_vmm_api::v1::vmm_client::VmmClient;

struct RunningVmm {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for RunningVmm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_vmm() -> RunningVmm {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("api.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_vmctl-vmm"))
        .arg("--api-sock")
        .arg(&socket)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vmctl-vmm");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "API socket never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    RunningVmm {
        child,
        socket,
        _dir: dir,
    }
}

async fn connect(socket: &Path) -> VmmClient<Channel> {
    let socket = socket.to_owned();
    let channel =
        Endpoint::try_from("http://vmm.local")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(move |_| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
                }
            }))
            .await
            .expect("connect to API socket");
    VmmClient::new(channel)
}

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

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut vmm = spawn_vmm();
    let status = Command::new("kill")
        .args(["-TERM", &vmm.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = vmm.child.wait().expect("wait");
    assert!(exit.success(), "exit: {exit:?}");
    assert!(!vmm.socket.exists());
}
