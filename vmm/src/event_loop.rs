//! The device event loop: one thread running an event-manager over the devices'
//! eventfds (virtio queue notifications from ioeventfds, console input, ...), so device
//! work never runs on a vCPU thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};

/// What the event loop holds: any subscriber, shared with whoever else needs it.
pub type Subscriber = Arc<Mutex<dyn MutEventSubscriber + Send>>;

/// How long one wait lasts before the stop flag is checked again.
const POLL_TIMEOUT_MS: i32 = 50;

/// Why the event loop could not start.
#[derive(Debug, thiserror::Error)]
pub enum EventLoopError {
    #[error("creating the event manager: {0:?}")]
    Create(event_manager::Error),
    #[error("cannot start the event-loop thread: {0}")]
    Spawn(std::io::Error),
}

pub struct EventLoop {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EventLoop {
    pub fn start(subscribers: Vec<Subscriber>) -> Result<Self, EventLoopError> {
        let mut manager = EventManager::<Subscriber>::new().map_err(EventLoopError::Create)?;
        for s in subscribers {
            manager.add_subscriber(s);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("event-loop".into())
            .spawn(move || {
                while !stop2.load(Ordering::SeqCst) {
                    if let Err(e) = manager.run_with_timeout(POLL_TIMEOUT_MS) {
                        tracing::error!("event loop: {e:?}");
                        break;
                    }
                }
            })
            .map_err(EventLoopError::Spawn)?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the loop and waits for its thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        self.stop();
    }
}
