/* Discovery: each node broadcasts an authenticated HELLO (node id, MAC, hostname, roles, software
 * version, fault-domain labels blade/chassis/rack) every interval; receivers keep a peer table with
 * liveness (last seen; dead after a timeout) and get callbacks on peer up/down. HELLOs ride on the
 * control channel (type MV_CTRL_HELLO), which authenticates them and replay-checks them; the
 * discovery module tells the channel about every peer it learns (mv_chan_add_peer()).
 *
 * HELLO payload: a sequence of TLVs, each  type (1 byte) | length (1 byte) | value. Unknown types
 * are skipped; a TLV running past the payload, a duplicate known TLV, or a bad fixed-size value
 * rejects the whole HELLO. */
#ifndef MV_DISCOVERY_H
#define MV_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/channel.h"

enum mv_hello_tlv {
    MV_HELLO_TLV_MAC = 1,      /* 6 bytes */
    MV_HELLO_TLV_ROLES = 2,    /* 4 bytes, MV_ROLE_* bits */
    MV_HELLO_TLV_HOSTNAME = 3, /* 1..63 bytes text */
    MV_HELLO_TLV_VERSION = 4,  /* 1..31 bytes text */
    MV_HELLO_TLV_BLADE = 5,    /* 0..31 bytes text */
    MV_HELLO_TLV_CHASSIS = 6,  /* 0..31 bytes text */
    MV_HELLO_TLV_RACK = 7,     /* 0..31 bytes text */
    MV_HELLO_TLV_INTERVAL = 8, /* 4 bytes: the sender's HELLO interval in ms */
};

#define MV_ROLE_HYPERVISOR 0x1
#define MV_ROLE_CONTROLLER 0x2
#define MV_ROLE_STORAGE    0x4

#define MV_HELLO_HOSTNAME_MAX 63
#define MV_HELLO_LABEL_MAX    31

struct mv_hello {
    uint8_t mac[6];
    uint32_t roles;
    uint32_t interval_ms;
    char hostname[MV_HELLO_HOSTNAME_MAX + 1];
    char version[MV_HELLO_LABEL_MAX + 1];
    char blade[MV_HELLO_LABEL_MAX + 1];
    char chassis[MV_HELLO_LABEL_MAX + 1];
    char rack[MV_HELLO_LABEL_MAX + 1];
};

/* Returns the payload length or -ENOSPC / -EINVAL (strings too long or with control chars). */
int mv_hello_encode(const struct mv_hello *h, uint8_t *buf, size_t cap);
/* Returns 0 or -EINVAL (malformed; *h unspecified). MAC and hostname are required. */
int mv_hello_decode(const uint8_t *buf, size_t len, struct mv_hello *h);
const char *mv_role_names(uint32_t roles, char *buf, size_t cap); /* "hypervisor,storage" */
int mv_role_parse(const char *s, uint32_t *roles);                /* same format */

struct mv_disc_peer {
    uint64_t node_id;
    uint64_t incarnation;
    struct mv_hello hello;
    uint64_t first_seen_ns, last_seen_ns;
    bool alive;
};

enum mv_disc_event { MV_DISC_UP, MV_DISC_DOWN, MV_DISC_CHANGED };
typedef void (*mv_disc_fn)(void *user, const struct mv_disc_peer *peer, enum mv_disc_event ev);

struct mv_disc_config {
    struct mv_chan *chan; /* sends through it; call mv_disc_handle_hello from its on_hello */
    struct mv_hello self;
    uint64_t interval_ns;   /* 0 = 500 ms; each HELLO is jittered +-10% */
    uint64_t dead_after_ns; /* 0 = 4 intervals */
    unsigned max_peers;     /* 0 = 1024 */
    mv_disc_fn on_event;
    void *cb_user;
};

struct mv_disc;
int mv_disc_create(const struct mv_disc_config *cfg, struct mv_disc **out);
void mv_disc_destroy(struct mv_disc *d);
/* Plug into mv_chan_config.on_hello (user = the mv_disc). */
void mv_disc_handle_hello(void *disc, const struct mv_ctrl_hdr *hdr, const uint8_t *payload,
                          size_t len, uint64_t now_ns);
void mv_disc_tick(struct mv_disc *d, uint64_t now_ns); /* sends HELLOs, expires peers */
uint64_t mv_disc_next_deadline(const struct mv_disc *d);
/* Fills up to max peers (alive or not); returns the total count. */
unsigned mv_disc_peers(const struct mv_disc *d, struct mv_disc_peer *out, unsigned max);
const struct mv_disc_peer *mv_disc_find(const struct mv_disc *d, uint64_t node_id);
uint64_t mv_disc_hellos_rejected(const struct mv_disc *d); /* authentic but malformed HELLOs */

#endif
