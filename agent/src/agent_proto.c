/* Request validation and reply encoding of the agent's control protocol (mv/agent_proto.h). */
#include "mv/agent_proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/util.h"

#define U64_MAX_JSON ((uint64_t)INT64_MAX) /* jansson integers are signed 64-bit */

/* Designated initializers: the struct has members (sub, n_sub) most fields leave zero. */
#define FIELD(k, t, req, lo, hi)                                                                   \
    {                                                                                              \
        .key = (k), .type = (t), .required = (req), .min = (lo), .max = (hi)                       \
    }
#define FIELD_ARRAY(k, req, maxn, subf)                                                            \
    {                                                                                              \
        .key = (k), .type = MV_AGENT_F_ARRAY, .required = (req), .max = (maxn), .sub = (subf),     \
        .n_sub = MV_ARRAY_SIZE(subf)                                                               \
    }

static const struct mv_agent_field drive_format_fields[] = {
    FIELD("drive", MV_AGENT_F_PATH, 1, 0, 255),
    FIELD("datastore", MV_AGENT_F_ID, 0, 0, 63),
    FIELD("chunk_size", MV_AGENT_F_UINT, 0, 4096, 1u << 30),
    FIELD("overcommit_pct", MV_AGENT_F_UINT, 0, 0, 10000),
    FIELD("force", MV_AGENT_F_BOOL, 0, 0, 0),
};
static const struct mv_agent_field replica_create_fields[] = {
    FIELD("vdisk", MV_AGENT_F_ID, 1, 0, MV_AGENT_VDISK_ID_MAX),
    FIELD("size", MV_AGENT_F_UINT, 1, 1, U64_MAX_JSON),
    FIELD("drive", MV_AGENT_F_PATH, 0, 0, 255),
    FIELD("thin", MV_AGENT_F_BOOL, 0, 0, 0),
    FIELD("map", MV_AGENT_F_BOOL, 0, 0, 0),
    FIELD("shelf", MV_AGENT_F_UINT, 0, 0, 0xfffe),
    FIELD("slot", MV_AGENT_F_UINT, 0, 0, 0xfe),
};
static const struct mv_agent_field replica_map_fields[] = {
    FIELD("vdisk", MV_AGENT_F_ID, 1, 0, MV_AGENT_VDISK_ID_MAX),
    FIELD("shelf", MV_AGENT_F_UINT, 0, 0, 0xfffe),
    FIELD("slot", MV_AGENT_F_UINT, 0, 0, 0xfe),
};
static const struct mv_agent_field vdisk_only_fields[] = {
    FIELD("vdisk", MV_AGENT_F_ID, 1, 0, MV_AGENT_VDISK_ID_MAX),
};
static const struct mv_agent_field replica_resize_fields[] = {
    FIELD("vdisk", MV_AGENT_F_ID, 1, 0, MV_AGENT_VDISK_ID_MAX),
    FIELD("size", MV_AGENT_F_UINT, 1, 1, U64_MAX_JSON),
};
static const struct mv_agent_field perfc_get_fields[] = {
    FIELD("name", MV_AGENT_F_STRING, 1, 0, MV_AGENT_PERFC_NAME_MAX),
};
static const struct mv_agent_field perfc_reset_fields[] = {
    FIELD("name", MV_AGENT_F_STRING, 0, 0, MV_AGENT_PERFC_NAME_MAX),
};
static const struct mv_agent_field ping_fields[] = {
    FIELD("echo", MV_AGENT_F_STRING, 0, 0, 256),
};

/* vm_start. A disk is either an AoE target (shelf, slot, target "local" = this host's mvstored
 * or the MAC of the host serving it) or a file on this host (path); check_vm_start enforces it. */
static const struct mv_agent_field vm_disk_fields[] = {
    FIELD("id", MV_AGENT_F_ID, 1, 0, 63),       FIELD("shelf", MV_AGENT_F_UINT, 0, 0, 0xfffe),
    FIELD("slot", MV_AGENT_F_UINT, 0, 0, 0xfe), FIELD("target", MV_AGENT_F_STRING, 0, 0, 17),
    FIELD("path", MV_AGENT_F_PATH, 0, 0, 255),  FIELD("ro", MV_AGENT_F_BOOL, 0, 0, 0),
};
static const struct mv_agent_field vm_nic_fields[] = {
    FIELD("id", MV_AGENT_F_ID, 1, 0, 63),
    FIELD("network_id", MV_AGENT_F_UINT, 1, 0, MV_AGENT_NETWORK_ID_MAX),
    FIELD("vlan", MV_AGENT_F_UINT, 0, 0, 4094),
    FIELD("mac", MV_AGENT_F_MAC, 0, 0, 17),
};
static const struct mv_agent_field vm_start_fields[] = {
    FIELD("uuid", MV_AGENT_F_UUID, 1, 0, MV_AGENT_UUID_MAX),
    FIELD("name", MV_AGENT_F_STRING, 0, 0, 64),
    FIELD("vcpus", MV_AGENT_F_UINT, 1, 1, MV_AGENT_VM_VCPUS_MAX),
    FIELD("mem_mb", MV_AGENT_F_UINT, 1, 1, MV_AGENT_VM_MEM_MB_MAX),
    FIELD("payload", MV_AGENT_F_PATH, 0, 0, 255),
    FIELD("kernel", MV_AGENT_F_PATH, 0, 0, 255),
    FIELD("initrd", MV_AGENT_F_PATH, 0, 0, 255),
    FIELD("cmdline", MV_AGENT_F_STRING, 0, 0, 2048),
    FIELD("cpuset", MV_AGENT_F_CPULIST, 0, 0, 1024),
    FIELD("pin", MV_AGENT_F_CPULIST, 0, 0, 1024),
    FIELD("vnuma", MV_AGENT_F_STRING, 0, 0, 512),
    FIELD_ARRAY("disks", 0, MV_AGENT_VM_DISKS_MAX, vm_disk_fields),
    FIELD_ARRAY("nics", 0, MV_AGENT_VM_NICS_MAX, vm_nic_fields),
};
static const struct mv_agent_field vm_stop_fields[] = {
    FIELD("uuid", MV_AGENT_F_UUID, 1, 0, MV_AGENT_UUID_MAX),
    FIELD("force", MV_AGENT_F_BOOL, 0, 0, 0),
    FIELD("timeout_ms", MV_AGENT_F_UINT, 0, 0, 600000),
};
static const struct mv_agent_field vm_uuid_fields[] = {
    FIELD("uuid", MV_AGENT_F_UUID, 1, 0, MV_AGENT_UUID_MAX),
};

static int check_vm_start(json_t *req, char *err, size_t errlen);

#define OP(code, nm, f)                                                                            \
    {                                                                                              \
        .op = (code), .name = (nm), .fields = (f), .n_fields = MV_ARRAY_SIZE(f)                    \
    }
#define OP_CHECKED(code, nm, f, chk)                                                               \
    {                                                                                              \
        .op = (code), .name = (nm), .fields = (f), .n_fields = MV_ARRAY_SIZE(f), .check = (chk)    \
    }
#define OP0(code, nm)                                                                              \
    {                                                                                              \
        .op = (code), .name = (nm)                                                                 \
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
    OP_CHECKED(MV_AGENT_OP_VM_START, "vm_start", vm_start_fields, check_vm_start),
    OP(MV_AGENT_OP_VM_STOP, "vm_stop", vm_stop_fields),
    OP(MV_AGENT_OP_VM_REBOOT, "vm_reboot", vm_uuid_fields),
    OP(MV_AGENT_OP_VM_PAUSE, "vm_pause", vm_uuid_fields),
    OP(MV_AGENT_OP_VM_UNPAUSE, "vm_unpause", vm_uuid_fields),
    OP(MV_AGENT_OP_VM_DELETE, "vm_delete", vm_uuid_fields),
    OP(MV_AGENT_OP_VM_INFO, "vm_info", vm_uuid_fields),
    OP0(MV_AGENT_OP_VM_LIST, "vm_list"),
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

static bool is_alnum_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int mv_agent_cpulist_parse(const char *s, uint64_t set[MV_AGENT_CPUSET_WORDS], unsigned *count,
                           uint16_t *order)
{
    memset(set, 0, MV_AGENT_CPUSET_WORDS * sizeof set[0]);
    *count = 0;
    if (!s || !*s)
        return -1;
    const char *p = s;
    for (;;) {
        unsigned lo = 0, hi;
        if (*p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++)
            if ((lo = lo * 10 + (unsigned)(*p - '0')) > MV_AGENT_CPU_MAX)
                return -1;
        hi = lo;
        if (*p == '-') {
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            for (hi = 0; *p >= '0' && *p <= '9'; p++)
                if ((hi = hi * 10 + (unsigned)(*p - '0')) > MV_AGENT_CPU_MAX)
                    return -1;
            if (hi < lo)
                return -1;
        }
        for (unsigned c = lo; c <= hi; c++) {
            if (set[c / 64] & (1ull << (c % 64)))
                return -1; /* listed twice */
            set[c / 64] |= 1ull << (c % 64);
            if (order)
                order[*count] = (uint16_t)c;
            (*count)++;
        }
        if (*p == 0)
            return 0;
        if (*p != ',')
            return -1;
        p++;
    }
}

static int validate_object(const char *op, const char *ctx, const struct mv_agent_field *fields,
                           unsigned n_fields, json_t *obj, char *err, size_t errlen);

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
    if (f->type == MV_AGENT_F_ARRAY) {
        if (!json_is_array(v) || json_array_size(v) > f->max)
            return snprintf(err, errlen, "\"%s\" must be an array of at most %llu objects", f->key,
                            (unsigned long long)f->max),
                   false;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            char ctx[80];
            snprintf(ctx, sizeof ctx, "%s[%zu]", f->key, i);
            if (!json_is_object(e))
                return snprintf(err, errlen, "\"%s\" must be an object", ctx), false;
            if (validate_object(NULL, ctx, f->sub, f->n_sub, e, err, errlen) != 0)
                return false;
        }
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
        bool ok = f->type == MV_AGENT_F_ID     ? is_id_char((char)c)
                  : f->type == MV_AGENT_F_UUID ? (is_alnum_char((char)c) || c == '-' || c == '_')
                                               : (c >= 0x20 && c < 0x7f);
        if (!ok)
            return snprintf(err, errlen, "\"%s\" contains an invalid character at offset %zu",
                            f->key, i),
                   false;
    }
    if (f->type == MV_AGENT_F_UUID && !is_alnum_char(s[0]))
        return snprintf(err, errlen, "\"%s\" must start with a letter or digit", f->key), false;
    if (f->type == MV_AGENT_F_PATH) {
        if (s[0] != '/' || n < 2)
            return snprintf(err, errlen, "\"%s\" must be an absolute path", f->key), false;
        if (strstr(s, "/../") || (n >= 3 && strcmp(s + n - 3, "/..") == 0))
            return snprintf(err, errlen, "\"%s\" must not contain \"..\"", f->key), false;
    }
    if (f->type == MV_AGENT_F_MAC) {
        uint8_t mac[6];
        if (n != 17 || mv_mac_parse(s, mac) != 0)
            return snprintf(err, errlen, "\"%s\" must be a MAC address aa:bb:cc:dd:ee:ff", f->key),
                   false;
        if (mac[0] & 1)
            return snprintf(err, errlen, "\"%s\" must be a unicast MAC address", f->key), false;
    }
    if (f->type == MV_AGENT_F_CPULIST) {
        uint64_t set[MV_AGENT_CPUSET_WORDS];
        unsigned count;
        if (mv_agent_cpulist_parse(s, set, &count, NULL) != 0)
            return snprintf(err, errlen,
                            "\"%s\" must be a CPU list like \"0-3,6\" (CPUs 0 to %d, each once)",
                            f->key, MV_AGENT_CPU_MAX),
                   false;
    }
    return true;
}

/* Every key known and valid, every required key present. op names the request in messages;
 * ctx the element of an array ("disks[1]"). */
static int validate_object(const char *op, const char *ctx, const struct mv_agent_field *fields,
                           unsigned n_fields, json_t *obj, char *err, size_t errlen)
{
    char pre[96];
    if (op && ctx)
        snprintf(pre, sizeof pre, "%s: %s: ", op, ctx);
    else
        snprintf(pre, sizeof pre, "%s: ", op ? op : ctx);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const struct mv_agent_field *f = NULL;
        for (unsigned i = 0; i < n_fields; i++)
            if (strcmp(fields[i].key, key) == 0)
                f = &fields[i];
        char why[256];
        if (!f)
            return snprintf(err, errlen, "%sunknown key \"%.64s\"", pre, key), -1;
        if (!field_valid(f, v, why, sizeof why))
            return snprintf(err, errlen, "%s%s", pre, why), -1;
    }
    for (unsigned i = 0; i < n_fields; i++)
        if (fields[i].required && !json_object_get(obj, fields[i].key))
            return snprintf(err, errlen, "%smissing \"%s\"", pre, fields[i].key), -1;
    return 0;
}

/* Ids must be unique within an array (they name TAPs and disks). */
static int check_unique_ids(json_t *arr, const char *what, char *err, size_t errlen)
{
    size_t i, j;
    json_t *a, *b;
    json_array_foreach(arr, i, a)
    {
        for (j = i + 1; j < json_array_size(arr); j++) {
            b = json_array_get(arr, j);
            if (strcmp(json_string_value(json_object_get(a, "id")),
                       json_string_value(json_object_get(b, "id"))) == 0)
                return snprintf(err, errlen, "%s[%zu] and %s[%zu] have the same id", what, i, what,
                                j),
                       -1;
        }
    }
    return 0;
}

static int check_vm_start(json_t *req, char *err, size_t errlen)
{
    bool payload = json_object_get(req, "payload") != NULL;
    bool kernel = json_object_get(req, "kernel") != NULL;
    if (payload == kernel)
        return snprintf(err, errlen, "exactly one of \"payload\" and \"kernel\" is needed"), -1;
    if (payload && (json_object_get(req, "initrd") || json_object_get(req, "cmdline")))
        return snprintf(err, errlen, "\"initrd\" and \"cmdline\" go with \"kernel\""), -1;

    unsigned vcpus = (unsigned)json_integer_value(json_object_get(req, "vcpus"));
    uint64_t cpuset[MV_AGENT_CPUSET_WORDS], pin[MV_AGENT_CPUSET_WORDS];
    unsigned n_cpuset = 0, n_pin = 0;
    const char *cs = json_string_value(json_object_get(req, "cpuset"));
    const char *ps = json_string_value(json_object_get(req, "pin"));
    if (cs)
        mv_agent_cpulist_parse(cs, cpuset, &n_cpuset, NULL);
    if (ps) {
        mv_agent_cpulist_parse(ps, pin, &n_pin, NULL);
        if (n_pin != vcpus)
            return snprintf(err, errlen, "\"pin\" names %u CPUs for %u vCPUs (one per vCPU)", n_pin,
                            vcpus),
                   -1;
        for (unsigned w = 0; cs && w < MV_AGENT_CPUSET_WORDS; w++)
            if (pin[w] & ~cpuset[w])
                return snprintf(err, errlen, "\"pin\" names CPUs outside \"cpuset\""), -1;
    }

    json_t *disks = json_object_get(req, "disks"), *d;
    size_t i;
    json_array_foreach(disks, i, d)
    {
        bool has_path = json_object_get(d, "path") != NULL;
        bool has_aoe = json_object_get(d, "shelf") || json_object_get(d, "slot") ||
                       json_object_get(d, "target");
        if (has_path == has_aoe)
            return snprintf(err, errlen, "disks[%zu]: either \"path\" or shelf, slot, target", i),
                   -1;
        if (has_aoe) {
            const char *t = json_string_value(json_object_get(d, "target"));
            uint8_t mac[6];
            if (!json_object_get(d, "shelf") || !json_object_get(d, "slot") || !t)
                return snprintf(err, errlen, "disks[%zu]: needs shelf, slot and target", i), -1;
            if (strcmp(t, "local") != 0 && (strlen(t) != 17 || mv_mac_parse(t, mac) != 0))
                return snprintf(err, errlen,
                                "disks[%zu]: \"target\" must be \"local\" or a MAC address", i),
                       -1;
        }
    }
    if (check_unique_ids(disks, "disks", err, errlen) != 0 ||
        check_unique_ids(json_object_get(req, "nics"), "nics", err, errlen) != 0)
        return -1;
    return 0;
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
    if (validate_object(d->name, NULL, d->fields, d->n_fields, req, err, errlen) != 0) {
        json_decref(req);
        return -EINVAL;
    }
    char why[256];
    if (d->check && d->check(req, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", d->name, why);
        json_decref(req);
        return -EINVAL;
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
