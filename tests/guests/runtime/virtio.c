/* The driver steps every virtio-mmio test device shares (see ../include/virtio.h and
 * ../VIRTIO.md). */
#include "virtio.h"

u64 virtio_mmio_begin(int n, u32 device_id, u64 optional, u64 *base, u32 *irq) {
    if (cmdline_virtio_mmio(n, base, irq) != 0)
        guest_fail("virtio_mmio.device= for the device missing on the command line");
    u64 b = *base;
    if (vmmio_rd(b, VMMIO_MAGIC) != VIRTIO_MAGIC || vmmio_rd(b, VMMIO_VERSION) != 2)
        guest_fail("not a virtio-mmio v2 device");
    if (vmmio_rd(b, VMMIO_DEVICE_ID) != device_id)
        guest_fail("unexpected virtio device id");
    vmmio_wr(b, VMMIO_STATUS, 0);
    if (vmmio_rd(b, VMMIO_STATUS) != 0)
        guest_fail("reset did not clear status");
    vmmio_wr(b, VMMIO_STATUS, S_ACKNOWLEDGE);
    vmmio_wr(b, VMMIO_STATUS, S_ACKNOWLEDGE | S_DRIVER);

    vmmio_wr(b, VMMIO_DEVICE_FEATURES_SEL, 1);
    u64 offered = (u64)vmmio_rd(b, VMMIO_DEVICE_FEATURES) << 32;
    vmmio_wr(b, VMMIO_DEVICE_FEATURES_SEL, 0);
    offered |= vmmio_rd(b, VMMIO_DEVICE_FEATURES);
    if (!(offered & F_VERSION_1))
        guest_fail("VIRTIO_F_VERSION_1 not offered");
    u64 features = F_VERSION_1 | (offered & optional);
    vmmio_wr(b, VMMIO_DRIVER_FEATURES_SEL, 0);
    vmmio_wr(b, VMMIO_DRIVER_FEATURES, (u32)features);
    vmmio_wr(b, VMMIO_DRIVER_FEATURES_SEL, 1);
    vmmio_wr(b, VMMIO_DRIVER_FEATURES, (u32)(features >> 32));
    vmmio_wr(b, VMMIO_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if (!(vmmio_rd(b, VMMIO_STATUS) & S_FEATURES_OK))
        guest_fail("device refused FEATURES_OK");
    return features;
}

void virtio_mmio_queue(u64 base, u32 index, struct virtq *q, u8 *mem, u16 want, u16 avail_flags) {
    vmmio_wr(base, VMMIO_QUEUE_SEL, index);
    if (vmmio_rd(base, VMMIO_QUEUE_READY) != 0)
        guest_fail("queue ready before setup");
    u32 max = vmmio_rd(base, VMMIO_QUEUE_NUM_MAX);
    if (max < 8)
        guest_fail("queue too small");
    q->mem = mem;
    q->size = (u16)(max < want ? max : want);
    q->avail_idx = 0;
    q->used_seen = 0;
    memset(mem, 0, VQ_MEM_SIZE);
    *VQ_AVAIL_FLAGS(q) = avail_flags;
    u64 desc = (u64)(usize)mem, avail = desc + 4096, used = desc + 8192;
    vmmio_wr(base, VMMIO_QUEUE_NUM, q->size);
    vmmio_wr(base, VMMIO_QUEUE_DESC_LOW, (u32)desc);
    vmmio_wr(base, VMMIO_QUEUE_DESC_HIGH, (u32)(desc >> 32));
    vmmio_wr(base, VMMIO_QUEUE_DRIVER_LOW, (u32)avail);
    vmmio_wr(base, VMMIO_QUEUE_DRIVER_HIGH, (u32)(avail >> 32));
    vmmio_wr(base, VMMIO_QUEUE_DEVICE_LOW, (u32)used);
    vmmio_wr(base, VMMIO_QUEUE_DEVICE_HIGH, (u32)(used >> 32));
    vmmio_wr(base, VMMIO_QUEUE_READY, 1);
}

void virtio_mmio_driver_ok(u64 base) {
    vmmio_wr(base, VMMIO_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    u32 st = vmmio_rd(base, VMMIO_STATUS);
    if (!(st & S_DRIVER_OK) || (st & (S_NEEDS_RESET | S_FAILED)))
        guest_fail("device did not reach DRIVER_OK");
}

u64 virtio_mmio_config_u64(u64 base, u32 off) {
    for (int tries = 0; tries < 16; tries++) {
        u32 gen = vmmio_rd(base, VMMIO_CONFIG_GENERATION);
        u64 lo = vmmio_rd(base, VMMIO_CONFIG + off);
        u64 hi = vmmio_rd(base, VMMIO_CONFIG + off + 4);
        if (vmmio_rd(base, VMMIO_CONFIG_GENERATION) == gen)
            return (hi << 32) | lo;
    }
    guest_fail("config generation never settled");
}

void virtq_set_desc(struct virtq *q, u16 i, u64 addr, u32 len, u16 flags, u16 next) {
    VQ_DESC(q)[i].addr = addr;
    VQ_DESC(q)[i].len = len;
    VQ_DESC(q)[i].flags = flags;
    VQ_DESC(q)[i].next = next;
}

void virtq_publish(struct virtq *q, u16 head) {
    VQ_AVAIL_RING(q)[q->avail_idx % q->size] = head;
    barrier();
    q->avail_idx++;
    *VQ_AVAIL_IDX(q) = q->avail_idx;
    barrier();
}

u16 virtq_used_idx(const struct virtq *q) {
    barrier();
    return *VQ_USED_IDX(q);
}

void virtq_used_elem(const struct virtq *q, u16 pos, u32 *id, u32 *len) {
    barrier();
    *id = VQ_USED_RING(q)[pos % q->size].id;
    *len = VQ_USED_RING(q)[pos % q->size].len;
}
