//! `vmctl-agent`: the guest agent. PID 1 of every image microVM: it mounts the kernel
//! filesystems, assembles the root, runs the workload and exec sessions, copies files in
//! and out, reaps orphans, and powers the VM off at the end; the host drives it with
//! gRPC over vsock (`proto/agent/v1/agent.proto`). See README.md.

/// Logs a line to the agent's stderr (the guest's console, in a VM).
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("vmctl-agent: {}", format_args!($($arg)*))
    };
}

pub mod agent;
pub mod clock;
pub mod config;
pub mod copy;
pub mod exec;
pub mod init;
pub mod net;
pub mod reaper;
pub mod server;
pub mod sigfd;
pub mod signals;
mod status;
pub mod user;

/// The generated gRPC code: messages, the server trait, and the client (for the host's
/// Rust callers and the tests).
#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("agent.v1");
}

/// The README's usage snippet, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The agent's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The vsock port the agent listens on by default.
pub const DEFAULT_VSOCK_PORT: u32 = 1024;
