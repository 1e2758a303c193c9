//! Reaping: every child that ends is waited for here, with `waitpid(-1)`, whether the
//! agent started it (its status goes to the exec that waits for it) or it is an orphan
//! re-parented to us (PID 1, or a subreaper outside a VM), which is only counted.
//!
//! Starting a process and registering its pid happen under the table's lock, and the
//! reaper takes the same lock around `waitpid`: a child that ends at once is never reaped
//! before anyone waits for it, and std's spawn, which waits for a child whose exec
//! failed, never races the reaper for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessExit {
    Code(i32),
    Signal { signal: i32, core_dumped: bool },
}

impl ProcessExit {
    fn from_wait_status(status: i32) -> Option<Self> {
        if libc::WIFEXITED(status) {
            Some(Self::Code(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Self::Signal {
                signal: libc::WTERMSIG(status),
                core_dumped: libc::WCOREDUMP(status),
            })
        } else {
            None
        }
    }
}

/// Why a signal was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("pid {0} is not a running process the agent started")]
    UnknownPid(i32),
    #[error("no workload is running")]
    NoWorkload,
    #[error("kill: {0}")]
    Kill(#[source] std::io::Error),
}

/// The table of processes someone waits for.
#[derive(Default)]
pub struct Reaper {
    waiting: Mutex<HashMap<i32, oneshot::Sender<ProcessExit>>>,
    orphans_reaped: AtomicU64,
}

impl Reaper {
    /// Runs `start` (which starts one process and returns its pid and whatever else it
    /// made) with reaping held off, and registers the pid. The receiver gets its end.
    pub fn spawn<T, E>(
        &self,
        start: impl FnOnce() -> Result<(i32, T), E>,
    ) -> Result<(i32, T, oneshot::Receiver<ProcessExit>), E> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let (pid, made) = start()?;
        let (tx, rx) = oneshot::channel();
        waiting.insert(pid, tx);
        Ok((pid, made, rx))
    }

    /// Sends `signal` to `pid` if it is a process the agent started and has not reaped
    /// (under the lock, so the pid cannot have been reaped and reused meanwhile).
    pub fn signal(&self, pid: i32, signal: i32) -> Result<(), SignalError> {
        self.kill(pid, pid, signal)
    }

    /// Sends `signal` to the process group (session) led by `pid`, a process the agent
    /// started (each runs in a session of its own), while `pid` is unreaped.
    pub fn signal_group(&self, pid: i32, signal: i32) -> Result<(), SignalError> {
        self.kill(pid, -pid, signal)
    }

    fn kill(&self, pid: i32, target: i32, signal: i32) -> Result<(), SignalError> {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if !waiting.contains_key(&pid) {
            return Err(SignalError::UnknownPid(pid));
        }
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(target, signal) } < 0 {
            return Err(SignalError::Kill(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Reaps every child that has ended (call on SIGCHLD; signals coalesce, so one call
    /// may reap many). Returns how many were reaped.
    pub fn reap(&self) -> usize {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let mut reaped = 0;
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid int for waitpid to write to.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
            if pid <= 0 {
                // 0: children remain, none has ended; -1: ECHILD (none at all) or EINTR.
                if pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return reaped;
            }
            reaped += 1;
            let Some(exit) = ProcessExit::from_wait_status(status) else {
                continue;
            };
            match waiting.remove(&pid) {
                // The receiver may be gone (its exec was cancelled): nothing to tell.
                Some(tx) => drop(tx.send(exit)),
                None => {
                    self.orphans_reaped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Orphans (processes the agent did not start) reaped so far.
    pub fn orphans_reaped(&self) -> u64 {
        self.orphans_reaped.load(Ordering::Relaxed)
    }
}
