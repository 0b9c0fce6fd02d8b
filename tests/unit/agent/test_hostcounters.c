#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/hostcounters.h"

static struct mv_host_counters c, c2;

static const char stat_text[] = "cpu  8193 0 2748 80788 621 0 62 76 0 0\n"
                                "cpu0 100 1 50 1000 10 2 3 4 0 0\n"
                                "cpu2 200 0 100 2000 20 0 0 0 0 0\n"
                                "intr 123456 1 2 3\n"
                                "ctxt 987654\n"
                                "btime 1700000000\n";

/* CPU1 is offline: it has no line in /proc/stat and no column in /proc/interrupts. */
static const char irq_text[] = "           CPU0       CPU2       \n"
                               "  0:         40          0   IO-APIC   2-edge      timer\n"
                               "LOC:      27692      31883   Local timer interrupts\n"
                               "RES:      11900      12633   Rescheduling interrupts\n"
                               "CAL:      62188      40557   Function call interrupts\n"
                               "TLB:       2679       2493   TLB shootdowns\n"
                               "ERR:          0\n"
                               "MIS:          0\n";

static void test_parse_stat(void **state)
{
    memset(&c, 0, sizeof c);
    assert_int_equal(mv_host_counters_parse_stat(stat_text, 100, &c), 0);
    assert_int_equal(c.ncpus, 2);
    assert_int_equal(c.cpu_ids[1], 2);
    /* (100+1+50+2+3+4) ticks at 100 Hz = 1.6 s */
    assert_int_equal(c.cpu_busy_ns[0], 1600000000ull);
    assert_int_equal(c.cpu_idle_ns[0], 10100000000ull);
    assert_int_equal(c.context_switches_total, 987654);
    assert_int_equal(c.interrupts_total, 123456);
    assert_int_equal(mv_host_counters_parse_stat("garbage\n", 100, &c2), -EINVAL);
    assert_int_equal(mv_host_counters_parse_stat("", 100, &c2), -EINVAL);
}

static void test_parse_interrupts(void **state)
{
    assert_int_equal(mv_host_counters_parse_interrupts(irq_text, &c), 0);
    assert_int_equal(c.timer_interrupts[0], 27692);
    assert_int_equal(c.timer_interrupts[1], 31883);
    assert_int_equal(c.ipis[0], 11900 + 62188 + 2679);
    assert_int_equal(c.tlb_shootdowns[1], 2493);
    assert_int_equal(c.interrupts[0], 40 + 27692 + 11900 + 62188 + 2679);
    assert_int_equal(mv_host_counters_parse_interrupts("no header", &c2), -EINVAL);
    assert_int_equal(mv_host_counters_parse_interrupts("nothing\nLOC: 1 2\n", &c2), -EINVAL);
    /* Truncated lines count what is there and stop, never read past the text. */
    assert_int_equal(mv_host_counters_parse_interrupts("  CPU0 CPU2\nLOC: 5", &c), 0);
    assert_int_equal(c.timer_interrupts[0], 5);
    assert_int_equal(c.timer_interrupts[1], 0);
}

static void test_parse_vmstat(void **state)
{
    assert_int_equal(mv_host_counters_parse_vmstat("nr_free_pages 1\npgfault 4277301\n", &c), 0);
    assert_int_equal(c.page_faults_total, 4277301);
    assert_int_equal(mv_host_counters_parse_vmstat("pgmajfault 3\n", &c2), -EINVAL);
}

static void test_this_machine(void **state)
{
    struct mv_host_counter_source *src;
    assert_int_equal(mv_host_counters_open(&src, "/proc"), 0);
    assert_int_equal(mv_host_counters_read(src, &c), 0);
    assert_true(c.ncpus >= 1);
    assert_true(c.context_switches_total > 0);
    assert_true(c.page_faults_total > 0);
    /* Make some faults and switches happen, then everything counts up, nothing down. */
    for (int i = 0; i < 20; i++)
        usleep(1000);
    assert_int_equal(mv_host_counters_read(src, &c2), 0);
    assert_int_equal(c2.ncpus, c.ncpus);
    assert_true(c2.context_switches_total > c.context_switches_total);
    uint64_t cs1 = 0, cs2 = 0;
    for (int i = 0; i < c.ncpus; i++) {
        assert_true(c2.cpu_busy_ns[i] + c2.cpu_idle_ns[i] >= c.cpu_busy_ns[i] + c.cpu_idle_ns[i]);
        assert_true(c2.interrupts[i] >= c.interrupts[i]);
        cs1 += c.context_switches[i];
        cs2 += c2.context_switches[i];
    }
    if (c2.per_cpu_sw) /* root: perf software events per CPU */
        assert_true(cs2 > cs1);
    mv_host_counters_close(src);
    assert_int_equal(mv_host_counters_open(&src, "/nonexistent"), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_parse_interrupts),
        cmocka_unit_test(test_parse_vmstat),
        cmocka_unit_test(test_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
