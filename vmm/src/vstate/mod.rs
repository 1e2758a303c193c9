//! KVM objects: guest memory, the VM and its vCPUs, and how a VM's run ends.

pub mod exit;
pub mod memory;
pub mod vcpu;
pub mod vm;
