//! A running VM: its vCPU threads, devices and event loop, and the monitor thread that
//! notices the end of the run, stops everything and reports the exit.

use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use vm_memory::GuestMemoryMmap;

use crate::device_manager::legacy::LegacyDevices;
use crate::devices::legacy::i8042::I8042Error;
use crate::event_loop::EventLoop;
use crate::vstate::exit::{ExitLatch, ExitReason, VmExit};
use crate::vstate::vcpu::{Desired, VcpuControl};
use crate::vstate::vm::Vm;

/// How long a vCPU gets to park or stop once kicked.
const VCPU_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a runtime action failed.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error("vCPU {0} did not pause within {VCPU_ACK_TIMEOUT:?}")]
    PauseTimeout(usize),
    #[error("Ctrl-Alt-Del: {0}")]
    CtrlAltDel(#[from] I8042Error),
    #[error("cannot start the VM monitor thread: {0}")]
    Spawn(std::io::Error),
}

/// Called once with the end of the run, after every vCPU has stopped.
pub type OnExit = Box<dyn FnOnce(VmExit) + Send>;

/// The running VM. Dropping it does not stop it: call [`Vmm::force_stop`].
pub struct Vmm {
    vcpus: Vec<Arc<VcpuControl>>,
    legacy: LegacyDevices,
    latch: Arc<ExitLatch>,
    _monitor: JoinHandle<()>,
}

/// What the monitor thread owns: kept alive until the run is over.
struct Parts {
    _vm: Vm,
    _memory: GuestMemoryMmap,
    threads: Vec<JoinHandle<()>>,
    event_loop: EventLoop,
}

/// What a started VM is made of, handed to [`Vmm::new`] by the builder.
pub struct VmmParts {
    pub vm: Vm,
    pub memory: GuestMemoryMmap,
    /// The started vCPU threads, each with its control.
    pub vcpus: Vec<(Arc<VcpuControl>, JoinHandle<()>)>,
    pub event_loop: EventLoop,
    pub legacy: LegacyDevices,
    /// Triggered once with the end of the run.
    pub latch: Arc<ExitLatch>,
    pub on_exit: OnExit,
}

impl Vmm {
    /// Takes over started vCPU threads and the event loop, and starts the monitor.
    pub fn new(
        VmmParts {
            vm,
            memory,
            vcpus,
            event_loop,
            legacy,
            latch,
            on_exit,
        }: VmmParts,
    ) -> Result<Self, VmmError> {
        let (controls, threads): (Vec<_>, Vec<_>) = vcpus.into_iter().unzip();
        let parts = Parts {
            _vm: vm,
            _memory: memory,
            threads,
            event_loop,
        };
        let controls2 = controls.clone();
        let latch2 = latch.clone();
        let monitor = std::thread::Builder::new()
            .name("vm-monitor".into())
            .spawn(move || monitor(parts, &controls2, &latch2, on_exit))
            .map_err(VmmError::Spawn)?;
        Ok(Self {
            vcpus: controls,
            legacy,
            latch,
            _monitor: monitor,
        })
    }

    /// Parks every vCPU outside KVM_RUN.
    pub fn pause(&self) -> Result<(), VmmError> {
        for c in &self.vcpus {
            c.set(Desired::Pause);
        }
        for (i, c) in self.vcpus.iter().enumerate() {
            if !c.wait_parked(VCPU_ACK_TIMEOUT) {
                return Err(VmmError::PauseTimeout(i));
            }
        }
        Ok(())
    }

    pub fn resume(&self) {
        for c in &self.vcpus {
            c.set(Desired::Run);
        }
    }

    pub fn ctrl_alt_del(&self) -> Result<(), VmmError> {
        self.legacy
            .i8042
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ctrl_alt_del()?;
        Ok(())
    }

    /// Ends the run (unless it already ended) with reason FORCED.
    pub fn force_stop(&self, detail: &str) {
        self.latch.trigger(VmExit::new(ExitReason::Forced, detail));
    }
}

fn monitor(mut parts: Parts, vcpus: &[Arc<VcpuControl>], latch: &ExitLatch, on_exit: OnExit) {
    let exit = loop {
        if let Some(exit) = latch.wait_timeout(Duration::from_secs(3600)) {
            break exit;
        }
    };
    for c in vcpus {
        c.set(Desired::Stop);
    }
    for (i, c) in vcpus.iter().enumerate() {
        if !c.wait_finished(VCPU_ACK_TIMEOUT) {
            tracing::error!("vCPU {i} did not stop within {VCPU_ACK_TIMEOUT:?}");
        }
    }
    parts.event_loop.stop();
    // Threads that finished are joined and the devices dropped before EXITED is published,
    // so what devices made on the host (the vsock's sockets) is gone once a client sees
    // EXITED. A stuck thread is left behind rather than blocking the API forever, and then
    // guest memory, the VM and the devices stay until the process ends, since that thread
    // may still touch them.
    let mut all_stopped = true;
    for (t, c) in std::mem::take(&mut parts.threads).into_iter().zip(vcpus) {
        if c.wait_finished(Duration::ZERO) {
            let _ = t.join();
        } else {
            all_stopped = false;
        }
    }
    if all_stopped {
        drop(parts);
    } else {
        std::mem::forget(parts);
    }
    on_exit(exit);
}
