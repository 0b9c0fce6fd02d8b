/* AoE r11 target: request frame -> reply frames (mv/aoe_target.h). */
#include "mv/aoe_target.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/log.h"
#include "mv/util.h"

#define FIRMWARE_VERSION 0x0100

struct export
{
    struct mv_drive *drive;
    int replica;
    bool live; /* still mapped after the last refresh */
    char vdisk_id[MV_VDISK_ID_LEN];
    uint16_t shelf;
    uint8_t slot;
    uint64_t sectors;
    uint16_t cfg_len;
    uint8_t cfg[AOE_MAX_CFG_LEN];
    unsigned n_mask;
    uint8_t mask[AOE_TARGET_MAX_MASK][6];
    unsigned n_resv;
    uint8_t resv[AOE_TARGET_MAX_RESV][6];
};

struct aoe_target {
    struct aoe_target_config cfg;
    unsigned sectors_per_frame;
    struct mv_drive *drives[AOE_TARGET_MAX_DRIVES];
    unsigned n_drives;
    struct export *exports;
    unsigned n_exports, cap_exports;
    struct aoe_target_stats stats;
    bool async;
};

int aoe_target_create(const struct aoe_target_config *cfg, struct aoe_target **out)
{
    struct aoe_target *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->cfg = *cfg;
    if (!t->cfg.mtu)
        t->cfg.mtu = 1500;
    if (!t->cfg.buffer_count)
        t->cfg.buffer_count = 64;
    t->sectors_per_frame = aoe_max_sectors_for_mtu(t->cfg.mtu);
    if (t->sectors_per_frame == 0) {
        free(t);
        return -EINVAL;
    }
    *out = t;
    return 0;
}

void aoe_target_destroy(struct aoe_target *t)
{
    if (!t)
        return;
    free(t->exports);
    free(t);
}

int aoe_target_add_drive(struct aoe_target *t, struct mv_drive *d)
{
    if (t->n_drives == AOE_TARGET_MAX_DRIVES)
        return -ENOSPC;
    t->drives[t->n_drives++] = d;
    return aoe_target_refresh(t);
}

void aoe_target_remove_drive(struct aoe_target *t, struct mv_drive *d)
{
    for (unsigned i = 0; i < t->n_drives; i++) {
        if (t->drives[i] == d) {
            t->drives[i] = t->drives[--t->n_drives];
            break;
        }
    }
    aoe_target_refresh(t);
}

static struct export *find_export(struct aoe_target *t, struct mv_drive *d, const char *vdisk_id)
{
    for (unsigned i = 0; i < t->n_exports; i++)
        if (t->exports[i].drive == d && strcmp(t->exports[i].vdisk_id, vdisk_id) == 0)
            return &t->exports[i];
    return NULL;
}

int aoe_target_refresh(struct aoe_target *t)
{
    for (unsigned i = 0; i < t->n_exports; i++)
        t->exports[i].live = false;
    for (unsigned di = 0; di < t->n_drives; di++) {
        struct mv_drive *d = t->drives[di];
        for (unsigned r = 0; r < mv_drive_max_replicas(d); r++) {
            struct mv_replica_info info;
            if (mv_drive_replica_info(d, (int)r, &info) != 0 || !info.mapped)
                continue;
            struct export *e = find_export(t, d, info.vdisk_id);
            if (e && (e->shelf != info.shelf || e->slot != info.slot))
                e->n_mask = e->n_resv = e->cfg_len = 0; /* a new address is a new target */
            if (!e) {
                if (t->n_exports == t->cap_exports) {
                    unsigned cap = t->cap_exports ? t->cap_exports * 2 : 8;
                    struct export *n = realloc(t->exports, cap * sizeof *n);
                    if (!n)
                        return -ENOMEM;
                    t->exports = n;
                    t->cap_exports = cap;
                }
                e = &t->exports[t->n_exports++];
                memset(e, 0, sizeof *e);
                e->drive = d;
                memcpy(e->vdisk_id, info.vdisk_id, MV_VDISK_ID_LEN);
            }
            e->replica = (int)r;
            e->shelf = info.shelf;
            e->slot = info.slot;
            e->sectors = info.size_bytes / AOE_SECTOR_SIZE;
            e->live = true;
        }
    }
    unsigned w = 0;
    for (unsigned i = 0; i < t->n_exports; i++)
        if (t->exports[i].live)
            t->exports[w++] = t->exports[i];
    t->n_exports = w;
    return 0;
}

unsigned aoe_target_count(const struct aoe_target *t)
{
    return t->n_exports;
}

unsigned aoe_target_sectors_per_frame(const struct aoe_target *t)
{
    return t->sectors_per_frame;
}

void aoe_target_get_stats(const struct aoe_target *t, struct aoe_target_stats *out)
{
    *out = t->stats;
}

static bool mac_in(const uint8_t (*list)[6], unsigned n, const uint8_t mac[6])
{
    for (unsigned i = 0; i < n; i++)
        if (memcmp(list[i], mac, 6) == 0)
            return true;
    return false;
}

static bool addressed(const struct export *e, const struct aoe_msg *m)
{
    return (m->major == AOE_SHELF_ANY || m->major == e->shelf) &&
           (m->minor == AOE_SLOT_ANY || m->minor == e->slot);
}

static size_t build_error(struct aoe_target *t, const struct aoe_msg *req, const struct export *e,
                          uint8_t error, struct aoe_target_reply *r)
{
    struct aoe_msg rep;
    aoe_msg_init_reply(&rep, req, t->cfg.mac);
    if (e) {
        rep.major = e->shelf;
        rep.minor = e->slot;
    }
    rep.flags |= AOE_FLAG_ERROR;
    rep.error = error;
    t->stats.aoe_errors++;
    return aoe_frame_build(&rep, r->buf, r->cap);
}

/* ATA strings: space padded, the two bytes of each word swapped. */
static void ata_string(uint16_t *words, const char *s, size_t nwords)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < nwords; i++) {
        uint8_t hi = 2 * i < len ? (uint8_t)s[2 * i] : ' ';
        uint8_t lo = 2 * i + 1 < len ? (uint8_t)s[2 * i + 1] : ' ';
        words[i] = (uint16_t)(hi << 8 | lo);
    }
}

static void ata_identify(const struct aoe_target *t, const struct export *e, uint8_t *out)
{
    uint16_t id[256];
    memset(id, 0, sizeof id);
    char serial[21] = {0};
    memcpy(serial, e->vdisk_id, MV_MIN(strlen(e->vdisk_id), sizeof serial - 1));
    id[0] = 0x0040; /* fixed device */
    id[1] = 16383;
    id[3] = 16;
    id[6] = 63;
    ata_string(&id[10], serial, 10);
    ata_string(&id[23], MV_VERSION, 4);
    ata_string(&id[27], "MVKVM AoE vdisk", 20);
    id[47] = 0x8000 | (t->sectors_per_frame & 0xff);
    id[49] = 0x0300; /* LBA and DMA */
    id[53] = 0x0006;
    uint64_t lba28 = MV_MIN(e->sectors, 0x0fffffffull);
    id[60] = (uint16_t)lba28;
    id[61] = (uint16_t)(lba28 >> 16);
    id[80] = 0x00f0; /* ATA/ATAPI-4..7 */
    id[82] = 0x4000;
    id[83] = 0x4000 | 0x2000 | 0x1000 | 0x0400; /* FLUSH EXT, FLUSH, 48-bit */
    id[84] = 0x4000;
    id[85] = 0x4000;
    id[86] = 0x2000 | 0x1000 | 0x0400;
    id[87] = 0x4000;
    for (int i = 0; i < 4; i++)
        id[100 + i] = (uint16_t)(e->sectors >> (16 * i));
    id[106] = 0x4000; /* 512-byte logical sectors */
    /* Integrity word: signature A5h, checksum making the byte sum zero. */
    id[255] = 0x00a5;
    uint8_t sum = 0;
    for (int i = 0; i < 255; i++)
        sum = (uint8_t)(sum + (id[i] & 0xff) + (id[i] >> 8));
    sum = (uint8_t)(sum + 0xa5);
    id[255] |= (uint16_t)((uint8_t)(-sum) << 8);
    for (int i = 0; i < 256; i++) { /* little-endian words on the wire */
        out[2 * i] = (uint8_t)id[i];
        out[2 * i + 1] = (uint8_t)(id[i] >> 8);
    }
}

/* Asynchronous READ/WRITE: metadata now, the data transfers left to the caller in r->io. */
static int map_async(struct aoe_target *t, struct export *e, struct aoe_target_reply *r,
                     uint64_t off, size_t n, bool write, const uint8_t *data)
{
    struct mv_drive_seg segs[AOE_TARGET_MAX_IO];
    int ns = mv_drive_replica_map(e->drive, e->replica, off, n, write, segs, AOE_TARGET_MAX_IO);
    if (ns < 0)
        return ns;
    uint8_t *mem = write ? r->bounce : r->buf + AOE_ATA_HDR_LEN;
    if (write)
        memcpy(r->bounce, data, n);
    int fd = mv_drive_data_fd(e->drive);
    size_t pos = 0;
    for (int i = 0; i < ns; i++) {
        if (segs[i].zero)
            memset(mem + pos, 0, segs[i].len);
        else
            r->io[r->nio++] = (struct aoe_target_io){.fd = fd,
                                                     .off = segs[i].disk_off,
                                                     .len = segs[i].len,
                                                     .mem = mem + pos,
                                                     .write = write};
        pos += segs[i].len;
    }
    return 0;
}

void aoe_target_set_async(struct aoe_target *t, bool on)
{
    t->async = on;
}

void aoe_target_fail_io(struct aoe_target *t, struct aoe_target_reply *r, int err)
{
    bool write = r->nio && r->io[0].write;
    uint8_t *a = r->buf + AOE_HDR_LEN;
    a[1] = write ? ATA_ERR_ABRT : ATA_ERR_UNC;
    a[3] = ATA_STATUS_DRDY | ATA_STATUS_ERR;
    memset(r->buf + AOE_ATA_HDR_LEN, 0, MV_ETH_ZLEN - AOE_ATA_HDR_LEN);
    r->len = MV_ETH_ZLEN;
    r->nio = 0;
    t->stats.ata_errors++;
    mv_warn("AoE %s failed: %s", write ? "write" : "read", strerror(-err));
}

static size_t handle_ata(struct aoe_target *t, const struct aoe_msg *req, struct export *e,
                         struct aoe_target_reply *r)
{
    if (e->n_resv && !mac_in((const uint8_t(*)[6])e->resv, e->n_resv, req->src)) {
        t->stats.reserved_conflicts++;
        return build_error(t, req, e, AOE_ERR_RESERVED, r);
    }
    const struct aoe_ata *in = &req->u.ata;
    struct aoe_msg rep;
    aoe_msg_init_reply(&rep, req, t->cfg.mac);
    struct aoe_ata *out = &rep.u.ata;
    *out = *in;
    out->data = NULL;
    out->data_len = 0;
    out->err_feature = 0;
    out->cmd_status = ATA_STATUS_DRDY;
    uint8_t cmd = in->cmd_status;
    bool ext = (in->aflags & AOE_AFLAG_EXT) || cmd == ATA_CMD_READ_EXT || cmd == ATA_CMD_WRITE_EXT;
    uint64_t lba = ext ? in->lba : in->lba & 0x0fffffff;
    unsigned count = in->sector_count;
    uint8_t err = 0;
    switch (cmd) {
    case ATA_CMD_READ:
    case ATA_CMD_READ_EXT:
    case ATA_CMD_WRITE:
    case ATA_CMD_WRITE_EXT: {
        bool write = cmd == ATA_CMD_WRITE || cmd == ATA_CMD_WRITE_EXT;
        if (write != !!(in->aflags & AOE_AFLAG_WRITE))
            return build_error(t, req, e, AOE_ERR_BAD_ARG, r);
        if (write && in->data_len < (size_t)count * AOE_SECTOR_SIZE)
            return build_error(t, req, e, AOE_ERR_BAD_ARG, r);
        /* Count 0 means 256 (65536 with LBA48) sectors in ATA: more than any frame holds. */
        if (count == 0 || count > t->sectors_per_frame ||
            AOE_ATA_HDR_LEN + (size_t)count * AOE_SECTOR_SIZE > r->cap) {
            err = ATA_ERR_ABRT;
            break;
        }
        if (lba > e->sectors || count > e->sectors - lba) {
            err = ATA_ERR_IDNF;
            break;
        }
        uint64_t off = lba * AOE_SECTOR_SIZE;
        size_t n = (size_t)count * AOE_SECTOR_SIZE;
        int rc;
        if (t->async && r->bounce) {
            rc = map_async(t, e, r, off, n, write, in->data);
            if (rc == 0 && !write) {
                out->data = r->buf + AOE_ATA_HDR_LEN;
                out->data_len = n;
            }
            if (rc == 0 && write)
                t->stats.written_sectors += count;
            else if (rc == 0)
                t->stats.read_sectors += count;
        } else if (write) {
            rc = mv_drive_replica_write(e->drive, e->replica, off, in->data, n);
            if (rc == 0)
                t->stats.written_sectors += count;
        } else {
            /* Read straight into the reply frame: no copy, no allocation. */
            uint8_t *dst = r->buf + AOE_ATA_HDR_LEN;
            rc = mv_drive_replica_read(e->drive, e->replica, off, dst, n);
            if (rc == 0) {
                out->data = dst;
                out->data_len = n;
                t->stats.read_sectors += count;
            }
        }
        if (rc == -ERANGE)
            err = ATA_ERR_IDNF;
        else if (rc < 0)
            err = write ? ATA_ERR_ABRT : ATA_ERR_UNC;
        if (rc < 0 && rc != -ERANGE)
            mv_warn("vdisk %s: %s at lba %llu: %s", e->vdisk_id, write ? "write" : "read",
                    (unsigned long long)lba, strerror(-rc));
        break;
    }
    case ATA_CMD_IDENTIFY:
        if (AOE_ATA_HDR_LEN + 512 > r->cap) {
            err = ATA_ERR_ABRT;
            break;
        }
        ata_identify(t, e, r->buf + AOE_ATA_HDR_LEN);
        out->data = r->buf + AOE_ATA_HDR_LEN;
        out->data_len = 512;
        break;
    case ATA_CMD_FLUSH:
    case ATA_CMD_FLUSH_EXT:
        if (mv_drive_flush(e->drive) < 0)
            err = ATA_ERR_ABRT;
        break;
    case ATA_CMD_CHECK_POWER:
        out->sector_count = 0xff; /* active or idle */
        break;
    default:
        err = ATA_ERR_ABRT;
        break;
    }
    if (err) {
        out->cmd_status = ATA_STATUS_DRDY | ATA_STATUS_ERR;
        out->err_feature = err;
        out->data = NULL;
        out->data_len = 0;
        t->stats.ata_errors++;
    }
    return aoe_frame_build(&rep, r->buf, r->cap);
}

static size_t handle_config(struct aoe_target *t, const struct aoe_msg *req, struct export *e,
                            struct aoe_target_reply *r)
{
    const struct aoe_cfg *in = &req->u.cfg;
    bool same = in->cfg_len == e->cfg_len && memcmp(in->cfg, e->cfg, in->cfg_len) == 0;
    switch (in->ccmd) {
    case AOE_CCMD_READ:
        break;
    case AOE_CCMD_TEST:
        if (!same)
            return 0;
        break;
    case AOE_CCMD_TEST_PREFIX:
        if (in->cfg_len > e->cfg_len || memcmp(in->cfg, e->cfg, in->cfg_len) != 0)
            return 0;
        break;
    case AOE_CCMD_SET:
    case AOE_CCMD_FORCE_SET:
        if (e->n_resv && !mac_in((const uint8_t(*)[6])e->resv, e->n_resv, req->src)) {
            t->stats.reserved_conflicts++;
            return build_error(t, req, e, AOE_ERR_RESERVED, r);
        }
        if (in->ccmd == AOE_CCMD_SET && e->cfg_len && !same)
            return build_error(t, req, e, AOE_ERR_CFG_PRESENT, r);
        memcpy(e->cfg, in->cfg, in->cfg_len);
        e->cfg_len = in->cfg_len;
        break;
    default:
        return build_error(t, req, e, AOE_ERR_BAD_ARG, r);
    }
    struct aoe_msg rep;
    aoe_msg_init_reply(&rep, req, t->cfg.mac);
    rep.major = e->shelf;
    rep.minor = e->slot;
    rep.u.cfg = (struct aoe_cfg){.buffer_count = t->cfg.buffer_count,
                                 .firmware = FIRMWARE_VERSION,
                                 .sector_count = (uint8_t)t->sectors_per_frame,
                                 .aoe_ver = AOE_VERSION,
                                 .ccmd = in->ccmd,
                                 .cfg_len = e->cfg_len,
                                 .cfg = e->cfg};
    return aoe_frame_build(&rep, r->buf, r->cap);
}

static size_t handle_mask(struct aoe_target *t, const struct aoe_msg *req, struct export *e,
                          struct aoe_target_reply *r)
{
    const struct aoe_mask *in = &req->u.mask;
    uint8_t merror = AOE_MERR_NONE;
    if (in->mcmd == AOE_MCMD_EDIT) {
        /* Validate every directive before applying any: a bad edit changes nothing. */
        uint8_t mask[AOE_TARGET_MAX_MASK][6];
        unsigned n = e->n_mask;
        memcpy(mask, e->mask, sizeof mask);
        for (unsigned i = 0; i < in->dir_count && !merror; i++) {
            uint8_t dcmd, mac[6];
            aoe_mask_dir_get(in, i, &dcmd, mac);
            if (dcmd == AOE_DCMD_NONE)
                continue;
            if (dcmd == AOE_DCMD_ADD) {
                if (mac_in((const uint8_t(*)[6])mask, n, mac))
                    continue;
                if (n == AOE_TARGET_MAX_MASK)
                    merror = AOE_MERR_FULL;
                else
                    memcpy(mask[n++], mac, 6);
            } else if (dcmd == AOE_DCMD_DELETE) {
                for (unsigned k = 0; k < n; k++) {
                    if (memcmp(mask[k], mac, 6) == 0) {
                        memmove(mask[k], mask[k + 1], (n - k - 1) * 6);
                        n--;
                        break;
                    }
                }
            } else {
                merror = AOE_MERR_BAD_DCMD;
            }
        }
        if (!merror) {
            memcpy(e->mask, mask, sizeof mask);
            e->n_mask = n;
        }
    }
    struct aoe_msg rep;
    aoe_msg_init_reply(&rep, req, t->cfg.mac);
    rep.major = e->shelf;
    rep.minor = e->slot;
    size_t dirs_len = (size_t)e->n_mask * AOE_MASK_DIR_LEN;
    if (AOE_MASK_HDR_LEN + dirs_len > r->cap)
        return build_error(t, req, e, AOE_ERR_BAD_ARG, r);
    uint8_t *dirs = r->buf + AOE_MASK_HDR_LEN;
    for (unsigned i = 0; i < e->n_mask; i++)
        aoe_mask_dir_put(dirs + i * AOE_MASK_DIR_LEN, AOE_DCMD_NONE, e->mask[i]);
    rep.u.mask = (struct aoe_mask){
        .mcmd = in->mcmd, .merror = merror, .dir_count = (uint8_t)e->n_mask, .dirs = dirs};
    return aoe_frame_build(&rep, r->buf, r->cap);
}

static size_t handle_reserve(struct aoe_target *t, const struct aoe_msg *req, struct export *e,
                             struct aoe_target_reply *r)
{
    const struct aoe_reserve *in = &req->u.reserve;
    if (in->rcmd == AOE_RCMD_SET && e->n_resv &&
        !mac_in((const uint8_t(*)[6])e->resv, e->n_resv, req->src)) {
        t->stats.reserved_conflicts++;
        return build_error(t, req, e, AOE_ERR_RESERVED, r);
    }
    if (in->rcmd == AOE_RCMD_SET || in->rcmd == AOE_RCMD_FORCE_SET) {
        memcpy(e->resv, in->macs, (size_t)in->nmacs * 6);
        e->n_resv = in->nmacs;
    }
    struct aoe_msg rep;
    aoe_msg_init_reply(&rep, req, t->cfg.mac);
    rep.major = e->shelf;
    rep.minor = e->slot;
    if (AOE_RESV_HDR_LEN + (size_t)e->n_resv * 6 > r->cap)
        return build_error(t, req, e, AOE_ERR_BAD_ARG, r);
    uint8_t *macs = r->buf + AOE_RESV_HDR_LEN;
    memcpy(macs, e->resv, (size_t)e->n_resv * 6);
    rep.u.reserve =
        (struct aoe_reserve){.rcmd = in->rcmd, .nmacs = (uint8_t)e->n_resv, .macs = macs};
    return aoe_frame_build(&rep, r->buf, r->cap);
}

unsigned aoe_target_handle_frame(struct aoe_target *t, const uint8_t *frame, size_t len,
                                 struct aoe_target_reply *replies, unsigned max)
{
    t->stats.requests++;
    if (max == 0 || len < MV_ETH_HLEN ||
        (memcmp(frame, t->cfg.mac, 6) != 0 && !mv_mac_is_broadcast(frame))) {
        t->stats.dropped++;
        return 0;
    }
    struct aoe_msg req;
    struct aoe_parse_error why = {0};
    int rc = aoe_frame_parse(frame, len, &req, &why);
    if (rc == 0 && (req.flags & AOE_FLAG_RESPONSE))
        rc = -EINVAL; /* another target's reply: never answer it */
    unsigned n = 0;
    for (unsigned i = 0; i < t->n_exports && n < max; i++) {
        struct export *e = &t->exports[i];
        if (len < AOE_HDR_LEN || !addressed(e, &req))
            continue;
        if (e->n_mask && !mac_in((const uint8_t(*)[6])e->mask, e->n_mask, req.src)) {
            t->stats.masked++;
            continue; /* r11: a non-empty mask list hides the target from everyone else */
        }
        struct aoe_target_reply *r = &replies[n];
        r->len = 0;
        r->nio = 0;
        if (rc != 0) {
            if (why.reply_error && !(req.flags & AOE_FLAG_RESPONSE))
                r->len = build_error(t, &req, e, why.reply_error, r);
        } else if (req.cmd == AOE_CMD_ATA) {
            /* ATA commands only to one target, never by broadcast. */
            if (req.major != AOE_SHELF_ANY && req.minor != AOE_SLOT_ANY)
                r->len = handle_ata(t, &req, e, r);
        } else if (req.cmd == AOE_CMD_CONFIG) {
            r->len = handle_config(t, &req, e, r);
        } else if (req.cmd == AOE_CMD_MASK) {
            r->len = handle_mask(t, &req, e, r);
        } else if (req.cmd == AOE_CMD_RESERVE) {
            r->len = handle_reserve(t, &req, e, r);
        } else {
            r->len = build_error(t, &req, e, AOE_ERR_BAD_CMD, r); /* vendor: not implemented */
        }
        if (r->len)
            n++;
    }
    if (n == 0)
        t->stats.dropped++;
    t->stats.replies += n;
    return n;
}
