/* Volumes and instances (D2.3 Appendix 6.2: Volume, Instance, InstanceInformation), their
 * placement on a resource group's hosts, and the reconciler that converges what the hosts run to
 * what was asked (docs/instances.md).
 *
 * The API side only records intent in the database (a volume's replicas with the operation still
 * to be done on their host; an instance's desired state and one-shot actions) and calls
 * host_ops->kick. The wire thread then asks mvctld_reconcile_plan() for the commands that bring
 * the hosts there, sends them, and records every answer with mvctld_reconcile_done(). What an
 * instance *is* (state, host, pid) changes only through the agents' answers (vm_list, vm_start,
 * vm_info), never because something was asked. */
#ifndef MVCTLD_INSTANCES_H
#define MVCTLD_INSTANCES_H

#include <jansson.h>
#include <stdbool.h>

#include "mvctld/db.h"
#include "mvctld/errors.h"
#include "mvctld/store.h"

/* The agent's VM operations (agent/include/mv/agent_proto.h, range 0x0130..0x014f). Listed here
 * too so the controller builds while the agent side is written. */
enum mvctld_vm_op {
    MVCTLD_OP_VM_START = 0x0130,
    MVCTLD_OP_VM_STOP = 0x0131,
    MVCTLD_OP_VM_REBOOT = 0x0132,
    MVCTLD_OP_VM_PAUSE = 0x0133,
    MVCTLD_OP_VM_UNPAUSE = 0x0134,
    MVCTLD_OP_VM_DELETE = 0x0135,
    MVCTLD_OP_VM_INFO = 0x0136,
    MVCTLD_OP_VM_LIST = 0x0137,
};

#define MVCTLD_MAX_VCPUS     64
#define MVCTLD_VOLUME_MAX_GB (1 << 20)

/* ---------------------------------------------------------------- API (store side) */
/* As store.h: the HTTP status, *out the body; callers hold the database lock. Ids in paths are
 * the numeric id or the name (D2.3's slapi paths use names). */
int mvctld_volume_list(struct mvctld_ctx *c, json_t **out);
int mvctld_volume_get(struct mvctld_ctx *c, const char *ref, json_t **out);
int mvctld_volume_create(struct mvctld_ctx *c, const json_t *body, json_t **out);
/* PUT: {"size": GB} grows (or, while not attached, shrinks) every replica; {"name"} renames. */
int mvctld_volume_edit(struct mvctld_ctx *c, const char *ref, const json_t *body, json_t **out);
/* A new volume of the same datastore and (at least) the same size: {"name", "size"?}. */
int mvctld_volume_clone(struct mvctld_ctx *c, const char *ref, const json_t *body, json_t **out);
int mvctld_volume_delete(struct mvctld_ctx *c, const char *ref, json_t **out);

int mvctld_instance_list(struct mvctld_ctx *c, json_t **out);
int mvctld_instance_get(struct mvctld_ctx *c, const char *ref, json_t **out);
int mvctld_instance_create(struct mvctld_ctx *c, const json_t *body, json_t **out);
int mvctld_instance_delete(struct mvctld_ctx *c, const char *ref, json_t **out);
/* NewInstanceAction: {"action": start|stop|reboot|pause|unpause|migrate, "node_id",
 * "restart_after"}. 202 with the instance. */
int mvctld_instance_action(struct mvctld_ctx *c, const char *ref, const json_t *body, json_t **out);
/* InstanceInformation as last reported by the VMM (vm_info / vm_list). */
int mvctld_instance_info(struct mvctld_ctx *c, const char *ref, json_t **out);

/* ---------------------------------------------------------------- placement (placement.c) */

struct mvctld_placement {
    char node_id[65];
    int numa_node;      /* host NUMA node holding vCPUs and memory; -1: spread (vnuma) */
    char cpuset[256];   /* host CPUs the VM may run on ("0-3,8") */
    char pin[256];      /* with pinning: one host CPU per vCPU ("2,3"); else "" */
    char vnuma[256];    /* mvvmm --vnuma spec when the VM spans host NUMA nodes; else "" */
    bool storage_local; /* the host holds a replica of one of the instance's volumes */
};

/* Chooses a host of resource group rg for a VM of vcpus/ram_mb: only the group's online cores,
 * at most cpu_overcommit vCPUs per physical core of the group on a host, with pinning one
 * dedicated core per vCPU, memory within what the host's NUMA nodes have free, one NUMA node
 * where it fits (else a vNUMA layout across nodes), preferring (storage-latency optimised
 * groups) a host with a replica of one of `volume_ids`. node_id != NULL: only that host.
 * exclude_instance: an instance whose own allocation does not count (migrate, restart), or 0.
 * 0, or -1 with one 422 error per missing resource in e (field vcpus / ram / node_id). */
int mvctld_place_instance(struct mvctld_db *db, long long rg, int vcpus, long long ram_mb,
                          const char *node_id, const json_t *volume_ids, long long exclude_instance,
                          struct mvctld_placement *out, struct mvctld_errors *e);

/* "0-3,8" <-> sorted CPU numbers (at most max). */
int mvctld_cpulist_parse(const char *s, int *cpus, int max);
void mvctld_cpulist_format(const int *cpus, int n, char *out, size_t len);

/* ---------------------------------------------------------------- reconciler (reconcile.c) */

/* A command for the wire thread (JSON):
 *   {"op": "vm_start" | ... | "replica_create" | ..., "code": agent op, "node": node id,
 *    "key": what it is busy with ("i<id>" or "r<volume>/<disk>"), "payload": {...},
 *    "instance": id | "volume": id, "disk": id}
 * The wire thread sends at most one command per key at a time (busy: object of keys). */

/* Applies a host's vm_list answer ([{uuid, state, pid, ...}] or {"vms": [...]}): instances
 * reported there get that state and host; instances recorded as running there that are absent
 * are STOPPED. A VM found on a host other than the recorded one is adopted there (never started
 * again elsewhere). A list is a snapshot taken when it was asked (asked_at, realtime ns): an
 * instance whose state an answer to a command recorded after that, or with a command in flight
 * (busy key "i<id>"), is left as it is. Returns the number of instances changed, -1 for a
 * malformed answer (nothing changes). Takes the database lock. */
int mvctld_reconcile_vm_list(struct mvctld_db *db, const char *node_id, const json_t *answer,
                             long long asked_at, const json_t *busy);

/* The commands that move the hosts towards the desired state, given `busy` keys (not repeated)
 * and `listed` nodes (those whose vm_list has been applied since they, or mvctld, last started:
 * no VM is started while any online host has not been listed, so none is started twice).
 * stop_timeout_ms: how long vm_stop lets a guest shut down before the VMM is stopped hard.
 * Takes the database lock. Returns a new array. */
json_t *mvctld_reconcile_plan(struct mvctld_db *db, const json_t *busy, const json_t *listed,
                              int stop_timeout_ms);

/* Records the answer to a planned command: status 0 with the agent's reply object, or a
 * negative errno with err (the agent's text). Takes the database lock. 1 changed, 0 not. */
int mvctld_reconcile_done(struct mvctld_db *db, const json_t *cmd, int status, const json_t *reply,
                          const char *err);

/* Removes an instance record: detaches its volumes, deletes those marked
 * delete_on_termination (through their replicas when wire is true). Caller holds the lock. */
int mvctld_instance_forget(struct mvctld_db *db, long long id, bool wire);

/* A node went down: what it ran is unknown now (state stays, marked stale by reported_at). */
int mvctld_reconcile_node_lost(struct mvctld_db *db, const char *node_id);

#endif
