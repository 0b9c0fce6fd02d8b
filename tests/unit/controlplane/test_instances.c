/* Volumes, instances, placement and the reconciler's database side (mvctld/instances.h): the
 * API through the router, placement under overcommit, pinning, NUMA and storage locality, and
 * the commands the reconciler plans from desired state and the hosts' reports (vm_list), with
 * the answers recorded. The network half runs in tests/integration/instances. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mvctld/db.h"
#include "mvctld/instances.h"
#include "mvctld/inventory.h"
#include "mvctld/router.h"

/* Host A: two NUMA nodes of two CPUs and 1 GiB each; hosts B and C: one node, two CPUs, 2 GiB.
 * Every host has one 10 GiB drive. */
static const char *hosts[] = {
    "{\"node_id\":\"0000000a\",\"hostname\":\"ha\",\"mac\":\"02:00:00:00:00:0a\","
    "\"cpus\":[{\"cpu\":0,\"core_id\":0,\"socket_id\":0,\"numa_node\":0},"
    "{\"cpu\":1,\"core_id\":1,\"socket_id\":0,\"numa_node\":0},"
    "{\"cpu\":2,\"core_id\":2,\"socket_id\":1,\"numa_node\":1},"
    "{\"cpu\":3,\"core_id\":3,\"socket_id\":1,\"numa_node\":1}],"
    "\"numa_nodes\":[{\"id\":0,\"mem_total_kb\":1048576,\"mem_free_kb\":1048576},"
    "{\"id\":1,\"mem_total_kb\":1048576,\"mem_free_kb\":1048576}],"
    "\"drives\":[{\"id\":\"da\",\"size_bytes\":10737418240,\"path\":\"/d/a.img\"}]}",
    "{\"node_id\":\"0000000b\",\"hostname\":\"hb\",\"mac\":\"02:00:00:00:00:0b\","
    "\"cpus\":[{\"cpu\":0,\"core_id\":0,\"socket_id\":0,\"numa_node\":0},"
    "{\"cpu\":1,\"core_id\":1,\"socket_id\":0,\"numa_node\":0}],"
    "\"numa_nodes\":[{\"id\":0,\"mem_total_kb\":2097152,\"mem_free_kb\":2097152}],"
    "\"drives\":[{\"id\":\"db\",\"size_bytes\":10737418240,\"path\":\"/d/b.img\"}]}",
    "{\"node_id\":\"0000000c\",\"hostname\":\"hc\",\"mac\":\"02:00:00:00:00:0c\","
    "\"cpus\":[{\"cpu\":0,\"core_id\":0,\"socket_id\":0,\"numa_node\":0},"
    "{\"cpu\":1,\"core_id\":1,\"socket_id\":0,\"numa_node\":0}],"
    "\"numa_nodes\":[{\"id\":0,\"mem_total_kb\":2097152,\"mem_free_kb\":2097152}],"
    "\"drives\":[{\"id\":\"dc\",\"size_bytes\":10737418240,\"path\":\"/d/c.img\"}]}",
};

static int kicks;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}
static void count_kick(void *user)
{
    (void)user;
    kicks++;
}
static const struct mvctld_host_ops wire_ops = {.kick = count_kick};

struct fixture {
    struct mvctld_db db;
    struct mvctld_ctx ctx;
    json_t *listed;
};

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

__attribute__((format(printf, 4, 5))) static int reqf(struct fixture *f, const char *method,
                                                      json_t **out, const char *fmt, ...)
{
    /* "PATH BODY": the first space separates them. */
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *sp = strchr(buf, ' ');
    if (sp)
        *sp++ = 0;
    return req(f, method, buf, sp, out);
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

/* Datastore "ds2" (2 replicas, disks on A and B), "dsb" (1 replica, disk on C... named by the
 * test), resource groups as the tests need them; network 1. Created without a wire (so the
 * datastores are enabled at once), then the wire ops are switched on. */
static char ds2[32], ds1[32];

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_int_equal(mvctld_db_open(&f->db, ":memory:", err, sizeof err), 0);
    f->ctx = (struct mvctld_ctx){.db = &f->db};
    for (size_t i = 0; i < 3; i++) {
        json_t *inv = json_loads(hosts[i], 0, NULL);
        assert_non_null(inv);
        if (mvctld_inventory_apply(&f->db, inv, MVCTLD_INV_AGENT, err, sizeof err) != 0)
            fail_msg("inventory: %s", err);
        json_decref(inv);
    }
    json_t *o;
    assert_int_equal(req(f, "POST", "/api/datastores",
                         "{\"name\":\"ds2\",\"disks\":[\"da\",\"db\"],\"replicas\":2}", &o),
                     202);
    snprintf(ds2, sizeof ds2, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    assert_int_equal(req(f, "POST", "/api/datastores",
                         "{\"name\":\"ds1\",\"disks\":[\"dc\"],\"replicas\":1}", &o),
                     202);
    snprintf(ds1, sizeof ds1, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    assert_int_equal(req(f, "POST", "/api/networks", "{\"name\":\"n1\",\"virtual\":true}", NULL),
                     202);
    f->ctx.host_ops = &wire_ops;
    f->listed = json_pack("{s:b, s:b, s:b}", "0000000a", 1, "0000000b", 1, "0000000c", 1);
    kicks = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    json_decref(f->listed);
    mvctld_db_close(&f->db);
    free(f);
    return 0;
}

/* A resource group over `cores` (JSON array text) with overcommit and pinning; returns its id. */
static long long group(struct fixture *f, const char *cores, int overcommit, bool pin,
                       const char *ds)
{
    json_t *o;
    int st = reqf(f, "POST", &o,
                  "/api/resource_groups {\"name\":\"g\",\"cores\":%s,\"datastores\":[\"%s\"],"
                  "\"network_ids\":[1],\"cpu_overcommit\":%d,\"is_cpu_pinning_enabled\":%s}",
                  cores, ds, overcommit, pin ? "true" : "false");
    if (st != 202)
        fail_msg("group: %d %s", st, json_dumps(o, 0));
    long long id = json_integer_value(json_object_get(o, "id"));
    json_decref(o);
    return id;
}

static json_t *plan(struct fixture *f)
{
    json_t *busy = json_object();
    json_t *cmds = mvctld_reconcile_plan(&f->db, busy, f->listed, 10000);
    json_decref(busy);
    return cmds;
}

/* The first planned command with this op (borrowed from cmds), or NULL. */
static json_t *find_op(json_t *cmds, const char *op)
{
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "op")), op) == 0)
            return c;
    }
    return NULL;
}

/* Answers every planned command of op successfully with reply (may be NULL). */
static int answer_all(struct fixture *f, const char *op, const char *reply)
{
    json_t *cmds = plan(f), *c;
    json_t *r = reply ? json_loads(reply, 0, NULL) : json_object();
    size_t i;
    int n = 0;
    json_array_foreach(cmds, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "op")), op) == 0) {
            assert_int_equal(mvctld_reconcile_done(&f->db, c, 0, r, NULL), 1);
            n++;
        }
    }
    json_decref(r);
    json_decref(cmds);
    return n;
}

static json_t *get(struct fixture *f, const char *kind, const char *ref)
{
    json_t *o;
    char path[128];
    snprintf(path, sizeof path, "/api/%s/%s", kind, ref);
    assert_int_equal(req(f, "GET", path, NULL, &o), 200);
    return o;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(null)";
}

/* ---------------------------------------------------------------- volumes */

static void test_volume_validation(void **state)
{
    struct fixture *f = *state;
    json_t *o;
    assert_int_equal(req(f, "POST", "/api/volumes", "{\"name\":\"\",\"size\":0}", &o), 422);
    assert_true(has_error_code(o, 5001));
    assert_true(has_error_code(o, 5002));
    assert_true(has_error_code(o, 5003));
    json_decref(o);
    assert_int_equal(reqf(f, "POST", &o,
                          "/api/volumes {\"name\":\"v\",\"size\":1,"
                          "\"datastore_id\":\"nope\",\"bogus\":1}"),
                     422);
    assert_true(has_error_code(o, 5003));
    assert_true(has_error_code(o, 102));
    json_decref(o);
    /* 2 replicas of 9 GiB fit (10 GiB drives, no overcommit); a second such volume does not. */
    assert_int_equal(reqf(f, "POST", NULL,
                          "/api/volumes {\"name\":\"big\",\"size\":9,\"datastore_id\":\"%s\"}",
                          ds2),
                     201);
    assert_int_equal(reqf(f, "POST", &o,
                          "/api/volumes {\"name\":\"big2\",\"size\":9,\"datastore_id\":\"%s\"}",
                          ds2),
                     422);
    assert_true(has_error_code(o, 5006));
    json_decref(o);
    assert_int_equal(reqf(f, "POST", &o,
                          "/api/volumes {\"name\":\"big\",\"size\":1,\"datastore_id\":\"%s\"}",
                          ds2),
                     422);
    assert_true(has_error_code(o, 5004));
    json_decref(o);
    assert_int_equal(req(f, "GET", "/api/volumes/nothere", NULL, &o), 404);
    json_decref(o);
}

static void test_volume_lifecycle(void **state)
{
    struct fixture *f = *state;
    json_t *o;
    assert_int_equal(reqf(f, "POST", &o,
                          "/api/volumes {\"name\":\"root\",\"size\":1,\"datastore_id\":\"%s\"}",
                          ds2),
                     201);
    assert_string_equal(str(o, "status"), "creating");
    assert_int_equal(json_array_size(json_object_get(o, "disks")), 2); /* A and B */
    assert_int_equal(json_integer_value(json_object_get(o, "size")), 1);
    json_decref(o);
    assert_true(kicks > 0);
    /* The plan: one replica_create per host, mapped at the volume's AoE address. */
    json_t *cmds = plan(f);
    assert_int_equal(json_array_size(cmds), 2);
    json_t *c = json_array_get(cmds, 0), *p = json_object_get(c, "payload");
    assert_string_equal(str(c, "op"), "replica_create");
    assert_int_equal(json_integer_value(json_object_get(c, "code")), 0x0112);
    assert_int_equal(json_integer_value(json_object_get(p, "size")), 1ll << 30);
    assert_true(json_is_true(json_object_get(p, "map")));
    assert_string_equal(str(p, "drive"), "/d/a.img");
    assert_non_null(json_object_get(p, "shelf"));
    /* A busy key is not planned again. */
    json_t *busy = json_pack("{s:b}", str(c, "key"), 1);
    json_t *again = mvctld_reconcile_plan(&f->db, busy, f->listed, 10000);
    assert_int_equal(json_array_size(again), 1);
    json_decref(again);
    json_decref(busy);
    /* One fails (mvstored's error), one succeeds: the volume is in error with the reason. */
    assert_int_equal(mvctld_reconcile_done(&f->db, json_array_get(cmds, 0), -EREMOTEIO, NULL,
                                           "mvstored: no space"),
                     1);
    assert_int_equal(mvctld_reconcile_done(&f->db, json_array_get(cmds, 1), 0, NULL, NULL), 1);
    /* A late duplicate answer changes nothing. */
    assert_int_equal(mvctld_reconcile_done(&f->db, json_array_get(cmds, 1), 0, NULL, NULL), 0);
    json_decref(cmds);
    o = get(f, "volumes", "root");
    assert_string_equal(str(o, "status"), "error");
    assert_string_equal(str(o, "error"), "mvstored: no space");
    json_decref(o);
    /* Delete: both replicas deleted on their hosts, then the volume is gone. */
    assert_int_equal(req(f, "DELETE", "/api/volumes/root", NULL, NULL), 202);
    o = get(f, "volumes", "root");
    assert_string_equal(str(o, "status"), "deleting");
    json_decref(o);
    cmds = plan(f);
    assert_int_equal(json_array_size(cmds), 2);
    assert_string_equal(str(json_array_get(cmds, 0), "op"), "replica_delete");
    /* "no replica here" (the failed create never made one) counts as deleted. */
    mvctld_reconcile_done(&f->db, json_array_get(cmds, 0), -EREMOTEIO, NULL,
                          "mvstored: no replica of vdisk x here");
    mvctld_reconcile_done(&f->db, json_array_get(cmds, 1), 0, NULL, NULL);
    json_decref(cmds);
    assert_int_equal(req(f, "GET", "/api/volumes/root", NULL, NULL), 404);
}

static void test_volume_resize_clone(void **state)
{
    struct fixture *f = *state;
    json_t *o;
    assert_int_equal(reqf(f, "POST", NULL,
                          "/api/volumes {\"name\":\"v1\",\"size\":1,\"datastore_id\":\"%s\"}", ds1),
                     201);
    /* Not ready: cloning or resizing waits. */
    assert_int_equal(req(f, "PUT", "/api/volumes/v1/clone", "{\"name\":\"v2\"}", &o), 422);
    assert_true(has_error_code(o, 5009));
    json_decref(o);
    assert_int_equal(answer_all(f, "replica_create", NULL), 1);
    o = get(f, "volumes", "v1");
    assert_string_equal(str(o, "status"), "available");
    json_decref(o);
    assert_int_equal(req(f, "PUT", "/api/volumes/v1", "{\"size\":0}", &o), 422);
    assert_true(has_error_code(o, 5002));
    json_decref(o);
    assert_int_equal(req(f, "PUT", "/api/volumes/v1", "{\"size\":3}", &o), 200);
    assert_int_equal(json_integer_value(json_object_get(o, "size")), 3);
    json_decref(o);
    json_t *cmds = plan(f);
    json_t *c = find_op(cmds, "replica_resize");
    assert_non_null(c);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "payload"), "size")),
                     3ll << 30);
    json_decref(cmds);
    assert_int_equal(answer_all(f, "replica_resize", NULL), 1);
    assert_int_equal(req(f, "PUT", "/api/volumes/v1", "{\"size\":2}", &o), 422);
    assert_true(has_error_code(o, 5008));
    json_decref(o);
    assert_int_equal(req(f, "PUT", "/api/volumes/v1/clone", "{\"name\":\"v2\"}", &o), 201);
    assert_int_equal(json_integer_value(json_object_get(o, "size")), 3);
    assert_string_equal(str(o, "cloned_from"), "v1");
    json_decref(o);
}

/* ---------------------------------------------------------------- placement */

#define INST_BODY                                                                                  \
    "/api/instances {\"name\":\"%s\",\"resource_group_id\":%lld,\"vcpus\":%d,\"ram\":%d,"          \
    "\"payload\":\"/g/blk.elf\"%s}"

static int create(struct fixture *f, json_t **out, const char *name, long long rg, int vcpus,
                  int ram, const char *extra)
{
    return reqf(f, "POST", out, INST_BODY, name, rg, vcpus, ram, extra);
}

/* Creates instance "vm" (1 vCPU, 64 MB) in rg and copies its uuid: how every reconciler test
 * starts. */
static void create_vm(struct fixture *f, long long rg, const char *extra, char uuid[40])
{
    json_t *o;
    assert_int_equal(create(f, &o, "vm", rg, 1, 64, extra), 201);
    snprintf(uuid, 40, "%s", str(o, "uuid"));
    json_decref(o);
}

static void test_place_overcommit(void **state)
{
    struct fixture *f = *state;
    long long rg = group(f, "[\"0000000b_0\",\"0000000b_1\"]", 2, false, ds2);
    json_t *o;
    assert_int_equal(create(f, &o, "vm1", rg, 3, 64, ""), 201);
    assert_string_equal(str(o, "node"), "0000000b");
    assert_string_equal(str(o, "cpuset"), "0-1");
    assert_string_equal(str(o, "state"), "BUILD");
    json_decref(o);
    /* 2 cores x cpu_overcommit 2 = 4 vCPUs: 3 + 2 is over. */
    assert_int_equal(create(f, &o, "vm2", rg, 2, 64, ""), 422);
    assert_true(has_error_code(o, 6020));
    char *text = json_dumps(o, 0);
    assert_non_null(strstr(text, "at most 1 free"));
    free(text);
    json_decref(o);
    assert_int_equal(create(f, NULL, "vm3", rg, 1, 64, ""), 201);
    /* Memory: 2 GiB on B, 128 MB used. */
    json_t *e;
    assert_int_equal(req(f, "PUT", "/api/resource_groups/1", "{\"cpu_overcommit\":8}", NULL), 200);
    assert_int_equal(create(f, &e, "vm4", rg, 1, 4096, ""), 422);
    assert_true(has_error_code(e, 6021));
    json_decref(e);
    /* Deleting frees the capacity only once the host confirmed (here: planned and answered). */
    assert_int_equal(req(f, "DELETE", "/api/instances/vm1", NULL, NULL), 202);
    assert_int_equal(req(f, "PUT", "/api/resource_groups/1", "{\"cpu_overcommit\":2}", NULL), 200);
    assert_int_equal(create(f, NULL, "vm5", rg, 2, 64, ""), 422);
    assert_int_equal(answer_all(f, "forget", NULL) + answer_all(f, "vm_delete", NULL), 1);
    assert_int_equal(create(f, NULL, "vm5", rg, 2, 64, ""), 201);
}

static void test_place_pinning(void **state)
{
    struct fixture *f = *state;
    long long rg =
        group(f, "[\"0000000a_0\",\"0000000a_1\",\"0000000a_2\",\"0000000a_3\"]", 1, true, ds2);
    json_t *o;
    assert_int_equal(create(f, &o, "p1", rg, 2, 64, ""), 201);
    assert_string_equal(str(o, "pin"), "0,1");
    assert_string_equal(str(o, "cpuset"), "0-1");
    assert_int_equal(json_integer_value(json_object_get(o, "numa_node")), 0);
    json_decref(o);
    assert_int_equal(create(f, &o, "p2", rg, 1, 64, ""), 201);
    assert_string_equal(str(o, "pin"), "2"); /* node 0 is full: the other node */
    json_decref(o);
    assert_int_equal(create(f, &o, "p3", rg, 2, 64, ""), 422);
    assert_true(has_error_code(o, 6022));
    json_decref(o);
    assert_int_equal(create(f, &o, "p4", rg, 1, 64, ""), 201);
    assert_string_equal(str(o, "pin"), "3");
    json_decref(o);
    /* The vm_start carries cpuset and pin. */
    json_t *cmds = plan(f);
    json_t *c = find_op(cmds, "vm_start");
    assert_non_null(c);
    assert_string_equal(str(json_object_get(c, "payload"), "pin"), "0,1");
    assert_string_equal(str(json_object_get(c, "payload"), "cpuset"), "0-1");
    json_decref(cmds);
}

static void test_place_numa(void **state)
{
    struct fixture *f = *state;
    long long rg =
        group(f, "[\"0000000a_0\",\"0000000a_1\",\"0000000a_2\",\"0000000a_3\"]", 1, false, ds2);
    json_t *o;
    /* 4 vCPUs do not fit one node of 2 cores: a vNUMA layout over both. */
    assert_int_equal(create(f, &o, "wide", rg, 4, 512, ""), 201);
    assert_string_equal(str(o, "vnuma"), "nodes=2,cpus=0-1:2-3,pnodes=0:1");
    assert_string_equal(str(o, "cpuset"), "0-3");
    assert_true(json_is_null(json_object_get(o, "numa_node")));
    json_decref(o);
    assert_int_equal(req(f, "DELETE", "/api/instances/wide", NULL, NULL), 202);
    answer_all(f, "forget", NULL);
    answer_all(f, "vm_delete", NULL);
    /* 2 vCPUs and 900 MB fit one node; 1500 MB does not (1 GiB per node): spread. */
    assert_int_equal(create(f, &o, "n1", rg, 2, 900, ""), 201);
    assert_int_equal(json_integer_value(json_object_get(o, "numa_node")), 0);
    assert_false(json_object_get(o, "vnuma"));
    json_decref(o);
    assert_int_equal(create(f, &o, "n2", rg, 2, 1500, ""), 422); /* 124 + 1024 MB left */
    assert_true(has_error_code(o, 6021));
    json_decref(o);
    assert_int_equal(create(f, &o, "n3", rg, 2, 900, ""), 201);
    assert_int_equal(json_integer_value(json_object_get(o, "numa_node")), 1);
    json_decref(o);
}

static void test_place_storage_locality(void **state)
{
    struct fixture *f = *state;
    /* Group over B and C; the volume's only replica is on C (ds1). */
    json_t *o;
    assert_int_equal(reqf(f, "POST", NULL,
                          "/api/resource_groups {\"name\":\"g\",\"cores\":"
                          "[\"0000000b_0\",\"0000000c_0\"],\"datastores\":[\"%s\","
                          "\"%s\"],\"network_ids\":[1],\"cpu_overcommit\":1}",
                          ds1, ds2),
                     202);
    assert_int_equal(reqf(f, "POST", NULL,
                          "/api/volumes {\"name\":\"r\",\"size\":1,\"datastore_id\":\"%s\"}", ds1),
                     201);
    assert_int_equal(reqf(f, "POST", NULL,
                          "/api/volumes {\"name\":\"r2\",\"size\":1,\"datastore_id\":\"%s\"}", ds1),
                     201);
    answer_all(f, "replica_create", NULL);
    assert_int_equal(create(f, &o, "local", 1, 1, 64, ",\"volumes\":[{\"name\":\"r\"}]"), 201);
    assert_string_equal(str(o, "node"), "0000000c");
    assert_string_equal(str(o, "is_storage_latency_optimized"), "fully");
    json_t *v = json_array_get(json_object_get(o, "volumes"), 0);
    assert_string_equal(str(v, "status"), "in-use");
    json_decref(o);
    /* The volume is taken now. */
    assert_int_equal(create(f, &o, "again", 1, 1, 64, ",\"volumes\":[{\"name\":\"r\"}]"), 422);
    assert_true(has_error_code(o, 6009));
    json_decref(o);
    /* Asked for B explicitly: its disk is served by C, over the network. */
    assert_int_equal(create(f, &o, "remote", 1, 1, 64,
                            ",\"node_id\":\"0000000b\",\"volumes\":[{\"name\":\"r2\"}],"
                            "\"networks\":[{\"network_id\":1}]"),
                     201);
    assert_string_equal(str(o, "node"), "0000000b");
    assert_string_equal(str(o, "is_storage_latency_optimized"), "none");
    const char *mac = str(json_array_get(json_object_get(o, "networks"), 0), "mac");
    assert_int_equal(strncmp(mac, "52:54:00:", 9), 0);
    json_decref(o);
    json_t *cmds = plan(f);
    size_t i;
    json_t *c;
    int starts = 0;
    json_array_foreach(cmds, i, c)
    {
        if (strcmp(str(c, "op"), "vm_start") != 0)
            continue;
        starts++;
        json_t *p = json_object_get(c, "payload");
        json_t *d = json_array_get(json_object_get(p, "disks"), 0);
        if (strcmp(str(c, "node"), "0000000b") == 0) {
            assert_string_equal(str(d, "target"), "02:00:00:00:00:0c");
            assert_int_equal(json_array_size(json_object_get(p, "nics")), 1);
            assert_int_equal(json_integer_value(json_object_get(
                                 json_array_get(json_object_get(p, "nics"), 0), "network_id")),
                             1);
        } else {
            assert_string_equal(str(d, "target"), "local");
        }
        assert_string_equal(str(p, "payload"), "/g/blk.elf");
        assert_int_equal(json_integer_value(json_object_get(p, "mem_mb")), 64);
    }
    assert_int_equal(starts, 2);
    json_decref(cmds);
    /* Wrong group for the node / unknown node / a network not in the group. */
    assert_int_equal(create(f, &o, "x", 1, 1, 64, ",\"node_id\":\"0000000a\""), 422);
    assert_true(has_error_code(o, 6013));
    json_decref(o);
    assert_int_equal(create(f, &o, "x", 1, 1, 64, ",\"networks\":[{\"network_id\":7}]"), 422);
    assert_true(has_error_code(o, 6011));
    json_decref(o);
}

static void test_instance_validation(void **state)
{
    struct fixture *f = *state;
    json_t *o;
    assert_int_equal(req(f, "POST", "/api/instances",
                         "{\"name\":\"\",\"vcpus\":0,\"ram\":-1,"
                         "\"resource_group_id\":99}",
                         &o),
                     422);
    assert_true(has_error_code(o, 6001));
    assert_true(has_error_code(o, 6004));
    assert_true(has_error_code(o, 6005));
    assert_true(has_error_code(o, 6006));
    assert_true(has_error_code(o, 6003));
    json_decref(o);
    long long rg = group(f, "[\"0000000b_0\"]", 1, false, ds2);
    assert_int_equal(reqf(f, "POST", &o,
                          "/api/instances {\"name\":\"a\",\"resource_group_id\":%lld,\"vcpus\":1,"
                          "\"ram\":64,\"payload\":\"rel/path\",\"kernel\":\"/k\"}",
                          rg),
                     422);
    assert_true(has_error_code(o, 6006));
    assert_true(has_error_code(o, 6007));
    json_decref(o);
    assert_int_equal(create(f, NULL, "a", rg, 1, 64, ""), 201);
    assert_int_equal(create(f, &o, "a", rg, 1, 64, ""), 422);
    assert_true(has_error_code(o, 6002));
    json_decref(o);
    assert_int_equal(req(f, "PUT", "/api/instances/a/action", "{\"action\":\"fly\"}", &o), 422);
    assert_true(has_error_code(o, 6030));
    json_decref(o);
    assert_int_equal(req(f, "PUT", "/api/instances/a/action", "{\"action\":\"reboot\"}", &o),
                     422); /* not running yet */
    assert_true(has_error_code(o, 6031));
    json_decref(o);
    assert_int_equal(req(f, "PUT", "/api/instances/a/action", "{\"action\":\"migrate\"}", &o), 422);
    assert_true(has_error_code(o, 6031));
    json_decref(o);
    assert_int_equal(req(f, "PUT", "/api/instances/zz/action", "{\"action\":\"stop\"}", NULL), 404);
}

/* ---------------------------------------------------------------- reconciler */

static json_t *vm_list(const char *uuid, const char *state)
{
    return json_pack("{s:[{s:s, s:s, s:i, s:i, s:i}]}", "vms", "uuid", uuid, "state", state, "pid",
                     4242, "num_cpu", 1, "max_mem_kb", 65536);
}

static void test_reconcile_lifecycle(void **state)
{
    struct fixture *f = *state;
    long long rg = group(f, "[\"0000000b_0\",\"0000000b_1\",\"0000000c_0\"]", 1, false, ds2);
    json_t *o;
    assert_int_equal(create(f, &o, "vm", rg, 1, 64, ",\"node_id\":\"0000000b\""), 201);
    char uuid[40];
    snprintf(uuid, sizeof uuid, "%s", str(o, "uuid"));
    assert_string_equal(str(o, "task_state"), "SPAWNING");
    json_decref(o);
    /* Not every host has listed its VMs: nothing starts (it might run elsewhere). */
    json_object_del(f->listed, "0000000c");
    json_t *cmds = plan(f);
    assert_null(find_op(cmds, "vm_start"));
    json_decref(cmds);
    json_object_set_new(f->listed, "0000000c", json_true());
    cmds = plan(f);
    json_t *c = find_op(cmds, "vm_start");
    assert_non_null(c);
    assert_string_equal(str(c, "node"), "0000000b");
    assert_string_equal(str(json_object_get(c, "payload"), "uuid"), uuid);
    /* A failed start: ERROR with the agent's reason, and no retry loop. */
    assert_int_equal(mvctld_reconcile_done(&f->db, c, -EIO, NULL, "mvvmm exited"), 1);
    json_decref(cmds);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "ERROR");
    assert_string_equal(str(o, "error"), "mvvmm exited");
    json_decref(o);
    cmds = plan(f);
    assert_null(find_op(cmds, "vm_start"));
    json_decref(cmds);
    /* The start action clears it... as soon as the host reports it stopped. */
    json_t *l = json_pack("{s:[]}", "vms");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, now_ns(), NULL), 0);
    json_decref(l);
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action", "{\"action\":\"start\"}", NULL),
                     202);
    assert_int_equal(answer_all(f, "vm_start", "{\"state\":\"ACTIVE\",\"pid\":99}"), 1);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "ACTIVE");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), 99);
    assert_true(json_is_null(json_object_get(o, "task_state")));
    json_decref(o);
    cmds = plan(f);
    assert_int_equal(json_array_size(cmds), 0); /* converged */
    json_decref(cmds);
    /* pause -> vm_pause; the state follows the answer. */
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action", "{\"action\":\"pause\"}", &o), 202);
    assert_string_equal(str(o, "task_state"), "PAUSING");
    assert_string_equal(str(o, "state"), "ACTIVE");
    json_decref(o);
    assert_int_equal(answer_all(f, "vm_pause", "{\"state\":\"PAUSED\"}"), 1);
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action", "{\"action\":\"unpause\"}", NULL),
                     202);
    assert_int_equal(answer_all(f, "vm_unpause", "{\"state\":\"ACTIVE\"}"), 1);
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action", "{\"action\":\"reboot\"}", NULL),
                     202);
    assert_int_equal(answer_all(f, "vm_reboot", NULL), 1);
    cmds = plan(f);
    assert_int_equal(json_array_size(cmds), 0); /* a reboot is done once */
    json_decref(cmds);
    /* The VMM vanished (killed): the host's list says so, and the reconciler starts it again. */
    l = json_pack("{s:[]}", "vms");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, now_ns(), NULL), 1);
    json_decref(l);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "STOPPED");
    json_decref(o);
    assert_int_equal(answer_all(f, "vm_start", "{\"state\":\"ACTIVE\",\"pid\":100}"), 1);
    /* stop -> vm_stop -> STOPPED, and it stays stopped. */
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action", "{\"action\":\"stop\"}", &o), 202);
    assert_string_equal(str(o, "task_state"), "POWERING-OFF");
    json_decref(o);
    assert_int_equal(answer_all(f, "vm_stop", "{\"state\":\"STOPPED\"}"), 1);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "STOPPED");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), 0);
    json_decref(o);
    cmds = plan(f);
    assert_int_equal(json_array_size(cmds), 0);
    json_decref(cmds);
    /* The info endpoint follows the reports. */
    assert_int_equal(req(f, "GET", "/api/instances/vm/info", NULL, &o), 200);
    assert_int_equal(json_integer_value(json_object_get(o, "state")), 5);
    json_decref(o);
}

static void test_reconcile_adopt_and_guest_poweroff(void **state)
{
    struct fixture *f = *state;
    long long rg = group(f, "[\"0000000b_0\",\"0000000c_0\"]", 1, false, ds2);
    json_t *o;
    char uuid[40];
    create_vm(f, rg, ",\"node_id\":\"0000000b\"", uuid);
    /* C reports it running (the controller lost track): adopted there, never started on B. */
    json_t *l = vm_list(uuid, "ACTIVE");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000c", l, now_ns(), NULL), 1);
    json_decref(l);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "node"), "0000000c");
    assert_string_equal(str(o, "state"), "ACTIVE");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), 4242);
    json_decref(o);
    json_t *cmds = plan(f);
    assert_int_equal(json_array_size(cmds), 0);
    json_decref(cmds);
    /* B's empty list does not touch it (it runs on C). */
    l = json_pack("{s:[]}", "vms");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, now_ns(), NULL), 0);
    json_decref(l);
    /* The guest powers off (a clean STOPPED): it is not started again. */
    l = vm_list(uuid, "STOPPED");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000c", l, now_ns(), NULL), 1);
    json_decref(l);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "STOPPED");
    assert_string_equal(str(o, "desired_state"), "stopped");
    json_decref(o);
    cmds = plan(f);
    assert_int_equal(json_array_size(cmds), 0);
    json_decref(cmds);
}

static void test_reconcile_migrate_delete(void **state)
{
    struct fixture *f = *state;
    long long rg = group(f, "[\"0000000b_0\",\"0000000c_0\"]", 1, false, ds2);
    assert_int_equal(reqf(f, "POST", NULL,
                          "/api/volumes {\"name\":\"r\",\"size\":1,\"datastore_id\":\"%s\"}", ds2),
                     201);
    answer_all(f, "replica_create", NULL);
    json_t *o;
    assert_int_equal(create(f, &o, "vm", rg, 1, 64,
                            ",\"node_id\":\"0000000b\",\"volumes\":[{\"name\":\"r\","
                            "\"delete_on_termination\":true}]"),
                     201);
    json_decref(o);
    assert_int_equal(answer_all(f, "vm_start", "{\"state\":\"ACTIVE\",\"pid\":7}"), 1);
    /* Migrate to B (where it is): refused; to C: stop on B, delete there, move, start on C. */
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action",
                         "{\"action\":\"migrate\",\"node_id\":\"0000000b\"}", &o),
                     422);
    json_decref(o);
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action",
                         "{\"action\":\"migrate\",\"node_id\":\"0000000c\",\"restart_after\":true}",
                         &o),
                     202);
    assert_string_equal(str(o, "task_state"), "MIGRATING");
    json_decref(o);
    /* Actions wait while it migrates. */
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action", "{\"action\":\"stop\"}", NULL), 422);
    json_t *cmds = plan(f);
    json_t *c = find_op(cmds, "vm_stop");
    assert_non_null(c);
    assert_string_equal(str(c, "node"), "0000000b");
    mvctld_reconcile_done(&f->db, c, 0, NULL, NULL);
    json_decref(cmds);
    cmds = plan(f);
    c = find_op(cmds, "vm_delete");
    assert_non_null(c);
    assert_string_equal(str(c, "node"), "0000000b");
    mvctld_reconcile_done(&f->db, c, 0, NULL, NULL);
    json_decref(cmds);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "node"), "0000000c");
    assert_string_equal(str(o, "desired_state"), "running");
    assert_false(json_object_get(o, "migrate_to"));
    json_decref(o);
    cmds = plan(f);
    c = find_op(cmds, "vm_start");
    assert_non_null(c);
    assert_string_equal(str(c, "node"), "0000000c");
    /* Its volume has a replica on C (ds2 spans A and B... and C holds none): served remotely. */
    json_t *active = json_pack("{s:s}", "state", "ACTIVE");
    mvctld_reconcile_done(&f->db, c, 0, active, NULL);
    json_decref(active);
    json_decref(cmds);
    /* Delete: vm_delete where it runs, then the record and its delete_on_termination volume. */
    assert_int_equal(req(f, "DELETE", "/api/instances/vm", NULL, NULL), 202);
    cmds = plan(f);
    c = find_op(cmds, "vm_delete");
    assert_non_null(c);
    assert_string_equal(str(c, "node"), "0000000c");
    assert_int_equal(mvctld_reconcile_done(&f->db, c, -ENOENT, NULL, "no such VM"), 1);
    json_decref(cmds);
    assert_int_equal(req(f, "GET", "/api/instances/vm", NULL, NULL), 404);
    o = get(f, "volumes", "r");
    assert_string_equal(str(o, "status"), "deleting");
    json_decref(o);
    assert_int_equal(answer_all(f, "replica_delete", NULL), 2);
    assert_int_equal(req(f, "GET", "/api/volumes/r", NULL, NULL), 404);
}

static void test_reconcile_stale_list(void **state)
{
    struct fixture *f = *state;
    long long rg = group(f, "[\"0000000b_0\"]", 1, false, ds2);
    json_t *o;
    char uuid[40];
    create_vm(f, rg, "", uuid);
    long long asked = now_ns(); /* a vm_list asked before the start was answered */
    assert_int_equal(answer_all(f, "vm_start", "{\"state\":\"ACTIVE\",\"pid\":5}"), 1);
    json_t *l = json_pack("{s:[]}", "vms");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, asked, NULL), 0);
    json_decref(l);
    l = vm_list(uuid, "STOPPED");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, asked, NULL), 0);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "ACTIVE");
    assert_string_equal(str(o, "desired_state"), "running");
    json_decref(o);
    /* Nor while a command for it is in flight. */
    json_t *busy = json_pack("{s:b}", "i1", 1);
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, now_ns(), busy), 0);
    json_decref(busy);
    /* A list asked later counts. */
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, now_ns(), NULL), 1);
    json_decref(l);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "STOPPED");
    json_decref(o);
}

/* vm_stop answered while the guest still shuts down; a start meanwhile waits for the VMM to go,
 * then starts it again (and is not mistaken for the guest powering itself off). */
static void test_reconcile_stop_then_start(void **state)
{
    struct fixture *f = *state;
    long long rg = group(f, "[\"0000000b_0\"]", 1, false, ds2);
    json_t *o;
    char uuid[40];
    create_vm(f, rg, "", uuid);
    assert_int_equal(answer_all(f, "vm_start", "{\"state\":\"ACTIVE\",\"pid\":5}"), 1);
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action", "{\"action\":\"stop\"}", NULL), 202);
    assert_int_equal(answer_all(f, "vm_stop", "{\"state\":\"POWERING-OFF\"}"), 1);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "POWERING-OFF");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), 5);
    json_decref(o);
    json_t *cmds = plan(f);
    assert_int_equal(json_array_size(cmds), 0); /* no second vm_stop */
    json_decref(cmds);
    assert_int_equal(req(f, "PUT", "/api/instances/vm/action", "{\"action\":\"start\"}", NULL),
                     202);
    cmds = plan(f);
    assert_null(find_op(cmds, "vm_start")); /* its VMM still exists */
    json_decref(cmds);
    json_t *l = vm_list(uuid, "STOPPED");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, now_ns(), NULL), 1);
    json_decref(l);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "desired_state"), "running");
    json_decref(o);
    assert_int_equal(answer_all(f, "vm_start", "{\"state\":\"ACTIVE\",\"pid\":6}"), 1);
}

static void test_reconcile_malformed(void **state)
{
    struct fixture *f = *state;
    long long rg = group(f, "[\"0000000b_0\"]", 1, false, ds2);
    json_t *o;
    char uuid[40];
    create_vm(f, rg, "", uuid);
    const char *bad[] = {
        "{}",
        "[1]",
        "{\"vms\":{}}",
        "{\"vms\":[{\"state\":\"ACTIVE\"}]}",
        "{\"vms\":[{\"uuid\":7,\"state\":\"ACTIVE\"}]}",
        "{\"vms\":[{\"uuid\":\"\",\"state\":\"x\"}]}",
        "{\"vms\":[{\"uuid\":\"u\",\"state\":\"ACTIVE\"},{\"uuid\":\"v\"}]}",
        "{\"vms\":[{\"uuid\":\"u\",\"state\":\"0123456789012345678901234567890123456789\"}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        assert_non_null(j);
        assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", j, now_ns(), NULL), -1);
        json_decref(j);
    }
    /* An unknown VM is left alone; an unknown state reads as ERROR. */
    json_t *l = vm_list("not-ours", "ACTIVE");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, now_ns(), NULL), 0);
    json_decref(l);
    l = vm_list(uuid, "WEIRD");
    assert_int_equal(mvctld_reconcile_vm_list(&f->db, "0000000b", l, now_ns(), NULL), 1);
    json_decref(l);
    o = get(f, "instances", "vm");
    assert_string_equal(str(o, "state"), "ERROR");
    json_decref(o);
}

static void test_cpulist(void **state)
{
    (void)state;
    int cpus[16];
    assert_int_equal(mvctld_cpulist_parse("0-3,8,10-11", cpus, 16), 7);
    assert_int_equal(cpus[4], 8);
    assert_int_equal(mvctld_cpulist_parse("3-1", cpus, 16), -1);
    assert_int_equal(mvctld_cpulist_parse("a", cpus, 16), -1);
    assert_int_equal(mvctld_cpulist_parse("0-20", cpus, 16), -1);
    assert_int_equal(mvctld_cpulist_parse("", cpus, 16), 0);
    char out[64];
    int in[] = {5, 1, 2, 3, 9};
    mvctld_cpulist_format(in, 5, out, sizeof out);
    assert_string_equal(out, "1-3,5,9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpulist),
        cmocka_unit_test_setup_teardown(test_volume_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_resize_clone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_overcommit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_pinning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_numa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place_storage_locality, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_adopt_and_guest_poweroff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_migrate_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_stale_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_stop_then_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_malformed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
