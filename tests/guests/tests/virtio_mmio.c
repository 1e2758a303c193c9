/* virtio-mmio transport tests: discovery and feature negotiation.
 * Driver sequence and register map: ../VIRTIO.md. Only guest.h and virtio.h are used. */
#include "guest.h"

#include "virtio.h"

#define F_BLK_RO (1ull << 5)
#define F_BLK_FLUSH (1ull << 9)

static u32 rd(u64 base, u32 off) { return mmio_read32(base + off); }
static void wr(u64 base, u32 off, u32 v) { mmio_write32(base + off, v); }

static void kv_dev(int n, const char *key, u64 v, int hex) {
    serial_puts("dev");
    serial_put_u64((u64)n);
    serial_putc('_');
    if (hex)
        serial_kv_hex(key, v);
    else
        serial_kv_u64(key, v);
}

static u64 device_features(u64 base) {
    wr(base, VMMIO_DEVICE_FEATURES_SEL, 1);
    u64 hi = rd(base, VMMIO_DEVICE_FEATURES);
    wr(base, VMMIO_DEVICE_FEATURES_SEL, 0);
    u64 lo = rd(base, VMMIO_DEVICE_FEATURES);
    return (hi << 32) | lo;
}

static void write_driver_features(u64 base, u64 f) {
    wr(base, VMMIO_DRIVER_FEATURES_SEL, 0);
    wr(base, VMMIO_DRIVER_FEATURES, (u32)f);
    wr(base, VMMIO_DRIVER_FEATURES_SEL, 1);
    wr(base, VMMIO_DRIVER_FEATURES, (u32)(f >> 32));
}

/* Capacity: the le64 at config offset 0. */
static u64 read_capacity(u64 base) { return virtio_mmio_config_u64(base, 0); }

/* Reset, then ACKNOWLEDGE | DRIVER. Returns 0 on success. */
static int begin(u64 base) {
    wr(base, VMMIO_STATUS, 0);
    if (rd(base, VMMIO_STATUS) != 0)
        return -1;
    wr(base, VMMIO_STATUS, S_ACKNOWLEDGE);
    wr(base, VMMIO_STATUS, S_ACKNOWLEDGE | S_DRIVER);
    return rd(base, VMMIO_STATUS) == (S_ACKNOWLEDGE | S_DRIVER) ? 0 : -1;
}

/* Offers `f`, sets FEATURES_OK and returns whether the device kept it set. */
static int try_features(u64 base, u64 f) {
    if (begin(base) != 0)
        guest_fail("device did not take ACKNOWLEDGE|DRIVER");
    write_driver_features(base, f);
    wr(base, VMMIO_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    return (rd(base, VMMIO_STATUS) & S_FEATURES_OK) != 0;
}

GUEST_TEST(virtio_discovery, "virtio-discovery") {
    int n;
    for (n = 0; n < 32; n++) {
        u64 base;
        u32 irq;
        if (cmdline_virtio_mmio(n, &base, &irq) != 0)
            break;
        u32 magic = rd(base, VMMIO_MAGIC);
        u32 version = rd(base, VMMIO_VERSION);
        u32 id = rd(base, VMMIO_DEVICE_ID);
        kv_dev(n, "addr", base, 1);
        kv_dev(n, "irq", irq, 0);
        kv_dev(n, "magic", magic, 1);
        kv_dev(n, "version", version, 0);
        kv_dev(n, "device_id", id, 0);
        kv_dev(n, "vendor_id", rd(base, VMMIO_VENDOR_ID), 1);
        if (magic != VIRTIO_MAGIC)
            guest_fail("bad magic value");
        if (version != 2)
            guest_fail("virtio-mmio version is not 2");
        if (id != 2)
            guest_fail("device id is not 2 (block)");
        if (begin(base) != 0)
            guest_fail("device did not take ACKNOWLEDGE|DRIVER");
        u64 f = device_features(base);
        kv_dev(n, "features", f, 1);
        kv_dev(n, "capacity", read_capacity(base), 0);
        kv_dev(n, "read_only", (f & F_BLK_RO) ? 1 : 0, 0);
        if (!(f & F_VERSION_1))
            guest_fail("VIRTIO_F_VERSION_1 not offered");
        wr(base, VMMIO_STATUS, 0);
    }
    serial_kv_u64("virtio_devices", (u64)n);
    if (n == 0)
        guest_fail("no virtio_mmio.device= on the command line");
    return EXIT_PASS;
}

GUEST_TEST(virtio_features, "virtio-features") {
    u64 base;
    u32 irq;
    if (cmdline_virtio_mmio(0, &base, &irq) != 0)
        guest_fail("no virtio_mmio.device= on the command line");
    if (begin(base) != 0)
        guest_fail("device did not take ACKNOWLEDGE|DRIVER");
    u64 offered = device_features(base);
    serial_kv_hex("device_features", offered);
    if (!(offered & F_VERSION_1))
        guest_fail("VIRTIO_F_VERSION_1 not offered");
    if (!(offered & F_BLK_FLUSH))
        guest_fail("VIRTIO_BLK_F_FLUSH not offered");

    /* A feature the device did not offer must make it refuse FEATURES_OK. */
    int bit = -1;
    for (int b = 0; b < 64; b++) {
        if (!(offered & (1ull << b))) {
            bit = b;
            break;
        }
    }
    if (bit >= 0) {
        serial_kv_u64("unoffered_bit", (u64)bit);
        if (try_features(base, F_VERSION_1 | (1ull << bit)))
            guest_fail("FEATURES_OK accepted with a feature the device did not offer");
        serial_kv_u64("refused_unoffered", 1);
    }
    /* The modern transport requires VERSION_1. */
    if (try_features(base, F_BLK_FLUSH))
        guest_fail("FEATURES_OK accepted without VIRTIO_F_VERSION_1");
    serial_kv_u64("refused_without_version_1", 1);
    /* DRIVER_OK without FEATURES_OK is ignored. */
    wr(base, VMMIO_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_DRIVER_OK);
    if (rd(base, VMMIO_STATUS) & S_DRIVER_OK)
        guest_fail("DRIVER_OK accepted before FEATURES_OK");

    /* The real negotiation. */
    u64 want = F_VERSION_1 | F_BLK_FLUSH | (offered & F_BLK_RO);
    if (!try_features(base, want))
        guest_fail("FEATURES_OK refused for VERSION_1|FLUSH(|RO)");
    serial_kv_hex("driver_features", want);
    /* Features are frozen once FEATURES_OK is set: changing them must not clear it. */
    write_driver_features(base, 0);
    u32 st = rd(base, VMMIO_STATUS);
    serial_kv_hex("status", st);
    if (!(st & S_FEATURES_OK) || (st & (S_NEEDS_RESET | S_FAILED)))
        guest_fail("unexpected status after negotiation");
    wr(base, VMMIO_STATUS, 0);
    if (rd(base, VMMIO_STATUS) != 0)
        guest_fail("reset did not clear status");
    return EXIT_PASS;
}
