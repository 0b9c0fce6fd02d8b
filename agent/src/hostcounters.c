#include "mv/hostcounters.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mv/log.h"
#include "mv/util.h"

struct mv_host_counter_source {
    char procfs[256];
    long clk_tck;
    int ncpus;
    int cs_fd[MV_HC_MAX_CPUS]; /* perf software events, -1 when not available */
    int pf_fd[MV_HC_MAX_CPUS];
    char *buf; /* /proc/interrupts grows with the CPU count */
    size_t buf_cap;
};

static int index_of_cpu(const struct mv_host_counters *c, int cpu)
{
    for (int i = 0; i < c->ncpus; i++)
        if (c->cpu_ids[i] == cpu)
            return i;
    return -1;
}

int mv_host_counters_parse_stat(const char *text, long clk_tck, struct mv_host_counters *out)
{
    const uint64_t ns_per_tick = 1000000000ull / (uint64_t)(clk_tck > 0 ? clk_tck : 100);
    out->ncpus = 0;
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
        int cpu;
        unsigned long long v[8] = {0};
        /* "cpu " (the sum) is not a CPU: %d would skip the blanks and read its first value. */
        bool is_cpu = strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9';
        if (is_cpu && sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0],
                             &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) >= 5) {
            if (cpu < 0 || out->ncpus >= MV_HC_MAX_CPUS)
                continue;
            int i = out->ncpus++;
            out->cpu_ids[i] = cpu;
            out->cpu_busy_ns[i] = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * ns_per_tick;
            out->cpu_idle_ns[i] = (v[3] + v[4]) * ns_per_tick;
        } else {
            unsigned long long n;
            if (sscanf(line, "ctxt %llu", &n) == 1)
                out->context_switches_total = n;
            else if (sscanf(line, "intr %llu", &n) == 1)
                out->interrupts_total = n;
        }
    }
    return out->ncpus > 0 ? 0 : -EINVAL;
}

int mv_host_counters_parse_interrupts(const char *text, struct mv_host_counters *out)
{
    /* Header: "CPU0 CPU1 ..." names the columns (offline CPUs have none). */
    int col_cpu[MV_HC_MAX_CPUS], ncols = 0;
    const char *p = text;
    const char *eol = strchr(p, '\n');
    if (!eol)
        return -EINVAL;
    while (p < eol && ncols < MV_HC_MAX_CPUS) {
        while (p < eol && *p == ' ')
            p++;
        int cpu, used;
        if (p >= eol || sscanf(p, "CPU%d%n", &cpu, &used) != 1)
            break;
        col_cpu[ncols++] = index_of_cpu(out, cpu);
        p += used;
    }
    if (ncols == 0)
        return -EINVAL;
    for (int i = 0; i < out->ncpus; i++)
        out->interrupts[i] = out->timer_interrupts[i] = out->ipis[i] = out->tlb_shootdowns[i] = 0;
    for (const char *line = eol + 1; line && *line; line = strchr(line, '\n'), line += !!line) {
        const char *colon = strchr(line, ':');
        const char *nl = strchr(line, '\n');
        if (!colon || (nl && colon > nl))
            continue;
        char name[16] = "";
        sscanf(line, " %15[^:]", name);
        const char *q = colon + 1;
        for (int c = 0; c < ncols; c++) {
            char *end;
            unsigned long long v = strtoull(q, &end, 10);
            if (end == q || (nl && end > nl))
                break; /* ERR:/MIS: lines carry one total, not a column per CPU */
            q = end;
            int i = col_cpu[c];
            if (i < 0)
                continue;
            out->interrupts[i] += v;
            if (strcmp(name, "LOC") == 0)
                out->timer_interrupts[i] += v;
            if (strcmp(name, "RES") == 0 || strcmp(name, "CAL") == 0 || strcmp(name, "TLB") == 0)
                out->ipis[i] += v;
            if (strcmp(name, "TLB") == 0)
                out->tlb_shootdowns[i] += v;
        }
    }
    return 0;
}

int mv_host_counters_parse_vmstat(const char *text, struct mv_host_counters *out)
{
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
        unsigned long long n;
        if (sscanf(line, "pgfault %llu", &n) == 1) {
            out->page_faults_total = n;
            return 0;
        }
    }
    return -EINVAL;
}

static int open_sw_event(unsigned long long config, int cpu)
{
    struct perf_event_attr a = {.type = PERF_TYPE_SOFTWARE, .size = sizeof a, .config = config};
    return (int)syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Reads a procfs file into the source's growable buffer. */
static const char *slurp(struct mv_host_counter_source *src, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", src->procfs, name);
    for (;;) {
        long n = mv_read_file(path, src->buf, src->buf_cap);
        if (n < 0)
            return NULL;
        if ((size_t)n < src->buf_cap - 1)
            return src->buf;
        char *bigger = realloc(src->buf, src->buf_cap * 2);
        if (!bigger)
            return NULL;
        src->buf = bigger;
        src->buf_cap *= 2;
    }
}

int mv_host_counters_open(struct mv_host_counter_source **out, const char *procfs_root)
{
    struct mv_host_counter_source *src = calloc(1, sizeof *src);
    if (!src)
        return -ENOMEM;
    snprintf(src->procfs, sizeof src->procfs, "%s", procfs_root);
    src->clk_tck = sysconf(_SC_CLK_TCK);
    src->buf_cap = 65536;
    src->buf = malloc(src->buf_cap);
    struct mv_host_counters probe = {0};
    const char *stat = src->buf ? slurp(src, "stat") : NULL;
    if (!stat || mv_host_counters_parse_stat(stat, src->clk_tck, &probe) != 0) {
        free(src->buf);
        free(src);
        return -ENOENT;
    }
    src->ncpus = probe.ncpus;
    int opened = 0;
    for (int i = 0; i < src->ncpus; i++) {
        src->cs_fd[i] = open_sw_event(PERF_COUNT_SW_CONTEXT_SWITCHES, probe.cpu_ids[i]);
        src->pf_fd[i] = open_sw_event(PERF_COUNT_SW_PAGE_FAULTS, probe.cpu_ids[i]);
        opened += src->cs_fd[i] >= 0 && src->pf_fd[i] >= 0;
    }
    if (opened != src->ncpus)
        mv_info("per-CPU context switch and page fault counters unavailable (%s); "
                "reporting totals only",
                strerror(errno));
    *out = src;
    return 0;
}

int mv_host_counters_read(struct mv_host_counter_source *src, struct mv_host_counters *out)
{
    memset(out, 0, sizeof *out);
    const char *text = slurp(src, "stat");
    if (!text || mv_host_counters_parse_stat(text, src->clk_tck, out) != 0)
        return -EIO;
    text = slurp(src, "interrupts");
    if (text)
        mv_host_counters_parse_interrupts(text, out);
    text = slurp(src, "vmstat");
    if (text)
        mv_host_counters_parse_vmstat(text, out);
    out->per_cpu_sw = out->ncpus == src->ncpus;
    for (int i = 0; out->per_cpu_sw && i < src->ncpus; i++) {
        uint64_t cs, pf;
        if (src->cs_fd[i] < 0 || src->pf_fd[i] < 0 ||
            read(src->cs_fd[i], &cs, sizeof cs) != sizeof cs ||
            read(src->pf_fd[i], &pf, sizeof pf) != sizeof pf) {
            out->per_cpu_sw = false;
            break;
        }
        out->context_switches[i] = cs;
        out->page_faults[i] = pf;
    }
    return 0;
}

void mv_host_counters_close(struct mv_host_counter_source *src)
{
    if (!src)
        return;
    for (int i = 0; i < src->ncpus; i++) {
        if (src->cs_fd[i] >= 0)
            close(src->cs_fd[i]);
        if (src->pf_fd[i] >= 0)
            close(src->pf_fd[i]);
    }
    free(src->buf);
    free(src);
}
