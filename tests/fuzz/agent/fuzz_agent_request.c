/* Fuzzes the agent's request parser (first two bytes: the op, big-endian; the rest: the JSON
 * payload) and the perfc reply decoder mvctl-perfc runs on what comes back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/agent_proto.h"
#include "mv/perfc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint16_t op = (uint16_t)(data[0] << 8 | data[1]);
    char err[256];
    json_t *req = NULL;
    if (mv_agent_request_parse(op, data + 2, size - 2, &req, err, sizeof err) == 0) {
        /* What validation let through must have only the op's keys, with their types. */
        const struct mv_agent_op_desc *d = mv_agent_op_lookup(op);
        const char *key;
        json_t *v;
        json_object_foreach(req, key, v)
        {
            int known = 0;
            for (unsigned i = 0; i < d->n_fields; i++)
                known |= strcmp(d->fields[i].key, key) == 0;
            if (!known)
                abort();
        }
        json_decref(req);
    } else if (req || !err[0]) {
        abort();
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)data + 2, size - 2, 0, &je);
    if (j) {
        struct mv_perfc_set *s;
        uint64_t now;
        if (mv_perfc_from_json(j, &s, &now, err, sizeof err) == 0)
            mv_perfc_set_free(s);
        json_decref(j);
    }
    json_t *out;
    if (mv_agent_reply_parse(0, data + 2, size - 2, &out, err, sizeof err) == 0)
        json_decref(out);
    return 0;
}
