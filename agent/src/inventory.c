#include "mv/inventory.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mv/util.h"

void mv_inventory_node_id(const uint8_t mac[6], char out[MV_NODE_ID_LEN])
{
    snprintf(out, MV_NODE_ID_LEN, "%02x%02x%02x%02x", mac[2], mac[3], mac[4], mac[5]);
}

void mv_inventory_core_id(const char *node_id, int cpu, char *out, size_t len)
{
    snprintf(out, len, "%s_%d", node_id, cpu);
}

/* Reads an integer from root/path; def when absent (older kernels, offline CPUs). */
static long read_long(const char *root, const char *path, long def)
{
    char full[512], buf[64];
    snprintf(full, sizeof full, "%s/%s", root, path);
    if (mv_read_file(full, buf, sizeof buf) <= 0)
        return def;
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 0);
    if (errno || end == buf)
        return def;
    return v;
}

static int cmp_cpu(const void *a, const void *b)
{
    return ((const struct mv_inv_cpu *)a)->cpu - ((const struct mv_inv_cpu *)b)->cpu;
}

static int numeric_suffix(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] == '\0')
        return -1;
    int v;
    return mv_parse_int(name + n, &v) == 0 && v >= 0 ? v : -1;
}

static void collect_cpus(struct mv_inventory *inv, const char *sysfs)
{
    char path[512];
    snprintf(path, sizeof path, "%s/devices/system/cpu", sysfs);
    DIR *d = opendir(path);
    struct dirent *e;
    inv->ncpus = 0;
    while (d && (e = readdir(d)) && inv->ncpus < MV_INV_MAX_CPUS) {
        int cpu = numeric_suffix(e->d_name, "cpu");
        if (cpu < 0)
            continue;
        struct mv_inv_cpu *c = &inv->cpus[inv->ncpus++];
        char rel[128];
        c->cpu = cpu;
        snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/topology/core_id", cpu);
        c->core_id = (int)read_long(sysfs, rel, cpu);
        snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        c->socket_id = (int)read_long(sysfs, rel, 0);
        snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/online", cpu);
        c->online = (int)read_long(sysfs, rel, 1); /* cpu0 often has no online file */
        c->numa_node = -1;
    }
    if (d)
        closedir(d);
    qsort(inv->cpus, (size_t)inv->ncpus, sizeof inv->cpus[0], cmp_cpu);
}

/* Per-node meminfo lines look like "Node 0 MemTotal:  5204180 kB". */
static void read_node_meminfo(const char *sysfs, struct mv_inv_numa_node *n)
{
    char path[512], buf[4096];
    snprintf(path, sizeof path, "%s/devices/system/node/node%d/meminfo", sysfs, n->id);
    if (mv_read_file(path, buf, sizeof buf) <= 0)
        return;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        int id;
        char key[64];
        unsigned long long kb;
        if (sscanf(line, "Node %d %63[^:]: %llu kB", &id, key, &kb) != 3)
            continue;
        if (strcmp(key, "MemTotal") == 0)
            n->mem_total_kb = kb;
        else if (strcmp(key, "MemFree") == 0)
            n->mem_free_kb = kb;
    }
}

static void collect_numa(struct mv_inventory *inv, const char *sysfs)
{
    char path[512];
    snprintf(path, sizeof path, "%s/devices/system/node", sysfs);
    DIR *d = opendir(path);
    struct dirent *e;
    inv->nnodes = 0;
    while (d && (e = readdir(d)) && inv->nnodes < MV_INV_MAX_NODES) {
        int id = numeric_suffix(e->d_name, "node");
        if (id < 0)
            continue;
        struct mv_inv_numa_node *n = &inv->nodes[inv->nnodes++];
        memset(n, 0, sizeof *n);
        n->id = id;
        read_node_meminfo(sysfs, n);
        /* A CPU belongs to node N when devices/system/node/nodeN/cpuM exists. */
        for (int i = 0; i < inv->ncpus; i++) {
            char p[512];
            snprintf(p, sizeof p, "%s/devices/system/node/node%d/cpu%d", sysfs, id,
                     inv->cpus[i].cpu);
            if (access(p, F_OK) == 0) {
                inv->cpus[i].numa_node = id;
                n->ncpus++;
            }
        }
    }
    if (d)
        closedir(d);
    if (inv->nnodes == 0) {
        /* Kernels without NUMA support: one node holding everything. */
        inv->nnodes = 1;
        inv->nodes[0] = (struct mv_inv_numa_node){.id = 0, .ncpus = inv->ncpus};
        for (int i = 0; i < inv->ncpus; i++)
            inv->cpus[i].numa_node = 0;
    }
}

static int read_meminfo(struct mv_inventory *inv, const char *procfs)
{
    char path[512], buf[8192];
    snprintf(path, sizeof path, "%s/meminfo", procfs);
    long n = mv_read_file(path, buf, sizeof buf);
    if (n <= 0)
        return n < 0 ? (int)n : -EINVAL;
    unsigned long long total = 0, avail = 0, free_kb = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        sscanf(line, "MemTotal: %llu kB", &total);
        sscanf(line, "MemFree: %llu kB", &free_kb);
        sscanf(line, "MemAvailable: %llu kB", &avail);
    }
    if (total == 0)
        return -EINVAL;
    inv->mem_total_kb = total;
    inv->mem_free_kb = avail ? avail : free_kb; /* what a new VM can actually get */
    /* Single-node fallback and nodes whose meminfo is missing inherit the host totals. */
    if (inv->nnodes == 1 && inv->nodes[0].mem_total_kb == 0) {
        inv->nodes[0].mem_total_kb = inv->mem_total_kb;
        inv->nodes[0].mem_free_kb = inv->mem_free_kb;
    }
    return 0;
}

static void read_loadavg(struct mv_inventory *inv, const char *procfs)
{
    char path[512], buf[128];
    snprintf(path, sizeof path, "%s/loadavg", procfs);
    if (mv_read_file(path, buf, sizeof buf) > 0)
        sscanf(buf, "%lf %lf %lf", &inv->loadavg[0], &inv->loadavg[1], &inv->loadavg[2]);
}

static int read_mac(const char *sysfs, const char *ifname, uint8_t mac[6])
{
    char path[512], buf[64];
    snprintf(path, sizeof path, "%s/class/net/%s/address", sysfs, ifname);
    if (mv_read_file(path, buf, sizeof buf) <= 0)
        return -ENOENT;
    buf[strcspn(buf, "\n")] = '\0';
    return mv_mac_parse(buf, mac);
}

static void collect_nics(struct mv_inventory *inv, const char *sysfs)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/class/net", sysfs);
    DIR *d = opendir(path);
    struct dirent *e;
    inv->nnics = 0;
    while (d && (e = readdir(d)) && inv->nnics < MV_INV_MAX_NICS) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "lo") == 0 ||
            strlen(e->d_name) >= sizeof inv->nics[0].name)
            continue;
        struct mv_inv_nic *n = &inv->nics[inv->nnics];
        memset(n, 0, sizeof *n);
        if (read_mac(sysfs, e->d_name, n->mac) != 0)
            continue;
        memcpy(n->name, e->d_name, strlen(e->d_name) + 1); /* length checked above */
        char rel[320], buf[32];
        snprintf(rel, sizeof rel, "class/net/%s/mtu", e->d_name);
        n->mtu = (unsigned)read_long(sysfs, rel, 1500);
        snprintf(rel, sizeof rel, "class/net/%s/speed", e->d_name);
        long speed = read_long(sysfs, rel, 0);
        n->speed_mbps = speed > 0 ? (uint64_t)speed : 0;
        snprintf(path, sizeof path, "%s/class/net/%s/operstate", sysfs, e->d_name);
        n->up = mv_read_file(path, buf, sizeof buf) > 0 && strncmp(buf, "up", 2) == 0;
        inv->nnics++;
    }
    if (d)
        closedir(d);
}

int mv_inventory_refresh(struct mv_inventory *inv, const char *sysfs_root, const char *procfs_root)
{
    for (int i = 0; i < inv->nnodes; i++)
        read_node_meminfo(sysfs_root, &inv->nodes[i]);
    read_loadavg(inv, procfs_root);
    return read_meminfo(inv, procfs_root);
}

int mv_inventory_collect(struct mv_inventory *inv, const char *sysfs_root, const char *procfs_root,
                         const char *ctrl_ifname, char *err, size_t errlen)
{
    struct mv_inv_labels labels = inv->labels; /* set from config before collecting */
    memset(inv, 0, sizeof *inv);
    inv->labels = labels;
    if (strlen(ctrl_ifname) >= sizeof inv->ctrl_ifname) {
        snprintf(err, errlen, "interface name too long: %s", ctrl_ifname);
        return -EINVAL;
    }
    snprintf(inv->ctrl_ifname, sizeof inv->ctrl_ifname, "%s", ctrl_ifname);
    if (read_mac(sysfs_root, ctrl_ifname, inv->mac) != 0) {
        snprintf(err, errlen, "control interface %s: no MAC address in %s/class/net", ctrl_ifname,
                 sysfs_root);
        return -ENODEV;
    }
    mv_inventory_node_id(inv->mac, inv->node_id);
    if (gethostname(inv->hostname, sizeof inv->hostname - 1) != 0)
        snprintf(inv->hostname, sizeof inv->hostname, "%s", inv->node_id);
    collect_cpus(inv, sysfs_root);
    if (inv->ncpus == 0) {
        snprintf(err, errlen, "no CPUs found under %s/devices/system/cpu", sysfs_root);
        return -ENOENT;
    }
    collect_numa(inv, sysfs_root);
    collect_nics(inv, sysfs_root);
    int rc = mv_inventory_refresh(inv, sysfs_root, procfs_root);
    if (rc != 0) {
        snprintf(err, errlen, "cannot read %s/meminfo", procfs_root);
        return rc;
    }
    return 0;
}

json_t *mv_inventory_to_json(const struct mv_inventory *inv)
{
    char mac[MV_MAC_STR_LEN];
    mv_mac_format(inv->mac, mac);
    json_t *cpus = json_array();
    for (int i = 0; i < inv->ncpus; i++) {
        const struct mv_inv_cpu *c = &inv->cpus[i];
        char id[MV_NODE_ID_LEN + 16];
        mv_inventory_core_id(inv->node_id, c->cpu, id, sizeof id);
        json_array_append_new(cpus,
                              json_pack("{s:s, s:i, s:i, s:i, s:i, s:b}", "id", id, "cpu", c->cpu,
                                        "core_id", c->core_id, "socket_id", c->socket_id,
                                        "numa_node", c->numa_node, "online", c->online));
    }
    json_t *nodes = json_array();
    for (int i = 0; i < inv->nnodes; i++) {
        const struct mv_inv_numa_node *n = &inv->nodes[i];
        json_array_append_new(nodes, json_pack("{s:i, s:I, s:I, s:i}", "id", n->id, "mem_total_kb",
                                               (json_int_t)n->mem_total_kb, "mem_free_kb",
                                               (json_int_t)n->mem_free_kb, "cpus", n->ncpus));
    }
    json_t *nics = json_array();
    for (int i = 0; i < inv->nnics; i++) {
        const struct mv_inv_nic *n = &inv->nics[i];
        char nmac[MV_MAC_STR_LEN];
        mv_mac_format(n->mac, nmac);
        json_array_append_new(nics, json_pack("{s:s, s:s, s:i, s:b, s:I}", "name", n->name, "mac",
                                              nmac, "mtu", (int)n->mtu, "up", n->up, "speed_mbps",
                                              (json_int_t)n->speed_mbps));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:[f,f,f], s:o, s:{s:s, s:s, s:s}}",
                     "node_id", inv->node_id, "hostname", inv->hostname, "mac", mac, "ctrl_ifname",
                     inv->ctrl_ifname, "cpus", cpus, "numa_nodes", nodes, "mem_total_kb",
                     (json_int_t)inv->mem_total_kb, "mem_free_kb", (json_int_t)inv->mem_free_kb,
                     "loadavg", inv->loadavg[0], inv->loadavg[1], inv->loadavg[2], "nics", nics,
                     "labels", "blade", inv->labels.blade, "chassis", inv->labels.chassis, "rack",
                     inv->labels.rack);
}
