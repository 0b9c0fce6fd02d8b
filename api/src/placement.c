/* Placement of an instance on a host of its resource group (mvctld/instances.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mvctld/instances.h"
#include "sql.h"

#define MAX_CPUS  1024
#define MAX_NUMA  64
#define MAX_HOSTS 1024

int mvctld_cpulist_parse(const char *s, int *cpus, int max)
{
    int n = 0;
    const char *p = s;
    while (p && *p) {
        char *end;
        long a = strtol(p, &end, 10);
        if (end == p || a < 0 || a >= MAX_CPUS)
            return -1;
        long b = a;
        if (*end == '-') {
            p = end + 1;
            b = strtol(p, &end, 10);
            if (end == p || b < a || b >= MAX_CPUS)
                return -1;
        }
        for (long v = a; v <= b; v++) {
            if (n == max)
                return -1;
            cpus[n++] = (int)v;
        }
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return n;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

void mvctld_cpulist_format(const int *cpus, int n, char *out, size_t len)
{
    int *s = malloc(sizeof *s * (size_t)(n ? n : 1));
    size_t used = 0;
    out[0] = 0;
    if (!s)
        return;
    memcpy(s, cpus, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_int);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && s[j + 1] <= s[j] + 1)
            j++;
        int w = s[i] == s[j]
                    ? snprintf(out + used, len - used, "%s%d", used ? "," : "", s[i])
                    : snprintf(out + used, len - used, "%s%d-%d", used ? "," : "", s[i], s[j]);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
        i = j + 1;
    }
    free(s);
}

/* What one host offers the group, after the other instances' allocations. */
struct host_view {
    char id[65];
    int ncpus;
    int cpu[MAX_CPUS], cpu_numa[MAX_CPUS];
    bool cpu_pinned[MAX_CPUS]; /* dedicated to another instance */
    int nnuma;
    int numa_id[MAX_NUMA];
    long long numa_free_mb[MAX_NUMA]; /* free memory, minus allocations */
    int numa_vcpus[MAX_NUMA];         /* vCPUs of the group's instances on that node */
    int used_vcpus;
    bool has_replica;
};

static int numa_index(const struct host_view *h, int numa_id)
{
    for (int i = 0; i < h->nnuma; i++)
        if (h->numa_id[i] == numa_id)
            return i;
    return -1;
}

static int cores_on(const struct host_view *h, int ni)
{
    int n = 0;
    for (int i = 0; i < h->ncpus; i++)
        n += h->cpu_numa[i] == h->numa_id[ni];
    return n;
}

static int free_cores_on(const struct host_view *h, int ni)
{
    int n = 0;
    for (int i = 0; i < h->ncpus; i++)
        n += h->cpu_numa[i] == h->numa_id[ni] && !h->cpu_pinned[i];
    return n;
}

static void load_host(struct mvctld_db *db, long long rg, const char *node,
                      const json_t *volume_ids, long long exclude, struct host_view *h)
{
    memset(h, 0, sizeof *h);
    snprintf(h->id, sizeof h->id, "%s", node);
    sqlite3_stmt *st = mvctld_sql_query(db,
                                        "SELECT c.cpu, c.numa_node FROM cores c JOIN rg_cores r "
                                        "ON r.core_id = c.id WHERE r.rg_id = ? AND c.node_id = ? "
                                        "AND c.present = 1 AND c.online = 1 ORDER BY c.cpu",
                                        "Is", rg, node);
    while (st && sqlite3_step(st) == SQLITE_ROW && h->ncpus < MAX_CPUS) {
        h->cpu[h->ncpus] = sqlite3_column_int(st, 0);
        h->cpu_numa[h->ncpus++] = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    st = mvctld_sql_query(db,
                          "SELECT numa_id, mem_total_kb, mem_free_kb FROM numa_nodes WHERE "
                          "node_id = ? ORDER BY numa_id",
                          "s", node);
    while (st && sqlite3_step(st) == SQLITE_ROW && h->nnuma < MAX_NUMA) {
        h->numa_id[h->nnuma] = sqlite3_column_int(st, 0);
        h->numa_free_mb[h->nnuma++] = sqlite3_column_int64(st, 2) / 1024;
    }
    sqlite3_finalize(st);
    /* Cores whose NUMA node the inventory did not list still count (as their own node). */
    for (int i = 0; i < h->ncpus; i++)
        if (numa_index(h, h->cpu_numa[i]) < 0 && h->nnuma < MAX_NUMA) {
            h->numa_id[h->nnuma] = h->cpu_numa[i];
            h->numa_free_mb[h->nnuma++] = 0;
        }
    /* Allocations of the instances placed here (or moving here; also those being deleted, until
     * their host confirmed: they may still run). Memory counts for every
     * group (the host's memory is shared); vCPUs and dedicated cores only within the group. */
    st = mvctld_sql_query(db,
                          "SELECT resource_group_id, vcpus, ram, coalesce(numa_node, -1), pin "
                          "FROM instances WHERE coalesce(migrate_to, node_id) = ? AND id != ?",
                          "sI", node, exclude);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        bool same = sqlite3_column_int64(st, 0) == rg;
        int vcpus = sqlite3_column_int(st, 1);
        long long ram = sqlite3_column_int64(st, 2);
        int ni = numa_index(h, sqlite3_column_int(st, 3));
        if (ni >= 0) {
            h->numa_free_mb[ni] -= ram;
            if (same)
                h->numa_vcpus[ni] += vcpus;
        } else if (h->nnuma > 0) {
            for (int i = 0; i < h->nnuma; i++) {
                h->numa_free_mb[i] -= ram / h->nnuma;
                if (same)
                    h->numa_vcpus[i] += vcpus / h->nnuma;
            }
        }
        if (same)
            h->used_vcpus += vcpus;
        int pinned[MAX_CPUS];
        int np = same ? mvctld_cpulist_parse(mvctld_sql_col_text(st, 4), pinned, MAX_CPUS) : 0;
        for (int k = 0; k < np; k++)
            for (int i = 0; i < h->ncpus; i++)
                if (h->cpu[i] == pinned[k])
                    h->cpu_pinned[i] = true;
    }
    sqlite3_finalize(st);
    size_t i;
    json_t *v;
    json_array_foreach(volume_ids, i, v)
    {
        if (mvctld_sql_int(db, 0,
                           "SELECT count(*) FROM volume_replicas WHERE volume_id = ? AND "
                           "node_id = ? AND op != 'delete'",
                           "Is", (long long)json_integer_value(v), node) > 0)
            h->has_replica = true;
    }
}

/* Can host h take the VM? Fills p and returns 0, or the error code of the missing resource. */
static int fit_host(const struct host_view *h, int vcpus, long long ram, int overcommit, bool pin,
                    struct mvctld_placement *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->node_id, sizeof p->node_id, "%s", h->id);
    p->numa_node = -1;
    p->storage_local = h->has_replica;
    long long mem_total = 0;
    int free_cores = 0;
    for (int ni = 0; ni < h->nnuma; ni++) {
        if (h->numa_free_mb[ni] > 0)
            mem_total += h->numa_free_mb[ni];
        free_cores += free_cores_on(h, ni);
    }
    if (pin ? free_cores < vcpus : h->ncpus * overcommit - h->used_vcpus < vcpus)
        return pin ? MVE_INST_NO_PIN : MVE_INST_NO_CORES;
    if (mem_total < ram)
        return MVE_INST_NO_MEMORY;
    /* One NUMA node if it fits (the one with most free memory), else spread. */
    int best = -1;
    for (int ni = 0; ni < h->nnuma; ni++) {
        int room = pin ? free_cores_on(h, ni) : cores_on(h, ni) * overcommit - h->numa_vcpus[ni];
        if (cores_on(h, ni) == 0 || room < vcpus || h->numa_free_mb[ni] < ram)
            continue;
        if (best < 0 || h->numa_free_mb[ni] > h->numa_free_mb[best])
            best = ni;
    }
    int set[MAX_CPUS], nset = 0, pins[MAX_CPUS], npins = 0;
    if (best >= 0) {
        p->numa_node = h->numa_id[best];
        for (int i = 0; i < h->ncpus; i++) {
            if (h->cpu_numa[i] != h->numa_id[best])
                continue;
            if (!pin)
                set[nset++] = h->cpu[i];
            else if (!h->cpu_pinned[i] && npins < vcpus)
                set[nset++] = pins[npins++] = h->cpu[i];
        }
    } else {
        /* vNUMA: the vCPUs (and memory, split evenly by mvvmm) over the host nodes, in core
         * order, so each virtual node maps to one host node. */
        int vnode_of_numa[MAX_NUMA], nvnodes = 0, vcpu_node[MAX_CPUS];
        for (int ni = 0; ni < MAX_NUMA; ni++)
            vnode_of_numa[ni] = -1;
        if (pin) {
            for (int i = 0; i < h->ncpus && npins < vcpus; i++) {
                if (h->cpu_pinned[i])
                    continue;
                int ni = numa_index(h, h->cpu_numa[i]);
                if (vnode_of_numa[ni] < 0)
                    vnode_of_numa[ni] = nvnodes++;
                vcpu_node[npins] = ni;
                set[nset++] = pins[npins++] = h->cpu[i];
            }
        } else {
            int given = 0;
            for (int ni = 0; ni < h->nnuma && given < vcpus; ni++) {
                int room = cores_on(h, ni) * overcommit - h->numa_vcpus[ni];
                if (cores_on(h, ni) == 0 || room <= 0)
                    continue;
                vnode_of_numa[ni] = nvnodes++;
                for (int k = 0; k < room && given < vcpus; k++)
                    vcpu_node[given++] = ni;
                for (int i = 0; i < h->ncpus; i++)
                    if (h->cpu_numa[i] == h->numa_id[ni])
                        set[nset++] = h->cpu[i];
            }
            /* Overcommit counted per node may leave vCPUs over: the last node takes them. */
            for (; given < vcpus; given++)
                vcpu_node[given] = given ? vcpu_node[given - 1] : 0;
        }
        if (nvnodes > 1) {
            char cpus[200] = "", pnodes[100] = "";
            size_t cu = 0, pu = 0;
            for (int vn = 0; vn < nvnodes; vn++) {
                int ni = 0;
                while (vnode_of_numa[ni] != vn)
                    ni++;
                int first = -1, last = -1;
                for (int k = 0; k < vcpus; k++)
                    if (vcpu_node[k] == ni) {
                        if (first < 0)
                            first = k;
                        last = k;
                    }
                cu += (size_t)snprintf(cpus + cu, sizeof cpus - cu, "%s%d-%d", vn ? ":" : "", first,
                                       last);
                pu += (size_t)snprintf(pnodes + pu, sizeof pnodes - pu, "%s%d", vn ? ":" : "",
                                       h->numa_id[ni]);
                if (cu >= sizeof cpus || pu >= sizeof pnodes)
                    break;
            }
            int n = snprintf(p->vnuma, sizeof p->vnuma, "nodes=%d,cpus=%s,pnodes=%s", nvnodes, cpus,
                             pnodes);
            /* A spread the spec cannot express (hundreds of nodes) is a host that does not fit,
             * never a truncated topology handed to the VMM. */
            if (n < 0 || (size_t)n >= sizeof p->vnuma || cu >= sizeof cpus || pu >= sizeof pnodes)
                return MVE_INST_NO_CORES;
        }
    }
    mvctld_cpulist_format(set, nset, p->cpuset, sizeof p->cpuset);
    if (pin) {
        /* One core per vCPU, in vCPU order (not sorted): mvvmm pins vCPU i to LIST[i]. */
        size_t u = 0;
        for (int i = 0; i < npins && u < sizeof p->pin; i++)
            u += (size_t)snprintf(p->pin + u, sizeof p->pin - u, "%s%d", i ? "," : "", pins[i]);
    }
    return 0;
}

/* Better candidate: a replica of the instance's volumes here (storage-latency optimised
 * groups), then one NUMA node, then the most free vCPU room. */
static bool better(const struct mvctld_placement *a, int room_a, const struct mvctld_placement *b,
                   int room_b, bool prefer_local)
{
    if (prefer_local && a->storage_local != b->storage_local)
        return a->storage_local;
    if ((a->numa_node >= 0) != (b->numa_node >= 0))
        return a->numa_node >= 0;
    return room_a > room_b;
}

int mvctld_place_instance(struct mvctld_db *db, long long rg, int vcpus, long long ram_mb,
                          const char *node_id, const json_t *volume_ids, long long exclude_instance,
                          struct mvctld_placement *out, struct mvctld_errors *e)
{
    sqlite3_stmt *st = mvctld_sql_query(
        db,
        "SELECT cpu_overcommit, is_cpu_pinning_enabled, is_storage_latency_optimized FROM "
        "resource_groups WHERE id = ?",
        "I", rg);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        mvctld_errors_add(e, MVE_INST_GROUP, "resource_group_id",
                          "The resource group does not exist.", NULL);
        return -1;
    }
    int overcommit = sqlite3_column_int(st, 0);
    bool pin = sqlite3_column_int(st, 1);
    bool prefer_local = sqlite3_column_int(st, 2);
    sqlite3_finalize(st);
    if (overcommit < 1)
        overcommit = 1;

    st = mvctld_sql_query(db,
                          "SELECT DISTINCT c.node_id FROM cores c JOIN rg_cores r ON r.core_id = "
                          "c.id JOIN nodes n ON n.id = c.node_id WHERE r.rg_id = ? AND "
                          "n.state = 'online' AND c.present = 1 AND c.online = 1 AND "
                          "(?2 IS NULL OR c.node_id = ?2) ORDER BY c.node_id",
                          "Is", rg, node_id);
    struct host_view *h = malloc(sizeof *h);
    int found = 0, best_room = 0, hosts = 0;
    int worst = 0; /* the missing resource, most informative first: memory over cores */
    int max_room = 0;
    long long max_mem = 0;
    while (h && st && sqlite3_step(st) == SQLITE_ROW && hosts < MAX_HOSTS) {
        hosts++;
        load_host(db, rg, mvctld_sql_col_text(st, 0), volume_ids, exclude_instance, h);
        struct mvctld_placement p;
        int room = pin ? 0 : h->ncpus * overcommit - h->used_vcpus;
        if (pin)
            for (int i = 0; i < h->ncpus; i++)
                room += !h->cpu_pinned[i];
        long long mem = 0;
        for (int ni = 0; ni < h->nnuma; ni++)
            mem += h->numa_free_mb[ni] > 0 ? h->numa_free_mb[ni] : 0;
        if (room > max_room)
            max_room = room;
        if (mem > max_mem)
            max_mem = mem;
        int rc = fit_host(h, vcpus, ram_mb, overcommit, pin, &p);
        if (rc != 0) {
            if (rc == MVE_INST_NO_MEMORY || worst == 0)
                worst = rc;
            continue;
        }
        if (!found || better(&p, room, out, best_room, prefer_local)) {
            *out = p;
            best_room = room;
        }
        found = 1;
    }
    sqlite3_finalize(st);
    free(h);
    if (found)
        return 0;
    char msg[256];
    if (hosts == 0) {
        if (node_id)
            snprintf(msg, sizeof msg,
                     "Node %.64s is not online or has no cores of resource group %lld.", node_id,
                     rg);
        else
            snprintf(msg, sizeof msg, "Resource group %lld has no online cores.", rg);
        mvctld_errors_add(e, node_id ? MVE_INST_NODE : MVE_INST_NO_CORES,
                          node_id ? "node_id" : "vcpus", msg, NULL);
    } else if (worst == MVE_INST_NO_MEMORY) {
        snprintf(msg, sizeof msg,
                 "Not enough memory: %lld MB asked, at most %lld MB free on a host of resource "
                 "group %lld.",
                 ram_mb, max_mem, rg);
        mvctld_errors_add(e, worst, "ram", msg, NULL);
    } else {
        if (pin)
            snprintf(msg, sizeof msg,
                     "Not enough cores: CPU pinning needs %d free dedicated cores, at most %d on "
                     "a host of resource group %lld.",
                     vcpus, max_room, rg);
        else
            snprintf(msg, sizeof msg,
                     "Not enough cores: %d vCPUs asked, at most %d free on a host of resource "
                     "group %lld (cpu_overcommit %d).",
                     vcpus, max_room, rg, overcommit);
        mvctld_errors_add(e, worst, "vcpus", msg, NULL);
    }
    return -1;
}
