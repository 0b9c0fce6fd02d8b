/* libmvblk against two real AoE target cores (mvstored's aoe_target on drive images) behind an
 * AF_UNIX port served by a thread: both targets export the same shelf.slot, target A always
 * answers first. Covers attaching to a chosen target MAC, attach returning as soon as the wanted
 * target answered, and the exported retransmission deadline. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/aoe_target.h"
#include "mv/mvblk.h"
#include "mv/util.h"

static const uint8_t server_mac[6] = {0x02, 0, 0, 0, 0x30, 0x00};
static const uint8_t mac_a[6] = {0x02, 0, 0, 0, 0x30, 0x0a};
static const uint8_t mac_b[6] = {0x02, 0, 0, 0, 0x30, 0x0b};
static const uint8_t mac_absent[6] = {0x02, 0, 0, 0, 0x30, 0x0c};

#define SECTORS_A 2048 /* 1 MiB */
#define SECTORS_B 4096 /* 2 MiB: tells the targets apart */

struct server {
    char sock_path[108], img[2][64];
    struct mv_drive *drive[2];
    struct aoe_target *target[2];
    struct mv_port *port;
    pthread_t thread;
    atomic_bool stop, mute;
    atomic_uint served;
    uint8_t rbuf[4][MV_ETH_MAX_FRAME];
};

static void make_target(struct server *s, int i, const uint8_t mac[6], uint64_t sectors)
{
    snprintf(s->img[i], sizeof s->img[i], "/tmp/hab-mvblk-%d-%d.img", getpid(), i);
    int fd = open(s->img[i], O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8 << 20), 0);
    close(fd);
    char err[256];
    struct mv_drive_format_opts o = {.host = "h", .chunk_size = 64 * 1024};
    assert_int_equal(mv_drive_format(s->img[i], &o, err, sizeof err), 0);
    assert_int_equal(mv_drive_open(s->img[i], &s->drive[i], err, sizeof err), 0);
    mv_drive_disable_direct(s->drive[i]); /* the replies below are not O_DIRECT aligned */
    int r = mv_drive_replica_create(s->drive[i], "vd", sectors * 512, 1, 1, true, err, sizeof err);
    assert_true(r >= 0);
    assert_int_equal(mv_drive_replica_set_mapped(s->drive[i], r, true, 1, 1, err, sizeof err), 0);
    /* Recognisable data: byte k of sector n is (n + i) & 0xff. */
    uint8_t sec[512];
    for (uint64_t n = 0; n < 64; n++) {
        memset(sec, (int)((n + (uint64_t)i) & 0xff), sizeof sec);
        assert_int_equal(mv_drive_replica_write(s->drive[i], r, n * 512, sec, sizeof sec), 0);
    }
    struct aoe_target_config tc = {.mtu = 9000};
    memcpy(tc.mac, mac, 6);
    assert_int_equal(aoe_target_create(&tc, &s->target[i]), 0);
    assert_int_equal(aoe_target_add_drive(s->target[i], s->drive[i]), 0);
}

/* Feeds every frame to A, then to B, so A's answer always goes out first. */
static void *server_main(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop)) {
        if (mv_port_wait(s->port, 10) <= 0)
            continue;
        struct mv_frame rx[32];
        int n = mv_port_recv(s->port, rx, 32);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (atomic_load(&s->mute))
                continue;
            for (int t = 0; t < 2; t++) {
                struct aoe_target_reply rep[4];
                for (int k = 0; k < 4; k++)
                    rep[k] = (struct aoe_target_reply){.buf = s->rbuf[k], .cap = MV_ETH_MAX_FRAME};
                unsigned nr = aoe_target_handle_frame(s->target[t], rx[i].data, rx[i].len, rep, 4);
                struct mv_frame tx[4];
                for (unsigned k = 0; k < nr; k++)
                    tx[k] = (struct mv_frame){.data = rep[k].buf, .len = (uint32_t)rep[k].len};
                if (nr)
                    mv_port_send(s->port, tx, nr);
                atomic_fetch_add(&s->served, nr);
            }
        }
        mv_port_recv_done(s->port);
    }
    return NULL;
}

static int setup(void **state)
{
    struct server *s = calloc(1, sizeof *s);
    make_target(s, 0, mac_a, SECTORS_A);
    make_target(s, 1, mac_b, SECTORS_B);
    snprintf(s->sock_path, sizeof s->sock_path, "/tmp/hab-mvblk-%d.sock", getpid());
    unlink(s->sock_path);
    char err[256];
    struct mv_port_config pc = {.kind = MV_PORT_UNIX,
                                .unix_path = s->sock_path,
                                .unix_listen = true,
                                .unix_mac = server_mac,
                                .ethertypes = {MV_ETHERTYPE_AOE},
                                .n_ethertypes = 1};
    if (mv_port_open(&pc, &s->port, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct server *s = *state;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    mv_port_close(s->port);
    unlink(s->sock_path);
    for (int i = 0; i < 2; i++) {
        aoe_target_destroy(s->target[i]);
        mv_drive_close(s->drive[i]);
        unlink(s->img[i]);
    }
    free(s);
    return 0;
}

static struct mvblk *open_initiator(const struct server *s)
{
    struct mvblk_config cfg = {.kind = MV_PORT_UNIX, .unix_path = s->sock_path};
    struct mvblk *b;
    char err[256];
    assert_int_equal(mvblk_open(&cfg, &b, err, sizeof err), 0);
    return b;
}

static uint64_t ms_since(uint64_t t0)
{
    return (mv_now_ns() - t0) / 1000000;
}

/* Without a MAC the first answer wins, and attach does not sit out its timeout: the old code
 * always waited min(timeout, 1 s) for more answers. */
static void test_attach_first_answer_returns_early(void **state)
{
    struct server *s = *state;
    struct mvblk *b = open_initiator(s);
    struct mvblk_dev *dev;
    char err[256];
    uint64_t t0 = mv_now_ns();
    assert_int_equal(mvblk_attach(b, 1, 1, 3000, 0, &dev, err, sizeof err), 0);
    uint64_t took = ms_since(t0);
    assert_true(took < 900);
    assert_memory_equal(mvblk_dev_target(dev)->mac, mac_a, 6);
    assert_int_equal(mvblk_dev_sectors(dev), SECTORS_A);
    mvblk_close(b);
}

static void test_attach_mac_picks_the_named_target(void **state)
{
    struct server *s = *state;
    struct mvblk *b = open_initiator(s);
    struct mvblk_dev *db, *da;
    char err[256];
    uint64_t t0 = mv_now_ns();
    assert_int_equal(mvblk_attach_mac(b, 1, 1, mac_b, 3000, 0, &db, err, sizeof err), 0);
    assert_true(ms_since(t0) < 900);
    assert_memory_equal(mvblk_dev_target(db)->mac, mac_b, 6);
    assert_int_equal(mvblk_dev_sectors(db), SECTORS_B);
    /* Data comes from B: sector 5 of B holds 5 + 1. */
    uint8_t buf[512];
    assert_int_equal(mvblk_read(db, 5, buf, 1), 0);
    assert_int_equal(buf[0], 6);
    assert_int_equal(buf[511], 6);
    /* A named explicitly works too, on the same initiator. */
    assert_int_equal(mvblk_attach_mac(b, 1, 1, mac_a, 3000, 0, &da, err, sizeof err), 0);
    assert_int_equal(mvblk_dev_sectors(da), SECTORS_A);
    assert_int_equal(mvblk_read(da, 5, buf, 1), 0);
    assert_int_equal(buf[0], 5);
    mvblk_close(b);
}

static void test_attach_mac_absent_times_out(void **state)
{
    struct server *s = *state;
    struct mvblk *b = open_initiator(s);
    struct mvblk_dev *dev = NULL;
    char err[256] = "";
    uint64_t t0 = mv_now_ns();
    assert_int_equal(mvblk_attach_mac(b, 1, 1, mac_absent, 300, 0, &dev, err, sizeof err), -ENOENT);
    assert_true(ms_since(t0) >= 290);
    assert_null(dev);
    assert_non_null(strstr(err, "02:00:00:00:30:0c"));
    /* A wrong shelf.slot is not taken from the right MAC either. */
    assert_int_equal(mvblk_attach_mac(b, 1, 2, mac_a, 200, 0, &dev, err, sizeof err), -ENOENT);
    mvblk_close(b);
}

static void read_done(struct mvblk_req *req, int status)
{
    *(int *)req->priv = status;
}

/* The deadline is that of the retransmission timer: a poller sleeping until it sees the
 * retransmission happen there, and nothing is timed when nothing is in flight. */
static void test_next_deadline_follows_retransmission(void **state)
{
    struct server *s = *state;
    struct mvblk *b = open_initiator(s);
    struct mvblk_dev *dev;
    char err[256];
    assert_int_equal(mvblk_attach_mac(b, 1, 1, mac_a, 3000, 0, &dev, err, sizeof err), 0);
    assert_int_equal(mvblk_next_deadline_ns(b), UINT64_MAX);
    assert_int_equal(mvblk_next_timeout_ms(b), -1);

    atomic_store(&s->mute, true);
    uint8_t buf[8 * 512];
    int status = 1;
    struct mvblk_req req = {
        .op = MVBLK_READ, .lba = 8, .count = 8, .buf = buf, .done = read_done, .priv = &status};
    uint64_t before = mv_now_ns();
    assert_int_equal(mvblk_submit(dev, &req), 0);
    uint64_t after = mv_now_ns();
    uint64_t d1 = mvblk_next_deadline_ns(b);
    struct mvblk_dev_stats st;
    mvblk_dev_get_stats(dev, &st);
    /* One frame in flight, due one RTO after it was sent. */
    assert_int_equal(st.inflight, 1);
    assert_true(d1 >= before + (uint64_t)st.rto_us * 1000);
    assert_true(d1 <= after + (uint64_t)st.rto_us * 1000);
    int ms = mvblk_next_timeout_ms(b);
    assert_true(ms >= 0 && ms <= (int)(st.rto_us / 1000) + 1);

    /* Nothing happens before the deadline... */
    assert_int_equal(mvblk_poll(b, 0), 0);
    mvblk_dev_get_stats(dev, &st);
    assert_int_equal(st.retransmits, 0);
    /* ...and the retransmission happens once it passed, with a later deadline. */
    while (mv_now_ns() < d1)
        mv_sleep_ns(d1 - mv_now_ns());
    assert_true(mvblk_poll(b, 0) >= 0);
    mvblk_dev_get_stats(dev, &st);
    assert_int_equal(st.retransmits, 1);
    uint64_t d2 = mvblk_next_deadline_ns(b);
    assert_true(d2 > d1 && d2 != UINT64_MAX);

    atomic_store(&s->mute, false);
    while (status == 1) {
        int t = mvblk_next_timeout_ms(b);
        assert_true(mvblk_poll(b, t < 0 ? 1000 : t) >= 0);
    }
    assert_int_equal(status, 0);
    assert_int_equal(buf[0], 8);        /* sector 8 of A */
    assert_int_equal(buf[7 * 512], 15); /* sector 15 */
    assert_int_equal(mvblk_next_deadline_ns(b), UINT64_MAX);
    mvblk_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_attach_first_answer_returns_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_mac_picks_the_named_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_mac_absent_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_deadline_follows_retransmission, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
