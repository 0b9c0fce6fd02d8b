/* Routing of the internal API (/api/...) to the store, independent of the HTTP library so unit
 * tests and fuzzers can drive it directly. Authentication and /api/health live in server.c. */
#ifndef MVCTLD_ROUTER_H
#define MVCTLD_ROUTER_H

#include <jansson.h>
#include <stddef.h>

#include "mvctld/store.h"

struct mvctld_request {
    const char *method;             /* "GET", "POST", ... */
    const char *path;               /* decoded path, e.g. "/api/datastores/abc" */
    const char *q_node_id, *q_free; /* query parameters node_id= and free=, or NULL */
    const char *body;
    size_t body_len;
};

struct mvctld_response {
    int status;
    json_t *body;   /* NULL: no body */
    char allow[64]; /* for 405: the methods the path allows */
};

/* Handles one request (takes the database lock). The caller owns rs->body. */
void mvctld_api_handle(struct mvctld_ctx *c, const struct mvctld_request *rq,
                       struct mvctld_response *rs);

#endif
