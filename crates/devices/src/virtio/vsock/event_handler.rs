//! The vsock device as an event-loop subscriber: queue notifications, the unix listener,
//! every host socket and the device's kick eventfd → queue and socket work.

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use log::{error, warn};

use super::NUM_QUEUES;
use super::Vsock;
use super::muxer::STREAM_TOKEN;
use crate::virtio::VirtioDevice;

/// `data` of the listener's registration (queues use their index, host sockets
/// [`STREAM_TOKEN`]).
const LISTENER_TOKEN: u32 = NUM_QUEUES as u32;
/// `data` of the kick eventfd's registration.
const KICK_TOKEN: u32 = NUM_QUEUES as u32 + 1;
/// `data` of the timer's registration.
const TIMER_TOKEN: u32 = NUM_QUEUES as u32 + 2;

impl MutEventSubscriber for Vsock {
    /// Registers the queue eventfds (tagged with their index), the listener, the kick
    /// eventfd and the timer; host sockets are added and removed as they come and go.
    fn init(&mut self, ops: &mut EventOps) {
        let mut fds = Vec::new();
        for (index, evt) in self.queue_events().iter().enumerate() {
            fds.push(Events::with_data(evt, index as u32, EventSet::IN));
        }
        fds.push(Events::with_data(
            self.muxer.listener(),
            LISTENER_TOKEN,
            EventSet::IN,
        ));
        fds.push(Events::with_data(self.kick_evt(), KICK_TOKEN, EventSet::IN));
        fds.push(Events::with_data(self.muxer.timer(), TIMER_TOKEN, EventSet::IN));
        for events in fds {
            if let Err(e) = ops.add(events) {
                error!(
                    "virtio-vsock (CID {}): cannot register fd {} with the event loop: {e:?}",
                    self.guest_cid(),
                    events.fd()
                );
            }
        }
        // Anything that happened before registration (activation, a reset) is applied now.
        self.muxer.sync(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let set = events.event_set();
        match events.data() {
            STREAM_TOKEN => self.muxer.on_stream_event(events.fd(), set),
            token if set.intersects(EventSet::ERROR | EventSet::HANG_UP) => {
                error!(
                    "virtio-vsock: fd {} (token {token}) reported {set:?}; unregistering it",
                    events.fd()
                );
                let _ = ops.remove(events);
            }
            LISTENER_TOKEN => self.muxer.accept(),
            KICK_TOKEN => {
                let _ = self.kick_evt().read();
            }
            TIMER_TOKEN => self.muxer.on_timer(),
            index => match self.queue_events().get(index as usize) {
                // Reset the counter; a spurious wake-up (EAGAIN) is harmless.
                Some(evt) => {
                    let _ = evt.read();
                }
                None => warn!("virtio-vsock: event with unknown token {index}"),
            },
        }
        self.process_queues();
        self.muxer.sync(ops);
    }
}
