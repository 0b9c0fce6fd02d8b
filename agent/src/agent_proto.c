/* Request validation and reply encoding of the agent's control protocol (mv/agent_proto.h). */
#include "mv/agent_proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/util.h"

#define U64_MAX_JSON ((uint64_t)INT64_MAX) /* jansson integers are signed 64-bit */

static const struct mv_agent_field drive_format_fields[] = {
    {"drive", MV_AGENT_F_PATH, 1, 0, 255},
    {"datastore", MV_AGENT_F_ID, 0, 0, 63},
    {"chunk_size", MV_AGENT_F_UINT, 0, 4096, 1u << 30},
    {"overcommit_pct", MV_AGENT_F_UINT, 0, 0, 10000},
    {"force", MV_AGENT_F_BOOL, 0, 0, 0},
};
static const struct mv_agent_field replica_create_fields[] = {
    {"vdisk", MV_AGENT_F_ID, 1, 0, MV_AGENT_VDISK_ID_MAX},
    {"size", MV_AGENT_F_UINT, 1, 1, U64_MAX_JSON},
    {"drive", MV_AGENT_F_PATH, 0, 0, 255},
    {"thin", MV_AGENT_F_BOOL, 0, 0, 0},
    {"map", MV_AGENT_F_BOOL, 0, 0, 0},
    {"shelf", MV_AGENT_F_UINT, 0, 0, 0xfffe},
    {"slot", MV_AGENT_F_UINT, 0, 0, 0xfe},
};
static const struct mv_agent_field replica_map_fields[] = {
    {"vdisk", MV_AGENT_F_ID, 1, 0, MV_AGENT_VDISK_ID_MAX},
    {"shelf", MV_AGENT_F_UINT, 0, 0, 0xfffe},
    {"slot", MV_AGENT_F_UINT, 0, 0, 0xfe},
};
static const struct mv_agent_field vdisk_only_fields[] = {
    {"vdisk", MV_AGENT_F_ID, 1, 0, MV_AGENT_VDISK_ID_MAX},
};
static const struct mv_agent_field replica_resize_fields[] = {
    {"vdisk", MV_AGENT_F_ID, 1, 0, MV_AGENT_VDISK_ID_MAX},
    {"size", MV_AGENT_F_UINT, 1, 1, U64_MAX_JSON},
};
static const struct mv_agent_field perfc_get_fields[] = {
    {"name", MV_AGENT_F_STRING, 1, 0, MV_AGENT_PERFC_NAME_MAX},
};
static const struct mv_agent_field perfc_reset_fields[] = {
    {"name", MV_AGENT_F_STRING, 0, 0, MV_AGENT_PERFC_NAME_MAX},
};
static const struct mv_agent_field ping_fields[] = {
    {"echo", MV_AGENT_F_STRING, 0, 0, 256},
};

#define OP(code, name, fields)                                                                     \
    {                                                                                              \
        code, name, fields, MV_ARRAY_SIZE(fields)                                                  \
    }
#define OP0(code, name)                                                                            \
    {                                                                                              \
        code, name, NULL, 0                                                                        \
    }
static const struct mv_agent_op_desc op_table[] = {
    OP(MV_AGENT_OP_PING, "ping", ping_fields),
    OP0(MV_AGENT_OP_INVENTORY, "inventory"),
    OP0(MV_AGENT_OP_DRIVE_LIST, "drive_list"),
    OP(MV_AGENT_OP_DRIVE_FORMAT, "drive_format", drive_format_fields),
    OP(MV_AGENT_OP_REPLICA_CREATE, "replica_create", replica_create_fields),
    OP(MV_AGENT_OP_REPLICA_MAP, "replica_map", replica_map_fields),
    OP(MV_AGENT_OP_REPLICA_UNMAP, "replica_unmap", vdisk_only_fields),
    OP(MV_AGENT_OP_REPLICA_DELETE, "replica_delete", vdisk_only_fields),
    OP(MV_AGENT_OP_REPLICA_RESIZE, "replica_resize", replica_resize_fields),
    OP0(MV_AGENT_OP_PERFC_DUMP, "perfc_dump"),
    OP(MV_AGENT_OP_PERFC_GET, "perfc_get", perfc_get_fields),
    OP(MV_AGENT_OP_PERFC_RESET, "perfc_reset", perfc_reset_fields),
};

const struct mv_agent_op_desc *mv_agent_op_lookup(uint16_t op)
{
    for (size_t i = 0; i < MV_ARRAY_SIZE(op_table); i++)
        if (op_table[i].op == op)
            return &op_table[i];
    return NULL;
}

const struct mv_agent_op_desc *mv_agent_op_by_name(const char *name)
{
    for (size_t i = 0; name && i < MV_ARRAY_SIZE(op_table); i++)
        if (strcmp(op_table[i].name, name) == 0)
            return &op_table[i];
    return NULL;
}

const char *mv_agent_op_name(uint16_t op)
{
    const struct mv_agent_op_desc *d = mv_agent_op_lookup(op);
    return d ? d->name : NULL;
}

static bool is_id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

/* Checks one value against its field; writes why not into err. */
static bool field_valid(const struct mv_agent_field *f, json_t *v, char *err, size_t errlen)
{
    if (f->type == MV_AGENT_F_BOOL) {
        if (!json_is_boolean(v))
            return snprintf(err, errlen, "\"%s\" must be true or false", f->key), false;
        return true;
    }
    if (f->type == MV_AGENT_F_UINT) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) < f->min || (uint64_t)json_integer_value(v) > f->max)
            return snprintf(err, errlen, "\"%s\" must be an integer from %llu to %llu", f->key,
                            (unsigned long long)f->min, (unsigned long long)f->max),
                   false;
        return true;
    }
    if (!json_is_string(v))
        return snprintf(err, errlen, "\"%s\" must be a string", f->key), false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > f->max || strlen(s) != n)
        return snprintf(err, errlen, "\"%s\" must be 1 to %llu characters", f->key,
                        (unsigned long long)f->max),
               false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = f->type == MV_AGENT_F_ID ? is_id_char((char)c) : (c >= 0x20 && c < 0x7f);
        if (!ok)
            return snprintf(err, errlen, "\"%s\" contains an invalid character at offset %zu",
                            f->key, i),
                   false;
    }
    if (f->type == MV_AGENT_F_PATH) {
        if (s[0] != '/' || n < 2)
            return snprintf(err, errlen, "\"%s\" must be an absolute path", f->key), false;
        if (strstr(s, "/../") || (n >= 3 && strcmp(s + n - 3, "/..") == 0))
            return snprintf(err, errlen, "\"%s\" must not contain \"..\"", f->key), false;
    }
    return true;
}

int mv_agent_request_parse(uint16_t op, const void *data, size_t len, json_t **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    const struct mv_agent_op_desc *d = mv_agent_op_lookup(op);
    if (!d) {
        snprintf(err, errlen, "unknown operation 0x%04x", op);
        return -ENOSYS;
    }
    if (len > MV_AGENT_MAX_REQUEST) {
        snprintf(err, errlen, "%s: request of %zu bytes exceeds %d", d->name, len,
                 MV_AGENT_MAX_REQUEST);
        return -EMSGSIZE;
    }
    json_t *req;
    if (len == 0) {
        req = json_object();
    } else {
        json_error_t je;
        /* DISABLE_EOF_CHECK is off: trailing garbage is an error; embedded NULs are refused. */
        req = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
        if (!req) {
            snprintf(err, errlen, "%s: bad JSON at byte %d: %s", d->name, je.position, je.text);
            return -EINVAL;
        }
    }
    if (!req || !json_is_object(req)) {
        json_decref(req);
        snprintf(err, errlen, "%s: request must be a JSON object", d->name);
        return -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v)
    {
        const struct mv_agent_field *f = NULL;
        for (unsigned i = 0; i < d->n_fields; i++)
            if (strcmp(d->fields[i].key, key) == 0)
                f = &d->fields[i];
        char why[200];
        if (!f) {
            snprintf(err, errlen, "%s: unknown key \"%.64s\"", d->name, key);
            json_decref(req);
            return -EINVAL;
        }
        if (!field_valid(f, v, why, sizeof why)) {
            snprintf(err, errlen, "%s: %s", d->name, why);
            json_decref(req);
            return -EINVAL;
        }
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].required && !json_object_get(req, d->fields[i].key)) {
            snprintf(err, errlen, "%s: missing \"%s\"", d->name, d->fields[i].key);
            json_decref(req);
            return -EINVAL;
        }
    }
    *out = req;
    return 0;
}

char *mv_agent_reply_ok(json_t *obj, size_t *len)
{
    if (!obj)
        obj = json_object();
    json_object_set_new(obj, "ok", json_true());
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    *len = s ? strlen(s) : 0;
    return s;
}

char *mv_agent_reply_error(const char *msg, size_t *len)
{
    json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", msg ? msg : "error");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    *len = s ? strlen(s) : 0;
    return s;
}

int mv_agent_reply_parse(int32_t status, const void *data, size_t len, json_t **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    json_error_t je;
    json_t *o = len ? json_loadb(data, len, 0, &je) : NULL;
    if (status < 0) {
        const char *msg = json_string_value(json_object_get(o, "error"));
        snprintf(err, errlen, "%s", msg ? msg : strerror(-status));
        json_decref(o);
        return status;
    }
    if (!o || !json_is_object(o) || !json_is_true(json_object_get(o, "ok"))) {
        snprintf(err, errlen, "malformed reply");
        json_decref(o);
        return -EPROTO;
    }
    *out = o;
    return 0;
}

uint64_t mv_agent_node_id_from_mac(const uint8_t mac[6])
{
    return (uint64_t)mac[2] << 24 | (uint64_t)mac[3] << 16 | (uint64_t)mac[4] << 8 | mac[5];
}
