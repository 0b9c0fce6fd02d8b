/* Statistics codec: round trips, chunking, loss, forward compatibility, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mv/stats_frame.h"

/* ---- helpers ---- */

static struct mv_stats_report *report_new(void)
{
    struct mv_stats_report *r = calloc(1, sizeof *r);
    assert_non_null(r);
    return r;
}

static uint32_t full_mask(unsigned group)
{
    size_t n;
    const struct mv_stats_field_desc *f = mv_stats_fields(&n);
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].group == group)
            m |= 1u << f[i].id;
    return m;
}

static void uuid_of(uint8_t u[16], unsigned n)
{
    for (int i = 0; i < 16; i++)
        u[i] = (uint8_t)(0xa0 + i + n * 7);
    u[6] = 0x40 | (u[6] & 0x0f);
}

/* A report with every group populated and values of every width (incl. > 32 bits, max). */
static void fill_full(struct mv_stats_report *r, unsigned guests, unsigned pcpus)
{
    mv_stats_report_reset(r);
    r->node_id = 0x026d76010001ull;
    r->report_id = 77;
    r->timestamp_ns = 1700000000123456789ull;
    r->interval_ms = 10000;
    r->n_host = 1;
    r->host[0] = (struct mv_stats_host){.present = full_mask(MV_STATS_G_HOST),
                                        .timestamp_ns = r->timestamp_ns,
                                        .pcpus = pcpus,
                                        .cpu_pools = 3,
                                        .numa_nodes = 4,
                                        .guests = guests,
                                        .mem_total = 256ull << 30,
                                        .mem_free = 100ull << 30,
                                        .load_avg_milli = 1250};
    r->n_pcpu = pcpus;
    for (unsigned i = 0; i < pcpus; i++)
        r->pcpu[i] = (struct mv_stats_pcpu){.cpu_id = i,
                                            .present = full_mask(MV_STATS_G_PCPU),
                                            .timestamp_ns = r->timestamp_ns + i,
                                            .cpu_time_ns = (uint64_t)i * 1000000007ull};
    r->n_numa = 4;
    for (unsigned i = 0; i < 4; i++)
        r->numa[i] = (struct mv_stats_numa){.node_id = i,
                                            .present = full_mask(MV_STATS_G_NUMA),
                                            .mem_total = 64ull << 30,
                                            .mem_free = (uint64_t)i << 28};
    r->n_pool = 3;
    for (unsigned i = 0; i < 3; i++)
        r->pool[i] = (struct mv_stats_pool){.pool_id = i * 10,
                                            .present = full_mask(MV_STATS_G_POOL),
                                            .load_avg_milli = UINT32_MAX - i,
                                            .cpus = 4 + i,
                                            .guests = i};
    r->n_guest = guests;
    r->n_guest_mem = guests;
    r->n_vcpu = 0;
    r->n_vif = 0;
    r->n_vbd = 0;
    for (unsigned g = 0; g < guests; g++) {
        uint8_t u[16];
        uuid_of(u, g);
        memcpy(r->guest[g].uuid, u, 16);
        r->guest[g].present = full_mask(MV_STATS_G_GUEST);
        struct mv_stats_guest_mem *m = &r->guest_mem[g];
        memcpy(m->uuid, u, 16);
        m->present = full_mask(MV_STATS_G_GUEST_MEM);
        m->timestamp_ns = r->timestamp_ns;
        m->used = (uint64_t)g << 20;
        m->max = 4ull << 30;
        for (unsigned v = 0; v < 4; v++) {
            struct mv_stats_vcpu *c = &r->vcpu[r->n_vcpu++];
            memcpy(c->uuid, u, 16);
            c->vcpu_id = v;
            c->present = full_mask(MV_STATS_G_VCPU);
            c->timestamp_ns = r->timestamp_ns;
            c->util_centipct = (g * 100 + v) % 10001;
            c->cpu_time_ns = UINT64_MAX - v;
        }
        for (unsigned k = 0; k < 2; k++) {
            struct mv_stats_vif *f = &r->vif[r->n_vif++];
            memcpy(f->uuid, u, 16);
            snprintf(f->vif_id, sizeof f->vif_id, "vif%u.%u", g, k);
            f->present = full_mask(MV_STATS_G_VIF);
            f->timestamp_ns = r->timestamp_ns;
            f->rx_bytes = 1ull << 40;
            f->rx_packets = 12345 + k;
            f->rx_errors = 1;
            f->rx_drops = 2;
            f->tx_bytes = (1ull << 33) + g;
            f->tx_packets = 999;
            f->tx_errors = 0;
            f->tx_drops = 255;
            struct mv_stats_vbd *b = &r->vbd[r->n_vbd++];
            memcpy(b->uuid, u, 16);
            snprintf(b->vbd_id, sizeof b->vbd_id, "vd%c", 'a' + k);
            b->present = full_mask(MV_STATS_G_VBD);
            b->timestamp_ns = r->timestamp_ns;
            snprintf(b->backing, sizeof b->backing, "%s", k ? "aoe" : "file");
            snprintf(b->device, sizeof b->device, "/dev/vd%c", 'a' + k);
            b->outstanding = k;
            b->rd_req = 100 + g;
            b->wr_req = 200;
            b->rd_sect = 1ull << 36;
            b->wr_sect = 65536;
        }
    }
}

static size_t record_size(unsigned g)
{
    switch (g) {
    case MV_STATS_G_HOST:
        return sizeof(struct mv_stats_host);
    case MV_STATS_G_PCPU:
        return sizeof(struct mv_stats_pcpu);
    case MV_STATS_G_NUMA:
        return sizeof(struct mv_stats_numa);
    case MV_STATS_G_POOL:
        return sizeof(struct mv_stats_pool);
    case MV_STATS_G_GUEST:
        return sizeof(struct mv_stats_guest);
    case MV_STATS_G_VCPU:
        return sizeof(struct mv_stats_vcpu);
    case MV_STATS_G_GUEST_MEM:
        return sizeof(struct mv_stats_guest_mem);
    case MV_STATS_G_VIF:
        return sizeof(struct mv_stats_vif);
    default:
        return sizeof(struct mv_stats_vbd);
    }
}

/* Report contents only (not the decoder's bookkeeping). */
static void assert_same_contents(const struct mv_stats_report *a, const struct mv_stats_report *b)
{
    assert_int_equal(a->node_id, b->node_id);
    assert_int_equal(a->report_id, b->report_id);
    assert_int_equal(a->timestamp_ns, b->timestamp_ns);
    assert_int_equal(a->interval_ms, b->interval_ms);
    size_t off = offsetof(struct mv_stats_report, n_host);
    assert_memory_equal((const uint8_t *)a + off, (const uint8_t *)b + off, sizeof *a - off);
}

#define MAX_CHUNKS_KEPT 256
struct chunks {
    size_t n;
    uint8_t *buf[MAX_CHUNKS_KEPT];
    size_t len[MAX_CHUNKS_KEPT];
    uint16_t count;
};

static int collect_chunk(void *user, const uint8_t *p, size_t len, uint16_t idx, uint16_t cnt)
{
    struct chunks *c = user;
    assert_int_equal(idx, c->n);
    assert_true(c->n < MAX_CHUNKS_KEPT);
    c->buf[c->n] = malloc(len);
    memcpy(c->buf[c->n], p, len);
    c->len[c->n++] = len;
    c->count = cnt;
    return 0;
}

static void chunks_free(struct chunks *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->buf[i]);
    memset(c, 0, sizeof *c);
}

static void encode(const struct mv_stats_report *r, size_t max, struct chunks *c)
{
    memset(c, 0, sizeof *c);
    int n = mv_stats_encode_chunks(r, max, collect_chunk, c);
    assert_true(n > 0);
    assert_int_equal((size_t)n, c->n);
    assert_int_equal(c->count, n);
    for (size_t i = 0; i < c->n; i++)
        assert_true(c->len[i] <= max);
}

static void decode_ok(const uint8_t *b, size_t len, struct mv_stats_report *r)
{
    char err[160];
    int rc = mv_stats_decode_verbose(b, len, r, err, sizeof err);
    if (rc)
        fail_msg("decode failed: %s (%s)", mv_stats_strerror(rc), err);
}

/* ---- round trips ---- */

static void roundtrip_at(size_t max, unsigned guests, unsigned pcpus, size_t min_chunks)
{
    struct mv_stats_report *src = report_new(), *dst = report_new();
    struct chunks c;
    fill_full(src, guests, pcpus);
    encode(src, max, &c);
    assert_true(c.n >= min_chunks);
    for (size_t i = 0; i < c.n; i++)
        decode_ok(c.buf[i], c.len[i], dst);
    assert_true(mv_stats_report_complete(dst));
    assert_int_equal(dst->groups_seen, 0x3fe); /* groups 1..9 */
    assert_same_contents(src, dst);
    /* Chunks may arrive in any order: the same records, in arrival order. */
    mv_stats_report_reset(dst);
    for (size_t i = c.n; i-- > 0;)
        decode_ok(c.buf[i], c.len[i], dst);
    assert_true(mv_stats_report_complete(dst));
    for (unsigned g = MV_STATS_G_FIRST; g <= MV_STATS_G_LAST; g++) {
        size_t n = mv_stats_group_count(src, g);
        assert_int_equal(mv_stats_group_count(dst, g), n);
        for (size_t j = 0; j < n; j++) {
            size_t i = 0;
            while (i < n && memcmp(mv_stats_group_record(src, g, i),
                                   mv_stats_group_record(dst, g, j), record_size(g)) != 0)
                i++;
            if (i == n)
                fail_msg("group %u record %zu not in the source", g, j);
        }
    }
    chunks_free(&c);
    free(src);
    free(dst);
}

static void test_roundtrip_full_single_frame(void **state)
{
    roundtrip_at(9000, 8, 16, 1);
}

static void test_roundtrip_mtu1500(void **state)
{
    roundtrip_at(1500, 40, 128, 5);
}

static void test_roundtrip_mtu9000(void **state)
{
    roundtrip_at(9000, 40, 128, 2);
}

static void test_roundtrip_at_capacity(void **state)
{
    struct mv_stats_report *src = report_new(), *dst = report_new();
    struct chunks c;
    fill_full(src, MV_STATS_MAX_GUESTS, MV_STATS_MAX_PCPUS);
    assert_int_equal(src->n_vcpu, MV_STATS_MAX_VCPUS);
    assert_int_equal(src->n_vif, MV_STATS_MAX_VIFS);
    encode(src, 9000, &c);
    for (size_t i = 0; i < c.n; i++)
        decode_ok(c.buf[i], c.len[i], dst);
    assert_same_contents(src, dst);
    chunks_free(&c);
    free(src);
    free(dst);
}

static void test_empty_groups_preserved(void **state)
{
    struct mv_stats_report *src = report_new(), *dst = report_new();
    struct chunks c;
    src->node_id = 5;
    src->report_id = 1;
    encode(src, 1500, &c); /* nothing at all: every group is still sent, empty */
    assert_int_equal(c.n, 1);
    assert_int_equal(c.len[0], MV_STATS_HEADER_LEN + 9 * 6);
    assert_int_equal(c.buf[0][33], 9); /* group count */
    decode_ok(c.buf[0], c.len[0], dst);
    assert_int_equal(dst->groups_seen, 0x3fe);
    assert_int_equal(dst->n_host + dst->n_pcpu + dst->n_vif + dst->n_vbd, 0);
    chunks_free(&c);

    /* Only the host: the eight other groups still appear with zero records. */
    fill_full(src, 0, 0);
    src->n_numa = src->n_pool = 0;
    memset(src->numa, 0, sizeof src->numa);
    memset(src->pool, 0, sizeof src->pool);
    mv_stats_report_reset(dst);
    encode(src, 1500, &c);
    decode_ok(c.buf[0], c.len[0], dst);
    assert_int_equal(dst->groups_seen, 0x3fe);
    assert_int_equal(dst->n_host, 1);
    assert_same_contents(src, dst);
    chunks_free(&c);
    free(src);
    free(dst);
}

/* Each chunk stands alone; losing one loses exactly its records. */
static void test_chunk_loss(void **state)
{
    for (size_t mtu = 1500; mtu <= 9000; mtu += 7500) {
        struct mv_stats_report *src = report_new(), *dst = report_new(), *one = report_new();
        struct chunks c;
        fill_full(src, mtu == 1500 ? 40 : MV_STATS_MAX_GUESTS, 64);
        encode(src, mtu, &c);
        assert_true(c.n >= 3);
        size_t lost = c.n / 2, total_alone = 0;
        for (size_t i = 0; i < c.n; i++) {
            mv_stats_report_reset(one);
            decode_ok(c.buf[i], c.len[i], one);
            assert_int_equal(one->chunks_received, 1);
            assert_false(mv_stats_report_complete(one));
            for (unsigned g = MV_STATS_G_FIRST; g <= MV_STATS_G_LAST; g++)
                total_alone += mv_stats_group_count(one, g);
        }
        mv_stats_report_reset(one);
        decode_ok(c.buf[lost], c.len[lost], one);
        for (size_t i = 0; i < c.n; i++)
            if (i != lost)
                decode_ok(c.buf[i], c.len[i], dst);
        assert_false(mv_stats_report_complete(dst));
        assert_int_equal(dst->chunks_received, c.n - 1);
        size_t total_src = 0;
        for (unsigned g = MV_STATS_G_FIRST; g <= MV_STATS_G_LAST; g++) {
            size_t ns = mv_stats_group_count(src, g), nd = mv_stats_group_count(dst, g),
                   nl = mv_stats_group_count(one, g);
            total_src += ns;
            assert_int_equal(nd + nl, ns);
            /* What arrived is the source minus the lost chunk's records, in order. */
            size_t sz = record_size(g), i = 0;
            for (size_t j = 0; j < nd; j++) {
                const void *want = mv_stats_group_record(dst, g, j);
                while (i < ns && memcmp(mv_stats_group_record(src, g, i), want, sz) != 0)
                    i++;
                if (i == ns)
                    fail_msg("group %u: received record %zu is not in the source", g, j);
                i++;
            }
        }
        assert_int_equal(total_alone, total_src);
        chunks_free(&c);
        free(src);
        free(dst);
        free(one);
    }
}

static void test_encoder_rejects_invalid(void **state)
{
    struct mv_stats_report *r = report_new();
    struct chunks c = {0};
    fill_full(r, 2, 2);
    strcpy(r->vif[0].vif_id, "../x"); /* '/' never reaches a file name */
    assert_int_equal(mv_stats_encode_chunks(r, 1500, collect_chunk, &c), -MV_STATS_E_INVAL);
    fill_full(r, 2, 2);
    r->vif[1].vif_id[0] = '\0';
    assert_int_equal(mv_stats_encode_chunks(r, 1500, collect_chunk, &c), -MV_STATS_E_INVAL);
    fill_full(r, 2, 2);
    memset(r->vbd[0].device, 'x', sizeof r->vbd[0].device); /* no NUL */
    assert_int_equal(mv_stats_encode_chunks(r, 1500, collect_chunk, &c), -MV_STATS_E_INVAL);
    fill_full(r, 2, 2);
    r->vbd[0].backing[0] = '\n';
    assert_int_equal(mv_stats_encode_chunks(r, 1500, collect_chunk, &c), -MV_STATS_E_INVAL);
    fill_full(r, 2, 2);
    r->pcpu[1].cpu_id = 0; /* duplicate key */
    assert_int_equal(mv_stats_encode_chunks(r, 1500, collect_chunk, &c), -MV_STATS_E_INVAL);
    fill_full(r, 2, 2);
    r->n_numa = MV_STATS_MAX_NUMA + 1;
    assert_int_equal(mv_stats_encode_chunks(r, 1500, collect_chunk, &c), -MV_STATS_E_INVAL);
    fill_full(r, 2, 2);
    assert_int_equal(mv_stats_encode_chunks(r, 100, collect_chunk, &c), -MV_STATS_E_INVAL);
    assert_int_equal(mv_stats_encode_chunks(r, 70000, collect_chunk, &c), -MV_STATS_E_INVAL);
    assert_int_equal(c.n, 0); /* nothing was emitted by any failing call */
    free(r);
}

static int abort_second(void *user, const uint8_t *p, size_t len, uint16_t idx, uint16_t cnt)
{
    (*(int *)user)++;
    return idx == 1 ? 42 : 0;
}

static void test_encoder_callback_abort(void **state)
{
    struct mv_stats_report *r = report_new();
    int calls = 0;
    fill_full(r, 40, 64);
    assert_int_equal(mv_stats_encode_chunks(r, 1500, abort_second, &calls), 42);
    assert_int_equal(calls, 2);
    free(r);
}

/* ---- hand-built payloads (independent of the encoder) ---- */

struct pb {
    uint8_t b[4096];
    size_t n;
    size_t group_at, record_at;
};

static void pb_be(struct pb *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p->b[p->n++] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void pb_patch16(struct pb *p, size_t at, size_t v)
{
    p->b[at] = (uint8_t)(v >> 8);
    p->b[at + 1] = (uint8_t)v;
}

static void pb_header(struct pb *p, uint16_t idx, uint16_t cnt, uint16_t ngroups)
{
    p->n = 0;
    pb_be(p, MV_STATS_VERSION, 1);
    pb_be(p, 0, 1);
    pb_be(p, MV_STATS_HEADER_LEN, 2);
    pb_be(p, 42, 8);         /* node */
    pb_be(p, 7, 4);          /* report */
    pb_be(p, idx, 2);        /* chunk index */
    pb_be(p, cnt, 2);        /* chunk count */
    pb_be(p, 1000000000, 8); /* timestamp */
    pb_be(p, 5000, 4);       /* interval */
    pb_be(p, ngroups, 2);
}

static void pb_group(struct pb *p, uint8_t type, uint16_t count)
{
    p->group_at = p->n;
    pb_be(p, type, 1);
    pb_be(p, 0, 1);
    pb_be(p, count, 2);
    pb_be(p, 0, 2); /* patched by pb_group_end */
}

static void pb_group_end(struct pb *p)
{
    pb_patch16(p, p->group_at + 4, p->n - p->group_at - 6);
}

static void pb_record(struct pb *p, const uint8_t *key, size_t klen)
{
    p->record_at = p->n;
    pb_be(p, 0, 2);
    pb_be(p, klen, 1);
    if (klen)
        memcpy(p->b + p->n, key, klen);
    p->n += klen;
}

static void pb_record_end(struct pb *p)
{
    pb_patch16(p, p->record_at, p->n - p->record_at - 2);
}

static void pb_uint(struct pb *p, uint8_t id, uint64_t v, size_t n)
{
    pb_be(p, id, 1);
    pb_be(p, MV_STATS_T_UINT, 1);
    pb_be(p, n, 1);
    pb_be(p, v, n);
}

static void pb_str(struct pb *p, uint8_t id, const char *s)
{
    pb_be(p, id, 1);
    pb_be(p, MV_STATS_T_STR, 1);
    pb_be(p, strlen(s), 1);
    memcpy(p->b + p->n, s, strlen(s));
    p->n += strlen(s);
}

static const uint8_t key_cpu3[4] = {0, 0, 0, 3};

/* A valid chunk 1 of 2: a pcpu record and a VBD record. */
static void pb_valid(struct pb *p)
{
    uint8_t vbd_key[16 + 3];
    memset(vbd_key, 0x11, 16);
    memcpy(vbd_key + 16, "vda", 3);
    pb_header(p, 1, 2, 2);
    pb_group(p, MV_STATS_G_PCPU, 1);
    pb_record(p, key_cpu3, 4);
    pb_uint(p, MV_STATS_F_PCPU_TIMESTAMP, 1000000000, 4);
    pb_uint(p, MV_STATS_F_PCPU_CPU_TIME, 0x123456789aull, 5);
    pb_record_end(p);
    pb_group_end(p);
    pb_group(p, MV_STATS_G_VBD, 1);
    pb_record(p, vbd_key, sizeof vbd_key);
    pb_str(p, MV_STATS_F_VBD_BACKING, "aoe");
    pb_uint(p, MV_STATS_F_VBD_RD_SECT, 8, 1);
    pb_record_end(p);
    pb_group_end(p);
}

/* Chunk 0 of the same report, holding pcpu 1000, merged first in the "partial" variant. */
static void pb_base(struct pb *p)
{
    static const uint8_t key[4] = {0, 0, 0x03, 0xe8};
    pb_header(p, 0, 2, 1);
    pb_group(p, MV_STATS_G_PCPU, 1);
    pb_record(p, key, 4);
    pb_uint(p, MV_STATS_F_PCPU_CPU_TIME, 5, 1);
    pb_record_end(p);
    pb_group_end(p);
}

/* Rejected with `code`, into an empty report and into one holding chunk 0, which stay
 * byte-for-byte unchanged; the verbose error names an offset. */
static void expect_reject(const uint8_t *b, size_t len, int code)
{
    struct mv_stats_report *r = report_new(), *snap = report_new();
    char err[200];
    for (int variant = 0; variant < 2; variant++) {
        mv_stats_report_reset(r);
        if (variant) {
            struct pb base;
            pb_base(&base);
            decode_ok(base.b, base.n, r);
        }
        memcpy(snap, r, sizeof *r);
        int rc = mv_stats_decode_verbose(b, len, r, err, sizeof err);
        if (rc != -code)
            fail_msg("variant %d: got %d (%s: %s), want %d (%s)", variant, rc,
                     mv_stats_strerror(rc), err, -code, mv_stats_strerror(code));
        assert_non_null(strstr(err, "offset "));
        assert_memory_equal(r, snap, sizeof *r);
    }
    free(r);
    free(snap);
}

static void test_handbuilt_valid(void **state)
{
    struct mv_stats_report *r = report_new();
    struct pb p, base;
    pb_valid(&p);
    decode_ok(p.b, p.n, r);
    assert_int_equal(r->node_id, 42);
    assert_int_equal(r->report_id, 7);
    assert_int_equal(r->interval_ms, 5000);
    assert_int_equal(r->n_pcpu, 1);
    assert_int_equal(r->pcpu[0].cpu_id, 3);
    assert_int_equal(r->pcpu[0].cpu_time_ns, 0x123456789aull);
    assert_int_equal(r->pcpu[0].present,
                     (1u << MV_STATS_F_PCPU_TIMESTAMP) | (1u << MV_STATS_F_PCPU_CPU_TIME));
    assert_int_equal(r->n_vbd, 1);
    assert_string_equal(r->vbd[0].vbd_id, "vda");
    assert_string_equal(r->vbd[0].backing, "aoe");
    assert_int_equal(r->vbd[0].rd_sect, 8);
    assert_int_equal(r->vbd[0].present,
                     (1u << MV_STATS_F_VBD_BACKING) | (1u << MV_STATS_F_VBD_RD_SECT));
    assert_int_equal(r->groups_seen, (1u << MV_STATS_G_PCPU) | (1u << MV_STATS_G_VBD));
    assert_false(mv_stats_report_complete(r));
    /* Same chunk again: a duplicate, and the report stays as it was. */
    struct mv_stats_report *snap = report_new();
    memcpy(snap, r, sizeof *r);
    assert_int_equal(mv_stats_decode(p.b, p.n, r), -MV_STATS_E_DUP_CHUNK);
    assert_memory_equal(r, snap, sizeof *r);
    free(snap);
    pb_base(&base);
    decode_ok(base.b, base.n, r);
    assert_true(mv_stats_report_complete(r));
    assert_int_equal(r->n_pcpu, 2);
    free(r);
}

/* Any rejection, and the (empty) report untouched. */
static void expect_reject_any(const uint8_t *b, size_t len)
{
    struct mv_stats_report *r = report_new(), *zero = report_new();
    int rc = mv_stats_decode(b, len, r);
    if (rc >= 0)
        fail_msg("%zu bytes accepted", len);
    assert_memory_equal(r, zero, sizeof *r);
    free(r);
    free(zero);
}

static void test_truncation_every_byte(void **state)
{
    struct pb p;
    pb_valid(&p);
    for (size_t len = 0; len < p.n; len++)
        expect_reject(p.b, len, MV_STATS_E_TRUNCATED);

    struct mv_stats_report *src = report_new();
    struct chunks c;
    fill_full(src, 40, 64);
    encode(src, 1500, &c);
    for (size_t i = 0; i < 2; i++)
        for (size_t len = 0; len < c.len[i]; len++)
            expect_reject_any(c.buf[i], len);
    chunks_free(&c);
    free(src);
}

static void test_bad_lengths(void **state)
{
    struct pb p;
    /* Group length one too long (the byte exists): bytes left over in the group. */
    pb_valid(&p);
    pb_patch16(&p, p.group_at + 4, p.n - p.group_at - 6 + 1);
    p.b[p.n++] = 0;
    expect_reject(p.b, p.n, MV_STATS_E_LENGTH);
    /* Group length one too short: the record runs past its group. */
    pb_valid(&p);
    pb_patch16(&p, p.group_at + 4, p.n - p.group_at - 6 - 1);
    expect_reject(p.b, p.n, MV_STATS_E_TRUNCATED);
    /* Group length past the payload. */
    pb_valid(&p);
    pb_patch16(&p, p.group_at + 4, 0xffff);
    expect_reject(p.b, p.n, MV_STATS_E_TRUNCATED);
    /* Record length one too long: a stray byte where a field header should be. */
    pb_valid(&p);
    pb_patch16(&p, p.record_at, p.n - p.record_at - 2 + 1);
    p.b[p.n++] = 0;
    pb_group_end(&p);
    expect_reject(p.b, p.n, MV_STATS_E_TRUNCATED);
    /* Record length one too short: the last field runs past the record. */
    pb_valid(&p);
    pb_patch16(&p, p.record_at, p.n - p.record_at - 2 - 1);
    expect_reject(p.b, p.n, MV_STATS_E_TRUNCATED);
    /* Key length past the record. */
    pb_valid(&p);
    p.b[p.record_at + 2] = 200;
    expect_reject(p.b, p.n, MV_STATS_E_TRUNCATED);
    /* Header length below the version-1 header, and past the payload. */
    pb_valid(&p);
    pb_patch16(&p, 2, MV_STATS_HEADER_LEN - 1);
    expect_reject(p.b, p.n, MV_STATS_E_HEADER);
    pb_patch16(&p, 2, p.n + 1);
    expect_reject(p.b, p.n, MV_STATS_E_HEADER);
}

/* A one-record pcpu chunk (1 of 2) whose single field is built by `field`. */
static void pb_one_field(struct pb *p, uint8_t group, const uint8_t *key, size_t klen)
{
    pb_header(p, 1, 2, 1);
    pb_group(p, group, 1);
    pb_record(p, key, klen);
}

static void pb_finish(struct pb *p)
{
    pb_record_end(p);
    pb_group_end(p);
}

static void test_field_mismatches(void **state)
{
    static const uint8_t pool_key[4] = {0, 0, 0, 9};
    uint8_t vbd_key[19];
    memset(vbd_key, 1, 16);
    memcpy(vbd_key + 16, "vdb", 3);
    struct pb p;
    /* Integers of 0 and 9 bytes. */
    pb_one_field(&p, MV_STATS_G_PCPU, key_cpu3, 4);
    pb_uint(&p, MV_STATS_F_PCPU_CPU_TIME, 0, 0);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_FIELD);
    pb_one_field(&p, MV_STATS_G_PCPU, key_cpu3, 4);
    pb_uint(&p, MV_STATS_F_PCPU_CPU_TIME, 1, 8);
    p.b[p.n - 9]++; /* length byte 8 -> 9, with a ninth value byte */
    p.b[p.n++] = 0;
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_FIELD);
    /* A 32-bit field carrying 2^32. */
    pb_one_field(&p, MV_STATS_G_POOL, pool_key, 4);
    pb_uint(&p, MV_STATS_F_POOL_CPUS, 1ull << 32, 5);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_FIELD);
    /* ...while UINT32_MAX in 8 bytes is fine. */
    struct mv_stats_report *r = report_new();
    pb_one_field(&p, MV_STATS_G_POOL, pool_key, 4);
    pb_uint(&p, MV_STATS_F_POOL_CPUS, UINT32_MAX, 8);
    pb_finish(&p);
    decode_ok(p.b, p.n, r);
    assert_int_equal(r->pool[0].cpus, UINT32_MAX);
    free(r);
    /* A string field sent as an integer, an integer field sent as a string. */
    pb_one_field(&p, MV_STATS_G_VBD, vbd_key, sizeof vbd_key);
    pb_uint(&p, MV_STATS_F_VBD_BACKING, 1, 1);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_FIELD);
    pb_one_field(&p, MV_STATS_G_VBD, vbd_key, sizeof vbd_key);
    pb_str(&p, MV_STATS_F_VBD_RD_REQ, "12");
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_FIELD);
    /* Strings too long for their member, or not printable. */
    pb_one_field(&p, MV_STATS_G_VBD, vbd_key, sizeof vbd_key);
    pb_str(&p, MV_STATS_F_VBD_BACKING, "0123456789abcdef");
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_FIELD);
    pb_one_field(&p, MV_STATS_G_VBD, vbd_key, sizeof vbd_key);
    pb_str(&p, MV_STATS_F_VBD_DEVICE, "vd\x01");
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_FIELD);
}

static void test_bad_counts(void **state)
{
    struct pb p;
    /* Far more records than capacity. */
    pb_valid(&p);
    pb_patch16(&p, MV_STATS_HEADER_LEN + 2, 0xffff);
    expect_reject(p.b, p.n, MV_STATS_E_COUNT);
    /* Within capacity but more than the bytes can hold. */
    pb_patch16(&p, MV_STATS_HEADER_LEN + 2, 500);
    expect_reject(p.b, p.n, MV_STATS_E_COUNT);
    /* Two announced, one present. */
    pb_patch16(&p, MV_STATS_HEADER_LEN + 2, 2);
    expect_reject(p.b, p.n, MV_STATS_E_COUNT);
    /* Zero announced, one present. */
    pb_patch16(&p, MV_STATS_HEADER_LEN + 2, 0);
    expect_reject(p.b, p.n, MV_STATS_E_LENGTH);
    /* Group count above and below what follows. */
    pb_valid(&p);
    pb_patch16(&p, 32, 3);
    expect_reject(p.b, p.n, MV_STATS_E_TRUNCATED);
    pb_patch16(&p, 32, 0xffff);
    expect_reject(p.b, p.n, MV_STATS_E_TRUNCATED);
    pb_patch16(&p, 32, 1);
    expect_reject(p.b, p.n, MV_STATS_E_TRAILING);
    /* Two hosts in one report. */
    pb_header(&p, 1, 2, 1);
    pb_group(&p, MV_STATS_G_HOST, 2);
    pb_record(&p, NULL, 0);
    pb_record_end(&p);
    pb_record(&p, NULL, 0);
    pb_record_end(&p);
    pb_group_end(&p);
    expect_reject(p.b, p.n, MV_STATS_E_COUNT);
    /* Chunk numbering. */
    pb_valid(&p);
    pb_patch16(&p, 18, 0);
    expect_reject(p.b, p.n, MV_STATS_E_HEADER);
    pb_patch16(&p, 18, 1); /* index 1 of 1 */
    expect_reject(p.b, p.n, MV_STATS_E_HEADER);
    pb_patch16(&p, 18, MV_STATS_MAX_CHUNKS + 1);
    expect_reject(p.b, p.n, MV_STATS_E_HEADER);
}

static void test_unknown_version(void **state)
{
    struct pb p;
    pb_valid(&p);
    p.b[0] = 2;
    expect_reject(p.b, p.n, MV_STATS_E_VERSION);
    p.b[0] = 0;
    expect_reject(p.b, p.n, MV_STATS_E_VERSION);
}

static void test_duplicates(void **state)
{
    struct pb p;
    /* The same known field twice, and the same unknown field twice. */
    pb_one_field(&p, MV_STATS_G_PCPU, key_cpu3, 4);
    pb_uint(&p, MV_STATS_F_PCPU_CPU_TIME, 1, 1);
    pb_uint(&p, MV_STATS_F_PCPU_CPU_TIME, 2, 1);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_DUP_FIELD);
    pb_one_field(&p, MV_STATS_G_PCPU, key_cpu3, 4);
    pb_uint(&p, 30, 1, 1);
    pb_uint(&p, 30, 1, 1);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_DUP_FIELD);
    /* The same group twice in a chunk. */
    pb_header(&p, 1, 2, 2);
    pb_group(&p, MV_STATS_G_NUMA, 0);
    pb_group_end(&p);
    pb_group(&p, MV_STATS_G_NUMA, 0);
    pb_group_end(&p);
    expect_reject(p.b, p.n, MV_STATS_E_DUP_GROUP);
    /* The same key twice in a chunk. */
    pb_header(&p, 1, 2, 1);
    pb_group(&p, MV_STATS_G_PCPU, 2);
    pb_record(&p, key_cpu3, 4);
    pb_record_end(&p);
    pb_record(&p, key_cpu3, 4);
    pb_record_end(&p);
    pb_group_end(&p);
    expect_reject(p.b, p.n, MV_STATS_E_DUP_RECORD);
    /* A key that an earlier chunk of the report already delivered. */
    struct mv_stats_report *r = report_new(), *snap = report_new();
    struct pb base;
    static const uint8_t key1000[4] = {0, 0, 0x03, 0xe8};
    pb_base(&base);
    decode_ok(base.b, base.n, r);
    memcpy(snap, r, sizeof *r);
    pb_header(&p, 1, 2, 1);
    pb_group(&p, MV_STATS_G_PCPU, 1);
    pb_record(&p, key1000, 4);
    pb_record_end(&p);
    pb_group_end(&p);
    assert_int_equal(mv_stats_decode(p.b, p.n, r), -MV_STATS_E_DUP_RECORD);
    assert_memory_equal(r, snap, sizeof *r);
    free(r);
    free(snap);
}

static void test_bad_keys(void **state)
{
    static const uint8_t short_key[3] = {0, 0, 3};
    uint8_t k[64];
    struct pb p;
    pb_one_field(&p, MV_STATS_G_PCPU, short_key, 3);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_KEY);
    pb_one_field(&p, MV_STATS_G_HOST, short_key, 1);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_KEY);
    memset(k, 7, 16);
    pb_one_field(&p, MV_STATS_G_VIF, k, 16); /* no name */
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_KEY);
    memcpy(k + 16, "../x", 4);
    pb_one_field(&p, MV_STATS_G_VIF, k, 20);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_KEY);
    memset(k + 16, 'a', 32); /* name of 32 bytes: one too many */
    pb_one_field(&p, MV_STATS_G_VIF, k, 48);
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_KEY);
    pb_one_field(&p, MV_STATS_G_VCPU, k, 16); /* vcpu key lacks the id */
    pb_finish(&p);
    expect_reject(p.b, p.n, MV_STATS_E_KEY);
    /* 31 bytes is the longest name. */
    struct mv_stats_report *r = report_new();
    pb_one_field(&p, MV_STATS_G_VIF, k, 47);
    pb_finish(&p);
    decode_ok(p.b, p.n, r);
    assert_int_equal(strlen(r->vif[0].vif_id), 31);
    free(r);
}

static void test_forward_compatible(void **state)
{
    struct pb p;
    struct mv_stats_report *r = report_new();
    /* A longer header, an unknown group full of junk, unknown field ids and types. */
    pb_header(&p, 1, 2, 3);
    pb_patch16(&p, 2, MV_STATS_HEADER_LEN + 6);
    for (int i = 0; i < 6; i++)
        p.b[p.n++] = 0xee;
    pb_group(&p, 200, 0xffff);
    for (int i = 0; i < 17; i++)
        p.b[p.n++] = (uint8_t)(i * 37);
    pb_group_end(&p);
    pb_group(&p, MV_STATS_G_PCPU, 1);
    pb_record(&p, key_cpu3, 4);
    pb_uint(&p, 31, 99, 2);
    pb_be(&p, 17, 1); /* field 17 of an unknown type 9, 3 bytes */
    pb_be(&p, 9, 1);
    pb_be(&p, 3, 1);
    pb_be(&p, 0xabcdef, 3);
    pb_uint(&p, MV_STATS_F_PCPU_CPU_TIME, 77, 1);
    pb_record_end(&p);
    pb_group_end(&p);
    pb_group(&p, MV_STATS_G_VIF, 0);
    pb_group_end(&p);
    decode_ok(p.b, p.n, r);
    assert_int_equal(r->n_pcpu, 1);
    assert_int_equal(r->pcpu[0].cpu_id, 3);
    assert_int_equal(r->pcpu[0].cpu_time_ns, 77);
    assert_int_equal(r->pcpu[0].present, 1u << MV_STATS_F_PCPU_CPU_TIME);
    assert_int_equal(r->groups_seen, (1u << MV_STATS_G_PCPU) | (1u << MV_STATS_G_VIF));
    free(r);
}

/* A field the sender did not measure (not in `present`) is not sent, so the receiver sees it
 * absent rather than as a zero. */
static void test_absent_fields_not_sent(void **state)
{
    struct mv_stats_report *src = report_new(), *dst = report_new();
    struct chunks c;
    fill_full(src, 1, 1);
    src->pcpu[0].present = 1u << MV_STATS_F_PCPU_CPU_TIME;
    src->vbd[0].present &= ~(1u << MV_STATS_F_VBD_RD_REQ);
    encode(src, 1500, &c);
    for (size_t i = 0; i < c.n; i++)
        decode_ok(c.buf[i], c.len[i], dst);
    assert_int_equal(dst->pcpu[0].present, 1u << MV_STATS_F_PCPU_CPU_TIME);
    assert_int_equal(dst->pcpu[0].cpu_time_ns, src->pcpu[0].cpu_time_ns);
    assert_int_equal(dst->pcpu[0].timestamp_ns, 0);
    assert_int_equal(dst->vbd[0].present,
                     full_mask(MV_STATS_G_VBD) & ~(1u << MV_STATS_F_VBD_RD_REQ));
    assert_int_equal(dst->vbd[0].rd_req, 0);
    chunks_free(&c);
    free(src);
    free(dst);
}

static void test_other_report(void **state)
{
    struct pb p;
    struct mv_stats_report *r = report_new(), *snap = report_new();
    struct pb base;
    pb_base(&base);
    decode_ok(base.b, base.n, r);
    memcpy(snap, r, sizeof *r);
    pb_valid(&p);
    p.b[11] = 43; /* node */
    assert_int_equal(mv_stats_decode(p.b, p.n, r), -MV_STATS_E_OTHER_REPORT);
    pb_valid(&p);
    p.b[15] = 8; /* report id */
    assert_int_equal(mv_stats_decode(p.b, p.n, r), -MV_STATS_E_OTHER_REPORT);
    pb_valid(&p);
    pb_patch16(&p, 18, 3); /* chunk count */
    assert_int_equal(mv_stats_decode(p.b, p.n, r), -MV_STATS_E_HEADER);
    pb_valid(&p);
    p.b[27] ^= 1; /* timestamp */
    assert_int_equal(mv_stats_decode(p.b, p.n, r), -MV_STATS_E_HEADER);
    assert_memory_equal(r, snap, sizeof *r);
    pb_valid(&p);
    decode_ok(p.b, p.n, r);
    assert_true(mv_stats_report_complete(r));
    free(r);
    free(snap);
}

static void test_field_table(void **state)
{
    size_t n;
    const struct mv_stats_field_desc *f = mv_stats_fields(&n);
    assert_true(n >= 37);
    for (unsigned g = MV_STATS_G_FIRST; g <= MV_STATS_G_LAST; g++)
        assert_non_null(mv_stats_group_name(g));
    assert_null(mv_stats_group_name(0));
    assert_null(mv_stats_group_name(10));
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(f[i].name);
        assert_true(len >= 1 && len <= 19); /* RRD data-source names */
        for (size_t k = 0; k < len; k++)
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789_", f[i].name[k]));
        assert_true(f[i].id >= 1 && f[i].id < 32);
        assert_true(f[i].scale >= 1);
        assert_ptr_equal(mv_stats_field_lookup(f[i].group, f[i].id), &f[i]);
        for (size_t j = 0; j < i; j++)
            if (f[j].group == f[i].group)
                assert_string_not_equal(f[j].name, f[i].name);
    }
    const struct mv_stats_field_desc *d = mv_stats_field_lookup(MV_STATS_G_VIF, 9);
    assert_string_equal(d->name, "tx_drops");
    assert_int_equal(d->kind, MV_STATS_K_COUNTER);
    assert_null(mv_stats_field_lookup(MV_STATS_G_VIF, 10));
    assert_null(mv_stats_field_lookup(99, 1));
    assert_string_equal(mv_stats_strerror(-MV_STATS_E_DUP_FIELD), "duplicate field");
    assert_string_equal(mv_stats_strerror(1000), "unknown error");
}

static void test_printer(void **state)
{
    struct mv_stats_report *r = report_new();
    fill_full(r, 1, 2);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    mv_stats_print(f, r);
    fclose(f);
    assert_non_null(strstr(text, "report node=2669154467841 id=77 "));
    assert_non_null(strstr(text, "  host timestamp=1700000000123456789 pcpus=2 "));
    assert_non_null(strstr(text, "load_avg=1.250\n"));
    assert_non_null(strstr(text, "  pcpu 1 timestamp="));
    assert_non_null(strstr(text, "vif: 2 records\n"));
    assert_non_null(strstr(text, "/vif0.1 timestamp="));
    assert_non_null(strstr(text, "device=\"/dev/vdb\""));
    assert_non_null(strstr(text, "util=0.03%"));
    char key[96];
    mv_stats_key_format(MV_STATS_G_VCPU, &r->vcpu[3], key, sizeof key);
    assert_string_equal(key, "a0a1a2a3-a4a5-46a7-a8a9-aaabacadaeaf/3");
    mv_stats_key_format(MV_STATS_G_HOST, &r->host[0], key, sizeof key);
    assert_string_equal(key, "");
    free(text);
    free(r);
}

static size_t read_seed(const char *name, uint8_t *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", STATS_SEED_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Payloads written by gen_seeds.py from docs/stats.md: the document and the decoder agree. */
static void test_python_seeds(void **state)
{
    static uint8_t buf[4096];
    struct mv_stats_report *r = report_new();
    size_t n = read_seed("full_small.bin", buf, sizeof buf);
    decode_ok(buf, n, r);
    assert_true(mv_stats_report_complete(r));
    assert_int_equal(r->groups_seen, 0x3fe);
    assert_int_equal(r->host[0].load_avg_milli, 1250);
    assert_int_equal(r->host[0].mem_total, 8ull << 30);
    assert_int_equal(r->n_pcpu, 2);
    assert_int_equal(r->pcpu[1].cpu_time_ns, 987654321);
    assert_int_equal(r->vcpu[0].util_centipct, 4250);
    assert_string_equal(r->vif[0].vif_id, "vif1.0");
    assert_int_equal(r->vif[0].tx_drops, 9000);
    assert_string_equal(r->vbd[0].device, "/dev/vda");
    assert_int_equal(r->vbd[0].wr_sect, 8 * 64);
    assert_int_equal(r->vbd[0].present, full_mask(MV_STATS_G_VBD));

    mv_stats_report_reset(r);
    decode_ok(buf, read_seed("empty_groups.bin", buf, sizeof buf), r);
    assert_int_equal(r->groups_seen, 0x3fe);
    mv_stats_report_reset(r);
    decode_ok(buf, read_seed("forward_compat.bin", buf, sizeof buf), r);
    assert_int_equal(r->pcpu[0].cpu_id, 7);
    assert_int_equal(r->pcpu[0].cpu_time_ns, 42);
    mv_stats_report_reset(r);
    decode_ok(buf, read_seed("middle_chunk.bin", buf, sizeof buf), r);
    assert_int_equal(r->n_vcpu, 8);
    assert_int_equal(r->vcpu[7].cpu_time_ns, 7ull << 32);
    assert_int_equal(r->chunk_count, 3);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_full_single_frame),
        cmocka_unit_test(test_roundtrip_mtu1500),
        cmocka_unit_test(test_roundtrip_mtu9000),
        cmocka_unit_test(test_roundtrip_at_capacity),
        cmocka_unit_test(test_empty_groups_preserved),
        cmocka_unit_test(test_chunk_loss),
        cmocka_unit_test(test_encoder_rejects_invalid),
        cmocka_unit_test(test_encoder_callback_abort),
        cmocka_unit_test(test_handbuilt_valid),
        cmocka_unit_test(test_truncation_every_byte),
        cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_field_mismatches),
        cmocka_unit_test(test_bad_counts),
        cmocka_unit_test(test_unknown_version),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_forward_compatible),
        cmocka_unit_test(test_absent_fields_not_sent),
        cmocka_unit_test(test_other_report),
        cmocka_unit_test(test_field_table),
        cmocka_unit_test(test_printer),
        cmocka_unit_test(test_python_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
