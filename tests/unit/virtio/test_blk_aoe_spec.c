/* The "aoe:" disk spec parser (mv/virtio_blk_aoe.h): accepted forms with their defaults, and
 * every malformed spec refused with a message naming the problem and *out left untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mv/virtio_blk_aoe.h"

static void test_is_aoe(void **state)
{
    (void)state;
    assert_true(mv_blk_aoe_spec_is_aoe("aoe:1.2,if=eth0"));
    assert_false(mv_blk_aoe_spec_is_aoe("/tmp/aoe:1.2"));
    assert_false(mv_blk_aoe_spec_is_aoe("AOE:1.2"));
    assert_false(mv_blk_aoe_spec_is_aoe(NULL));
}

static void test_remote_defaults(void **state)
{
    (void)state;
    struct mv_blk_aoe_spec s;
    char err[256] = "";
    assert_int_equal(mv_blk_aoe_spec_parse("aoe:12.3,if=eth0", &s, err, sizeof(err)), 0);
    assert_int_equal(s.shelf, 12);
    assert_int_equal(s.slot, 3);
    assert_string_equal(s.ifname, "eth0");
    assert_string_equal(s.unix_path, "");
    assert_false(s.has_target);
    assert_false(s.read_only);
    assert_string_equal(s.serial, "");
    assert_int_equal(s.timeout_ms, MV_BLK_AOE_TIMEOUT_DEF);
    assert_int_equal(s.dead_ms, MV_BLK_AOE_DEAD_DEF);
    assert_int_equal(s.queue_depth, MV_BLK_AOE_DEPTH_DEF);
}

static void test_all_options(void **state)
{
    (void)state;
    struct mv_blk_aoe_spec s;
    char err[256] = "";
    assert_int_equal(mv_blk_aoe_spec_parse("aoe:65534.254,if=mvbr7.100,target=02:6D:76:00:00:01,"
                                           "ro,serial=vol-1,timeout=250,dead=60000,depth=8",
                                           &s, err, sizeof(err)),
                     0);
    assert_int_equal(s.shelf, 65534);
    assert_int_equal(s.slot, 254);
    assert_string_equal(s.ifname, "mvbr7.100");
    assert_true(s.has_target);
    static const uint8_t mac[6] = {0x02, 0x6d, 0x76, 0, 0, 1};
    assert_memory_equal(s.target_mac, mac, 6);
    assert_true(s.read_only);
    assert_string_equal(s.serial, "vol-1");
    assert_int_equal(s.timeout_ms, 250);
    assert_int_equal(s.dead_ms, 60000);
    assert_int_equal(s.queue_depth, 8);

    assert_int_equal(
        mv_blk_aoe_spec_parse("aoe:0.0,unix=/run/mvstored/aoe.sock,ro", &s, err, sizeof(err)), 0);
    assert_int_equal(s.shelf, 0);
    assert_int_equal(s.slot, 0);
    assert_int_equal(
        mv_blk_aoe_spec_parse("aoe:010.011,unix=/run/mvstored/aoe.sock,ro", &s, err, sizeof(err)),
        0);
    assert_int_equal(s.shelf, 10); /* decimal, as AoE names targets (e10.11) */
    assert_int_equal(s.slot, 11);
    assert_string_equal(s.unix_path, "/run/mvstored/aoe.sock");
    assert_string_equal(s.ifname, "");
    assert_true(s.read_only);
}

/* Each bad spec: -EINVAL, a message containing `why`, and the output untouched. */
static void expect_bad(const char *spec, const char *why)
{
    struct mv_blk_aoe_spec s;
    memset(&s, 0xa5, sizeof(s));
    struct mv_blk_aoe_spec before = s;
    char err[256] = "";
    int rc = mv_blk_aoe_spec_parse(spec, &s, err, sizeof(err));
    if (rc != -EINVAL || strstr(err, why) == NULL)
        fail_msg("spec '%s': rc %d, error '%s' (want -EINVAL mentioning '%s')", spec, rc, err, why);
    assert_memory_equal(&s, &before, sizeof(s));
}

static void test_bad_specs(void **state)
{
    (void)state;
    expect_bad("/var/disk.img", "not an AoE disk spec");
    expect_bad("aoe:", "SHELF.SLOT");
    expect_bad("aoe:,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:1,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:1.,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:.1,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:1.2.3,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:-1.2,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:x.2,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:0x1.2,if=eth0", "SHELF.SLOT");
    expect_bad("aoe: 1.2,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:65535.1,if=eth0", "shelf 0..65534"); /* broadcast shelf */
    expect_bad("aoe:1.255,if=eth0", "slot 0..254");      /* broadcast slot */
    expect_bad("aoe:99999999999999999999.1,if=eth0", "SHELF.SLOT");
    expect_bad("aoe:1.2", "exactly one of if=");
    expect_bad("aoe:1.2,ro", "exactly one of if=");
    expect_bad("aoe:1.2,if=eth0,unix=/tmp/s", "exactly one of if=");
    expect_bad("aoe:1.2,if=eth0,if=eth1", "given twice");
    expect_bad("aoe:1.2,if=eth0,ro,ro", "given twice");
    expect_bad("aoe:1.2,if=eth0,dead=100,dead=200", "given twice");
    expect_bad("aoe:1.2,if=", "needs a value");
    expect_bad("aoe:1.2,if", "needs a value");
    expect_bad("aoe:1.2,if=eth0,", "empty option");
    expect_bad("aoe:1.2,,if=eth0", "empty option");
    expect_bad("aoe:1.2,if=an-interface-name-too-long", "not an interface name");
    expect_bad("aoe:1.2,if=../eth0", "not an interface name");
    expect_bad("aoe:1.2,if=eth0,ro=1", "ro takes no value");
    expect_bad("aoe:1.2,if=eth0,target=02:00:00:00:00", "not a unicast MAC");
    expect_bad("aoe:1.2,if=eth0,target=ff:ff:ff:ff:ff:ff", "not a unicast MAC");
    expect_bad("aoe:1.2,if=eth0,target=03:00:00:00:00:01", "not a unicast MAC");
    expect_bad("aoe:1.2,if=eth0,serial=abcdefghijklmnopqrstu", "longer than 20");
    expect_bad("aoe:1.2,if=eth0,timeout=0", "timeout=0");
    expect_bad("aoe:1.2,if=eth0,timeout=5s", "timeout=5s");
    expect_bad("aoe:1.2,if=eth0,dead=1", "dead=1");
    expect_bad("aoe:1.2,if=eth0,depth=0", "depth=0");
    expect_bad("aoe:1.2,if=eth0,depth=100000", "depth=100000");
    expect_bad("aoe:1.2,if=eth0,direct=0", "unknown option 'direct'");
    expect_bad("aoe:1.2,if=eth0,bogus=1", "unknown option 'bogus'");
    char long_path[300] = "aoe:1.2,unix=/";
    memset(long_path + strlen(long_path), 'p', 200);
    expect_bad(long_path, "option '");
    char long_path2[200] = "aoe:1.2,unix=/";
    memset(long_path2 + strlen(long_path2), 'p', 120);
    expect_bad(long_path2, "socket path longer");
}

/* Random mutations of valid specs (deterministic seed): every result is either a refusal that
 * leaves *out alone, or a spec whose fields obey the documented ranges. Run under ASan this
 * also catches any read outside the string. */
static void test_mutations(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "aoe:1.2,if=eth0,target=02:6d:76:00:00:01,ro,serial=s,timeout=9,dead=99,depth=7",
        "aoe:65534.254,unix=/run/mvstored/aoe.sock,ro",
        "aoe:0.0,if=e",
    };
    static const char alphabet[] = "aoe:.,=0123456789ifunixtargetroserialdeadepth/:-xf ";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (unsigned iter = 0; iter < 20000; iter++) {
        char spec[256];
        snprintf(spec, sizeof(spec), "%s", seeds[iter % 3]);
        unsigned edits = 1 + iter % 4;
        for (unsigned e = 0; e < edits; e++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t len = strlen(spec);
            size_t pos = (size_t)(x >> 8) % (len + 1);
            char c = alphabet[(x >> 40) % (sizeof(alphabet) - 1)];
            switch (x % 3) {
            case 0: /* replace */
                if (pos < len)
                    spec[pos] = c;
                break;
            case 1: /* delete */
                if (pos < len)
                    memmove(spec + pos, spec + pos + 1, len - pos);
                break;
            default: /* insert */
                if (len + 1 < sizeof(spec)) {
                    memmove(spec + pos + 1, spec + pos, len - pos + 1);
                    spec[pos] = c;
                }
            }
        }
        struct mv_blk_aoe_spec s;
        memset(&s, 0x5a, sizeof(s));
        struct mv_blk_aoe_spec before = s;
        char err[128];
        int rc = mv_blk_aoe_spec_parse(spec, &s, err, sizeof(err));
        if (rc != 0) {
            assert_int_equal(rc, -EINVAL);
            assert_memory_equal(&s, &before, sizeof(s));
            continue;
        }
        assert_true(s.shelf < 0xffff && s.slot < 0xff);
        assert_true((s.ifname[0] != 0) != (s.unix_path[0] != 0));
        assert_true(strlen(s.ifname) < sizeof(s.ifname) && strlen(s.serial) <= 20);
        assert_true(s.timeout_ms >= 1 && s.dead_ms >= 10 && s.queue_depth >= 1 &&
                    s.queue_depth <= MV_BLK_AOE_DEPTH_MAX);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_aoe),      cmocka_unit_test(test_remote_defaults),
        cmocka_unit_test(test_all_options), cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
