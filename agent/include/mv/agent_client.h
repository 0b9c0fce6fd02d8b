/* One request to a host's agent from a temporary node (a random node id outside the 32-bit range
 * of host ids, a fresh incarnation) on a local interface: what the operator tools use. */
#ifndef MV_AGENT_CLIENT_H
#define MV_AGENT_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/auth.h"

/* Sends op with payload req (NULL = {}) to the agent whose control MAC is mac, waits up to
 * timeout_ms. Returns 0 with *reply (the reply object, "ok" true), the agent's status (<0) with
 * its error text in err, or a local/transport -errno (-ETIMEDOUT, -EHOSTDOWN...) with a reason. */
int mv_agent_client_call(const char *ifname, const uint8_t mac[6], const struct mv_keyring *keys,
                         uint16_t op, const json_t *req, unsigned timeout_ms, json_t **reply,
                         char *err, size_t errlen);

/* "a0369f2058c4" (as D2.3 writes it) or "a0:36:9f:20:58:c4". 0 or -EINVAL. */
int mv_agent_parse_mac(const char *s, uint8_t mac[6]);

#endif
