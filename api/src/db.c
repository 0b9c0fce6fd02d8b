#include "mvctld/db.h"

#include <stdio.h>
#include <string.h>

#include "mv/log.h"

/* Migration n (1-based) is migrations[n - 1]. Never edit a released entry: append a new one. */
static const char *const migrations[] = {
    /* 1: the D2.3 object model */
    "CREATE TABLE nodes ("
    "  id TEXT PRIMARY KEY, hostname TEXT NOT NULL, mac TEXT NOT NULL,"
    "  blade TEXT NOT NULL DEFAULT '', chassis TEXT NOT NULL DEFAULT '',"
    "  rack TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT 'offline',"
    "  source TEXT NOT NULL DEFAULT 'agent', mem_total_kb INTEGER NOT NULL DEFAULT 0,"
    "  mem_free_kb INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0,"
    "  inventory_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE numa_nodes ("
    "  node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE, numa_id INTEGER NOT NULL,"
    "  mem_total_kb INTEGER NOT NULL, mem_free_kb INTEGER NOT NULL,"
    "  PRIMARY KEY (node_id, numa_id));"
    "CREATE TABLE cores ("
    "  id TEXT PRIMARY KEY, node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
    "  cpu INTEGER NOT NULL, core_id INTEGER NOT NULL, socket_id INTEGER NOT NULL,"
    "  numa_node INTEGER NOT NULL, online INTEGER NOT NULL DEFAULT 1,"
    "  present INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE datastores ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',"
    "  replicas INTEGER NOT NULL, overcommit_disk TEXT NOT NULL DEFAULT '0',"
    "  is_thin INTEGER NOT NULL DEFAULT 1, has_db_metadata INTEGER NOT NULL DEFAULT 0,"
    "  repair_trigger TEXT NOT NULL DEFAULT 'manual', repair_period_sec INTEGER,"
    "  num_of_repairs INTEGER, state TEXT NOT NULL DEFAULT 'enabled',"
    "  reserved INTEGER NOT NULL DEFAULT 0, used INTEGER NOT NULL DEFAULT 0,"
    "  orphan_vdisks INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
    "CREATE TABLE disks ("
    "  id TEXT PRIMARY KEY, node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
    "  total INTEGER NOT NULL, vendor TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',"
    "  serial_number TEXT NOT NULL DEFAULT '',"
    "  datastore_id TEXT REFERENCES datastores(id) ON DELETE RESTRICT,"
    "  state TEXT NOT NULL DEFAULT 'enabled', present INTEGER NOT NULL DEFAULT 1,"
    "  used REAL NOT NULL DEFAULT 0);"
    "CREATE TABLE networks ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, virtual INTEGER NOT NULL,"
    "  vnet_id TEXT, ip_start TEXT, ip_end TEXT, cidr TEXT, gateway TEXT, dhcp_server_ip TEXT,"
    "  nat_forwarding INTEGER NOT NULL DEFAULT 0, ip_version INTEGER NOT NULL DEFAULT 4,"
    "  dhcp_type TEXT NOT NULL DEFAULT 'external', is_routable INTEGER NOT NULL DEFAULT 0,"
    "  is_private INTEGER NOT NULL DEFAULT 0, is_vlan INTEGER NOT NULL DEFAULT 0,"
    "  is_wire_vlan INTEGER NOT NULL DEFAULT 0, vlan_tag INTEGER,"
    "  is_dedicated INTEGER NOT NULL DEFAULT 0, mac TEXT);"
    "CREATE TABLE resource_groups ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '', cpu_overcommit INTEGER NOT NULL,"
    "  is_cpu_pinning_enabled INTEGER NOT NULL DEFAULT 0,"
    "  is_storage_latency_optimized INTEGER NOT NULL DEFAULT 1,"
    "  ft_enabled INTEGER NOT NULL DEFAULT 0, ft_unit TEXT NOT NULL DEFAULT 'mvgroup',"
    "  ft_max_failures INTEGER NOT NULL DEFAULT 0,"
    "  ft_automated_failover INTEGER NOT NULL DEFAULT 1,"
    "  ft_is_degraded INTEGER NOT NULL DEFAULT 0, is_reserved INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE rg_cores ("
    "  rg_id INTEGER NOT NULL REFERENCES resource_groups(id) ON DELETE CASCADE,"
    "  core_id TEXT NOT NULL UNIQUE REFERENCES cores(id) ON DELETE RESTRICT,"
    "  PRIMARY KEY (rg_id, core_id));"
    "CREATE TABLE rg_datastores ("
    "  rg_id INTEGER NOT NULL REFERENCES resource_groups(id) ON DELETE CASCADE,"
    "  datastore_id TEXT NOT NULL REFERENCES datastores(id) ON DELETE RESTRICT,"
    "  PRIMARY KEY (rg_id, datastore_id));"
    "CREATE TABLE rg_networks ("
    "  rg_id INTEGER NOT NULL REFERENCES resource_groups(id) ON DELETE CASCADE,"
    "  network_id INTEGER NOT NULL REFERENCES networks(id) ON DELETE RESTRICT,"
    "  PRIMARY KEY (rg_id, network_id));",
    /* 2: lookups by node and by datastore (list endpoints filter on them) */
    "CREATE INDEX cores_by_node ON cores(node_id);"
    "CREATE INDEX disks_by_node ON disks(node_id);"
    "CREATE INDEX disks_by_datastore ON disks(datastore_id);"
    "CREATE INDEX rg_datastores_by_ds ON rg_datastores(datastore_id);"
    "CREATE INDEX rg_networks_by_net ON rg_networks(network_id);",
    /* 3: the wire layer. A drive's path on its host (what drive_format names), its usable
     * capacity once formatted, and the state of the controller's format command for the disk's
     * datastore ('' none, 'pending', 'done', 'failed' + the host's error). disk_releases: drives
     * of deleted datastores whose host has not yet confirmed the release. */
    "ALTER TABLE disks ADD COLUMN path TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE disks ADD COLUMN capacity INTEGER;"
    "ALTER TABLE disks ADD COLUMN format_state TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE disks ADD COLUMN format_error TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE disk_releases ("
    "  disk_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, path TEXT NOT NULL,"
    "  datastore_id TEXT NOT NULL);",
    /* 4: volumes and instances (docs/instances.md). A volume's replicas are vdisk replicas on
     * drives of its datastore, each with the operation the controller still has to carry out on
     * its host (op: create, resize, delete; state pending/done/failed). An instance keeps what
     * was asked (desired, pending one-shot actions) apart from what its host reported (state,
     * reported_node), which only the agents' vm_list/vm_info answers change. */
    "CREATE TABLE volumes ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
    "  datastore_id TEXT NOT NULL REFERENCES datastores(id) ON DELETE RESTRICT,"
    "  vdisk_id TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, shelf INTEGER NOT NULL,"
    "  slot INTEGER NOT NULL, deleting INTEGER NOT NULL DEFAULT 0,"
    "  instance_id INTEGER REFERENCES instances(id) ON DELETE SET NULL,"
    "  boot_index INTEGER NOT NULL DEFAULT 0,"
    "  delete_on_termination INTEGER NOT NULL DEFAULT 0, cloned_from TEXT,"
    "  created_at INTEGER NOT NULL, UNIQUE (shelf, slot));"
    "CREATE TABLE volume_replicas ("
    "  volume_id INTEGER NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,"
    "  disk_id TEXT NOT NULL REFERENCES disks(id) ON DELETE RESTRICT,"
    "  node_id TEXT NOT NULL, op TEXT NOT NULL DEFAULT 'create',"
    "  state TEXT NOT NULL DEFAULT 'pending', error TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (volume_id, disk_id));"
    "CREATE TABLE instances ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, name TEXT NOT NULL UNIQUE,"
    "  hostname TEXT NOT NULL DEFAULT '',"
    "  resource_group_id INTEGER NOT NULL REFERENCES resource_groups(id) ON DELETE RESTRICT,"
    "  vcpus INTEGER NOT NULL, ram INTEGER NOT NULL, payload TEXT, kernel TEXT, initrd TEXT,"
    "  cmdline TEXT, node_id TEXT, numa_node INTEGER, cpuset TEXT NOT NULL DEFAULT '',"
    "  pin TEXT NOT NULL DEFAULT '', vnuma TEXT NOT NULL DEFAULT '',"
    "  desired TEXT NOT NULL DEFAULT 'running', reboot INTEGER NOT NULL DEFAULT 0,"
    "  migrate_to TEXT, migrate_restart INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL DEFAULT 'BUILD', reported_node TEXT, pid INTEGER NOT NULL DEFAULT 0,"
    "  vm_cpus INTEGER NOT NULL DEFAULT 0, vm_memory_mb INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT NOT NULL DEFAULT '', reported_at INTEGER NOT NULL DEFAULT 0,"
    "  acted_at INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
    "CREATE TABLE instance_nics ("
    "  instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  network_id INTEGER NOT NULL REFERENCES networks(id) ON DELETE RESTRICT,"
    "  mac TEXT NOT NULL, ip TEXT, PRIMARY KEY (instance_id, idx));"
    "CREATE INDEX volumes_by_instance ON volumes(instance_id);"
    "CREATE INDEX instances_by_node ON instances(node_id);",
};

int mvctld_db_latest_version(void)
{
    return (int)(sizeof migrations / sizeof migrations[0]);
}

void mvctld_db_lock(struct mvctld_db *db)
{
    pthread_mutex_lock(&db->lock);
}

void mvctld_db_unlock(struct mvctld_db *db)
{
    pthread_mutex_unlock(&db->lock);
}

int mvctld_db_exec(struct mvctld_db *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db->sql, sql, NULL, NULL, &msg) != SQLITE_OK) {
        mv_err("sqlite: %s", msg ? msg : sqlite3_errmsg(db->sql));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int mvctld_db_begin(struct mvctld_db *db)
{
    return mvctld_db_exec(db, "BEGIN IMMEDIATE");
}

int mvctld_db_commit(struct mvctld_db *db)
{
    if (mvctld_db_exec(db, "COMMIT") != 0) {
        mvctld_db_rollback(db);
        return -1;
    }
    mvctld_db_touch(db);
    return 0;
}

void mvctld_db_rollback(struct mvctld_db *db)
{
    if (!sqlite3_get_autocommit(db->sql))
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

void mvctld_db_touch(struct mvctld_db *db)
{
    db->generation++;
}

uint64_t mvctld_db_change_token(struct mvctld_db *db)
{
    uint64_t other = 0;
    if (db->data_version && sqlite3_step(db->data_version) == SQLITE_ROW)
        other = (uint64_t)sqlite3_column_int64(db->data_version, 0);
    if (db->data_version)
        sqlite3_reset(db->data_version);
    return (other << 32) ^ db->generation;
}

int mvctld_db_version(struct mvctld_db *db)
{
    sqlite3_stmt *st;
    int v = 0;
    if (sqlite3_prepare_v2(db->sql, "SELECT version FROM schema_version", -1, &st, NULL) !=
        SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

int mvctld_db_migrate(struct mvctld_db *db, int target, char *err, size_t errlen)
{
    if (target > mvctld_db_latest_version())
        target = mvctld_db_latest_version();
    if (mvctld_db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
                           "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS "
                           "(SELECT 1 FROM schema_version);") != 0) {
        snprintf(err, errlen, "cannot create schema_version: %s", sqlite3_errmsg(db->sql));
        return -1;
    }
    int have = mvctld_db_version(db);
    if (have > mvctld_db_latest_version()) {
        snprintf(err, errlen, "database schema version %d is newer than this mvctld (%d)", have,
                 mvctld_db_latest_version());
        return -1;
    }
    for (int v = have + 1; v <= target; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "UPDATE schema_version SET version = %d", v);
        if (mvctld_db_begin(db) != 0 || mvctld_db_exec(db, migrations[v - 1]) != 0 ||
            mvctld_db_exec(db, bump) != 0 || mvctld_db_commit(db) != 0) {
            snprintf(err, errlen, "migration %d failed: %s", v, sqlite3_errmsg(db->sql));
            mvctld_db_rollback(db);
            return -1;
        }
        mv_info("database migrated to schema version %d", v);
    }
    return 0;
}

static int db_open_raw(struct mvctld_db *db, const char *path, char *err, size_t errlen)
{
    memset(db, 0, sizeof *db);
    pthread_mutex_init(&db->lock, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &db->sql, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(db->sql, 5000);
    /* WAL lets `mvctld --import-inventory` write while the daemon serves reads. */
    if (mvctld_db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                           "PRAGMA foreign_keys=ON;") != 0) {
        snprintf(err, errlen, "%s: cannot set pragmas: %s", path, sqlite3_errmsg(db->sql));
        return -1;
    }
    if (sqlite3_prepare_v2(db->sql, "PRAGMA data_version", -1, &db->data_version, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db->sql));
        return -1;
    }
    return 0;
}

int mvctld_db_open(struct mvctld_db *db, const char *path, char *err, size_t errlen)
{
    return mvctld_db_open_version(db, path, mvctld_db_latest_version(), err, errlen);
}

int mvctld_db_open_version(struct mvctld_db *db, const char *path, int target, char *err,
                           size_t errlen)
{
    if (db_open_raw(db, path, err, errlen) != 0 ||
        mvctld_db_migrate(db, target, err, errlen) != 0) {
        mvctld_db_close(db);
        return -1;
    }
    return 0;
}

void mvctld_db_close(struct mvctld_db *db)
{
    if (db->data_version)
        sqlite3_finalize(db->data_version);
    if (db->sql)
        sqlite3_close(db->sql);
    db->sql = NULL;
    db->data_version = NULL;
    pthread_mutex_destroy(&db->lock);
}
