/* Guest discovery and sampling through each VMM's control socket and procfs/sysfs. */
#include "mv/guests.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mv/jsonline.h"
#include "mv/log.h"
#include "mv/util.h"

#define VMM_REPLY_MAX (1u << 20)

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mv_uuid_parse(const char *s, uint8_t out[16])
{
    if (strlen(s) != 36)
        return -EINVAL;
    int b = 0;
    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -EINVAL;
            i++;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[b++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}

void mv_uuid_from_name(const char *name, uint8_t out[16])
{
    /* Two FNV-1a 64 passes with different offsets: stable, not cryptographic (names are local). */
    uint64_t h[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
    for (int k = 0; k < 2; k++)
        for (const char *p = name; *p; p++)
            h[k] = (h[k] ^ (uint8_t)*p) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h[0] >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(h[1] >> (56 - 8 * i));
    }
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x80); /* version 8: custom */
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void mv_uuid_format(const uint8_t u[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

int mv_guests_parse_task_stat(const char *text, uint64_t *ticks, int *last_cpu)
{
    /* "tid (comm) S ppid ...": comm may hold spaces and parentheses, so start after the last ')'.
     */
    const char *p = strrchr(text, ')');
    if (!p)
        return -EINVAL;
    p++;
    /* Field 3 (state) is the first after ')'; utime is 14, stime 15, processor 39. */
    unsigned long long utime = 0, stime = 0;
    long cpu = -1;
    int field = 2;
    while (*p && field < 39) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        field++;
        char *end;
        if (field == 14 || field == 15 || field == 39) {
            errno = 0;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p || errno)
                return -EINVAL;
            if (field == 14)
                utime = v;
            else if (field == 15)
                stime = v;
            else
                cpu = v > 1u << 20 ? -1 : (long)v;
            p = end;
        }
        while (*p && *p != ' ')
            p++;
    }
    if (field < 39)
        return -EINVAL;
    *ticks = utime + stime;
    *last_cpu = (int)cpu;
    return 0;
}

void mv_guests_init(struct mv_guests *gs, const char *run_dir, const char *procfs,
                    const char *sysfs)
{
    memset(gs, 0, sizeof *gs);
    snprintf(gs->run_dir, sizeof gs->run_dir, "%s", run_dir ? run_dir : "");
    snprintf(gs->procfs, sizeof gs->procfs, "%s", procfs ? procfs : "/proc");
    snprintf(gs->sysfs, sizeof gs->sysfs, "%s", sysfs ? sysfs : "/sys");
    gs->clk_tck = sysconf(_SC_CLK_TCK);
    if (gs->clk_tck <= 0)
        gs->clk_tck = 100;
}

void mv_guests_clear(struct mv_guests *gs)
{
    for (unsigned i = 0; i < gs->n; i++)
        json_decref(gs->g[i].perfc);
    gs->n = 0;
}

static const struct mv_guest *find_prev(const struct mv_guest *prev, unsigned n,
                                        const uint8_t uuid[16])
{
    for (unsigned i = 0; i < n; i++)
        if (memcmp(prev[i].uuid, uuid, 16) == 0)
            return &prev[i];
    return NULL;
}

static uint64_t read_u64_file(const char *path)
{
    char buf[64];
    uint64_t v = 0;
    if (mv_read_file(path, buf, sizeof buf) > 0) {
        buf[strcspn(buf, "\n")] = 0;
        if (mv_parse_u64(buf, &v) != 0)
            v = 0;
    }
    return v;
}

/* vCPU threads are named "vcpuN" by mvvmm: their CPU time and last CPU from /proc. */
static void sample_vcpus(const struct mv_guests *gs, struct mv_guest *g)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%d/task", gs->procfs, g->pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char buf[1024];
        snprintf(path, sizeof path, "%s/%d/task/%s/comm", gs->procfs, g->pid, de->d_name);
        unsigned idx;
        char extra;
        if (mv_read_file(path, buf, sizeof buf) <= 0 ||
            sscanf(buf, "vcpu%u%c", &idx, &extra) != 2 || extra != '\n' ||
            idx >= MV_GUEST_MAX_VCPUS || idx >= g->n_vcpus)
            continue;
        snprintf(path, sizeof path, "%s/%d/task/%s/stat", gs->procfs, g->pid, de->d_name);
        uint64_t ticks;
        int cpu;
        if (mv_read_file(path, buf, sizeof buf) <= 0 ||
            mv_guests_parse_task_stat(buf, &ticks, &cpu) != 0)
            continue;
        g->vcpu[idx].cpu_time_ns = ticks * (1000000000ull / (uint64_t)gs->clk_tck);
        g->vcpu[idx].last_pcpu = cpu;
    }
    closedir(d);
}

static void sample_memory(const struct mv_guests *gs, struct mv_guest *g)
{
    char path[256], buf[4096];
    snprintf(path, sizeof path, "%s/%d/status", gs->procfs, g->pid);
    if (mv_read_file(path, buf, sizeof buf) <= 0)
        return;
    const char *p = strstr(buf, "\nVmRSS:");
    unsigned long long kb;
    if (p && sscanf(p + 7, "%llu", &kb) == 1)
        g->mem_used = MV_MIN((uint64_t)kb * 1024, g->mem_max ? g->mem_max : UINT64_MAX);
}

static void sample_vif(const struct mv_guests *gs, struct mv_guest_vif *v)
{
    static const char *const names[8] = {"tx_bytes", "tx_packets", "tx_errors", "tx_dropped",
                                         "rx_bytes", "rx_packets", "rx_errors", "rx_dropped"};
    uint64_t *dst[8] = {&v->rx_bytes, &v->rx_packets, &v->rx_errors, &v->rx_drops,
                        &v->tx_bytes, &v->tx_packets, &v->tx_errors, &v->tx_drops};
    char path[512];
    snprintf(path, sizeof path, "%s/class/net/%s", gs->sysfs, v->id);
    v->valid = access(path, F_OK) == 0;
    for (int i = 0; i < 8 && v->valid; i++) {
        snprintf(path, sizeof path, "%s/class/net/%s/statistics/%s", gs->sysfs, v->id, names[i]);
        *dst[i] = read_u64_file(path);
    }
}

static bool id_chars_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == ':' || *s == '-'))
            return false;
    return true;
}

static void parse_devices(struct mv_guest *g, json_t *devs)
{
    size_t i;
    json_t *d;
    json_array_foreach(devs, i, d)
    {
        const char *type = json_string_value(json_object_get(d, "type"));
        const char *spec = json_string_value(json_object_get(d, "spec"));
        if (!type || !spec)
            continue;
        if (strcmp(type, "net") == 0 && g->n_vif < MV_GUEST_MAX_DEVS &&
            strncmp(spec, "tap=", 4) == 0) {
            struct mv_guest_vif *v = &g->vif[g->n_vif];
            size_t n = strcspn(spec + 4, ",");
            if (n == 0 || n >= sizeof v->id)
                continue;
            memcpy(v->id, spec + 4, n);
            v->id[n] = 0;
            if (id_chars_ok(v->id))
                g->n_vif++;
        } else if (strcmp(type, "blk") == 0 && g->n_vbd < MV_GUEST_MAX_DEVS) {
            struct mv_guest_vbd *b = &g->vbd[g->n_vbd];
            snprintf(b->id, sizeof b->id, "vbd%u", g->n_vbd);
            snprintf(b->device, sizeof b->device, "vd%c", 'a' + g->n_vbd);
            snprintf(b->backing, sizeof b->backing, "%s",
                     strncmp(spec, "aoe:", 4) == 0 ? "aoe" : "file");
            g->n_vbd++;
        }
    }
}

/* Asks one VMM for info and stats. 0, or -errno when it does not answer properly. */
static int sample_guest(const struct mv_guests *gs, struct mv_guest *g, int timeout_ms)
{
    char err[256];
    json_t *req = json_pack("{s:s}", "cmd", "info"), *info = NULL, *stats = NULL;
    int rc = mv_jsonline_call(g->sock, req, VMM_REPLY_MAX, timeout_ms, &info, err, sizeof err);
    json_decref(req);
    if (rc == 0 && !json_is_true(json_object_get(info, "ok")))
        rc = -EPROTO;
    if (rc != 0) {
        mv_debug("guest %s: %s", g->sock, rc == -EPROTO ? "info refused" : err);
        json_decref(info);
        return rc;
    }
    json_t *pid = json_object_get(info, "pid"), *mem = json_object_get(info, "memory_bytes");
    json_t *vcpus = json_object_get(info, "vcpus");
    const char *name = json_string_value(json_object_get(info, "name"));
    g->pid = json_is_integer(pid) ? (int)json_integer_value(pid) : 0;
    g->mem_max =
        json_is_integer(mem) && json_integer_value(mem) > 0 ? (uint64_t)json_integer_value(mem) : 0;
    json_int_t nv = json_is_integer(vcpus) ? json_integer_value(vcpus) : 0;
    g->n_vcpus = nv < 0 ? 0 : (unsigned)MV_MIN(nv, (json_int_t)MV_GUEST_MAX_VCPUS);
    snprintf(g->name, sizeof g->name, "%s", name ? name : "");
    for (unsigned i = 0; i < g->n_vcpus; i++)
        g->vcpu[i].last_pcpu = -1;
    parse_devices(g, json_object_get(info, "devices"));
    json_decref(info);

    req = json_pack("{s:s}", "cmd", "stats");
    if (mv_jsonline_call(g->sock, req, VMM_REPLY_MAX, timeout_ms, &stats, err, sizeof err) == 0 &&
        json_is_array(json_object_get(stats, "perfc")))
        g->perfc = json_incref(json_object_get(stats, "perfc"));
    json_decref(req);
    json_decref(stats);
    if (g->pid > 0) {
        sample_vcpus(gs, g);
        sample_memory(gs, g);
    }
    for (unsigned i = 0; i < g->n_vif; i++)
        sample_vif(gs, &g->vif[i]);
    return 0;
}

int mv_guests_scan(struct mv_guests *gs, int timeout_ms)
{
    /* Keep the previous sample for utilisation deltas; heap, the table is large. */
    unsigned nprev = gs->n;
    struct mv_guest *prev = nprev ? malloc(nprev * sizeof *prev) : NULL;
    if (prev)
        memcpy(prev, gs->g, nprev * sizeof *prev);
    else
        nprev = 0;
    for (unsigned i = 0; i < gs->n; i++) {
        json_decref(gs->g[i].perfc);
        if (prev)
            prev[i].perfc = NULL;
    }
    gs->n = 0;
    DIR *d = gs->run_dir[0] ? opendir(gs->run_dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)) && gs->n < MV_GUESTS_MAX) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".sock") != 0)
            continue;
        struct mv_guest *g = &gs->g[gs->n];
        memset(g, 0, sizeof *g);
        char sock[sizeof g->sock];
        if (snprintf(sock, sizeof sock, "%s/%s", gs->run_dir, de->d_name) >= (int)sizeof sock)
            continue;
        memcpy(g->sock, sock, sizeof sock);
        struct stat st;
        if (stat(g->sock, &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(len - 5), de->d_name);
        if (mv_uuid_parse(base, g->uuid) != 0)
            mv_uuid_from_name(base, g->uuid);
        if (sample_guest(gs, g, timeout_ms) != 0) {
            json_decref(g->perfc);
            continue;
        }
        g->sampled_ns = mv_now_ns();
        const struct mv_guest *p = find_prev(prev, nprev, g->uuid);
        for (unsigned i = 0; p && i < g->n_vcpus && i < p->n_vcpus; i++) {
            uint64_t dt = g->sampled_ns - p->sampled_ns;
            uint64_t dc = g->vcpu[i].cpu_time_ns - p->vcpu[i].cpu_time_ns;
            if (dt && g->vcpu[i].cpu_time_ns >= p->vcpu[i].cpu_time_ns)
                g->vcpu[i].util_centipct = (uint32_t)MV_MIN(dc * 10000 / dt, 10000);
        }
        gs->n++;
    }
    if (d)
        closedir(d);
    free(prev);
    return (int)gs->n;
}
