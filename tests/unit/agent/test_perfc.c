/* Performance counters: gathering from host and VMM data, baselines (reset without data loss),
 * the wire form and the Appendix 6.3 printout. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mv/perfc.h"

static const int cpu_ids[2] = {0, 2};

static struct mv_host_counters *host_sample(uint64_t scale)
{
    static struct mv_host_counters hc;
    memset(&hc, 0, sizeof hc);
    hc.ncpus = 2;
    hc.cpu_ids[0] = 0;
    hc.cpu_ids[1] = 2;
    for (int i = 0; i < 2; i++) {
        hc.timer_interrupts[i] = 100 * scale + (uint64_t)i;
        hc.interrupts[i] = 1000 * scale;
        hc.ipis[i] = 10 * scale;
        hc.tlb_shootdowns[i] = scale;
        hc.context_switches[i] = 50 * scale;
        hc.page_faults[i] = 7 * scale;
    }
    hc.per_cpu_sw = true;
    return &hc;
}

static char *print_to_string(const struct mv_perfc_set *s, uint64_t now, const char *only)
{
    static char buf[65536];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    mv_perfc_print(f, s, now, only);
    fclose(f);
    return buf;
}

static void test_host_counters_and_print(void **state)
{
    struct mv_perfc_set *s = mv_perfc_set_new(2, cpu_ids);
    assert_non_null(s);
    mv_perfc_add_known(s);
    mv_perfc_add_host(s, host_sample(1));
    const struct mv_perfc_counter *c = mv_perfc_find(s, "apic timer interrupts");
    assert_non_null(c);
    assert_int_equal(c->total, 201);
    assert_int_equal(c->cpu[1], 101);
    assert_true(c->per_cpu);
    assert_int_equal(mv_perfc_find(s, "#IPIs")->total, 20);
    /* App. 6.3 order: "exceptions" first, "vmexits" second. */
    assert_string_equal(s->ctr[0].name, "exceptions");
    assert_string_equal(s->ctr[1].name, "vmexits");

    char *out = print_to_string(s, 0x23BC84B9EEull, "apic timer interrupts");
    assert_string_equal(out, "Performance counters SHOW (now = 0x00000023:BC84B9EE)\n"
                             "apic timer interrupts            TOTAL[       201]"
                             "  CPU00[       100]  CPU02[       101]\n");
    out = print_to_string(s, 0, NULL);
    assert_non_null(strstr(out, "\nexceptions                       TOTAL[         0]  CPU00["));
    assert_non_null(strstr(out, "\n#interrupts                      TOTAL[      2000]"));
    mv_perfc_set_free(s);
}

static void test_totals_only_without_per_cpu_events(void **state)
{
    struct mv_host_counters *hc = host_sample(1);
    hc->per_cpu_sw = false;
    hc->context_switches_total = 4242;
    struct mv_perfc_set *s = mv_perfc_set_new(2, cpu_ids);
    mv_perfc_add_known(s);
    mv_perfc_add_host(s, hc);
    const struct mv_perfc_counter *c = mv_perfc_find(s, "sched: context switches");
    assert_int_equal(c->total, 4242);
    assert_false(c->per_cpu);
    char *out = print_to_string(s, 0, "sched: context switches");
    assert_non_null(strstr(out, "TOTAL[      4242]\n"));
    assert_null(strstr(out, "CPU00"));
    mv_perfc_set_free(s);
}

static void test_vmm_counters(void **state)
{
    json_error_t je;
    json_t *perfc = json_loads("[{\"name\":\"vmexits\",\"kvm\":\"exits\",\"total\":30,"
                               "\"cpu\":[10,20]},"
                               "{\"name\":\"io_exits\",\"kvm\":\"io_exits\",\"total\":5,"
                               "\"cpu\":[5,0]},"
                               "{\"kvm\":\"some_new_stat\",\"total\":9,\"cpu\":[4,5]}]",
                               0, &je);
    assert_non_null(perfc);
    struct mv_perfc_set *s = mv_perfc_set_new(2, cpu_ids);
    mv_perfc_add_known(s);
    int pcpu[2] = {2, -1}; /* vCPU 1's CPU is unknown: TOTAL only */
    assert_int_equal(mv_perfc_add_vmm(s, perfc, pcpu, 2), 3);
    const struct mv_perfc_counter *c = mv_perfc_find(s, "vmexits");
    assert_int_equal(c->total, 30);
    assert_int_equal(c->cpu[0], 0);
    assert_int_equal(c->cpu[1], 10);
    assert_int_equal(mv_perfc_find(s, "io exits")->total, 5);
    c = mv_perfc_find(s, "kvm some_new_stat");
    assert_non_null(c);
    assert_int_equal(c->total, 9);
    /* A second VM adds up. */
    assert_int_equal(mv_perfc_add_vmm(s, perfc, pcpu, 2), 3);
    assert_int_equal(mv_perfc_find(s, "vmexits")->total, 60);
    /* Malformed arrays are refused. */
    json_t *bad = json_loads("[{\"kvm\":\"exits\",\"total\":-1}]", 0, &je);
    assert_int_equal(mv_perfc_add_vmm(s, bad, pcpu, 2), -EINVAL);
    json_decref(bad);
    bad = json_loads("{\"kvm\":\"exits\"}", 0, &je);
    assert_int_equal(mv_perfc_add_vmm(s, bad, pcpu, 2), -EINVAL);
    json_decref(bad);
    /* A per-vCPU value larger than the total is not trusted for attribution. */
    bad = json_loads("[{\"kvm\":\"exits\",\"total\":3,\"cpu\":[10]}]", 0, &je);
    assert_int_equal(mv_perfc_add_vmm(s, bad, pcpu, 1), 1);
    assert_int_equal(mv_perfc_find(s, "vmexits")->total, 63);
    assert_int_equal(mv_perfc_find(s, "vmexits")->cpu[1], 20);
    json_decref(bad);
    json_decref(perfc);
    assert_string_equal(mv_perfc_kvm_alias("pf_taken"), "page faults");
    assert_null(mv_perfc_kvm_alias("nonsense"));
    mv_perfc_set_free(s);
}

static struct mv_perfc_set *sample(uint64_t scale)
{
    struct mv_perfc_set *s = mv_perfc_set_new(2, cpu_ids);
    mv_perfc_add_known(s);
    mv_perfc_add_host(s, host_sample(scale));
    return s;
}

static void test_baseline_reset(void **state)
{
    struct mv_perfc_set *base = mv_perfc_set_new(2, cpu_ids);
    struct mv_perfc_set *raw = sample(5);
    assert_int_equal(mv_perfc_reset(base, raw, "no such counter"), -ENOENT);
    assert_int_equal(base->n, 0); /* a failed reset changes nothing */
    int n = mv_perfc_reset(base, raw, NULL);
    assert_int_equal(n, (int)raw->n);
    mv_perfc_set_free(raw);

    /* Right after the reset everything shows 0... */
    struct mv_perfc_set *cur = sample(5);
    mv_perfc_apply_baseline(base, cur);
    for (unsigned i = 0; i < cur->n; i++)
        assert_int_equal(cur->ctr[i].total, 0);
    mv_perfc_set_free(cur);
    /* ...and counts up again from there: the raw counters were never cleared. */
    cur = sample(8);
    mv_perfc_apply_baseline(base, cur);
    const struct mv_perfc_counter *c = mv_perfc_find(cur, "apic timer interrupts");
    assert_int_equal(c->total, 2 * 300);
    assert_int_equal(c->cpu[0], 300);
    assert_int_equal(c->cpu[1], 300);
    mv_perfc_set_free(cur);
    /* A source that went backwards shows 0 and restarts from its new value. */
    cur = sample(2);
    mv_perfc_apply_baseline(base, cur);
    assert_int_equal(mv_perfc_find(cur, "#IPIs")->total, 0);
    mv_perfc_set_free(cur);
    cur = sample(3);
    mv_perfc_apply_baseline(base, cur);
    assert_int_equal(mv_perfc_find(cur, "#IPIs")->total, 20);
    mv_perfc_set_free(cur);

    /* Resetting one counter leaves the others' baselines alone. */
    raw = sample(10);
    assert_int_equal(mv_perfc_reset(base, raw, "#interrupts"), 1);
    mv_perfc_apply_baseline(base, raw);
    assert_int_equal(mv_perfc_find(raw, "#interrupts")->total, 0);
    assert_int_equal(mv_perfc_find(raw, "#IPIs")->total, 200 - 40);
    mv_perfc_set_free(raw);
    mv_perfc_set_free(base);
}

static void test_json_roundtrip_and_validation(void **state)
{
    struct mv_perfc_set *s = sample(3), *back;
    json_t *j = mv_perfc_to_json(s, 12345, NULL);
    uint64_t now;
    char err[256];
    assert_int_equal(mv_perfc_from_json(j, &back, &now, err, sizeof err), 0);
    assert_int_equal(now, 12345);
    assert_int_equal(back->n, s->n);
    assert_int_equal(back->cpu_ids[1], 2);
    assert_int_equal(mv_perfc_find(back, "#IPIs")->cpu[1], 30);
    mv_perfc_set_free(back);
    json_decref(j);
    j = mv_perfc_to_json(s, 1, "#IPIs");
    assert_int_equal(json_array_size(json_object_get(j, "counters")), 1);
    json_decref(j);

    static const char *const bad[] = {
        "{}",
        "{\"now_ns\":1,\"cpus\":[0],\"counters\":[{\"name\":\"x\",\"total\":1,\"cpu\":[1,2]}]}",
        "{\"now_ns\":1,\"cpus\":[0],\"counters\":[{\"name\":\"x\",\"total\":-1}]}",
        "{\"now_ns\":1,\"cpus\":[-3],\"counters\":[]}",
        "{\"now_ns\":1,\"cpus\":[0],\"counters\":[{\"total\":1}]}",
        "{\"now_ns\":1,\"cpus\":[0],\"counters\":[{\"name\":\"x\",\"total\":1},"
        "{\"name\":\"x\",\"total\":2}]}",
        "{\"now_ns\":1,\"cpus\":[0],\"counters\":[{\"name\":\"x\",\"total\":1,\"cpu\":[\"a\"]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_t je;
        json_t *b = json_loads(bad[i], 0, &je);
        assert_non_null(b);
        back = (void *)1;
        assert_int_equal(mv_perfc_from_json(b, &back, &now, err, sizeof err), -EINVAL);
        assert_null(back);
        assert_true(err[0] != 0);
        json_decref(b);
    }
    mv_perfc_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_counters_and_print),
        cmocka_unit_test(test_totals_only_without_per_cpu_events),
        cmocka_unit_test(test_vmm_counters),
        cmocka_unit_test(test_baseline_reset),
        cmocka_unit_test(test_json_roundtrip_and_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
