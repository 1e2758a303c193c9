//! Turns the configured [`VmResources`] into a running VM. One recipe, in order:
//! memory → VM (irqchip, PIT) → vCPUs → devices → kernel → boot configuration → start.

use std::sync::Arc;

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::Kvm;

use crate::arch::x86_64::boot_params::{self, BootParamsError};
use crate::arch::x86_64::gdt::{self, GdtError};
use crate::arch::x86_64::mptable::{self, MptableError};
use crate::arch::x86_64::paging::{self, PagingError};
use crate::device_manager::virtio::VirtioAttachError;
use crate::device_manager::{self, AttachedDevices, DeviceManagerError, bus::Bus};
use crate::devices::legacy::serial::{ConsoleBuffer, InputQueue};
use crate::event_loop::{EventLoop, EventLoopError};
use crate::loader::{self, LoadError};
use crate::metrics::VmmMetrics;
use crate::resources::VmResources;
use crate::vmm::{OnExit, Vmm, VmmError, VmmParts};
use crate::vstate::exit::{ExitLatch, ExitReason, VmExit};
use crate::vstate::memory::{self, MemoryError};
use crate::vstate::vcpu::{Vcpu, VcpuControl, VcpuError, VcpuIo};
use crate::vstate::vm::{Vm, VmError};
use vm_memory::GuestMemoryMmap;

/// Why the VM could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("boot_source: no kernel configured; call PutBootSource first")]
    NoBootSource,
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    #[error(transparent)]
    Devices(#[from] DeviceManagerError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("writing boot structures: {0}")]
    BootParams(#[from] BootParamsError),
    #[error("writing boot structures: {0}")]
    Mptable(#[from] MptableError),
    #[error("writing boot structures: {0}")]
    Gdt(#[from] GdtError),
    #[error("writing boot structures: {0}")]
    Paging(#[from] PagingError),
    #[error("KVM_GET_SUPPORTED_CPUID: {0}")]
    Cpuid(kvm_ioctls::Error),
    #[error(transparent)]
    EventLoop(#[from] EventLoopError),
    #[error(transparent)]
    Vmm(#[from] VmmError),
    #[error(transparent)]
    Virtio(#[from] VirtioAttachError),
}

/// What the VM shares with the controller for its whole life.
#[derive(Clone)]
pub struct VmContext {
    pub latch: Arc<ExitLatch>,
    pub metrics: Arc<VmmMetrics>,
    pub console: Arc<ConsoleBuffer>,
    pub input: Arc<InputQueue>,
}

/// Builds the VM described by `resources` and starts its vCPUs.
pub fn build_and_start(
    kvm: &Kvm,
    resources: &VmResources,
    ctx: &VmContext,
    on_exit: OnExit,
) -> Result<Vmm, StartError> {
    let boot = resources.boot_source.as_ref().ok_or(StartError::NoBootSource)?;
    let mem_bytes = resources.machine.mem_bytes();
    let vcpu_count = resources.machine.vcpu_count;

    // 1. Guest memory.
    let memory = memory::create(mem_bytes)?;

    // 2. The VM, with the in-kernel irqchip and PIT.
    let vm = Vm::new(kvm, &memory)?;

    // 3. vCPUs (created before the devices: KVM wants the irqchip and vCPUs first).
    let vcpus = (0..vcpu_count)
        .map(|i| Vcpu::new(&vm, i))
        .collect::<Result<Vec<_>, _>>()?;

    // 4. Devices: legacy on port I/O, virtio on MMIO, their irqfds and ioeventfds.
    let devices = attach_devices(&vm, &memory, mem_bytes, resources, ctx)?;

    // 5. Kernel and initrd.
    let kernel = loader::load_kernel(&memory, mem_bytes, &boot.kernel_image_path, boot.kernel_format)?;
    let initrd = match &boot.initrd_path {
        Some(path) => {
            let low_end = crate::arch::x86_64::layout::ram_ranges(mem_bytes)[0].1;
            Some(loader::load_initrd(&memory, low_end, kernel.end, path)?)
        }
        None => None,
    };

    // 6. Boot configuration: command line, zero page, MP table, GDT, page tables, vCPU
    //    registers.
    let cmdline = loader::build_cmdline(&boot.boot_args, &devices.cmdline)?;
    let cmdline_len = loader::write_cmdline(&memory, &cmdline)?;
    loader::check_cmdline_fits(&kernel, cmdline_len)?;
    let params = boot_params::build(mem_bytes, cmdline_len, kernel.setup_header, initrd)?;
    boot_params::write(&memory, &params)?;
    mptable::write(&memory, vcpu_count)?;
    gdt::write(&memory)?;
    paging::write(&memory)?;
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(StartError::Cpuid)?;
    for vcpu in &vcpus {
        vcpu.configure(&cpuid, vcpu_count, kernel.entry)?;
    }

    // 7. Start: the event loop, then the vCPUs, then the monitor that reports the end.
    let event_loop = EventLoop::start(devices.subscribers)?;
    let io = VcpuIo {
        pio: devices.pio,
        mmio: devices.mmio,
        latch: ctx.latch.clone(),
        metrics: ctx.metrics.clone(),
    };
    let mut started = Vec::with_capacity(vcpus.len());
    for vcpu in vcpus {
        let control = Arc::new(VcpuControl::default());
        match vcpu.start(io.clone(), control.clone()) {
            Ok(handle) => started.push((control, handle)),
            Err(e) => {
                // The vCPUs already running stop through the monitor.
                ctx.latch
                    .trigger(VmExit::new(ExitReason::VmmError, e.to_string()));
                break;
            }
        }
    }
    Ok(Vmm::new(VmmParts {
        vm,
        memory,
        vcpus: started,
        event_loop,
        legacy: devices.legacy,
        latch: ctx.latch.clone(),
        on_exit,
    })?)
}

fn attach_devices(
    vm: &Vm,
    memory: &GuestMemoryMmap,
    mem_bytes: u64,
    resources: &VmResources,
    ctx: &VmContext,
) -> Result<AttachedDevices, StartError> {
    let mut pio = Bus::default();
    let mut mmio = Bus::default();
    let (legacy, serial_input) = device_manager::legacy::attach(
        vm,
        &mut pio,
        mem_bytes,
        &ctx.latch,
        &ctx.metrics,
        &ctx.console,
        &ctx.input,
    )?;
    let mut subscribers = vec![serial_input];
    let mut cmdline = Vec::new();
    let drives = device_manager::virtio::attach(
        vm,
        memory,
        &mut mmio,
        resources.drives(),
        &mut subscribers,
        &mut cmdline,
    )?;
    ctx.metrics
        .set_block_devices(drives.into_iter().map(|d| (d.drive_id, d.metrics)).collect());
    // Network interfaces after the drives; their TAPs are attached here, at Start.
    let nets = device_manager::virtio::attach_net(
        vm,
        memory,
        &mut mmio,
        resources.drives().len(),
        resources.net_interfaces(),
        &mut subscribers,
        &mut cmdline,
    )?;
    ctx.metrics
        .set_net_devices(nets.into_iter().map(|n| (n.iface_id, n.metrics)).collect());
    // The vsock in the slot after those; its socket is bound here, at Start.
    if let Some(config) = resources.vsock() {
        let slot = resources.drives().len() + resources.net_interfaces().len();
        let vsock = device_manager::virtio::attach_vsock(
            vm,
            memory,
            &mut mmio,
            slot,
            config,
            &mut subscribers,
            &mut cmdline,
        )?;
        ctx.metrics.set_vsock_device(Some(vsock.metrics));
    }
    Ok(AttachedDevices {
        pio: Arc::new(pio),
        mmio: Arc::new(mmio),
        legacy,
        subscribers,
        cmdline,
    })
}
