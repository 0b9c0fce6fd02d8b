#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/config.h"
#include "mv/log.h"
#include "mv/util.h"

static void test_parse_u64(void **state)
{
    uint64_t v;
    assert_int_equal(mv_parse_u64("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(mv_parse_u64("0x10", &v), 0);
    assert_int_equal(v, 16);
    assert_int_not_equal(mv_parse_u64("", &v), 0);
    assert_int_not_equal(mv_parse_u64("-1", &v), 0);
    assert_int_not_equal(mv_parse_u64("12abc", &v), 0);
    assert_int_not_equal(mv_parse_u64("99999999999999999999999", &v), 0);
    uint32_t w;
    assert_int_not_equal(mv_parse_u32("4294967296", &w), 0);
    assert_int_equal(mv_parse_u32("4294967295", &w), 0);
}

static void test_parse_size(void **state)
{
    uint64_t v;
    assert_int_equal(mv_parse_size("64M", &v), 0);
    assert_int_equal(v, 64ull << 20);
    assert_int_equal(mv_parse_size("2GiB", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(mv_parse_size("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_not_equal(mv_parse_size("5X", &v), 0);
    assert_int_not_equal(mv_parse_size("M", &v), 0);
    assert_int_not_equal(mv_parse_size("99999999999T", &v), 0);
}

static void test_parse_bool_int(void **state)
{
    bool b;
    assert_int_equal(mv_parse_bool("yes", &b), 0);
    assert_true(b);
    assert_int_equal(mv_parse_bool("Off", &b), 0);
    assert_false(b);
    assert_int_not_equal(mv_parse_bool("maybe", &b), 0);
    int i;
    assert_int_equal(mv_parse_int("-5", &i), 0);
    assert_int_equal(i, -5);
    assert_int_not_equal(mv_parse_int("5 ", &i), 0);
}

static void test_mac(void **state)
{
    uint8_t mac[6];
    char s[MV_MAC_STR_LEN];
    assert_int_equal(mv_mac_parse("02:00:00:aa:BB:0f", mac), 0);
    mv_mac_format(mac, s);
    assert_string_equal(s, "02:00:00:aa:bb:0f");
    assert_int_not_equal(mv_mac_parse("02:00:00:aa:bb", mac), 0);
    assert_int_not_equal(mv_mac_parse("02-00-00-aa-bb-0f", mac), 0);
    assert_int_not_equal(mv_mac_parse("02:00:00:aa:bb:0g", mac), 0);
    assert_int_not_equal(mv_mac_parse(" 2:00:00:aa:bb:0f", mac), 0);
    memset(mac, 0xff, 6);
    assert_true(mv_mac_is_broadcast(mac));
}

struct cfg {
    int port;
    char name[32];
};

static int cfg_handler(void *user, const char *section, const char *key, const char *value,
                       char *err, size_t errlen)
{
    struct cfg *c = user;
    if (strcmp(key, "port") == 0)
        return mv_parse_int(value, &c->port) ? (snprintf(err, errlen, "port: not a number"), -1)
                                             : 0;
    if (strcmp(key, "name") == 0) {
        snprintf(c->name, sizeof c->name, "%s", value);
        return 0;
    }
    snprintf(err, errlen, "unknown key '%s'", key);
    return -1;
}

static void write_tmp(char *path, const char *text)
{
    strcpy(path, "/tmp/mvcfgXXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_config(void **state)
{
    char path[64], err[256];
    struct cfg c = {0};
    write_tmp(path, "[main]\nname = host1\nport = 8080\n");
    assert_int_equal(mv_config_load(path, cfg_handler, &c, err, sizeof err), 0);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.name, "host1");
    unlink(path);

    write_tmp(path, "[main]\nname = x\nbogus = 1\n");
    assert_int_equal(mv_config_load(path, cfg_handler, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, ":3: unknown key 'bogus'"));
    unlink(path);

    write_tmp(path, "[main]\nport = eighty\n");
    assert_int_equal(mv_config_load(path, cfg_handler, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2: port: not a number"));
    unlink(path);

    assert_int_equal(mv_config_load("/nonexistent/x.conf", cfg_handler, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_log_levels(void **state)
{
    assert_int_equal(mv_log_level_from_name("debug"), LOG_DEBUG);
    assert_int_equal(mv_log_level_from_name("err"), LOG_ERR);
    assert_int_equal(mv_log_level_from_name("loud"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_u64),      cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_bool_int), cmocka_unit_test(test_mac),
        cmocka_unit_test(test_config),         cmocka_unit_test(test_log_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
