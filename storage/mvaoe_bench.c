/* mvaoe bench: an fio-like load generator on libmvblk's asynchronous API (fio itself cannot
 * drive libmvblk here: Debian ships no fio headers for an external ioengine, docs/storage.md),
 * and mvaoe reflect: a null AoE target giving the frame-rate limit of a link. */
#include "mvaoe_bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/daemon.h"
#include "mv/port.h"
#include "mv/util.h"

int mvaoe_parse_rw(const char *s, enum mvaoe_rw *out)
{
    static const char *const names[] = {"randread", "randwrite", "read", "write"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum mvaoe_rw)i;
            return 0;
        }
    }
    return -EINVAL;
}

struct bench_slot {
    struct mvblk_req req; /* first: the completion finds its slot from the request */
    uint8_t *buf;
    uint64_t start_ns;
    bool busy;
};

struct bench_state {
    uint64_t ios, errors, lat_sum_ns;
    int first_error;
};

static void bench_done(struct mvblk_req *req, int status)
{
    struct bench_slot *s = (struct bench_slot *)req;
    struct bench_state *st = req->priv;
    s->busy = false;
    if (status) {
        if (!st->first_error)
            st->first_error = status;
        st->errors++;
        return;
    }
    st->ios++;
    st->lat_sum_ns += mv_now_ns() - s->start_ns;
}

/* xorshift64*: cheap, and the same offsets for the same seed on every target. */
static uint64_t next_random(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dull;
}

int mvaoe_bench_run(struct mvblk *b, struct mvblk_dev *dev, const struct mvaoe_bench_opts *o)
{
    static const char *const names[] = {"randread", "randwrite", "read", "write"};
    uint64_t dev_bytes = mvblk_dev_sectors(dev) * AOE_SECTOR_SIZE;
    uint64_t size = o->size ? o->size : dev_bytes - MV_MIN(o->offset, dev_bytes);
    if (o->bs == 0 || o->bs % AOE_SECTOR_SIZE || o->offset % AOE_SECTOR_SIZE ||
        o->offset + size > dev_bytes || size < o->bs) {
        fprintf(stderr,
                "mvaoe: bench: region %llu+%llu with bs %u does not fit the device "
                "(%llu bytes)\n",
                (unsigned long long)o->offset, (unsigned long long)size, o->bs,
                (unsigned long long)dev_bytes);
        return 2;
    }
    uint64_t blocks = size / o->bs, seq = 0, rnd = o->seed ? o->seed : 1;
    bool write = o->rw == MVAOE_RANDWRITE || o->rw == MVAOE_WRITE;
    bool random = o->rw == MVAOE_RANDREAD || o->rw == MVAOE_RANDWRITE;
    struct bench_slot *slots = calloc(o->iodepth, sizeof *slots);
    if (!slots)
        return 1;
    for (unsigned i = 0; i < o->iodepth; i++) {
        slots[i].buf = aligned_alloc(4096, (o->bs + 4095) / 4096 * 4096);
        if (!slots[i].buf) {
            fprintf(stderr, "mvaoe: bench: out of memory\n");
            for (unsigned j = 0; j < i; j++)
                free(slots[j].buf);
            free(slots);
            return 1;
        }
        memset(slots[i].buf, 0x5a ^ (int)i, o->bs); /* not zeros: no target shortcut */
    }
    struct bench_state st = {0};
    struct mvblk_dev_stats before, after;
    mvblk_dev_get_stats(dev, &before);
    uint64_t start = mv_now_ns(), end = start + (uint64_t)(o->runtime_s * 1e9);
    int rc = 0;
    for (;;) {
        uint64_t now = mv_now_ns();
        bool any_busy = false;
        for (unsigned i = 0; i < o->iodepth; i++) {
            struct bench_slot *s = &slots[i];
            if (!s->busy && now < end && !st.errors) {
                uint64_t blk = random ? next_random(&rnd) % blocks : seq++ % blocks;
                s->req = (struct mvblk_req){.op = write ? MVBLK_WRITE : MVBLK_READ,
                                            .lba = (o->offset + blk * o->bs) / AOE_SECTOR_SIZE,
                                            .count = o->bs / AOE_SECTOR_SIZE,
                                            .buf = s->buf,
                                            .done = bench_done,
                                            .priv = &st};
                s->start_ns = now;
                rc = mvblk_submit(dev, &s->req);
                if (rc < 0)
                    break;
                s->busy = true;
            }
            any_busy |= s->busy;
        }
        if (rc < 0 || !any_busy)
            break;
        rc = mvblk_poll(b, 100);
        if (rc < 0)
            break;
        rc = 0;
    }
    double secs = (double)(mv_now_ns() - start) / 1e9;
    mvblk_dev_get_stats(dev, &after);
    if (rc == 0 && st.first_error)
        rc = st.first_error;
    if (rc < 0) {
        fprintf(stderr, "mvaoe: bench: %s\n", strerror(-rc));
    } else {
        printf("bench: rw=%s bs=%u iodepth=%u runtime=%.2f ios=%llu iops=%.0f MiBps=%.1f "
               "MBps=%.1f lat_us=%.1f retransmits=%llu\n",
               names[o->rw], o->bs, o->iodepth, secs, (unsigned long long)st.ios,
               (double)st.ios / secs, (double)st.ios * o->bs / 1048576.0 / secs,
               (double)st.ios * o->bs / 1e6 / secs,
               st.ios ? (double)st.lat_sum_ns / (double)st.ios / 1000.0 : 0.0,
               (unsigned long long)(after.retransmits - before.retransmits));
    }
    for (unsigned i = 0; i < o->iodepth; i++)
        free(slots[i].buf);
    free(slots);
    return rc < 0 ? 1 : 0;
}

/* ---- null target ---- */

#define REFLECT_BATCH 64

struct reflector {
    struct mv_port *port;
    uint8_t mac[6];
    uint16_t shelf;
    uint8_t slot;
    uint64_t sectors;
    unsigned spf;
    uint8_t identify[512];
    uint8_t (*txbuf)[MV_ETH_MAX_FRAME];
    struct mv_frame tx[REFLECT_BATCH];
    unsigned ntx;
};

static void put_word(uint8_t *id, int word, uint16_t v)
{
    id[2 * word] = (uint8_t)v;
    id[2 * word + 1] = (uint8_t)(v >> 8);
}

static void put_string(uint8_t *id, int word, int nwords, const char *s)
{
    size_t n = strlen(s);
    for (int i = 0; i < 2 * nwords; i++) {
        char c = (size_t)i < n ? s[i] : ' ';
        id[2 * word + (i ^ 1)] = (uint8_t)c; /* ATA strings swap each byte pair */
    }
}

static void reflect_flush(struct reflector *r)
{
    unsigned sent = 0;
    for (int tries = 0; sent < r->ntx && tries < 1000; tries++) {
        int rc = mv_port_send(r->port, r->tx + sent, r->ntx - sent);
        if (rc < 0)
            break;
        sent += (unsigned)rc;
    }
    r->ntx = 0;
}

static void reflect_frame(struct reflector *r, const uint8_t *frame, size_t len)
{
    static const uint8_t zeros[255 * AOE_SECTOR_SIZE];
    struct aoe_msg req, rep;
    if (aoe_frame_parse(frame, len, &req, NULL) != 0 || (req.flags & AOE_FLAG_RESPONSE))
        return;
    if ((req.major != r->shelf && req.major != AOE_SHELF_ANY) ||
        (req.minor != r->slot && req.minor != AOE_SLOT_ANY))
        return;
    aoe_msg_init_reply(&rep, &req, r->mac);
    rep.major = r->shelf;
    rep.minor = r->slot;
    if (req.cmd == AOE_CMD_CONFIG) {
        if (req.u.cfg.ccmd != AOE_CCMD_READ)
            return;
        rep.u.cfg = (struct aoe_cfg){.buffer_count = 1024,
                                     .firmware = 0x4000,
                                     .sector_count = (uint8_t)r->spf,
                                     .aoe_ver = AOE_VERSION,
                                     .ccmd = AOE_CCMD_READ};
    } else if (req.cmd == AOE_CMD_ATA) {
        const struct aoe_ata *a = &req.u.ata;
        rep.u.ata = (struct aoe_ata){.aflags = a->aflags,
                                     .sector_count = a->sector_count,
                                     .cmd_status = 0x40, /* DRDY */
                                     .lba = a->lba};
        if (a->cmd_status == 0xec) { /* IDENTIFY DEVICE */
            rep.u.ata.data = r->identify;
            rep.u.ata.data_len = sizeof r->identify;
        } else if (a->cmd_status == 0x24 || a->cmd_status == 0x20) { /* READ (EXT) */
            if (a->sector_count > r->spf)
                return;
            rep.u.ata.data = zeros;
            rep.u.ata.data_len = (size_t)a->sector_count * AOE_SECTOR_SIZE;
        } /* WRITE (EXT), FLUSH: a bare success */
    } else {
        return;
    }
    if (r->ntx == REFLECT_BATCH)
        reflect_flush(r);
    size_t n = aoe_frame_build(&rep, r->txbuf[r->ntx], MV_ETH_MAX_FRAME);
    if (!n)
        return;
    r->tx[r->ntx] = (struct mv_frame){.data = r->txbuf[r->ntx], .len = (uint32_t)n};
    r->ntx++;
}

int mvaoe_reflect_run(const char *ifname, uint16_t shelf, uint8_t slot, uint64_t sectors)
{
    struct reflector r = {.shelf = shelf, .slot = slot, .sectors = sectors};
    char err[256];
    struct mv_port_config pc = {.kind = MV_PORT_PACKET,
                                .ifname = ifname,
                                .ethertypes = {MV_ETHERTYPE_AOE},
                                .n_ethertypes = 1,
                                .low_latency = true};
    if (mv_port_open(&pc, &r.port, err, sizeof err) != 0) {
        fprintf(stderr, "mvaoe: reflect: %s\n", err);
        return 1;
    }
    r.txbuf = malloc(REFLECT_BATCH * sizeof *r.txbuf);
    if (!r.txbuf) {
        mv_port_close(r.port);
        return 1;
    }
    memcpy(r.mac, mv_port_mac(r.port), 6);
    r.spf = aoe_max_sectors_for_mtu(mv_port_mtu(r.port));
    put_word(r.identify, 49, 0x0200); /* LBA */
    put_word(r.identify, 83, 0x4400); /* LBA48 */
    put_word(r.identify, 60, (uint16_t)MV_MIN(sectors, 0x0fffffffu));
    put_word(r.identify, 61, (uint16_t)(MV_MIN(sectors, 0x0fffffffu) >> 16));
    for (int i = 0; i < 4; i++)
        put_word(r.identify, 100 + i, (uint16_t)(sectors >> (16 * i)));
    put_string(r.identify, 10, 10, "reflect");
    put_string(r.identify, 27, 20, "mvaoe null target");
    mv_daemon_handle_signals();
    fprintf(stderr, "mvaoe: reflect: serving e%u.%u on %s (%llu sectors)\n", shelf, slot, ifname,
            (unsigned long long)sectors);
    while (!mv_daemon_stop_requested()) {
        if (mv_port_wait(r.port, 200) <= 0)
            continue;
        struct mv_frame rx[REFLECT_BATCH];
        int n = mv_port_recv(r.port, rx, REFLECT_BATCH);
        for (int i = 0; i < n; i++)
            reflect_frame(&r, rx[i].data, rx[i].len);
        if (n > 0)
            mv_port_recv_done(r.port);
        reflect_flush(&r);
    }
    free(r.txbuf);
    mv_port_close(r.port);
    return 0;
}
