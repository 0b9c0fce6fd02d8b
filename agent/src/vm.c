/* VM lifecycle: spawning, monitoring, re-adopting and querying mvvmm processes (mv/vm.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_* */
#endif
#include "mv/vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mv/agent_proto.h"
#include "mv/guests.h"
#include "mv/jsonline.h"
#include "mv/log.h"
#include "mv/util.h"
#include "mv/vm_args.h"
#include "mv/vm_cgroup.h"
#include "mv/vm_net.h"

#define VM_MAX           256
#define VMM_CALL_MS      1500 /* info */
#define VMM_CMD_MS       5000 /* pause, resume, reboot, stop */
#define VMM_REPLY_MAX    (1u << 20)
#define START_WAIT_MS    3000 /* for the control socket to answer after exec */
#define KILL_GRACE_MS    5000 /* after a hard stop, before SIGKILL (an ASan VMM exits slowly) */
#define CONSOLE_TAIL     2048
#define STOP_TIMEOUT_VMM 600000 /* mvvmm's own hard-stop deadline: the agent decides earlier */

struct vm_entry {
    char uuid[MV_AGENT_UUID_MAX + 1];
    json_t *spec;  /* the validated vm_start request */
    pid_t monitor; /* our child, 0 when not ours (adopted) or reaped */
    pid_t vmm_pid; /* last known mvvmm pid */
    bool live;     /* running at the last look: its end triggers the teardown */
    bool stopping, forced;
    bool cgroup_left; /* its removal failed (a process still inside): retried by the tick */
    uint64_t stop_deadline_ns, kill_deadline_ns;
    char cgroup[448];
};

struct mv_vms {
    struct mv_vm_config cfg;
    struct mv_cgroup_root cg;
    struct vm_entry *e[VM_MAX];
    unsigned n;
};

static const char *const state_names[] = {"BUILD",        "ACTIVE",  "",     "PAUSED",
                                          "POWERING-OFF", "STOPPED", "ERROR"};

int mv_vm_state_code(const char *state)
{
    for (size_t i = 0; i < MV_ARRAY_SIZE(state_names); i++)
        if (state_names[i][0] && strcmp(state, state_names[i]) == 0)
            return (int)i;
    return 0;
}

const char *mv_vm_exit_state(int exited, int code, char *reason, size_t cap)
{
    if (!exited) {
        snprintf(reason, cap, "killed by signal %d (%s)", code, strsignal(code));
        return "ERROR";
    }
    if (code == 125) {
        snprintf(reason, cap, "guest crashed (exit status 125)");
        return "ERROR";
    }
    if (code == 1) {
        snprintf(reason, cap, "VMM setup error (exit status 1, see its log)");
        return "ERROR";
    }
    if (code == 0)
        snprintf(reason, cap, "powered off (exit status 0)");
    else
        snprintf(reason, cap, "guest exit with status %d", code);
    return "STOPPED";
}

void mv_vm_config_defaults(struct mv_vm_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->run_dir, sizeof c->run_dir, "/run/mvkvm/vm");
    snprintf(c->cgroup_mode, sizeof c->cgroup_mode, "auto");
    snprintf(c->cgroup_fs, sizeof c->cgroup_fs, "/sys/fs/cgroup");
    snprintf(c->cgroup_parent, sizeof c->cgroup_parent, "mvkvm");
    snprintf(c->procfs, sizeof c->procfs, "/proc");
    c->stop_timeout_ms = 10000;
}

/* ---- small helpers ---- */

static void vm_path(const struct mv_vms *vms, const char *uuid, const char *suffix, char *out,
                    size_t cap)
{
    if (mv_vm_file_path(vms->cfg.run_dir, uuid, suffix, out, cap) != 0)
        out[0] = 0;
}

static int mkdir_p(const char *path)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(tmp, 0750) == 0 || errno == EEXIST ? 0 : -errno;
}

/* Is pid an mvvmm serving this control socket? Guards every signal against pid reuse. */
static bool pid_is_vmm(const struct mv_vms *vms, pid_t pid, const char *sock)
{
    if (pid <= 0)
        return false;
    char p[128], buf[8192];
    snprintf(p, sizeof p, "%s/%d/cmdline", vms->cfg.procfs, (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    /* A zombie has an empty cmdline; arguments are NUL-separated. */
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1)
        if (strcmp(buf + off, sock) == 0)
            return true;
    return false;
}

/* One control-socket command; NULL on failure, with why in vmm_why (the last failure). */
static char vmm_why[256];

static json_t *vmm_call(const char *sock, const char *cmd, bool force)
{
    /* pause/resume/reboot wait for every vCPU to leave the guest: slow under emulation. */
    int timeout_ms = strcmp(cmd, "info") == 0 ? VMM_CALL_MS : VMM_CMD_MS;
    json_t *req = json_pack("{s:s}", "cmd", cmd), *rep = NULL;
    if (force)
        json_object_set_new(req, "force", json_true());
    char *err = vmm_why;
    size_t errlen = sizeof vmm_why;
    uint64_t deadline = mv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        int rc = mv_jsonline_call(sock, req, VMM_REPLY_MAX, timeout_ms, &rep, err, errlen);
        if (rc != 0)
            break;
        if (json_is_true(json_object_get(rep, "ok"))) {
            json_decref(req);
            return rep;
        }
        /* mvvmm serves one client at a time: another one (a stats scan, or our own previous
         * connection not yet reaped by its loop) gets "busy". Try again shortly. */
        const char *e = json_string_value(json_object_get(rep, "error"));
        bool busy = e && strcmp(e, "busy") == 0;
        snprintf(err, errlen, "%s", e ? e : "refused");
        json_decref(rep);
        rep = NULL;
        if (!busy || mv_now_ns() >= deadline)
            break;
        mv_sleep_ns(5000000);
    }
    json_decref(req);
    return NULL;
}

static int write_file_atomic(const char *path, const char *text)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int e = w < 0 ? errno : 0;
    close(fd);
    if (w != (ssize_t)n || rename(tmp, path) != 0) {
        e = e ? e : errno ? errno : EIO;
        unlink(tmp);
        return -e;
    }
    return 0;
}

static int save_record(const struct mv_vms *vms, const struct vm_entry *e)
{
    char path[300];
    vm_path(vms, e->uuid, ".json", path, sizeof path);
    json_t *o = json_pack("{s:O, s:i, s:I}", "spec", e->spec, "vmm_pid", (int)e->vmm_pid,
                          "saved_realtime_ns", (json_int_t)mv_realtime_ns());
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int rc = s ? write_file_atomic(path, s) : -ENOMEM;
    free(s);
    return rc;
}

static struct vm_entry *find_vm(struct mv_vms *vms, const char *uuid)
{
    for (unsigned i = 0; i < vms->n; i++)
        if (strcmp(vms->e[i]->uuid, uuid) == 0)
            return vms->e[i];
    return NULL;
}

static void drop_vm(struct mv_vms *vms, struct vm_entry *e)
{
    for (unsigned i = 0; i < vms->n; i++) {
        if (vms->e[i] != e)
            continue;
        vms->e[i] = vms->e[--vms->n];
        json_decref(e->spec);
        free(e);
        return;
    }
}

static struct vm_entry *add_vm(struct mv_vms *vms, const char *uuid, json_t *spec)
{
    if (vms->n == VM_MAX)
        return NULL;
    struct vm_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->uuid, sizeof e->uuid, "%s", uuid);
    e->spec = json_incref(spec);
    vms->e[vms->n++] = e;
    return e;
}

static void reap_monitor(struct vm_entry *e)
{
    if (e->monitor > 0 && waitpid(e->monitor, NULL, WNOHANG) == e->monitor)
        e->monitor = 0;
}

/* The exit record: 1 with state and reason, 0 if there is none. */
static int read_exit(const struct mv_vms *vms, const struct vm_entry *e, const char **state,
                     char *reason, size_t cap, json_t **rec)
{
    char path[300];
    vm_path(vms, e->uuid, ".exit", path, sizeof path);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o)
        return 0;
    json_t *st = json_object_get(o, "status"), *sig = json_object_get(o, "signal");
    if (json_is_integer(st))
        *state = mv_vm_exit_state(1, (int)json_integer_value(st), reason, cap);
    else if (json_is_integer(sig))
        *state = mv_vm_exit_state(0, (int)json_integer_value(sig), reason, cap);
    else
        *state = "ERROR", snprintf(reason, cap, "unreadable exit record");
    if (rec)
        *rec = o;
    else
        json_decref(o);
    return 1;
}

/* What a VM ended with: tear down its TAPs/bridges and cgroup (idempotent). */
static void teardown(struct mv_vms *vms, struct vm_entry *e)
{
    mv_vm_net_down(vms->cfg.uplink, e->uuid, json_object_get(e->spec, "nics"));
    e->cgroup_left = mv_cgroup_vm_remove(&vms->cg, e->uuid) != 0;
}

/* The live state of a VM: from mvvmm's info when it answers, else from its process and exit
 * record. *info gets mvvmm's info reply (or NULL). A VM seen ending is torn down here. */
static const char *probe(struct mv_vms *vms, struct vm_entry *e, json_t **info, char *reason,
                         size_t cap)
{
    char sock[300];
    vm_path(vms, e->uuid, ".sock", sock, sizeof sock);
    reason[0] = 0;
    *info = NULL;
    reap_monitor(e);
    json_t *in = vmm_call(sock, "info", false);
    if (in) {
        json_t *pid = json_object_get(in, "pid");
        if (json_is_integer(pid))
            e->vmm_pid = (pid_t)json_integer_value(pid);
        e->live = true;
        *info = in;
        if (e->stopping)
            return "POWERING-OFF";
        const char *s = json_string_value(json_object_get(in, "state"));
        return s && strcmp(s, "paused") == 0 ? "PAUSED" : "ACTIVE";
    }
    if (pid_is_vmm(vms, e->vmm_pid, sock)) {
        e->live = true;
        return e->stopping ? "POWERING-OFF" : "BUILD";
    }
    const char *state;
    if (!read_exit(vms, e, &state, reason, cap, NULL)) {
        if (e->monitor > 0)
            return "BUILD"; /* between fork and exec */
        state = "ERROR";
        snprintf(reason, cap, "the VMM is gone and left no exit record");
    }
    if (e->live) {
        mv_info("vm %s: VMM %d ended: %s", e->uuid, (int)e->vmm_pid, reason);
        teardown(vms, e);
    }
    e->live = false;
    e->stopping = e->forced = false;
    return state;
}

/* ---- the monitor: between the agent and mvvmm ---- */

static void write_all(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0 && errno != EINTR)
            return;
        if (w > 0)
            s += w, n -= (size_t)w;
    }
}

/* Runs in the forked child: never returns. Reports "P<pid>" (mvvmm forked), then from mvvmm's
 * side "C<errno>" (joining the cgroup failed) or "E<errno>" (exec failed) on status_fd. */
static void monitor_main(const char *log, const char *exitf, const char *sock, const char *cgroup,
                         char **argv, int status_fd)
{
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, 0);
        close(fd);
    }
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    /* Nothing of the agent's (its port, sockets) may stay open in the VM's processes. */
    for (int f = 3; f < 1024; f++)
        if (f != status_fd)
            close(f);
    char msg[32];
    pid_t pid = fork();
    if (pid == 0) {
        setsid(); /* mvvmm's own session and process group */
        /* Only mvvmm joins the cgroup (its threads inherit it): the monitor outlives it for a
         * moment, and a cgroup with a process left cannot be removed. */
        int rc = cgroup[0] ? mv_cgroup_attach(cgroup, 0) : 0;
        if (rc != 0) {
            snprintf(msg, sizeof msg, "C%d\n", -rc);
            write_all(status_fd, msg);
            _exit(126);
        }
        execv(argv[0], argv);
        snprintf(msg, sizeof msg, "E%d\n", errno);
        write_all(status_fd, msg);
        _exit(127);
    }
    if (pid < 0) {
        snprintf(msg, sizeof msg, "E%d\n", errno);
        write_all(status_fd, msg);
        _exit(1);
    }
    snprintf(msg, sizeof msg, "P%d\n", (int)pid);
    write_all(status_fd, msg);
    close(status_fd);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            _exit(1);
    char rec[128], tmp[320];
    if (WIFSIGNALED(st)) {
        snprintf(rec, sizeof rec, "{\"pid\":%d,\"signal\":%d}\n", (int)pid, WTERMSIG(st));
        unlink(sock); /* a killed mvvmm leaves its socket behind */
    } else {
        snprintf(rec, sizeof rec, "{\"pid\":%d,\"status\":%d}\n", (int)pid, WEXITSTATUS(st));
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", exitf);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd >= 0) {
        write_all(fd, rec);
        close(fd);
        rename(tmp, exitf);
    }
    _exit(0);
}

/* Forks the monitor and waits for its report. 0 with the pids, or -errno with a reason. */
static int spawn_vmm(struct mv_vms *vms, struct vm_entry *e, char **argv, char *err, size_t errlen)
{
    char log[300], exitf[300], sock[300];
    vm_path(vms, e->uuid, ".log", log, sizeof log);
    vm_path(vms, e->uuid, ".exit", exitf, sizeof exitf);
    vm_path(vms, e->uuid, ".sock", sock, sizeof sock);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return snprintf(err, errlen, "pipe: %s", strerror(errno)), -errno;
    fflush(NULL);
    pid_t mon = fork();
    if (mon < 0) {
        int rc = -errno;
        close(pfd[0]);
        close(pfd[1]);
        return snprintf(err, errlen, "fork: %s", strerror(-rc)), rc;
    }
    if (mon == 0) {
        close(pfd[0]);
        monitor_main(log, exitf, sock, e->cgroup, argv, pfd[1]);
    }
    close(pfd[1]);
    e->monitor = mon;
    char buf[128];
    size_t n = 0;
    uint64_t deadline = mv_now_ns() + (uint64_t)START_WAIT_MS * 1000000ull;
    for (;;) {
        uint64_t now = mv_now_ns();
        if (now >= deadline)
            break;
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
            continue;
        ssize_t r = read(pfd[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break; /* EOF: the monitor reported and mvvmm exec'd (close-on-exec) */
        n += (size_t)r;
        if (n == sizeof buf - 1)
            break;
    }
    close(pfd[0]);
    buf[n] = 0;
    int perr = 0, cerr = 0;
    pid_t vpid = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == 'P')
            vpid = (pid_t)atoi(line + 1);
        else if (line[0] == 'E')
            perr = atoi(line + 1);
        else if (line[0] == 'C')
            cerr = atoi(line + 1);
    }
    if (cerr)
        return snprintf(err, errlen, "joining cgroup %s: %s", e->cgroup, strerror(cerr)), -cerr;
    if (perr)
        return snprintf(err, errlen, "starting %s: %s", argv[0], strerror(perr)), -perr;
    if (vpid <= 0)
        return snprintf(err, errlen, "the VMM monitor did not report"), -EIO;
    e->vmm_pid = vpid;
    return 0;
}

/* ---- adoption ---- */

static int adopt_one(struct mv_vms *vms, const char *uuid)
{
    char path[300], why[256];
    vm_path(vms, uuid, ".json", path, sizeof path);
    json_error_t je;
    json_t *rec = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    json_t *spec = json_object_get(rec, "spec");
    char *text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    json_t *valid = NULL;
    /* The record is re-validated like a request: a damaged file must not launch anything. */
    if (!text ||
        mv_agent_request_parse(MV_AGENT_OP_VM_START, text, strlen(text), &valid, why, sizeof why) !=
            0 ||
        strcmp(json_string_value(json_object_get(valid, "uuid")), uuid) != 0) {
        mv_warn("%s: not a VM record, ignored%s%s", path, text ? ": " : "", text ? why : "");
        free(text);
        json_decref(valid);
        json_decref(rec);
        return -EINVAL;
    }
    free(text);
    struct vm_entry *e = add_vm(vms, uuid, valid);
    json_decref(valid);
    if (!e) {
        json_decref(rec);
        return -ENOMEM;
    }
    json_t *pid = json_object_get(rec, "vmm_pid");
    e->vmm_pid = json_is_integer(pid) ? (pid_t)json_integer_value(pid) : 0;
    json_decref(rec);
    char reason[160];
    json_t *info;
    e->live = true; /* so that a VM found dead is torn down once */
    const char *state = probe(vms, e, &info, reason, sizeof reason);
    json_decref(info);
    if (e->live) {
        if (vms->cg.kind != MV_CGROUP_NONE)
            snprintf(e->cgroup, sizeof e->cgroup, "%s/%s/%s", vms->cg.path, vms->cg.parent, uuid);
        mv_info("vm %s: re-adopted, VMM pid %d, %s", uuid, (int)e->vmm_pid, state);
    } else {
        mv_info("vm %s: known, not running (%s%s%s)", uuid, state, reason[0] ? ": " : "", reason);
    }
    return 0;
}

int mv_vms_adopt(struct mv_vms *vms)
{
    DIR *d = opendir(vms->cfg.run_dir);
    if (!d)
        return (int)vms->n;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || len - 5 > MV_AGENT_UUID_MAX || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        char uuid[MV_AGENT_UUID_MAX + 1];
        snprintf(uuid, sizeof uuid, "%.*s", (int)(len - 5), de->d_name);
        if (!find_vm(vms, uuid))
            adopt_one(vms, uuid);
    }
    closedir(d);
    return (int)vms->n;
}

int mv_vms_create(const struct mv_vm_config *c, struct mv_vms **out, char *err, size_t errlen)
{
    *out = NULL;
    struct mv_vms *vms = calloc(1, sizeof *vms);
    if (!vms)
        return snprintf(err, errlen, "out of memory"), -ENOMEM;
    vms->cfg = *c;
    if (!vms->cfg.vmm_path[0]) {
        char self[240];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = 0;
            char *slash = strrchr(self, '/');
            if (slash)
                *slash = 0;
            snprintf(vms->cfg.vmm_path, sizeof vms->cfg.vmm_path, "%s/mvvmm", self);
        } else {
            snprintf(vms->cfg.vmm_path, sizeof vms->cfg.vmm_path, "/usr/bin/mvvmm");
        }
    }
    if (mv_cgroup_detect(c->cgroup_mode, c->cgroup_fs, c->cgroup_parent, &vms->cg, err, errlen) !=
        0) {
        free(vms);
        return -EINVAL;
    }
    mv_debug("VMs: mvvmm %s, cgroup %s %s", vms->cfg.vmm_path, mv_cgroup_kind_name(vms->cg.kind),
             vms->cg.path);
    mv_vms_adopt(vms);
    *out = vms;
    return 0;
}

void mv_vms_destroy(struct mv_vms *vms)
{
    if (!vms)
        return;
    for (unsigned i = 0; i < vms->n; i++) {
        json_decref(vms->e[i]->spec);
        free(vms->e[i]);
    }
    free(vms);
}

unsigned mv_vms_count(const struct mv_vms *vms)
{
    return vms ? vms->n : 0;
}

/* ---- stopping ---- */

/* A hard stop: through the control socket, or SIGKILL when it does not answer. */
static void hard_stop(struct mv_vms *vms, struct vm_entry *e)
{
    char sock[300];
    vm_path(vms, e->uuid, ".sock", sock, sizeof sock);
    json_t *r = vmm_call(sock, "stop", true);
    if (!r && pid_is_vmm(vms, e->vmm_pid, sock)) {
        mv_warn("vm %s: VMM %d does not answer: SIGKILL", e->uuid, (int)e->vmm_pid);
        kill(e->vmm_pid, SIGKILL);
    }
    json_decref(r);
    e->forced = true;
    e->kill_deadline_ns = mv_now_ns() + (uint64_t)KILL_GRACE_MS * 1000000ull;
}

void mv_vms_tick(struct mv_vms *vms)
{
    if (!vms)
        return;
    uint64_t now = mv_now_ns();
    for (unsigned i = 0; i < vms->n; i++) {
        struct vm_entry *e = vms->e[i];
        char sock[300];
        vm_path(vms, e->uuid, ".sock", sock, sizeof sock);
        reap_monitor(e);
        if (e->cgroup_left && !e->live) {
            int rc = mv_cgroup_vm_remove(&vms->cg, e->uuid);
            e->cgroup_left = rc != 0;
            if (rc != 0 && rc != -EBUSY)
                mv_warn("vm %s: removing its cgroup: %s", e->uuid, strerror(-rc));
        }
        if (!e->live)
            continue;
        bool alive = pid_is_vmm(vms, e->vmm_pid, sock);
        if (alive && e->stopping && !e->forced && now >= e->stop_deadline_ns) {
            mv_info("vm %s: graceful stop timed out: hard stop", e->uuid);
            hard_stop(vms, e);
        } else if (alive && e->forced && now >= e->kill_deadline_ns) {
            mv_warn("vm %s: VMM %d still there after a hard stop: SIGKILL", e->uuid,
                    (int)e->vmm_pid);
            kill(e->vmm_pid, SIGKILL);
            e->kill_deadline_ns = now + (uint64_t)KILL_GRACE_MS * 1000000ull;
        } else if (!alive) {
            char reason[160];
            json_t *info;
            probe(vms, e, &info, reason, sizeof reason);
            json_decref(info);
        }
    }
}

/* Waits up to ms for the VMM to end (cheap /proc checks). */
static bool wait_gone(struct mv_vms *vms, struct vm_entry *e, unsigned ms)
{
    char sock[300];
    vm_path(vms, e->uuid, ".sock", sock, sizeof sock);
    uint64_t deadline = mv_now_ns() + (uint64_t)ms * 1000000ull;
    while (pid_is_vmm(vms, e->vmm_pid, sock)) {
        if (mv_now_ns() >= deadline)
            return false;
        mv_sleep_ns(10000000);
    }
    /* The monitor writes the exit record right after the VMM ends. */
    for (int i = 0; i < 50; i++) {
        char exitf[300];
        vm_path(vms, e->uuid, ".exit", exitf, sizeof exitf);
        if (access(exitf, F_OK) == 0)
            break;
        mv_sleep_ns(10000000);
    }
    return true;
}

/* ---- InstanceInformation ---- */

static void cpus_to_list(const cpu_set_t *set, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = 0;
    for (int c = 0; c < CPU_SETSIZE && off < cap; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int hi = c;
        while (hi + 1 < CPU_SETSIZE && CPU_ISSET(hi + 1, set))
            hi++;
        int w = hi > c ? snprintf(out + off, cap - off, "%s%d-%d", off ? "," : "", c, hi)
                       : snprintf(out + off, cap - off, "%s%d", off ? "," : "", c);
        if (w < 0 || (size_t)w >= cap - off)
            break;
        off += (size_t)w;
        c = hi;
    }
}

/* vCPU threads ("vcpuN"): CPU time, affinity and last CPU, into info. */
static void sample_vcpus(const struct mv_vms *vms, pid_t pid, unsigned nvcpus, json_t *info)
{
    json_t *pinned = json_array(), *last = json_array();
    uint64_t total = 0;
    char aff[MV_GUEST_MAX_VCPUS][128];
    int lastcpu[MV_GUEST_MAX_VCPUS];
    for (unsigned i = 0; i < MV_GUEST_MAX_VCPUS; i++)
        aff[i][0] = 0, lastcpu[i] = -1;
    long tck = sysconf(_SC_CLK_TCK);
    char path[512];
    snprintf(path, sizeof path, "%s/%d/task", vms->cfg.procfs, (int)pid);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char buf[1024], extra;
        unsigned idx;
        snprintf(path, sizeof path, "%s/%d/task/%s/comm", vms->cfg.procfs, (int)pid, de->d_name);
        if (mv_read_file(path, buf, sizeof buf) <= 0 ||
            sscanf(buf, "vcpu%u%c", &idx, &extra) != 2 || extra != '\n' ||
            idx >= MV_GUEST_MAX_VCPUS)
            continue;
        snprintf(path, sizeof path, "%s/%d/task/%s/stat", vms->cfg.procfs, (int)pid, de->d_name);
        uint64_t ticks;
        int cpu;
        if (mv_read_file(path, buf, sizeof buf) > 0 &&
            mv_guests_parse_task_stat(buf, &ticks, &cpu) == 0) {
            total += ticks * (1000000000ull / (uint64_t)(tck > 0 ? tck : 100));
            lastcpu[idx] = cpu;
        }
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(atoi(de->d_name), sizeof set, &set) == 0)
            cpus_to_list(&set, aff[idx], sizeof aff[idx]);
    }
    if (d)
        closedir(d);
    for (unsigned i = 0; i < nvcpus && i < MV_GUEST_MAX_VCPUS; i++) {
        json_array_append_new(pinned, json_string(aff[i]));
        json_array_append_new(last, json_integer(lastcpu[i]));
    }
    json_object_set_new(info, "cpu_time_ns", json_integer((json_int_t)total));
    json_object_set_new(info, "pinned", pinned);
    json_object_set_new(info, "last_cpu", last);
}

static uint64_t vmm_rss_kb(const struct mv_vms *vms, pid_t pid)
{
    char path[128], buf[4096];
    snprintf(path, sizeof path, "%s/%d/status", vms->cfg.procfs, (int)pid);
    if (mv_read_file(path, buf, sizeof buf) <= 0)
        return 0;
    const char *p = strstr(buf, "\nVmRSS:");
    unsigned long long kb;
    return p && sscanf(p + 7, "%llu", &kb) == 1 ? kb : 0;
}

/* The last bytes of the console, as text JSON can carry (non-printables become '.'). */
static json_t *console_tail(const struct mv_vms *vms, const char *uuid)
{
    char path[300], buf[CONSOLE_TAIL + 1];
    vm_path(vms, uuid, ".console", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return json_string("");
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > CONSOLE_TAIL ? end - CONSOLE_TAIL : 0;
    ssize_t n = pread(fd, buf, CONSOLE_TAIL, start);
    close(fd);
    if (n < 0)
        n = 0;
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f)
            buf[i] = c == '\r' ? '\n' : '.';
    }
    return json_stringn(buf, (size_t)n);
}

static json_t *instance_info(struct mv_vms *vms, struct vm_entry *e, bool with_console)
{
    char reason[160];
    json_t *vi;
    const char *state = probe(vms, e, &vi, reason, sizeof reason);
    const char *name = json_string_value(json_object_get(e->spec, "name"));
    json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "uuid", e->uuid, "name", name ? name : "",
                          "state", state, "state_code", mv_vm_state_code(state));
    bool running = e->live;
    json_int_t mem = vi ? json_integer_value(json_object_get(vi, "memory_bytes")) : 0;
    json_int_t nv = vi ? json_integer_value(json_object_get(vi, "vcpus")) : 0;
    json_object_set_new(o, "max_mem_kb", json_integer(running ? mem / 1024 : 0));
    json_object_set_new(
        o, "mem_kb",
        json_integer(running ? (json_int_t)MV_MIN(vmm_rss_kb(vms, e->vmm_pid), (uint64_t)mem / 1024)
                             : 0));
    json_object_set_new(o, "num_cpu", json_integer(running ? nv : 0));
    json_object_set_new(o, "pid", json_integer(running ? e->vmm_pid : 0));
    if (running)
        sample_vcpus(vms, e->vmm_pid, (unsigned)(nv > 0 ? nv : 0), o);
    else
        json_object_set_new(o, "cpu_time_ns", json_integer(0));
    if (vi) {
        static const char *const copy[] = {"boot_count", "uptime_ms", "devices", "image"};
        for (size_t i = 0; i < MV_ARRAY_SIZE(copy); i++) {
            json_t *v = json_object_get(vi, copy[i]);
            if (v)
                json_object_set(o, copy[i], v);
        }
    }
    json_t *rec;
    const char *xs;
    char xr[160];
    if (!running && read_exit(vms, e, &xs, xr, sizeof xr, &rec)) {
        json_t *v;
        if ((v = json_object_get(rec, "status")))
            json_object_set(o, "exit_status", v);
        if ((v = json_object_get(rec, "signal")))
            json_object_set(o, "exit_signal", v);
        json_decref(rec);
    }
    if (reason[0])
        json_object_set_new(o, "exit_reason", json_string(reason));
    if (e->cgroup[0] && running)
        json_object_set_new(o, "cgroup", json_string(e->cgroup));
    if (with_console)
        json_object_set_new(o, "console_tail", console_tail(vms, e->uuid));
    json_decref(vi);
    return o;
}

/* ---- ops ---- */

static struct vm_entry *need_vm(struct mv_vms *vms, json_t *req, char *err, size_t errlen)
{
    const char *uuid = json_string_value(json_object_get(req, "uuid"));
    struct vm_entry *e = find_vm(vms, uuid);
    if (!e) {
        mv_vms_adopt(vms); /* started by an earlier agent and not yet seen */
        e = find_vm(vms, uuid);
    }
    if (!e)
        snprintf(err, errlen, "no VM %s on this host", uuid);
    return e;
}

static int start_reply(struct mv_vms *vms, struct vm_entry *e, bool existing, json_t **rep)
{
    char reason[160];
    json_t *vi;
    const char *state = probe(vms, e, &vi, reason, sizeof reason);
    json_decref(vi);
    *rep = json_pack("{s:s, s:s, s:i, s:b}", "uuid", e->uuid, "state", state, "pid",
                     e->live ? (int)e->vmm_pid : 0, "already_running", existing);
    if (reason[0])
        json_object_set_new(*rep, "exit_reason", json_string(reason));
    return 0;
}

static int op_start(struct mv_vms *vms, json_t *req, json_t **rep, char *err, size_t errlen)
{
    const char *uuid = json_string_value(json_object_get(req, "uuid"));
    struct vm_entry *e = find_vm(vms, uuid);
    if (!e && mv_vms_adopt(vms) >= 0)
        e = find_vm(vms, uuid);
    char sock[300], path[300];
    vm_path(vms, uuid, ".sock", sock, sizeof sock);
    if (e) {
        char reason[160];
        json_t *vi;
        probe(vms, e, &vi, reason, sizeof reason);
        json_decref(vi);
        if (e->live)
            return start_reply(vms, e, true, rep); /* never a second VMM for a uuid */
    } else {
        /* A VMM with this uuid that no record describes (started by hand): leave it alone. */
        json_t *vi = vmm_call(sock, "info", false);
        if (vi) {
            json_decref(vi);
            return snprintf(err, errlen, "a VMM not started by this agent serves %s", sock),
                   -EEXIST;
        }
    }
    const char *img = json_string_value(json_object_get(req, "payload"));
    if (!img)
        img = json_string_value(json_object_get(req, "kernel"));
    if (access(img, R_OK) != 0)
        return snprintf(err, errlen, "boot image %s: %s", img, strerror(errno)), -ENOENT;
    int rc = mkdir_p(vms->cfg.run_dir);
    if (rc != 0)
        return snprintf(err, errlen, "run directory %s: %s", vms->cfg.run_dir, strerror(-rc)), rc;

    struct mv_vm_host h = {
        .vmm_path = vms->cfg.vmm_path,
        .run_dir = vms->cfg.run_dir,
        .aoe_socket = vms->cfg.aoe_socket,
        .aoe_ifname = vms->cfg.aoe_ifname,
        .stop_timeout_ms = STOP_TIMEOUT_VMM,
    };
    char **argv;
    if ((rc = mv_vm_build_argv(&h, req, &argv, err, errlen)) != 0)
        return rc;
    bool created = false;
    if (!e) {
        if (!(e = add_vm(vms, uuid, req))) {
            mv_vm_argv_free(argv);
            return snprintf(err, errlen, "too many VMs"), -ENOSPC;
        }
        created = true;
    } else {
        json_decref(e->spec); /* a restart runs the spec of this request */
        e->spec = json_incref(req);
    }
    e->stopping = e->forced = false;
    /* A fresh start: the previous run's exit record, socket and console go. */
    static const char *const stale[] = {".exit", ".sock", ".console"};
    for (size_t i = 0; i < MV_ARRAY_SIZE(stale); i++) {
        vm_path(vms, uuid, stale[i], path, sizeof path);
        unlink(path);
    }
    rc = mv_cgroup_vm_create(&vms->cg, uuid, json_string_value(json_object_get(req, "cpuset")),
                             e->cgroup, sizeof e->cgroup, err, errlen);
    if (rc == 0 &&
        (rc = mv_vm_net_up(vms->cfg.uplink, uuid, json_object_get(req, "nics"), err, errlen)) ==
            0 &&
        (rc = save_record(vms, e)) != 0)
        snprintf(err, errlen, "writing the VM record: %s", strerror(-rc));
    if (rc == 0)
        rc = spawn_vmm(vms, e, argv, err, errlen);
    mv_vm_argv_free(argv);
    if (rc != 0) {
        mv_warn("vm %s: start failed: %s", uuid, err);
        reap_monitor(e);
        teardown(vms, e);
        vm_path(vms, uuid, ".json", path, sizeof path);
        if (created) {
            unlink(path);
            drop_vm(vms, e);
        }
        return rc;
    }
    e->live = true;
    save_record(vms, e);
    mv_info("vm %s: started, VMM pid %d%s%s", uuid, (int)e->vmm_pid, e->cgroup[0] ? " in " : "",
            e->cgroup);
    /* Wait for the control socket so the reply carries the VMM's own state. */
    uint64_t deadline = mv_now_ns() + (uint64_t)START_WAIT_MS * 1000000ull;
    while (mv_now_ns() < deadline && pid_is_vmm(vms, e->vmm_pid, sock) && access(sock, F_OK) != 0)
        mv_sleep_ns(5000000);
    return start_reply(vms, e, false, rep);
}

static int op_stop(struct mv_vms *vms, json_t *req, json_t **rep, char *err, size_t errlen)
{
    struct vm_entry *e = need_vm(vms, req, err, errlen);
    if (!e)
        return -ENOENT;
    char reason[160], sock[300];
    json_t *vi;
    probe(vms, e, &vi, reason, sizeof reason);
    json_decref(vi);
    vm_path(vms, e->uuid, ".sock", sock, sizeof sock);
    if (e->live) {
        json_t *t = json_object_get(req, "timeout_ms");
        uint64_t timeout = t ? (uint64_t)json_integer_value(t) : vms->cfg.stop_timeout_ms;
        if (json_is_true(json_object_get(req, "force")) || timeout == 0) {
            mv_info("vm %s: hard stop", e->uuid);
            e->stopping = true;
            hard_stop(vms, e);
        } else if (!e->stopping) {
            mv_info("vm %s: stop (power button, hard stop in %llu ms)", e->uuid,
                    (unsigned long long)timeout);
            json_t *r = vmm_call(sock, "stop", false);
            e->stopping = true;
            e->stop_deadline_ns = mv_now_ns() + timeout * 1000000ull;
            if (!r)
                hard_stop(vms, e);
            json_decref(r);
        }
        wait_gone(vms, e, 300); /* a quick exit shows in the reply */
    }
    json_t *o = instance_info(vms, e, false);
    *rep = json_pack("{s:s, s:O}", "uuid", e->uuid, "state", json_object_get(o, "state"));
    json_decref(o);
    return 0;
}

static int op_simple(struct mv_vms *vms, json_t *req, const char *cmd, json_t **rep, char *err,
                     size_t errlen)
{
    struct vm_entry *e = need_vm(vms, req, err, errlen);
    if (!e)
        return -ENOENT;
    char reason[160], sock[300];
    json_t *vi;
    const char *state = probe(vms, e, &vi, reason, sizeof reason);
    json_decref(vi);
    if (!e->live || e->stopping)
        return snprintf(err, errlen, "VM %s is %s", e->uuid, state), -EINVAL;
    vm_path(vms, e->uuid, ".sock", sock, sizeof sock);
    json_t *r = vmm_call(sock, cmd, false);
    if (!r)
        return snprintf(err, errlen, "VM %s: the VMM did not accept \"%s\": %s", e->uuid, cmd,
                        vmm_why),
               -EREMOTEIO;
    json_decref(r);
    mv_info("vm %s: %s", e->uuid, cmd);
    state = probe(vms, e, &vi, reason, sizeof reason);
    json_decref(vi);
    *rep = json_pack("{s:s, s:s}", "uuid", e->uuid, "state", state);
    return 0;
}

static int op_delete(struct mv_vms *vms, json_t *req, json_t **rep, char *err, size_t errlen)
{
    struct vm_entry *e = need_vm(vms, req, err, errlen);
    if (!e)
        return -ENOENT;
    char reason[160], sock[300], path[300];
    json_t *vi;
    probe(vms, e, &vi, reason, sizeof reason);
    json_decref(vi);
    vm_path(vms, e->uuid, ".sock", sock, sizeof sock);
    if (e->live) {
        hard_stop(vms, e);
        if (!wait_gone(vms, e, KILL_GRACE_MS)) {
            if (pid_is_vmm(vms, e->vmm_pid, sock))
                kill(e->vmm_pid, SIGKILL);
            if (!wait_gone(vms, e, 1000))
                return snprintf(err, errlen, "VM %s: VMM %d does not end", e->uuid,
                                (int)e->vmm_pid),
                       -EBUSY;
        }
        probe(vms, e, &vi, reason, sizeof reason);
        json_decref(vi);
    }
    teardown(vms, e);
    static const char *const files[] = {".json", ".sock", ".console", ".exit", ".log"};
    for (size_t i = 0; i < MV_ARRAY_SIZE(files); i++) {
        vm_path(vms, e->uuid, files[i], path, sizeof path);
        unlink(path);
    }
    mv_info("vm %s: deleted", e->uuid);
    *rep = json_pack("{s:s, s:b}", "uuid", e->uuid, "deleted", 1);
    reap_monitor(e);
    drop_vm(vms, e);
    return 0;
}

static int op_list(struct mv_vms *vms, json_t **rep)
{
    mv_vms_adopt(vms);
    json_t *arr = json_array();
    for (unsigned i = 0; i < vms->n; i++) {
        json_t *o = instance_info(vms, vms->e[i], false);
        json_object_set_new(o, "managed", json_true());
        json_array_append_new(arr, o);
    }
    /* VMMs in the run directory that no record describes (started by hand, or by a tool). */
    DIR *d = opendir(vms->cfg.run_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || len - 5 > MV_AGENT_UUID_MAX || strcmp(de->d_name + len - 5, ".sock") != 0)
            continue;
        char uuid[MV_AGENT_UUID_MAX + 1], sock[300];
        snprintf(uuid, sizeof uuid, "%.*s", (int)(len - 5), de->d_name);
        if (find_vm(vms, uuid))
            continue;
        vm_path(vms, uuid, ".sock", sock, sizeof sock);
        json_t *vi = vmm_call(sock, "info", false);
        if (!vi)
            continue;
        const char *s = json_string_value(json_object_get(vi, "state"));
        const char *state = s && strcmp(s, "paused") == 0 ? "PAUSED" : "ACTIVE";
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:O*, s:b}", "uuid", uuid, "state",
                                             state, "state_code", mv_vm_state_code(state), "pid",
                                             json_object_get(vi, "pid"), "managed", 0));
        json_decref(vi);
    }
    if (d)
        closedir(d);
    *rep = json_pack("{s:o}", "vms", arr);
    return 0;
}

int mv_vms_handle(struct mv_vms *vms, uint16_t op, json_t *req, json_t **rep, char *err,
                  size_t errlen)
{
    struct vm_entry *e;
    switch (op) {
    case MV_AGENT_OP_VM_START:
        return op_start(vms, req, rep, err, errlen);
    case MV_AGENT_OP_VM_STOP:
        return op_stop(vms, req, rep, err, errlen);
    case MV_AGENT_OP_VM_REBOOT:
        return op_simple(vms, req, "reboot", rep, err, errlen);
    case MV_AGENT_OP_VM_PAUSE:
        return op_simple(vms, req, "pause", rep, err, errlen);
    case MV_AGENT_OP_VM_UNPAUSE:
        return op_simple(vms, req, "resume", rep, err, errlen);
    case MV_AGENT_OP_VM_DELETE:
        return op_delete(vms, req, rep, err, errlen);
    case MV_AGENT_OP_VM_INFO:
        if (!(e = need_vm(vms, req, err, errlen)))
            return -ENOENT;
        *rep = instance_info(vms, e, true);
        return 0;
    case MV_AGENT_OP_VM_LIST:
        return op_list(vms, rep);
    }
    snprintf(err, errlen, "operation 0x%04x is not a VM operation", op);
    return -ENOSYS;
}
