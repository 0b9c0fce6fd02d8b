/* libmvblk: AoE initiator (mv/mvblk.h).
 *
 * Tags: data frames carry (slot << 16 | generation) with bit 31 clear, so a reply finds its frame
 * in O(1) and a late reply to a recycled slot is recognised by the generation; synchronous
 * control exchanges (discovery, identify, mask, reserve) set bit 31.
 *
 * Congestion control follows the Linux aoe driver's idea: a window of frames in flight per target
 * that grows by one per answered frame up to ssthresh (slow start), then by one per window, and
 * is halved (at most once per RTT) when a frame times out; never above the target's buffer count.
 * The retransmission timeout is srtt + 4 * rttvar (RFC 6298), sampled only from frames sent once
 * (Karn), doubled per retransmission of a frame. */
#include "mv/mvblk.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "mv/log.h"
#include "mv/util.h"

#define MAX_FRAMES        4096 /* frame slots per initiator (tag bits 16..30) */
#define TX_BATCH          64
#define RX_BATCH          64
#define CTL_TAG_BIT       0x80000000u
#define NO_SLOT           UINT32_MAX
#define ATA_CMD_READ_EXT  0x24
#define ATA_CMD_WRITE_EXT 0x34
#define ATA_CMD_FLUSH_EXT 0xea
#define ATA_CMD_FLUSH     0xe7
#define ATA_ERR_ABRT      0x04
#define ATA_CMD_IDENTIFY  0xec
#define ATA_BAD_STATUS    0xa9 /* BSY | DF | DRQ | ERR */
#define ATA_ERR_IDNF      0x10

struct frame {
    struct mvblk_dev *dev;
    struct mvblk_req *req; /* NULL when the slot is free */
    uint64_t lba;
    uint32_t count, buf_off;
    uint8_t ata_cmd;
    uint16_t gen;
    unsigned retries;
    uint64_t first_ns, sent_ns, deadline_ns;
    uint32_t prev, next; /* in-flight list of the initiator, or free list (next) */
};

struct mvblk_dev {
    struct mvblk *b;
    struct mvblk_target_info target;
    uint64_t sectors;
    char model[41], serial[21];
    unsigned spf; /* sectors per frame */
    unsigned max_inflight;
    unsigned inflight;
    unsigned cwnd, ssthresh, acks_in_window;
    uint64_t srtt_ns, rttvar_ns, rto_ns, last_reduce_ns;
    bool have_rtt, failed, no_flush_logged;
    struct mvblk_req *head, *tail; /* submitted, not fully issued */
    struct mvblk_dev_stats stats;
    struct mvblk_dev *next_dev;
};

struct mvblk {
    struct mvblk_config cfg;
    struct mv_port *port;
    uint8_t mac[6];
    unsigned mtu;
    struct frame frames[MAX_FRAMES];
    uint32_t free_head;
    uint32_t busy_head;   /* in-flight list */
    unsigned outstanding; /* requests submitted, not completed */
    struct mvblk_dev *devs;
    /* transmit staging */
    uint8_t (*txbuf)[MV_ETH_MAX_FRAME];
    struct mv_frame tx[TX_BATCH];
    unsigned ntx;
    /* control exchanges */
    uint32_t ctl_seq;
    uint32_t ctl_tag; /* awaited tag, 0 = none */
    bool ctl_collect; /* discovery: keep collecting */
    struct mvblk_target_info *disc_out;
    unsigned disc_max, disc_n;
    unsigned disc_stop;      /* end the discovery once this many answered (0 = wait it out) */
    const uint8_t *disc_mac; /* only answers from this MAC (NULL = any) */
    uint8_t *ctl_buf;
    size_t ctl_len;
    bool ctl_done;
    /* completions */
    struct mvblk_req *done_head, *done_tail;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int mvblk_open(const struct mvblk_config *cfg, struct mvblk **out, char *err, size_t errlen)
{
    struct mvblk *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->cfg = *cfg;
    if (!b->cfg.dead_ms)
        b->cfg.dead_ms = 10000;
    if (!b->cfg.min_rto_us)
        b->cfg.min_rto_us = 5000;
    if (!b->cfg.max_rto_us)
        b->cfg.max_rto_us = 500000;
    b->txbuf = malloc(TX_BATCH * sizeof *b->txbuf);
    b->ctl_buf = malloc(MV_ETH_MAX_FRAME);
    if (!b->txbuf || !b->ctl_buf) {
        free(b->txbuf);
        free(b->ctl_buf);
        free(b);
        return -ENOMEM;
    }
    if (cfg->kind == MV_PORT_UNIX) {
        if (cfg->mac) {
            memcpy(b->mac, cfg->mac, 6);
        } else {
            if (getrandom(b->mac, 6, 0) != 6)
                memset(b->mac, 0x24, 6);
            b->mac[0] = (uint8_t)((b->mac[0] & 0xfe) | 0x02);
        }
    }
    struct mv_port_config pc = {.kind = cfg->kind,
                                .ifname = cfg->ifname,
                                .unix_path = cfg->unix_path,
                                .unix_mac = b->mac,
                                .ethertypes = {MV_ETHERTYPE_AOE},
                                .n_ethertypes = 1,
                                .low_latency = cfg->low_latency};
    int rc = mv_port_open(&pc, &b->port, err, errlen);
    if (rc < 0) {
        free(b->txbuf);
        free(b->ctl_buf);
        free(b);
        return rc;
    }
    memcpy(b->mac, mv_port_mac(b->port), 6);
    b->mtu = mv_port_mtu(b->port);
    b->free_head = 0;
    for (uint32_t i = 0; i < MAX_FRAMES; i++)
        b->frames[i].next = i + 1 < MAX_FRAMES ? i + 1 : NO_SLOT;
    b->busy_head = NO_SLOT;
    b->ctl_seq = 1;
    *out = b;
    return 0;
}

int mvblk_fd(const struct mvblk *b)
{
    return mv_port_fd(b->port);
}

const uint8_t *mvblk_mac(const struct mvblk *b)
{
    return b->mac;
}

unsigned mvblk_outstanding(const struct mvblk *b)
{
    return b->outstanding;
}

/* ---- transmit ---- */

static void tx_flush(struct mvblk *b)
{
    unsigned sent = 0;
    for (int tries = 0; sent < b->ntx && tries < 1000; tries++) {
        int rc = mv_port_send(b->port, b->tx + sent, b->ntx - sent);
        if (rc < 0)
            break; /* lost frames are retransmitted */
        sent += (unsigned)rc;
    }
    b->ntx = 0;
}

static uint8_t *tx_slot(struct mvblk *b)
{
    if (b->ntx == TX_BATCH)
        tx_flush(b);
    return b->txbuf[b->ntx];
}

static void tx_commit(struct mvblk *b, size_t len)
{
    b->tx[b->ntx] = (struct mv_frame){.data = b->txbuf[b->ntx], .len = (uint32_t)len};
    b->ntx++;
}

static void fill_header(struct mvblk *b, struct aoe_msg *m, const uint8_t dst[6], uint16_t shelf,
                        uint8_t slot, uint8_t cmd, uint32_t tag)
{
    memcpy(m->dst, dst, 6);
    memcpy(m->src, b->mac, 6);
    m->ver = AOE_VERSION;
    m->flags = 0;
    m->error = 0;
    m->major = shelf;
    m->minor = slot;
    m->cmd = cmd;
    m->tag = tag;
}

static void send_data_frame(struct mvblk *b, uint32_t slot)
{
    struct frame *f = &b->frames[slot];
    struct mvblk_dev *dev = f->dev;
    struct aoe_msg m;
    fill_header(b, &m, dev->target.mac, dev->target.shelf, dev->target.slot, AOE_CMD_ATA,
                slot << 16 | f->gen);
    bool write = f->ata_cmd == ATA_CMD_WRITE_EXT;
    m.u.ata = (struct aoe_ata){
        .aflags = (uint8_t)(AOE_AFLAG_EXT | (write ? AOE_AFLAG_WRITE : 0)),
        .sector_count = (uint8_t)f->count,
        .cmd_status = f->ata_cmd,
        .lba = f->lba,
        .data = write ? (const uint8_t *)f->req->buf + f->buf_off : NULL,
        .data_len = write ? (size_t)f->count * AOE_SECTOR_SIZE : 0,
    };
    uint8_t *buf = tx_slot(b);
    size_t len = aoe_frame_build(&m, buf, MV_ETH_MAX_FRAME);
    if (len)
        tx_commit(b, len);
    uint64_t now = mv_now_ns();
    f->sent_ns = now;
    f->deadline_ns = now + (dev->rto_ns << MV_MIN(f->retries, 6u));
    dev->stats.frames_sent++;
}

/* ---- frame slots ---- */

static uint32_t slot_alloc(struct mvblk *b)
{
    uint32_t s = b->free_head;
    if (s == NO_SLOT)
        return NO_SLOT;
    struct frame *f = &b->frames[s];
    b->free_head = f->next;
    f->prev = NO_SLOT;
    f->next = b->busy_head;
    if (b->busy_head != NO_SLOT)
        b->frames[b->busy_head].prev = s;
    b->busy_head = s;
    f->gen++;
    return s;
}

static void slot_free(struct mvblk *b, uint32_t s)
{
    struct frame *f = &b->frames[s];
    if (f->prev != NO_SLOT)
        b->frames[f->prev].next = f->next;
    else
        b->busy_head = f->next;
    if (f->next != NO_SLOT)
        b->frames[f->next].prev = f->prev;
    f->req = NULL;
    f->dev = NULL;
    f->next = b->free_head;
    b->free_head = s;
}

/* ---- requests ---- */

static void req_finish_frame(struct mvblk *b, struct mvblk_req *req, int status)
{
    if (status && !req->status_)
        req->status_ = status;
    if (--req->frames_left_ == 0 && req->issued_ == MV_MAX(req->count, 1u)) {
        req->next_ = NULL;
        if (b->done_tail)
            b->done_tail->next_ = req;
        else
            b->done_head = req;
        b->done_tail = req;
    }
}

static int run_completions(struct mvblk *b)
{
    int n = 0;
    while (b->done_head) {
        struct mvblk_req *req = b->done_head;
        b->done_head = req->next_;
        if (!b->done_head)
            b->done_tail = NULL;
        b->outstanding--;
        n++;
        if (req->done)
            req->done(req, req->status_);
    }
    return n;
}

static unsigned window(const struct mvblk_dev *dev)
{
    return MV_MIN(dev->cwnd, dev->max_inflight);
}

/* Issues frames of queued requests while the window has room. */
static void pump(struct mvblk *b, struct mvblk_dev *dev)
{
    while (dev->head && !dev->failed && dev->inflight < window(dev)) {
        struct mvblk_req *req = dev->head;
        if (req->op == MVBLK_FLUSH && dev->inflight > 0)
            break; /* a flush waits for the writes before it */
        uint32_t s = slot_alloc(b);
        if (s == NO_SLOT)
            break;
        struct frame *f = &b->frames[s];
        f->dev = dev;
        f->req = req;
        f->retries = 0;
        f->first_ns = mv_now_ns();
        if (req->op == MVBLK_FLUSH) {
            f->ata_cmd = ATA_CMD_FLUSH_EXT;
            f->lba = 0;
            f->count = 0;
            req->issued_ = 1;
        } else {
            uint32_t n = MV_MIN(req->count - req->issued_, dev->spf);
            f->ata_cmd = req->op == MVBLK_WRITE ? ATA_CMD_WRITE_EXT : ATA_CMD_READ_EXT;
            f->lba = req->lba + req->issued_;
            f->count = n;
            f->buf_off = req->issued_ * AOE_SECTOR_SIZE;
            req->issued_ += n;
        }
        req->frames_left_++;
        dev->inflight++;
        send_data_frame(b, s);
        if (req->issued_ == MV_MAX(req->count, 1u)) {
            dev->head = req->next_;
            if (!dev->head)
                dev->tail = NULL;
        }
    }
}

static void pump_all(struct mvblk *b)
{
    for (struct mvblk_dev *d = b->devs; d; d = d->next_dev)
        pump(b, d);
    tx_flush(b);
}

int mvblk_submit(struct mvblk_dev *dev, struct mvblk_req *req)
{
    if (dev->failed)
        return -ETIMEDOUT;
    if (req->op != MVBLK_FLUSH) {
        if (req->count == 0 || !req->buf || (req->op != MVBLK_READ && req->op != MVBLK_WRITE))
            return -EINVAL;
        if (req->lba > dev->sectors || req->count > dev->sectors - req->lba)
            return -ERANGE;
    }
    req->dev_ = dev;
    req->next_ = NULL;
    req->issued_ = 0;
    req->frames_left_ = 0;
    req->status_ = 0;
    if (dev->tail)
        dev->tail->next_ = req;
    else
        dev->head = req;
    dev->tail = req;
    dev->b->outstanding++;
    pump(dev->b, dev);
    tx_flush(dev->b);
    return 0;
}

/* Fails everything a device has in flight or queued. */
static void fail_dev(struct mvblk *b, struct mvblk_dev *dev, int status)
{
    dev->failed = true;
    for (uint32_t s = b->busy_head, next; s != NO_SLOT; s = next) {
        next = b->frames[s].next;
        if (b->frames[s].dev != dev)
            continue;
        struct mvblk_req *req = b->frames[s].req;
        slot_free(b, s);
        dev->inflight--;
        req_finish_frame(b, req, status);
    }
    while (dev->head) {
        struct mvblk_req *req = dev->head;
        dev->head = req->next_;
        req->issued_ = MV_MAX(req->count, 1u);
        req->frames_left_++;
        req_finish_frame(b, req, status);
    }
    dev->tail = NULL;
}

/* ---- RTT and window ---- */

static void rtt_sample(struct mvblk *b, struct mvblk_dev *dev, uint64_t rtt)
{
    if (!dev->have_rtt) {
        dev->srtt_ns = rtt;
        dev->rttvar_ns = rtt / 2;
        dev->have_rtt = true;
    } else {
        uint64_t err = rtt > dev->srtt_ns ? rtt - dev->srtt_ns : dev->srtt_ns - rtt;
        dev->rttvar_ns = (3 * dev->rttvar_ns + err) / 4;
        dev->srtt_ns = (7 * dev->srtt_ns + rtt) / 8;
    }
    uint64_t rto = dev->srtt_ns + 4 * dev->rttvar_ns;
    dev->rto_ns =
        MV_MIN(MV_MAX(rto, (uint64_t)b->cfg.min_rto_us * 1000), (uint64_t)b->cfg.max_rto_us * 1000);
}

static void window_grow(struct mvblk_dev *dev)
{
    if (dev->cwnd >= dev->max_inflight)
        return;
    if (dev->cwnd < dev->ssthresh) {
        dev->cwnd++;
    } else if (++dev->acks_in_window >= dev->cwnd) {
        dev->acks_in_window = 0;
        dev->cwnd++;
    }
}

static void window_loss(struct mvblk_dev *dev, uint64_t now)
{
    if (now - dev->last_reduce_ns < dev->srtt_ns)
        return; /* one reduction per round trip */
    dev->last_reduce_ns = now;
    dev->ssthresh = MV_MAX(dev->cwnd / 2, 2u);
    dev->cwnd = dev->ssthresh;
    dev->acks_in_window = 0;
}

/* ---- receive ---- */

static int aoe_status(uint8_t error)
{
    switch (error) {
    case AOE_ERR_RESERVED:
        return -EACCES;
    case AOE_ERR_UNAVAILABLE:
        return -ENODEV;
    default:
        return -EIO;
    }
}

static void handle_data_reply(struct mvblk *b, const struct aoe_msg *m)
{
    uint32_t s = (m->tag >> 16) & 0x7fff;
    if (s >= MAX_FRAMES)
        return;
    struct frame *f = &b->frames[s];
    if (!f->req || f->gen != (m->tag & 0xffff))
        return; /* late duplicate */
    struct mvblk_dev *dev = f->dev;
    if (memcmp(m->src, dev->target.mac, 6) != 0 || m->major != dev->target.shelf ||
        m->minor != dev->target.slot || m->cmd != AOE_CMD_ATA)
        return;
    int status = 0;
    if (m->flags & AOE_FLAG_ERROR) {
        status = aoe_status(m->error);
    } else if ((m->u.ata.cmd_status & ATA_BAD_STATUS) && f->ata_cmd == ATA_CMD_FLUSH_EXT &&
               (m->u.ata.err_feature & ATA_ERR_ABRT)) {
        /* FLUSH CACHE EXT unsupported (vblade): try the 28-bit FLUSH CACHE. */
        f->ata_cmd = ATA_CMD_FLUSH;
        f->retries = 0;
        send_data_frame(b, s);
        return;
    } else if ((m->u.ata.cmd_status & ATA_BAD_STATUS) && f->ata_cmd == ATA_CMD_FLUSH &&
               (m->u.ata.err_feature & ATA_ERR_ABRT)) {
        /* No flush command at all: a target without a volatile write cache. */
        if (!dev->no_flush_logged)
            mv_info("AoE target %u.%u does not implement FLUSH CACHE; writes are taken as durable",
                    dev->target.shelf, dev->target.slot);
        dev->no_flush_logged = true;
    } else if (m->u.ata.cmd_status & ATA_BAD_STATUS) {
        status = (m->u.ata.err_feature & ATA_ERR_IDNF) ? -ERANGE : -EIO;
    } else if (f->ata_cmd == ATA_CMD_READ_EXT) {
        size_t n = (size_t)f->count * AOE_SECTOR_SIZE;
        if (m->u.ata.data_len < n)
            return; /* truncated: let it time out and retransmit */
        memcpy((uint8_t *)f->req->buf + f->buf_off, m->u.ata.data, n);
    }
    uint64_t now = mv_now_ns();
    if (f->retries == 0)
        rtt_sample(b, dev, now - f->sent_ns);
    window_grow(dev);
    struct mvblk_req *req = f->req;
    slot_free(b, s);
    dev->inflight--;
    dev->stats.frames_done++;
    if (status)
        dev->stats.errors++;
    req_finish_frame(b, req, status);
}

static void handle_ctl_reply(struct mvblk *b, const uint8_t *frame, size_t len,
                             const struct aoe_msg *m)
{
    if (m->tag != b->ctl_tag)
        return;
    if (b->ctl_collect) {
        if (m->cmd != AOE_CMD_CONFIG || (m->flags & AOE_FLAG_ERROR))
            return;
        for (unsigned i = 0; i < b->disc_n; i++) /* one entry per target and MAC */
            if (b->disc_out[i].shelf == m->major && b->disc_out[i].slot == m->minor &&
                memcmp(b->disc_out[i].mac, m->src, 6) == 0)
                return;
        if (b->disc_mac && memcmp(m->src, b->disc_mac, 6) != 0)
            return;
        if (b->disc_n == b->disc_max)
            return;
        struct mvblk_target_info *t = &b->disc_out[b->disc_n++];
        memset(t, 0, sizeof *t);
        memcpy(t->mac, m->src, 6);
        t->shelf = m->major;
        t->slot = m->minor;
        t->buffer_count = m->u.cfg.buffer_count;
        t->firmware = m->u.cfg.firmware;
        t->sectors_per_frame = m->u.cfg.sector_count;
        t->cfg_len = m->u.cfg.cfg_len;
        memcpy(t->cfg, m->u.cfg.cfg, m->u.cfg.cfg_len);
        t->cfg[t->cfg_len] = 0;
        if (b->disc_stop && b->disc_n >= b->disc_stop)
            b->ctl_done = true; /* ctl_exchange() returns at once */
        return;
    }
    memcpy(b->ctl_buf, frame, len);
    b->ctl_len = len;
    b->ctl_done = true;
}

static void receive(struct mvblk *b)
{
    struct mv_frame rx[RX_BATCH];
    for (int round = 0; round < 8; round++) {
        int n = mv_port_recv(b->port, rx, RX_BATCH);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            struct aoe_msg m;
            if (aoe_frame_parse(rx[i].data, rx[i].len, &m, NULL) != 0 ||
                !(m.flags & AOE_FLAG_RESPONSE) || memcmp(m.dst, b->mac, 6) != 0)
                continue;
            if (m.tag & CTL_TAG_BIT)
                handle_ctl_reply(b, rx[i].data, rx[i].len, &m);
            else
                handle_data_reply(b, &m);
        }
        mv_port_recv_done(b->port);
    }
}

/* Retransmits frames past their deadline; fails targets silent for the dead time. */
static void check_timeouts(struct mvblk *b)
{
    uint64_t now = mv_now_ns();
    uint64_t dead_ns = (uint64_t)b->cfg.dead_ms * 1000000;
    for (uint32_t s = b->busy_head, next; s != NO_SLOT; s = next) {
        struct frame *f = &b->frames[s];
        next = f->next;
        if (now < f->deadline_ns)
            continue;
        struct mvblk_dev *dev = f->dev;
        if (now - f->first_ns >= dead_ns) {
            mv_warn("AoE target %u.%u: no answer for %u ms, failing it", dev->target.shelf,
                    dev->target.slot, b->cfg.dead_ms);
            fail_dev(b, dev, -ETIMEDOUT);
            next = b->busy_head; /* the list changed under us */
            continue;
        }
        window_loss(dev, now);
        f->retries++;
        dev->stats.retransmits++;
        send_data_frame(b, s);
    }
}

uint64_t mvblk_next_deadline_ns(const struct mvblk *b)
{
    if (b->done_head)
        return 0;
    uint64_t soonest = UINT64_MAX;
    for (uint32_t s = b->busy_head; s != NO_SLOT; s = b->frames[s].next)
        soonest = MV_MIN(soonest, b->frames[s].deadline_ns);
    return soonest;
}

int mvblk_next_timeout_ms(const struct mvblk *b)
{
    uint64_t soonest = mvblk_next_deadline_ns(b), now = mv_now_ns();
    if (soonest == UINT64_MAX)
        return -1;
    if (soonest <= now)
        return 0;
    uint64_t ms = (soonest - now + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static int next_timeout_ms(const struct mvblk *b, int timeout_ms)
{
    int ms = mvblk_next_timeout_ms(b);
    if (ms < 0)
        return timeout_ms;
    return timeout_ms < 0 ? ms : MV_MIN(ms, timeout_ms);
}

int mvblk_poll(struct mvblk *b, int timeout_ms)
{
    int done = run_completions(b);
    if (done)
        timeout_ms = 0;
    int wait = next_timeout_ms(b, timeout_ms);
    struct pollfd pfd = {.fd = mv_port_fd(b->port), .events = POLLIN};
    int rc = poll(&pfd, 1, wait);
    if (rc < 0 && errno != EINTR)
        return -errno;
    receive(b);
    check_timeouts(b);
    pump_all(b);
    return done + run_completions(b);
}

/* ---- control exchanges ---- */

/* Sends the frame built by build() every retry_ms until a reply with its tag arrives (or, when
 * collecting, until wait_ms ends). Data traffic keeps flowing meanwhile. */
static int ctl_exchange(struct mvblk *b, struct aoe_msg *req, unsigned wait_ms, unsigned retry_ms,
                        bool collect)
{
    b->ctl_tag = CTL_TAG_BIT | (b->ctl_seq++ & 0x7fffffff);
    req->tag = b->ctl_tag;
    b->ctl_collect = collect;
    b->ctl_done = false;
    uint64_t end = mv_now_ns() + (uint64_t)wait_ms * 1000000, next_send = 0;
    int rc = -ETIMEDOUT;
    for (;;) {
        uint64_t now = mv_now_ns();
        if (b->ctl_done) {
            rc = 0;
            break;
        }
        if (now >= end) {
            rc = collect ? 0 : -ETIMEDOUT;
            break;
        }
        if (now >= next_send) {
            size_t len = aoe_frame_build(req, tx_slot(b), MV_ETH_MAX_FRAME);
            if (!len) {
                rc = -EINVAL;
                break;
            }
            tx_commit(b, len);
            tx_flush(b);
            next_send = now + (uint64_t)retry_ms * 1000000;
        }
        uint64_t until = MV_MIN(end, next_send);
        int r = mvblk_poll(b, (int)((until - now + 999999) / 1000000));
        if (r < 0) {
            rc = r;
            break;
        }
    }
    b->ctl_tag = 0;
    b->ctl_collect = false;
    return rc;
}

static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* Query Config broadcast collecting answers into out; ends after wait_ms or, with stop > 0, as
 * soon as stop answers (from mac, when given) arrived. */
static int discover(struct mvblk *b, uint16_t shelf, uint8_t slot, const uint8_t *mac,
                    unsigned wait_ms, unsigned retry_ms, unsigned stop,
                    struct mvblk_target_info *out, unsigned max)
{
    struct aoe_msg m;
    memset(&m, 0, sizeof m);
    fill_header(b, &m, bcast, shelf, slot, AOE_CMD_CONFIG, 0);
    m.u.cfg.ccmd = AOE_CCMD_READ;
    b->disc_out = out;
    b->disc_max = max;
    b->disc_n = 0;
    b->disc_stop = stop;
    b->disc_mac = mac;
    int rc = ctl_exchange(b, &m, wait_ms, retry_ms, true);
    b->disc_out = NULL;
    b->disc_stop = 0;
    b->disc_mac = NULL;
    return rc < 0 ? rc : (int)b->disc_n;
}

int mvblk_discover(struct mvblk *b, uint16_t shelf, uint8_t slot, unsigned wait_ms,
                   struct mvblk_target_info *out, unsigned max)
{
    /* One resend half way covers a lost broadcast or answer. */
    return discover(b, shelf, slot, NULL, wait_ms, MV_MAX(wait_ms / 2, 1u), 0, out, max);
}

int mvblk_exchange(struct mvblk_dev *dev, struct aoe_msg *req, struct aoe_msg *reply,
                   uint8_t *replybuf, unsigned timeout_ms)
{
    struct mvblk *b = dev->b;
    fill_header(b, req, dev->target.mac, dev->target.shelf, dev->target.slot, req->cmd, 0);
    for (int attempt = 0; attempt < 3; attempt++) {
        int rc = ctl_exchange(b, req, timeout_ms, MV_MIN(200u, MV_MAX(timeout_ms / 4, 1u)), false);
        if (rc < 0)
            return rc;
        if (aoe_frame_parse(b->ctl_buf, b->ctl_len, reply, NULL) == 0) {
            memcpy(replybuf, b->ctl_buf, b->ctl_len);
            /* Re-point the parsed message into the caller's copy. */
            return aoe_frame_parse(replybuf, b->ctl_len, reply, NULL);
        }
    }
    return -EPROTO;
}

static void ata_string(char *out, const uint8_t *id, int word, int nwords)
{
    for (int i = 0; i < nwords; i++) {
        out[2 * i] = (char)id[2 * (word + i) + 1];
        out[2 * i + 1] = (char)id[2 * (word + i)];
    }
    out[2 * nwords] = 0;
    for (int i = 2 * nwords - 1; i >= 0 && out[i] == ' '; i--)
        out[i] = 0;
}

int mvblk_attach(struct mvblk *b, uint16_t shelf, uint8_t slot, unsigned timeout_ms, unsigned flags,
                 struct mvblk_dev **out, char *err, size_t errlen)
{
    return mvblk_attach_mac(b, shelf, slot, NULL, timeout_ms, flags, out, err, errlen);
}

int mvblk_attach_mac(struct mvblk *b, uint16_t shelf, uint8_t slot, const uint8_t mac[6],
                     unsigned timeout_ms, unsigned flags, struct mvblk_dev **out, char *err,
                     size_t errlen)
{
    struct mvblk_target_info found;
    unsigned wait = MV_MAX(timeout_ms, 1u);
    int n = discover(b, shelf, slot, mac, wait, MV_MIN(MV_MAX(wait / 4, 1u), 250u), 1, &found, 1);
    if (n <= 0) {
        if (mac) {
            char m[MV_MAC_STR_LEN];
            mv_mac_format(mac, m);
            set_err(err, errlen, "AoE target %u.%u at %s did not answer Query Config", shelf, slot,
                    m);
        } else {
            set_err(err, errlen, "AoE target %u.%u did not answer Query Config", shelf, slot);
        }
        return n < 0 ? n : -ENOENT;
    }
    struct mvblk_dev *dev = calloc(1, sizeof *dev);
    if (!dev)
        return -ENOMEM;
    dev->b = b;
    dev->target = found;
    unsigned spf = aoe_max_sectors_for_mtu(b->mtu);
    /* Some targets (vblade) advertise 0: the MTU decides then. */
    if (found.sectors_per_frame)
        spf = MV_MIN(spf, found.sectors_per_frame);
    dev->spf = spf ? spf : 1;
    unsigned bufcnt = found.buffer_count ? found.buffer_count : 16;
    dev->max_inflight = b->cfg.max_inflight ? MV_MIN(b->cfg.max_inflight, bufcnt) : bufcnt;
    dev->cwnd = MV_MIN(4u, dev->max_inflight);
    dev->ssthresh = dev->max_inflight;
    dev->rto_ns = 50ull * 1000000; /* until the first sample */
    dev->next_dev = b->devs;
    b->devs = dev;
    if (flags & MVBLK_ATTACH_NO_IDENTIFY) {
        *out = dev;
        return 0;
    }

    struct aoe_msg req, rep;
    memset(&req, 0, sizeof req);
    req.cmd = AOE_CMD_ATA;
    req.u.ata = (struct aoe_ata){.sector_count = 1, .cmd_status = ATA_CMD_IDENTIFY};
    uint8_t *buf = malloc(MV_ETH_MAX_FRAME);
    int rc = buf ? mvblk_exchange(dev, &req, &rep, buf, timeout_ms) : -ENOMEM;
    if (rc == 0 && ((rep.flags & AOE_FLAG_ERROR) || (rep.u.ata.cmd_status & ATA_BAD_STATUS) ||
                    rep.u.ata.data_len < 512)) {
        rc = (rep.flags & AOE_FLAG_ERROR) ? aoe_status(rep.error) : -EIO;
        set_err(err, errlen, "AoE target %u.%u: IDENTIFY DEVICE failed (%s)", shelf, slot,
                (rep.flags & AOE_FLAG_ERROR) ? aoe_error_name(rep.error) : "ATA error");
    } else if (rc < 0) {
        set_err(err, errlen, "AoE target %u.%u: IDENTIFY DEVICE: %s", shelf, slot, strerror(-rc));
    }
    if (rc == 0) {
        const uint8_t *id = rep.u.ata.data;
#define WORD(i) ((uint64_t)(id[2 * (i)] | id[2 * (i) + 1] << 8))
        if (WORD(83) & 0x0400)
            dev->sectors = WORD(100) | WORD(101) << 16 | WORD(102) << 32 | WORD(103) << 48;
        else
            dev->sectors = WORD(60) | WORD(61) << 16;
#undef WORD
        ata_string(dev->serial, id, 10, 10);
        ata_string(dev->model, id, 27, 20);
    }
    free(buf);
    if (rc < 0) {
        mvblk_detach(dev);
        return rc;
    }
    *out = dev;
    return 0;
}

void mvblk_detach(struct mvblk_dev *dev)
{
    struct mvblk *b = dev->b;
    fail_dev(b, dev, -ENODEV);
    run_completions(b);
    for (struct mvblk_dev **p = &b->devs; *p; p = &(*p)->next_dev) {
        if (*p == dev) {
            *p = dev->next_dev;
            break;
        }
    }
    free(dev);
}

void mvblk_close(struct mvblk *b)
{
    if (!b)
        return;
    while (b->devs)
        mvblk_detach(b->devs);
    mv_port_close(b->port);
    free(b->txbuf);
    free(b->ctl_buf);
    free(b);
}

uint64_t mvblk_dev_sectors(const struct mvblk_dev *dev)
{
    return dev->sectors;
}

const char *mvblk_dev_model(const struct mvblk_dev *dev)
{
    return dev->model;
}

const char *mvblk_dev_serial(const struct mvblk_dev *dev)
{
    return dev->serial;
}

const struct mvblk_target_info *mvblk_dev_target(const struct mvblk_dev *dev)
{
    return &dev->target;
}

bool mvblk_dev_failed(const struct mvblk_dev *dev)
{
    return dev->failed;
}

void mvblk_dev_get_stats(const struct mvblk_dev *dev, struct mvblk_dev_stats *out)
{
    *out = dev->stats;
    out->inflight = dev->inflight;
    out->cwnd = dev->cwnd;
    out->ssthresh = dev->ssthresh;
    out->max_inflight = dev->max_inflight;
    out->sectors_per_frame = dev->spf;
    out->srtt_us = (uint32_t)(dev->srtt_ns / 1000);
    out->rttvar_us = (uint32_t)(dev->rttvar_ns / 1000);
    out->rto_us = (uint32_t)(dev->rto_ns / 1000);
}

/* ---- synchronous wrappers ---- */

static void sync_done(struct mvblk_req *req, int status)
{
    int *result = req->priv;
    *result = status;
}

static int run_sync(struct mvblk_dev *dev, struct mvblk_req *req)
{
    int result = 1;
    req->done = sync_done;
    req->priv = &result;
    int rc = mvblk_submit(dev, req);
    if (rc < 0)
        return rc;
    while (result == 1) {
        rc = mvblk_poll(dev->b, 1000);
        if (rc < 0)
            return rc;
    }
    return result;
}

int mvblk_read(struct mvblk_dev *dev, uint64_t lba, void *buf, uint32_t count)
{
    struct mvblk_req req = {.op = MVBLK_READ, .lba = lba, .count = count, .buf = buf};
    return run_sync(dev, &req);
}

int mvblk_write(struct mvblk_dev *dev, uint64_t lba, const void *buf, uint32_t count)
{
    struct mvblk_req req = {.op = MVBLK_WRITE, .lba = lba, .count = count, .buf = (void *)buf};
    return run_sync(dev, &req);
}

int mvblk_flush(struct mvblk_dev *dev)
{
    struct mvblk_req req = {.op = MVBLK_FLUSH};
    return run_sync(dev, &req);
}
