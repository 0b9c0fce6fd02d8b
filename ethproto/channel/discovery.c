/* Discovery: authenticated HELLO broadcasts (TLV payload) and a peer table with liveness. */
#include "mv/discovery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/util.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

static int put_tlv(uint8_t *buf, size_t cap, size_t *off, uint8_t type, const void *v, size_t n)
{
    if (n > 255 || *off + 2 + n > cap)
        return -ENOSPC;
    buf[*off] = type;
    buf[*off + 1] = (uint8_t)n;
    if (n)
        memcpy(buf + *off + 2, v, n);
    *off += 2 + n;
    return 0;
}

static int put_str(uint8_t *buf, size_t cap, size_t *off, uint8_t type, const char *s, size_t max,
                   bool required)
{
    size_t n = strnlen(s, max + 1);
    if (n > max || (required && n == 0) || !printable(s, n))
        return -EINVAL;
    return put_tlv(buf, cap, off, type, s, n);
}

int mv_hello_encode(const struct mv_hello *h, uint8_t *buf, size_t cap)
{
    size_t off = 0;
    uint8_t v[4];
    int rc = put_tlv(buf, cap, &off, MV_HELLO_TLV_MAC, h->mac, 6);
    put32(v, h->roles);
    if (!rc)
        rc = put_tlv(buf, cap, &off, MV_HELLO_TLV_ROLES, v, 4);
    put32(v, h->interval_ms);
    if (!rc)
        rc = put_tlv(buf, cap, &off, MV_HELLO_TLV_INTERVAL, v, 4);
    if (!rc)
        rc = put_str(buf, cap, &off, MV_HELLO_TLV_HOSTNAME, h->hostname, MV_HELLO_HOSTNAME_MAX,
                     true);
    if (!rc)
        rc = put_str(buf, cap, &off, MV_HELLO_TLV_VERSION, h->version, MV_HELLO_LABEL_MAX, false);
    if (!rc)
        rc = put_str(buf, cap, &off, MV_HELLO_TLV_BLADE, h->blade, MV_HELLO_LABEL_MAX, false);
    if (!rc)
        rc = put_str(buf, cap, &off, MV_HELLO_TLV_CHASSIS, h->chassis, MV_HELLO_LABEL_MAX, false);
    if (!rc)
        rc = put_str(buf, cap, &off, MV_HELLO_TLV_RACK, h->rack, MV_HELLO_LABEL_MAX, false);
    return rc ? rc : (int)off;
}

static int get_str(char *dst, size_t max, const uint8_t *v, size_t n, bool required)
{
    if (n > max || (required && n == 0) || !printable((const char *)v, n))
        return -EINVAL;
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

int mv_hello_decode(const uint8_t *buf, size_t len, struct mv_hello *h)
{
    memset(h, 0, sizeof *h);
    uint32_t seen = 0;
    size_t off = 0;
    while (off < len) {
        if (len - off < 2)
            return -EINVAL;
        uint8_t type = buf[off], n = buf[off + 1];
        const uint8_t *v = buf + off + 2;
        if ((size_t)n > len - off - 2)
            return -EINVAL;
        off += 2 + (size_t)n;
        if (type >= 1 && type <= 31) {
            if (seen & (1u << type))
                return -EINVAL; /* duplicate */
            seen |= 1u << type;
        }
        int rc = 0;
        switch (type) {
        case MV_HELLO_TLV_MAC:
            if (n != 6)
                return -EINVAL;
            memcpy(h->mac, v, 6);
            break;
        case MV_HELLO_TLV_ROLES:
        case MV_HELLO_TLV_INTERVAL:
            if (n != 4)
                return -EINVAL;
            if (type == MV_HELLO_TLV_ROLES)
                h->roles = get32(v);
            else
                h->interval_ms = get32(v);
            break;
        case MV_HELLO_TLV_HOSTNAME:
            rc = get_str(h->hostname, MV_HELLO_HOSTNAME_MAX, v, n, true);
            break;
        case MV_HELLO_TLV_VERSION:
            rc = get_str(h->version, MV_HELLO_LABEL_MAX, v, n, false);
            break;
        case MV_HELLO_TLV_BLADE:
            rc = get_str(h->blade, MV_HELLO_LABEL_MAX, v, n, false);
            break;
        case MV_HELLO_TLV_CHASSIS:
            rc = get_str(h->chassis, MV_HELLO_LABEL_MAX, v, n, false);
            break;
        case MV_HELLO_TLV_RACK:
            rc = get_str(h->rack, MV_HELLO_LABEL_MAX, v, n, false);
            break;
        default:
            break; /* unknown: skipped, for forward compatibility */
        }
        if (rc)
            return rc;
    }
    if (!(seen & (1u << MV_HELLO_TLV_MAC)) || !(seen & (1u << MV_HELLO_TLV_HOSTNAME)))
        return -EINVAL;
    return 0;
}

static const char *const role_names[] = {"hypervisor", "controller", "storage"};

const char *mv_role_names(uint32_t roles, char *buf, size_t cap)
{
    size_t off = 0;
    if (cap)
        buf[0] = 0;
    for (unsigned i = 0; i < MV_ARRAY_SIZE(role_names); i++) {
        if (!(roles & (1u << i)))
            continue;
        int n =
            snprintf(buf + off, cap > off ? cap - off : 0, "%s%s", off ? "," : "", role_names[i]);
        if (n > 0)
            off = MV_MIN(off + (size_t)n, cap ? cap - 1 : 0);
    }
    return buf;
}

int mv_role_parse(const char *s, uint32_t *roles)
{
    *roles = 0;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        unsigned i;
        for (i = 0; i < MV_ARRAY_SIZE(role_names); i++)
            if (strlen(role_names[i]) == n && !strncmp(s, role_names[i], n))
                break;
        if (i == MV_ARRAY_SIZE(role_names))
            return -EINVAL;
        *roles |= 1u << i;
        s += n + (comma ? 1 : 0);
    }
    return 0;
}

struct mv_disc {
    struct mv_disc_config cfg;
    struct mv_disc_peer *peers;
    unsigned n, cap;
    uint64_t next_hello;
    uint64_t rng;
    uint64_t rejected;
    uint8_t payload[512];
    int plen;
};

int mv_disc_create(const struct mv_disc_config *cfg, struct mv_disc **out)
{
    if (!cfg->chan)
        return -EINVAL;
    struct mv_disc *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->cfg = *cfg;
    if (!d->cfg.interval_ns)
        d->cfg.interval_ns = 500 * 1000000ull;
    if (!d->cfg.dead_after_ns)
        d->cfg.dead_after_ns = 4 * d->cfg.interval_ns;
    if (!d->cfg.max_peers)
        d->cfg.max_peers = 1024;
    d->cfg.self.interval_ms = (uint32_t)(d->cfg.interval_ns / 1000000);
    d->plen = mv_hello_encode(&d->cfg.self, d->payload, sizeof d->payload);
    if (d->plen < 0) {
        int rc = d->plen;
        free(d);
        return rc;
    }
    d->rng = mv_chan_config(cfg->chan)->node_id * 0x9e3779b97f4a7c15ull | 1;
    *out = d;
    return 0;
}

void mv_disc_destroy(struct mv_disc *d)
{
    if (!d)
        return;
    free(d->peers);
    free(d);
}

static struct mv_disc_peer *find_peer(const struct mv_disc *d, uint64_t node)
{
    for (unsigned i = 0; i < d->n; i++)
        if (d->peers[i].node_id == node)
            return &d->peers[i];
    return NULL;
}

const struct mv_disc_peer *mv_disc_find(const struct mv_disc *d, uint64_t node_id)
{
    return find_peer(d, node_id);
}

static void event(struct mv_disc *d, const struct mv_disc_peer *p, enum mv_disc_event ev)
{
    if (d->cfg.on_event)
        d->cfg.on_event(d->cfg.cb_user, p, ev);
}

void mv_disc_handle_hello(void *disc, const struct mv_ctrl_hdr *hdr, const uint8_t *payload,
                          size_t len, uint64_t now_ns)
{
    struct mv_disc *d = disc;
    struct mv_hello h;
    if (mv_hello_decode(payload, len, &h) != 0 || memcmp(h.mac, hdr->src, 6) != 0) {
        d->rejected++;
        return;
    }
    struct mv_disc_peer *p = find_peer(d, hdr->src_node);
    if (!p) {
        if (d->n == d->cfg.max_peers) {
            d->rejected++;
            return;
        }
        if (d->n == d->cap) {
            unsigned ncap = d->cap ? d->cap * 2 : 8;
            struct mv_disc_peer *np = realloc(d->peers, ncap * sizeof *np);
            if (!np)
                return;
            d->peers = np;
            d->cap = ncap;
        }
        p = &d->peers[d->n++];
        memset(p, 0, sizeof *p);
        p->node_id = hdr->src_node;
        p->first_seen_ns = now_ns;
    }
    bool was_alive = p->alive, is_new = p->last_seen_ns == 0 && !was_alive;
    bool changed =
        !is_new && (p->incarnation != hdr->src_incarnation || memcmp(&p->hello, &h, sizeof h) != 0);
    p->incarnation = hdr->src_incarnation;
    p->hello = h;
    p->last_seen_ns = now_ns ? now_ns : 1;
    p->alive = true;
    mv_chan_add_peer(d->cfg.chan, hdr->src_node, hdr->src, hdr->src_incarnation, now_ns);
    /* Events last: the callback may look the peer up again. */
    struct mv_disc_peer copy = *p;
    if (!was_alive)
        event(d, &copy, MV_DISC_UP);
    else if (changed)
        event(d, &copy, MV_DISC_CHANGED);
}

static uint64_t jittered(struct mv_disc *d)
{
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    uint64_t span = d->cfg.interval_ns / 5; /* +-10% */
    return d->cfg.interval_ns - span / 2 + (span ? d->rng % span : 0);
}

void mv_disc_tick(struct mv_disc *d, uint64_t now_ns)
{
    if (now_ns >= d->next_hello) {
        mv_chan_send_hello(d->cfg.chan, d->payload, (size_t)d->plen, now_ns);
        d->next_hello = now_ns + jittered(d);
    }
    for (unsigned i = 0; i < d->n; i++) {
        struct mv_disc_peer *p = &d->peers[i];
        if (p->alive && now_ns >= p->last_seen_ns + d->cfg.dead_after_ns) {
            p->alive = false;
            struct mv_disc_peer copy = *p;
            event(d, &copy, MV_DISC_DOWN);
        }
    }
}

uint64_t mv_disc_next_deadline(const struct mv_disc *d)
{
    uint64_t t = d->next_hello;
    for (unsigned i = 0; i < d->n; i++)
        if (d->peers[i].alive)
            t = MV_MIN(t, d->peers[i].last_seen_ns + d->cfg.dead_after_ns);
    return t;
}

unsigned mv_disc_peers(const struct mv_disc *d, struct mv_disc_peer *out, unsigned max)
{
    for (unsigned i = 0; i < d->n && i < max; i++)
        out[i] = d->peers[i];
    return d->n;
}

uint64_t mv_disc_hellos_rejected(const struct mv_disc *d)
{
    return d->rejected;
}
