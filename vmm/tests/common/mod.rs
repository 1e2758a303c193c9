//! Shared by the integration tests: builds the test guests, starts the real
//! `vmctl-vmm` binary and drives it over its unix socket.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};
use vmctl_vmm_api::v1 as pb;
use vmctl_vmm_api::v1::vmm_client::VmmClient;

pub struct RunningVmm {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for RunningVmm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_vmm() -> RunningVmm {
    spawn_vmm_with(&[])
}

pub fn spawn_vmm_with(extra: &[&str]) -> RunningVmm {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("api.sock");
    let log = std::fs::File::create(dir.path().join("vmm.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_vmctl-vmm"))
        .arg("--api-sock")
        .arg(&socket)
        .args(extra)
        // Relative paths a test gives (a vsock socket at Start) land in the VMM's own dir.
        .current_dir(dir.path())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn vmctl-vmm");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "API socket never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    RunningVmm { child, socket, dir }
}

impl RunningVmm {
    /// The VMM's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vmm.log")).unwrap_or_default()
    }
}

/// Connects to the API. The socket file appears at bind(), just before listen(), so a
/// refused connection is retried briefly.
pub async fn connect(socket: &Path) -> VmmClient<Channel> {
    VmmClient::new(channel(socket).await)
}

/// A channel to the API socket, for any service served there (see [`connect`]).
pub async fn channel(socket: &Path) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let socket = socket.to_owned();
        let attempt = Endpoint::try_from("http://vmm.local")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(move |_| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
                }
            }))
            .await;
        match attempt {
            Ok(channel) => return channel,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("connect to API socket: {e:?}"),
        }
    }
}

/// Where the guests are built for the tests.
fn guest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guests")
}

/// Builds the test guests once per test binary (tests/guests/build.sh) and returns the
/// directory holding them. Panics with the build output when the build fails: these
/// tests never skip.
pub fn guests() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/guests/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .env("VMCTL_GUEST_OUT", guest_dir())
            .output()
            .expect("run tests/guests/build.sh");
        assert!(
            out.status.success(),
            "building the test guests failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = guest_dir();
        assert!(
            dir.join("vmctl-test-guest.elf").is_file(),
            "build.sh did not produce the guest ELF"
        );
        assert!(
            dir.join("vmctl-test-guest.bzImage").is_file(),
            "build.sh did not produce the guest bzImage"
        );
        dir
    })
}

pub fn guest_elf() -> String {
    guests().join("vmctl-test-guest.elf").display().to_string()
}

/// The same guest as a bzImage (boot protocol 2.12, 64-bit entry at +0x200).
pub fn guest_bzimage() -> String {
    guests().join("vmctl-test-guest.bzImage").display().to_string()
}

/// What a finished guest left behind.
#[derive(Debug)]
pub struct GuestRun {
    pub state: pb::VmState,
    pub console: String,
    pub metrics: pb::Metrics,
    pub log: String,
}

impl GuestRun {
    pub fn reason(&self) -> pb::ExitReason {
        pb::ExitReason::try_from(self.state.exit_reason).unwrap_or(pb::ExitReason::Unspecified)
    }

    /// The value of a `key=value` line the guest printed.
    pub fn fact(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.console.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    pub fn assert_passed(&self, test: &str) {
        assert_eq!(
            (self.reason(), self.state.exit_code),
            (pb::ExitReason::GuestExit, 0),
            "guest {test} did not pass: {:?}\nconsole:\n{}\nlog:\n{}",
            self.state,
            self.console,
            self.log
        );
        assert!(
            self.console.contains(&format!("vmctl-guest: {test} start\n")),
            "{}",
            self.console
        );
        assert!(
            self.console.contains(&format!("vmctl-guest: {test} PASS\n")),
            "{}",
            self.console
        );
    }
}

/// Waits until the VM has exited (or `timeout` passes) and returns the final state.
pub async fn wait_exited(client: &mut VmmClient<Channel>, timeout: Duration) -> pb::VmState {
    let mut stream = client
        .watch_state(pb::WatchStateRequest {})
        .await
        .expect("WatchState")
        .into_inner();
    let last = tokio::time::timeout(timeout, async {
        let mut last = None;
        while let Some(s) = stream.message().await.expect("state stream") {
            let exited = s.phase == pb::Phase::Exited as i32;
            last = Some(s);
            if exited {
                break;
            }
        }
        last
    })
    .await;
    match last {
        Ok(Some(s)) if s.phase == pb::Phase::Exited as i32 => s,
        other => panic!("VM did not exit within {timeout:?}: {other:?}"),
    }
}

/// Reads all console output (replayed) of a VM that has exited.
pub async fn console_after_exit(client: &mut VmmClient<Channel>) -> String {
    let first = pb::ConsoleInput {
        data: vec![],
        replay: true,
    };
    let mut out = client
        .console(tokio_stream::iter(vec![first]))
        .await
        .expect("Console")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), out.message())
        .await
        .expect("console stream stalled")
        .expect("console stream")
    {
        bytes.extend(chunk.data);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Configures a VM for test guest `test`, starts it and waits for it to exit.
pub async fn run_guest(test: &str, extra_args: &str, vcpus: u32, mem_mib: u32) -> GuestRun {
    run_guest_with_drives(test, extra_args, vcpus, mem_mib, Vec::new()).await
}

/// [`run_guest`] with drives attached (PutDrive, in order).
pub async fn run_guest_with_drives(
    test: &str,
    extra_args: &str,
    vcpus: u32,
    mem_mib: u32,
    drives: Vec<pb::Drive>,
) -> GuestRun {
    run_kernel(&guest_elf(), test, extra_args, vcpus, mem_mib, drives).await
}

/// [`run_guest_with_drives`] booting `kernel` (e.g. [`guest_bzimage`]) instead of the ELF.
pub async fn run_kernel(
    kernel: &str,
    test: &str,
    extra_args: &str,
    vcpus: u32,
    mem_mib: u32,
    drives: Vec<pb::Drive>,
) -> GuestRun {
    let vmm = spawn_vmm();
    let mut client = connect(&vmm.socket).await;
    for d in drives {
        client.put_drive(d).await.expect("PutDrive");
    }
    client
        .put_machine_config(pb::MachineConfig {
            vcpu_count: vcpus,
            mem_size_mib: mem_mib,
        })
        .await
        .expect("PutMachineConfig");
    client
        .put_boot_source(pb::BootSource {
            kernel_image_path: kernel.to_owned(),
            boot_args: format!("console=ttyS0 vmctl.test={test} {extra_args}"),
            initrd_path: String::new(),
        })
        .await
        .expect("PutBootSource");
    let started = client
        .start(pb::StartRequest {})
        .await
        .expect("Start")
        .into_inner();
    assert_ne!(started.phase, pb::Phase::Configuring as i32);
    let state = wait_exited(&mut client, Duration::from_secs(20)).await;
    let console = console_after_exit(&mut client).await;
    let metrics = client
        .get_metrics(pb::GetMetricsRequest {})
        .await
        .expect("GetMetrics")
        .into_inner();
    GuestRun {
        state,
        console,
        metrics,
        log: vmm.log(),
    }
}
