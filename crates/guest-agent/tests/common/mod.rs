//! Runs the built `vmctl-agent` as PID 1 of new PID, mount and UTS namespaces (through
//! util-linux's `unshare`), serving on a unix socket, and drives it with the generated
//! client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use vmctl_guest_agent::pb::agent_client::AgentClient;
use vmctl_guest_agent::pb::{self, exec_input, exec_output};

pub const AGENT: &str = env!("CARGO_BIN_EXE_vmctl-agent");

/// One agent in its own namespaces. Dropping it kills `unshare`, which kills the agent
/// (`--kill-child`) and so the whole PID namespace.
pub struct Agent {
    pub unshare: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
    pub client: AgentClient<Channel>,
}

impl Agent {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts the agent with extra arguments and waits until it serves.
    pub async fn start_with(extra: &[&str]) -> Self {
        Self::start_in(None, extra, None).await
    }

    /// The same in the network namespace `netns` (made by the test with `ip netns add`),
    /// its stderr (the console, in a VM) into `stderr` when given.
    pub async fn start_in(netns: Option<&str>, extra: &[&str], stderr: Option<std::fs::File>) -> Self {
        // Outside /tmp and /run: the agent, as init, mounts fresh ones in its namespace.
        let dir = tempfile::Builder::new()
            .prefix("agent-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temporary directory");
        let socket = dir.path().join("agent.sock");
        let listen = format!("unix:{}", socket.display());
        // `ip netns exec` execs `unshare` in place: the child is still `unshare`.
        let mut unshare = match netns {
            Some(netns) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", netns, "unshare"]);
                ip
            }
            None => Command::new("unshare"),
        };
        let mut unshare = unshare
            .args(["--pid", "--fork", "--mount", "--uts", "--kill-child", "--"])
            .arg(AGENT)
            .args(["--listen", &listen, "--hostname", "agent-test"])
            .args(extra)
            .stdin(Stdio::null())
            .stderr(stderr.map_or_else(Stdio::inherit, Stdio::from))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `unshare` ({e}): the agent's tests need util-linux's unshare, \
                     iproute2's ip and root (scripts/setup installs them)"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = loop {
            if socket.exists()
                && let Ok(client) = connect(&socket).await
            {
                break Some(client);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let Some(client) = client else {
            let _ = unshare.kill();
            let _ = unshare.wait();
            panic!("the agent did not serve {} within 10 s", socket.display());
        };
        let mut agent = Self {
            unshare,
            socket,
            dir,
            client,
        };
        // Fail early and clearly if the namespace is not what the tests assume.
        let info = agent
            .client
            .get_info(pb::GetInfoRequest {})
            .await
            .expect("GetInfo");
        assert_eq!(info.get_ref().pid, 1, "the agent must be PID 1 of its namespace");
        agent
    }

    /// The agent's pid as the host sees it (the child of `unshare`).
    pub fn host_pid(&self) -> i32 {
        let pid = self.unshare.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("unshare has the agent as its child")
    }

    /// Waits for `unshare` (and so the agent) to end.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.unshare.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a command to its end with no input; collects everything.
    pub async fn run(&mut self, start: pb::ExecStart) -> Collected {
        let (_inputs, outputs) = self.exec(start).await.expect("Exec");
        collect(outputs).await
    }

    /// Runs `sh -c script` to its end.
    pub async fn sh(&mut self, script: &str) -> Collected {
        self.run(command(&["sh", "-c", script])).await
    }

    /// Starts an exec session: the sender for inputs after `start`, and the outputs.
    pub async fn exec(
        &mut self,
        start: pb::ExecStart,
    ) -> Result<(mpsc::Sender<pb::ExecInput>, tonic::Streaming<pb::ExecOutput>), tonic::Status> {
        let (tx, rx) = mpsc::channel(16);
        tx.send(pb::ExecInput {
            input: Some(exec_input::Input::Start(start)),
        })
        .await
        .unwrap();
        let response = self.client.exec(ReceiverStream::new(rx)).await?;
        Ok((tx, response.into_inner()))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let agent = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.unshare.id()))
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_owned));
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // `unshare` dying kills the agent (--kill-child) and so the namespace; wait until
        // it is dead (gone, or a zombie its new parent has yet to reap: its namespaces are
        // released by then), so its mounts no longer hold what the test made (loop devices).
        if let Some(pid) = agent {
            let deadline = Instant::now() + Duration::from_secs(5);
            let dead = || {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                    stat.rsplit(')')
                        .next()
                        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
                })
            };
            while !dead() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

pub async fn connect(socket: &Path) -> Result<AgentClient<Channel>, tonic::transport::Error> {
    let socket = socket.to_owned();
    let channel =
        Endpoint::try_from("http://agent.invalid")?
            .connect_with_connector(tower::service_fn(move |_| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
                }
            }))
            .await?;
    Ok(AgentClient::new(channel))
}

pub fn command(args: &[&str]) -> pb::ExecStart {
    pb::ExecStart {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

pub fn input(input: exec_input::Input) -> pb::ExecInput {
    pb::ExecInput { input: Some(input) }
}

/// Everything one exec produced.
#[derive(Debug, Default)]
pub struct Collected {
    pub pid: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exited: Option<pb::Exited>,
    pub largest_chunk: usize,
}

impl Collected {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn status(&self) -> pb::exited::Status {
        self.exited
            .clone()
            .expect("an Exited message")
            .status
            .expect("a status")
    }
}

pub async fn collect(mut outputs: tonic::Streaming<pb::ExecOutput>) -> Collected {
    let mut collected = Collected::default();
    while let Some(message) = outputs.message().await.expect("exec stream") {
        assert!(collected.exited.is_none(), "nothing may follow Exited");
        match message.output.expect("an output") {
            exec_output::Output::Started(started) => collected.pid = Some(started.pid),
            exec_output::Output::Stdout(data) => {
                collected.largest_chunk = collected.largest_chunk.max(data.len());
                collected.stdout.extend(data);
            }
            exec_output::Output::Stderr(data) => {
                collected.largest_chunk = collected.largest_chunk.max(data.len());
                collected.stderr.extend(data);
            }
            exec_output::Output::Exited(exited) => collected.exited = Some(exited),
        }
    }
    collected
}

/// Runs a host tool (`package` names the Debian package that has it) and returns its
/// stdout; a failure to run or a non-zero exit fails the test with its stderr.
pub fn host_tool(program: &str, package: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} ({package}) must be installed: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asks the agent to shut down and waits for it to end.
pub async fn shut_down(agent: &mut Agent) {
    agent
        .client
        .shutdown(pb::ShutdownRequest::default())
        .await
        .unwrap();
    assert!(
        agent.wait_exit(Duration::from_secs(10)).is_some(),
        "the agent did not end"
    );
}
