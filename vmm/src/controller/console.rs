//! A console client's session: what it reads (the past replayed or not, then live
//! output, then whatever is left when the VM exits) and the input it sends the guest.
//! The API layer only moves these bytes to and from its stream.

use std::sync::Arc;

use tokio::sync::watch;

use super::state::{Phase, VmState};
use super::{Controller, ControllerError};
use crate::devices::legacy::serial::ConsoleCursor;

/// One attached console client.
pub struct ConsoleSession {
    controller: Arc<Controller>,
    /// Output printed before the session began, taken together with `live` so nothing
    /// falls between the two; handed out only if the client asks for a replay.
    past: Option<Vec<u8>>,
    live: ConsoleCursor,
    state: watch::Receiver<VmState>,
    ended: bool,
}

impl ConsoleSession {
    /// Subscribes now, so nothing printed after the client attached is missed.
    pub(super) fn attach(controller: Arc<Controller>) -> Self {
        let (past, live) = controller.ctx.console.subscribe(true);
        let state = controller.watch_state();
        Self {
            controller,
            past: Some(past),
            live,
            state,
            ended: false,
        }
    }

    /// The output printed before the session began, when the client wants it (its first
    /// message decides); `None` when it does not or there was none. Answers once.
    pub fn replay(&mut self, wanted: bool) -> Option<Vec<u8>> {
        self.past.take().filter(|past| wanted && !past.is_empty())
    }

    /// Bytes for the guest's serial input.
    pub fn input(&self, bytes: &[u8]) -> Result<(), ControllerError> {
        self.controller.console_input(bytes)
    }

    /// The next output, or `None` once the VM has exited and everything it printed was
    /// handed out (or the console is gone). Cancel-safe: a caller may drop it in a
    /// `select!` (to read input) and call again without losing output.
    pub async fn next_output(&mut self) -> Option<Vec<u8>> {
        if self.ended {
            return None;
        }
        // The past is dropped unread when the client never asked for it.
        self.past = None;
        loop {
            // Output first: at the exit, whatever was printed still goes out in order.
            if let Some(data) = self.read_live() {
                return Some(data);
            }
            let exited = tokio::select! {
                biased;
                more = self.live.changed() => if more { continue } else { false },
                _ = self.state.wait_for(|s| s.phase == Phase::Exited) => true,
            };
            self.ended = true;
            // The VM is gone: hand out what is left, then end.
            return if exited { self.read_live() } else { None };
        }
    }

    /// The output printed since the last read, if any. Nothing waits here, so a
    /// cancelled [`Self::next_output`] loses nothing.
    fn read_live(&mut self) -> Option<Vec<u8>> {
        let read = self.controller.ctx.console.read(&mut self.live);
        if read.lost > 0 {
            tracing::warn!("console reader fell behind; {} bytes dropped", read.lost);
        }
        (!read.data.is_empty()).then_some(read.data)
    }
}
