/* Volumes and instances of the internal API (mvctld/instances.h, docs/instances.md). These
 * functions only record intent; the reconciler (reconcile.c) and the wire thread carry it out. */
#include "mvctld/instances.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mv/log.h"
#include "mv/util.h"
#include "mvctld/validate.h"
#include "sql.h"

#define GB (1024ll * 1024 * 1024)

static void kick(struct mvctld_ctx *c)
{
    if (c->host_ops && c->host_ops->kick)
        c->host_ops->kick(c->host_ops_ctx);
}

static bool have_wire(const struct mvctld_ctx *c)
{
    return c->host_ops != NULL;
}

static bool all_digits(const char *s)
{
    if (!*s || strlen(s) > 18)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Id of a volume/instance named by id or name in a path; 0 when unknown. */
static long long ref_to_id(struct mvctld_db *db, const char *table, const char *ref)
{
    char sql[128];
    if (all_digits(ref)) {
        snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE id = ?", table);
        long long id = mvctld_sql_int(db, 0, sql, "I", atoll(ref));
        if (id)
            return id;
    }
    snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE name = ?", table);
    return mvctld_sql_int(db, 0, sql, "s", ref);
}

static void random_chars(char *out, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    out[n] = 0;
}

/* Field shape: only `allowed` keys; each error once. */
static bool check_keys(const json_t *body, const char *const *allowed, struct mvctld_errors *e)
{
    if (!json_is_object(body)) {
        mvctld_errors_add(e, MVE_BODY_NOT_OBJECT, "", "The body must be a JSON object.", NULL);
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, k) == 0;
        if (!ok) {
            char msg[160];
            snprintf(msg, sizeof msg, "Unknown field '%.100s'.", k);
            mvctld_errors_add(e, MVE_FIELD_UNKNOWN, k, msg, NULL);
        }
    }
    return true;
}

static const char *want_str(const json_t *body, const char *k, bool required, int missing_code,
                            struct mvctld_errors *e)
{
    const json_t *v = json_object_get(body, k);
    if (!v) {
        if (required) {
            char msg[128];
            snprintf(msg, sizeof msg, "The %s is missing.", k);
            mvctld_errors_add(e, missing_code ? missing_code : MVE_FIELD_REQUIRED, k, msg, NULL);
        }
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) > MVCTLD_NAME_MAX) {
        char msg[128];
        snprintf(msg, sizeof msg, "The %s must be a string of at most %d bytes.", k,
                 MVCTLD_NAME_MAX);
        mvctld_errors_add(e, MVE_FIELD_TYPE, k, msg, NULL);
        return NULL;
    }
    return json_string_value(v);
}

/* Integer field: true with *out when present and an integer. */
static bool want_int(const json_t *body, const char *k, bool required, json_int_t *out,
                     struct mvctld_errors *e)
{
    const json_t *v = json_object_get(body, k);
    if (!v) {
        if (required) {
            char msg[128];
            snprintf(msg, sizeof msg, "The %s is missing.", k);
            mvctld_errors_add(e, MVE_FIELD_REQUIRED, k, msg, NULL);
        }
        return false;
    }
    if (!json_is_integer(v)) {
        char msg[128];
        snprintf(msg, sizeof msg, "The %s must be an integer.", k);
        mvctld_errors_add(e, MVE_FIELD_TYPE, k, msg, NULL);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool name_blank(const char *s)
{
    for (; s && *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* ---------------------------------------------------------------- volumes */

/* D2.3 Volume status: error (a replica operation failed), in-use, available; "creating" and
 * "deleting" (ours) while the hosts still work on it. */
static const char *volume_status(struct mvctld_db *db, long long id, bool deleting, bool attached)
{
    if (mvctld_sql_int(db, 0,
                       "SELECT count(*) FROM volume_replicas WHERE volume_id = ? AND "
                       "state = 'failed'",
                       "I", id) > 0)
        return "error";
    if (deleting)
        return "deleting";
    if (mvctld_sql_int(db, 0,
                       "SELECT count(*) FROM volume_replicas WHERE volume_id = ? AND "
                       "state = 'pending' AND op = 'create'",
                       "I", id) > 0)
        return "creating";
    return attached ? "in-use" : "available";
}

#define VOL_SELECT                                                                                 \
    "SELECT id, name, datastore_id, vdisk_id, size, shelf, slot, deleting, instance_id, "          \
    "boot_index, delete_on_termination, cloned_from FROM volumes "

static json_t *volume_rows(struct mvctld_db *db, sqlite3_stmt *st)
{
    json_t *a = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        bool attached = sqlite3_column_type(st, 8) != SQLITE_NULL;
        json_t *disks = json_array(), *replicas = json_array();
        sqlite3_stmt *r = mvctld_sql_query(db,
                                           "SELECT disk_id, node_id, op, state, error FROM "
                                           "volume_replicas WHERE volume_id = ? ORDER BY disk_id",
                                           "I", id);
        char err[300] = "";
        while (r && sqlite3_step(r) == SQLITE_ROW) {
            json_array_append_new(disks, json_string(mvctld_sql_col_text(r, 0)));
            json_t *rep = json_pack("{s:s, s:s, s:s, s:s}", "disk_id", mvctld_sql_col_text(r, 0),
                                    "node_id", mvctld_sql_col_text(r, 1), "op",
                                    mvctld_sql_col_text(r, 2), "state", mvctld_sql_col_text(r, 3));
            if (*mvctld_sql_col_text(r, 4)) {
                json_object_set_new(rep, "error", json_string(mvctld_sql_col_text(r, 4)));
                if (!err[0])
                    snprintf(err, sizeof err, "%s", mvctld_sql_col_text(r, 4));
            }
            json_array_append_new(replicas, rep);
        }
        sqlite3_finalize(r);
        long long bytes = sqlite3_column_int64(st, 4);
        json_t *v = json_pack(
            "{s:I, s:s, s:I, s:I, s:s, s:o, s:s, s:s, s:b, s:b, s:i, s:i, s:i, s:o, s:b, s:i}",
            "id", (json_int_t)id, "name", mvctld_sql_col_text(st, 1), "size",
            (json_int_t)(bytes / GB), "size_bytes", (json_int_t)bytes, "status",
            volume_status(db, id, sqlite3_column_int(st, 7), attached), "disks", disks,
            "datastore_id", mvctld_sql_col_text(st, 2), "vdisk_id", mvctld_sql_col_text(st, 3),
            "is_degraded", 0, "is_repairing", 0, "percent_repair", 0, "shelf",
            sqlite3_column_int(st, 5), "slot", sqlite3_column_int(st, 6), "replicas", replicas,
            "delete_on_termination", sqlite3_column_int(st, 10), "boot_index",
            sqlite3_column_int(st, 9));
        json_object_set_new(v, "instance_id",
                            attached ? json_integer(sqlite3_column_int64(st, 8)) : json_null());
        if (sqlite3_column_type(st, 11) != SQLITE_NULL)
            json_object_set_new(v, "cloned_from", json_string(mvctld_sql_col_text(st, 11)));
        if (err[0])
            json_object_set_new(v, "error", json_string(err));
        json_array_append_new(a, v);
    }
    sqlite3_finalize(st);
    return a;
}

static json_t *volume_load(struct mvctld_db *db, long long id)
{
    return mvctld_first_row(
        volume_rows(db, mvctld_sql_query(db, VOL_SELECT "WHERE id = ?", "I", id)));
}

/* The volume named by ref (id or name) and its id; NULL with a 404 body in *out if none. */
static json_t *volume_by_ref(struct mvctld_db *db, const char *ref, long long *id, json_t **out)
{
    *id = ref_to_id(db, "volumes", ref);
    json_t *row = *id ? volume_load(db, *id) : NULL;
    if (!row)
        *out = mvctld_not_found("Volume", ref);
    return row;
}

int mvctld_volume_list(struct mvctld_ctx *c, json_t **out)
{
    *out = volume_rows(c->db, mvctld_sql_query(c->db, VOL_SELECT "ORDER BY id", NULL));
    return 200;
}

int mvctld_volume_get(struct mvctld_ctx *c, const char *ref, json_t **out)
{
    long long id;
    json_t *v = volume_by_ref(c->db, ref, &id, out);
    if (!v)
        return 404;
    *out = v;
    return 200;
}

/* mvstored's overcommit limit for a datastore's drives (% of capacity); 0 = unlimited. */
static long long overcommit_pct(const char *oc)
{
    if (strcmp(oc, "unlimited") == 0)
        return 0;
    return 100 + atoll(oc);
}

/* Chooses `replicas` usable disks of the datastore on distinct online hosts with room for
 * size_bytes (sum of the sizes of the replicas on a disk within the overcommit limit), most free
 * first. Appends {disk, node} to chosen; 0 or an error code. */
static int choose_disks(struct mvctld_db *db, const char *ds, long long size_bytes, json_t *chosen,
                        struct mvctld_errors *e)
{
    sqlite3_stmt *st = mvctld_sql_query(db,
                                        "SELECT replicas, overcommit_disk FROM datastores WHERE "
                                        "id = ?",
                                        "s", ds);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        mvctld_errors_add(e, MVE_VOL_DATASTORE, "datastore_id", "The datastore does not exist.",
                          NULL);
        return MVE_VOL_DATASTORE;
    }
    int replicas = sqlite3_column_int(st, 0);
    long long pct = overcommit_pct(mvctld_sql_col_text(st, 1));
    sqlite3_finalize(st);
    st = mvctld_sql_query(
        db,
        "SELECT d.id, d.node_id, coalesce(d.capacity, d.total) AS cap, (SELECT "
        "coalesce(sum(v.size), "
        "0) FROM volume_replicas r JOIN volumes v ON v.id = r.volume_id WHERE r.disk_id = d.id AND "
        "r.op != 'delete') AS committed FROM disks d JOIN nodes n ON n.id = d.node_id WHERE "
        "d.datastore_id = ? AND d.present = 1 AND d.state = 'enabled' AND n.state = 'online' AND "
        "d.format_state NOT IN ('pending', 'failed') ORDER BY cap - committed DESC, d.id",
        "s", ds);
    int usable_hosts = 0, picked = 0;
    json_t *nodes = json_object();
    while (st && sqlite3_step(st) == SQLITE_ROW && picked < replicas) {
        const char *node = mvctld_sql_col_text(st, 1);
        if (json_object_get(nodes, node))
            continue;
        long long cap = sqlite3_column_int64(st, 2), committed = sqlite3_column_int64(st, 3);
        usable_hosts++;
        if (pct && (committed + size_bytes) * 100 > cap * pct)
            continue;
        json_object_set_new(nodes, node, json_true());
        json_array_append_new(
            chosen, json_pack("{s:s, s:s}", "disk", mvctld_sql_col_text(st, 0), "node", node));
        picked++;
    }
    sqlite3_finalize(st);
    json_decref(nodes);
    if (picked >= replicas)
        return 0;
    char msg[256];
    if (usable_hosts < replicas) {
        snprintf(msg, sizeof msg,
                 "The datastore needs %d replicas on distinct hosts; %d of its hosts have a usable "
                 "disk now.",
                 replicas, usable_hosts);
        mvctld_errors_add(e, MVE_VOL_NO_DISKS, "datastore_id", msg, NULL);
        return MVE_VOL_NO_DISKS;
    }
    snprintf(msg, sizeof msg,
             "Not enough space: %d of the %d replicas of %lld bytes fit on the datastore's disks.",
             picked, replicas, size_bytes);
    mvctld_errors_add(e, MVE_VOL_NO_SPACE, "size", msg, NULL);
    return MVE_VOL_NO_SPACE;
}

/* Inserts a volume and its replicas (pending with a wire, done without). Returns the id or 0. */
static long long volume_insert(struct mvctld_ctx *c, const char *name, const char *ds,
                               long long bytes, const json_t *chosen, const char *cloned_from)
{
    char vdisk[16] = "v";
    random_chars(vdisk + 1, 12);
    /* AoE addresses are unique over the rack: each volume gets its own shelf.slot. */
    long long n = mvctld_sql_int(c->db, 0,
                                 "SELECT coalesce(max((shelf - 1) * 255 + slot) + 1, 0) FROM "
                                 "volumes",
                                 NULL);
    if (n >= 255ll * 0xfffe)
        return 0;
    if (mvctld_sql_run(c->db,
                       "INSERT INTO volumes (name, datastore_id, vdisk_id, size, shelf, slot, "
                       "cloned_from, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       "sssIiisI", name, ds, vdisk, bytes, (int)(n / 255 + 1), (int)(n % 255),
                       cloned_from, (long long)time(NULL)) != 0)
        return 0;
    long long id = sqlite3_last_insert_rowid(c->db->sql);
    size_t i;
    json_t *d;
    json_array_foreach(chosen, i, d)
    {
        if (mvctld_sql_run(c->db,
                           "INSERT INTO volume_replicas (volume_id, disk_id, node_id, op, state) "
                           "VALUES (?, ?, ?, 'create', ?)",
                           "Isss", id, json_string_value(json_object_get(d, "disk")),
                           json_string_value(json_object_get(d, "node")),
                           have_wire(c) ? "pending" : "done") != 0)
            return 0;
    }
    return id;
}

static void check_volume_name(struct mvctld_db *db, const char *name, long long self,
                              struct mvctld_errors *e)
{
    if (!name)
        return;
    if (name_blank(name))
        mvctld_errors_add(e, MVE_VOL_NAME_EMPTY, "name", "The name is empty.", NULL);
    else if (all_digits(name))
        mvctld_errors_add(e, MVE_VOL_NAME_EMPTY, "name",
                          "The name cannot be a number (paths accept ids and names).", NULL);
    else if (mvctld_sql_int(db, 0, "SELECT id FROM volumes WHERE name = ? AND id != ?", "sI", name,
                            self))
        mvctld_errors_add(e, MVE_VOL_NAME_TAKEN, "name", "Another volume has this name.", NULL);
}

static bool check_size(const json_t *body, bool required, json_int_t *gb, struct mvctld_errors *e)
{
    if (!want_int(body, "size", required, gb, e))
        return false;
    if (*gb <= 0 || *gb > MVCTLD_VOLUME_MAX_GB) {
        mvctld_errors_add(e, MVE_VOL_SIZE, "size", "The size is 0 or less (or over 1048576 GB).",
                          NULL);
        return false;
    }
    return true;
}

int mvctld_volume_create(struct mvctld_ctx *c, const json_t *body, json_t **out)
{
    static const char *const allowed[] = {"name", "size", "datastore_id", NULL};
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (!check_keys(body, allowed, &e))
        return mvctld_fail_422(&e, out);
    const char *name = want_str(body, "name", true, MVE_VOL_NAME_EMPTY, &e);
    json_int_t gb = 0;
    bool size_ok = check_size(body, true, &gb, &e);
    const char *ds = want_str(body, "datastore_id", true, MVE_VOL_DATASTORE, &e);
    check_volume_name(c->db, name, 0, &e);
    json_t *chosen = json_array();
    if (ds && size_ok && mvctld_errors_count(&e) == 0)
        choose_disks(c->db, ds, gb * GB, chosen, &e);
    else if (ds && !mvctld_sql_int(c->db, 0, "SELECT 1 FROM datastores WHERE id = ?", "s", ds))
        mvctld_errors_add(&e, MVE_VOL_DATASTORE, "datastore_id", "The datastore does not exist.",
                          NULL);
    if (mvctld_errors_count(&e)) {
        json_decref(chosen);
        return mvctld_fail_422(&e, out);
    }
    mvctld_errors_free(&e);
    long long id = 0;
    if (mvctld_db_begin(c->db) != 0 || !(id = volume_insert(c, name, ds, gb * GB, chosen, NULL)) ||
        mvctld_db_commit(c->db) != 0) {
        json_decref(chosen);
        return mvctld_fail_500(c, out);
    }
    json_decref(chosen);
    mv_info("volume %lld (%s) created: %lld GB on datastore %s", id, name, (long long)gb, ds);
    kick(c);
    *out = volume_load(c->db, id);
    return 201;
}

static bool replicas_busy(struct mvctld_db *db, long long id)
{
    return mvctld_sql_int(db, 0,
                          "SELECT count(*) FROM volume_replicas WHERE volume_id = ? AND state != "
                          "'done'",
                          "I", id) > 0;
}

int mvctld_volume_edit(struct mvctld_ctx *c, const char *ref, const json_t *body, json_t **out)
{
    long long id;
    json_t *v = volume_by_ref(c->db, ref, &id, out);
    if (!v)
        return 404;
    static const char *const allowed[] = {"name", "size", NULL};
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    long long old = json_integer_value(json_object_get(v, "size_bytes"));
    bool attached = !json_is_null(json_object_get(v, "instance_id"));
    if (check_keys(body, allowed, &e)) {
        const char *name = want_str(body, "name", false, 0, &e);
        check_volume_name(c->db, name, id, &e);
        json_int_t gb;
        if (check_size(body, false, &gb, &e)) {
            if (gb * GB < old)
                mvctld_errors_add(&e, MVE_VOL_SHRINK, "size",
                                  "A volume cannot shrink (its data would be cut).", NULL);
            else if (gb * GB > old && replicas_busy(c->db, id))
                mvctld_errors_add(&e, MVE_VOL_BUSY, "size",
                                  "An operation on the volume's replicas is pending or failed.",
                                  NULL);
        }
    }
    json_decref(v);
    if (mvctld_errors_count(&e))
        return mvctld_fail_422(&e, out);
    mvctld_errors_free(&e);
    (void)attached;
    const char *name = json_string_value(json_object_get(body, "name"));
    json_int_t gb = json_integer_value(json_object_get(body, "size"));
    if (mvctld_db_begin(c->db) != 0 ||
        (name &&
         mvctld_sql_run(c->db, "UPDATE volumes SET name = ? WHERE id = ?", "sI", name, id) != 0))
        return mvctld_fail_500(c, out);
    if (json_object_get(body, "size") && gb * GB > old) {
        if (mvctld_sql_run(c->db, "UPDATE volumes SET size = ? WHERE id = ?", "II", gb * GB, id) !=
                0 ||
            mvctld_sql_run(c->db,
                           "UPDATE volume_replicas SET op = 'resize', state = ?, error = '' WHERE "
                           "volume_id = ?",
                           "sI", have_wire(c) ? "pending" : "done", id) != 0)
            return mvctld_fail_500(c, out);
    }
    if (mvctld_db_commit(c->db) != 0)
        return mvctld_fail_500(c, out);
    kick(c);
    *out = volume_load(c->db, id);
    return 200;
}

int mvctld_volume_clone(struct mvctld_ctx *c, const char *ref, const json_t *body, json_t **out)
{
    long long src;
    json_t *v = volume_by_ref(c->db, ref, &src, out);
    if (!v)
        return 404;
    static const char *const allowed[] = {"name", "size", NULL};
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    long long bytes = json_integer_value(json_object_get(v, "size_bytes"));
    char ds[80], src_name[300];
    snprintf(ds, sizeof ds, "%s", json_string_value(json_object_get(v, "datastore_id")));
    snprintf(src_name, sizeof src_name, "%s", json_string_value(json_object_get(v, "name")));
    json_decref(v);
    const char *name = NULL;
    if (check_keys(body, allowed, &e)) {
        name = want_str(body, "name", true, MVE_VOL_NAME_EMPTY, &e);
        check_volume_name(c->db, name, 0, &e);
        json_int_t gb;
        if (check_size(body, false, &gb, &e)) {
            if (gb * GB < bytes)
                mvctld_errors_add(&e, MVE_VOL_SHRINK, "size",
                                  "A clone cannot be smaller than its source.", NULL);
            else
                bytes = gb * GB;
        }
    }
    if (replicas_busy(c->db, src))
        mvctld_errors_add(&e, MVE_VOL_BUSY, "", "The source volume's replicas are not ready.",
                          NULL);
    json_t *chosen = json_array();
    if (mvctld_errors_count(&e) == 0)
        choose_disks(c->db, ds, bytes, chosen, &e);
    if (mvctld_errors_count(&e)) {
        json_decref(chosen);
        return mvctld_fail_422(&e, out);
    }
    mvctld_errors_free(&e);
    long long id = 0;
    if (mvctld_db_begin(c->db) != 0 ||
        !(id = volume_insert(c, name, ds, bytes, chosen, src_name)) ||
        mvctld_db_commit(c->db) != 0) {
        json_decref(chosen);
        return mvctld_fail_500(c, out);
    }
    json_decref(chosen);
    mv_info("volume %lld (%s) cloned from %s", id, name, src_name);
    kick(c);
    *out = volume_load(c->db, id);
    return 201;
}

/* Removes a volume whose replicas are all gone (or, without a wire, at once). */
static int volume_forget(struct mvctld_db *db, long long id)
{
    return mvctld_sql_run(db, "DELETE FROM volumes WHERE id = ?", "I", id);
}

int mvctld_volume_delete(struct mvctld_ctx *c, const char *ref, json_t **out)
{
    long long id;
    json_t *v = volume_by_ref(c->db, ref, &id, out);
    if (!v)
        return 404;
    bool attached = !json_is_null(json_object_get(v, "instance_id"));
    json_decref(v);
    if (attached) {
        struct mvctld_errors e;
        mvctld_errors_init(&e);
        mvctld_errors_add(&e, MVE_VOL_IN_USE, "instance_id",
                          "The volume is attached to an instance.", NULL);
        return mvctld_fail_422(&e, out);
    }
    if (mvctld_db_begin(c->db) != 0)
        return mvctld_fail_500(c, out);
    int rc;
    if (have_wire(c))
        rc = mvctld_sql_run(c->db, "UPDATE volumes SET deleting = 1 WHERE id = ?", "I", id) ||
             mvctld_sql_run(c->db,
                            "UPDATE volume_replicas SET op = 'delete', state = 'pending', error "
                            "= '' WHERE volume_id = ?",
                            "I", id);
    else
        rc = volume_forget(c->db, id);
    if (rc != 0 || mvctld_db_commit(c->db) != 0)
        return mvctld_fail_500(c, out);
    mv_info("volume %lld deleted", id);
    kick(c);
    *out = NULL;
    return have_wire(c) ? 202 : 204;
}

/* ---------------------------------------------------------------- instances */

static const char *task_state(const char *desired, const char *state, bool reboot, bool migrating)
{
    if (strcmp(desired, "deleted") == 0)
        return "DELETING";
    if (migrating)
        return "MIGRATING";
    bool up = strcmp(state, "ACTIVE") == 0, paused = strcmp(state, "PAUSED") == 0;
    if (strcmp(desired, "running") == 0) {
        if (paused)
            return "UNPAUSING";
        if (!up)
            return strcmp(state, "BUILD") == 0 ? "SPAWNING" : "POWERING-ON";
        return reboot ? "REBOOTING" : NULL;
    }
    if (strcmp(desired, "stopped") == 0)
        return up || paused ? "POWERING-OFF" : NULL;
    if (strcmp(desired, "paused") == 0)
        return paused ? NULL : up ? "PAUSING" : "POWERING-ON";
    return NULL;
}

#define INST_SELECT                                                                                \
    "SELECT id, uuid, name, hostname, resource_group_id, vcpus, ram, payload, kernel, initrd, "    \
    "cmdline, node_id, numa_node, cpuset, pin, vnuma, desired, reboot, migrate_to, "               \
    "migrate_restart, state, reported_node, pid, vm_cpus, vm_memory_mb, error, reported_at, "      \
    "created_at FROM instances "

static void set_text_or_omit(json_t *o, const char *k, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) != SQLITE_NULL && *mvctld_sql_col_text(st, col))
        json_object_set_new(o, k, json_string(mvctld_sql_col_text(st, col)));
}

static json_t *instance_rows(struct mvctld_db *db, sqlite3_stmt *st)
{
    json_t *a = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        const char *state = mvctld_sql_col_text(st, 20);
        const char *desired = mvctld_sql_col_text(st, 16);
        bool migrating = sqlite3_column_type(st, 18) != SQLITE_NULL;
        json_t *vols = volume_rows(
            db, mvctld_sql_query(db, VOL_SELECT "WHERE instance_id = ? ORDER BY boot_index, id",
                                 "I", id));
        json_int_t disk_gb = 0;
        size_t i;
        json_t *v;
        int local = 0;
        const char *node = sqlite3_column_type(st, 21) != SQLITE_NULL ? mvctld_sql_col_text(st, 21)
                                                                      : mvctld_sql_col_text(st, 11);
        json_array_foreach(vols, i, v)
        {
            disk_gb += json_integer_value(json_object_get(v, "size"));
            size_t k;
            json_t *r;
            json_array_foreach(json_object_get(v, "replicas"), k, r)
            {
                if (strcmp(json_string_value(json_object_get(r, "node_id")), node) == 0) {
                    local++;
                    break;
                }
            }
        }
        json_t *nics = json_array();
        sqlite3_stmt *n = mvctld_sql_query(db,
                                           "SELECT i.idx, i.network_id, i.mac, i.ip, n.name FROM "
                                           "instance_nics i JOIN networks n ON n.id = "
                                           "i.network_id WHERE i.instance_id = ? ORDER BY i.idx",
                                           "I", id);
        while (n && sqlite3_step(n) == SQLITE_ROW) {
            json_t *nic = json_pack("{s:I, s:I, s:s, s:s}", "interface_id",
                                    (json_int_t)sqlite3_column_int64(n, 0), "network_id",
                                    (json_int_t)sqlite3_column_int64(n, 1), "name",
                                    mvctld_sql_col_text(n, 4), "mac", mvctld_sql_col_text(n, 2));
            set_text_or_omit(nic, "ip", n, 3);
            json_array_append_new(nics, nic);
        }
        sqlite3_finalize(n);
        size_t nv = json_array_size(vols);
        const char *opt = nv == 0 || local == 0 ? "none"
                          : (size_t)local == nv ? "fully"
                                                : "partially";
        bool running = sqlite3_column_type(st, 21) != SQLITE_NULL; /* a VMM exists for it */
        json_t *o = json_pack(
            "{s:I, s:s, s:s, s:s, s:I, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:s, s:I, s:I, s:o, "
            "s:o, s:b, s:s, s:s, s:s}",
            "id", (json_int_t)id, "uuid", mvctld_sql_col_text(st, 1), "OpenStack_uuid",
            mvctld_sql_col_text(st, 1), "name", mvctld_sql_col_text(st, 2), "resource_group_id",
            (json_int_t)sqlite3_column_int64(st, 4), "state", state, "desired_state", desired,
            "vcpus", sqlite3_column_int(st, 5), "ram", sqlite3_column_int(st, 6), "disk", disk_gb,
            "vm_cpus", (json_int_t)(running ? sqlite3_column_int64(st, 23) : 0), "vm_memory_mb",
            (json_int_t)(running ? sqlite3_column_int64(st, 24) : 0), "vm_status",
            running ? state : "", "pid", (json_int_t)(running ? sqlite3_column_int64(st, 22) : 0),
            "reported_at", (json_int_t)sqlite3_column_int64(st, 26), "networks", nics, "volumes",
            vols, "storage_optimized", local > 0, "is_storage_latency_optimized", opt,
            "cluster_type_id", "vm", "hostname",
            *mvctld_sql_col_text(st, 3) ? mvctld_sql_col_text(st, 3) : mvctld_sql_col_text(st, 2));
        json_object_set_new(o, "node", *node ? json_string(node) : json_null());
        json_object_set_new(o, "domain_name", json_string(mvctld_sql_col_text(st, 1)));
        const char *task = task_state(desired, state, sqlite3_column_int(st, 17), migrating);
        json_object_set_new(o, "task_state", task ? json_string(task) : json_null());
        set_text_or_omit(o, "payload", st, 7);
        set_text_or_omit(o, "kernel", st, 8);
        set_text_or_omit(o, "initrd", st, 9);
        set_text_or_omit(o, "cmdline", st, 10);
        set_text_or_omit(o, "cpuset", st, 13);
        set_text_or_omit(o, "pin", st, 14);
        set_text_or_omit(o, "vnuma", st, 15);
        set_text_or_omit(o, "migrate_to", st, 18);
        set_text_or_omit(o, "error", st, 25);
        json_object_set_new(o, "numa_node",
                            sqlite3_column_type(st, 12) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int(st, 12)));
        json_array_append_new(a, o);
    }
    sqlite3_finalize(st);
    return a;
}

static json_t *instance_load(struct mvctld_db *db, long long id)
{
    return mvctld_first_row(
        instance_rows(db, mvctld_sql_query(db, INST_SELECT "WHERE id = ?", "I", id)));
}

/* The instance named by ref (id or name) and its id; NULL with a 404 body in *out if none. */
static json_t *instance_by_ref(struct mvctld_db *db, const char *ref, long long *id, json_t **out)
{
    *id = ref_to_id(db, "instances", ref);
    json_t *row = *id ? instance_load(db, *id) : NULL;
    if (!row)
        *out = mvctld_not_found("Instance", ref);
    return row;
}

int mvctld_instance_list(struct mvctld_ctx *c, json_t **out)
{
    *out = instance_rows(c->db, mvctld_sql_query(c->db, INST_SELECT "ORDER BY id", NULL));
    return 200;
}

int mvctld_instance_get(struct mvctld_ctx *c, const char *ref, json_t **out)
{
    long long id;
    json_t *o = instance_by_ref(c->db, ref, &id, out);
    if (!o)
        return 404;
    *out = o;
    return 200;
}

static void check_path(const json_t *body, const char *k, struct mvctld_errors *e)
{
    const char *p = json_string_value(json_object_get(body, k));
    if (p && (p[0] != '/' || strstr(p, "..") || strlen(p) > 255)) {
        char msg[128];
        snprintf(msg, sizeof msg, "The %s must be an absolute path without '..' (255 bytes).", k);
        mvctld_errors_add(e, MVE_INST_PATH, k, msg, NULL);
    }
}

/* Volumes to attach: [{"id"|"name", "delete_on_termination"}]; appends their ids to ids. */
static void check_volumes(struct mvctld_db *db, const json_t *vols, long long rg, json_t *ids,
                          json_t *dot, struct mvctld_errors *e)
{
    if (!vols)
        return;
    if (!json_is_array(vols)) {
        mvctld_errors_add(e, MVE_FIELD_TYPE, "volumes", "The volumes must be an array.", NULL);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(vols, i, v)
    {
        char field[40], ref[300] = "";
        snprintf(field, sizeof field, "volumes[%zu]", i);
        const json_t *idv = json_object_get(v, "id"), *namev = json_object_get(v, "name");
        const json_t *d = json_object_get(v, "delete_on_termination");
        if (json_is_integer(idv))
            snprintf(ref, sizeof ref, "%lld", (long long)json_integer_value(idv));
        else if (json_is_string(namev))
            snprintf(ref, sizeof ref, "%s", json_string_value(namev));
        if (!json_is_object(v) || !ref[0] || (d && !json_is_boolean(d)) ||
            json_object_size(v) != (size_t)(!!idv + !!namev + !!d)) {
            mvctld_errors_add(e, MVE_FIELD_TYPE, field,
                              "A volume is {\"id\" or \"name\", \"delete_on_termination\"}.", NULL);
            continue;
        }
        long long id = ref_to_id(db, "volumes", ref);
        if (!id) {
            mvctld_errors_add(e, MVE_INST_VOLUME, field, "The volume does not exist.", ref);
            continue;
        }
        for (size_t k = 0; k < json_array_size(ids); k++)
            if (json_integer_value(json_array_get(ids, k)) == id)
                mvctld_errors_add(e, MVE_DUPLICATE_ID, field, "The volume is listed twice.", ref);
        if (mvctld_sql_int(db, 0,
                           "SELECT count(*) FROM volumes WHERE id = ? AND (instance_id IS NOT "
                           "NULL OR deleting = 1)",
                           "I", id) > 0)
            mvctld_errors_add(e, MVE_INST_VOLUME_IN_USE, field,
                              "The volume is attached to another instance or being deleted.", ref);
        else if (mvctld_sql_int(db, 0,
                                "SELECT count(*) FROM volume_replicas WHERE volume_id = ? AND "
                                "state = 'failed'",
                                "I", id) > 0)
            mvctld_errors_add(e, MVE_VOL_BUSY, field, "The volume is in state error.", ref);
        if (!mvctld_sql_int(db, 0,
                            "SELECT count(*) FROM volumes v JOIN rg_datastores r ON "
                            "r.datastore_id = v.datastore_id WHERE v.id = ? AND r.rg_id = ?",
                            "II", id, rg))
            mvctld_errors_add(e, MVE_INST_VOLUME_GROUP, field,
                              "The volume's datastore is not one of the resource group's.", ref);
        json_array_append_new(ids, json_integer(id));
        json_array_append_new(dot, json_boolean(json_is_true(d)));
    }
}

/* NICs: [{"network_id", "mac"?, "ip"?}]. */
static void check_networks(struct mvctld_db *db, const json_t *nets, long long rg,
                           struct mvctld_errors *e)
{
    if (!nets)
        return;
    if (!json_is_array(nets) || json_array_size(nets) > 8) {
        mvctld_errors_add(e, MVE_FIELD_TYPE, "networks",
                          "The networks must be an array of at most 8 interfaces.", NULL);
        return;
    }
    size_t i;
    json_t *n;
    json_array_foreach(nets, i, n)
    {
        char field[40];
        snprintf(field, sizeof field, "networks[%zu]", i);
        const json_t *id = json_object_get(n, "network_id"), *mac = json_object_get(n, "mac"),
                     *ip = json_object_get(n, "ip");
        if (!json_is_object(n) || !json_is_integer(id) || (mac && !json_is_string(mac)) ||
            (ip && !json_is_string(ip)) || json_object_size(n) != (size_t)(1 + !!mac + !!ip)) {
            mvctld_errors_add(e, MVE_FIELD_TYPE, field,
                              "An interface is {\"network_id\", \"mac\"?, \"ip\"?}.", NULL);
            continue;
        }
        if (!mvctld_sql_int(db, 0,
                            "SELECT count(*) FROM rg_networks WHERE rg_id = ? AND network_id = ?",
                            "II", rg, (long long)json_integer_value(id)))
            mvctld_errors_add(e, MVE_INST_NETWORK, field,
                              "The network does not exist or is not one of the resource group's.",
                              NULL);
        uint8_t m[6];
        if (mac && (json_string_length(mac) != 17 || mv_mac_parse(json_string_value(mac), m) != 0 ||
                    (m[0] & 1)))
            mvctld_errors_add(e, MVE_INST_MAC, field,
                              "The MAC must be a unicast aa:bb:cc:dd:ee:ff.", NULL);
    }
}

int mvctld_instance_create(struct mvctld_ctx *c, const json_t *body, json_t **out)
{
    static const char *const allowed[] = {
        "name",   "hostname", "resource_group_id", "vcpus",   "ram",      "payload", "kernel",
        "initrd", "cmdline",  "node_id",           "volumes", "networks", "start",   NULL};
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    if (!check_keys(body, allowed, &e))
        return mvctld_fail_422(&e, out);
    const char *name = want_str(body, "name", true, MVE_INST_NAME_EMPTY, &e);
    const char *hostname = want_str(body, "hostname", false, 0, &e);
    const char *payload = want_str(body, "payload", false, 0, &e);
    const char *kernel = want_str(body, "kernel", false, 0, &e);
    const char *initrd = want_str(body, "initrd", false, 0, &e);
    const char *node = want_str(body, "node_id", false, 0, &e);
    const json_t *cmdv = json_object_get(body, "cmdline");
    const char *cmdline = json_string_value(cmdv);
    if (cmdv && (!cmdline || strlen(cmdline) > 2048))
        mvctld_errors_add(&e, MVE_FIELD_TYPE, "cmdline",
                          "The cmdline must be a string of at most 2048 bytes.", NULL);
    const json_t *startv = json_object_get(body, "start");
    if (startv && !json_is_boolean(startv))
        mvctld_errors_add(&e, MVE_FIELD_TYPE, "start", "The start must be a boolean.", NULL);
    json_int_t rg = 0, vcpus = 0, ram = 0;
    bool have_rg = want_int(body, "resource_group_id", true, &rg, &e);
    if (want_int(body, "vcpus", true, &vcpus, &e) && (vcpus < 1 || vcpus > MVCTLD_MAX_VCPUS))
        mvctld_errors_add(&e, MVE_INST_VCPUS, "vcpus", "The vcpus must be 1..64.", NULL);
    if (want_int(body, "ram", true, &ram, &e) && (ram < 1 || ram > (1 << 20)))
        mvctld_errors_add(&e, MVE_INST_RAM, "ram", "The ram (MB) must be 1..1048576.", NULL);
    if (name && name_blank(name))
        mvctld_errors_add(&e, MVE_INST_NAME_EMPTY, "name", "The name is empty.", NULL);
    else if (name && (all_digits(name) || strlen(name) > 64))
        mvctld_errors_add(&e, MVE_INST_NAME_EMPTY, "name",
                          "The name must not be a number and at most 64 bytes.", NULL);
    else if (name && mvctld_sql_int(c->db, 0, "SELECT id FROM instances WHERE name = ?", "s", name))
        mvctld_errors_add(&e, MVE_INST_NAME_TAKEN, "name", "Another instance has this name.", NULL);
    if (!payload == !kernel)
        mvctld_errors_add(&e, MVE_INST_BOOT, payload ? "kernel" : "payload",
                          "Exactly one boot source is needed: payload or kernel.", NULL);
    else if (payload && (initrd || cmdline))
        mvctld_errors_add(&e, MVE_INST_BOOT, "payload",
                          "initrd and cmdline go with kernel, not payload.", NULL);
    check_path(body, "payload", &e);
    check_path(body, "kernel", &e);
    check_path(body, "initrd", &e);
    if (have_rg && !mvctld_sql_int(c->db, 0, "SELECT id FROM resource_groups WHERE id = ?", "I",
                                   (long long)rg)) {
        mvctld_errors_add(&e, MVE_INST_GROUP, "resource_group_id",
                          "The resource group does not exist.", NULL);
        have_rg = false;
    }
    json_t *vol_ids = json_array(), *dot = json_array();
    if (have_rg) {
        check_volumes(c->db, json_object_get(body, "volumes"), rg, vol_ids, dot, &e);
        check_networks(c->db, json_object_get(body, "networks"), rg, &e);
    }
    if (node && have_rg &&
        !mvctld_sql_int(c->db, 0, "SELECT count(*) FROM nodes WHERE id = ?", "s", node))
        mvctld_errors_add(&e, MVE_INST_NODE, "node_id", "The node does not exist.", node);
    struct mvctld_placement p;
    if (mvctld_errors_count(&e) == 0)
        mvctld_place_instance(c->db, rg, (int)vcpus, ram, node, vol_ids, 0, &p, &e);
    if (mvctld_errors_count(&e)) {
        json_decref(vol_ids);
        json_decref(dot);
        return mvctld_fail_422(&e, out);
    }
    mvctld_errors_free(&e);

    unsigned char u[16];
    randombytes_buf(u, sizeof u);
    u[6] = (u[6] & 0x0f) | 0x40; /* version 4 */
    u[8] = (u[8] & 0x3f) | 0x80;
    char uuid[37];
    snprintf(uuid, sizeof uuid,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
    const char *desired = json_is_false(startv) ? "stopped" : "running";
    if (mvctld_db_begin(c->db) != 0)
        return json_decref(vol_ids), json_decref(dot), mvctld_fail_500(c, out);
    int rc = mvctld_sql_run(
        c->db,
        "INSERT INTO instances (uuid, name, hostname, resource_group_id, vcpus, ram, payload, "
        "kernel, initrd, cmdline, node_id, numa_node, cpuset, pin, vnuma, desired, state, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "sssIiisssssssssssI", uuid, name, hostname ? hostname : "", (long long)rg, (int)vcpus,
        (int)ram, payload, kernel, initrd, cmdline, p.node_id, NULL, p.cpuset, p.pin, p.vnuma,
        desired, have_wire(c) ? "BUILD" : "STOPPED", (long long)time(NULL));
    long long id = sqlite3_last_insert_rowid(c->db->sql);
    if (rc == 0 && p.numa_node >= 0)
        rc = mvctld_sql_run(c->db, "UPDATE instances SET numa_node = ? WHERE id = ?", "iI",
                            p.numa_node, id);
    for (size_t i = 0; rc == 0 && i < json_array_size(vol_ids); i++)
        rc = mvctld_sql_run(c->db,
                            "UPDATE volumes SET instance_id = ?, boot_index = ?, "
                            "delete_on_termination = ? WHERE id = ?",
                            "IibI", id, (int)i, json_is_true(json_array_get(dot, i)),
                            (long long)json_integer_value(json_array_get(vol_ids, i)));
    json_decref(vol_ids);
    json_decref(dot);
    const json_t *nets = json_object_get(body, "networks"), *n;
    size_t i;
    json_array_foreach(nets, i, n)
    {
        if (rc != 0)
            break;
        char mac[MV_MAC_STR_LEN];
        const char *m = json_string_value(json_object_get(n, "mac"));
        if (!m) {
            /* Locally administered unicast, 52:54:00 like other KVM tools' defaults. */
            uint8_t b[6] = {0x52, 0x54, 0x00};
            randombytes_buf(b + 3, 3);
            mv_mac_format(b, mac);
            m = mac;
        }
        rc = mvctld_sql_run(c->db,
                            "INSERT INTO instance_nics (instance_id, idx, network_id, mac, ip) "
                            "VALUES (?, ?, ?, ?, ?)",
                            "IiIss", id, (int)i,
                            (long long)json_integer_value(json_object_get(n, "network_id")), m,
                            json_string_value(json_object_get(n, "ip")));
    }
    if (rc != 0 || mvctld_db_commit(c->db) != 0)
        return mvctld_fail_500(c, out);
    mv_info("instance %lld (%s, %s) placed on node %s (cpuset %s%s%s%s%s)", id, name, uuid,
            p.node_id, p.cpuset, p.pin[0] ? ", pin " : "", p.pin, p.vnuma[0] ? ", vnuma " : "",
            p.vnuma);
    kick(c);
    *out = instance_load(c->db, id);
    return 201;
}

/* Removes an instance row: detaches its volumes and deletes those marked
 * delete_on_termination (through their replicas when a wire exists). */
int mvctld_instance_forget(struct mvctld_db *db, long long id, bool wire)
{
    int rc;
    if (wire)
        rc = mvctld_sql_run(db,
                            "UPDATE volume_replicas SET op = 'delete', state = 'pending', error = "
                            "'' WHERE volume_id IN (SELECT id FROM volumes WHERE instance_id = ? "
                            "AND delete_on_termination = 1)",
                            "I", id) ||
             mvctld_sql_run(db,
                            "UPDATE volumes SET deleting = 1 WHERE instance_id = ? AND "
                            "delete_on_termination = 1",
                            "I", id);
    else
        rc = mvctld_sql_run(db,
                            "DELETE FROM volumes WHERE instance_id = ? AND delete_on_termination "
                            "= 1",
                            "I", id);
    if (rc == 0)
        rc = mvctld_sql_run(db, "UPDATE volumes SET instance_id = NULL WHERE instance_id = ?", "I",
                            id);
    if (rc == 0)
        rc = mvctld_sql_run(db, "DELETE FROM instances WHERE id = ?", "I", id);
    return rc;
}

int mvctld_instance_delete(struct mvctld_ctx *c, const char *ref, json_t **out)
{
    long long id = ref_to_id(c->db, "instances", ref);
    if (!id) {
        *out = mvctld_not_found("Instance", ref);
        return 404;
    }
    if (mvctld_db_begin(c->db) != 0)
        return mvctld_fail_500(c, out);
    int rc = have_wire(c)
                 ? mvctld_sql_run(c->db, "UPDATE instances SET desired = 'deleted' WHERE id = ?",
                                  "I", id)
                 : mvctld_instance_forget(c->db, id, false);
    if (rc != 0 || mvctld_db_commit(c->db) != 0)
        return mvctld_fail_500(c, out);
    mv_info("instance %lld: delete asked", id);
    kick(c);
    *out = NULL;
    return have_wire(c) ? 202 : 204;
}

int mvctld_instance_action(struct mvctld_ctx *c, const char *ref, const json_t *body, json_t **out)
{
    long long id;
    json_t *inst = instance_by_ref(c->db, ref, &id, out);
    if (!inst)
        return 404;
    static const char *const allowed[] = {"action", "node_id", "restart_after", NULL};
    struct mvctld_errors e;
    mvctld_errors_init(&e);
    const char *action = NULL, *target = NULL;
    const json_t *restart = json_object_get(body, "restart_after");
    if (check_keys(body, allowed, &e)) {
        action = want_str(body, "action", true, 0, &e);
        target = want_str(body, "node_id", false, 0, &e);
        if (restart && !json_is_boolean(restart))
            mvctld_errors_add(&e, MVE_FIELD_TYPE, "restart_after",
                              "The restart_after must be a boolean.", NULL);
    }
    static const char *const actions[] = {"start",   "stop",    "reboot", "pause",
                                          "unpause", "migrate", NULL};
    bool known = false;
    for (const char *const *a = actions; action && *a; a++)
        known |= strcmp(*a, action) == 0;
    if (action && !known)
        mvctld_errors_add(&e, MVE_INST_ACTION, "action",
                          "The action must be start, stop, reboot, pause, unpause or migrate.",
                          action);
    const char *desired = json_string_value(json_object_get(inst, "desired_state"));
    const char *state = json_string_value(json_object_get(inst, "state"));
    const char *node = json_string_value(json_object_get(inst, "node"));
    bool deleting = strcmp(desired, "deleted") == 0;
    bool migrating = json_object_get(inst, "migrate_to") != NULL;
    struct mvctld_placement p;
    memset(&p, 0, sizeof p);
    if (known && mvctld_errors_count(&e) == 0) {
        if (deleting || migrating)
            mvctld_errors_add(&e, MVE_INST_ACTION_STATE, "action",
                              deleting ? "The instance is being deleted."
                                       : "The instance is being migrated.",
                              NULL);
        else if (strcmp(action, "reboot") == 0 &&
                 (strcmp(desired, "running") != 0 || strcmp(state, "ACTIVE") != 0))
            mvctld_errors_add(&e, MVE_INST_ACTION_STATE, "action",
                              "Only a running instance can be rebooted.", state);
        else if (strcmp(action, "pause") == 0 && strcmp(desired, "stopped") == 0)
            mvctld_errors_add(&e, MVE_INST_ACTION_STATE, "action",
                              "A stopped instance cannot be paused.", state);
        else if (strcmp(action, "migrate") == 0) {
            if (!target)
                mvctld_errors_add(&e, MVE_INST_ACTION_STATE, "node_id",
                                  "The migrate action needs the target node_id.", NULL);
            else if (node && strcmp(target, node) == 0)
                mvctld_errors_add(&e, MVE_INST_ACTION_STATE, "node_id",
                                  "The instance is already on this node.", target);
            else
                mvctld_place_instance(
                    c->db, json_integer_value(json_object_get(inst, "resource_group_id")),
                    (int)json_integer_value(json_object_get(inst, "vcpus")),
                    json_integer_value(json_object_get(inst, "ram")), target, NULL, id, &p, &e);
        }
    }
    json_decref(inst);
    if (mvctld_errors_count(&e))
        return mvctld_fail_422(&e, out);
    mvctld_errors_free(&e);
    int rc = 0;
    if (strcmp(action, "start") == 0 || strcmp(action, "unpause") == 0)
        /* A start after a failure tries again: ERROR (with no VMM left) reads as stopped. */
        rc = mvctld_sql_run(c->db,
                            "UPDATE instances SET desired = 'running', error = '', state = CASE "
                            "WHEN state = 'ERROR' AND reported_node IS NULL THEN 'STOPPED' ELSE "
                            "state END WHERE id = ?",
                            "I", id);
    else if (strcmp(action, "stop") == 0)
        rc = mvctld_sql_run(
            c->db, "UPDATE instances SET desired = 'stopped', reboot = 0 WHERE id = ?", "I", id);
    else if (strcmp(action, "pause") == 0)
        rc = mvctld_sql_run(c->db, "UPDATE instances SET desired = 'paused' WHERE id = ?", "I", id);
    else if (strcmp(action, "reboot") == 0)
        rc = mvctld_sql_run(c->db, "UPDATE instances SET reboot = 1 WHERE id = ?", "I", id);
    else if (!have_wire(c)) /* migrate, bookkeeping only */
        rc = mvctld_sql_run(c->db,
                            "UPDATE instances SET node_id = ?, cpuset = ?, pin = ?, vnuma = ?, "
                            "numa_node = ? WHERE id = ?",
                            "ssssiI", p.node_id, p.cpuset, p.pin, p.vnuma, p.numa_node, id);
    else
        rc = mvctld_sql_run(c->db,
                            "UPDATE instances SET migrate_to = ?, migrate_restart = ?, reboot = 0 "
                            "WHERE id = ?",
                            "sbI", p.node_id, json_is_true(restart), id);
    if (rc != 0)
        return mvctld_fail_500(c, out);
    mvctld_db_touch(c->db);
    mv_info("instance %lld: %s%s%s", id, action, target ? " to " : "", target ? target : "");
    kick(c);
    *out = instance_load(c->db, id);
    return 202;
}

/* D2.3's InstanceInformation.state is an integer: libvirt's domain states, which Virtxd used. */
static int state_code(const char *s)
{
    if (strcmp(s, "ACTIVE") == 0)
        return 1;
    if (strcmp(s, "PAUSED") == 0)
        return 3;
    if (strcmp(s, "POWERING-OFF") == 0)
        return 4;
    if (strcmp(s, "STOPPED") == 0)
        return 5;
    if (strcmp(s, "ERROR") == 0)
        return 6;
    return 0;
}

int mvctld_instance_info(struct mvctld_ctx *c, const char *ref, json_t **out)
{
    long long id = ref_to_id(c->db, "instances", ref);
    if (!id) {
        *out = mvctld_not_found("Instance", ref);
        return 404;
    }
    sqlite3_stmt *st = mvctld_sql_query(c->db,
                                        "SELECT state, vm_cpus, vm_memory_mb, uuid, "
                                        "coalesce(reported_node, ''), pid, reported_at FROM "
                                        "instances WHERE id = ?",
                                        "I", id);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return mvctld_fail_500(c, out);
    }
    const char *state = mvctld_sql_col_text(st, 0);
    bool up = state_code(state) == 1 || state_code(state) == 3;
    long long mem_kb = up ? sqlite3_column_int64(st, 2) * 1024 : 0;
    *out = json_pack("{s:i, s:s, s:I, s:I, s:i, s:I, s:s, s:s, s:I, s:I}", "state",
                     state_code(state), "state_name", state, "max_mem_kb", (json_int_t)mem_kb,
                     "mem_kb", (json_int_t)mem_kb, "num_cpu", up ? sqlite3_column_int(st, 1) : 0,
                     "cpu_time_ns", (json_int_t)0, "uuid", mvctld_sql_col_text(st, 3), "node",
                     mvctld_sql_col_text(st, 4), "pid",
                     (json_int_t)(up ? sqlite3_column_int64(st, 5) : 0), "reported_at",
                     (json_int_t)sqlite3_column_int64(st, 6));
    sqlite3_finalize(st);
    return 200;
}
