//! Controller errors → gRPC status, in one place.
//!
//! | error | status |
//! | --- | --- |
//! | invalid configuration value (machine config, boot source, drive, vsock, network interface, kernel that does not fit; a vsock socket path taken or unusable at Start; a TAP gone or not attachable at Start) | INVALID_ARGUMENT, message names the field |
//! | a drive id already in use, a second root device, or a writable file used by two drives; an interface id, TAP, descriptor or MAC already in use | ALREADY_EXISTS |
//! | more drives and network interfaces than interrupt lines; console input the guest has not read beyond 64 KiB | RESOURCE_EXHAUSTED |
//! | action not allowed in the current phase; Start without a boot source | FAILED_PRECONDITION |
//! | KVM, memory, thread or device failures | INTERNAL |
//! | a request that does not decode (garbage, truncated, wrong wire type, a string that is not UTF-8) | INVALID_ARGUMENT, message names the field (or the message) |
//! | a request body framed wrongly (compressed-flag, ends inside a message, no or two messages on a unary call) | INVALID_ARGUMENT, message starts with `request:` |
//! | a request message over the size limit | RESOURCE_EXHAUSTED |
//!
//! Messages echo what the client sent (paths, ids); a long one is shortened in the middle
//! ([`MAX_MESSAGE_BYTES`]) so that it always fits in the response headers, whatever the
//! client sent, and still starts with the field and ends with the reason.
//!
//! A refusal that names a field also carries it as data, in gRPC's rich error model
//! (`grpc-status-details-bin`, AIP-193), as vmctl's own services do: an ErrorInfo of domain
//! `vmctl.io` whose reason is the status code's name and whose metadata `field` is the
//! field (`drive.path_on_host`), and for INVALID_ARGUMENT a BadRequest naming it too. A
//! client maps the field to its own user's without parsing the message.

use std::collections::HashMap;

use prost::Message;
use tonic::{Code, Status};

use crate::builder::StartError;
use crate::controller::ControllerError;
use crate::device_manager::virtio::VirtioAttachError;
use crate::devices::legacy::i8042::I8042Error;
use crate::resources::{DriveSetError, NetSetError};
use crate::vmm::VmmError;
use crate::vmm_config::FieldError;
use crate::vmm_config::net::net_field;
use crate::vmm_config::vsock::vsock_field;
use vmctl_devices::virtio::block::BlockError;

pub fn code(e: &ControllerError) -> Code {
    match e {
        ControllerError::MachineConfig(_)
        | ControllerError::BootSource(_)
        | ControllerError::Drive(_)
        | ControllerError::Vsock(_)
        | ControllerError::Net(_) => Code::InvalidArgument,
        ControllerError::DriveSet(DriveSetError::TooMany) => Code::ResourceExhausted,
        ControllerError::DriveSet(_) => Code::AlreadyExists,
        ControllerError::NetSet(NetSetError::TooMany) => Code::ResourceExhausted,
        ControllerError::NetSet(_) => Code::AlreadyExists,
        ControllerError::State(_) => Code::FailedPrecondition,
        ControllerError::Start(StartError::NoBootSource) => Code::FailedPrecondition,
        ControllerError::Start(StartError::Load(e)) if e.is_config() => Code::InvalidArgument,
        ControllerError::Start(StartError::Virtio(VirtioAttachError::Block { .. })) => Code::InvalidArgument,
        ControllerError::Start(StartError::Virtio(VirtioAttachError::VsockConfig(_))) => {
            Code::InvalidArgument
        }
        ControllerError::Start(StartError::Virtio(VirtioAttachError::Net { source, .. }))
            if net_field(source).is_some() =>
        {
            Code::InvalidArgument
        }
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
        ControllerError::DriveSet(e) => Some(e.field()),
        ControllerError::Vsock(e) => Some(e.field()),
        ControllerError::Net(e) => Some(e.field()),
        ControllerError::NetSet(e) => Some(e.field()),
        ControllerError::Start(StartError::Load(e)) => Some(e.field()),
        ControllerError::Start(StartError::Virtio(VirtioAttachError::Block { source, .. })) => {
            block_field(source)
        }
        ControllerError::Start(StartError::Virtio(VirtioAttachError::VsockConfig(e))) => vsock_field(e),
        ControllerError::Start(StartError::Virtio(VirtioAttachError::Net { source, .. })) => {
            net_field(source)
        }
        ControllerError::ConsoleInput(_) => Some("console_input.data"),
        _ => None,
    }
}

/// The API's field for a drive the block device refused at Start (the device names its own).
fn block_field(e: &BlockError) -> Option<&'static str> {
    match e {
        BlockError::DriveIdInvalid(_) => Some("drive.drive_id"),
        BlockError::PathNotFound(_)
        | BlockError::PathNotFileOrBlockDevice(_)
        | BlockError::Stat { .. }
        | BlockError::Open { .. }
        | BlockError::Size { .. } => Some("drive.path_on_host"),
        BlockError::Virtio(_) => None,
    }
}

pub fn to_status(e: ControllerError) -> Status {
    let code = code(&e);
    let message = bounded(e.to_string());
    match (code, field(&e)) {
        (Code::Internal, _) => {
            tracing::error!("{message}");
            Status::new(code, message)
        }
        (_, Some(field)) => {
            tracing::info!(field, "request refused: {message}");
            let details = rich_details(code, field, &message);
            Status::with_details(code, message, details.into())
        }
        _ => {
            tracing::info!("request refused: {message}");
            Status::new(code, message)
        }
    }
}

/// google.rpc's error model (google/rpc/status.proto, error_details.proto): the three
/// messages a refusal's details need, declared here rather than compiled from Google's
/// protos for them.
mod rpc {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ErrorInfo {
        #[prost(string, tag = "1")]
        pub reason: String,
        #[prost(string, tag = "2")]
        pub domain: String,
        #[prost(map = "string, string", tag = "3")]
        pub metadata: HashMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BadRequest {
        #[prost(message, repeated, tag = "1")]
        pub field_violations: Vec<FieldViolation>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldViolation {
        #[prost(string, tag = "1")]
        pub field: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }
}

/// ErrorInfo.domain of vmctl's errors (the orchestrator's too: `ERROR_DOMAIN` in
/// ts/proto/src/codec/error-details.ts).
const ERROR_DOMAIN: &str = "vmctl.io";

/// The serialized google.rpc.Status of a refusal naming `field`.
fn rich_details(code: Code, field: &str, message: &str) -> Vec<u8> {
    let any = |name: &str, value: Vec<u8>| rpc::Any {
        type_url: format!("type.googleapis.com/google.rpc.{name}"),
        value,
    };
    let info = rpc::ErrorInfo {
        reason: code_name(code).to_owned(),
        domain: ERROR_DOMAIN.to_owned(),
        metadata: HashMap::from([("field".to_owned(), field.to_owned())]),
    };
    let mut details = vec![any("ErrorInfo", info.encode_to_vec())];
    if code == Code::InvalidArgument {
        let violation = rpc::FieldViolation {
            field: field.to_owned(),
            description: message.to_owned(),
        };
        let bad = rpc::BadRequest {
            field_violations: vec![violation],
        };
        details.push(any("BadRequest", bad.encode_to_vec()));
    }
    rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details,
    }
    .encode_to_vec()
}

/// The canonical name of a status code (`INVALID_ARGUMENT`), as ErrorInfo.reason.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
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
    fn a_refusal_carries_its_field_as_details() {
        let s = to_status(ControllerError::DriveSet(DriveSetError::PathInUse {
            path: "/d".into(),
            existing: "a".into(),
        }));
        assert_eq!(s.code(), Code::AlreadyExists);
        let status = rpc::Status::decode(s.details()).unwrap();
        assert_eq!(status.details.len(), 1);
        let info = rpc::ErrorInfo::decode(&status.details[0].value[..]).unwrap();
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("ALREADY_EXISTS", "vmctl.io")
        );
        assert_eq!(info.metadata["field"], "drive.path_on_host");

        let s = to_status(ControllerError::MachineConfig(MachineConfigError::MemSize(0)));
        let status = rpc::Status::decode(s.details()).unwrap();
        assert_eq!(status.message, s.message());
        let bad = rpc::BadRequest::decode(&status.details[1].value[..]).unwrap();
        assert_eq!(bad.field_violations[0].field, "machine_config.mem_size_mib");

        let internal = to_status(ControllerError::Start(StartError::Load(LoadError::Open {
            path: "/k".into(),
            source: std::io::Error::from_raw_os_error(libc::EIO),
        })));
        assert!(internal.details().is_empty());
    }

    #[test]
    fn network_interface_refusals_name_the_api_field() {
        use crate::vmm_config::net::{NetConfigError, NetError};
        let s = to_status(ControllerError::Net(NetConfigError(NetError::MacMulticast(
            "01:00:5e:00:00:01".into(),
        ))));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message().starts_with("network_interface.guest_mac: "),
            "{}",
            s.message()
        );
        let status = rpc::Status::decode(s.details()).unwrap();
        let bad = rpc::BadRequest::decode(&status.details[1].value[..]).unwrap();
        assert_eq!(bad.field_violations[0].field, "network_interface.guest_mac");
        let dup = ControllerError::NetSet(NetSetError::IdInUse("eth0".into()));
        assert_eq!(code(&dup), Code::AlreadyExists);
        assert_eq!(
            code(&ControllerError::NetSet(NetSetError::TooMany)),
            Code::ResourceExhausted
        );
        // A TAP deleted between Put and Start: the client's to fix, named.
        let gone = ControllerError::Start(StartError::Virtio(VirtioAttachError::Net {
            iface_id: "eth0".into(),
            source: NetError::TapNotFound("tap0".into()),
        }));
        let s = to_status(gone);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message()
                .starts_with("network_interface.host_dev_name: no TAP device \"tap0\""),
            "{}",
            s.message()
        );
        // An ioctl the device needs failing is ours.
        let setup = ControllerError::Start(StartError::Virtio(VirtioAttachError::Net {
            iface_id: "eth0".into(),
            source: NetError::TapSetup {
                name: "tap0".into(),
                what: "TUNSETVNETHDRSZ",
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            },
        }));
        assert_eq!(code(&setup), Code::Internal);
    }

    #[test]
    fn vsock_refusals_name_the_api_field() {
        use crate::vmm_config::vsock::{VsockConfigError, VsockError};
        let s = to_status(ControllerError::Vsock(VsockConfigError(
            VsockError::GuestCidInvalid(2),
        )));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().starts_with("vsock.guest_cid: "), "{}", s.message());
        let status = rpc::Status::decode(s.details()).unwrap();
        let bad = rpc::BadRequest::decode(&status.details[1].value[..]).unwrap();
        assert_eq!(bad.field_violations[0].field, "vsock.guest_cid");
        // A socket path taken between PutVsock and Start: the client's to fix.
        let in_use = ControllerError::Start(StartError::Virtio(VirtioAttachError::VsockConfig(
            VsockError::UdsPathInUse("/v.sock".into()),
        )));
        let s = to_status(in_use);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().starts_with("vsock.uds_path: "), "{}", s.message());
        // The device's own plumbing failing is ours.
        let timer = ControllerError::Start(StartError::Virtio(VirtioAttachError::VsockDevice(
            VsockError::Timer(std::io::Error::from_raw_os_error(libc::EMFILE)),
        )));
        assert_eq!(code(&timer), Code::Internal);
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
