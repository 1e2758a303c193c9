//! The KVM probe: what this host's /dev/kvm offers the VMM.

use std::path::Path;

use napi_derive::napi;
use vmctl_kvm_host::{DEFAULT_KVM_PATH, KvmProbeError};

/// KVM capabilities the VMM depends on.
#[napi(object)]
pub struct KvmCapabilities {
    pub irqchip: bool,
    pub user_memory: bool,
    pub ioeventfd: bool,
    pub irqfd: bool,
}

/// What this host's KVM offers. When `available` is false, `error` says why and the
/// KVM-specific fields are absent.
#[napi(object)]
pub struct KvmInfo {
    /// The device node that was probed.
    pub device_path: String,
    /// True when the device node opened and answered as KVM.
    pub available: bool,
    /// Why KVM is not available (open failure, wrong API version).
    pub error: Option<String>,
    /// Machine-readable reason: "ENOENT", "EACCES", "EPERM", "ERRNO_<n>", or "NOT_KVM".
    pub error_code: Option<String>,
    pub api_version: Option<i32>,
    pub capabilities: Option<KvmCapabilities>,
    pub max_vcpus: Option<u32>,
    pub recommended_vcpus: Option<u32>,
    /// KVM is PVM (`/sys/module/kvm_pvm`): no hardware virtualization on this host.
    pub pvm: bool,
}

/// Options for `kvmInfo()`.
#[napi(object)]
pub struct KvmInfoOptions {
    /// Device node to probe instead of `/dev/kvm`.
    pub device_path: Option<String>,
}

/// Probes the host's KVM: whether the device opens, its API version, the capabilities
/// the VMM needs, vCPU limits, and whether the host is PVM.
#[napi]
pub fn kvm_info(options: Option<KvmInfoOptions>) -> KvmInfo {
    let device_path = options
        .and_then(|o| o.device_path)
        .unwrap_or_else(|| DEFAULT_KVM_PATH.to_owned());
    let pvm = vmctl_kvm_host::is_pvm_host();
    match vmctl_kvm_host::probe(Path::new(&device_path)) {
        Ok(info) => KvmInfo {
            device_path,
            available: true,
            error: None,
            error_code: None,
            api_version: Some(info.api_version),
            capabilities: Some(KvmCapabilities {
                irqchip: info.capabilities.irqchip,
                user_memory: info.capabilities.user_memory,
                ioeventfd: info.capabilities.ioeventfd,
                irqfd: info.capabilities.irqfd,
            }),
            max_vcpus: Some(saturate_u32(info.max_vcpus)),
            recommended_vcpus: Some(saturate_u32(info.recommended_vcpus)),
            pvm,
        },
        Err(err) => KvmInfo {
            device_path,
            available: false,
            error_code: Some(error_code(&err)),
            error: Some(err.to_string()),
            api_version: None,
            capabilities: None,
            max_vcpus: None,
            recommended_vcpus: None,
            pvm,
        },
    }
}

fn error_code(err: &KvmProbeError) -> String {
    match err {
        KvmProbeError::Open { source, .. } => match source.raw_os_error() {
            Some(2) => "ENOENT".to_owned(),
            Some(13) => "EACCES".to_owned(),
            Some(1) => "EPERM".to_owned(),
            Some(n) => format!("ERRNO_{n}"),
            None => "EINVAL".to_owned(),
        },
        KvmProbeError::ApiVersion { .. } => "NOT_KVM".to_owned(),
    }
}

fn saturate_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
