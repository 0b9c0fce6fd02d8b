/* Host inventory as the controller models it (D2.3 §3): a stable node id, CPUs with their core,
 * socket and NUMA node, memory per NUMA node, NICs, and fault-domain labels. Read from sysfs and
 * procfs under configurable roots, so a recorded tree of another machine can be read too. */
#ifndef MV_INVENTORY_H
#define MV_INVENTORY_H

#include <jansson.h>
#include <stdint.h>

#define MV_INV_MAX_CPUS  1024
#define MV_INV_MAX_NODES 64
#define MV_INV_MAX_NICS  64
#define MV_NODE_ID_LEN   9 /* 8 hex digits + NUL, e.g. "54424488" */

struct mv_inv_cpu {
    int cpu;       /* logical CPU number */
    int core_id;   /* physical core within its package */
    int socket_id; /* physical package */
    int numa_node; /* -1 when the kernel reports none */
    int online;
};

struct mv_inv_numa_node {
    int id;
    uint64_t mem_total_kb, mem_free_kb;
    int ncpus;
};

struct mv_inv_nic {
    char name[32];
    uint8_t mac[6];
    unsigned mtu;
    int up;
    uint64_t speed_mbps; /* 0 when unknown (virtual links) */
};

struct mv_inv_labels {
    char blade[64], chassis[64], rack[64];
};

struct mv_inventory {
    char node_id[MV_NODE_ID_LEN];
    char hostname[256];
    uint8_t mac[6]; /* of the control interface */
    char ctrl_ifname[32];
    int ncpus;
    struct mv_inv_cpu cpus[MV_INV_MAX_CPUS];
    int nnodes;
    struct mv_inv_numa_node nodes[MV_INV_MAX_NODES];
    uint64_t mem_total_kb, mem_free_kb;
    double loadavg[3];
    int nnics;
    struct mv_inv_nic nics[MV_INV_MAX_NICS];
    struct mv_inv_labels labels;
};

/* The node id: the last four bytes of the control interface's MAC as 8 hex digits. Stable across
 * reboots and reinstalls of the host, unique on one Ethernet segment. */
void mv_inventory_node_id(const uint8_t mac[6], char out[MV_NODE_ID_LEN]);

/* Core ids as D2.3 writes them: "<node id>_<logical cpu>", e.g. "54424488_4". */
void mv_inventory_core_id(const char *node_id, int cpu, char *out, size_t len);

/* Collects the inventory. sysfs_root/procfs_root are normally "/sys" and "/proc". ctrl_ifname is
 * the interface whose MAC names the node. Returns 0 or -errno with a reason in err. */
int mv_inventory_collect(struct mv_inventory *inv, const char *sysfs_root, const char *procfs_root,
                         const char *ctrl_ifname, char *err, size_t errlen);

/* Refreshes only what changes at run time: free memory (host and per node), load average. */
int mv_inventory_refresh(struct mv_inventory *inv, const char *sysfs_root, const char *procfs_root);

/* The inventory as the JSON document the agent sends to the controller (docs/agent.md). */
json_t *mv_inventory_to_json(const struct mv_inventory *inv);

#endif
