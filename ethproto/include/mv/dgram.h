/* Authenticated datagrams: the control envelope with type MV_CTRL_DGRAM, unreliable and
 * unsequenced but MAC-protected and replay-checked. Statistics frames (EtherType 0x88B6) ride in
 * here: the stats codec (mv/stats_frame.h) produces the payload, mv_dgram_seal() wraps it, and on
 * the collector mv_dgram_open() checks it and hands back the payload. */
#ifndef MV_DGRAM_H
#define MV_DGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "mv/auth.h"
#include "mv/ctrl_frame.h"

struct mv_dgram_tx {
    const struct mv_keyring *keys;
    uint8_t mac[6];
    uint64_t node_id;
    uint64_t incarnation;
    uint64_t counter; /* last counter used; mv_dgram_seal() increments it */
    uint32_t msg_id;
};
void mv_dgram_tx_init(struct mv_dgram_tx *tx, const struct mv_keyring *keys, const uint8_t mac[6],
                      uint64_t node_id, uint64_t incarnation);
/* Builds a complete signed frame to dst (broadcast allowed) on EtherType 0x88B6 (datagrams
 * never travel on the control EtherType, whose replay windows belong to the channel).
 * Payload up to mtu - 88 bytes. Returns the frame length or -EMSGSIZE / -ENOSPC / -ENOKEY. */
int mv_dgram_seal(struct mv_dgram_tx *tx, const uint8_t dst[6], uint16_t op, const void *payload,
                  size_t plen, uint8_t *out, size_t cap);

/* Receiver side: remembers each sender's incarnation and replay window (bounded table). */
#define MV_DGRAM_MAX_SENDERS 4096
struct mv_dgram_rx;
struct mv_dgram_msg {
    uint64_t src_node;
    uint64_t src_incarnation;
    const uint8_t *src_mac;
    uint16_t ethertype;
    uint16_t op;
    uint32_t msg_id;
    const uint8_t *payload; /* points into the frame */
    size_t len;
};
struct mv_dgram_rx *mv_dgram_rx_create(const struct mv_keyring *keys);
void mv_dgram_rx_destroy(struct mv_dgram_rx *rx);
/* Verifies a received frame (now_s: realtime seconds, for key expiry). MV_AUTH_OK fills *out;
 * anything else is counted by cause and must be dropped. */
enum mv_auth_cause mv_dgram_open(struct mv_dgram_rx *rx, const uint8_t *frame, size_t len,
                                 uint64_t now_s, struct mv_dgram_msg *out);
/* Rejections so far by cause (index enum mv_auth_cause; [MV_AUTH_OK] = accepted). */
void mv_dgram_rx_counters(const struct mv_dgram_rx *rx, uint64_t out[MV_AUTH_NCAUSES]);

#endif
