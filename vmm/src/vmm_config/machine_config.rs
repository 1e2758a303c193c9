//! `MachineConfig`: vCPUs and memory.

use super::FieldError;

/// Most vCPUs a VM may have (the MP table must fit in the EBDA).
pub const MAX_VCPUS: u32 = 32;
/// Least guest memory: room for the boot structures below 1 MiB. Whether the kernel
/// fits is checked against the kernel at Start.
pub const MIN_MEM_MIB: u32 = 1;
/// Most guest memory.
pub const MAX_MEM_MIB: u32 = 256 * 1024;
pub const DEFAULT_VCPUS: u8 = 1;
pub const DEFAULT_MEM_MIB: u32 = 128;

/// The validated machine configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineConfig {
    pub vcpu_count: u8,
    pub mem_size_mib: u32,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            vcpu_count: DEFAULT_VCPUS,
            mem_size_mib: DEFAULT_MEM_MIB,
        }
    }
}

/// Why a machine configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MachineConfigError {
    #[error("machine_config.vcpu_count: must be between 1 and {max} (got {got})")]
    VcpuCount { got: u32, max: u32 },
    #[error("machine_config.mem_size_mib: must be between {MIN_MEM_MIB} and {MAX_MEM_MIB} (got {0})")]
    MemSize(u32),
}

impl FieldError for MachineConfigError {
    fn field(&self) -> &'static str {
        match self {
            MachineConfigError::VcpuCount { .. } => "machine_config.vcpu_count",
            MachineConfigError::MemSize(_) => "machine_config.mem_size_mib",
        }
    }
}

impl MachineConfig {
    /// Validates raw API values. `host_max_vcpus` is KVM's limit on this host.
    pub fn new(vcpu_count: u32, mem_size_mib: u32, host_max_vcpus: u32) -> Result<Self, MachineConfigError> {
        let max = MAX_VCPUS.min(host_max_vcpus.max(1));
        if vcpu_count == 0 || vcpu_count > max {
            return Err(MachineConfigError::VcpuCount { got: vcpu_count, max });
        }
        if !(MIN_MEM_MIB..=MAX_MEM_MIB).contains(&mem_size_mib) {
            return Err(MachineConfigError::MemSize(mem_size_mib));
        }
        Ok(Self {
            vcpu_count: vcpu_count as u8,
            mem_size_mib,
        })
    }

    pub fn mem_bytes(&self) -> u64 {
        u64::from(self.mem_size_mib) << 20
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_range_and_names_the_field_otherwise() {
        assert_eq!(
            MachineConfig::new(2, 64, 255).unwrap(),
            MachineConfig {
                vcpu_count: 2,
                mem_size_mib: 64
            }
        );
        let e = MachineConfig::new(0, 64, 255).unwrap_err();
        assert_eq!(e.field(), "machine_config.vcpu_count");
        assert_eq!(
            e.to_string(),
            "machine_config.vcpu_count: must be between 1 and 32 (got 0)"
        );
        assert!(MachineConfig::new(33, 64, 255).is_err());
        assert_eq!(
            MachineConfig::new(3, 64, 2).unwrap_err(),
            MachineConfigError::VcpuCount { got: 3, max: 2 }
        );
        let e = MachineConfig::new(1, 0, 255).unwrap_err();
        assert_eq!(e.field(), "machine_config.mem_size_mib");
        assert!(MachineConfig::new(1, MAX_MEM_MIB + 1, 255).is_err());
    }

    #[test]
    fn defaults_are_one_vcpu_and_128_mib() {
        let d = MachineConfig::default();
        assert_eq!((d.vcpu_count, d.mem_size_mib), (1, 128));
    }
}
