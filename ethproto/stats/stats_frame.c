/* Statistics report codec (EtherType 0x88B6 payload). Layout in docs/stats.md.
 *
 * Everything is table-driven: a group table (wire type, key layout, where its array lives in
 * struct mv_stats_report) and a field table (id, type, where the value lives in the record), so
 * encoder, decoder and printer share one description of the format. */
#include "mv/stats_frame.h"

#include "mv/util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- format description ---- */

enum key_kind {
    KEY_NONE,      /* host: empty key */
    KEY_U32,       /* 4-byte id */
    KEY_UUID,      /* 16-byte VM uuid */
    KEY_UUID_U32,  /* uuid + 4-byte id */
    KEY_UUID_NAME, /* uuid + 1..31 bytes of [A-Za-z0-9._:-] */
};

struct group_desc {
    uint8_t type;
    const char *name;
    enum key_kind key;
    size_t rec_size;
    size_t capacity;
    size_t count_off; /* uint32_t count in struct mv_stats_report */
    size_t array_off; /* first record in struct mv_stats_report */
    size_t present_off;
    size_t id_off;   /* KEY_U32, KEY_UUID_U32 */
    size_t name_off; /* KEY_UUID_NAME; the uuid is always at offset 0 */
};

#define GROUP(t, nm, k, st, n_member, arr, idm, namem)                                             \
    {                                                                                              \
        .type = (t), .name = (nm), .key = (k), .rec_size = sizeof(struct st),                      \
        .capacity = MV_ARRAY_SIZE(((struct mv_stats_report *)0)->arr),                             \
        .count_off = offsetof(struct mv_stats_report, n_member),                                   \
        .array_off = offsetof(struct mv_stats_report, arr),                                        \
        .present_off = offsetof(struct st, present), .id_off = (idm), .name_off = (namem)          \
    }

static const struct group_desc group_table[] = {
    GROUP(MV_STATS_G_HOST, "host", KEY_NONE, mv_stats_host, n_host, host, 0, 0),
    GROUP(MV_STATS_G_PCPU, "pcpu", KEY_U32, mv_stats_pcpu, n_pcpu, pcpu,
          offsetof(struct mv_stats_pcpu, cpu_id), 0),
    GROUP(MV_STATS_G_NUMA, "numa", KEY_U32, mv_stats_numa, n_numa, numa,
          offsetof(struct mv_stats_numa, node_id), 0),
    GROUP(MV_STATS_G_POOL, "pool", KEY_U32, mv_stats_pool, n_pool, pool,
          offsetof(struct mv_stats_pool, pool_id), 0),
    GROUP(MV_STATS_G_GUEST, "guest", KEY_UUID, mv_stats_guest, n_guest, guest, 0, 0),
    GROUP(MV_STATS_G_VCPU, "vcpu", KEY_UUID_U32, mv_stats_vcpu, n_vcpu, vcpu,
          offsetof(struct mv_stats_vcpu, vcpu_id), 0),
    GROUP(MV_STATS_G_GUEST_MEM, "guest_mem", KEY_UUID, mv_stats_guest_mem, n_guest_mem, guest_mem,
          0, 0),
    GROUP(MV_STATS_G_VIF, "vif", KEY_UUID_NAME, mv_stats_vif, n_vif, vif, 0,
          offsetof(struct mv_stats_vif, vif_id)),
    GROUP(MV_STATS_G_VBD, "vbd", KEY_UUID_NAME, mv_stats_vbd, n_vbd, vbd, 0,
          offsetof(struct mv_stats_vbd, vbd_id)),
};

#define FIELD(g, st, fid, member, ty, k, nm, un, sc)                                               \
    {                                                                                              \
        .group = (g), .id = (fid), .type = (ty), .kind = (k), .name = (nm), .unit = (un),          \
        .scale = (sc), .offset = offsetof(struct st, member),                                      \
        .size = sizeof(((struct st *)0)->member)                                                   \
    }
#define FU(g, st, fid, member, k, nm, un, sc)                                                      \
    FIELD(g, st, fid, member, MV_STATS_T_UINT, k, nm, un, sc)
#define FS(g, st, fid, member, nm)                                                                 \
    FIELD(g, st, fid, member, MV_STATS_T_STR, MV_STATS_K_TEXT, nm, "", 1)

#define G MV_STATS_K_GAUGE
#define C MV_STATS_K_COUNTER
#define T MV_STATS_K_TIME

static const struct mv_stats_field_desc field_table[] = {
    FU(MV_STATS_G_HOST, mv_stats_host, 1, timestamp_ns, T, "timestamp", "ns", 1),
    FU(MV_STATS_G_HOST, mv_stats_host, 2, pcpus, G, "pcpus", "count", 1),
    FU(MV_STATS_G_HOST, mv_stats_host, 3, cpu_pools, G, "cpu_pools", "count", 1),
    FU(MV_STATS_G_HOST, mv_stats_host, 4, numa_nodes, G, "numa_nodes", "count", 1),
    FU(MV_STATS_G_HOST, mv_stats_host, 5, guests, G, "guests", "count", 1),
    FU(MV_STATS_G_HOST, mv_stats_host, 6, mem_total, G, "mem_total", "bytes", 1),
    FU(MV_STATS_G_HOST, mv_stats_host, 7, mem_free, G, "mem_free", "bytes", 1),
    FU(MV_STATS_G_HOST, mv_stats_host, 8, load_avg_milli, G, "load_avg", "load", 1000),

    FU(MV_STATS_G_PCPU, mv_stats_pcpu, 1, timestamp_ns, T, "timestamp", "ns", 1),
    FU(MV_STATS_G_PCPU, mv_stats_pcpu, 2, cpu_time_ns, C, "cpu_time", "ns", 1),

    FU(MV_STATS_G_NUMA, mv_stats_numa, 1, mem_total, G, "mem_total", "bytes", 1),
    FU(MV_STATS_G_NUMA, mv_stats_numa, 2, mem_free, G, "mem_free", "bytes", 1),

    FU(MV_STATS_G_POOL, mv_stats_pool, 1, load_avg_milli, G, "load_avg", "load", 1000),
    FU(MV_STATS_G_POOL, mv_stats_pool, 2, cpus, G, "cpus", "count", 1),
    FU(MV_STATS_G_POOL, mv_stats_pool, 3, guests, G, "guests", "count", 1),

    FU(MV_STATS_G_VCPU, mv_stats_vcpu, 1, timestamp_ns, T, "timestamp", "ns", 1),
    FU(MV_STATS_G_VCPU, mv_stats_vcpu, 2, util_centipct, G, "util", "percent", 100),
    FU(MV_STATS_G_VCPU, mv_stats_vcpu, 3, cpu_time_ns, C, "cpu_time", "ns", 1),

    FU(MV_STATS_G_GUEST_MEM, mv_stats_guest_mem, 1, timestamp_ns, T, "timestamp", "ns", 1),
    FU(MV_STATS_G_GUEST_MEM, mv_stats_guest_mem, 2, used, G, "mem_used", "bytes", 1),
    FU(MV_STATS_G_GUEST_MEM, mv_stats_guest_mem, 3, max, G, "mem_max", "bytes", 1),

    FU(MV_STATS_G_VIF, mv_stats_vif, 1, timestamp_ns, T, "timestamp", "ns", 1),
    FU(MV_STATS_G_VIF, mv_stats_vif, 2, rx_bytes, C, "rx_bytes", "bytes", 1),
    FU(MV_STATS_G_VIF, mv_stats_vif, 3, rx_packets, C, "rx_packets", "packets", 1),
    FU(MV_STATS_G_VIF, mv_stats_vif, 4, rx_errors, C, "rx_errors", "packets", 1),
    FU(MV_STATS_G_VIF, mv_stats_vif, 5, rx_drops, C, "rx_drops", "packets", 1),
    FU(MV_STATS_G_VIF, mv_stats_vif, 6, tx_bytes, C, "tx_bytes", "bytes", 1),
    FU(MV_STATS_G_VIF, mv_stats_vif, 7, tx_packets, C, "tx_packets", "packets", 1),
    FU(MV_STATS_G_VIF, mv_stats_vif, 8, tx_errors, C, "tx_errors", "packets", 1),
    FU(MV_STATS_G_VIF, mv_stats_vif, 9, tx_drops, C, "tx_drops", "packets", 1),

    FU(MV_STATS_G_VBD, mv_stats_vbd, 1, timestamp_ns, T, "timestamp", "ns", 1),
    FS(MV_STATS_G_VBD, mv_stats_vbd, 2, backing, "backing"),
    FS(MV_STATS_G_VBD, mv_stats_vbd, 3, device, "device"),
    FU(MV_STATS_G_VBD, mv_stats_vbd, 4, outstanding, G, "outstanding", "count", 1),
    FU(MV_STATS_G_VBD, mv_stats_vbd, 5, rd_req, C, "rd_req", "count", 1),
    FU(MV_STATS_G_VBD, mv_stats_vbd, 6, wr_req, C, "wr_req", "count", 1),
    FU(MV_STATS_G_VBD, mv_stats_vbd, 7, rd_sect, C, "rd_sect", "sectors", 1),
    FU(MV_STATS_G_VBD, mv_stats_vbd, 8, wr_sect, C, "wr_sect", "sectors", 1),
};

#undef G
#undef C
#undef T

static const struct group_desc *group_lookup(unsigned type)
{
    if (type < MV_STATS_G_FIRST || type > MV_STATS_G_LAST)
        return NULL;
    return &group_table[type - MV_STATS_G_FIRST];
}

const struct mv_stats_field_desc *mv_stats_fields(size_t *count)
{
    if (count)
        *count = MV_ARRAY_SIZE(field_table);
    return field_table;
}

const struct mv_stats_field_desc *mv_stats_field_lookup(unsigned group, unsigned id)
{
    for (size_t i = 0; i < MV_ARRAY_SIZE(field_table); i++)
        if (field_table[i].group == group && field_table[i].id == id)
            return &field_table[i];
    return NULL;
}

const char *mv_stats_group_name(unsigned group)
{
    const struct group_desc *g = group_lookup(group);
    return g ? g->name : NULL;
}

const char *mv_stats_strerror(int err)
{
    static const char *const msg[] = {
        [MV_STATS_OK] = "success",
        [MV_STATS_E_TRUNCATED] = "truncated",
        [MV_STATS_E_VERSION] = "unsupported format version",
        [MV_STATS_E_HEADER] = "inconsistent report header",
        [MV_STATS_E_OTHER_REPORT] = "chunk belongs to another report",
        [MV_STATS_E_DUP_CHUNK] = "duplicate chunk",
        [MV_STATS_E_LENGTH] = "length mismatch",
        [MV_STATS_E_COUNT] = "bad count",
        [MV_STATS_E_DUP_GROUP] = "duplicate group",
        [MV_STATS_E_DUP_FIELD] = "duplicate field",
        [MV_STATS_E_DUP_RECORD] = "duplicate record key",
        [MV_STATS_E_KEY] = "malformed record key",
        [MV_STATS_E_FIELD] = "malformed field",
        [MV_STATS_E_TRAILING] = "trailing bytes",
        [MV_STATS_E_INVAL] = "invalid argument",
        [MV_STATS_E_NOMEM] = "out of memory",
    };
    if (err < 0)
        err = -err;
    if ((size_t)err >= MV_ARRAY_SIZE(msg) || !msg[err])
        return "unknown error";
    return msg[err];
}

/* ---- record access ---- */

static uint32_t *group_count_ptr(struct mv_stats_report *r, const struct group_desc *g)
{
    return (uint32_t *)((uint8_t *)r + g->count_off);
}

static uint8_t *group_record_ptr(struct mv_stats_report *r, const struct group_desc *g, size_t i)
{
    return (uint8_t *)r + g->array_off + i * g->rec_size;
}

size_t mv_stats_group_count(const struct mv_stats_report *r, unsigned group)
{
    const struct group_desc *g = group_lookup(group);
    if (!g)
        return 0;
    uint32_t n;
    memcpy(&n, (const uint8_t *)r + g->count_off, sizeof n);
    return n;
}

const void *mv_stats_group_record(const struct mv_stats_report *r, unsigned group, size_t i)
{
    const struct group_desc *g = group_lookup(group);
    if (!g || i >= g->capacity)
        return NULL;
    return (const uint8_t *)r + g->array_off + i * g->rec_size;
}

uint64_t mv_stats_field_u64(const struct mv_stats_field_desc *f, const void *record)
{
    const uint8_t *p = (const uint8_t *)record + f->offset;
    if (f->type != MV_STATS_T_UINT)
        return 0;
    if (f->size == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

const char *mv_stats_field_str(const struct mv_stats_field_desc *f, const void *record)
{
    if (f->type != MV_STATS_T_STR)
        return "";
    return (const char *)record + f->offset;
}

static void field_set_u64(const struct mv_stats_field_desc *f, void *record, uint64_t v)
{
    uint8_t *p = (uint8_t *)record + f->offset;
    if (f->size == sizeof(uint32_t)) {
        uint32_t v32 = (uint32_t)v;
        memcpy(p, &v32, sizeof v32);
    } else {
        memcpy(p, &v, sizeof v);
    }
}

static uint32_t record_u32(const void *record, size_t off)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)record + off, sizeof v);
    return v;
}

static bool key_equal(const struct group_desc *g, const void *a, const void *b)
{
    switch (g->key) {
    case KEY_NONE:
        return true;
    case KEY_U32:
        return record_u32(a, g->id_off) == record_u32(b, g->id_off);
    case KEY_UUID:
        return memcmp(a, b, MV_STATS_UUID_LEN) == 0;
    case KEY_UUID_U32:
        return memcmp(a, b, MV_STATS_UUID_LEN) == 0 &&
               record_u32(a, g->id_off) == record_u32(b, g->id_off);
    case KEY_UUID_NAME:
        return memcmp(a, b, MV_STATS_UUID_LEN) == 0 &&
               strcmp((const char *)a + g->name_off, (const char *)b + g->name_off) == 0;
    }
    return false;
}

static void uuid_format(const uint8_t *u, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < MV_STATS_UUID_LEN; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = '\0';
}

void mv_stats_key_format(unsigned group, const void *record, char *buf, size_t len)
{
    const struct group_desc *g = group_lookup(group);
    char uuid[37];
    if (!len)
        return;
    buf[0] = '\0';
    if (!g)
        return;
    switch (g->key) {
    case KEY_NONE:
        break;
    case KEY_U32:
        snprintf(buf, len, "%u", record_u32(record, g->id_off));
        break;
    case KEY_UUID:
        uuid_format(record, uuid);
        snprintf(buf, len, "%s", uuid);
        break;
    case KEY_UUID_U32:
        uuid_format(record, uuid);
        snprintf(buf, len, "%s/%u", uuid, record_u32(record, g->id_off));
        break;
    case KEY_UUID_NAME:
        uuid_format(record, uuid);
        snprintf(buf, len, "%s/%s", uuid, (const char *)record + g->name_off);
        break;
    }
}

/* Key names end up in file names (RRD): a conservative alphabet, never '/'. */
static bool name_char_ok(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

static bool text_char_ok(uint8_t c)
{
    return c >= 0x20 && c <= 0x7e;
}

/* ---- big-endian helpers ---- */

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static size_t uint_min_len(uint64_t v)
{
    size_t n = 1;
    while (n < 8 && (v >> (8 * n)) != 0)
        n++;
    return n;
}

/* ---- encoder ---- */

#define GROUP_HDR_LEN  6
#define RECORD_HDR_LEN 2
#define FIELD_HDR_LEN  3
#define RECORD_MAX     512 /* larger than any version-1 record */

struct encoder {
    const struct mv_stats_report *r;
    uint8_t *buf;
    size_t cap;
    size_t pos;
    bool emit; /* second pass: chunk_count known, call fn */
    uint16_t chunk_index;
    uint16_t chunk_count;
    uint16_t groups_in_chunk;
    size_t group_pos;    /* where the open group's header is */
    uint16_t group_recs; /* records of the open group in this chunk */
    uint8_t group_type;  /* 0 when no group is open */
    mv_stats_chunk_fn fn;
    void *user;
};

static void enc_chunk_open(struct encoder *e)
{
    uint8_t *h = e->buf;
    h[0] = MV_STATS_VERSION;
    h[1] = 0;
    put_be(h + 2, MV_STATS_HEADER_LEN, 2);
    put_be(h + 4, e->r->node_id, 8);
    put_be(h + 12, e->r->report_id, 4);
    put_be(h + 16, e->chunk_index, 2);
    put_be(h + 18, e->chunk_count, 2);
    put_be(h + 20, e->r->timestamp_ns, 8);
    put_be(h + 28, e->r->interval_ms, 4);
    put_be(h + 32, 0, 2);
    e->pos = MV_STATS_HEADER_LEN;
    e->groups_in_chunk = 0;
}

static void enc_group_open(struct encoder *e, uint8_t type)
{
    uint8_t *h = e->buf + e->pos;
    h[0] = type;
    h[1] = 0;
    put_be(h + 2, 0, 2);
    put_be(h + 4, 0, 2);
    e->group_pos = e->pos;
    e->group_recs = 0;
    e->group_type = type;
    e->pos += GROUP_HDR_LEN;
    e->groups_in_chunk++;
}

static void enc_group_close(struct encoder *e)
{
    if (!e->group_type)
        return;
    uint8_t *h = e->buf + e->group_pos;
    put_be(h + 2, e->group_recs, 2);
    put_be(h + 4, e->pos - e->group_pos - GROUP_HDR_LEN, 2);
    e->group_type = 0;
}

static int enc_chunk_flush(struct encoder *e)
{
    uint8_t reopen = e->group_type;
    enc_group_close(e);
    put_be(e->buf + 32, e->groups_in_chunk, 2);
    if (e->emit) {
        int rc = e->fn(e->user, e->buf, e->pos, e->chunk_index, e->chunk_count);
        if (rc)
            return rc;
    }
    if (e->chunk_index == MV_STATS_MAX_CHUNKS - 1)
        return -MV_STATS_E_INVAL; /* would need more chunks than a receiver tracks */
    e->chunk_index++;
    enc_chunk_open(e);
    if (reopen)
        enc_group_open(e, reopen);
    return 0;
}

/* Appends one UINT field with the fewest bytes that hold v. */
static size_t enc_put_uint(uint8_t *p, uint8_t id, uint64_t v)
{
    size_t n = uint_min_len(v);
    p[0] = id;
    p[1] = MV_STATS_T_UINT;
    p[2] = (uint8_t)n;
    put_be(p + FIELD_HDR_LEN, v, n);
    return FIELD_HDR_LEN + n;
}

/* Serialises one record (length, key, every known field) into out; returns its size or -1 if
 * the record is invalid (names/strings outside their alphabet or not NUL-terminated). */
static int enc_record(const struct group_desc *g, const uint8_t *rec, uint8_t out[RECORD_MAX])
{
    size_t p = RECORD_HDR_LEN + 1, klen = 0;
    switch (g->key) {
    case KEY_NONE:
        break;
    case KEY_U32:
        put_be(out + p, record_u32(rec, g->id_off), 4);
        klen = 4;
        break;
    case KEY_UUID:
        memcpy(out + p, rec, MV_STATS_UUID_LEN);
        klen = MV_STATS_UUID_LEN;
        break;
    case KEY_UUID_U32:
        memcpy(out + p, rec, MV_STATS_UUID_LEN);
        put_be(out + p + MV_STATS_UUID_LEN, record_u32(rec, g->id_off), 4);
        klen = MV_STATS_UUID_LEN + 4;
        break;
    case KEY_UUID_NAME: {
        const char *name = (const char *)rec + g->name_off;
        size_t n = strnlen(name, MV_STATS_NAME_MAX);
        if (n == 0 || n >= MV_STATS_NAME_MAX)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (!name_char_ok((uint8_t)name[i]))
                return -1;
        memcpy(out + p, rec, MV_STATS_UUID_LEN);
        memcpy(out + p + MV_STATS_UUID_LEN, name, n);
        klen = MV_STATS_UUID_LEN + n;
        break;
    }
    }
    out[RECORD_HDR_LEN] = (uint8_t)klen;
    p += klen;
    /* Only what the sender measured goes on the wire: an absent field is not a zero. */
    uint32_t present;
    memcpy(&present, rec + g->present_off, sizeof present);
    for (size_t i = 0; i < MV_ARRAY_SIZE(field_table); i++) {
        const struct mv_stats_field_desc *f = &field_table[i];
        if (f->group != g->type || !(present & (1u << f->id)))
            continue;
        if (f->type == MV_STATS_T_UINT) {
            p += enc_put_uint(out + p, f->id, mv_stats_field_u64(f, rec));
            continue;
        }
        const char *s = (const char *)rec + f->offset;
        size_t n = strnlen(s, f->size);
        if (n >= f->size)
            return -1;
        for (size_t k = 0; k < n; k++)
            if (!text_char_ok((uint8_t)s[k]))
                return -1;
        out[p] = f->id;
        out[p + 1] = MV_STATS_T_STR;
        out[p + 2] = (uint8_t)n;
        memcpy(out + p + FIELD_HDR_LEN, s, n);
        p += FIELD_HDR_LEN + n;
    }
    put_be(out, p - RECORD_HDR_LEN, 2);
    return (int)p;
}

static int enc_group(struct encoder *e, const struct group_desc *g)
{
    uint8_t rec[RECORD_MAX];
    uint32_t n = *group_count_ptr((struct mv_stats_report *)e->r, g);
    if (e->pos + GROUP_HDR_LEN > e->cap) {
        int rc = enc_chunk_flush(e);
        if (rc)
            return rc;
    }
    bool first = true;
    enc_group_open(e, g->type);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *r = group_record_ptr((struct mv_stats_report *)e->r, g, i);
        int len = enc_record(g, r, rec);
        if (len < 0)
            return -MV_STATS_E_INVAL;
        if (e->pos + (size_t)len > e->cap) {
            if (first) {
                /* Not even the first record fits: move the group header to the next chunk
                 * rather than leave an empty header behind. */
                e->pos -= GROUP_HDR_LEN;
                e->groups_in_chunk--;
                e->group_type = 0;
                int rc = enc_chunk_flush(e);
                if (rc)
                    return rc;
                enc_group_open(e, g->type);
            } else {
                int rc = enc_chunk_flush(e);
                if (rc)
                    return rc;
            }
            if (e->pos + (size_t)len > e->cap)
                return -MV_STATS_E_INVAL; /* max_payload too small for this record */
        }
        memcpy(e->buf + e->pos, rec, (size_t)len);
        e->pos += (size_t)len;
        e->group_recs++;
        first = false;
    }
    enc_group_close(e);
    return 0;
}

static bool report_valid(const struct mv_stats_report *r)
{
    for (size_t gi = 0; gi < MV_ARRAY_SIZE(group_table); gi++) {
        const struct group_desc *g = &group_table[gi];
        uint32_t n = *group_count_ptr((struct mv_stats_report *)r, g);
        if (n > g->capacity)
            return false;
        /* The decoder rejects duplicate keys, so never send them. */
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (key_equal(g, group_record_ptr((struct mv_stats_report *)r, g, i),
                              group_record_ptr((struct mv_stats_report *)r, g, j)))
                    return false;
    }
    return true;
}

static int enc_run(struct encoder *e)
{
    e->chunk_index = 0;
    enc_chunk_open(e);
    for (size_t gi = 0; gi < MV_ARRAY_SIZE(group_table); gi++) {
        int rc = enc_group(e, &group_table[gi]);
        if (rc)
            return rc;
    }
    put_be(e->buf + 32, e->groups_in_chunk, 2);
    if (e->emit)
        return e->fn(e->user, e->buf, e->pos, e->chunk_index, e->chunk_count);
    return 0;
}

int mv_stats_encode_chunks(const struct mv_stats_report *r, size_t max_payload,
                           mv_stats_chunk_fn fn, void *user)
{
    if (!r || !fn || max_payload < MV_STATS_HEADER_LEN + GROUP_HDR_LEN ||
        max_payload > MV_STATS_MAX_PAYLOAD || !report_valid(r))
        return -MV_STATS_E_INVAL;
    struct encoder e = {.r = r, .cap = max_payload, .fn = fn, .user = user};
    e.buf = malloc(max_payload);
    if (!e.buf)
        return -MV_STATS_E_NOMEM;
    /* Pass 1 only counts chunks, so every header of pass 2 carries the final chunk count. */
    int rc = enc_run(&e);
    if (rc == 0) {
        e.chunk_count = (uint16_t)(e.chunk_index + 1);
        e.emit = true;
        rc = enc_run(&e);
    }
    free(e.buf);
    return rc ? rc : e.chunk_count;
}

/* ---- decoder ---- */

struct decoder {
    const uint8_t *buf;
    size_t len;
    const struct mv_stats_report *partial;
    char *err;
    size_t errlen;
    /* Records of this chunk, per group, validated but not yet merged. */
    uint8_t *scratch[MV_STATS_G_LAST + 1];
    uint32_t scratch_n[MV_STATS_G_LAST + 1];
    uint32_t groups_seen;
};

__attribute__((format(printf, 4, 5))) static int dec_fail(struct decoder *d, size_t off, int code,
                                                          const char *fmt, ...)
{
    if (d->err && d->errlen) {
        int n = snprintf(d->err, d->errlen, "offset %zu: ", off);
        if (n >= 0 && (size_t)n < d->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -code;
}

static int dec_key(struct decoder *d, const struct group_desc *g, size_t off, size_t klen,
                   uint8_t *rec)
{
    const uint8_t *k = d->buf + off;
    size_t want = 0;
    switch (g->key) {
    case KEY_NONE:
        want = 0;
        break;
    case KEY_U32:
        want = 4;
        break;
    case KEY_UUID:
        want = MV_STATS_UUID_LEN;
        break;
    case KEY_UUID_U32:
        want = MV_STATS_UUID_LEN + 4;
        break;
    case KEY_UUID_NAME:
        if (klen <= MV_STATS_UUID_LEN || klen >= MV_STATS_UUID_LEN + MV_STATS_NAME_MAX)
            return dec_fail(d, off, MV_STATS_E_KEY, "%s key length %zu, want 17..%d", g->name, klen,
                            MV_STATS_UUID_LEN + MV_STATS_NAME_MAX - 1);
        want = klen;
        break;
    }
    if (klen != want)
        return dec_fail(d, off, MV_STATS_E_KEY, "%s key length %zu, want %zu", g->name, klen, want);
    uint32_t id;
    switch (g->key) {
    case KEY_NONE:
        break;
    case KEY_U32:
        id = (uint32_t)get_be(k, 4);
        memcpy(rec + g->id_off, &id, sizeof id);
        break;
    case KEY_UUID:
        memcpy(rec, k, MV_STATS_UUID_LEN);
        break;
    case KEY_UUID_U32:
        memcpy(rec, k, MV_STATS_UUID_LEN);
        id = (uint32_t)get_be(k + MV_STATS_UUID_LEN, 4);
        memcpy(rec + g->id_off, &id, sizeof id);
        break;
    case KEY_UUID_NAME:
        for (size_t i = MV_STATS_UUID_LEN; i < klen; i++)
            if (!name_char_ok(k[i]))
                return dec_fail(d, off + i, MV_STATS_E_KEY,
                                "%s key name byte 0x%02x outside [A-Za-z0-9._:-]", g->name, k[i]);
        memcpy(rec, k, MV_STATS_UUID_LEN);
        memcpy(rec + g->name_off, k + MV_STATS_UUID_LEN, klen - MV_STATS_UUID_LEN);
        rec[g->name_off + klen - MV_STATS_UUID_LEN] = '\0';
        break;
    }
    return 0;
}

static int dec_field(struct decoder *d, const struct group_desc *g, size_t off, uint8_t *rec,
                     uint32_t *present)
{
    const uint8_t *h = d->buf + off;
    uint8_t id = h[0], type = h[1], flen = h[2];
    const uint8_t *v = h + FIELD_HDR_LEN;
    const struct mv_stats_field_desc *f = mv_stats_field_lookup(g->type, id);
    if (!f)
        return 0; /* a newer sender's field: skip */
    if (type != f->type)
        return dec_fail(d, off, MV_STATS_E_FIELD, "%s field %s: type %u, want %u", g->name, f->name,
                        type, f->type);
    if (f->type == MV_STATS_T_UINT) {
        if (flen < 1 || flen > 8)
            return dec_fail(d, off, MV_STATS_E_FIELD, "%s field %s: integer of %u bytes", g->name,
                            f->name, flen);
        uint64_t val = get_be(v, flen);
        if (f->size == sizeof(uint32_t) && val > UINT32_MAX)
            return dec_fail(d, off, MV_STATS_E_FIELD,
                            "%s field %s: value %llu does not fit 32 bits", g->name, f->name,
                            (unsigned long long)val);
        field_set_u64(f, rec, val);
    } else {
        if (flen >= f->size)
            return dec_fail(d, off, MV_STATS_E_FIELD, "%s field %s: %u bytes, at most %zu", g->name,
                            f->name, flen, f->size - 1);
        for (size_t i = 0; i < flen; i++)
            if (!text_char_ok(v[i]))
                return dec_fail(d, off + FIELD_HDR_LEN + i, MV_STATS_E_FIELD,
                                "%s field %s: non-printable byte 0x%02x", g->name, f->name, v[i]);
        memcpy(rec + f->offset, v, flen);
        rec[f->offset + flen] = '\0';
    }
    *present |= 1u << id;
    return 0;
}

/* Decodes the record in [off, end) into rec (zeroed by the caller). */
static int dec_record(struct decoder *d, const struct group_desc *g, size_t off, size_t end,
                      uint8_t *rec)
{
    if (off >= end)
        return dec_fail(d, off, MV_STATS_E_TRUNCATED, "%s record without a key length", g->name);
    size_t klen = d->buf[off];
    if (klen > end - off - 1)
        return dec_fail(d, off, MV_STATS_E_TRUNCATED, "%s key of %zu bytes runs past the record",
                        g->name, klen);
    int rc = dec_key(d, g, off + 1, klen, rec);
    if (rc)
        return rc;
    uint32_t seen[8] = {0}; /* every field id 0..255, known or not */
    uint32_t present = 0;
    size_t p = off + 1 + klen;
    while (p < end) {
        if (end - p < FIELD_HDR_LEN)
            return dec_fail(d, p, MV_STATS_E_TRUNCATED, "%s field header truncated", g->name);
        uint8_t id = d->buf[p], flen = d->buf[p + 2];
        if (flen > end - p - FIELD_HDR_LEN)
            return dec_fail(d, p, MV_STATS_E_TRUNCATED,
                            "%s field %u: %u value bytes run past the record", g->name, id, flen);
        if (seen[id / 32] & (1u << (id % 32)))
            return dec_fail(d, p, MV_STATS_E_DUP_FIELD, "%s field %u appears twice", g->name, id);
        seen[id / 32] |= 1u << (id % 32);
        rc = dec_field(d, g, p, rec, &present);
        if (rc)
            return rc;
        p += FIELD_HDR_LEN + flen;
    }
    memcpy(rec + g->present_off, &present, sizeof present);
    return 0;
}

static int dec_group(struct decoder *d, const struct group_desc *g, size_t off, uint16_t count,
                     size_t end)
{
    uint32_t have = *group_count_ptr((struct mv_stats_report *)d->partial, g);
    if (d->groups_seen & (1u << g->type))
        return dec_fail(d, off, MV_STATS_E_DUP_GROUP, "group %s twice in one chunk", g->name);
    d->groups_seen |= 1u << g->type;
    if (count > g->capacity - have)
        return dec_fail(d, off, MV_STATS_E_COUNT, "group %s: %u records, room for %zu", g->name,
                        count, g->capacity - have);
    /* The smallest record is 3 bytes: bound the allocation by what the bytes can hold. */
    if ((size_t)count * (RECORD_HDR_LEN + 1) > end - off - GROUP_HDR_LEN)
        return dec_fail(d, off, MV_STATS_E_COUNT, "group %s: %u records cannot fit %zu bytes",
                        g->name, count, end - off - GROUP_HDR_LEN);
    if (count) {
        d->scratch[g->type] = calloc(count, g->rec_size);
        if (!d->scratch[g->type])
            return -MV_STATS_E_NOMEM;
    }
    size_t p = off + GROUP_HDR_LEN;
    for (uint16_t i = 0; i < count; i++) {
        if (end - p < RECORD_HDR_LEN)
            return dec_fail(d, p, MV_STATS_E_COUNT, "group %s: %u records announced, %u found",
                            g->name, count, i);
        size_t rlen = get_be(d->buf + p, 2);
        if (rlen > end - p - RECORD_HDR_LEN)
            return dec_fail(d, p, MV_STATS_E_TRUNCATED,
                            "group %s record %u: %zu bytes run past the group", g->name, i, rlen);
        uint8_t *rec = d->scratch[g->type] + (size_t)i * g->rec_size;
        int rc = dec_record(d, g, p + RECORD_HDR_LEN, p + RECORD_HDR_LEN + rlen, rec);
        if (rc)
            return rc;
        for (uint32_t k = 0; k < have; k++)
            if (key_equal(g, rec, group_record_ptr((struct mv_stats_report *)d->partial, g, k)))
                return dec_fail(d, p, MV_STATS_E_DUP_RECORD,
                                "group %s record %u: key already in the report", g->name, i);
        for (uint16_t k = 0; k < i; k++)
            if (key_equal(g, rec, d->scratch[g->type] + (size_t)k * g->rec_size))
                return dec_fail(d, p, MV_STATS_E_DUP_RECORD,
                                "group %s record %u: key repeats record %u", g->name, i, k);
        d->scratch_n[g->type]++;
        p += RECORD_HDR_LEN + rlen;
    }
    if (p != end)
        return dec_fail(d, p, MV_STATS_E_LENGTH, "group %s: %zu bytes left after %u records",
                        g->name, end - p, count);
    return 0;
}

static int dec_chunk(struct decoder *d, uint16_t *chunk_index)
{
    const uint8_t *b = d->buf;
    const struct mv_stats_report *r = d->partial;
    if (d->len < MV_STATS_HEADER_LEN)
        return dec_fail(d, 0, MV_STATS_E_TRUNCATED, "%zu bytes, report header needs %d", d->len,
                        MV_STATS_HEADER_LEN);
    if (b[0] != MV_STATS_VERSION)
        return dec_fail(d, 0, MV_STATS_E_VERSION, "format version %u, this build reads %d", b[0],
                        MV_STATS_VERSION);
    size_t hlen = get_be(b + 2, 2);
    uint64_t node = get_be(b + 4, 8);
    uint32_t report = (uint32_t)get_be(b + 12, 4);
    uint16_t idx = (uint16_t)get_be(b + 16, 2), cnt = (uint16_t)get_be(b + 18, 2);
    uint64_t ts = get_be(b + 20, 8);
    uint32_t interval = (uint32_t)get_be(b + 28, 4);
    uint16_t ngroups = (uint16_t)get_be(b + 32, 2);
    if (hlen < MV_STATS_HEADER_LEN || hlen > d->len)
        return dec_fail(d, 2, MV_STATS_E_HEADER, "header length %zu outside %d..%zu", hlen,
                        MV_STATS_HEADER_LEN, d->len);
    if (cnt == 0 || cnt > MV_STATS_MAX_CHUNKS || idx >= cnt)
        return dec_fail(d, 16, MV_STATS_E_HEADER, "chunk %u of %u (at most %d chunks)", idx, cnt,
                        MV_STATS_MAX_CHUNKS);
    if (r->chunk_count) {
        if (node != r->node_id || report != r->report_id)
            return dec_fail(
                d, 4, MV_STATS_E_OTHER_REPORT, "node %llu report %u, merging node %llu report %u",
                (unsigned long long)node, report, (unsigned long long)r->node_id, r->report_id);
        if (cnt != r->chunk_count || ts != r->timestamp_ns || interval != r->interval_ms)
            return dec_fail(d, 18, MV_STATS_E_HEADER,
                            "chunk count/timestamp/interval differ from earlier chunks");
        if (r->chunk_seen[idx / 8] & (1u << (idx % 8)))
            return dec_fail(d, 16, MV_STATS_E_DUP_CHUNK, "chunk %u already merged", idx);
    }
    size_t p = hlen; /* header bytes past the version-1 fields are extensions: skipped */
    for (uint16_t gi = 0; gi < ngroups; gi++) {
        if (d->len - p < GROUP_HDR_LEN)
            return dec_fail(d, p, MV_STATS_E_TRUNCATED, "group %u of %u: header truncated", gi,
                            ngroups);
        uint8_t type = b[p];
        uint16_t count = (uint16_t)get_be(b + p + 2, 2);
        size_t glen = get_be(b + p + 4, 2);
        if (glen > d->len - p - GROUP_HDR_LEN)
            return dec_fail(d, p, MV_STATS_E_TRUNCATED,
                            "group %u (type %u): %zu bytes run past the payload", gi, type, glen);
        const struct group_desc *g = group_lookup(type);
        if (g) {
            int rc = dec_group(d, g, p, count, p + GROUP_HDR_LEN + glen);
            if (rc)
                return rc;
        } /* else: a newer sender's group, skipped whole */
        p += GROUP_HDR_LEN + glen;
    }
    if (p != d->len)
        return dec_fail(d, p, MV_STATS_E_TRAILING, "%zu bytes after the last of %u groups",
                        d->len - p, ngroups);
    *chunk_index = idx;
    return 0;
}

static void dec_commit(struct decoder *d, struct mv_stats_report *r, uint16_t idx)
{
    const uint8_t *b = d->buf;
    if (!r->chunk_count) {
        r->node_id = get_be(b + 4, 8);
        r->report_id = (uint32_t)get_be(b + 12, 4);
        r->chunk_count = (uint16_t)get_be(b + 18, 2);
        r->timestamp_ns = get_be(b + 20, 8);
        r->interval_ms = (uint32_t)get_be(b + 28, 4);
    }
    r->chunk_seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
    r->chunks_received++;
    r->groups_seen |= d->groups_seen;
    for (size_t gi = 0; gi < MV_ARRAY_SIZE(group_table); gi++) {
        const struct group_desc *g = &group_table[gi];
        uint32_t n = d->scratch_n[g->type];
        if (!n)
            continue;
        uint32_t *have = group_count_ptr(r, g);
        memcpy(group_record_ptr(r, g, *have), d->scratch[g->type], n * g->rec_size);
        *have += n;
    }
}

int mv_stats_decode_verbose(const uint8_t *buf, size_t len, struct mv_stats_report *partial,
                            char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if ((!buf && len) || !partial) {
        if (err && errlen)
            snprintf(err, errlen, "invalid argument");
        return -MV_STATS_E_INVAL;
    }
    struct decoder d = {.buf = buf, .len = len, .partial = partial, .err = err, .errlen = errlen};
    uint16_t idx = 0;
    int rc = dec_chunk(&d, &idx);
    if (rc == 0)
        dec_commit(&d, partial, idx);
    for (size_t i = 0; i < MV_ARRAY_SIZE(d.scratch); i++)
        free(d.scratch[i]);
    return rc;
}

int mv_stats_decode(const uint8_t *buf, size_t len, struct mv_stats_report *partial)
{
    return mv_stats_decode_verbose(buf, len, partial, NULL, 0);
}

void mv_stats_report_reset(struct mv_stats_report *r)
{
    memset(r, 0, sizeof *r);
}

bool mv_stats_report_complete(const struct mv_stats_report *r)
{
    return r->chunk_count && r->chunks_received == r->chunk_count;
}

/* ---- printer ---- */

void mv_stats_print(FILE *out, const struct mv_stats_report *r)
{
    fprintf(out, "report node=%llu id=%u timestamp=%llu interval_ms=%u chunks=%u/%u\n",
            (unsigned long long)r->node_id, r->report_id, (unsigned long long)r->timestamp_ns,
            r->interval_ms, r->chunks_received, r->chunk_count);
    for (size_t gi = 0; gi < MV_ARRAY_SIZE(group_table); gi++) {
        const struct group_desc *g = &group_table[gi];
        size_t n = mv_stats_group_count(r, g->type);
        fprintf(out, "%s: %zu record%s\n", g->name, n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) {
            const void *rec = mv_stats_group_record(r, g->type, i);
            char key[96];
            mv_stats_key_format(g->type, rec, key, sizeof key);
            fprintf(out, "  %s%s%s", g->name, key[0] ? " " : "", key);
            for (size_t fi = 0; fi < MV_ARRAY_SIZE(field_table); fi++) {
                const struct mv_stats_field_desc *f = &field_table[fi];
                if (f->group != g->type)
                    continue;
                if (f->type == MV_STATS_T_STR) {
                    fprintf(out, " %s=\"%s\"", f->name, mv_stats_field_str(f, rec));
                    continue;
                }
                uint64_t v = mv_stats_field_u64(f, rec);
                if (f->scale > 1)
                    fprintf(out, " %s=%llu.%0*llu%s", f->name, (unsigned long long)(v / f->scale),
                            f->scale == 1000 ? 3 : 2, (unsigned long long)(v % f->scale),
                            strcmp(f->unit, "percent") ? "" : "%");
                else
                    fprintf(out, " %s=%llu", f->name, (unsigned long long)v);
            }
            fputc('\n', out);
        }
    }
}
