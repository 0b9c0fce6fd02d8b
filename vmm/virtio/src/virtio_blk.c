/* virtio-blk device model: parses requests off the queue, checks them against the capacity and
 * the read-only flag, hands them to the backend (many in flight) and completes them when the
 * backend reports back. Runs on the transport's I/O thread with the device lock held. */
#include "mv/virtio_blk.h"
#include "mv/virtio_blk_aoe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mv/log.h"
#include "mv/util.h"

#define BLK_CONFIG_SIZE 60u
#define BLK_DEFAULT_QSZ 256u
#define BLK_HDR_LEN     16u
#define BLK_SEG_MAX     (MV_VIRTQ_MAX_SEGS - 2) /* header and status take one each */
#define BLK_DISCARD_SEG 16u                     /* struct virtio_blk_discard_write_zeroes */

struct blk_req {
    struct mv_blk_request br;
    struct mv_virtio_blk *blk;
    uint64_t epoch;
    uint8_t *status; /* guest byte the status goes to */
    uint32_t used_len;
    uint16_t head;
    struct blk_req *next_free;
    struct iovec iov[MV_VIRTQ_MAX_SEGS];
};

struct mv_virtio_blk {
    struct mv_blk_backend backend;
    struct mv_virtio_device device;
    struct mv_virtio_mmio *dev;
    bool read_only;
    char serial[MV_VIRTIO_BLK_ID_BYTES];
    uint8_t config[BLK_CONFIG_SIZE];
    uint16_t queue_size;
    uint64_t epoch; /* bumped by reset: completions of older requests are dropped */
    unsigned inflight;
    bool warned_malformed;
    bool stalled; /* backend was full: resume the queue on completion */
    struct blk_req *free_list;
    struct mv_virtq_chain chain; /* scratch for pop */
    struct mv_virtio_blk_stats stats;
};

static void blk_stat_add(uint64_t *counter, uint64_t v)
{
    __atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

static struct blk_req *blk_req_get(struct mv_virtio_blk *blk)
{
    struct blk_req *r = blk->free_list;
    if (r != NULL) {
        blk->free_list = r->next_free;
        return r;
    }
    return malloc(sizeof(*r)); /* grows to the queue depth, then recycles */
}

static void blk_req_put(struct mv_virtio_blk *blk, struct blk_req *r)
{
    r->next_free = blk->free_list;
    blk->free_list = r;
}

/* Completes a request on the used ring (interrupts are batched by the caller). */
static void blk_finish(struct mv_virtio_blk *blk, struct mv_virtq *vq, uint16_t head,
                       uint8_t *status, uint8_t value, uint32_t used_len)
{
    if (status != NULL)
        __atomic_store_n(status, value, __ATOMIC_RELAXED);
    if (value != MV_VIRTIO_BLK_S_OK)
        blk_stat_add(&blk->stats.errors, 1);
    mv_virtq_push(vq, head, used_len);
}

/* iov covering [offset, offset + len) of the chain's segments from first..first+count. */
static unsigned blk_slice_iov(const struct mv_virtq_chain *c, unsigned first, unsigned count,
                              uint64_t offset, uint64_t len, struct iovec *out)
{
    unsigned n = 0;
    for (unsigned s = first; s < first + count && len > 0; s++) {
        uint64_t seg = c->iov[s].iov_len;
        if (offset >= seg) {
            offset -= seg;
            continue;
        }
        uint64_t take = MV_MIN(seg - offset, len);
        out[n].iov_base = (uint8_t *)c->iov[s].iov_base + offset;
        out[n].iov_len = take;
        n++;
        len -= take;
        offset = 0;
    }
    return n;
}

static bool blk_range_ok(const struct mv_virtio_blk *blk, uint64_t sector, uint64_t bytes)
{
    uint64_t cap_sectors = blk->backend.capacity / MV_BLK_SECTOR_SIZE;
    uint64_t nsect = bytes / MV_BLK_SECTOR_SIZE;
    return sector <= cap_sectors && nsect <= cap_sectors - sector;
}

/* 1: submitted (or completed inline); 0: backend full, chain must be retried. */
static int blk_handle_chain(struct mv_virtio_blk *blk, struct mv_virtq *vq,
                            const struct mv_virtq_chain *c)
{
    struct {
        uint32_t type;
        uint32_t reserved;
        uint64_t sector;
    } hdr;
    /* The status byte is the last byte of the last writable segment. */
    uint8_t *status = NULL;
    if (c->n_in > 0) {
        const struct iovec *last = &c->iov[c->n_out + c->n_in - 1];
        status = (uint8_t *)last->iov_base + last->iov_len - 1;
    }
    if (c->out_bytes < BLK_HDR_LEN || status == NULL) {
        if (!blk->warned_malformed) /* once: a guest must not be able to flood the log */
            mv_warn("virtio-blk: malformed request (header %" PRIu64 " bytes, %u writable)",
                    c->out_bytes, c->n_in);
        blk->warned_malformed = true;
        blk_finish(blk, vq, c->head, status, MV_VIRTIO_BLK_S_IOERR, status ? 1 : 0);
        return 1;
    }
    mv_virtq_chain_copy_out(c, 0, &hdr, sizeof(hdr));
    uint64_t out_data = c->out_bytes - BLK_HDR_LEN;
    uint64_t in_data = c->in_bytes - 1;

    struct blk_req *r = NULL;
    enum mv_blk_op op;
    uint64_t offset = 0, len = 0;
    unsigned iovcnt = 0;
    struct iovec *iov = NULL;

    switch (hdr.type) {
    case MV_VIRTIO_BLK_T_IN:
    case MV_VIRTIO_BLK_T_OUT: {
        bool is_read = hdr.type == MV_VIRTIO_BLK_T_IN;
        len = is_read ? in_data : out_data;
        if (len % MV_BLK_SECTOR_SIZE != 0 || !blk_range_ok(blk, hdr.sector, len) ||
            (!is_read && blk->read_only) || len > UINT32_MAX) {
            blk_finish(blk, vq, c->head, status, MV_VIRTIO_BLK_S_IOERR, 1);
            return 1;
        }
        op = is_read ? MV_BLK_OP_READ : MV_BLK_OP_WRITE;
        offset = hdr.sector * MV_BLK_SECTOR_SIZE;
        r = blk_req_get(blk);
        if (r == NULL)
            return 0;
        iov = r->iov;
        iovcnt = is_read ? blk_slice_iov(c, c->n_out, c->n_in, 0, len, iov)
                         : blk_slice_iov(c, 0, c->n_out, BLK_HDR_LEN, len, iov);
        r->used_len = (uint32_t)(is_read ? len + 1 : 1);
        break;
    }
    case MV_VIRTIO_BLK_T_FLUSH:
        op = MV_BLK_OP_FLUSH;
        r = blk_req_get(blk);
        if (r == NULL)
            return 0;
        r->used_len = 1;
        break;
    case MV_VIRTIO_BLK_T_GET_ID: {
        uint64_t n = MV_MIN(in_data, (uint64_t)MV_VIRTIO_BLK_ID_BYTES);
        struct iovec id_iov[MV_VIRTQ_MAX_SEGS];
        unsigned cnt = blk_slice_iov(c, c->n_out, c->n_in, 0, n, id_iov);
        uint64_t done = 0;
        for (unsigned i = 0; i < cnt; i++) {
            memcpy(id_iov[i].iov_base, blk->serial + done, id_iov[i].iov_len);
            done += id_iov[i].iov_len;
        }
        blk_finish(blk, vq, c->head, status, MV_VIRTIO_BLK_S_OK, (uint32_t)n + 1);
        return 1;
    }
    case MV_VIRTIO_BLK_T_DISCARD:
    case MV_VIRTIO_BLK_T_WRITE_ZEROES: {
        bool discard = hdr.type == MV_VIRTIO_BLK_T_DISCARD;
        if ((discard && !blk->backend.discard) || (!discard && !blk->backend.write_zeroes)) {
            blk_finish(blk, vq, c->head, status, MV_VIRTIO_BLK_S_UNSUPP, 1);
            return 1;
        }
        struct {
            uint64_t sector;
            uint32_t num_sectors;
            uint32_t flags;
        } seg;
        /* We advertise one segment per request. */
        if (out_data != BLK_DISCARD_SEG || blk->read_only) {
            blk_finish(blk, vq, c->head, status, MV_VIRTIO_BLK_S_IOERR, 1);
            return 1;
        }
        mv_virtq_chain_copy_out(c, BLK_HDR_LEN, &seg, sizeof(seg));
        len = (uint64_t)seg.num_sectors * MV_BLK_SECTOR_SIZE;
        if ((seg.flags & ~1u) != 0 || (discard && seg.flags != 0) ||
            !blk_range_ok(blk, seg.sector, len)) {
            blk_finish(blk, vq, c->head, status,
                       (seg.flags & ~1u) ? MV_VIRTIO_BLK_S_UNSUPP : MV_VIRTIO_BLK_S_IOERR, 1);
            return 1;
        }
        op = discard ? MV_BLK_OP_DISCARD : MV_BLK_OP_WRITE_ZEROES;
        offset = seg.sector * MV_BLK_SECTOR_SIZE;
        r = blk_req_get(blk);
        if (r == NULL)
            return 0;
        r->used_len = 1;
        break;
    }
    default:
        blk_finish(blk, vq, c->head, status, MV_VIRTIO_BLK_S_UNSUPP, 1);
        return 1;
    }

    r->br = (struct mv_blk_request){
        .op = op, .offset = offset, .len = len, .iov = iov, .iovcnt = iovcnt, .opaque = r};
    r->blk = blk;
    r->epoch = blk->epoch;
    r->status = status;
    r->head = c->head;
    int rc = blk->backend.ops->submit(blk->backend.be, &r->br);
    if (rc == -EAGAIN) {
        blk_req_put(blk, r);
        return 0;
    }
    if (rc != 0) {
        blk_req_put(blk, r);
        blk_finish(blk, vq, c->head, status, MV_VIRTIO_BLK_S_IOERR, 1);
        return 1;
    }
    blk->inflight++;
    return 1;
}

static void blk_done(struct mv_blk_request *br, int64_t result, void *done_ctx)
{
    struct mv_virtio_blk *blk = done_ctx;
    struct blk_req *r = br->opaque;
    blk->inflight--;
    struct mv_virtq *vq = blk->dev ? mv_virtio_mmio_queue(blk->dev, 0) : NULL;
    if (r->epoch == blk->epoch && vq != NULL) {
        bool ok = result >= 0 && (br->op == MV_BLK_OP_FLUSH || br->op == MV_BLK_OP_DISCARD ||
                                  br->op == MV_BLK_OP_WRITE_ZEROES || (uint64_t)result == br->len);
        if (ok && br->op == MV_BLK_OP_READ) {
            blk_stat_add(&blk->stats.reads, 1);
            blk_stat_add(&blk->stats.read_bytes, br->len);
        } else if (ok && br->op == MV_BLK_OP_WRITE) {
            blk_stat_add(&blk->stats.writes, 1);
            blk_stat_add(&blk->stats.written_bytes, br->len);
        } else if (ok && br->op == MV_BLK_OP_FLUSH) {
            blk_stat_add(&blk->stats.flushes, 1);
        }
        blk_finish(blk, vq, r->head, r->status, ok ? MV_VIRTIO_BLK_S_OK : MV_VIRTIO_BLK_S_IOERR,
                   ok ? r->used_len : 1);
    }
    blk_req_put(blk, r);
}

static void blk_process_queue(struct mv_virtio_blk *blk);

static void blk_reap(struct mv_virtio_blk *blk)
{
    if (blk->backend.ops->complete(blk->backend.be, blk_done, blk) > 0 && blk->dev != NULL)
        mv_virtio_mmio_notify_used(blk->dev, 0);
}

static void blk_backend_event(void *ctx)
{
    struct mv_virtio_blk *blk = ctx;
    blk_reap(blk);
    if (blk->stalled) {
        blk->stalled = false;
        blk_process_queue(blk);
    }
}

static void blk_process_queue(struct mv_virtio_blk *blk)
{
    struct mv_virtq *vq = mv_virtio_mmio_queue(blk->dev, 0);
    if (vq == NULL)
        return;
    unsigned completed_inline = 0;
    for (;;) {
        mv_virtq_disable_notify(vq);
        int rc;
        while ((rc = mv_virtq_pop(vq, &blk->chain)) == 1) {
            uint16_t used_before = vq->used_idx;
            if (blk_handle_chain(blk, vq, &blk->chain) == 0) {
                mv_virtq_unpop(vq);
                blk->stalled = true;
                break;
            }
            completed_inline += (uint16_t)(vq->used_idx - used_before);
        }
        blk->backend.ops->flush(blk->backend.be);
        if (rc < 0 || blk->stalled)
            break;
        if (!mv_virtq_enable_notify(vq))
            break;
    }
    if (blk->stalled)
        mv_virtq_enable_notify(vq);
    if (blk->backend.ops->event_fd(blk->backend.be) < 0)
        blk_reap(blk); /* synchronous backend: everything finished already */
    if (completed_inline > 0)
        mv_virtio_mmio_notify_used(blk->dev, 0);
}

static int blk_attach(void *ctx, struct mv_virtio_mmio *dev)
{
    struct mv_virtio_blk *blk = ctx;
    blk->dev = dev;
    int efd = blk->backend.ops->event_fd(blk->backend.be);
    if (efd >= 0)
        return mv_virtio_mmio_watch_fd(dev, efd, blk_backend_event, blk);
    return 0;
}

static void blk_config_read(void *ctx, uint32_t offset, void *data, uint32_t len)
{
    struct mv_virtio_blk *blk = ctx;
    memcpy(data, blk->config + offset, len); /* the transport checked the range */
}

static void blk_config_write(void *ctx, uint32_t offset, const void *data, uint32_t len)
{
    /* writeback (CONFIG_WCE) is not offered: config space is read-only */
}

static void blk_queue_notify(void *ctx, uint16_t q)
{
    if (q == 0)
        blk_process_queue(ctx);
}

static void blk_reset(void *ctx)
{
    struct mv_virtio_blk *blk = ctx;
    blk->epoch++;
    blk->stalled = false;
}

static const struct mv_virtio_device_ops blk_ops = {
    .attach = blk_attach,
    .config_read = blk_config_read,
    .config_write = blk_config_write,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
};

static void put_le32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

struct mv_virtio_blk *mv_virtio_blk_create(const struct mv_virtio_blk_params *p)
{
    if (p->backend.ops == NULL || p->backend.capacity % MV_BLK_SECTOR_SIZE != 0) {
        mv_err("virtio-blk: invalid backend");
        return NULL;
    }
    uint16_t qsz = p->queue_size ? p->queue_size : BLK_DEFAULT_QSZ;
    if (qsz > MV_VIRTQ_MAX_SIZE || (qsz & (qsz - 1)) != 0) {
        mv_err("virtio-blk: queue size %u not a power of two <= %u", qsz, MV_VIRTQ_MAX_SIZE);
        return NULL;
    }
    struct mv_virtio_blk *blk = calloc(1, sizeof(*blk));
    if (blk == NULL)
        return NULL;
    blk->backend = p->backend;
    blk->read_only = p->read_only || p->backend.read_only;
    blk->queue_size = qsz;
    const char *serial = p->serial ? p->serial : "mvkvm";
    memcpy(blk->serial, serial, MV_MIN(strlen(serial), sizeof(blk->serial)));

    uint64_t cap_sectors = blk->backend.capacity / MV_BLK_SECTOR_SIZE;
    memcpy(blk->config + 0, &cap_sectors, 8);
    put_le32(blk->config + 12, BLK_SEG_MAX);
    put_le32(blk->config + 20, blk->backend.block_size ? blk->backend.block_size : 512);
    put_le32(blk->config + 36, UINT32_MAX / MV_BLK_SECTOR_SIZE); /* max_discard_sectors */
    put_le32(blk->config + 40, 1);                               /* max_discard_seg */
    put_le32(blk->config + 44, 1);                               /* discard alignment */
    put_le32(blk->config + 48, UINT32_MAX / MV_BLK_SECTOR_SIZE); /* max_write_zeroes_sectors */
    put_le32(blk->config + 52, 1);                               /* max_write_zeroes_seg */
    blk->config[56] = 0;                                         /* write_zeroes_may_unmap */

    uint64_t features = MV_VIRTIO_BLK_F_SEG_MAX | MV_VIRTIO_BLK_F_BLK_SIZE | MV_VIRTIO_BLK_F_FLUSH |
                        MV_VIRTIO_F_INDIRECT_DESC | MV_VIRTIO_F_EVENT_IDX;
    if (blk->read_only)
        features |= MV_VIRTIO_BLK_F_RO;
    if (blk->backend.discard && !blk->read_only)
        features |= MV_VIRTIO_BLK_F_DISCARD;
    if (blk->backend.write_zeroes && !blk->read_only)
        features |= MV_VIRTIO_BLK_F_WRITE_ZEROES;
    blk->device = (struct mv_virtio_device){
        .device_id = MV_VIRTIO_ID_BLOCK,
        .features = features,
        .config_size = BLK_CONFIG_SIZE,
        .num_queues = 1,
        .queue_max = qsz,
        .ops = &blk_ops,
        .ctx = blk,
    };
    return blk;
}

const struct mv_virtio_device *mv_virtio_blk_device(struct mv_virtio_blk *blk)
{
    return &blk->device;
}

void mv_virtio_blk_destroy(struct mv_virtio_blk *blk)
{
    if (blk == NULL)
        return;
    /* The transport is gone: let in-flight requests finish so their buffers stay owned. */
    blk->dev = NULL;
    int efd = blk->backend.ops->event_fd(blk->backend.be);
    for (int tries = 0; blk->inflight > 0 && tries < 500; tries++) {
        if (blk->backend.ops->complete(blk->backend.be, blk_done, blk) == 0 && efd >= 0)
            mv_sleep_ns(10 * 1000 * 1000);
    }
    mv_blk_backend_close(&blk->backend);
    while (blk->free_list != NULL) {
        struct blk_req *r = blk->free_list;
        blk->free_list = r->next_free;
        free(r);
    }
    free(blk);
}

/* "aoe:SHELF.SLOT,..." (mv/virtio_blk_aoe.h) -> libmvblk backend + device. */
static struct mv_virtio_blk *blk_create_from_aoe_spec(const char *spec)
{
    struct mv_blk_aoe_spec s;
    char err[512];
    if (mv_blk_aoe_spec_parse(spec, &s, err, sizeof(err)) != 0) {
        mv_err("virtio-blk: disk spec '%s': %s", spec, err);
        return NULL;
    }
    struct mv_virtio_blk_params p = {.read_only = s.read_only};
    char target_serial[MV_BLK_AOE_SERIAL_MAX + 1] = "";
    if (mv_blk_aoe_backend_open(&s, &p.backend, target_serial, err, sizeof(err)) != 0) {
        mv_err("virtio-blk: disk '%s': %s", spec, err);
        return NULL;
    }
    p.serial = s.serial[0] ? s.serial : (target_serial[0] ? target_serial : NULL);
    mv_info("virtio-blk: disk '%s': AoE target %u.%u, %" PRIu64 " sectors%s", spec, s.shelf, s.slot,
            p.backend.capacity / MV_BLK_SECTOR_SIZE, s.read_only ? ", read-only" : "");
    struct mv_virtio_blk *blk = mv_virtio_blk_create(&p); /* serial is copied */
    if (blk == NULL)
        mv_blk_backend_close(&p.backend);
    return blk;
}

struct mv_virtio_blk *mv_virtio_blk_create_from_spec(const char *spec)
{
    if (mv_blk_aoe_spec_is_aoe(spec))
        return blk_create_from_aoe_spec(spec);
    char buf[4096];
    if (spec == NULL || strlen(spec) >= sizeof(buf)) {
        mv_err("virtio-blk: disk spec missing or too long");
        return NULL;
    }
    strcpy(buf, spec);
    struct mv_virtio_blk_params p = {0};
    bool ro = false, direct = true;
    char *save = NULL;
    char *path = strtok_r(buf, ",", &save);
    if (path == NULL || *path == '\0') {
        mv_err("virtio-blk: disk spec '%s' has no path", spec);
        return NULL;
    }
    for (char *opt = strtok_r(NULL, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
        if (strcmp(opt, "ro") == 0) {
            ro = true;
        } else if (strncmp(opt, "serial=", 7) == 0) {
            p.serial = opt + 7;
        } else if (strncmp(opt, "direct=", 7) == 0) {
            if (mv_parse_bool(opt + 7, &direct) != 0) {
                mv_err("virtio-blk: disk spec '%s': bad direct= value", spec);
                return NULL;
            }
        } else {
            mv_err("virtio-blk: disk spec '%s': unknown option '%s' (ro, serial=, direct=)", spec,
                   opt);
            return NULL;
        }
    }
    if (mv_blk_file_backend_open(path, ro, direct, 128, &p.backend) != 0)
        return NULL;
    p.read_only = ro;
    struct mv_virtio_blk *blk = mv_virtio_blk_create(&p); /* serial is copied */
    if (blk == NULL)
        mv_blk_backend_close(&p.backend);
    return blk;
}

void mv_virtio_blk_get_stats(struct mv_virtio_blk *blk, struct mv_virtio_blk_stats *out)
{
    out->reads = __atomic_load_n(&blk->stats.reads, __ATOMIC_RELAXED);
    out->writes = __atomic_load_n(&blk->stats.writes, __ATOMIC_RELAXED);
    out->flushes = __atomic_load_n(&blk->stats.flushes, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&blk->stats.errors, __ATOMIC_RELAXED);
    out->read_bytes = __atomic_load_n(&blk->stats.read_bytes, __ATOMIC_RELAXED);
    out->written_bytes = __atomic_load_n(&blk->stats.written_bytes, __ATOMIC_RELAXED);
}
