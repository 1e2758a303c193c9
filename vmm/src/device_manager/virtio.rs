//! Attaches virtio devices (from `vmctl-devices`), each behind a virtio-mmio transport in
//! slot `n`: window `0xd0000000 + n * 0x1000`, GSI `5 + n` (8, the RTC's, skipped),
//! declared on the kernel command line as `virtio_mmio.device=4K@ADDR:GSI`. The drives
//! take slots `0..drives` (root first), the network interfaces the next ones (in the order
//! added, so the guest's eth0 is the first), the vsock device the one after. Queue notifications
//! are KVM ioeventfds on `QueueNotify` (datamatch = queue index) handled on the event
//! loop; the device interrupt is a KVM irqfd.

use std::sync::{Arc, Mutex};

use vm_memory::GuestMemoryMmap;
use vmctl_devices::virtio::VirtioDevice;
use vmctl_devices::virtio::block::{Block, BlockConfig, BlockError, BlockMetrics};
use vmctl_devices::virtio::mmio::{MMIO_NOTIFY_OFFSET, MMIO_WINDOW_SIZE, MmioTransport};
use vmctl_devices::virtio::net::{Net, NetError, NetMetrics, Tap};
use vmctl_devices::virtio::vsock::{Vsock, VsockConfig, VsockError, VsockMetrics};

use super::DeviceManagerError;
use super::bus::{Bus, BusDevice};
use crate::arch::x86_64::layout::{virtio_mmio_addr, virtio_mmio_gsi};
use crate::event_loop::Subscriber;
use crate::vmm_config::drive::DriveConfig;
use crate::vmm_config::net::{NetworkInterfaceConfig, TapSource};
use crate::vmm_config::vsock::vsock_field;
use crate::vstate::vm::Vm;

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        self.bus_read(offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.bus_write(offset, data);
    }
}

/// Why a drive could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum VirtioAttachError {
    /// The drive's configuration no longer holds (e.g. its file vanished since PutDrive).
    #[error("drive.{source} (drive {drive_id:?})")]
    Block { drive_id: String, source: BlockError },
    #[error("{device}: virtio-mmio transport: {detail}")]
    Transport { device: String, detail: String },
    /// The vsock's socket could not be made (e.g. a live listener took `uds_path` since
    /// PutVsock): the configuration no longer holds.
    #[error("vsock.{0}")]
    VsockConfig(#[source] VsockError),
    /// The vsock device could not be set up (timer, eventfds).
    #[error(transparent)]
    VsockDevice(VsockError),
    /// The interface's TAP could not be attached (gone since PutNetworkInterface, not a
    /// TAP, busy) or the device could not be set up.
    #[error("network_interface.{source} (interface {iface_id:?})")]
    Net { iface_id: String, source: NetError },
    #[error(transparent)]
    Manager(#[from] DeviceManagerError),
}

/// One attached drive, for the metrics endpoint.
pub struct AttachedDrive {
    pub drive_id: String,
    pub metrics: Arc<BlockMetrics>,
}

/// Attaches `drives` in order (the root device is already first).
pub fn attach(
    vm: &Vm,
    memory: &GuestMemoryMmap,
    mmio: &mut Bus,
    drives: &[DriveConfig],
    subscribers: &mut Vec<Subscriber>,
    cmdline: &mut Vec<String>,
) -> Result<Vec<AttachedDrive>, VirtioAttachError> {
    let mut attached = Vec::with_capacity(drives.len());
    for (n, drive) in drives.iter().enumerate() {
        let name = format!("virtio-blk {:?}", drive.drive_id);
        let config = BlockConfig {
            drive_id: drive.drive_id.clone(),
            path: drive.path_on_host.clone(),
            read_only: drive.is_read_only,
        };
        // The file PutDrive opened and checked (a second descriptor of it, not a second open).
        let block = drive
            .file
            .try_clone()
            .map_err(|source| BlockError::Open {
                path: drive.path_on_host.clone(),
                read_only: drive.is_read_only,
                source,
            })
            .and_then(|file| Block::with_file(config, file))
            .map_err(|source| VirtioAttachError::Block {
                drive_id: drive.drive_id.clone(),
                source,
            })?;
        let metrics = block.metrics().clone();
        place(
            vm,
            memory,
            mmio,
            n,
            name,
            Arc::new(Mutex::new(block)),
            subscribers,
            cmdline,
        )?;
        attached.push(AttachedDrive {
            drive_id: drive.drive_id.clone(),
            metrics,
        });
    }
    Ok(attached)
}

/// The attached vsock device, for the metrics endpoint.
pub struct AttachedVsock {
    pub metrics: Arc<VsockMetrics>,
}

/// Makes the vsock device (which binds its socket at `uds_path`) and attaches it in slot
/// `slot`, the one after the drives. On any later failure of the build the device is
/// dropped with the rest, and its socket file with it.
pub fn attach_vsock(
    vm: &Vm,
    memory: &GuestMemoryMmap,
    mmio: &mut Bus,
    slot: usize,
    config: &VsockConfig,
    subscribers: &mut Vec<Subscriber>,
    cmdline: &mut Vec<String>,
) -> Result<AttachedVsock, VirtioAttachError> {
    let vsock = Vsock::new(config.clone()).map_err(|e| match vsock_field(&e) {
        Some(_) => VirtioAttachError::VsockConfig(e),
        None => VirtioAttachError::VsockDevice(e),
    })?;
    let metrics = vsock.metrics().clone();
    let name = format!("virtio-vsock (guest CID {})", config.guest_cid);
    place(
        vm,
        memory,
        mmio,
        slot,
        name,
        Arc::new(Mutex::new(vsock)),
        subscribers,
        cmdline,
    )?;
    Ok(AttachedVsock { metrics })
}

/// One attached network interface, for the metrics endpoint.
pub struct AttachedNet {
    pub iface_id: String,
    pub metrics: Arc<NetMetrics>,
}

/// Opens each interface's TAP and attaches its device, in slots `first..`. A TAP opened
/// for a build that fails later is closed with the rest of the build.
#[allow(clippy::too_many_arguments)]
pub fn attach_net(
    vm: &Vm,
    memory: &GuestMemoryMmap,
    mmio: &mut Bus,
    first: usize,
    interfaces: &[NetworkInterfaceConfig],
    subscribers: &mut Vec<Subscriber>,
    cmdline: &mut Vec<String>,
) -> Result<Vec<AttachedNet>, VirtioAttachError> {
    let mut attached = Vec::with_capacity(interfaces.len());
    for (i, iface) in interfaces.iter().enumerate() {
        let iface_id = iface.iface_id().to_owned();
        let err = |source| VirtioAttachError::Net {
            iface_id: iface_id.clone(),
            source,
        };
        let tap = match &iface.tap {
            TapSource::Name(name) => Tap::open(name),
            // A second descriptor of the checked one, so a failed Start keeps the config.
            TapSource::Fd { number, fd } => fd
                .try_clone()
                .map_err(|source| NetError::TapFdNotATap { fd: *number, source })
                .and_then(Tap::from_fd),
        }
        .map_err(err)?;
        let net = Net::new(iface.config.clone(), tap).map_err(err)?;
        let metrics = net.metrics().clone();
        let name = format!("virtio-net {iface_id:?} (TAP {})", net.tap().name());
        place(
            vm,
            memory,
            mmio,
            first + i,
            name,
            Arc::new(Mutex::new(net)),
            subscribers,
            cmdline,
        )?;
        attached.push(AttachedNet { iface_id, metrics });
    }
    Ok(attached)
}

/// Puts `device` behind a virtio-mmio transport in slot `n`: its queue eventfds as KVM
/// ioeventfds on `QueueNotify`, its interrupt as a KVM irqfd on the slot's GSI, the window
/// on the MMIO bus, the device on the event loop and its declaration on the command line.
#[allow(clippy::too_many_arguments)]
fn place<D>(
    vm: &Vm,
    memory: &GuestMemoryMmap,
    mmio: &mut Bus,
    n: usize,
    name: String,
    device: Arc<Mutex<D>>,
    subscribers: &mut Vec<Subscriber>,
    cmdline: &mut Vec<String>,
) -> Result<(), VirtioAttachError>
where
    D: VirtioDevice + event_manager::MutEventSubscriber + Send + 'static,
{
    let (base, gsi) = (virtio_mmio_addr(n), virtio_mmio_gsi(n));
    let transport =
        MmioTransport::new(memory.clone(), device.clone()).map_err(|e| VirtioAttachError::Transport {
            device: name.clone(),
            detail: e.to_string(),
        })?;
    for (queue, evt) in transport.queue_evts().iter().enumerate() {
        vm.register_mmio_ioevent(evt, base + MMIO_NOTIFY_OFFSET, queue as u32)
            .map_err(|source| DeviceManagerError::Kvm {
                device: name.clone(),
                source,
            })?;
    }
    vm.register_irqfd(transport.interrupt().irq_evt(), gsi)
        .map_err(|source| DeviceManagerError::Kvm {
            device: name.clone(),
            source,
        })?;
    mmio.insert(base, MMIO_WINDOW_SIZE, Arc::new(Mutex::new(transport)))
        .map_err(|source| DeviceManagerError::Bus { device: name, source })?;
    subscribers.push(device);
    cmdline.push(format!("virtio_mmio.device=4K@{base:#x}:{gsi}"));
    Ok(())
}
