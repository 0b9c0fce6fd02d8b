/* mvctld on the wire: the controller's end of the raw-Ethernet control plane (docs/controller.md).
 *
 * One thread owns the port, the reliable channel and discovery (they are not thread-safe). It
 * announces the controller (role "controller"), asks every agent that appears (or restarts, or
 * every inventory_s seconds) for its inventory and applies it, marks a node down when its HELLOs
 * stop, and carries out the datastore commands of struct mvctld_host_ops: the HTTP threads only
 * queue them (eventfd-woken queue); the wire thread turns them into drive_format requests, sent
 * to all hosts in parallel, and records each answer in the database.
 *
 * The database side (planning commands, recording answers, reconciling with an inventory) is in
 * wire_db.c, free of any network code, so unit tests and fuzzers drive it directly. */
#ifndef MVCTLD_WIRE_H
#define MVCTLD_WIRE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mvctld/conf.h"
#include "mvctld/db.h"
#include "mvctld/store.h"

/* ---------------------------------------------------------------- the wire thread (wire.c) */

struct mvctld_wire;

/* Opens the port on conf->wire.ifname, loads the key file, starts the thread and sets
 * ctx->host_ops / host_ops_ctx. NULL with a reason in err. Call before the HTTP server starts. */
struct mvctld_wire *mvctld_wire_start(const struct mvctld_conf *conf, struct mvctld_ctx *ctx,
                                      char *err, size_t errlen);
/* Stops the thread (commands still in flight stay 'pending' in the database and are sent again
 * when their host next reports its inventory), clears ctx->host_ops, frees everything. Call
 * after the HTTP server stopped. */
void mvctld_wire_stop(struct mvctld_wire *w);

/* ---------------------------------------------------------------- database side (wire_db.c) */

/* A command for one drive, as JSON (planned under the database lock, sent by the wire thread):
 *   {"op": "format", "disk": id, "node": node id, "path": drive path, "datastore": id,
 *    "overcommit_pct": n}
 *   {"op": "release", "disk": id, "node": node id, "path": drive path, "datastore": id}
 * A release reformats the drive without a datastore (mvstored has no other way to free it). */

/* mvstored's overcommit limit (% of capacity the replicas may add up to) for D2.3's
 * overcommit_disk: "0" -> 100, "20" -> 120, "unlimited" -> 10000; 100 for anything else. */
unsigned mvctld_wire_overcommit_pct(const char *overcommit_disk);

/* The drive_format request payload of a command (NULL for a malformed command). */
json_t *mvctld_wire_request_payload(const json_t *cmd);

/* Format commands for the disks of datastore_id that still wait for a format (format_state
 * 'pending'); drops pending releases of those disks. Returns a new array (maybe empty). */
json_t *mvctld_wire_plan_format(struct mvctld_db *db, const char *datastore_id,
                                const json_t *disk_ids);
/* Release commands for disks that left datastore_id and are still free; each is remembered in
 * disk_releases until its host confirms. */
json_t *mvctld_wire_plan_release(struct mvctld_db *db, const char *datastore_id,
                                 const json_t *disk_ids);

/* What the host said about one formatted drive. */
struct mvctld_drive_result {
    long long capacity; /* usable bytes */
    long long used;     /* bytes allocated to replicas */
};
/* Decodes an agent's drive_format answer (channel status + payload). 0 with *out, or the
 * agent's negative status / -EPROTO (malformed) with the reason in err. */
int mvctld_wire_parse_format_reply(int32_t status, const void *data, size_t len,
                                   struct mvctld_drive_result *out, char *err, size_t errlen);

/* Records a format answer: res (success) or error (failure). Only a disk still pending in
 * datastore_id changes (a late answer for a deleted datastore changes nothing). Returns 1 when
 * it changed something, 0 when not, -1 on a database error. */
int mvctld_wire_format_done(struct mvctld_db *db, const char *disk_id, const char *datastore_id,
                            const struct mvctld_drive_result *res, const char *error);
/* A confirmed release forgets the disk_releases entry. */
int mvctld_wire_release_done(struct mvctld_db *db, const char *disk_id, const char *datastore_id);

/* After node_id's inventory was applied: pending disks the inventory shows formatted into their
 * datastore become 'done' (capacity from the inventory); the other pending ones get a format
 * command again; a pending release whose drive still carries the old datastore is sent again,
 * one whose drive no longer does is forgotten. Returns the commands (a new array). */
json_t *mvctld_wire_reconcile(struct mvctld_db *db, const char *node_id, const json_t *inventory);

#endif
