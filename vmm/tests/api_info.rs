//! Starts the real `vmctl-vmm` binary and talks to it over its unix socket.

mod common;

use std::path::Path;
use std::process::Command;

use common::{channel, connect, spawn_vmm};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
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

/// Server reflection is built on its first call (not at start-up) and then answers like
/// any other service, again and again.
#[tokio::test]
async fn reflection_lists_the_services_and_describes_the_api() {
    let vmm = spawn_vmm();
    let mut client = ServerReflectionClient::new(channel(&vmm.socket).await);
    for _ in 0..2 {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::once(request))
            .await
            .expect("reflection call")
            .into_inner();
        let response = responses
            .message()
            .await
            .expect("a response")
            .expect("one message");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("not a service list: {response:?}");
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"vmm.v1.Vmm"), "{names:?}");
        assert!(
            names.contains(&"grpc.reflection.v1.ServerReflection"),
            "{names:?}"
        );
    }
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol("vmm.v1.Vmm".into())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("a response")
        .expect("one message");
    assert!(
        matches!(response.message_response, Some(MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
        "{response:?}"
    );
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

/// SIGTERM (or SIGINT) the moment the socket appears: the signals must already be watched
/// (they are, before the socket is bound), so every run stops cleanly.
#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    for signal in ["-TERM", "-INT"].repeat(5) {
        let mut vmm = spawn_vmm();
        let status = Command::new("kill")
            .args([signal, &vmm.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = vmm.child.wait().expect("wait");
        assert!(exit.success(), "exit: {exit:?}; log: {}", vmm.log());
        assert!(!vmm.socket.exists());
    }
}
