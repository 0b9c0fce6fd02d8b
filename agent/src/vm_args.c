/* Building a VM's launch: mvvmm arguments, run-directory paths, network device names. */
#include "mv/vm_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/agent_proto.h"
#include "mv/util.h"

#define IFNAME_MAX 15 /* IFNAMSIZ - 1 */

int mv_vm_file_path(const char *run_dir, const char *uuid, const char *suffix, char *out,
                    size_t cap)
{
    int n = snprintf(out, cap, "%s/%s%s", run_dir, uuid, suffix);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int mv_vm_tap_name(const char *uuid, unsigned idx, char *out, size_t cap)
{
    /* 10 uuid characters keep names of different VMs apart (4^40 for hex uuids) and leave
     * room for the index: "mvt" + 10 + 2 digits = 15. */
    if (idx > 99 || !uuid[0])
        return -EINVAL;
    int n = snprintf(out, cap, "mvt%.10s%u", uuid, idx);
    return n < 0 || (size_t)n >= cap || n > IFNAME_MAX ? -EINVAL : 0;
}

int mv_vm_bridge_name(uint64_t network_id, char *out, size_t cap)
{
    int n = snprintf(out, cap, "mvbr%llu", (unsigned long long)network_id);
    return n < 0 || (size_t)n >= cap || n > IFNAME_MAX ? -EINVAL : 0;
}

int mv_vm_vlan_ifname(const char *uplink, unsigned vlan, char *out, size_t cap)
{
    if (vlan == 0 || vlan > 4094 || !uplink[0])
        return -EINVAL;
    int n = snprintf(out, cap, "%s.%u", uplink, vlan);
    if (n > 0 && (size_t)n < cap && n <= IFNAME_MAX)
        return 0;
    /* A long uplink name: a short one that still tells uplinks apart (FNV-1a of the name). */
    uint32_t h = 2166136261u;
    for (const char *p = uplink; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    n = snprintf(out, cap, "mvv%u.%04x", vlan, h & 0xffff);
    return n < 0 || (size_t)n >= cap || n > IFNAME_MAX ? -EINVAL : 0;
}

void mv_vm_nic_mac(const char *uuid, unsigned idx, json_t *nic, char out[18])
{
    const char *m = json_string_value(json_object_get(nic, "mac"));
    if (m && strlen(m) == 17) {
        memcpy(out, m, 18);
        return;
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = uuid; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    h = (h ^ idx) * 0x100000001b3ull;
    /* 52:54:00 would claim QEMU's prefix; 0x02 = locally administered, unicast. */
    uint8_t mac[6] = {0x02,      0x6d, (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8),
                      (uint8_t)h};
    char buf[MV_MAC_STR_LEN];
    mv_mac_format(mac, buf);
    snprintf(out, 18, "%s", buf);
}

int mv_vm_pin_arg(json_t *spec, char *out, size_t cap)
{
    const char *pin = json_string_value(json_object_get(spec, "pin"));
    const char *cpuset = json_string_value(json_object_get(spec, "cpuset"));
    out[0] = 0;
    if (pin) {
        /* mvvmm pins vCPU i to LIST[i]: expand ranges in the order written. */
        uint64_t set[MV_AGENT_CPUSET_WORDS];
        uint16_t order[MV_AGENT_CPU_MAX + 1];
        unsigned n;
        if (mv_agent_cpulist_parse(pin, set, &n, order) != 0)
            return -EINVAL;
        size_t off = 0;
        for (unsigned i = 0; i < n; i++) {
            int w = snprintf(out + off, cap - off, "%s%u", i ? "," : "", order[i]);
            if (w < 0 || (size_t)w >= cap - off)
                return out[0] = 0, -ENAMETOOLONG;
            off += (size_t)w;
        }
        return 0;
    }
    if (cpuset) {
        int n = snprintf(out, cap, "float:%s", cpuset);
        return n < 0 || (size_t)n >= cap ? (out[0] = 0, -ENAMETOOLONG) : 0;
    }
    return 0;
}

int mv_vm_disk_arg(const struct mv_vm_host *h, json_t *disk, char *out, size_t cap, char *err,
                   size_t errlen)
{
    const char *path = json_string_value(json_object_get(disk, "path"));
    const char *target = json_string_value(json_object_get(disk, "target"));
    const char *id = json_string_value(json_object_get(disk, "id"));
    const char *ro = json_is_true(json_object_get(disk, "ro")) ? ",ro" : "";
    int n;
    if (path) {
        if (strchr(path, ','))
            return snprintf(err, errlen, "disk %s: path must not contain ','", id), -EINVAL;
        n = snprintf(out, cap, "%s%s", path, ro);
    } else {
        json_t *sh = json_object_get(disk, "shelf"), *sl = json_object_get(disk, "slot");
        if (!target || !json_is_integer(sh) || !json_is_integer(sl))
            return snprintf(err, errlen, "disk %s: needs shelf, slot and target", id), -EINVAL;
        unsigned shelf = (unsigned)json_integer_value(sh), slot = (unsigned)json_integer_value(sl);
        if (strcmp(target, "local") == 0) {
            if (!h->aoe_socket || !h->aoe_socket[0])
                return snprintf(err, errlen,
                                "disk %s: target \"local\" but no local AoE socket "
                                "(stored_aoe_socket) is configured",
                                id),
                       -EINVAL;
            n = snprintf(out, cap, "aoe:%u.%u,unix=%s%s", shelf, slot, h->aoe_socket, ro);
        } else {
            uint8_t mac[6];
            if (mv_mac_parse(target, mac) != 0)
                return snprintf(err, errlen, "disk %s: bad target MAC '%s'", id, target), -EINVAL;
            if (!h->aoe_ifname || !h->aoe_ifname[0])
                return snprintf(err, errlen, "disk %s: no interface for remote AoE targets", id),
                       -EINVAL;
            char m[MV_MAC_STR_LEN];
            mv_mac_format(mac, m);
            n = snprintf(out, cap, "aoe:%u.%u,if=%s,target=%s%s", shelf, slot, h->aoe_ifname, m,
                         ro);
        }
    }
    if (n < 0 || (size_t)n >= cap)
        return snprintf(err, errlen, "disk %s: specification too long", id), -ENAMETOOLONG;
    return 0;
}

/* A growable argv. */
struct argv_buf {
    char **v;
    size_t n, cap;
    int failed;
};

static void argv_add(struct argv_buf *a, const char *s)
{
    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof *v);
        if (!v) {
            a->failed = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n] = strdup(s);
    if (!a->v[a->n]) {
        a->failed = 1;
        return;
    }
    a->v[++a->n] = NULL;
}

static void argv_add2(struct argv_buf *a, const char *opt, const char *val)
{
    argv_add(a, opt);
    argv_add(a, val);
}

void mv_vm_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

int mv_vm_build_argv(const struct mv_vm_host *h, json_t *spec, char ***argv, char *err,
                     size_t errlen)
{
    *argv = NULL;
    const char *uuid = json_string_value(json_object_get(spec, "uuid"));
    const char *name = json_string_value(json_object_get(spec, "name"));
    if (!uuid)
        return snprintf(err, errlen, "no uuid"), -EINVAL;
    struct argv_buf a = {0};
    char buf[1024], path[512];
    argv_add(&a, h->vmm_path);
    argv_add2(&a, "--name", name ? name : uuid);
    snprintf(buf, sizeof buf, "%lld",
             (long long)json_integer_value(json_object_get(spec, "vcpus")));
    argv_add2(&a, "--vcpus", buf);
    snprintf(buf, sizeof buf, "%lldM",
             (long long)json_integer_value(json_object_get(spec, "mem_mb")));
    argv_add2(&a, "--mem", buf);
    static const char *const boot_keys[] = {"payload", "kernel", "initrd", "cmdline", "vnuma"};
    for (size_t i = 0; i < MV_ARRAY_SIZE(boot_keys); i++) {
        const char *v = json_string_value(json_object_get(spec, boot_keys[i]));
        if (v) {
            snprintf(buf, sizeof buf, "--%s", boot_keys[i]);
            argv_add2(&a, buf, v);
        }
    }
    int rc = mv_vm_pin_arg(spec, buf, sizeof buf);
    if (rc != 0) {
        snprintf(err, errlen, "pin list too long");
        goto fail;
    }
    if (buf[0])
        argv_add2(&a, "--pin", buf);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(spec, "disks"), i, e)
    {
        if ((rc = mv_vm_disk_arg(h, e, buf, sizeof buf, err, errlen)) != 0)
            goto fail;
        argv_add2(&a, "--disk", buf);
    }
    json_array_foreach(json_object_get(spec, "nics"), i, e)
    {
        char tap[32], mac[18];
        if ((rc = mv_vm_tap_name(uuid, (unsigned)i, tap, sizeof tap)) != 0) {
            snprintf(err, errlen, "nic %zu: no TAP name", i);
            goto fail;
        }
        mv_vm_nic_mac(uuid, (unsigned)i, e, mac);
        snprintf(buf, sizeof buf, "tap=%s,mac=%s", tap, mac);
        argv_add2(&a, "--net", buf);
    }
    if ((rc = mv_vm_file_path(h->run_dir, uuid, ".sock", path, sizeof path)) != 0) {
        snprintf(err, errlen, "run directory path too long");
        goto fail;
    }
    argv_add2(&a, "--control-socket", path);
    mv_vm_file_path(h->run_dir, uuid, ".console", path, sizeof path);
    snprintf(buf, sizeof buf, "file:%s", path);
    argv_add2(&a, "--serial", buf);
    snprintf(buf, sizeof buf, "%u", h->stop_timeout_ms);
    argv_add2(&a, "--stop-timeout", buf);
    if (a.failed) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    *argv = a.v;
    return 0;
fail:
    mv_vm_argv_free(a.v);
    return rc ? rc : -EINVAL;
}
