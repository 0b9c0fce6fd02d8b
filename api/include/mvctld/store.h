/* The objects of the internal API (D2.3 §3, Appendix 6.2): datastores, resource groups, networks
 * and the read-only inventory (nodes, NUMA nodes, cores, disks). Every operation returns the
 * HTTP status and sets *out to the response body (an object, an array, D2.3's error model, or
 * NULL for no body). Callers hold the database lock (mvctld_db_lock). */
#ifndef MVCTLD_STORE_H
#define MVCTLD_STORE_H

#include <jansson.h>
#include <stdbool.h>

#include "mvctld/db.h"
#include "mvctld/errors.h"
#include "mvctld/inventory.h"

struct mvctld_ctx {
    struct mvctld_db *db;
    const struct mvctld_host_ops *host_ops; /* may be NULL: no wire layer yet */
    void *host_ops_ctx;
};

/* Filters of the list calls (query parameters). */
struct mvctld_list_filter {
    const char *node_id; /* only this node's cores/disks; NULL: all */
    int free;            /* 1: unassigned only, 0: assigned only, -1: all */
};

int mvctld_datastore_list(struct mvctld_ctx *c, json_t **out);
int mvctld_datastore_get(struct mvctld_ctx *c, const char *id, json_t **out);
int mvctld_datastore_create(struct mvctld_ctx *c, const json_t *body, json_t **out);
int mvctld_datastore_edit(struct mvctld_ctx *c, const char *id, const json_t *body, json_t **out);
int mvctld_datastore_delete(struct mvctld_ctx *c, const char *id, json_t **out);
int mvctld_datastore_add_disks(struct mvctld_ctx *c, const char *id, const json_t *body,
                               json_t **out);
int mvctld_datastore_remove_disk(struct mvctld_ctx *c, const char *id, const char *disk_id,
                                 json_t **out);

/* Members of a resource group that have add/remove calls. */
enum mvctld_group_member { MVCTLD_RG_CORES, MVCTLD_RG_DATASTORES, MVCTLD_RG_NETWORKS };

int mvctld_group_list(struct mvctld_ctx *c, json_t **out);
int mvctld_group_get(struct mvctld_ctx *c, long long id, json_t **out);
int mvctld_group_create(struct mvctld_ctx *c, const json_t *body, json_t **out);
int mvctld_group_edit(struct mvctld_ctx *c, long long id, const json_t *body, json_t **out);
int mvctld_group_delete(struct mvctld_ctx *c, long long id, json_t **out);
int mvctld_group_add_members(struct mvctld_ctx *c, long long id, enum mvctld_group_member m,
                             const json_t *body, json_t **out);
int mvctld_group_remove_member(struct mvctld_ctx *c, long long id, enum mvctld_group_member m,
                               const char *member_id, json_t **out);

int mvctld_network_list(struct mvctld_ctx *c, json_t **out);
int mvctld_network_get(struct mvctld_ctx *c, long long id, json_t **out);
int mvctld_network_create(struct mvctld_ctx *c, const json_t *body, json_t **out);
int mvctld_network_edit(struct mvctld_ctx *c, long long id, const json_t *body, json_t **out);
int mvctld_network_delete(struct mvctld_ctx *c, long long id, json_t **out);

int mvctld_node_list(struct mvctld_ctx *c, json_t **out);
int mvctld_node_get(struct mvctld_ctx *c, const char *id, json_t **out);
int mvctld_node_numa(struct mvctld_ctx *c, const char *id, json_t **out);
int mvctld_node_delete(struct mvctld_ctx *c, const char *id, json_t **out);
int mvctld_core_list(struct mvctld_ctx *c, const struct mvctld_list_filter *f, json_t **out);
int mvctld_core_get(struct mvctld_ctx *c, const char *id, json_t **out);
int mvctld_disk_list(struct mvctld_ctx *c, const struct mvctld_list_filter *f, json_t **out);
int mvctld_disk_get(struct mvctld_ctx *c, const char *id, json_t **out);

/* {code: 404, message: "Resource with id X does not exist."} as D2.3's examples write it. */
json_t *mvctld_not_found(const char *what, const char *id);
/* 422 with the collected validation errors (freed), and 500 after rolling the transaction back:
 * the two failure answers every create/edit handler ends with. Both return the status. */
int mvctld_fail_422(struct mvctld_errors *e, json_t **out);
int mvctld_fail_500(struct mvctld_ctx *c, json_t **out);
/* The first row of a *_rows() array (a new reference, NULL when empty); the array is released. */
json_t *mvctld_first_row(json_t *rows);

#endif
