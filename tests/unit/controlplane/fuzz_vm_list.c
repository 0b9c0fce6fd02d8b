/* The reconciler's inputs from the hosts: byte 0 even -> the rest is a vm_list answer of node
 * 0000000b (a malformed one must change nothing); odd -> the answer to one planned command
 * (byte 1 picks it, byte 2 the status: 0 or a negative errno, the rest is the reply object).
 * Nothing may crash or leak, and the plan must stay computable. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "mv/log.h"
#include "mvctld/instances.h"
#include "mvctld/inventory.h"
#include "mvctld/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mvctld_db db;
static struct mvctld_ctx ctx;
static json_t *listed;

static void kick_nothing(void *u)
{
}
static const struct mvctld_host_ops ops = {.kick = kick_nothing};

static json_t *call(const char *method, const char *path, const char *body, int want)
{
    struct mvctld_request rq = {
        .method = method, .path = path, .body = body, .body_len = body ? strlen(body) : 0};
    struct mvctld_response rs;
    mvctld_api_handle(&ctx, &rq, &rs);
    if (want && rs.status != want)
        abort();
    return rs.body;
}

static void init(void)
{
    char err[256];
    mv_log_set_level(LOG_CRIT);
    if (mvctld_db_open(&db, ":memory:", err, sizeof err) != 0)
        abort();
    ctx = (struct mvctld_ctx){.db = &db};
    json_t *inv = json_loads("{\"node_id\":\"0000000b\",\"mac\":\"02:00:00:00:00:0b\",\"cpus\":["
                             "{\"cpu\":0},{\"cpu\":1}],\"numa_nodes\":[{\"id\":0,\"mem_total_kb\":"
                             "1048576,\"mem_free_kb\":1048576}],\"drives\":[{\"id\":\"1001\","
                             "\"size_bytes\":10737418240,\"path\":\"/d/1\"}]}",
                             0, NULL);
    if (mvctld_inventory_apply(&db, inv, MVCTLD_INV_AGENT, err, sizeof err) != 0)
        abort();
    json_decref(inv);
    json_t *ds = call("POST", "/api/datastores",
                      "{\"name\":\"f\",\"disks\":[\"1001\"],\"replicas\":1}", 202);
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"g\",\"cores\":[\"0000000b_0\",\"0000000b_1\"],\"datastores\":[\"%s\"],"
             "\"network_ids\":[1],\"cpu_overcommit\":2}",
             json_string_value(json_object_get(ds, "id")));
    json_decref(call("POST", "/api/networks", "{\"name\":\"n\"}", 202));
    json_decref(call("POST", "/api/resource_groups", body, 202));
    ctx.host_ops = &ops;
    snprintf(body, sizeof body, "{\"name\":\"v\",\"size\":1,\"datastore_id\":\"%s\"}",
             json_string_value(json_object_get(ds, "id")));
    json_decref(call("POST", "/api/volumes", body, 201));
    json_decref(ds);
    json_decref(call("POST", "/api/instances",
                     "{\"name\":\"a\",\"resource_group_id\":1,\"vcpus\":1,\"ram\":64,\"payload\":"
                     "\"/g\",\"volumes\":[{\"name\":\"v\"}],\"networks\":[{\"network_id\":1}]}",
                     201));
    json_decref(call("POST", "/api/instances",
                     "{\"name\":\"b\",\"resource_group_id\":1,\"vcpus\":1,\"ram\":64,\"payload\":"
                     "\"/g\"}",
                     201));
    listed = json_pack("{s:b}", "0000000b", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    if (size < 3)
        return 0;
    json_t *busy = json_object();
    if (data[0] % 2 == 0) {
        json_t *ans = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
        /* Every commit bumps the generation: a rejected answer must not have written. */
        uint64_t before = db.generation;
        int rc = mvctld_reconcile_vm_list(&db, "0000000b", ans, LLONG_MAX, busy);
        if (rc < 0 && db.generation != before)
            abort();
        json_decref(ans);
    } else {
        json_t *cmds = mvctld_reconcile_plan(&db, busy, listed, 1000);
        size_t n = json_array_size(cmds);
        if (n > 0) {
            json_t *c = json_array_get(cmds, data[1] % n);
            int status = data[2] < 128 ? 0 : -(int)(data[2] - 127);
            json_t *reply = json_loadb((const char *)data + 3, size - 3, JSON_DECODE_ANY, NULL);
            char err[64];
            snprintf(err, sizeof err, "%.*s", (int)(size - 3 < 40 ? size - 3 : 40),
                     (const char *)data + 3);
            if (mvctld_reconcile_done(&db, c, status, reply, err) < 0)
                abort();
            json_decref(reply);
        }
        json_decref(cmds);
    }
    json_decref(busy);
    json_decref(mvctld_reconcile_plan(&db, NULL, listed, 1000));
    return 0;
}
