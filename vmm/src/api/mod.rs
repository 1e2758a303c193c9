//! The gRPC front-end: binds the unix socket and turns API calls into VMM actions.

use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};
use vmctl_kvm_host::KvmInfo;
use vmctl_vmm_api::v1 as pb;

/// Facts about the host, read once at start-up.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub kvm: KvmInfo,
    pub pvm: bool,
}

/// Why the API server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("API socket {} already exists; remove it or choose another path", .0.display())]
    SocketExists(PathBuf),
    #[error("cannot bind API socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: std::io::Error },
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("API server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

struct VmmService {
    host: HostFacts,
}

#[tonic::async_trait]
impl pb::vmm_server::Vmm for VmmService {
    async fn get_info(&self, _request: Request<pb::GetInfoRequest>) -> Result<Response<pb::VmmInfo>, Status> {
        let kvm = &self.host.kvm;
        Ok(Response::new(pb::VmmInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            kvm: Some(pb::KvmHost {
                api_version: u32::try_from(kvm.api_version).unwrap_or_default(),
                irqchip: kvm.capabilities.irqchip,
                user_memory: kvm.capabilities.user_memory,
                ioeventfd: kvm.capabilities.ioeventfd,
                irqfd: kvm.capabilities.irqfd,
                max_vcpus: u32::try_from(kvm.max_vcpus).unwrap_or(u32::MAX),
                recommended_vcpus: u32::try_from(kvm.recommended_vcpus).unwrap_or(u32::MAX),
                pvm: self.host.pvm,
            }),
        }))
    }
}

/// Serves the API on `socket` until the process is told to stop (SIGTERM/SIGINT).
/// The socket is removed on a clean stop.
pub async fn serve(socket: &Path, host: HostFacts) -> Result<(), ApiServerError> {
    // Refuse to steal a live socket from another VMM: a stale one is the caller's to clean.
    if socket.exists() {
        return Err(ApiServerError::SocketExists(socket.to_owned()));
    }
    let listener = UnixListener::bind(socket).map_err(|source| ApiServerError::Bind {
        path: socket.to_owned(),
        source,
    })?;
    tracing::info!(socket = %socket.display(), "API ready");

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let result = tonic::transport::Server::builder()
        .add_service(pb::vmm_server::VmmServer::new(VmmService { host }))
        .add_service(reflection)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown_signal())
        .await;
    let _ = std::fs::remove_file(socket);
    Ok(result?)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the process still dies on SIGTERM by default.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
