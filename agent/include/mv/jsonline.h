/* Client of the host-local JSON-lines control sockets (mvstored's and each mvvmm's): AF_UNIX
 * stream, one JSON object per line each way. */
#ifndef MV_JSONLINE_H
#define MV_JSONLINE_H

#include <jansson.h>
#include <stddef.h>

/* Connects to path, sends req (one line), reads one reply line within timeout_ms in total and
 * parses it. Returns 0 with *rep set (the caller decrefs), or -errno with a reason in err
 * (-ETIMEDOUT, -EPROTO for a reply that is not a JSON object, -EMSGSIZE for one over max_reply
 * bytes). */
int mv_jsonline_call(const char *path, const json_t *req, size_t max_reply, int timeout_ms,
                     json_t **rep, char *err, size_t errlen);

#endif
