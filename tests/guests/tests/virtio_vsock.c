/* virtio-vsock through virtio-mmio: a minimal polling driver (RX, TX and event queues) and
 * two stream connections with the host's unix sockets (the VMM's "hybrid vsock"):
 *   1. guest -> host: connects to host port `vmctl.host_port` (a listener at
 *      `<uds_path>_<port>` on the host), sends GUEST_LINE, reads one line back and prints it
 *      as `host_reply=`;
 *   2. host -> guest: listens on `vmctl.guest_port`, accepts the REQUEST the device sends
 *      for a host `CONNECT <port>\n`, and echoes every byte until the host closes.
 * Driver sequence and packet rules: ../VIRTIO.md. Only guest.h and virtio.h are used. */
#include "guest.h"
#include "virtio.h"

#define RXQ 0u
#define TXQ 1u
#define EVQ 2u
#define QSZ 16u

#define HOST_CID 2ull
#define TYPE_STREAM 1
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define SHUTDOWN_BOTH 3u

#define HDR 44u
#define RX_BUFS 8u
#define RX_DATA 512u
#define TX_DATA 512u
/* What the guest tells the device it may have in flight towards it, per connection. It
 * consumes every byte at once, so this is also all it ever holds. */
#define BUF_ALLOC 4096u
/* Bounded waits: polls without progress before the test gives up. */
#define SPIN_LIMIT 3000000L

#define GUEST_LINE "hello from the guest\n"
#define GUEST_LOCAL_PORT 1025u

/* struct virtio_vsock_hdr (virtio 1.2, 5.10.6), little endian like the guest. */
struct vsock_hdr {
    u64 src_cid;
    u64 dst_cid;
    u32 src_port;
    u32 dst_port;
    u32 len;
    u16 type;
    u16 op;
    u32 flags;
    u32 buf_alloc;
    u32 fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vsock_hdr) == HDR, "vsock header is 44 bytes");

static u8 rxq_mem[VQ_MEM_SIZE] __attribute__((aligned(4096)));
static u8 txq_mem[VQ_MEM_SIZE] __attribute__((aligned(4096)));
static u8 evq_mem[VQ_MEM_SIZE] __attribute__((aligned(4096)));
static struct virtq rxq, txq, evq;
static u8 rx_buf[RX_BUFS][HDR + RX_DATA] __attribute__((aligned(16)));
static u8 tx_buf[HDR + TX_DATA] __attribute__((aligned(16)));
static u32 ev_buf[2];

enum conn_state { C_IDLE, C_LISTEN, C_REQ_SENT, C_ESTABLISHED, C_CLOSING, C_DONE };

struct conn {
    enum conn_state state;
    u32 local_port, peer_port;
    u32 rx_cnt;                 /* bytes consumed: our fwd_cnt */
    u32 tx_cnt;                 /* bytes sent */
    u32 peer_buf_alloc, peer_fwd_cnt;
};

struct vsock {
    u64 base;
    u32 irq;
    u64 cid;
};

static struct vsock dev;
static struct conn out_conn, in_conn;
static char reply[RX_DATA + 1];
static u32 reply_len;
static u64 echoed;

static void notify(u32 queue) { vmmio_wr(dev.base, VMMIO_QUEUE_NOTIFY, queue); }

static void post_rx(u16 i) {
    virtq_set_desc(&rxq, i, (u64)(usize)rx_buf[i], HDR + RX_DATA, VRING_DESC_F_WRITE, 0);
    virtq_publish(&rxq, i);
}

/* Sends one packet (header and payload in one read-only descriptor) and waits until the
 * device has taken it, so the one TX buffer can be used again. */
static void send_raw(u32 src_port, u32 dst_port, u16 op, u32 flags, const u8 *data, u32 len,
                     u32 fwd_cnt) {
    if (len > TX_DATA)
        guest_fail("TX payload too long");
    struct vsock_hdr h = {
        .src_cid = dev.cid,
        .dst_cid = HOST_CID,
        .src_port = src_port,
        .dst_port = dst_port,
        .len = len,
        .type = TYPE_STREAM,
        .op = op,
        .flags = flags,
        .buf_alloc = BUF_ALLOC,
        .fwd_cnt = fwd_cnt,
    };
    memcpy(tx_buf, &h, HDR);
    if (len)
        memcpy(tx_buf + HDR, data, len);
    virtq_set_desc(&txq, 0, (u64)(usize)tx_buf, HDR + len, 0, 0);
    virtq_publish(&txq, 0);
    notify(TXQ);
    for (long i = 0; virtq_used_idx(&txq) != txq.avail_idx; i++) {
        if (i > SPIN_LIMIT)
            guest_fail("TX packet not taken by the device (timeout)");
    }
    txq.used_seen = txq.avail_idx;
}

static void send_op(struct conn *c, u16 op, u32 flags) {
    send_raw(c->local_port, c->peer_port, op, flags, 0, 0, c->rx_cnt);
}

static void send_data(struct conn *c, const u8 *data, u32 len) {
    /* The peer's credit: what it can still take (virtio 1.2, 5.10.6.3). */
    if (c->tx_cnt - c->peer_fwd_cnt + len > c->peer_buf_alloc)
        guest_fail("no credit to send");
    send_raw(c->local_port, c->peer_port, OP_RW, 0, data, len, c->rx_cnt);
    c->tx_cnt += len;
}

static void take_credit(struct conn *c, const struct vsock_hdr *h) {
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
}

/* Packets every established connection handles the same way. Returns 1 if handled. */
static int common_op(struct conn *c, const struct vsock_hdr *h) {
    take_credit(c, h);
    if (h->op == OP_CREDIT_REQUEST) {
        send_op(c, OP_CREDIT_UPDATE, 0);
        return 1;
    }
    return h->op == OP_CREDIT_UPDATE;
}

/* Guest -> host: the host's reply line, then close. */
static void on_out(const struct vsock_hdr *h, const u8 *data) {
    struct conn *c = &out_conn;
    if (c->state == C_REQ_SENT) {
        if (h->op == OP_RST)
            guest_fail("the host refused the connection (RST: no listener at <uds_path>_<port>?)");
        if (h->op != OP_RESPONSE)
            guest_fail("expected RESPONSE to the REQUEST");
        take_credit(c, h);
        c->state = C_ESTABLISHED;
        serial_kv_u64("guest_connected_port", c->peer_port);
        send_data(c, (const u8 *)GUEST_LINE, sizeof(GUEST_LINE) - 1);
        return;
    }
    if (common_op(c, h))
        return;
    if (h->op == OP_RW) {
        c->rx_cnt += h->len;
        for (u32 i = 0; i < h->len && reply_len < RX_DATA; i++)
            reply[reply_len++] = (char)data[i];
        if (c->state == C_ESTABLISHED && reply_len > 0 && reply[reply_len - 1] == '\n') {
            reply[reply_len - 1] = 0;
            serial_puts("host_reply=");
            serial_puts(reply);
            serial_putc('\n');
            /* Closing both ways: the device answers with RST once the host side is shut. */
            send_op(c, OP_SHUTDOWN, SHUTDOWN_BOTH);
            c->state = C_CLOSING;
        }
        return;
    }
    if (h->op == OP_SHUTDOWN) {
        /* The host closed after its line (the listener ends its socket): our own SHUTDOWN
         * is out already and the device's RST ends the connection. Before the line, the
         * host never answered. */
        if (c->state == C_ESTABLISHED)
            guest_fail("the host closed before replying a line");
        return;
    }
    if (h->op == OP_RST) {
        if (c->state != C_CLOSING)
            guest_fail("the host reset the connection before replying a line");
        c->state = C_DONE;
    }
}

/* Host -> guest: accept the device's REQUEST, echo until the host closes. */
static void on_in(const struct vsock_hdr *h, const u8 *data) {
    struct conn *c = &in_conn;
    if (c->state == C_LISTEN) {
        if (h->op != OP_REQUEST)
            return;
        c->peer_port = h->src_port;
        take_credit(c, h);
        send_op(c, OP_RESPONSE, 0);
        c->state = C_ESTABLISHED;
        serial_kv_u64("host_connect_port", c->peer_port);
        return;
    }
    if (common_op(c, h))
        return;
    if (h->op == OP_RW) {
        c->rx_cnt += h->len;
        send_data(c, data, h->len);
        echoed += h->len;
        return;
    }
    if (h->op == OP_SHUTDOWN || h->op == OP_RST) {
        if (h->op == OP_SHUTDOWN)
            send_op(c, OP_RST, 0);
        c->state = C_DONE;
    }
}

static void on_packet(const struct vsock_hdr *h, const u8 *data, u32 used_len) {
    if (used_len < HDR || h->len > used_len - HDR)
        guest_fail("RX packet shorter than its header says");
    if (h->src_cid != HOST_CID || h->dst_cid != dev.cid || h->type != TYPE_STREAM)
        guest_fail("RX packet with wrong CIDs or type");
    if (out_conn.state != C_IDLE && out_conn.state != C_DONE && h->dst_port == out_conn.local_port &&
        h->src_port == out_conn.peer_port) {
        on_out(h, data);
    } else if (h->dst_port == in_conn.local_port &&
               (in_conn.state == C_LISTEN || h->src_port == in_conn.peer_port) &&
               in_conn.state != C_DONE) {
        on_in(h, data);
    } else if (h->op == OP_REQUEST) {
        /* Nobody listens there: refuse, as a guest kernel would. */
        send_raw(h->dst_port, h->src_port, OP_RST, 0, 0, 0, 0);
    }
}

/* Finds the first virtio-mmio device with DeviceID 19. */
static int find_vsock(void) {
    for (int n = 0; n < 32; n++) {
        u64 base;
        u32 irq;
        if (cmdline_virtio_mmio(n, &base, &irq) != 0)
            break;
        if (vmmio_rd(base, VMMIO_MAGIC) == VIRTIO_MAGIC && vmmio_rd(base, VMMIO_DEVICE_ID) == VIRTIO_ID_VSOCK)
            return n;
    }
    guest_fail("no virtio-vsock device (DeviceID 19) on the command line");
}

GUEST_TEST(virtio_vsock, "virtio-vsock") {
    int n = find_vsock();
    virtio_mmio_begin(n, VIRTIO_ID_VSOCK, 0, &dev.base, &dev.irq);
    serial_kv_u64("vsock_dev", (u64)n);
    serial_kv_hex("vsock_addr", dev.base);
    serial_kv_u64("vsock_irq", dev.irq);
    dev.cid = virtio_mmio_config_u64(dev.base, 0);
    serial_kv_u64("guest_cid", dev.cid);
    u64 want_cid = cmdline_u64("vmctl.cid", 0);
    if (want_cid && want_cid != dev.cid)
        guest_fail("guest_cid in the config space differs from vmctl.cid");

    virtio_mmio_queue(dev.base, RXQ, &rxq, rxq_mem, QSZ, VRING_AVAIL_F_NO_INTERRUPT);
    virtio_mmio_queue(dev.base, TXQ, &txq, txq_mem, QSZ, VRING_AVAIL_F_NO_INTERRUPT);
    virtio_mmio_queue(dev.base, EVQ, &evq, evq_mem, QSZ, VRING_AVAIL_F_NO_INTERRUPT);
    for (u16 i = 0; i < RX_BUFS; i++)
        post_rx(i);
    for (u16 i = 0; i < 2; i++) {
        virtq_set_desc(&evq, i, (u64)(usize)&ev_buf[i], sizeof(ev_buf[i]), VRING_DESC_F_WRITE, 0);
        virtq_publish(&evq, i);
    }
    virtio_mmio_driver_ok(dev.base);
    notify(RXQ);
    notify(EVQ);

    in_conn.state = C_LISTEN;
    in_conn.local_port = (u32)cmdline_u64("vmctl.guest_port", 5000);
    serial_kv_u64("guest_listen_port", in_conn.local_port);
    out_conn.local_port = GUEST_LOCAL_PORT;
    out_conn.peer_port = (u32)cmdline_u64("vmctl.host_port", 1234);
    out_conn.state = C_REQ_SENT;
    send_op(&out_conn, OP_REQUEST, 0);

    long idle = 0;
    while (out_conn.state != C_DONE || in_conn.state != C_DONE) {
        if (virtq_used_idx(&rxq) == rxq.used_seen) {
            if (++idle > SPIN_LIMIT) {
                serial_kv_u64("out_state", out_conn.state);
                serial_kv_u64("in_state", in_conn.state);
                guest_fail("no packet from the device (timeout)");
            }
            continue;
        }
        idle = 0;
        u32 id, len;
        virtq_used_elem(&rxq, rxq.used_seen, &id, &len);
        rxq.used_seen++;
        if (id >= RX_BUFS)
            guest_fail("used RX element names an unknown descriptor");
        struct vsock_hdr h;
        memcpy(&h, rx_buf[id], HDR);
        on_packet(&h, rx_buf[id] + HDR, len);
        post_rx((u16)id);
        notify(RXQ);
    }
    serial_kv_u64("echoed_bytes", echoed);
    serial_kv_u64("guest_sent_bytes", out_conn.tx_cnt);
    u32 st = vmmio_rd(dev.base, VMMIO_STATUS);
    if (st & (S_NEEDS_RESET | S_FAILED))
        guest_fail("the device failed");
    vmmio_wr(dev.base, VMMIO_STATUS, 0);
    return EXIT_PASS;
}
