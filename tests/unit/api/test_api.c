/* mvctld unit tests: migrations, inventory, every validation rule of D2.3 §3.4.2 / §3.5.2.1
 * through the router (as the HTTP layer calls it), body parsing, and authentication. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mvctld/auth.h"
#include "mvctld/db.h"
#include "mvctld/errors.h"
#include "mvctld/inventory.h"
#include "mvctld/router.h"
#include "mvctld/validate.h"

static const char *host_a =
    "{\"node_id\":\"54424488\",\"hostname\":\"mv-a\",\"mac\":\"02:00:54:42:44:88\","
    "\"cpus\":[{\"id\":\"54424488_4\",\"cpu\":4,\"core_id\":0,\"socket_id\":1,\"numa_node\":1},"
    "{\"cpu\":5,\"core_id\":1,\"socket_id\":1,\"numa_node\":1},"
    "{\"cpu\":6,\"core_id\":2,\"socket_id\":1,\"numa_node\":1}],"
    "\"numa_nodes\":[{\"id\":1,\"mem_total_kb\":1048576,\"mem_free_kb\":524288}],"
    "\"drives\":[{\"id\":\"3584916917\",\"size_bytes\":1000000},"
    "{\"id\":\"3584916918\",\"size_bytes\":1000000}],"
    "\"labels\":{\"blade\":\"b1\",\"chassis\":\"c1\",\"rack\":\"r1\"},\"nics\":[]}";
static const char *host_b =
    "{\"node_id\":\"5442448a\",\"hostname\":\"mv-b\",\"mac\":\"02:00:54:42:44:8a\","
    "\"cpus\":[{\"cpu\":0,\"core_id\":0,\"socket_id\":0,\"numa_node\":0}],"
    "\"drives\":[{\"id\":\"3283879690\",\"size_bytes\":2000000}]}";

struct fixture {
    struct mvctld_db db;
    struct mvctld_ctx ctx;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_int_equal(mvctld_db_open(&f->db, ":memory:", err, sizeof err), 0);
    f->ctx.db = &f->db;
    const char *hosts[] = {host_a, host_b};
    for (int i = 0; i < 2; i++) {
        json_t *inv = json_loads(hosts[i], 0, NULL);
        assert_non_null(inv);
        assert_int_equal(mvctld_inventory_apply(&f->db, inv, MVCTLD_INV_AGENT, err, sizeof err), 0);
        json_decref(inv);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mvctld_db_close(&f->db);
    free(f);
    return 0;
}

/* One request through the router; returns the status and (optionally) the body. */
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

/* Asserts a 422 whose errors include `code`, in D2.3's error model. */
static void expect_422(struct fixture *f, const char *method, const char *path, const char *body,
                       int code)
{
    json_t *out = NULL;
    int status = req(f, method, path, body, &out);
    if (status != 422)
        fail_msg("%s %s %s: status %d, wanted 422 with code %d", method, path, body, status, code);
    assert_int_equal(json_integer_value(json_object_get(out, "code")), 422);
    assert_true(json_is_string(json_object_get(out, "message")));
    json_t *errors = json_object_get(out, "errors");
    assert_true(json_array_size(errors) > 0);
    size_t i;
    json_t *e;
    bool found = false;
    json_array_foreach(errors, i, e)
    {
        assert_true(json_is_integer(json_object_get(e, "code")));
        assert_true(json_is_string(json_object_get(e, "message")));
        assert_true(json_is_string(json_object_get(e, "field")));
        found |= json_integer_value(json_object_get(e, "code")) == code;
    }
    if (!found) {
        char *dump = json_dumps(out, 0);
        fail_msg("%s: no error code %d in %s", body, code, dump);
    }
    json_decref(out);
}

static long long count(struct fixture *f, const char *path)
{
    json_t *out;
    assert_int_equal(req(f, "GET", path, NULL, &out), 200);
    long long n = (long long)json_array_size(out);
    json_decref(out);
    return n;
}

static void test_migrations(void **state)
{
    (void)state;
    char path[] = "/tmp/hapi-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct mvctld_db db;
    char err[256];
    assert_int_equal(mvctld_db_open_version(&db, path, 1, err, sizeof err), 0);
    assert_int_equal(mvctld_db_version(&db), 1);
    assert_int_equal(mvctld_db_exec(&db, "INSERT INTO nodes (id, hostname, mac) "
                                         "VALUES ('n1', 'h', '02:00:00:00:00:01')"),
                     0);
    mvctld_db_close(&db);
    /* Reopening migrates to the latest and keeps the data. */
    assert_int_equal(mvctld_db_open(&db, path, err, sizeof err), 0);
    assert_int_equal(mvctld_db_version(&db), mvctld_db_latest_version());
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db.sql,
                                        "SELECT (SELECT count(*) FROM nodes), (SELECT count(*) "
                                        "FROM sqlite_master WHERE name = 'disks_by_node')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    /* WAL and foreign keys are on. */
    assert_int_equal(sqlite3_prepare_v2(db.sql, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_not_equal(mvctld_db_exec(&db, "INSERT INTO cores (id, node_id, cpu, core_id, "
                                             "socket_id, numa_node) VALUES ('x', 'nope', 0, 0, 0, "
                                             "0)"),
                         0);
    /* A database from a newer mvctld is refused. */
    assert_int_equal(mvctld_db_exec(&db, "UPDATE schema_version SET version = 99"), 0);
    mvctld_db_close(&db);
    assert_int_equal(mvctld_db_open(&db, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "newer"));
    unlink(path);
    char wal[64];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
}

static void test_inventory(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    assert_int_equal(count(f, "/api/nodes"), 2);
    assert_int_equal(count(f, "/api/cores"), 4);
    assert_int_equal(count(f, "/api/disks"), 3);
    /* core ids: given, or node id + "_" + cpu */
    assert_int_equal(req(f, "GET", "/api/cores/54424488_5", NULL, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "numa_node")), 1);
    json_decref(out);
    assert_int_equal(req(f, "GET", "/api/nodes/54424488/numa", NULL, &out), 200);
    assert_int_equal(json_array_size(out), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(out, 0), "memory_mb")),
                     1024);
    assert_int_equal(json_array_size(json_object_get(json_array_get(out, 0), "cores")), 3);
    json_decref(out);
    assert_int_equal(req(f, "GET", "/api/nodes/nope", NULL, NULL), 404);

    /* Bad documents change nothing. */
    static const char *bad[] = {
        "[]",
        "{\"node_id\":\"\",\"cpus\":[]}",
        "{\"node_id\":\"a/b\",\"cpus\":[]}",
        "{\"node_id\":\"54424488\"}",
        "{\"node_id\":\"54424488\",\"cpus\":[{\"cpu\":-1}]}",
        "{\"node_id\":\"54424488\",\"cpus\":[],\"mac\":\"zz\"}",
        "{\"node_id\":\"54424488\",\"cpus\":[],\"drives\":[{\"id\":\"d\"}]}",
        "{\"node_id\":\"54424488\",\"cpus\":[],\"labels\":{\"rack\":5}}",
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *inv = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_int_equal(mvctld_inventory_apply(&f->db, inv, MVCTLD_INV_AGENT, err, sizeof err),
                         -1);
        json_decref(inv);
    }
    assert_int_equal(count(f, "/api/cores"), 4);
    assert_int_equal(count(f, "/api/disks"), 3);

    /* A drive in a datastore that disappears stays, in state 'error'; a free one goes. */
    assert_int_equal(req(f, "POST", "/api/datastores",
                         "{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1}", NULL),
                     202);
    json_t *inv = json_loads(host_a, 0, NULL);
    json_array_clear(json_object_get(inv, "drives"));
    assert_int_equal(mvctld_inventory_apply(&f->db, inv, MVCTLD_INV_AGENT, err, sizeof err), 0);
    json_decref(inv);
    assert_int_equal(req(f, "GET", "/api/disks/3584916917", NULL, &out), 200);
    assert_string_equal(json_string_value(json_object_get(out, "state")), "error");
    assert_false(json_is_true(json_object_get(out, "is_up")));
    json_decref(out);
    assert_int_equal(req(f, "GET", "/api/disks/3584916918", NULL, NULL), 404);

    /* Liveness */
    assert_int_equal(mvctld_node_lost(&f->db, "5442448a"), 0);
    assert_int_equal(req(f, "GET", "/api/nodes/5442448a", NULL, &out), 200);
    assert_string_equal(json_string_value(json_object_get(out, "state")), "offline");
    json_decref(out);
    assert_int_equal(mvctld_node_seen(&f->db, "5442448a"), 0);
    assert_int_equal(mvctld_node_seen(&f->db, "unknown"), -2 /* -ENOENT */);
    /* Forgetting a node: refused while online, allowed once offline and unused. */
    expect_422(f, "DELETE", "/api/nodes/5442448a", NULL, MVE_NODE_ONLINE);
    assert_int_equal(mvctld_node_lost(&f->db, "5442448a"), 0);
    assert_int_equal(req(f, "DELETE", "/api/nodes/5442448a", NULL, NULL), 204);
    assert_int_equal(count(f, "/api/nodes"), 1);
}

static void test_datastore_rules(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *body;
        int code;
    } cases[] = {
        /* D2.3 §3.5.2.1, in order */
        {"{\"name\":\"\",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_EMPTY},
        {"{\"name\":\"   \",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_EMPTY},
        {"{\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_EMPTY},
        {"{\"name\":\"abcdefghijklmnopqrstuvwxyz012345\",\"disks\":[\"3584916917\"],"
         "\"replicas\":1}",
         MVE_DS_NAME_TOO_LONG},
        {"{\"name\":\"OPENSTACK_DS\",\"disks\":[\"3584916917\"],\"replicas\":1}",
         MVE_DS_NAME_RESERVED},
        {"{\"name\":\"a=b\",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_CHARS},
        {"{\"name\":\"a,b\",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_CHARS},
        {"{\"name\":\"a?b\",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_CHARS},
        {"{\"name\":\"a\\\"b\",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_CHARS},
        {"{\"name\":\"a'b\",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_CHARS},
        {"{\"name\":\"a\\\\b\",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_NAME_CHARS},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":0}", MVE_DS_REPLICAS_LOW},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":-3}", MVE_DS_REPLICAS_LOW},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1,\"overcommit_disk\":\"101\"}",
         MVE_DS_OVERCOMMIT_HIGH},
        {"{\"name\":\"a\",\"disks\":[],\"replicas\":1}", MVE_DS_DISKS_EMPTY},
        {"{\"name\":\"a\",\"replicas\":1}", MVE_DS_DISKS_EMPTY},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\",\"nope\"],\"replicas\":1}",
         MVE_DS_DISKS_UNKNOWN},
        /* ours */
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":2}", MVE_DS_REPLICAS_OVER_DISKS},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1,\"overcommit_disk\":\"x\"}",
         MVE_DS_OVERCOMMIT_INVALID},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1,"
         "\"repair_volume_policy\":{\"trigger\":\"cleanup\"}}",
         MVE_DS_REPAIR_TRIGGER},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1,"
         "\"repair_volume_policy\":{\"trigger\":\"periodic\"}}",
         MVE_DS_REPAIR_PERIOD},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1,"
         "\"repair_volume_policy\":{\"num_of_repairs\":-1}}",
         MVE_DS_REPAIR_NUM},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\",\"3584916917\"],\"replicas\":1}",
         MVE_DUPLICATE_ID},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":\"1\"}", MVE_FIELD_TYPE},
        {"{\"name\":\"a\",\"disks\":[3],\"replicas\":1}", MVE_FIELD_TYPE},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"]}", MVE_FIELD_REQUIRED},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1,\"colour\":\"red\"}",
         MVE_FIELD_UNKNOWN},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1,\"total\":5}",
         MVE_FIELD_READ_ONLY},
        {"{\"name\":\"a\",\"disks\":[\"3584916917\"],\"replicas\":1,\"state\":\"enabled\"}",
         MVE_FIELD_READ_ONLY},
        {"[1]", MVE_BODY_NOT_OBJECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_422(f, "POST", "/api/datastores", cases[i].body, cases[i].code);
    assert_int_equal(count(f, "/api/datastores"), 0); /* nothing was created */

    /* Exactly 31 characters is fine; then the name is taken, and the disk too. */
    json_t *out;
    assert_int_equal(req(f, "POST", "/api/datastores",
                         "{\"name\":\"abcdefghijklmnopqrstuvwxyz01234\",\"disks\":[\"3584916917\"],"
                         "\"replicas\":1,\"overcommit_disk\":\"unlimited\"}",
                         &out),
                     202);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(out, "id")));
    assert_int_equal(strlen(id), 14);
    assert_true(json_is_true(json_object_get(out, "is_thin")));
    assert_int_equal(json_integer_value(json_object_get(out, "total")), 1000000);
    json_decref(out);
    expect_422(f, "POST", "/api/datastores",
               "{\"name\":\"abcdefghijklmnopqrstuvwxyz01234\",\"disks\":[\"3584916918\"],"
               "\"replicas\":1}",
               MVE_DS_NAME_TAKEN);
    expect_422(f, "POST", "/api/datastores",
               "{\"name\":\"b\",\"disks\":[\"3584916917\"],\"replicas\":1}", MVE_DS_DISK_IN_USE);

    /* Edit: partial, immutable fields refused, rules apply to the result. */
    char path[128], sub[160];
    snprintf(path, sizeof path, "/api/datastores/%s", id);
    assert_int_equal(req(f, "PUT", path, "{\"name\":\"fast\",\"state\":\"disabled\"}", &out), 200);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "fast");
    assert_string_equal(json_string_value(json_object_get(out, "state")), "disabled");
    json_decref(out);
    expect_422(f, "PUT", path, "{\"replicas\":2}", MVE_FIELD_IMMUTABLE);
    expect_422(f, "PUT", path, "{\"name\":\"OPENSTACK_DS\"}", MVE_DS_NAME_RESERVED);
    expect_422(f, "PUT", path, "{\"state\":\"broken\"}", MVE_DS_STATE);
    assert_int_equal(req(f, "PUT", "/api/datastores/nope", "{\"name\":\"x\"}", NULL), 404);

    /* Disks: add, refuse removing the last, remove. */
    snprintf(sub, sizeof sub, "%s/disks", path);
    expect_422(f, "POST", sub, "{\"disks\":[\"nope\"]}", MVE_DS_DISKS_UNKNOWN);
    expect_422(f, "POST", sub, "{\"disks\":[]}", MVE_FIELD_REQUIRED);
    assert_int_equal(req(f, "POST", sub, "{\"disks\":[\"3283879690\"]}", &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "disks")), 2);
    json_decref(out);
    snprintf(sub, sizeof sub, "%s/disks/3283879690", path);
    assert_int_equal(req(f, "DELETE", sub, NULL, NULL), 200);
    snprintf(sub, sizeof sub, "%s/disks/3584916917", path);
    expect_422(f, "DELETE", sub, NULL, MVE_DS_DISKS_EMPTY);
    snprintf(sub, sizeof sub, "%s/disks/3283879690", path);
    assert_int_equal(req(f, "DELETE", sub, NULL, NULL), 404);

    assert_int_equal(req(f, "DELETE", path, NULL, NULL), 202);
    assert_int_equal(req(f, "GET", path, NULL, NULL), 404);
    struct mvctld_request rq = {.method = "GET", .path = "/api/disks", .q_free = "true"};
    struct mvctld_response rs;
    mvctld_api_handle(&f->ctx, &rq, &rs);
    assert_int_equal(rs.status, 200);
    assert_int_equal(json_array_size(rs.body), 3); /* every disk is free again */
    json_decref(rs.body);
}

static void make_group_fixtures(struct fixture *f, char *ds_id, size_t len)
{
    json_t *out;
    assert_int_equal(req(f, "POST", "/api/datastores",
                         "{\"name\":\"d\",\"disks\":[\"3584916917\"],\"replicas\":1}", &out),
                     202);
    snprintf(ds_id, len, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    assert_int_equal(req(f, "POST", "/api/networks", "{\"name\":\"n1\"}", NULL), 202);
    assert_int_equal(req(f, "POST", "/api/networks", "{\"name\":\"n2\"}", NULL), 202);
}

static void test_group_rules(void **state)
{
    struct fixture *f = *state;
    char ds[32], body[512];
    make_group_fixtures(f, ds, sizeof ds);
    static const struct {
        const char *fmt;
        int code;
    } cases[] = {
        /* D2.3 §3.4.2, in order */
        {"{\"name\":\"\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[1],"
         "\"cpu_overcommit\":1}",
         MVE_RG_NAME_EMPTY},
        {"{\"name\":\"g\",\"cores\":[],\"datastores\":[\"%s\"],\"network_ids\":[1],"
         "\"cpu_overcommit\":1}",
         MVE_RG_CORES_EMPTY},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[],\"network_ids\":[1],"
         "\"cpu_overcommit\":1,\"description\":\"%s\"}",
         MVE_RG_DATASTORES_EMPTY},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[],"
         "\"cpu_overcommit\":1}",
         MVE_RG_NETWORKS_EMPTY},
        {"{\"name\":\"g\",\"cores\":[\"54424488_99\"],\"datastores\":[\"%s\"],"
         "\"network_ids\":[1],\"cpu_overcommit\":1}",
         MVE_RG_UNKNOWN_ID},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\",\"zzz\"],"
         "\"network_ids\":[1],\"cpu_overcommit\":1}",
         MVE_RG_UNKNOWN_ID},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],"
         "\"network_ids\":[1,66],\"cpu_overcommit\":1}",
         MVE_RG_UNKNOWN_ID},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[1],"
         "\"cpu_overcommit\":0}",
         MVE_RG_OVERCOMMIT_LOW},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[1],"
         "\"cpu_overcommit\":9}",
         MVE_RG_OVERCOMMIT_HIGH},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[1],"
         "\"cpu_overcommit\":2,\"is_cpu_pinning_enabled\":true}",
         MVE_RG_PINNING_OVERCOMMIT},
        /* ours and shape */
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[1],"
         "\"cpu_overcommit\":1,\"fault_tolerance\":{\"is_enabled\":true,\"unit\":\"row\"}}",
         MVE_RG_FT_UNIT},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[1],"
         "\"cpu_overcommit\":1,\"fault_tolerance\":{\"max_failures\":-1}}",
         MVE_RG_FT_MAX_FAILURES},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[1],"
         "\"cpu_overcommit\":1,\"fault_tolerance\":{\"is_degraded\":true}}",
         MVE_FIELD_READ_ONLY},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],"
         "\"network_ids\":[\"1\"],\"cpu_overcommit\":1}",
         MVE_FIELD_TYPE},
        {"{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],\"network_ids\":[1]}",
         MVE_FIELD_REQUIRED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(body, sizeof body, cases[i].fmt, ds); /* the table's formats take one %s */
#pragma GCC diagnostic pop
        expect_422(f, "POST", "/api/resource_groups", body, cases[i].code);
    }
    assert_int_equal(count(f, "/api/resource_groups"), 0);

    json_t *out;
    snprintf(body, sizeof body,
             "{\"name\":\"super\",\"cores\":[\"54424488_4\",\"54424488_5\"],"
             "\"datastores\":[\"%s\"],\"network_ids\":[2,1],\"cpu_overcommit\":1,"
             "\"is_cpu_pinning_enabled\":true,\"fault_tolerance\":{\"is_enabled\":true,"
             "\"unit\":\"blade\",\"max_failures\":1}}",
             ds);
    assert_int_equal(req(f, "POST", "/api/resource_groups", body, &out), 202);
    long long id = json_integer_value(json_object_get(out, "id"));
    assert_int_equal(json_integer_value(json_object_get(out, "real_cores")), 2);
    assert_int_equal(json_integer_value(json_object_get(out, "total_memory")), 1024);
    assert_int_equal(json_array_size(json_object_get(out, "disk_ids")), 1);
    assert_true(json_is_true(json_object_get(out, "is_storage_latency_optimized")));
    json_decref(out);
    /* A core belongs to one group. */
    snprintf(body, sizeof body,
             "{\"name\":\"other\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],"
             "\"network_ids\":[1],\"cpu_overcommit\":1}",
             ds);
    expect_422(f, "POST", "/api/resource_groups", body, MVE_RG_CORE_TAKEN);

    char path[64], sub[96];
    snprintf(path, sizeof path, "/api/resource_groups/%lld", id);
    expect_422(f, "PUT", path, "{\"cpu_overcommit\":4}", MVE_RG_PINNING_OVERCOMMIT);
    assert_int_equal(
        req(f, "PUT", path, "{\"cpu_overcommit\":4,\"is_cpu_pinning_enabled\":false}", &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "cpu_overcommit")), 4);
    json_decref(out);
    /* Members */
    snprintf(sub, sizeof sub, "%s/cores", path);
    assert_int_equal(req(f, "POST", sub, "{\"cores\":[\"54424488_6\"]}", &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "cores")), 3);
    json_decref(out);
    snprintf(sub, sizeof sub, "%s/networks/2", path);
    assert_int_equal(req(f, "DELETE", sub, NULL, NULL), 200);
    snprintf(sub, sizeof sub, "%s/networks/1", path);
    expect_422(f, "DELETE", sub, NULL, MVE_RG_NETWORKS_EMPTY);
    snprintf(sub, sizeof sub, "%s/networks/2", path);
    assert_int_equal(req(f, "DELETE", sub, NULL, NULL), 404);
    /* In-use datastores and networks cannot be deleted. */
    snprintf(sub, sizeof sub, "/api/datastores/%s", ds);
    expect_422(f, "DELETE", sub, NULL, MVE_DS_IN_USE);
    expect_422(f, "DELETE", "/api/networks/1", NULL, MVE_NET_IN_USE);
    assert_int_equal(req(f, "DELETE", "/api/networks/2", NULL, NULL), 204);
    assert_int_equal(req(f, "DELETE", path, NULL, NULL), 204);
    assert_int_equal(req(f, "GET", path, NULL, NULL), 404);
    assert_int_equal(req(f, "DELETE", sub, NULL, NULL), 202);
}

static void test_network_rules(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *body;
        int code;
    } cases[] = {
        {"{\"name\":\"\"}", MVE_NET_NAME_EMPTY},
        {"{\"name\":\"n\",\"dhcp_type\":\"dynamic\"}", MVE_NET_DHCP_TYPE},
        {"{\"name\":\"n\",\"ip_version\":5}", MVE_NET_IP_VERSION},
        {"{\"name\":\"n\",\"cidr\":\"10.0.0.0/33\"}", MVE_NET_CIDR},
        {"{\"name\":\"n\",\"cidr\":\"10.0.0.0\"}", MVE_NET_CIDR},
        {"{\"name\":\"n\",\"dhcp_type\":\"static\"}", MVE_NET_CIDR},
        {"{\"name\":\"n\",\"cidr\":\"10.0.0.0/24\",\"ip_start\":\"10.0.1.1\"}", MVE_NET_IP_RANGE},
        {"{\"name\":\"n\",\"cidr\":\"10.0.0.0/24\",\"ip_start\":\"10.0.0.9\","
         "\"ip_end\":\"10.0.0.8\"}",
         MVE_NET_IP_RANGE},
        {"{\"name\":\"n\",\"cidr\":\"10.0.0.0/24\",\"gateway\":\"10.9.0.1\"}", MVE_NET_GATEWAY},
        {"{\"name\":\"n\",\"is_vlan\":true}", MVE_NET_VLAN_TAG},
        {"{\"name\":\"n\",\"is_vlan\":true,\"vlan_tag\":4095}", MVE_NET_VLAN_TAG},
        {"{\"name\":\"n\",\"vlan_tag\":5}", MVE_NET_VLAN_FLAGS},
        {"{\"name\":\"n\",\"nat_forwarding\":true}", MVE_NET_DHCP_OPTIONS},
        {"{\"name\":\"n\",\"virtual\":false,\"mac\":\"nope\"}", MVE_NET_MAC},
        {"{\"name\":\"n\",\"mac\":\"02:00:00:00:00:01\"}", MVE_NET_MAC},
        {"{\"name\":\"n\",\"ip_version\":6,\"cidr\":\"10.0.0.0/8\"}", MVE_NET_CIDR},
        {"{\"name\":\"n\",\"active_nodes\":[]}", MVE_FIELD_READ_ONLY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_422(f, "POST", "/api/networks", cases[i].body, cases[i].code);
    assert_int_equal(count(f, "/api/networks"), 0);
    json_t *out;
    assert_int_equal(req(f, "POST", "/api/networks",
                         "{\"name\":\"v6\",\"ip_version\":6,\"cidr\":\"fd00::/64\","
                         "\"dhcp_type\":\"internal\",\"is_routable\":true,"
                         "\"ip_start\":\"fd00::10\",\"ip_end\":\"fd00::ff\","
                         "\"dhcp_server_ip\":\"fd00::2\",\"is_vlan\":true,\"vlan_tag\":66}",
                         &out),
                     202);
    assert_int_equal(json_integer_value(json_object_get(out, "vlan_tag")), 66);
    json_decref(out);
    expect_422(f, "PUT", "/api/networks/1", "{\"is_vlan\":false}", MVE_FIELD_IMMUTABLE);
    expect_422(f, "PUT", "/api/networks/1", "{\"gateway\":\"fd01::1\"}", MVE_NET_GATEWAY);
    assert_int_equal(req(f, "PUT", "/api/networks/1", "{\"name\":\"v6b\"}", &out), 200);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "v6b");
    assert_string_equal(json_string_value(json_object_get(out, "cidr")), "fd00::/64");
    json_decref(out);
}

static void test_bodies_and_routes(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    static const char *malformed[] = {"",        "{",          "{\"name\":}",
                                      "nul\x01", "{\"a\":1}x", "{\"name\":\"a\",\"name\":\"b\"}",
                                      "\"str\"", "42"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        assert_int_equal(req(f, "POST", "/api/datastores", malformed[i], &out), 400);
        assert_int_equal(json_integer_value(json_object_get(out, "code")), 400);
        json_decref(out);
    }
    /* A string with an embedded NUL (\u0000) is refused by the parser. */
    assert_int_equal(req(f, "POST", "/api/networks", "{\"name\":\"a\\u0000b\"}", NULL), 400);
    struct mvctld_request rq = {.method = "PATCH", .path = "/api/datastores"};
    struct mvctld_response rs;
    mvctld_api_handle(&f->ctx, &rq, &rs);
    assert_int_equal(rs.status, 405);
    assert_string_equal(rs.allow, "GET, POST");
    json_decref(rs.body);
    assert_int_equal(req(f, "GET", "/api/nothing", NULL, NULL), 404);
    assert_int_equal(req(f, "GET", "/api", NULL, NULL), 404);
    assert_int_equal(req(f, "GET", "/api//datastores", NULL, NULL), 404);
    assert_int_equal(req(f, "GET", "/apix/datastores", NULL, NULL), 404);
    assert_int_equal(req(f, "GET", "/api/datastores/", NULL, NULL), 200);
    assert_int_equal(req(f, "GET", "/api/resource_groups/abc", NULL, NULL), 404);
    assert_int_equal(req(f, "GET", "/api/resource_groups/-1", NULL, NULL), 404);
    assert_int_equal(req(f, "GET", "/api/networks/99999999999999999999", NULL, NULL), 404);
    assert_int_equal(req(f, "GET", "/api/nodes/54424488/cores", NULL, &out), 200);
    assert_int_equal(json_array_size(out), 3);
    json_decref(out);
    rq = (struct mvctld_request){.method = "GET", .path = "/api/disks", .q_free = "maybe"};
    mvctld_api_handle(&f->ctx, &rq, &rs);
    assert_int_equal(rs.status, 400);
    json_decref(rs.body);
    rq.q_free = "false";
    mvctld_api_handle(&f->ctx, &rq, &rs);
    assert_int_equal(rs.status, 200);
    assert_int_equal(json_array_size(rs.body), 0);
    json_decref(rs.body);
}

static void test_auth(void **state)
{
    (void)state;
    char hash[crypto_pwhash_STRBYTES];
    assert_int_equal(mvctld_auth_hash_password("s3cret", hash), 0);
    struct mvctld_auth a;
    assert_int_equal(mvctld_auth_init(&a, "admin", "plaintext"), -1);
    assert_int_equal(mvctld_auth_init(&a, "admin", hash), 0);
    const char *h = "Basic YWRtaW46czNjcmV0";
    assert_false(mvctld_auth_cached(&a, h));
    assert_false(mvctld_auth_verify(&a, "Basic x", "admin", "wrong"));
    assert_false(mvctld_auth_verify(&a, "Basic y", "root", "s3cret"));
    assert_false(mvctld_auth_cached(&a, "Basic x"));
    assert_true(mvctld_auth_verify(&a, h, "admin", "s3cret"));
    assert_true(mvctld_auth_cached(&a, h));
    assert_false(mvctld_auth_cached(&a, "Basic YWRtaW46czNjcmV1"));
    mvctld_auth_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations),
        cmocka_unit_test_setup_teardown(test_inventory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_datastore_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_network_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bodies_and_routes, setup, teardown),
        cmocka_unit_test(test_auth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
