/* vNUMA topology: the --vnuma parser (good specs and every class of bad one, with the message),
 * the default layout, validation, the guest-physical layout around the MMIO hole, formatting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mv/acpi.h"
#include "mv/vnuma.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct mv_vnuma parse_ok(const char *spec, uint64_t mem, uint32_t vcpus)
{
    struct mv_vnuma v;
    char err[256] = "";
    if (mv_vnuma_parse(spec, mem, vcpus, &v, err, sizeof(err)))
        fail_msg("'%s' rejected: %s", spec, err);
    assert_int_equal(mv_vnuma_validate(&v, err, sizeof(err)), 0);
    return v;
}

static void test_parse_full_spec(void **state)
{
    (void)state;
    struct mv_vnuma v =
        parse_ok("nodes=2,mem=512M:512M,cpus=0-1:2-3,dist=10:20:20:10,pnodes=0:0", GiB, 4);
    assert_int_equal(v.nr_nodes, 2);
    assert_int_equal(v.nr_vcpus, 4);
    assert_int_equal(v.node_mem[0], 512 * MiB);
    assert_int_equal(v.node_mem[1], 512 * MiB);
    assert_int_equal(v.vcpu_node[0], 0);
    assert_int_equal(v.vcpu_node[1], 0);
    assert_int_equal(v.vcpu_node[2], 1);
    assert_int_equal(v.vcpu_node[3], 1);
    assert_int_equal(v.distance[0][1], 20);
    assert_int_equal(v.distance[1][1], 10);
    assert_int_equal(v.pnode[0], 0);
    assert_int_equal(v.pnode[1], 0);
    assert_int_equal(mv_vnuma_total_mem(&v), GiB);
}

static void test_parse_defaults_and_shorthands(void **state)
{
    (void)state;
    /* only nodes: even split, contiguous vcpu blocks, 10/20, pnodes any */
    struct mv_vnuma v = parse_ok("nodes=3", 96 * MiB + 4 * MiB, 7);
    /* 100M = 50 granules of 2M: 16 each, the remaining 2 to the last vnode */
    assert_int_equal(v.node_mem[0], 32 * MiB);
    assert_int_equal(v.node_mem[1], 32 * MiB);
    assert_int_equal(v.node_mem[2], 36 * MiB);
    assert_int_equal(mv_vnuma_total_mem(&v), 100 * MiB);
    uint8_t want_nodes[] = {0, 0, 0, 1, 1, 2, 2};
    assert_memory_equal(v.vcpu_node, want_nodes, sizeof(want_nodes));
    assert_int_equal(v.distance[2][0], 20);
    assert_int_equal(v.pnode[2], MV_VNUMA_PNODE_ANY);

    /* nodes implied by the lists; memory and vcpu count taken from them */
    v = parse_ok("mem=1G:2G,cpus=0+2+4-5:1+3", 0, 0);
    assert_int_equal(v.nr_nodes, 2);
    assert_int_equal(v.nr_vcpus, 6);
    assert_int_equal(v.node_mem[1], 2 * GiB);
    uint8_t want2[] = {0, 1, 0, 1, 0, 0};
    assert_memory_equal(v.vcpu_node, want2, sizeof(want2));

    /* remote=, pnodes with any, a memory-only vnode */
    v = parse_ok("nodes=2,remote=32,pnodes=any:1,cpus=0-1:", 64 * MiB, 2);
    assert_int_equal(v.distance[0][1], 32);
    assert_int_equal(v.distance[1][0], 32);
    assert_int_equal(v.pnode[0], MV_VNUMA_PNODE_ANY);
    assert_int_equal(v.pnode[1], 1);
    assert_int_equal(v.vcpu_node[1], 0);

    /* sizes with every suffix mv_parse_size knows, asymmetric distances */
    v = parse_ok("nodes=2,mem=2048k:4M,dist=10:15:25:10", 6 * MiB, 1);
    assert_int_equal(v.node_mem[0], 2 * MiB);
    assert_int_equal(v.distance[0][1], 15);
    assert_int_equal(v.distance[1][0], 25);

    /* the maximum */
    v = parse_ok("nodes=32", 64 * MiB, 256);
    assert_int_equal(v.vcpu_node[255], 31);
}

struct bad_case {
    const char *spec;
    uint64_t mem;
    uint32_t vcpus;
    const char *msg; /* must appear in the error */
};

static void test_parse_rejects(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"", GiB, 2, "empty"},
        {"nodes=0", GiB, 2, "nodes='0'"},
        {"nodes=33", GiB, 2, "must be 1..32"},
        {"nodes=two", GiB, 2, "nodes='two'"},
        {"nodes=-1", GiB, 2, "nodes='-1'"},
        {"nodes=0x2", GiB, 2, "nodes='0x2'"},
        {"nodes=2,cpus=0: 1", GiB, 2, "not a cpu or range"},
        {"nodes=99999999999", GiB, 2, "must be 1..32"},
        {"nodes=2,nodes=2", GiB, 2, "given twice"},
        {"nodes=2,color=blue", GiB, 2, "unknown key 'color'"},
        {"nodes", GiB, 2, "not key=value"},
        {"nodes=2,", GiB, 2, "not key=value"},
        {",nodes=2", GiB, 2, "not key=value"},
        {"dist=10", GiB, 2, "nodes=N"},
        {"nodes=2,mem=512M", GiB, 2, "mem= lists 1 vnodes but there are 2"},
        {"nodes=2,mem=512M:256M", GiB, 2, "adds up to 768M but the VM has 1024M"},
        {"nodes=2,mem=512M:lots", GiB, 2, "'lots' is not a size"},
        {"nodes=2,mem=0:1G", GiB, 2, "non-zero multiple of 2M"},
        {"nodes=2,mem=1M:1023M", GiB, 2, "non-zero multiple of 2M"},
        {"nodes=2,mem=1G:999999G", 0, 2, "too large"},
        {"nodes=2", 0, 2, "mem= is needed"},
        {"nodes=2", 3 * MiB, 2, "cannot be split"},
        {"nodes=4", 4 * MiB, 2, "cannot be split"},
        {"nodes=2,cpus=0:0", GiB, 2, "cpu 0 is in vnode 0 and vnode 1"},
        {"nodes=2,cpus=0-1:1", GiB, 2, "cpu 1 is in vnode 0 and vnode 1"},
        {"nodes=2,cpus=0:2", GiB, 3, "cpu 1 is in no vnode"},
        {"nodes=2,cpus=0:1-3", GiB, 2, "names cpu 3 but the VM has 2 vcpus"},
        {"nodes=2,cpus=1-0:2", GiB, 3, "backwards"},
        {"nodes=2,cpus=0:x", GiB, 2, "'x' is not a cpu or range"},
        {"nodes=2,cpus=0:1-", GiB, 2, "'1-' is not a cpu or range"},
        {"nodes=2,cpus=0:-1", GiB, 2, "'-1' is not a cpu or range"},
        {"nodes=2,cpus=0:1++2", GiB, 3, "not a cpu or range"},
        {"nodes=2,cpus=0:256", GiB, 0, "beyond the maximum 255"},
        {"nodes=2,cpus=:", GiB, 0, "places no vcpu"},
        {"nodes=2", GiB, 0, "cpus= is needed"},
        {"nodes=2", GiB, 257, "257 vcpus"},
        {"nodes=2,cpus=0:1:2", GiB, 3, "cpus= lists 3 vnodes but there are 2"},
        {"nodes=2,dist=10:20:20", GiB, 2, "dist= has 3 values, 2 vnodes need 4"},
        {"nodes=2,dist=10:20:20:11", GiB, 2, "distance 1->1 is 11"},
        {"nodes=2,dist=10:10:20:10", GiB, 2, "distance 0->1 is 10: must be 11..254"},
        {"nodes=2,dist=10:255:20:10", GiB, 2, "distance 0->1 is 255"},
        {"nodes=2,dist=10:256:20:10", GiB, 2, "'256' is not a distance"},
        {"nodes=2,dist=10:2x:20:10", GiB, 2, "'2x' is not a distance"},
        {"nodes=2,remote=5", GiB, 2, "distance 0->1 is 5"},
        {"nodes=2,remote=far", GiB, 2, "remote='far'"},
        {"nodes=2,remote=20,dist=10:20:20:10", GiB, 2, "either dist= or remote="},
        {"nodes=2,pnodes=0:x", GiB, 2, "'x' is not a host node"},
        {"nodes=2,pnodes=0:1024", GiB, 2, "'1024' is not a host node"},
        {"nodes=2,pnodes=0", GiB, 2, "pnodes= lists 1 vnodes"},
        {"mem=2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:2M:"
         "2M:2M:2M:2M:2M:2M",
         0, 1, "at most 32"},
        {"nodes=1,nodes=1,nodes=1,nodes=1,nodes=1,nodes=1,nodes=1,nodes=1,nodes=1,nodes=1,"
         "nodes=1,nodes=1,nodes=1",
         GiB, 1, "too many"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mv_vnuma v, before;
        memset(&v, 0x77, sizeof(v));
        before = v;
        char err[256] = "";
        int rc = mv_vnuma_parse(cases[i].spec, cases[i].mem, cases[i].vcpus, &v, err, sizeof(err));
        if (rc != -EINVAL)
            fail_msg("'%s' accepted (rc %d)", cases[i].spec, rc);
        if (strncmp(err, "vnuma: ", 7) || !strstr(err, cases[i].msg))
            fail_msg("'%s': error '%s' lacks '%s'", cases[i].spec, err, cases[i].msg);
        assert_memory_equal(&v, &before, sizeof(v)); /* unchanged on error */
    }
    /* an over-long spec */
    static char longspec[MV_VNUMA_SPEC_MAX + 16];
    memset(longspec, 'x', sizeof(longspec) - 1);
    struct mv_vnuma v;
    char err[256];
    assert_int_equal(mv_vnuma_parse(longspec, GiB, 1, &v, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer than"));
    /* NULL spec and a tiny error buffer are safe */
    assert_int_equal(mv_vnuma_parse(NULL, GiB, 1, &v, err, 4), -EINVAL);
    assert_int_equal(strlen(err), 3);
    assert_int_equal(mv_vnuma_parse("nodes=0", GiB, 1, &v, NULL, 0), -EINVAL);
}

static void test_default_layout(void **state)
{
    (void)state;
    struct mv_vnuma v;
    char err[256];
    /* MicroVisor's example: 2 vnodes, 32 vcpus, vcpus 0-15 and 16-31 */
    assert_int_equal(mv_vnuma_default(&v, 32 * GiB, 32, 2, NULL, 2, err, sizeof(err)), 0);
    assert_int_equal(v.node_mem[0], 16 * GiB);
    assert_int_equal(v.vcpu_node[15], 0);
    assert_int_equal(v.vcpu_node[16], 1);
    assert_int_equal(v.pnode[0], 0);
    assert_int_equal(v.pnode[1], 1);
    assert_int_equal(v.distance[0][1], 20);

    /* host distances; more vnodes than host nodes wrap around */
    const uint8_t dist[9] = {10, 21, 31, 21, 10, 21, 31, 21, 10};
    assert_int_equal(mv_vnuma_default(&v, 3 * GiB, 2, 3, dist, 2, err, sizeof(err)), 0);
    assert_int_equal(v.distance[0][2], 31);
    assert_int_equal(v.pnode[2], 0);
    assert_int_equal(v.vcpu_node[1], 1); /* 2 vcpus over 3 vnodes: 0 and 1 */

    /* errors */
    assert_int_equal(mv_vnuma_default(&v, GiB, 2, 0, NULL, 0, err, sizeof(err)), -EINVAL);
    assert_int_equal(mv_vnuma_default(&v, GiB, 0, 1, NULL, 0, err, sizeof(err)), -EINVAL);
    assert_int_equal(mv_vnuma_default(&v, GiB + 4096, 1, 1, NULL, 0, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "multiple of 2M"));
    const uint8_t bad[4] = {10, 20, 20, 9};
    assert_int_equal(mv_vnuma_default(&v, GiB, 2, 2, bad, 0, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "distance 1->1"));
}

static void test_layout_hole(void **state)
{
    (void)state;
    struct mv_vnuma v;
    char err[256];
    struct mv_vnuma_range r[8];

    /* below the hole: one range per vnode */
    assert_int_equal(mv_vnuma_default(&v, GiB, 1, 2, NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(mv_vnuma_layout(&v, MV_ACPI_MEM_HOLE_START, MV_ACPI_MEM_HOLE_END, r, 8), 2);
    assert_int_equal(r[1].gpa, 512 * MiB);
    assert_int_equal(r[1].size, 512 * MiB);

    /* one vnode of 4 GiB: split at 3 GiB */
    assert_int_equal(mv_vnuma_default(&v, 4 * GiB, 1, 1, NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(mv_vnuma_layout(&v, MV_ACPI_MEM_HOLE_START, MV_ACPI_MEM_HOLE_END, r, 8), 2);
    assert_int_equal(r[0].size, 3 * GiB);
    assert_int_equal(r[1].gpa, 4 * GiB);
    assert_int_equal(r[1].size, GiB);
    assert_int_equal(r[1].node, 0);

    /* exactly 3 GiB: nothing above */
    assert_int_equal(mv_vnuma_default(&v, 3 * GiB, 1, 3, NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(mv_vnuma_layout(&v, MV_ACPI_MEM_HOLE_START, MV_ACPI_MEM_HOLE_END, r, 8), 3);
    assert_int_equal(r[2].gpa + r[2].size, 3 * GiB);

    /* too few slots; bad hole */
    assert_int_equal(mv_vnuma_layout(&v, MV_ACPI_MEM_HOLE_START, MV_ACPI_MEM_HOLE_END, r, 2),
                     -ENOSPC);
    assert_int_equal(mv_vnuma_layout(&v, 2, 1, r, 8), -EINVAL);

    /* no hole at all (hole_start == hole_end) */
    assert_int_equal(mv_vnuma_default(&v, 8 * GiB, 1, 2, NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(mv_vnuma_layout(&v, 0, 0, r, 8), 2);
    assert_int_equal(r[1].gpa, 4 * GiB);
}

static void test_validate_and_format(void **state)
{
    (void)state;
    struct mv_vnuma v = parse_ok("nodes=2,cpus=0-1+3:2,pnodes=1:any", 64 * MiB, 4);
    char line[512];
    int n = mv_vnuma_format(&v, line, sizeof(line));
    assert_int_equal((size_t)n, strlen(line));
    assert_string_equal(line, "2 vnodes, 4 vcpus: 0: pnode 1, vcpus 0-1,3, 32M, dist 10 20; "
                              "1: pnode any, vcpus 2, 32M, dist 20 10");
    /* truncation is safe and reports the full length */
    char small[10];
    assert_int_equal(mv_vnuma_format(&v, small, sizeof(small)), n);
    assert_int_equal(strlen(small), 9);

    char err[256];
    struct mv_vnuma bad = v;
    bad.vcpu_node[3] = 2;
    assert_int_equal(mv_vnuma_validate(&bad, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "vcpu 3 is on vnode 2"));
    bad = v;
    bad.node_mem[1] = 0;
    assert_int_equal(mv_vnuma_validate(&bad, err, sizeof(err)), -EINVAL);
    bad = v;
    bad.pnode[0] = -2;
    assert_int_equal(mv_vnuma_validate(&bad, err, sizeof(err)), -EINVAL);
    bad = v;
    bad.nr_vcpus = 0;
    assert_int_equal(mv_vnuma_validate(&bad, err, sizeof(err)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_spec),
        cmocka_unit_test(test_parse_defaults_and_shorthands),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_default_layout),
        cmocka_unit_test(test_layout_hole),
        cmocka_unit_test(test_validate_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
