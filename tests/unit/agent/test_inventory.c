/* Inventory: against this machine's real sysfs/procfs, and against a recorded tree of a
 * two-socket, two-node host (a layout this machine does not have). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/inventory.h"

static struct mv_inventory inv;

static void put(const char *root, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    /* mkdir -p of the parent */
    for (char *p = path + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_node_and_core_ids(void **state)
{
    const uint8_t mac[6] = {0x02, 0x6d, 0x54, 0x42, 0x44, 0x88};
    char id[MV_NODE_ID_LEN], core[32];
    mv_inventory_node_id(mac, id);
    assert_string_equal(id, "54424488");
    mv_inventory_core_id(id, 4, core, sizeof core);
    assert_string_equal(core, "54424488_4"); /* the example of D2.3 §3.4.1 */
}

static void test_recorded_two_node_host(void **state)
{
    char root[] = "/tmp/mvinvXXXXXX";
    assert_non_null(mkdtemp(root));
    char sys[256], proc[256];
    snprintf(sys, sizeof sys, "%s/sys", root);
    snprintf(proc, sizeof proc, "%s/proc", root);
    put(sys, "class/net/eth0/address", "02:6d:00:00:01:07\n");
    put(sys, "class/net/eth0/mtu", "9000\n");
    put(sys, "class/net/eth0/operstate", "up\n");
    put(sys, "class/net/eth0/speed", "10000\n");
    for (int cpu = 0; cpu < 4; cpu++) {
        char rel[128], val[16];
        snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/topology/core_id", cpu);
        snprintf(val, sizeof val, "%d\n", cpu % 2);
        put(sys, rel, val);
        snprintf(rel, sizeof rel, "devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        snprintf(val, sizeof val, "%d\n", cpu / 2);
        put(sys, rel, val);
        snprintf(rel, sizeof rel, "devices/system/node/node%d/cpu%d", cpu / 2, cpu);
        put(sys, rel, "");
    }
    put(sys, "devices/system/cpu/cpu3/online", "0\n");
    put(sys, "devices/system/node/node0/meminfo",
        "Node 0 MemTotal:  8000000 kB\nNode 0 MemFree:   6000000 kB\n");
    put(sys, "devices/system/node/node1/meminfo",
        "Node 1 MemTotal:  8000000 kB\nNode 1 MemFree:   5000000 kB\n");
    put(proc, "meminfo",
        "MemTotal: 16000000 kB\nMemFree: 11000000 kB\nMemAvailable: 12000000 kB\n");
    put(proc, "loadavg", "0.50 0.25 0.10 1/100 42\n");

    char err[256];
    strcpy(inv.labels.rack, "r1");
    assert_int_equal(mv_inventory_collect(&inv, sys, proc, "eth0", err, sizeof err), 0);
    assert_string_equal(inv.node_id, "00000107");
    assert_string_equal(inv.labels.rack, "r1"); /* labels from config survive collection */
    assert_int_equal(inv.ncpus, 4);
    assert_int_equal(inv.nnodes, 2);
    assert_int_equal(inv.cpus[2].socket_id, 1);
    assert_int_equal(inv.cpus[2].numa_node, 1);
    assert_int_equal(inv.cpus[3].online, 0);
    assert_int_equal(inv.cpus[0].online, 1);
    int n1 = inv.nodes[0].id == 1 ? 0 : 1;
    assert_int_equal(inv.nodes[n1].mem_free_kb, 5000000);
    assert_int_equal(inv.nodes[n1].ncpus, 2);
    assert_int_equal(inv.mem_total_kb, 16000000);
    assert_int_equal(inv.mem_free_kb, 12000000);
    assert_int_equal(inv.nnics, 1);
    assert_int_equal(inv.nics[0].mtu, 9000);
    assert_int_equal(inv.nics[0].speed_mbps, 10000);
    assert_true(inv.loadavg[0] > 0.49 && inv.loadavg[0] < 0.51);

    json_t *j = mv_inventory_to_json(&inv);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "node_id")), "00000107");
    json_t *cpus = json_object_get(j, "cpus");
    assert_int_equal(json_array_size(cpus), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cpus, 2), "id")),
                        "00000107_2");
    json_decref(j);

    /* Missing interface and missing CPUs are errors that say what is wrong. */
    assert_int_not_equal(mv_inventory_collect(&inv, sys, proc, "eth9", err, sizeof err), 0);
    assert_non_null(strstr(err, "eth9"));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

static void test_this_machine(void **state)
{
    /* Any interface with a MAC will do as the control interface. */
    FILE *p = popen("ls /sys/class/net | grep -v '^lo$' | head -n1", "r");
    char ifname[64] = "";
    assert_non_null(p);
    if (!fgets(ifname, sizeof ifname, p))
        ifname[0] = '\0';
    pclose(p);
    ifname[strcspn(ifname, "\n")] = '\0';
    if (!ifname[0])
        skip();
    char err[256];
    assert_int_equal(mv_inventory_collect(&inv, "/sys", "/proc", ifname, err, sizeof err), 0);
    assert_int_equal(inv.ncpus, get_nprocs_conf());
    assert_true(inv.nnodes >= 1);
    struct sysinfo si;
    sysinfo(&si);
    assert_int_equal(inv.mem_total_kb, (uint64_t)si.totalram * si.mem_unit / 1024);
    int on_nodes = 0;
    for (int i = 0; i < inv.nnodes; i++)
        on_nodes += inv.nodes[i].ncpus;
    assert_int_equal(on_nodes, inv.ncpus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_and_core_ids),
        cmocka_unit_test(test_recorded_two_node_host),
        cmocka_unit_test(test_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
