/* The database side of the wire layer: which drive commands to send, and what the answers and
 * inventories mean for the disks and datastores (mvctld/wire.h). No network code here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/agent_proto.h"
#include "mv/log.h"
#include "mv/util.h"
#include "mvctld/wire.h"
#include "sql.h"

#define MAX_BYTES (INT64_MAX / 4)

unsigned mvctld_wire_overcommit_pct(const char *oc)
{
    if (oc && strcmp(oc, "unlimited") == 0)
        return 10000; /* the most mvstored accepts */
    uint32_t pct;
    if (oc && mv_parse_u32(oc, &pct) == 0 && pct <= 100)
        return 100 + pct;
    return 100;
}

json_t *mvctld_wire_request_payload(const json_t *cmd)
{
    const char *op = json_string_value(json_object_get(cmd, "op"));
    const char *path = json_string_value(json_object_get(cmd, "path"));
    const char *ds = json_string_value(json_object_get(cmd, "datastore"));
    if (!op || !path || !path[0])
        return NULL;
    /* force: the controller owns the drives it assigns; a drive that was formatted before (a
     * previous datastore, an operator's test) is reformatted. */
    if (strcmp(op, "format") == 0 && ds) {
        json_int_t pct = json_integer_value(json_object_get(cmd, "overcommit_pct"));
        return json_pack("{s:s, s:s, s:I, s:b}", "drive", path, "datastore", ds, "overcommit_pct",
                         pct ? pct : 100, "force", 1);
    }
    if (strcmp(op, "release") == 0)
        return json_pack("{s:s, s:b}", "drive", path, "force", 1);
    return NULL;
}

static json_t *command(const char *op, const char *disk, const char *node, const char *path,
                       const char *ds)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", op, "disk", disk, "node", node, "path",
                     path, "datastore", ds);
}

json_t *mvctld_wire_plan_format(struct mvctld_db *db, const char *datastore_id,
                                const json_t *disk_ids)
{
    json_t *cmds = json_array();
    mvctld_db_lock(db);
    char *oc = NULL;
    sqlite3_stmt *st = mvctld_sql_query(db, "SELECT overcommit_disk FROM datastores WHERE id = ?",
                                        "s", datastore_id);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        oc = strdup(mvctld_sql_col_text(st, 0));
    sqlite3_finalize(st);
    size_t i;
    json_t *d;
    json_array_foreach(disk_ids, i, d)
    {
        const char *id = json_string_value(d);
        if (!id || !oc)
            continue;
        st = mvctld_sql_query(db,
                              "SELECT node_id, path FROM disks WHERE id = ? AND datastore_id = ? "
                              "AND format_state = 'pending'",
                              "ss", id, datastore_id);
        if (st && sqlite3_step(st) == SQLITE_ROW) {
            json_t *c = command("format", id, mvctld_sql_col_text(st, 0),
                                mvctld_sql_col_text(st, 1), datastore_id);
            json_object_set_new(c, "overcommit_pct", json_integer(mvctld_wire_overcommit_pct(oc)));
            json_array_append_new(cmds, c);
            mvctld_sql_run(db, "DELETE FROM disk_releases WHERE disk_id = ?", "s", id);
        }
        sqlite3_finalize(st);
    }
    mvctld_db_unlock(db);
    free(oc);
    return cmds;
}

json_t *mvctld_wire_plan_release(struct mvctld_db *db, const char *datastore_id,
                                 const json_t *disk_ids)
{
    json_t *cmds = json_array();
    mvctld_db_lock(db);
    size_t i;
    json_t *d;
    json_array_foreach(disk_ids, i, d)
    {
        const char *id = json_string_value(d);
        if (!id)
            continue;
        /* Already in another datastore again: its format supersedes the release. */
        sqlite3_stmt *st = mvctld_sql_query(db,
                                            "SELECT node_id, path FROM disks WHERE id = ? AND "
                                            "datastore_id IS NULL AND path != ''",
                                            "s", id);
        if (st && sqlite3_step(st) == SQLITE_ROW) {
            const char *node = mvctld_sql_col_text(st, 0), *path = mvctld_sql_col_text(st, 1);
            if (mvctld_sql_run(db, "INSERT OR REPLACE INTO disk_releases VALUES (?, ?, ?, ?)",
                               "ssss", id, node, path, datastore_id) == 0)
                json_array_append_new(cmds, command("release", id, node, path, datastore_id));
        }
        sqlite3_finalize(st);
    }
    mvctld_db_unlock(db);
    return cmds;
}

int mvctld_wire_parse_format_reply(int32_t status, const void *data, size_t len,
                                   struct mvctld_drive_result *out, char *err, size_t errlen)
{
    json_t *rep = NULL;
    int rc = mv_agent_reply_parse(status, data, len, &rep, err, errlen);
    if (rc != 0)
        return rc;
    json_t *drive = json_object_get(rep, "drive");
    json_t *cap = json_object_get(drive, "capacity"), *used = json_object_get(drive, "used");
    if (!json_is_object(drive) || !json_is_integer(cap) || json_integer_value(cap) < 0 ||
        json_integer_value(cap) > MAX_BYTES || (used && !json_is_integer(used)) ||
        json_integer_value(used) < 0 || json_integer_value(used) > json_integer_value(cap)) {
        snprintf(err, errlen,
                 "malformed drive_format answer: wants drive.capacity and drive.used as "
                 "integers, 0 <= used <= capacity");
        json_decref(rep);
        return -EPROTO;
    }
    out->capacity = json_integer_value(cap);
    out->used = json_integer_value(used);
    json_decref(rep);
    return 0;
}

/* Percentage of the drive in use (D2.3: disks' "used" is a percentage). */
static double used_pct(long long used, long long capacity)
{
    return capacity > 0 ? 100.0 * (double)used / (double)capacity : 0.0;
}

static int format_done_locked(struct mvctld_db *db, const char *disk_id, const char *ds,
                              const struct mvctld_drive_result *res, const char *error)
{
    int rc;
    if (res)
        rc = mvctld_sql_run(db,
                            "UPDATE disks SET format_state = 'done', format_error = '', "
                            "capacity = ?3, state = CASE WHEN state = 'error' AND "
                            "present THEN 'enabled' ELSE state END WHERE id = ?1 AND "
                            "datastore_id = ?2 AND format_state = 'pending'",
                            "ssI", disk_id, ds, res->capacity);
    else
        rc = mvctld_sql_run(db,
                            "UPDATE disks SET format_state = 'failed', format_error = ?3, "
                            "state = 'error' WHERE id = ?1 AND datastore_id = ?2 AND "
                            "format_state = 'pending'",
                            "sss", disk_id, ds, error ? error : "format failed");
    if (rc != 0)
        return -1;
    int changed = sqlite3_changes(db->sql);
    if (changed && res) {
        /* used is a REAL (a percentage); the sql helpers bind integers and text only. */
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db->sql, "UPDATE disks SET used = ? WHERE id = ?", -1, &st, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_double(st, 1, used_pct(res->used, res->capacity));
            sqlite3_bind_text(st, 2, disk_id, -1, SQLITE_TRANSIENT);
            sqlite3_step(st);
        }
        sqlite3_finalize(st);
    }
    if (changed)
        mvctld_db_touch(db);
    return changed ? 1 : 0;
}

int mvctld_wire_format_done(struct mvctld_db *db, const char *disk_id, const char *datastore_id,
                            const struct mvctld_drive_result *res, const char *error)
{
    mvctld_db_lock(db);
    int rc = format_done_locked(db, disk_id, datastore_id, res, error);
    mvctld_db_unlock(db);
    if (rc > 0 && res)
        mv_info("disk %s formatted for datastore %s (%lld bytes usable)", disk_id, datastore_id,
                res->capacity);
    else if (rc > 0)
        mv_warn("disk %s: format for datastore %s failed: %s", disk_id, datastore_id,
                error ? error : "?");
    return rc;
}

int mvctld_wire_release_done(struct mvctld_db *db, const char *disk_id, const char *datastore_id)
{
    mvctld_db_lock(db);
    int rc = mvctld_sql_run(db, "DELETE FROM disk_releases WHERE disk_id = ? AND datastore_id = ?",
                            "ss", disk_id, datastore_id);
    mvctld_db_unlock(db);
    if (rc == 0)
        mv_info("disk %s released from datastore %s", disk_id, datastore_id);
    return rc == 0 ? 0 : -1;
}

/* The inventory's drive with this id (NULL if none). */
static const json_t *inventory_drive(const json_t *inventory, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(inventory, "drives"), i, d)
    {
        const char *did = json_string_value(json_object_get(d, "id"));
        if (did && strcmp(did, id) == 0)
            return d;
    }
    return NULL;
}

static bool drive_carries(const json_t *drive, const char *ds)
{
    const char *have = json_string_value(json_object_get(drive, "datastore"));
    return have && strcmp(have, ds) == 0;
}

json_t *mvctld_wire_reconcile(struct mvctld_db *db, const char *node_id, const json_t *inventory)
{
    json_t *cmds = json_array();
    mvctld_db_lock(db);
    /* Collect first: updating rows while a SELECT over them is open is asking for trouble. */
    json_t *pending = json_array();
    sqlite3_stmt *st = mvctld_sql_query(
        db,
        "SELECT d.id, d.path, d.datastore_id, ds.overcommit_disk FROM disks d JOIN datastores ds "
        "ON ds.id = d.datastore_id WHERE d.node_id = ? AND d.format_state = 'pending' "
        "ORDER BY d.id",
        "s", node_id);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(pending,
                              json_pack("[s, s, s, s]", mvctld_sql_col_text(st, 0),
                                        mvctld_sql_col_text(st, 1), mvctld_sql_col_text(st, 2),
                                        mvctld_sql_col_text(st, 3)));
    sqlite3_finalize(st);
    size_t i;
    json_t *row;
    json_array_foreach(pending, i, row)
    {
        const char *id = json_string_value(json_array_get(row, 0));
        const char *path = json_string_value(json_array_get(row, 1));
        const char *ds = json_string_value(json_array_get(row, 2));
        const json_t *drive = inventory_drive(inventory, id);
        json_t *cap = json_object_get(drive, "capacity"), *used = json_object_get(drive, "used");
        const char *state = json_string_value(json_object_get(drive, "state"));
        if (drive && drive_carries(drive, ds) && state && strcmp(state, "online") == 0 &&
            json_is_integer(cap) && json_integer_value(cap) >= 0 &&
            json_integer_value(cap) <= MAX_BYTES) {
            /* Formatted before an answer reached us (e.g. mvctld restarted meanwhile). */
            long long u = json_is_integer(used) ? json_integer_value(used) : 0;
            struct mvctld_drive_result res = {.capacity = json_integer_value(cap),
                                              .used = u < 0 ? 0 : u};
            format_done_locked(db, id, ds, &res, NULL);
        } else if (path[0]) {
            json_t *c = command("format", id, node_id, path, ds);
            json_object_set_new(c, "overcommit_pct",
                                json_integer(mvctld_wire_overcommit_pct(
                                    json_string_value(json_array_get(row, 3)))));
            json_array_append_new(cmds, c);
        }
    }
    json_decref(pending);

    json_t *releases = json_array();
    st = mvctld_sql_query(db,
                          "SELECT disk_id, path, datastore_id FROM disk_releases WHERE "
                          "node_id = ? ORDER BY disk_id",
                          "s", node_id);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(releases,
                              json_pack("[s, s, s]", mvctld_sql_col_text(st, 0),
                                        mvctld_sql_col_text(st, 1), mvctld_sql_col_text(st, 2)));
    sqlite3_finalize(st);
    json_array_foreach(releases, i, row)
    {
        const char *id = json_string_value(json_array_get(row, 0));
        const char *path = json_string_value(json_array_get(row, 1));
        const char *ds = json_string_value(json_array_get(row, 2));
        const json_t *drive = inventory_drive(inventory, id);
        if (drive && drive_carries(drive, ds))
            json_array_append_new(cmds, command("release", id, node_id, path, ds));
        else
            mvctld_sql_run(db, "DELETE FROM disk_releases WHERE disk_id = ?", "s", id);
    }
    json_decref(releases);
    mvctld_db_unlock(db);
    return cmds;
}
