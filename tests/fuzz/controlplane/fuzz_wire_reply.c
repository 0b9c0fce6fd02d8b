/* mvctld wire layer: what agents send back. Byte 0 picks the input: even -> a drive_format answer
 * (byte 1 = channel status 0 or a negative errno), odd -> an inventory, applied and reconciled
 * against a database with a datastore whose drives wait for their format. Neither may crash,
 * leak, or (for a rejected inventory) change the database. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "mv/log.h"
#include "mvctld/inventory.h"
#include "mvctld/router.h"
#include "mvctld/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mvctld_db db;
static struct mvctld_ctx ctx;

static int queue_nothing(void *u, const char *n, const json_t *d, const json_t *i)
{
    return 0;
}
static const struct mvctld_host_ops ops = {.format_drives = queue_nothing};

static void init(void)
{
    char err[256];
    mv_log_set_level(LOG_CRIT);
    if (mvctld_db_open(&db, ":memory:", err, sizeof err) != 0)
        abort();
    ctx = (struct mvctld_ctx){.db = &db, .host_ops = &ops};
    json_t *inv = json_loads("{\"node_id\":\"761d0001\",\"cpus\":[{\"cpu\":0}],\"drives\":["
                             "{\"id\":\"1001\",\"size_bytes\":1000000,\"path\":\"/d/1\"},"
                             "{\"id\":\"1002\",\"size_bytes\":1000000,\"path\":\"/d/2\"}]}",
                             0, NULL);
    if (mvctld_inventory_apply(&db, inv, MVCTLD_INV_AGENT, err, sizeof err) != 0)
        abort();
    json_decref(inv);
    const char *body = "{\"name\":\"f\",\"disks\":[\"1001\",\"1002\"],\"replicas\":1}";
    struct mvctld_request rq = {
        .method = "POST", .path = "/api/datastores", .body = body, .body_len = strlen(body)};
    struct mvctld_response rs;
    mvctld_api_handle(&ctx, &rq, &rs);
    if (rs.status != 202)
        abort();
    json_decref(rs.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    if (size < 2)
        return 0;
    char err[512];
    if (data[0] % 2 == 0) {
        struct mvctld_drive_result r;
        int32_t status = -(int32_t)(data[1] % 128);
        int rc = mvctld_wire_parse_format_reply(status, data + 2, size - 2, &r, err, sizeof err);
        if (rc == 0 && (r.capacity < 0 || r.used < 0 || r.used > r.capacity))
            abort();
        return 0;
    }
    json_t *inv = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!inv)
        return 0;
    const char *node = json_string_value(json_object_get(inv, "node_id"));
    if (mvctld_inventory_apply(&db, inv, MVCTLD_INV_AGENT, err, sizeof err) == 0 && node) {
        json_t *cmds = mvctld_wire_reconcile(&db, node, inv);
        size_t i;
        json_t *c;
        json_array_foreach(cmds, i, c)
        {
            json_t *p = mvctld_wire_request_payload(c);
            json_decref(p);
        }
        json_decref(cmds);
    }
    json_decref(inv);
    return 0;
}
