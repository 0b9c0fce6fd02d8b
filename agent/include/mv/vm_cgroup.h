/* A VM's CPU set as a cpuset cgroup "<parent>/<uuid>" (parent "mvkvm" by default): the VMM and
 * every thread it creates (vCPUs, I/O) stay on the VM's cores, also the threads mvvmm does not
 * pin. cgroup v1 (the cpuset hierarchy, /sys/fs/cgroup/cpuset) and cgroup v2 (a unified
 * hierarchy with the cpuset controller: /sys/fs/cgroup or /sys/fs/cgroup/unified) are
 * supported; "auto" picks what this host has. The root is a parameter so tests use a fake tree. */
#ifndef MV_VM_CGROUP_H
#define MV_VM_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

enum mv_cgroup_kind {
    MV_CGROUP_NONE,
    MV_CGROUP_V1, /* cpuset hierarchy: cpuset.cpus + cpuset.mems must be set before tasks join */
    MV_CGROUP_V2, /* unified: "+cpuset" in each ancestor's cgroup.subtree_control */
};

struct mv_cgroup_root {
    enum mv_cgroup_kind kind;
    char path[256];  /* the hierarchy's mount point */
    char parent[64]; /* "mvkvm" */
};

/* mode: "auto", "v1", "v2" or "none"; fs: where cgroup file systems are mounted
 * ("/sys/fs/cgroup"). auto: v1 if <fs>/cpuset/cpuset.cpus exists, else v2 at <fs> or
 * <fs>/unified if its cgroup.controllers lists cpuset, else NONE. 0, or -1 with a reason in err
 * (a mode that was asked for explicitly and is not there). */
int mv_cgroup_detect(const char *mode, const char *fs, const char *parent,
                     struct mv_cgroup_root *out, char *err, size_t errlen);
const char *mv_cgroup_kind_name(enum mv_cgroup_kind k);

/* Creates (or updates) <root>/<parent>/<uuid> with cpuset.cpus = cpus (NULL: the parent's) and
 * the parent's memory nodes; the path goes to out. 0, or -errno with a reason. NONE: 0, out "". */
int mv_cgroup_vm_create(const struct mv_cgroup_root *r, const char *uuid, const char *cpus,
                        char *out, size_t cap, char *err, size_t errlen);
/* Moves process pid (0 = the caller) with all its threads into the cgroup at path. */
int mv_cgroup_attach(const char *path, pid_t pid);
/* Removes the VM's cgroup (fails while processes remain in it: -EBUSY). Missing is fine. */
int mv_cgroup_vm_remove(const struct mv_cgroup_root *r, const char *uuid);

#endif
