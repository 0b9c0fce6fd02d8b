/* Control socket: AF_UNIX stream, one JSON object per line each way.
 *   {"cmd":"info"} {"cmd":"pause"} {"cmd":"resume"} {"cmd":"reboot"} {"cmd":"stats"}
 *   {"cmd":"stop"}  (ACPI power button, hard stop after --stop-timeout)
 *   {"cmd":"stop","force":true}  (hard stop now)
 * Replies: {"ok":true,...} or {"ok":false,"error":"why"}. One client at a time. */
#include "vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mv/daemon.h"
#include "mv/log.h"
#include "mv/util.h"

/* KVM stat names with a counterpart among MicroVisor's hypervisor counters (D2.3 6.3) */
static const struct {
    const char *kvm;
    const char *perfc;
} perfc_aliases[] = {
    {"exits", "vmexits"},
    {"pf_taken", "page faults"},
    {"tlb_flush", "domain page tlb flushes"},
    {"irq_injections", "interrupt injections"},
    {"insn_emulation", "instruction emulations"},
    {"hypercalls", "hypercalls"},
    {"halt_exits", "halt exits"},
};

int mv_control_open(struct mv_vm *vm, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        mv_err("control socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
        mv_err("control socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    chmod(path, 0600);
    vm->control_listen_fd = fd;
    return 0;
}

void mv_control_close(struct mv_vm *vm)
{
    if (vm->control_client_fd >= 0)
        close(vm->control_client_fd);
    if (vm->control_listen_fd >= 0) {
        close(vm->control_listen_fd);
        unlink(vm->cfg->control_socket);
    }
    vm->control_client_fd = vm->control_listen_fd = -1;
}

json_t *mv_vm_info_json(struct mv_vm *vm)
{
    const struct mv_vmm_config *cfg = vm->cfg;
    static const char *const kinds[] = {"", "payload", "pvh", "bzimage"};
    pthread_mutex_lock(&vm->lock);
    bool paused = vm->paused;
    pthread_mutex_unlock(&vm->lock);
    json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:i, s:s, s:i, s:I, s:b, s:s}", "name",
                          cfg->name ? cfg->name : "vm", "state", paused ? "paused" : "running",
                          "pid", (int)getpid(), "memory_bytes", (json_int_t)vm->ram_size, "vcpus",
                          (int)vm->nr_vcpus, "boot", kinds[vm->boot.kind], "boot_count",
                          (int)vm->boot_count, "uptime_ms",
                          (json_int_t)((mv_now_ns() - vm->started_ns) / 1000000), "pit",
                          !cfg->no_pit, "image", cfg->kernel ? cfg->kernel : cfg->payload);
    if (vm->serial_pty_path[0])
        json_object_set_new(o, "serial_pty", json_string(vm->serial_pty_path));
    json_t *dev = json_array();
    for (unsigned i = 0; i < vm->nr_virtio; i++) {
        bool disk = i < cfg->nr_disks;
        json_array_append_new(
            dev, json_pack("{s:s, s:s, s:I, s:i}", "type", disk ? "blk" : "net", "spec",
                           disk ? cfg->disks[i] : cfg->nets[i - cfg->nr_disks], "mmio_base",
                           (json_int_t)vm->virtio_base[i], "gsi", (int)vm->virtio_gsi[i]));
    }
    json_object_set_new(o, "devices", dev);
    return o;
}

static json_t *kvm_stats_json(const struct mv_kvm_stats *st, uint64_t **values_out)
{
    json_t *o = json_object();
    *values_out = NULL;
    if (st->fd < 0 || !st->data_words)
        return o;
    uint64_t *v = calloc(st->data_words, sizeof(*v));
    if (!v || mv_kvm_stats_read(st, v)) {
        free(v);
        return o;
    }
    for (uint32_t i = 0; i < st->nr_descs; i++) {
        const struct mv_kvm_stat_desc *d = &st->descs[i];
        json_t *val;
        if (d->size == 1) {
            val = json_integer((json_int_t)v[d->offset / 8]);
        } else {
            val = json_array();
            for (unsigned k = 0; k < d->size; k++)
                json_array_append_new(val, json_integer((json_int_t)v[d->offset / 8 + k]));
        }
        json_object_set_new(
            o, d->name,
            json_pack("{s:s, s:o}", "type", mv_kvm_stat_type_name(d->flags), "value", val));
    }
    *values_out = v;
    return o;
}

json_t *mv_vm_stats_json(struct mv_vm *vm)
{
    json_t *root = json_object();
    /* VMM exit counters: total and per vCPU */
    json_t *exits = json_object();
    for (int c = 0; c < MV_EXIT_NR; c++) {
        json_t *per = json_array();
        uint64_t total = 0;
        for (unsigned i = 0; i < vm->nr_vcpus; i++) {
            uint64_t x = __atomic_load_n(&vm->vcpus[i].exits[c], __ATOMIC_RELAXED);
            total += x;
            json_array_append_new(per, json_integer((json_int_t)x));
        }
        json_object_set_new(exits, mv_exit_counter_names[c],
                            json_pack("{s:I, s:o}", "total", (json_int_t)total, "vcpu", per));
    }
    json_object_set_new(root, "vmm_exits", exits);
    uint64_t *vals;
    json_object_set_new(root, "kvm_vm", kvm_stats_json(&vm->vm_stats, &vals));
    free(vals);
    json_t *vcpus = json_array();
    json_t *perfc = json_array();
    /* per-vCPU KVM stats, and counters in MicroVisor's TOTAL/CPUnn shape */
    uint64_t *per_vals[MV_VMM_MAX_VCPUS] = {0};
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        json_array_append_new(vcpus, kvm_stats_json(&vm->vcpus[i].stats, &per_vals[i]));
    const struct mv_kvm_stats *st0 = &vm->vcpus[0].stats;
    for (uint32_t d = 0; vm->nr_vcpus && d < st0->nr_descs; d++) {
        const struct mv_kvm_stat_desc *desc = &st0->descs[d];
        if (desc->size != 1 || (desc->flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE)
            continue;
        const char *name = desc->name;
        for (size_t a = 0; a < MV_ARRAY_SIZE(perfc_aliases); a++)
            if (!strcmp(perfc_aliases[a].kvm, desc->name))
                name = perfc_aliases[a].perfc;
        json_t *cpus = json_array();
        uint64_t total = 0;
        for (unsigned i = 0; i < vm->nr_vcpus; i++) {
            uint64_t x = per_vals[i] ? per_vals[i][desc->offset / 8] : 0;
            total += x;
            json_array_append_new(cpus, json_integer((json_int_t)x));
        }
        json_array_append_new(perfc,
                              json_pack("{s:s, s:s, s:I, s:o}", "name", name, "kvm", desc->name,
                                        "total", (json_int_t)total, "cpu", cpus));
    }
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        free(per_vals[i]);
    json_object_set_new(root, "kvm_vcpu", vcpus);
    json_object_set_new(root, "perfc", perfc);
    return root;
}

static json_t *control_dispatch(struct mv_vm *vm, const char *line)
{
    json_error_t je;
    json_t *req = json_loads(line, 0, &je);
    if (!req || !json_is_object(req)) {
        json_decref(req);
        return json_pack("{s:b, s:s}", "ok", 0, "error", "request is not a JSON object");
    }
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    json_t *rep = NULL;
    if (!cmd) {
        rep = json_pack("{s:b, s:s}", "ok", 0, "error", "missing \"cmd\"");
    } else if (!strcmp(cmd, "info")) {
        rep = mv_vm_info_json(vm);
    } else if (!strcmp(cmd, "stats")) {
        rep = mv_vm_stats_json(vm);
    } else if (!strcmp(cmd, "pause")) {
        mv_vm_pause(vm);
        rep = json_object();
    } else if (!strcmp(cmd, "resume")) {
        mv_vm_resume(vm);
        rep = json_object();
    } else if (!strcmp(cmd, "reboot")) {
        mv_info("control: reboot");
        mv_vm_resume(vm);
        mv_vm_signal_event(vm, MV_EV_RESET, 0);
        rep = json_object();
    } else if (!strcmp(cmd, "stop")) {
        if (json_is_true(json_object_get(req, "force"))) {
            mv_info("control: hard stop");
            mv_vm_signal_event(vm, MV_EV_EXIT, 0);
        } else {
            mv_info("control: stop");
            mv_daemon_request_stop();
        }
        rep = json_object();
    } else {
        rep = json_pack("{s:b, s:s}", "ok", 0, "error", "unknown cmd");
    }
    json_decref(req);
    if (!json_object_get(rep, "ok"))
        json_object_set_new(rep, "ok", json_true());
    return rep;
}

static void control_reply(struct mv_vm *vm, json_t *rep)
{
    char *s = json_dumps(rep, JSON_COMPACT);
    json_decref(rep);
    if (!s)
        return;
    size_t n = strlen(s);
    s[n] = '\n'; /* replace the NUL: one line per reply */
    /* the socket is non-blocking: a large stats reply waits for room, at most ~1 s in all */
    size_t off = 0;
    int waits = 0;
    while (off < n + 1) {
        ssize_t w = send(vm->control_client_fd, s + off, n + 1 - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR) && waits++ < 100) {
            struct pollfd p = {.fd = vm->control_client_fd, .events = POLLOUT};
            poll(&p, 1, 10);
            continue;
        }
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(s);
}

void mv_control_handle(struct mv_vm *vm, int fd)
{
    if (fd == vm->control_listen_fd) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
            return;
        if (vm->control_client_fd >= 0) {
            /* one client at a time: the newcomer is told so */
            static const char busy[] = "{\"ok\":false,\"error\":\"busy\"}\n";
            if (send(c, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0)
                mv_debug("control: %s", strerror(errno));
            close(c);
            return;
        }
        vm->control_client_fd = c;
        vm->control_len = 0;
        return;
    }
    ssize_t n = recv(fd, vm->control_buf + vm->control_len,
                     sizeof(vm->control_buf) - 1 - vm->control_len, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        close(fd);
        vm->control_client_fd = -1;
        return;
    }
    vm->control_len += (size_t)n;
    vm->control_buf[vm->control_len] = '\0';
    char *nl;
    while ((nl = strchr(vm->control_buf, '\n'))) {
        *nl = '\0';
        if (nl != vm->control_buf)
            control_reply(vm, control_dispatch(vm, vm->control_buf));
        size_t used = (size_t)(nl + 1 - vm->control_buf);
        memmove(vm->control_buf, nl + 1, vm->control_len - used + 1);
        vm->control_len -= used;
    }
    if (vm->control_len == sizeof(vm->control_buf) - 1) {
        control_reply(vm, json_pack("{s:b, s:s}", "ok", 0, "error", "request too long"));
        vm->control_len = 0;
    }
}
