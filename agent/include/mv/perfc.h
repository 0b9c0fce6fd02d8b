/* Hypervisor performance counters (D2.3 §2.6.2, Appendix 6.3): a named set of counters, each
 * with a TOTAL and optionally one value per physical CPU, gathered from the host
 * (mv/hostcounters.h) and from every running VMM's KVM statistics, named as in Appendix 6.3
 * where KVM has an equivalent (table in docs/agent.md).
 *
 * Reset keeps the counters running: the agent stores a baseline (the raw values at reset time)
 * and shows current - baseline. A value that went backwards (a VM exited, so the sum over VMs
 * shrank) shows 0 and lowers its baseline, so it counts up again from there. */
#ifndef MV_PERFC_H
#define MV_PERFC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mv/hostcounters.h"

#define MV_PERFC_NAME_MAX 48 /* NUL included */
#define MV_PERFC_MAX_CPUS 1024
#define MV_PERFC_MAX      512 /* counters in one set */

struct mv_perfc_counter {
    char name[MV_PERFC_NAME_MAX];
    uint64_t total;
    bool per_cpu;  /* cpu[] is meaningful (else only TOTAL is shown) */
    uint64_t *cpu; /* [set->ncpus] */
};

struct mv_perfc_set {
    unsigned ncpus;
    int cpu_ids[MV_PERFC_MAX_CPUS]; /* column i is CPU cpu_ids[i] */
    unsigned n;
    struct mv_perfc_counter ctr[MV_PERFC_MAX];
};

/* A set is large: allocate with mv_perfc_set_new(), free with mv_perfc_set_free(). */
struct mv_perfc_set *mv_perfc_set_new(unsigned ncpus, const int *cpu_ids);
void mv_perfc_set_free(struct mv_perfc_set *s);

/* The counter named name, NULL if absent / created (zeroed) if absent. NULL when the set is full
 * or the name is empty or too long. */
struct mv_perfc_counter *mv_perfc_find(const struct mv_perfc_set *s, const char *name);
struct mv_perfc_counter *mv_perfc_get(struct mv_perfc_set *s, const char *name);
/* Adds v to the counter's total, and to column `cpu_index` when 0 <= cpu_index < ncpus (which
 * makes the counter per-CPU). Creates the counter. 0 or -ENOSPC. */
int mv_perfc_add(struct mv_perfc_set *s, const char *name, int cpu_index, uint64_t v);
/* Index of CPU cpu_id among the columns, -1 if absent. */
int mv_perfc_cpu_index(const struct mv_perfc_set *s, int cpu_id);

/* Registers every counter of the App. 6.3 / KVM mapping table with value 0, so a dump always
 * shows the same names whether or not guests run. */
void mv_perfc_add_known(struct mv_perfc_set *s);
/* Host counters: apic timer interrupts, #interrupts, #IPIs, tlb shootdowns, sched: context
 * switches, host page faults. Columns are matched by CPU id. */
void mv_perfc_add_host(struct mv_perfc_set *s, const struct mv_host_counters *hc);
/* A VMM's "perfc" array from its `stats` reply ([{"kvm": name, "total": n, "cpu": [per vCPU]}]).
 * vcpu_pcpu[i] is the physical CPU vCPU i last ran on (-1 unknown: that vCPU's counts go to
 * TOTAL only). Returns the number of entries used, or -EINVAL for a malformed array. */
int mv_perfc_add_vmm(struct mv_perfc_set *s, const json_t *perfc, const int *vcpu_pcpu,
                     unsigned n_vcpus);
/* The App. 6.3 name for a KVM vCPU stat, NULL when there is none (then "kvm <stat>" is used). */
const char *mv_perfc_kvm_alias(const char *kvm_name);

/* Baselines: base holds raw values at reset time. mv_perfc_reset() copies the current raw
 * values of one counter (name) or all (name NULL) into base; returns how many were reset, or
 * -ENOENT for an unknown name. mv_perfc_apply_baseline() turns raw into shown values in place
 * (and lowers baselines that are above the current value). */
int mv_perfc_reset(struct mv_perfc_set *base, const struct mv_perfc_set *raw, const char *name);
void mv_perfc_apply_baseline(struct mv_perfc_set *base, struct mv_perfc_set *cur);

/* Wire form (the perfc_dump / perfc_get reply): {"now_ns": n, "cpus": [ids], "counters":
 * [{"name": s, "total": n, "cpu": [n...]}...]} ("cpu" only for per-CPU counters). from_json
 * validates everything; -EINVAL with a reason in err. */
json_t *mv_perfc_to_json(const struct mv_perfc_set *s, uint64_t now_ns, const char *only);
int mv_perfc_from_json(const json_t *j, struct mv_perfc_set **out, uint64_t *now_ns, char *err,
                       size_t errlen);

/* Appendix 6.3 layout: "Performance counters SHOW (now = 0xHHHHHHHH:LLLLLLLL)" then one line per
 * counter: name padded to 32, "TOTAL[%10llu]", and "  CPUnn[%10llu]" per column for per-CPU
 * counters. only: print just that counter (NULL: all). Returns lines printed after the header. */
int mv_perfc_print(FILE *out, const struct mv_perfc_set *s, uint64_t now_ns, const char *only);

#endif
