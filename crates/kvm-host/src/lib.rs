//! What this host's KVM offers, probed once and reported as plain data.
//!
//! Both the VMM (which logs it and refuses to start without the essentials) and the
//! Node addon (`vmctl doctor`) read the host through this one crate, so the two never
//! disagree about what "KVM works here" means.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kvm_ioctls::{Cap, Kvm};

/// Where KVM lives on a normal Linux host.
pub const DEFAULT_KVM_PATH: &str = "/dev/kvm";
/// Present when KVM is provided by the PVM module (no hardware virtualization; guest
/// code runs through KVM's instruction emulator).
pub const PVM_MODULE_PATH: &str = "/sys/module/kvm_pvm";
/// The only KVM API version Linux has ever shipped; anything else is not KVM.
pub const EXPECTED_API_VERSION: i32 = 12;

/// Capabilities the VMM depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvmCapabilities {
    /// In-kernel interrupt controller (PIC/IOAPIC/LAPIC).
    pub irqchip: bool,
    /// Guest memory backed by user-space mappings.
    pub user_memory: bool,
    /// Guest writes to device registers signalled through an eventfd.
    pub ioeventfd: bool,
    /// Interrupts injected by writing an eventfd.
    pub irqfd: bool,
}

impl KvmCapabilities {
    /// True when every capability the VMM requires is present.
    pub fn sufficient_for_vmm(&self) -> bool {
        self.irqchip && self.user_memory && self.ioeventfd && self.irqfd
    }
}

/// A successful probe of a KVM device node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmInfo {
    pub device_path: PathBuf,
    pub api_version: i32,
    pub capabilities: KvmCapabilities,
    /// Hard upper bound on vCPUs per VM.
    pub max_vcpus: usize,
    /// The number of vCPUs KVM recommends per VM.
    pub recommended_vcpus: usize,
}

/// Why a KVM device node could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KvmProbeError {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{} is not a usable KVM device: API version {found}, expected {EXPECTED_API_VERSION}", path.display())]
    ApiVersion { path: PathBuf, found: i32 },
}

/// Opens `path` as a KVM device and reads what it offers.
pub fn probe(path: &Path) -> Result<KvmInfo, KvmProbeError> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| KvmProbeError::Open {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let kvm = Kvm::new_with_path(&c_path).map_err(|e| KvmProbeError::Open {
        path: path.to_owned(),
        source: io::Error::from_raw_os_error(e.errno()),
    })?;
    let api_version = kvm.get_api_version();
    if api_version != EXPECTED_API_VERSION {
        return Err(KvmProbeError::ApiVersion {
            path: path.to_owned(),
            found: api_version,
        });
    }
    Ok(KvmInfo {
        device_path: path.to_owned(),
        api_version,
        capabilities: KvmCapabilities {
            irqchip: kvm.check_extension(Cap::Irqchip),
            user_memory: kvm.check_extension(Cap::UserMemory),
            ioeventfd: kvm.check_extension(Cap::Ioeventfd),
            irqfd: kvm.check_extension(Cap::Irqfd),
        },
        max_vcpus: kvm.get_max_vcpus(),
        recommended_vcpus: kvm.get_nr_vcpus(),
    })
}

/// True when this host's KVM is PVM (emulated, no VT-x/AMD-V).
pub fn is_pvm_host() -> bool {
    is_pvm_host_at(Path::new(PVM_MODULE_PATH))
}

/// [`is_pvm_host`] against an explicit sysfs path, so it can be tested.
pub fn is_pvm_host_at(module_path: &Path) -> bool {
    module_path.is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_an_open_error_naming_the_path() {
        let err = probe(Path::new("/nonexistent/kvm")).unwrap_err();
        match &err {
            KvmProbeError::Open { path, source } => {
                assert_eq!(path, Path::new("/nonexistent/kvm"));
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("expected Open error, got {other:?}"),
        }
        assert!(err.to_string().contains("/nonexistent/kvm"));
    }

    #[test]
    fn a_regular_file_is_not_kvm() {
        // /dev/null opens but answers no KVM ioctl: the API version check must catch it
        // rather than report a bogus device as usable.
        let err = probe(Path::new("/dev/null")).unwrap_err();
        assert!(matches!(err, KvmProbeError::ApiVersion { .. }), "{err:?}");
    }

    #[test]
    fn real_kvm_reports_the_essentials() {
        let path = Path::new(DEFAULT_KVM_PATH);
        let opened = std::fs::OpenOptions::new().read(true).write(true).open(path);
        let result = probe(path);
        match opened {
            Ok(_) => {
                let info = result.expect("/dev/kvm opens, so the probe must succeed");
                assert_eq!(info.api_version, EXPECTED_API_VERSION);
                assert!(info.capabilities.user_memory);
                assert!(info.max_vcpus >= info.recommended_vcpus);
                assert!(info.recommended_vcpus >= 1);
            }
            Err(e) => panic!("this test needs /dev/kvm, which does not open here: {e}"),
        }
    }

    #[test]
    fn pvm_detection_follows_the_module_directory() {
        assert!(is_pvm_host_at(Path::new("/")));
        assert!(!is_pvm_host_at(Path::new("/nonexistent/kvm_pvm")));
    }
}
