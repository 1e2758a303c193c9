//! The agent's state and decisions, whatever the transport: the reaper, the workload,
//! what a stop signal means, and when the agent (and, as init, the VM) goes down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::clock;
use crate::exec::WorkloadLink;
use crate::reaper::{Reaper, SignalError};

/// How the agent ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    PowerOff,
    Reboot,
}

/// The agent.
pub struct Agent {
    pub reaper: Reaper,
    /// Running as the guest's init: mounts were made, the end powers the VM off.
    pub init: bool,
    pub start_boottime_ns: u64,
    workload_exec_boottime_ns: AtomicU64,
    /// The workload: None, Some(0) while it starts, Some(pid) while it runs.
    workload: Mutex<Option<i32>>,
    /// The running workload's output link, for a client that attaches after a restart.
    workload_link: Mutex<Option<Arc<WorkloadLink>>>,
    endings: mpsc::UnboundedSender<Ending>,
}

/// Held by the workload's session; frees the slot when dropped.
pub struct WorkloadSlot(Arc<Agent>);

impl Agent {
    /// A new agent and the receiver of its ending (the main loop's).
    pub fn new(init: bool, start_boottime_ns: u64) -> (Self, mpsc::UnboundedReceiver<Ending>) {
        let (endings, ending) = mpsc::unbounded_channel();
        let agent = Self {
            reaper: Reaper::default(),
            init,
            start_boottime_ns,
            workload_exec_boottime_ns: AtomicU64::new(0),
            workload: Mutex::new(None),
            workload_link: Mutex::new(None),
            endings,
        };
        (agent, ending)
    }

    /// CLOCK_BOOTTIME when the workload was exec'd (0: none yet).
    pub fn workload_exec_boottime_ns(&self) -> u64 {
        self.workload_exec_boottime_ns.load(Ordering::Relaxed)
    }

    fn workload(&self) -> std::sync::MutexGuard<'_, Option<i32>> {
        self.workload.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the workload slot, or says which pid holds it.
    pub fn claim_workload(self: &Arc<Self>) -> Result<WorkloadSlot, i32> {
        let mut workload = self.workload();
        if let Some(pid) = *workload {
            return Err(pid);
        }
        *workload = Some(0);
        Ok(WorkloadSlot(self.clone()))
    }

    fn link(&self) -> std::sync::MutexGuard<'_, Option<Arc<WorkloadLink>>> {
        self.workload_link.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The workload's session reaches its clients through `link` from now on.
    pub fn set_workload_link(&self, link: Arc<WorkloadLink>) {
        *self.link() = Some(link);
    }

    /// The workload's session is over: nothing to attach to any more.
    pub fn clear_workload_link(&self) {
        *self.link() = None;
    }

    /// The workload to attach to, and its pid: None when none has started (or its session is over).
    pub fn attachable_workload(&self) -> Option<(Arc<WorkloadLink>, i32)> {
        let link = self.link().clone()?;
        match *self.workload() {
            Some(pid) if pid > 0 => Some((link, pid)),
            _ => None,
        }
    }

    /// Signals the workload.
    pub fn signal_workload(&self, signal: i32) -> Result<(), SignalError> {
        match *self.workload() {
            Some(pid) if pid > 0 => self.reaper.signal(pid, signal),
            _ => Err(SignalError::NoWorkload),
        }
    }

    /// The agent got SIGTERM or SIGINT (a stop from the VMM; Ctrl-Alt-Del reaches init
    /// as SIGINT): forwarded to the workload as SIGTERM. Without a workload the agent
    /// ends (as init: the VM powers off).
    pub fn stop_requested(&self) {
        match self.signal_workload(libc::SIGTERM) {
            Ok(()) => log!("stop requested: SIGTERM forwarded to the workload"),
            Err(_) => {
                log!("stop requested, no workload running: shutting down");
                self.end(Ending::PowerOff);
            }
        }
    }

    /// The workload has ended and its exit was reported. As init, the VM powers off
    /// unless the workload was started with `keep_running`.
    pub fn workload_ended(&self, keep_running: bool) {
        if self.init && !keep_running {
            log!("the workload has ended: powering off");
            self.end(Ending::PowerOff);
        }
    }

    /// Ends the agent (the main loop syncs and, as init, powers off or reboots).
    pub fn end(&self, ending: Ending) {
        let _ = self.endings.send(ending);
    }
}

impl WorkloadSlot {
    /// The workload is running as `pid`.
    pub fn started(&self, pid: i32) {
        *self.0.workload() = Some(pid);
        self.0
            .workload_exec_boottime_ns
            .store(clock::boottime_ns(), Ordering::Relaxed);
    }
}

impl Drop for WorkloadSlot {
    fn drop(&mut self) {
        *self.0.workload() = None;
    }
}
