//! vCPUs: configuration for the Linux boot protocol and the per-vCPU thread that runs
//! KVM_RUN and routes exits to the buses.
//!
//! Pausing and stopping: the controller changes a vCPU's [`Desired`] state and kicks
//! its thread with [`kick_signal`]. The signal handler sets `immediate_exit` in the
//! thread's `kvm_run`, so KVM_RUN returns EINTR whether the thread was inside it or
//! about to enter it; the thread then parks (paused) or returns (stopped).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::{CpuId, KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vmm_sys_util::signal::{SIGRTMIN, register_signal_handler};

use super::exit::{ExitLatch, ExitReason, VmExit};
use super::vm::Vm;
use crate::arch::x86_64::{cpuid, msr, regs};
use crate::device_manager::bus::Bus;
use crate::metrics::{ExitKind, VmmMetrics};

/// A failed vCPU-level KVM call; `what` names the step.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    #[error("vCPU {index}: {what}: {source}")]
    Kvm {
        index: u8,
        what: &'static str,
        source: kvm_ioctls::Error,
    },
    #[error("vCPU {index}: KVM accepted only {set} of {wanted} boot MSRs")]
    Msrs { index: u8, set: usize, wanted: usize },
    #[error(transparent)]
    MsrList(#[from] msr::MsrError),
    #[error("cannot start the thread for vCPU {index}: {source}")]
    Spawn { index: u8, source: std::io::Error },
}

/// The offset from SIGRTMIN of the signal used to kick vCPU threads out of KVM_RUN.
const KICK_SIGNAL_OFFSET: i32 = 0;

/// The real-time signal that kicks a vCPU thread.
pub fn kick_signal() -> i32 {
    SIGRTMIN() + KICK_SIGNAL_OFFSET
}

thread_local! {
    /// This thread's `kvm_run.immediate_exit`, for the kick handler.
    static IMMEDIATE_EXIT: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let _ = IMMEDIATE_EXIT.try_with(|p| {
        let p = p.get();
        if !p.is_null() {
            // SAFETY: the pointer is into this thread's own kvm_run mapping, set by the
            // vCPU thread before its first KVM_RUN and valid until the thread ends.
            unsafe { std::ptr::write_volatile(p, 1) };
        }
    });
}

fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = register_signal_handler(kick_signal(), on_kick) {
            tracing::error!("cannot install the vCPU kick signal handler: {e}");
        }
    });
}

/// What the controller wants a vCPU thread to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Run,
    Pause,
    Stop,
}

#[derive(Debug)]
struct ControlState {
    desired: Desired,
    parked: bool,
    finished: bool,
    thread: Option<libc::pthread_t>,
}

/// Shared between the controller and one vCPU thread.
#[derive(Debug)]
pub struct VcpuControl {
    state: Mutex<ControlState>,
    cond: Condvar,
}

impl Default for VcpuControl {
    fn default() -> Self {
        Self {
            state: Mutex::new(ControlState {
                desired: Desired::Run,
                parked: false,
                finished: false,
                thread: None,
            }),
            cond: Condvar::new(),
        }
    }
}

impl VcpuControl {
    fn lock(&self) -> MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the thread to pause, stop or run, kicking it out of KVM_RUN when needed.
    pub fn set(&self, desired: Desired) {
        let mut s = self.lock();
        s.desired = desired;
        if desired != Desired::Run
            && let (Some(thread), false) = (s.thread, s.finished)
        {
            // SAFETY: the thread is not yet finished and never detached, so its
            // pthread_t is valid; the handler only sets a flag.
            unsafe { libc::pthread_kill(thread, kick_signal()) };
        }
        self.cond.notify_all();
    }

    /// Waits until the thread is parked (or finished), up to `timeout`.
    pub fn wait_parked(&self, timeout: Duration) -> bool {
        let s = self.lock();
        let (s, _) = self
            .cond
            .wait_timeout_while(s, timeout, |s| !s.parked && !s.finished)
            .unwrap_or_else(PoisonError::into_inner);
        s.parked || s.finished
    }

    /// Waits until the thread has returned, up to `timeout`.
    pub fn wait_finished(&self, timeout: Duration) -> bool {
        let s = self.lock();
        let (s, _) = self
            .cond
            .wait_timeout_while(s, timeout, |s| !s.finished)
            .unwrap_or_else(PoisonError::into_inner);
        s.finished
    }

    /// Called by the vCPU thread between runs: parks while paused; false means stop.
    fn may_run(&self) -> bool {
        let mut s = self.lock();
        loop {
            match s.desired {
                Desired::Run => {
                    s.parked = false;
                    return true;
                }
                Desired::Stop => return false,
                Desired::Pause => {
                    if !s.parked {
                        s.parked = true;
                        self.cond.notify_all();
                    }
                    s = self.cond.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    fn mark_started(&self) {
        // SAFETY: pthread_self has no preconditions.
        self.lock().thread = Some(unsafe { libc::pthread_self() });
    }

    fn mark_finished(&self) {
        self.lock().finished = true;
        self.cond.notify_all();
    }
}

/// What a vCPU thread needs to handle exits.
#[derive(Clone)]
pub struct VcpuIo {
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub latch: Arc<ExitLatch>,
    pub metrics: Arc<VmmMetrics>,
}

/// One vCPU, configured and not yet running.
pub struct Vcpu {
    index: u8,
    fd: VcpuFd,
}

impl Vcpu {
    pub fn new(vm: &Vm, index: u8) -> Result<Self, VcpuError> {
        let fd = vm
            .fd()
            .create_vcpu(u64::from(index))
            .map_err(|source| VcpuError::Kvm {
                index,
                what: "KVM_CREATE_VCPU",
                source,
            })?;
        Ok(Self { index, fd })
    }

    fn kvm(&self, what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VcpuError {
        let index = self.index;
        move |source| VcpuError::Kvm { index, what, source }
    }

    /// CPUID, MSRs and local APIC for every vCPU; the boot vCPU (index 0) also gets the
    /// 64-bit entry state. Application processors stay in wait-for-SIPI until the guest
    /// wakes them with INIT-SIPI-SIPI, as on real hardware.
    pub fn configure(&self, supported_cpuid: &CpuId, count: u8, entry: u64) -> Result<(), VcpuError> {
        let mut cpuid = supported_cpuid.clone();
        cpuid::for_vcpu(&mut cpuid, self.index, count);
        self.fd.set_cpuid2(&cpuid).map_err(self.kvm("KVM_SET_CPUID2"))?;

        let msrs = msr::boot_msrs()?;
        let set = self.fd.set_msrs(&msrs).map_err(self.kvm("KVM_SET_MSRS"))?;
        if set != msrs.as_slice().len() {
            return Err(VcpuError::Msrs {
                index: self.index,
                set,
                wanted: msrs.as_slice().len(),
            });
        }

        let mut lapic = self.fd.get_lapic().map_err(self.kvm("KVM_GET_LAPIC"))?;
        regs::set_lint(&mut lapic);
        self.fd.set_lapic(&lapic).map_err(self.kvm("KVM_SET_LAPIC"))?;

        if self.index == 0 {
            self.fd
                .set_fpu(&regs::boot_fpu())
                .map_err(self.kvm("KVM_SET_FPU"))?;
            let mut sregs = self.fd.get_sregs().map_err(self.kvm("KVM_GET_SREGS"))?;
            regs::set_long_mode(&mut sregs);
            self.fd.set_sregs(&sregs).map_err(self.kvm("KVM_SET_SREGS"))?;
            self.fd
                .set_regs(&regs::boot_regs(entry))
                .map_err(self.kvm("KVM_SET_REGS"))?;
        }
        Ok(())
    }

    /// Starts the vCPU thread. It runs until the VM exits or it is told to stop.
    pub fn start(self, io: VcpuIo, control: Arc<VcpuControl>) -> Result<JoinHandle<()>, VcpuError> {
        install_kick_handler();
        let index = self.index;
        let started = Arc::new(AtomicBool::new(false));
        let started2 = started.clone();
        let handle = std::thread::Builder::new()
            .name(format!("vcpu{index}"))
            .spawn(move || {
                let mut vcpu = self;
                control.mark_started();
                started2.store(true, Ordering::SeqCst);
                IMMEDIATE_EXIT.with(|p| p.set(&mut vcpu.fd.get_kvm_run().immediate_exit as *mut u8));
                vcpu.run_loop(&io, &control);
                IMMEDIATE_EXIT.with(|p| p.set(std::ptr::null_mut()));
                control.mark_finished();
            })
            .map_err(|source| VcpuError::Spawn { index, source })?;
        // Kicks need the thread's id: wait (briefly) until it has recorded it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !started.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::yield_now();
        }
        Ok(handle)
    }

    fn run_loop(&mut self, io: &VcpuIo, control: &VcpuControl) {
        while !io.latch.is_set() && control.may_run() {
            if let Some(exit) = self.run_once(io) {
                io.latch.trigger(exit);
                return;
            }
        }
    }

    /// One KVM_RUN and its exit. Returns the VM's end when this exit ends it.
    fn run_once(&mut self, io: &VcpuIo) -> Option<VmExit> {
        let index = self.index;
        let m = &io.metrics;
        let result = self.fd.run();
        let internal_error = match result {
            Ok(VcpuExit::IoOut(port, data)) => {
                m.count_exit(ExitKind::IoOut);
                io.pio.write(u64::from(port), data);
                return None;
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                m.count_exit(ExitKind::IoIn);
                io.pio.read(u64::from(port), data);
                return None;
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                m.count_exit(ExitKind::MmioRead);
                io.mmio.read(addr, data);
                return None;
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                m.count_exit(ExitKind::MmioWrite);
                io.mmio.write(addr, data);
                return None;
            }
            Ok(VcpuExit::Hlt) => {
                m.count_exit(ExitKind::Hlt);
                return Some(VmExit::new(ExitReason::Shutdown, format!("vCPU {index} halted")));
            }
            Ok(VcpuExit::Shutdown) => {
                m.count_exit(ExitKind::Shutdown);
                return Some(VmExit::new(
                    ExitReason::Reset,
                    format!("vCPU {index}: triple fault (KVM_EXIT_SHUTDOWN)"),
                ));
            }
            Ok(VcpuExit::SystemEvent(kind, data)) => {
                m.count_exit(ExitKind::SystemEvent);
                let (reason, what) = match kind {
                    KVM_SYSTEM_EVENT_SHUTDOWN => (ExitReason::Shutdown, "shutdown"),
                    KVM_SYSTEM_EVENT_RESET => (ExitReason::Reset, "reset"),
                    KVM_SYSTEM_EVENT_CRASH => (ExitReason::KvmError, "crash"),
                    _ => (ExitReason::KvmError, "unknown system event"),
                };
                return Some(VmExit::new(
                    reason,
                    format!("vCPU {index}: system event {what} (type {kind}, data {data:x?})"),
                ));
            }
            Ok(VcpuExit::FailEntry(hw_reason, cpu)) => {
                m.count_exit(ExitKind::FailEntry);
                return Some(VmExit::new(
                    ExitReason::KvmError,
                    format!(
                        "KVM entry failed on vCPU {index} (host cpu {cpu}): \
                         hardware_entry_failure_reason={hw_reason:#x}"
                    ),
                ));
            }
            Ok(VcpuExit::InternalError) => true,
            Ok(other) => {
                m.count_exit(ExitKind::Other);
                return Some(VmExit::new(
                    ExitReason::VmmError,
                    format!("vCPU {index}: unexpected KVM exit {other:?}"),
                ));
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                m.count_exit(ExitKind::Interrupted);
                self.fd.set_kvm_immediate_exit(0);
                return None;
            }
            Err(e) => {
                return Some(VmExit::new(
                    ExitReason::KvmError,
                    format!("KVM_RUN failed on vCPU {index}: {e}"),
                ));
            }
        };
        debug_assert!(internal_error);
        m.count_exit(ExitKind::InternalError);
        Some(VmExit::new(ExitReason::KvmError, self.internal_error_detail()))
    }

    /// Describes a KVM_EXIT_INTERNAL_ERROR: the suberror, its data words and where the
    /// guest was.
    fn internal_error_detail(&mut self) -> String {
        let index = self.index;
        // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so `internal` is the
        // active member of the exit union.
        let internal = unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal };
        let what = match internal.suberror {
            kvm_bindings::KVM_INTERNAL_ERROR_EMULATION => "emulation failure",
            kvm_bindings::KVM_INTERNAL_ERROR_SIMUL_EX => "exception while delivering an exception",
            kvm_bindings::KVM_INTERNAL_ERROR_DELIVERY_EV => "event delivery failed",
            kvm_bindings::KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON => "unexpected exit reason",
            _ => "unknown suberror",
        };
        let n = (internal.ndata as usize).min(internal.data.len());
        let rip = self
            .fd
            .get_regs()
            .map_or_else(|e| format!("unknown ({e})"), |r| format!("{:#x}", r.rip));
        format!(
            "KVM internal error on vCPU {index}: {what} (suberror {}) at rip={rip}, data {:x?}",
            internal.suberror,
            &internal.data[..n]
        )
    }
}
