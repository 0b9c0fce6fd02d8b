/* mvagent core: configuration, request dispatch, statistics timer and the poll loop. */
#include "mv/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mv/agent_proto.h"
#include "mv/agent_stats.h"
#include "mv/chan_port.h"
#include "mv/config.h"
#include "mv/daemon.h"
#include "mv/dgram.h"
#include "mv/guests.h"
#include "mv/hostcounters.h"
#include "mv/inventory.h"
#include "mv/jsonline.h"
#include "mv/log.h"
#include "mv/perfc.h"
#include "mv/util.h"

#ifndef MV_VERSION
#define MV_VERSION "0"
#endif

#define STORED_REPLY_MAX  (4u << 20)
#define STORED_TIMEOUT_MS 5000
#define VMM_TIMEOUT_MS    500
#define VM_TICK_NS        250000000ull

struct mv_agent {
    struct mv_agent_config cfg;
    struct mv_port *port;
    struct mv_chan *chan;
    struct mv_disc *disc;
    struct mv_chan_port cp;
    struct mv_keyring keys;
    struct mv_dgram_tx dtx;
    uint64_t node_id, incarnation;
    uint64_t started_ns;

    struct mv_inventory *inv;
    struct mv_host_counter_source *hcs;
    struct mv_host_counters *hc;
    struct mv_guests *guests;
    struct mv_perfc_set *baseline; /* NULL until the first reset */
    struct mv_stats_report *report;
    uint32_t report_id;
    uint64_t next_stats_ns;
    json_t *datastores; /* drive path -> datastore id, persisted in state_dir */
    struct mv_vms *vms; /* NULL when the VM lifecycle could not be set up (vms_error) */
    char vms_error[256];
    uint64_t next_vm_tick_ns;
    uint64_t requests, request_errors, stats_sent;
};

/* ---- configuration ---- */

void mv_agent_config_defaults(struct mv_agent_config *c)
{
    memset(c, 0, sizeof *c);
    c->roles = MV_ROLE_HYPERVISOR;
    c->stats_interval_ms = 10000;
    c->hello_interval_ms = 1000;
    memset(c->collector, 0xff, 6);
    snprintf(c->key_file, sizeof c->key_file, "/etc/mvkvm/cluster.key");
    snprintf(c->vmm_run_dir, sizeof c->vmm_run_dir, "/run/mvkvm/vm");
    snprintf(c->state_dir, sizeof c->state_dir, "/var/lib/mvkvm/agent");
    snprintf(c->sysfs, sizeof c->sysfs, "/sys");
    snprintf(c->procfs, sizeof c->procfs, "/proc");
    c->log_level = LOG_INFO;
    mv_vm_config_defaults(&c->vm);
}

static int set_str(char *dst, size_t cap, const char *key, const char *value, char *err,
                   size_t errlen)
{
    if (strlen(value) >= cap)
        return snprintf(err, errlen, "%s: longer than %zu characters", key, cap - 1), -1;
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

/* Seconds with an optional "ms" suffix ("10", "2.5" not allowed, "500ms"), 100 ms .. 1 h. */
static int parse_interval_ms(const char *v, uint32_t *out)
{
    uint64_t n;
    size_t len = strlen(v);
    char tmp[32];
    if (len > 2 && len < sizeof tmp && strcmp(v + len - 2, "ms") == 0) {
        memcpy(tmp, v, len - 2);
        tmp[len - 2] = 0;
        if (mv_parse_u64(tmp, &n) != 0)
            return -1;
    } else {
        if (mv_parse_u64(v, &n) != 0 || n > 3600)
            return -1;
        n *= 1000;
    }
    if (n < 100 || n > 3600000)
        return -1;
    *out = (uint32_t)n;
    return 0;
}

int mv_agent_config_set(struct mv_agent_config *c, const char *key, const char *value, char *err,
                        size_t errlen)
{
    if (!strcmp(key, "interface"))
        return set_str(c->ifname, sizeof c->ifname, key, value, err, errlen);
    if (!strcmp(key, "key_file"))
        return set_str(c->key_file, sizeof c->key_file, key, value, err, errlen);
    if (!strcmp(key, "blade"))
        return set_str(c->blade, sizeof c->blade, key, value, err, errlen);
    if (!strcmp(key, "chassis"))
        return set_str(c->chassis, sizeof c->chassis, key, value, err, errlen);
    if (!strcmp(key, "rack"))
        return set_str(c->rack, sizeof c->rack, key, value, err, errlen);
    if (!strcmp(key, "stored_socket"))
        return set_str(c->stored_socket, sizeof c->stored_socket, key, value, err, errlen);
    if (!strcmp(key, "vmm_run_dir"))
        return set_str(c->vmm_run_dir, sizeof c->vmm_run_dir, key, value, err, errlen);
    if (!strcmp(key, "state_dir"))
        return set_str(c->state_dir, sizeof c->state_dir, key, value, err, errlen);
    if (!strcmp(key, "sysfs"))
        return set_str(c->sysfs, sizeof c->sysfs, key, value, err, errlen);
    if (!strcmp(key, "procfs"))
        return set_str(c->procfs, sizeof c->procfs, key, value, err, errlen);
    if (!strcmp(key, "vmm_path"))
        return set_str(c->vm.vmm_path, sizeof c->vm.vmm_path, key, value, err, errlen);
    if (!strcmp(key, "stored_aoe_socket"))
        return set_str(c->vm.aoe_socket, sizeof c->vm.aoe_socket, key, value, err, errlen);
    if (!strcmp(key, "vm_uplink"))
        return set_str(c->vm.uplink, sizeof c->vm.uplink, key, value, err, errlen);
    if (!strcmp(key, "cgroup_fs"))
        return set_str(c->vm.cgroup_fs, sizeof c->vm.cgroup_fs, key, value, err, errlen);
    if (!strcmp(key, "cgroup_parent")) {
        if (!value[0] || strchr(value, '/') || strstr(value, ".."))
            return snprintf(err, errlen, "cgroup_parent: '%s' is not a directory name", value), -1;
        return set_str(c->vm.cgroup_parent, sizeof c->vm.cgroup_parent, key, value, err, errlen);
    }
    if (!strcmp(key, "cgroup")) {
        if (strcmp(value, "auto") && strcmp(value, "v1") && strcmp(value, "v2") &&
            strcmp(value, "none"))
            return snprintf(err, errlen, "cgroup: '%s' is not auto, v1, v2 or none", value), -1;
        return set_str(c->vm.cgroup_mode, sizeof c->vm.cgroup_mode, key, value, err, errlen);
    }
    if (!strcmp(key, "vm_stop_timeout")) {
        uint32_t ms;
        if (parse_interval_ms(value, &ms) != 0)
            return snprintf(err, errlen, "%s: '%s' is not seconds (or Nms) from 0.1 s to 1 h", key,
                            value),
                   -1;
        c->vm.stop_timeout_ms = ms;
        return 0;
    }
    if (!strcmp(key, "roles")) {
        uint32_t r;
        if (mv_role_parse(value, &r) != 0 || r == 0)
            return snprintf(err, errlen,
                            "roles: '%s' is not a list of hypervisor, controller, "
                            "storage",
                            value),
                   -1;
        c->roles = r;
        return 0;
    }
    if (!strcmp(key, "stats_interval") || !strcmp(key, "hello_interval")) {
        uint32_t ms;
        if (parse_interval_ms(value, &ms) != 0)
            return snprintf(err, errlen, "%s: '%s' is not seconds (or Nms) from 0.1 s to 1 h", key,
                            value),
                   -1;
        if (key[0] == 's')
            c->stats_interval_ms = ms;
        else
            c->hello_interval_ms = ms;
        return 0;
    }
    if (!strcmp(key, "stats_collector")) {
        uint8_t mac[6];
        if (mv_mac_parse(value, mac) != 0)
            return snprintf(err, errlen, "stats_collector: bad MAC address '%s'", value), -1;
        memcpy(c->collector, mac, 6);
        return 0;
    }
    if (!strcmp(key, "xdp")) {
        bool b;
        if (mv_parse_bool(value, &b) != 0)
            return snprintf(err, errlen, "xdp: expected true or false"), -1;
        c->xdp = b;
        return 0;
    }
    if (!strcmp(key, "log_level")) {
        int l = mv_log_level_from_name(value);
        if (l < 0)
            return snprintf(err, errlen, "log_level: unknown level '%s'", value), -1;
        c->log_level = l;
        return 0;
    }
    snprintf(err, errlen, "unknown key '%s'", key);
    return -1;
}

static int config_handler(void *user, const char *section, const char *key, const char *value,
                          char *err, size_t errlen)
{
    if (strcmp(section, "agent") != 0) {
        snprintf(err, errlen, "unknown section [%s] (expected [agent])", section);
        return -1;
    }
    return mv_agent_config_set(user, key, value, err, errlen);
}

int mv_agent_config_load(struct mv_agent_config *c, const char *path, char *err, size_t errlen)
{
    return mv_config_load(path, config_handler, c, err, errlen);
}

/* ---- datastore assignments (which drive was formatted into which datastore) ---- */

static void datastores_path(const struct mv_agent *a, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/datastores.json", a->cfg.state_dir);
}

static void datastores_load(struct mv_agent *a)
{
    char path[300];
    datastores_path(a, path, sizeof path);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (j && !json_is_object(j)) {
        mv_warn("%s: not a JSON object, ignored", path);
        json_decref(j);
        j = NULL;
    }
    a->datastores = j ? j : json_object();
}

static int datastores_save(struct mv_agent *a)
{
    char path[300], tmp[310];
    datastores_path(a, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(a->datastores, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        return -e;
    }
    return 0;
}

/* ---- mvstored relay ---- */

static int stored_call(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    *rep = NULL;
    if (!a->cfg.stored_socket[0]) {
        json_decref(req);
        snprintf(err, errlen, "no mvstored on this host (stored_socket not configured)");
        return -ENOTSUP;
    }
    char why[256];
    json_t *r = NULL;
    int rc = mv_jsonline_call(a->cfg.stored_socket, req, STORED_REPLY_MAX, STORED_TIMEOUT_MS, &r,
                              why, sizeof why);
    json_decref(req);
    if (rc != 0) {
        snprintf(err, errlen, "mvstored unreachable: %s", why);
        return rc == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
    }
    if (!json_is_true(json_object_get(r, "ok"))) {
        const char *e = json_string_value(json_object_get(r, "error"));
        snprintf(err, errlen, "mvstored: %s", e ? e : "request failed");
        json_decref(r);
        return -EREMOTEIO;
    }
    json_object_del(r, "ok");
    *rep = r;
    return 0;
}

/* Copies the validated keys of req into a new mvstored request {"cmd": cmd, ...}. */
static json_t *stored_request(const char *cmd, json_t *req, const char *const *keys)
{
    json_t *s = json_pack("{s:s}", "cmd", cmd);
    for (; keys && *keys; keys++) {
        json_t *v = json_object_get(req, *keys);
        if (v)
            json_object_set(s, *keys, v);
    }
    return s;
}

/* A stable id for a drive: FNV-1a 32 of "<node id>:<path>", in decimal (the controller's disk
 * id). It must not change when the drive is (re)formatted. */
static void drive_stable_id(const char *node_id, const char *path, char *out, size_t cap)
{
    uint32_t h = 2166136261u;
    for (const char *p = node_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ ':') * 16777619u;
    for (const char *p = path; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    snprintf(out, cap, "%u", h);
}

static uint64_t path_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (S_ISREG(st.st_mode))
        return (uint64_t)st.st_size;
    uint64_t sz = 0;
    int fd = S_ISBLK(st.st_mode) ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        if (ioctl(fd, BLKGETSIZE64, &sz) != 0)
            sz = 0;
        close(fd);
    }
    return sz;
}

/* The controller's view of mvstored's drive list. */
static json_t *drives_for_inventory(struct mv_agent *a, json_t *list)
{
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(list, "drives"), i, d)
    {
        const char *path = json_string_value(json_object_get(d, "path"));
        if (!path)
            continue;
        char id[16];
        drive_stable_id(a->inv->node_id, path, id, sizeof id);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(id));
        json_t *size = json_object_get(d, "size");
        json_object_set_new(o, "size_bytes",
                            json_is_integer(size) ? json_incref(size)
                                                  : json_integer((json_int_t)path_size(path)));
        json_object_set_new(o, "vendor", json_string("mvkvm"));
        json_object_set_new(o, "model", json_string("mvstored drive"));
        json_object_set_new(o, "serial", json_string(path));
        const char *keys[] = {"path",           "state",    "problem",   "drive_id",
                              "capacity",       "used",     "committed", "chunk_size",
                              "overcommit_pct", "replicas", NULL};
        for (const char **k = keys; *k; k++) {
            json_t *v = json_object_get(d, *k);
            if (v)
                json_object_set(o, *k, v);
        }
        json_t *ds = json_object_get(a->datastores, path);
        if (ds)
            json_object_set(o, "datastore", ds);
        json_array_append_new(out, o);
    }
    return out;
}

/* ---- handlers ---- */

typedef int (*agent_handler)(struct mv_agent *a, json_t *req, json_t **rep, char *err,
                             size_t errlen);

static int op_ping(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    *rep = json_pack("{s:s, s:s, s:I}", "node_id", a->inv->node_id, "version", MV_VERSION,
                     "uptime_ms", (json_int_t)((mv_now_ns() - a->started_ns) / 1000000));
    json_t *echo = json_object_get(req, "echo");
    if (echo)
        json_object_set(*rep, "echo", echo);
    return 0;
}

static int op_inventory(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    mv_inventory_refresh(a->inv, a->cfg.sysfs, a->cfg.procfs);
    json_t *j = mv_inventory_to_json(a->inv);
    char why[300];
    json_t *list = NULL;
    if (a->cfg.stored_socket[0] &&
        stored_call(a, json_pack("{s:s}", "cmd", "list"), &list, why, sizeof why) == 0) {
        json_object_set_new(j, "drives", drives_for_inventory(a, list));
    } else {
        json_object_set_new(j, "drives", json_array());
        if (a->cfg.stored_socket[0])
            json_object_set_new(j, "drives_error", json_string(why));
    }
    json_decref(list);
    char roles[64];
    json_object_set_new(j, "roles", json_string(mv_role_names(a->cfg.roles, roles, sizeof roles)));
    json_object_set_new(j, "version", json_string(MV_VERSION));
    *rep = j;
    return 0;
}

static int op_drive_list(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    json_t *list;
    int rc = stored_call(a, json_pack("{s:s}", "cmd", "list"), &list, err, errlen);
    if (rc == 0) {
        json_object_set_new(list, "drives", drives_for_inventory(a, list));
        *rep = list;
    }
    return rc;
}

static int op_drive_format(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    static const char *const keys[] = {"drive", "chunk_size", "overcommit_pct", "force", NULL};
    int rc = stored_call(a, stored_request("format", req, keys), rep, err, errlen);
    if (rc != 0)
        return rc;
    const char *path = json_string_value(json_object_get(req, "drive"));
    json_t *ds = json_object_get(req, "datastore");
    if (ds)
        json_object_set(a->datastores, path, ds);
    else
        json_object_del(a->datastores, path);
    int src = datastores_save(a);
    if (src != 0)
        mv_warn("saving datastore assignments in %s: %s", a->cfg.state_dir, strerror(-src));
    if (ds)
        json_object_set(*rep, "datastore", ds);
    return 0;
}

static int op_replica(struct mv_agent *a, const char *cmd, json_t *req, json_t **rep, char *err,
                      size_t errlen)
{
    static const char *const keys[] = {"vdisk", "size",  "drive", "thin",
                                       "map",   "shelf", "slot",  NULL};
    return stored_call(a, stored_request(cmd, req, keys), rep, err, errlen);
}

static int op_replica_create(struct mv_agent *a, json_t *req, json_t **rep, char *err,
                             size_t errlen)
{
    return op_replica(a, "create", req, rep, err, errlen);
}
static int op_replica_map(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    return op_replica(a, "map", req, rep, err, errlen);
}
static int op_replica_unmap(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    return op_replica(a, "unmap", req, rep, err, errlen);
}
static int op_replica_delete(struct mv_agent *a, json_t *req, json_t **rep, char *err,
                             size_t errlen)
{
    return op_replica(a, "delete", req, rep, err, errlen);
}
static int op_replica_resize(struct mv_agent *a, json_t *req, json_t **rep, char *err,
                             size_t errlen)
{
    return op_replica(a, "resize", req, rep, err, errlen);
}

/* The raw (not yet baselined) counters of this moment: host plus every VMM. */
static struct mv_perfc_set *perfc_collect(struct mv_agent *a)
{
    if (a->hcs && mv_host_counters_read(a->hcs, a->hc) != 0)
        mv_warn("reading host counters failed");
    struct mv_perfc_set *s = mv_perfc_set_new((unsigned)a->hc->ncpus, a->hc->cpu_ids);
    if (!s)
        return NULL;
    mv_perfc_add_known(s);
    mv_perfc_add_host(s, a->hc);
    mv_guests_scan(a->guests, VMM_TIMEOUT_MS);
    for (unsigned i = 0; i < a->guests->n; i++) {
        const struct mv_guest *g = &a->guests->g[i];
        int pcpu[MV_GUEST_MAX_VCPUS];
        for (unsigned v = 0; v < g->n_vcpus; v++)
            pcpu[v] = g->vcpu[v].last_pcpu;
        if (g->perfc && mv_perfc_add_vmm(s, g->perfc, pcpu, g->n_vcpus) < 0)
            mv_warn("guest %s: malformed perfc in its stats reply", g->sock);
    }
    return s;
}

static int perfc_reply(struct mv_agent *a, const char *only, json_t **rep, char *err, size_t errlen)
{
    struct mv_perfc_set *s = perfc_collect(a);
    if (!s)
        return snprintf(err, errlen, "out of memory"), -ENOMEM;
    if (only && !mv_perfc_find(s, only)) {
        snprintf(err, errlen, "no performance counter named \"%s\"", only);
        mv_perfc_set_free(s);
        return -ENOENT;
    }
    if (a->baseline)
        mv_perfc_apply_baseline(a->baseline, s);
    *rep = mv_perfc_to_json(s, mv_now_ns(), only);
    mv_perfc_set_free(s);
    return 0;
}

static int op_perfc_dump(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    return perfc_reply(a, NULL, rep, err, errlen);
}

static int op_perfc_get(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    return perfc_reply(a, json_string_value(json_object_get(req, "name")), rep, err, errlen);
}

static int op_perfc_reset(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(req, "name"));
    struct mv_perfc_set *raw = perfc_collect(a);
    if (!raw)
        return snprintf(err, errlen, "out of memory"), -ENOMEM;
    if (name && !mv_perfc_find(raw, name)) {
        snprintf(err, errlen, "no performance counter named \"%s\"", name);
        mv_perfc_set_free(raw);
        return -ENOENT;
    }
    if (!a->baseline || a->baseline->ncpus != raw->ncpus) {
        mv_perfc_set_free(a->baseline);
        a->baseline = mv_perfc_set_new(raw->ncpus, raw->cpu_ids);
        if (!a->baseline) {
            mv_perfc_set_free(raw);
            return snprintf(err, errlen, "out of memory"), -ENOMEM;
        }
    }
    int n = mv_perfc_reset(a->baseline, raw, name);
    mv_perfc_set_free(raw);
    if (n < 0)
        return snprintf(err, errlen, "reset failed: %s", strerror(-n)), n;
    mv_info("performance counters reset (%s, %d counters)", name ? name : "all", n);
    *rep = json_pack("{s:i, s:I}", "reset", n, "now_ns", (json_int_t)mv_now_ns());
    return 0;
}

/* VM lifecycle (mv/vm.h): one wrapper per op for the dispatch table. */
static int vm_op(struct mv_agent *a, uint16_t op, json_t *req, json_t **rep, char *err,
                 size_t errlen)
{
    if (!a->vms)
        return snprintf(err, errlen, "VM lifecycle unavailable: %s", a->vms_error), -ENOTSUP;
    return mv_vms_handle(a->vms, op, req, rep, err, errlen);
}
#define VM_HANDLER(fn, code)                                                                       \
    static int fn(struct mv_agent *a, json_t *req, json_t **rep, char *err, size_t errlen)         \
    {                                                                                              \
        return vm_op(a, code, req, rep, err, errlen);                                              \
    }
VM_HANDLER(op_vm_start, MV_AGENT_OP_VM_START)
VM_HANDLER(op_vm_stop, MV_AGENT_OP_VM_STOP)
VM_HANDLER(op_vm_reboot, MV_AGENT_OP_VM_REBOOT)
VM_HANDLER(op_vm_pause, MV_AGENT_OP_VM_PAUSE)
VM_HANDLER(op_vm_unpause, MV_AGENT_OP_VM_UNPAUSE)
VM_HANDLER(op_vm_delete, MV_AGENT_OP_VM_DELETE)
VM_HANDLER(op_vm_info, MV_AGENT_OP_VM_INFO)
VM_HANDLER(op_vm_list, MV_AGENT_OP_VM_LIST)

/* Dispatch table: adding an operation is one line here plus its entry in agent_proto.c. */
static const struct {
    uint16_t op;
    agent_handler fn;
} handlers[] = {
    {MV_AGENT_OP_PING, op_ping},
    {MV_AGENT_OP_INVENTORY, op_inventory},
    {MV_AGENT_OP_DRIVE_LIST, op_drive_list},
    {MV_AGENT_OP_DRIVE_FORMAT, op_drive_format},
    {MV_AGENT_OP_REPLICA_CREATE, op_replica_create},
    {MV_AGENT_OP_REPLICA_MAP, op_replica_map},
    {MV_AGENT_OP_REPLICA_UNMAP, op_replica_unmap},
    {MV_AGENT_OP_REPLICA_DELETE, op_replica_delete},
    {MV_AGENT_OP_REPLICA_RESIZE, op_replica_resize},
    {MV_AGENT_OP_PERFC_DUMP, op_perfc_dump},
    {MV_AGENT_OP_PERFC_GET, op_perfc_get},
    {MV_AGENT_OP_PERFC_RESET, op_perfc_reset},
    {MV_AGENT_OP_VM_START, op_vm_start},
    {MV_AGENT_OP_VM_STOP, op_vm_stop},
    {MV_AGENT_OP_VM_REBOOT, op_vm_reboot},
    {MV_AGENT_OP_VM_PAUSE, op_vm_pause},
    {MV_AGENT_OP_VM_UNPAUSE, op_vm_unpause},
    {MV_AGENT_OP_VM_DELETE, op_vm_delete},
    {MV_AGENT_OP_VM_INFO, op_vm_info},
    {MV_AGENT_OP_VM_LIST, op_vm_list},
};

int mv_agent_handle_request(struct mv_agent *a, uint16_t op, const void *data, size_t len,
                            char **reply, size_t *reply_len)
{
    char err[512] = "";
    json_t *req = NULL, *rep = NULL;
    int rc = mv_agent_request_parse(op, data, len, &req, err, sizeof err);
    if (rc == 0) {
        agent_handler fn = NULL;
        for (size_t i = 0; i < MV_ARRAY_SIZE(handlers); i++)
            if (handlers[i].op == op)
                fn = handlers[i].fn;
        if (!fn) {
            snprintf(err, sizeof err, "operation 0x%04x is not served by this agent", op);
            rc = -ENOSYS;
        } else {
            rc = fn(a, req, &rep, err, sizeof err);
        }
    }
    json_decref(req);
    a->requests++;
    if (rc < 0) {
        a->request_errors++;
        json_decref(rep);
        if (!err[0])
            snprintf(err, sizeof err, "%s", strerror(-rc));
        mv_debug("request %s (0x%04x): %s", mv_agent_op_name(op) ? mv_agent_op_name(op) : "?", op,
                 err);
        *reply = mv_agent_reply_error(err, reply_len);
    } else {
        *reply = mv_agent_reply_ok(rep, reply_len);
    }
    return rc;
}

/* ---- statistics ---- */

static int send_stats_chunk(void *user, const uint8_t *payload, size_t len, uint16_t idx,
                            uint16_t count)
{
    struct mv_agent *a = user;
    uint8_t frame[MV_ETH_MAX_FRAME];
    int n = mv_dgram_seal(&a->dtx, a->cfg.collector, MV_AGENT_DGRAM_STATS, payload, len, frame,
                          sizeof frame);
    if (n < 0)
        return n;
    int rc = mv_port_send_one(a->port, frame, (size_t)n);
    if (rc == 0) {
        /* TX ring full: give the kernel a moment once, then count the chunk as lost. */
        mv_sleep_ns(1000000);
        rc = mv_port_send_one(a->port, frame, (size_t)n);
    }
    if (rc == 1)
        a->stats_sent++;
    return 0;
}

int mv_agent_send_stats(struct mv_agent *a)
{
    mv_inventory_refresh(a->inv, a->cfg.sysfs, a->cfg.procfs);
    if (a->hcs)
        mv_host_counters_read(a->hcs, a->hc);
    mv_guests_scan(a->guests, VMM_TIMEOUT_MS);
    mv_agent_stats_build(a->report, mv_agent_node_id_from_mac(a->inv->mac), ++a->report_id,
                         a->cfg.stats_interval_ms, mv_realtime_ns(), a->inv, a->hc, a->guests, NULL,
                         0);
    if (!a->port)
        return 0;
    unsigned mtu = mv_port_mtu(a->port);
    size_t room =
        mtu > MV_CTRL_HDR_LEN + MV_CTRL_TAG_LEN ? mtu - MV_CTRL_HDR_LEN - MV_CTRL_TAG_LEN : 0;
    uint64_t before = a->stats_sent;
    int rc = mv_stats_encode_chunks(a->report, MV_MIN(room, (size_t)MV_STATS_MAX_PAYLOAD),
                                    send_stats_chunk, a);
    if (rc < 0) {
        mv_warn("statistics report %u: %s", a->report_id, mv_stats_strerror(rc));
        return rc;
    }
    mv_debug("statistics report %u: %d chunks", a->report_id, rc);
    return (int)(a->stats_sent - before);
}

/* ---- channel callbacks ---- */

static void on_request(void *user, const struct mv_chan_msg *req, struct mv_chan_reply_token tok)
{
    struct mv_agent *a = user;
    char *reply;
    size_t len;
    int rc = mv_agent_handle_request(a, req->op, req->data, req->len, &reply, &len);
    int src = mv_chan_reply(a->chan, tok, rc, reply, reply ? len : 0, mv_now_ns());
    if (src != 0)
        mv_debug("reply to %016llx: %s", (unsigned long long)req->peer_node, strerror(-src));
    free(reply);
}

static void on_hello(void *user, const struct mv_ctrl_hdr *hdr, const uint8_t *payload, size_t len,
                     uint64_t now_ns)
{
    struct mv_agent *a = user;
    if (a->disc)
        mv_disc_handle_hello(a->disc, hdr, payload, len, now_ns);
}

static void on_peer(void *user, uint64_t peer, const uint8_t mac[6], enum mv_chan_peer_event ev)
{
    char m[MV_MAC_STR_LEN];
    mv_mac_format(mac, m);
    mv_debug("peer %016llx (%s): %s", (unsigned long long)peer, m, mv_chan_peer_event_name(ev));
}

static void on_disc(void *user, const struct mv_disc_peer *p, enum mv_disc_event ev)
{
    static const char *const names[] = {"up", "down", "changed"};
    mv_info("node %016llx (%s) %s", (unsigned long long)p->node_id, p->hello.hostname, names[ev]);
}

/* ---- lifecycle ---- */

static int open_network(struct mv_agent *a, char *err, size_t errlen)
{
    struct mv_port_config pc = {
        .kind = a->cfg.xdp ? MV_PORT_XDP : MV_PORT_PACKET,
        .ifname = a->cfg.ifname,
        .ethertypes = {MV_ETHERTYPE_CTRL},
        .n_ethertypes = 1,
        .low_latency = true,
        .rx_ring_bytes = 1u << 20,
        .tx_ring_frames = 256,
    };
    char why[256];
    int rc = mv_port_open(&pc, &a->port, why, sizeof why);
    if (rc != 0)
        return snprintf(err, errlen, "port on %s: %s", a->cfg.ifname, why), rc;
    const uint8_t *mac = mv_port_mac(a->port);
    a->node_id = mv_agent_node_id_from_mac(mac);
    if (a->node_id == 0)
        return snprintf(err, errlen, "%s has no usable MAC address", a->cfg.ifname), -EINVAL;
    mv_keyring_init(&a->keys);
    rc = mv_keyring_load(&a->keys, a->cfg.key_file, why, sizeof why);
    if (rc != 0)
        return snprintf(err, errlen, "key file %s: %s", a->cfg.key_file, why), rc;
    char inc_path[300];
    snprintf(inc_path, sizeof inc_path, "%s/incarnation", a->cfg.state_dir);
    rc = mv_incarnation_next(inc_path, mv_realtime_ns(), &a->incarnation, why, sizeof why);
    if (rc != 0)
        return snprintf(err, errlen, "incarnation (%s): %s", inc_path, why), rc;
    struct mv_chan_config cc = {
        .node_id = a->node_id,
        .incarnation = a->incarnation,
        .mtu = mv_port_mtu(a->port),
        .keys = &a->keys,
        .send = mv_chan_port_send,
        .send_user = a->port,
        .on_request = on_request,
        .on_peer = on_peer,
        .on_hello = on_hello,
        .cb_user = a,
    };
    memcpy(cc.mac, mac, 6);
    rc = mv_chan_create(&cc, &a->chan);
    if (rc != 0)
        return snprintf(err, errlen, "channel: %s", strerror(-rc)), rc;
    struct mv_disc_config dc = {
        .chan = a->chan,
        .interval_ns = (uint64_t)a->cfg.hello_interval_ms * 1000000ull,
        .on_event = on_disc,
        .cb_user = a,
    };
    memcpy(dc.self.mac, mac, 6);
    dc.self.roles = a->cfg.roles;
    dc.self.interval_ms = a->cfg.hello_interval_ms;
    snprintf(dc.self.hostname, sizeof dc.self.hostname, "%.*s", MV_HELLO_HOSTNAME_MAX,
             a->inv->hostname[0] ? a->inv->hostname : a->inv->node_id);
    snprintf(dc.self.version, sizeof dc.self.version, "%.*s", MV_HELLO_LABEL_MAX, MV_VERSION);
    snprintf(dc.self.blade, sizeof dc.self.blade, "%.*s", MV_HELLO_LABEL_MAX, a->cfg.blade);
    snprintf(dc.self.chassis, sizeof dc.self.chassis, "%.*s", MV_HELLO_LABEL_MAX, a->cfg.chassis);
    snprintf(dc.self.rack, sizeof dc.self.rack, "%.*s", MV_HELLO_LABEL_MAX, a->cfg.rack);
    rc = mv_disc_create(&dc, &a->disc);
    if (rc != 0)
        return snprintf(err, errlen, "discovery: %s", strerror(-rc)), rc;
    a->cp = (struct mv_chan_port){.port = a->port, .chan = a->chan, .disc = a->disc};
    mv_dgram_tx_init(&a->dtx, &a->keys, mac, a->node_id, a->incarnation);
    return 0;
}

int mv_agent_create(const struct mv_agent_config *cfg, struct mv_agent **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    struct mv_agent *a = calloc(1, sizeof *a);
    if (!a)
        return snprintf(err, errlen, "out of memory"), -ENOMEM;
    a->cfg = *cfg;
    a->started_ns = mv_now_ns();
    a->inv = calloc(1, sizeof *a->inv);
    a->hc = calloc(1, sizeof *a->hc);
    a->guests = malloc(sizeof *a->guests);
    a->report = calloc(1, sizeof *a->report);
    int rc = -ENOMEM;
    if (!a->inv || !a->hc || !a->guests || !a->report) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    mv_guests_init(a->guests, cfg->vmm_run_dir, cfg->procfs, cfg->sysfs);
    char why[256] = "";
    rc = mv_inventory_collect(a->inv, cfg->sysfs, cfg->procfs, cfg->ifname[0] ? cfg->ifname : "lo",
                              why, sizeof why);
    if (rc != 0) {
        snprintf(err, errlen, "inventory: %s", why);
        goto fail;
    }
    snprintf(a->inv->labels.blade, sizeof a->inv->labels.blade, "%s", cfg->blade);
    snprintf(a->inv->labels.chassis, sizeof a->inv->labels.chassis, "%s", cfg->chassis);
    snprintf(a->inv->labels.rack, sizeof a->inv->labels.rack, "%s", cfg->rack);
    rc = mv_host_counters_open(&a->hcs, cfg->procfs);
    if (rc != 0) {
        mv_warn("host counters unavailable: %s", strerror(-rc));
        a->hcs = NULL;
    } else {
        mv_host_counters_read(a->hcs, a->hc);
    }
    if (mkdir(cfg->state_dir, 0700) != 0 && errno != EEXIST)
        mv_warn("state directory %s: %s", cfg->state_dir, strerror(errno));
    datastores_load(a);
    struct mv_vm_config vc = cfg->vm;
    snprintf(vc.run_dir, sizeof vc.run_dir, "%s", cfg->vmm_run_dir);
    snprintf(vc.procfs, sizeof vc.procfs, "%s", cfg->procfs);
    if (!vc.aoe_ifname[0])
        snprintf(vc.aoe_ifname, sizeof vc.aoe_ifname, "%s", cfg->ifname);
    if (!vc.uplink[0])
        snprintf(vc.uplink, sizeof vc.uplink, "%s", cfg->ifname);
    if (mv_vms_create(&vc, &a->vms, a->vms_error, sizeof a->vms_error) != 0)
        mv_warn("VM lifecycle unavailable: %s", a->vms_error);
    if (cfg->ifname[0]) {
        rc = open_network(a, err, errlen);
        if (rc != 0)
            goto fail;
    }
    *out = a;
    return 0;
fail:
    mv_agent_destroy(a);
    return rc;
}

void mv_agent_destroy(struct mv_agent *a)
{
    if (!a)
        return;
    if (a->disc)
        mv_disc_destroy(a->disc);
    if (a->chan)
        mv_chan_destroy(a->chan);
    if (a->port)
        mv_port_close(a->port);
    mv_keyring_wipe(&a->keys);
    if (a->hcs)
        mv_host_counters_close(a->hcs);
    if (a->guests)
        mv_guests_clear(a->guests);
    mv_perfc_set_free(a->baseline);
    mv_vms_destroy(a->vms);
    json_decref(a->datastores);
    free(a->inv);
    free(a->hc);
    free(a->guests);
    free(a->report);
    free(a);
}

uint64_t mv_agent_node_id(const struct mv_agent *a)
{
    return a->node_id;
}

int mv_agent_run(struct mv_agent *a)
{
    if (!a->port)
        return -ENOTCONN;
    char mac[MV_MAC_STR_LEN];
    mv_mac_format(mv_port_mac(a->port), mac);
    mv_info("ready: node %s (%016llx) on %s %s (%s port), incarnation %llu, stats every %u ms",
            a->inv->node_id, (unsigned long long)a->node_id, a->cfg.ifname, mac,
            mv_port_kind_name(mv_port_kind(a->port)), (unsigned long long)a->incarnation,
            a->cfg.stats_interval_ms);
    /* The first report goes out soon after start, so a collector sees a new host at once. */
    a->next_stats_ns = mv_now_ns() + 200000000ull;
    int stop_fd = mv_daemon_stop_eventfd();
    while (!mv_daemon_stop_requested()) {
        uint64_t now = mv_now_ns();
        if (now >= a->next_stats_ns) {
            mv_agent_send_stats(a);
            a->next_stats_ns += (uint64_t)a->cfg.stats_interval_ms * 1000000ull;
            if (a->next_stats_ns <= now) /* we fell behind (suspend, slow VMM): no burst */
                a->next_stats_ns = now + (uint64_t)a->cfg.stats_interval_ms * 1000000ull;
            now = mv_now_ns();
        }
        if (now >= a->next_vm_tick_ns) {
            /* stop deadlines, monitor reaping, teardown of VMs that ended */
            mv_vms_tick(a->vms);
            a->next_vm_tick_ns = now + VM_TICK_NS;
        }
        int timeout = mv_chan_port_timeout_ms(&a->cp, now);
        uint64_t until_stats = (a->next_stats_ns - now + 999999) / 1000000;
        if (timeout < 0 || (uint64_t)timeout > until_stats)
            timeout = (int)until_stats;
        if (mv_vms_count(a->vms) && (uint64_t)timeout > VM_TICK_NS / 1000000)
            timeout = (int)(VM_TICK_NS / 1000000);
        struct pollfd p[2] = {{.fd = mv_chan_port_fd(&a->cp), .events = POLLIN},
                              {.fd = stop_fd, .events = POLLIN}};
        int n = poll(p, stop_fd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR)
            return -errno;
        int rc = mv_chan_port_process(&a->cp, mv_now_ns());
        if (rc < 0 && rc != -EAGAIN && rc != -EINTR) {
            mv_err("control port: %s", strerror(-rc));
            return rc;
        }
    }
    mv_info("stopping: %llu requests (%llu failed), %llu stats frames sent",
            (unsigned long long)a->requests, (unsigned long long)a->request_errors,
            (unsigned long long)a->stats_sent);
    return 0;
}
