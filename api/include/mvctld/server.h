/* The HTTP(S) front of the internal API: libmicrohttpd with a worker thread pool, request bodies
 * bounded to MVCTLD_MAX_BODY, Basic authentication on everything but GET /api/health, and a
 * cache of serialized GET responses that any database change invalidates. */
#ifndef MVCTLD_SERVER_H
#define MVCTLD_SERVER_H

#include "mvctld/auth.h"
#include "mvctld/conf.h"
#include "mvctld/store.h"

#define MVCTLD_MAX_BODY (1024 * 1024)

struct mvctld_server;

/* Starts serving; NULL with a reason in err. ctx and auth must outlive the server. */
struct mvctld_server *mvctld_server_start(const struct mvctld_conf *conf, struct mvctld_ctx *ctx,
                                          struct mvctld_auth *auth, char *err, size_t errlen);
/* The port actually bound (useful with port 0 in tests). */
unsigned mvctld_server_port(const struct mvctld_server *s);
void mvctld_server_stop(struct mvctld_server *s);

#endif
