/* ACPI table builder: checksums, lengths, pointers between tables, MADT/SRAT/SLIT contents for
 * 1, 2 and 4 vnodes (with memory across the 3-4 GiB hole), the DSDT's AML structure, and the
 * rejection of bad configurations. Tables are decoded here independently of the builder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mv/acpi.h"

#define GPA 0xe0000ull
#define GiB (1ull << 30)
#define MiB (1ull << 20)

static uint8_t buf[MV_ACPI_MAX_SIZE];

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

/* Pointer into buf for a guest address that the tables refer to (checked to be inside). */
static const uint8_t *at_gpa(const struct mv_acpi_result *res, uint64_t gpa, size_t len)
{
    assert_true(gpa >= GPA);
    assert_true(gpa - GPA + len <= res->size);
    return buf + (gpa - GPA);
}

/* Builds and checks every structural rule; returns the result. */
static struct mv_acpi_result build_ok(const struct mv_acpi_config *cfg)
{
    struct mv_acpi_result res;
    memset(buf, 0xa5, sizeof(buf));
    int rc = mv_acpi_build(cfg, buf, sizeof(buf), GPA, &res);
    if (rc)
        fail_msg("build failed: %s", res.err);
    assert_int_equal(res.rsdp_gpa, GPA);
    assert_true(res.size > 0 && res.size <= sizeof(buf));

    /* RSDP: both checksums, v2, XSDT pointer */
    const uint8_t *r = buf;
    assert_memory_equal(r, "RSD PTR ", 8);
    assert_int_equal(sum8(r, 20), 0);
    assert_int_equal(sum8(r, 36), 0);
    assert_int_equal(r[15], 2);
    assert_int_equal(le(r + 20, 4), 36);
    const uint8_t *x = at_gpa(&res, le(r + 24, 8), 36);
    assert_memory_equal(x, "XSDT", 4);
    uint32_t xlen = (uint32_t)le(x + 4, 4);
    assert_int_equal((xlen - 36) % 8, 0);
    assert_int_equal(sum8(at_gpa(&res, le(r + 24, 8), xlen), xlen), 0);

    /* every table the XSDT points at: in the buffer, checksum 0, length in the result list */
    unsigned n = (xlen - 36) / 8;
    for (unsigned i = 0; i < n; i++) {
        uint64_t g = le(x + 36 + 8 * i, 8);
        const uint8_t *t = at_gpa(&res, g, 36);
        uint32_t len = (uint32_t)le(t + 4, 4);
        at_gpa(&res, g, len);
        assert_int_equal(sum8(t, len), 0);
        char sig[5] = {0};
        memcpy(sig, t, 4);
        const struct mv_acpi_table_info *info = mv_acpi_find_table(&res, sig);
        assert_non_null(info);
        assert_int_equal(info->offset, g - GPA);
        assert_int_equal(info->length, len);
    }
    /* every recorded table has a correct checksum (FACS and RSDP have their own rules) */
    for (uint32_t i = 0; i < res.nr_tables; i++) {
        const struct mv_acpi_table_info *t = &res.tables[i];
        assert_true(t->offset + t->length <= res.size);
        if (strcmp(t->signature, "FACS") && strcmp(t->signature, "RSDP"))
            assert_int_equal(mv_acpi_checksum(buf + t->offset, t->length), 0);
    }
    /* bytes past the end are untouched */
    assert_int_equal(buf[res.size], 0xa5);
    return res;
}

static const uint8_t *table(const struct mv_acpi_result *res, const char *sig, uint32_t *len)
{
    const struct mv_acpi_table_info *t = mv_acpi_find_table(res, sig);
    if (!t)
        return NULL;
    if (len)
        *len = t->length;
    return buf + t->offset;
}

static void test_fadt_facs_dsdt_pointers(void **state)
{
    (void)state;
    struct mv_acpi_config cfg;
    mv_acpi_config_init(&cfg, 1);
    struct mv_acpi_result res = build_ok(&cfg);

    uint32_t len = 0;
    const uint8_t *f = table(&res, "FACP", &len);
    assert_non_null(f);
    assert_int_equal(len, 276);
    assert_int_equal(f[8], 6);   /* revision */
    assert_int_equal(f[131], 5); /* minor */
    const struct mv_acpi_table_info *dsdt = mv_acpi_find_table(&res, "DSDT");
    const struct mv_acpi_table_info *facs = mv_acpi_find_table(&res, "FACS");
    assert_non_null(dsdt);
    assert_non_null(facs);
    assert_int_equal(le(f + 40, 4), GPA + dsdt->offset);
    assert_int_equal(le(f + 140, 8), GPA + dsdt->offset);
    assert_int_equal(le(f + 36, 4), GPA + facs->offset);
    assert_int_equal((GPA + facs->offset) % 64, 0);
    assert_int_equal(facs->length, 64);
    assert_memory_equal(buf + facs->offset, "FACS", 4);
    assert_int_equal(le(buf + facs->offset + 4, 4), 64);

    /* fixed hardware: SCI, PM blocks (legacy and X_ GAS), reset register */
    assert_int_equal(le(f + 46, 2), MV_ACPI_SCI_GSI);
    assert_int_equal(le(f + 48, 4), 0); /* no SMI_CMD */
    assert_int_equal(le(f + 56, 4), MV_ACPI_PM1A_EVT_PORT);
    assert_int_equal(le(f + 64, 4), MV_ACPI_PM1A_CNT_PORT);
    assert_int_equal(le(f + 76, 4), MV_ACPI_PM_TMR_PORT);
    assert_int_equal(f[88], 4);
    assert_int_equal(f[89], 2);
    assert_int_equal(f[91], 4);
    assert_int_equal(f[148], 1); /* X_PM1a_EVT: system I/O */
    assert_int_equal(f[149], 32);
    assert_int_equal(le(f + 152, 8), MV_ACPI_PM1A_EVT_PORT);
    assert_int_equal(le(f + 176, 8), MV_ACPI_PM1A_CNT_PORT);
    assert_int_equal(le(f + 212, 8), MV_ACPI_PM_TMR_PORT);
    assert_int_equal(f[116], 1); /* RESET_REG in I/O space, 8 bits */
    assert_int_equal(f[117], 8);
    assert_int_equal(le(f + 120, 8), MV_ACPI_RESET_PORT);
    assert_int_equal(f[128], MV_ACPI_RESET_VALUE);
    uint32_t flags = (uint32_t)le(f + 112, 4);
    assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
    assert_true(flags & (1u << 8));   /* TMR_VAL_EXT */
    assert_false(flags & (1u << 4));  /* fixed-feature power button */
    assert_false(flags & (1u << 20)); /* not HW-reduced */
    uint16_t boot = (uint16_t)le(f + 109, 2);
    assert_false(boot & 2);   /* no i8042 by default */
    assert_true(boot & 0x20); /* no CMOS RTC by default */

    /* i8042 and RTC flip their boot flags */
    cfg.i8042 = true;
    cfg.rtc = true;
    res = build_ok(&cfg);
    f = table(&res, "FACP", NULL);
    boot = (uint16_t)le(f + 109, 2);
    assert_true(boot & 2);
    assert_false(boot & 0x20);
    assert_int_equal(f[108], 0x32);

    /* no NUMA: no SRAT or SLIT, XSDT has FADT and MADT */
    assert_null(mv_acpi_find_table(&res, "SRAT"));
    assert_null(mv_acpi_find_table(&res, "SLIT"));
    assert_int_equal(mv_acpi_find_table(&res, "XSDT")->length, 36 + 2 * 8);
}

static void test_custom_ports(void **state)
{
    (void)state;
    struct mv_acpi_config cfg;
    mv_acpi_config_init(&cfg, 1);
    cfg.pm1a_evt_port = 0xb000;
    cfg.pm1a_cnt_port = 0xb004;
    cfg.pm_tmr_port = 0xb008;
    cfg.reset_port = 0xb00c;
    cfg.reset_value = 0x0e;
    cfg.sci_gsi = 10;
    struct mv_acpi_result res = build_ok(&cfg);
    const uint8_t *f = table(&res, "FACP", NULL);
    assert_int_equal(le(f + 56, 4), 0xb000);
    assert_int_equal(le(f + 64, 4), 0xb004);
    assert_int_equal(le(f + 76, 4), 0xb008);
    assert_int_equal(le(f + 120, 8), 0xb00c);
    assert_int_equal(f[128], 0x0e);
    assert_int_equal(le(f + 46, 2), 10);
}

/* Walks MADT structures; counts per type and checks the fixed ones. */
static void check_madt(const struct mv_acpi_result *res, const struct mv_acpi_config *cfg)
{
    uint32_t len = 0;
    const uint8_t *m = table(res, "APIC", &len);
    assert_non_null(m);
    assert_int_equal(le(m + 36, 4), 0xfee00000u);
    assert_int_equal(le(m + 40, 4), 1); /* PCAT_COMPAT */
    unsigned seen[MV_ACPI_MAX_VCPUS] = {0};
    unsigned ioapics = 0, isos = 0, nmis = 0;
    bool iso_pit = false, iso_sci = false;
    for (uint32_t off = 44; off < len;) {
        uint8_t type = m[off], slen = m[off + 1];
        assert_true(slen >= 2 && off + slen <= len);
        const uint8_t *e = m + off;
        switch (type) {
        case 0: /* LAPIC */
            assert_int_equal(slen, 8);
            assert_true(e[2] < cfg->nr_vcpus);
            assert_int_equal(e[3], cfg->apic_id[e[2]]);
            assert_int_equal(le(e + 4, 4), 1);
            seen[e[2]]++;
            break;
        case 9: /* x2APIC */
            assert_int_equal(slen, 16);
            assert_true(le(e + 12, 4) < cfg->nr_vcpus);
            assert_int_equal(le(e + 4, 4), cfg->apic_id[le(e + 12, 4)]);
            assert_true(le(e + 4, 4) >= 255);
            seen[le(e + 12, 4)]++;
            break;
        case 1:
            assert_int_equal(slen, 12);
            assert_int_equal(le(e + 4, 4), 0xfec00000u);
            assert_int_equal(le(e + 8, 4), 0);
            ioapics++;
            break;
        case 2:
            assert_int_equal(slen, 10);
            isos++;
            if (e[3] == 0 && le(e + 4, 4) == 2 && le(e + 8, 2) == 0)
                iso_pit = true;
            if (e[3] == cfg->sci_gsi && le(e + 4, 4) == cfg->sci_gsi && le(e + 8, 2) == 0x0d)
                iso_sci = true;
            break;
        case 4:
            assert_int_equal(slen, 6);
            assert_int_equal(e[2], 0xff);
            assert_int_equal(e[5], 1); /* LINT1 */
            nmis++;
            break;
        case 10:
            assert_int_equal(slen, 12);
            break;
        default:
            fail_msg("unexpected MADT structure type %u", type);
        }
        off += slen;
    }
    for (uint32_t i = 0; i < cfg->nr_vcpus; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(ioapics, 1);
    assert_int_equal(isos, 2);
    assert_true(iso_pit);
    assert_true(iso_sci);
    assert_int_equal(nmis, 1);
}

static void test_madt_per_vcpu(void **state)
{
    (void)state;
    static struct mv_acpi_config cfg;
    uint32_t counts[] = {1, 2, 4, 64, 256};
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        mv_acpi_config_init(&cfg, counts[k]);
        struct mv_acpi_result res = build_ok(&cfg);
        check_madt(&res, &cfg);
        uint32_t len = 0;
        table(&res, "APIC", &len);
        /* 256 vcpus: ids 255 and up need x2APIC structures (16 bytes) and the x2APIC NMI */
        uint32_t x2 = counts[k] > 255 ? counts[k] - 255 : 0;
        assert_int_equal(len,
                         44 + 8 * (counts[k] - x2) + 16 * x2 + 12 + 2 * 10 + 6 + (x2 ? 12 : 0));
    }
    /* sparse APIC ids */
    mv_acpi_config_init(&cfg, 3);
    cfg.apic_id[0] = 0;
    cfg.apic_id[1] = 4;
    cfg.apic_id[2] = 300;
    struct mv_acpi_result res = build_ok(&cfg);
    check_madt(&res, &cfg);
}

/* Decoded SRAT */
struct srat_view {
    unsigned nr_cpus;
    uint32_t cpu_apic[MV_ACPI_MAX_VCPUS], cpu_pd[MV_ACPI_MAX_VCPUS];
    unsigned nr_mem;
    uint64_t mem_base[64], mem_len[64];
    uint32_t mem_pd[64];
};

static void decode_srat(const struct mv_acpi_result *res, struct srat_view *v)
{
    uint32_t len = 0;
    const uint8_t *s = table(res, "SRAT", &len);
    assert_non_null(s);
    assert_int_equal(s[8], 3);
    assert_int_equal(le(s + 36, 4), 1);
    memset(v, 0, sizeof(*v));
    for (uint32_t off = 48; off < len;) {
        const uint8_t *e = s + off;
        assert_true(e[1] >= 2 && off + e[1] <= len);
        switch (e[0]) {
        case 0:
            assert_int_equal(e[1], 16);
            assert_int_equal(le(e + 4, 4) & 1, 1);
            v->cpu_apic[v->nr_cpus] = e[3];
            v->cpu_pd[v->nr_cpus++] = e[2] | (uint32_t)le(e + 9, 3) << 8;
            break;
        case 2:
            assert_int_equal(e[1], 24);
            v->cpu_apic[v->nr_cpus] = (uint32_t)le(e + 8, 4);
            v->cpu_pd[v->nr_cpus++] = (uint32_t)le(e + 4, 4);
            break;
        case 1:
            assert_int_equal(e[1], 40);
            assert_int_equal(le(e + 28, 4) & 1, 1); /* enabled */
            v->mem_pd[v->nr_mem] = (uint32_t)le(e + 2, 4);
            v->mem_base[v->nr_mem] = le(e + 8, 8);
            v->mem_len[v->nr_mem++] = le(e + 16, 8);
            break;
        default:
            fail_msg("unexpected SRAT type %u", e[0]);
        }
        off += e[1];
    }
}

static void check_slit(const struct mv_acpi_result *res, const struct mv_vnuma *v)
{
    uint32_t len = 0;
    const uint8_t *s = table(res, "SLIT", &len);
    assert_non_null(s);
    assert_int_equal(le(s + 36, 8), v->nr_nodes);
    assert_int_equal(len, 44 + v->nr_nodes * v->nr_nodes);
    for (uint32_t i = 0; i < v->nr_nodes; i++) {
        assert_int_equal(s[44 + i * v->nr_nodes + i], 10);
        for (uint32_t j = 0; j < v->nr_nodes; j++)
            assert_int_equal(s[44 + i * v->nr_nodes + j], v->distance[i][j]);
    }
}

/* Builds tables for a --vnuma spec and returns the SRAT decoded. */
static struct mv_acpi_result build_vnuma(const char *spec, uint64_t mem, uint32_t vcpus,
                                         struct mv_vnuma *v, struct srat_view *sv)
{
    static struct mv_acpi_config cfg;
    char err[256];
    if (mv_vnuma_parse(spec, mem, vcpus, v, err, sizeof(err)))
        fail_msg("%s", err);
    vcpus = v->nr_vcpus; /* 0 = taken from the spec */
    mv_acpi_config_init(&cfg, vcpus);
    if (mv_acpi_config_set_vnuma(&cfg, v, err, sizeof(err)))
        fail_msg("%s", err);
    struct mv_acpi_result res = build_ok(&cfg);
    decode_srat(&res, sv);
    check_slit(&res, v);
    check_madt(&res, &cfg);
    assert_int_equal(mv_acpi_find_table(&res, "XSDT")->length, 36 + 4 * 8);
    /* processor affinity: one per vCPU, in the configured vnode */
    assert_int_equal(sv->nr_cpus, vcpus);
    for (uint32_t c = 0; c < vcpus; c++) {
        assert_int_equal(sv->cpu_apic[c], c);
        assert_int_equal(sv->cpu_pd[c], v->vcpu_node[c]);
    }
    /* memory: contiguous from 0 except across the hole, nothing in [3G, 4G), sizes per vnode */
    uint64_t per_node[MV_VNUMA_MAX_NODES] = {0}, next = 0;
    for (unsigned i = 0; i < sv->nr_mem; i++) {
        if (next == MV_ACPI_MEM_HOLE_START)
            next = MV_ACPI_MEM_HOLE_END;
        assert_int_equal(sv->mem_base[i], next);
        assert_true(sv->mem_base[i] + sv->mem_len[i] <= MV_ACPI_MEM_HOLE_START ||
                    sv->mem_base[i] >= MV_ACPI_MEM_HOLE_END);
        assert_true(sv->mem_pd[i] < v->nr_nodes);
        per_node[sv->mem_pd[i]] += sv->mem_len[i];
        next = sv->mem_base[i] + sv->mem_len[i];
    }
    for (uint32_t i = 0; i < v->nr_nodes; i++)
        assert_int_equal(per_node[i], v->node_mem[i]);
    return res;
}

static void test_srat_slit_one_node(void **state)
{
    (void)state;
    struct mv_vnuma v;
    struct srat_view sv;
    build_vnuma("nodes=1", 256 * MiB, 2, &v, &sv);
    assert_int_equal(sv.nr_mem, 1);
    assert_int_equal(sv.mem_base[0], 0);
    assert_int_equal(sv.mem_len[0], 256 * MiB);
    assert_int_equal(sv.mem_pd[0], 0);
}

static void test_srat_slit_two_nodes(void **state)
{
    (void)state;
    struct mv_vnuma v;
    struct srat_view sv;
    build_vnuma("nodes=2,mem=512M:512M,cpus=0-1:2-3,dist=10:20:20:10,pnodes=0:0", GiB, 4, &v, &sv);
    assert_int_equal(sv.nr_mem, 2);
    assert_int_equal(sv.mem_base[1], 512 * MiB);
    assert_int_equal(sv.mem_pd[1], 1);
    assert_int_equal(sv.cpu_pd[1], 0);
    assert_int_equal(sv.cpu_pd[2], 1);
}

static void test_srat_slit_four_nodes_hole(void **state)
{
    (void)state;
    struct mv_vnuma v;
    struct srat_view sv;
    /* 6 GiB in four 1.5 GiB vnodes: vnode 1 ends exactly at 3 GiB, vnode 2 starts at 4 GiB */
    build_vnuma("nodes=4,dist=10:16:22:22:16:10:22:22:22:22:10:16:22:22:16:10", 6 * GiB, 8, &v,
                &sv);
    assert_int_equal(sv.nr_mem, 4);
    assert_int_equal(sv.mem_base[2], 4 * GiB);
    assert_int_equal(sv.mem_len[2], 1536 * MiB);
    assert_int_equal(sv.mem_base[3], 5 * GiB + 512 * MiB);
    assert_int_equal(sv.cpu_pd[7], 3);

    /* 2 x 2 GiB: vnode 1 straddles the hole and gets two ranges */
    build_vnuma("nodes=2", 4 * GiB, 2, &v, &sv);
    assert_int_equal(sv.nr_mem, 3);
    assert_int_equal(sv.mem_base[1], 2 * GiB);
    assert_int_equal(sv.mem_len[1], GiB);
    assert_int_equal(sv.mem_pd[1], 1);
    assert_int_equal(sv.mem_base[2], 4 * GiB);
    assert_int_equal(sv.mem_len[2], GiB);
    assert_int_equal(sv.mem_pd[2], 1);

    /* four vnodes with a memory-only vnode and asymmetric distances */
    build_vnuma(
        "mem=1G:1G:1G:1G,cpus=0:1:2-3:,dist=10:20:30:40:21:10:20:30:31:21:10:20:41:31:21:10", 0, 0,
        &v, &sv);
    assert_int_equal(v.nr_vcpus, 4);
    assert_int_equal(sv.nr_mem, 4);
    assert_int_equal(sv.mem_base[3], 4 * GiB);
    assert_int_equal(sv.cpu_pd[3], 2);
}

/* ---- DSDT ---- */

/* Decodes an AML PkgLength at p; returns its value and sets *n to its byte count. */
static uint32_t aml_pkglen(const uint8_t *p, unsigned *n)
{
    unsigned extra = p[0] >> 6;
    *n = extra + 1;
    if (!extra)
        return p[0] & 0x3f;
    uint32_t v = p[0] & 0x0f;
    for (unsigned i = 0; i < extra; i++)
        v |= (uint32_t)p[1 + i] << (4 + 8 * i);
    return v;
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
    for (size_t i = 0; i + nlen <= len; i++)
        if (memcmp(hay + i, needle, nlen) == 0)
            return hay + i;
    return NULL;
}

static size_t count_bytes(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
    size_t n = 0;
    const uint8_t *p;
    while ((p = find_bytes(hay, len, needle, nlen))) {
        n++;
        len -= (size_t)(p - hay) + 1;
        hay = p + 1;
    }
    return n;
}

static void check_dsdt(uint32_t nr_virtio)
{
    static struct mv_acpi_config cfg;
    mv_acpi_config_init(&cfg, 1);
    cfg.nr_virtio = nr_virtio;
    for (uint32_t i = 0; i < nr_virtio; i++) {
        cfg.virtio[i].base = 0xd0000000u + i * 0x1000u;
        cfg.virtio[i].size = 0x1000;
        cfg.virtio[i].gsi = 5 + (i % 4);
        cfg.virtio[i].level = i == 1;
    }
    struct mv_acpi_result res = build_ok(&cfg);
    uint32_t len = 0;
    const uint8_t *d = table(&res, "DSDT", &len);
    assert_non_null(d);
    assert_int_equal(d[8], 2);

    /* Name (_S5, Package (4) {5, 5, 0, 0}) */
    static const uint8_t s5[] = {0x08, '_',  'S',  '5',  '_',  0x12, 0x08,
                                 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00};
    assert_memory_equal(d + 36, s5, sizeof(s5));

    /* Scope (_SB): its PkgLength spans exactly to the end of the table */
    const uint8_t *sc = d + 36 + sizeof(s5);
    assert_int_equal(sc[0], 0x10);
    unsigned n;
    uint32_t pl = aml_pkglen(sc + 1, &n);
    assert_int_equal(1 + pl, len - 36 - sizeof(s5));
    assert_memory_equal(sc + 1 + n, "_SB_", 4);

    /* one device per virtio window, each with its _CRS; COM1 with PNP0501 */
    assert_int_equal(count_bytes(d, len, "LNRO0005", 9), nr_virtio);
    static const uint8_t pnp0501[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
    assert_non_null(find_bytes(d, len, pnp0501, sizeof(pnp0501)));
    static const uint8_t com1_io[] = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00,
                                      0x08, 0x22, 0x10, 0x00, 0x79, 0x00};
    assert_non_null(find_bytes(d, len, com1_io, sizeof(com1_io)));
    for (uint32_t i = 0; i < nr_virtio; i++) {
        uint8_t mem32[] = {0x86, 0x09, 0x00, 0x01, 0,    0,    0, 0, 0x00, 0x10, 0x00,
                           0x00, 0x89, 0x06, 0x00, 0x03, 0x01, 0, 0, 0,    0};
        uint32_t base = (uint32_t)cfg.virtio[i].base;
        memcpy(mem32 + 4, &base, 4);
        mem32[15] = cfg.virtio[i].level ? 0x01 : 0x03;
        mem32[17] = (uint8_t)cfg.virtio[i].gsi;
        assert_non_null(find_bytes(d, len, mem32, sizeof(mem32)));
        char name[5];
        snprintf(name, sizeof(name), "VR%02X", i & 0xffu);
        /* ExtOp Device, PkgLength, NameSeg */
        const uint8_t *dev = find_bytes(d, len, name, 4);
        assert_non_null(dev);
        assert_int_equal(dev[-3] == 0x5b ? dev[-2] : dev[-3], 0x82);
    }
}

static void test_dsdt_devices(void **state)
{
    (void)state;
    check_dsdt(0);
    check_dsdt(1);
    check_dsdt(4);
    check_dsdt(MV_ACPI_MAX_VIRTIO); /* multi-byte PkgLength for the scope */
}

/* ---- bad configurations ---- */

static void expect_build_error(const struct mv_acpi_config *cfg, uint64_t gpa, size_t cap, int want,
                               const char *msg)
{
    struct mv_acpi_result res;
    memset(buf, 0x5a, sizeof(buf));
    int rc = mv_acpi_build(cfg, buf, cap, gpa, &res);
    assert_int_equal(rc, want);
    if (!strstr(res.err, msg))
        fail_msg("error '%s' does not mention '%s'", res.err, msg);
    assert_int_equal(res.nr_tables, 0);
    if (want == -EINVAL) /* rejected before anything was written */
        assert_int_equal(buf[0], 0x5a);
}

static void test_bad_configs(void **state)
{
    (void)state;
    static struct mv_acpi_config cfg;
    mv_acpi_config_init(&cfg, 0);
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "vcpus");
    mv_acpi_config_init(&cfg, MV_ACPI_MAX_VCPUS + 1);
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "vcpus");

    mv_acpi_config_init(&cfg, 2);
    cfg.apic_id[1] = 0;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "share APIC id");

    mv_acpi_config_init(&cfg, 1);
    cfg.sci_gsi = 2;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "SCI");
    cfg.sci_gsi = 16;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "SCI");

    mv_acpi_config_init(&cfg, 1);
    cfg.pm_tmr_port = MV_ACPI_PM1A_CNT_PORT + 1;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "overlaps");
    mv_acpi_config_init(&cfg, 1);
    cfg.pm1a_evt_port = 0xfffe;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "past port");
    mv_acpi_config_init(&cfg, 1);
    cfg.s5_slp_typ = 8;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "SLP_TYP");

    mv_acpi_config_init(&cfg, 1);
    cfg.nr_virtio = 2;
    cfg.virtio[0] = (struct mv_acpi_virtio_dev){0xd0000000u, 0x1000, 5, false};
    cfg.virtio[1] = (struct mv_acpi_virtio_dev){0xd0000800u, 0x1000, 6, false};
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "overlap");
    cfg.virtio[1] = (struct mv_acpi_virtio_dev){0xfffff800u, 0x1000, 6, false};
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "below 4G");
    cfg.virtio[1] = (struct mv_acpi_virtio_dev){0xd0001000u, 0x1000, MV_ACPI_SCI_GSI, false};
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "GSI");
    cfg.nr_virtio = MV_ACPI_MAX_VIRTIO + 1;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "at most");

    /* NUMA consistency */
    mv_acpi_config_init(&cfg, 2);
    cfg.nr_nodes = 2;
    cfg.nr_mem_ranges = 2;
    cfg.mem[0] = (struct mv_vnuma_range){0, 64 * MiB, 0};
    cfg.mem[1] = (struct mv_vnuma_range){64 * MiB, 64 * MiB, 1};
    for (uint32_t i = 0; i < 2; i++)
        for (uint32_t j = 0; j < 2; j++)
            cfg.distance[i][j] = i == j ? 10 : 20;
    cfg.vcpu_node[1] = 1;
    struct mv_acpi_result ok;
    assert_int_equal(mv_acpi_build(&cfg, buf, sizeof(buf), GPA, &ok), 0);
    cfg.vcpu_node[1] = 2;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "vnode");
    cfg.vcpu_node[1] = 1;
    cfg.mem[1].gpa = 32 * MiB;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "overlap");
    cfg.mem[1].gpa = 64 * MiB;
    cfg.distance[0][0] = 11;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "distance");
    cfg.distance[0][0] = 10;
    cfg.distance[0][1] = 10;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "distance");
    cfg.distance[0][1] = 20;
    cfg.mem[1].node = 5;
    expect_build_error(&cfg, GPA, sizeof(buf), -EINVAL, "vnode");

    /* placement */
    mv_acpi_config_init(&cfg, 1);
    expect_build_error(&cfg, GPA + 8, sizeof(buf), -EINVAL, "aligned");
    expect_build_error(&cfg, 1ull << 32, sizeof(buf), -EINVAL, "below 4G");
    expect_build_error(&cfg, GPA, 100, -ENOSPC, "bytes");
    expect_build_error(&cfg, GPA, 0, -ENOSPC, "bytes");
    expect_build_error(&cfg, (1ull << 32) - 256, sizeof(buf), -ENOSPC, "bytes");

    /* vNUMA topology vs. VM */
    struct mv_vnuma v;
    char err[256];
    assert_int_equal(mv_vnuma_parse("nodes=2", 128 * MiB, 4, &v, err, sizeof(err)), 0);
    mv_acpi_config_init(&cfg, 2);
    assert_int_equal(mv_acpi_config_set_vnuma(&cfg, &v, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "4 vcpus"));
    assert_int_equal(cfg.nr_nodes, 0);
}

/* The maximum configuration fits MV_ACPI_MAX_SIZE, as the header promises. */
static void test_max_size(void **state)
{
    (void)state;
    static struct mv_acpi_config cfg;
    static struct mv_vnuma v;
    char err[256];
    assert_int_equal(mv_vnuma_default(&v, 64 * GiB, MV_ACPI_MAX_VCPUS, MV_ACPI_MAX_NODES, NULL, 0,
                                      err, sizeof(err)),
                     0);
    mv_acpi_config_init(&cfg, MV_ACPI_MAX_VCPUS);
    for (uint32_t i = 0; i < MV_ACPI_MAX_VCPUS; i++)
        cfg.apic_id[i] = 1000 + i; /* all x2APIC: the largest structures */
    assert_int_equal(mv_acpi_config_set_vnuma(&cfg, &v, err, sizeof(err)), 0);
    cfg.nr_virtio = MV_ACPI_MAX_VIRTIO;
    for (uint32_t i = 0; i < MV_ACPI_MAX_VIRTIO; i++)
        cfg.virtio[i] =
            (struct mv_acpi_virtio_dev){0xd0000000u + i * 0x1000u, 0x1000, 16 + i, false};
    cfg.i8042 = cfg.rtc = true;
    struct mv_acpi_result res = build_ok(&cfg);
    assert_true(res.size <= MV_ACPI_MAX_SIZE);
    check_madt(&res, &cfg);
    struct srat_view *sv = calloc(1, sizeof(*sv));
    assert_non_null(sv);
    decode_srat(&res, sv);
    assert_int_equal(sv->nr_cpus, MV_ACPI_MAX_VCPUS);
    assert_int_equal(sv->cpu_apic[255], 1255);
    assert_int_equal(sv->cpu_pd[255], MV_ACPI_MAX_NODES - 1);
    free(sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fadt_facs_dsdt_pointers),
        cmocka_unit_test(test_custom_ports),
        cmocka_unit_test(test_madt_per_vcpu),
        cmocka_unit_test(test_srat_slit_one_node),
        cmocka_unit_test(test_srat_slit_two_nodes),
        cmocka_unit_test(test_srat_slit_four_nodes_hole),
        cmocka_unit_test(test_dsdt_devices),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_max_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
