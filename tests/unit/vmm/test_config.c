/* mvvmm configuration: flags, JSON, --pin and --serial syntax, validation messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mv/vmm_config.h"

static int parse(struct mv_vmm_config *c, char *err, size_t errlen, ...)
{
    char *argv[32] = {"mvvmm"};
    int argc = 1;
    va_list ap;
    va_start(ap, errlen);
    for (char *a; (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    mv_vmm_config_init(c);
    return mv_vmm_config_parse_args(c, argc, argv, err, errlen);
}

static void test_args_good(void **state)
{
    (void)state;
    struct mv_vmm_config c;
    char err[256] = "";
    assert_int_equal(parse(&c, err, sizeof(err), "--payload", "g.elf", "--mem", "2G", "--vcpus",
                           "4", "--disk", "a.img", "--disk", "b.img,ro", "--net", "tap=t0", "--pin",
                           "float:0-3", "--serial", "file:/tmp/x", "--no-pit", "--cmdline", "a=b c",
                           "--stop-timeout", "250", NULL),
                     0);
    assert_string_equal(c.payload, "g.elf");
    assert_int_equal(c.mem_size, 2ull << 30);
    assert_true(c.mem_set);
    assert_int_equal(c.nr_vcpus, 4);
    assert_int_equal(c.nr_disks, 2);
    assert_string_equal(c.disks[1], "b.img,ro");
    assert_int_equal(c.nr_nets, 1);
    assert_true(c.pin_set && c.pin.floating);
    assert_int_equal(c.pin.nr_cpus, 4);
    assert_int_equal(c.serial, MV_SERIAL_FILE);
    assert_string_equal(c.serial_path, "/tmp/x");
    assert_true(c.no_pit);
    assert_string_equal(c.cmdline, "a=b c");
    assert_int_equal(c.stop_timeout_ms, 250);
    assert_int_equal(mv_vmm_config_validate(&c, err, sizeof(err)), 0);
    mv_vmm_config_free(&c);
}

static void expect_bad(const char *why, ...)
{
    char *argv[16] = {"mvvmm"};
    int argc = 1;
    va_list ap;
    va_start(ap, why);
    for (char *a; (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    struct mv_vmm_config c;
    char err[256] = "";
    mv_vmm_config_init(&c);
    int rc = mv_vmm_config_parse_args(&c, argc, argv, err, sizeof(err));
    if (rc == 0)
        rc = mv_vmm_config_validate(&c, err, sizeof(err));
    assert_int_equal(rc, -1);
    if (!strstr(err, why))
        fail_msg("error '%s' lacks '%s'", err, why);
    mv_vmm_config_free(&c);
}

static void test_args_bad(void **state)
{
    (void)state;
    expect_bad("nothing to run", "--mem", "64M", NULL);
    expect_bad("mem:", "--payload", "x", "--mem", "12Q", NULL);
    expect_bad("mem:", "--payload", "x", "--mem", "1M", NULL);
    expect_bad("multiple of 4 KiB", "--payload", "x", "--mem", "4194305", NULL);
    expect_bad("vcpus:", "--payload", "x", "--vcpus", "0", NULL);
    expect_bad("vcpus:", "--payload", "x", "--vcpus", "65", NULL);
    expect_bad("vcpus:", "--payload", "x", "--vcpus", "2x", NULL);
    expect_bad("exclude", "--payload", "x", "--kernel", "y", NULL);
    expect_bad("--initrd needs --kernel", "--payload", "x", "--initrd", "y", NULL);
    expect_bad("unknown or incomplete option", "--payload", "x", "--bogus", NULL);
    expect_bad("unexpected argument", "--payload", "x", "extra", NULL);
    expect_bad("tap=", "--payload", "x", "--net", "br0", NULL);
    expect_bad("stop-timeout", "--payload", "x", "--stop-timeout", "-1", NULL);
    expect_bad("log-level", "--payload", "x", "--log-level", "loud", NULL);
}

static void test_disk_limit(void **state)
{
    (void)state;
    struct mv_vmm_config c;
    char err[256];
    mv_vmm_config_init(&c);
    char *argv[2 + 2 * (MV_VMM_MAX_DISKS + 1)];
    int argc = 0;
    argv[argc++] = "mvvmm";
    for (int i = 0; i <= MV_VMM_MAX_DISKS; i++) {
        argv[argc++] = "--disk";
        argv[argc++] = "d.img";
    }
    assert_int_equal(mv_vmm_config_parse_args(&c, argc, argv, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at most"));
    mv_vmm_config_free(&c);
}

static void test_pin(void **state)
{
    (void)state;
    struct mv_pin_spec p;
    char err[128];
    assert_int_equal(mv_pin_parse("2,3", &p, err, sizeof(err)), 0);
    assert_false(p.floating);
    assert_int_equal(p.nr_cpus, 2);
    assert_int_equal(p.cpus[1], 3);
    assert_int_equal(mv_pin_parse("float:0-2,7", &p, err, sizeof(err)), 0);
    assert_true(p.floating);
    assert_int_equal(p.nr_cpus, 4);
    assert_int_equal(p.cpus[3], 7);
    const char *bad[] = {"", "float:", "a", "3-1", "1,,2x", "5000", "-1", "0-", "1-99999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p.nr_cpus = 77;
        assert_int_equal(mv_pin_parse(bad[i], &p, err, sizeof(err)), -1);
        assert_int_equal(p.nr_cpus, 77); /* unchanged on error */
    }
}

static void test_serial(void **state)
{
    (void)state;
    enum mv_serial_mode m;
    char *path = NULL;
    char err[128];
    assert_int_equal(mv_serial_parse("pty", &m, &path, err, sizeof(err)), 0);
    assert_int_equal(m, MV_SERIAL_PTY);
    assert_int_equal(mv_serial_parse("socket:/tmp/s", &m, &path, err, sizeof(err)), 0);
    assert_int_equal(m, MV_SERIAL_SOCKET);
    assert_string_equal(path, "/tmp/s");
    assert_int_equal(mv_serial_parse("file:", &m, &path, err, sizeof(err)), -1);
    assert_int_equal(mv_serial_parse("com2", &m, &path, err, sizeof(err)), -1);
    free(path);
}

static void test_json(void **state)
{
    (void)state;
    struct mv_vmm_config c;
    char err[256];
    mv_vmm_config_init(&c);
    assert_int_equal(mv_vmm_config_load_json_string(
                         &c,
                         "{\"kernel\":\"vmlinux\",\"mem\":268435456,\"vcpus\":2,"
                         "\"disk\":[\"a.img\",\"b.img\"],\"net\":[\"tap=x\"],\"no-pit\":true,"
                         "\"cmdline\":\"console=ttyS0\"}",
                         err, sizeof(err)),
                     0);
    assert_string_equal(c.kernel, "vmlinux");
    assert_int_equal(c.mem_size, 256u << 20);
    assert_int_equal(c.nr_vcpus, 2);
    assert_int_equal(c.nr_disks, 2);
    assert_int_equal(c.nr_nets, 1);
    assert_true(c.no_pit);
    mv_vmm_config_free(&c);

    const char *bad[][2] = {
        {"[1]", "JSON object"},
        {"{\"mem\": }", "config:1:"},
        {"{\"vcpus\": \"lots\"}", "vcpus"},
        {"{\"kernel\": [\"a\"]}", "only allowed for disk and net"},
        {"{\"disk\": [1]}", "disk[0]"},
        {"{\"warp\": 9}", "unknown option 'warp'"},
        {"{\"kernel\": {}}", "unsupported JSON type"},
        {"{\"mem\": 1, \"mem\": 2}", "config:1:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mv_vmm_config_init(&c);
        err[0] = '\0';
        assert_int_equal(mv_vmm_config_load_json_string(&c, bad[i][0], err, sizeof(err)), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': error '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        mv_vmm_config_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_good),  cmocka_unit_test(test_args_bad),
        cmocka_unit_test(test_disk_limit), cmocka_unit_test(test_pin),
        cmocka_unit_test(test_serial),     cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
