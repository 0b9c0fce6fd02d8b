/* Control-request validation (every bad request gets a clear error and changes nothing) and the
 * agent's dispatcher driven directly, without a network port. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/agent.h"
#include "mv/agent_proto.h"

static int parse(uint16_t op, const char *json, char *err, size_t errlen)
{
    json_t *out = (json_t *)1;
    int rc = mv_agent_request_parse(op, json, json ? strlen(json) : 0, &out, err, errlen);
    if (rc == 0) {
        assert_non_null(out);
        json_decref(out);
    } else {
        assert_null(out);
        assert_true(err[0] != 0);
    }
    return rc;
}

static void test_valid_requests(void **state)
{
    char err[256];
    assert_int_equal(parse(MV_AGENT_OP_PING, NULL, err, sizeof err), 0);
    assert_int_equal(parse(MV_AGENT_OP_PING, "{\"echo\":\"hi\"}", err, sizeof err), 0);
    assert_int_equal(parse(MV_AGENT_OP_PERFC_DUMP, "{}", err, sizeof err), 0);
    assert_int_equal(parse(MV_AGENT_OP_PERFC_GET, "{\"name\":\"#IPIs\"}", err, sizeof err), 0);
    assert_int_equal(parse(MV_AGENT_OP_PERFC_RESET, "", err, sizeof err), 0);
    assert_int_equal(parse(MV_AGENT_OP_DRIVE_FORMAT,
                           "{\"drive\":\"/dev/sdb\",\"datastore\":\"ds-1\",\"force\":true,"
                           "\"overcommit_pct\":150}",
                           err, sizeof err),
                     0);
    assert_int_equal(parse(MV_AGENT_OP_REPLICA_CREATE,
                           "{\"vdisk\":\"vd:1\",\"size\":1048576,\"map\":true,\"shelf\":3,"
                           "\"slot\":1}",
                           err, sizeof err),
                     0);
    assert_int_equal(parse(MV_AGENT_OP_REPLICA_UNMAP, "{\"vdisk\":\"a.b_c-d\"}", err, sizeof err),
                     0);

    /* Only validated keys come back. */
    json_t *out;
    assert_int_equal(mv_agent_request_parse(MV_AGENT_OP_REPLICA_MAP, "{\"vdisk\":\"x\"}", 13, &out,
                                            err, sizeof err),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "vdisk")), "x");
    json_decref(out);
}

static void test_invalid_requests(void **state)
{
    static const struct {
        uint16_t op;
        const char *json;
        int rc;
        const char *why; /* a substring of the error */
    } cases[] = {
        {0x7777, "{}", -ENOSYS, "unknown operation 0x7777"},
        {MV_AGENT_OP_PING, "[1]", -EINVAL, "JSON object"},
        {MV_AGENT_OP_PING, "{\"echo\":", -EINVAL, "bad JSON"},
        {MV_AGENT_OP_PING, "{} trailing", -EINVAL, "bad JSON"},
        {MV_AGENT_OP_PING, "{\"bogus\":1}", -EINVAL, "unknown key \"bogus\""},
        {MV_AGENT_OP_PING, "{\"echo\":1}", -EINVAL, "must be a string"},
        {MV_AGENT_OP_PING, "{\"echo\":\"a\\u0007b\"}", -EINVAL, "invalid character"},
        {MV_AGENT_OP_PERFC_GET, "{}", -EINVAL, "missing \"name\""},
        {MV_AGENT_OP_PERFC_GET, "{\"name\":\"\"}", -EINVAL, "1 to 47 characters"},
        {MV_AGENT_OP_DRIVE_FORMAT, "{\"drive\":\"sdb\"}", -EINVAL, "absolute path"},
        {MV_AGENT_OP_DRIVE_FORMAT, "{\"drive\":\"/a/../etc\"}", -EINVAL, "\"..\""},
        {MV_AGENT_OP_DRIVE_FORMAT, "{\"drive\":\"/dev/sdb\",\"force\":1}", -EINVAL,
         "true or false"},
        {MV_AGENT_OP_DRIVE_FORMAT, "{\"drive\":\"/dev/sdb\",\"overcommit_pct\":10001}", -EINVAL,
         "from 0 to 10000"},
        {MV_AGENT_OP_DRIVE_FORMAT, "{\"drive\":\"/d\",\"drive\":\"/e\"}", -EINVAL, "bad JSON"},
        {MV_AGENT_OP_REPLICA_CREATE, "{\"vdisk\":\"v1\"}", -EINVAL, "missing \"size\""},
        {MV_AGENT_OP_REPLICA_CREATE, "{\"vdisk\":\"v 1\",\"size\":1}", -EINVAL,
         "invalid character"},
        {MV_AGENT_OP_REPLICA_CREATE, "{\"vdisk\":\"v1\",\"size\":0}", -EINVAL, "from 1"},
        {MV_AGENT_OP_REPLICA_CREATE, "{\"vdisk\":\"v1\",\"size\":1.5}", -EINVAL, "integer"},
        {MV_AGENT_OP_REPLICA_MAP, "{\"vdisk\":\"v1\",\"shelf\":65535}", -EINVAL, "0 to 65534"},
        {MV_AGENT_OP_REPLICA_DELETE,
         "{\"vdisk\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaa\"}",
         -EINVAL, "1 to 63"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        int rc = parse(cases[i].op, cases[i].json, err, sizeof err);
        if (rc != cases[i].rc || !strstr(err, cases[i].why))
            fail_msg("case %zu: rc %d err '%s', want %d '%s'", i, rc, err, cases[i].rc,
                     cases[i].why);
    }
    /* Oversized requests are refused before parsing. */
    char err[256];
    size_t big = MV_AGENT_MAX_REQUEST + 1;
    char *buf = malloc(big);
    memset(buf, ' ', big);
    json_t *out;
    assert_int_equal(mv_agent_request_parse(MV_AGENT_OP_PING, buf, big, &out, err, sizeof err),
                     -EMSGSIZE);
    free(buf);
    /* Embedded NUL bytes are not JSON. */
    assert_int_equal(mv_agent_request_parse(MV_AGENT_OP_PING, "{}\0{}", 5, &out, err, sizeof err),
                     -EINVAL);
}

static void test_reply_codec(void **state)
{
    size_t len;
    char *ok = mv_agent_reply_ok(json_pack("{s:i}", "x", 1), &len);
    json_t *out;
    char err[128];
    assert_int_equal(mv_agent_reply_parse(0, ok, len, &out, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "x")), 1);
    json_decref(out);
    free(ok);
    char *bad = mv_agent_reply_error("no such thing", &len);
    assert_int_equal(mv_agent_reply_parse(-ENOENT, bad, len, &out, err, sizeof err), -ENOENT);
    assert_string_equal(err, "no such thing");
    assert_null(out);
    free(bad);
    assert_int_equal(mv_agent_reply_parse(0, "[]", 2, &out, err, sizeof err), -EPROTO);
    assert_int_equal(mv_agent_reply_parse(0, "{\"ok\":false}", 12, &out, err, sizeof err), -EPROTO);
    assert_int_equal(mv_agent_reply_parse(-EIO, NULL, 0, &out, err, sizeof err), -EIO);
    const uint8_t mac[6] = {0x02, 0x00, 0x54, 0x42, 0x44, 0x88};
    assert_int_equal(mv_agent_node_id_from_mac(mac), 0x54424488u);
    assert_string_equal(mv_agent_op_name(MV_AGENT_OP_PERFC_RESET), "perfc_reset");
    assert_int_equal(mv_agent_op_by_name("perfc_dump")->op, MV_AGENT_OP_PERFC_DUMP);
}

static void test_config(void **state)
{
    struct mv_agent_config c;
    char err[256];
    mv_agent_config_defaults(&c);
    assert_int_equal(c.stats_interval_ms, 10000);
    assert_int_equal(mv_agent_config_set(&c, "stats_interval", "2", err, sizeof err), 0);
    assert_int_equal(c.stats_interval_ms, 2000);
    assert_int_equal(mv_agent_config_set(&c, "stats_interval", "250ms", err, sizeof err), 0);
    assert_int_equal(c.stats_interval_ms, 250);
    assert_int_equal(mv_agent_config_set(&c, "stats_interval", "0", err, sizeof err), -1);
    assert_int_equal(mv_agent_config_set(&c, "stats_interval", "x", err, sizeof err), -1);
    assert_int_equal(c.stats_interval_ms, 250); /* unchanged by the failures */
    assert_int_equal(mv_agent_config_set(&c, "roles", "hypervisor,storage", err, sizeof err), 0);
    assert_int_equal(mv_agent_config_set(&c, "roles", "janitor", err, sizeof err), -1);
    assert_int_equal(mv_agent_config_set(&c, "stats_collector", "zz", err, sizeof err), -1);
    assert_int_equal(mv_agent_config_set(&c, "nope", "1", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown key 'nope'"));

    char path[] = "/tmp/hag-agent-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "[agent]\ninterface = eth9\nrack = r7\nstats_interval = banana\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    mv_agent_config_defaults(&c);
    assert_int_equal(mv_agent_config_load(&c, path, err, sizeof err), -1);
    assert_non_null(strstr(err, ":4:"));
    unlink(path);
}

static struct mv_agent *agent_without_port(char *state_dir)
{
    struct mv_agent_config c;
    mv_agent_config_defaults(&c);
    c.ifname[0] = 0; /* no port: requests are driven directly (inventory names "lo") */
    assert_non_null(mkdtemp(state_dir));
    snprintf(c.state_dir, sizeof c.state_dir, "%s", state_dir);
    snprintf(c.vmm_run_dir, sizeof c.vmm_run_dir, "%s/vm", state_dir);
    struct mv_agent *a;
    char err[256];
    assert_int_equal(mv_agent_create(&c, &a, err, sizeof err), 0);
    return a;
}

static json_t *call(struct mv_agent *a, uint16_t op, const char *req, int want_rc)
{
    char *reply;
    size_t len;
    int rc = mv_agent_handle_request(a, op, req, req ? strlen(req) : 0, &reply, &len);
    if (rc != want_rc)
        fail_msg("op 0x%04x %s: rc %d (%s), want %d", op, req ? req : "", rc, reply, want_rc);
    json_error_t je;
    json_t *j = json_loadb(reply, len, 0, &je);
    free(reply);
    assert_non_null(j);
    assert_int_equal(json_is_true(json_object_get(j, "ok")), rc == 0);
    if (rc != 0)
        assert_non_null(json_string_value(json_object_get(j, "error")));
    return j;
}

static uint64_t counter_total(json_t *dump, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(dump, "counters"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return (uint64_t)json_integer_value(json_object_get(c, "total"));
    }
    fail_msg("no counter %s", name);
    return 0;
}

static void test_dispatch(void **state)
{
    char dir[] = "/tmp/hag-agent-XXXXXX";
    struct mv_agent *a = agent_without_port(dir);
    json_t *j = call(a, MV_AGENT_OP_PING, "{\"echo\":\"x\"}", 0);
    assert_string_equal(json_string_value(json_object_get(j, "echo")), "x");
    json_decref(j);
    j = call(a, MV_AGENT_OP_INVENTORY, NULL, 0);
    assert_true(json_array_size(json_object_get(j, "cpus")) > 0);
    assert_true(json_is_array(json_object_get(j, "drives")));
    json_decref(j);

    /* Storage requests without an mvstored: a clear error. */
    j = call(a, MV_AGENT_OP_DRIVE_LIST, NULL, -ENOTSUP);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "mvstored"));
    json_decref(j);
    json_decref(call(a, 0x0999, "{}", -ENOSYS));

    /* perfc: dump, get, reset (baseline: values restart near 0, then grow again). */
    j = call(a, MV_AGENT_OP_PERFC_DUMP, NULL, 0);
    uint64_t before = counter_total(j, "#interrupts");
    assert_true(before > 0);
    json_decref(j);
    json_decref(call(a, MV_AGENT_OP_PERFC_GET, "{\"name\":\"no such\"}", -ENOENT));
    /* A failed reset (bad name, bad request) resets nothing. */
    json_decref(call(a, MV_AGENT_OP_PERFC_RESET, "{\"name\":\"no such\"}", -ENOENT));
    json_decref(call(a, MV_AGENT_OP_PERFC_RESET, "{\"name\":7}", -EINVAL));
    j = call(a, MV_AGENT_OP_PERFC_GET, "{\"name\":\"#interrupts\"}", 0);
    assert_int_equal(json_array_size(json_object_get(j, "counters")), 1);
    assert_true(counter_total(j, "#interrupts") >= before);
    json_decref(j);
    j = call(a, MV_AGENT_OP_PERFC_RESET, NULL, 0);
    assert_true(json_integer_value(json_object_get(j, "reset")) > 10);
    json_decref(j);
    j = call(a, MV_AGENT_OP_PERFC_GET, "{\"name\":\"#interrupts\"}", 0);
    uint64_t after = counter_total(j, "#interrupts");
    json_decref(j);
    assert_true(after < before);
    usleep(50000); /* interrupts keep arriving (timer ticks at least) */
    j = call(a, MV_AGENT_OP_PERFC_GET, "{\"name\":\"#interrupts\"}", 0);
    assert_true(counter_total(j, "#interrupts") > after);
    json_decref(j);
    assert_int_equal(mv_agent_send_stats(a), 0); /* builds the report; no port to send on */
    mv_agent_destroy(a);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests), cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_reply_codec),    cmocka_unit_test(test_config),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
