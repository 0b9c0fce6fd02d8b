#include "mvctld/inventory.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mv/log.h"
#include "mv/util.h"
#include "sql.h"

#define INV_MAX_CPUS   4096
#define INV_MAX_NUMA   256
#define INV_MAX_DRIVES 1024
#define INV_ID_MAX     64

/* Ids end up in URLs and CLI arguments: keep them to a safe alphabet. */
static bool id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > INV_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}

static bool opt_int(const json_t *o, const char *k, json_int_t lo, json_int_t hi, json_int_t dflt,
                    json_int_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!v) {
        *out = dflt;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return false;
    *out = json_integer_value(v);
    return true;
}

static bool opt_str(const json_t *o, const char *k, size_t max, const char **out)
{
    json_t *v = json_object_get(o, k);
    if (!v) {
        *out = "";
        return true;
    }
    if (!json_is_string(v) || json_string_length(v) > max)
        return false;
    *out = json_string_value(v);
    return true;
}

#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

/* Everything is checked before anything is written. */
static int inventory_check(const json_t *inv, char *err, size_t errlen)
{
    const char *s;
    json_int_t n;
    uint8_t mac[MV_MAC_LEN];
    if (!json_is_object(inv))
        BAD("inventory: not a JSON object");
    if (!id_ok(json_string_value(json_object_get(inv, "node_id"))))
        BAD("inventory: node_id must be 1-64 characters of [A-Za-z0-9_.:-]");
    if (!opt_str(inv, "hostname", 255, &s))
        BAD("inventory: hostname must be a string of at most 255 bytes");
    if (!opt_str(inv, "mac", 32, &s) || (*s && mv_mac_parse(s, mac) != 0))
        BAD("inventory: mac is not a MAC address");
    if (!opt_int(inv, "mem_total_kb", 0, INT64_MAX / 2, 0, &n) ||
        !opt_int(inv, "mem_free_kb", 0, INT64_MAX / 2, 0, &n))
        BAD("inventory: mem_total_kb/mem_free_kb must be non-negative integers");
    json_t *labels = json_object_get(inv, "labels");
    if (labels && !json_is_object(labels))
        BAD("inventory: labels must be an object");
    if (!opt_str(labels, "blade", 63, &s) || !opt_str(labels, "chassis", 63, &s) ||
        !opt_str(labels, "rack", 63, &s))
        BAD("inventory: labels.blade/chassis/rack must be strings of at most 63 bytes");

    json_t *numa = json_object_get(inv, "numa_nodes"), *v;
    size_t i;
    if (numa && (!json_is_array(numa) || json_array_size(numa) > INV_MAX_NUMA))
        BAD("inventory: numa_nodes must be an array of at most %d", INV_MAX_NUMA);
    json_array_foreach(numa, i, v)
    {
        if (!json_is_object(v) || !json_is_integer(json_object_get(v, "id")) ||
            !opt_int(v, "id", 0, INV_MAX_NUMA, 0, &n) ||
            !opt_int(v, "mem_total_kb", 0, INT64_MAX / 2, 0, &n) ||
            !opt_int(v, "mem_free_kb", 0, INT64_MAX / 2, 0, &n))
            BAD("inventory: numa_nodes[%zu] needs an id (0-%d) and non-negative memory", i,
                INV_MAX_NUMA);
    }
    json_t *cpus = json_object_get(inv, "cpus");
    if (!json_is_array(cpus) || json_array_size(cpus) > INV_MAX_CPUS)
        BAD("inventory: cpus must be an array of at most %d", INV_MAX_CPUS);
    json_array_foreach(cpus, i, v)
    {
        json_t *online = json_object_get(v, "online");
        if (!json_is_object(v) || !json_is_integer(json_object_get(v, "cpu")) ||
            !opt_int(v, "cpu", 0, 1 << 20, 0, &n) || !opt_int(v, "core_id", 0, 1 << 20, 0, &n) ||
            !opt_int(v, "socket_id", 0, 1 << 20, 0, &n) ||
            !opt_int(v, "numa_node", -1, INV_MAX_NUMA, 0, &n) ||
            (online && !json_is_boolean(online) && !json_is_integer(online)))
            BAD("inventory: cpus[%zu] needs cpu, core_id, socket_id, numa_node as small "
                "integers",
                i);
        json_t *id = json_object_get(v, "id");
        if (id && !id_ok(json_string_value(id)))
            BAD("inventory: cpus[%zu].id is not a valid id", i);
    }
    json_t *drives = json_object_get(inv, "drives");
    if (drives && (!json_is_array(drives) || json_array_size(drives) > INV_MAX_DRIVES))
        BAD("inventory: drives must be an array of at most %d", INV_MAX_DRIVES);
    json_array_foreach(drives, i, v)
    {
        if (!json_is_object(v) || !id_ok(json_string_value(json_object_get(v, "id"))) ||
            !json_is_integer(json_object_get(v, "size_bytes")) ||
            !opt_int(v, "size_bytes", 0, INT64_MAX / 4, 0, &n) || !opt_str(v, "vendor", 127, &s) ||
            !opt_str(v, "model", 127, &s) || !opt_str(v, "serial", 127, &s))
            BAD("inventory: drives[%zu] needs an id and size_bytes (vendor, model, serial are "
                "optional strings)",
                i);
        /* The wire layer names the drive by its path in drive_format requests. */
        if (!opt_str(v, "path", 255, &s) || (*s && s[0] != '/') ||
            !opt_int(v, "capacity", 0, INT64_MAX / 4, 0, &n))
            BAD("inventory: drives[%zu]: path must be an absolute path of at most 255 bytes and "
                "capacity a non-negative integer",
                i);
    }
    return 0;
}

static int inventory_write(struct mvctld_db *db, const json_t *inv,
                           enum mvctld_inventory_source source)
{
    const char *node = json_string_value(json_object_get(inv, "node_id"));
    const json_t *labels = json_object_get(inv, "labels");
    const char *hostname = json_string_value(json_object_get(inv, "hostname"));
    const char *mac = json_string_value(json_object_get(inv, "mac"));
    const char *blade = json_string_value(json_object_get(labels, "blade"));
    const char *chassis = json_string_value(json_object_get(labels, "chassis"));
    const char *rack = json_string_value(json_object_get(labels, "rack"));
    long long now = (long long)(mv_realtime_ns() / 1000000000ull);
    if (mvctld_sql_run(db,
                       "INSERT INTO nodes (id, hostname, mac, blade, chassis, rack, state, source, "
                       "mem_total_kb, mem_free_kb, last_seen, inventory_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'online', ?7, ?8, ?9, ?10, ?10) "
                       "ON CONFLICT(id) DO UPDATE SET hostname = ?2, mac = ?3, blade = ?4, "
                       "chassis = ?5, rack = ?6, state = 'online', source = ?7, "
                       "mem_total_kb = ?8, mem_free_kb = ?9, last_seen = ?10, inventory_at = ?10",
                       "sssssssIII", node, hostname ? hostname : "", mac ? mac : "",
                       blade ? blade : "", chassis ? chassis : "", rack ? rack : "",
                       source == MVCTLD_INV_AGENT ? "agent" : "static",
                       (long long)json_integer_value(json_object_get(inv, "mem_total_kb")),
                       (long long)json_integer_value(json_object_get(inv, "mem_free_kb")),
                       now) != 0)
        return -1;

    size_t i;
    json_t *v;
    if (mvctld_sql_run(db, "DELETE FROM numa_nodes WHERE node_id = ?", "s", node) != 0)
        return -1;
    json_array_foreach(json_object_get(inv, "numa_nodes"), i, v)
    {
        if (mvctld_sql_run(db, "INSERT OR REPLACE INTO numa_nodes VALUES (?, ?, ?, ?)", "sIII",
                           node, (long long)json_integer_value(json_object_get(v, "id")),
                           (long long)json_integer_value(json_object_get(v, "mem_total_kb")),
                           (long long)json_integer_value(json_object_get(v, "mem_free_kb"))) != 0)
            return -1;
    }

    /* Cores: mark all absent, upsert the reported ones, drop the absent ones nobody uses. */
    if (mvctld_sql_run(db, "UPDATE cores SET present = 0 WHERE node_id = ?", "s", node) != 0)
        return -1;
    json_array_foreach(json_object_get(inv, "cpus"), i, v)
    {
        char id[INV_ID_MAX + 32];
        long long cpu = json_integer_value(json_object_get(v, "cpu"));
        const char *given = json_string_value(json_object_get(v, "id"));
        if (given)
            snprintf(id, sizeof id, "%s", given);
        else
            snprintf(id, sizeof id, "%s_%lld", node, cpu);
        json_t *online = json_object_get(v, "online");
        int is_online = !online || json_is_true(online) ||
                        (json_is_integer(online) && json_integer_value(online) != 0);
        json_t *numa = json_object_get(v, "numa_node");
        if (mvctld_sql_run(db,
                           "INSERT INTO cores (id, node_id, cpu, core_id, socket_id, numa_node, "
                           "online, present) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1) "
                           "ON CONFLICT(id) DO UPDATE SET node_id = ?2, cpu = ?3, core_id = ?4, "
                           "socket_id = ?5, numa_node = ?6, online = ?7, present = 1",
                           "ssIIIIb", id, node, cpu,
                           (long long)json_integer_value(json_object_get(v, "core_id")),
                           (long long)json_integer_value(json_object_get(v, "socket_id")),
                           numa ? (long long)json_integer_value(numa) : 0LL, is_online) != 0)
            return -1;
    }
    if (mvctld_sql_run(db,
                       "DELETE FROM cores WHERE node_id = ? AND present = 0 AND id NOT IN "
                       "(SELECT core_id FROM rg_cores)",
                       "s", node) != 0)
        return -1;

    /* Drives: the same, keeping absent ones that a datastore uses, in state 'error'. */
    if (mvctld_sql_run(db, "UPDATE disks SET present = 0 WHERE node_id = ?", "s", node) != 0)
        return -1;
    json_array_foreach(json_object_get(inv, "drives"), i, v)
    {
        const char *vendor = json_string_value(json_object_get(v, "vendor"));
        const char *model = json_string_value(json_object_get(v, "model"));
        const char *serial = json_string_value(json_object_get(v, "serial"));
        const char *path = json_string_value(json_object_get(v, "path"));
        json_t *cap = json_object_get(v, "capacity");
        /* A drive whose last format failed stays 'error' until it is formatted again. */
        if (mvctld_sql_run(db,
                           "INSERT INTO disks (id, node_id, total, vendor, model, serial_number, "
                           "present, path, capacity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, "
                           "CASE WHEN ?8 < 0 THEN NULL ELSE ?8 END) "
                           "ON CONFLICT(id) DO UPDATE SET node_id = ?2, total = ?3, vendor = ?4, "
                           "model = ?5, serial_number = ?6, present = 1, path = ?7, "
                           "capacity = CASE WHEN ?8 < 0 THEN capacity ELSE ?8 END, "
                           "state = CASE WHEN state = 'error' AND format_state != 'failed' "
                           "THEN 'enabled' ELSE state END",
                           "ssIssssI", json_string_value(json_object_get(v, "id")), node,
                           (long long)json_integer_value(json_object_get(v, "size_bytes")),
                           vendor ? vendor : "", model ? model : "", serial ? serial : "",
                           path ? path : "",
                           json_is_integer(cap) ? (long long)json_integer_value(cap) : -1LL) != 0)
            return -1;
    }
    if (mvctld_sql_run(db,
                       "DELETE FROM disks WHERE node_id = ? AND present = 0 AND "
                       "datastore_id IS NULL",
                       "s", node) != 0 ||
        mvctld_sql_run(db, "UPDATE disks SET state = 'error' WHERE node_id = ? AND present = 0",
                       "s", node) != 0)
        return -1;
    return 0;
}

int mvctld_inventory_apply(struct mvctld_db *db, const json_t *inventory,
                           enum mvctld_inventory_source source, char *err, size_t errlen)
{
    if (inventory_check(inventory, err, errlen) != 0)
        return -1;
    mvctld_db_lock(db);
    int rc = -1;
    if (mvctld_db_begin(db) == 0) {
        if (inventory_write(db, inventory, source) == 0 && mvctld_db_commit(db) == 0)
            rc = 0;
        else
            mvctld_db_rollback(db);
    }
    if (rc != 0)
        snprintf(err, errlen, "inventory: database error: %s", sqlite3_errmsg(db->sql));
    mvctld_db_unlock(db);
    if (rc == 0)
        mv_info("inventory of node %s applied",
                json_string_value(json_object_get(inventory, "node_id")));
    return rc;
}

int mvctld_inventory_import_file(struct mvctld_db *db, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return -1;
    }
    int rc = 0;
    if (json_is_array(doc)) {
        size_t i;
        json_t *v;
        json_array_foreach(doc, i, v)
        {
            char why[256];
            if (mvctld_inventory_apply(db, v, MVCTLD_INV_STATIC, why, sizeof why) != 0) {
                snprintf(err, errlen, "%s: entry %zu: %s", path, i, why);
                rc = -1;
                break;
            }
        }
    } else {
        char why[256];
        if (mvctld_inventory_apply(db, doc, MVCTLD_INV_STATIC, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", path, why);
            rc = -1;
        }
    }
    json_decref(doc);
    return rc;
}

int mvctld_node_seen(struct mvctld_db *db, const char *node_id)
{
    mvctld_db_lock(db);
    long long now = (long long)(mv_realtime_ns() / 1000000000ull);
    int rc = mvctld_sql_run(db, "UPDATE nodes SET state = 'online', last_seen = ? WHERE id = ?",
                            "Is", now, node_id);
    int changed = sqlite3_changes(db->sql);
    if (rc == 0 && changed)
        mvctld_db_touch(db);
    mvctld_db_unlock(db);
    if (rc != 0)
        return -EIO;
    return changed ? 0 : -ENOENT;
}

int mvctld_node_lost(struct mvctld_db *db, const char *node_id)
{
    mvctld_db_lock(db);
    int rc = mvctld_sql_run(db, "UPDATE nodes SET state = 'offline' WHERE id = ?", "s", node_id);
    int changed = sqlite3_changes(db->sql);
    if (rc == 0 && changed)
        mvctld_db_touch(db);
    mvctld_db_unlock(db);
    if (rc == 0 && changed)
        mv_warn("node %s lost", node_id);
    if (rc != 0)
        return -EIO;
    return changed ? 0 : -ENOENT;
}
