/* virtio-blk tests through virtio-mmio: read/write/flush/GET_ID, read-only drives,
 * interrupt-driven completion, malicious drivers, and a throughput run.
 * Driver sequence and cmdline keys: ../VIRTIO.md. Only guest.h and virtio.h (runtime/virtio.c) are used. */
#include "guest.h"
#include "virtio.h"

#define F_BLK_RO (1ull << 5)
#define F_BLK_FLUSH (1ull << 9)

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2
#define STATUS_UNTOUCHED 0xaa

#define SECTOR 512u
#define QSZ 64u            /* queue entries we use (if the device allows that many) */
#define DESC_PER_SLOT 4u   /* descriptors reserved per in-flight request */
#define SPIN_LIMIT 4000000 /* bounded waits: never hang the guest on a broken device */

/* ---- rings ------------------------------------------------------------------------ */
struct blk_hdr {
    u32 type;
    u32 reserved;
    u64 sector;
};

/* The one queue (descriptor table, available and used rings: include/virtio.h). */
static u8 vq_mem[VQ_MEM_SIZE] __attribute__((aligned(4096)));
static struct virtq vq;

/* Per-slot request header and status byte. */
static struct blk_hdr req_hdr[QSZ / DESC_PER_SLOT] __attribute__((aligned(16)));
static volatile u8 req_status[QSZ / DESC_PER_SLOT];

struct vblk {
    u64 base;
    u32 irq;
    u64 features; /* negotiated */
    u64 capacity; /* sectors */
};

static u32 vblk_rd(const struct vblk *d, u32 off) { return mmio_read32(d->base + off); }
static void vblk_wr(const struct vblk *d, u32 off, u32 v) { mmio_write32(d->base + off, v); }

static u64 read_capacity(const struct vblk *d) { return virtio_mmio_config_u64(d->base, 0); }

/* Full driver initialisation of device `vmctl.dev` (default 0): reset, ACKNOWLEDGE,
 * DRIVER, features (VERSION_1 | FLUSH | RO if offered), FEATURES_OK, queue 0, DRIVER_OK.
 * `irq_flags` is written to the available ring's flags (VRING_AVAIL_F_NO_INTERRUPT or 0). */
static void vblk_init(struct vblk *d, u16 irq_flags) {
    int n = (int)cmdline_u64("vmctl.dev", 0);
    d->features = virtio_mmio_begin(n, VIRTIO_ID_BLOCK, F_BLK_FLUSH | F_BLK_RO, &d->base, &d->irq);
    virtio_mmio_queue(d->base, 0, &vq, vq_mem, QSZ, irq_flags);
    virtio_mmio_driver_ok(d->base);
    d->capacity = read_capacity(d);
}

static void vblk_set_desc(u16 i, u64 addr, u32 len, u16 flags, u16 next) {
    virtq_set_desc(&vq, i, addr, len, flags, next);
}

static void vblk_publish(struct vblk *d, u16 head) {
    (void)d;
    virtq_publish(&vq, head);
}

static void vblk_notify(const struct vblk *d) { vblk_wr(d, VMMIO_QUEUE_NOTIFY, 0); }

/* Raw available-index write (for malicious tests). */
static void vblk_set_avail_idx(struct vblk *d, u16 idx) {
    (void)d;
    vq.avail_idx = idx;
    barrier();
    *VQ_AVAIL_IDX(&vq) = idx;
    barrier();
}

static u16 vblk_used_idx(void) { return virtq_used_idx(&vq); }

static void vblk_used_elem(const struct vblk *d, u16 pos, u32 *id, u32 *len) {
    (void)d;
    virtq_used_elem(&vq, pos, id, len);
}

/* Waits (bounded) until the used index reaches `idx`. Returns 0 or -1 on timeout. */
static int vblk_wait_used(const struct vblk *d, u16 idx) {
    (void)d;
    for (long i = 0; i < SPIN_LIMIT; i++) {
        if (vblk_used_idx() == idx)
            return 0;
    }
    return -1;
}

/* Waits (bounded) for DEVICE_NEEDS_RESET. Returns 0 or -1 on timeout. */
static int vblk_wait_needs_reset(const struct vblk *d) {
    for (long i = 0; i < SPIN_LIMIT / 16; i++) {
        if (vblk_rd(d, VMMIO_STATUS) & S_NEEDS_RESET)
            return 0;
    }
    return -1;
}

/* Builds request `slot` (header, optional data, status) with descriptors slot*4.. and
 * makes it available. `dev_writes` says whether the device writes the data buffer. */
static void vblk_post(struct vblk *d, u32 slot, u32 type, u64 sector, u64 buf, u32 len, int dev_writes) {
    u16 i = (u16)(slot * DESC_PER_SLOT);
    req_hdr[slot].type = type;
    req_hdr[slot].reserved = 0;
    req_hdr[slot].sector = sector;
    req_status[slot] = STATUS_UNTOUCHED;
    vblk_set_desc(i, (u64)(usize)&req_hdr[slot], sizeof(struct blk_hdr), VRING_DESC_F_NEXT,
                  (u16)(i + 1));
    u16 s = (u16)(i + 1);
    if (len) {
        vblk_set_desc(s, buf, len, (u16)(VRING_DESC_F_NEXT | (dev_writes ? VRING_DESC_F_WRITE : 0)),
                      (u16)(s + 1));
        s++;
    }
    vblk_set_desc(s, (u64)(usize)&req_status[slot], 1, VRING_DESC_F_WRITE, 0);
    vblk_publish(d, i);
}

static u8 vblk_slot_status(u32 slot) {
    barrier();
    return req_status[slot];
}

/* One synchronous request in slot 0; returns its status byte (or fails the test on a
 * timeout). The used element must name descriptor 0. */
static u8 vblk_sync(struct vblk *d, u32 type, u64 sector, u64 buf, u32 len, int dev_writes) {
    u16 want = (u16)(vq.avail_idx + 1);
    vblk_post(d, 0, type, sector, buf, len, dev_writes);
    vblk_notify(d);
    if (vblk_wait_used(d, want) != 0)
        guest_fail("request not completed (timeout)");
    u32 id, ulen;
    vblk_used_elem(d, (u16)(want - 1), &id, &ulen);
    if (id != 0)
        guest_fail("used element names the wrong descriptor");
    vq.used_seen = want;
    /* Acknowledge whatever interrupt the device raised (polling mode). */
    vblk_wr(d, VMMIO_INTERRUPT_ACK, vblk_rd(d, VMMIO_INTERRUPT_STATUS));
    return vblk_slot_status(0);
}

/* Checks the drive still works after a malicious request: GET_ID must answer OK. */
static int vblk_still_works(struct vblk *d) {
    static u8 id[20];
    u32 st = vblk_rd(d, VMMIO_STATUS);
    if (st & (S_NEEDS_RESET | S_FAILED))
        return 0;
    return vblk_sync(d, BLK_T_GET_ID, 0, (u64)(usize)id, sizeof(id), 1) == BLK_S_OK;
}

/* ---- tests ------------------------------------------------------------------------- */

#define RW_SECTORS 64u
static u64 rw_buf[RW_SECTORS * SECTOR / 8] __attribute__((aligned(4096)));

static u64 pattern(u64 i) { return (i * 0x9e3779b97f4a7c15ull) ^ 0x5a5a0000u; }

static u64 sum_buf(void) {
    u64 s = 0;
    for (u32 i = 0; i < RW_SECTORS * SECTOR / 8; i++)
        s += rw_buf[i] * (i + 1);
    return s;
}

GUEST_TEST(virtio_blk_rw, "virtio-blk-rw") {
    struct vblk d;
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    serial_kv_u64("capacity", d.capacity);
    if (d.features & F_BLK_RO)
        guest_fail("drive is read-only; virtio-blk-rw needs a writable drive");
    if (d.capacity < RW_SECTORS + 8)
        guest_fail("drive too small (needs 72 sectors)");
    u64 sector = 8; /* leave the first sectors alone */
    u32 len = RW_SECTORS * SECTOR;

    for (u32 i = 0; i < len / 8; i++)
        rw_buf[i] = pattern(i);
    u64 wsum = sum_buf();
    serial_kv_hex("write_sum", wsum);
    if (vblk_sync(&d, BLK_T_OUT, sector, (u64)(usize)rw_buf, len, 0) != BLK_S_OK)
        guest_fail("write failed");
    if (vblk_sync(&d, BLK_T_FLUSH, 0, 0, 0, 0) != BLK_S_OK)
        guest_fail("flush failed");

    for (u32 i = 0; i < len / 8; i++)
        rw_buf[i] = 0;
    if (vblk_sync(&d, BLK_T_IN, sector, (u64)(usize)rw_buf, len, 1) != BLK_S_OK)
        guest_fail("read failed");
    u64 rsum = sum_buf();
    serial_kv_hex("read_sum", rsum);
    for (u32 i = 0; i < len / 8; i++) {
        if (rw_buf[i] != pattern(i)) {
            serial_kv_u64("mismatch_at", i * 8);
            guest_fail("data read back differs from data written");
        }
    }
    u32 id_len_used;
    u32 id_desc;
    static char id[21];
    memset(id, 0, sizeof(id));
    if (vblk_sync(&d, BLK_T_GET_ID, 0, (u64)(usize)id, 20, 1) != BLK_S_OK)
        guest_fail("GET_ID failed");
    vblk_used_elem(&d, (u16)(vq.used_seen - 1), &id_desc, &id_len_used);
    serial_kv_u64("get_id_used_len", id_len_used);
    serial_puts("drive_id=");
    serial_puts(id);
    serial_putc('\n');
    char want[24];
    int n = cmdline_get("vmctl.drive_id", want, (int)sizeof(want));
    if (n < 0)
        guest_fail("vmctl.drive_id= missing on the command line");
    want[n < 23 ? n : 23] = 0;
    if (strcmp(id, want) != 0)
        guest_fail("GET_ID differs from vmctl.drive_id");
    return EXIT_PASS;
}

GUEST_TEST(virtio_blk_ro, "virtio-blk-ro") {
    struct vblk d;
    static u8 before[SECTOR], scratch[SECTOR];
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    serial_kv_u64("read_only", (d.features & F_BLK_RO) ? 1 : 0);
    if (!(d.features & F_BLK_RO))
        guest_fail("VIRTIO_BLK_F_RO not offered: the drive is not read-only");
    if (vblk_sync(&d, BLK_T_IN, 0, (u64)(usize)before, SECTOR, 1) != BLK_S_OK)
        guest_fail("read failed");
    for (u32 i = 0; i < SECTOR; i++)
        scratch[i] = (u8)~before[i];
    u8 st = vblk_sync(&d, BLK_T_OUT, 0, (u64)(usize)scratch, SECTOR, 0);
    serial_kv_u64("ro_write_status", st);
    if (st != BLK_S_IOERR)
        guest_fail("write to a read-only drive was not answered IOERR");
    if (vblk_sync(&d, BLK_T_FLUSH, 0, 0, 0, 0) != BLK_S_OK)
        guest_fail("flush on a read-only drive failed");
    if (vblk_sync(&d, BLK_T_IN, 0, (u64)(usize)scratch, SECTOR, 1) != BLK_S_OK)
        guest_fail("read-back failed");
    if (memcmp(before, scratch, SECTOR) != 0)
        guest_fail("read-only drive content changed");
    serial_kv_u64("ro_unchanged", 1);
    return EXIT_PASS;
}

/* ---- interrupt-driven completion ---------------------------------------------------- */
#define IOAPIC_BASE 0xfec00000ull
#define LAPIC_BASE 0xfee00000ull
#define LAPIC_ID 0x020
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define IRQ_VECTOR 0x40
#define SPURIOUS_VECTOR 0xff

static volatile u32 irq_count;
static volatile u32 irq_isr;
static u64 irq_dev_base;

static void ioapic_write(u32 reg, u32 v) {
    mmio_write32(IOAPIC_BASE, reg);
    mmio_write32(IOAPIC_BASE + 0x10, v);
}

static void blk_irq_handler(u8 vector) {
    (void)vector;
    u32 isr = mmio_read32(irq_dev_base + VMMIO_INTERRUPT_STATUS);
    mmio_write32(irq_dev_base + VMMIO_INTERRUPT_ACK, isr);
    irq_isr |= isr;
    irq_count++;
    mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

static void spurious_handler(u8 vector) { (void)vector; }

GUEST_TEST(virtio_blk_irq, "virtio-blk-irq") {
    struct vblk d;
    static u8 id[20];
    vblk_init(&d, 0); /* interrupts wanted */
    irq_dev_base = d.base;
    serial_kv_u64("gsi", d.irq);
    serial_kv_u64("vector", IRQ_VECTOR);

    /* Legacy PICs fully masked so that only the IOAPIC delivers. */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    /* Local APIC software-enabled, spurious vector 0xff. */
    u32 svr = mmio_read32(LAPIC_BASE + LAPIC_SVR);
    mmio_write32(LAPIC_BASE + LAPIC_SVR, (svr & ~0xffu) | 0x100u | SPURIOUS_VECTOR);
    u32 apic_id = mmio_read32(LAPIC_BASE + LAPIC_ID) >> 24;
    idt_set_handler(IRQ_VECTOR, blk_irq_handler);
    idt_set_handler(SPURIOUS_VECTOR, spurious_handler);
    /* IOAPIC redirection entry: fixed delivery, physical destination, edge, active high. */
    ioapic_write(0x10 + 2 * d.irq + 1, apic_id << 24);
    ioapic_write(0x10 + 2 * d.irq, IRQ_VECTOR);

    irq_count = 0;
    irq_isr = 0;
    irq_enable();
    u16 want = (u16)(vq.avail_idx + 1);
    vblk_post(&d, 0, BLK_T_GET_ID, 0, (u64)(usize)id, sizeof(id), 1);
    vblk_notify(&d);
    long spins = 0;
    while (irq_count == 0 && spins < SPIN_LIMIT)
        spins++;
    irq_disable();
    ioapic_write(0x10 + 2 * d.irq, 1u << 16); /* mask again */
    serial_kv_u64("irq_count", irq_count);
    serial_kv_hex("isr", irq_isr);
    if (irq_count == 0)
        guest_fail("no interrupt within the wait bound");
    if (!(irq_isr & 1))
        guest_fail("InterruptStatus did not have the used-ring bit");
    if (vblk_used_idx() != want)
        guest_fail("interrupt arrived but the used ring did not advance");
    if (vblk_slot_status(0) != BLK_S_OK)
        guest_fail("GET_ID failed");
    if (vblk_rd(&d, VMMIO_INTERRUPT_STATUS) != 0)
        guest_fail("InterruptStatus not cleared by InterruptACK");
    return EXIT_PASS;
}

/* ---- throughput ------------------------------------------------------------------- */

/* Finds `len` bytes of RAM at or above `min` in the e820 map; returns 0 if none. */
static u64 find_ram(u64 min, u64 len) {
    u8 n = guest_boot_params[0x1e8];
    for (u8 i = 0; i < n && i < 128; i++) {
        const u8 *e = guest_boot_params + 0x2d0 + 20u * i;
        u64 addr = 0, size = 0;
        u32 type = 0;
        memcpy(&addr, e, 8);
        memcpy(&size, e + 8, 8);
        memcpy(&type, e + 16, 4);
        if (type != 1)
            continue;
        u64 start = addr > min ? addr : min;
        start = (start + 4095) & ~4095ull;
        if (start + len <= addr + size && start + len < (1ull << 30))
            return start;
    }
    return 0;
}

GUEST_TEST(virtio_blk_bench, "virtio-blk-bench") {
    struct vblk d;
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    u64 total = cmdline_u64("vmctl.bytes", 64ull << 20);
    u64 req = cmdline_u64("vmctl.req", 128u << 10);
    char op[8];
    int is_read = cmdline_get("vmctl.op", op, (int)sizeof(op)) > 0 && op[0] == 'r';
    if (req == 0 || req % SECTOR || req > (64ull << 20))
        guest_fail("vmctl.req must be a non-zero multiple of 512, at most 64 MiB");
    if (!is_read && (d.features & F_BLK_RO))
        guest_fail("write benchmark on a read-only drive");
    u64 nsect = req / SECTOR;
    if (nsect > d.capacity)
        guest_fail("vmctl.req larger than the drive");
    u64 positions = d.capacity / nsect;
    /* One buffer shared by every request: the guest never touches it, only the device. */
    u64 buf = find_ram(16ull << 20, req);
    if (!buf)
        guest_fail("no RAM for the benchmark buffer (needs 16 MiB + vmctl.req)");
    u64 nreq = (total + req - 1) / req;
    serial_kv_u64("bench_requests", nreq);
    serial_kv_u64("bench_req_bytes", req);
    serial_puts(is_read ? "bench_op=read\n" : "bench_op=write\n");

    u32 slots = vq.size / DESC_PER_SLOT;
    u64 posted = 0, done = 0, errors = 0;
    u32 free_slots[QSZ / DESC_PER_SLOT];
    u32 nfree = 0;
    for (u32 s = 0; s < slots; s++)
        free_slots[nfree++] = s;
    while (done < nreq) {
        int added = 0;
        while (nfree > 0 && posted < nreq) {
            u32 slot = free_slots[--nfree];
            u64 sector = (posted % positions) * nsect;
            vblk_post(&d, slot, is_read ? BLK_T_IN : BLK_T_OUT, sector, buf, (u32)req, is_read);
            posted++;
            added = 1;
        }
        if (added)
            vblk_notify(&d);
        long spins = 0;
        while (vblk_used_idx() == vq.used_seen) {
            if (++spins > SPIN_LIMIT)
                guest_fail("benchmark request not completed (timeout)");
        }
        u16 used = vblk_used_idx();
        while (vq.used_seen != used) {
            u32 id, len;
            vblk_used_elem(&d, vq.used_seen, &id, &len);
            u32 slot = id / DESC_PER_SLOT;
            if (slot >= slots)
                guest_fail("used element names an unknown descriptor");
            if (vblk_slot_status(slot) != BLK_S_OK)
                errors++;
            free_slots[nfree++] = slot;
            vq.used_seen++;
            done++;
        }
    }
    serial_kv_u64("bench_done", done);
    serial_kv_u64("bench_bytes", done * req);
    serial_kv_u64("bench_errors", errors);
    if (errors)
        guest_fail("benchmark requests failed");
    return EXIT_PASS;
}

/* ---- malicious drivers ---------------------------------------------------------------
 * Each test does something a correct driver never does and checks that the device answers
 * with an error status (and keeps working) or marks itself DEVICE_NEEDS_RESET (and works
 * again after a reset). The guest itself must keep running either way. */

static void expect_status(const char *what, u8 got, u8 want) {
    serial_puts(what);
    serial_putc('=');
    serial_put_u64(got);
    serial_putc('\n');
    if (got != want)
        guest_fail(what);
}

static u64 ram_end(void) {
    u64 end = 0;
    u8 n = guest_boot_params[0x1e8];
    for (u8 i = 0; i < n && i < 128; i++) {
        const u8 *e = guest_boot_params + 0x2d0 + 20u * i;
        u64 addr = 0, size = 0;
        u32 type = 0;
        memcpy(&addr, e, 8);
        memcpy(&size, e + 8, 8);
        memcpy(&type, e + 16, 4);
        if (type == 1 && addr + size > end)
            end = addr + size;
    }
    return end;
}

GUEST_TEST(virtio_blk_evil_addr, "virtio-blk-evil-addr") {
    struct vblk d;
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    expect_status("far_read_status", vblk_sync(&d, BLK_T_IN, 0, 0xfff0000000000000ull, SECTOR, 1),
                  BLK_S_IOERR);
    expect_status("far_write_status",
                  vblk_sync(&d, BLK_T_OUT, 0, 0x00007ffffffff000ull, SECTOR, 0), BLK_S_IOERR);
    /* A buffer that starts in RAM and runs past its end. */
    u64 end = ram_end();
    serial_kv_hex("ram_end", end);
    expect_status("straddle_read_status", vblk_sync(&d, BLK_T_IN, 0, end - 256, SECTOR, 1),
                  BLK_S_IOERR);
    /* Address wrap-around. */
    expect_status("wrap_read_status",
                  vblk_sync(&d, BLK_T_IN, 0, 0xffffffffffffff00ull, SECTOR, 1), BLK_S_IOERR);
    if (!vblk_still_works(&d))
        guest_fail("device stopped working after bad buffer addresses");
    serial_kv_u64("still_works", 1);
    return EXIT_PASS;
}

/* Posts a chain whose last descriptor points back to the first. */
GUEST_TEST(virtio_blk_evil_loop, "virtio-blk-evil-loop") {
    struct vblk d;
    static u8 buf[SECTOR];
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    req_hdr[0].type = BLK_T_IN;
    req_hdr[0].reserved = 0;
    req_hdr[0].sector = 0;
    vblk_set_desc(0, (u64)(usize)&req_hdr[0], sizeof(struct blk_hdr), VRING_DESC_F_NEXT, 1);
    vblk_set_desc(1, (u64)(usize)buf, SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
    vblk_publish(&d, 0);
    vblk_notify(&d);
    if (vblk_wait_needs_reset(&d) != 0)
        guest_fail("looping chain did not set DEVICE_NEEDS_RESET");
    u32 isr = vblk_rd(&d, VMMIO_INTERRUPT_STATUS);
    serial_kv_hex("status", vblk_rd(&d, VMMIO_STATUS));
    serial_kv_hex("isr", isr);
    if (!(isr & 2))
        guest_fail("no configuration-change interrupt status");
    if (vblk_used_idx() != 0)
        guest_fail("device completed a looping chain");
    /* Reset and start over: the device must work again. */
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    if (!vblk_still_works(&d))
        guest_fail("device did not recover after reset");
    serial_kv_u64("recovered", 1);
    return EXIT_PASS;
}

/* Bumps the available index by more than the queue size. */
GUEST_TEST(virtio_blk_evil_avail, "virtio-blk-evil-avail") {
    struct vblk d;
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    vblk_set_avail_idx(&d, (u16)(vq.size + 100));
    vblk_notify(&d);
    if (vblk_wait_needs_reset(&d) != 0)
        guest_fail("bogus available index did not set DEVICE_NEEDS_RESET");
    serial_kv_hex("status", vblk_rd(&d, VMMIO_STATUS));
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    if (!vblk_still_works(&d))
        guest_fail("device did not recover after reset");
    serial_kv_u64("recovered", 1);
    return EXIT_PASS;
}

GUEST_TEST(virtio_blk_evil_len, "virtio-blk-evil-len") {
    struct vblk d;
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    u64 cap = d.capacity;
    serial_kv_u64("capacity", cap);
    u64 buf = (u64)(usize)rw_buf; /* 32 KiB of RAM; the device must refuse before using it */
    expect_status("sector_at_capacity", vblk_sync(&d, BLK_T_IN, cap, buf, SECTOR, 1),
                  BLK_S_IOERR);
    if (cap > 0)
        expect_status("crossing_end", vblk_sync(&d, BLK_T_IN, cap - 1, buf, 2 * SECTOR, 1),
                      BLK_S_IOERR);
    expect_status("sector_overflow", vblk_sync(&d, BLK_T_IN, ~0ull, buf, SECTOR, 1), BLK_S_IOERR);
    /* Longer than the whole file, with a buffer that is really in RAM. */
    u64 big = (cap + 1) * SECTOR;
    if (big > 0xfffffe00ull)
        big = 0xfffffe00ull;
    u64 big_buf = find_ram(16ull << 20, big);
    if (big_buf && big > cap * SECTOR)
        expect_status("longer_than_file", vblk_sync(&d, BLK_T_IN, 0, big_buf, (u32)big, 1),
                      BLK_S_IOERR);
    expect_status("partial_sector", vblk_sync(&d, BLK_T_IN, 0, buf, 100, 1), BLK_S_IOERR);
    if (!(d.features & F_BLK_RO))
        expect_status("write_past_end", vblk_sync(&d, BLK_T_OUT, cap, buf, SECTOR, 0),
                      BLK_S_IOERR);
    if (!vblk_still_works(&d))
        guest_fail("device stopped working after out-of-range requests");
    serial_kv_u64("still_works", 1);
    return EXIT_PASS;
}

/* Waits for one used element and returns its length (fails the test on a timeout). */
static u32 wait_one(struct vblk *d) {
    u16 want = (u16)(vq.used_seen + 1);
    vblk_notify(d);
    if (vblk_wait_used(d, want) != 0)
        guest_fail("request not completed (timeout)");
    u32 id, len;
    vblk_used_elem(d, vq.used_seen, &id, &len);
    vq.used_seen = want;
    return len;
}

GUEST_TEST(virtio_blk_evil_desc, "virtio-blk-evil-desc") {
    struct vblk d;
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    u64 hdr = (u64)(usize)&req_hdr[0], status = (u64)(usize)&req_status[0];
    req_hdr[0].type = BLK_T_GET_ID;
    req_hdr[0].reserved = 0;
    req_hdr[0].sector = 0;

    /* Header of 8 bytes instead of 16. */
    req_status[0] = STATUS_UNTOUCHED;
    vblk_set_desc(0, hdr, 8, VRING_DESC_F_NEXT, 1);
    vblk_set_desc(1, status, 1, VRING_DESC_F_WRITE, 0);
    vblk_publish(&d, 0);
    wait_one(&d);
    expect_status("short_header", vblk_slot_status(0), BLK_S_IOERR);

    /* Status descriptor not device-writable: nothing can be answered, used length 0. */
    req_hdr[0].type = BLK_T_FLUSH;
    req_status[0] = STATUS_UNTOUCHED;
    vblk_set_desc(0, hdr, sizeof(struct blk_hdr), VRING_DESC_F_NEXT, 1);
    vblk_set_desc(1, status, 1, 0, 0);
    vblk_publish(&d, 0);
    u32 len = wait_one(&d);
    serial_kv_u64("readonly_status_used_len", len);
    expect_status("readonly_status", vblk_slot_status(0), STATUS_UNTOUCHED);
    if (len != 0)
        guest_fail("used length not 0 for an unanswerable request");

    /* Status descriptor of length 0. */
    vblk_set_desc(1, status, 0, VRING_DESC_F_WRITE, 0);
    vblk_publish(&d, 0);
    wait_one(&d);
    expect_status("empty_status", vblk_slot_status(0), STATUS_UNTOUCHED);

    /* Unknown request type. */
    expect_status("unknown_type", vblk_sync(&d, 0x77, 0, 0, 0, 0), BLK_S_UNSUPP);

    if (!vblk_still_works(&d))
        guest_fail("device stopped working after malformed requests");
    serial_kv_u64("still_works", 1);
    return EXIT_PASS;
}

/* Garbage register accesses after DRIVER_OK must be ignored. */
GUEST_TEST(virtio_blk_evil_mmio, "virtio-blk-evil-mmio") {
    struct vblk d;
    vblk_init(&d, VRING_AVAIL_F_NO_INTERRUPT);
    u32 ok = S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    u64 cap = d.capacity;
    vblk_wr(&d, VMMIO_QUEUE_NUM, 3);                 /* queue config after DRIVER_OK */
    vblk_wr(&d, VMMIO_QUEUE_READY, 0);
    vblk_wr(&d, VMMIO_QUEUE_DESC_LOW, 0xdead0000u);
    vblk_wr(&d, VMMIO_QUEUE_SEL, 99);                /* queue that does not exist */
    vblk_wr(&d, VMMIO_QUEUE_READY, 1);
    vblk_wr(&d, VMMIO_QUEUE_NUM, 0xffffffffu);
    vblk_wr(&d, VMMIO_QUEUE_SEL, 0);
    vblk_wr(&d, VMMIO_DRIVER_FEATURES_SEL, 0);       /* features after FEATURES_OK */
    vblk_wr(&d, VMMIO_DRIVER_FEATURES, 0xffffffffu);
    vblk_wr(&d, VMMIO_MAGIC, 0);                     /* read-only registers */
    vblk_wr(&d, VMMIO_DEVICE_ID, 7);
    vblk_wr(&d, 0x028, 4096);                        /* legacy GuestPageSize */
    vblk_wr(&d, 0x040, 0x1234);                      /* legacy QueuePFN */
    vblk_wr(&d, 0x0f0, 0xffffffffu);                 /* unknown */
    vblk_wr(&d, VMMIO_QUEUE_NOTIFY, 7);              /* notify a queue that does not exist */
    vblk_wr(&d, VMMIO_CONFIG, 0x12345678u);          /* read-only config space */
    vblk_wr(&d, VMMIO_STATUS, S_ACKNOWLEDGE);        /* clearing bits without a reset */
    vblk_wr(&d, VMMIO_STATUS, ok | 0x30);            /* undefined status bits */
    mmio_write8(d.base + VMMIO_STATUS, 0);           /* wrong width: must not reset */
    mmio_write8(d.base + VMMIO_QUEUE_READY, 0);
    serial_kv_hex("status", vblk_rd(&d, VMMIO_STATUS));
    if (vblk_rd(&d, VMMIO_STATUS) != ok)
        guest_fail("status changed by garbage register writes");
    if (vblk_rd(&d, VMMIO_MAGIC) != 0x74726976u || vblk_rd(&d, VMMIO_DEVICE_ID) != 2)
        guest_fail("identification registers changed");
    if (vblk_rd(&d, VMMIO_QUEUE_READY) != 1)
        guest_fail("queue 0 no longer ready");
    if (read_capacity(&d) != cap)
        guest_fail("capacity changed");
    if (!vblk_still_works(&d))
        guest_fail("device stopped working after garbage register writes");
    serial_kv_u64("still_works", 1);
    return EXIT_PASS;
}
