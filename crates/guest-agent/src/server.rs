//! The gRPC front-end: serves the API on vsock and/or unix sockets and converts messages;
//! what happens is decided by [`crate::agent`], [`crate::exec`] and [`crate::copy`].

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::agent::{Agent, Ending};
use crate::config::Listen;
use crate::exec::{self, Client, Input, Output, Outputs, Role, WindowSize, WorkloadLink};
use crate::pb;
use crate::pb::agent_server::AgentServer;
use crate::reaper::ProcessExit;
use crate::{clock, copy, signals, status};

/// How long a Shutdown waits after answering before the agent goes down.
const SHUTDOWN_DELAY: Duration = Duration::from_millis(100);

/// Why the API could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on vsock port {port}: {source}")]
    Vsock { port: u32, source: std::io::Error },
    #[error("cannot listen on {}: {source}", path.display())]
    Unix { path: PathBuf, source: std::io::Error },
    #[error("API server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The listeners, bound. Unix sockets are bound before init's work (so a path given on
/// the command line is the one the caller sees, whatever root the agent pivots to);
/// vsock is bound when serving starts (it has no path).
pub struct Listeners(Vec<Bound>);

enum Bound {
    Unix(std::os::unix::net::UnixListener, PathBuf),
    Vsock(u32),
}

impl Listeners {
    pub fn bind(listen: &[Listen]) -> Result<Self, ServeError> {
        let mut bound = Vec::new();
        for address in listen {
            bound.push(match address {
                Listen::Unix(path) => Bound::Unix(bind_unix(path)?, path.clone()),
                Listen::Vsock(port) => Bound::Vsock(*port),
            });
        }
        Ok(Self(bound))
    }
}

/// Serves the API on every listener until the process ends.
pub async fn serve(agent: Arc<Agent>, listeners: Listeners) -> Result<(), ServeError> {
    let mut servers = tokio::task::JoinSet::new();
    for bound in listeners.0 {
        let service = AgentServer::new(Api { agent: agent.clone() });
        let router = tonic::transport::Server::builder().add_service(service);
        let since_start = Duration::from_nanos(clock::boottime_ns().saturating_sub(agent.start_boottime_ns));
        match bound {
            Bound::Vsock(port) => {
                let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port);
                let listener = tokio_vsock::VsockListener::bind(addr)
                    .map_err(|source| ServeError::Vsock { port, source })?;
                log!("serving on vsock port {port} ({since_start:?} after start)");
                servers.spawn(router.serve_with_incoming(listener.incoming()));
            }
            Bound::Unix(listener, path) => {
                let error = |source| ServeError::Unix {
                    path: path.clone(),
                    source,
                };
                listener.set_nonblocking(true).map_err(error)?;
                let listener = UnixListener::from_std(listener).map_err(error)?;
                log!("serving on {} ({since_start:?} after start)", path.display());
                servers.spawn(router.serve_with_incoming(UnixListenerStream::new(listener)));
            }
        }
    }
    while let Some(result) = servers.join_next().await {
        if let Ok(Err(e)) = result {
            return Err(e.into());
        }
    }
    Ok(())
}

/// Binds under a temporary name and renames once listening, so the path appears only
/// when it accepts connections.
fn bind_unix(path: &Path) -> Result<std::os::unix::net::UnixListener, ServeError> {
    let error = |source| ServeError::Unix {
        path: path.to_owned(),
        source,
    };
    let mut staging = path.as_os_str().to_owned();
    staging.push(format!(".{}.tmp", std::process::id()));
    let staging = PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    let listener = std::os::unix::net::UnixListener::bind(&staging).map_err(error)?;
    std::fs::rename(&staging, path).map_err(error)?;
    Ok(listener)
}

struct Api {
    agent: Arc<Agent>,
}

impl Api {
    /// An Exec that attaches to the running workload (ExecStart.attach).
    fn attach(
        &self,
        workload: bool,
        inputs: Streaming<pb::ExecInput>,
    ) -> Result<Response<BoxStream<pb::ExecOutput>>, Status> {
        if !workload {
            return Err(Status::invalid_argument(
                "attach: only the workload can be attached to (set workload)",
            ));
        }
        let (link, pid) = self
            .agent
            .attachable_workload()
            .ok_or_else(|| Status::failed_precondition("attach: no workload is running"))?;
        let (output_tx, output_rx) = mpsc::channel(exec::OUTPUT_QUEUE);
        // First on a fresh channel, before the link can send this client anything.
        let _ = output_tx.try_send(Output::Started { pid });
        let done_sending = forward_inputs(inputs, link.inputs());
        link.attach(Client {
            outputs: output_tx,
            done_sending,
        });
        log!("a client attached to the workload (pid {pid})");
        Ok(Response::new(output_stream(output_rx)))
    }
}

/// Passes a call's inputs on to its session; the receiver turns true when the call has
/// finished sending (its half-close, or it went away).
fn forward_inputs(mut inputs: Streaming<pb::ExecInput>, to: mpsc::Sender<Input>) -> watch::Receiver<bool> {
    let (done_tx, done_rx) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok(Some(message)) = inputs.message().await {
            let Some(input) = message.input.and_then(input) else {
                continue;
            };
            if to.send(input).await.is_err() {
                break;
            }
        }
        let _ = done_tx.send(true);
    });
    done_rx
}

fn output_stream(outputs: mpsc::Receiver<Output>) -> BoxStream<pb::ExecOutput> {
    Box::pin(ReceiverStream::new(outputs).map(|output| Ok(to_pb(output))))
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::agent_server::Agent for Api {
    async fn get_info(&self, _: Request<pb::GetInfoRequest>) -> Result<Response<pb::AgentInfo>, Status> {
        let mut name = [0u8; 256];
        // SAFETY: gethostname writes at most `name.len()` bytes into `name`.
        unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Ok(Response::new(pb::AgentInfo {
            version: crate::VERSION.to_owned(),
            agent_start_boottime_ns: self.agent.start_boottime_ns,
            workload_exec_boottime_ns: self.agent.workload_exec_boottime_ns(),
            hostname: String::from_utf8_lossy(&name[..end]).into_owned(),
            init: self.agent.init,
            pid: std::process::id(),
        }))
    }

    type ExecStream = BoxStream<pb::ExecOutput>;

    async fn exec(
        &self,
        request: Request<Streaming<pb::ExecInput>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let mut inputs = request.into_inner();
        let start = match inputs.message().await? {
            Some(pb::ExecInput {
                input: Some(pb::exec_input::Input::Start(start)),
            }) => start,
            _ => return Err(Status::invalid_argument("the first message must be `start`")),
        };
        if start.attach {
            return self.attach(start.workload, inputs);
        }
        let tty = start.tty.then(|| window(start.window));
        let request = exec::Request {
            args: &start.args,
            image_env: &start.image_env,
            env: &start.env,
            cwd: &start.cwd,
            user: &start.user,
            tty,
            stdin: start.stdin,
        };
        let prepared = exec::prepare(request, Path::new("/")).map_err(status::exec)?;
        let role = if start.workload {
            Role::Workload {
                keep_running: start.keep_running,
            }
        } else {
            Role::Exec
        };
        let session = exec::start(&self.agent, prepared, role).map_err(status::exec)?;

        let (input_tx, input_rx) = mpsc::channel(4);
        let (output_tx, output_rx) = mpsc::channel(exec::OUTPUT_QUEUE);
        let done_sending = forward_inputs(inputs, input_tx.clone());
        let outputs = if start.workload {
            // The slot is this session's (exec::start claimed it): the link is too.
            let link = WorkloadLink::new(
                Client {
                    outputs: output_tx,
                    done_sending,
                },
                input_tx,
            );
            self.agent.set_workload_link(link.clone());
            Outputs::Workload(link)
        } else {
            // The call's inputs alone feed an exec: their end is the feeder's.
            drop(input_tx);
            Outputs::Exec(output_tx)
        };
        tokio::spawn(session.run(input_rx, outputs));
        Ok(Response::new(output_stream(output_rx)))
    }

    async fn signal(
        &self,
        request: Request<pb::SignalRequest>,
    ) -> Result<Response<pb::SignalResponse>, Status> {
        let request = request.into_inner();
        let signal = signals::parse(&request.signal).ok_or_else(|| {
            Status::invalid_argument(crate::status::bounded(format!(
                "signal: unknown signal {:?}",
                request.signal
            )))
        })?;
        let result = match request.target {
            Some(pb::signal_request::Target::Pid(pid)) => {
                let pid = i32::try_from(pid).map_err(|_| Status::invalid_argument("pid: out of range"))?;
                self.agent.reaper.signal(pid, signal)
            }
            Some(pb::signal_request::Target::Workload(_)) => self.agent.signal_workload(signal),
            None => return Err(Status::invalid_argument("target: pid or workload is required")),
        };
        result.map_err(status::signal)?;
        Ok(Response::new(pb::SignalResponse {}))
    }

    async fn copy_in(
        &self,
        request: Request<Streaming<pb::CopyInRequest>>,
    ) -> Result<Response<pb::CopyInResponse>, Status> {
        let mut requests = request.into_inner();
        let first = requests
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("destination: no message"))?;
        let destination = PathBuf::from(&first.destination);
        let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
        let unpacking = tokio::task::spawn_blocking(move || copy::unpack(&destination, rx));
        let mut chunk = first.tar;
        loop {
            if !chunk.is_empty() && tx.send(chunk).await.is_err() {
                // The unpacker stopped (an error it reports below).
                break;
            }
            match requests.message().await? {
                Some(message) => chunk = message.tar,
                None => break,
            }
        }
        drop(tx);
        let unpacked = unpacking
            .await
            .map_err(|e| Status::internal(format!("unpacking: {e}")))?
            .map_err(status::copy)?;
        Ok(Response::new(pb::CopyInResponse {
            entries: unpacked.entries,
            bytes: unpacked.bytes,
        }))
    }

    type CopyOutStream = BoxStream<pb::TarChunk>;

    async fn copy_out(
        &self,
        request: Request<pb::CopyOutRequest>,
    ) -> Result<Response<Self::CopyOutStream>, Status> {
        let path = PathBuf::from(request.into_inner().path);
        if !path.is_absolute() {
            return Err(status::copy(copy::CopyError::RelativePath(path)));
        }
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(status::copy(copy::CopyError::NotFound(path)));
        }
        let (chunk_tx, chunk_rx) = mpsc::channel::<Vec<u8>>(4);
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let _ = result_tx.send(copy::pack(&path, chunk_tx));
        });
        let chunks = ReceiverStream::new(chunk_rx).map(|data| Ok(pb::TarChunk { data }));
        // After the last chunk: the packer's error, if it had one.
        let outcome = packer_outcome(result_rx);
        Ok(Response::new(Box::pin(chunks.chain(outcome))))
    }

    async fn shutdown(
        &self,
        request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        let ending = match request.into_inner().action() {
            pb::shutdown_request::Action::PowerOff => Ending::PowerOff,
            pb::shutdown_request::Action::Reboot => Ending::Reboot,
        };
        let agent = self.agent.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SHUTDOWN_DELAY).await;
            agent.end(ending);
        });
        Ok(Response::new(pb::ShutdownResponse {}))
    }
}

/// A stream of at most one item: the packer's error.
fn packer_outcome(
    result: tokio::sync::oneshot::Receiver<Result<(), copy::CopyError>>,
) -> impl Stream<Item = Result<pb::TarChunk, Status>> {
    let mut result = Some(result);
    tokio_stream::once(())
        .then(move |()| {
            let result = result.take();
            async move {
                match result {
                    Some(result) => result.await.ok(),
                    None => Some(Ok(())),
                }
            }
        })
        .filter_map(|r| match r {
            Some(Err(e)) => Some(Err(status::copy(e))),
            Some(Ok(())) => None,
            None => Some(Err(Status::internal("the packer stopped"))),
        })
}

fn window(size: Option<pb::WindowSize>) -> WindowSize {
    match size {
        Some(pb::WindowSize { rows, cols }) if rows > 0 && cols > 0 => WindowSize { rows, cols },
        _ => WindowSize::default(),
    }
}

fn input(message: pb::exec_input::Input) -> Option<Input> {
    use pb::exec_input::Input as In;
    match message {
        In::Start(_) => None,
        In::Stdin(data) => Some(Input::Stdin(data)),
        In::CloseStdin(_) => Some(Input::CloseStdin),
        In::Resize(size) => Some(Input::Resize(window(Some(size)))),
        In::Signal(name) => match signals::parse(&name) {
            Some(signal) => Some(Input::Signal(signal)),
            None => {
                log!("exec: ignoring unknown signal {name:?}");
                None
            }
        },
    }
}

fn to_pb(output: Output) -> pb::ExecOutput {
    use pb::exec_output::Output as Out;
    let output = match output {
        Output::Started { pid } => Out::Started(pb::Started {
            pid: u32::try_from(pid).unwrap_or(0),
        }),
        Output::Stdout(data) => Out::Stdout(data),
        Output::Stderr(data) => Out::Stderr(data),
        Output::Exited(report) => {
            let (status, core_dumped) = match report.exit {
                ProcessExit::Code(code) => (pb::exited::Status::Code(code), false),
                ProcessExit::Signal { signal, core_dumped } => {
                    (pb::exited::Status::Signal(signals::name(signal)), core_dumped)
                }
            };
            Out::Exited(pb::Exited {
                status: Some(status),
                core_dumped,
                oom: report.oom,
                message: report.message,
            })
        }
    };
    pb::ExecOutput { output: Some(output) }
}
