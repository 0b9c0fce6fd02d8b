#include "mvctld/validate.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mv/util.h"

enum field_type { T_STR, T_INT, T_BOOL, T_OBJ, T_STR_ARRAY, T_INT_ARRAY, T_INT_OR_NULL };

#define F_RO        0x1 /* computed by the controller: never accepted in a body */
#define F_IMMUTABLE 0x2 /* accepted on create, refused on edit */
#define F_EDIT_ONLY 0x4 /* accepted on edit only */

struct field_rule {
    const char *name;
    enum field_type type;
    unsigned flags;
    int missing_code; /* non-zero: required on create, this error when absent */
    const char *missing_msg;
};

static const char *type_name(enum field_type t)
{
    switch (t) {
    case T_STR:
        return "a string";
    case T_INT:
        return "an integer";
    case T_BOOL:
        return "a boolean";
    case T_OBJ:
        return "an object";
    case T_STR_ARRAY:
        return "an array of strings";
    case T_INT_ARRAY:
        return "an array of integers";
    case T_INT_OR_NULL:
        return "an integer or null";
    }
    return "?";
}

static bool type_ok(const json_t *v, enum field_type t)
{
    switch (t) {
    case T_STR:
        return json_is_string(v);
    case T_INT:
        return json_is_integer(v);
    case T_BOOL:
        return json_is_boolean(v);
    case T_OBJ:
        return json_is_object(v);
    case T_STR_ARRAY:
    case T_INT_ARRAY:
        return json_is_array(v);
    case T_INT_OR_NULL:
        return json_is_integer(v) || json_is_null(v);
    }
    return false;
}

__attribute__((format(printf, 5, 6))) static void add_fmt(struct mvctld_errors *e, int code,
                                                          const char *field, const char *detail,
                                                          const char *fmt, ...)
{
    va_list ap;
    char msg[256];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mvctld_errors_add(e, code, field, msg, detail);
}

/* Array elements: right type, no duplicates. */
static void check_array(const json_t *arr, const char *field, bool integers,
                        struct mvctld_errors *e)
{
    size_t i, j;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char path[200];
        snprintf(path, sizeof path, "%.150s[%zu]", field, i);
        if (integers ? !json_is_integer(v) : !json_is_string(v)) {
            mvctld_errors_add(e, MVE_FIELD_TYPE, path,
                              integers ? "Expected an integer." : "Expected a string.", NULL);
            continue;
        }
        for (j = 0; j < i; j++) {
            if (json_equal(v, json_array_get(arr, j))) {
                mvctld_errors_add(e, MVE_DUPLICATE_ID, path, "The id is listed twice.", NULL);
                break;
            }
        }
    }
}

static int check_shape(const json_t *obj, const struct field_rule *rules, size_t n,
                       const char *prefix, enum mvctld_body_kind kind, struct mvctld_errors *e)
{
    int before = mvctld_errors_count(e);
    if (!json_is_object(obj)) {
        mvctld_errors_add(e, MVE_BODY_NOT_OBJECT, prefix ? prefix : "",
                          "The body must be a JSON object.", NULL);
        return 1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        char path[160];
        snprintf(path, sizeof path, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", key);
        const struct field_rule *r = NULL;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(rules[i].name, key) == 0)
                r = &rules[i];
        }
        if (!r) {
            mvctld_errors_add(e, MVE_FIELD_UNKNOWN, path, "Unknown field.", NULL);
            continue;
        }
        if (r->flags & F_RO || (kind == MVCTLD_BODY_CREATE && (r->flags & F_EDIT_ONLY))) {
            mvctld_errors_add(e, MVE_FIELD_READ_ONLY, path,
                              "The field is read-only here: it cannot be set in this request.",
                              NULL);
            continue;
        }
        if (kind == MVCTLD_BODY_EDIT && (r->flags & F_IMMUTABLE)) {
            mvctld_errors_add(e, MVE_FIELD_IMMUTABLE, path,
                              "The field cannot be changed after creation.", NULL);
            continue;
        }
        if (!type_ok(v, r->type)) {
            add_fmt(e, MVE_FIELD_TYPE, path, NULL, "Expected %s.", type_name(r->type));
            continue;
        }
        if (r->type == T_STR_ARRAY || r->type == T_INT_ARRAY)
            check_array(v, path, r->type == T_INT_ARRAY, e);
    }
    if (kind == MVCTLD_BODY_CREATE) {
        for (size_t i = 0; i < n; i++) {
            if (rules[i].missing_code && !json_object_get(obj, rules[i].name))
                mvctld_errors_add(e, rules[i].missing_code, rules[i].name, rules[i].missing_msg,
                                  "The field is required.");
        }
    }
    return mvctld_errors_count(e) - before;
}

static const char *get_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* -1 when absent or not an integer (the shape check reported that). */
static bool get_int(const json_t *o, const char *k, json_int_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

static bool get_bool(const json_t *o, const char *k, bool dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static bool is_blank(const char *s)
{
    for (; *s; s++) {
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    }
    return true;
}

/* ---- datastores ---- */

static const struct field_rule repair_rules[] = {
    {"trigger", T_STR, 0, 0, NULL},
    {"period_seconds", T_INT_OR_NULL, 0, 0, NULL},
    {"num_of_repairs", T_INT_OR_NULL, 0, 0, NULL},
};

static const struct field_rule datastore_rules[] = {
    {"name", T_STR, 0, MVE_DS_NAME_EMPTY, "The name cannot be empty."},
    {"description", T_STR, 0, 0, NULL},
    {"disks", T_STR_ARRAY, F_IMMUTABLE, MVE_DS_DISKS_EMPTY, "The array of disks is empty."},
    {"overcommit_disk", T_STR, 0, 0, NULL},
    {"replicas", T_INT, F_IMMUTABLE, MVE_FIELD_REQUIRED, "The replicas are required."},
    {"repair_volume_policy", T_OBJ, 0, 0, NULL},
    {"has_db_metadata", T_BOOL, 0, 0, NULL},
    {"is_thin", T_BOOL, F_IMMUTABLE, 0, NULL},
    {"state", T_STR, F_EDIT_ONLY, 0, NULL},
    {"id", T_STR, F_RO, 0, NULL},
    {"reserved", T_BOOL, F_RO, 0, NULL},
    {"total", T_INT, F_RO, 0, NULL},
    {"used", T_INT, F_RO, 0, NULL},
    {"available", T_INT, F_RO, 0, NULL},
    {"orphan_vdisks", T_INT, F_RO, 0, NULL},
    {"resource_group_ids", T_INT_ARRAY, F_RO, 0, NULL},
};

static void check_datastore_name(const char *name, struct mvctld_errors *e)
{
    if (is_blank(name)) {
        mvctld_errors_add(e, MVE_DS_NAME_EMPTY, "name", "The name cannot be empty.", NULL);
        return;
    }
    if (strlen(name) > MVCTLD_DS_NAME_MAX)
        mvctld_errors_add(e, MVE_DS_NAME_TOO_LONG, "name",
                          "The name has to be less than or equal to 31 characters.", NULL);
    if (strcasecmp(name, "OPENSTACK_DS") == 0)
        mvctld_errors_add(e, MVE_DS_NAME_RESERVED, "name", "The name cannot be 'OPENSTACK_DS'.",
                          "The name is reserved for the datastore OpenStack uses.");
    if (strpbrk(name, "=,?\"'\\"))
        mvctld_errors_add(e, MVE_DS_NAME_CHARS, "name",
                          "The name cannot have any of these characters: = , ? \" ' \\", NULL);
}

static void check_overcommit(const char *oc, struct mvctld_errors *e)
{
    uint32_t pct;
    if (strcmp(oc, "unlimited") == 0)
        return;
    if (mv_parse_u32(oc, &pct) != 0 || oc[0] == '+' || oc[0] == ' ') {
        mvctld_errors_add(e, MVE_DS_OVERCOMMIT_INVALID, "overcommit_disk",
                          "The overcommit must be a percentage (0 to 100) or 'unlimited'.", NULL);
        return;
    }
    if (pct > 100)
        mvctld_errors_add(e, MVE_DS_OVERCOMMIT_HIGH, "overcommit_disk",
                          "The overcommit cannot be over 100.", NULL);
}

static void check_repair_policy(const json_t *p, enum mvctld_body_kind kind,
                                struct mvctld_errors *e)
{
    if (check_shape(p, repair_rules, MV_ARRAY_SIZE(repair_rules), "repair_volume_policy",
                    MVCTLD_BODY_EDIT, e) > 0)
        return;
    const char *trigger = get_str(p, "trigger");
    if (trigger && strcmp(trigger, "manual") != 0 && strcmp(trigger, "periodic") != 0)
        mvctld_errors_add(e, MVE_DS_REPAIR_TRIGGER, "repair_volume_policy.trigger",
                          "The trigger must be 'periodic' or 'manual'.",
                          "'config' and 'cleanup' make no sense for repairs.");
    json_int_t period = 0, num = 0;
    bool has_period = get_int(p, "period_seconds", &period);
    if (has_period && period < 0)
        mvctld_errors_add(e, MVE_DS_REPAIR_PERIOD, "repair_volume_policy.period_seconds",
                          "The period cannot be negative.", NULL);
    if (kind == MVCTLD_BODY_CREATE && trigger && strcmp(trigger, "periodic") == 0 &&
        (!has_period || period <= 0))
        mvctld_errors_add(e, MVE_DS_REPAIR_PERIOD, "repair_volume_policy.period_seconds",
                          "A periodic repair needs a period of at least 1 second.", NULL);
    if (get_int(p, "num_of_repairs", &num) && num < 0)
        mvctld_errors_add(e, MVE_DS_REPAIR_NUM, "repair_volume_policy.num_of_repairs",
                          "The number of parallel repairs cannot be negative.", NULL);
}

int mvctld_validate_datastore(const json_t *body, enum mvctld_body_kind kind,
                              struct mvctld_errors *e)
{
    int before = mvctld_errors_count(e);
    check_shape(body, datastore_rules, MV_ARRAY_SIZE(datastore_rules), NULL, kind, e);
    if (!json_is_object(body))
        return mvctld_errors_count(e) - before;
    const char *name = get_str(body, "name");
    if (name)
        check_datastore_name(name, e);
    json_int_t replicas = 0;
    bool has_replicas = get_int(body, "replicas", &replicas);
    if (has_replicas && replicas <= 0)
        mvctld_errors_add(e, MVE_DS_REPLICAS_LOW, "replicas", "The replicas is 0 or lower.",
                          "At least one copy of the data is needed.");
    const json_t *disks = json_object_get(body, "disks");
    if (json_is_array(disks) && json_array_size(disks) == 0)
        mvctld_errors_add(e, MVE_DS_DISKS_EMPTY, "disks", "The array of disks is empty.", NULL);
    if (kind == MVCTLD_BODY_CREATE && has_replicas && replicas > 0 && json_is_array(disks) &&
        json_array_size(disks) > 0 && (size_t)replicas > json_array_size(disks))
        mvctld_errors_add(e, MVE_DS_REPLICAS_OVER_DISKS, "replicas",
                          "The replicas cannot be more than the disks.",
                          "Each replica of a volume lives on a different disk.");
    const char *oc = get_str(body, "overcommit_disk");
    if (oc)
        check_overcommit(oc, e);
    const json_t *rp = json_object_get(body, "repair_volume_policy");
    if (json_is_object(rp))
        check_repair_policy(rp, kind, e);
    const char *state = get_str(body, "state");
    if (state && strcmp(state, "enabled") != 0 && strcmp(state, "disabled") != 0)
        mvctld_errors_add(e, MVE_DS_STATE, "state", "The state must be 'enabled' or 'disabled'.",
                          NULL);
    return mvctld_errors_count(e) - before;
}

/* ---- resource groups ---- */

static const struct field_rule ft_rules[] = {
    {"is_enabled", T_BOOL, 0, 0, NULL},     {"unit", T_STR, 0, 0, NULL},
    {"max_failures", T_INT, 0, 0, NULL},    {"automated_failover", T_BOOL, 0, 0, NULL},
    {"is_degraded", T_BOOL, F_RO, 0, NULL},
};

static const struct field_rule group_rules[] = {
    {"name", T_STR, 0, MVE_RG_NAME_EMPTY, "The name cannot be empty."},
    {"description", T_STR, 0, 0, NULL},
    {"cores", T_STR_ARRAY, 0, MVE_RG_CORES_EMPTY, "No core ids are assigned."},
    {"datastores", T_STR_ARRAY, 0, MVE_RG_DATASTORES_EMPTY, "No datastore ids are assigned."},
    {"network_ids", T_INT_ARRAY, 0, MVE_RG_NETWORKS_EMPTY, "No network ids are assigned."},
    {"cpu_overcommit", T_INT, 0, MVE_FIELD_REQUIRED, "The cpu_overcommit is required."},
    {"is_storage_latency_optimized", T_BOOL, 0, 0, NULL},
    {"is_cpu_pinning_enabled", T_BOOL, 0, 0, NULL},
    {"fault_tolerance", T_OBJ, 0, 0, NULL},
    {"id", T_INT, F_RO, 0, NULL},
    {"disk_ids", T_STR_ARRAY, F_RO, 0, NULL},
    {"virtual_cores", T_INT, F_RO, 0, NULL},
    {"real_cores", T_INT, F_RO, 0, NULL},
    {"core_usage", T_INT, F_RO, 0, NULL},
    {"avail_memory", T_INT, F_RO, 0, NULL},
    {"total_memory", T_INT, F_RO, 0, NULL},
    {"total_storage", T_INT, F_RO, 0, NULL},
    {"avail_storage", T_INT, F_RO, 0, NULL},
    {"is_reserved", T_BOOL, F_RO, 0, NULL},
};

static void check_fault_tolerance(const json_t *ft, struct mvctld_errors *e)
{
    if (check_shape(ft, ft_rules, MV_ARRAY_SIZE(ft_rules), "fault_tolerance", MVCTLD_BODY_EDIT, e) >
        0)
        return;
    const char *unit = get_str(ft, "unit");
    if (unit && strcmp(unit, "mvgroup") != 0 && strcmp(unit, "blade") != 0 &&
        strcmp(unit, "chassis") != 0 && strcmp(unit, "rack") != 0)
        mvctld_errors_add(e, MVE_RG_FT_UNIT, "fault_tolerance.unit",
                          "The fault tolerance unit must be one of 'mvgroup', 'blade', "
                          "'chassis' and 'rack'.",
                          NULL);
    json_int_t mf;
    if (get_int(ft, "max_failures", &mf) && (mf < 0 || mf > 1024))
        mvctld_errors_add(e, MVE_RG_FT_MAX_FAILURES, "fault_tolerance.max_failures",
                          "The number of units allowed to fail must be 0 to 1024.", NULL);
}

int mvctld_validate_group(const json_t *body, enum mvctld_body_kind kind, struct mvctld_errors *e)
{
    int before = mvctld_errors_count(e);
    check_shape(body, group_rules, MV_ARRAY_SIZE(group_rules), NULL, kind, e);
    if (!json_is_object(body))
        return mvctld_errors_count(e) - before;
    const char *name = get_str(body, "name");
    if (name && is_blank(name))
        mvctld_errors_add(e, MVE_RG_NAME_EMPTY, "name", "The name cannot be empty.", NULL);
    else if (name && strlen(name) > MVCTLD_NAME_MAX)
        mvctld_errors_add(e, MVE_FIELD_TYPE, "name", "The name is longer than 255 bytes.", NULL);
    static const struct {
        const char *field;
        int code;
        const char *msg;
    } lists[] = {
        {"cores", MVE_RG_CORES_EMPTY, "No core ids are assigned."},
        {"datastores", MVE_RG_DATASTORES_EMPTY, "No datastore ids are assigned."},
        {"network_ids", MVE_RG_NETWORKS_EMPTY, "No network ids are assigned."},
    };
    for (size_t i = 0; i < MV_ARRAY_SIZE(lists); i++) {
        const json_t *a = json_object_get(body, lists[i].field);
        if (json_is_array(a) && json_array_size(a) == 0)
            mvctld_errors_add(e, lists[i].code, lists[i].field, lists[i].msg, NULL);
    }
    json_int_t oc = 0;
    bool has_oc = get_int(body, "cpu_overcommit", &oc);
    if (has_oc && oc < 1)
        mvctld_errors_add(e, MVE_RG_OVERCOMMIT_LOW, "cpu_overcommit",
                          "The cpu_overcommit value is less than 1.", NULL);
    if (has_oc && oc > 8)
        mvctld_errors_add(e, MVE_RG_OVERCOMMIT_HIGH, "cpu_overcommit",
                          "The cpu_overcommit value is greater than 8.", NULL);
    if (kind == MVCTLD_BODY_CREATE && has_oc && oc > 1 &&
        get_bool(body, "is_cpu_pinning_enabled", false))
        mvctld_errors_add(e, MVE_RG_PINNING_OVERCOMMIT, "cpu_overcommit",
                          "The CPU pinning is enabled and the cpu_overcommit is over 1.",
                          "With pinning each virtual core has a physical core of its own.");
    const json_t *ft = json_object_get(body, "fault_tolerance");
    if (json_is_object(ft))
        check_fault_tolerance(ft, e);
    return mvctld_errors_count(e) - before;
}

/* ---- networks ---- */

static const struct field_rule network_rules[] = {
    {"name", T_STR, 0, MVE_NET_NAME_EMPTY, "The name cannot be empty."},
    {"virtual", T_BOOL, F_IMMUTABLE, 0, NULL},
    {"vnet_id", T_STR, 0, 0, NULL},
    {"ip_start", T_STR, 0, 0, NULL},
    {"ip_end", T_STR, 0, 0, NULL},
    {"cidr", T_STR, 0, 0, NULL},
    {"gateway", T_STR, 0, 0, NULL},
    {"dhcp_server_ip", T_STR, 0, 0, NULL},
    {"nat_forwarding", T_BOOL, 0, 0, NULL},
    {"ip_version", T_INT, F_IMMUTABLE, 0, NULL},
    {"dhcp_type", T_STR, 0, 0, NULL},
    {"is_routable", T_BOOL, 0, 0, NULL},
    {"is_private", T_BOOL, 0, 0, NULL},
    {"is_vlan", T_BOOL, F_IMMUTABLE, 0, NULL},
    {"is_wire_vlan", T_BOOL, 0, 0, NULL},
    {"vlan_tag", T_INT, 0, 0, NULL},
    {"is_dedicated", T_BOOL, 0, 0, NULL},
    {"mac", T_STR, 0, 0, NULL},
    {"id", T_INT, F_RO, 0, NULL},
    {"resource_group_ids", T_INT_ARRAY, F_RO, 0, NULL},
    {"active_nodes", T_STR_ARRAY, F_RO, 0, NULL},
    {"physical_paths", T_INT_ARRAY, F_RO, 0, NULL},
};

struct ip_addr {
    int family;
    unsigned char b[16];
    int len;
};

static bool parse_ip(const char *s, int version, struct ip_addr *a)
{
    a->family = version == 6 ? AF_INET6 : AF_INET;
    a->len = version == 6 ? 16 : 4;
    return inet_pton(a->family, s, a->b) == 1;
}

static bool parse_cidr(const char *s, int version, struct ip_addr *net, unsigned *prefix)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= sizeof buf)
        return false;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = 0;
    uint32_t p;
    if (!parse_ip(buf, version, net) || mv_parse_u32(slash + 1, &p) != 0 ||
        p > (unsigned)net->len * 8 || !(slash[1] >= '0' && slash[1] <= '9'))
        return false;
    *prefix = p;
    return true;
}

static bool in_prefix(const struct ip_addr *net, unsigned prefix, const struct ip_addr *a)
{
    for (unsigned bit = 0; bit < prefix; bit++) {
        unsigned mask = 0x80u >> (bit % 8);
        if ((net->b[bit / 8] & mask) != (a->b[bit / 8] & mask))
            return false;
    }
    return true;
}

/* Checks an address field: valid for the version and inside the CIDR when there is one. */
static bool check_addr(const json_t *body, const char *field, int version, bool have_cidr,
                       const struct ip_addr *net, unsigned prefix, int code,
                       struct mvctld_errors *e, struct ip_addr *out)
{
    const char *s = get_str(body, field);
    if (!s)
        return false;
    if (!parse_ip(s, version, out)) {
        add_fmt(e, code, field, NULL, "'%s' is not an IP address of the network's version.", s);
        return false;
    }
    if (have_cidr && !in_prefix(net, prefix, out)) {
        add_fmt(e, code, field, NULL, "'%s' is outside the network's CIDR.", s);
        return false;
    }
    return true;
}

int mvctld_validate_network(const json_t *body, enum mvctld_body_kind kind, struct mvctld_errors *e)
{
    int before = mvctld_errors_count(e);
    check_shape(body, network_rules, MV_ARRAY_SIZE(network_rules), NULL, kind, e);
    if (!json_is_object(body))
        return mvctld_errors_count(e) - before;
    const char *name = get_str(body, "name");
    if (name && is_blank(name))
        mvctld_errors_add(e, MVE_NET_NAME_EMPTY, "name", "The name cannot be empty.", NULL);
    else if (name && strlen(name) > MVCTLD_NAME_MAX)
        mvctld_errors_add(e, MVE_FIELD_TYPE, "name", "The name is longer than 255 bytes.", NULL);
    json_int_t version = 4;
    if (get_int(body, "ip_version", &version) && version != 4 && version != 6) {
        mvctld_errors_add(e, MVE_NET_IP_VERSION, "ip_version", "The ip_version must be 4 or 6.",
                          NULL);
        return mvctld_errors_count(e) - before; /* addresses cannot be judged */
    }
    const char *dhcp = get_str(body, "dhcp_type");
    if (dhcp && strcmp(dhcp, "internal") != 0 && strcmp(dhcp, "static") != 0 &&
        strcmp(dhcp, "external") != 0)
        mvctld_errors_add(e, MVE_NET_DHCP_TYPE, "dhcp_type",
                          "The dhcp_type must be 'internal', 'static' or 'external'.", NULL);
    struct ip_addr net = {0}, start, end, tmp;
    unsigned prefix = 0;
    bool have_cidr = false;
    const char *cidr = get_str(body, "cidr");
    if (cidr) {
        have_cidr = parse_cidr(cidr, (int)version, &net, &prefix);
        if (!have_cidr)
            add_fmt(e, MVE_NET_CIDR, "cidr", NULL, "'%s' is not a CIDR of the network's version.",
                    cidr);
    }
    bool serves_ips = dhcp && (strcmp(dhcp, "internal") == 0 || strcmp(dhcp, "static") == 0);
    if (kind == MVCTLD_BODY_CREATE && serves_ips) {
        if (!cidr)
            mvctld_errors_add(e, MVE_NET_CIDR, "cidr",
                              "A network with dhcp_type 'internal' or 'static' needs a cidr.",
                              NULL);
        if (!get_str(body, "ip_start") || !get_str(body, "ip_end"))
            mvctld_errors_add(e, MVE_NET_IP_RANGE, "ip_start",
                              "A network with dhcp_type 'internal' or 'static' needs ip_start "
                              "and ip_end.",
                              NULL);
    }
    bool ok_start = check_addr(body, "ip_start", (int)version, have_cidr, &net, prefix,
                               MVE_NET_IP_RANGE, e, &start);
    bool ok_end = check_addr(body, "ip_end", (int)version, have_cidr, &net, prefix,
                             MVE_NET_IP_RANGE, e, &end);
    if (ok_start && ok_end && memcmp(start.b, end.b, (size_t)start.len) > 0)
        mvctld_errors_add(e, MVE_NET_IP_RANGE, "ip_end", "The ip_end is before the ip_start.",
                          NULL);
    check_addr(body, "gateway", (int)version, have_cidr, &net, prefix, MVE_NET_GATEWAY, e, &tmp);
    check_addr(body, "dhcp_server_ip", (int)version, have_cidr, &net, prefix, MVE_NET_DHCP_OPTIONS,
               e, &tmp);
    if (kind == MVCTLD_BODY_CREATE) {
        bool internal_routable =
            dhcp && strcmp(dhcp, "internal") == 0 && get_bool(body, "is_routable", false);
        if (!internal_routable &&
            (json_object_get(body, "dhcp_server_ip") || get_bool(body, "nat_forwarding", false)))
            mvctld_errors_add(e, MVE_NET_DHCP_OPTIONS, "dhcp_server_ip",
                              "dhcp_server_ip and nat_forwarding apply only to routable networks "
                              "with dhcp_type 'internal'.",
                              NULL);
        bool vlan = get_bool(body, "is_vlan", false);
        json_int_t tag;
        bool has_tag = get_int(body, "vlan_tag", &tag);
        if (vlan && !has_tag)
            mvctld_errors_add(e, MVE_NET_VLAN_TAG, "vlan_tag", "A VLAN network needs a vlan_tag.",
                              NULL);
        if (!vlan && (has_tag || get_bool(body, "is_wire_vlan", false)))
            mvctld_errors_add(e, MVE_NET_VLAN_FLAGS, has_tag ? "vlan_tag" : "is_wire_vlan",
                              "vlan_tag and is_wire_vlan need is_vlan.", NULL);
        if (has_tag && (tag < 1 || tag > 4094))
            mvctld_errors_add(e, MVE_NET_VLAN_TAG, "vlan_tag", "The vlan_tag must be 1 to 4094.",
                              "0 and 4095 are reserved by 802.1Q.");
        const char *mac = get_str(body, "mac");
        uint8_t m[MV_MAC_LEN];
        if (mac && mv_mac_parse(mac, m) != 0)
            add_fmt(e, MVE_NET_MAC, "mac", NULL, "'%s' is not a MAC address.", mac);
        if (mac && get_bool(body, "virtual", true))
            mvctld_errors_add(e, MVE_NET_MAC, "mac", "Only physical networks have a mac.", NULL);
    }
    return mvctld_errors_count(e) - before;
}

int mvctld_validate_id_list(const json_t *body, const char *field, bool integers,
                            struct mvctld_errors *e)
{
    int before = mvctld_errors_count(e);
    const struct field_rule rules[] = {
        {field, integers ? T_INT_ARRAY : T_STR_ARRAY, 0, MVE_FIELD_REQUIRED, "No ids are given."},
    };
    check_shape(body, rules, 1, NULL, MVCTLD_BODY_CREATE, e);
    const json_t *a = json_object_get(body, field);
    if (json_is_array(a) && json_array_size(a) == 0)
        mvctld_errors_add(e, MVE_FIELD_REQUIRED, field, "No ids are given.", NULL);
    return mvctld_errors_count(e) - before;
}

json_t *mvctld_parse_body(const char *data, size_t len, char *why, size_t whylen)
{
    json_error_t jerr;
    if (len == 0) {
        snprintf(why, whylen, "The request needs a JSON body.");
        return NULL;
    }
    /* REJECT_DUPLICATES: {"name":"a","name":"b"} is ambiguous, so it is malformed. */
    json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        snprintf(why, whylen, "Malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
    return v;
}
