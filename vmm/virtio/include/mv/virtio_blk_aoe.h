/* virtio-blk backend on an AoE target through libmvblk (storage/include/mv/mvblk.h).
 *
 * Disk spec (mvvmm --disk):
 *   aoe:SHELF.SLOT,if=IFACE[,target=MAC][,ro][,serial=S][,timeout=MS][,dead=MS][,depth=N]
 *   aoe:SHELF.SLOT,unix=PATH[,ro][,serial=S][,timeout=MS][,dead=MS][,depth=N]
 * if= talks raw Ethernet on IFACE (needs CAP_NET_RAW); unix= talks to the host-local mvstored
 * over its AF_UNIX AoE port. target= accepts only the target with that MAC when several
 * answer for SHELF.SLOT. timeout= bounds the attach (discovery + IDENTIFY, default 3000 ms);
 * dead= is how long a silent target is retried before its requests fail with IOERR (default
 * 10000 ms); depth= is the most virtio requests in flight (default 128). serial= is the GET_ID
 * answer (default: the target's IDENTIFY serial). */
#ifndef MV_VIRTIO_BLK_AOE_H
#define MV_VIRTIO_BLK_AOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/virtio_blk.h"

#define MV_BLK_AOE_PREFIX      "aoe:"
#define MV_BLK_AOE_IFNAME_MAX  16  /* IFNAMSIZ, NUL included */
#define MV_BLK_AOE_PATH_MAX    108 /* sun_path, NUL included */
#define MV_BLK_AOE_SERIAL_MAX  20
#define MV_BLK_AOE_TIMEOUT_DEF 3000u
#define MV_BLK_AOE_DEAD_DEF    10000u
#define MV_BLK_AOE_DEPTH_DEF   128u
#define MV_BLK_AOE_DEPTH_MAX   1024u

struct mv_blk_aoe_spec {
    uint16_t shelf;                      /* 0..65534 (0xffff is the broadcast shelf) */
    uint8_t slot;                        /* 0..254 (0xff is the broadcast slot) */
    char ifname[MV_BLK_AOE_IFNAME_MAX];  /* if=, or "" */
    char unix_path[MV_BLK_AOE_PATH_MAX]; /* unix=, or "" */
    bool has_target;
    uint8_t target_mac[6];
    bool read_only;
    char serial[MV_BLK_AOE_SERIAL_MAX + 1]; /* "" = from IDENTIFY */
    unsigned timeout_ms, dead_ms, queue_depth;
};

/* True if spec names an AoE disk (starts with "aoe:"). */
bool mv_blk_aoe_spec_is_aoe(const char *spec);

/* Parses an "aoe:..." disk spec. 0, or -EINVAL with a message naming the problem in err. */
int mv_blk_aoe_spec_parse(const char *spec, struct mv_blk_aoe_spec *out, char *err, size_t errlen);

/* Opens the port, finds and identifies the target (retrying discovery until timeout_ms) and
 * fills out (capacity from IDENTIFY). serial_out (MV_BLK_AOE_SERIAL_MAX + 1 bytes, may be NULL)
 * receives the target's serial. 0 or -errno with a message in err (target absent: -ENOENT). */
int mv_blk_aoe_backend_open(const struct mv_blk_aoe_spec *spec, struct mv_blk_backend *out,
                            char *serial_out, char *err, size_t errlen);

/* Counters of an open AoE backend (be = mv_blk_backend.be of one made by the function above). */
struct mv_blk_aoe_stats {
    uint64_t requests, parts, bounced, errors, reattaches;
    uint64_t frames_sent, retransmits;
    bool target_failed;
};
void mv_blk_aoe_backend_stats(void *be, struct mv_blk_aoe_stats *out);

#endif
