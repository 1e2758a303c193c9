//! `vmctl-vmm`: one microVM per process, configured and driven over gRPC on a unix socket.

mod api;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info, warn};

/// Command line of `vmctl-vmm`.
#[derive(Debug, Parser)]
#[command(name = "vmctl-vmm", version, about = "A KVM virtual machine monitor for one microVM, driven over gRPC")]
struct Args {
    /// Unix socket to serve the gRPC API on. Must not exist yet.
    #[arg(long, value_name = "PATH")]
    api_sock: PathBuf,

    /// KVM device node.
    #[arg(long, value_name = "PATH", default_value = vmctl_kvm_host::DEFAULT_KVM_PATH)]
    kvm: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
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

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the API runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = api::HostFacts { kvm, pvm };
    match runtime.block_on(api::serve(&args.api_sock, host)) {
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
