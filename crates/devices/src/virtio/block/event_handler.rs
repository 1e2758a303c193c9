//! The block device as an event-loop subscriber: queue notifications → request processing.

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use log::{error, warn};

use super::Block;
use crate::virtio::VirtioDevice;

impl MutEventSubscriber for Block {
    /// Registers every queue's notification eventfd, tagged with its queue index. The
    /// eventfds exist for the device's whole life, so registration happens once, before the
    /// guest activates the device; notifications that arrive while it is inactive are drained
    /// and dropped.
    fn init(&mut self, ops: &mut EventOps) {
        for (index, evt) in self.queue_events().iter().enumerate() {
            if let Err(e) = ops.add(Events::with_data(evt, index as u32, EventSet::IN)) {
                error!(
                    "virtio-blk {}: cannot register queue {index} with the event loop: {e}",
                    self.drive_id()
                );
            }
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let index = events.data() as usize;
        let set = events.event_set();
        if set.intersects(EventSet::ERROR | EventSet::HANG_UP) {
            error!(
                "virtio-blk {}: queue {index} eventfd reported {set:?}; unregistering it",
                self.drive_id()
            );
            let _ = ops.remove(events);
            return;
        }
        let Some(evt) = self.queue_events().get(index) else {
            warn!("virtio-blk {}: event for unknown queue {index}", self.drive_id());
            return;
        };
        // Reset the counter; a spurious wake-up (EAGAIN) is harmless.
        let _ = evt.read();
        self.process_queue();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use event_manager::{EventManager, SubscriberOps};
    use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
    use virtio_queue::desc::split::Descriptor;
    use vm_memory::{Bytes, GuestAddress};

    use crate::virtio::VirtioDevice;
    use crate::virtio::block::{Block, BlockConfig, request_status, request_type};
    use crate::virtio::mmio::{MMIO_NOTIFY_OFFSET, MmioTransport};
    use crate::virtio::test_utils::{GuestQueue, MmioDriver, TestQueue, guest_memory};

    /// The wiring the VMM does, end to end: transport on the "bus", device in the event
    /// loop, a guest notify through the transport, completion signalled on the irq eventfd.
    #[test]
    fn notify_through_event_loop_completes_request() {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(8 * 512).unwrap();
        let block = Arc::new(Mutex::new(
            Block::new(BlockConfig {
                drive_id: "evl".into(),
                path: file.path().into(),
                read_only: false,
            })
            .unwrap(),
        ));
        let metrics = block.lock().unwrap().metrics().clone();
        let mem = guest_memory();
        let mut transport = MmioTransport::new(mem.clone(), block.clone()).unwrap();
        let mut manager = EventManager::<Arc<Mutex<Block>>>::new().unwrap();
        manager.add_subscriber(block.clone());

        let layout = TestQueue::new(GuestAddress(0x1_0000), 16);
        let features = block.lock().unwrap().avail_features();
        MmioDriver::new(&mut transport).init(features, &[layout]).unwrap();

        // A GET_ID request.
        mem.write_obj(request_type::GET_ID, GuestAddress(0x10_0000))
            .unwrap();
        let f_next = VRING_DESC_F_NEXT as u16;
        let f_write = VRING_DESC_F_WRITE as u16;
        GuestQueue::new(&mem, layout).add_chain(
            0,
            &[
                Descriptor::new(0x10_0000, 16, f_next, 1),
                Descriptor::new(0x20_0000, 20, f_write | f_next, 2),
                Descriptor::new(0x30_0000, 1, f_write, 0),
            ],
        );
        transport.bus_write(MMIO_NOTIFY_OFFSET, &0u32.to_le_bytes());

        assert_eq!(manager.run_with_timeout(1000).unwrap(), 1);
        let status: u8 = mem.read_obj(GuestAddress(0x30_0000)).unwrap();
        assert_eq!(status, request_status::OK);
        let mut id = [0u8; 3];
        mem.read_slice(&mut id, GuestAddress(0x20_0000)).unwrap();
        assert_eq!(&id, b"evl");
        assert_eq!(transport.interrupt().irq_evt().read().unwrap(), 1);
        assert_eq!(transport.interrupt().status(), 1);
        assert_eq!(GuestQueue::new(&mem, layout).used_idx(), 1);
        assert_eq!(metrics.snapshot().errors, 0);

        // A spurious wake-up does nothing.
        block.lock().unwrap().queue_events()[0].write(1).unwrap();
        assert_eq!(manager.run_with_timeout(1000).unwrap(), 1);
        assert_eq!(GuestQueue::new(&mem, layout).used_idx(), 1);
    }
}
