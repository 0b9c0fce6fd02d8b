/* Channel setup shared by channel_rr.c and channel_bulk.c: a PACKET port (low_latency: the
 * per-frame ring measured faster here for both figures, as acks are not held back; BENCH_PORT=xdp
 * takes an AF_XDP port instead, copy mode on veth), a fixed key,
 * a channel bound to the port with mv/chan_port.h (burst output), and a poll loop step. */
#ifndef BENCH_CHAN_H
#define BENCH_CHAN_H

#include "bench_util.h"

#include "mv/chan_port.h"
#include "mv/channel.h"
#include "mv/port.h"
#include "mv/util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_chan {
    struct mv_keyring keys;
    struct mv_port *port;
    struct mv_chan *chan;
    struct mv_chan_port cp;
};

static inline int bench_chan_open(struct bench_chan *b, const char *ifname, bool low_latency,
                                  uint64_t node_id, struct mv_chan_config *cfg)
{
    struct mv_port_config pcfg = {
        .kind = MV_PORT_PACKET, .ifname = ifname, .n_ethertypes = 1, .low_latency = low_latency};
    uint8_t key[MV_AUTH_KEY_LEN];
    char err[160];
    int rc;

    pcfg.ethertypes[0] = MV_ETHERTYPE_CTRL;
    if (getenv("BENCH_PORT") && !strcmp(getenv("BENCH_PORT"), "xdp")) {
        mv_port_link_xdp();
        pcfg.kind = MV_PORT_XDP; /* for comparison; falls back to PACKET with a warning */
    }
    rc = mv_port_open(&pcfg, &b->port, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "port %s: %s\n", ifname, err);
        return rc;
    }
    memset(key, 0x5a, sizeof(key)); /* a fixed bench key: both ends must agree */
    mv_keyring_init(&b->keys);
    mv_keyring_add(&b->keys, 1, key, 0, true);
    cfg->node_id = node_id;
    cfg->incarnation = mv_realtime_ns();
    memcpy(cfg->mac, mv_port_mac(b->port), 6);
    cfg->mtu = mv_port_mtu(b->port);
    cfg->keys = &b->keys;
    cfg->send = mv_chan_port_send;
    cfg->send_batch = mv_chan_port_send_batch;
    cfg->send_user = b->port;
    rc = mv_chan_create(cfg, &b->chan);
    if (rc < 0) {
        fprintf(stderr, "mv_chan_create: %d\n", rc);
        return rc;
    }
    memset(&b->cp, 0, sizeof(b->cp));
    b->cp.port = b->port;
    b->cp.chan = b->chan;
    return 0;
}

/* Spin before sleeping in poll (mv_chan_port_wait()): BENCH_SPIN_US, default 0. */
static inline uint64_t bench_spin_ns(void)
{
    static int64_t spin = -1;
    if (spin < 0) {
        const char *e = getenv("BENCH_SPIN_US");
        uint64_t us = 0;
        if (e)
            mv_parse_u64(e, &us);
        spin = (int64_t)us * 1000;
    }
    return (uint64_t)spin;
}

/* Waits for frames or the next timer (at most max_ms) and processes them. */
static inline void bench_chan_step(struct bench_chan *b, int max_ms)
{
    mv_chan_port_wait(&b->cp, (int64_t)max_ms * 1000000, bench_spin_ns());
    mv_chan_port_process(&b->cp, mv_now_ns());
}

static inline void bench_chan_close(struct bench_chan *b)
{
    mv_chan_destroy(b->chan);
    mv_port_close(b->port);
}

#endif
