/* The reliable channel core: sessions, sequencing, acks/SACK, RTO, congestion window,
 * fragmentation/reassembly, request/response. Transport and clock come from the caller. */
#include "mv/channel.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/util.h"

#define DEF_RTO_INITIAL  (200 * 1000000ull)
#define DEF_RTO_MIN      (5 * 1000000ull)
#define DEF_RTO_MAX      (2000 * 1000000ull)
#define DEF_ACK_DELAY    (2 * 1000000ull)
#define DEF_KEEPALIVE    (500 * 1000000ull)
#define DEF_DEAD_AFTER   (3000 * 1000000ull)
#define DEF_REQ_TIMEOUT  (30000 * 1000000ull)
#define DEF_WINDOW       256
#define DEF_TXQ_LIMIT    (4u << 20)
#define DEF_REASM_LIMIT  (16u << 20)
#define DEF_MAX_PEERS    1024
#define DEF_RESP_CACHE   64
#define INITIAL_CWND     10        /* frames, as TCP's initial window (RFC 6928) */
#define MIN_CWND         16u       /* floor of multiplicative decrease on fast-detected loss */
#define REORDER_THRESH   3         /* later transmissions delivered before a frame counts as lost */
#define MAX_TLP          3         /* tail loss probes without progress before the RTO may fire */
#define PTO_MIN          200000ull /* 200 us: floor of the probe timeout */
#define REO_MIN          20000ull  /* 20 us: floor of the RACK reordering window */
#define TX_BATCH         32        /* frames per burst handed to send_batch */
#define QUICKACK_FRAMES  64        /* in-order frames acked at once after a sign of loss */
#define ACK_EVERY_FRAMES 4         /* in-order frames per ack when none is asked for at once */
#define RESP_CACHE_BYTES 65536
#define PENDING_BUCKETS  1024

static const uint8_t broadcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct txmsg {
    unsigned refs;
    size_t len;
    uint8_t data[];
};

struct txseg {
    uint32_t seq;
    uint16_t op, flags;
    uint32_t msg_id, ref, msg_len, frag_off, len;
    int32_t status;
    struct txmsg *msg;
    uint64_t sent_ns;
    uint64_t xmit_id; /* order of the latest transmission, for loss detection */
    uint32_t tx_count;
    bool sacked, lost;
    bool lazy; /* latest transmission let the receiver delay its ack (a response's tail) */
};

struct rxslot {
    bool used;
    uint16_t op, flags;
    uint32_t msg_id, ref, msg_len, frag_off, len;
    int32_t status;
    uint8_t *data;
};

struct pending {
    struct pending *next, *prev; /* session list, sorted by deadline */
    struct pending *hnext;       /* hash bucket chain */
    struct session *s;
    uint32_t req_id;
    uint64_t deadline;
    mv_chan_response_fn cb;
    void *user;
};

enum cache_state { CACHE_FREE, CACHE_EXECUTING, CACHE_ANSWERED };
struct resp_cache {
    enum cache_state state;
    uint32_t req_id;
    int32_t status;
    uint16_t op;
    bool cached; /* body kept (small enough) */
    uint8_t *data;
    size_t len;
};

struct session {
    uint64_t node;
    uint8_t mac[6];
    uint64_t peer_inc;
    struct mv_replay_window replay;
    bool alive;
    uint64_t last_rx_ns, last_probe_ns;
    /* transmit */
    struct txseg *segs; /* ring; segs[(head + i) & (cap - 1)] has seq snd_una + i */
    unsigned cap, head, count, nsent;
    /* Among the nsent outstanding: selectively acked, marked lost (not yet resent), resent at
     * least once. Kept up to date so the per-ack work is O(1) while nothing is lost. */
    unsigned n_sacked, n_lost, n_retx;
    uint32_t snd_una;
    size_t queued_bytes;
    unsigned peer_window;
    uint64_t srtt, rttvar, rto, rto_deadline;
    unsigned backoff; /* RTO doublings since the last forward progress */
    bool have_rtt;
    unsigned cwnd, ssthresh, cwnd_acc;
    bool in_recovery;
    uint32_t recover;
    /* Spurious RTO detection: the window before the RTO, and the newest transmission sent
     * before it. If the next news from the peer covers such a transmission, the peer was only
     * slow (a stalled process), nothing was lost, and the RTO's effects are undone. */
    bool rto_undo_armed, rto_undo_seen;
    uint64_t rto_mark_xmit;
    uint32_t rto_recover; /* snd_nxt at the first RTO: the undo check ends there */
    unsigned undo_cwnd, undo_ssthresh;
    uint64_t rack_xmit_id; /* newest transmission known delivered ... */
    uint64_t rack_sent_ns; /* ... when it was sent ... */
    uint64_t rack_rtt;     /* ... and how long its ack took */
    uint64_t reo_deadline; /* RACK reordering timer: a suspect frame becomes lost */
    uint64_t tlp_deadline; /* tail loss probe */
    unsigned tlp_count;    /* probes sent since the last forward progress */
    bool last_lazy;        /* the newest transmission may be acked late (delayed ack) */
    /* receive */
    uint32_t rcv_nxt;
    struct rxslot *ooo; /* window slots, allocated on first out-of-order frame */
    unsigned ooo_count;
    unsigned unacked_rx;
    uint64_t ack_deadline;
    bool ack_owed;             /* an immediate ack is due at the next flush */
    unsigned quickack;         /* frames still to ack without delay (loss was seen) */
    bool ack_queued;           /* on the channel's ackq */
    struct session *ackq_next; /* ackq link */
    bool reasm_active;
    struct rxslot reasm; /* data = buffer of msg_len bytes; len = bytes filled */
    /* requests */
    struct pending *pend_head, *pend_tail;
    unsigned npending;
    uint32_t exec_max;
    struct resp_cache *cache;
    unsigned cache_next;
    struct mv_chan_counters c;
};

struct mv_chan {
    struct mv_chan_config cfg;
    struct session **sess; /* sorted by node id */
    unsigned nsess;
    uint64_t counter;
    uint32_t msg_counter;
    uint64_t xmit_counter;
    size_t reasm_bytes;
    struct pending *buckets[PENDING_BUCKETS];
    struct mv_chan_counters c;
    /* Output: calls nest (callbacks re-enter); acks owed and the burst are flushed when the
     * outermost call returns, unless corked. */
    unsigned depth, corked;
    struct session *ackq; /* sessions owing an immediate ack */
    uint8_t *burst_buf;   /* send_batch: TX_BATCH frames of frame_cap bytes */
    size_t frame_cap;
    struct mv_frame burst[TX_BATCH];
    struct session *burst_sess[TX_BATCH];
    unsigned nburst;
    uint8_t frame[MV_ETH_MAX_FRAME + MV_CTRL_OVERHEAD];
};

/* Counters exist globally and per session; bump both. */
#define COUNT(ch, s, field, n)                                                                     \
    do {                                                                                           \
        (ch)->c.field += (n);                                                                      \
        if (s)                                                                                     \
            (s)->c.field += (n);                                                                   \
    } while (0)

const char *mv_chan_peer_event_name(enum mv_chan_peer_event ev)
{
    switch (ev) {
    case MV_CHAN_PEER_UP:
        return "up";
    case MV_CHAN_PEER_RESTART:
        return "restart";
    case MV_CHAN_PEER_DEAD:
        return "dead";
    }
    return "?";
}

static uint64_t system_realtime_s(void)
{
    return mv_realtime_ns() / 1000000000ull;
}

int mv_chan_create(const struct mv_chan_config *cfg, struct mv_chan **out)
{
    if (!cfg->node_id || !cfg->incarnation || !cfg->keys || (!cfg->send && !cfg->send_batch))
        return -EINVAL;
    struct mv_chan *ch = calloc(1, sizeof *ch);
    if (!ch)
        return -ENOMEM;
    ch->cfg = *cfg;
    struct mv_chan_config *c = &ch->cfg;
    if (!c->mtu)
        c->mtu = 1500;
    if (c->mtu < 256 || c->mtu > 9000)
        goto inval;
#define DEFAULT(f, v)                                                                              \
    if (!c->f)                                                                                     \
    c->f = (v)
    DEFAULT(rto_initial_ns, DEF_RTO_INITIAL);
    DEFAULT(rto_min_ns, DEF_RTO_MIN);
    DEFAULT(rto_max_ns, DEF_RTO_MAX);
    DEFAULT(ack_delay_ns, DEF_ACK_DELAY);
    DEFAULT(keepalive_ns, DEF_KEEPALIVE);
    DEFAULT(dead_after_ns, DEF_DEAD_AFTER);
    DEFAULT(request_timeout_ns, DEF_REQ_TIMEOUT);
    DEFAULT(window, DEF_WINDOW);
    DEFAULT(cwnd_max, c->window);
    DEFAULT(tx_queue_limit, DEF_TXQ_LIMIT);
    DEFAULT(reassembly_limit, DEF_REASM_LIMIT);
    DEFAULT(max_peers, DEF_MAX_PEERS);
    DEFAULT(response_cache, DEF_RESP_CACHE);
    DEFAULT(realtime_s, system_realtime_s);
#undef DEFAULT
    if (c->window & (c->window - 1) || c->window > 1024 || c->window < 4 ||
        c->rto_min_ns > c->rto_max_ns)
        goto inval;
    if (c->send_batch) {
        ch->frame_cap = MV_ETH_HLEN + c->mtu;
        ch->burst_buf = malloc(TX_BATCH * ch->frame_cap);
        if (!ch->burst_buf) {
            free(ch);
            return -ENOMEM;
        }
    }
    *out = ch;
    return 0;
inval:
    free(ch);
    return -EINVAL;
}

const struct mv_chan_config *mv_chan_config(const struct mv_chan *ch)
{
    return &ch->cfg;
}

/* ---- sessions ---- */

static struct session *find_session(const struct mv_chan *ch, uint64_t node, unsigned *pos)
{
    unsigned lo = 0, hi = ch->nsess;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (ch->sess[mid]->node < node)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return lo < ch->nsess && ch->sess[lo]->node == node ? ch->sess[lo] : NULL;
}

static void txmsg_put(struct txmsg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

static void reset_transport(struct mv_chan *ch, struct session *s)
{
    for (unsigned i = 0; i < s->count; i++)
        txmsg_put(s->segs[(s->head + i) & (s->cap - 1)].msg);
    s->head = s->count = s->nsent = 0;
    s->n_sacked = s->n_lost = s->n_retx = 0;
    s->snd_una = 1;
    s->queued_bytes = 0;
    s->peer_window = MV_MIN(ch->cfg.window, 64u);
    s->have_rtt = false;
    s->srtt = s->rttvar = 0;
    s->rto = ch->cfg.rto_initial_ns;
    s->backoff = 0;
    s->rto_deadline = 0;
    s->cwnd = INITIAL_CWND;
    s->ssthresh = ch->cfg.cwnd_max;
    s->cwnd_acc = 0;
    s->in_recovery = false;
    s->rto_undo_armed = s->rto_undo_seen = false;
    s->rack_xmit_id = 0;
    s->rack_sent_ns = 0;
    s->rack_rtt = 0;
    s->reo_deadline = 0;
    s->tlp_deadline = 0;
    s->tlp_count = 0;
    s->last_lazy = false;
    s->rcv_nxt = 1;
    if (s->ooo)
        for (unsigned i = 0; i < ch->cfg.window; i++) {
            free(s->ooo[i].data);
            s->ooo[i].data = NULL;
            s->ooo[i].used = false;
        }
    s->ooo_count = 0;
    s->unacked_rx = 0;
    s->ack_deadline = 0;
    s->ack_owed = false;
    s->quickack = 0;
    if (s->reasm_active) {
        ch->reasm_bytes -= s->reasm.msg_len;
        free(s->reasm.data);
        s->reasm.data = NULL;
        s->reasm_active = false;
    }
    s->exec_max = 0;
    for (unsigned i = 0; s->cache && i < ch->cfg.response_cache; i++) {
        free(s->cache[i].data);
        memset(&s->cache[i], 0, sizeof s->cache[i]);
    }
}

static struct session *create_session(struct mv_chan *ch, uint64_t node, const uint8_t mac[6],
                                      uint64_t now)
{
    unsigned pos;
    struct session *s = find_session(ch, node, &pos);
    if (s)
        return s;
    if (ch->nsess >= ch->cfg.max_peers)
        return NULL;
    s = calloc(1, sizeof *s);
    struct session **ns = realloc(ch->sess, (ch->nsess + 1) * sizeof *ns);
    if (!s || !ns) {
        free(s);
        if (ns)
            ch->sess = ns;
        return NULL;
    }
    ch->sess = ns;
    s->cache = calloc(ch->cfg.response_cache, sizeof *s->cache);
    s->cap = 64;
    s->segs = calloc(s->cap, sizeof *s->segs);
    if (!s->cache || !s->segs) {
        free(s->cache);
        free(s->segs);
        free(s);
        return NULL;
    }
    s->node = node;
    memcpy(s->mac, mac, 6);
    s->last_rx_ns = now;
    reset_transport(ch, s);
    memmove(&ch->sess[pos + 1], &ch->sess[pos], (ch->nsess - pos) * sizeof *ch->sess);
    ch->sess[pos] = s;
    ch->nsess++;
    return s;
}

/* ---- pending requests ---- */

static unsigned bucket_of(uint64_t node, uint32_t req_id)
{
    return (unsigned)((node * 0x9e3779b97f4a7c15ull) ^ req_id) % PENDING_BUCKETS;
}

static void pending_unlink(struct mv_chan *ch, struct pending *p)
{
    struct pending **pp = &ch->buckets[bucket_of(p->s->node, p->req_id)];
    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = p->hnext;
    struct session *s = p->s;
    if (p->prev)
        p->prev->next = p->next;
    else
        s->pend_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        s->pend_tail = p->prev;
    s->npending--;
}

static struct pending *pending_find(struct mv_chan *ch, struct session *s, uint32_t req_id)
{
    for (struct pending *p = ch->buckets[bucket_of(s->node, req_id)]; p; p = p->hnext)
        if (p->s == s && p->req_id == req_id)
            return p;
    return NULL;
}

static void pending_complete(struct mv_chan *ch, struct pending *p, int status,
                             const struct mv_chan_msg *resp)
{
    pending_unlink(ch, p);
    mv_chan_response_fn cb = p->cb;
    void *user = p->user;
    if (status && status != -ECANCELED)
        COUNT(ch, p->s, request_failures, 1);
    free(p);
    if (cb)
        cb(user, status, resp);
}

/* Fails every request pending on s; callbacks may queue new ones, which are kept. */
static void fail_pending(struct mv_chan *ch, struct session *s, int status)
{
    unsigned n = s->npending;
    while (n-- && s->pend_head)
        pending_complete(ch, s->pend_head, status, NULL);
}

/* ---- frame output ---- */

/* Hands the gathered burst to send_batch. Frames it does not take count as lost (the protocol
 * retransmits), as a failing single send would. */
static void flush_burst(struct mv_chan *ch)
{
    unsigned n = ch->nburst, done = 0;
    ch->nburst = 0;
    while (done < n) {
        int rc = ch->cfg.send_batch(ch->cfg.send_user, ch->burst + done, n - done);
        if (rc <= 0)
            break;
        for (unsigned i = done; i < done + (unsigned)rc && i < n; i++) {
            COUNT(ch, ch->burst_sess[i], tx_frames, 1);
            COUNT(ch, ch->burst_sess[i], tx_bytes, ch->burst[i].len);
        }
        done += (unsigned)rc;
    }
    for (; done < n; done++)
        COUNT(ch, ch->burst_sess[done], send_errors, 1);
}

/* Where the next frame is built: the next burst slot, or the single frame buffer. */
static uint8_t *out_buf(struct mv_chan *ch, size_t *cap)
{
    if (!ch->cfg.send_batch) {
        *cap = sizeof ch->frame;
        return ch->frame;
    }
    if (ch->nburst == TX_BATCH)
        flush_burst(ch);
    *cap = ch->frame_cap;
    return ch->burst_buf + (size_t)ch->nburst * ch->frame_cap;
}

/* Seals the frame built in out_buf() and sends it (or adds it to the burst). */
static void emit(struct mv_chan *ch, struct session *s, uint8_t *buf, size_t len)
{
    if (mv_auth_seal(ch->cfg.keys, buf, len) != 0) {
        COUNT(ch, s, send_errors, 1);
        return;
    }
    if (ch->cfg.send_batch) {
        ch->burst[ch->nburst] = (struct mv_frame){.data = buf, .len = (uint32_t)len};
        ch->burst_sess[ch->nburst++] = s;
        return;
    }
    int rc = ch->cfg.send(ch->cfg.send_user, buf, len);
    if (rc < 0) {
        COUNT(ch, s, send_errors, 1);
        return;
    }
    COUNT(ch, s, tx_frames, 1);
    COUNT(ch, s, tx_bytes, len);
}

static void base_header(struct mv_chan *ch, struct mv_ctrl_hdr *h, const uint8_t dst[6],
                        uint8_t type)
{
    memset(h, 0, sizeof *h);
    memcpy(h->dst, dst, 6);
    memcpy(h->src, ch->cfg.mac, 6);
    h->ethertype = MV_ETHERTYPE_CTRL;
    h->version = MV_CTRL_VERSION;
    h->type = type;
    h->src_node = ch->cfg.node_id;
    h->src_incarnation = ch->cfg.incarnation;
    h->counter = ++ch->counter;
}

static void session_header(struct mv_chan *ch, struct session *s, struct mv_ctrl_hdr *h,
                           uint8_t type)
{
    base_header(ch, h, s->mac, type);
    h->dst_incarnation = s->peer_inc;
    h->ack = s->rcv_nxt;
    h->window = (uint16_t)ch->cfg.window;
    s->unacked_rx = 0;
    s->ack_deadline = 0;
    /* Any frame carries the cumulative ack; only an ACK carries the SACK blocks. */
    if (type != MV_CTRL_DATA || !s->ooo_count)
        s->ack_owed = false;
}

static unsigned build_sack(struct mv_chan *ch, struct session *s, struct mv_ctrl_sack *blocks)
{
    unsigned n = 0;
    if (!s->ooo || !s->ooo_count)
        return 0;
    unsigned w = ch->cfg.window;
    bool in = false;
    for (unsigned i = 1; i < w && n < MV_CTRL_MAX_SACK; i++) {
        uint32_t seq = s->rcv_nxt + i;
        bool used = s->ooo[seq & (w - 1)].used;
        if (used && !in) {
            blocks[n].start = seq;
            in = true;
        } else if (!used && in) {
            blocks[n++].end = seq;
            in = false;
        }
    }
    if (in)
        blocks[n++].end = s->rcv_nxt + w;
    return n;
}

static void send_ack(struct mv_chan *ch, struct session *s, uint16_t flags)
{
    struct mv_ctrl_hdr h;
    struct mv_ctrl_sack blocks[MV_CTRL_MAX_SACK];
    uint8_t pl[MV_CTRL_MAX_SACK * 8];
    unsigned n = build_sack(ch, s, blocks);
    int plen = mv_ctrl_sack_encode(blocks, n, pl, sizeof pl);
    session_header(ch, s, &h, MV_CTRL_ACK);
    h.flags = flags;
    size_t cap;
    uint8_t *buf = out_buf(ch, &cap);
    int len = mv_ctrl_encode(&h, pl, (size_t)plen, buf, cap);
    if (len > 0) {
        COUNT(ch, s, tx_acks, 1);
        emit(ch, s, buf, (size_t)len);
    }
}

/* An ack is due now, but the frames being processed in this call (or corked batch) may owe
 * more: send one ack for all of them when the output is flushed. */
static void ack_soon(struct mv_chan *ch, struct session *s)
{
    s->ack_owed = true;
    if (!s->ack_queued) {
        s->ack_queued = true;
        s->ackq_next = ch->ackq;
        ch->ackq = s;
    }
}

static void flush_output(struct mv_chan *ch)
{
    while (ch->ackq) {
        struct session *s = ch->ackq;
        ch->ackq = s->ackq_next;
        s->ackq_next = NULL;
        s->ack_queued = false;
        if (s->ack_owed)
            send_ack(ch, s, 0);
    }
    if (ch->nburst)
        flush_burst(ch);
}

/* Every public entry point brackets its work with these. */
static void chan_enter(struct mv_chan *ch)
{
    ch->depth++;
}

static void chan_leave(struct mv_chan *ch)
{
    if (--ch->depth == 0 && !ch->corked)
        flush_output(ch);
}

void mv_chan_cork(struct mv_chan *ch)
{
    ch->corked++;
}

void mv_chan_uncork(struct mv_chan *ch)
{
    if (ch->corked && --ch->corked == 0 && ch->depth == 0)
        flush_output(ch);
}

static void send_keepalive(struct mv_chan *ch, struct session *s, uint64_t now)
{
    struct mv_ctrl_hdr h;
    session_header(ch, s, &h, MV_CTRL_KEEPALIVE);
    h.flags = MV_CTRL_F_ACKREQ;
    size_t cap;
    uint8_t *buf = out_buf(ch, &cap);
    int len = mv_ctrl_encode(&h, NULL, 0, buf, cap);
    s->last_probe_ns = now;
    if (len > 0) {
        COUNT(ch, s, tx_keepalives, 1);
        emit(ch, s, buf, (size_t)len);
    }
}

/* The retransmission timeout with exponential backoff applied. */
static uint64_t rto_now(const struct mv_chan *ch, const struct session *s)
{
    uint64_t r = s->rto;
    for (unsigned i = 0; i < s->backoff && r < ch->cfg.rto_max_ns; i++)
        r *= 2;
    return MV_MIN(r, ch->cfg.rto_max_ns);
}

/* Tail loss probe timeout (RFC 8985 spirit): two smoothed RTTs, plus the peer's ack delay when
 * the newest frame let it delay its ack (a response's tail), doubled for a second probe; at least
 * PTO_MIN, at most the RTO. */
static uint64_t probe_timeout(const struct mv_chan *ch, const struct session *s)
{
    uint64_t p = s->have_rtt ? 2 * s->srtt + s->rttvar : ch->cfg.rto_initial_ns;
    if (s->last_lazy)
        p += ch->cfg.ack_delay_ns;
    p <<= MV_MIN(s->tlp_count, 4u);
    return MV_MIN(MV_MAX(p, PTO_MIN), rto_now(ch, s));
}

static struct txseg *seg_at(struct session *s, unsigned i)
{
    return &s->segs[(s->head + i) & (s->cap - 1)];
}

/* ackreq: nothing more can follow until an ack arrives (a probe, or the frame that fills the
 * congestion or receive window), so the ack is wanted at once, not after the delayed-ack time. */
static void transmit_seg(struct mv_chan *ch, struct session *s, struct txseg *g, uint64_t now,
                         bool ackreq)
{
    struct mv_ctrl_hdr h;
    session_header(ch, s, &h, MV_CTRL_DATA);
    h.flags = g->flags | (g->tx_count ? MV_CTRL_F_RETX : 0);
    /* A retransmission, a window-filling frame, or the last frame queued (no more will follow
     * soon): ask for an immediate ack instead of a delayed one. Not for a response's last frame:
     * the requester's next request, or its delayed ack, carries that ack, which spares a frame
     * and a wakeup on both sides per request/response. */
    bool lazy = false;
    if (g->tx_count || ackreq)
        h.flags |= MV_CTRL_F_ACKREQ;
    else if (g->seq + 1 == s->snd_una + s->count) {
        if (g->flags & MV_CTRL_F_RESPONSE)
            lazy = true;
        else
            h.flags |= MV_CTRL_F_ACKREQ;
    }
    h.seq = g->seq;
    h.op = g->op;
    h.msg_id = g->msg_id;
    h.ref = g->ref;
    h.msg_len = g->msg_len;
    h.frag_off = g->frag_off;
    h.status = g->status;
    size_t cap;
    uint8_t *buf = out_buf(ch, &cap);
    int len = mv_ctrl_encode(&h, g->msg->data + g->frag_off, g->len, buf, cap);
    if (len < 0)
        return;
    if (g->tx_count) {
        COUNT(ch, s, retransmits, 1);
        if (g->tx_count == 1)
            s->n_retx++;
    }
    g->tx_count++;
    g->sent_ns = now;
    g->xmit_id = ++ch->xmit_counter;
    g->lazy = lazy;
    s->last_lazy = lazy;
    if (g->lost) {
        g->lost = false;
        s->n_lost--;
    }
    COUNT(ch, s, tx_data, 1);
    emit(ch, s, buf, (size_t)len);
    if (!s->rto_deadline)
        s->rto_deadline = now + rto_now(ch, s);
    if (s->tlp_count < MAX_TLP)
        s->tlp_deadline = now + probe_timeout(ch, s);
}

/* Frames in the network ("pipe" of RFC 6675): sent, neither selectively acked nor known lost. */
static unsigned in_flight(const struct session *s)
{
    return s->nsent - s->n_sacked - s->n_lost;
}

static void seg_mark_lost(struct session *s, struct txseg *g)
{
    if (!g->lost && !g->sacked) {
        g->lost = true;
        s->n_lost++;
    }
}

/* Sends what the congestion and receive windows allow: lost frames first, then new ones. */
static void try_send(struct mv_chan *ch, struct session *s, uint64_t now)
{
    unsigned flight = in_flight(s);
    for (unsigned i = 0; s->n_lost && i < s->nsent && flight < s->cwnd; i++) {
        struct txseg *g = seg_at(s, i);
        if (g->lost) {
            transmit_seg(ch, s, g, now, false);
            flight++;
        }
    }
    while (s->nsent < s->count && flight < s->cwnd && s->nsent < s->peer_window) {
        bool fills = flight + 1 >= s->cwnd || s->nsent + 1 >= s->peer_window;
        transmit_seg(ch, s, seg_at(s, s->nsent), now, fills);
        s->nsent++;
        flight++;
    }
}

static int grow_ring(struct session *s, unsigned need)
{
    if (s->count + need <= s->cap)
        return 0;
    unsigned ncap = s->cap;
    while (ncap < s->count + need)
        ncap *= 2;
    struct txseg *n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (unsigned i = 0; i < s->count; i++)
        n[i] = *seg_at(s, i);
    free(s->segs);
    s->segs = n;
    s->cap = ncap;
    s->head = 0;
    return 0;
}

static long queue_message(struct mv_chan *ch, struct session *s, uint16_t flags, uint16_t op,
                          uint32_t ref, int32_t status, const void *data, size_t len, uint64_t now)
{
    if (len > MV_CTRL_MAX_MSG)
        return -EMSGSIZE;
    if (len && !data)
        return -EINVAL;
    unsigned frag = mv_ctrl_max_fragment(ch->cfg.mtu);
    unsigned nfrags = len ? (unsigned)((len + frag - 1) / frag) : 1;
    if (grow_ring(s, nfrags))
        return -ENOMEM;
    struct txmsg *m = malloc(sizeof *m + len);
    if (!m)
        return -ENOMEM;
    m->refs = nfrags;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    if (++ch->msg_counter == 0)
        ch->msg_counter = 1;
    uint32_t msg_id = ch->msg_counter;
    for (unsigned i = 0; i < nfrags; i++) {
        struct txseg *g = seg_at(s, s->count);
        memset(g, 0, sizeof *g);
        g->seq = s->snd_una + s->count;
        g->op = op;
        g->flags = flags;
        g->msg_id = msg_id;
        g->ref = ref;
        g->status = status;
        g->msg_len = (uint32_t)len;
        g->frag_off = i * frag;
        g->len = (uint32_t)MV_MIN((size_t)frag, len - g->frag_off);
        g->msg = m;
        s->count++;
    }
    s->queued_bytes += len;
    COUNT(ch, s, msgs_sent, 1);
    try_send(ch, s, now);
    return msg_id;
}

/* ---- acknowledgement processing (sender side) ---- */

static void rtt_sample(struct mv_chan *ch, struct session *s, uint64_t r)
{
    /* Jacobson/Karels, RFC 6298 gains (1/8, 1/4). */
    if (!s->have_rtt) {
        s->srtt = r;
        s->rttvar = r / 2;
        s->have_rtt = true;
    } else {
        uint64_t diff = s->srtt > r ? s->srtt - r : r - s->srtt;
        s->rttvar = (3 * s->rttvar + diff) / 4;
        s->srtt = (7 * s->srtt + r) / 8;
    }
    uint64_t rto = s->srtt + MV_MAX(4 * s->rttvar, 1000ull);
    s->rto = MV_MIN(MV_MAX(rto, ch->cfg.rto_min_ns), ch->cfg.rto_max_ns);
}

static void cwnd_grow(struct mv_chan *ch, struct session *s, unsigned acked)
{
    while (acked--) {
        if (s->cwnd < s->ssthresh) {
            s->cwnd++;
        } else if (++s->cwnd_acc >= s->cwnd) {
            s->cwnd_acc = 0;
            s->cwnd++;
        }
    }
    if (s->cwnd > ch->cfg.cwnd_max)
        s->cwnd = ch->cfg.cwnd_max;
}

/* A seg was delivered (cumulatively or selectively): feed RTT (Karn: first transmissions only)
 * and the newest-delivered-transmission mark used for loss detection. */
static void seg_delivered(struct mv_chan *ch, struct session *s, struct txseg *g, uint64_t now,
                          uint64_t *sample)
{
    /* The youngest frame an ack newly covers is the one that triggered it; older ones may have
     * waited behind a hole at the receiver and would inflate the estimate. A lazy frame's ack
     * may have been delayed on purpose: only a first estimate, or a sample no slower than the
     * estimate (a node that only answers requests sends little else). */
    if (g->tx_count == 1 && now >= g->sent_ns && now - g->sent_ns < *sample &&
        (!g->lazy || !s->have_rtt || now - g->sent_ns <= s->srtt))
        *sample = now - g->sent_ns;
    if (s->rto_undo_armed && g->xmit_id <= s->rto_mark_xmit)
        s->rto_undo_seen = true;
    /* Only first transmissions move the RACK mark. The ack of a resent frame may have been
     * triggered by an earlier copy (Karn's ambiguity; there are no timestamps on the wire), and
     * taking it as the resend's would judge every frame sent before as lost: a whole window
     * resent after a stall. A lost resend is still exposed by the new frames sent after it, or
     * by the tail loss probe. */
    if (g->tx_count > 1)
        return;
    if (g->xmit_id > s->rack_xmit_id) {
        s->rack_xmit_id = g->xmit_id;
        s->rack_sent_ns = g->sent_ns;
        s->rack_rtt = now >= g->sent_ns ? now - g->sent_ns : 0;
    }
}

/* RACK (RFC 8985 spirit): a frame sent before the newest delivered transmission is lost once
 * REORDER_THRESH later transmissions went out and one got through, or once it has been out for
 * that transmission's RTT plus a reordering window; until then the reordering timer watches it.
 * Returns whether new losses were found. */
static bool rack_detect(struct mv_chan *ch, struct session *s, uint64_t now)
{
    s->reo_deadline = 0;
    /* Nothing selectively acked and nothing resent: every outstanding frame went out after the
     * newest delivered one, so none can be judged yet. */
    if (!s->n_sacked && !s->n_retx && (!s->nsent || seg_at(s, 0)->xmit_id > s->rack_xmit_id))
        return false;
    uint64_t reo = MV_MAX(s->srtt / 4, REO_MIN), next = UINT64_MAX;
    bool loss = false;
    for (unsigned i = 0; i < s->nsent; i++) {
        struct txseg *g = seg_at(s, i);
        if (g->sacked || g->lost || g->xmit_id >= s->rack_xmit_id)
            continue;
        uint64_t due = g->sent_ns + s->rack_rtt + reo;
        if (g->xmit_id + REORDER_THRESH <= s->rack_xmit_id || now >= due) {
            seg_mark_lost(s, g);
            COUNT(ch, s, fast_retransmits, 1);
            loss = true;
        } else if (due < next) {
            next = due;
        }
    }
    if (next != UINT64_MAX)
        s->reo_deadline = next;
    return loss;
}

/* News after an RTO: if it covers a transmission made before the RTO (not one of its
 * retransmissions), the peer had been receiving all along and only its answer was late (a
 * stalled process, lost acks): restore the window, and let RACK judge the frames the RTO marked
 * lost with the fresh information instead of resending them all. Undecided while only resent
 * frames are acked; over once everything outstanding at the RTO is acknowledged. */
static void rto_check_spurious(struct mv_chan *ch, struct session *s)
{
    if (!s->rto_undo_seen) {
        if (!mv_seq_lt(s->snd_una, s->rto_recover))
            s->rto_undo_armed = false;
        return;
    }
    s->rto_undo_armed = s->rto_undo_seen = false;
    COUNT(ch, s, spurious_rtos, 1);
    s->cwnd = MV_MAX(s->cwnd, s->undo_cwnd);
    s->ssthresh = MV_MAX(s->ssthresh, s->undo_ssthresh);
    s->backoff = 0;
    for (unsigned i = 0; i < s->nsent; i++) {
        struct txseg *g = seg_at(s, i);
        if (g->lost && g->xmit_id <= s->rto_mark_xmit) {
            g->lost = false;
            s->n_lost--;
        }
    }
}

/* Multiplicative decrease once per window of data (a recovery episode lasts until everything
 * sent before it is acknowledged), not once per lost frame. */
static void enter_recovery(struct mv_chan *ch, struct session *s)
{
    if (s->in_recovery)
        return;
    s->ssthresh = MV_MAX(s->cwnd / 2, MIN_CWND);
    s->cwnd = s->ssthresh;
    s->cwnd_acc = 0;
    s->in_recovery = true;
    s->recover = s->snd_una + s->nsent;
    COUNT(ch, s, recoveries, 1);
}

static void process_ack(struct mv_chan *ch, struct session *s, const struct mv_ctrl_hdr *h,
                        const uint8_t *pl, uint64_t now)
{
    uint32_t snd_nxt = s->snd_una + s->nsent;
    s->peer_window = MV_MIN((unsigned)h->window, ch->cfg.window);
    if (s->peer_window < 1)
        s->peer_window = 1;
    if (mv_seq_lt(snd_nxt, h->ack)) {
        COUNT(ch, s, protocol_errors, 1); /* acks something never sent */
        return;
    }
    uint64_t sample = UINT64_MAX;
    unsigned newly = 0;
    bool progress = false;
    while (s->count && s->nsent && mv_seq_lt(s->snd_una, h->ack)) {
        struct txseg *g = seg_at(s, 0);
        if (!g->sacked) {
            seg_delivered(ch, s, g, now, &sample);
            newly++;
        } else {
            s->n_sacked--;
        }
        if (g->lost)
            s->n_lost--;
        if (g->tx_count > 1)
            s->n_retx--;
        s->queued_bytes -= g->frag_off + g->len == g->msg_len ? g->msg_len : 0;
        txmsg_put(g->msg);
        g->msg = NULL;
        s->head = (s->head + 1) & (s->cap - 1);
        s->count--;
        s->nsent--;
        s->snd_una++;
        progress = true;
    }
    if (h->type == MV_CTRL_ACK && h->payload_len) {
        struct mv_ctrl_sack blocks[MV_CTRL_MAX_SACK];
        int n = mv_ctrl_sack_decode(pl, h->payload_len, blocks, MV_CTRL_MAX_SACK);
        for (int b = 0; b < n; b++) {
            /* Clamp to what is outstanding: a wide block must not cost a wide loop. */
            uint32_t q = mv_seq_lt(blocks[b].start, s->snd_una) ? s->snd_una : blocks[b].start;
            uint32_t end = mv_seq_lt(snd_nxt, blocks[b].end) ? snd_nxt : blocks[b].end;
            for (; mv_seq_lt(q, end); q++) {
                struct txseg *g = seg_at(s, q - s->snd_una);
                if (!g->sacked) {
                    if (g->lost) {
                        g->lost = false;
                        s->n_lost--;
                    }
                    g->sacked = true;
                    s->n_sacked++;
                    seg_delivered(ch, s, g, now, &sample);
                    newly++;
                }
            }
        }
    }
    if (sample != UINT64_MAX)
        rtt_sample(ch, s, sample);
    if (s->rto_undo_armed && newly)
        rto_check_spurious(ch, s);
    if (s->in_recovery && !mv_seq_lt(s->snd_una, s->recover))
        s->in_recovery = false;
    if (!s->in_recovery)
        cwnd_grow(ch, s, newly);
    if (newly && rack_detect(ch, s, now))
        enter_recovery(ch, s);
    if (progress || newly) {
        /* Forward progress ends the backoff; the estimate itself only moves on unambiguous
         * samples (Karn), so a run of retransmissions cannot leave the timer stuck high. A
         * SACK counts too: the peer is there, and the holes get resent without waiting. */
        s->backoff = 0;
        s->tlp_count = 0;
        s->rto_deadline = s->nsent ? now + rto_now(ch, s) : 0;
        s->tlp_deadline = s->nsent ? now + probe_timeout(ch, s) : 0;
    }
    if (!s->nsent)
        s->reo_deadline = 0;
    try_send(ch, s, now);
}

/* ---- receive side ---- */

static struct resp_cache *cache_find(struct mv_chan *ch, struct session *s, uint32_t req_id)
{
    for (unsigned i = 0; i < ch->cfg.response_cache; i++)
        if (s->cache[i].state != CACHE_FREE && s->cache[i].req_id == req_id)
            return &s->cache[i];
    return NULL;
}

static void dispatch_request(struct mv_chan *ch, struct session *s, const struct mv_chan_msg *m,
                             uint64_t now)
{
    if (m->msg_id <= s->exec_max) {
        /* Seen before: never execute twice. Answer from the cache if we can. */
        COUNT(ch, s, dup_requests, 1);
        struct resp_cache *e = cache_find(ch, s, m->msg_id);
        if (e && e->state == CACHE_EXECUTING)
            return;
        int32_t st = e && e->cached ? e->status : -EALREADY;
        queue_message(ch, s, MV_CTRL_F_RESPONSE, e ? e->op : m->op, m->msg_id, st,
                      e && e->cached ? e->data : NULL, e && e->cached ? e->len : 0, now);
        return;
    }
    s->exec_max = m->msg_id;
    struct resp_cache *e = &s->cache[s->cache_next];
    s->cache_next = (s->cache_next + 1) % ch->cfg.response_cache;
    free(e->data);
    memset(e, 0, sizeof *e);
    e->state = CACHE_EXECUTING;
    e->req_id = m->msg_id;
    e->op = m->op;
    COUNT(ch, s, requests_executed, 1);
    struct mv_chan_reply_token tok = {s->node, s->peer_inc, m->msg_id, m->op};
    if (ch->cfg.on_request)
        ch->cfg.on_request(ch->cfg.cb_user, m, tok);
    else
        mv_chan_reply(ch, tok, -EOPNOTSUPP, NULL, 0, now);
}

static void dispatch_message(struct mv_chan *ch, struct session *s, const struct rxslot *f,
                             const uint8_t *data, size_t len, uint64_t now)
{
    struct mv_chan_msg m = {
        .peer_node = s->node,
        .peer_incarnation = s->peer_inc,
        .op = f->op,
        .msg_id = f->msg_id,
        .status = f->status,
        .data = data,
        .len = len,
    };
    COUNT(ch, s, bytes_delivered, len);
    if (f->flags & MV_CTRL_F_RESPONSE) {
        struct pending *p = pending_find(ch, s, f->ref);
        if (!p) {
            COUNT(ch, s, unmatched_responses, 1);
            return;
        }
        COUNT(ch, s, responses_received, 1);
        pending_complete(ch, p, 0, &m);
    } else if (f->flags & MV_CTRL_F_REQUEST) {
        dispatch_request(ch, s, &m, now);
    } else {
        COUNT(ch, s, msgs_delivered, 1);
        if (ch->cfg.on_message)
            ch->cfg.on_message(ch->cfg.cb_user, &m);
    }
}

static void reasm_abort(struct mv_chan *ch, struct session *s)
{
    if (!s->reasm_active)
        return;
    ch->reasm_bytes -= s->reasm.msg_len;
    free(s->reasm.data);
    s->reasm.data = NULL;
    s->reasm_active = false;
}

/* In-order fragments become messages; anything that does not continue the message being
 * reassembled exactly (overlap, gap, different message) is rejected and counted. */
static void deliver_fragment(struct mv_chan *ch, struct session *s, const struct rxslot *f,
                             const uint8_t *data, uint64_t now)
{
    if (f->frag_off == 0) {
        if (s->reasm_active) {
            COUNT(ch, s, reassembly_errors, 1);
            reasm_abort(ch, s);
        }
        if (f->len == f->msg_len) {
            dispatch_message(ch, s, f, data, f->len, now);
            return;
        }
        if (ch->reasm_bytes + f->msg_len > ch->cfg.reassembly_limit) {
            COUNT(ch, s, reassembly_errors, 1);
            return;
        }
        s->reasm = *f;
        s->reasm.data = malloc(f->msg_len);
        if (!s->reasm.data) {
            COUNT(ch, s, reassembly_errors, 1);
            return;
        }
        memcpy(s->reasm.data, data, f->len);
        s->reasm_active = true;
        ch->reasm_bytes += f->msg_len;
        return;
    }
    struct rxslot *r = &s->reasm;
    if (!s->reasm_active || f->msg_id != r->msg_id || f->msg_len != r->msg_len ||
        f->frag_off != r->len || f->op != r->op || f->flags != r->flags || f->ref != r->ref) {
        COUNT(ch, s, reassembly_errors, 1);
        if (s->reasm_active && f->msg_id == r->msg_id)
            reasm_abort(ch, s);
        return;
    }
    memcpy(r->data + r->len, data, f->len);
    r->len += f->len;
    if (r->len == r->msg_len) {
        /* Detach before dispatch: the callback may re-enter the channel. */
        struct rxslot done = *r;
        s->reasm_active = false;
        s->reasm.data = NULL;
        ch->reasm_bytes -= done.msg_len;
        dispatch_message(ch, s, &done, done.data, done.msg_len, now);
        free(done.data);
    }
}

static void receive_data(struct mv_chan *ch, struct session *s, const struct mv_ctrl_hdr *h,
                         const uint8_t *pl, uint64_t now)
{
    unsigned w = ch->cfg.window;
    COUNT(ch, s, rx_data, 1);
    if (mv_seq_lt(h->seq, s->rcv_nxt)) {
        COUNT(ch, s, dup_drops, 1);
        s->quickack = QUICKACK_FRAMES;
        ack_soon(ch, s); /* our ack was probably lost */
        return;
    }
    uint32_t off = h->seq - s->rcv_nxt;
    if (off >= w) {
        COUNT(ch, s, out_of_window, 1);
        ack_soon(ch, s);
        return;
    }
    struct rxslot f = {
        .used = true,
        .op = h->op,
        .flags = h->flags & (MV_CTRL_F_REQUEST | MV_CTRL_F_RESPONSE),
        .msg_id = h->msg_id,
        .ref = h->ref,
        .msg_len = h->msg_len,
        .frag_off = h->frag_off,
        .len = h->payload_len,
        .status = h->status,
    };
    if (off > 0) {
        if (!s->ooo && !(s->ooo = calloc(w, sizeof *s->ooo)))
            return;
        struct rxslot *slot = &s->ooo[h->seq & (w - 1)];
        if (slot->used) {
            COUNT(ch, s, dup_drops, 1);
        } else {
            f.data = malloc(f.len ? f.len : 1);
            if (!f.data)
                return;
            memcpy(f.data, pl, f.len);
            *slot = f;
            s->ooo_count++;
        }
        s->quickack = QUICKACK_FRAMES;
        ack_soon(ch, s); /* a gap: tell the sender at once (SACK) */
        return;
    }
    s->rcv_nxt++;
    s->unacked_rx++;
    bool drained = false;
    /* Sessions can be reset from inside callbacks (a reply hitting a restarted peer does not,
     * but be safe): remember the incarnation and stop if it changes. */
    uint64_t inc = s->peer_inc;
    deliver_fragment(ch, s, &f, pl, now);
    while (s->peer_inc == inc && s->ooo && s->ooo[s->rcv_nxt & (w - 1)].used) {
        struct rxslot next = s->ooo[s->rcv_nxt & (w - 1)];
        s->ooo[s->rcv_nxt & (w - 1)].used = false;
        s->ooo[s->rcv_nxt & (w - 1)].data = NULL;
        s->ooo_count--;
        s->rcv_nxt++;
        s->unacked_rx++;
        drained = true;
        deliver_fragment(ch, s, &next, next.data, now);
        free(next.data);
    }
    if (s->unacked_rx == 0)
        return; /* a reply sent from a callback carried the ack */
    /* While frames are being lost, the sender's window-filling frame (the one asking for an
     * immediate ack) may be among them: do not hold the ack of what did arrive. ack_soon()
     * still merges the acks of one batch into one frame. */
    if (s->quickack)
        s->quickack--;
    /* Every 4th in-order frame rather than TCP's every 2nd: the sender asks for an immediate ack
     * wherever it has to wait for one (window-filling and last frames), so this only thins the
     * acks inside a flight, which cost a bulk receiver about a fifth of its CPU time. */
    if (drained || s->unacked_rx >= ACK_EVERY_FRAMES || (h->flags & MV_CTRL_F_ACKREQ) ||
        s->quickack)
        ack_soon(ch, s);
    else if (!s->ack_deadline)
        s->ack_deadline = now + ch->cfg.ack_delay_ns;
}

static void peer_event(struct mv_chan *ch, struct session *s, enum mv_chan_peer_event ev)
{
    if (ch->cfg.on_peer)
        ch->cfg.on_peer(ch->cfg.cb_user, s->node, s->mac, ev);
}

static void session_restart(struct mv_chan *ch, struct session *s, uint64_t new_inc)
{
    COUNT(ch, s, peer_restarts, 1);
    reset_transport(ch, s);
    s->peer_inc = new_inc;
    fail_pending(ch, s, -ECONNRESET);
    peer_event(ch, s, MV_CHAN_PEER_RESTART);
}

/* We learnt the incarnation of a peer we had only heard of: frames sent with dst incarnation 0
 * were dropped by it, so send them again now. */
static void session_learn(struct mv_chan *ch, struct session *s, uint64_t inc, uint64_t now)
{
    s->peer_inc = inc;
    for (unsigned i = 0; i < s->nsent; i++)
        seg_mark_lost(s, seg_at(s, i));
    try_send(ch, s, now);
}

static enum mv_auth_cause chan_input(struct mv_chan *ch, const uint8_t *frame, size_t len,
                                     uint64_t now)
{
    if (len < MV_ETH_HLEN || frame[12] != (MV_ETHERTYPE_CTRL >> 8) ||
        frame[13] != (MV_ETHERTYPE_CTRL & 0xff))
        return MV_AUTH_MALFORMED; /* not ours: not counted */
    COUNT(ch, (struct session *)NULL, rx_frames, 1);
    COUNT(ch, (struct session *)NULL, rx_bytes, len);
    struct mv_ctrl_hdr h;
    const uint8_t *pl;
    if (mv_ctrl_decode(frame, len, &h, &pl) != MV_CTRL_OK) {
        COUNT(ch, (struct session *)NULL, protocol_errors, 1);
        COUNT(ch, (struct session *)NULL, auth_fail[MV_AUTH_MALFORMED], 1);
        return MV_AUTH_MALFORMED;
    }
    if (memcmp(h.dst, ch->cfg.mac, 6) && memcmp(h.dst, broadcast_mac, 6))
        return MV_AUTH_MALFORMED; /* for another host: not ours to judge or count */
    enum mv_auth_cause c = mv_auth_verify(ch->cfg.keys, frame, len, ch->cfg.realtime_s());
    if (c != MV_AUTH_OK) {
        COUNT(ch, (struct session *)NULL, auth_fail[c], 1);
        return c;
    }
    if (h.src_node == ch->cfg.node_id || !memcmp(h.src, ch->cfg.mac, 6))
        return MV_AUTH_MALFORMED; /* our own broadcast looping back */
    struct session *s = find_session(ch, h.src_node, NULL);
    if (s && s->peer_inc && h.src_incarnation < s->peer_inc) {
        COUNT(ch, s, auth_fail[MV_AUTH_STALE_INCARNATION], 1);
        return MV_AUTH_STALE_INCARNATION;
    }
    /* Only now, with an authentic frame, may state be created. */
    if (!s && !(s = create_session(ch, h.src_node, h.src, now))) {
        COUNT(ch, (struct session *)NULL, auth_fail[MV_AUTH_REPLAY], 1);
        return MV_AUTH_REPLAY; /* peer table full: cannot track its replay window */
    }
    c = mv_replay_check_commit(&s->replay, h.src_incarnation, h.counter);
    if (c != MV_AUTH_OK) {
        COUNT(ch, s, auth_fail[c], 1);
        return c;
    }
    s->c.rx_frames++;
    s->c.rx_bytes += len;
    memcpy(s->mac, h.src, 6);
    if (h.src_incarnation != s->peer_inc) {
        if (s->peer_inc)
            session_restart(ch, s, h.src_incarnation);
        else
            session_learn(ch, s, h.src_incarnation, now);
    }
    s->last_rx_ns = now;
    if (!s->alive) {
        s->alive = true;
        peer_event(ch, s, MV_CHAN_PEER_UP);
    }
    if (h.type == MV_CTRL_HELLO) {
        COUNT(ch, s, rx_hellos, 1);
        if (ch->cfg.on_hello)
            ch->cfg.on_hello(ch->cfg.cb_user, &h, pl, h.payload_len, now);
        return MV_AUTH_OK;
    }
    if (h.dst_incarnation != ch->cfg.incarnation) {
        /* Addressed to an earlier life of ours (or sent before the peer knew us): nothing in it
         * may be acted on. Tell the sender who we are now. */
        if (h.type != MV_CTRL_ACK)
            send_ack(ch, s, MV_CTRL_F_STALE);
        if (h.dst_incarnation) {
            COUNT(ch, s, auth_fail[MV_AUTH_WRONG_DST], 1);
            return MV_AUTH_WRONG_DST;
        }
        return MV_AUTH_OK;
    }
    switch (h.type) {
    case MV_CTRL_ACK:
        COUNT(ch, s, rx_acks, 1);
        process_ack(ch, s, &h, pl, now);
        break;
    case MV_CTRL_KEEPALIVE:
        process_ack(ch, s, &h, pl, now);
        ack_soon(ch, s);
        break;
    case MV_CTRL_DATA:
        process_ack(ch, s, &h, pl, now);
        receive_data(ch, s, &h, pl, now);
        break;
    default:
        break;
    }
    return MV_AUTH_OK;
}

/* ---- timers ---- */

static void session_dead(struct mv_chan *ch, struct session *s)
{
    s->alive = false;
    COUNT(ch, s, peer_deaths, 1);
    fail_pending(ch, s, -EHOSTDOWN);
    peer_event(ch, s, MV_CHAN_PEER_DEAD);
}

static void on_rto(struct mv_chan *ch, struct session *s, uint64_t now)
{
    s->rto_deadline = 0;
    s->tlp_deadline = 0;
    s->reo_deadline = 0;
    /* The RTO's own retransmission may be lost too: probe again after a PTO rather than wait
     * for the doubled RTO (the congestion response below still applies). */
    s->tlp_count = 0;
    unsigned flight = in_flight(s);
    if (s->n_sacked == s->nsent)
        return; /* nothing outstanding that the peer lacks */
    for (unsigned i = 0; i < s->nsent; i++)
        seg_mark_lost(s, seg_at(s, i));
    COUNT(ch, s, rto_expiries, 1);
    if (!s->rto_undo_armed) {
        s->rto_undo_armed = true;
        s->rto_undo_seen = false;
        s->rto_recover = s->snd_una + s->nsent;
        s->undo_cwnd = s->cwnd;
        s->undo_ssthresh = s->ssthresh;
    }
    s->rto_mark_xmit = ch->xmit_counter;
    s->ssthresh = MV_MAX(flight / 2, 2u);
    s->cwnd = 1;
    s->cwnd_acc = 0;
    s->in_recovery = false;
    if (s->backoff < 16)
        s->backoff++; /* exponential backoff */
    try_send(ch, s, now);
    if (!s->rto_deadline)
        s->rto_deadline = now + rto_now(ch, s);
}

/* Tail loss probe: one frame whose ack (with SACK) reveals losses at the tail before the RTO
 * would: new data if the peer's window allows (nothing resent needlessly), else the newest
 * outstanding frame. No congestion response by itself. */
static void on_probe_timeout(struct mv_chan *ch, struct session *s, uint64_t now)
{
    s->tlp_deadline = 0;
    if (!s->nsent)
        return;
    s->tlp_count++;
    /* The RTO counts from the newest probe: it is the last resort once they all went unheard. */
    s->rto_deadline = now + rto_now(ch, s);
    if (s->nsent < s->count && s->nsent < s->peer_window) {
        COUNT(ch, s, tlp_probes, 1);
        transmit_seg(ch, s, seg_at(s, s->nsent), now, true);
        s->nsent++;
        return;
    }
    for (unsigned i = s->nsent; i-- > 0;) {
        struct txseg *g = seg_at(s, i);
        if (!g->sacked) {
            COUNT(ch, s, tlp_probes, 1);
            transmit_seg(ch, s, g, now, true);
            return;
        }
    }
}

static uint64_t probe_deadline(const struct mv_chan *ch, const struct session *s)
{
    uint64_t base = MV_MAX(s->last_rx_ns, s->last_probe_ns);
    return base + (s->alive ? ch->cfg.keepalive_ns : ch->cfg.dead_after_ns);
}

static void chan_tick(struct mv_chan *ch, uint64_t now)
{
    for (unsigned i = 0; i < ch->nsess; i++) {
        struct session *s = ch->sess[i];
        if (s->ack_deadline && now >= s->ack_deadline)
            send_ack(ch, s, 0);
        /* Both due (this process was not scheduled for a while): probe first. The RTO is for
         * a peer that stays silent, and the probe re-arms it. */
        bool probe_first = s->tlp_deadline && s->tlp_deadline <= s->rto_deadline;
        if (s->rto_deadline && now >= s->rto_deadline && !probe_first) {
            on_rto(ch, s, now);
        } else {
            if (s->reo_deadline && now >= s->reo_deadline && rack_detect(ch, s, now)) {
                enter_recovery(ch, s);
                try_send(ch, s, now);
            }
            if (s->tlp_deadline && now >= s->tlp_deadline)
                on_probe_timeout(ch, s, now);
        }
        if (s->alive && now >= s->last_rx_ns + ch->cfg.dead_after_ns)
            session_dead(ch, s);
        if (s->peer_inc && now >= probe_deadline(ch, s))
            send_keepalive(ch, s, now);
        while (s->pend_head && now >= s->pend_head->deadline) {
            COUNT(ch, s, request_timeouts, 1);
            pending_complete(ch, s->pend_head, -ETIMEDOUT, NULL);
        }
    }
}

uint64_t mv_chan_next_deadline(const struct mv_chan *ch)
{
    uint64_t d = UINT64_MAX;
    for (unsigned i = 0; i < ch->nsess; i++) {
        const struct session *s = ch->sess[i];
        if (s->ack_deadline)
            d = MV_MIN(d, s->ack_deadline);
        if (s->rto_deadline)
            d = MV_MIN(d, s->rto_deadline);
        if (s->tlp_deadline)
            d = MV_MIN(d, s->tlp_deadline);
        if (s->reo_deadline)
            d = MV_MIN(d, s->reo_deadline);
        if (s->alive)
            d = MV_MIN(d, s->last_rx_ns + ch->cfg.dead_after_ns);
        if (s->peer_inc)
            d = MV_MIN(d, probe_deadline(ch, s));
        if (s->pend_head)
            d = MV_MIN(d, s->pend_head->deadline);
    }
    return d;
}

/* ---- public operations ---- */

static int chan_add_peer(struct mv_chan *ch, uint64_t node_id, const uint8_t mac[6],
                         uint64_t incarnation, uint64_t now)
{
    if (!node_id || node_id == ch->cfg.node_id)
        return -EINVAL;
    struct session *s = find_session(ch, node_id, NULL);
    if (!s) {
        if (!(s = create_session(ch, node_id, mac, now)))
            return -ENOSPC;
        s->alive = true;
    }
    memcpy(s->mac, mac, 6);
    /* An incarnation claim from outside (a HELLO) was authenticated by the caller's channel;
     * adopting a newer one here is what a frame from it would do. */
    if (incarnation > s->peer_inc) {
        if (s->peer_inc)
            session_restart(ch, s, incarnation);
        else
            session_learn(ch, s, incarnation, now);
    }
    return 0;
}

static struct session *usable_session(struct mv_chan *ch, uint64_t peer, long *err)
{
    struct session *s = find_session(ch, peer, NULL);
    if (!s)
        *err = -EHOSTUNREACH;
    else if (!s->alive)
        *err = -EHOSTDOWN;
    else
        return s;
    return NULL;
}

static int chan_send(struct mv_chan *ch, uint64_t peer_node, uint16_t op, const void *data,
                     size_t len, uint64_t now)
{
    long err;
    struct session *s = usable_session(ch, peer_node, &err);
    if (!s)
        return (int)err;
    if (s->queued_bytes >= ch->cfg.tx_queue_limit)
        return -EAGAIN;
    long rc = queue_message(ch, s, 0, op, 0, 0, data, len, now);
    return rc < 0 ? (int)rc : 0;
}

static long chan_request(struct mv_chan *ch, uint64_t peer_node, uint16_t op, const void *data,
                         size_t len, uint64_t timeout_ns, mv_chan_response_fn cb, void *cb_user,
                         uint64_t now)
{
    long err;
    struct session *s = usable_session(ch, peer_node, &err);
    if (!s)
        return err;
    if (s->queued_bytes >= ch->cfg.tx_queue_limit)
        return -EAGAIN;
    struct pending *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    long id = queue_message(ch, s, MV_CTRL_F_REQUEST, op, 0, 0, data, len, now);
    if (id < 0) {
        free(p);
        return id;
    }
    p->s = s;
    p->req_id = (uint32_t)id;
    p->deadline = now + (timeout_ns ? timeout_ns : ch->cfg.request_timeout_ns);
    p->cb = cb;
    p->user = cb_user;
    unsigned b = bucket_of(s->node, p->req_id);
    p->hnext = ch->buckets[b];
    ch->buckets[b] = p;
    /* Keep the list sorted by deadline; equal timeouts make this an append. */
    struct pending *after = s->pend_tail;
    while (after && after->deadline > p->deadline)
        after = after->prev;
    p->prev = after;
    p->next = after ? after->next : s->pend_head;
    if (p->next)
        p->next->prev = p;
    else
        s->pend_tail = p;
    if (after)
        after->next = p;
    else
        s->pend_head = p;
    s->npending++;
    COUNT(ch, s, requests_sent, 1);
    return id;
}

static int chan_reply(struct mv_chan *ch, struct mv_chan_reply_token tok, int32_t status,
                      const void *data, size_t len, uint64_t now)
{
    struct session *s = find_session(ch, tok.peer_node, NULL);
    if (!s || s->peer_inc != tok.peer_incarnation)
        return -ECONNRESET;
    if (len > MV_CTRL_MAX_MSG)
        return -EMSGSIZE;
    struct resp_cache *e = cache_find(ch, s, tok.req_id);
    if (e) {
        if (e->state == CACHE_ANSWERED)
            return -EALREADY;
        e->state = CACHE_ANSWERED;
        e->status = status;
        if (len <= RESP_CACHE_BYTES && (e->data = malloc(len ? len : 1))) {
            if (len)
                memcpy(e->data, data, len);
            e->len = len;
            e->cached = true;
        }
    }
    /* Replies are not held to the queue limit: each answers a request already accepted. */
    long rc = queue_message(ch, s, MV_CTRL_F_RESPONSE, tok.op, tok.req_id, status, data, len, now);
    if (rc < 0)
        return (int)rc;
    COUNT(ch, s, responses_sent, 1);
    return 0;
}

static int chan_send_hello(struct mv_chan *ch, const void *payload, size_t len, uint64_t now)
{
    struct mv_ctrl_hdr h;
    if (len > mv_ctrl_max_fragment(ch->cfg.mtu))
        return -EMSGSIZE;
    base_header(ch, &h, broadcast_mac, MV_CTRL_HELLO);
    size_t cap;
    uint8_t *buf = out_buf(ch, &cap);
    int flen = mv_ctrl_encode(&h, payload, len, buf, cap);
    if (flen < 0)
        return flen;
    COUNT(ch, (struct session *)NULL, tx_hellos, 1);
    emit(ch, NULL, buf, (size_t)flen);
    return 0;
}

/* Public entry points: the work above, with the output flushed when the outermost call
 * returns (callbacks may re-enter). */
enum mv_auth_cause mv_chan_input(struct mv_chan *ch, const uint8_t *frame, size_t len, uint64_t now)
{
    chan_enter(ch);
    enum mv_auth_cause c = chan_input(ch, frame, len, now);
    chan_leave(ch);
    return c;
}

void mv_chan_tick(struct mv_chan *ch, uint64_t now)
{
    chan_enter(ch);
    chan_tick(ch, now);
    chan_leave(ch);
}

int mv_chan_add_peer(struct mv_chan *ch, uint64_t node_id, const uint8_t mac[6],
                     uint64_t incarnation, uint64_t now)
{
    chan_enter(ch);
    int rc = chan_add_peer(ch, node_id, mac, incarnation, now);
    chan_leave(ch);
    return rc;
}

int mv_chan_send(struct mv_chan *ch, uint64_t peer_node, uint16_t op, const void *data, size_t len,
                 uint64_t now)
{
    chan_enter(ch);
    int rc = chan_send(ch, peer_node, op, data, len, now);
    chan_leave(ch);
    return rc;
}

long mv_chan_request(struct mv_chan *ch, uint64_t peer_node, uint16_t op, const void *data,
                     size_t len, uint64_t timeout_ns, mv_chan_response_fn cb, void *cb_user,
                     uint64_t now)
{
    chan_enter(ch);
    long rc = chan_request(ch, peer_node, op, data, len, timeout_ns, cb, cb_user, now);
    chan_leave(ch);
    return rc;
}

int mv_chan_reply(struct mv_chan *ch, struct mv_chan_reply_token tok, int32_t status,
                  const void *data, size_t len, uint64_t now)
{
    chan_enter(ch);
    int rc = chan_reply(ch, tok, status, data, len, now);
    chan_leave(ch);
    return rc;
}

int mv_chan_send_hello(struct mv_chan *ch, const void *payload, size_t len, uint64_t now)
{
    chan_enter(ch);
    int rc = chan_send_hello(ch, payload, len, now);
    chan_leave(ch);
    return rc;
}

size_t mv_chan_tx_queued(const struct mv_chan *ch, uint64_t peer_node)
{
    const struct session *s = find_session(ch, peer_node, NULL);
    return s ? s->queued_bytes : 0;
}

void mv_chan_get_counters(const struct mv_chan *ch, struct mv_chan_counters *out)
{
    *out = ch->c;
}

int mv_chan_peer_info(const struct mv_chan *ch, uint64_t peer_node, struct mv_chan_peer_info *out)
{
    struct session *s = find_session(ch, peer_node, NULL);
    if (!s)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    out->node_id = s->node;
    memcpy(out->mac, s->mac, 6);
    out->incarnation = s->peer_inc;
    out->alive = s->alive;
    out->last_rx_ns = s->last_rx_ns;
    out->srtt_ns = s->srtt;
    out->rttvar_ns = s->rttvar;
    out->rto_ns = rto_now(ch, s);
    out->cwnd = s->cwnd;
    out->ssthresh = s->ssthresh;
    out->peer_window = s->peer_window;
    out->in_flight = in_flight(s);
    out->tx_queued_bytes = s->queued_bytes;
    out->pending_requests = s->npending;
    out->c = s->c;
    return 0;
}

unsigned mv_chan_peers(const struct mv_chan *ch, uint64_t *nodes, unsigned max)
{
    for (unsigned i = 0; i < ch->nsess && i < max; i++)
        nodes[i] = ch->sess[i]->node;
    return ch->nsess;
}

#define MV_CHAN_COUNTER_FIELDS(X)                                                                  \
    X(tx_frames)                                                                                   \
    X(tx_bytes)                                                                                    \
    X(rx_frames)                                                                                   \
    X(rx_bytes)                                                                                    \
    X(tx_data)                                                                                     \
    X(rx_data)                                                                                     \
    X(tx_acks)                                                                                     \
    X(rx_acks)                                                                                     \
    X(tx_keepalives)                                                                               \
    X(tx_hellos)                                                                                   \
    X(rx_hellos)                                                                                   \
    X(retransmits)                                                                                 \
    X(fast_retransmits)                                                                            \
    X(rto_expiries)                                                                                \
    X(tlp_probes)                                                                                  \
    X(recoveries)                                                                                  \
    X(spurious_rtos)                                                                               \
    X(dup_drops)                                                                                   \
    X(out_of_window)                                                                               \
    X(reassembly_errors)                                                                           \
    X(protocol_errors)                                                                             \
    X(send_errors)                                                                                 \
    X(msgs_sent)                                                                                   \
    X(msgs_delivered)                                                                              \
    X(bytes_delivered)                                                                             \
    X(requests_sent)                                                                               \
    X(requests_executed)                                                                           \
    X(responses_sent)                                                                              \
    X(responses_received)                                                                          \
    X(dup_requests)                                                                                \
    X(request_timeouts)                                                                            \
    X(request_failures)                                                                            \
    X(unmatched_responses)                                                                         \
    X(peer_restarts)                                                                               \
    X(peer_deaths)

struct fmt {
    char *buf;
    size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void fmt_add(struct fmt *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(f->len < f->cap ? f->buf + f->len : NULL,
                      f->len < f->cap ? f->cap - f->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        f->len += (size_t)n;
}

static void format_counters(struct fmt *f, const struct mv_chan_counters *c, bool json,
                            const char *indent)
{
    const char *sep = "";
#define X(name)                                                                                    \
    if (json)                                                                                      \
        fmt_add(f, "%s\"%s\": %" PRIu64, sep, #name, c->name);                                     \
    else                                                                                           \
        fmt_add(f, "%s%s %" PRIu64 "\n", indent, #name, c->name);                                  \
    sep = ", ";
    MV_CHAN_COUNTER_FIELDS(X)
#undef X
    for (int i = 1; i < MV_AUTH_NCAUSES; i++) {
        if (json)
            fmt_add(f, "%s\"auth_fail_%s\": %" PRIu64, sep, mv_auth_cause_name(i), c->auth_fail[i]);
        else
            fmt_add(f, "%sauth_fail_%s %" PRIu64 "\n", indent, mv_auth_cause_name(i),
                    c->auth_fail[i]);
    }
}

int mv_chan_format_counters(const struct mv_chan *ch, char *buf, size_t cap, bool json)
{
    struct fmt f = {buf, cap, 0};
    if (cap)
        buf[0] = 0;
    if (json)
        fmt_add(&f, "{\"node\": %" PRIu64 ", \"incarnation\": %" PRIu64 ", ", ch->cfg.node_id,
                ch->cfg.incarnation);
    format_counters(&f, &ch->c, json, "");
    if (json)
        fmt_add(&f, ", \"peers\": [");
    for (unsigned i = 0; i < ch->nsess; i++) {
        struct mv_chan_peer_info pi;
        mv_chan_peer_info(ch, ch->sess[i]->node, &pi);
        char mac[MV_MAC_STR_LEN];
        mv_mac_format(pi.mac, mac);
        if (json)
            fmt_add(&f,
                    "%s{\"node\": %" PRIu64
                    ", \"mac\": \"%s\", \"alive\": %s, \"srtt_us\": %" PRIu64
                    ", \"rto_us\": %" PRIu64 ", \"cwnd\": %u, \"in_flight\": %u, ",
                    i ? ", " : "", pi.node_id, mac, pi.alive ? "true" : "false", pi.srtt_ns / 1000,
                    pi.rto_ns / 1000, pi.cwnd, pi.in_flight);
        else
            fmt_add(&f,
                    "peer %" PRIu64 " mac %s alive %d srtt_us %" PRIu64 " rto_us %" PRIu64
                    " cwnd %u in_flight %u\n",
                    pi.node_id, mac, pi.alive, pi.srtt_ns / 1000, pi.rto_ns / 1000, pi.cwnd,
                    pi.in_flight);
        format_counters(&f, &pi.c, json, "  ");
        if (json)
            fmt_add(&f, "}");
    }
    if (json)
        fmt_add(&f, "]}");
    return (int)f.len;
}

void mv_chan_destroy(struct mv_chan *ch)
{
    if (!ch)
        return;
    flush_output(ch); /* acks and frames still owed go out */
    ch->depth++;      /* nothing more is sent from here on */
    for (unsigned i = 0; i < ch->nsess; i++)
        fail_pending(ch, ch->sess[i], -ECANCELED);
    for (unsigned i = 0; i < ch->nsess; i++) {
        struct session *s = ch->sess[i];
        reset_transport(ch, s);
        while (s->pend_head) { /* requests queued by cancellation callbacks */
            struct pending *p = s->pend_head;
            pending_unlink(ch, p);
            free(p);
        }
        free(s->ooo);
        free(s->segs);
        free(s->cache);
        free(s);
    }
    free(ch->sess);
    free(ch->burst_buf);
    free(ch);
}
