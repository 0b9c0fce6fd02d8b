/* The controller side of host discovery: inventories and liveness reported by the agents (over
 * the raw-Ethernet control channel, or from a static file with `mvctld --import-inventory`), and
 * the commands the controller sends to hosts, as a table the wire layer fills in.
 *
 * Inventory document (what mvagent's mv_inventory_to_json() sends, plus "drives"):
 *   {"node_id": "54424488", "hostname": "mv-a", "mac": "02:00:54:42:44:88",
 *    "cpus": [{"id": "54424488_0", "cpu": 0, "core_id": 0, "socket_id": 0, "numa_node": 0,
 *              "online": true}, ...],
 *    "numa_nodes": [{"id": 0, "mem_total_kb": 8388608, "mem_free_kb": 8000000}, ...],
 *    "mem_total_kb": ..., "mem_free_kb": ...,
 *    "drives": [{"id": "3584916917", "size_bytes": 107374182400, "vendor": "ATA",
 *                "model": "...", "serial": "..."}, ...],
 *    "labels": {"blade": "b1", "chassis": "c1", "rack": "r1"}}
 * Other members (nics, loadavg, ...) are accepted and ignored. */
#ifndef MVCTLD_INVENTORY_H
#define MVCTLD_INVENTORY_H

#include <jansson.h>
#include <stddef.h>

#include "mvctld/db.h"

/* Commands to hosts. Each is asynchronous: it queues the command and returns 0, or -errno when
 * the command cannot even be queued (the controller then marks the drives 'error'). `datastore`
 * is the datastore as GET /api/datastores/{id} shows it; `disk_ids` the drives on that node. */
struct mvctld_host_ops {
    int (*format_drives)(void *ctx, const char *node_id, const json_t *datastore,
                         const json_t *disk_ids);
    int (*release_drives)(void *ctx, const char *node_id, const char *datastore_id,
                          const json_t *disk_ids);
    /* Policy changed (name, overcommit, repair policy, state): hosts holding its drives. */
    int (*update_datastore)(void *ctx, const char *node_id, const json_t *datastore);
    /* Volumes or instances changed what the hosts should do: reconcile soon (may be NULL). */
    void (*kick)(void *ctx);
    /* Asks node's agent for a VM's live InstanceInformation (vm_info) and waits up to
     * timeout_ms. Called WITHOUT the database lock. 0 with *out, or -errno with err. May be
     * NULL. */
    int (*vm_info)(void *ctx, const char *node_id, const char *uuid, int timeout_ms, json_t **out,
                   char *err, size_t errlen);
};

enum mvctld_inventory_source {
    MVCTLD_INV_AGENT,  /* from a live agent: the node is online */
    MVCTLD_INV_STATIC, /* from a file an operator imported: no agent reports liveness */
};

/* Applies one host's inventory (creating or updating the node, its NUMA nodes, cores and
 * drives). Cores and drives that disappeared are kept while a resource group or datastore uses
 * them (marked not present / state 'error') and removed otherwise. All or nothing: on a bad
 * document returns -1 with a reason in err and changes nothing. Takes the database lock. */
int mvctld_inventory_apply(struct mvctld_db *db, const json_t *inventory,
                           enum mvctld_inventory_source source, char *err, size_t errlen);
/* Same from a file holding one inventory object or an array of them. */
int mvctld_inventory_import_file(struct mvctld_db *db, const char *path, char *err, size_t errlen);

/* Liveness from the discovery layer. seen: -ENOENT when the node is unknown (ask the agent for
 * its inventory). lost: marks the node offline and its drives down. */
int mvctld_node_seen(struct mvctld_db *db, const char *node_id);
int mvctld_node_lost(struct mvctld_db *db, const char *node_id);

#endif
