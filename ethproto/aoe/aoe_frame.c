/* AoE r11 frame codec: see mv/aoe_frame.h. */
#include "mv/aoe_frame.h"

#include <errno.h>
#include <string.h>

#include "mv/util.h"

static uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int reject(struct aoe_parse_error *why, const char *reason, uint8_t reply_error)
{
    if (why) {
        why->reason = reason;
        why->reply_error = reply_error;
    }
    return -EINVAL;
}

static int parse_ata(const uint8_t *frame, size_t len, struct aoe_msg *msg,
                     struct aoe_parse_error *why)
{
    if (len < AOE_ATA_HDR_LEN)
        return reject(why, "ATA header truncated", AOE_ERR_BAD_ARG);
    const uint8_t *a = frame + AOE_HDR_LEN;
    struct aoe_ata *ata = &msg->u.ata;
    ata->aflags = a[0];
    ata->err_feature = a[1];
    ata->sector_count = a[2];
    ata->cmd_status = a[3];
    ata->lba = 0;
    for (int i = 5; i >= 0; i--) /* lba0 is the least significant byte */
        ata->lba = (ata->lba << 8) | a[4 + i];
    ata->data = frame + AOE_ATA_HDR_LEN;
    ata->data_len = len - AOE_ATA_HDR_LEN;
    return 0;
}

static int parse_cfg(const uint8_t *frame, size_t len, struct aoe_msg *msg,
                     struct aoe_parse_error *why)
{
    if (len < AOE_CFG_HDR_LEN)
        return reject(why, "Query Config header truncated", AOE_ERR_BAD_ARG);
    const uint8_t *c = frame + AOE_HDR_LEN;
    struct aoe_cfg *cfg = &msg->u.cfg;
    cfg->buffer_count = get_be16(c);
    cfg->firmware = get_be16(c + 2);
    cfg->sector_count = c[4];
    cfg->aoe_ver = c[5] >> 4;
    cfg->ccmd = c[5] & 0x0f;
    cfg->cfg_len = get_be16(c + 6);
    cfg->cfg = frame + AOE_CFG_HDR_LEN;
    if (cfg->cfg_len > AOE_MAX_CFG_LEN)
        return reject(why, "config string longer than 1024 bytes", AOE_ERR_BAD_ARG);
    if ((size_t)cfg->cfg_len > len - AOE_CFG_HDR_LEN)
        return reject(why, "config string runs past the frame", AOE_ERR_BAD_ARG);
    if (cfg->ccmd > AOE_CCMD_FORCE_SET && !(msg->flags & AOE_FLAG_RESPONSE))
        return reject(why, "unknown Query Config subcommand", AOE_ERR_BAD_ARG);
    return 0;
}

static int parse_mask(const uint8_t *frame, size_t len, struct aoe_msg *msg,
                      struct aoe_parse_error *why)
{
    if (len < AOE_MASK_HDR_LEN)
        return reject(why, "Mac Mask header truncated", AOE_ERR_BAD_ARG);
    const uint8_t *m = frame + AOE_HDR_LEN;
    struct aoe_mask *mask = &msg->u.mask;
    mask->mcmd = m[1];
    mask->merror = m[2];
    mask->dir_count = m[3];
    mask->dirs = frame + AOE_MASK_HDR_LEN;
    if ((size_t)mask->dir_count * AOE_MASK_DIR_LEN > len - AOE_MASK_HDR_LEN)
        return reject(why, "Mac Mask directives run past the frame", AOE_ERR_BAD_ARG);
    if (mask->mcmd > AOE_MCMD_EDIT)
        return reject(why, "unknown Mac Mask command", AOE_ERR_BAD_ARG);
    return 0;
}

static int parse_reserve(const uint8_t *frame, size_t len, struct aoe_msg *msg,
                         struct aoe_parse_error *why)
{
    if (len < AOE_RESV_HDR_LEN)
        return reject(why, "Reserve/Release header truncated", AOE_ERR_BAD_ARG);
    const uint8_t *r = frame + AOE_HDR_LEN;
    struct aoe_reserve *res = &msg->u.reserve;
    res->rcmd = r[0];
    res->nmacs = r[1];
    res->macs = frame + AOE_RESV_HDR_LEN;
    if ((size_t)res->nmacs * 6 > len - AOE_RESV_HDR_LEN)
        return reject(why, "reserve MAC list runs past the frame", AOE_ERR_BAD_ARG);
    if (res->rcmd > AOE_RCMD_FORCE_SET)
        return reject(why, "unknown Reserve/Release command", AOE_ERR_BAD_ARG);
    return 0;
}

int aoe_frame_parse(const uint8_t *frame, size_t len, struct aoe_msg *msg,
                    struct aoe_parse_error *why)
{
    if (!frame || len < AOE_HDR_LEN)
        return reject(why, "frame shorter than the AoE header", 0);
    if (get_be16(frame + 12) != MV_ETHERTYPE_AOE)
        return reject(why, "EtherType is not AoE", 0);
    memcpy(msg->dst, frame, 6);
    memcpy(msg->src, frame + 6, 6);
    const uint8_t *h = frame + MV_ETH_HLEN;
    msg->ver = h[0] >> 4;
    msg->flags = h[0] & 0x0f;
    msg->error = h[1];
    msg->major = get_be16(h + 2);
    msg->minor = h[4];
    msg->cmd = h[5];
    msg->tag = get_be32(h + 6);
    bool response = msg->flags & AOE_FLAG_RESPONSE;
    if (msg->ver != AOE_VERSION)
        return reject(why, "unsupported AoE version", response ? 0 : AOE_ERR_BAD_VERSION);
    if (response && (msg->flags & AOE_FLAG_ERROR)) {
        /* An error response carries no trustworthy body; the header is all there is. */
        memset(&msg->u, 0, sizeof msg->u);
        return 0;
    }
    switch (msg->cmd) {
    case AOE_CMD_ATA:
        return parse_ata(frame, len, msg, why);
    case AOE_CMD_CONFIG:
        return parse_cfg(frame, len, msg, why);
    case AOE_CMD_MASK:
        return parse_mask(frame, len, msg, why);
    case AOE_CMD_RESERVE:
        return parse_reserve(frame, len, msg, why);
    default:
        if (msg->cmd >= AOE_CMD_VENDOR_MIN) {
            msg->u.vendor.data = frame + AOE_HDR_LEN;
            msg->u.vendor.len = len - AOE_HDR_LEN;
            return 0;
        }
        return reject(why, "unrecognized AoE command", response ? 0 : AOE_ERR_BAD_CMD);
    }
}

/* Copies n bytes to dst unless the caller already placed them there (zero-copy builds). */
static void place(uint8_t *dst, const uint8_t *src, size_t n)
{
    if (n && src != dst)
        memmove(dst, src, n);
}

size_t aoe_frame_build(const struct aoe_msg *msg, uint8_t *buf, size_t cap)
{
    size_t len;
    bool error_reply = (msg->flags & AOE_FLAG_RESPONSE) && (msg->flags & AOE_FLAG_ERROR);
    switch (error_reply ? 0x100 : msg->cmd) {
    case 0x100:
        len = AOE_HDR_LEN;
        break;
    case AOE_CMD_ATA:
        if (msg->u.ata.lba >> 48)
            return 0;
        len = AOE_ATA_HDR_LEN + msg->u.ata.data_len;
        break;
    case AOE_CMD_CONFIG:
        if (msg->u.cfg.cfg_len > AOE_MAX_CFG_LEN || msg->u.cfg.ccmd > 0x0f ||
            msg->u.cfg.aoe_ver > 0x0f)
            return 0;
        len = AOE_CFG_HDR_LEN + msg->u.cfg.cfg_len;
        break;
    case AOE_CMD_MASK:
        len = AOE_MASK_HDR_LEN + (size_t)msg->u.mask.dir_count * AOE_MASK_DIR_LEN;
        break;
    case AOE_CMD_RESERVE:
        len = AOE_RESV_HDR_LEN + (size_t)msg->u.reserve.nmacs * 6;
        break;
    default:
        if (msg->cmd < AOE_CMD_VENDOR_MIN)
            return 0;
        len = AOE_HDR_LEN + msg->u.vendor.len;
        break;
    }
    size_t total = len < MV_ETH_ZLEN ? MV_ETH_ZLEN : len;
    if (total > cap || msg->ver > 0x0f || msg->flags > 0x0f)
        return 0;
    /* Body first: its source may overlap the header area only if the caller built in place. */
    uint8_t *b = buf + AOE_HDR_LEN;
    if (!error_reply) {
        switch (msg->cmd) {
        case AOE_CMD_ATA: {
            const struct aoe_ata *ata = &msg->u.ata;
            place(buf + AOE_ATA_HDR_LEN, ata->data, ata->data_len);
            b[0] = ata->aflags;
            b[1] = ata->err_feature;
            b[2] = ata->sector_count;
            b[3] = ata->cmd_status;
            for (int i = 0; i < 6; i++)
                b[4 + i] = (uint8_t)(ata->lba >> (8 * i));
            b[10] = b[11] = 0;
            break;
        }
        case AOE_CMD_CONFIG: {
            const struct aoe_cfg *cfg = &msg->u.cfg;
            place(buf + AOE_CFG_HDR_LEN, cfg->cfg, cfg->cfg_len);
            put_be16(b, cfg->buffer_count);
            put_be16(b + 2, cfg->firmware);
            b[4] = cfg->sector_count;
            b[5] = (uint8_t)(cfg->aoe_ver << 4 | cfg->ccmd);
            put_be16(b + 6, cfg->cfg_len);
            break;
        }
        case AOE_CMD_MASK:
            place(buf + AOE_MASK_HDR_LEN, msg->u.mask.dirs,
                  (size_t)msg->u.mask.dir_count * AOE_MASK_DIR_LEN);
            b[0] = 0;
            b[1] = msg->u.mask.mcmd;
            b[2] = msg->u.mask.merror;
            b[3] = msg->u.mask.dir_count;
            break;
        case AOE_CMD_RESERVE:
            place(buf + AOE_RESV_HDR_LEN, msg->u.reserve.macs, (size_t)msg->u.reserve.nmacs * 6);
            b[0] = msg->u.reserve.rcmd;
            b[1] = msg->u.reserve.nmacs;
            break;
        default:
            place(b, msg->u.vendor.data, msg->u.vendor.len);
            break;
        }
    }
    memcpy(buf, msg->dst, 6);
    memcpy(buf + 6, msg->src, 6);
    put_be16(buf + 12, MV_ETHERTYPE_AOE);
    uint8_t *h = buf + MV_ETH_HLEN;
    h[0] = (uint8_t)(msg->ver << 4 | msg->flags);
    h[1] = msg->error;
    put_be16(h + 2, msg->major);
    h[4] = msg->minor;
    h[5] = msg->cmd;
    put_be32(h + 6, msg->tag);
    if (total > len)
        memset(buf + len, 0, total - len);
    return total;
}

void aoe_msg_init_reply(struct aoe_msg *reply, const struct aoe_msg *req, const uint8_t self[6])
{
    memcpy(reply->dst, req->src, 6);
    memcpy(reply->src, self, 6);
    reply->ver = AOE_VERSION;
    reply->flags = AOE_FLAG_RESPONSE;
    reply->error = 0;
    reply->major = req->major;
    reply->minor = req->minor;
    reply->cmd = req->cmd;
    reply->tag = req->tag;
}

void aoe_mask_dir_get(const struct aoe_mask *mask, unsigned i, uint8_t *dcmd, uint8_t mac[6])
{
    const uint8_t *d = mask->dirs + (size_t)i * AOE_MASK_DIR_LEN;
    *dcmd = d[1];
    memcpy(mac, d + 2, 6);
}

void aoe_mask_dir_put(uint8_t *out, uint8_t dcmd, const uint8_t mac[6])
{
    out[0] = 0;
    out[1] = dcmd;
    memcpy(out + 2, mac, 6);
}

unsigned aoe_max_sectors_for_mtu(unsigned mtu)
{
    unsigned hdr = AOE_ATA_HDR_LEN - MV_ETH_HLEN;
    if (mtu <= hdr)
        return 0;
    unsigned n = (mtu - hdr) / AOE_SECTOR_SIZE;
    return n > 255 ? 255 : n;
}

const char *aoe_error_name(uint8_t error)
{
    static const char *const names[] = {
        "none",
        "unrecognized command",
        "bad argument",
        "device unavailable",
        "config string present",
        "unsupported version",
        "target is reserved",
    };
    return error < MV_ARRAY_SIZE(names) ? names[error] : "unknown error";
}

const char *aoe_cmd_name(uint8_t cmd)
{
    switch (cmd) {
    case AOE_CMD_ATA:
        return "ATA";
    case AOE_CMD_CONFIG:
        return "Query Config";
    case AOE_CMD_MASK:
        return "Mac Mask List";
    case AOE_CMD_RESERVE:
        return "Reserve/Release";
    default:
        return cmd >= AOE_CMD_VENDOR_MIN ? "vendor" : "unknown";
    }
}
