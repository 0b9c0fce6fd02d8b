/* Virtual NUMA topology of one VM (D2.3 §2.7.1): number of vnodes, distance table, vnode memory
 * sizes, vCPU -> vnode map and vnode -> host node (pnode) map; the default layout; the parser of
 * mvvmm's `--vnuma` option; and the guest-physical placement of each vnode's memory around the
 * 32-bit MMIO hole. Pure functions: no KVM, no libnuma. See docs/acpi.md for the syntax. */
#ifndef MV_VNUMA_H
#define MV_VNUMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MV_VNUMA_MAX_NODES 32
#define MV_VNUMA_MAX_VCPUS 256
/* Every vnode size is a multiple of this (huge-page friendly for mbind and THP). */
#define MV_VNUMA_MEM_ALIGN (2ull << 20)
#define MV_VNUMA_PNODE_ANY (-1) /* no host-node binding for this vnode */
/* SLIT rules (what Linux's slit_valid() also checks): 10 on the diagonal, 11..254 elsewhere. */
#define MV_VNUMA_LOCAL_DISTANCE 10
#define MV_VNUMA_DEFAULT_REMOTE 20
#define MV_VNUMA_MAX_DISTANCE   254
#define MV_VNUMA_SPEC_MAX       4096 /* longest --vnuma string accepted */

struct mv_vnuma {
    uint32_t nr_nodes;                     /* 1..MV_VNUMA_MAX_NODES */
    uint32_t nr_vcpus;                     /* 1..MV_VNUMA_MAX_VCPUS */
    uint64_t node_mem[MV_VNUMA_MAX_NODES]; /* bytes per vnode, > 0, MV_VNUMA_MEM_ALIGN multiple */
    uint8_t vcpu_node[MV_VNUMA_MAX_VCPUS]; /* vnode of each vCPU */
    uint8_t distance[MV_VNUMA_MAX_NODES][MV_VNUMA_MAX_NODES]; /* [from][to] */
    int32_t pnode[MV_VNUMA_MAX_NODES]; /* host NUMA node or MV_VNUMA_PNODE_ANY */
};

/* One guest-physical range of a vnode. */
struct mv_vnuma_range {
    uint64_t gpa;
    uint64_t size;
    uint32_t node;
};

/* Default layout: memory split evenly (2 MiB granules, the remainder to the last vnode), vCPUs in
 * contiguous blocks (vnode i gets vcpus [i*v/n, (i+1)*v/n)), distances from dist (nodes*nodes
 * row-major, may be NULL for 10 local / 20 remote), pnode i = host_nodes > 0 ? i % host_nodes
 * : ANY — i.e. with nodes == number of host nodes the memory is split across all of them, as
 * MicroVisor does by default. 0 or -EINVAL with a message in err. */
int mv_vnuma_default(struct mv_vnuma *v, uint64_t mem, uint32_t vcpus, uint32_t nodes,
                     const uint8_t *dist, uint32_t host_nodes, char *err, size_t errlen);

/* Parses `nodes=N,mem=S:S..,cpus=L:L..,dist=D:D..,remote=D,pnodes=P:P..` (docs/acpi.md).
 * mem: total guest memory (0 = take it from mem=, which is then required; otherwise mem= must
 * sum to it); vcpus: number of vCPUs (0 = derive from cpus=, which is then required). Omitted
 * keys get the defaults of mv_vnuma_default() (with host_nodes 0: pnodes any). On error
 * returns -EINVAL, writes "vnuma: <why>" to err and leaves *v unchanged. */
int mv_vnuma_parse(const char *spec, uint64_t mem, uint32_t vcpus, struct mv_vnuma *v, char *err,
                   size_t errlen);

/* Checks every rule above. 0 or -EINVAL with a message. */
int mv_vnuma_validate(const struct mv_vnuma *v, char *err, size_t errlen);

/* Total guest memory: sum of node_mem (never overflows for a validated topology). */
uint64_t mv_vnuma_total_mem(const struct mv_vnuma *v);

/* Guest-physical placement: vnode 0 starts at gpa 0, each vnode follows the previous one, and the
 * part that would fall in [hole_start, hole_end) is moved to hole_end upwards (a vnode may so get
 * two ranges). mvvmm must lay out RAM the same way: [0, min(mem, hole_start)) and
 * [hole_end, hole_end + mem - hole_start). Returns the number of ranges written (sorted by gpa),
 * or -ENOSPC if max is too small, -EINVAL for hole_start > hole_end. */
int mv_vnuma_layout(const struct mv_vnuma *v, uint64_t hole_start, uint64_t hole_end,
                    struct mv_vnuma_range *out, size_t max);

/* "2 vnodes, 4 vcpus: 0: pnode 0, vcpus 0-1, 32M, dist 10 20; ..." for logs. Returns the length
 * that snprintf would have written. */
int mv_vnuma_format(const struct mv_vnuma *v, char *buf, size_t cap);

#endif
