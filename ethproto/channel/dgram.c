/* Authenticated datagrams (statistics): seal with the cluster key, open with replay checking. */
#include "mv/dgram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void mv_dgram_tx_init(struct mv_dgram_tx *tx, const struct mv_keyring *keys, const uint8_t mac[6],
                      uint64_t node_id, uint64_t incarnation)
{
    memset(tx, 0, sizeof *tx);
    tx->keys = keys;
    memcpy(tx->mac, mac, 6);
    tx->node_id = node_id;
    tx->incarnation = incarnation;
}

int mv_dgram_seal(struct mv_dgram_tx *tx, const uint8_t dst[6], uint16_t op, const void *payload,
                  size_t plen, uint8_t *out, size_t cap)
{
    if (plen > MV_ETH_MAX_FRAME - MV_CTRL_OVERHEAD)
        return -EMSGSIZE;
    struct mv_ctrl_hdr h = {
        .ethertype = MV_ETHERTYPE_STATS,
        .version = MV_CTRL_VERSION,
        .type = MV_CTRL_DGRAM,
        .src_node = tx->node_id,
        .src_incarnation = tx->incarnation,
        .counter = tx->counter + 1,
        .op = op,
        .msg_id = tx->msg_id + 1,
    };
    memcpy(h.dst, dst, 6);
    memcpy(h.src, tx->mac, 6);
    int len = mv_ctrl_encode(&h, payload, plen, out, cap);
    if (len < 0)
        return len;
    int rc = mv_auth_seal(tx->keys, out, (size_t)len);
    if (rc)
        return rc;
    tx->counter++;
    tx->msg_id++;
    return len;
}

struct dgram_sender {
    uint64_t node;
    struct mv_replay_window win;
};

struct mv_dgram_rx {
    const struct mv_keyring *keys;
    struct dgram_sender *senders; /* sorted by node id */
    unsigned n, cap;
    uint64_t counters[MV_AUTH_NCAUSES];
};

struct mv_dgram_rx *mv_dgram_rx_create(const struct mv_keyring *keys)
{
    struct mv_dgram_rx *rx = calloc(1, sizeof *rx);
    if (rx)
        rx->keys = keys;
    return rx;
}

void mv_dgram_rx_destroy(struct mv_dgram_rx *rx)
{
    if (!rx)
        return;
    free(rx->senders);
    free(rx);
}

/* Binary search; *pos is where node is or would go. */
static struct dgram_sender *find_sender(struct mv_dgram_rx *rx, uint64_t node, unsigned *pos)
{
    unsigned lo = 0, hi = rx->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (rx->senders[mid].node < node)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return lo < rx->n && rx->senders[lo].node == node ? &rx->senders[lo] : NULL;
}

static enum mv_auth_cause count(struct mv_dgram_rx *rx, enum mv_auth_cause c)
{
    rx->counters[c]++;
    return c;
}

enum mv_auth_cause mv_dgram_open(struct mv_dgram_rx *rx, const uint8_t *frame, size_t len,
                                 uint64_t now_s, struct mv_dgram_msg *out)
{
    struct mv_ctrl_hdr h;
    const uint8_t *pl;
    if (mv_ctrl_decode(frame, len, &h, &pl) != MV_CTRL_OK || h.type != MV_CTRL_DGRAM)
        return count(rx, MV_AUTH_MALFORMED);
    enum mv_auth_cause c = mv_auth_verify(rx->keys, frame, len, now_s);
    if (c != MV_AUTH_OK)
        return count(rx, c);
    unsigned pos;
    struct dgram_sender *s = find_sender(rx, h.src_node, &pos);
    if (!s) {
        if (rx->n == MV_DGRAM_MAX_SENDERS)
            return count(rx, MV_AUTH_REPLAY); /* cannot track it, so cannot vouch for it */
        if (rx->n == rx->cap) {
            unsigned ncap = rx->cap ? rx->cap * 2 : 16;
            struct dgram_sender *ns = realloc(rx->senders, ncap * sizeof *ns);
            if (!ns)
                return count(rx, MV_AUTH_REPLAY);
            rx->senders = ns;
            rx->cap = ncap;
        }
        memmove(&rx->senders[pos + 1], &rx->senders[pos], (rx->n - pos) * sizeof *s);
        rx->n++;
        s = &rx->senders[pos];
        memset(s, 0, sizeof *s);
        s->node = h.src_node;
    }
    c = mv_replay_check_commit(&s->win, h.src_incarnation, h.counter);
    if (c != MV_AUTH_OK)
        return count(rx, c);
    out->src_node = h.src_node;
    out->src_incarnation = h.src_incarnation;
    out->src_mac = frame + 6;
    out->ethertype = h.ethertype;
    out->op = h.op;
    out->msg_id = h.msg_id;
    out->payload = pl;
    out->len = h.payload_len;
    return count(rx, MV_AUTH_OK);
}

void mv_dgram_rx_counters(const struct mv_dgram_rx *rx, uint64_t out[MV_AUTH_NCAUSES])
{
    memcpy(out, rx->counters, sizeof rx->counters);
}
