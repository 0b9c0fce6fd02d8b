/* Host-side counters per physical CPU, the host half of the hypervisor performance counters of
 * D2.3 §2.6.2 / Appendix 6.3 and the pCPU group of the statistics (§2.6.1): CPU time from
 * /proc/stat, interrupts / timer interrupts / IPIs / TLB shootdowns from /proc/interrupts, and
 * per-CPU context switches and page faults from perf software events (totals from /proc/stat and
 * /proc/vmstat where perf events are not permitted). */
#ifndef MV_HOSTCOUNTERS_H
#define MV_HOSTCOUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#define MV_HC_MAX_CPUS 1024

struct mv_host_counters {
    int ncpus; /* CPUs seen in /proc/stat, in order; index i is CPU cpu_ids[i] */
    int cpu_ids[MV_HC_MAX_CPUS];
    uint64_t cpu_busy_ns[MV_HC_MAX_CPUS];      /* user+nice+system+irq+softirq+steal */
    uint64_t cpu_idle_ns[MV_HC_MAX_CPUS];      /* idle+iowait */
    uint64_t interrupts[MV_HC_MAX_CPUS];       /* every line of /proc/interrupts */
    uint64_t timer_interrupts[MV_HC_MAX_CPUS]; /* LOC: local APIC timer */
    uint64_t ipis[MV_HC_MAX_CPUS];             /* RES + CAL + TLB: inter-processor interrupts */
    uint64_t tlb_shootdowns[MV_HC_MAX_CPUS];
    bool per_cpu_sw; /* the two arrays below are valid */
    uint64_t context_switches[MV_HC_MAX_CPUS];
    uint64_t page_faults[MV_HC_MAX_CPUS];
    uint64_t context_switches_total, page_faults_total, interrupts_total;
};

struct mv_host_counter_source;

/* procfs_root is normally "/proc". Per-CPU perf events are opened when permitted. */
int mv_host_counters_open(struct mv_host_counter_source **out, const char *procfs_root);
int mv_host_counters_read(struct mv_host_counter_source *src, struct mv_host_counters *out);
void mv_host_counters_close(struct mv_host_counter_source *src);

/* The text parsers, separately for tests. 0 or -EINVAL (with nothing usable found). */
int mv_host_counters_parse_stat(const char *text, long clk_tck, struct mv_host_counters *out);
int mv_host_counters_parse_interrupts(const char *text, struct mv_host_counters *out);
int mv_host_counters_parse_vmstat(const char *text, struct mv_host_counters *out);

#endif
