//! Controller errors → gRPC status, in one place.
//!
//! | error | status |
//! | --- | --- |
//! | invalid configuration value (machine config, boot source, drive, kernel that does not fit) | INVALID_ARGUMENT, message names the field |
//! | a drive id already in use, a second root device, or a writable file used by two drives | ALREADY_EXISTS |
//! | more drives than interrupt lines | RESOURCE_EXHAUSTED |
//! | action not allowed in the current phase; Start without a boot source | FAILED_PRECONDITION |
//! | KVM, memory, thread or device failures | INTERNAL |

use tonic::{Code, Status};

use crate::builder::StartError;
use crate::controller::ControllerError;
use crate::device_manager::virtio::VirtioAttachError;
use crate::devices::legacy::i8042::I8042Error;
use crate::resources::DriveSetError;
use crate::vmm::VmmError;
use crate::vmm_config::FieldError;

pub fn code(e: &ControllerError) -> Code {
    match e {
        ControllerError::MachineConfig(_) | ControllerError::BootSource(_) | ControllerError::Drive(_) => {
            Code::InvalidArgument
        }
        ControllerError::DriveSet(DriveSetError::TooMany) => Code::ResourceExhausted,
        ControllerError::DriveSet(_) => Code::AlreadyExists,
        ControllerError::State(_) => Code::FailedPrecondition,
        ControllerError::Start(StartError::NoBootSource) => Code::FailedPrecondition,
        ControllerError::Start(StartError::Load(e)) if e.is_config() => Code::InvalidArgument,
        ControllerError::Start(StartError::Drive(VirtioAttachError::Block { .. })) => Code::InvalidArgument,
        ControllerError::Vmm(VmmError::CtrlAltDel(I8042Error::BufferFull)) => Code::ResourceExhausted,
        ControllerError::Start(_) | ControllerError::Vmm(_) | ControllerError::Kvm { .. } => Code::Internal,
    }
}

fn field(e: &ControllerError) -> Option<&'static str> {
    match e {
        ControllerError::MachineConfig(e) => Some(e.field()),
        ControllerError::BootSource(e) => Some(e.field()),
        ControllerError::Drive(e) => Some(e.field()),
        _ => None,
    }
}

pub fn to_status(e: ControllerError) -> Status {
    let code = code(&e);
    match (code, field(&e)) {
        (Code::Internal, _) => tracing::error!("{e}"),
        (_, Some(field)) => tracing::info!(field, "request refused: {e}"),
        _ => tracing::info!("request refused: {e}"),
    }
    Status::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::state::{Action, Phase, StateError};
    use crate::loader::LoadError;
    use crate::vmm_config::machine_config::MachineConfigError;

    #[test]
    fn client_mistakes_and_host_failures_get_different_codes() {
        let invalid = ControllerError::MachineConfig(MachineConfigError::MemSize(0));
        assert_eq!(code(&invalid), Code::InvalidArgument);
        let state = ControllerError::State(StateError {
            action: Action::Configure,
            phase: Phase::Running,
        });
        assert_eq!(code(&state), Code::FailedPrecondition);
        let root = ControllerError::DriveSet(DriveSetError::RootExists { existing: "r".into() });
        assert_eq!(code(&root), Code::AlreadyExists);
        assert_eq!(
            code(&ControllerError::DriveSet(DriveSetError::TooMany)),
            Code::ResourceExhausted
        );
        let too_small = ControllerError::Start(StartError::Load(LoadError::KernelTooBig {
            mem_mib: 1,
            needed: 2,
        }));
        assert_eq!(code(&too_small), Code::InvalidArgument);
        let unreadable = ControllerError::Start(StartError::Load(LoadError::Open {
            path: "/k".into(),
            source: std::io::Error::from_raw_os_error(libc::EIO),
        }));
        assert_eq!(code(&unreadable), Code::Internal);
        let kvm = ControllerError::Kvm {
            path: "/dev/kvm".into(),
            source: kvm_ioctls::Error::new(libc::ENOENT),
        };
        assert_eq!(code(&kvm), Code::Internal);
        assert_eq!(
            code(&ControllerError::Start(StartError::NoBootSource)),
            Code::FailedPrecondition
        );
    }

    #[test]
    fn the_message_names_the_field() {
        let s = to_status(ControllerError::MachineConfig(MachineConfigError::VcpuCount {
            got: 0,
            max: 32,
        }));
        assert!(
            s.message().starts_with("machine_config.vcpu_count:"),
            "{}",
            s.message()
        );
    }
}
