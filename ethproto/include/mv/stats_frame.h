/* Statistics report codec: the payload of EtherType 0x88B6 frames (D2.3 §2.6.1).
 *
 * Every interval each host's agent sends one report holding every metric group of D2.3 §2.6.1:
 * the host (MicroVisor), physical CPUs, NUMA nodes, CPU pools, guest domains, vCPUs, guest
 * memory, VIFs and VBDs. The payload is versioned TLV: a report header, then groups (type,
 * record count, length) of records (a key, then typed fields with a field id). Unknown groups
 * and fields are skipped, so newer senders stay readable. A report larger than one frame is cut
 * into self-contained chunks: each decodes on its own and a lost chunk loses only its records.
 * Byte layout: docs/stats.md. Authentication is the envelope's job (mv/ctrl_frame.h), not ours.
 *
 * A struct mv_stats_report is large (fixed-capacity arrays, see sizeof): allocate it on the
 * heap, zeroed (calloc or mv_stats_report_reset()).
 */
#ifndef MV_STATS_FRAME_H
#define MV_STATS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MV_STATS_ETHERTYPE 0x88B6
#define MV_STATS_VERSION   1

#define MV_STATS_HEADER_LEN  34    /* fixed part of the version-1 report header */
#define MV_STATS_MAX_PAYLOAD 65535 /* lengths on the wire are 16-bit */
#define MV_STATS_MAX_CHUNKS  1024
#define MV_STATS_MAX_PCPUS   512
#define MV_STATS_MAX_NUMA    64
#define MV_STATS_MAX_POOLS   64
#define MV_STATS_MAX_GUESTS  256
#define MV_STATS_MAX_VCPUS   1024
#define MV_STATS_MAX_VIFS    512
#define MV_STATS_MAX_VBDS    512
#define MV_STATS_NAME_MAX    32 /* VIF / VBD ids and device names, NUL included */
#define MV_STATS_BACKING_MAX 16 /* VBD backing device type, NUL included */
#define MV_STATS_UUID_LEN    16

/* Group types on the wire. Values are part of the format: never renumber. */
enum mv_stats_group {
    MV_STATS_G_HOST = 1,      /* per MicroVisor (exactly one record, empty key) */
    MV_STATS_G_PCPU = 2,      /* per physical CPU; key: cpu id */
    MV_STATS_G_NUMA = 3,      /* per NUMA node; key: node id */
    MV_STATS_G_POOL = 4,      /* per CPU pool; key: pool id */
    MV_STATS_G_GUEST = 5,     /* per guest domain; key: VM uuid */
    MV_STATS_G_VCPU = 6,      /* per vCPU; key: VM uuid + vcpu id */
    MV_STATS_G_GUEST_MEM = 7, /* memory of a guest; key: VM uuid */
    MV_STATS_G_VIF = 8,       /* per virtual interface; key: VM uuid + VIF id */
    MV_STATS_G_VBD = 9,       /* per virtual block device; key: VM uuid + VBD id */
};
#define MV_STATS_G_FIRST MV_STATS_G_HOST
#define MV_STATS_G_LAST  MV_STATS_G_VBD

/* Field value types on the wire. */
enum mv_stats_type {
    MV_STATS_T_UINT = 1, /* unsigned, big-endian, 1..8 bytes (senders use the fewest) */
    MV_STATS_T_STR = 2,  /* printable ASCII, no NUL, 0..255 bytes */
};

/* Field ids per group (1..31). Values are part of the format: never renumber. Every record has
 * a `present` mask: bit (1u << id) is set for each field the sender included. */
enum {
    MV_STATS_F_HOST_TIMESTAMP = 1, /* ns since the epoch */
    MV_STATS_F_HOST_PCPUS = 2,
    MV_STATS_F_HOST_CPU_POOLS = 3,
    MV_STATS_F_HOST_NUMA_NODES = 4,
    MV_STATS_F_HOST_GUESTS = 5,
    MV_STATS_F_HOST_MEM_TOTAL = 6, /* bytes */
    MV_STATS_F_HOST_MEM_FREE = 7,  /* bytes */
    MV_STATS_F_HOST_LOAD_AVG = 8,  /* 1-minute load average x 1000 */

    MV_STATS_F_PCPU_TIMESTAMP = 1,
    MV_STATS_F_PCPU_CPU_TIME = 2, /* ns busy since boot (counter) */

    MV_STATS_F_NUMA_MEM_TOTAL = 1,
    MV_STATS_F_NUMA_MEM_FREE = 2,

    MV_STATS_F_POOL_LOAD_AVG = 1, /* x 1000 */
    MV_STATS_F_POOL_CPUS = 2,
    MV_STATS_F_POOL_GUESTS = 3,

    MV_STATS_F_VCPU_TIMESTAMP = 1,
    MV_STATS_F_VCPU_UTIL = 2,     /* utilisation percentage x 100 (0..10000) */
    MV_STATS_F_VCPU_CPU_TIME = 3, /* ns run since the VM started (counter) */

    MV_STATS_F_GMEM_TIMESTAMP = 1,
    MV_STATS_F_GMEM_USED = 2, /* bytes currently used */
    MV_STATS_F_GMEM_MAX = 3,  /* bytes available at most */

    MV_STATS_F_VIF_TIMESTAMP = 1,
    MV_STATS_F_VIF_RX_BYTES = 2,
    MV_STATS_F_VIF_RX_PACKETS = 3,
    MV_STATS_F_VIF_RX_ERRORS = 4,
    MV_STATS_F_VIF_RX_DROPS = 5,
    MV_STATS_F_VIF_TX_BYTES = 6,
    MV_STATS_F_VIF_TX_PACKETS = 7,
    MV_STATS_F_VIF_TX_ERRORS = 8,
    MV_STATS_F_VIF_TX_DROPS = 9,

    MV_STATS_F_VBD_TIMESTAMP = 1,
    MV_STATS_F_VBD_BACKING = 2,     /* backing device type, e.g. "aoe", "file" */
    MV_STATS_F_VBD_DEVICE = 3,      /* device name, e.g. "vda" */
    MV_STATS_F_VBD_OUTSTANDING = 4, /* I/O requests in flight */
    MV_STATS_F_VBD_RD_REQ = 5,
    MV_STATS_F_VBD_WR_REQ = 6,
    MV_STATS_F_VBD_RD_SECT = 7,
    MV_STATS_F_VBD_WR_SECT = 8,
};

struct mv_stats_host {
    uint32_t present;
    uint64_t timestamp_ns;
    uint32_t pcpus;
    uint32_t cpu_pools;
    uint32_t numa_nodes;
    uint32_t guests;
    uint64_t mem_total;
    uint64_t mem_free;
    uint32_t load_avg_milli;
};

struct mv_stats_pcpu {
    uint32_t cpu_id; /* key */
    uint32_t present;
    uint64_t timestamp_ns;
    uint64_t cpu_time_ns;
};

struct mv_stats_numa {
    uint32_t node_id; /* key */
    uint32_t present;
    uint64_t mem_total;
    uint64_t mem_free;
};

struct mv_stats_pool {
    uint32_t pool_id; /* key */
    uint32_t present;
    uint32_t load_avg_milli;
    uint32_t cpus;
    uint32_t guests;
};

struct mv_stats_guest {
    uint8_t uuid[MV_STATS_UUID_LEN]; /* key */
    uint32_t present;
};

struct mv_stats_vcpu {
    uint8_t uuid[MV_STATS_UUID_LEN]; /* key, with vcpu_id */
    uint32_t vcpu_id;
    uint32_t present;
    uint64_t timestamp_ns;
    uint32_t util_centipct;
    uint64_t cpu_time_ns;
};

struct mv_stats_guest_mem {
    uint8_t uuid[MV_STATS_UUID_LEN]; /* key */
    uint32_t present;
    uint64_t timestamp_ns;
    uint64_t used;
    uint64_t max;
};

struct mv_stats_vif {
    uint8_t uuid[MV_STATS_UUID_LEN]; /* key, with vif_id */
    char vif_id[MV_STATS_NAME_MAX];  /* [A-Za-z0-9._:-]+, e.g. "vif3.0" */
    uint32_t present;
    uint64_t timestamp_ns;
    uint64_t rx_bytes, rx_packets, rx_errors, rx_drops;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_drops;
};

struct mv_stats_vbd {
    uint8_t uuid[MV_STATS_UUID_LEN]; /* key, with vbd_id */
    char vbd_id[MV_STATS_NAME_MAX];  /* [A-Za-z0-9._:-]+ */
    uint32_t present;
    uint64_t timestamp_ns;
    char backing[MV_STATS_BACKING_MAX];
    char device[MV_STATS_NAME_MAX];
    uint64_t outstanding;
    uint64_t rd_req, wr_req;
    uint64_t rd_sect, wr_sect;
};

struct mv_stats_report {
    /* Report header (identical in every chunk of one report). */
    uint64_t node_id;
    uint32_t report_id;
    uint64_t timestamp_ns; /* ns since the epoch, when the sample was taken */
    uint32_t interval_ms;  /* the sender's reporting interval */

    /* Decoder bookkeeping; the encoder ignores these. */
    uint16_t chunk_count;     /* 0 until a chunk was merged */
    uint16_t chunks_received; /* complete when == chunk_count */
    uint8_t chunk_seen[MV_STATS_MAX_CHUNKS / 8];
    uint32_t groups_seen; /* bit (1u << group): the group was received (maybe empty) */

    uint32_t n_host; /* 0 or 1 */
    struct mv_stats_host host[1];
    uint32_t n_pcpu;
    struct mv_stats_pcpu pcpu[MV_STATS_MAX_PCPUS];
    uint32_t n_numa;
    struct mv_stats_numa numa[MV_STATS_MAX_NUMA];
    uint32_t n_pool;
    struct mv_stats_pool pool[MV_STATS_MAX_POOLS];
    uint32_t n_guest;
    struct mv_stats_guest guest[MV_STATS_MAX_GUESTS];
    uint32_t n_vcpu;
    struct mv_stats_vcpu vcpu[MV_STATS_MAX_VCPUS];
    uint32_t n_guest_mem;
    struct mv_stats_guest_mem guest_mem[MV_STATS_MAX_GUESTS];
    uint32_t n_vif;
    struct mv_stats_vif vif[MV_STATS_MAX_VIFS];
    uint32_t n_vbd;
    struct mv_stats_vbd vbd[MV_STATS_MAX_VBDS];
};

/* Decoder errors (returned negated). Each has a message from mv_stats_strerror(). */
enum mv_stats_error {
    MV_STATS_OK = 0,
    MV_STATS_E_TRUNCATED = 1,    /* a header or value runs past its enclosing length */
    MV_STATS_E_VERSION = 2,      /* unsupported format version */
    MV_STATS_E_HEADER = 3,       /* inconsistent report header (lengths, chunk numbers) */
    MV_STATS_E_OTHER_REPORT = 4, /* chunk of another node/report than the one being merged */
    MV_STATS_E_DUP_CHUNK = 5,    /* this chunk was merged already */
    MV_STATS_E_LENGTH = 6,       /* a length does not match what it encloses */
    MV_STATS_E_COUNT = 7,        /* a record/group count does not match, or exceeds capacity */
    MV_STATS_E_DUP_GROUP = 8,    /* the same group twice in one chunk */
    MV_STATS_E_DUP_FIELD = 9,    /* the same field id twice in one record */
    MV_STATS_E_DUP_RECORD = 10,  /* the same key twice in one report */
    MV_STATS_E_KEY = 11,         /* malformed record key */
    MV_STATS_E_FIELD = 12,       /* known field with the wrong type, length or value */
    MV_STATS_E_TRAILING = 13,    /* bytes after the last group */
    MV_STATS_E_INVAL = 14,       /* bad argument (encoder: invalid report or payload size) */
    MV_STATS_E_NOMEM = 15,
};
const char *mv_stats_strerror(int err); /* accepts err or -err */

/* ---- encoding ---- */

/* Receives each encoded chunk (valid only during the call). Non-zero return aborts encoding,
 * and mv_stats_encode_chunks() returns that value. */
typedef int (*mv_stats_chunk_fn)(void *user, const uint8_t *payload, size_t len,
                                 uint16_t chunk_index, uint16_t chunk_count);

/* Encodes every group of r (empty groups included) into chunks of at most max_payload bytes
 * (the room left after the envelope header: 1500 - envelope for a standard frame). Returns the
 * number of chunks, -MV_STATS_E_INVAL if r is invalid (counts over capacity, names not
 * [A-Za-z0-9._:-]+, strings not printable) or a record cannot fit max_payload, or the
 * callback's non-zero value. */
int mv_stats_encode_chunks(const struct mv_stats_report *r, size_t max_payload,
                           mv_stats_chunk_fn fn, void *user);

/* ---- decoding ---- */

void mv_stats_report_reset(struct mv_stats_report *r);
bool mv_stats_report_complete(const struct mv_stats_report *r);

/* Validates one chunk and merges it into *partial (which must be reset or hold earlier chunks
 * of the same node and report id). Returns 0 or a negative mv_stats_error; on error *partial is
 * unchanged. -MV_STATS_E_OTHER_REPORT tells the caller to finish/reset *partial and retry. */
int mv_stats_decode(const uint8_t *buf, size_t len, struct mv_stats_report *partial);
/* Same, and on error writes "offset N: what went wrong" into err. */
int mv_stats_decode_verbose(const uint8_t *buf, size_t len, struct mv_stats_report *partial,
                            char *err, size_t errlen);

/* ---- field-name table (printing, RRD naming) ---- */

enum mv_stats_kind {
    MV_STATS_K_GAUGE = 1,   /* RRD GAUGE */
    MV_STATS_K_COUNTER = 2, /* monotonic: RRD COUNTER/DERIVE */
    MV_STATS_K_TIME = 3,    /* a timestamp, ns since the epoch */
    MV_STATS_K_TEXT = 4,    /* a string attribute, not a time series */
};

struct mv_stats_field_desc {
    uint8_t group; /* enum mv_stats_group */
    uint8_t id;
    uint8_t type;     /* enum mv_stats_type */
    uint8_t kind;     /* enum mv_stats_kind */
    const char *name; /* [a-z0-9_]{1,19}: usable as an RRD data-source name */
    const char *unit; /* "ns", "bytes", "count", "load", "percent", "packets", "sectors", "" */
    uint32_t scale;   /* wire value / scale = value in unit (1000 for load, 100 for percent) */
    size_t offset;    /* in the group's record struct */
    size_t size;      /* of that member */
};

/* The whole table (all groups, in wire order), and a lookup (NULL if unknown). */
const struct mv_stats_field_desc *mv_stats_fields(size_t *count);
const struct mv_stats_field_desc *mv_stats_field_lookup(unsigned group, unsigned id);
const char *mv_stats_group_name(unsigned group); /* "host", "pcpu", ...; NULL if unknown */

/* Generic record access, for code walking every group (printer, RRD writer). */
size_t mv_stats_group_count(const struct mv_stats_report *r, unsigned group);
const void *mv_stats_group_record(const struct mv_stats_report *r, unsigned group, size_t i);
uint64_t mv_stats_field_u64(const struct mv_stats_field_desc *f, const void *record);
const char *mv_stats_field_str(const struct mv_stats_field_desc *f, const void *record);
/* The record's key as text: "" (host), "3" (pcpu), "<uuid>/2" (vcpu), "<uuid>/vif3.0" (vif). */
void mv_stats_key_format(unsigned group, const void *record, char *buf, size_t len);

/* Prints the report, one line per record: "<group> <key> name=value unit ...". */
void mv_stats_print(FILE *out, const struct mv_stats_report *r);

#endif
