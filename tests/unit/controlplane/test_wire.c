/* mvctld's wire layer, database side (mvctld/wire.h): the [wire] configuration, drive_format
 * requests and answers (also malformed ones), and a datastore's life through the router with
 * the host commands queued, answered, failed, released and reconciled with inventories. The
 * network half runs in tests/integration/controlplane. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mvctld/conf.h"
#include "mvctld/db.h"
#include "mvctld/inventory.h"
#include "mvctld/router.h"
#include "mvctld/wire.h"

/* Two hosts as mvagent reports them: drives with path, state and (formatted) datastore. */
static const char *host_a =
    "{\"node_id\":\"761d0001\",\"hostname\":\"h1\",\"mac\":\"02:6d:76:1d:00:01\","
    "\"cpus\":[{\"cpu\":0,\"core_id\":0,\"socket_id\":0,\"numa_node\":0}],"
    "\"drives\":[{\"id\":\"1001\",\"size_bytes\":268435456,\"path\":\"/d/h1.d1.img\","
    "\"state\":\"unformatted\"},"
    "{\"id\":\"1002\",\"size_bytes\":268435456,\"path\":\"/d/h1.d2.img\","
    "\"state\":\"unformatted\"}]}";
static const char *host_b =
    "{\"node_id\":\"761d0002\",\"hostname\":\"h2\",\"mac\":\"02:6d:76:1d:00:02\","
    "\"cpus\":[{\"cpu\":0,\"core_id\":0,\"socket_id\":0,\"numa_node\":0}],"
    "\"drives\":[{\"id\":\"2001\",\"size_bytes\":268435456,\"path\":\"/d/h2.d1.img\","
    "\"state\":\"unformatted\"}]}";

/* What the HTTP side asked the hosts to do (the wire thread's queue, recorded). */
struct recorded {
    json_t *calls;
    int fail_with; /* host ops return this (0: accept) */
};

static int rec_format(void *user, const char *node, const json_t *ds, const json_t *ids)
{
    struct recorded *r = user;
    json_array_append_new(r->calls,
                          json_pack("{s:s, s:s, s:O, s:O}", "op", "format", "node", node,
                                    "datastore", json_object_get(ds, "id"), "disks", ids));
    return r->fail_with;
}

static int rec_release(void *user, const char *node, const char *ds, const json_t *ids)
{
    struct recorded *r = user;
    json_array_append_new(r->calls, json_pack("{s:s, s:s, s:s, s:O}", "op", "release", "node", node,
                                              "datastore", ds, "disks", ids));
    return r->fail_with;
}

static const struct mvctld_host_ops rec_ops = {.format_drives = rec_format,
                                               .release_drives = rec_release};

struct fixture {
    struct mvctld_db db;
    struct mvctld_ctx ctx;
    struct recorded rec;
};

static void apply(struct fixture *f, const char *text)
{
    char err[256];
    json_t *inv = json_loads(text, 0, NULL);
    assert_non_null(inv);
    if (mvctld_inventory_apply(&f->db, inv, MVCTLD_INV_AGENT, err, sizeof err) != 0)
        fail_msg("inventory: %s", err);
    json_decref(inv);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_int_equal(mvctld_db_open(&f->db, ":memory:", err, sizeof err), 0);
    f->rec.calls = json_array();
    f->ctx = (struct mvctld_ctx){.db = &f->db, .host_ops = &rec_ops, .host_ops_ctx = &f->rec};
    apply(f, host_a);
    apply(f, host_b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    json_decref(f->rec.calls);
    mvctld_db_close(&f->db);
    free(f);
    return 0;
}

static int req(struct fixture *f, const char *method, const char *path, const char *body,
               json_t **out)
{
    struct mvctld_request rq = {
        .method = method, .path = path, .body = body, .body_len = body ? strlen(body) : 0};
    struct mvctld_response rs;
    mvctld_api_handle(&f->ctx, &rq, &rs);
    if (out)
        *out = rs.body;
    else
        json_decref(rs.body);
    return rs.status;
}

static json_t *get_ds(struct fixture *f, const char *id)
{
    char path[128];
    json_t *out;
    snprintf(path, sizeof path, "/api/datastores/%s", id);
    assert_int_equal(req(f, "GET", path, NULL, &out), 200);
    return out;
}

static const char *state_of(json_t *ds)
{
    return json_string_value(json_object_get(ds, "state"));
}

static bool has_error_code(json_t *body, int code)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(body, "errors"), i, e)
    {
        if (json_integer_value(json_object_get(e, "code")) == code)
            return true;
    }
    return false;
}

/* Creates datastore "ds" on the given disks, returns its id (caller frees). */
static char *create_ds(struct fixture *f, const char *body)
{
    json_t *out;
    int st = req(f, "POST", "/api/datastores", body, &out);
    if (st != 202)
        fail_msg("create %s: %d %s", body, st, json_dumps(out, 0));
    char *id = strdup(json_string_value(json_object_get(out, "id")));
    json_decref(out);
    return id;
}

/* ---------------------------------------------------------------- configuration */

static void test_conf_wire(void **state)
{
    (void)state;
    char path[] = "/tmp/hcw-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[mvctld]\nport = 9000\n[wire]\ninterface = eth7\nkey_file = /k\n"
                       "node_name = ctl\nhello_interval_ms = 250\ndead_after_ms = 1000\n"
                       "inventory_interval = 5\nformat_timeout = 9\nrack = r1\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct mvctld_conf c;
    char err[256];
    mvctld_conf_defaults(&c);
    assert_string_equal(c.wire.ifname, ""); /* no wire unless asked for */
    assert_int_equal(c.wire.inventory_s, 30);
    assert_int_equal(mvctld_conf_load(&c, path, err, sizeof err), 0);
    assert_string_equal(c.wire.ifname, "eth7");
    assert_string_equal(c.wire.key_file, "/k");
    assert_string_equal(c.wire.node_name, "ctl");
    assert_string_equal(c.wire.rack, "r1");
    assert_int_equal(c.wire.hello_ms, 250);
    assert_int_equal(c.wire.dead_after_ms, 1000);
    assert_int_equal(c.wire.inventory_s, 5);
    assert_int_equal(c.wire.format_timeout_s, 9);
    assert_int_equal(c.port, 9000);
    /* flags use "wire.<key>" */
    assert_int_equal(mvctld_conf_set(&c, "wire.interface", "eth0", err, sizeof err), 0);
    assert_string_equal(c.wire.ifname, "eth0");
    assert_int_equal(mvctld_conf_set(&c, "wire.hello_interval_ms", "5", err, sizeof err), -1);
    assert_non_null(strstr(err, "hello_interval_ms"));
    assert_int_equal(mvctld_conf_set(&c, "wire.bogus", "1", err, sizeof err), -1);
    assert_int_equal(c.wire.hello_ms, 250); /* a refused value changes nothing */

    /* an unknown key in [wire] names the file and line */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    text = "[wire]\ninterface = eth0\nkeyfile = /k\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(mvctld_conf_load(&c, path, err, sizeof err), -1);
    assert_non_null(strstr(err, ":3"));
    assert_non_null(strstr(err, "keyfile"));
    unlink(path);
}

/* ---------------------------------------------------------------- requests and answers */

static void test_requests(void **state)
{
    (void)state;
    assert_int_equal(mvctld_wire_overcommit_pct("0"), 100);
    assert_int_equal(mvctld_wire_overcommit_pct("20"), 120);
    assert_int_equal(mvctld_wire_overcommit_pct("100"), 200);
    assert_int_equal(mvctld_wire_overcommit_pct("unlimited"), 10000);
    assert_int_equal(mvctld_wire_overcommit_pct("junk"), 100);
    assert_int_equal(mvctld_wire_overcommit_pct(NULL), 100);

    json_t *cmd = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "op", "format", "disk", "1", "node",
                            "761d0001", "path", "/d/x", "datastore", "abc", "overcommit_pct", 120);
    json_t *p = mvctld_wire_request_payload(cmd);
    json_t *want = json_pack("{s:s, s:s, s:i, s:b}", "drive", "/d/x", "datastore", "abc",
                             "overcommit_pct", 120, "force", 1);
    assert_true(json_equal(p, want));
    json_decref(p);
    json_decref(want);
    json_object_set_new(cmd, "op", json_string("release"));
    p = mvctld_wire_request_payload(cmd);
    want = json_pack("{s:s, s:b}", "drive", "/d/x", "force", 1); /* no datastore: freed */
    assert_true(json_equal(p, want));
    json_decref(p);
    json_decref(want);
    json_object_set_new(cmd, "op", json_string("explode"));
    assert_null(mvctld_wire_request_payload(cmd));
    json_object_set_new(cmd, "op", json_string("format"));
    json_object_set_new(cmd, "path", json_string(""));
    assert_null(mvctld_wire_request_payload(cmd));
    json_decref(cmd);
}

static void test_format_reply(void **state)
{
    (void)state;
    struct mvctld_drive_result r = {-1, -1};
    char err[256];
    const char *good = "{\"ok\":true,\"drive\":{\"path\":\"/d\",\"capacity\":260046848,"
                       "\"used\":1048576},\"datastore\":\"abc\"}";
    assert_int_equal(mvctld_wire_parse_format_reply(0, good, strlen(good), &r, err, sizeof err), 0);
    assert_int_equal(r.capacity, 260046848);
    assert_int_equal(r.used, 1048576);

    /* the agent's error travels into err */
    const char *bad = "{\"ok\":false,\"error\":\"mvstored unreachable: no socket\"}";
    assert_int_equal(
        mvctld_wire_parse_format_reply(-EHOSTUNREACH, bad, strlen(bad), &r, err, sizeof err),
        -EHOSTUNREACH);
    assert_string_equal(err, "mvstored unreachable: no socket");
    assert_int_equal(mvctld_wire_parse_format_reply(-EIO, NULL, 0, &r, err, sizeof err), -EIO);

    static const char *const malformed[] = {
        "",
        "not json",
        "[1,2]",
        "{\"ok\":false}",
        "{\"ok\":true}",
        "{\"ok\":true,\"drive\":5}",
        "{\"ok\":true,\"drive\":{}}",
        "{\"ok\":true,\"drive\":{\"capacity\":\"1\"}}",
        "{\"ok\":true,\"drive\":{\"capacity\":-1}}",
        "{\"ok\":true,\"drive\":{\"capacity\":10,\"used\":11}}",
        "{\"ok\":true,\"drive\":{\"capacity\":10,\"used\":-1}}",
        "{\"ok\":true,\"drive\":{\"capacity\":10,\"used\":1.5}}",
        "{\"ok\":true,\"drive\":{\"capacity\":9223372036854775807}}",
        "{\"ok\":true,\"drive\":{\"capacity\":10}",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        r = (struct mvctld_drive_result){7, 7};
        err[0] = 0;
        int rc = mvctld_wire_parse_format_reply(0, malformed[i], strlen(malformed[i]), &r, err,
                                                sizeof err);
        if (rc != -EPROTO)
            fail_msg("'%s' gave %d", malformed[i], rc);
        assert_true(err[0] != 0);
        assert_int_equal(r.capacity, 7); /* nothing written on failure */
    }
}

/* ---------------------------------------------------------------- a datastore's life */

static void test_datastore_formats(void **state)
{
    struct fixture *f = *state;
    char *id = create_ds(f, "{\"name\":\"test\",\"disks\":[\"1001\",\"2001\"],\"replicas\":1,"
                            "\"overcommit_disk\":\"20\"}");
    /* one queued command per node */
    assert_int_equal(json_array_size(f->rec.calls), 2);
    json_t *ds = get_ds(f, id);
    assert_string_equal(state_of(ds), "formatting");
    assert_non_null(json_object_get(ds, "state_reason"));
    assert_false(
        json_is_true(json_object_get(json_array_get(json_object_get(ds, "disks"), 0), "is_up")));
    json_decref(ds);

    json_t *ids = json_pack("[s, s]", "1001", "2001");
    json_t *cmds = mvctld_wire_plan_format(&f->db, id, ids);
    assert_int_equal(json_array_size(cmds), 2);
    json_t *c0 = json_array_get(cmds, 0);
    assert_string_equal(json_string_value(json_object_get(c0, "path")), "/d/h1.d1.img");
    assert_string_equal(json_string_value(json_object_get(c0, "node")), "761d0001");
    assert_int_equal(json_integer_value(json_object_get(c0, "overcommit_pct")), 120);
    json_decref(cmds);

    /* answers: one drive formatted, the other failed */
    struct mvctld_drive_result res = {.capacity = 200 << 20, .used = 50 << 20};
    assert_int_equal(mvctld_wire_format_done(&f->db, "1001", id, &res, NULL), 1);
    ds = get_ds(f, id);
    assert_string_equal(state_of(ds), "formatting"); /* 2001 still outstanding */
    json_decref(ds);
    assert_int_equal(
        mvctld_wire_format_done(&f->db, "2001", id, NULL, "mvstored: /d/h2.d1.img: I/O error"), 1);
    /* a duplicate or late answer changes nothing */
    assert_int_equal(mvctld_wire_format_done(&f->db, "2001", id, &res, NULL), 0);
    ds = get_ds(f, id);
    assert_string_equal(state_of(ds), "error");
    const char *reason = json_string_value(json_object_get(ds, "state_reason"));
    assert_non_null(reason);
    assert_non_null(strstr(reason, "2001"));
    assert_non_null(strstr(reason, "I/O error"));
    json_t *disks = json_object_get(ds, "disks");
    json_t *d1 = json_array_get(disks, 0), *d2 = json_array_get(disks, 1);
    assert_string_equal(json_string_value(json_object_get(d1, "id")), "1001");
    assert_true(json_is_true(json_object_get(d1, "is_up")));
    assert_true(json_real_value(json_object_get(d1, "used")) == 25.0);
    assert_string_equal(json_string_value(json_object_get(d2, "state")), "error");
    assert_false(json_is_true(json_object_get(d2, "is_up")));
    /* total: the formatted drive's capacity, the other's raw size */
    assert_int_equal(json_integer_value(json_object_get(ds, "total")), (200 << 20) + 268435456LL);
    json_decref(ds);

    /* the state cannot be edited away from error (1020); other fields can */
    json_t *out;
    assert_int_equal(req(f, "PUT", "/api/datastores/x", "{}", NULL), 404);
    char path[128];
    snprintf(path, sizeof path, "/api/datastores/%s", id);
    assert_int_equal(req(f, "PUT", path, "{\"state\":\"enabled\"}", &out), 422);
    assert_true(has_error_code(out, 1020));
    json_decref(out);
    assert_int_equal(req(f, "PUT", path, "{\"description\":\"x\"}", &out), 200);
    assert_string_equal(state_of(out), "error");
    json_decref(out);

    /* removing the failed disk: released, and the datastore is enabled again */
    json_array_clear(f->rec.calls);
    snprintf(path, sizeof path, "/api/datastores/%s/disks/2001", id);
    assert_int_equal(req(f, "DELETE", path, NULL, &out), 200);
    assert_string_equal(state_of(out), "enabled");
    assert_null(json_object_get(out, "state_reason"));
    json_decref(out);
    assert_int_equal(json_array_size(f->rec.calls), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(f->rec.calls, 0), "op")),
                        "release");
    json_t *one = json_pack("[s]", "2001");
    cmds = mvctld_wire_plan_release(&f->db, id, one);
    assert_int_equal(json_array_size(cmds), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cmds, 0), "path")),
                        "/d/h2.d1.img");
    json_decref(cmds);
    json_t *disk;
    assert_int_equal(req(f, "GET", "/api/disks/2001", NULL, &disk), 200);
    assert_string_equal(json_string_value(json_object_get(disk, "state")), "enabled");
    assert_true(json_is_null(json_object_get(disk, "datastore")));
    json_decref(disk);

    /* the host's next inventory still shows the old datastore: the release is sent again; once
     * it no longer does, the release is forgotten */
    char inv[1024];
    snprintf(inv, sizeof inv,
             "{\"node_id\":\"761d0002\",\"cpus\":[{\"cpu\":0}],\"drives\":[{\"id\":\"2001\","
             "\"size_bytes\":268435456,\"path\":\"/d/h2.d1.img\",\"state\":\"online\","
             "\"capacity\":1000,\"datastore\":\"%s\"}]}",
             id);
    json_t *invj = json_loads(inv, 0, NULL);
    cmds = mvctld_wire_reconcile(&f->db, "761d0002", invj);
    assert_int_equal(json_array_size(cmds), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cmds, 0), "op")),
                        "release");
    json_decref(cmds);
    json_object_del(json_array_get(json_object_get(invj, "drives"), 0), "datastore");
    cmds = mvctld_wire_reconcile(&f->db, "761d0002", invj);
    assert_int_equal(json_array_size(cmds), 0);
    json_decref(cmds);
    cmds = mvctld_wire_reconcile(&f->db, "761d0002", invj); /* forgotten */
    assert_int_equal(json_array_size(cmds), 0);
    json_decref(cmds);
    json_decref(invj);
    /* a confirmed release forgets it too */
    cmds = mvctld_wire_plan_release(&f->db, id, one);
    json_decref(cmds);
    assert_int_equal(mvctld_wire_release_done(&f->db, "2001", id), 0);
    invj = json_loads(inv, 0, NULL);
    cmds = mvctld_wire_reconcile(&f->db, "761d0002", invj);
    assert_int_equal(json_array_size(cmds), 0);
    json_decref(cmds);
    json_decref(invj);

    /* delete: late answers for it change nothing */
    json_array_clear(f->rec.calls);
    snprintf(path, sizeof path, "/api/datastores/%s", id);
    assert_int_equal(req(f, "DELETE", path, NULL, NULL), 202);
    assert_int_equal(json_array_size(f->rec.calls), 1);
    assert_int_equal(mvctld_wire_format_done(&f->db, "1001", id, &res, NULL), 0);
    json_decref(one);
    json_decref(ids);
    free(id);
}

static void test_reconcile_pending(void **state)
{
    struct fixture *f = *state;
    char *id = create_ds(f, "{\"name\":\"r\",\"disks\":[\"1001\",\"1002\"],\"replicas\":2}");
    /* mvctld restarted before the answers: the inventory shows 1001 formatted into the
     * datastore (done, with its capacity), 1002 not (format sent again) */
    char inv[1024];
    snprintf(inv, sizeof inv,
             "{\"node_id\":\"761d0001\",\"cpus\":[{\"cpu\":0}],\"drives\":["
             "{\"id\":\"1001\",\"size_bytes\":268435456,\"path\":\"/d/h1.d1.img\","
             "\"state\":\"online\",\"capacity\":250000000,\"used\":0,\"datastore\":\"%s\"},"
             "{\"id\":\"1002\",\"size_bytes\":268435456,\"path\":\"/d/h1.d2.img\","
             "\"state\":\"unformatted\"}]}",
             id);
    apply(f, inv);
    json_t *invj = json_loads(inv, 0, NULL);
    json_t *cmds = mvctld_wire_reconcile(&f->db, "761d0001", invj);
    assert_int_equal(json_array_size(cmds), 1);
    json_t *c = json_array_get(cmds, 0);
    assert_string_equal(json_string_value(json_object_get(c, "disk")), "1002");
    assert_string_equal(json_string_value(json_object_get(c, "op")), "format");
    json_decref(cmds);
    json_decref(invj);
    json_t *ds = get_ds(f, id);
    assert_string_equal(state_of(ds), "formatting");
    json_decref(ds);
    struct mvctld_drive_result res = {.capacity = 250000000};
    assert_int_equal(mvctld_wire_format_done(&f->db, "1002", id, &res, NULL), 1);
    ds = get_ds(f, id);
    assert_string_equal(state_of(ds), "enabled");
    assert_int_equal(json_integer_value(json_object_get(ds, "total")), 250000000); /* 2x / 2 */
    json_decref(ds);
    free(id);
}

static void test_refused_up_front(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    /* node down: 1019, nothing queued, nothing created */
    assert_int_equal(mvctld_node_lost(&f->db, "761d0002"), 0);
    assert_int_equal(req(f, "POST", "/api/datastores",
                         "{\"name\":\"x\",\"disks\":[\"1001\",\"2001\"],\"replicas\":1}", &out),
                     422);
    assert_true(has_error_code(out, 1019));
    json_decref(out);
    assert_int_equal(json_array_size(f->rec.calls), 0);
    assert_int_equal(req(f, "GET", "/api/datastores", NULL, &out), 200);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);

    /* a host op that cannot queue: the disks are marked failed at once */
    f->rec.fail_with = -EAGAIN;
    char *id = create_ds(f, "{\"name\":\"q\",\"disks\":[\"1001\"],\"replicas\":1}");
    json_t *ds = get_ds(f, id);
    assert_string_equal(state_of(ds), "error");
    json_decref(ds);
    free(id);

    /* a drive without a path (older agent) cannot be formatted */
    apply(f, "{\"node_id\":\"761d0003\",\"cpus\":[{\"cpu\":0}],"
             "\"drives\":[{\"id\":\"3001\",\"size_bytes\":1000}]}");
    assert_int_equal(req(f, "POST", "/api/datastores",
                         "{\"name\":\"y\",\"disks\":[\"3001\"],\"replicas\":1}", &out),
                     422);
    assert_true(has_error_code(out, 1019));
    json_decref(out);
    /* a relative drive path in an inventory is refused, and changes nothing */
    char err[256];
    json_t *bad = json_loads("{\"node_id\":\"761d0003\",\"cpus\":[{\"cpu\":0}],"
                             "\"drives\":[{\"id\":\"3001\",\"size_bytes\":1000,"
                             "\"path\":\"d/x\"}]}",
                             0, NULL);
    assert_int_equal(mvctld_inventory_apply(&f->db, bad, MVCTLD_INV_AGENT, err, sizeof err), -1);
    assert_non_null(strstr(err, "path"));
    json_decref(bad);
}

static void test_without_wire(void **state)
{
    struct fixture *f = *state;
    /* no host ops: datastores are bookkeeping, enabled at once, as before the wire layer */
    f->ctx.host_ops = NULL;
    char *id = create_ds(f, "{\"name\":\"b\",\"disks\":[\"2001\"],\"replicas\":1}");
    json_t *ds = get_ds(f, id);
    assert_string_equal(state_of(ds), "enabled");
    assert_null(json_object_get(ds, "state_reason"));
    assert_int_equal(json_integer_value(json_object_get(ds, "total")), 268435456);
    json_t *ids = json_pack("[s]", "2001");
    json_t *cmds = mvctld_wire_plan_format(&f->db, id, ids); /* nothing pending */
    assert_int_equal(json_array_size(cmds), 0);
    json_decref(cmds);
    json_decref(ids);
    json_decref(ds);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_wire),
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_format_reply),
        cmocka_unit_test_setup_teardown(test_datastore_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_up_front, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_wire, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
