//! `vmctl-vmm`: one microVM per process, configured and driven over gRPC on a unix socket.

mod api;
mod arch;
mod builder;
mod controller;
mod device_manager;
mod devices;
mod event_loop;
mod kernel_image;
mod loader;
mod metrics;
mod resources;
mod vmm;
mod vmm_config;
mod vstate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing::{error, info, warn};

/// Command line of `vmctl-vmm`.
#[derive(Debug, Parser)]
#[command(
    name = "vmctl-vmm",
    version,
    about = "A KVM virtual machine monitor for one microVM, driven over gRPC"
)]
struct Args {
    /// Unix socket to serve the gRPC API on. Must not exist yet.
    #[arg(long, value_name = "PATH", required_unless_present = "limits")]
    api_sock: Option<PathBuf>,

    /// KVM device node.
    #[arg(long, value_name = "PATH", default_value = vmctl_kvm_host::DEFAULT_KVM_PATH)]
    kvm: PathBuf,

    /// Id of this VM instance, reported by GetInfo; generated when not given.
    #[arg(long, value_name = "ID")]
    id: Option<String>,

    /// Prints the limits the configuration is checked against (GetInfo's `limits`, as
    /// JSON) and exits, without KVM or a socket: for clients that check a configuration
    /// before any VMM runs.
    #[arg(long, exclusive = true)]
    limits: bool,
}

/// Readiness events the API runtime takes per poll of the OS.
const MAX_IO_EVENTS_PER_TICK: usize = 64;

/// How long a thread of the blocking pool (Start, Pause: rare actions) waits for more work
/// before it ends; tokio's default is 10 s, a thread idling through a VM's start-up.
const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(50);

/// A VM id unique enough for one host: pid, time and a few random bits.
fn generated_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut random = [0u8; 4];
    let _ =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random));
    format!(
        "vm-{:x}-{:x}-{}",
        std::process::id(),
        nanos & 0xffff_ffff,
        u32::from_le_bytes(random)
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(api_sock) = args.api_sock else {
        // Only --limits goes without a socket (clap: required unless --limits).
        println!("{}", vmm_config::limits_json(&vmm_config::limits()));
        return ExitCode::SUCCESS;
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VMCTL_VMM_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let kvm = match vmctl_kvm_host::probe(&args.kvm) {
        Ok(kvm) => kvm,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let pvm = vmctl_kvm_host::is_pvm_host();
    if pvm {
        // Said once, at start-up: everything the guest runs goes through KVM's
        // instruction emulator, so guests are slow and some instructions fail.
        warn!("host KVM is PVM (no hardware virtualization): guest code is emulated");
    }

    // One thread: the API's work is small and vCPUs and devices have their own threads.
    // A few connections at most, so a short event list per poll (tokio's default is
    // 1024 events, 12 KiB of heap).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_io_events_per_tick(MAX_IO_EVENTS_PER_TICK)
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the API runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let controller = match controller::Controller::new(controller::HostLimits {
        kvm_path: args.kvm.clone(),
        max_vcpus: u32::try_from(kvm.max_vcpus).unwrap_or(u32::MAX),
    }) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            error!("cannot set up the VM controller: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = api::HostFacts {
        kvm,
        pvm,
        vm_id: args.id.unwrap_or_else(generated_id),
    };
    match runtime.block_on(api::serve(&api_sock, host, controller)) {
        Ok(()) => {
            info!("API server stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
