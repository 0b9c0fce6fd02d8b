/* Performance counter sets: gathering, baselines, wire form and the Appendix 6.3 printout. */
#include "mv/perfc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mv/util.h"

/* KVM vCPU statistics with a counterpart among MicroVisor's (Xen-derived) hypervisor counters.
 * Where App. 6.3 has no such counter but the event is one D2.3 lists (emulated instructions,
 * halt exits), a plain descriptive name is used. docs/agent.md explains each pairing. */
static const struct {
    const char *kvm;
    const char *perfc;
} kvm_aliases[] = {
    {"exits", "vmexits"},
    {"pf_guest", "exceptions"},
    {"pf_taken", "page faults"},
    {"pf_fixed", "shadow_fault fixed fault"},
    {"pf_emulate", "writable pt emulations"},
    {"pf_mmio_spte_created", "shadow_fault handled as mmio"},
    {"tlb_flush", "domain page tlb flushes"},
    {"invlpg", "shadow emulates invlpg"},
    {"hypercalls", "hypercalls"},
    {"insn_emulation", "emulated instructions"},
    {"insn_emulation_fail", "shadow_fault emulator fails"},
    {"irq_injections", "interrupt injections"},
    {"nmi_injections", "nmi injections"},
    {"halt_exits", "halt exits"},
    {"halt_wakeup", "sched: vcpu_wake_runnable"},
    {"io_exits", "io exits"},
    {"mmio_exits", "mmio exits"},
    {"irq_exits", "external interrupt exits"},
};

const char *mv_perfc_kvm_alias(const char *kvm_name)
{
    for (size_t i = 0; i < MV_ARRAY_SIZE(kvm_aliases); i++)
        if (strcmp(kvm_aliases[i].kvm, kvm_name) == 0)
            return kvm_aliases[i].perfc;
    return NULL;
}

struct mv_perfc_set *mv_perfc_set_new(unsigned ncpus, const int *cpu_ids)
{
    if (ncpus > MV_PERFC_MAX_CPUS)
        return NULL;
    struct mv_perfc_set *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ncpus = ncpus;
    for (unsigned i = 0; i < ncpus; i++)
        s->cpu_ids[i] = cpu_ids ? cpu_ids[i] : (int)i;
    return s;
}

void mv_perfc_set_free(struct mv_perfc_set *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++)
        free(s->ctr[i].cpu);
    free(s);
}

struct mv_perfc_counter *mv_perfc_find(const struct mv_perfc_set *s, const char *name)
{
    for (unsigned i = 0; i < s->n; i++)
        if (strcmp(s->ctr[i].name, name) == 0)
            return (struct mv_perfc_counter *)&s->ctr[i];
    return NULL;
}

struct mv_perfc_counter *mv_perfc_get(struct mv_perfc_set *s, const char *name)
{
    struct mv_perfc_counter *c = mv_perfc_find(s, name);
    if (c)
        return c;
    size_t n = strlen(name);
    if (n == 0 || n >= MV_PERFC_NAME_MAX || s->n == MV_PERFC_MAX)
        return NULL;
    c = &s->ctr[s->n];
    memset(c, 0, sizeof *c);
    c->cpu = calloc(s->ncpus ? s->ncpus : 1, sizeof *c->cpu);
    if (!c->cpu)
        return NULL;
    memcpy(c->name, name, n + 1);
    s->n++;
    return c;
}

int mv_perfc_add(struct mv_perfc_set *s, const char *name, int cpu_index, uint64_t v)
{
    struct mv_perfc_counter *c = mv_perfc_get(s, name);
    if (!c)
        return -ENOSPC;
    c->total += v;
    if (cpu_index >= 0 && (unsigned)cpu_index < s->ncpus) {
        c->cpu[cpu_index] += v;
        c->per_cpu = true;
    }
    return 0;
}

int mv_perfc_cpu_index(const struct mv_perfc_set *s, int cpu_id)
{
    for (unsigned i = 0; i < s->ncpus; i++)
        if (s->cpu_ids[i] == cpu_id)
            return (int)i;
    return -1;
}

/* Display order: Appendix 6.3's order for the names it has, then ours. */
static const char *const known_order[] = {
    "exceptions",
    "vmexits",
    "apic timer interrupts",
    "domain page tlb flushes",
    "page faults",
    "writable pt emulations",
    "shadow_fault emulator fails",
    "shadow_fault handled as mmio",
    "shadow_fault fixed fault",
    "shadow emulates invlpg",
    "hypercalls",
    "#interrupts",
    "#IPIs",
    "sched: context switches",
    "sched: vcpu_wake_runnable",
    "tlb shootdowns",
    "host page faults",
    "emulated instructions",
    "interrupt injections",
    "nmi injections",
    "halt exits",
    "io exits",
    "mmio exits",
    "external interrupt exits",
};

void mv_perfc_add_known(struct mv_perfc_set *s)
{
    /* Guest counters are attributed to the pCPU a vCPU ran on, host ones are per CPU anyway. */
    for (size_t i = 0; i < MV_ARRAY_SIZE(known_order); i++) {
        struct mv_perfc_counter *c = mv_perfc_get(s, known_order[i]);
        if (c)
            c->per_cpu = true;
    }
}

void mv_perfc_add_host(struct mv_perfc_set *s, const struct mv_host_counters *hc)
{
    for (int i = 0; i < hc->ncpus; i++) {
        int col = mv_perfc_cpu_index(s, hc->cpu_ids[i]);
        mv_perfc_add(s, "apic timer interrupts", col, hc->timer_interrupts[i]);
        mv_perfc_add(s, "#interrupts", col, hc->interrupts[i]);
        mv_perfc_add(s, "#IPIs", col, hc->ipis[i]);
        mv_perfc_add(s, "tlb shootdowns", col, hc->tlb_shootdowns[i]);
        if (hc->per_cpu_sw) {
            mv_perfc_add(s, "sched: context switches", col, hc->context_switches[i]);
            mv_perfc_add(s, "host page faults", col, hc->page_faults[i]);
        }
    }
    if (!hc->per_cpu_sw) {
        /* Only system-wide totals are readable: TOTAL without per-CPU columns. */
        struct mv_perfc_counter *c = mv_perfc_get(s, "sched: context switches");
        if (c) {
            c->total += hc->context_switches_total;
            c->per_cpu = false;
        }
        c = mv_perfc_get(s, "host page faults");
        if (c) {
            c->total += hc->page_faults_total;
            c->per_cpu = false;
        }
    }
}

int mv_perfc_add_vmm(struct mv_perfc_set *s, const json_t *perfc, const int *vcpu_pcpu,
                     unsigned n_vcpus)
{
    if (!json_is_array(perfc))
        return -EINVAL;
    size_t i;
    json_t *e;
    int used = 0;
    json_array_foreach(perfc, i, e)
    {
        const char *kvm = json_string_value(json_object_get(e, "kvm"));
        json_t *cpu = json_object_get(e, "cpu");
        json_t *total = json_object_get(e, "total");
        if (!kvm || !json_is_integer(total) || json_integer_value(total) < 0 ||
            (cpu && !json_is_array(cpu)))
            return -EINVAL;
        char name[MV_PERFC_NAME_MAX];
        const char *alias = mv_perfc_kvm_alias(kvm);
        if (alias)
            snprintf(name, sizeof name, "%s", alias);
        else if (snprintf(name, sizeof name, "kvm %s", kvm) >= (int)sizeof name)
            continue; /* an unknown stat with an absurd name: not worth a counter */
        uint64_t rest = (uint64_t)json_integer_value(total);
        size_t k;
        json_t *v;
        json_array_foreach(cpu, k, v)
        {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EINVAL;
            uint64_t x = (uint64_t)json_integer_value(v);
            if (k >= n_vcpus || !vcpu_pcpu || x > rest)
                break;
            int col = mv_perfc_cpu_index(s, vcpu_pcpu[k]);
            if (col < 0)
                continue;
            if (mv_perfc_add(s, name, col, x) != 0)
                return used;
            rest -= x;
        }
        /* What could not be attributed to a pCPU still counts in TOTAL. */
        if (mv_perfc_add(s, name, -1, rest) != 0)
            return used;
        used++;
    }
    return used;
}

/* Copies one counter's raw values into its baseline. */
static int reset_one(struct mv_perfc_set *base, const struct mv_perfc_counter *rc,
                     const struct mv_perfc_set *raw)
{
    struct mv_perfc_counter *b = mv_perfc_get(base, rc->name);
    if (!b)
        return -ENOSPC;
    b->total = rc->total;
    b->per_cpu = rc->per_cpu;
    for (unsigned i = 0; i < base->ncpus; i++) {
        int col = i < raw->ncpus ? mv_perfc_cpu_index(raw, base->cpu_ids[i]) : -1;
        b->cpu[i] = col >= 0 ? rc->cpu[col] : 0;
    }
    return 0;
}

int mv_perfc_reset(struct mv_perfc_set *base, const struct mv_perfc_set *raw, const char *name)
{
    if (name) {
        const struct mv_perfc_counter *c = mv_perfc_find(raw, name);
        if (!c)
            return -ENOENT;
        return reset_one(base, c, raw) == 0 ? 1 : -ENOSPC;
    }
    int n = 0;
    for (unsigned i = 0; i < raw->n; i++)
        if (reset_one(base, &raw->ctr[i], raw) == 0)
            n++;
    return n;
}

static uint64_t minus_baseline(uint64_t *base, uint64_t cur)
{
    if (cur < *base) {
        *base = cur; /* the source went backwards: count up again from here */
        return 0;
    }
    return cur - *base;
}

void mv_perfc_apply_baseline(struct mv_perfc_set *base, struct mv_perfc_set *cur)
{
    for (unsigned i = 0; i < cur->n; i++) {
        struct mv_perfc_counter *c = &cur->ctr[i];
        struct mv_perfc_counter *b = mv_perfc_find(base, c->name);
        if (!b)
            continue;
        c->total = minus_baseline(&b->total, c->total);
        for (unsigned k = 0; k < cur->ncpus; k++) {
            int col = mv_perfc_cpu_index(base, cur->cpu_ids[k]);
            if (col >= 0)
                c->cpu[k] = minus_baseline(&b->cpu[col], c->cpu[k]);
        }
    }
}

json_t *mv_perfc_to_json(const struct mv_perfc_set *s, uint64_t now_ns, const char *only)
{
    json_t *cpus = json_array();
    for (unsigned i = 0; i < s->ncpus; i++)
        json_array_append_new(cpus, json_integer(s->cpu_ids[i]));
    json_t *arr = json_array();
    for (unsigned i = 0; i < s->n; i++) {
        const struct mv_perfc_counter *c = &s->ctr[i];
        if (only && strcmp(only, c->name) != 0)
            continue;
        json_t *o = json_pack("{s:s, s:I}", "name", c->name, "total", (json_int_t)c->total);
        if (c->per_cpu) {
            json_t *v = json_array();
            for (unsigned k = 0; k < s->ncpus; k++)
                json_array_append_new(v, json_integer((json_int_t)c->cpu[k]));
            json_object_set_new(o, "cpu", v);
        }
        json_array_append_new(arr, o);
    }
    return json_pack("{s:I, s:o, s:o}", "now_ns", (json_int_t)now_ns, "cpus", cpus, "counters",
                     arr);
}

int mv_perfc_from_json(const json_t *j, struct mv_perfc_set **out, uint64_t *now_ns, char *err,
                       size_t errlen)
{
    *out = NULL;
    json_t *now = json_object_get(j, "now_ns");
    json_t *cpus = json_object_get(j, "cpus");
    json_t *ctrs = json_object_get(j, "counters");
    if (!json_is_integer(now) || json_integer_value(now) < 0 || !json_is_array(cpus) ||
        !json_is_array(ctrs)) {
        snprintf(err, errlen, "reply lacks now_ns, cpus or counters");
        return -EINVAL;
    }
    size_t ncpus = json_array_size(cpus);
    if (ncpus > MV_PERFC_MAX_CPUS || json_array_size(ctrs) > MV_PERFC_MAX) {
        snprintf(err, errlen, "too many CPUs (%zu) or counters (%zu)", ncpus,
                 json_array_size(ctrs));
        return -EINVAL;
    }
    int ids[MV_PERFC_MAX_CPUS];
    for (size_t i = 0; i < ncpus; i++) {
        json_t *v = json_array_get(cpus, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1 << 20) {
            snprintf(err, errlen, "cpus[%zu] is not a CPU number", i);
            return -EINVAL;
        }
        ids[i] = (int)json_integer_value(v);
    }
    struct mv_perfc_set *s = mv_perfc_set_new((unsigned)ncpus, ids);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t i;
    json_t *e;
    json_array_foreach(ctrs, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *total = json_object_get(e, "total");
        json_t *cpu = json_object_get(e, "cpu");
        struct mv_perfc_counter *c = NULL;
        if (name && !mv_perfc_find(s, name))
            c = mv_perfc_get(s, name);
        if (!c || !json_is_integer(total) || json_integer_value(total) < 0 ||
            (cpu && (!json_is_array(cpu) || json_array_size(cpu) != ncpus))) {
            snprintf(err, errlen, "counters[%zu] is malformed (name, total, cpu[%zu])", i, ncpus);
            mv_perfc_set_free(s);
            return -EINVAL;
        }
        c->total = (uint64_t)json_integer_value(total);
        c->per_cpu = cpu != NULL;
        for (size_t k = 0; cpu && k < ncpus; k++) {
            json_t *v = json_array_get(cpu, k);
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                snprintf(err, errlen, "counters[%zu].cpu[%zu] is not a count", i, k);
                mv_perfc_set_free(s);
                return -EINVAL;
            }
            c->cpu[k] = (uint64_t)json_integer_value(v);
        }
    }
    *now_ns = (uint64_t)json_integer_value(now);
    *out = s;
    return 0;
}

int mv_perfc_print(FILE *out, const struct mv_perfc_set *s, uint64_t now_ns, const char *only)
{
    fprintf(out, "Performance counters SHOW (now = 0x%08X:%08X)\n", (unsigned)(now_ns >> 32),
            (unsigned)now_ns);
    int lines = 0;
    for (unsigned i = 0; i < s->n; i++) {
        const struct mv_perfc_counter *c = &s->ctr[i];
        if (only && strcmp(only, c->name) != 0)
            continue;
        fprintf(out, "%-32s TOTAL[%10llu]", c->name, (unsigned long long)c->total);
        for (unsigned k = 0; c->per_cpu && k < s->ncpus; k++)
            fprintf(out, "  CPU%02d[%10llu]", s->cpu_ids[k], (unsigned long long)c->cpu[k]);
        fputc('\n', out);
        lines++;
    }
    return lines;
}
