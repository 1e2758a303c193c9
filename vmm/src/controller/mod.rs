//! The transport-agnostic request handler: owns the configuration, the running VM and
//! its state, and carries out API actions. The gRPC front-end (`crate::api`) only
//! converts messages and errors.

mod console;
pub mod state;

pub use console::ConsoleSession;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kvm_ioctls::Kvm;
use tokio::sync::watch;

use crate::builder::{self, StartError, VmContext};
use crate::devices::legacy::serial::{ConsoleBuffer, InputFullError, InputQueue};
use crate::metrics::VmmMetrics;
use crate::resources::{DriveSetError, NetSetError, VmResources};
use crate::vmm::{Vmm, VmmError};
use crate::vmm_config::boot_source::{BootSourceConfig, BootSourceError};
use crate::vmm_config::drive::{DriveConfig, DriveError};
use crate::vmm_config::machine_config::{MachineConfig, MachineConfigError};
use crate::vmm_config::net::{self, NetConfigError, NetworkInterfaceConfig};
use crate::vmm_config::vsock::{self, VsockConfig, VsockConfigError};
use crate::vstate::exit::{ExitLatch, ExitReason, VmExit};
use state::{Action, Phase, StateError, VmState};

/// How long Shutdown waits for the VM to stop after forcing it.
const FORCED_STOP_WAIT: Duration = Duration::from_secs(5);
/// Shutdown's grace period when the request does not give one.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(5000);

/// Why an action failed. The API maps each variant to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    MachineConfig(#[from] MachineConfigError),
    #[error(transparent)]
    BootSource(#[from] BootSourceError),
    #[error(transparent)]
    Drive(#[from] DriveError),
    #[error(transparent)]
    DriveSet(#[from] DriveSetError),
    #[error(transparent)]
    Vsock(#[from] VsockConfigError),
    #[error(transparent)]
    Net(#[from] NetConfigError),
    #[error(transparent)]
    NetSet(#[from] NetSetError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Vmm(#[from] VmmError),
    #[error(transparent)]
    ConsoleInput(#[from] InputFullError),
    #[error("cannot open KVM at {}: {source}", path.display())]
    Kvm {
        path: PathBuf,
        source: kvm_ioctls::Error,
    },
}

/// Facts about the host the controller needs.
#[derive(Debug, Clone)]
pub struct HostLimits {
    pub kvm_path: PathBuf,
    pub max_vcpus: u32,
}

struct Inner {
    resources: VmResources,
    vmm: Option<Vmm>,
}

/// The controller. One per process (one VM per process).
pub struct Controller {
    host: HostLimits,
    inner: Mutex<Inner>,
    state: Arc<watch::Sender<VmState>>,
    ctx: VmContext,
}

impl Controller {
    pub fn new(host: HostLimits) -> std::io::Result<Self> {
        Ok(Self {
            host,
            inner: Mutex::new(Inner {
                resources: VmResources::default(),
                vmm: None,
            }),
            state: Arc::new(watch::channel(VmState::new(Phase::Configuring)).0),
            ctx: VmContext {
                latch: Arc::new(ExitLatch::default()),
                metrics: Arc::new(VmmMetrics::default()),
                console: Arc::new(ConsoleBuffer::default()),
                input: Arc::new(InputQueue::new()?),
            },
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn phase(&self) -> Phase {
        self.state.borrow().phase
    }

    fn check(&self, action: Action) -> Result<(), StateError> {
        state::check(action, self.phase())
    }

    // --- configuration -------------------------------------------------------------

    pub fn put_machine_config(
        &self,
        vcpu_count: u32,
        mem_size_mib: u32,
    ) -> Result<MachineConfig, ControllerError> {
        let mut inner = self.lock();
        self.check(Action::Configure)?;
        let config = MachineConfig::new(vcpu_count, mem_size_mib, self.host.max_vcpus)?;
        inner.resources.machine = config;
        Ok(config)
    }

    pub fn machine_config(&self) -> MachineConfig {
        self.lock().resources.machine
    }

    pub fn put_boot_source(
        &self,
        kernel_image_path: &str,
        boot_args: &str,
        initrd_path: &str,
    ) -> Result<BootSourceConfig, ControllerError> {
        let mut inner = self.lock();
        self.check(Action::Configure)?;
        let config = BootSourceConfig::new(kernel_image_path, boot_args, initrd_path)?;
        inner.resources.boot_source = Some(config.clone());
        Ok(config)
    }

    pub fn put_drive(
        &self,
        drive_id: &str,
        path_on_host: &str,
        is_read_only: bool,
        is_root_device: bool,
    ) -> Result<DriveConfig, ControllerError> {
        let mut inner = self.lock();
        self.check(Action::Configure)?;
        let drive = DriveConfig::new(drive_id, path_on_host, is_read_only, is_root_device)?;
        inner.resources.put_drive(drive.clone())?;
        Ok(drive)
    }

    pub fn drives(&self) -> Vec<DriveConfig> {
        self.lock().resources.drives().to_vec()
    }

    /// Sets the vsock device, replacing any earlier one; validated, nothing created yet.
    pub fn put_vsock(&self, guest_cid: u64, uds_path: &str) -> Result<VsockConfig, ControllerError> {
        let mut inner = self.lock();
        self.check(Action::Configure)?;
        let config = vsock::vsock_config(guest_cid, uds_path)?;
        inner.resources.put_vsock(config.clone());
        Ok(config)
    }

    pub fn vsock(&self) -> Option<VsockConfig> {
        self.lock().resources.vsock().cloned()
    }

    /// Adds a network interface: validated (its TAP exists, or its descriptor is a TAP);
    /// the TAP is attached at Start.
    pub fn put_net_interface(
        &self,
        iface_id: &str,
        host_dev_name: &str,
        guest_mac: &str,
        tap_fd: Option<i32>,
    ) -> Result<NetworkInterfaceConfig, ControllerError> {
        let mut inner = self.lock();
        self.check(Action::Configure)?;
        let iface = net::network_interface_config(iface_id, host_dev_name, guest_mac, tap_fd)?;
        inner.resources.put_net_interface(iface.clone())?;
        Ok(iface)
    }

    pub fn net_interfaces(&self) -> Vec<NetworkInterfaceConfig> {
        self.lock().resources.net_interfaces().to_vec()
    }

    // --- lifecycle -----------------------------------------------------------------

    /// Builds and starts the VM. On failure the VM stays CONFIGURING with its
    /// configuration, ready for a corrected request.
    pub fn start(&self) -> Result<VmState, ControllerError> {
        let mut inner = self.lock();
        self.check(Action::Start)?;
        let kvm = Kvm::new_with_path(
            std::ffi::CString::new(self.host.kvm_path.as_os_str().as_encoded_bytes()).unwrap_or_default(),
        )
        .map_err(|source| ControllerError::Kvm {
            path: self.host.kvm_path.clone(),
            source,
        })?;
        self.ctx.metrics.mark_start(Instant::now());
        let state = self.state.clone();
        let console = self.ctx.console.clone();
        let on_exit = Box::new(move |exit: VmExit| {
            state.send_replace(VmState::exited(with_panic_line(exit, &console)));
        });
        let vmm = builder::build_and_start(&kvm, &inner.resources, &self.ctx, on_exit)?;
        self.ctx.metrics.mark_running();
        inner.vmm = Some(vmm);
        release_freed_memory();
        // The guest may already have exited: never overwrite EXITED.
        self.state.send_if_modified(|s| {
            let first = s.phase == Phase::Configuring;
            if first {
                *s = VmState::new(Phase::Running);
            }
            first
        });
        Ok(self.state())
    }

    pub fn pause(&self) -> Result<VmState, ControllerError> {
        let inner = self.lock();
        self.check(Action::Pause)?;
        if let Some(vmm) = &inner.vmm {
            vmm.pause()?;
        }
        self.transition(Phase::Running, Phase::Paused);
        Ok(self.state())
    }

    pub fn resume(&self) -> Result<VmState, ControllerError> {
        let inner = self.lock();
        self.check(Action::Resume)?;
        if let Some(vmm) = &inner.vmm {
            vmm.resume();
        }
        self.transition(Phase::Paused, Phase::Running);
        Ok(self.state())
    }

    fn transition(&self, from: Phase, to: Phase) {
        self.state.send_if_modified(|s| {
            let ok = s.phase == from;
            if ok {
                *s = VmState::new(to);
            }
            ok
        });
    }

    pub fn send_ctrl_alt_del(&self) -> Result<VmState, ControllerError> {
        let inner = self.lock();
        self.check(Action::SendCtrlAltDel)?;
        if let Some(vmm) = &inner.vmm {
            vmm.ctrl_alt_del()?;
        }
        Ok(self.state())
    }

    /// Ctrl-Alt-Del, up to `timeout` for the guest to stop, then a forced stop.
    /// Allowed in every phase: before Start it just marks the VM EXITED.
    pub async fn shutdown(&self, timeout: Duration) -> VmState {
        match self.phase() {
            Phase::Exited => return self.state(),
            Phase::Configuring => {
                let _inner = self.lock();
                self.state.send_if_modified(|s| {
                    let ok = s.phase == Phase::Configuring;
                    if ok {
                        *s = VmState::exited(VmExit::new(ExitReason::Forced, "shut down before Start"));
                    }
                    ok
                });
                return self.state();
            }
            Phase::Paused => {
                let _ = self.resume();
            }
            Phase::Running => {}
        }
        if !timeout.is_zero() {
            if let Err(e) = self.send_ctrl_alt_del() {
                tracing::info!("Shutdown: Ctrl-Alt-Del not delivered ({e}); stopping the VM");
            } else if self.wait_exited(timeout).await {
                return self.state();
            }
        }
        self.force_stop(&format!(
            "stopped by Shutdown: the guest did not stop within {} ms",
            timeout.as_millis()
        ));
        self.wait_exited(FORCED_STOP_WAIT).await;
        self.state()
    }

    /// Ends the run with reason FORCED (no-op unless RUNNING or PAUSED).
    pub fn force_stop(&self, detail: &str) {
        if let Some(vmm) = &self.lock().vmm {
            vmm.force_stop(detail);
        }
    }

    /// [`Self::force_stop`], then waits (up to [`FORCED_STOP_WAIT`]) until the run has
    /// ended: EXITED is published once the devices are gone, so what they made on the host
    /// (the vsock's sockets) is removed before the process exits.
    pub async fn stop_and_wait(&self, detail: &str) {
        let started = self.lock().vmm.is_some();
        self.force_stop(detail);
        if started {
            self.wait_exited(FORCED_STOP_WAIT).await;
        }
    }

    async fn wait_exited(&self, timeout: Duration) -> bool {
        let mut rx = self.state.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| s.phase == Phase::Exited))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    // --- observation ---------------------------------------------------------------

    pub fn state(&self) -> VmState {
        self.state.borrow().clone()
    }

    pub fn watch_state(&self) -> watch::Receiver<VmState> {
        self.state.subscribe()
    }

    pub fn metrics(&self) -> &VmmMetrics {
        &self.ctx.metrics
    }

    /// A console client's session (see [`ConsoleSession`]).
    pub fn attach_console(self: &Arc<Self>) -> ConsoleSession {
        ConsoleSession::attach(self.clone())
    }

    pub fn console_input(&self, bytes: &[u8]) -> Result<(), ControllerError> {
        Ok(self.ctx.input.send(bytes)?)
    }
}

/// Gives the pages of freed heap memory back to the kernel. Building a VM allocates and
/// frees far more (kernel headers, CPUID and MSR tables, device set-up) than the running
/// VM keeps; without this the freed pages stay resident, a private cost for the VM's whole
/// life, since the allocator only returns memory at the top of its heap on its own.
fn release_freed_memory() {
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What Linux prints when it panics; with `panic=N` it then resets the machine.
const KERNEL_PANIC: &str = "Kernel panic - not syncing";

/// A reset or halt that followed a kernel panic on the console says so in its detail
/// ("guest kernel panic: ..."), so a client does not take a panic for a clean reboot.
fn with_panic_line(exit: VmExit, console: &ConsoleBuffer) -> VmExit {
    if !matches!(exit.reason, ExitReason::Reset | ExitReason::Shutdown) {
        return exit;
    }
    match console.last_line_containing(KERNEL_PANIC) {
        Some(line) => {
            let line = line.get(line.find(KERNEL_PANIC).unwrap_or(0)..).unwrap_or(&line);
            let detail = format!("guest kernel panic: {}; {}", line.trim(), exit.detail);
            VmExit { detail, ..exit }
        }
        None => exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_after_a_kernel_panic_names_the_panic() {
        let console = ConsoleBuffer::default();
        console.push(b"[    1.0] VFS: cannot open root device\r\n[    1.1] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n[    2.1] Rebooting in 1 seconds..\r\n");
        let exit = with_panic_line(VmExit::new(ExitReason::Reset, "i8042 reset"), &console);
        assert_eq!(exit.reason, ExitReason::Reset);
        assert_eq!(
            exit.detail,
            "guest kernel panic: Kernel panic - not syncing: VFS: Unable to mount root fs; i8042 reset"
        );
        // Other ends keep their detail; a clean reset says nothing about panics.
        let forced = with_panic_line(VmExit::new(ExitReason::Forced, "timeout"), &console);
        assert_eq!(forced.detail, "timeout");
        let clean = with_panic_line(
            VmExit::new(ExitReason::Reset, "i8042 reset"),
            &ConsoleBuffer::default(),
        );
        assert_eq!(clean.detail, "i8042 reset");
    }

    fn controller() -> Controller {
        Controller::new(HostLimits {
            kvm_path: "/dev/kvm".into(),
            max_vcpus: 8,
        })
        .unwrap()
    }

    #[test]
    fn a_bad_put_keeps_the_previous_configuration() {
        let c = controller();
        c.put_machine_config(2, 64).unwrap();
        let e = c.put_machine_config(0, 64).unwrap_err();
        assert!(matches!(e, ControllerError::MachineConfig(_)));
        assert_eq!(c.machine_config().vcpu_count, 2);
    }

    #[test]
    fn start_without_a_kernel_fails_and_stays_configuring() {
        let c = controller();
        let e = c.start().unwrap_err();
        assert!(
            matches!(e, ControllerError::Start(StartError::NoBootSource)),
            "{e}"
        );
        assert_eq!(c.state().phase, Phase::Configuring);
        assert!(matches!(c.pause(), Err(ControllerError::State(_))));
    }

    #[test]
    fn put_vsock_validates_replaces_and_creates_nothing() {
        let c = controller();
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sock");
        let b = dir.path().join("b.sock");
        assert!(c.vsock().is_none());
        c.put_vsock(3, a.to_str().unwrap()).unwrap();
        c.put_vsock(52, b.to_str().unwrap()).unwrap();
        let v = c.vsock().unwrap();
        assert_eq!((v.guest_cid, v.uds_path.as_path()), (52, b.as_path()));
        // A refused Put keeps the previous vsock.
        let e = c.put_vsock(2, a.to_str().unwrap()).unwrap_err();
        assert!(matches!(e, ControllerError::Vsock(_)), "{e}");
        assert_eq!(c.vsock().unwrap().guest_cid, 52);
        assert!(!a.exists() && !b.exists(), "nothing is created before Start");
    }

    #[tokio::test]
    async fn put_vsock_after_the_vm_ended_is_refused() {
        let c = controller();
        c.shutdown(Duration::from_millis(10)).await;
        let dir = tempfile::tempdir().unwrap();
        let e = c
            .put_vsock(3, dir.path().join("v.sock").to_str().unwrap())
            .unwrap_err();
        assert!(matches!(e, ControllerError::State(_)), "{e}");
        assert!(c.vsock().is_none());
    }

    #[tokio::test]
    async fn shutdown_before_start_exits_and_blocks_configuration() {
        let c = controller();
        let s = c.shutdown(Duration::from_millis(10)).await;
        assert_eq!(s.phase, Phase::Exited);
        assert_eq!(s.exit.unwrap().reason, ExitReason::Forced);
        assert!(matches!(
            c.put_machine_config(1, 64),
            Err(ControllerError::State(_))
        ));
    }
}
