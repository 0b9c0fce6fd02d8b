/* The agent's control protocol: operation codes carried in the control channel's `op` field
 * (mv/channel.h) and the JSON payloads of requests and replies (docs/agent.md).
 *
 * Every request payload is a JSON object (an empty payload means {}). The agent validates it
 * against the op's field table before anything runs: unknown keys, wrong types, out-of-range
 * numbers and malformed identifiers are rejected with a negative errno channel status and a
 * reply {"ok": false, "error": "..."}, and nothing changes. Successful replies are JSON objects
 * with "ok": true. */
#ifndef MV_AGENT_PROTO_H
#define MV_AGENT_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Operation codes. Values are part of the protocol: never renumber. 0x0130..0x014f are kept for
 * the VM lifecycle operations. */
enum mv_agent_op {
    MV_AGENT_OP_PING = 0x0101,
    MV_AGENT_OP_INVENTORY = 0x0102,
    MV_AGENT_OP_DRIVE_LIST = 0x0110,
    MV_AGENT_OP_DRIVE_FORMAT = 0x0111,
    MV_AGENT_OP_REPLICA_CREATE = 0x0112,
    MV_AGENT_OP_REPLICA_MAP = 0x0113,
    MV_AGENT_OP_REPLICA_UNMAP = 0x0114,
    MV_AGENT_OP_REPLICA_DELETE = 0x0115,
    MV_AGENT_OP_REPLICA_RESIZE = 0x0116,
    MV_AGENT_OP_PERFC_DUMP = 0x0120,
    MV_AGENT_OP_PERFC_GET = 0x0121,
    MV_AGENT_OP_PERFC_RESET = 0x0122,
    /* VM lifecycle (docs/agent.md "VM lifecycle"): every op names the VM by "uuid". */
    MV_AGENT_OP_VM_START = 0x0130,   /* spec (below) -> {uuid, state, pid} */
    MV_AGENT_OP_VM_STOP = 0x0131,    /* {uuid, force?, timeout_ms?} */
    MV_AGENT_OP_VM_REBOOT = 0x0132,  /* {uuid} */
    MV_AGENT_OP_VM_PAUSE = 0x0133,   /* {uuid} */
    MV_AGENT_OP_VM_UNPAUSE = 0x0134, /* {uuid} */
    MV_AGENT_OP_VM_DELETE = 0x0135,  /* {uuid}: stop if running, remove its run files */
    MV_AGENT_OP_VM_INFO = 0x0136,    /* {uuid} -> InstanceInformation */
    MV_AGENT_OP_VM_LIST = 0x0137,    /* {} -> {vms: [InstanceInformation...]} */
};

/* Datagram op of statistics reports on EtherType 0x88B6 (mv/dgram.h, mv/stats_frame.h). */
#define MV_AGENT_DGRAM_STATS 0x0001

#define MV_AGENT_MAX_REQUEST    65536 /* bytes of request JSON */
#define MV_AGENT_VDISK_ID_MAX   63    /* [A-Za-z0-9._:-]{1,63} */
#define MV_AGENT_PERFC_NAME_MAX 47
#define MV_AGENT_UUID_MAX       36 /* [A-Za-z0-9_-], first character alphanumeric */
#define MV_AGENT_VM_VCPUS_MAX   64 /* mvvmm's limit */
#define MV_AGENT_VM_MEM_MB_MAX  (1u << 20)
#define MV_AGENT_VM_DISKS_MAX   16
#define MV_AGENT_VM_NICS_MAX    8
#define MV_AGENT_NETWORK_ID_MAX 99999999999ull /* "mvbr<id>" fits IFNAMSIZ */
#define MV_AGENT_CPU_MAX        1023           /* highest CPU number in a cpuset/pin list */

/* Field types of request payloads. */
enum mv_agent_field_type {
    MV_AGENT_F_STRING, /* printable ASCII, 1..max bytes */
    MV_AGENT_F_ID,     /* [A-Za-z0-9._:-], 1..max bytes */
    MV_AGENT_F_PATH,   /* absolute path without "..", 2..max bytes */
    MV_AGENT_F_UINT,   /* integer min..max */
    MV_AGENT_F_BOOL,
    MV_AGENT_F_UUID,    /* [A-Za-z0-9_-], first alphanumeric, 1..max bytes (file-name safe) */
    MV_AGENT_F_MAC,     /* "aa:bb:cc:dd:ee:ff", unicast */
    MV_AGENT_F_CPULIST, /* "0-3,6": CPUs 0..MV_AGENT_CPU_MAX, ascending ranges, max bytes */
    MV_AGENT_F_ARRAY,   /* array of 0..max objects, each validated against sub[] */
};

struct mv_agent_field {
    const char *key;
    enum mv_agent_field_type type;
    int required;
    uint64_t min, max; /* UINT: value range; strings: max length; ARRAY: max elements */
    const struct mv_agent_field *sub; /* ARRAY: the fields of each element */
    unsigned n_sub;
};

struct mv_agent_op_desc {
    uint16_t op;
    const char *name; /* "perfc_dump" */
    const struct mv_agent_field *fields;
    unsigned n_fields;
    /* Rules across fields (vm_start: payload xor kernel, pin within cpuset, ...), run after
     * the table passed; NULL if none. 0, or -1 with a reason in err. */
    int (*check)(json_t *req, char *err, size_t errlen);
};

/* A CPU list ("0-3,6", ascending, CPUs 0..MV_AGENT_CPU_MAX) as a bitmap; *count CPUs are set,
 * and order[] (if not NULL, room for MV_AGENT_CPU_MAX + 1) gets them in the order written.
 * "2,3" and "3,2" are both valid (a pin list is an order); repeats are not. 0 or -1. */
#define MV_AGENT_CPUSET_WORDS ((MV_AGENT_CPU_MAX + 64) / 64)
int mv_agent_cpulist_parse(const char *s, uint64_t set[MV_AGENT_CPUSET_WORDS], unsigned *count,
                           uint16_t *order);

/* The descriptor of an op, NULL if unknown. By name too (for tools). */
const struct mv_agent_op_desc *mv_agent_op_lookup(uint16_t op);
const struct mv_agent_op_desc *mv_agent_op_by_name(const char *name);
const char *mv_agent_op_name(uint16_t op); /* "op 0x1234" style is the caller's job: NULL */

/* Parses and validates a request payload for op. Returns 0 with *out a new JSON object holding
 * only the validated keys, or -ENOSYS (unknown op), -EMSGSIZE (too large), -EINVAL (malformed or
 * invalid) with a reason in err; *out is NULL then. */
int mv_agent_request_parse(uint16_t op, const void *data, size_t len, json_t **out, char *err,
                           size_t errlen);

/* Reply payloads. Both return a malloc'd compact JSON string (length in *len), NULL on OOM. The
 * success form adds "ok": true to obj (and steals the reference). */
char *mv_agent_reply_ok(json_t *obj, size_t *len);
char *mv_agent_reply_error(const char *msg, size_t *len);

/* Decodes a reply payload: 0 with *out the object (ok true), or the status (<0) with the error
 * text in err; -EPROTO when the payload is not a reply object. */
int mv_agent_reply_parse(int32_t status, const void *data, size_t len, json_t **out, char *err,
                         size_t errlen);

/* Channel node id of a host: the last four bytes of its control MAC (the inventory node id,
 * mv/inventory.h, as a number). Never 0 for a real MAC; 0 only for 00:00:00:00. */
uint64_t mv_agent_node_id_from_mac(const uint8_t mac[6]);

#endif
