//! How a VM's run ends. The first component to see an end (a vCPU on a KVM exit, the
//! exit port, the i8042 reset line, the controller on a forced stop) records it in the
//! [`ExitLatch`]; later ends are ignored. Everyone else polls or waits on the latch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Why the VM stopped (mirrors the API's `ExitReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest wrote its exit code to the exit port.
    GuestExit,
    /// The guest reset the machine (i8042 reset line, triple fault).
    Reset,
    /// The guest powered off or halted for good.
    Shutdown,
    /// Stopped by the VMM (Shutdown timeout, SIGTERM).
    Forced,
    /// KVM could not run the guest.
    KvmError,
    /// The VMM failed.
    VmmError,
}

/// The end of a VM's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmExit {
    pub reason: ExitReason,
    /// The guest's exit code for [`ExitReason::GuestExit`]; 0 otherwise.
    pub code: i32,
    pub detail: String,
}

impl VmExit {
    pub fn new(reason: ExitReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            code: 0,
            detail: detail.into(),
        }
    }

    pub fn guest_exit(code: i32) -> Self {
        Self {
            reason: ExitReason::GuestExit,
            code,
            detail: format!("guest wrote {code} to the exit port"),
        }
    }
}

/// Set once, read by many.
#[derive(Debug, Default)]
pub struct ExitLatch {
    stopping: AtomicBool,
    exit: Mutex<Option<VmExit>>,
    cond: Condvar,
}

impl ExitLatch {
    fn lock(&self) -> MutexGuard<'_, Option<VmExit>> {
        self.exit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `exit` unless an earlier one is already recorded. Returns true when
    /// this call was the first.
    pub fn trigger(&self, exit: VmExit) -> bool {
        let mut slot = self.lock();
        if slot.is_some() {
            return false;
        }
        tracing::info!(reason = ?exit.reason, code = exit.code, detail = %exit.detail, "VM exit");
        *slot = Some(exit);
        self.stopping.store(true, Ordering::SeqCst);
        self.cond.notify_all();
        true
    }

    /// Cheap check for the vCPU loops.
    pub fn is_set(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub fn get(&self) -> Option<VmExit> {
        self.lock().clone()
    }

    /// Waits until an exit is recorded, or `timeout` passes.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<VmExit> {
        let guard = self.lock();
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |e| e.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_first_exit_wins() {
        let latch = ExitLatch::default();
        assert!(!latch.is_set());
        assert!(latch.trigger(VmExit::guest_exit(7)));
        assert!(!latch.trigger(VmExit::new(ExitReason::Forced, "later")));
        assert!(latch.is_set());
        assert_eq!(latch.get().unwrap().code, 7);
    }

    #[test]
    fn waiters_wake_on_trigger() {
        let latch = Arc::new(ExitLatch::default());
        let l2 = latch.clone();
        let t = std::thread::spawn(move || l2.wait_timeout(Duration::from_secs(10)));
        latch.trigger(VmExit::new(ExitReason::Reset, "reset"));
        assert_eq!(t.join().unwrap().unwrap().reason, ExitReason::Reset);
        assert!(
            ExitLatch::default()
                .wait_timeout(Duration::from_millis(1))
                .is_none()
        );
    }
}
