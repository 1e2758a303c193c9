//! Every error the API can answer, mapped to a gRPC status in one place: the caller's
//! mistakes apart from the guest's own failures.

use tonic::Status;

use crate::copy::CopyError;
use crate::exec::ExecError;
use crate::reaper::SignalError;

pub fn exec(error: ExecError) -> Status {
    match error {
        ExecError::NoCommand | ExecError::BadEnv(_) | ExecError::BadCwd(_) | ExecError::User(_) => {
            Status::invalid_argument(error.to_string())
        }
        ExecError::WorkloadRunning(_) => Status::failed_precondition(error.to_string()),
        ExecError::Start(_) => Status::internal(error.to_string()),
    }
}

pub fn signal(error: SignalError) -> Status {
    match error {
        SignalError::UnknownPid(_) => Status::not_found(error.to_string()),
        SignalError::NoWorkload => Status::failed_precondition(error.to_string()),
        SignalError::Kill(_) => Status::internal(error.to_string()),
    }
}

pub fn copy(error: CopyError) -> Status {
    match error {
        CopyError::RelativeDestination(_) | CopyError::RelativePath(_) | CopyError::Escape { .. } => {
            Status::invalid_argument(error.to_string())
        }
        CopyError::NotFound(_) => Status::not_found(error.to_string()),
        // A stream that is not a valid tar is the caller's; a failing disk is ours.
        CopyError::Tar(ref e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Status::invalid_argument(error.to_string())
        }
        CopyError::Tar(_) | CopyError::Io { .. } => Status::internal(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

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
