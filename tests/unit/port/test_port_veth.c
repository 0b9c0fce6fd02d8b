/* PACKET and XDP ports on a veth pair inside a private network namespace (needs root). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <cmocka.h>

#include "mv/port.h"
#include "mv/util.h"
#include "port_test_util.h"

#define IF_A "hpA"
#define IF_B "hpB"

static struct rx_copy *rx; /* 1000+ received frames */

static void sh(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static void set_mtu(unsigned mtu)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "ip link set " IF_A " mtu %u && ip link set " IF_B " mtu %u", mtu,
             mtu);
    sh(cmd);
}

static struct mv_port *open_port(enum mv_port_kind kind, const char *ifname, uint16_t ethertype,
                                 bool low_latency)
{
    struct mv_port_config cfg = {.kind = kind, .ifname = ifname, .low_latency = low_latency};
    struct mv_port *p = NULL;
    char err[160];
    int rc;

    if (ethertype) {
        cfg.ethertypes[0] = ethertype;
        cfg.n_ethertypes = 1;
    }
    rc = mv_port_open(&cfg, &p, err, sizeof(err));
    if (rc < 0)
        fail_msg("open %s port on %s: %s", mv_port_kind_name(kind), ifname, err);
    if (mv_port_kind(p) != kind)
        fail_msg("%s port on %s fell back: %s", mv_port_kind_name(kind), ifname,
                 mv_port_fallback_reason(p));
    return p;
}

/* Sends count frames of len bytes, seq from first, in batches of batch frames; all must be
 * accepted (with a short retry when the TX ring is momentarily full). */
static void send_frames(struct mv_port *p, const uint8_t *dst, uint16_t et, uint32_t first,
                        unsigned count, size_t len, unsigned batch)
{
    uint8_t *buf = malloc((size_t)batch * len);
    struct mv_frame *f = calloc(batch, sizeof(*f));
    unsigned sent = 0;

    while (sent < count) {
        unsigned n = MV_MIN(batch, count - sent), done = 0;
        for (unsigned i = 0; i < n; i++) {
            f[i].data = buf + (size_t)i * len;
            f[i].len =
                (uint32_t)build_frame(f[i].data, dst, mv_port_mac(p), et, first + sent + i, len);
        }
        for (int tries = 0; done < n && tries < 1000; tries++) {
            int rc = mv_port_send(p, f + done, n - done);
            assert_true(rc >= 0);
            done += (unsigned)rc;
            if (done < n)
                usleep(1000);
        }
        assert_int_equal(done, n);
        sent += n;
    }
    free(f);
    free(buf);
}

static void expect_sequence(unsigned got, unsigned count, uint32_t first, size_t len)
{
    assert_int_equal(got, count);
    for (unsigned i = 0; i < count; i++) {
        assert_int_equal(rx[i].len, len);
        if (!check_frame(rx[i].data, rx[i].len, first + i))
            fail_msg("frame %u: wrong content or order", i);
    }
}

static int group_setup(void **state)
{
    if (geteuid() != 0) {
        printf("skip: needs root (network namespace, veth pair)\n");
        exit(77);
    }
    if (unshare(CLONE_NEWNET) < 0) {
        printf("skip: unshare(CLONE_NEWNET): %s\n", strerror(errno));
        exit(77);
    }
    if (system("ip link set lo up && ip link add " IF_A " type veth peer name " IF_B
               " && sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
               " && ip link set " IF_A " up && ip link set " IF_B " up") != 0) {
        printf("skip: cannot create a veth pair\n");
        exit(77);
    }
    rx = calloc(1100, sizeof(*rx));
    return rx ? 0 : -1;
}

static int group_teardown(void **state)
{
    free(rx);
    return 0; /* the namespace and its links vanish with the process */
}

static void batch_one_way(enum mv_port_kind kind_a, enum mv_port_kind kind_b, bool low_latency)
{
    struct mv_port *a = open_port(kind_a, IF_A, 0x88B5, low_latency);
    struct mv_port *b = open_port(kind_b, IF_B, 0x88B5, low_latency);
    struct mv_port_stats sa, sb;

    assert_int_equal(mv_port_mtu(a), 1500);
    assert_int_equal(mv_port_ifindex(b), (int)if_nametoindex(IF_B));
    send_frames(a, mv_port_mac(b), 0x88B5, 0, 1000, 100, 1000);
    expect_sequence(collect_frames(b, rx, 1000, 3000), 1000, 0, 100);
    assert_int_equal(collect_frames(b, rx, 1, 50), 0); /* nothing extra */
    assert_int_equal(collect_frames(a, rx, 1, 20), 0); /* own frames not looped back */
    mv_port_get_stats(a, &sa);
    mv_port_get_stats(b, &sb);
    assert_int_equal(sa.tx_frames, 1000);
    assert_int_equal(sa.tx_bytes, 100000);
    assert_int_equal(sb.rx_frames, 1000);
    assert_int_equal(sb.rx_dropped, 0);
    mv_port_close(a);
    mv_port_close(b);
}

static void test_packet_batch(void **state)
{
    batch_one_way(MV_PORT_PACKET, MV_PORT_PACKET, false);
}

static void test_packet_batch_low_latency(void **state)
{
    batch_one_way(MV_PORT_PACKET, MV_PORT_PACKET, true);
}

/* A low_latency port sends lone frames on its second socket and bursts through the TX ring:
 * interleaved, they arrive complete and in order, padded when short, never looped back to the
 * sender, counted once; mv_port_rx_ready() sees them without a system call. */
static void test_packet_low_latency_singles(void **state)
{
    struct mv_port *a = open_port(MV_PORT_PACKET, IF_A, 0x88B5, true);
    struct mv_port *b = open_port(MV_PORT_PACKET, IF_B, 0x88B5, true);
    struct mv_port_stats sa;
    uint32_t seq = 0;
    uint8_t buf[64];
    int tries;

    assert_int_equal(mv_port_rx_ready(b), 0);
    for (int round = 0; round < 20; round++) {
        send_frames(a, mv_port_mac(b), 0x88B5, seq, 1, 100, 1);
        seq += 1;
        send_frames(a, mv_port_mac(b), 0x88B5, seq, 7, 100, 7);
        seq += 7;
    }
    expect_sequence(collect_frames(b, rx, seq, 3000), seq, 0, 100);
    assert_int_equal(collect_frames(a, rx, 1, 20), 0); /* own frames not looped back */
    mv_port_get_stats(a, &sa);
    assert_int_equal(sa.tx_frames, seq);
    assert_int_equal(sa.tx_bytes, seq * 100);

    assert_int_equal(mv_port_rx_ready(b), 0);
    send_frames(a, mv_port_mac(b), 0x88B5, 500, 1, 20, 1); /* short: padded */
    for (tries = 0; tries < 1000 && mv_port_rx_ready(b) == 0; tries++)
        usleep(1000);
    assert_int_equal(mv_port_rx_ready(b), 1);
    assert_int_equal(collect_frames(b, rx, 1, 300), 1);
    assert_int_equal(rx[0].len, MV_ETH_ZLEN);
    assert_int_equal(rx[0].data[17], 500 & 0xff);
    for (unsigned i = 20; i < MV_ETH_ZLEN; i++)
        assert_int_equal(rx[0].data[i], 0);
    assert_int_equal(mv_port_rx_ready(b), 0);
    mv_port_get_stats(a, &sa);
    assert_int_equal(sa.tx_bytes, seq * 100 + MV_ETH_ZLEN);
    build_frame(buf, mv_port_mac(b), mv_port_mac(a), 0x88B5, 0, 14);
    assert_int_equal(mv_port_send_one(a, buf, 13), -EMSGSIZE);
    mv_port_close(a);
    mv_port_close(b);
}

static void test_xdp_batch(void **state)
{
    batch_one_way(MV_PORT_PACKET, MV_PORT_XDP, false); /* XDP receive */
    batch_one_way(MV_PORT_XDP, MV_PORT_PACKET, false); /* XDP transmit */
    batch_one_way(MV_PORT_XDP, MV_PORT_XDP, false);
}

static void test_packet_filter_and_padding(void **state)
{
    struct mv_port *a = open_port(MV_PORT_PACKET, IF_A, 0, false); /* all EtherTypes */
    struct mv_port *b = open_port(MV_PORT_PACKET, IF_B, 0x88B5, false);
    uint8_t buf[64];

    assert_int_equal(mv_port_wait(b, 30), 0);             /* idle: times out */
    send_frames(a, mv_port_mac(b), 0x88B6, 1, 1, 100, 1); /* foreign */
    send_frames(a, mv_port_mac(b), 0x88B5, 2, 1, 20, 1);  /* short */
    assert_int_equal(collect_frames(b, rx, 2, 300), 1);
    assert_int_equal(rx[0].len, MV_ETH_ZLEN);
    assert_int_equal(rx[0].data[13], 0xB5);
    assert_int_equal(rx[0].data[17], 2);
    for (unsigned i = 20; i < MV_ETH_ZLEN; i++)
        assert_int_equal(rx[0].data[i], 0);
    /* A port without a filter sees both EtherTypes. */
    send_frames(b, mv_port_mac(a), 0x88B6, 3, 1, 100, 1);
    send_frames(b, mv_port_mac(a), 0x88B5, 4, 1, 100, 1);
    assert_int_equal(collect_frames(a, rx, 2, 1000), 2);
    assert_true(check_frame(rx[0].data, rx[0].len, 3));
    assert_true(check_frame(rx[1].data, rx[1].len, 4));
    /* Bad lengths are refused before touching the ring. */
    build_frame(buf, mv_port_mac(b), mv_port_mac(a), 0x88B5, 0, 14);
    assert_int_equal(mv_port_send_one(a, buf, 13), -EMSGSIZE);
    mv_port_close(a);
    mv_port_close(b);
}

static void jumbo(enum mv_port_kind kind_a, enum mv_port_kind kind_b)
{
    struct mv_port *a = open_port(kind_a, IF_A, 0x88B5, false);
    struct mv_port *b = open_port(kind_b, IF_B, 0x88B5, false);
    uint8_t *big = malloc(MV_ETH_MAX_FRAME + 1);

    assert_int_equal(mv_port_mtu(a), 9000);
    send_frames(a, mv_port_mac(b), 0x88B5, 100, 200, MV_ETH_MAX_FRAME, 50);
    expect_sequence(collect_frames(b, rx, 200, 3000), 200, 100, MV_ETH_MAX_FRAME);
    /* One jumbo in the other direction too (receive path of a, transmit of b). */
    send_frames(b, mv_port_mac(a), 0x88B5, 7, 1, 5000, 1);
    expect_sequence(collect_frames(a, rx, 1, 1000), 1, 7, 5000);
    build_frame(big, mv_port_mac(b), mv_port_mac(a), 0x88B5, 0, MV_ETH_MAX_FRAME + 1);
    assert_int_equal(mv_port_send_one(a, big, MV_ETH_MAX_FRAME + 1), -EMSGSIZE);
    free(big);
    mv_port_close(a);
    mv_port_close(b);
}

static void test_packet_jumbo(void **state)
{
    set_mtu(9000);
    jumbo(MV_PORT_PACKET, MV_PORT_PACKET);
    set_mtu(1500);
}

/* A low_latency (per-frame V2) port at MTU 9000 holds 600 jumbo frames that arrive while its
 * owner is not reading, more than a control channel's default window of 256: none dropped,
 * all in order. (A ring of 256 jumbo slots overflowed in bulk transfers.) A lone jumbo frame
 * leaves through the plain-send socket. */
static void test_packet_jumbo_low_latency(void **state)
{
    set_mtu(9000);
    struct mv_port *a = open_port(MV_PORT_PACKET, IF_A, 0x88B5, true);
    struct mv_port *b = open_port(MV_PORT_PACKET, IF_B, 0x88B5, true);
    struct mv_port_stats sb;

    assert_int_equal(mv_port_mtu(b), 9000);
    send_frames(a, mv_port_mac(b), 0x88B5, 0, 600, MV_ETH_MAX_FRAME, 50);
    send_frames(a, mv_port_mac(b), 0x88B5, 600, 1, MV_ETH_MAX_FRAME, 1);
    expect_sequence(collect_frames(b, rx, 601, 5000), 601, 0, MV_ETH_MAX_FRAME);
    mv_port_get_stats(b, &sb);
    assert_int_equal(sb.rx_dropped, 0);
    assert_int_equal(sb.rx_frames, 601);
    mv_port_close(a);
    mv_port_close(b);
    set_mtu(1500);
}

static void test_xdp_jumbo(void **state)
{
    set_mtu(9000);
    jumbo(MV_PORT_PACKET, MV_PORT_XDP);
    jumbo(MV_PORT_XDP, MV_PORT_PACKET);
    set_mtu(1500);
}

/* Our EtherType goes to the AF_XDP socket only; a foreign one continues to the kernel, where a
 * plain packet socket sees it. */
static void test_xdp_foreign_passes_to_kernel(void **state)
{
    struct mv_port *a = open_port(MV_PORT_PACKET, IF_A, 0, false);
    struct mv_port *b = open_port(MV_PORT_XDP, IF_B, 0x88B5, false);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = (int)if_nametoindex(IF_B)};
    int raw = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    unsigned saw_foreign = 0, saw_ours = 0;
    uint8_t buf[2048];
    uint64_t deadline;

    assert_true(raw >= 0);
    assert_int_equal(bind(raw, (struct sockaddr *)&sll, sizeof(sll)), 0);
    send_frames(a, mv_port_mac(b), 0x88B6, 1, 1, 100, 1);
    send_frames(a, mv_port_mac(b), 0x88B5, 2, 1, 100, 1);
    assert_int_equal(collect_frames(b, rx, 2, 300), 1);
    assert_true(check_frame(rx[0].data, rx[0].len, 2));
    deadline = mv_now_ns() + 300000000u;
    while (mv_now_ns() < deadline) {
        ssize_t r = recv(raw, buf, sizeof(buf), 0);
        if (r >= 14 && buf[12] == 0x88 && buf[13] == 0xB6)
            saw_foreign++;
        if (r >= 14 && buf[12] == 0x88 && buf[13] == 0xB5)
            saw_ours++;
        if (r < 0)
            usleep(5000);
    }
    close(raw);
    assert_int_equal(saw_foreign, 1);
    assert_int_equal(saw_ours, 0);
    mv_port_close(a);
    mv_port_close(b);
}

static void test_xdp_fallback_and_detach(void **state)
{
    struct mv_port_config cfg = {.kind = MV_PORT_XDP, .ifname = IF_B, .xdp_queue = 99};
    struct mv_port *a = open_port(MV_PORT_PACKET, IF_A, 0x88B5, false);
    struct mv_port *b = NULL;
    int ifindex = (int)if_nametoindex(IF_B);
    uint32_t prog_id = 1;
    char err[160];

    cfg.ethertypes[0] = 0x88B5;
    cfg.n_ethertypes = 1;
    /* No queue 99 on a veth: the AF_XDP bind fails and the port degrades to AF_PACKET. */
    assert_int_equal(mv_port_open(&cfg, &b, err, sizeof(err)), 0);
    assert_int_equal(mv_port_kind(b), MV_PORT_PACKET);
    assert_non_null(strstr(mv_port_fallback_reason(b), "queue 99"));
    assert_int_equal(bpf_xdp_query_id(ifindex, 0, &prog_id), 0);
    assert_int_equal(prog_id, 0); /* the half-set-up program was detached */
    send_frames(a, mv_port_mac(b), 0x88B5, 5, 10, 80, 10);
    expect_sequence(collect_frames(b, rx, 10, 2000), 10, 5, 80);
    mv_port_close(b);

    /* A working XDP port reports no fallback and detaches its program on close. */
    b = open_port(MV_PORT_XDP, IF_B, 0x88B5, false);
    assert_string_equal(mv_port_fallback_reason(b), "");
    assert_int_equal(bpf_xdp_query_id(ifindex, 0, &prog_id), 0);
    assert_int_not_equal(prog_id, 0);
    mv_port_close(b);
    assert_int_equal(bpf_xdp_query_id(ifindex, 0, &prog_id), 0);
    assert_int_equal(prog_id, 0);

    /* An interface that does not exist is an error, not a fallback. */
    cfg.ifname = "hpNone";
    cfg.xdp_queue = 0;
    b = NULL;
    assert_true(mv_port_open(&cfg, &b, err, sizeof(err)) < 0);
    assert_null(b);
    mv_port_close(a);
}

int main(void)
{
    mv_port_link_xdp();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packet_batch),
        cmocka_unit_test(test_packet_batch_low_latency),
        cmocka_unit_test(test_packet_low_latency_singles),
        cmocka_unit_test(test_packet_jumbo_low_latency),
        cmocka_unit_test(test_packet_filter_and_padding),
        cmocka_unit_test(test_packet_jumbo),
        cmocka_unit_test(test_xdp_batch),
        cmocka_unit_test(test_xdp_foreign_passes_to_kernel),
        cmocka_unit_test(test_xdp_jumbo),
        cmocka_unit_test(test_xdp_fallback_and_detach),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
