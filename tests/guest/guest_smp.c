/* Every vCPU runs: the BSP starts each AP in long mode (MV_HC_START_AP); each AP checks that
 * its LAPIC id is its index and checks in with an atomic increment. */
#include "guest.h"

static volatile uint32_t checked_in;
static volatile uint32_t id_mismatch;

static void ap_main(unsigned cpu, void *arg)
{
    (void)arg;
    if (guest_lapic_id() != cpu)
        __atomic_fetch_add(&id_mismatch, 1, __ATOMIC_SEQ_CST);
    guest_printf("cpu %u up (apic id %u)\n", cpu, guest_lapic_id());
    __atomic_fetch_add(&checked_in, 1, __ATOMIC_SEQ_CST);
}

void guest_main(void)
{
    struct guest_vm_info info;
    guest_vm_info(&info);
    unsigned n = info.nr_vcpus;
    if (n < 2 || n > GUEST_MAX_CPUS) {
        guest_failf("smp", "needs 2..%u vCPUs, has %u", GUEST_MAX_CPUS, n);
        return;
    }
    for (unsigned cpu = 1; cpu < n; cpu++) {
        int rc = guest_start_ap(cpu, ap_main, NULL);
        if (rc) {
            guest_failf("smp", "start of cpu %u failed: %d", cpu, rc);
            return;
        }
    }
    if (guest_start_ap(1, ap_main, NULL) != -16)
        guest_fail("smp", "starting a running AP again was not refused");
    if (guest_start_ap(n, ap_main, NULL) != -22)
        guest_fail("smp", "starting a vCPU that does not exist was not refused");
    /* emulated ring 0 is slow: allow plenty of spins */
    for (uint64_t spins = 0; checked_in < n - 1 && spins < 50000000ull; spins++)
        cpu_relax();
    if (checked_in != n - 1)
        guest_failf("smp", "only %u of %u APs checked in", checked_in, n - 1);
    else if (id_mismatch)
        guest_failf("smp", "%u APs had an APIC id other than their index", id_mismatch);
    else
        guest_pass("smp");
}
