//! One error type for the image engine, carrying the status a caller reports it as.

use std::fmt;
use std::io;

/// What kind of failure, in gRPC's terms: the orchestrator maps these one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    Unauthenticated,
    PermissionDenied,
    Unavailable,
    DataLoss,
    ResourceExhausted,
    /// The file system cannot hold what was asked (extended attributes on an old tmpfs).
    Unsupported,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::DataLoss => "DATA_LOSS",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::Unsupported => "FAILED_PRECONDITION",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// A failure with its code and one readable sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    pub code: ErrorCode,
    pub message: String,
}

impl ImageError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn data_loss(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DataLoss, message)
    }

    /// An I/O failure while doing `what`; a full disk is RESOURCE_EXHAUSTED, not INTERNAL.
    pub fn io(what: impl fmt::Display, err: io::Error) -> Self {
        let code = match err.raw_os_error() {
            Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error() => ErrorCode::ResourceExhausted,
            Some(code) if code == rustix::io::Errno::DQUOT.raw_os_error() => ErrorCode::ResourceExhausted,
            _ => ErrorCode::Internal,
        };
        Self::new(code, format!("{what}: {err}"))
    }

    /// The same error with `context` in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self {
            code: self.code,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ImageError {}

impl From<rustix::io::Errno> for ImageError {
    fn from(errno: rustix::io::Errno) -> Self {
        ImageError::io("file system", errno.into())
    }
}

pub type Result<T> = std::result::Result<T, ImageError>;
