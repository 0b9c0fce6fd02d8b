/* AF_UNIX seqpacket ports in one process: a listening port and two clients. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/port.h"
#include "port_test_util.h"

static const uint8_t mac_srv[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t mac_c1[6] = {0x02, 0, 0, 0, 0, 0x11};
static const uint8_t mac_c2[6] = {0x02, 0, 0, 0, 0, 0x12};
static const uint8_t mac_bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t mac_unknown[6] = {0x02, 0, 0, 0, 0, 0x77};

struct rig {
    char path[108];
    struct mv_port *srv, *c1, *c2;
};

static struct rx_copy rx[8];

static struct mv_port *open_unix(const char *path, bool listen, const uint8_t *mac,
                                 uint16_t ethertype)
{
    struct mv_port_config cfg = {
        .kind = MV_PORT_UNIX, .unix_path = path, .unix_listen = listen, .unix_mac = mac};
    struct mv_port *p = NULL;
    char err[128];

    if (ethertype) {
        cfg.ethertypes[0] = ethertype;
        cfg.n_ethertypes = 1;
    }
    assert_int_equal(mv_port_open(&cfg, &p, err, sizeof(err)), 0);
    assert_int_equal(mv_port_kind(p), MV_PORT_UNIX);
    return p;
}

/* Lets the listener accept pending connections. */
static void pump_accept(struct mv_port *srv)
{
    struct mv_frame f[4];

    for (int i = 0; i < 3; i++) {
        if (mv_port_wait(srv, 20) > 0) {
            assert_true(mv_port_recv(srv, f, 4) >= 0);
            mv_port_recv_done(srv);
        }
    }
}

static int setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));

    snprintf(r->path, sizeof(r->path), "/tmp/hp_port_unix_%d.sock", (int)getpid());
    unlink(r->path);
    r->srv = open_unix(r->path, true, mac_srv, 0x88B5);
    r->c1 = open_unix(r->path, false, mac_c1, 0x88B5);
    r->c2 = open_unix(r->path, false, mac_c2, 0x88B5);
    pump_accept(r->srv);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct rig *r = *state;

    mv_port_close(r->c1);
    mv_port_close(r->c2);
    mv_port_close(r->srv);
    assert_int_not_equal(access(r->path, F_OK), 0); /* the listener removed its socket */
    free(r);
    return 0;
}

static void send_frame(struct mv_port *p, const uint8_t *dst, const uint8_t *src, uint16_t et,
                       uint32_t seq, size_t len)
{
    uint8_t buf[MV_ETH_MAX_FRAME];

    build_frame(buf, dst, src, et, seq, len);
    assert_int_equal(mv_port_send_one(p, buf, len), 1);
}

static void test_learning_and_broadcast(void **state)
{
    struct rig *r = *state;
    uint32_t conn1, conn2;

    /* Clients announce themselves; the listener learns which connection has which MAC. */
    send_frame(r->c1, mac_bcast, mac_c1, 0x88B5, 1, 100);
    assert_int_equal(collect_frames(r->srv, rx, 1, 1000), 1);
    assert_true(check_frame(rx[0].data, rx[0].len, 1));
    conn1 = rx[0].conn;
    send_frame(r->c2, mac_srv, mac_c2, 0x88B5, 2, 100);
    assert_int_equal(collect_frames(r->srv, rx, 1, 1000), 1);
    conn2 = rx[0].conn;
    assert_int_not_equal(conn1, 0);
    assert_int_not_equal(conn2, 0);
    assert_int_not_equal(conn1, conn2);

    /* Unicast reaches only its connection. */
    send_frame(r->srv, mac_c1, mac_srv, 0x88B5, 10, 200);
    assert_int_equal(collect_frames(r->c1, rx, 1, 1000), 1);
    assert_int_equal(rx[0].len, 200);
    assert_true(check_frame(rx[0].data, rx[0].len, 10));
    assert_int_equal(collect_frames(r->c2, rx, 1, 50), 0);
    send_frame(r->srv, mac_c2, mac_srv, 0x88B5, 11, 200);
    assert_int_equal(collect_frames(r->c2, rx, 1, 1000), 1);
    assert_true(check_frame(rx[0].data, rx[0].len, 11));
    assert_int_equal(collect_frames(r->c1, rx, 1, 50), 0);

    /* Broadcast and unknown destinations reach every connection. */
    send_frame(r->srv, mac_bcast, mac_srv, 0x88B5, 12, 64);
    send_frame(r->srv, mac_unknown, mac_srv, 0x88B5, 13, 64);
    assert_int_equal(collect_frames(r->c1, rx, 2, 1000), 2);
    assert_true(check_frame(rx[0].data, rx[0].len, 12));
    assert_true(check_frame(rx[1].data, rx[1].len, 13));
    assert_int_equal(collect_frames(r->c2, rx, 2, 1000), 2);
    assert_true(check_frame(rx[1].data, rx[1].len, 13));

    /* A MAC that moves to another connection follows it. */
    send_frame(r->c2, mac_srv, mac_c1, 0x88B5, 14, 64);
    assert_int_equal(collect_frames(r->srv, rx, 1, 1000), 1);
    assert_int_equal(rx[0].conn, conn2);
    send_frame(r->srv, mac_c1, mac_srv, 0x88B5, 15, 64);
    assert_int_equal(collect_frames(r->c2, rx, 1, 1000), 1);
    assert_true(check_frame(rx[0].data, rx[0].len, 15));
    assert_int_equal(collect_frames(r->c1, rx, 1, 50), 0);
}

static void test_ethertype_filter_and_padding(void **state)
{
    struct rig *r = *state;
    struct mv_port_stats st;

    send_frame(r->c1, mac_srv, mac_c1, 0x0800, 20, 100); /* foreign: dropped in software */
    send_frame(r->c1, mac_srv, mac_c1, 0x88B5, 21, 20);  /* short: padded to 60 */
    assert_int_equal(collect_frames(r->srv, rx, 2, 300), 1);
    assert_int_equal(rx[0].len, MV_ETH_ZLEN);
    assert_int_equal(rx[0].data[12], 0x88);
    for (unsigned i = 20; i < MV_ETH_ZLEN; i++)
        assert_int_equal(rx[0].data[i], 0);
    mv_port_get_stats(r->srv, &st);
    assert_true(st.rx_frames >= 1);
    mv_port_get_stats(r->c1, &st);
    assert_int_equal(st.tx_frames, 2);
    assert_int_equal(st.tx_bytes, 100 + MV_ETH_ZLEN);
}

static void test_oversized(void **state)
{
    struct rig *r = *state;
    uint8_t *big = calloc(1, MV_ETH_MAX_FRAME + 100);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct mv_port_stats before, after;
    int raw;

    build_frame(big, mac_srv, mac_c1, 0x88B5, 30, MV_ETH_MAX_FRAME + 1);
    assert_int_equal(mv_port_send_one(r->c1, big, MV_ETH_MAX_FRAME + 1), -EMSGSIZE);
    assert_int_equal(mv_port_send_one(r->c1, big, 10), -EMSGSIZE); /* shorter than a header */
    /* Exactly the maximum goes through. */
    assert_int_equal(mv_port_send_one(r->c1, big, MV_ETH_MAX_FRAME), 1);
    assert_int_equal(collect_frames(r->srv, rx, 1, 1000), 1);
    assert_int_equal(rx[0].len, MV_ETH_MAX_FRAME);

    /* A peer that bypasses the port and sends an oversized message: dropped, counted, and the
     * connection keeps working. */
    mv_port_get_stats(r->srv, &before);
    raw = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    strcpy(sa.sun_path, r->path);
    assert_int_equal(connect(raw, (struct sockaddr *)&sa, sizeof(sa)), 0);
    pump_accept(r->srv);
    assert_int_equal(send(raw, big, MV_ETH_MAX_FRAME + 100, 0), MV_ETH_MAX_FRAME + 100);
    build_frame(big, mac_srv, mac_c1, 0x88B5, 31, 80);
    assert_int_equal(send(raw, big, 80, 0), 80);
    assert_int_equal(collect_frames(r->srv, rx, 2, 300), 1);
    assert_true(check_frame(rx[0].data, rx[0].len, 31));
    mv_port_get_stats(r->srv, &after);
    assert_int_equal(after.rx_dropped, before.rx_dropped + 1);
    close(raw);
    free(big);
}

static void test_peer_disconnect(void **state)
{
    struct rig *r = *state;
    struct mv_frame f[4];

    send_frame(r->c1, mac_srv, mac_c1, 0x88B5, 40, 64);
    send_frame(r->c2, mac_srv, mac_c2, 0x88B5, 41, 64);
    assert_int_equal(collect_frames(r->srv, rx, 2, 1000), 2);

    mv_port_close(r->c1);
    r->c1 = NULL;
    /* The listener notices the hangup... */
    for (int i = 0; i < 5; i++) {
        if (mv_port_wait(r->srv, 20) > 0) {
            assert_true(mv_port_recv(r->srv, f, 4) >= 0);
            mv_port_recv_done(r->srv);
        }
    }
    /* ...and forgets c1's MAC: a frame to it is flooded to the remaining connection. */
    send_frame(r->srv, mac_c1, mac_srv, 0x88B5, 42, 64);
    assert_int_equal(collect_frames(r->c2, rx, 1, 1000), 1);
    assert_true(check_frame(rx[0].data, rx[0].len, 42));

    /* A client sees its listener go away as -ECONNRESET / -ENOTCONN, not a hang. */
    r->c1 = open_unix(r->path, false, mac_c1, 0x88B5);
    mv_port_close(r->srv);
    r->srv = NULL;
    assert_int_equal(mv_port_wait(r->c2, 1000), 1);
    assert_true(mv_port_recv(r->c2, f, 4) < 0);
    assert_true(mv_port_recv(r->c2, f, 4) < 0);
    assert_true(mv_port_send_one(r->c2, rx[0].data, 64) < 0);
    /* Re-open so teardown has a full rig. */
    r->srv = open_unix(r->path, true, mac_srv, 0x88B5);
}

static void test_stale_socket_and_live_listener(void **state)
{
    char path[108];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct mv_port_config cfg = {.kind = MV_PORT_UNIX, .unix_listen = true, .unix_mac = mac_srv};
    struct mv_port *p = NULL, *q = NULL;
    char err[128];
    int s;

    snprintf(path, sizeof(path), "/tmp/hp_port_stale_%d.sock", (int)getpid());
    unlink(path);
    /* A socket file whose owner died. */
    s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);
    cfg.unix_path = path;
    assert_int_equal(mv_port_open(&cfg, &p, err, sizeof(err)), 0);
    /* A live listener is not stolen. */
    assert_int_equal(mv_port_open(&cfg, &q, err, sizeof(err)), -EADDRINUSE);
    assert_null(q);
    assert_true(strlen(err) > 0);
    mv_port_close(p);
    /* Missing MAC, missing path, nobody listening: clear errors. */
    cfg.unix_mac = NULL;
    assert_int_equal(mv_port_open(&cfg, &q, err, sizeof(err)), -EINVAL);
    cfg.unix_mac = mac_srv;
    cfg.unix_path = NULL;
    assert_int_equal(mv_port_open(&cfg, &q, err, sizeof(err)), -EINVAL);
    cfg.unix_path = path;
    cfg.unix_listen = false;
    assert_true(mv_port_open(&cfg, &q, err, sizeof(err)) < 0);
    assert_null(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_learning_and_broadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ethertype_filter_and_padding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_disconnect, setup, teardown),
        cmocka_unit_test(test_stale_socket_and_live_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
