//! x86_64: the guest-physical layout and everything written into guest memory or vCPU
//! registers before the first instruction runs (Linux 64-bit boot protocol).

pub mod boot_params;
pub mod cpuid;
pub mod gdt;
pub mod layout;
pub mod mptable;
pub mod msr;
pub mod paging;
pub mod regs;
