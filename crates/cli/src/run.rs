//! `vmctl run` without a terminal on stderr: create and start, stream the output, wait,
//! delete with `--rm`, exit with the workload's code — what the Node CLI's run does, for
//! the flags the front serves (`args.rs`).

use std::error::Error;
use std::io::Write;

use tokio::signal::unix::{SignalKind, signal};
use tonic::{Code, Status};

use crate::api::create_service_event::Event;
use crate::api::log_chunk::Stream;
use crate::api::{
    CreateServiceRequest, DeleteServiceRequest, ExitInfo, LogsRequest, RunShorthand, Service, ServiceRef,
    StopServiceRequest,
};
use crate::args::RunArgs;
use crate::connection::Client;
use crate::format::signal_number;
use crate::progress::PlainProgress;

/// Exit code for a run that failed before the workload ran (docker's convention, the Node CLI's).
pub const RUN_FAILED: i32 = 125;

pub enum RunEnd {
    /// Exit with this code (a line said why, if it was not the workload's own).
    Exit(i32),
    /// vmctld went away after the service was made: the Node CLI waits for its exit with a
    /// daemon it starts again if need be (`vmctl run --await`), as its own run does.
    AwaitInNode { service: String },
}

/// The create request the flags describe, as the Node CLI's `requestFromFlags` makes it.
pub fn request(args: &RunArgs) -> CreateServiceRequest {
    let shorthand = args.image.is_some() || !args.command.is_empty() || !args.env.is_empty();
    CreateServiceRequest {
        name: args.name.clone().unwrap_or_default(),
        target: args.target.clone(),
        labels: args.labels.clone().into_iter().collect(),
        start: true,
        run: shorthand.then(|| RunShorthand {
            image: args.image.clone(),
            command: args.command.clone(),
            env: args.env.clone().into_iter().collect(),
            ..Default::default()
        }),
        request_id: request_id(),
        ..Default::default()
    }
}

pub async fn run(client: &mut Client, args: &RunArgs) -> RunEnd {
    let service = match create(client, args).await {
        Ok(service) => service,
        Err(status) => return fail(&status),
    };
    // Ctrl-C / SIGTERM stop the service (docker's signal proxy); its output and exit follow.
    let (Ok(mut interrupt), Ok(mut terminate)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return fail(&Status::internal("cannot take SIGINT and SIGTERM"));
    };
    let mut stopping = false;
    let mut stop = |client: &Client| {
        if !std::mem::replace(&mut stopping, true) {
            let mut client = client.clone();
            let id = service.id.clone();
            // As the Node CLI's: a stop that fails changes nothing of what follows.
            tokio::spawn(async move {
                client
                    .stop_service(StopServiceRequest { id, timeout_ms: None })
                    .await
                    .ok()
            });
        }
    };

    let mut follower = client.clone();
    let id = service.id.clone();
    let followed = async move {
        let mut logs = follower
            .logs(LogsRequest {
                id: id.clone(),
                follow: true,
            })
            .await?
            .into_inner();
        while let Some(chunk) = logs.message().await? {
            write_chunk(&chunk.data, chunk.stream() == Stream::Stderr);
        }
        follower
            .wait_service(ServiceRef { id })
            .await
            .map(|r| r.into_inner())
    };
    tokio::pin!(followed);
    let exit = loop {
        tokio::select! {
            exit = &mut followed => break exit,
            _ = interrupt.recv() => stop(client),
            _ = terminate.recv() => stop(client),
        }
    };
    let exit = match exit {
        Ok(exit) => exit,
        Err(status) if connection_lost(&status) => {
            eprintln!(
                "vmctl: lost vmctld while following {}'s output; waiting for its exit",
                service.name
            );
            return RunEnd::AwaitInNode { service: service.id };
        }
        Err(status) => return fail(&status),
    };
    if args.rm
        && let Err(status) = client
            .delete_service(DeleteServiceRequest {
                id: service.id.clone(),
                force: true,
            })
            .await
    {
        return fail(&status);
    }
    if exit.code.is_none() && exit.signal.is_empty() {
        let detail = if exit.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", exit.detail)
        };
        eprintln!("vmctl: {} {}{detail}", service.name, exit.reason);
    }
    RunEnd::Exit(exit_code(&exit))
}

/// The service as made, drawing what its preparation reports (an image pull) as lines.
async fn create(client: &mut Client, args: &RunArgs) -> Result<Service, Status> {
    let mut events = client
        .create_service_with_progress(request(args))
        .await?
        .into_inner();
    let mut progress = PlainProgress::default();
    while let Some(event) = events.message().await? {
        match event.event {
            Some(Event::Progress(p)) => eprint!("{}", progress.update(&p)),
            Some(Event::Service(service)) => return Ok(service),
            None => {}
        }
    }
    Err(Status::internal(
        "CreateServiceWithProgress ended without the service",
    ))
}

/// The call failed because vmctld went away (the connection broke, or none could be made),
/// not with an answer of its own: a status the daemon sent has no transport error behind it.
fn connection_lost(status: &Status) -> bool {
    status.code() == Code::Unavailable || status.source().is_some()
}

/// A failure as the Node CLI reports it: one line, exit 125.
fn fail(status: &Status) -> RunEnd {
    eprintln!("vmctl: {}", status.message());
    RunEnd::Exit(RUN_FAILED)
}

/// Output goes out as it comes; a reader that went away (a closed pipe) stops only the writing.
fn write_chunk(data: &[u8], stderr: bool) {
    let _ = if stderr {
        std::io::stderr().lock().write_all(data)
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(data).and_then(|()| out.flush())
    };
}

/// The workload's code, or 128 + the number of the signal that killed it, else 125.
pub fn exit_code(exit: &ExitInfo) -> i32 {
    match exit.code {
        Some(code) => code,
        None => signal_number(&exit.signal).map_or(RUN_FAILED, |n| 128 + n),
    }
}

/// A version 4 UUID from the kernel's random source: the create's idempotency key.
fn request_id() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most b.len() bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // Unique enough for an idempotency key: the time and our pid.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (t ^ (u128::from(std::process::id()) << 96)).to_be_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        let exit = |code, signal: &str| ExitInfo {
            code,
            signal: signal.into(),
            ..Default::default()
        };
        assert_eq!(
            [
                exit_code(&exit(Some(7), "")),
                exit_code(&exit(None, "SIGKILL")),
                exit_code(&exit(None, "")),
                exit_code(&exit(None, "SIGNOPE"))
            ],
            [7, 137, 125, 125]
        );
    }

    #[test]
    fn request_ids_are_v4_uuids() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    }
}
