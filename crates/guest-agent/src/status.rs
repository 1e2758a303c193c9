//! Every error the API can answer, mapped to a gRPC status in one place: the caller's
//! mistakes apart from the guest's own failures.

use tonic::Status;

use crate::copy::CopyError;
use crate::exec::ExecError;
use crate::reaper::SignalError;

/// The longest status message: it travels in an HTTP/2 trailer, and a client's header
/// limit (grpc-js: 16 KiB) turns a longer one into a call that never ends. A message that
/// quotes a huge input (a 70 KB path) keeps its head and tail.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// `message`, cut to [`MAX_MESSAGE_BYTES`] on character boundaries.
pub fn bounded(message: String) -> String {
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

pub fn exec(error: ExecError) -> Status {
    match error {
        ExecError::NoCommand
        | ExecError::Nul(_)
        | ExecError::BadEnv(_)
        | ExecError::BadCwd(_)
        | ExecError::User(_) => Status::invalid_argument(bounded(error.to_string())),
        ExecError::WorkloadRunning(_) => Status::failed_precondition(bounded(error.to_string())),
        ExecError::Start(_) => Status::internal(bounded(error.to_string())),
    }
}

pub fn signal(error: SignalError) -> Status {
    match error {
        SignalError::UnknownPid(_) => Status::not_found(bounded(error.to_string())),
        SignalError::NoWorkload => Status::failed_precondition(bounded(error.to_string())),
        SignalError::Kill(_) => Status::internal(bounded(error.to_string())),
    }
}

pub fn copy(error: CopyError) -> Status {
    match error {
        CopyError::RelativeDestination(_) | CopyError::RelativePath(_) | CopyError::Escape { .. } => {
            Status::invalid_argument(bounded(error.to_string()))
        }
        CopyError::NotFound(_) => Status::not_found(bounded(error.to_string())),
        // A stream that is not a valid tar is the caller's; a failing disk is ours.
        CopyError::Tar(ref e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Status::invalid_argument(bounded(error.to_string()))
        }
        CopyError::Tar(_) | CopyError::Io { .. } => Status::internal(bounded(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn long_messages_are_bounded_on_character_boundaries() {
        let status = exec(ExecError::BadCwd("é".repeat(70_000).into()));
        assert!(
            status.message().len() <= MAX_MESSAGE_BYTES,
            "{}",
            status.message().len()
        );
        assert!(status.message().starts_with("cwd: éé"));
        assert!(status.message().contains("bytes elided"));
        assert_eq!(
            exec(ExecError::Nul("args[1]".into())).code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn client_mistakes_are_kept_apart_from_failures() {
        assert_eq!(exec(ExecError::NoCommand).code(), Code::InvalidArgument);
        assert_eq!(
            exec(ExecError::WorkloadRunning(3)).code(),
            Code::FailedPrecondition
        );
        assert_eq!(
            exec(ExecError::Start(std::io::Error::other("x"))).code(),
            Code::Internal
        );
        assert_eq!(signal(SignalError::UnknownPid(3)).code(), Code::NotFound);
        assert_eq!(
            copy(CopyError::Escape { entry: "../x".into() }).code(),
            Code::InvalidArgument
        );
        assert_eq!(copy(CopyError::NotFound("/x".into())).code(), Code::NotFound);
    }
}
