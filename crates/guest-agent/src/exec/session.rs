//! One exec session, from start to the last output.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch};

use super::attach::Outputs;
use super::spawn::{self, Lookup, Stdio3};
use super::{CHUNK_BYTES, ExecError, ExitReport, Input, Output, Prepared, Role, pty};
use crate::agent::{Agent, WorkloadSlot};
use crate::reaper::ProcessExit;

/// Once the command has ended, output still arriving is forwarded; the streams are
/// closed when nothing came for this long (a background child may keep them open).
const DRAIN_IDLE: Duration = Duration::from_millis(500);

/// How long the end of the workload waits for the client to close its side (it has
/// read the exit) before the VM powers off.
const WORKLOAD_ACK_WAIT: Duration = Duration::from_secs(2);

/// A command that was started, or found not runnable.
pub struct Session {
    agent: Arc<Agent>,
    role: Role,
    state: State,
}

enum State {
    Running {
        pid: i32,
        exit: oneshot::Receiver<ProcessExit>,
        io: Stdio3,
        oom_kills_before: u64,
        _workload: Option<WorkloadSlot>,
    },
    /// 127 / 126, reported on `tty`'s stream or stderr.
    NotRunnable { report: ExitReport, tty: bool },
}

/// Starts a prepared command (or finds it cannot run: not an error, a 127/126 exit).
pub fn start(agent: &Arc<Agent>, prepared: Prepared, role: Role) -> Result<Session, ExecError> {
    let workload = match role {
        Role::Workload { .. } => Some(agent.claim_workload().map_err(ExecError::WorkloadRunning)?),
        Role::Exec => None,
    };
    let path = prepared
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(spawn::DEFAULT_PATH, |(_, v)| v.as_str());
    let name = &prepared.args[0];
    let not_runnable = |code, message: String| Session {
        agent: agent.clone(),
        role,
        state: State::NotRunnable {
            report: ExitReport {
                exit: ProcessExit::Code(code),
                oom: false,
                message,
            },
            tty: prepared.tty.is_some(),
        },
    };
    let program = match spawn::lookup(name, path, &prepared.cwd) {
        Lookup::Found(program) => program,
        Lookup::NotFound => {
            return Ok(not_runnable(
                127,
                format!("vmctl-agent: {name}: command not found"),
            ));
        }
        Lookup::NotPermitted(p) => {
            return Ok(not_runnable(
                126,
                format!("vmctl-agent: {name}: permission denied ({})", p.display()),
            ));
        }
    };
    let oom_kills_before = oom_kills();
    let (pid, io, exit) = match agent.reaper.spawn(|| spawn::start(&prepared, &program)) {
        Ok(started) => started,
        Err(e) => {
            let code = match e.raw_os_error() {
                Some(libc::ENOENT) => 127,
                Some(libc::EACCES | libc::EPERM | libc::ENOEXEC | libc::EISDIR | libc::ETXTBSY) => 126,
                _ => return Err(ExecError::Start(e)),
            };
            return Ok(not_runnable(code, format!("vmctl-agent: {name}: {e}")));
        }
    };
    if let Some(slot) = &workload {
        slot.started(pid);
    }
    Ok(Session {
        agent: agent.clone(),
        role,
        state: State::Running {
            pid,
            exit,
            io,
            oom_kills_before,
            _workload: workload,
        },
    })
}

impl Session {
    /// Runs the session to its end: feeds `inputs` to the command, sends its output and
    /// finally its exit on `outputs`. If an exec's client goes away, the exec is killed;
    /// the workload runs on, its output waiting for a client to attach (attach.rs).
    pub async fn run(self, inputs: mpsc::Receiver<Input>, outputs: Outputs) {
        let Session { agent, role, state } = self;
        let (pid, exit, io, oom_kills_before, workload) = match state {
            State::NotRunnable { report, tty } => {
                let line = format!("{}\n", report.message).into_bytes();
                drop(inputs);
                outputs.ended();
                let _ = outputs
                    .send(if tty {
                        Output::Stdout(line)
                    } else {
                        Output::Stderr(line)
                    })
                    .await;
                let acked = outputs.send_exit(Output::Exited(report)).await;
                // A workload that could not run has ended all the same.
                if let Role::Workload { keep_running } = role {
                    agent.clear_workload_link();
                    wait_acked(acked).await;
                    agent.workload_ended(keep_running);
                }
                return;
            }
            State::Running {
                pid,
                exit,
                io,
                oom_kills_before,
                _workload,
            } => (pid, exit, io, oom_kills_before, _workload),
        };
        let _ = outputs.send(Output::Started { pid }).await;

        let (ended_tx, ended) = watch::channel(false);
        let (sources, sink): (Vec<(Source, bool)>, Sink) = match io {
            Stdio3::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                let sources = [(stdout, true), (stderr, false)]
                    .into_iter()
                    .filter_map(|(fd, is_stdout)| {
                        pipe::Receiver::from_owned_fd(fd)
                            .ok()
                            .map(|r| (Source::Pipe(r), is_stdout))
                    })
                    .collect();
                let sink = match stdin.map(pipe::Sender::from_owned_fd) {
                    Some(Ok(sender)) => Sink::Pipe(Some(sender)),
                    _ => Sink::Pipe(None),
                };
                (sources, sink)
            }
            Stdio3::Pty { master } => match register(master) {
                Ok(master) => {
                    let master = Arc::new(master);
                    (vec![(Source::Pty(master.clone()), true)], Sink::Pty(master))
                }
                // Not expected (epoll refusing a pty); the command runs unheard.
                Err(e) => {
                    log!("exec: cannot watch the pty of pid {pid}: {e}");
                    (Vec::new(), Sink::Pipe(None))
                }
            },
        };
        let pumps: Vec<_> = sources
            .into_iter()
            .map(|(source, is_stdout)| tokio::spawn(pump(source, is_stdout, outputs.clone(), ended.clone())))
            .collect();
        let feeder = tokio::spawn({
            let agent = agent.clone();
            async move { feed(&agent, pid, inputs, sink).await }
        });

        // The end of the command; a client gone meanwhile kills an exec.
        tokio::pin!(exit);
        let mut client_gone = false;
        let process_exit = loop {
            tokio::select! {
                status = &mut exit => break status.ok(),
                _ = outputs.client_gone(), if !client_gone => {
                    client_gone = true;
                    // The whole session: what the command started goes with it.
                    if role == Role::Exec {
                        let _ = agent.reaper.signal_group(pid, libc::SIGKILL);
                    }
                }
            }
        };
        let _ = ended_tx.send(true);
        outputs.ended();
        for pump in pumps {
            let _ = pump.await;
        }
        // The reaper always answers; without a status (it dropped us) say "killed".
        let exit = process_exit.unwrap_or(ProcessExit::Signal {
            signal: libc::SIGKILL,
            core_dumped: false,
        });
        let oom = matches!(
            exit,
            ProcessExit::Signal {
                signal: libc::SIGKILL,
                ..
            }
        ) && oom_kills() > oom_kills_before;
        let acked = outputs
            .send_exit(Output::Exited(ExitReport {
                exit,
                oom,
                message: String::new(),
            }))
            .await;
        drop(outputs);

        if let Role::Workload { keep_running } = role {
            agent.clear_workload_link();
            drop(workload);
            wait_acked(acked).await;
            agent.workload_ended(keep_running);
        }
        feeder.abort();
    }
}

/// Lets the client that took the workload's exit read it and close its side before the VM goes down.
async fn wait_acked(acked: Option<watch::Receiver<bool>>) {
    if let Some(mut done) = acked {
        let _ = tokio::time::timeout(WORKLOAD_ACK_WAIT, done.wait_for(|done| *done)).await;
    }
}

/// Where output comes from: a pipe, or the pty's master.
enum Source {
    Pipe(pipe::Receiver),
    Pty(Arc<AsyncFd<OwnedFd>>),
}

impl Source {
    /// Reads what is there (cancel-safe: nothing is consumed until the read succeeds).
    /// 0 is the end: a pipe's EOF, or EIO on a pty whose slave is closed everywhere.
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Pipe(pipe) => loop {
                pipe.readable().await?;
                match pipe.try_read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    other => return other,
                }
            },
            Source::Pty(master) => loop {
                let mut ready = master.readable().await?;
                match ready.try_io(|fd| read_fd(fd.get_ref(), buf)) {
                    Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                    Ok(result) => return result,
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

/// Where input goes: the stdin pipe (None once closed or absent), or the pty's master.
enum Sink {
    Pipe(Option<pipe::Sender>),
    Pty(Arc<AsyncFd<OwnedFd>>),
}

fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns `fd`, which stays open and the same descriptor until the
    // AsyncFd is dropped.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

fn read_fd(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reads at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn write_fd(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: writes at most `buf.len()` bytes from `buf`.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Forwards one output stream in chunks of at most [`CHUNK_BYTES`], waiting for the
/// client (the bounded channel) before reading more. After the command has ended it
/// stops at the first pause of [`DRAIN_IDLE`].
async fn pump(source: Source, is_stdout: bool, outputs: Outputs, mut ended: watch::Receiver<bool>) {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut forward = true;
    loop {
        let read = if *ended.borrow() {
            match tokio::time::timeout(DRAIN_IDLE, source.read(&mut buf)).await {
                Ok(read) => read,
                Err(_idle) => return,
            }
        } else {
            tokio::select! {
                read = source.read(&mut buf) => read,
                _ = ended.changed() => continue,
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if forward {
            let chunk = buf[..n].to_vec();
            let message = if is_stdout {
                Output::Stdout(chunk)
            } else {
                Output::Stderr(chunk)
            };
            // Nobody will read it (an exec's client gone; the workload ended with nobody
            // attached in time): keep draining so the command is not blocked on a full pipe.
            forward = outputs.send(message).await.is_ok();
        }
    }
}

/// Stdin messages that may wait for a command that does not read its stdin, before the
/// inputs behind them (signals, resizes) wait too.
const STDIN_QUEUE: usize = 8;

/// Feeds the client's inputs to the command until the client stops sending. Stdin is
/// written by a task of its own, so a signal or a resize is not held up by input the
/// command has not read (up to [`STDIN_QUEUE`] messages of it).
async fn feed(agent: &Agent, pid: i32, mut inputs: mpsc::Receiver<Input>, sink: Sink) {
    let resize_target = match &sink {
        Sink::Pty(master) => Some(master.clone()),
        Sink::Pipe(_) => None,
    };
    let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
    let writer = tokio::spawn(write_stdin(stdin_rx, sink));
    while let Some(input) = inputs.recv().await {
        match input {
            Input::Stdin(_) | Input::CloseStdin => {
                if stdin_tx.send(input).await.is_err() {
                    break;
                }
            }
            Input::Resize(size) => {
                if let Some(master) = &resize_target {
                    let _ = pty::resize(master.get_ref(), size);
                }
            }
            Input::Signal(signal) => {
                let _ = agent.reaper.signal(pid, signal);
            }
        }
    }
    // The client is done sending: what it sent is still written, unless the command ends.
    drop(stdin_tx);
    let _ = writer.await;
}

/// Writes stdin in order; closes it (a pipe) or sends the end-of-file character (a pty).
async fn write_stdin(mut stdin: mpsc::Receiver<Input>, mut sink: Sink) {
    while let Some(input) = stdin.recv().await {
        match (input, &mut sink) {
            (Input::Stdin(data), Sink::Pipe(pipe)) => {
                if let Some(writer) = pipe
                    && writer.write_all(&data).await.is_err()
                {
                    *pipe = None;
                }
            }
            (Input::Stdin(data), Sink::Pty(master)) => {
                let _ = write_all_pty(master, &data).await;
            }
            (Input::CloseStdin, Sink::Pipe(pipe)) => *pipe = None,
            // The terminal's end-of-file character (VEOF, ^D by default).
            (Input::CloseStdin, Sink::Pty(master)) => {
                let _ = write_all_pty(master, &[0x04]).await;
            }
            _ => {}
        }
    }
}

async fn write_all_pty(master: &AsyncFd<OwnedFd>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let mut ready = master.writable().await?;
        match ready.try_io(|fd| write_fd(fd.get_ref(), data)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}

/// The kernel's count of OOM kills (`oom_kill` in /proc/vmstat; 0 if unreadable).
fn oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
        })
        .unwrap_or(0)
}
