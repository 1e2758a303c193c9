//! Checks the gRPC framing of every request body before tonic reads it.
//!
//! tonic answers framing mistakes with INTERNAL (a compressed-flag it was not told about, a
//! body that ends inside a message, a unary call without a message) or OUT_OF_RANGE (a
//! message over the size limit), and silently ignores a second message on a unary call.
//! All of these are the client's mistakes: [`Framing`] wraps the request body, follows the
//! 5-byte message headers as data arrives and fails the body with a status from
//! [`super::status::framing`] at the first mistake; tonic passes a body error that is a
//! `Status` through unchanged, before any handler runs.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;
use tonic::server::NamedService;

use super::status;

/// Largest request message accepted (tonic's default, set explicitly on the server so both
/// checks agree).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Methods whose request is a stream (any number of messages, including none).
const STREAMING_REQUESTS: &[&str] = &["/vmm.v1.Vmm/Console"];

/// A framing mistake in a request body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("request: message with compressed-flag {0}, but this API takes uncompressed messages only")]
    Compressed(u8),
    #[error("request: a message of {len} bytes is over the limit of {max} bytes")]
    TooLarge { len: u64, max: usize },
    #[error("request: the body ends inside a message ({got} of {expected} bytes)")]
    Truncated { got: u64, expected: u64 },
    #[error("request: the body has no message; this method takes exactly one")]
    NoMessage,
    #[error("request: the body has more than one message; this method takes exactly one")]
    ExtraMessage,
}

/// The layer, as a service wrapping the generated server.
#[derive(Debug, Clone)]
pub struct Framing<S> {
    inner: S,
}

impl<S> Framing<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for Framing<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tonic::codegen::Service<http::Request<tonic::body::Body>> for Framing<S>
where
    S: tonic::codegen::Service<http::Request<tonic::body::Body>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let unary = !STREAMING_REQUESTS.contains(&req.uri().path());
        self.inner
            .call(req.map(|body| tonic::body::Body::new(FramedBody::new(body, unary))))
    }
}

/// The request body, passed through while its message headers are followed.
struct FramedBody {
    inner: tonic::body::Body,
    scanner: Scanner,
    failed: bool,
}

impl FramedBody {
    fn new(inner: tonic::body::Body, unary: bool) -> Self {
        Self {
            inner,
            scanner: Scanner::new(unary),
            failed: false,
        }
    }
}

impl Body for FramedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let polled = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(p) => p,
        };
        let checked = match &polled {
            Some(Ok(frame)) => frame.data_ref().map_or(Ok(()), |d| this.scanner.scan(d)),
            Some(Err(_)) => Ok(()),
            None => this.scanner.finish(),
        };
        match checked {
            Ok(()) => Poll::Ready(polled),
            Err(e) => {
                this.failed = true;
                Poll::Ready(Some(Err(status::framing(e))))
            }
        }
    }

    // Never "ended" early: the end-of-body checks must run.
    fn is_end_stream(&self) -> bool {
        self.failed
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Follows `flag(1) length(4, big-endian) message(length)` records over arbitrary chunks.
#[derive(Debug)]
struct Scanner {
    unary: bool,
    header: [u8; 5],
    header_len: usize,
    expected: u64,
    remaining: u64,
    messages: u32,
}

impl Scanner {
    fn new(unary: bool) -> Self {
        Self {
            unary,
            header: [0; 5],
            header_len: 0,
            expected: 0,
            remaining: 0,
            messages: 0,
        }
    }

    fn scan(&mut self, mut data: &[u8]) -> Result<(), FramingError> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len() as u64);
                self.remaining -= take;
                data = &data[take as usize..];
                continue;
            }
            let take = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
            self.header_len += take;
            data = &data[take..];
            if self.header_len < 5 {
                break;
            }
            self.header_len = 0;
            let flag = self.header[0];
            let len = u64::from(u32::from_be_bytes([
                self.header[1],
                self.header[2],
                self.header[3],
                self.header[4],
            ]));
            if flag != 0 {
                return Err(FramingError::Compressed(flag));
            }
            if len > MAX_REQUEST_BYTES as u64 {
                return Err(FramingError::TooLarge {
                    len,
                    max: MAX_REQUEST_BYTES,
                });
            }
            self.messages += 1;
            if self.unary && self.messages > 1 {
                return Err(FramingError::ExtraMessage);
            }
            self.expected = len;
            self.remaining = len;
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), FramingError> {
        if self.header_len > 0 {
            return Err(FramingError::Truncated {
                got: self.header_len as u64,
                expected: 5,
            });
        }
        if self.remaining > 0 {
            return Err(FramingError::Truncated {
                got: self.expected - self.remaining,
                expected: self.expected,
            });
        }
        if self.unary && self.messages == 0 {
            return Err(FramingError::NoMessage);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, msg: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend((msg.len() as u32).to_be_bytes());
        v.extend(msg);
        v
    }

    fn check(unary: bool, chunks: &[&[u8]]) -> Result<(), FramingError> {
        let mut s = Scanner::new(unary);
        for c in chunks {
            s.scan(c)?;
        }
        s.finish()
    }

    #[test]
    fn well_framed_bodies_pass_in_any_chunking() {
        let body = frame(0, b"\x08\x01\x10\x80\x01");
        for cut in 0..=body.len() {
            assert_eq!(check(true, &[&body[..cut], &body[cut..]]), Ok(()), "cut {cut}");
        }
        assert_eq!(check(true, &[&frame(0, b"")]), Ok(()), "an empty message");
        let two = [frame(0, b"a"), frame(0, b"bc")].concat();
        assert_eq!(check(false, &[&two]), Ok(()), "a stream may carry several");
        assert_eq!(check(false, &[]), Ok(()), "or none");
    }

    #[test]
    fn framing_mistakes_are_named() {
        assert_eq!(check(true, &[&frame(1, b"x")]), Err(FramingError::Compressed(1)));
        assert_eq!(check(true, &[&frame(7, b"x")]), Err(FramingError::Compressed(7)));
        let huge = [0u8, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            check(true, &[&huge]),
            Err(FramingError::TooLarge { .. })
        ));
        let body = frame(0, b"hello");
        assert_eq!(
            check(true, &[&body[..7]]),
            Err(FramingError::Truncated { got: 2, expected: 5 })
        );
        assert_eq!(
            check(true, &[&body[..3]]),
            Err(FramingError::Truncated { got: 3, expected: 5 })
        );
        assert_eq!(check(true, &[]), Err(FramingError::NoMessage));
        let two = [frame(0, b"a"), frame(0, b"b")].concat();
        assert_eq!(check(true, &[&two]), Err(FramingError::ExtraMessage));
        assert!(FramingError::NoMessage.to_string().starts_with("request: "));
    }
}
