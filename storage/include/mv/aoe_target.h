/* The AoE r11 target of mvstored as a pure function from a request frame to reply frames: it
 * owns no socket, so tests and fuzzers drive it in-process and the daemon feeds it from mv_port.
 * Each mapped replica of each attached drive is one AoE target (shelf.slot) with its own config
 * string, Mac Mask list and reservation list (kept in memory, as in vblade). */
#ifndef MV_AOE_TARGET_H
#define MV_AOE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/aoe_frame.h"
#include "mv/drive.h"

#define AOE_TARGET_MAX_DRIVES 64
#define AOE_TARGET_MAX_MASK   64  /* Mac Mask list entries per target */
#define AOE_TARGET_MAX_RESV   255 /* reservation list entries (nmacs is 8 bits) */

/* ATA status and error register bits used in replies. */
#define ATA_STATUS_DRDY 0x40
#define ATA_STATUS_DF   0x20
#define ATA_STATUS_ERR  0x01
#define ATA_ERR_ABRT    0x04
#define ATA_ERR_IDNF    0x10
#define ATA_ERR_UNC     0x40

#define ATA_CMD_READ        0x20
#define ATA_CMD_READ_EXT    0x24
#define ATA_CMD_WRITE       0x30
#define ATA_CMD_WRITE_EXT   0x34
#define ATA_CMD_CHECK_POWER 0xe5
#define ATA_CMD_FLUSH       0xe7
#define ATA_CMD_FLUSH_EXT   0xea
#define ATA_CMD_IDENTIFY    0xec

struct aoe_target_config {
    uint8_t mac[6];        /* the address replies come from */
    unsigned mtu;          /* payload MTU of the port: sets sectors per frame (0 = 1500) */
    uint16_t buffer_count; /* advertised outstanding requests per initiator (0 = 64) */
};

#define AOE_TARGET_MAX_IO 8

/* One data transfer the caller performs for an asynchronous reply (see aoe_target_set_async). */
struct aoe_target_io {
    int fd;
    uint64_t off;
    uint32_t len;
    uint8_t *mem;
    bool write;
};

struct aoe_target_reply {
    uint8_t *buf; /* caller's buffer of cap bytes (MV_ETH_MAX_FRAME is always enough) */
    size_t cap;
    size_t len; /* filled in */
    /* Asynchronous mode only. bounce: caller's 4096-aligned buffer of at least
     * aoe_target_sectors_per_frame() * 512 bytes that write data is copied into, since the request
     * frame need not outlive the call. When nio > 0 the reply (already built as a success) may go
     * out only after the caller did these transfers; if one fails, aoe_target_fail_io() turns it
     * into an ATA error reply. For O_DIRECT drives, read data lands at buf + AOE_ATA_HDR_LEN: place
     * buf so that address is 512-aligned. */
    uint8_t *bounce;
    unsigned nio;
    struct aoe_target_io io[AOE_TARGET_MAX_IO];
};

struct aoe_target_stats {
    uint64_t requests, replies, dropped, masked, reserved_conflicts, ata_errors, aoe_errors;
    uint64_t read_sectors, written_sectors;
};

struct aoe_target;

int aoe_target_create(const struct aoe_target_config *cfg, struct aoe_target **out);
void aoe_target_destroy(struct aoe_target *t);

/* Attaches a drive (the target does not own it). Its mapped replicas become targets. */
int aoe_target_add_drive(struct aoe_target *t, struct mv_drive *d);
void aoe_target_remove_drive(struct aoe_target *t, struct mv_drive *d);
/* Re-reads which replicas are mapped (after create/map/unmap/resize/delete); the state of
 * targets that stay (config string, mask, reservation) is kept. */
int aoe_target_refresh(struct aoe_target *t);
unsigned aoe_target_count(const struct aoe_target *t);
unsigned aoe_target_sectors_per_frame(const struct aoe_target *t);

/* Handles one received frame. Fills up to max replies (a broadcast Query Config gets one per
 * target) and returns how many; 0 means drop (not for us, masked, a response, no such target). */
unsigned aoe_target_handle_frame(struct aoe_target *t, const uint8_t *frame, size_t len,
                                 struct aoe_target_reply *replies, unsigned max);

void aoe_target_get_stats(const struct aoe_target *t, struct aoe_target_stats *out);

/* Asynchronous data path: READ/WRITE replies come back with their transfers in reply->io instead
 * of being done inside aoe_target_handle_frame() (metadata work still happens inside). Replies
 * without a bounce buffer are served synchronously as before. */
void aoe_target_set_async(struct aoe_target *t, bool on);
/* The transfers of r failed with err (-errno): r becomes an ATA error reply (ABRT for writes,
 * UNC for reads). */
void aoe_target_fail_io(struct aoe_target *t, struct aoe_target_reply *r, int err);

#endif
