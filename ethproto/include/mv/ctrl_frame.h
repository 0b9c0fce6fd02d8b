/* Control frame codec (EtherType 0x88B5; the same envelope carries statistics datagrams on 0x88B6).
 * Layout (all integers big-endian), see docs/protocol.md for the byte-by-byte description:
 *   Ethernet header (14) | control header (72) | payload (payload_len) | MAC tag (16)
 * The codec only checks structure; authentication (the tag) lives in mv/auth.h. */
#ifndef MV_CTRL_FRAME_H
#define MV_CTRL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/port.h"

#define MV_CTRL_VERSION  1
#define MV_CTRL_HDR_LEN  72
#define MV_CTRL_TAG_LEN  16
#define MV_CTRL_OVERHEAD (MV_ETH_HLEN + MV_CTRL_HDR_LEN + MV_CTRL_TAG_LEN) /* 102 */
#define MV_CTRL_MAX_MSG  (1u << 20) /* largest reassembled message: 1 MiB */
#define MV_CTRL_MAX_SACK 16         /* SACK blocks in one ACK frame */

/* Offsets of header fields from the start of the Ethernet frame (for auth and the dissector). */
#define MV_CTRL_OFF_VERSION (MV_ETH_HLEN + 0)
#define MV_CTRL_OFF_KEYID   (MV_ETH_HLEN + 4)

enum mv_ctrl_type {
    MV_CTRL_DATA = 1,      /* reliable, sequenced fragment of a message */
    MV_CTRL_ACK = 2,       /* cumulative ack + window; payload = SACK blocks */
    MV_CTRL_HELLO = 3,     /* discovery broadcast; payload = TLVs (mv/discovery.h) */
    MV_CTRL_KEEPALIVE = 4, /* liveness probe; answered by an ACK */
    MV_CTRL_DGRAM = 5,     /* unreliable authenticated datagram: only (and always) on 0x88B6 */
    MV_CTRL_TYPE_MAX = 5,
};

/* Flags (16 bits). Unknown bits must be zero. */
#define MV_CTRL_F_REQUEST  0x0001 /* DATA: message is a request expecting a response */
#define MV_CTRL_F_RESPONSE 0x0002 /* DATA: message answers request msg id `ref` */
#define MV_CTRL_F_RETX     0x0004 /* this transmission is a retransmission (informational) */
#define MV_CTRL_F_ACKREQ   0x0008 /* please acknowledge immediately */
#define MV_CTRL_F_STALE    0x0010 /* ACK: your frame named an old incarnation of mine */
#define MV_CTRL_F_KNOWN    0x001f

struct mv_ctrl_hdr {
    uint8_t dst[6], src[6];
    uint16_t ethertype;
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint8_t key_id;
    uint16_t payload_len;
    uint64_t src_node;        /* sender node id (non-zero) */
    uint64_t src_incarnation; /* sender incarnation, increases on every restart (non-zero) */
    uint64_t dst_incarnation; /* receiver incarnation as the sender knows it; 0 = unknown */
    uint64_t counter;         /* per sender incarnation and EtherType, strictly increasing */
    uint32_t seq;             /* DATA: sequence number (non-zero); else 0 */
    uint32_t ack;             /* next sequence number the sender expects from the receiver */
    uint16_t window;          /* frames the sender accepts beyond ack */
    uint16_t op;              /* DATA/DGRAM: application operation code */
    uint32_t msg_id;          /* DATA/DGRAM: message number of the sender */
    uint32_t ref;             /* DATA with RESPONSE: the request's msg_id; else 0 */
    uint32_t msg_len;         /* DATA: total message length (<= MV_CTRL_MAX_MSG) */
    uint32_t frag_off;        /* DATA: offset of this fragment in the message */
    int32_t status;           /* DATA with RESPONSE: handler status (0 or -errno); else 0 */
};

enum mv_ctrl_err {
    MV_CTRL_OK = 0,
    MV_CTRL_ERR_TRUNCATED, /* shorter than header + tag, or than payload_len says */
    MV_CTRL_ERR_LENGTH,    /* longer than header + payload + tag */
    MV_CTRL_ERR_ETHERTYPE, /* not 0x88B5 / 0x88B6 */
    MV_CTRL_ERR_VERSION,   /* unknown protocol version */
    MV_CTRL_ERR_TYPE,      /* unknown frame type, or type not allowed on this EtherType */
    MV_CTRL_ERR_FLAGS,     /* unknown or contradictory flags */
    MV_CTRL_ERR_FIELD,     /* zero node/incarnation, non-zero reserved, bad seq */
    MV_CTRL_ERR_FRAGMENT,  /* msg_len too big, fragment beyond msg_len, empty fragment */
    MV_CTRL_ERR_SACK,      /* ACK payload not whole, too many or malformed SACK blocks */
    MV_CTRL_ERR_COUNT
};
const char *mv_ctrl_strerror(enum mv_ctrl_err err);
const char *mv_ctrl_type_name(unsigned type);

/* Writes Ethernet + control header + payload into buf and leaves MV_CTRL_TAG_LEN bytes of room
 * for the tag (zeroed; mv_auth_seal() fills it). hdr->payload_len is ignored (plen is used).
 * Returns the full frame length including the tag, or -ENOSPC / -EINVAL. */
int mv_ctrl_encode(const struct mv_ctrl_hdr *hdr, const void *payload, size_t plen, uint8_t *buf,
                   size_t cap);

/* Parses and validates a whole frame (including the tag's room). On success fills *hdr and points
 * *payload into frame. Never reads outside [frame, frame+len). */
enum mv_ctrl_err mv_ctrl_decode(const uint8_t *frame, size_t len, struct mv_ctrl_hdr *hdr,
                                const uint8_t **payload);

/* Largest DATA payload per frame for an interface MTU (payload bytes after the Ethernet header). */
static inline unsigned mv_ctrl_max_fragment(unsigned mtu)
{
    return mtu > MV_CTRL_HDR_LEN + MV_CTRL_TAG_LEN ? mtu - MV_CTRL_HDR_LEN - MV_CTRL_TAG_LEN : 0;
}

/* SACK blocks: half-open ranges [start, end) of sequence numbers received above the cumulative
 * ack. Wire: 8 bytes each, start then end, big-endian. */
struct mv_ctrl_sack {
    uint32_t start, end;
};
/* Returns bytes written (8 * n) or -ENOSPC / -EINVAL (n > MV_CTRL_MAX_SACK). */
int mv_ctrl_sack_encode(const struct mv_ctrl_sack *blocks, unsigned n, uint8_t *buf, size_t cap);
/* Returns the block count, or -EINVAL for a partial block, too many, or start >= end / span
 * larger than 65535. */
int mv_ctrl_sack_decode(const uint8_t *buf, size_t len, struct mv_ctrl_sack *blocks, unsigned max);

/* Sequence arithmetic modulo 2^32. */
static inline bool mv_seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}
static inline bool mv_seq_le(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}

#endif
