//! The net device as an event-loop subscriber: the TAP's readable and writable edges and
//! both queues' notifications → frame work.

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use log::{error, warn};

use super::{NUM_QUEUES, Net, RX_QUEUE};
use crate::virtio::VirtioDevice;

/// `data` of the TAP's registration (queues use their index).
const TAP_TOKEN: u32 = NUM_QUEUES as u32;

impl MutEventSubscriber for Net {
    /// Registers both queue eventfds (tagged with their index) and the TAP, edge-triggered
    /// for reading and writing: the device reads until `EAGAIN` or until the guest has no
    /// buffer, and the flags it keeps (`rx_ready`, `tx_blocked`) say where it stopped, so a
    /// TAP with frames waiting for buffers never wakes the loop in vain.
    fn init(&mut self, ops: &mut EventOps) {
        let mut fds = Vec::new();
        for (index, evt) in self.queue_events().iter().enumerate() {
            fds.push(Events::with_data(evt, index as u32, EventSet::IN));
        }
        fds.push(Events::with_data(
            self.tap(),
            TAP_TOKEN,
            EventSet::IN | EventSet::OUT | EventSet::EDGE_TRIGGERED,
        ));
        for events in fds {
            if let Err(e) = ops.add(events) {
                error!(
                    "virtio-net {}: cannot register fd {} with the event loop: {e:?}",
                    self.config().iface_id,
                    events.fd()
                );
            }
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let set = events.event_set();
        match events.data() {
            TAP_TOKEN => {
                if set.intersects(EventSet::ERROR | EventSet::HANG_UP) {
                    error!(
                        "virtio-net {}: TAP {} reported {set:?}; unregistering it",
                        self.config().iface_id,
                        self.tap().name()
                    );
                    let _ = ops.remove(events);
                    return;
                }
                if set.contains(EventSet::IN) {
                    self.rx_ready = true;
                }
                if set.contains(EventSet::OUT) {
                    self.tx_blocked = false;
                }
            }
            index => match self.queue_events().get(index as usize) {
                Some(evt) => {
                    // Reset the counter; a spurious wake-up (EAGAIN) is harmless.
                    let _ = evt.read();
                    // New RX buffers: frames the TAP holds can go now. The TAP gives no
                    // new edge for frames it already signalled, so look again.
                    if index as usize == RX_QUEUE {
                        self.rx_ready = true;
                    }
                }
                None => warn!("virtio-net: event with unknown token {index}"),
            },
        }
        self.process();
    }
}
