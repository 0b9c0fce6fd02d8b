/* Control frame codec: big-endian header packing and strict structural validation. */
#include "mv/ctrl_frame.h"

#include <errno.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, (uint16_t)v);
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, v >> 32);
    put32(p + 4, (uint32_t)v);
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

const char *mv_ctrl_strerror(enum mv_ctrl_err err)
{
    switch (err) {
    case MV_CTRL_OK:
        return "ok";
    case MV_CTRL_ERR_TRUNCATED:
        return "truncated frame";
    case MV_CTRL_ERR_LENGTH:
        return "frame longer than header + payload + tag";
    case MV_CTRL_ERR_ETHERTYPE:
        return "not a control/stats EtherType";
    case MV_CTRL_ERR_VERSION:
        return "unsupported protocol version";
    case MV_CTRL_ERR_TYPE:
        return "unknown frame type";
    case MV_CTRL_ERR_FLAGS:
        return "unknown or contradictory flags";
    case MV_CTRL_ERR_FIELD:
        return "invalid header field";
    case MV_CTRL_ERR_FRAGMENT:
        return "invalid fragment (length/offset)";
    case MV_CTRL_ERR_SACK:
        return "malformed SACK blocks";
    case MV_CTRL_ERR_COUNT:
        break;
    }
    return "unknown error";
}

const char *mv_ctrl_type_name(unsigned type)
{
    static const char *const names[] = {"?", "DATA", "ACK", "HELLO", "KEEPALIVE", "DGRAM"};
    return type <= MV_CTRL_TYPE_MAX ? names[type] : "?";
}

int mv_ctrl_encode(const struct mv_ctrl_hdr *hdr, const void *payload, size_t plen, uint8_t *buf,
                   size_t cap)
{
    if (plen > 0xffff || (plen && !payload))
        return -EINVAL;
    size_t total = MV_CTRL_OVERHEAD + plen;
    if (total > cap)
        return -ENOSPC;
    memcpy(buf, hdr->dst, 6);
    memcpy(buf + 6, hdr->src, 6);
    put16(buf + 12, hdr->ethertype);
    uint8_t *h = buf + MV_ETH_HLEN;
    h[0] = hdr->version;
    h[1] = hdr->type;
    put16(h + 2, hdr->flags);
    h[4] = hdr->key_id;
    h[5] = 0;
    put16(h + 6, (uint16_t)plen);
    put64(h + 8, hdr->src_node);
    put64(h + 16, hdr->src_incarnation);
    put64(h + 24, hdr->dst_incarnation);
    put64(h + 32, hdr->counter);
    put32(h + 40, hdr->seq);
    put32(h + 44, hdr->ack);
    put16(h + 48, hdr->window);
    put16(h + 50, hdr->op);
    put32(h + 52, hdr->msg_id);
    put32(h + 56, hdr->ref);
    put32(h + 60, hdr->msg_len);
    put32(h + 64, hdr->frag_off);
    put32(h + 68, (uint32_t)hdr->status);
    if (plen)
        memcpy(h + MV_CTRL_HDR_LEN, payload, plen);
    memset(h + MV_CTRL_HDR_LEN + plen, 0, MV_CTRL_TAG_LEN);
    return (int)total;
}

static enum mv_ctrl_err validate_type_fields(const struct mv_ctrl_hdr *hdr, const uint8_t *payload)
{
    bool stats = hdr->ethertype == MV_ETHERTYPE_STATS;
    if (stats != (hdr->type == MV_CTRL_DGRAM))
        return MV_CTRL_ERR_TYPE;
    if ((hdr->flags & MV_CTRL_F_REQUEST) && (hdr->flags & MV_CTRL_F_RESPONSE))
        return MV_CTRL_ERR_FLAGS;
    if (hdr->type != MV_CTRL_DATA && (hdr->flags & (MV_CTRL_F_REQUEST | MV_CTRL_F_RESPONSE)))
        return MV_CTRL_ERR_FLAGS;
    if (hdr->type != MV_CTRL_ACK && (hdr->flags & MV_CTRL_F_STALE))
        return MV_CTRL_ERR_FLAGS;
    if (hdr->ref && !(hdr->flags & MV_CTRL_F_RESPONSE))
        return MV_CTRL_ERR_FIELD;
    if (hdr->status && !(hdr->flags & MV_CTRL_F_RESPONSE))
        return MV_CTRL_ERR_FIELD;
    if (hdr->type == MV_CTRL_DATA) {
        if (hdr->seq == 0)
            return MV_CTRL_ERR_FIELD;
        if ((hdr->flags & MV_CTRL_F_RESPONSE) && hdr->ref == 0)
            return MV_CTRL_ERR_FIELD;
        if (hdr->msg_len > MV_CTRL_MAX_MSG || hdr->frag_off > hdr->msg_len ||
            hdr->payload_len > hdr->msg_len - hdr->frag_off)
            return MV_CTRL_ERR_FRAGMENT;
        /* Only an empty message may have an empty fragment. */
        if (hdr->payload_len == 0 && hdr->msg_len != 0)
            return MV_CTRL_ERR_FRAGMENT;
        return MV_CTRL_OK;
    }
    if (hdr->seq != 0 || hdr->msg_len != 0 || hdr->frag_off != 0)
        return MV_CTRL_ERR_FIELD;
    if (hdr->type == MV_CTRL_ACK) {
        struct mv_ctrl_sack blocks[MV_CTRL_MAX_SACK];
        if (mv_ctrl_sack_decode(payload, hdr->payload_len, blocks, MV_CTRL_MAX_SACK) < 0)
            return MV_CTRL_ERR_SACK;
    } else if (hdr->type == MV_CTRL_KEEPALIVE) {
        if (hdr->payload_len != 0)
            return MV_CTRL_ERR_LENGTH;
    }
    if (hdr->type != MV_CTRL_DATA && hdr->type != MV_CTRL_DGRAM && (hdr->op || hdr->msg_id))
        return MV_CTRL_ERR_FIELD;
    return MV_CTRL_OK;
}

enum mv_ctrl_err mv_ctrl_decode(const uint8_t *frame, size_t len, struct mv_ctrl_hdr *hdr,
                                const uint8_t **payload)
{
    if (!frame || len < MV_ETH_HLEN + 2)
        return MV_CTRL_ERR_TRUNCATED;
    struct mv_ctrl_hdr h;
    memcpy(h.dst, frame, 6);
    memcpy(h.src, frame + 6, 6);
    h.ethertype = get16(frame + 12);
    if (h.ethertype != MV_ETHERTYPE_CTRL && h.ethertype != MV_ETHERTYPE_STATS)
        return MV_CTRL_ERR_ETHERTYPE;
    const uint8_t *p = frame + MV_ETH_HLEN;
    h.version = p[0];
    if (h.version != MV_CTRL_VERSION)
        return MV_CTRL_ERR_VERSION;
    if (len < MV_CTRL_OVERHEAD)
        return MV_CTRL_ERR_TRUNCATED;
    h.type = p[1];
    h.flags = get16(p + 2);
    h.key_id = p[4];
    h.payload_len = get16(p + 6);
    if (len < MV_CTRL_OVERHEAD + (size_t)h.payload_len)
        return MV_CTRL_ERR_TRUNCATED;
    if (len > MV_CTRL_OVERHEAD + (size_t)h.payload_len)
        return MV_CTRL_ERR_LENGTH;
    if (h.type == 0 || h.type > MV_CTRL_TYPE_MAX)
        return MV_CTRL_ERR_TYPE;
    if (h.flags & ~MV_CTRL_F_KNOWN)
        return MV_CTRL_ERR_FLAGS;
    if (p[5] != 0)
        return MV_CTRL_ERR_FIELD;
    h.src_node = get64(p + 8);
    h.src_incarnation = get64(p + 16);
    h.dst_incarnation = get64(p + 24);
    h.counter = get64(p + 32);
    h.seq = get32(p + 40);
    h.ack = get32(p + 44);
    h.window = get16(p + 48);
    h.op = get16(p + 50);
    h.msg_id = get32(p + 52);
    h.ref = get32(p + 56);
    h.msg_len = get32(p + 60);
    h.frag_off = get32(p + 64);
    h.status = (int32_t)get32(p + 68);
    if (h.src_node == 0 || h.src_incarnation == 0 || h.counter == 0)
        return MV_CTRL_ERR_FIELD;
    const uint8_t *pl = p + MV_CTRL_HDR_LEN;
    enum mv_ctrl_err e = validate_type_fields(&h, pl);
    if (e != MV_CTRL_OK)
        return e;
    *hdr = h;
    if (payload)
        *payload = pl;
    return MV_CTRL_OK;
}

int mv_ctrl_sack_encode(const struct mv_ctrl_sack *blocks, unsigned n, uint8_t *buf, size_t cap)
{
    if (n > MV_CTRL_MAX_SACK)
        return -EINVAL;
    if ((size_t)n * 8 > cap)
        return -ENOSPC;
    for (unsigned i = 0; i < n; i++) {
        put32(buf + 8 * i, blocks[i].start);
        put32(buf + 8 * i + 4, blocks[i].end);
    }
    return (int)(n * 8);
}

int mv_ctrl_sack_decode(const uint8_t *buf, size_t len, struct mv_ctrl_sack *blocks, unsigned max)
{
    if (len % 8 || len / 8 > MV_CTRL_MAX_SACK || len / 8 > max)
        return -EINVAL;
    unsigned n = (unsigned)(len / 8);
    for (unsigned i = 0; i < n; i++) {
        uint32_t s = get32(buf + 8 * i), e = get32(buf + 8 * i + 4);
        if (!mv_seq_lt(s, e) || e - s > 0xffff)
            return -EINVAL;
        blocks[i].start = s;
        blocks[i].end = e;
    }
    return (int)n;
}
