//! The KVM VM: memory slots, the in-kernel irqchip (PIC, IOAPIC, local APICs) and PIT,
//! and the eventfd plumbing (irqfd, ioeventfd) devices use to talk to KVM directly.

use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config, kvm_userspace_memory_region};
use kvm_ioctls::{IoEventAddress, Kvm, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use crate::arch::x86_64::layout::{KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR};

/// A failed VM-level KVM call; `what` names the step.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct VmError {
    what: String,
    source: kvm_ioctls::Error,
}

fn step(what: impl Into<String>) -> impl FnOnce(kvm_ioctls::Error) -> VmError {
    let what = what.into();
    move |source| VmError { what, source }
}

/// A VM with its memory registered and its interrupt controllers created.
pub struct Vm {
    fd: VmFd,
}

impl Vm {
    /// Creates the VM, registers `memory` and sets up the irqchip and PIT.
    pub fn new(kvm: &Kvm, memory: &GuestMemoryMmap) -> Result<Self, VmError> {
        let fd = kvm.create_vm().map_err(step("KVM_CREATE_VM"))?;
        let vm = Self { fd };
        vm.register_memory(memory)?;
        vm.fd
            .set_tss_address(KVM_TSS_ADDR as usize)
            .map_err(step("KVM_SET_TSS_ADDR"))?;
        vm.fd
            .set_identity_map_address(KVM_IDENTITY_MAP_ADDR)
            .map_err(step("KVM_SET_IDENTITY_MAP_ADDR"))?;
        vm.fd.create_irq_chip().map_err(step("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.fd.create_pit2(pit).map_err(step("KVM_CREATE_PIT2"))?;
        Ok(vm)
    }

    fn register_memory(&self, memory: &GuestMemoryMmap) -> Result<(), VmError> {
        for (slot, region) in memory.iter().enumerate() {
            let host = region
                .get_host_address(vm_memory::MemoryRegionAddress(0))
                .map_err(|_| VmError {
                    what: format!("guest memory region {slot} has no host mapping"),
                    source: kvm_ioctls::Error::new(libc::EINVAL),
                })?;
            let region = kvm_userspace_memory_region {
                slot: slot as u32,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: host as u64,
                flags: 0,
            };
            // SAFETY: the region describes a live mapping owned by `memory`, which the
            // builder keeps alive for as long as this VM exists.
            unsafe { self.fd.set_user_memory_region(region) }
                .map_err(step(format!("KVM_SET_USER_MEMORY_REGION slot {slot}")))?;
        }
        Ok(())
    }

    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// Routes writes of `evt` to interrupt line `gsi` (irqfd).
    pub fn register_irqfd(&self, evt: &EventFd, gsi: u32) -> Result<(), VmError> {
        self.fd
            .register_irqfd(evt, gsi)
            .map_err(step(format!("KVM_IRQFD for GSI {gsi}")))
    }

    /// Signals `evt` when the guest writes `datamatch` to the 32-bit MMIO register at
    /// `addr` (ioeventfd), without an exit to the VMM.
    pub fn register_mmio_ioevent(&self, evt: &EventFd, addr: u64, datamatch: u32) -> Result<(), VmError> {
        self.fd
            .register_ioevent(evt, &IoEventAddress::Mmio(addr), datamatch)
            .map_err(step(format!("KVM_IOEVENTFD at {addr:#x}")))
    }
}
