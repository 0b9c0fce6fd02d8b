/* Request bodies -> validators and the router, against an in-memory controller with a small
 * inventory. The first byte picks the endpoint; the rest is the body. Every request must get a
 * well-formed answer (a status and, for errors, D2.3's error model), and the state is reset to
 * the fixture after each input so runs stay independent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/log.h"
#include "mvctld/inventory.h"
#include "mvctld/router.h"
#include "mvctld/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mvctld_db db;
static struct mvctld_ctx ctx;
static char ds_id[32];

static const char *inventory =
    "{\"node_id\":\"54424488\",\"hostname\":\"a\",\"mac\":\"02:00:54:42:44:88\","
    "\"cpus\":[{\"cpu\":4,\"core_id\":0,\"socket_id\":0,\"numa_node\":0},"
    "{\"cpu\":5,\"core_id\":1,\"socket_id\":0,\"numa_node\":0}],"
    "\"numa_nodes\":[{\"id\":0,\"mem_total_kb\":1024,\"mem_free_kb\":512}],"
    "\"drives\":[{\"id\":\"3584916917\",\"size_bytes\":1000},"
    "{\"id\":\"3283879690\",\"size_bytes\":1000}]}";

static void init_once(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    mv_log_init("fuzz", 0); /* quiet */
    char err[256];
    if (mvctld_db_open(&db, ":memory:", err, sizeof err) != 0)
        abort();
    ctx.db = &db;
    json_t *inv = json_loads(inventory, 0, NULL);
    if (mvctld_inventory_apply(&db, inv, MVCTLD_INV_AGENT, err, sizeof err) != 0)
        abort();
    json_decref(inv);
    struct mvctld_request rq = {.method = "POST",
                                .path = "/api/datastores",
                                .body =
                                    "{\"name\":\"d\",\"disks\":[\"3584916917\"],\"replicas\":1}"};
    rq.body_len = strlen(rq.body);
    struct mvctld_response rs;
    mvctld_api_handle(&ctx, &rq, &rs);
    if (rs.status != 202)
        abort();
    snprintf(ds_id, sizeof ds_id, "%s", json_string_value(json_object_get(rs.body, "id")));
    json_decref(rs.body);
    rq.path = "/api/networks";
    rq.body = "{\"name\":\"n\"}";
    rq.body_len = strlen(rq.body);
    mvctld_api_handle(&ctx, &rq, &rs);
    json_decref(rs.body);
    rq.path = "/api/resource_groups";
    char body[256];
    snprintf(body, sizeof body,
             "{\"name\":\"g\",\"cores\":[\"54424488_4\"],\"datastores\":[\"%s\"],"
             "\"network_ids\":[1],\"cpu_overcommit\":1}",
             ds_id);
    rq.body = body;
    rq.body_len = strlen(body);
    mvctld_api_handle(&ctx, &rq, &rs);
    if (rs.status != 202)
        abort();
    json_decref(rs.body);
}

static void reset_state(void)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "DELETE FROM resource_groups WHERE id <> 1;"
             "UPDATE disks SET datastore_id = NULL WHERE datastore_id IS NOT '%s';"
             "DELETE FROM datastores WHERE id <> '%s';"
             "DELETE FROM networks WHERE id <> 1;",
             ds_id, ds_id);
    mvctld_db_lock(&db);
    mvctld_db_exec(&db, sql);
    mvctld_db_unlock(&db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size < 1)
        return 0;
    char path[128];
    static const char *const methods[] = {"POST", "PUT"};
    const char *method = methods[data[0] & 1];
    switch ((data[0] >> 1) % 6) {
    case 0:
        snprintf(path, sizeof path, method[1] == 'O' ? "/api/datastores" : "/api/datastores/%s",
                 ds_id);
        break;
    case 1:
        snprintf(path, sizeof path, "%s",
                 method[1] == 'O' ? "/api/resource_groups" : "/api/resource_groups/1");
        break;
    case 2:
        snprintf(path, sizeof path, "%s", method[1] == 'O' ? "/api/networks" : "/api/networks/1");
        break;
    case 3:
        snprintf(path, sizeof path, "/api/datastores/%s/disks", ds_id);
        method = "POST";
        break;
    case 4:
        snprintf(path, sizeof path, "/api/resource_groups/1/%s",
                 (data[0] & 0x80) ? "cores" : "networks");
        method = "POST";
        break;
    default:
        snprintf(path, sizeof path, "/api/resource_groups/1/datastores");
        method = "POST";
        break;
    }
    struct mvctld_request rq = {
        .method = method, .path = path, .body = (const char *)data + 1, .body_len = size - 1};
    struct mvctld_response rs;
    mvctld_api_handle(&ctx, &rq, &rs);
    if (rs.status < 200 || rs.status > 599)
        abort();
    if (rs.status >= 400) {
        /* Errors always follow the model: {code == status, message}. */
        if (json_integer_value(json_object_get(rs.body, "code")) != rs.status ||
            !json_is_string(json_object_get(rs.body, "message")))
            abort();
        if (rs.status == 422 && json_array_size(json_object_get(rs.body, "errors")) == 0)
            abort();
    }
    json_decref(rs.body);
    reset_state();
    return 0;
}
