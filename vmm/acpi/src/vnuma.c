/* vNUMA topology: defaults, the --vnuma parser, validation and guest-physical layout. */
#include "mv/vnuma.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/util.h"

__attribute__((format(printf, 3, 4))) static int vnuma_error(char *err, size_t errlen,
                                                             const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "vnuma: ");
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

uint64_t mv_vnuma_total_mem(const struct mv_vnuma *v)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < v->nr_nodes && i < MV_VNUMA_MAX_NODES; i++)
        total += v->node_mem[i];
    return total;
}

int mv_vnuma_validate(const struct mv_vnuma *v, char *err, size_t errlen)
{
    if (v->nr_nodes < 1 || v->nr_nodes > MV_VNUMA_MAX_NODES)
        return vnuma_error(err, errlen, "%u vnodes: must be 1..%u", v->nr_nodes,
                           MV_VNUMA_MAX_NODES);
    if (v->nr_vcpus < 1 || v->nr_vcpus > MV_VNUMA_MAX_VCPUS)
        return vnuma_error(err, errlen, "%u vcpus: must be 1..%u", v->nr_vcpus, MV_VNUMA_MAX_VCPUS);
    uint64_t total = 0;
    for (uint32_t i = 0; i < v->nr_nodes; i++) {
        uint64_t m = v->node_mem[i];
        if (m == 0)
            return vnuma_error(err, errlen, "vnode %u has no memory", i);
        if (m % MV_VNUMA_MEM_ALIGN)
            return vnuma_error(err, errlen, "vnode %u memory %llu is not a multiple of 2M", i,
                               (unsigned long long)m);
        /* 2^48 bytes is far beyond any guest and keeps every sum far from wrapping */
        if (m > (1ull << 48) || total + m > (1ull << 48))
            return vnuma_error(err, errlen, "vnode %u memory too large", i);
        total += m;
    }
    for (uint32_t c = 0; c < v->nr_vcpus; c++)
        if (v->vcpu_node[c] >= v->nr_nodes)
            return vnuma_error(err, errlen, "vcpu %u is on vnode %u, but there are %u vnodes", c,
                               v->vcpu_node[c], v->nr_nodes);
    for (uint32_t i = 0; i < v->nr_nodes; i++) {
        for (uint32_t j = 0; j < v->nr_nodes; j++) {
            uint8_t d = v->distance[i][j];
            if (i == j && d != MV_VNUMA_LOCAL_DISTANCE)
                return vnuma_error(err, errlen, "distance %u->%u is %u: must be %u", i, j, d,
                                   MV_VNUMA_LOCAL_DISTANCE);
            if (i != j && (d <= MV_VNUMA_LOCAL_DISTANCE || d > MV_VNUMA_MAX_DISTANCE))
                return vnuma_error(err, errlen, "distance %u->%u is %u: must be %u..%u", i, j, d,
                                   MV_VNUMA_LOCAL_DISTANCE + 1, MV_VNUMA_MAX_DISTANCE);
        }
        if (v->pnode[i] < MV_VNUMA_PNODE_ANY || v->pnode[i] > 1023)
            return vnuma_error(err, errlen, "vnode %u: host node %d out of range", i, v->pnode[i]);
    }
    return 0;
}

int mv_vnuma_default(struct mv_vnuma *v, uint64_t mem, uint32_t vcpus, uint32_t nodes,
                     const uint8_t *dist, uint32_t host_nodes, char *err, size_t errlen)
{
    if (nodes < 1 || nodes > MV_VNUMA_MAX_NODES)
        return vnuma_error(err, errlen, "%u vnodes: must be 1..%u", nodes, MV_VNUMA_MAX_NODES);
    if (vcpus < 1 || vcpus > MV_VNUMA_MAX_VCPUS)
        return vnuma_error(err, errlen, "%u vcpus: must be 1..%u", vcpus, MV_VNUMA_MAX_VCPUS);
    if (mem % MV_VNUMA_MEM_ALIGN)
        return vnuma_error(err, errlen, "memory size %llu is not a multiple of 2M",
                           (unsigned long long)mem);
    uint64_t granules = mem / MV_VNUMA_MEM_ALIGN;
    if (granules < nodes)
        return vnuma_error(err, errlen, "%llu bytes of memory cannot give %u vnodes 2M each",
                           (unsigned long long)mem, nodes);

    struct mv_vnuma t;
    memset(&t, 0, sizeof(t));
    t.nr_nodes = nodes;
    t.nr_vcpus = vcpus;
    uint64_t each = granules / nodes;
    for (uint32_t i = 0; i < nodes; i++)
        t.node_mem[i] = each * MV_VNUMA_MEM_ALIGN;
    t.node_mem[nodes - 1] += (granules - each * nodes) * MV_VNUMA_MEM_ALIGN;
    for (uint32_t c = 0; c < vcpus; c++)
        t.vcpu_node[c] = (uint8_t)((uint64_t)c * nodes / vcpus);
    for (uint32_t i = 0; i < nodes; i++) {
        for (uint32_t j = 0; j < nodes; j++) {
            if (dist)
                t.distance[i][j] = dist[i * nodes + j];
            else
                t.distance[i][j] = i == j ? MV_VNUMA_LOCAL_DISTANCE : MV_VNUMA_DEFAULT_REMOTE;
        }
        t.pnode[i] = host_nodes ? (int32_t)(i % host_nodes) : MV_VNUMA_PNODE_ANY;
    }
    int rc = mv_vnuma_validate(&t, err, errlen);
    if (rc)
        return rc;
    *v = t;
    return 0;
}

/* ---- parser ---- */

/* Strict decimal (mv_parse_u32 would read "010" as octal 8): digits only, no overflow. */
static int parse_dec_u32(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return -ERANGE;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Splits s at sep into at most max pieces (in place). Returns the count, or -1 if more. An empty
 * string gives one empty piece. */
static int split_fields(char *s, char sep, char **out, int max)
{
    int n = 0;
    for (;;) {
        if (n == max)
            return -1;
        out[n++] = s;
        char *p = strchr(s, sep);
        if (!p)
            return n;
        *p = '\0';
        s = p + 1;
    }
}

/* "3", "0-3", "0-1+4-5": marks vcpus of one vnode; nodes_of[c] keeps which vnode claimed c. */
static int parse_cpu_list(char *s, uint32_t node, int16_t *node_of, uint32_t *max_cpu, char *err,
                          size_t errlen)
{
    if (*s == '\0')
        return 0; /* a vnode without vCPUs (memory only) */
    char *parts[MV_VNUMA_MAX_VCPUS];
    int n = split_fields(s, '+', parts, MV_VNUMA_MAX_VCPUS);
    if (n < 0)
        return vnuma_error(err, errlen, "cpus of vnode %u: too many ranges", node);
    for (int k = 0; k < n; k++) {
        char *dash = strchr(parts[k], '-');
        uint32_t lo, hi;
        if (dash)
            *dash = '\0';
        if (parse_dec_u32(parts[k], &lo) || (dash && parse_dec_u32(dash + 1, &hi)))
            return vnuma_error(err, errlen, "cpus of vnode %u: '%s%s%s' is not a cpu or range",
                               node, parts[k], dash ? "-" : "", dash ? dash + 1 : "");
        if (!dash)
            hi = lo;
        if (lo > hi)
            return vnuma_error(err, errlen, "cpus of vnode %u: range %u-%u is backwards", node, lo,
                               hi);
        if (hi >= MV_VNUMA_MAX_VCPUS)
            return vnuma_error(err, errlen, "cpus of vnode %u: cpu %u beyond the maximum %u", node,
                               hi, MV_VNUMA_MAX_VCPUS - 1);
        for (uint32_t c = lo; c <= hi; c++) {
            if (node_of[c] >= 0)
                return vnuma_error(err, errlen, "cpu %u is in vnode %d and vnode %u", c, node_of[c],
                                   node);
            node_of[c] = (int16_t)node;
        }
        if (hi + 1 > *max_cpu)
            *max_cpu = hi + 1;
    }
    return 0;
}

static int parse_distance(const char *s, uint8_t *out)
{
    uint32_t d;
    if (parse_dec_u32(s, &d) || d > 255)
        return -EINVAL;
    *out = (uint8_t)d;
    return 0;
}

enum vnuma_key { KEY_NODES, KEY_MEM, KEY_CPUS, KEY_DIST, KEY_REMOTE, KEY_PNODES, KEY_COUNT };
static const char *const vnuma_key_names[KEY_COUNT] = {"nodes", "mem",    "cpus",
                                                       "dist",  "remote", "pnodes"};

/* Counts how many vnodes a colon list implies (before it is split). */
static uint32_t count_fields(const char *s, char sep)
{
    uint32_t n = 1;
    for (; *s; s++)
        n += *s == sep;
    return n;
}

int mv_vnuma_parse(const char *spec, uint64_t mem, uint32_t vcpus, struct mv_vnuma *v, char *err,
                   size_t errlen)
{
    if (!spec || !*spec)
        return vnuma_error(err, errlen, "empty specification");
    size_t len = strnlen(spec, MV_VNUMA_SPEC_MAX + 1);
    if (len > MV_VNUMA_SPEC_MAX)
        return vnuma_error(err, errlen, "specification longer than %d characters",
                           MV_VNUMA_SPEC_MAX);
    if (vcpus > MV_VNUMA_MAX_VCPUS)
        return vnuma_error(err, errlen, "%u vcpus: at most %u", vcpus, MV_VNUMA_MAX_VCPUS);
    char copy[MV_VNUMA_SPEC_MAX + 1];
    memcpy(copy, spec, len + 1);

    char *value[KEY_COUNT] = {0};
    char *items[KEY_COUNT * 2];
    int nitems = split_fields(copy, ',', items, (int)MV_ARRAY_SIZE(items));
    if (nitems < 0)
        return vnuma_error(err, errlen, "too many comma-separated items");
    for (int k = 0; k < nitems; k++) {
        char *eq = strchr(items[k], '=');
        if (!eq)
            return vnuma_error(err, errlen, "'%s' is not key=value", items[k]);
        *eq = '\0';
        int key = -1;
        for (int i = 0; i < KEY_COUNT; i++)
            if (strcmp(items[k], vnuma_key_names[i]) == 0)
                key = i;
        if (key < 0)
            return vnuma_error(
                err, errlen, "unknown key '%s' (nodes, mem, cpus, dist, remote, pnodes)", items[k]);
        if (value[key])
            return vnuma_error(err, errlen, "'%s' given twice", items[k]);
        value[key] = eq + 1;
    }
    if (value[KEY_DIST] && value[KEY_REMOTE])
        return vnuma_error(err, errlen, "give either dist= or remote=, not both");

    /* Number of vnodes: nodes= or implied by the per-vnode lists; all must agree. */
    uint32_t nodes = 0;
    if (value[KEY_NODES]) {
        if (parse_dec_u32(value[KEY_NODES], &nodes) || nodes < 1 || nodes > MV_VNUMA_MAX_NODES)
            return vnuma_error(err, errlen, "nodes='%s': must be 1..%u", value[KEY_NODES],
                               MV_VNUMA_MAX_NODES);
    }
    static const int per_node_keys[] = {KEY_MEM, KEY_CPUS, KEY_PNODES};
    for (size_t i = 0; i < MV_ARRAY_SIZE(per_node_keys); i++) {
        const char *s = value[per_node_keys[i]];
        if (!s)
            continue;
        uint32_t n = count_fields(s, ':');
        if (n > MV_VNUMA_MAX_NODES)
            return vnuma_error(err, errlen, "%s= lists %u vnodes, at most %u are supported",
                               vnuma_key_names[per_node_keys[i]], n, MV_VNUMA_MAX_NODES);
        if (nodes == 0)
            nodes = n;
        if (n != nodes)
            return vnuma_error(err, errlen, "%s= lists %u vnodes but there are %u",
                               vnuma_key_names[per_node_keys[i]], n, nodes);
    }
    if (nodes == 0)
        return vnuma_error(err, errlen, "say how many vnodes: nodes=N");

    struct mv_vnuma t;
    memset(&t, 0, sizeof(t));
    t.nr_nodes = nodes;

    /* mem= */
    if (value[KEY_MEM]) {
        char *f[MV_VNUMA_MAX_NODES];
        split_fields(value[KEY_MEM], ':', f, MV_VNUMA_MAX_NODES);
        uint64_t total = 0;
        for (uint32_t i = 0; i < nodes; i++) {
            if (mv_parse_size(f[i], &t.node_mem[i]))
                return vnuma_error(err, errlen, "mem of vnode %u: '%s' is not a size", i, f[i]);
            if (t.node_mem[i] == 0 || t.node_mem[i] % MV_VNUMA_MEM_ALIGN)
                return vnuma_error(err, errlen,
                                   "mem of vnode %u: '%s' must be a non-zero multiple of 2M", i,
                                   f[i]);
            if (t.node_mem[i] > (1ull << 48) || total + t.node_mem[i] > (1ull << 48))
                return vnuma_error(err, errlen, "mem of vnode %u: '%s' is too large", i, f[i]);
            total += t.node_mem[i];
        }
        if (mem && total != mem)
            return vnuma_error(err, errlen,
                               "mem= adds up to %lluM but the VM has %lluM (%llu bytes)",
                               (unsigned long long)(total >> 20), (unsigned long long)(mem >> 20),
                               (unsigned long long)mem);
    } else {
        if (mem == 0)
            return vnuma_error(err, errlen, "mem= is needed when the memory size is not given");
        if (mem % MV_VNUMA_MEM_ALIGN || mem / MV_VNUMA_MEM_ALIGN < nodes)
            return vnuma_error(err, errlen,
                               "memory size %llu cannot be split into %u vnodes of 2M multiples",
                               (unsigned long long)mem, nodes);
        uint64_t granules = mem / MV_VNUMA_MEM_ALIGN, each = granules / nodes;
        for (uint32_t i = 0; i < nodes; i++)
            t.node_mem[i] = each * MV_VNUMA_MEM_ALIGN;
        t.node_mem[nodes - 1] += (granules - each * nodes) * MV_VNUMA_MEM_ALIGN;
    }

    /* cpus= */
    if (value[KEY_CPUS]) {
        int16_t node_of[MV_VNUMA_MAX_VCPUS];
        for (size_t c = 0; c < MV_VNUMA_MAX_VCPUS; c++)
            node_of[c] = -1;
        char *f[MV_VNUMA_MAX_NODES];
        split_fields(value[KEY_CPUS], ':', f, MV_VNUMA_MAX_NODES);
        uint32_t ncpus = 0;
        for (uint32_t i = 0; i < nodes; i++) {
            int rc = parse_cpu_list(f[i], i, node_of, &ncpus, err, errlen);
            if (rc)
                return rc;
        }
        if (vcpus && ncpus > vcpus)
            return vnuma_error(err, errlen, "cpus= names cpu %u but the VM has %u vcpus", ncpus - 1,
                               vcpus);
        if (!vcpus)
            vcpus = ncpus;
        if (vcpus == 0)
            return vnuma_error(err, errlen, "cpus= places no vcpu");
        for (uint32_t c = 0; c < vcpus; c++) {
            if (node_of[c] < 0)
                return vnuma_error(err, errlen, "cpu %u is in no vnode", c);
            t.vcpu_node[c] = (uint8_t)node_of[c];
        }
    } else {
        if (vcpus == 0)
            return vnuma_error(err, errlen, "cpus= is needed when the vcpu count is not given");
        for (uint32_t c = 0; c < vcpus; c++)
            t.vcpu_node[c] = (uint8_t)((uint64_t)c * nodes / vcpus);
    }
    t.nr_vcpus = vcpus;

    /* dist= (nodes*nodes values, row-major) or remote= (one off-diagonal value) */
    uint8_t remote = MV_VNUMA_DEFAULT_REMOTE;
    if (value[KEY_REMOTE] && parse_distance(value[KEY_REMOTE], &remote))
        return vnuma_error(err, errlen, "remote='%s' is not a distance 0..255", value[KEY_REMOTE]);
    if (value[KEY_DIST]) {
        uint32_t n = count_fields(value[KEY_DIST], ':');
        if (n != nodes * nodes)
            return vnuma_error(err, errlen, "dist= has %u values, %u vnodes need %u (row by row)",
                               n, nodes, nodes * nodes);
        char *f[MV_VNUMA_MAX_NODES * MV_VNUMA_MAX_NODES];
        split_fields(value[KEY_DIST], ':', f, (int)MV_ARRAY_SIZE(f));
        for (uint32_t k = 0; k < n; k++)
            if (parse_distance(f[k], &t.distance[k / nodes][k % nodes]))
                return vnuma_error(err, errlen, "dist value %u '%s' is not a distance 0..255", k,
                                   f[k]);
    } else {
        for (uint32_t i = 0; i < nodes; i++)
            for (uint32_t j = 0; j < nodes; j++)
                t.distance[i][j] = i == j ? MV_VNUMA_LOCAL_DISTANCE : remote;
    }

    /* pnodes= */
    for (uint32_t i = 0; i < nodes; i++)
        t.pnode[i] = MV_VNUMA_PNODE_ANY;
    if (value[KEY_PNODES]) {
        char *f[MV_VNUMA_MAX_NODES];
        split_fields(value[KEY_PNODES], ':', f, MV_VNUMA_MAX_NODES);
        for (uint32_t i = 0; i < nodes; i++) {
            uint32_t p;
            if (strcmp(f[i], "any") == 0)
                continue;
            if (parse_dec_u32(f[i], &p) || p > 1023)
                return vnuma_error(err, errlen,
                                   "pnode of vnode %u: '%s' is not a host node (0..1023 or any)", i,
                                   f[i]);
            t.pnode[i] = (int32_t)p;
        }
    }

    int rc = mv_vnuma_validate(&t, err, errlen);
    if (rc)
        return rc;
    *v = t;
    return 0;
}

/* ---- layout ---- */

int mv_vnuma_layout(const struct mv_vnuma *v, uint64_t hole_start, uint64_t hole_end,
                    struct mv_vnuma_range *out, size_t max)
{
    if (hole_start > hole_end)
        return -EINVAL;
    size_t n = 0;
    uint64_t gpa = 0; /* next free guest-physical address */
    for (uint32_t i = 0; i < v->nr_nodes && i < MV_VNUMA_MAX_NODES; i++) {
        uint64_t left = v->node_mem[i];
        while (left) {
            if (gpa >= hole_start && gpa < hole_end)
                gpa = hole_end;
            uint64_t chunk = left;
            if (gpa < hole_start && chunk > hole_start - gpa)
                chunk = hole_start - gpa; /* stops at the hole; the rest goes above it */
            if (n == max)
                return -ENOSPC;
            out[n].gpa = gpa;
            out[n].size = chunk;
            out[n].node = i;
            n++;
            gpa += chunk;
            left -= chunk;
        }
    }
    return (int)n;
}

/* Appends "a-b" / "a" ranges of the vCPUs of one vnode. */
static int format_cpus(const struct mv_vnuma *v, uint32_t node, char *buf, size_t cap)
{
    int len = 0;
    bool first = true;
    for (uint32_t c = 0; c < v->nr_vcpus; c++) {
        if (v->vcpu_node[c] != node)
            continue;
        uint32_t e = c;
        while (e + 1 < v->nr_vcpus && v->vcpu_node[e + 1] == node)
            e++;
        size_t off = (size_t)len < cap ? (size_t)len : cap;
        if (e == c)
            len += snprintf(buf + off, cap - off, "%s%u", first ? "" : ",", c);
        else
            len += snprintf(buf + off, cap - off, "%s%u-%u", first ? "" : ",", c, e);
        first = false;
        c = e;
    }
    if (first) {
        size_t off = (size_t)len < cap ? (size_t)len : cap;
        len += snprintf(buf + off, cap - off, "none");
    }
    return len;
}

int mv_vnuma_format(const struct mv_vnuma *v, char *buf, size_t cap)
{
    int len = snprintf(buf, cap, "%u vnodes, %u vcpus:", v->nr_nodes, v->nr_vcpus);
    for (uint32_t i = 0; i < v->nr_nodes && i < MV_VNUMA_MAX_NODES; i++) {
        size_t off = (size_t)len < cap ? (size_t)len : cap;
        if (v->pnode[i] == MV_VNUMA_PNODE_ANY)
            len += snprintf(buf + off, cap - off, " %u: pnode any, vcpus ", i);
        else
            len += snprintf(buf + off, cap - off, " %u: pnode %d, vcpus ", i, v->pnode[i]);
        off = (size_t)len < cap ? (size_t)len : cap;
        len += format_cpus(v, i, buf + off, cap - off);
        off = (size_t)len < cap ? (size_t)len : cap;
        len += snprintf(buf + off, cap - off, ", %lluM, dist",
                        (unsigned long long)(v->node_mem[i] >> 20));
        for (uint32_t j = 0; j < v->nr_nodes; j++) {
            off = (size_t)len < cap ? (size_t)len : cap;
            len += snprintf(buf + off, cap - off, " %u", v->distance[i][j]);
        }
        off = (size_t)len < cap ? (size_t)len : cap;
        len += snprintf(buf + off, cap - off, "%s", i + 1 < v->nr_nodes ? ";" : "");
    }
    return len;
}
