//! The gRPC front-end: binds the unix socket and turns API calls into controller
//! actions. It converts messages and maps errors to statuses (`status.rs`); all VM
//! logic lives in [`crate::controller`].

mod status;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::net::UnixListener;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::{Request, Response, Status, Streaming};
use vmctl_kvm_host::KvmInfo;
use vmctl_vmm_api::v1 as pb;

use crate::controller::state::{Phase, VmState};
use crate::controller::{Controller, ControllerError, DEFAULT_SHUTDOWN_TIMEOUT};
use crate::vmm_config::drive::DriveConfig;
use crate::vstate::exit::ExitReason;
use status::to_status;

/// Facts about the host, read once at start-up.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub kvm: KvmInfo,
    pub pvm: bool,
    pub vm_id: String,
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
    controller: Arc<Controller>,
}

impl VmmService {
    /// Runs a controller action that may block (building the VM, parking vCPUs) off the
    /// async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Controller) -> Result<T, ControllerError> + Send + 'static,
    ) -> Result<T, Status> {
        let c = self.controller.clone();
        tokio::task::spawn_blocking(move || f(&c))
            .await
            .map_err(|e| Status::internal(format!("request handler failed: {e}")))?
            .map_err(to_status)
    }
}

fn state_to_pb(s: &VmState) -> pb::VmState {
    let phase = match s.phase {
        Phase::Configuring => pb::Phase::Configuring,
        Phase::Running => pb::Phase::Running,
        Phase::Paused => pb::Phase::Paused,
        Phase::Exited => pb::Phase::Exited,
    };
    let (reason, code, detail) = match &s.exit {
        None => (pb::ExitReason::Unspecified, 0, String::new()),
        Some(e) => {
            let reason = match e.reason {
                ExitReason::GuestExit => pb::ExitReason::GuestExit,
                ExitReason::Reset => pb::ExitReason::Reset,
                ExitReason::Shutdown => pb::ExitReason::Shutdown,
                ExitReason::Forced => pb::ExitReason::Forced,
                ExitReason::KvmError => pb::ExitReason::KvmError,
                ExitReason::VmmError => pb::ExitReason::VmmError,
            };
            (reason, e.code, e.detail.clone())
        }
    };
    pb::VmState {
        phase: phase as i32,
        exit_reason: reason as i32,
        exit_code: code,
        exit_detail: detail,
        since_unix_ms: s
            .since
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

fn drive_to_pb(d: &DriveConfig) -> pb::Drive {
    pb::Drive {
        drive_id: d.drive_id.clone(),
        path_on_host: d.path_on_host.display().to_string(),
        is_read_only: d.is_read_only,
        is_root_device: d.is_root_device,
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

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
            vm_id: self.host.vm_id.clone(),
        }))
    }

    async fn put_machine_config(
        &self,
        request: Request<pb::MachineConfig>,
    ) -> Result<Response<pb::MachineConfig>, Status> {
        let r = request.into_inner();
        let c = self
            .controller
            .put_machine_config(r.vcpu_count, r.mem_size_mib)
            .map_err(to_status)?;
        Ok(Response::new(pb::MachineConfig {
            vcpu_count: u32::from(c.vcpu_count),
            mem_size_mib: c.mem_size_mib,
        }))
    }

    async fn get_machine_config(
        &self,
        _request: Request<pb::GetMachineConfigRequest>,
    ) -> Result<Response<pb::MachineConfig>, Status> {
        let c = self.controller.machine_config();
        Ok(Response::new(pb::MachineConfig {
            vcpu_count: u32::from(c.vcpu_count),
            mem_size_mib: c.mem_size_mib,
        }))
    }

    async fn put_boot_source(
        &self,
        request: Request<pb::BootSource>,
    ) -> Result<Response<pb::BootSource>, Status> {
        let r = request.into_inner();
        let c = self
            .controller
            .put_boot_source(&r.kernel_image_path, &r.boot_args, &r.initrd_path)
            .map_err(to_status)?;
        Ok(Response::new(pb::BootSource {
            kernel_image_path: c.kernel_image_path.display().to_string(),
            boot_args: c.boot_args,
            initrd_path: c.initrd_path.map(|p| p.display().to_string()).unwrap_or_default(),
        }))
    }

    async fn put_drive(&self, request: Request<pb::Drive>) -> Result<Response<pb::Drive>, Status> {
        let r = request.into_inner();
        let d = self
            .controller
            .put_drive(&r.drive_id, &r.path_on_host, r.is_read_only, r.is_root_device)
            .map_err(to_status)?;
        Ok(Response::new(drive_to_pb(&d)))
    }

    async fn list_drives(
        &self,
        _request: Request<pb::ListDrivesRequest>,
    ) -> Result<Response<pb::ListDrivesResponse>, Status> {
        Ok(Response::new(pb::ListDrivesResponse {
            drives: self.controller.drives().iter().map(drive_to_pb).collect(),
        }))
    }

    async fn start(&self, _request: Request<pb::StartRequest>) -> Result<Response<pb::VmState>, Status> {
        let s = self.blocking(|c| c.start()).await?;
        Ok(Response::new(state_to_pb(&s)))
    }

    async fn pause(&self, _request: Request<pb::PauseRequest>) -> Result<Response<pb::VmState>, Status> {
        let s = self.blocking(|c| c.pause()).await?;
        Ok(Response::new(state_to_pb(&s)))
    }

    async fn resume(&self, _request: Request<pb::ResumeRequest>) -> Result<Response<pb::VmState>, Status> {
        let s = self.blocking(|c| c.resume()).await?;
        Ok(Response::new(state_to_pb(&s)))
    }

    async fn send_ctrl_alt_del(
        &self,
        _request: Request<pb::SendCtrlAltDelRequest>,
    ) -> Result<Response<pb::VmState>, Status> {
        let s = self.controller.send_ctrl_alt_del().map_err(to_status)?;
        Ok(Response::new(state_to_pb(&s)))
    }

    async fn shutdown(&self, request: Request<pb::ShutdownRequest>) -> Result<Response<pb::VmState>, Status> {
        let timeout = request
            .into_inner()
            .timeout_ms
            .map_or(DEFAULT_SHUTDOWN_TIMEOUT, |ms| {
                Duration::from_millis(u64::from(ms))
            });
        let s = self.controller.shutdown(timeout).await;
        Ok(Response::new(state_to_pb(&s)))
    }

    async fn get_state(
        &self,
        _request: Request<pb::GetStateRequest>,
    ) -> Result<Response<pb::VmState>, Status> {
        Ok(Response::new(state_to_pb(&self.controller.state())))
    }

    type WatchStateStream = BoxStream<pb::VmState>;

    async fn watch_state(
        &self,
        _request: Request<pb::WatchStateRequest>,
    ) -> Result<Response<Self::WatchStateStream>, Status> {
        let mut rx = self.controller.watch_state();
        let (tx, out) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let s = rx.borrow_and_update().clone();
                if tx.send(Ok(state_to_pb(&s))).await.is_err() || s.phase == Phase::Exited {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }

    type ConsoleStream = BoxStream<pb::ConsoleOutput>;

    async fn console(
        &self,
        request: Request<Streaming<pb::ConsoleInput>>,
    ) -> Result<Response<Self::ConsoleStream>, Status> {
        let mut inbound = request.into_inner();
        let controller = self.controller.clone();
        // Subscribe now so nothing printed after the call opened is missed; the first
        // input message then says whether the earlier output is replayed.
        let (past, mut live) = controller.console().subscribe(true);
        let (tx, out) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut inbound_open = true;
            let replay = match inbound.message().await {
                Ok(Some(first)) => {
                    controller.console_input(&first.data);
                    first.replay
                }
                _ => {
                    inbound_open = false;
                    false
                }
            };
            if replay && !past.is_empty() && tx.send(Ok(pb::ConsoleOutput { data: past })).await.is_err() {
                return;
            }
            let mut state = controller.watch_state();
            loop {
                tokio::select! {
                    chunk = live.recv() => match chunk {
                        Ok(data) => {
                            if tx.send(Ok(pb::ConsoleOutput { data })).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!("console reader fell behind; {n} chunks dropped");
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    msg = inbound.message(), if inbound_open => match msg {
                        Ok(Some(m)) => controller.console_input(&m.data),
                        _ => inbound_open = false,
                    },
                    _ = async { state.wait_for(|s| s.phase == Phase::Exited).await.map(|_| ()) } => {
                        // The VM is gone: send what is left, then end the stream.
                        let mut rest = Vec::new();
                        while let Ok(data) = live.try_recv() {
                            rest.extend(data);
                        }
                        if !rest.is_empty() {
                            let _ = tx.send(Ok(pb::ConsoleOutput { data: rest })).await;
                        }
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }

    async fn get_metrics(
        &self,
        _request: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::Metrics>, Status> {
        let m = self.controller.metrics();
        Ok(Response::new(pb::Metrics {
            boot_done_us: m.boot_done_us(),
            start_to_run_us: m.start_to_run_us(),
            vm_exits: m.vm_exits().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            block: m
                .block()
                .into_iter()
                .map(|(drive_id, b)| pb::BlockMetrics {
                    drive_id,
                    read_requests: b.read_requests,
                    write_requests: b.write_requests,
                    flush_requests: b.flush_requests,
                    read_bytes: b.read_bytes,
                    write_bytes: b.write_bytes,
                    errors: b.errors,
                    failed: b.failed,
                    busy_us: b.busy_ns / 1000,
                })
                .collect(),
            console_bytes_out: m.console_bytes_out(),
        }))
    }
}

/// Serves the API on `socket` until the process is told to stop (SIGTERM/SIGINT). A
/// running VM is then stopped (reason FORCED) before the server returns. The socket is
/// removed on a clean stop.
pub async fn serve(
    socket: &Path,
    host: HostFacts,
    controller: Arc<Controller>,
) -> Result<(), ApiServerError> {
    // Refuse to steal a live socket from another VMM: a stale one is the caller's to clean.
    if socket.exists() {
        return Err(ApiServerError::SocketExists(socket.to_owned()));
    }
    // Handlers first: once the socket exists a client may send SIGTERM at once, and it
    // must get the clean stop, not the default action (death without removing the socket).
    let signals = ShutdownSignals::install();
    // Bind under a temporary name and rename once listening, so the socket path only
    // appears when it accepts connections (bind() creates the file before listen()).
    let mut staging = socket.as_os_str().to_owned();
    staging.push(format!(".{}.tmp", std::process::id()));
    let staging = PathBuf::from(staging);
    let bind_error = |source| ApiServerError::Bind {
        path: socket.to_owned(),
        source,
    };
    let listener = UnixListener::bind(&staging).map_err(bind_error)?;
    if let Err(e) = std::fs::rename(&staging, socket) {
        let _ = std::fs::remove_file(&staging);
        return Err(bind_error(e));
    }
    tracing::info!(socket = %socket.display(), vm_id = %host.vm_id, "API ready");

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let service = VmmService {
        host,
        controller: controller.clone(),
    };
    // On SIGTERM/SIGINT: stop the VM first (watchers see EXITED, reason FORCED), then
    // stop serving. Clients still connected get a short grace period, not a veto.
    let stopping = Arc::new(tokio::sync::Notify::new());
    let on_signal = {
        let controller = controller.clone();
        let stopping = stopping.clone();
        async move {
            signals.recv().await;
            tracing::info!("SIGTERM/SIGINT: stopping the VM and the API");
            controller.force_stop("the VMM received SIGTERM");
            stopping.notify_one();
        }
    };
    let server = tonic::transport::Server::builder()
        .add_service(pb::vmm_server::VmmServer::new(service))
        .add_service(reflection)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), on_signal);
    let result = tokio::select! {
        r = server => r,
        _ = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    };
    let _ = std::fs::remove_file(socket);
    Ok(result?)
}

/// How long open connections may linger once the VMM is told to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// SIGTERM and SIGINT handlers, installed when made (not when first awaited).
struct ShutdownSignals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl ShutdownSignals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            // Without handlers the process still dies on SIGTERM by default.
            _ => Self(None),
        }
    }

    async fn recv(self) {
        let Some((mut term, mut int)) = self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
