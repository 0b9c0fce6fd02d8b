/* AoE (ATA over Ethernet, Coraid protocol definition rev 11) frame codec.
 *
 * aoe_frame_parse() turns a whole Ethernet frame into a struct aoe_msg whose pointers refer into
 * the frame (no copies); aoe_frame_build() does the reverse and pads to MV_ETH_ZLEN. Every length
 * and count is checked against the frame before it is used; a rejected frame gets a reason and,
 * where the spec defines one, the AoE error a target should answer with. Replies from other
 * targets are accepted as they come (Debian's vblade neither pads nor echoes the ATA sector
 * count), so the parser never ties the data length to the sector count: the caller does. */
#ifndef MV_AOE_FRAME_H
#define MV_AOE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/port.h"

#define AOE_VERSION      1
#define AOE_SECTOR_SIZE  512
#define AOE_MAX_CFG_LEN  1024
#define AOE_HDR_LEN      (MV_ETH_HLEN + 10) /* Ethernet + AoE common header */
#define AOE_ATA_HDR_LEN  (AOE_HDR_LEN + 12)
#define AOE_CFG_HDR_LEN  (AOE_HDR_LEN + 8)
#define AOE_MASK_HDR_LEN (AOE_HDR_LEN + 4)
#define AOE_MASK_DIR_LEN 8
#define AOE_RESV_HDR_LEN (AOE_HDR_LEN + 2)
#define AOE_SHELF_ANY    0xffff /* broadcast major */
#define AOE_SLOT_ANY     0xff   /* broadcast minor */

/* Header flags (low nibble of the ver/flags byte). */
#define AOE_FLAG_RESPONSE 0x08
#define AOE_FLAG_ERROR    0x04

enum aoe_cmd {
    AOE_CMD_ATA = 0,
    AOE_CMD_CONFIG = 1,
    AOE_CMD_MASK = 2,
    AOE_CMD_RESERVE = 3,
    AOE_CMD_VENDOR_MIN = 0xf0, /* 0xf0..0xff: vendor specific (see docs/aoe.md) */
};

enum aoe_error {
    AOE_ERR_NONE = 0,
    AOE_ERR_BAD_CMD = 1,     /* unrecognized command code */
    AOE_ERR_BAD_ARG = 2,     /* bad argument parameter */
    AOE_ERR_UNAVAILABLE = 3, /* device unavailable */
    AOE_ERR_CFG_PRESENT = 4, /* config string present */
    AOE_ERR_BAD_VERSION = 5, /* unsupported version */
    AOE_ERR_RESERVED = 6,    /* target is reserved */
};

/* ATA aflags. */
#define AOE_AFLAG_EXT   0x40 /* LBA48 */
#define AOE_AFLAG_DEV   0x10 /* device/head register */
#define AOE_AFLAG_ASYNC 0x02
#define AOE_AFLAG_WRITE 0x01

enum aoe_ccmd {
    AOE_CCMD_READ = 0,
    AOE_CCMD_TEST = 1,        /* reply only if the config string equals ours */
    AOE_CCMD_TEST_PREFIX = 2, /* reply only if ours starts with it */
    AOE_CCMD_SET = 3,         /* set if empty, else error 4 */
    AOE_CCMD_FORCE_SET = 4,
};

enum aoe_mcmd { AOE_MCMD_READ = 0, AOE_MCMD_EDIT = 1 };
enum aoe_dcmd { AOE_DCMD_NONE = 0, AOE_DCMD_ADD = 1, AOE_DCMD_DELETE = 2 };
enum aoe_merror {
    AOE_MERR_NONE = 0,
    AOE_MERR_UNSPEC = 1,
    AOE_MERR_BAD_DCMD = 2,
    AOE_MERR_FULL = 3
};
enum aoe_rcmd { AOE_RCMD_READ = 0, AOE_RCMD_SET = 1, AOE_RCMD_FORCE_SET = 2 };

struct aoe_ata {
    uint8_t aflags;
    uint8_t err_feature;
    uint8_t sector_count;
    uint8_t cmd_status;
    uint64_t lba; /* 48 bits */
    const uint8_t *data;
    size_t data_len; /* bytes after the ATA header, padding included */
};

struct aoe_cfg {
    uint16_t buffer_count;
    uint16_t firmware;
    uint8_t sector_count; /* max sectors per ATA frame */
    uint8_t aoe_ver;      /* high nibble of the AoE/ccmd byte */
    uint8_t ccmd;
    uint16_t cfg_len;
    const uint8_t *cfg;
};

struct aoe_mask {
    uint8_t mcmd;
    uint8_t merror;
    uint8_t dir_count;
    const uint8_t *dirs; /* dir_count entries of AOE_MASK_DIR_LEN bytes: 0, dcmd, mac[6] */
};

struct aoe_reserve {
    uint8_t rcmd;
    uint8_t nmacs;
    const uint8_t *macs; /* nmacs * 6 bytes */
};

struct aoe_vendor {
    const uint8_t *data;
    size_t len;
};

struct aoe_msg {
    uint8_t dst[6], src[6];
    uint8_t ver;
    uint8_t flags; /* AOE_FLAG_* */
    uint8_t error; /* enum aoe_error, meaningful with AOE_FLAG_ERROR */
    uint16_t major;
    uint8_t minor;
    uint8_t cmd;
    uint32_t tag;
    union {
        struct aoe_ata ata;
        struct aoe_cfg cfg;
        struct aoe_mask mask;
        struct aoe_reserve reserve;
        struct aoe_vendor vendor;
    } u;
};

/* Why a frame was rejected. reply_error is the AoE error a target answers with, or 0 when the
 * frame must be dropped silently (not AoE, too short to carry a header, a response). */
struct aoe_parse_error {
    const char *reason;
    uint8_t reply_error;
};

/* Parses a whole Ethernet frame. Returns 0, or -EINVAL with *why filled in (why may be NULL).
 * On a header-level success followed by a body failure, msg's header fields are valid, so a
 * target can still address an error reply. */
int aoe_frame_parse(const uint8_t *frame, size_t len, struct aoe_msg *msg,
                    struct aoe_parse_error *why);

/* Serializes msg into buf (cap bytes), padding with zeros to MV_ETH_ZLEN. Data pointers in msg may
 * point into buf at their final position (zero copy) or anywhere else (copied). Returns the frame
 * length, or 0 when it does not fit or a field is out of range (cfg_len > 1024, lba >= 2^48). */
size_t aoe_frame_build(const struct aoe_msg *msg, uint8_t *buf, size_t cap);

/* Initializes the header of a reply to req: swapped addresses, response flag, same tag/cmd. */
void aoe_msg_init_reply(struct aoe_msg *reply, const struct aoe_msg *req, const uint8_t self[6]);

/* Mac Mask directive helpers. */
void aoe_mask_dir_get(const struct aoe_mask *mask, unsigned i, uint8_t *dcmd, uint8_t mac[6]);
void aoe_mask_dir_put(uint8_t *out, uint8_t dcmd, const uint8_t mac[6]);

/* Sectors an ATA frame can carry over a link with this payload MTU (capped at 255). */
unsigned aoe_max_sectors_for_mtu(unsigned mtu);

const char *aoe_error_name(uint8_t error);
const char *aoe_cmd_name(uint8_t cmd);

#endif
