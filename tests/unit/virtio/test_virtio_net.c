/* virtio-net against a real TAP in a private network namespace (needs root): frames from the
 * TX queue come out of the TAP, frames sent into the TAP land in posted RX buffers, MAC and
 * link status sit in config space, a malformed RX buffer marks the device NEEDS_RESET. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "mv/util.h"
#include "mv/virtio_net.h"

#define TEST_ETHERTYPE 0x88b7 /* IEEE local experimental: nothing else sends it */
#define TAP_NAME       "hvitap0"
#define QSZ            16
#define RXBUF          1526

struct fixture {
    struct hx_ram ram;
    struct hx_queue q[2];
    struct mv_virtio_net *net;
    struct mv_virtio_mmio *dev;
    int pkt; /* AF_PACKET socket on the TAP: the "wire" */
    int ifindex;
    int irqs;
};

static void count_irq(void *ctx, uint32_t gsi)
{
    __atomic_fetch_add((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

static void write_sysctl(const char *path, const char *v)
{
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        if (write(fd, v, strlen(v)) < 0) { /* best effort: only quiets IPv6 chatter */
        }
        close(fd);
    }
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    struct mv_virtio_net_params p = {.tap_name = TAP_NAME,
                                     .tap_fd = -1,
                                     .mac = {0x02, 0x68, 0x76, 0x69, 0, 1},
                                     .mac_set = true,
                                     .queue_size = QSZ};
    f.net = mv_virtio_net_create(&p);
    assert_non_null(f.net);
    assert_string_equal(mv_virtio_net_tap_name(f.net), TAP_NAME);
    /* bring the TAP up and attach a packet socket to it */
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, TAP_NAME);
    assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
    f.ifindex = (int)if_nametoindex(TAP_NAME);
    f.pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(TEST_ETHERTYPE));
    assert_true(f.pkt >= 0);
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET, .sll_protocol = htons(TEST_ETHERTYPE), .sll_ifindex = f.ifindex};
    assert_int_equal(bind(f.pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);

    hx_ram_init(&f.ram, 1 << 20);
    hx_queue_init(&f.q[0], &f.ram, QSZ);
    hx_queue_init(&f.q[1], &f.ram, QSZ);
    struct mv_virtio_mmio_params mp = {.device = mv_virtio_net_device(f.net),
                                       .mem = &f.ram.mem,
                                       .base = 0xd0001000,
                                       .gsi = 6,
                                       .vm_fd = -1,
                                       .irq_cb = count_irq,
                                       .irq_ctx = &f.irqs};
    f.dev = mv_virtio_mmio_create(&mp);
    assert_non_null(f.dev);
    assert_true(hx_mmio_setup(f.dev, ~0ull, f.q, 2) & MV_VIRTIO_STATUS_DRIVER_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mv_virtio_mmio_destroy(f->dev);
    mv_virtio_net_destroy(f->net); /* closes the TAP: the kernel removes it */
    close(f->pkt);
    hx_ram_fini(&f->ram);
    return 0;
}

static size_t make_frame(uint8_t *buf, uint8_t tag, size_t payload)
{
    memset(buf, 0xff, 6);                                          /* dst: broadcast */
    memcpy(buf + 6, (uint8_t[]){0x02, 0x68, 0x76, 0x69, 0, 1}, 6); /* src */
    buf[12] = TEST_ETHERTYPE >> 8;
    buf[13] = TEST_ETHERTYPE & 0xff;
    for (size_t i = 0; i < payload; i++)
        buf[14 + i] = (uint8_t)(tag + i);
    return 14 + payload;
}

static bool wait_used(struct hx_queue *q, uint16_t n)
{
    uint64_t deadline = mv_now_ns() + 5000000000ull;
    while ((uint16_t)(hx_used_idx(q) - q->used_seen) < n && mv_now_ns() < deadline)
        mv_sleep_ns(200000);
    return (uint16_t)(hx_used_idx(q) - q->used_seen) >= n;
}

static void test_config_mac_link(void **state)
{
    struct fixture *f = *state;
    uint8_t mac[6];
    for (int i = 0; i < 6; i++)
        mv_virtio_mmio_read(f->dev, 0x100 + (uint64_t)i, &mac[i], 1);
    assert_memory_equal(mac, ((uint8_t[]){0x02, 0x68, 0x76, 0x69, 0, 1}), 6);
    uint16_t st;
    mv_virtio_mmio_read(f->dev, 0x106, &st, 2);
    assert_int_equal(st, MV_VIRTIO_NET_S_LINK_UP);
    uint32_t gen = hx_mmio_read32(f->dev, MV_VIRTIO_MMIO_CONFIG_GENERATION);
    mv_virtio_net_set_link(f->net, false);
    mv_virtio_mmio_read(f->dev, 0x106, &st, 2);
    assert_int_equal(st, 0);
    assert_int_equal(hx_mmio_read32(f->dev, MV_VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
    assert_true(hx_mmio_read32(f->dev, MV_VIRTIO_MMIO_INTERRUPT_STATUS) & MV_VIRTIO_ISR_CONFIG);
    assert_int_equal(hx_mmio_read32(f->dev, MV_VIRTIO_MMIO_DEVICE_ID), 1);
}

static void test_tx(void **state)
{
    struct fixture *f = *state;
    uint64_t hdr = hx_alloc(&f->ram, 12, 8), frame = hx_alloc(&f->ram, 1514, 8);
    memset(hx_ptr(&f->ram, hdr), 0, 12);
    size_t len = make_frame(hx_ptr(&f->ram, frame), 0x30, 100);
    struct hx_buf bufs[] = {{hdr, 12, false}, {frame, (uint32_t)len, false}};
    hx_publish(&f->q[1], hx_chain(&f->q[1], bufs, 2));
    hx_mmio_write32(f->dev, MV_VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    struct pollfd pfd = {.fd = f->pkt, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    uint8_t got[2048];
    ssize_t n = recv(f->pkt, got, sizeof(got), 0);
    assert_int_equal(n, (ssize_t)len);
    assert_memory_equal(got, hx_ptr(&f->ram, frame), len);
    assert_true(wait_used(&f->q[1], 1));
    struct mv_virtio_net_stats st;
    mv_virtio_net_get_stats(f->net, &st);
    assert_int_equal(st.tx_frames, 1);
    assert_int_equal(st.tx_bytes, len);
}

static void post_rx(struct fixture *f, uint64_t *bufs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        bufs[i] = hx_alloc(&f->ram, RXBUF, 8);
        struct hx_buf b = {bufs[i], RXBUF, true};
        hx_publish(&f->q[0], hx_chain(&f->q[0], &b, 1));
    }
    hx_mmio_write32(f->dev, MV_VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void send_wire(struct fixture *f, uint8_t tag, size_t payload, uint8_t *frame_out,
                      size_t *len_out)
{
    *len_out = make_frame(frame_out, tag, payload);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = f->ifindex, .sll_halen = 6};
    memset(sll.sll_addr, 0xff, 6);
    assert_int_equal(sendto(f->pkt, frame_out, *len_out, 0, (struct sockaddr *)&sll, sizeof(sll)),
                     (ssize_t)*len_out);
}

/* Finds the next used RX buffer carrying our EtherType (skips any other traffic). */
static void expect_rx(struct fixture *f, const uint64_t *bufs, const uint8_t *frame, size_t len)
{
    for (;;) {
        assert_true(wait_used(&f->q[0], 1));
        uint32_t id, used;
        assert_true(hx_used_next(&f->q[0], &id, &used));
        const uint8_t *p = hx_ptr(&f->ram, hx_desc(&f->q[0], (uint16_t)id)->addr);
        if (used >= 12 + 14 && p[12 + 12] == (TEST_ETHERTYPE >> 8) &&
            p[12 + 13] == (TEST_ETHERTYPE & 0xff)) {
            assert_int_equal(used, 12 + len);
            uint16_t num_buffers;
            memcpy(&num_buffers, p + 10, 2);
            assert_int_equal(num_buffers, 1);
            assert_memory_equal(p + 12, frame, len);
            (void)bufs;
            return;
        }
    }
}

static void test_rx(void **state)
{
    struct fixture *f = *state;
    uint64_t bufs[4];
    post_rx(f, bufs, 4);
    uint8_t frame[1514];
    size_t len;
    int irqs_before = __atomic_load_n(&f->irqs, __ATOMIC_SEQ_CST);
    send_wire(f, 0x40, 200, frame, &len);
    expect_rx(f, bufs, frame, len);
    send_wire(f, 0x50, 1500, frame, &len); /* full-size frame */
    expect_rx(f, bufs, frame, len);
    assert_true(__atomic_load_n(&f->irqs, __ATOMIC_SEQ_CST) > irqs_before);
}

static void test_rx_waits_for_buffers(void **state)
{
    struct fixture *f = *state;
    uint8_t frame[1514];
    size_t len;
    send_wire(f, 0x60, 60, frame, &len); /* no RX buffer yet: it waits in the TAP */
    mv_sleep_ns(50000000);
    assert_int_equal(hx_used_idx(&f->q[0]), 0);
    uint64_t bufs[2];
    post_rx(f, bufs, 2);
    expect_rx(f, bufs, frame, len);
}

static void test_malformed_rx_buffer(void **state)
{
    struct fixture *f = *state;
    uint64_t b = hx_alloc(&f->ram, RXBUF, 8);
    struct hx_buf buf = {b, RXBUF, false}; /* device-readable: useless for RX */
    hx_publish(&f->q[0], hx_chain(&f->q[0], &buf, 1));
    hx_mmio_write32(f->dev, MV_VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    uint8_t frame[1514];
    size_t len;
    send_wire(f, 0x70, 60, frame, &len);
    uint64_t deadline = mv_now_ns() + 5000000000ull;
    while (!(mv_virtio_mmio_status(f->dev) & MV_VIRTIO_STATUS_NEEDS_RESET) &&
           mv_now_ns() < deadline)
        mv_sleep_ns(1000000);
    assert_true(mv_virtio_mmio_status(f->dev) & MV_VIRTIO_STATUS_NEEDS_RESET);
}

static void test_spec_parsing(void **state)
{
    assert_null(mv_virtio_net_create_from_spec("tap=hvitap1,mac=zz"));
    assert_null(mv_virtio_net_create_from_spec("tap=hvitap1,speed=9"));
    struct mv_virtio_net *n = mv_virtio_net_create_from_spec("tap=hvitap1,mac=02:00:00:00:00:07");
    assert_non_null(n);
    uint8_t mac[6];
    mv_virtio_net_get_mac(n, mac);
    assert_int_equal(mac[5], 7);
    mv_virtio_net_destroy(n);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("skip: needs root (TAP in a private network namespace)\n");
        return 77;
    }
    if (unshare(CLONE_NEWNET) != 0) {
        printf("skip: unshare(CLONE_NEWNET): %s\n", strerror(errno));
        return 77;
    }
    if (access("/dev/net/tun", R_OK | W_OK) != 0) {
        printf("skip: /dev/net/tun: %s\n", strerror(errno));
        return 77;
    }
    write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_mac_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_rx_buffer, setup, teardown),
        cmocka_unit_test(test_spec_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
