//! A gRPC channel to vmctld over its unix socket, or why there is none.

use std::io;
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

use crate::api::orchestrator_client::OrchestratorClient;

pub type Client = OrchestratorClient<Channel>;

/// A client on `socket`. `Err` when nothing accepts there (not running, not ours to reach,
/// not a socket), before anything was asked of the daemon.
pub async fn connect(socket: &str) -> io::Result<Client> {
    // The first connection is made here, so a daemon that is not running is known before
    // the channel exists; a reconnect (the channel's own) connects afresh.
    let first = Arc::new(Mutex::new(Some(UnixStream::connect(socket).await?)));
    let path = socket.to_string();
    let channel = Endpoint::from_static("http://vmctld")
        .connect_with_connector(tower::service_fn(move |_| {
            let first = first.lock().ok().and_then(|mut s| s.take());
            let path = path.clone();
            async move {
                let stream = match first {
                    Some(stream) => stream,
                    None => UnixStream::connect(&path).await?,
                };
                Ok::<_, io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(io::Error::other)?;
    // tonic's 4 MiB answer limit, as grpc-js's: the daemon cuts every answer well under it.
    Ok(OrchestratorClient::new(channel))
}
