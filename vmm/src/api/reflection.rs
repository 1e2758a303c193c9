//! gRPC server reflection, built on its first call.
//!
//! Building the reflection service decodes our descriptor set and its own and indexes
//! every symbol: about 100 KiB of heap and part of the start-up time. Most VMMs are
//! driven by generated clients and never see a reflection call, so [`LazyReflection`]
//! answers under the same service name and builds the real service the first time one
//! arrives; every call after that goes straight to it.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tonic::Status;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;

type HttpRequest = http::Request<tonic::body::Body>;
type HttpResponse = http::Response<tonic::body::Body>;

/// A reflection service made by `build` on first use (see the module documentation).
pub struct LazyReflection<S, F> {
    shared: Arc<Shared<S, F>>,
}

struct Shared<S, F> {
    build: F,
    /// The service, or why it could not be built (then every call fails INTERNAL).
    built: OnceLock<Result<S, String>>,
}

impl<S, F> LazyReflection<S, F> {
    pub fn new(build: F) -> Self {
        Self {
            shared: Arc::new(Shared {
                build,
                built: OnceLock::new(),
            }),
        }
    }
}

impl<S, F> Clone for LazyReflection<S, F> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S: NamedService, F> NamedService for LazyReflection<S, F> {
    const NAME: &'static str = S::NAME;
}

impl<S, F, E> Service<HttpRequest> for LazyReflection<S, F>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    F: Fn() -> Result<S, E>,
    E: std::fmt::Display,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<HttpResponse, Infallible>;

    // The real service is always ready (tonic's generated servers are); readiness is
    // checked on the clone in `call`.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        let shared = &self.shared;
        let built = shared.built.get_or_init(|| {
            (shared.build)().map_err(|e| {
                tracing::error!("cannot build the reflection service: {e}");
                format!("reflection service: {e}")
            })
        });
        match built {
            Ok(service) => {
                let mut service = service.clone();
                Box::pin(async move {
                    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                    service.call(req).await
                })
            }
            Err(e) => {
                let response = Status::internal(e.clone()).into_http();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A stand-in service answering OK, counting how often it was built.
    #[derive(Clone)]
    struct Echo;

    impl NamedService for Echo {
        const NAME: &'static str = "test.Echo";
    }

    impl Service<HttpRequest> for Echo {
        type Response = HttpResponse;
        type Error = Infallible;
        type Future = std::future::Ready<Result<HttpResponse, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _req: HttpRequest) -> Self::Future {
            std::future::ready(Ok(http::Response::new(tonic::body::Body::empty())))
        }
    }

    fn request() -> HttpRequest {
        http::Request::new(tonic::body::Body::empty())
    }

    #[tokio::test]
    async fn builds_once_on_the_first_call_and_keeps_the_service_name() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let lazy = LazyReflection::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok::<_, Infallible>(Echo)
        });
        assert_eq!(<LazyReflection<Echo, ()> as NamedService>::NAME, "test.Echo");
        assert_eq!(builds.load(Ordering::Relaxed), 0, "nothing built before a call");
        // Clones share the one service, as tonic clones it per connection.
        for mut service in [lazy.clone(), lazy.clone(), lazy] {
            let response = service.call(request()).await.unwrap();
            assert_eq!(response.status(), http::StatusCode::OK);
        }
        assert_eq!(builds.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_build_failure_answers_internal() {
        let mut lazy = LazyReflection::new(|| Err::<Echo, _>("bad descriptor"));
        let response = lazy.call(request()).await.unwrap();
        let status = Status::from_header_map(response.headers()).expect("a gRPC status");
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(status.message().contains("bad descriptor"), "{status:?}");
    }
}
