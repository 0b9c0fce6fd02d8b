/* The reconciler, database side (mvctld/instances.h): applies what the hosts report, plans the
 * commands that move them towards what was asked, records the answers. No network code: the
 * wire thread (wire.c) sends the commands; unit tests and fuzzers drive these directly. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mv/log.h"
#include "mv/util.h"
#include "mvctld/instances.h"
#include "sql.h"

#define UUID_MAX  64
#define STATE_MAX 32

/* D2.3 Instance states a VMM can report; anything else reads as ERROR. */
static const char *known_state(const char *s)
{
    static const char *const states[] = {"ACTIVE",      "BUILD",    "PAUSED",    "STOPPED",
                                         "ERROR",       "PAUSING",  "UNPAUSING", "POWERING-OFF",
                                         "POWERING-ON", "SPAWNING", "DELETING",  "UPDATING"};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (strcmp(s, states[i]) == 0)
            return states[i];
    return "ERROR";
}

/* A VMM process exists for it (it may be paused or shutting down). */
static bool is_running_state(const char *s)
{
    return strcmp(s, "ACTIVE") == 0 || strcmp(s, "PAUSED") == 0 || strcmp(s, "PAUSING") == 0 ||
           strcmp(s, "UNPAUSING") == 0 || strcmp(s, "POWERING-OFF") == 0 ||
           strcmp(s, "POWERING-ON") == 0 || strcmp(s, "BUILD") == 0 || strcmp(s, "SPAWNING") == 0;
}

static const json_t *vm_array(const json_t *answer)
{
    if (json_is_array(answer))
        return answer;
    return json_object_get(answer, "vms");
}

/* One VM as a host reported it: checked before anything is written. */
static bool vm_entry_ok(const json_t *v)
{
    const json_t *u = json_object_get(v, "uuid"), *s = json_object_get(v, "state");
    return json_is_object(v) && json_is_string(u) && json_string_length(u) > 0 &&
           json_string_length(u) <= UUID_MAX && json_is_string(s) &&
           json_string_length(s) <= STATE_MAX;
}

static long long int_or(const json_t *v, const char *k, long long dflt)
{
    const json_t *x = json_object_get(v, k);
    return json_is_integer(x) && json_integer_value(x) >= 0 ? json_integer_value(x) : dflt;
}

/* The list is older than what we know of this instance. */
static bool list_is_stale(long long id, long long acted_at, long long asked_at, const json_t *busy)
{
    char key[32];
    snprintf(key, sizeof key, "i%lld", id);
    return acted_at > asked_at || json_object_get(busy, key) != NULL;
}

/* Records one VM report of node. Returns 1 when it names a known instance. */
static int apply_vm(struct mvctld_db *db, const char *node, const json_t *v, long long now,
                    long long asked_at, const json_t *busy)
{
    const char *uuid = json_string_value(json_object_get(v, "uuid"));
    const char *state = known_state(json_string_value(json_object_get(v, "state")));
    sqlite3_stmt *st = mvctld_sql_query(db,
                                        "SELECT id, coalesce(node_id, ''), coalesce(migrate_to, "
                                        "''), desired, state, vcpus, ram, acted_at FROM "
                                        "instances WHERE uuid = ?",
                                        "s", uuid);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        mv_debug("node %s runs VM %s, which is no instance of ours: left alone", node, uuid);
        return 0;
    }
    long long id = sqlite3_column_int64(st, 0);
    if (list_is_stale(id, sqlite3_column_int64(st, 7), asked_at, busy)) {
        sqlite3_finalize(st);
        return 0;
    }
    char recorded[80], migrate_to[80], desired[16], old[STATE_MAX + 1];
    snprintf(recorded, sizeof recorded, "%s", mvctld_sql_col_text(st, 1));
    snprintf(migrate_to, sizeof migrate_to, "%s", mvctld_sql_col_text(st, 2));
    snprintf(desired, sizeof desired, "%s", mvctld_sql_col_text(st, 3));
    snprintf(old, sizeof old, "%s", mvctld_sql_col_text(st, 4));
    int vcpus = sqlite3_column_int(st, 5);
    long long ram = sqlite3_column_int64(st, 6);
    sqlite3_finalize(st);
    bool running = is_running_state(state);
    long long mem_kb = int_or(v, "max_mem_kb", ram * 1024);
    mvctld_sql_run(db,
                   "UPDATE instances SET state = ?, reported_node = ?, pid = ?, vm_cpus = ?, "
                   "vm_memory_mb = ?, reported_at = ? WHERE id = ?",
                   "ssIIIII", state, running ? node : NULL, int_or(v, "pid", 0),
                   int_or(v, "num_cpu", vcpus), mem_kb / 1024, now, id);
    /* Found running on another host than recorded (a restarted controller, an interrupted
     * migration): it stays where it is, and that is now its host. */
    if (running && strcmp(recorded, node) != 0) {
        mv_warn("instance %lld runs on node %s, recorded on %s: adopted there", id, node,
                recorded[0] ? recorded : "(none)");
        mvctld_sql_run(db, "UPDATE instances SET node_id = ? WHERE id = ?", "sI", node, id);
        if (strcmp(migrate_to, node) == 0)
            mvctld_sql_run(db, "UPDATE instances SET migrate_to = NULL WHERE id = ?", "I", id);
    }
    /* The guest powered itself off (a clean STOPPED, not a vanished VMM): it stays off, as on
     * any cloud, instead of being started again and again. */
    bool was_up = strcmp(old, "ACTIVE") == 0 || strcmp(old, "PAUSED") == 0;
    if (strcmp(state, "STOPPED") == 0 && was_up && strcmp(desired, "running") == 0)
        mvctld_sql_run(db, "UPDATE instances SET desired = 'stopped' WHERE id = ?", "I", id);
    if (strcmp(state, "ERROR") == 0)
        mvctld_sql_run(db, "UPDATE instances SET error = ? WHERE id = ?", "sI",
                       json_is_string(json_object_get(v, "error"))
                           ? json_string_value(json_object_get(v, "error"))
                           : "The VMM reported an error.",
                       id);
    return 1;
}

int mvctld_reconcile_vm_list(struct mvctld_db *db, const char *node_id, const json_t *answer,
                             long long asked_at, const json_t *busy)
{
    const json_t *vms = vm_array(answer);
    if (!json_is_array(vms))
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(vms, i, v)
    {
        if (!vm_entry_ok(v))
            return -1;
    }
    long long now = (long long)time(NULL);
    int changed = 0;
    mvctld_db_lock(db);
    if (mvctld_db_begin(db) != 0) {
        mvctld_db_unlock(db);
        return -1;
    }
    json_array_foreach(vms, i, v)
    {
        changed += apply_vm(db, node_id, v, now, asked_at, busy);
    }
    /* Recorded as running there and not in the list: its VMM is gone. */
    sqlite3_stmt *st = mvctld_sql_query(
        db, "SELECT id, uuid, acted_at FROM instances WHERE reported_node = ?", "s", node_id);
    json_t *gone = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *uuid = mvctld_sql_col_text(st, 1);
        if (list_is_stale(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 2), asked_at, busy))
            continue;
        bool listed = false;
        json_array_foreach(vms, i, v)
        {
            listed |= strcmp(json_string_value(json_object_get(v, "uuid")), uuid) == 0;
        }
        if (!listed)
            json_array_append_new(gone, json_integer(sqlite3_column_int64(st, 0)));
    }
    sqlite3_finalize(st);
    json_array_foreach(gone, i, v)
    {
        mvctld_sql_run(db,
                       "UPDATE instances SET state = 'STOPPED', reported_node = NULL, pid = 0, "
                       "reported_at = ? WHERE id = ?",
                       "II", now, (long long)json_integer_value(v));
        changed++;
    }
    json_decref(gone);
    if (mvctld_db_commit(db) != 0)
        changed = -1;
    mvctld_db_unlock(db);
    return changed;
}

int mvctld_reconcile_node_lost(struct mvctld_db *db, const char *node_id)
{
    (void)db;
    (void)node_id;
    /* Nothing to write: the last report stays (reported_at tells its age) and no command is
     * planned for an offline host. Failover of its VMs is the fault-tolerance layer's. */
    return 0;
}

/* ---------------------------------------------------------------- plan */

static bool is_busy(const json_t *busy, const char *key)
{
    return json_object_get(busy, key) != NULL;
}

static bool node_online(struct mvctld_db *db, const char *node)
{
    return node && *node &&
           mvctld_sql_int(db, 0, "SELECT count(*) FROM nodes WHERE id = ? AND state = 'online'",
                          "s", node) > 0;
}

static json_t *command(const char *op, int code, const char *node, const char *key, json_t *payload)
{
    return json_pack("{s:s, s:i, s:s, s:s, s:o}", "op", op, "code", code, "node", node, "key", key,
                     "payload", payload);
}

/* The disks of an instance for vm_start: each volume's AoE address, served by this host's
 * mvstored when it holds a replica, else by the first host with a ready replica. NULL when a
 * volume is not ready (or its replicas failed: *failed set). */
static json_t *vm_disks(struct mvctld_db *db, long long id, const char *node, bool *failed)
{
    json_t *disks = json_array();
    sqlite3_stmt *st = mvctld_sql_query(db,
                                        "SELECT id, vdisk_id, shelf, slot FROM volumes WHERE "
                                        "instance_id = ? ORDER BY boot_index, id",
                                        "I", id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        long long vid = sqlite3_column_int64(st, 0);
        if (mvctld_sql_int(db, 0,
                           "SELECT count(*) FROM volume_replicas WHERE volume_id = ? AND state = "
                           "'failed'",
                           "I", vid) > 0)
            *failed = true;
        if (*failed || mvctld_sql_int(db, 0,
                                      "SELECT count(*) FROM volume_replicas WHERE volume_id = ? "
                                      "AND state != 'done'",
                                      "I", vid) > 0) {
            json_decref(disks);
            sqlite3_finalize(st);
            return NULL;
        }
        char target[MV_MAC_STR_LEN + 8] = "";
        if (mvctld_sql_int(db, 0,
                           "SELECT count(*) FROM volume_replicas WHERE volume_id = ? AND node_id "
                           "= ?",
                           "Is", vid, node) > 0) {
            snprintf(target, sizeof target, "local");
        } else {
            sqlite3_stmt *m = mvctld_sql_query(db,
                                               "SELECT n.mac FROM volume_replicas r JOIN nodes n "
                                               "ON n.id = r.node_id WHERE r.volume_id = ? ORDER "
                                               "BY n.state = 'online' DESC, r.disk_id LIMIT 1",
                                               "I", vid);
            if (m && sqlite3_step(m) == SQLITE_ROW)
                snprintf(target, sizeof target, "%s", mvctld_sql_col_text(m, 0));
            sqlite3_finalize(m);
        }
        if (!target[0]) { /* a volume without replicas: bookkeeping-only data */
            *failed = true;
            json_decref(disks);
            sqlite3_finalize(st);
            return NULL;
        }
        json_array_append_new(
            disks, json_pack("{s:s, s:i, s:i, s:s, s:b}", "id", mvctld_sql_col_text(st, 1), "shelf",
                             sqlite3_column_int(st, 2), "slot", sqlite3_column_int(st, 3), "target",
                             target, "ro", 0));
    }
    sqlite3_finalize(st);
    return disks;
}

static json_t *vm_nics(struct mvctld_db *db, long long id)
{
    json_t *nics = json_array();
    sqlite3_stmt *st = mvctld_sql_query(db,
                                        "SELECT i.idx, i.network_id, i.mac, n.is_vlan, "
                                        "coalesce(n.vlan_tag, 0) FROM instance_nics i JOIN "
                                        "networks n ON n.id = i.network_id WHERE i.instance_id = "
                                        "? ORDER BY i.idx",
                                        "I", id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        char nid[16];
        snprintf(nid, sizeof nid, "net%d", sqlite3_column_int(st, 0));
        json_array_append_new(nics,
                              json_pack("{s:s, s:I, s:i, s:s}", "id", nid, "network_id",
                                        (json_int_t)sqlite3_column_int64(st, 1), "vlan",
                                        sqlite3_column_int(st, 3) ? sqlite3_column_int(st, 4) : 0,
                                        "mac", mvctld_sql_col_text(st, 2)));
    }
    sqlite3_finalize(st);
    return nics;
}

#define PLAN_SELECT                                                                                \
    "SELECT id, uuid, name, vcpus, ram, payload, kernel, initrd, cmdline, coalesce(node_id, ''), " \
    "cpuset, pin, vnuma, desired, reboot, coalesce(migrate_to, ''), state, "                       \
    "coalesce(reported_node, '') FROM instances ORDER BY id"

static json_t *vm_start_payload(struct mvctld_db *db, sqlite3_stmt *st, json_t *disks)
{
    json_t *p = json_pack("{s:s, s:s, s:i, s:i, s:o, s:o}", "uuid", mvctld_sql_col_text(st, 1),
                          "name", mvctld_sql_col_text(st, 2), "vcpus", sqlite3_column_int(st, 3),
                          "mem_mb", sqlite3_column_int(st, 4), "disks", disks, "nics",
                          vm_nics(db, sqlite3_column_int64(st, 0)));
    static const char *const text[] = {NULL,      NULL,     NULL,     NULL,     NULL,
                                       "payload", "kernel", "initrd", "cmdline"};
    for (int col = 5; col <= 8; col++)
        if (sqlite3_column_type(st, col) != SQLITE_NULL)
            json_object_set_new(p, text[col], json_string(mvctld_sql_col_text(st, col)));
    if (*mvctld_sql_col_text(st, 10))
        json_object_set_new(p, "cpuset", json_string(mvctld_sql_col_text(st, 10)));
    if (*mvctld_sql_col_text(st, 11))
        json_object_set_new(p, "pin", json_string(mvctld_sql_col_text(st, 11)));
    if (*mvctld_sql_col_text(st, 12))
        json_object_set_new(p, "vnuma", json_string(mvctld_sql_col_text(st, 12)));
    return p;
}

static json_t *uuid_payload(const char *uuid)
{
    return json_pack("{s:s}", "uuid", uuid);
}

static void plan_instances(struct mvctld_db *db, const json_t *busy, bool all_listed,
                           int stop_timeout_ms, json_t *cmds)
{
    sqlite3_stmt *st = mvctld_sql_query(db, PLAN_SELECT, NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        char key[32];
        snprintf(key, sizeof key, "i%lld", id);
        if (is_busy(busy, key))
            continue;
        const char *uuid = mvctld_sql_col_text(st, 1);
        const char *node = mvctld_sql_col_text(st, 9);
        const char *desired = mvctld_sql_col_text(st, 13);
        bool reboot = sqlite3_column_int(st, 14);
        const char *migrate_to = mvctld_sql_col_text(st, 15);
        const char *state = mvctld_sql_col_text(st, 16);
        const char *where = mvctld_sql_col_text(st, 17); /* "" = runs nowhere we know of */
        bool up = *where != 0;
        json_t *c = NULL;
        if (strcmp(desired, "deleted") == 0) {
            /* Delete where it runs, else where it was placed (its run files). */
            const char *on = up ? where : node;
            if (node_online(db, on))
                c = command("vm_delete", MVCTLD_OP_VM_DELETE, on, key, uuid_payload(uuid));
            else if (!up) /* its host is gone: nothing to clean up there now */
                c = json_pack("{s:s, s:s, s:I}", "op", "forget", "key", key, "instance", id);
        } else if (*migrate_to) {
            /* Cold migration: stop at the source, remove it there, then move the record. */
            if (up && node_online(db, where) && strcmp(state, "POWERING-OFF") != 0)
                c = command("vm_stop", MVCTLD_OP_VM_STOP, where, key,
                            json_pack("{s:s, s:b, s:i}", "uuid", uuid, "force", 0, "timeout_ms",
                                      stop_timeout_ms));
            else if (!up && node_online(db, node))
                c = command("vm_delete", MVCTLD_OP_VM_DELETE, node, key, uuid_payload(uuid));
            else if (!up && !node_online(db, node) && *node)
                mv_debug("instance %lld: migration waits for node %s", id, node);
        } else if (up) {
            if (!node_online(db, where))
                ;
            else if (strcmp(desired, "stopped") == 0 && strcmp(state, "POWERING-OFF") != 0)
                c = command("vm_stop", MVCTLD_OP_VM_STOP, where, key,
                            json_pack("{s:s, s:b, s:i}", "uuid", uuid, "force", 0, "timeout_ms",
                                      stop_timeout_ms));
            else if (strcmp(desired, "running") == 0 && strcmp(state, "PAUSED") == 0)
                c = command("vm_unpause", MVCTLD_OP_VM_UNPAUSE, where, key, uuid_payload(uuid));
            else if (strcmp(desired, "paused") == 0 && strcmp(state, "ACTIVE") == 0)
                c = command("vm_pause", MVCTLD_OP_VM_PAUSE, where, key, uuid_payload(uuid));
            else if (strcmp(desired, "running") == 0 && strcmp(state, "ACTIVE") == 0 && reboot)
                c = command("vm_reboot", MVCTLD_OP_VM_REBOOT, where, key, uuid_payload(uuid));
        } else if ((strcmp(desired, "running") == 0 || strcmp(desired, "paused") == 0) &&
                   strcmp(state, "ERROR") != 0) {
            /* Not running anywhere: start it on its host, but only once every online host has
             * told what it runs (it may run elsewhere after a restart: never twice). */
            bool failed = false;
            if (all_listed && node_online(db, node)) {
                json_t *disks = vm_disks(db, id, node, &failed);
                if (disks)
                    c = command("vm_start", MVCTLD_OP_VM_START, node, key,
                                vm_start_payload(db, st, disks));
            }
            if (failed)
                mvctld_sql_run(db,
                               "UPDATE instances SET state = 'ERROR', error = 'A volume of the "
                               "instance is in state error.' WHERE id = ? AND state != 'ERROR'",
                               "I", id);
        }
        if (c) {
            json_object_set_new(c, "instance", json_integer(id));
            json_array_append_new(cmds, c);
        }
    }
    sqlite3_finalize(st);
}

static void plan_replicas(struct mvctld_db *db, const json_t *busy, json_t *cmds)
{
    sqlite3_stmt *st = mvctld_sql_query(
        db,
        "SELECT r.volume_id, r.disk_id, r.node_id, r.op, v.vdisk_id, v.size, v.shelf, v.slot, "
        "d.path, ds.is_thin FROM volume_replicas r JOIN volumes v ON v.id = r.volume_id JOIN "
        "disks d ON d.id = r.disk_id JOIN datastores ds ON ds.id = v.datastore_id JOIN nodes n "
        "ON n.id = r.node_id WHERE r.state = 'pending' AND n.state = 'online' ORDER BY "
        "r.volume_id, r.disk_id",
        NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        char key[160];
        long long vid = sqlite3_column_int64(st, 0);
        const char *disk = mvctld_sql_col_text(st, 1), *op = mvctld_sql_col_text(st, 3);
        const char *vdisk = mvctld_sql_col_text(st, 4);
        snprintf(key, sizeof key, "r%lld/%s", vid, disk);
        if (is_busy(busy, key))
            continue;
        json_t *c;
        if (strcmp(op, "create") == 0)
            c = command("replica_create", 0x0112, mvctld_sql_col_text(st, 2), key,
                        json_pack("{s:s, s:I, s:s, s:b, s:b, s:i, s:i}", "vdisk", vdisk, "size",
                                  (json_int_t)sqlite3_column_int64(st, 5), "drive",
                                  mvctld_sql_col_text(st, 8), "thin", sqlite3_column_int(st, 9),
                                  "map", 1, "shelf", sqlite3_column_int(st, 6), "slot",
                                  sqlite3_column_int(st, 7)));
        else if (strcmp(op, "resize") == 0)
            c = command("replica_resize", 0x0116, mvctld_sql_col_text(st, 2), key,
                        json_pack("{s:s, s:I}", "vdisk", vdisk, "size",
                                  (json_int_t)sqlite3_column_int64(st, 5)));
        else
            c = command("replica_delete", 0x0115, mvctld_sql_col_text(st, 2), key,
                        json_pack("{s:s}", "vdisk", vdisk));
        json_object_set_new(c, "volume", json_integer(vid));
        json_object_set_new(c, "disk", json_string(disk));
        json_array_append_new(cmds, c);
    }
    sqlite3_finalize(st);
}

json_t *mvctld_reconcile_plan(struct mvctld_db *db, const json_t *busy, const json_t *listed,
                              int stop_timeout_ms)
{
    json_t *cmds = json_array();
    mvctld_db_lock(db);
    /* Every online agent must have been listed (static nodes have no agent to ask). */
    bool all_listed = true;
    sqlite3_stmt *st = mvctld_sql_query(
        db, "SELECT id FROM nodes WHERE state = 'online' AND source = 'agent'", NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        if (!json_object_get(listed, mvctld_sql_col_text(st, 0)))
            all_listed = false;
    sqlite3_finalize(st);
    plan_replicas(db, busy, cmds);
    plan_instances(db, busy, all_listed, stop_timeout_ms, cmds);
    mvctld_db_unlock(db);
    return cmds;
}

/* ---------------------------------------------------------------- answers */

static int replica_done(struct mvctld_db *db, const json_t *cmd, int status, const char *err)
{
    long long vid = json_integer_value(json_object_get(cmd, "volume"));
    const char *disk = json_string_value(json_object_get(cmd, "disk"));
    const char *op = json_string_value(json_object_get(cmd, "op"));
    if (!disk || !op)
        return 0;
    const char *want = strcmp(op, "replica_create") == 0   ? "create"
                       : strcmp(op, "replica_resize") == 0 ? "resize"
                                                           : "delete";
    /* Idempotent ops: a replica that is already there (create sent again after a restart) or
     * already gone (delete) is what was asked. */
    if (status != 0 && err &&
        ((strcmp(want, "create") == 0 && strstr(err, "already has a replica")) ||
         (strcmp(want, "delete") == 0 && strstr(err, "no replica"))))
        status = 0;
    /* Only a replica still waiting for this same op changes (a late answer changes nothing). */
    if (mvctld_sql_int(db, 0,
                       "SELECT count(*) FROM volume_replicas WHERE volume_id = ? AND disk_id = ? "
                       "AND op = ? AND state = 'pending'",
                       "Iss", vid, disk, want) == 0)
        return 0;
    if (status != 0) {
        mv_warn("volume %lld: %s on disk %s failed: %s", vid, op, disk, err ? err : "?");
        mvctld_sql_run(db,
                       "UPDATE volume_replicas SET state = 'failed', error = ? WHERE volume_id = "
                       "? AND disk_id = ?",
                       "sIs", err ? err : "failed", vid, disk);
        return 1;
    }
    if (strcmp(want, "delete") == 0) {
        mvctld_sql_run(db, "DELETE FROM volume_replicas WHERE volume_id = ? AND disk_id = ?", "Is",
                       vid, disk);
        if (mvctld_sql_int(db, 0, "SELECT count(*) FROM volume_replicas WHERE volume_id = ?", "I",
                           vid) == 0 &&
            mvctld_sql_int(db, 0, "SELECT deleting FROM volumes WHERE id = ?", "I", vid) == 1) {
            mvctld_sql_run(db, "DELETE FROM volumes WHERE id = ?", "I", vid);
            mv_info("volume %lld: all replicas deleted", vid);
        }
    } else {
        mvctld_sql_run(db,
                       "UPDATE volume_replicas SET state = 'done', error = '' WHERE volume_id = ? "
                       "AND disk_id = ?",
                       "Is", vid, disk);
    }
    return 1;
}

static int instance_done(struct mvctld_db *db, const json_t *cmd, int status, const json_t *reply,
                         const char *err)
{
    long long id = json_integer_value(json_object_get(cmd, "instance"));
    const char *op = json_string_value(json_object_get(cmd, "op"));
    const char *node = json_string_value(json_object_get(cmd, "node"));
    long long now = (long long)time(NULL);
    if (!op || !mvctld_sql_int(db, 0, "SELECT count(*) FROM instances WHERE id = ?", "I", id))
        return 0;
    if (strcmp(op, "forget") == 0) {
        mvctld_instance_forget(db, id, true);
        mv_info("instance %lld deleted (its host is offline)", id);
        return 1;
    }
    /* vm_delete of an unknown VM: it is gone, which is what was asked. */
    if (status == -ENOENT && strcmp(op, "vm_delete") == 0)
        status = 0;
    if (status != 0) {
        mv_warn("instance %lld: %s on node %s failed: %s", id, op, node ? node : "?",
                err ? err : "?");
        mvctld_sql_run(db, "UPDATE instances SET error = ? WHERE id = ?", "sI",
                       err ? err : "failed", id);
        if (strcmp(op, "vm_start") == 0)
            mvctld_sql_run(db, "UPDATE instances SET state = 'ERROR' WHERE id = ?", "I", id);
        if (strcmp(op, "vm_reboot") == 0)
            mvctld_sql_run(db, "UPDATE instances SET reboot = 0 WHERE id = ?", "I", id);
        return 1;
    }
    mvctld_sql_run(db, "UPDATE instances SET error = '' WHERE id = ?", "I", id);
    mvctld_sql_run(db, "UPDATE instances SET acted_at = ? WHERE id = ?", "II",
                   (long long)mv_realtime_ns(), id);
    const json_t *rs = json_object_get(reply, "state");
    const char *state = json_is_string(rs) && json_string_length(rs) <= STATE_MAX
                            ? known_state(json_string_value(rs))
                            : NULL;
    if (strcmp(op, "vm_start") == 0) {
        if (!state)
            state = "ACTIVE";
        mvctld_sql_run(db,
                       "UPDATE instances SET state = ?, reported_node = ?, pid = ?, reboot = 0, "
                       "vm_cpus = vcpus, vm_memory_mb = ram, reported_at = ? WHERE id = ?",
                       "ssIII", state, is_running_state(state) ? node : NULL,
                       int_or(reply, "pid", 0), now, id);
    } else if (strcmp(op, "vm_stop") == 0) {
        /* The agent may answer while the guest is still shutting down (POWERING-OFF): the VMM
         * still exists there, and vm_list tells when it is gone. */
        if (!state)
            state = "STOPPED";
        bool still = is_running_state(state);
        mvctld_sql_run(db,
                       "UPDATE instances SET state = ?, reported_node = ?, pid = CASE WHEN ? THEN "
                       "pid ELSE 0 END, reported_at = ? WHERE id = ?",
                       "ssbII", state, still ? node : NULL, still, now, id);
    } else if (strcmp(op, "vm_delete") == 0) {
        const char *desired = "";
        sqlite3_stmt *st = mvctld_sql_query(
            db,
            "SELECT desired, coalesce(migrate_to, ''), migrate_restart FROM instances WHERE id = ?",
            "I", id);
        /* Sized as a placement's node id, which it is copied into. */
        char migrate_to[sizeof((struct mvctld_placement *)0)->node_id] = "";
        bool restart = false;
        if (st && sqlite3_step(st) == SQLITE_ROW) {
            desired = strcmp(mvctld_sql_col_text(st, 0), "deleted") == 0 ? "deleted" : "";
            snprintf(migrate_to, sizeof migrate_to, "%s", mvctld_sql_col_text(st, 1));
            restart = sqlite3_column_int(st, 2);
        }
        sqlite3_finalize(st);
        if (*desired) {
            mvctld_instance_forget(db, id, true);
            mv_info("instance %lld deleted on node %s", id, node);
        } else if (migrate_to[0]) {
            /* Cold migration, last step: the record moves; the target starts it (restart) or
             * keeps it stopped. Its cores on the target are chosen again now. */
            struct mvctld_placement p;
            struct mvctld_errors e;
            mvctld_errors_init(&e);
            long long rg = mvctld_sql_int(
                db, 0, "SELECT resource_group_id FROM instances WHERE id = ?", "I", id);
            int vcpus =
                (int)mvctld_sql_int(db, 1, "SELECT vcpus FROM instances WHERE id = ?", "I", id);
            long long ram =
                mvctld_sql_int(db, 1, "SELECT ram FROM instances WHERE id = ?", "I", id);
            if (mvctld_place_instance(db, rg, vcpus, ram, migrate_to, NULL, id, &p, &e) != 0) {
                memset(&p, 0, sizeof p);
                snprintf(p.node_id, sizeof p.node_id, "%s", migrate_to);
                p.numa_node = -1;
            }
            mvctld_errors_free(&e);
            mvctld_sql_run(db,
                           "UPDATE instances SET node_id = ?, migrate_to = NULL, cpuset = ?, pin "
                           "= ?, vnuma = ?, numa_node = ?, desired = ?, state = 'STOPPED' WHERE "
                           "id = ?",
                           "ssssssI", migrate_to, p.cpuset, p.pin, p.vnuma, NULL,
                           restart ? "running" : "stopped", id);
            if (p.numa_node >= 0)
                mvctld_sql_run(db, "UPDATE instances SET numa_node = ? WHERE id = ?", "iI",
                               p.numa_node, id);
            mv_info("instance %lld migrated from node %s to %s%s", id, node, migrate_to,
                    restart ? " (restarting)" : "");
        }
    } else if (strcmp(op, "vm_reboot") == 0) {
        mvctld_sql_run(db, "UPDATE instances SET reboot = 0 WHERE id = ?", "I", id);
    }
    /* The agent answers after the VMM did it; without a state in the answer, that is it. */
    if (!state && strcmp(op, "vm_pause") == 0)
        state = "PAUSED";
    else if (!state && (strcmp(op, "vm_unpause") == 0 || strcmp(op, "vm_reboot") == 0))
        state = "ACTIVE";
    if (state && strcmp(op, "vm_start") != 0 && strcmp(op, "vm_stop") != 0 &&
        strcmp(op, "vm_delete") != 0)
        mvctld_sql_run(db, "UPDATE instances SET state = ?, reported_at = ? WHERE id = ?", "sII",
                       state, now, id);
    return 1;
}

int mvctld_reconcile_done(struct mvctld_db *db, const json_t *cmd, int status, const json_t *reply,
                          const char *err)
{
    mvctld_db_lock(db);
    int rc = 0;
    if (mvctld_db_begin(db) == 0) {
        if (json_object_get(cmd, "volume"))
            rc = replica_done(db, cmd, status, err);
        else if (json_object_get(cmd, "instance"))
            rc = instance_done(db, cmd, status, reply, err);
        if (mvctld_db_commit(db) != 0)
            rc = -1;
    }
    mvctld_db_unlock(db);
    return rc;
}
