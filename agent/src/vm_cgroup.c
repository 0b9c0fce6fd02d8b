/* cpuset cgroups for VMs (v1 and v2). */
#include "mv/vm_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mv/util.h"

static int write_text(const char *path, const char *text)
{
    /* O_CREAT|O_TRUNC are no-ops on cgroupfs files and let tests use a plain directory tree. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int e = w < 0 ? errno : 0;
    close(fd);
    if (w < 0)
        return -e;
    return (size_t)w == n ? 0 : -EIO;
}

/* First line of a small file, without the newline; "" when missing. */
static void read_line(const char *path, char *buf, size_t cap)
{
    if (mv_read_file(path, buf, cap) <= 0)
        buf[0] = 0;
    buf[strcspn(buf, "\n")] = 0;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int v2_has_cpuset(const char *dir)
{
    char p[400], buf[512];
    if (snprintf(p, sizeof p, "%s/cgroup.controllers", dir) >= (int)sizeof p ||
        mv_read_file(p, buf, sizeof buf) <= 0)
        return 0;
    /* a word of the list, not a prefix of another */
    for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
        if (strcmp(t, "cpuset") == 0)
            return 1;
    return 0;
}

const char *mv_cgroup_kind_name(enum mv_cgroup_kind k)
{
    return k == MV_CGROUP_V1 ? "v1" : k == MV_CGROUP_V2 ? "v2" : "none";
}

int mv_cgroup_detect(const char *mode, const char *fs, const char *parent,
                     struct mv_cgroup_root *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->parent, sizeof out->parent, "%s", parent && *parent ? parent : "mvkvm");
    if (strcmp(mode, "none") == 0)
        return 0;
    int want_v1 = !strcmp(mode, "v1"), want_v2 = !strcmp(mode, "v2");
    if (!want_v1 && !want_v2 && strcmp(mode, "auto") != 0)
        return snprintf(err, errlen, "cgroup: '%s' is not auto, v1, v2 or none", mode), -1;
    char p[320];
    if (!want_v2) {
        snprintf(p, sizeof p, "%s/cpuset/cpuset.cpus", fs);
        if (file_exists(p)) {
            out->kind = MV_CGROUP_V1;
            snprintf(out->path, sizeof out->path, "%s/cpuset", fs);
            return 0;
        }
        if (want_v1)
            return snprintf(err, errlen, "cgroup v1: no cpuset hierarchy at %s/cpuset", fs), -1;
    }
    const char *v2dirs[] = {"", "/unified"};
    for (size_t i = 0; i < MV_ARRAY_SIZE(v2dirs); i++) {
        snprintf(p, sizeof p, "%s%s", fs, v2dirs[i]);
        if (strlen(p) < sizeof out->path && v2_has_cpuset(p)) {
            out->kind = MV_CGROUP_V2;
            memcpy(out->path, p, strlen(p) + 1);
            return 0;
        }
    }
    if (want_v2)
        return snprintf(err, errlen, "cgroup v2: no hierarchy with the cpuset controller under %s",
                        fs),
               -1;
    return 0; /* auto and nothing usable: pinning alone */
}

static int make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

int mv_cgroup_vm_create(const struct mv_cgroup_root *r, const char *uuid, const char *cpus,
                        char *out, size_t cap, char *err, size_t errlen)
{
    out[0] = 0;
    if (r->kind == MV_CGROUP_NONE)
        return 0;
    char parent[384], vm[448], p[512], cur[256], mems[256];
    snprintf(parent, sizeof parent, "%s/%s", r->path, r->parent);
    if (snprintf(vm, sizeof vm, "%s/%s", parent, uuid) >= (int)sizeof vm || strlen(vm) >= cap)
        return snprintf(err, errlen, "cgroup path too long"), -ENAMETOOLONG;
    int rc;
    if (r->kind == MV_CGROUP_V2) {
        /* Each level hands the cpuset controller down to its children. */
        snprintf(p, sizeof p, "%s/cgroup.subtree_control", r->path);
        if ((rc = write_text(p, "+cpuset")) != 0)
            return snprintf(err, errlen, "%s: enabling cpuset: %s", p, strerror(-rc)), rc;
        if ((rc = make_dir(parent)) != 0)
            return snprintf(err, errlen, "mkdir %s: %s", parent, strerror(-rc)), rc;
        snprintf(p, sizeof p, "%s/cgroup.subtree_control", parent);
        if ((rc = write_text(p, "+cpuset")) != 0)
            return snprintf(err, errlen, "%s: enabling cpuset: %s", p, strerror(-rc)), rc;
        if ((rc = make_dir(vm)) != 0)
            return snprintf(err, errlen, "mkdir %s: %s", vm, strerror(-rc)), rc;
        if (cpus) {
            snprintf(p, sizeof p, "%s/cpuset.cpus", vm);
            if ((rc = write_text(p, cpus)) != 0)
                return snprintf(err, errlen, "%s = %s: %s", p, cpus, strerror(-rc)), rc;
        }
        snprintf(out, cap, "%s", vm);
        return 0;
    }
    /* v1: a new cpuset starts with empty cpus/mems and accepts no task until both are set, so
     * the parent inherits the root's, and the VM's cpuset gets its cpus and the parent's mems. */
    if ((rc = make_dir(parent)) != 0)
        return snprintf(err, errlen, "mkdir %s: %s", parent, strerror(-rc)), rc;
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (size_t i = 0; i < MV_ARRAY_SIZE(files); i++) {
        snprintf(p, sizeof p, "%s/%s", parent, files[i]);
        read_line(p, cur, sizeof cur);
        if (cur[0])
            continue;
        char rootf[320];
        snprintf(rootf, sizeof rootf, "%s/%s", r->path, files[i]);
        read_line(rootf, cur, sizeof cur);
        if (!cur[0])
            return snprintf(err, errlen, "%s is empty", rootf), -EINVAL;
        if ((rc = write_text(p, cur)) != 0)
            return snprintf(err, errlen, "%s = %s: %s", p, cur, strerror(-rc)), rc;
    }
    snprintf(p, sizeof p, "%s/cpuset.mems", parent);
    read_line(p, mems, sizeof mems);
    if ((rc = make_dir(vm)) != 0)
        return snprintf(err, errlen, "mkdir %s: %s", vm, strerror(-rc)), rc;
    if (!cpus) {
        snprintf(p, sizeof p, "%s/cpuset.cpus", parent);
        read_line(p, cur, sizeof cur);
        cpus = cur;
    }
    snprintf(p, sizeof p, "%s/cpuset.cpus", vm);
    if ((rc = write_text(p, cpus)) != 0)
        return snprintf(err, errlen, "%s = %s: %s", p, cpus, strerror(-rc)), rc;
    snprintf(p, sizeof p, "%s/cpuset.mems", vm);
    if ((rc = write_text(p, mems)) != 0)
        return snprintf(err, errlen, "%s = %s: %s", p, mems, strerror(-rc)), rc;
    snprintf(out, cap, "%s", vm);
    return 0;
}

int mv_cgroup_attach(const char *path, pid_t pid)
{
    char p[512], v[32];
    snprintf(p, sizeof p, "%s/cgroup.procs", path);
    snprintf(v, sizeof v, "%d", (int)(pid ? pid : getpid()));
    /* No O_CREAT here: a missing cgroup must fail, not leave a stray file. */
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, v, strlen(v));
    int e = w < 0 ? errno : 0;
    close(fd);
    return w < 0 ? -e : 0;
}

int mv_cgroup_vm_remove(const struct mv_cgroup_root *r, const char *uuid)
{
    if (r->kind == MV_CGROUP_NONE)
        return 0;
    char vm[448];
    snprintf(vm, sizeof vm, "%s/%s/%s", r->path, r->parent, uuid);
    if (rmdir(vm) == 0 || errno == ENOENT)
        return 0;
    return -errno;
}
