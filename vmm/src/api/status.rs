//! Controller errors → gRPC status, in one place.
//!
//! | error | status |
//! | --- | --- |
//! | invalid configuration value (machine config, boot source, drive, kernel that does not fit) | INVALID_ARGUMENT, message names the field |
//! | a drive id already in use, a second root device, or a writable file used by two drives | ALREADY_EXISTS |
//! | more drives than interrupt lines; console input the guest has not read beyond 64 KiB | RESOURCE_EXHAUSTED |
//! | action not allowed in the current phase; Start without a boot source | FAILED_PRECONDITION |
//! | KVM, memory, thread or device failures | INTERNAL |
//! | a request that does not decode (garbage, truncated, wrong wire type, a string that is not UTF-8) | INVALID_ARGUMENT, message names the field (or the message) |
//! | a request body framed wrongly (compressed-flag, ends inside a message, no or two messages on a unary call) | INVALID_ARGUMENT, message starts with `request:` |
//! | a request message over the size limit | RESOURCE_EXHAUSTED |
//!
//! Messages echo what the client sent (paths, ids); a long one is shortened in the middle
//! ([`MAX_MESSAGE_BYTES`]) so that it always fits in the response headers, whatever the
//! client sent, and still starts with the field and ends with the reason.

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
        ControllerError::ConsoleInput(_) => Code::ResourceExhausted,
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
    let message = bounded(e.to_string());
    match (code, field(&e)) {
        (Code::Internal, _) => tracing::error!("{message}"),
        (_, Some(field)) => tracing::info!(field, "request refused: {message}"),
        _ => tracing::info!("request refused: {message}"),
    }
    Status::new(code, message)
}

/// Longest status message sent. Clients cap response headers (grpc-go and tonic at 16 KiB
/// by default), and the message echoes client input: a 1 MB path must not turn a refusal
/// into a protocol error on the client.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Shortens `message` to at most [`MAX_MESSAGE_BYTES`] by cutting out its middle (on
/// character boundaries): the start names the field, the end says what was wrong.
fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let keep = (MAX_MESSAGE_BYTES - 64) / 2;
    let mut head = keep;
    while !message.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = message.len() - keep;
    while !message.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{} [... {} bytes elided ...] {}",
        &message[..head],
        tail - head,
        &message[tail..]
    )
}

/// A request message that prost could not decode. `type_name` is the Rust type it was
/// decoded into (`std::any::type_name`). The field comes from prost's error, whose text is
/// `failed to decode Protobuf message: Message.field: ...: description` (innermost field
/// first; no field when the bytes are not a message at all, then the message is named).
pub fn undecodable(type_name: &str, e: &prost::DecodeError) -> Status {
    let text = e.to_string();
    let rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let is_location = |s: &str| {
        s.split_once('.').is_some_and(|(m, f)| {
            let ident = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            ident(m) && ident(f)
        })
    };
    let mut field = None;
    let mut description = rest;
    while let Some((segment, after)) = description.split_once(": ") {
        if !is_location(segment) {
            break;
        }
        field.get_or_insert(segment);
        description = after;
    }
    let field = match field.and_then(|f| f.split_once('.')) {
        Some((message, name)) => format!("{}.{name}", snake_case(message)),
        None => snake_case(type_name.rsplit("::").next().unwrap_or(type_name)),
    };
    let message = bounded(format!("{field}: the request does not decode: {description}"));
    tracing::info!(field, "request refused: {message}");
    Status::invalid_argument(message)
}

/// A request body whose gRPC framing is wrong (see `framing.rs`).
pub fn framing(e: super::framing::FramingError) -> Status {
    use super::framing::FramingError;
    let code = match e {
        FramingError::TooLarge { .. } => Code::ResourceExhausted,
        FramingError::Compressed(_)
        | FramingError::Truncated { .. }
        | FramingError::NoMessage
        | FramingError::ExtraMessage => Code::InvalidArgument,
    };
    tracing::info!("request refused: {e}");
    Status::new(code, e.to_string())
}

/// `MachineConfig` -> `machine_config`, as fields are named in messages.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
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
    fn undecodable_requests_name_the_field_or_the_message() {
        use prost::Message;
        use vmctl_vmm_api::v1 as pb;
        // kernel_image_path (field 1, length-delimited) holding invalid UTF-8.
        let e = pb::BootSource::decode(&[0x0a, 0x02, 0xff, 0xfe][..]).unwrap_err();
        let s = undecodable(std::any::type_name::<pb::BootSource>(), &e);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message()
                .starts_with("boot_source.kernel_image_path: the request does not decode: "),
            "{}",
            s.message()
        );
        // vcpu_count (field 1) sent as a length-delimited field.
        let e = pb::MachineConfig::decode(&[0x0a, 0x00][..]).unwrap_err();
        let s = undecodable(std::any::type_name::<pb::MachineConfig>(), &e);
        assert!(
            s.message().starts_with("machine_config.vcpu_count: "),
            "{}",
            s.message()
        );
        // Not a message at all: the message is named.
        let e = pb::MachineConfig::decode(&[0xff][..]).unwrap_err();
        let s = undecodable(std::any::type_name::<pb::MachineConfig>(), &e);
        assert!(s.message().starts_with("machine_config: "), "{}", s.message());
        assert_eq!(snake_case("GetInfoRequest"), "get_info_request");
    }

    #[test]
    fn long_messages_keep_their_field_and_reason() {
        let long = format!(
            "drive.path_on_host: cannot open {} for reading: No such file",
            "x".repeat(1 << 20)
        );
        let m = bounded(long);
        assert!(m.len() <= MAX_MESSAGE_BYTES, "{}", m.len());
        assert!(m.starts_with("drive.path_on_host: cannot open xxx"));
        assert!(m.ends_with("for reading: No such file"));
        let unicode = format!("boot_source.boot_args: {}", "é".repeat(5000));
        assert!(bounded(unicode).len() <= MAX_MESSAGE_BYTES);
        assert_eq!(bounded("short".into()), "short");
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
