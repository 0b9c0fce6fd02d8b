/* The channel core under a deterministic simulated network: loss, duplication, reordering,
 * request/response at-most-once, bulk messages, restarts, dead peers, and attack campaigns. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mv/auth.h"
#include "mv/channel.h"
#include "simnet.h"

#define MS  1000000ull
#define SEC 1000000000ull

static struct mv_keyring keys;

static void init_keys(struct mv_keyring *kr, uint8_t seed)
{
    uint8_t k[MV_AUTH_KEY_LEN];
    for (int i = 0; i < MV_AUTH_KEY_LEN; i++)
        k[i] = (uint8_t)(seed + 7 * i);
    mv_keyring_init(kr);
    assert_int_equal(mv_keyring_add(kr, 1, k, 0, true), 0);
}

/* ---- per-node application state ---- */

#define NREQ_MAX 10000
struct app {
    struct sim_node *node;
    unsigned executed;           /* request handler runs */
    uint8_t exec_seen[NREQ_MAX]; /* per request index: executions */
    bool defer;                  /* do not answer requests */
    /* bulk receive */
    unsigned msgs_in;
    uint64_t bytes_in;
    bool order_ok, content_ok;
    unsigned peer_events[3];
};

static uint8_t pattern(uint32_t msg, size_t i)
{
    return (uint8_t)(msg * 131 + i * 7 + (i >> 9));
}

static void on_request(void *user, const struct mv_chan_msg *req, struct mv_chan_reply_token tok)
{
    struct app *a = user;
    a->executed++;
    uint32_t idx = 0;
    if (req->len >= 4)
        memcpy(&idx, req->data, 4);
    if (idx < NREQ_MAX)
        a->exec_seen[idx]++;
    if (a->defer)
        return;
    /* Response: the request reversed, so the requester can check it is its own. */
    uint8_t *resp = malloc(req->len + 1);
    for (size_t i = 0; i < req->len; i++)
        resp[i] = req->data[req->len - 1 - i];
    assert_int_equal(mv_chan_reply(a->node->chan, tok, 7, resp, req->len, a->node->net->now), 0);
    free(resp);
}

static void on_message(void *user, const struct mv_chan_msg *msg)
{
    struct app *a = user;
    uint32_t idx;
    if (msg->len < 4) {
        a->content_ok = false;
        return;
    }
    memcpy(&idx, msg->data, 4);
    if (idx != a->msgs_in)
        a->order_ok = false;
    for (size_t i = 4; i < msg->len; i++)
        if (msg->data[i] != pattern(idx, i)) {
            a->content_ok = false;
            break;
        }
    a->msgs_in++;
    a->bytes_in += msg->len;
}

static void on_peer(void *user, uint64_t node, const uint8_t mac[6], enum mv_chan_peer_event ev)
{
    struct app *a = user;
    a->peer_events[ev]++;
}

static struct app apps[SIM_MAX_NODES];
static bool g_burst; /* next setup_net: burst output and corked input (as over a port) */

static void setup_net(struct simnet *net, int n, unsigned mtu, uint64_t seed)
{
    sim_init(net, seed);
    net->burst = g_burst;
    g_burst = false;
    memset(apps, 0, sizeof apps);
    struct mv_chan_config base = {
        .mtu = mtu,
        .keys = &keys,
        .on_request = on_request,
        .on_message = on_message,
        .on_peer = on_peer,
    };
    for (int i = 0; i < n; i++) {
        base.cb_user = &apps[i];
        sim_add_node(net, &base, 1000 + (uint64_t)i);
        apps[i].node = &net->nodes[i];
        apps[i].order_ok = apps[i].content_ok = true;
    }
    /* Introduce everyone (as discovery would, incarnation not yet known). */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j)
                assert_int_equal(mv_chan_add_peer(net->nodes[i].chan, net->nodes[j].node_id,
                                                  net->nodes[j].mac, 0, net->now),
                                 0);
}

/* ---- request/response ---- */

struct req_state {
    unsigned issued, done, ok, bad, target;
    unsigned max_out; /* requests outstanding at once; 0 = 64 */
    bool small;       /* single-frame requests only */
    struct simnet *net;
    int from, to;
};
struct req_ctx {
    struct req_state *st;
    uint32_t idx;
    size_t len;
};

static void fill_req(uint8_t *buf, uint32_t idx, size_t len)
{
    memcpy(buf, &idx, 4);
    for (size_t i = 4; i < len; i++)
        buf[i] = pattern(idx, i);
}

static void on_response(void *user, int status, const struct mv_chan_msg *resp)
{
    struct req_ctx *c = user;
    c->st->done++;
    bool good = status == 0 && resp && resp->status == 7 && resp->len == c->len;
    if (good) {
        uint8_t *exp = malloc(c->len);
        fill_req(exp, c->idx, c->len);
        for (size_t i = 0; i < c->len; i++)
            if (resp->data[i] != exp[c->len - 1 - i])
                good = false;
        free(exp);
    }
    if (good)
        c->st->ok++;
    else
        c->st->bad++;
    free(c);
}

static void issue_requests(struct req_state *st, unsigned max_outstanding)
{
    struct sim_node *from = &st->net->nodes[st->from], *to = &st->net->nodes[st->to];
    static uint8_t buf[6000];
    while (st->issued < st->target && st->issued - st->done < max_outstanding) {
        struct req_ctx *c = malloc(sizeof *c);
        c->st = st;
        c->idx = st->issued;
        /* Mostly small, some fragmented at MTU 1500. */
        c->len = 4 + sim_rand(st->net) % (!st->small && sim_rand(st->net) % 8 == 0 ? 5000 : 200);
        fill_req(buf, c->idx, c->len);
        long id = mv_chan_request(from->chan, to->node_id, 9, buf, c->len, 60 * SEC, on_response, c,
                                  st->net->now);
        if (id == -EAGAIN) {
            free(c);
            return;
        }
        assert_true(id > 0);
        st->issued++;
    }
}

static struct req_state *g_req;
static bool requests_done(void *user)
{
    struct req_state *st = user;
    issue_requests(st, st->max_out ? st->max_out : 64);
    return st->done == st->target;
}

static void run_requests(unsigned loss_pm, unsigned dup_pm, unsigned reorder_pm, uint64_t seed)
{
    struct simnet net;
    setup_net(&net, 2, 1500, seed);
    net.loss_pm = loss_pm;
    net.dup_pm = dup_pm;
    net.reorder_pm = reorder_pm;
    struct req_state st = {.target = NREQ_MAX, .net = &net, .from = 0, .to = 1};
    g_req = &st;
    assert_true(sim_run(&net, requests_done, &st, 600 * SEC));
    assert_int_equal(st.ok, NREQ_MAX);
    assert_int_equal(st.bad, 0);
    /* At most once, and here exactly once: every request executed one time. */
    assert_int_equal(apps[1].executed, NREQ_MAX);
    for (unsigned i = 0; i < NREQ_MAX; i++)
        assert_int_equal(apps[1].exec_seen[i], 1);
    struct mv_chan_counters ca, cb;
    mv_chan_get_counters(net.nodes[0].chan, &ca);
    mv_chan_get_counters(net.nodes[1].chan, &cb);
    assert_int_equal(ca.responses_received, NREQ_MAX);
    assert_int_equal(cb.requests_executed, NREQ_MAX);
    if (loss_pm)
        assert_true(ca.retransmits + cb.retransmits > 0);
    if (dup_pm)
        assert_true(ca.dup_drops + cb.dup_drops > 0);
    for (int i = 1; i < MV_AUTH_NCAUSES; i++) {
        /* Duplicated frames are replays of authentic frames; nothing else may fail. */
        if (i != MV_AUTH_REPLAY) {
            assert_int_equal(ca.auth_fail[i], 0);
            assert_int_equal(cb.auth_fail[i], 0);
        }
    }
    if (!dup_pm)
        assert_int_equal(ca.auth_fail[MV_AUTH_REPLAY] + cb.auth_fail[MV_AUTH_REPLAY], 0);
    print_message("loss %u/1000: %llu frames, %llu lost, retransmits %llu+%llu, rto %llu, "
                  "fast %llu, simulated %.3f s\n",
                  loss_pm, (unsigned long long)net.frames_sent, (unsigned long long)net.frames_lost,
                  (unsigned long long)ca.retransmits, (unsigned long long)cb.retransmits,
                  (unsigned long long)(ca.rto_expiries + cb.rto_expiries),
                  (unsigned long long)(ca.fast_retransmits + cb.fast_retransmits),
                  (double)(net.now - 1 * SEC) / 1e9);
    sim_free(&net);
}

static void test_requests_no_loss(void **state)
{
    run_requests(0, 0, 0, 1);
}
static void test_requests_loss5(void **state)
{
    run_requests(50, 20, 50, 2);
}
static void test_requests_loss20(void **state)
{
    run_requests(200, 20, 50, 3);
}

/* ---- bulk one-way messages ---- */

struct bulk_state {
    struct simnet *net;
    int from, to;
    uint64_t total, sent_bytes;
    unsigned sent_msgs;
    uint8_t *buf;
};

static bool bulk_done(void *user)
{
    struct bulk_state *b = user;
    struct sim_node *from = &b->net->nodes[b->from], *to = &b->net->nodes[b->to];
    while (b->sent_bytes < b->total) {
        /* Sizes from 4 bytes to the 1 MiB maximum, including exactly 1 MiB. */
        size_t len =
            b->sent_msgs % 5 == 0 ? MV_CTRL_MAX_MSG : 4 + sim_rand(b->net) % (MV_CTRL_MAX_MSG - 4);
        if (b->sent_msgs % 7 == 3)
            len = 4 + sim_rand(b->net) % 64;
        uint32_t idx = b->sent_msgs;
        memcpy(b->buf, &idx, 4);
        for (size_t i = 4; i < len; i++)
            b->buf[i] = pattern(idx, i);
        int rc = mv_chan_send(from->chan, to->node_id, 3, b->buf, len, b->net->now);
        if (rc == -EAGAIN)
            break;
        assert_int_equal(rc, 0);
        b->sent_msgs++;
        b->sent_bytes += len;
    }
    return b->sent_bytes >= b->total && apps[b->to].msgs_in == b->sent_msgs;
}

static void run_bulk(unsigned mtu, unsigned loss_pm, uint64_t total, uint64_t seed)
{
    struct simnet net;
    setup_net(&net, 2, mtu, seed);
    net.loss_pm = loss_pm;
    net.dup_pm = loss_pm ? 10 : 0;
    net.reorder_pm = loss_pm ? 30 : 0;
    net.delay_ns = 20000;
    struct bulk_state b = {.net = &net, .from = 0, .to = 1, .total = total};
    b.buf = malloc(MV_CTRL_MAX_MSG);
    assert_true(sim_run(&net, bulk_done, &b, 600 * SEC));
    assert_true(apps[1].order_ok);
    assert_true(apps[1].content_ok);
    assert_int_equal(apps[1].msgs_in, b.sent_msgs);
    assert_int_equal(apps[1].bytes_in, b.sent_bytes);
    struct mv_chan_counters cb;
    mv_chan_get_counters(net.nodes[1].chan, &cb);
    assert_int_equal(cb.reassembly_errors, 0);
    assert_int_equal(cb.msgs_delivered, b.sent_msgs);
    struct mv_chan_counters ca;
    mv_chan_get_counters(net.nodes[0].chan, &ca);
    print_message("bulk mtu %u loss %u/1000: %u msgs %.1f MiB in %.3f simulated s, %llu frames, "
                  "retransmits %llu, rto %llu, fast %llu\n",
                  mtu, loss_pm, b.sent_msgs, (double)b.sent_bytes / (1 << 20),
                  (double)(net.now - SEC) / 1e9, (unsigned long long)net.frames_sent,
                  (unsigned long long)ca.retransmits, (unsigned long long)ca.rto_expiries,
                  (unsigned long long)ca.fast_retransmits);
    free(b.buf);
    sim_free(&net);
}

static void test_bulk_1500_clean(void **state)
{
    run_bulk(1500, 0, 16u << 20, 4);
}
static void test_bulk_1500_loss20(void **state)
{
    run_bulk(1500, 200, 6u << 20, 5);
}
static void test_bulk_9000_loss5(void **state)
{
    run_bulk(9000, 50, 16u << 20, 6);
}

/* ---- loss recovery (NewReno/SACK, RACK-TLP spirit) and output coalescing ---- */

static struct mv_chan_counters counters(struct simnet *net, int i);

/* Bulk at a steady random loss each way (no reordering or duplication, so every retransmission
 * answers a real loss): SACK repairs every hole without the RTO, the window is cut once per
 * episode rather than once per lost frame, and the data frames spent per fragment stay close to
 * what the loss itself costs, 1 / (1 - p). */
static void run_recovery(unsigned loss_pm, bool burst, double max_tx_per_frag, uint64_t seed)
{
    struct simnet net;
    g_burst = burst;
    setup_net(&net, 2, 1500, seed);
    net.loss_pm = loss_pm;
    net.delay_ns = 20000;
    struct bulk_state b = {.net = &net, .from = 0, .to = 1, .total = 8u << 20};
    b.buf = malloc(MV_CTRL_MAX_MSG);
    assert_true(sim_run(&net, bulk_done, &b, 60 * SEC));
    assert_true(apps[1].order_ok);
    assert_true(apps[1].content_ok);
    assert_int_equal(apps[1].bytes_in, b.sent_bytes);
    struct mv_chan_counters ca = counters(&net, 0), cb = counters(&net, 1);
    double frags = (double)b.sent_bytes / mv_ctrl_max_fragment(1500);
    print_message("recovery loss %u/1000%s: %.0f fragments, %llu data frames (%.3f each), "
                  "retransmits %llu, recoveries %llu, probes %llu, rto %llu, acks %llu for %llu "
                  "data frames received, %.3f simulated s\n",
                  loss_pm, burst ? " burst" : "", frags, (unsigned long long)ca.tx_data,
                  (double)ca.tx_data / frags, (unsigned long long)ca.retransmits,
                  (unsigned long long)ca.recoveries, (unsigned long long)ca.tlp_probes,
                  (unsigned long long)ca.rto_expiries, (unsigned long long)cb.tx_acks,
                  (unsigned long long)cb.rx_data, (double)(net.now - SEC) / 1e9);
    assert_true((double)ca.tx_data <= frags * max_tx_per_frag);
    assert_int_equal(ca.rto_expiries, 0);
    if (loss_pm) {
        /* Fewer back-offs than losses: several losses share one (a window of data); at 20 %
         * many do. */
        assert_true(ca.recoveries > 0);
        assert_true(ca.recoveries < ca.fast_retransmits);
        if (loss_pm >= 200)
            assert_true(ca.recoveries * 4 < ca.fast_retransmits);
    }
    /* Acks: at most about one per frame received (each gap and duplicate is acked at once),
     * never a storm. */
    assert_true(cb.tx_acks <= cb.rx_data + cb.rx_data / 20);
    if (burst) {
        /* Frames leave in bursts, and a burst received is acknowledged once. */
        assert_true(net.burst_frames >= 4 * net.burst_calls);
        assert_true(cb.tx_acks * 3 <= cb.rx_data);
    }
    free(b.buf);
    sim_free(&net);
}

static void test_recovery_loss5(void **state)
{
    run_recovery(50, false, 1.09, 21);
}
static void test_recovery_loss20(void **state)
{
    run_recovery(200, false, 1.32, 22);
}
static void test_recovery_loss5_burst(void **state)
{
    run_recovery(50, true, 1.09, 23);
}
static void test_burst_clean(void **state)
{
    /* 1 %: the frames resent once the peer's incarnation is learnt, partial last fragments */
    run_recovery(0, true, 1.01, 24);
}

/* Targeted loss: drop the data frame that is the (skip+1)-th first transmission from `from`
 * after arming, and every retransmission of it until `times` copies were dropped. */
struct drop_rule {
    int from;
    unsigned skip, times, dropped;
    uint32_t seq;
};
static uint32_t frame_seq(const uint8_t *f)
{
    const uint8_t *p = f + MV_ETH_HLEN + 40;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static bool drop_by_rule(void *user, int from, int to, const uint8_t *f, size_t len)
{
    struct drop_rule *r = user;
    if (from != r->from || len < MV_CTRL_OVERHEAD || f[MV_ETH_HLEN + 1] != MV_CTRL_DATA)
        return false;
    bool retx = f[MV_ETH_HLEN + 3] & MV_CTRL_F_RETX;
    if (!r->seq) {
        if (retx || r->skip-- > 0)
            return false;
        r->seq = frame_seq(f);
    } else if (frame_seq(f) != r->seq) {
        return false;
    }
    if (r->dropped >= r->times)
        return false;
    r->dropped++;
    return true;
}

static bool one_msg_in(void *user)
{
    return apps[1].msgs_in == 1;
}

/* Sends one message of nfrag fragments from 0 to 1 (after a warm-up that settles the session
 * and the RTT estimate) with the rule applied; returns A's counters for just that message. */
static struct mv_chan_counters run_targeted(struct drop_rule *rule, unsigned nfrag)
{
    struct simnet net;
    setup_net(&net, 2, 1500, 31);
    struct req_state st = {.target = 20, .net = &net, .from = 0, .to = 1, .max_out = 1};
    assert_true(sim_run(&net, requests_done, &st, SEC));
    sim_run_for(&net, 10 * MS); /* delayed acks settle */
    struct mv_chan_counters before = counters(&net, 0);
    net.drop = drop_by_rule;
    net.drop_user = rule;
    size_t len = (size_t)nfrag * mv_ctrl_max_fragment(1500) - 100;
    uint8_t *buf = malloc(len);
    fill_req(buf, 0, len);
    assert_int_equal(mv_chan_send(net.nodes[0].chan, net.nodes[1].node_id, 3, buf, len, net.now),
                     0);
    assert_true(sim_run(&net, one_msg_in, NULL, SEC));
    sim_run_for(&net, 50 * MS); /* the last acks arrive; nothing more is sent */
    assert_true(apps[1].content_ok);
    assert_int_equal(apps[1].bytes_in, len);
    assert_int_equal(rule->dropped, rule->times);
    struct mv_chan_counters after = counters(&net, 0), d;
    assert_int_equal(mv_chan_tx_queued(net.nodes[0].chan, net.nodes[1].node_id), 0);
#define DELTA(f) d.f = after.f - before.f
    DELTA(retransmits);
    DELTA(fast_retransmits);
    DELTA(rto_expiries);
    DELTA(tlp_probes);
    DELTA(recoveries);
#undef DELTA
    free(buf);
    sim_free(&net);
    return d;
}

static void test_tail_loss_probe(void **state)
{
    /* The last frame of a message is lost: no later frame can reveal it, the probe does. */
    struct drop_rule r = {.from = 0, .skip = 2, .times = 1};
    struct mv_chan_counters d = run_targeted(&r, 3);
    assert_int_equal(d.rto_expiries, 0);
    assert_int_equal(d.tlp_probes, 1);
    assert_int_equal(d.retransmits, 1); /* the probe resent the lost frame itself */
}

static void test_sack_hole_no_rto(void **state)
{
    /* A hole mid-window: later frames' SACKs reveal it, resent once, one back-off. */
    struct drop_rule r = {.from = 0, .skip = 4, .times = 1};
    struct mv_chan_counters d = run_targeted(&r, 30);
    assert_int_equal(d.rto_expiries, 0);
    assert_int_equal(d.tlp_probes, 0);
    assert_int_equal(d.retransmits, 1);
    assert_int_equal(d.fast_retransmits, 1);
    assert_int_equal(d.recoveries, 1);
}

static void test_lost_retransmission_no_rto(void **state)
{
    /* The hole's retransmission is lost too: frames sent after it expose that as well. */
    struct drop_rule r = {.from = 0, .skip = 4, .times = 2};
    struct mv_chan_counters d = run_targeted(&r, 60);
    assert_int_equal(d.rto_expiries, 0);
    assert_int_equal(d.retransmits, 2);
    assert_int_equal(d.recoveries, 1); /* still one episode: one back-off */
}

static bool bytes_in_over(void *user)
{
    return apps[1].bytes_in >= *(uint64_t *)user;
}

static void test_spurious_rto_undone(void **state)
{
    /* The receiver's process stalls (not scheduled) for 30 ms mid-transfer: the sender's RTO
     * fires although nothing was lost. When the stalled host answers, the acks cover frames
     * sent before the RTO: the RTO is recognised as spurious and its window cut undone. */
    struct simnet net;
    setup_net(&net, 2, 1500, 41);
    net.delay_ns = 20000;
    struct bulk_state b = {.net = &net, .from = 0, .to = 1, .total = 8u << 20};
    b.buf = malloc(MV_CTRL_MAX_MSG);
    uint64_t mark = 2u << 20;
    /* bulk_done keeps the queue full; stop once 2 MiB arrived */
    struct {
        struct bulk_state *b;
        uint64_t mark;
    } x = {&b, mark};
    (void)x;
    while (apps[1].bytes_in < mark) {
        bulk_done(&b);
        sim_run(&net, bytes_in_over, &mark, 2 * MS);
    }
    struct mv_chan_peer_info before;
    assert_int_equal(mv_chan_peer_info(net.nodes[0].chan, net.nodes[1].node_id, &before), 0);
    net.nodes[1].stall_until = net.now + 30 * MS;
    sim_run_for(&net, 30 * MS + 200000); /* the stall, then one round trip */
    struct mv_chan_counters ca = counters(&net, 0);
    struct mv_chan_peer_info after;
    assert_int_equal(mv_chan_peer_info(net.nodes[0].chan, net.nodes[1].node_id, &after), 0);
    print_message("stall: cwnd %u -> %u, rto %llu, spurious %llu, probes %llu\n", before.cwnd,
                  after.cwnd, (unsigned long long)ca.rto_expiries,
                  (unsigned long long)ca.spurious_rtos, (unsigned long long)ca.tlp_probes);
    assert_true(ca.rto_expiries >= 1);
    assert_true(ca.spurious_rtos >= 1);
    assert_true(after.cwnd >= before.cwnd); /* not left at 1 by the RTO */
    assert_true(sim_run(&net, bulk_done, &b, 60 * SEC));
    assert_true(apps[1].order_ok);
    assert_true(apps[1].content_ok);
    assert_int_equal(apps[1].bytes_in, b.sent_bytes);
    free(b.buf);
    sim_free(&net);
}

/* One request at a time, the next sent as soon as the response arrives: the response carries
 * the ack of its request and the next request the ack of the response, so exactly two frames
 * per request/response, no standalone acks, no probes. */
static void test_rr_piggyback(void **state)
{
    struct simnet net;
    g_burst = true;
    setup_net(&net, 2, 1500, 12);
    struct req_state st = {.target = 20, .net = &net, .from = 0, .to = 1, .max_out = 1};
    assert_true(sim_run(&net, requests_done, &st, SEC));
    struct mv_chan_counters a0 = counters(&net, 0), b0 = counters(&net, 1);
    uint64_t sent0 = net.frames_sent;
    st = (struct req_state){
        .target = 1000, .net = &net, .from = 0, .to = 1, .max_out = 1, .small = true};
    assert_true(sim_run(&net, requests_done, &st, 10 * SEC));
    assert_int_equal(st.ok, 1000);
    struct mv_chan_counters a1 = counters(&net, 0), b1 = counters(&net, 1);
    uint64_t data = (a1.tx_data - a0.tx_data) + (b1.tx_data - b0.tx_data);
    print_message("rr: %llu frames, %llu data, acks %llu+%llu, probes %llu+%llu\n",
                  (unsigned long long)(net.frames_sent - sent0), (unsigned long long)data,
                  (unsigned long long)(a1.tx_acks - a0.tx_acks),
                  (unsigned long long)(b1.tx_acks - b0.tx_acks),
                  (unsigned long long)(a1.tlp_probes - a0.tlp_probes),
                  (unsigned long long)(b1.tlp_probes - b0.tlp_probes));
    assert_int_equal(a1.tx_acks - a0.tx_acks, 0);
    assert_int_equal(b1.tx_acks - b0.tx_acks, 0);
    assert_int_equal(a1.tlp_probes + b1.tlp_probes, a0.tlp_probes + b0.tlp_probes);
    assert_int_equal(a1.retransmits + b1.retransmits, a0.retransmits + b0.retransmits);
    assert_int_equal(net.frames_sent - sent0, data);
    sim_free(&net);
}

/* ---- restart, death ---- */

static struct mv_chan_counters counters(struct simnet *net, int i)
{
    struct mv_chan_counters c;
    mv_chan_get_counters(net->nodes[i].chan, &c);
    return c;
}

struct fail_state {
    int status[8];
    unsigned n;
};
static void on_fail_response(void *user, int status, const struct mv_chan_msg *resp)
{
    struct fail_state *f = user;
    f->status[f->n++ % 8] = status;
}
static bool fail_done(void *user)
{
    struct fail_state *f = user;
    return f->n == 3;
}

static void test_peer_restart(void **state)
{
    struct simnet net;
    setup_net(&net, 2, 1500, 7);
    struct fail_state f = {0};
    apps[1].defer = true; /* B never answers, so the requests stay pending */
    uint8_t req[16] = {0};
    for (int i = 0; i < 3; i++)
        assert_true(mv_chan_request(net.nodes[0].chan, net.nodes[1].node_id, 1, req, sizeof req,
                                    60 * SEC, on_fail_response, &f, net.now) > 0);
    sim_run_for(&net, 50 * MS);
    assert_int_equal(apps[1].executed, 3);
    assert_int_equal(f.n, 0);
    /* B restarts with a larger incarnation and says nothing itself: A's retransmissions and
     * keepalives reach the new B, which answers "stale", and A resets the session. */
    sim_restart_node(&net, 1, 5000);
    apps[1].executed = 0;
    assert_true(sim_run(&net, fail_done, &f, 5 * SEC));
    for (int i = 0; i < 3; i++)
        assert_int_equal(f.status[i], -ECONNRESET);
    assert_int_equal(apps[0].peer_events[MV_CHAN_PEER_RESTART], 1);
    assert_int_equal(counters(&net, 0).peer_restarts, 1);
    assert_int_equal(apps[1].executed, 0); /* nothing of the old session ran on the new B */
    /* The new session works. */
    apps[1].defer = false;
    struct req_state st = {.target = 100, .net = &net, .from = 0, .to = 1};
    assert_true(sim_run(&net, requests_done, &st, 10 * SEC));
    assert_int_equal(st.ok, 100);
    assert_int_equal(apps[1].executed, 100);
    /* And B -> A too (A learnt B's new incarnation; B learns A's from its frames). */
    struct req_state st2 = {.target = 50, .net = &net, .from = 1, .to = 0};
    assert_true(sim_run(&net, requests_done, &st2, 10 * SEC));
    assert_int_equal(st2.ok, 50);
    sim_free(&net);
}

static void test_peer_dead(void **state)
{
    struct simnet net;
    setup_net(&net, 2, 1500, 8);
    struct req_state st = {.target = 20, .net = &net, .from = 0, .to = 1};
    assert_true(sim_run(&net, requests_done, &st, 5 * SEC));
    struct fail_state f = {0};
    net.nodes[1].down = true;
    uint8_t req[8] = {0};
    for (int i = 0; i < 3; i++)
        assert_true(mv_chan_request(net.nodes[0].chan, net.nodes[1].node_id, 1, req, sizeof req,
                                    60 * SEC, on_fail_response, &f, net.now) > 0);
    uint64_t t0 = net.now;
    assert_true(sim_run(&net, fail_done, &f, 10 * SEC));
    uint64_t took = net.now - t0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(f.status[i], -EHOSTDOWN);
    /* Dead after the configured 3 s of silence (plus at most one keepalive period). */
    assert_true(took >= 2500 * MS && took <= 3600 * MS);
    assert_int_equal(apps[0].peer_events[MV_CHAN_PEER_DEAD], 1);
    assert_int_equal(mv_chan_send(net.nodes[0].chan, net.nodes[1].node_id, 1, req, 8, net.now),
                     -EHOSTDOWN);
    /* B comes back (same incarnation, e.g. a healed partition): probes find it. */
    net.nodes[1].down = false;
    sim_run_for(&net, 4 * SEC);
    struct mv_chan_peer_info pi;
    assert_int_equal(mv_chan_peer_info(net.nodes[0].chan, net.nodes[1].node_id, &pi), 0);
    assert_true(pi.alive);
    st = (struct req_state){.target = 20, .net = &net, .from = 0, .to = 1};
    assert_true(sim_run(&net, requests_done, &st, 10 * SEC));
    assert_int_equal(st.ok, 20);
    sim_free(&net);
}

static void test_request_timeout(void **state)
{
    struct simnet net;
    setup_net(&net, 2, 1500, 9);
    apps[1].defer = true;
    struct fail_state f = {0};
    uint8_t req[8] = {0};
    for (int i = 0; i < 3; i++)
        assert_true(mv_chan_request(net.nodes[0].chan, net.nodes[1].node_id, 1, req, sizeof req,
                                    100 * MS, on_fail_response, &f, net.now) > 0);
    assert_true(sim_run(&net, fail_done, &f, 1 * SEC));
    for (int i = 0; i < 3; i++)
        assert_int_equal(f.status[i], -ETIMEDOUT);
    assert_int_equal(counters(&net, 0).request_timeouts, 3);
    assert_int_equal(apps[1].executed, 3);
    sim_free(&net);
}

/* ---- attack campaign: replayed, forged, wrong-key, truncated, stale frames ---- */

struct capture {
    uint8_t *frames[4096];
    size_t len[4096];
    unsigned n;
};
static void tap(void *user, int from, const uint8_t *frame, size_t len)
{
    struct capture *c = user;
    if (from != 0 || c->n == 4096)
        return;
    c->frames[c->n] = malloc(len);
    memcpy(c->frames[c->n], frame, len);
    c->len[c->n++] = len;
}

static void test_attack_campaign(void **state)
{
    struct simnet net;
    setup_net(&net, 2, 1500, 10);
    struct capture cap = {0};
    net.tap = tap;
    net.tap_user = &cap;
    struct req_state st = {.target = 500, .net = &net, .from = 0, .to = 1};
    assert_true(sim_run(&net, requests_done, &st, 10 * SEC));
    sim_run_for(&net, 10 * MS); /* let frames still in flight arrive: they are not replays */
    net.tap = NULL;
    assert_true(cap.n > 500);
    unsigned exec_before = apps[1].executed;
    struct mv_chan_counters before = counters(&net, 1);
    struct mv_chan *b = net.nodes[1].chan;
    uint64_t now = net.now;
    unsigned sent[MV_AUTH_NCAUSES] = {0};
    unsigned total = 0;
    struct mv_keyring wrong;
    init_keys(&wrong, 99);
    uint8_t buf[MV_ETH_MAX_FRAME];
    /* 1. Replays of every captured frame, three times over. */
    for (int round = 0; round < 3; round++)
        for (unsigned i = 0; i < cap.n; i++, total++)
            sent[mv_chan_input(b, cap.frames[i], cap.len[i], now)]++;
    /* 2. Forgeries: one flipped bit anywhere in the frame (after the Ethernet addresses). */
    for (unsigned i = 0; i < 4000; i++, total++) {
        unsigned k = i % cap.n;
        memcpy(buf, cap.frames[k], cap.len[k]);
        size_t bit = 14 * 8 + sim_rand(&net) % ((cap.len[k] - 14) * 8);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sent[mv_chan_input(b, buf, cap.len[k], now)]++;
    }
    /* 3. Re-signed with a key that is not the cluster's (same key id), with fresh counters. */
    for (unsigned i = 0; i < 2000; i++, total++) {
        unsigned k = i % cap.n;
        memcpy(buf, cap.frames[k], cap.len[k]);
        for (int j = 0; j < 8; j++)
            buf[14 + 32 + j] = 0x7f; /* counter far ahead */
        mv_auth_seal(&wrong, buf, cap.len[k]);
        sent[mv_chan_input(b, buf, cap.len[k], now)]++;
    }
    /* 4. Truncated. */
    for (unsigned i = 0; i < 1500; i++, total++) {
        unsigned k = i % cap.n;
        size_t len = 14 + sim_rand(&net) % (cap.len[k] - 14);
        sent[mv_chan_input(b, cap.frames[k], len, now)]++;
    }
    /* 5. Unknown key id. */
    for (unsigned i = 0; i < 1000; i++, total++) {
        unsigned k = i % cap.n;
        memcpy(buf, cap.frames[k], cap.len[k]);
        buf[MV_CTRL_OFF_KEYID] = 42;
        sent[mv_chan_input(b, buf, cap.len[k], now)]++;
    }
    assert_true(total >= 10000);
    assert_int_equal(sent[MV_AUTH_OK], 0);
    assert_int_equal(apps[1].executed, exec_before);
    struct mv_chan_counters after = counters(&net, 1);
    uint64_t counted = 0;
    for (int i = 1; i < MV_AUTH_NCAUSES; i++) {
        assert_int_equal(after.auth_fail[i] - before.auth_fail[i], sent[i]);
        counted += after.auth_fail[i] - before.auth_fail[i];
    }
    assert_int_equal(counted, total);
    assert_int_equal(sent[MV_AUTH_REPLAY], 3 * cap.n);
    /* Bit flips land in the tag/payload (bad tag), in checked header fields (malformed) or in
     * the key id (unknown key); every other kind has exactly one cause. */
    assert_int_equal(sent[MV_AUTH_BAD_TAG] + sent[MV_AUTH_MALFORMED] + sent[MV_AUTH_UNKNOWN_KEY],
                     4000 + 2000 + 1500 + 1000);
    assert_true(sent[MV_AUTH_BAD_TAG] >= 2000 + 2000);
    assert_true(sent[MV_AUTH_MALFORMED] >= 1500);
    assert_true(sent[MV_AUTH_UNKNOWN_KEY] >= 1000);
    assert_int_equal(after.requests_executed, before.requests_executed);
    /* 6. Stale incarnation: A restarts; its old frames (authentic, fresh to B's window only if
     * B forgot them, but of an older life) are refused. */
    sim_restart_node(&net, 0, 9000);
    assert_int_equal(
        mv_chan_add_peer(net.nodes[0].chan, net.nodes[1].node_id, net.nodes[1].mac, 0, net.now), 0);
    st = (struct req_state){.target = 10, .net = &net, .from = 0, .to = 1};
    apps[1].executed = 0;
    assert_true(sim_run(&net, requests_done, &st, 5 * SEC));
    struct mv_chan_counters mid = counters(&net, 1);
    for (unsigned i = 0; i < cap.n; i++)
        assert_int_equal(mv_chan_input(b, cap.frames[i], cap.len[i], net.now),
                         MV_AUTH_STALE_INCARNATION);
    assert_int_equal(counters(&net, 1).auth_fail[MV_AUTH_STALE_INCARNATION] -
                         mid.auth_fail[MV_AUTH_STALE_INCARNATION],
                     cap.n);
    assert_int_equal(apps[1].executed, 10);
    for (unsigned i = 0; i < cap.n; i++)
        free(cap.frames[i]);
    sim_free(&net);
}

static void test_counters_format(void **state)
{
    struct simnet net;
    setup_net(&net, 2, 1500, 11);
    struct req_state st = {.target = 10, .net = &net, .from = 0, .to = 1};
    assert_true(sim_run(&net, requests_done, &st, 5 * SEC));
    char buf[8192];
    int n = mv_chan_format_counters(net.nodes[0].chan, buf, sizeof buf, true);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_non_null(strstr(buf, "\"responses_received\": 10"));
    assert_non_null(strstr(buf, "\"peers\": [{\"node\": 101"));
    n = mv_chan_format_counters(net.nodes[0].chan, buf, sizeof buf, false);
    assert_non_null(strstr(buf, "requests_sent 10\n"));
    /* Truncation is safe and reports the needed length. */
    char small[16];
    assert_int_equal(mv_chan_format_counters(net.nodes[0].chan, small, sizeof small, false), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    sim_free(&net);
}

int main(void)
{
    init_keys(&keys, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_no_loss),
        cmocka_unit_test(test_requests_loss5),
        cmocka_unit_test(test_requests_loss20),
        cmocka_unit_test(test_bulk_1500_clean),
        cmocka_unit_test(test_bulk_1500_loss20),
        cmocka_unit_test(test_bulk_9000_loss5),
        cmocka_unit_test(test_recovery_loss5),
        cmocka_unit_test(test_recovery_loss20),
        cmocka_unit_test(test_recovery_loss5_burst),
        cmocka_unit_test(test_burst_clean),
        cmocka_unit_test(test_tail_loss_probe),
        cmocka_unit_test(test_sack_hole_no_rto),
        cmocka_unit_test(test_lost_retransmission_no_rto),
        cmocka_unit_test(test_spurious_rto_undone),
        cmocka_unit_test(test_rr_piggyback),
        cmocka_unit_test(test_peer_restart),
        cmocka_unit_test(test_peer_dead),
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_attack_campaign),
        cmocka_unit_test(test_counters_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
