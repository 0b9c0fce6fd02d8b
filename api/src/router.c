#include "mvctld/router.h"

#include <stdio.h>
#include <string.h>

#include "mv/util.h"
#include "mvctld/errors.h"
#include "mvctld/instances.h"
#include "mvctld/validate.h"

#define MAX_SEGMENTS 6
#define SEGMENT_MAX  128

struct route {
    int n;
    char seg[MAX_SEGMENTS][SEGMENT_MAX];
};

/* "/api/a/b" -> {"a", "b"}. Fails on empty segments, too many, or too long ones. */
static int split_path(const char *path, struct route *r)
{
    if (strncmp(path, "/api", 4) != 0 || (path[4] != '/' && path[4] != 0))
        return -1;
    const char *p = path + 4;
    r->n = 0;
    while (*p == '/') {
        p++;
        if (*p == 0)
            break; /* one trailing slash is tolerated */
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= SEGMENT_MAX || r->n == MAX_SEGMENTS)
            return -1;
        memcpy(r->seg[r->n], p, len);
        r->seg[r->n][len] = 0;
        r->n++;
        p += len;
    }
    return *p == 0 ? 0 : -1;
}

static int parse_id(const char *s, long long *out)
{
    uint64_t v;
    if (mv_parse_u64(s, &v) != 0 || v > INT64_MAX || s[0] == '+' || s[0] == '-')
        return -1;
    *out = (long long)v;
    return 0;
}

static void set(struct mvctld_response *rs, int status, json_t *body)
{
    rs->status = status;
    rs->body = body;
}

static void not_allowed(struct mvctld_response *rs, const char *allow)
{
    snprintf(rs->allow, sizeof rs->allow, "%s", allow);
    set(rs, 405, mvctld_error_body(405, "Method not allowed.", NULL));
}

static void no_route(struct mvctld_response *rs, const char *path)
{
    char msg[200];
    snprintf(msg, sizeof msg, "No such resource: %.150s", path);
    set(rs, 404, mvctld_error_body(404, msg, NULL));
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Parses the body of POST/PUT; on failure the response is set (400). */
static json_t *body_of(const struct mvctld_request *rq, struct mvctld_response *rs)
{
    char why[256];
    json_t *b = mvctld_parse_body(rq->body, rq->body_len, why, sizeof why);
    if (!b)
        set(rs, 400, mvctld_error_body(400, why, NULL));
    return b;
}

static void datastores(struct mvctld_ctx *c, const struct route *r, const struct mvctld_request *rq,
                       struct mvctld_response *rs)
{
    const char *m = rq->method;
    json_t *b = NULL;
    if (r->n == 1) {
        if (is(m, "GET"))
            rs->status = mvctld_datastore_list(c, &rs->body);
        else if (is(m, "POST") && (b = body_of(rq, rs)))
            rs->status = mvctld_datastore_create(c, b, &rs->body);
        else if (!is(m, "POST"))
            not_allowed(rs, "GET, POST");
    } else if (r->n == 2) {
        const char *id = r->seg[1];
        if (is(m, "GET"))
            rs->status = mvctld_datastore_get(c, id, &rs->body);
        else if (is(m, "PUT") && (b = body_of(rq, rs)))
            rs->status = mvctld_datastore_edit(c, id, b, &rs->body);
        else if (is(m, "DELETE"))
            rs->status = mvctld_datastore_delete(c, id, &rs->body);
        else if (!is(m, "PUT"))
            not_allowed(rs, "GET, PUT, DELETE");
    } else if (r->n == 3 && is(r->seg[2], "disks")) {
        if (is(m, "POST") && (b = body_of(rq, rs)))
            rs->status = mvctld_datastore_add_disks(c, r->seg[1], b, &rs->body);
        else if (!is(m, "POST"))
            not_allowed(rs, "POST");
    } else if (r->n == 4 && is(r->seg[2], "disks")) {
        if (is(m, "DELETE"))
            rs->status = mvctld_datastore_remove_disk(c, r->seg[1], r->seg[3], &rs->body);
        else
            not_allowed(rs, "DELETE");
    } else {
        no_route(rs, rq->path);
    }
    json_decref(b);
}

static void groups(struct mvctld_ctx *c, const struct route *r, const struct mvctld_request *rq,
                   struct mvctld_response *rs)
{
    const char *m = rq->method;
    json_t *b = NULL;
    long long id = -1;
    if (r->n >= 2 && parse_id(r->seg[1], &id) != 0) {
        set(rs, 404, mvctld_not_found("Resource group", r->seg[1]));
        return;
    }
    enum mvctld_group_member member = MVCTLD_RG_CORES;
    if (r->n >= 3) {
        if (is(r->seg[2], "cores"))
            member = MVCTLD_RG_CORES;
        else if (is(r->seg[2], "datastores"))
            member = MVCTLD_RG_DATASTORES;
        else if (is(r->seg[2], "networks"))
            member = MVCTLD_RG_NETWORKS;
        else {
            no_route(rs, rq->path);
            return;
        }
    }
    if (r->n == 1) {
        if (is(m, "GET"))
            rs->status = mvctld_group_list(c, &rs->body);
        else if (is(m, "POST") && (b = body_of(rq, rs)))
            rs->status = mvctld_group_create(c, b, &rs->body);
        else if (!is(m, "POST"))
            not_allowed(rs, "GET, POST");
    } else if (r->n == 2) {
        if (is(m, "GET"))
            rs->status = mvctld_group_get(c, id, &rs->body);
        else if (is(m, "PUT") && (b = body_of(rq, rs)))
            rs->status = mvctld_group_edit(c, id, b, &rs->body);
        else if (is(m, "DELETE"))
            rs->status = mvctld_group_delete(c, id, &rs->body);
        else if (!is(m, "PUT"))
            not_allowed(rs, "GET, PUT, DELETE");
    } else if (r->n == 3) {
        if (is(m, "POST") && (b = body_of(rq, rs)))
            rs->status = mvctld_group_add_members(c, id, member, b, &rs->body);
        else if (!is(m, "POST"))
            not_allowed(rs, "POST");
    } else if (r->n == 4) {
        if (is(m, "DELETE"))
            rs->status = mvctld_group_remove_member(c, id, member, r->seg[3], &rs->body);
        else
            not_allowed(rs, "DELETE");
    } else {
        no_route(rs, rq->path);
    }
    json_decref(b);
}

static void networks(struct mvctld_ctx *c, const struct route *r, const struct mvctld_request *rq,
                     struct mvctld_response *rs)
{
    const char *m = rq->method;
    json_t *b = NULL;
    long long id = -1;
    if (r->n == 2 && parse_id(r->seg[1], &id) != 0) {
        set(rs, 404, mvctld_not_found("Network", r->seg[1]));
        return;
    }
    if (r->n == 1) {
        if (is(m, "GET"))
            rs->status = mvctld_network_list(c, &rs->body);
        else if (is(m, "POST") && (b = body_of(rq, rs)))
            rs->status = mvctld_network_create(c, b, &rs->body);
        else if (!is(m, "POST"))
            not_allowed(rs, "GET, POST");
    } else if (r->n == 2) {
        if (is(m, "GET"))
            rs->status = mvctld_network_get(c, id, &rs->body);
        else if (is(m, "PUT") && (b = body_of(rq, rs)))
            rs->status = mvctld_network_edit(c, id, b, &rs->body);
        else if (is(m, "DELETE"))
            rs->status = mvctld_network_delete(c, id, &rs->body);
        else if (!is(m, "PUT"))
            not_allowed(rs, "GET, PUT, DELETE");
    } else {
        no_route(rs, rq->path);
    }
    json_decref(b);
}

static void volumes(struct mvctld_ctx *c, const struct route *r, const struct mvctld_request *rq,
                    struct mvctld_response *rs)
{
    const char *m = rq->method;
    json_t *b = NULL;
    if (r->n == 1) {
        if (is(m, "GET"))
            rs->status = mvctld_volume_list(c, &rs->body);
        else if (is(m, "POST") && (b = body_of(rq, rs)))
            rs->status = mvctld_volume_create(c, b, &rs->body);
        else if (!is(m, "POST"))
            not_allowed(rs, "GET, POST");
    } else if (r->n == 2) {
        if (is(m, "GET"))
            rs->status = mvctld_volume_get(c, r->seg[1], &rs->body);
        else if (is(m, "PUT") && (b = body_of(rq, rs)))
            rs->status = mvctld_volume_edit(c, r->seg[1], b, &rs->body);
        else if (is(m, "DELETE"))
            rs->status = mvctld_volume_delete(c, r->seg[1], &rs->body);
        else if (!is(m, "PUT"))
            not_allowed(rs, "GET, PUT, DELETE");
    } else if (r->n == 3 && is(r->seg[2], "clone")) {
        /* D2.3 clones with PUT; POST is accepted too (it creates an object). */
        if ((is(m, "PUT") || is(m, "POST")) && (b = body_of(rq, rs)))
            rs->status = mvctld_volume_clone(c, r->seg[1], b, &rs->body);
        else if (!is(m, "PUT") && !is(m, "POST"))
            not_allowed(rs, "PUT, POST");
    } else {
        no_route(rs, rq->path);
    }
    json_decref(b);
}

static void instances(struct mvctld_ctx *c, const struct route *r, const struct mvctld_request *rq,
                      struct mvctld_response *rs)
{
    const char *m = rq->method;
    json_t *b = NULL;
    if (r->n == 1) {
        if (is(m, "GET"))
            rs->status = mvctld_instance_list(c, &rs->body);
        else if (is(m, "POST") && (b = body_of(rq, rs)))
            rs->status = mvctld_instance_create(c, b, &rs->body);
        else if (!is(m, "POST"))
            not_allowed(rs, "GET, POST");
    } else if (r->n == 2) {
        if (is(m, "GET"))
            rs->status = mvctld_instance_get(c, r->seg[1], &rs->body);
        else if (is(m, "DELETE"))
            rs->status = mvctld_instance_delete(c, r->seg[1], &rs->body);
        else
            not_allowed(rs, "GET, DELETE");
    } else if (r->n == 3 && is(r->seg[2], "action")) {
        if ((is(m, "PUT") || is(m, "POST")) && (b = body_of(rq, rs)))
            rs->status = mvctld_instance_action(c, r->seg[1], b, &rs->body);
        else if (!is(m, "PUT") && !is(m, "POST"))
            not_allowed(rs, "PUT, POST");
    } else if (r->n == 3 && is(r->seg[2], "info")) {
        if (is(m, "GET"))
            rs->status = mvctld_instance_info(c, r->seg[1], &rs->body);
        else
            not_allowed(rs, "GET");
    } else {
        no_route(rs, rq->path);
    }
    json_decref(b);
}

static bool filter_of(const struct mvctld_request *rq, struct mvctld_list_filter *f,
                      struct mvctld_response *rs)
{
    f->node_id = rq->q_node_id;
    f->free = -1;
    if (rq->q_free) {
        bool v;
        if (mv_parse_bool(rq->q_free, &v) != 0) {
            set(rs, 400, mvctld_error_body(400, "The free parameter must be true or false.", NULL));
            return false;
        }
        f->free = v;
    }
    return true;
}

static void inventory_reads(struct mvctld_ctx *c, const struct route *r,
                            const struct mvctld_request *rq, struct mvctld_response *rs)
{
    const char *m = rq->method;
    const char *kind = r->seg[0];
    struct mvctld_list_filter f;
    if (!filter_of(rq, &f, rs))
        return;
    if (is(kind, "nodes")) {
        if (r->n == 2 && is(m, "DELETE")) {
            rs->status = mvctld_node_delete(c, r->seg[1], &rs->body);
            return;
        }
        if (!is(m, "GET")) {
            if (r->n <= 3)
                not_allowed(rs, r->n == 2 ? "GET, DELETE" : "GET");
            else
                no_route(rs, rq->path);
            return;
        }
        if (r->n == 1)
            rs->status = mvctld_node_list(c, &rs->body);
        else if (r->n == 2)
            rs->status = mvctld_node_get(c, r->seg[1], &rs->body);
        else if (r->n == 3 && is(r->seg[2], "numa"))
            rs->status = mvctld_node_numa(c, r->seg[1], &rs->body);
        else if (r->n == 3 && (is(r->seg[2], "cores") || is(r->seg[2], "disks"))) {
            json_t *probe = NULL;
            if (mvctld_node_get(c, r->seg[1], &probe) != 200) {
                set(rs, 404, probe);
                return;
            }
            json_decref(probe);
            f.node_id = r->seg[1];
            rs->status = is(r->seg[2], "cores") ? mvctld_core_list(c, &f, &rs->body)
                                                : mvctld_disk_list(c, &f, &rs->body);
        } else
            no_route(rs, rq->path);
        return;
    }
    bool cores = is(kind, "cores");
    if (r->n > 2) {
        no_route(rs, rq->path);
    } else if (!is(m, "GET")) {
        not_allowed(rs, "GET");
    } else if (r->n == 1) {
        rs->status =
            cores ? mvctld_core_list(c, &f, &rs->body) : mvctld_disk_list(c, &f, &rs->body);
    } else {
        rs->status = cores ? mvctld_core_get(c, r->seg[1], &rs->body)
                           : mvctld_disk_get(c, r->seg[1], &rs->body);
    }
}

/* GET /api/instances/{id}/info: the database's last report, then (without the database lock:
 * the wire thread needs it to record answers) the live InstanceInformation from the agent. */
static void instance_info_live(struct mvctld_ctx *c, const struct route *r,
                               struct mvctld_response *rs)
{
    mvctld_db_lock(c->db);
    rs->status = mvctld_instance_info(c, r->seg[1], &rs->body);
    mvctld_db_unlock(c->db);
    const char *node = json_string_value(json_object_get(rs->body, "node"));
    const char *uuid = json_string_value(json_object_get(rs->body, "uuid"));
    if (rs->status != 200 || !c->host_ops || !c->host_ops->vm_info || !node || !*node || !uuid)
        return;
    json_t *live = NULL;
    char err[256];
    if (c->host_ops->vm_info(c->host_ops_ctx, node, uuid, 5000, &live, err, sizeof err) != 0) {
        json_object_set_new(rs->body, "live", json_false());
        json_object_set_new(rs->body, "live_error", json_string(err));
        return;
    }
    /* The agent's InstanceInformation, with D2.3's integer state. */
    const char *state = json_string_value(json_object_get(live, "state"));
    json_object_del(live, "ok");
    json_object_update(rs->body, live);
    if (state) {
        json_object_set_new(rs->body, "state_name", json_string(state));
        json_t *code = json_object_get(live, "state_code");
        json_object_set_new(rs->body, "state", code ? json_incref(code) : json_integer(0));
    }
    json_object_del(rs->body, "state_code");
    json_object_set_new(rs->body, "live", json_true());
    json_decref(live);
}

void mvctld_api_handle(struct mvctld_ctx *c, const struct mvctld_request *rq,
                       struct mvctld_response *rs)
{
    struct route r;
    memset(rs, 0, sizeof *rs);
    if (split_path(rq->path, &r) != 0 || r.n == 0) {
        no_route(rs, rq->path);
        return;
    }
    if (r.n == 3 && is(r.seg[0], "instances") && is(r.seg[2], "info") && is(rq->method, "GET")) {
        instance_info_live(c, &r, rs);
        return;
    }
    mvctld_db_lock(c->db);
    const char *kind = r.seg[0];
    if (is(kind, "datastores"))
        datastores(c, &r, rq, rs);
    else if (is(kind, "resource_groups"))
        groups(c, &r, rq, rs);
    else if (is(kind, "networks"))
        networks(c, &r, rq, rs);
    else if (is(kind, "volumes"))
        volumes(c, &r, rq, rs);
    else if (is(kind, "instances"))
        instances(c, &r, rq, rs);
    else if (is(kind, "nodes") || is(kind, "cores") || is(kind, "disks"))
        inventory_reads(c, &r, rq, rs);
    else
        no_route(rs, rq->path);
    mvctld_db_unlock(c->db);
    if (rs->status == 0) /* a handler that forgot to answer is our bug */
        set(rs, 500, mvctld_error_body(500, "Unhandled request.", NULL));
}
