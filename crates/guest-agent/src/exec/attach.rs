//! Where a session's output goes. An exec's goes to its one client. The workload's
//! outlives its client: when the orchestrator that started it goes away (a restart), its
//! output waits — the pipes fill, then the workload blocks on writing, so nothing is lost
//! — until a new client attaches (Exec with `workload` and `attach`) and reads on from
//! there, through to the exit. A workload that ends with nobody attached waits a while
//! for one, then its exit is given up on so the VM can still end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Input, Output};

/// How long a workload that has ended waits for a client to attach and take the rest of
/// its output and its exit, before they are dropped and the VM goes on ending.
pub const DETACHED_END_WAIT: Duration = Duration::from_secs(60);

/// One client's call: where its outputs go, and whether it has finished sending (its
/// half-close is how it says it has read the exit).
#[derive(Clone)]
pub struct Client {
    pub outputs: mpsc::Sender<Output>,
    pub done_sending: watch::Receiver<bool>,
}

/// The running workload's link to whichever client is attached.
pub struct WorkloadLink {
    client: watch::Sender<Option<Client>>,
    /// Every attached call's inputs (signals, stdin, resizes) feed the one session.
    inputs: mpsc::Sender<Input>,
    /// Set when the workload has ended: waiting for a client stops then.
    give_up_at: Mutex<Option<Instant>>,
}

impl WorkloadLink {
    pub fn new(first: Client, inputs: mpsc::Sender<Input>) -> Arc<Self> {
        Arc::new(Self {
            client: watch::channel(Some(first)).0,
            inputs,
            give_up_at: Mutex::new(None),
        })
    }

    /// A sender for a new call's inputs.
    pub fn inputs(&self) -> mpsc::Sender<Input> {
        self.inputs.clone()
    }

    /// `client` reads the workload's output from now on (a previous one is cut off).
    pub fn attach(&self, client: Client) {
        self.client.send_replace(Some(client));
    }

    /// The workload has ended: output and exit wait for a client at most [`DETACHED_END_WAIT`] more.
    pub fn ended(&self) {
        let mut at = self.give_up_at.lock().unwrap_or_else(|e| e.into_inner());
        at.get_or_insert_with(|| Instant::now() + DETACHED_END_WAIT);
        drop(at);
        // Senders waiting for a client without a time limit look again, with one now.
        self.client.send_modify(|_| ());
    }

    fn give_up_at(&self) -> Option<Instant> {
        *self.give_up_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends to the attached client, waiting for one while there is none (or it went);
    /// gives `output` back once the workload has ended and nobody came in time.
    async fn send(&self, output: Output) -> Result<Client, Output> {
        let mut clients = self.client.subscribe();
        loop {
            let current = clients.borrow_and_update().clone();
            if let Some(client) = current {
                let queue = client.outputs.clone();
                // Room in this client's queue, unless another attaches meanwhile: a client
                // whose call is stuck (its connection half dead) must not hold the workload.
                tokio::select! {
                    permit = queue.reserve() => {
                        if let Ok(permit) = permit {
                            permit.send(output);
                            return Ok(client);
                        }
                        // Gone: wait for the next one below.
                    }
                    changed = clients.changed() => match changed {
                        Ok(()) => continue,
                        Err(_) => return Err(output),
                    },
                }
            }
            // No client, or it went: wait for the next, up to the give-up time once ended.
            let attached = clients.changed();
            let outcome = match self.give_up_at() {
                Some(at) => tokio::time::timeout_at(at, attached).await.ok(),
                None => Some(attached.await),
            };
            match outcome {
                Some(Ok(())) => continue,
                // Ended meanwhile (the give-up time was set after this wait began)? Look again.
                None if self.give_up_at().is_some_and(|at| at > Instant::now()) => continue,
                _ => return Err(output),
            }
        }
    }
}

/// A session's outputs.
#[derive(Clone)]
pub enum Outputs {
    /// An exec: its one client.
    Exec(mpsc::Sender<Output>),
    /// The workload: whoever is attached.
    Workload(Arc<WorkloadLink>),
}

impl Outputs {
    /// Sends `output`; Err when nobody will read it (an exec's client went away; the
    /// workload ended with nobody attached in time).
    pub async fn send(&self, output: Output) -> Result<(), Output> {
        match self {
            Outputs::Exec(tx) => tx.send(output).await.map_err(|e| e.0),
            Outputs::Workload(link) => link.send(output).await.map(|_| ()),
        }
    }

    /// Resolves when an exec's client has gone away; never for the workload's (it waits for another).
    pub async fn client_gone(&self) {
        match self {
            Outputs::Exec(tx) => tx.closed().await,
            Outputs::Workload(_) => std::future::pending().await,
        }
    }

    /// The command has ended (the workload's output and exit wait for a client only a while now).
    pub fn ended(&self) {
        if let Outputs::Workload(link) = self {
            link.ended();
        }
    }

    /// Sends the exit. For the workload: to whoever is attached (waiting a while for one),
    /// returning that client's "done sending" (its half-close: it has read the exit); None
    /// when nobody took it.
    pub async fn send_exit(&self, exit: Output) -> Option<watch::Receiver<bool>> {
        match self {
            Outputs::Exec(tx) => {
                let _ = tx.send(exit).await;
                None
            }
            Outputs::Workload(link) => link.send(exit).await.ok().map(|client| client.done_sending),
        }
    }
}
