#include "mvctld/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/log.h"
#include "mv/util.h"
#include "mvctld/errors.h"
#include "mvctld/validate.h"
#include "sql.h"

#define DS_ID_LEN 14 /* like D2.3's example "fjxi3vnzg4hm9y" */

json_t *mvctld_not_found(const char *what, const char *id)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s with id %.120s does not exist.", what, id);
    return mvctld_error_body(404, msg, NULL);
}

int mvctld_fail_422(struct mvctld_errors *e, json_t **out)
{
    *out = mvctld_error_body(422, "Validation failed", e);
    mvctld_errors_free(e);
    return 422;
}

int mvctld_fail_500(struct mvctld_ctx *c, json_t **out)
{
    mvctld_db_rollback(c->db);
    *out = mvctld_error_body(500, "The database operation failed.", NULL);
    return 500;
}

json_t *mvctld_first_row(json_t *rows)
{
    json_t *row = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return row;
}

/* A JSON array of the first column of every row. */
static json_t *column_array(struct mvctld_db *db, sqlite3_stmt *st, bool integers)
{
    json_t *a = json_array();
    if (!st)
        return a;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (integers)
            json_array_append_new(a, json_integer(sqlite3_column_int64(st, 0)));
        else
            json_array_append_new(a, json_string(mvctld_sql_col_text(st, 0)));
    }
    sqlite3_finalize(st);
    (void)db;
    return a;
}

/* ---------------------------------------------------------------- disks, cores, nodes (read) */

#define DISK_COLS                                                                                  \
    "d.id, d.node_id, d.total, d.vendor, d.model, d.serial_number, d.datastore_id, d.state, "      \
    "d.present, d.used, n.state, d.format_state"
#define DISK_FROM " FROM disks d JOIN nodes n ON n.id = d.node_id "

static json_t *disk_row(sqlite3_stmt *st)
{
    bool present = sqlite3_column_int(st, 8);
    const char *state = mvctld_sql_col_text(st, 7);
    bool node_up = strcmp(mvctld_sql_col_text(st, 10), "online") == 0;
    /* A drive is not usable while the hosts format it or after its format failed. */
    const char *fmt = mvctld_sql_col_text(st, 11);
    bool formatted = strcmp(fmt, "pending") != 0 && strcmp(fmt, "failed") != 0;
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:f, s:I, s:s, s:s, s:s, s:b, s:s, s:b}", "id",
                  mvctld_sql_col_text(st, 0), "mvgroup_id", mvctld_sql_col_text(st, 1), "node_id",
                  mvctld_sql_col_text(st, 1), "used", sqlite3_column_double(st, 9), "total",
                  (json_int_t)sqlite3_column_int64(st, 2), "vendor", mvctld_sql_col_text(st, 3),
                  "model", mvctld_sql_col_text(st, 4), "serial_number", mvctld_sql_col_text(st, 5),
                  "is_up", present && node_up && formatted && strcmp(state, "enabled") == 0,
                  "state", state, "present", present);
    if (sqlite3_column_type(st, 6) == SQLITE_NULL)
        json_object_set_new(d, "datastore", json_null());
    else
        json_object_set_new(d, "datastore", json_string(mvctld_sql_col_text(st, 6)));
    return d;
}

static json_t *disk_rows(sqlite3_stmt *st)
{
    json_t *a = json_array();
    if (!st)
        return a;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(a, disk_row(st));
    sqlite3_finalize(st);
    return a;
}

int mvctld_disk_list(struct mvctld_ctx *c, const struct mvctld_list_filter *f, json_t **out)
{
    *out = disk_rows(mvctld_sql_query(c->db,
                                      "SELECT " DISK_COLS DISK_FROM
                                      "WHERE (?1 IS NULL OR d.node_id = ?1) AND (?2 < 0 OR "
                                      "(d.datastore_id IS NULL) = ?2) ORDER BY d.node_id, d.id",
                                      "si", f ? f->node_id : NULL, f ? f->free : -1));
    return 200;
}

int mvctld_disk_get(struct mvctld_ctx *c, const char *id, json_t **out)
{
    json_t *a =
        disk_rows(mvctld_sql_query(c->db, "SELECT " DISK_COLS DISK_FROM "WHERE d.id = ?", "s", id));
    if (json_array_size(a) == 0) {
        json_decref(a);
        *out = mvctld_not_found("Disk", id);
        return 404;
    }
    *out = mvctld_first_row(a);
    return 200;
}

static json_t *core_rows(sqlite3_stmt *st)
{
    json_t *a = json_array();
    if (!st)
        return a;
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *core =
            json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:b, s:b}", "id", mvctld_sql_col_text(st, 0),
                      "node_id", mvctld_sql_col_text(st, 1), "cpu", sqlite3_column_int(st, 2),
                      "core_id", sqlite3_column_int(st, 3), "socket_id", sqlite3_column_int(st, 4),
                      "numa_node", sqlite3_column_int(st, 5), "online", sqlite3_column_int(st, 6),
                      "present", sqlite3_column_int(st, 7));
        json_object_set_new(core, "resource_group_id",
                            sqlite3_column_type(st, 8) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int64(st, 8)));
        json_array_append_new(a, core);
    }
    sqlite3_finalize(st);
    return a;
}

#define CORE_SELECT                                                                                \
    "SELECT c.id, c.node_id, c.cpu, c.core_id, c.socket_id, c.numa_node, c.online, c.present, "    \
    "r.rg_id FROM cores c LEFT JOIN rg_cores r ON r.core_id = c.id "

int mvctld_core_list(struct mvctld_ctx *c, const struct mvctld_list_filter *f, json_t **out)
{
    *out = core_rows(mvctld_sql_query(c->db,
                                      CORE_SELECT "WHERE (?1 IS NULL OR c.node_id = ?1) AND "
                                                  "(?2 < 0 OR (r.rg_id IS NULL) = ?2) "
                                                  "ORDER BY c.node_id, c.cpu",
                                      "si", f ? f->node_id : NULL, f ? f->free : -1));
    return 200;
}

int mvctld_core_get(struct mvctld_ctx *c, const char *id, json_t **out)
{
    json_t *a = core_rows(mvctld_sql_query(c->db, CORE_SELECT "WHERE c.id = ?", "s", id));
    if (json_array_size(a) == 0) {
        json_decref(a);
        *out = mvctld_not_found("Core", id);
        return 404;
    }
    *out = mvctld_first_row(a);
    return 200;
}

static json_t *numa_of(struct mvctld_db *db, const char *node_id)
{
    json_t *a = json_array();
    sqlite3_stmt *st = mvctld_sql_query(
        db,
        "SELECT numa_id, mem_total_kb, mem_free_kb FROM numa_nodes WHERE node_id = ? "
        "ORDER BY numa_id",
        "s", node_id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        int numa = sqlite3_column_int(st, 0);
        json_t *cores = column_array(
            db,
            mvctld_sql_query(db,
                             "SELECT id FROM cores WHERE node_id = ? AND numa_node = ? "
                             "AND present ORDER BY cpu",
                             "si", node_id, numa),
            false);
        json_array_append_new(
            a, json_pack("{s:i, s:I, s:I, s:o}", "id", numa, "memory_mb",
                         (json_int_t)(sqlite3_column_int64(st, 1) / 1024), "free_memory_mb",
                         (json_int_t)(sqlite3_column_int64(st, 2) / 1024), "cores", cores));
    }
    sqlite3_finalize(st);
    return a;
}

static json_t *node_rows(struct mvctld_db *db, sqlite3_stmt *st)
{
    json_t *a = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *id = mvctld_sql_col_text(st, 0);
        json_t *n =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:I, s:I, s:I, s:I, s:I}", "id",
                      id, "hostname", mvctld_sql_col_text(st, 1), "mac", mvctld_sql_col_text(st, 2),
                      "state", mvctld_sql_col_text(st, 6), "source", mvctld_sql_col_text(st, 7),
                      "labels", "blade", mvctld_sql_col_text(st, 3), "chassis",
                      mvctld_sql_col_text(st, 4), "rack", mvctld_sql_col_text(st, 5), "memory_mb",
                      (json_int_t)(sqlite3_column_int64(st, 8) / 1024), "free_memory_mb",
                      (json_int_t)(sqlite3_column_int64(st, 9) / 1024), "last_seen",
                      (json_int_t)sqlite3_column_int64(st, 10), "core_count",
                      (json_int_t)mvctld_sql_int(
                          db, 0, "SELECT count(*) FROM cores WHERE node_id = ?", "s", id),
                      "disk_count",
                      (json_int_t)mvctld_sql_int(
                          db, 0, "SELECT count(*) FROM disks WHERE node_id = ?", "s", id));
        json_object_set_new(n, "numa_nodes", numa_of(db, id));
        json_array_append_new(a, n);
    }
    sqlite3_finalize(st);
    return a;
}

#define NODE_SELECT                                                                                \
    "SELECT id, hostname, mac, blade, chassis, rack, state, source, mem_total_kb, "                \
    "mem_free_kb, last_seen FROM nodes "

int mvctld_node_list(struct mvctld_ctx *c, json_t **out)
{
    *out = node_rows(c->db, mvctld_sql_query(c->db, NODE_SELECT "ORDER BY id", NULL));
    return 200;
}

int mvctld_node_get(struct mvctld_ctx *c, const char *id, json_t **out)
{
    json_t *a = node_rows(c->db, mvctld_sql_query(c->db, NODE_SELECT "WHERE id = ?", "s", id));
    if (json_array_size(a) == 0) {
        json_decref(a);
        *out = mvctld_not_found("Node", id);
        return 404;
    }
    *out = mvctld_first_row(a);
    return 200;
}

int mvctld_node_numa(struct mvctld_ctx *c, const char *id, json_t **out)
{
    if (!mvctld_sql_int(c->db, 0, "SELECT count(*) FROM nodes WHERE id = ?", "s", id)) {
        *out = mvctld_not_found("Node", id);
        return 404;
    }
    *out = numa_of(c->db, id);
    return 200;
}

int mvctld_node_delete(struct mvctld_ctx *c, const char *id, json_t **out)
{
    char *state = NULL;
    /* A static node has no agent to report liveness: the operator may forget it any time. */
    sqlite3_stmt *st = mvctld_sql_query(
        c->db,
        "SELECT CASE WHEN source = 'static' THEN 'offline' ELSE state END FROM nodes "
        "WHERE id = ?",
        "s", id);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        state = strdup(mvctld_sql_col_text(st, 0));
    sqlite3_finalize(st);
    if (!state) {
        *out = mvctld_not_found("Node", id);
        return 404;
    }
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (strcmp(state, "online") == 0)
        mvctld_errors_add(&e, MVE_NODE_ONLINE, "id", "The node is online.",
                          "Only an offline node can be forgotten.");
    free(state);
    if (mvctld_sql_int(c->db, 0,
                       "SELECT (SELECT count(*) FROM cores c JOIN rg_cores r ON r.core_id = c.id "
                       "WHERE c.node_id = ?1) + (SELECT count(*) FROM disks WHERE node_id = ?1 "
                       "AND datastore_id IS NOT NULL)",
                       "s", id))
        mvctld_errors_add(&e, MVE_NODE_IN_USE, "id",
                          "The node's cores or disks are in use by resource groups or "
                          "datastores.",
                          NULL);
    if (mvctld_errors_count(&e))
        return mvctld_fail_422(&e, out);
    mvctld_errors_free(&e);
    if (mvctld_sql_run(c->db, "DELETE FROM nodes WHERE id = ?", "s", id) != 0)
        return mvctld_fail_500(c, out);
    mvctld_db_touch(c->db);
    *out = NULL;
    return 204;
}

/* ---------------------------------------------------------------- datastores */

/* Bytes a disk gives its datastore: what the host reported after formatting it, else its raw
 * size (before the format answer, and without a wire layer). */
#define DISK_USABLE                                                                                \
    "CASE WHEN format_state = 'done' AND capacity IS NOT NULL THEN capacity ELSE total END"

/* The state a datastore shows: formatting while a format command is outstanding, error (with
 * the host's reason) when one failed, else what the administrator set (enabled/disabled).
 * Sets *reason (malloc'd) for the first two. */
static const char *datastore_state(struct mvctld_db *db, const char *id, const char *admin,
                                   char **reason)
{
    *reason = NULL;
    if (mvctld_sql_int(db, 0,
                       "SELECT count(*) FROM disks WHERE datastore_id = ? AND "
                       "format_state = 'pending'",
                       "s", id)) {
        *reason = strdup("The hosts are formatting the datastore's drives.");
        return "formatting";
    }
    sqlite3_stmt *st = mvctld_sql_query(db,
                                        "SELECT id, node_id, format_error FROM disks WHERE "
                                        "datastore_id = ? AND format_state = 'failed' ORDER BY id",
                                        "s", id);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        char buf[512];
        snprintf(buf, sizeof buf, "Disk %s on node %s: %s", mvctld_sql_col_text(st, 0),
                 mvctld_sql_col_text(st, 1), mvctld_sql_col_text(st, 2));
        *reason = strdup(buf);
        sqlite3_finalize(st);
        return "error";
    }
    sqlite3_finalize(st);
    return admin;
}

#define DS_SELECT                                                                                  \
    "SELECT id, name, description, replicas, overcommit_disk, is_thin, has_db_metadata, "          \
    "repair_trigger, repair_period_sec, num_of_repairs, state, reserved, used, orphan_vdisks "     \
    "FROM datastores "

static json_t *datastore_rows(struct mvctld_db *db, sqlite3_stmt *st)
{
    json_t *a = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *id = mvctld_sql_col_text(st, 0);
        json_int_t replicas = sqlite3_column_int64(st, 3);
        json_int_t raw = mvctld_sql_int(db, 0,
                                        "SELECT sum(" DISK_USABLE ") FROM disks "
                                        "WHERE datastore_id = ?",
                                        "s", id);
        json_int_t total = replicas > 0 ? raw / replicas : 0;
        json_int_t used = sqlite3_column_int64(st, 12);
        json_t *policy = json_pack("{s:s}", "trigger", mvctld_sql_col_text(st, 7));
        json_object_set_new(policy, "period_seconds",
                            sqlite3_column_type(st, 8) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int64(st, 8)));
        json_object_set_new(policy, "num_of_repairs",
                            sqlite3_column_type(st, 9) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int64(st, 9)));
        char *reason;
        const char *state = datastore_state(db, id, mvctld_sql_col_text(st, 10), &reason);
        json_t *ds = json_pack(
            "{s:s, s:s, s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:s, s:o, s:b, s:b}", "id", id,
            "name", mvctld_sql_col_text(st, 1), "description", mvctld_sql_col_text(st, 2),
            "replicas", replicas, "overcommit_disk", mvctld_sql_col_text(st, 4), "reserved",
            sqlite3_column_int(st, 11), "total", total, "used", used, "orphan_vdisks",
            (json_int_t)sqlite3_column_int64(st, 13), "available", total > used ? total - used : 0,
            "state", state, "repair_volume_policy", policy, "has_db_metadata",
            sqlite3_column_int(st, 6), "is_thin", sqlite3_column_int(st, 5));
        /* Only in the wire layer's states, so objects in D2.3's states keep D2.3's shape. */
        if (reason)
            json_object_set_new(ds, "state_reason", json_string(reason));
        free(reason);
        json_object_set_new(ds, "disks",
                            disk_rows(mvctld_sql_query(db,
                                                       "SELECT " DISK_COLS DISK_FROM
                                                       "WHERE d.datastore_id = ? ORDER BY d.id",
                                                       "s", id)));
        json_object_set_new(ds, "resource_group_ids",
                            column_array(db,
                                         mvctld_sql_query(db,
                                                          "SELECT rg_id FROM rg_datastores WHERE "
                                                          "datastore_id = ? ORDER BY rg_id",
                                                          "s", id),
                                         true));
        json_array_append_new(a, ds);
    }
    sqlite3_finalize(st);
    return a;
}

static json_t *datastore_load(struct mvctld_db *db, const char *id)
{
    return mvctld_first_row(
        datastore_rows(db, mvctld_sql_query(db, DS_SELECT "WHERE id = ?", "s", id)));
}

int mvctld_datastore_list(struct mvctld_ctx *c, json_t **out)
{
    *out =
        datastore_rows(c->db, mvctld_sql_query(c->db, DS_SELECT "ORDER BY created_at, id", NULL));
    return 200;
}

int mvctld_datastore_get(struct mvctld_ctx *c, const char *id, json_t **out)
{
    json_t *ds = datastore_load(c->db, id);
    if (!ds) {
        *out = mvctld_not_found("Datastore", id);
        return 404;
    }
    *out = ds;
    return 200;
}

/* The datastore in its request-body form (what a create with the same values would send). */
static json_t *datastore_as_body(const json_t *ds)
{
    json_t *disks = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(ds, "disks"), i, d)
    {
        json_array_append(disks, json_object_get(d, "id"));
    }
    return json_pack(
        "{s:O, s:O, s:o, s:O, s:O, s:O, s:O, s:O}", "name", json_object_get(ds, "name"),
        "description", json_object_get(ds, "description"), "disks", disks, "overcommit_disk",
        json_object_get(ds, "overcommit_disk"), "replicas", json_object_get(ds, "replicas"),
        "repair_volume_policy", json_object_get(ds, "repair_volume_policy"), "has_db_metadata",
        json_object_get(ds, "has_db_metadata"), "is_thin", json_object_get(ds, "is_thin"));
}

/* Disk ids that do not exist (1008) or belong to another datastore (1009). */
static void check_disks_free(struct mvctld_db *db, const json_t *disks, const char *self_id,
                             const char *field, struct mvctld_errors *e)
{
    size_t i;
    json_t *d;
    json_array_foreach(disks, i, d)
    {
        const char *id = json_string_value(d);
        char path[64], detail[200];
        snprintf(path, sizeof path, "%s[%zu]", field, i);
        if (!id)
            continue;
        sqlite3_stmt *st = mvctld_sql_query(
            db, "SELECT datastore_id FROM disks WHERE id = ? AND present", "s", id);
        int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
        if (rc != SQLITE_ROW) {
            snprintf(detail, sizeof detail, "No disk has the id '%.100s'.", id);
            mvctld_errors_add(e, MVE_DS_DISKS_UNKNOWN, path,
                              "The array of disks contains non-existent IDs.", detail);
        } else if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
                   (!self_id || strcmp(mvctld_sql_col_text(st, 0), self_id) != 0)) {
            snprintf(detail, sizeof detail, "Disk '%.60s' belongs to datastore '%.60s'.", id,
                     mvctld_sql_col_text(st, 0));
            mvctld_errors_add(e, MVE_DS_DISK_IN_USE, path,
                              "The disk already belongs to another datastore.", detail);
        }
        sqlite3_finalize(st);
    }
}

static void check_datastore_name_free(struct mvctld_db *db, const char *name, const char *self_id,
                                      struct mvctld_errors *e)
{
    if (name &&
        mvctld_sql_int(db, 0, "SELECT count(*) FROM datastores WHERE name = ? AND id IS NOT ?",
                       "ss", name, self_id))
        mvctld_errors_add(e, MVE_DS_NAME_TAKEN, "name", "Another datastore has this name.", NULL);
}

/* Calls fn for each node holding some of `disk_ids`, with that node's share of them. */
static void for_each_node_of(struct mvctld_ctx *c, const json_t *disk_ids,
                             void (*fn)(struct mvctld_ctx *, const char *node, const json_t *ids,
                                        void *),
                             void *arg)
{
    json_t *by_node = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(disk_ids, i, d)
    {
        sqlite3_stmt *st = mvctld_sql_query(c->db, "SELECT node_id FROM disks WHERE id = ?", "s",
                                            json_string_value(d));
        if (st && sqlite3_step(st) == SQLITE_ROW) {
            const char *node = mvctld_sql_col_text(st, 0);
            json_t *list = json_object_get(by_node, node);
            if (!list) {
                list = json_array();
                json_object_set_new(by_node, node, list);
            }
            json_array_append(list, d);
        }
        sqlite3_finalize(st);
    }
    const char *node;
    json_t *ids;
    json_object_foreach(by_node, node, ids)
    {
        fn(c, node, ids, arg);
    }
    json_decref(by_node);
}

static void mark_disks_error(struct mvctld_ctx *c, const json_t *ids)
{
    size_t i;
    json_t *d;
    json_array_foreach(ids, i, d)
    {
        mvctld_sql_run(c->db,
                       "UPDATE disks SET state = 'error', format_state = 'failed', "
                       "format_error = 'The controller could not send the format command.' "
                       "WHERE id = ?",
                       "s", json_string_value(d));
    }
    mvctld_db_touch(c->db);
}

static void send_format(struct mvctld_ctx *c, const char *node, const json_t *ids, void *arg)
{
    if (!c->host_ops || !c->host_ops->format_drives)
        return;
    int rc = c->host_ops->format_drives(c->host_ops_ctx, node, arg, ids);
    if (rc != 0) {
        mv_warn("cannot send format command to node %s: %s", node, strerror(-rc));
        mark_disks_error(c, ids);
    }
}

static void send_release(struct mvctld_ctx *c, const char *node, const json_t *ids, void *arg)
{
    if (c->host_ops && c->host_ops->release_drives &&
        c->host_ops->release_drives(c->host_ops_ctx, node, arg, ids) != 0)
        mv_warn("cannot send release command to node %s", node);
}

static void send_update(struct mvctld_ctx *c, const char *node, const json_t *ids, void *arg)
{
    if (c->host_ops && c->host_ops->update_datastore &&
        c->host_ops->update_datastore(c->host_ops_ctx, node, arg) != 0)
        mv_warn("cannot send datastore update to node %s", node);
}

static void new_datastore_id(struct mvctld_db *db, char out[DS_ID_LEN + 1])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    do {
        for (int i = 0; i < DS_ID_LEN; i++)
            out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
        out[DS_ID_LEN] = 0;
    } while (mvctld_sql_int(db, 0, "SELECT count(*) FROM datastores WHERE id = ?", "s", out));
}

/* Writes body (validated, request form) as datastore id. */
static int datastore_write(struct mvctld_ctx *c, const char *id, const json_t *body, bool insert,
                           const char *state)
{
    const json_t *rp = json_object_get(body, "repair_volume_policy");
    const char *trigger = json_string_value(json_object_get(rp, "trigger"));
    json_t *period = json_object_get(rp, "period_seconds");
    json_t *num = json_object_get(rp, "num_of_repairs");
    const char *oc = json_string_value(json_object_get(body, "overcommit_disk"));
    const char *desc = json_string_value(json_object_get(body, "description"));
    int rc;
    if (insert)
        rc = mvctld_sql_run(
            c->db,
            "INSERT INTO datastores (id, name, description, replicas, overcommit_disk, is_thin, "
            "has_db_metadata, repair_trigger, repair_period_sec, num_of_repairs, state, "
            "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
            "CASE WHEN ?9 < 0 THEN NULL ELSE ?9 END, CASE WHEN ?10 < 0 THEN NULL ELSE ?10 END, "
            "?11, ?12)",
            "sssIsbbsIIsI", id, json_string_value(json_object_get(body, "name")), desc ? desc : "",
            (long long)json_integer_value(json_object_get(body, "replicas")), oc ? oc : "0",
            json_is_true(json_object_get(body, "is_thin")),
            json_is_true(json_object_get(body, "has_db_metadata")), trigger ? trigger : "manual",
            json_is_integer(period) ? (long long)json_integer_value(period) : -1LL,
            json_is_integer(num) ? (long long)json_integer_value(num) : -1LL, state,
            (long long)mv_realtime_ns());
    else
        rc = mvctld_sql_run(
            c->db,
            "UPDATE datastores SET name = ?2, description = ?3, overcommit_disk = ?4, "
            "has_db_metadata = ?5, repair_trigger = ?6, "
            "repair_period_sec = CASE WHEN ?7 < 0 THEN NULL ELSE ?7 END, "
            "num_of_repairs = CASE WHEN ?8 < 0 THEN NULL ELSE ?8 END, state = ?9 WHERE id = ?1",
            "ssssbsIIs", id, json_string_value(json_object_get(body, "name")), desc ? desc : "",
            oc ? oc : "0", json_is_true(json_object_get(body, "has_db_metadata")),
            trigger ? trigger : "manual",
            json_is_integer(period) ? (long long)json_integer_value(period) : -1LL,
            json_is_integer(num) ? (long long)json_integer_value(num) : -1LL, state);
    return rc;
}

/* A disk leaving its datastore forgets the format outcome (a failed one no longer matters). */
#define DISK_RESET                                                                                 \
    "format_state = '', format_error = '', "                                                       \
    "state = CASE WHEN state = 'error' AND present THEN 'enabled' ELSE state END"

static bool have_wire(const struct mvctld_ctx *c)
{
    return c->host_ops && c->host_ops->format_drives;
}

/* With a wire layer each new disk waits for its host's format answer (format_state). */
static int assign_disks(struct mvctld_ctx *c, const char *id, const json_t *disks)
{
    size_t i;
    json_t *d;
    json_array_foreach(disks, i, d)
    {
        if (mvctld_sql_run(c->db,
                           "UPDATE disks SET datastore_id = ?1, state = 'enabled', "
                           "format_state = CASE WHEN ?3 THEN 'pending' ELSE '' END, "
                           "format_error = '' WHERE id = ?2",
                           "ssb", id, json_string_value(d), have_wire(c)) != 0)
            return -1;
    }
    return 0;
}

/* Drives can only be formatted on nodes whose agent is up (refused up front, 1019). */
static void check_disks_reachable(struct mvctld_ctx *c, const json_t *disks, const char *field,
                                  struct mvctld_errors *e)
{
    if (!have_wire(c))
        return;
    size_t i;
    json_t *d;
    json_array_foreach(disks, i, d)
    {
        sqlite3_stmt *st = mvctld_sql_query(c->db,
                                            "SELECT n.id, n.state, n.source, d.path FROM disks d "
                                            "JOIN nodes n ON n.id = d.node_id WHERE d.id = ?",
                                            "s", json_string_value(d));
        if (st && sqlite3_step(st) == SQLITE_ROW) {
            const char *why = NULL;
            if (strcmp(mvctld_sql_col_text(st, 2), "agent") != 0)
                why = "has no agent (static inventory)";
            else if (strcmp(mvctld_sql_col_text(st, 1), "online") != 0)
                why = "is offline";
            else if (!mvctld_sql_col_text(st, 3)[0])
                why = "did not report the drive's path";
            if (why) {
                char path[64], detail[200];
                snprintf(path, sizeof path, "%s[%zu]", field, i);
                snprintf(detail, sizeof detail, "Node %.40s %s.", mvctld_sql_col_text(st, 0), why);
                mvctld_errors_add(e, MVE_DS_DISK_UNREACHABLE, path,
                                  "The disk's node cannot format it now.", detail);
            }
        }
        sqlite3_finalize(st);
    }
}

int mvctld_datastore_create(struct mvctld_ctx *c, const json_t *body, json_t **out)
{
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (mvctld_validate_datastore(body, MVCTLD_BODY_CREATE, &e) > 0)
        return mvctld_fail_422(&e, out);
    const json_t *disks = json_object_get(body, "disks");
    check_disks_free(c->db, disks, NULL, "disks", &e);
    check_datastore_name_free(c->db, json_string_value(json_object_get(body, "name")), NULL, &e);
    if (!mvctld_errors_count(&e))
        check_disks_reachable(c, disks, "disks", &e);
    if (mvctld_errors_count(&e))
        return mvctld_fail_422(&e, out);
    mvctld_errors_free(&e);

    json_t *full = json_deep_copy(body);
    if (!json_object_get(full, "is_thin"))
        json_object_set_new(full, "is_thin", json_true()); /* D2.3: all data is thin by default */
    char id[DS_ID_LEN + 1];
    new_datastore_id(c->db, id);
    if (mvctld_db_begin(c->db) != 0 || datastore_write(c, id, full, true, "enabled") != 0 ||
        assign_disks(c, id, disks) != 0 || mvctld_db_commit(c->db) != 0) {
        json_decref(full);
        return mvctld_fail_500(c, out);
    }
    json_decref(full);
    json_t *ds = datastore_load(c->db, id);
    for_each_node_of(c, disks, send_format, ds);
    json_decref(ds);
    *out = datastore_load(c->db, id); /* again: a failed command marks drives 'error' */
    mv_info("datastore %s created", id);
    return 202;
}

int mvctld_datastore_edit(struct mvctld_ctx *c, const char *id, const json_t *body, json_t **out)
{
    json_t *ds = datastore_load(c->db, id);
    if (!ds) {
        *out = mvctld_not_found("Datastore", id);
        return 404;
    }
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (mvctld_validate_datastore(body, MVCTLD_BODY_EDIT, &e) > 0) {
        json_decref(ds);
        return mvctld_fail_422(&e, out);
    }
    json_t *merged = datastore_as_body(ds);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "repair_volume_policy") == 0)
            json_object_update(json_object_get(merged, key), v);
        else if (strcmp(key, "state") != 0)
            json_object_set(merged, key, v);
    }
    const char *state = json_string_value(json_object_get(body, "state"));
    const char *shown = json_string_value(json_object_get(ds, "state"));
    if (state && (strcmp(shown, "formatting") == 0 || strcmp(shown, "error") == 0))
        mvctld_errors_add(&e, MVE_DS_BUSY, "state",
                          "The state cannot change while the drives are formatted or after "
                          "their format failed.",
                          "Wait for the format, or remove the failed disks.");
    /* The stored (administrative) state, not the one derived from the format commands. */
    char *state_copy = state ? strdup(state) : NULL;
    if (!state_copy) {
        sqlite3_stmt *st =
            mvctld_sql_query(c->db, "SELECT state FROM datastores WHERE id = ?", "s", id);
        state_copy =
            strdup(st && sqlite3_step(st) == SQLITE_ROW ? mvctld_sql_col_text(st, 0) : "enabled");
        sqlite3_finalize(st);
    }
    mvctld_validate_datastore(merged, MVCTLD_BODY_CREATE, &e);
    check_datastore_name_free(c->db, json_string_value(json_object_get(merged, "name")), id, &e);
    if (mvctld_errors_count(&e)) {
        json_decref(ds);
        json_decref(merged);
        free(state_copy);
        return mvctld_fail_422(&e, out);
    }
    mvctld_errors_free(&e);
    int rc = datastore_write(c, id, merged, false, state_copy);
    free(state_copy);
    json_decref(merged);
    if (rc != 0) {
        json_decref(ds);
        return mvctld_fail_500(c, out);
    }
    mvctld_db_touch(c->db);
    json_decref(ds);
    ds = datastore_load(c->db, id);
    json_t *ids = json_array();
    size_t i;
    json_array_foreach(json_object_get(ds, "disks"), i, v)
    {
        json_array_append(ids, json_object_get(v, "id"));
    }
    for_each_node_of(c, ids, send_update, ds);
    json_decref(ids);
    *out = ds;
    return 200;
}

int mvctld_datastore_delete(struct mvctld_ctx *c, const char *id, json_t **out)
{
    json_t *ds = datastore_load(c->db, id);
    if (!ds) {
        *out = mvctld_not_found("Datastore", id);
        return 404;
    }
    if (json_array_size(json_object_get(ds, "resource_group_ids")) > 0) {
        struct mvctld_errors e;
        mvctld_errors_init(&e);
        mvctld_errors_add(&e, MVE_DS_IN_USE, "id", "The datastore is assigned to resource groups.",
                          "Remove it from resource_group_ids first.");
        json_decref(ds);
        return mvctld_fail_422(&e, out);
    }
    json_t *ids = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(ds, "disks"), i, v)
    {
        json_array_append(ids, json_object_get(v, "id"));
    }
    json_decref(ds);
    if (mvctld_db_begin(c->db) != 0 ||
        mvctld_sql_run(c->db,
                       "UPDATE disks SET datastore_id = NULL, used = 0, " DISK_RESET
                       " WHERE datastore_id = ?",
                       "s", id) != 0 ||
        mvctld_sql_run(c->db, "DELETE FROM datastores WHERE id = ?", "s", id) != 0 ||
        mvctld_db_commit(c->db) != 0) {
        json_decref(ids);
        return mvctld_fail_500(c, out);
    }
    for_each_node_of(c, ids, send_release, (void *)id);
    json_decref(ids);
    mv_info("datastore %s deleted", id);
    *out = NULL;
    return 202;
}

int mvctld_datastore_add_disks(struct mvctld_ctx *c, const char *id, const json_t *body,
                               json_t **out)
{
    json_t *ds = datastore_load(c->db, id);
    if (!ds) {
        *out = mvctld_not_found("Datastore", id);
        return 404;
    }
    json_decref(ds);
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (mvctld_validate_id_list(body, "disks", false, &e) > 0)
        return mvctld_fail_422(&e, out);
    const json_t *disks = json_object_get(body, "disks");
    check_disks_free(c->db, disks, NULL, "disks", &e);
    if (!mvctld_errors_count(&e))
        check_disks_reachable(c, disks, "disks", &e);
    if (mvctld_errors_count(&e))
        return mvctld_fail_422(&e, out);
    mvctld_errors_free(&e);
    if (mvctld_db_begin(c->db) != 0 || assign_disks(c, id, disks) != 0 ||
        mvctld_db_commit(c->db) != 0)
        return mvctld_fail_500(c, out);
    ds = datastore_load(c->db, id);
    for_each_node_of(c, disks, send_format, ds);
    json_decref(ds);
    *out = datastore_load(c->db, id);
    return 200;
}

int mvctld_datastore_remove_disk(struct mvctld_ctx *c, const char *id, const char *disk_id,
                                 json_t **out)
{
    json_t *ds = datastore_load(c->db, id);
    if (!ds) {
        *out = mvctld_not_found("Datastore", id);
        return 404;
    }
    long long replicas = json_integer_value(json_object_get(ds, "replicas"));
    size_t ndisks = json_array_size(json_object_get(ds, "disks"));
    json_decref(ds);
    if (!mvctld_sql_int(c->db, 0, "SELECT count(*) FROM disks WHERE id = ? AND datastore_id = ?",
                        "ss", disk_id, id)) {
        *out = mvctld_not_found("Disk of this datastore", disk_id);
        return 404;
    }
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (ndisks <= 1)
        mvctld_errors_add(&e, MVE_DS_DISKS_EMPTY, "disks", "The array of disks is empty.",
                          "A datastore keeps at least one disk.");
    else if ((long long)ndisks - 1 < replicas)
        mvctld_errors_add(&e, MVE_DS_REPLICAS_OVER_DISKS, "disks",
                          "The replicas cannot be more than the disks.",
                          "Removing the disk would leave fewer disks than replicas.");
    if (mvctld_errors_count(&e))
        return mvctld_fail_422(&e, out);
    mvctld_errors_free(&e);
    if (mvctld_sql_run(
            c->db, "UPDATE disks SET datastore_id = NULL, used = 0, " DISK_RESET " WHERE id = ?",
            "s", disk_id) != 0)
        return mvctld_fail_500(c, out);
    mvctld_db_touch(c->db);
    json_t *ids = json_pack("[s]", disk_id);
    for_each_node_of(c, ids, send_release, (void *)id);
    json_decref(ids);
    *out = datastore_load(c->db, id);
    return 200;
}

/* ---------------------------------------------------------------- resource groups */

#define RG_SELECT                                                                                  \
    "SELECT id, name, description, cpu_overcommit, is_cpu_pinning_enabled, "                       \
    "is_storage_latency_optimized, ft_enabled, ft_unit, ft_max_failures, "                         \
    "ft_automated_failover, ft_is_degraded, is_reserved FROM resource_groups "

static json_t *group_rows(struct mvctld_db *db, sqlite3_stmt *st)
{
    json_t *a = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        json_t *cores = column_array(
            db,
            mvctld_sql_query(db, "SELECT core_id FROM rg_cores WHERE rg_id = ? ORDER BY core_id",
                             "I", id),
            false);
        json_int_t mem_total = mvctld_sql_int(
            db, 0,
            "SELECT sum(mem_total_kb) FROM numa_nodes WHERE (node_id, numa_id) IN "
            "(SELECT c.node_id, c.numa_node FROM cores c JOIN rg_cores r ON r.core_id = c.id "
            "WHERE r.rg_id = ?)",
            "I", id);
        json_int_t mem_free = mvctld_sql_int(
            db, 0,
            "SELECT sum(mem_free_kb) FROM numa_nodes WHERE (node_id, numa_id) IN "
            "(SELECT c.node_id, c.numa_node FROM cores c JOIN rg_cores r ON r.core_id = c.id "
            "WHERE r.rg_id = ?)",
            "I", id);
        /* Usable capacity of each datastore: raw bytes over replicas. */
        json_int_t storage = mvctld_sql_int(
            db, 0,
            "SELECT sum(cap) FROM (SELECT (SELECT coalesce(sum(" DISK_USABLE "), 0) FROM disks "
            "WHERE datastore_id = ds.id) / ds.replicas AS cap FROM datastores ds "
            "JOIN rg_datastores r ON r.datastore_id = ds.id WHERE r.rg_id = ?)",
            "I", id);
        json_int_t used = mvctld_sql_int(db, 0,
                                         "SELECT sum(ds.used) FROM datastores ds JOIN "
                                         "rg_datastores r ON r.datastore_id = ds.id "
                                         "WHERE r.rg_id = ?",
                                         "I", id);
        json_t *g = json_pack(
            "{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:i, s:I, s:f, s:i, s:I, s:I, s:I, s:I, s:b, "
            "s:b, s:b, s:{s:b, s:s, s:i, s:b, s:b}}",
            "id", (json_int_t)id, "name", mvctld_sql_col_text(st, 1), "description",
            mvctld_sql_col_text(st, 2), "datastores",
            column_array(db,
                         mvctld_sql_query(db,
                                          "SELECT datastore_id FROM rg_datastores WHERE rg_id = "
                                          "? ORDER BY datastore_id",
                                          "I", id),
                         false),
            "disk_ids",
            column_array(db,
                         mvctld_sql_query(db,
                                          "SELECT d.id FROM disks d JOIN rg_datastores r ON "
                                          "r.datastore_id = d.datastore_id WHERE r.rg_id = ? "
                                          "ORDER BY d.id",
                                          "I", id),
                         false),
            "network_ids",
            column_array(db,
                         mvctld_sql_query(db,
                                          "SELECT network_id FROM rg_networks WHERE rg_id = ? "
                                          "ORDER BY network_id",
                                          "I", id),
                         true),
            "cores", cores, "virtual_cores", 0, "real_cores", (json_int_t)json_array_size(cores),
            "core_usage", 0.0, "cpu_overcommit", sqlite3_column_int(st, 3), "avail_memory",
            mem_free / 1024, "total_memory", mem_total / 1024, "total_storage",
            storage / (1024 * 1024), "avail_storage",
            (storage > used ? storage - used : 0) / (1024 * 1024), "is_reserved",
            sqlite3_column_int(st, 11), "is_storage_latency_optimized", sqlite3_column_int(st, 5),
            "is_cpu_pinning_enabled", sqlite3_column_int(st, 4), "fault_tolerance", "is_enabled",
            sqlite3_column_int(st, 6), "unit", mvctld_sql_col_text(st, 7), "max_failures",
            sqlite3_column_int(st, 8), "automated_failover", sqlite3_column_int(st, 9),
            "is_degraded", sqlite3_column_int(st, 10));
        json_array_append_new(a, g);
    }
    sqlite3_finalize(st);
    return a;
}

static json_t *group_load(struct mvctld_db *db, long long id)
{
    return mvctld_first_row(
        group_rows(db, mvctld_sql_query(db, RG_SELECT "WHERE id = ?", "I", id)));
}

static json_t *group_as_body(const json_t *g)
{
    const json_t *ft = json_object_get(g, "fault_tolerance");
    return json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:{s:O, s:O, s:O, s:O}}", "name",
        json_object_get(g, "name"), "description", json_object_get(g, "description"), "cores",
        json_object_get(g, "cores"), "datastores", json_object_get(g, "datastores"), "network_ids",
        json_object_get(g, "network_ids"), "cpu_overcommit", json_object_get(g, "cpu_overcommit"),
        "is_storage_latency_optimized", json_object_get(g, "is_storage_latency_optimized"),
        "is_cpu_pinning_enabled", json_object_get(g, "is_cpu_pinning_enabled"), "fault_tolerance",
        "is_enabled", json_object_get(ft, "is_enabled"), "unit", json_object_get(ft, "unit"),
        "max_failures", json_object_get(ft, "max_failures"), "automated_failover",
        json_object_get(ft, "automated_failover"));
}

int mvctld_group_list(struct mvctld_ctx *c, json_t **out)
{
    *out = group_rows(c->db, mvctld_sql_query(c->db, RG_SELECT "ORDER BY id", NULL));
    return 200;
}

int mvctld_group_get(struct mvctld_ctx *c, long long id, json_t **out)
{
    json_t *g = group_load(c->db, id);
    if (!g) {
        char s[32];
        snprintf(s, sizeof s, "%lld", id);
        *out = mvctld_not_found("Resource group", s);
        return 404;
    }
    *out = g;
    return 200;
}

/* Unknown core/datastore/network ids (2005) and cores of another group (2011). */
static void check_group_refs(struct mvctld_db *db, const json_t *body, long long self,
                             struct mvctld_errors *e)
{
    static const struct {
        const char *field, *exists_sql;
    } refs[] = {
        {"cores", "SELECT count(*) FROM cores WHERE id = ?"},
        {"datastores", "SELECT count(*) FROM datastores WHERE id = ?"},
        {"network_ids", "SELECT count(*) FROM networks WHERE id = ?"},
    };
    for (size_t r = 0; r < MV_ARRAY_SIZE(refs); r++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(body, refs[r].field), i, v)
        {
            char path[64], detail[200], idbuf[128];
            snprintf(path, sizeof path, "%s[%zu]", refs[r].field, i);
            long long n;
            if (json_is_integer(v)) {
                snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(v));
                n = mvctld_sql_int(db, 0, refs[r].exists_sql, "I",
                                   (long long)json_integer_value(v));
            } else {
                snprintf(idbuf, sizeof idbuf, "%.100s", json_string_value(v));
                n = mvctld_sql_int(db, 0, refs[r].exists_sql, "s", json_string_value(v));
            }
            if (!n) {
                snprintf(detail, sizeof detail, "No such id: '%s'.", idbuf);
                mvctld_errors_add(e, MVE_RG_UNKNOWN_ID, path,
                                  "Unknown core, datastore or network ids are given.", detail);
                continue;
            }
            if (r == 0) {
                long long owner = mvctld_sql_int(
                    db, -1, "SELECT rg_id FROM rg_cores WHERE core_id = ?", "s", idbuf);
                if (owner >= 0 && owner != self) {
                    snprintf(detail, sizeof detail, "Core '%s' belongs to resource group %lld.",
                             idbuf, owner);
                    mvctld_errors_add(e, MVE_RG_CORE_TAKEN, path,
                                      "The core is assigned to another resource group.", detail);
                }
            }
        }
    }
}

static int group_write(struct mvctld_ctx *c, long long *id, const json_t *body, bool insert)
{
    const json_t *ft = json_object_get(body, "fault_tolerance");
    const json_t *v;
    const char *desc = json_string_value(json_object_get(body, "description"));
    const char *unit = json_string_value(json_object_get(ft, "unit"));
    v = json_object_get(body, "is_storage_latency_optimized");
    int lat = v ? json_is_true(v) : 1; /* D2.3: storage optimisation is on by default */
    v = json_object_get(ft, "automated_failover");
    int failover = v ? json_is_true(v) : 1;
    int rc;
    if (insert) {
        rc = mvctld_sql_run(
            c->db,
            "INSERT INTO resource_groups (name, description, cpu_overcommit, "
            "is_cpu_pinning_enabled, is_storage_latency_optimized, ft_enabled, "
            "ft_unit, ft_max_failures, ft_automated_failover) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            "ssIbbbsIb", json_string_value(json_object_get(body, "name")), desc ? desc : "",
            (long long)json_integer_value(json_object_get(body, "cpu_overcommit")),
            json_is_true(json_object_get(body, "is_cpu_pinning_enabled")), lat,
            json_is_true(json_object_get(ft, "is_enabled")), unit ? unit : "mvgroup",
            (long long)json_integer_value(json_object_get(ft, "max_failures")), failover);
        *id = sqlite3_last_insert_rowid(c->db->sql);
    } else {
        rc = mvctld_sql_run(
            c->db,
            "UPDATE resource_groups SET name = ?2, description = ?3, "
            "cpu_overcommit = ?4, is_cpu_pinning_enabled = ?5, "
            "is_storage_latency_optimized = ?6, ft_enabled = ?7, ft_unit = ?8, "
            "ft_max_failures = ?9, ft_automated_failover = ?10 WHERE id = ?1",
            "IssIbbbsIb", *id, json_string_value(json_object_get(body, "name")), desc ? desc : "",
            (long long)json_integer_value(json_object_get(body, "cpu_overcommit")),
            json_is_true(json_object_get(body, "is_cpu_pinning_enabled")), lat,
            json_is_true(json_object_get(ft, "is_enabled")), unit ? unit : "mvgroup",
            (long long)json_integer_value(json_object_get(ft, "max_failures")), failover);
    }
    if (rc != 0)
        return -1;
    if (mvctld_sql_run(c->db, "DELETE FROM rg_cores WHERE rg_id = ?", "I", *id) != 0 ||
        mvctld_sql_run(c->db, "DELETE FROM rg_datastores WHERE rg_id = ?", "I", *id) != 0 ||
        mvctld_sql_run(c->db, "DELETE FROM rg_networks WHERE rg_id = ?", "I", *id) != 0)
        return -1;
    size_t i;
    json_array_foreach(json_object_get(body, "cores"), i, v)
    {
        if (mvctld_sql_run(c->db, "INSERT INTO rg_cores VALUES (?, ?)", "Is", *id,
                           json_string_value(v)) != 0)
            return -1;
    }
    json_array_foreach(json_object_get(body, "datastores"), i, v)
    {
        if (mvctld_sql_run(c->db, "INSERT INTO rg_datastores VALUES (?, ?)", "Is", *id,
                           json_string_value(v)) != 0)
            return -1;
    }
    json_array_foreach(json_object_get(body, "network_ids"), i, v)
    {
        if (mvctld_sql_run(c->db, "INSERT INTO rg_networks VALUES (?, ?)", "II", *id,
                           (long long)json_integer_value(v)) != 0)
            return -1;
    }
    return 0;
}

int mvctld_group_create(struct mvctld_ctx *c, const json_t *body, json_t **out)
{
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (mvctld_validate_group(body, MVCTLD_BODY_CREATE, &e) > 0)
        return mvctld_fail_422(&e, out);
    check_group_refs(c->db, body, -1, &e);
    if (mvctld_errors_count(&e))
        return mvctld_fail_422(&e, out);
    mvctld_errors_free(&e);
    long long id = 0;
    if (mvctld_db_begin(c->db) != 0 || group_write(c, &id, body, true) != 0 ||
        mvctld_db_commit(c->db) != 0)
        return mvctld_fail_500(c, out);
    mv_info("resource group %lld created", id);
    *out = group_load(c->db, id);
    return 202;
}

int mvctld_group_edit(struct mvctld_ctx *c, long long id, const json_t *body, json_t **out)
{
    json_t *g = group_load(c->db, id);
    if (!g)
        return mvctld_group_get(c, id, out);
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (mvctld_validate_group(body, MVCTLD_BODY_EDIT, &e) > 0) {
        json_decref(g);
        return mvctld_fail_422(&e, out);
    }
    json_t *merged = group_as_body(g);
    json_decref(g);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "fault_tolerance") == 0)
            json_object_update(json_object_get(merged, key), v);
        else
            json_object_set(merged, key, v);
    }
    mvctld_validate_group(merged, MVCTLD_BODY_CREATE, &e);
    if (!mvctld_errors_count(&e))
        check_group_refs(c->db, merged, id, &e);
    if (mvctld_errors_count(&e)) {
        json_decref(merged);
        return mvctld_fail_422(&e, out);
    }
    mvctld_errors_free(&e);
    int rc = -1;
    if (mvctld_db_begin(c->db) == 0 && group_write(c, &id, merged, false) == 0)
        rc = mvctld_db_commit(c->db);
    json_decref(merged);
    if (rc != 0)
        return mvctld_fail_500(c, out);
    *out = group_load(c->db, id);
    return 200;
}

int mvctld_group_delete(struct mvctld_ctx *c, long long id, json_t **out)
{
    json_t *g = group_load(c->db, id);
    if (!g)
        return mvctld_group_get(c, id, out);
    json_decref(g);
    if (mvctld_sql_run(c->db, "DELETE FROM resource_groups WHERE id = ?", "I", id) != 0)
        return mvctld_fail_500(c, out);
    mvctld_db_touch(c->db);
    mv_info("resource group %lld deleted", id);
    *out = NULL;
    return 204;
}

static const char *member_field(enum mvctld_group_member m)
{
    return m == MVCTLD_RG_CORES        ? "cores"
           : m == MVCTLD_RG_DATASTORES ? "datastores"
                                       : "network_ids";
}

int mvctld_group_add_members(struct mvctld_ctx *c, long long id, enum mvctld_group_member m,
                             const json_t *body, json_t **out)
{
    json_t *g = group_load(c->db, id);
    if (!g)
        return mvctld_group_get(c, id, out);
    const char *field = member_field(m);
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (mvctld_validate_id_list(body, field, m == MVCTLD_RG_NETWORKS, &e) > 0) {
        json_decref(g);
        return mvctld_fail_422(&e, out);
    }
    mvctld_errors_free(&e);
    json_t *list = json_deep_copy(json_object_get(g, field));
    json_decref(g);
    size_t i, j;
    json_t *v, *have;
    json_array_foreach(json_object_get(body, field), i, v)
    {
        bool dup = false;
        json_array_foreach(list, j, have)
        {
            dup = dup || json_equal(have, v);
        }
        if (!dup)
            json_array_append(list, v);
    }
    json_t *patch = json_pack("{s:o}", field, list);
    int status = mvctld_group_edit(c, id, patch, out);
    json_decref(patch);
    return status;
}

int mvctld_group_remove_member(struct mvctld_ctx *c, long long id, enum mvctld_group_member m,
                               const char *member_id, json_t **out)
{
    json_t *g = group_load(c->db, id);
    if (!g)
        return mvctld_group_get(c, id, out);
    const char *field = member_field(m);
    json_t *list = json_array();
    size_t i;
    json_t *v;
    bool found = false;
    json_array_foreach(json_object_get(g, field), i, v)
    {
        char buf[64];
        const char *s = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
            s = buf;
        }
        if (strcmp(s, member_id) == 0)
            found = true;
        else
            json_array_append(list, v);
    }
    json_decref(g);
    if (!found) {
        json_decref(list);
        *out = mvctld_not_found("Member of this resource group", member_id);
        return 404;
    }
    json_t *patch = json_pack("{s:o}", field, list);
    int status = mvctld_group_edit(c, id, patch, out);
    json_decref(patch);
    return status;
}

/* ---------------------------------------------------------------- networks */

static const char *const net_text_fields[] = {"vnet_id", "ip_start",       "ip_end", "cidr",
                                              "gateway", "dhcp_server_ip", "mac"};
static const char *const net_bool_fields[] = {"nat_forwarding", "is_routable",  "is_private",
                                              "is_vlan",        "is_wire_vlan", "is_dedicated"};

#define NET_SELECT                                                                                 \
    "SELECT id, name, virtual, ip_version, dhcp_type, vlan_tag, vnet_id, ip_start, ip_end, "       \
    "cidr, gateway, dhcp_server_ip, mac, nat_forwarding, is_routable, is_private, is_vlan, "       \
    "is_wire_vlan, is_dedicated FROM networks "

static json_t *network_rows(struct mvctld_db *db, sqlite3_stmt *st)
{
    json_t *a = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        json_t *n = json_pack(
            "{s:I, s:s, s:b, s:i, s:s, s:o, s:[], s:[]}", "id", (json_int_t)id, "name",
            mvctld_sql_col_text(st, 1), "virtual", sqlite3_column_int(st, 2), "ip_version",
            sqlite3_column_int(st, 3), "dhcp_type", mvctld_sql_col_text(st, 4),
            "resource_group_ids",
            column_array(db,
                         mvctld_sql_query(db,
                                          "SELECT rg_id FROM rg_networks WHERE network_id = ? "
                                          "ORDER BY rg_id",
                                          "I", id),
                         true),
            "active_nodes", "physical_paths");
        if (sqlite3_column_type(st, 5) != SQLITE_NULL)
            json_object_set_new(n, "vlan_tag", json_integer(sqlite3_column_int64(st, 5)));
        for (size_t i = 0; i < MV_ARRAY_SIZE(net_text_fields); i++) {
            if (sqlite3_column_type(st, 6 + (int)i) != SQLITE_NULL)
                json_object_set_new(n, net_text_fields[i],
                                    json_string(mvctld_sql_col_text(st, 6 + (int)i)));
        }
        for (size_t i = 0; i < MV_ARRAY_SIZE(net_bool_fields); i++)
            json_object_set_new(n, net_bool_fields[i],
                                json_boolean(sqlite3_column_int(st, 13 + (int)i)));
        json_array_append_new(a, n);
    }
    sqlite3_finalize(st);
    return a;
}

static json_t *network_load(struct mvctld_db *db, long long id)
{
    return mvctld_first_row(
        network_rows(db, mvctld_sql_query(db, NET_SELECT "WHERE id = ?", "I", id)));
}

int mvctld_network_list(struct mvctld_ctx *c, json_t **out)
{
    *out = network_rows(c->db, mvctld_sql_query(c->db, NET_SELECT "ORDER BY id", NULL));
    return 200;
}

int mvctld_network_get(struct mvctld_ctx *c, long long id, json_t **out)
{
    json_t *n = network_load(c->db, id);
    if (!n) {
        char s[32];
        snprintf(s, sizeof s, "%lld", id);
        *out = mvctld_not_found("Network", s);
        return 404;
    }
    *out = n;
    return 200;
}

static int network_write(struct mvctld_ctx *c, long long *id, const json_t *b, bool insert)
{
    const json_t *virt = json_object_get(b, "virtual");
    const json_t *ver = json_object_get(b, "ip_version");
    const char *dhcp = json_string_value(json_object_get(b, "dhcp_type"));
    const json_t *tag = json_object_get(b, "vlan_tag");
    int rc;
    if (insert) {
        rc = mvctld_sql_run(
            c->db,
            "INSERT INTO networks (name, virtual, ip_version, dhcp_type) "
            "VALUES (?, ?, ?, ?)",
            "sbIs", json_string_value(json_object_get(b, "name")), virt ? json_is_true(virt) : 1,
            ver ? (long long)json_integer_value(ver) : 4LL, dhcp ? dhcp : "external");
        *id = sqlite3_last_insert_rowid(c->db->sql);
    } else {
        rc = mvctld_sql_run(c->db, "UPDATE networks SET name = ?2, dhcp_type = ?3 WHERE id = ?1",
                            "Iss", *id, json_string_value(json_object_get(b, "name")),
                            dhcp ? dhcp : "external");
    }
    if (rc != 0)
        return -1;
    rc = mvctld_sql_run(
        c->db,
        "UPDATE networks SET vlan_tag = CASE WHEN ?2 < 0 THEN NULL ELSE ?2 END, "
        "vnet_id = ?3, ip_start = ?4, ip_end = ?5, cidr = ?6, gateway = ?7, "
        "dhcp_server_ip = ?8, mac = ?9, nat_forwarding = ?10, is_routable = ?11, "
        "is_private = ?12, is_vlan = ?13, is_wire_vlan = ?14, is_dedicated = ?15 "
        "WHERE id = ?1",
        "IIsssssssbbbbbb", *id, json_is_integer(tag) ? (long long)json_integer_value(tag) : -1LL,
        json_string_value(json_object_get(b, "vnet_id")),
        json_string_value(json_object_get(b, "ip_start")),
        json_string_value(json_object_get(b, "ip_end")),
        json_string_value(json_object_get(b, "cidr")),
        json_string_value(json_object_get(b, "gateway")),
        json_string_value(json_object_get(b, "dhcp_server_ip")),
        json_string_value(json_object_get(b, "mac")),
        json_is_true(json_object_get(b, "nat_forwarding")),
        json_is_true(json_object_get(b, "is_routable")),
        json_is_true(json_object_get(b, "is_private")), json_is_true(json_object_get(b, "is_vlan")),
        json_is_true(json_object_get(b, "is_wire_vlan")),
        json_is_true(json_object_get(b, "is_dedicated")));
    return rc == 0 ? 0 : -1;
}

int mvctld_network_create(struct mvctld_ctx *c, const json_t *body, json_t **out)
{
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (mvctld_validate_network(body, MVCTLD_BODY_CREATE, &e) > 0)
        return mvctld_fail_422(&e, out);
    mvctld_errors_free(&e);
    long long id = 0;
    if (mvctld_db_begin(c->db) != 0 || network_write(c, &id, body, true) != 0 ||
        mvctld_db_commit(c->db) != 0)
        return mvctld_fail_500(c, out);
    *out = network_load(c->db, id);
    return 202;
}

int mvctld_network_edit(struct mvctld_ctx *c, long long id, const json_t *body, json_t **out)
{
    json_t *n = network_load(c->db, id);
    if (!n)
        return mvctld_network_get(c, id, out);
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (mvctld_validate_network(body, MVCTLD_BODY_EDIT, &e) > 0) {
        json_decref(n);
        return mvctld_fail_422(&e, out);
    }
    /* The request form of the stored network: drop computed members. */
    static const char *const computed[] = {"id", "resource_group_ids", "active_nodes",
                                           "physical_paths"};
    for (size_t i = 0; i < MV_ARRAY_SIZE(computed); i++)
        json_object_del(n, computed[i]);
    json_object_update(n, (json_t *)body);
    mvctld_validate_network(n, MVCTLD_BODY_CREATE, &e);
    if (mvctld_errors_count(&e)) {
        json_decref(n);
        return mvctld_fail_422(&e, out);
    }
    mvctld_errors_free(&e);
    int rc = -1;
    if (mvctld_db_begin(c->db) == 0 && network_write(c, &id, n, false) == 0)
        rc = mvctld_db_commit(c->db);
    json_decref(n);
    if (rc != 0)
        return mvctld_fail_500(c, out);
    *out = network_load(c->db, id);
    return 200;
}

int mvctld_network_delete(struct mvctld_ctx *c, long long id, json_t **out)
{
    json_t *n = network_load(c->db, id);
    if (!n)
        return mvctld_network_get(c, id, out);
    bool used = json_array_size(json_object_get(n, "resource_group_ids")) > 0;
    json_decref(n);
    if (used) {
        struct mvctld_errors e;
        mvctld_errors_init(&e);
        mvctld_errors_add(&e, MVE_NET_IN_USE, "id", "The network is assigned to resource groups.",
                          "Remove it from resource_group_ids first.");
        return mvctld_fail_422(&e, out);
    }
    if (mvctld_sql_run(c->db, "DELETE FROM networks WHERE id = ?", "I", id) != 0)
        return mvctld_fail_500(c, out);
    mvctld_db_touch(c->db);
    *out = NULL;
    return 204;
}
