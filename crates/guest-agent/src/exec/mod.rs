//! Exec sessions: a command started as the caller asked, its output streamed in bounded
//! chunks (stdout and stderr apart, or one pty stream), its input, resizes and signals
//! fed to it, and its end reported once everything it printed was sent.
//!
//! Transport-free: the session reads [`Input`]s and writes [`Output`]s on channels; the
//! gRPC layer (`crate::server`) converts messages.

mod attach;
mod pty;
mod session;
mod spawn;

use std::path::PathBuf;

pub use attach::{Client, DETACHED_END_WAIT, Outputs, WorkloadLink};
pub use session::{Session, start};
pub use spawn::{DEFAULT_PATH, Lookup, Prepared, Request, lookup, prepare};

use crate::reaper::ProcessExit;
use crate::user::UserError;

/// Largest output chunk, in bytes.
pub const CHUNK_BYTES: usize = 32 * 1024;

/// Output messages a session may have queued before it waits for the client (per
/// session; HTTP/2 flow control bounds what is in flight beyond that).
pub const OUTPUT_QUEUE: usize = 8;

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u32,
    pub cols: u32,
}

impl Default for WindowSize {
    fn default() -> Self {
        Self { rows: 24, cols: 80 }
    }
}

/// Why a command was not started: the caller's mistakes.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("args: no command given")]
    NoCommand,
    /// A string the kernel cannot take (argv, environment and paths end at a NUL).
    #[error("{0}: contains a NUL byte")]
    Nul(String),
    #[error("env: {0:?} is not KEY=VALUE")]
    BadEnv(String),
    #[error("cwd: {} is not an absolute path to a directory", .0.display())]
    BadCwd(PathBuf),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("a workload is already running (pid {0})")]
    WorkloadRunning(i32),
    #[error("cannot start the command: {0}")]
    Start(#[source] std::io::Error),
}

/// What the client sends while a command runs.
#[derive(Debug)]
pub enum Input {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize(WindowSize),
    Signal(i32),
}

/// What a session reports, in this order: `Started` (unless the command could not be
/// run), output, `Exited` (always, last).
#[derive(Debug)]
pub enum Output {
    Started { pid: i32 },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exited(ExitReport),
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitReport {
    pub exit: ProcessExit,
    /// Killed by the kernel's OOM killer, as far as the guest can tell.
    pub oom: bool,
    /// Why the command did not run ("" when it ran).
    pub message: String,
}

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An exec beside the workload: killed if its client goes away.
    Exec,
    /// The VM's main command; `keep_running`: no power off when it ends.
    Workload { keep_running: bool },
}
