/* virtio-mmio (version 2) and split virtqueues for the test guests' drivers: register
 * offsets, status and feature bits, ring layout, and the driver steps every device shares
 * (runtime/virtio.c). The sequence is documented in ../VIRTIO.md. */
#ifndef VMCTL_GUEST_VIRTIO_H
#define VMCTL_GUEST_VIRTIO_H

#include "guest.h"

#define VMMIO_MAGIC 0x000
#define VMMIO_VERSION 0x004
#define VMMIO_DEVICE_ID 0x008
#define VMMIO_VENDOR_ID 0x00c
#define VMMIO_DEVICE_FEATURES 0x010
#define VMMIO_DEVICE_FEATURES_SEL 0x014
#define VMMIO_DRIVER_FEATURES 0x020
#define VMMIO_DRIVER_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL 0x030
#define VMMIO_QUEUE_NUM_MAX 0x034
#define VMMIO_QUEUE_NUM 0x038
#define VMMIO_QUEUE_READY 0x044
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_INTERRUPT_STATUS 0x060
#define VMMIO_INTERRUPT_ACK 0x064
#define VMMIO_STATUS 0x070
#define VMMIO_QUEUE_DESC_LOW 0x080
#define VMMIO_QUEUE_DESC_HIGH 0x084
#define VMMIO_QUEUE_DRIVER_LOW 0x090
#define VMMIO_QUEUE_DRIVER_HIGH 0x094
#define VMMIO_QUEUE_DEVICE_LOW 0x0a0
#define VMMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VMMIO_CONFIG_GENERATION 0x0fc
#define VMMIO_CONFIG 0x100

#define VIRTIO_MAGIC 0x74726976u
#define VIRTIO_ID_BLOCK 2u
#define VIRTIO_ID_VSOCK 19u

#define S_ACKNOWLEDGE 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u
#define S_NEEDS_RESET 64u
#define S_FAILED 128u

#define F_VERSION_1 (1ull << 32)

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};
struct vring_used_elem {
    u32 id;
    u32 len;
};

/* One split virtqueue in a page-aligned block of VQ_MEM_SIZE bytes: the descriptor table
 * at +0, the available ring at +4096, the used ring at +8192 (up to 256 entries). The
 * guest is identity mapped, so a pointer is its guest-physical address. */
#define VQ_MEM_SIZE (3 * 4096)
struct virtq {
    u8 *mem;
    u16 size;
    u16 avail_idx; /* the driver's copy */
    u16 used_seen; /* used elements consumed */
};
#define VQ_DESC(q) ((volatile struct vring_desc *)((q)->mem))
#define VQ_AVAIL_FLAGS(q) ((volatile u16 *)((q)->mem + 4096))
#define VQ_AVAIL_IDX(q) ((volatile u16 *)((q)->mem + 4096 + 2))
#define VQ_AVAIL_RING(q) ((volatile u16 *)((q)->mem + 4096 + 4))
#define VQ_USED_IDX(q) ((volatile u16 *)((q)->mem + 8192 + 2))
#define VQ_USED_RING(q) ((volatile struct vring_used_elem *)((q)->mem + 8192 + 4))

static inline u32 vmmio_rd(u64 base, u32 off) { return mmio_read32(base + off); }
static inline void vmmio_wr(u64 base, u32 off, u32 v) { mmio_write32(base + off, v); }

/* Steps 1-5 of the driver sequence on the n-th `virtio_mmio.device=`: checks magic, version
 * 2 and `device_id`, resets, ACKNOWLEDGE | DRIVER, accepts VERSION_1 | (offered & `optional`)
 * and sets FEATURES_OK. Fails the test on any refusal; returns the negotiated features. */
u64 virtio_mmio_begin(int n, u32 device_id, u64 optional, u64 *base, u32 *irq);
/* Step 6 for queue `index`: min(QueueNumMax, `want`) entries in `mem` (VQ_MEM_SIZE bytes,
 * page aligned, zeroed here), available-ring flags `avail_flags`, QueueReady = 1. */
void virtio_mmio_queue(u64 base, u32 index, struct virtq *q, u8 *mem, u16 want, u16 avail_flags);
/* Step 7: DRIVER_OK, checked (no DEVICE_NEEDS_RESET or FAILED). */
void virtio_mmio_driver_ok(u64 base);

/* Step 8: the le64 at config offset `off`, read between two equal ConfigGeneration reads. */
u64 virtio_mmio_config_u64(u64 base, u32 off);

/* Writes descriptor `i` verbatim. */
void virtq_set_desc(struct virtq *q, u16 i, u64 addr, u32 len, u16 flags, u16 next);
/* Makes chain `head` available (without notifying). */
void virtq_publish(struct virtq *q, u16 head);
/* The device's used index (after a barrier). */
u16 virtq_used_idx(const struct virtq *q);
/* The used element at ring position `pos`. */
void virtq_used_elem(const struct virtq *q, u16 pos, u32 *id, u32 *len);

#endif
