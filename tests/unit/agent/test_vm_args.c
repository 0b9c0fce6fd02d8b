/* VM ops: request validation (vm_start's cross-field rules, nested disks/nics, CPU lists), the
 * mvvmm arguments built from a request (--pin, --disk aoe:..., --net tap=...), device names, the
 * cpuset cgroup on fake v1 and v2 trees, and how VMM exits read as D2.3 states. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/agent_proto.h"
#include "mv/util.h"
#include "mv/vm.h"
#include "mv/vm_args.h"
#include "mv/vm_cgroup.h"

#define UUID "0b7c2b4e-6f1a-4c55-9d3e-2a9f1e0c7d11"
#define BASE "{\"uuid\":\"" UUID "\",\"vcpus\":2,\"mem_mb\":64,\"payload\":\"/g/idle.elf\""

static int parse_start(const char *json, char *err, size_t errlen)
{
    json_t *out = (json_t *)1;
    int rc = mv_agent_request_parse(MV_AGENT_OP_VM_START, json, strlen(json), &out, err, errlen);
    if (rc == 0) {
        assert_non_null(out);
        json_decref(out);
    } else {
        assert_null(out);
        assert_true(err[0] != 0);
    }
    return rc;
}

static json_t *start_req(const char *json)
{
    char err[256];
    json_t *out;
    int rc =
        mv_agent_request_parse(MV_AGENT_OP_VM_START, json, strlen(json), &out, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: %s", json, err);
    return out;
}

static void test_vm_start_valid(void **state)
{
    char err[256];
    assert_int_equal(parse_start(BASE "}", err, sizeof err), 0);
    assert_int_equal(
        parse_start(BASE ",\"name\":\"web 1\",\"cpuset\":\"2-3\",\"pin\":\"3,2\",\"vnuma\":"
                         "\"nodes=1\",\"disks\":[{\"id\":\"d0\",\"shelf\":3,\"slot\":1,\"target\":"
                         "\"local\"},{\"id\":\"d1\",\"shelf\":4,\"slot\":0,\"target\":"
                         "\"02:6d:76:25:00:02\",\"ro\":true},{\"id\":\"d2\",\"path\":\"/img\"}],"
                         "\"nics\":[{\"id\":\"n0\",\"network_id\":7,\"vlan\":100,\"mac\":"
                         "\"02:00:00:00:00:01\"},{\"id\":\"n1\",\"network_id\":8}]}",
                    err, sizeof err),
        0);
    assert_int_equal(parse_start("{\"uuid\":\"vm1\",\"vcpus\":1,\"mem_mb\":16,\"kernel\":\"/k\","
                                 "\"initrd\":\"/i\",\"cmdline\":\"console=ttyS0\",\"disks\":[],"
                                 "\"nics\":[]}",
                                 err, sizeof err),
                     0);
    /* Every other VM op takes a uuid; stop has force and timeout_ms; list takes nothing. */
    json_t *o;
    const char *stop = "{\"uuid\":\"a1\",\"force\":true,\"timeout_ms\":0}";
    assert_int_equal(
        mv_agent_request_parse(MV_AGENT_OP_VM_STOP, stop, strlen(stop), &o, err, sizeof err), 0);
    json_decref(o);
    static const uint16_t uuid_ops[] = {MV_AGENT_OP_VM_REBOOT, MV_AGENT_OP_VM_PAUSE,
                                        MV_AGENT_OP_VM_UNPAUSE, MV_AGENT_OP_VM_DELETE,
                                        MV_AGENT_OP_VM_INFO};
    for (size_t i = 0; i < MV_ARRAY_SIZE(uuid_ops); i++) {
        assert_int_equal(
            mv_agent_request_parse(uuid_ops[i], "{\"uuid\":\"a1\"}", 13, &o, err, sizeof err), 0);
        json_decref(o);
        assert_int_equal(mv_agent_request_parse(uuid_ops[i], "{}", 2, &o, err, sizeof err),
                         -EINVAL);
    }
    assert_int_equal(mv_agent_request_parse(MV_AGENT_OP_VM_LIST, "", 0, &o, err, sizeof err), 0);
    json_decref(o);
    assert_string_equal(mv_agent_op_name(0x0130), "vm_start");
    assert_string_equal(mv_agent_op_name(0x0137), "vm_list");
    assert_int_equal(mv_agent_op_by_name("vm_unpause")->op, 0x0134);
}

static void test_vm_start_invalid(void **state)
{
    static const char *const bad[] = {
        "{\"uuid\":\"" UUID "\",\"vcpus\":2,\"mem_mb\":64}", /* no image */
        BASE ",\"kernel\":\"/k\"}",                          /* payload and kernel */
        BASE ",\"initrd\":\"/i\"}",                          /* initrd without kernel */
        BASE ",\"cmdline\":\"x\"}",                          /* cmdline without kernel */
        BASE ",\"pin\":\"1\"}",                              /* 1 CPU for 2 vCPUs */
        BASE ",\"pin\":\"1,2,3\"}",                          /* 3 CPUs for 2 vCPUs */
        BASE ",\"pin\":\"1,1\"}",                            /* a CPU twice */
        BASE ",\"cpuset\":\"2-3\",\"pin\":\"1,2\"}",         /* pin outside cpuset */
        BASE ",\"cpuset\":\"3-1\"}",                         /* backwards range */
        BASE ",\"cpuset\":\"1,\"}",                          /* trailing comma */
        BASE ",\"cpuset\":\"\"}",                            /* empty */
        BASE ",\"cpuset\":\"1024\"}",                        /* CPU out of range */
        BASE ",\"cpuset\":\" 1\"}",                          /* not a list */
        BASE ",\"cpuset\":2}",                               /* not a string */
        "{\"uuid\":\"..\",\"vcpus\":1,\"mem_mb\":1,\"payload\":\"/p\"}",        /* dots */
        "{\"uuid\":\"-x\",\"vcpus\":1,\"mem_mb\":1,\"payload\":\"/p\"}",        /* leading dash */
        "{\"uuid\":\"a/b\",\"vcpus\":1,\"mem_mb\":1,\"payload\":\"/p\"}",       /* slash */
        "{\"uuid\":\"" UUID "0\",\"vcpus\":1,\"mem_mb\":1,\"payload\":\"/p\"}", /* 37 chars */
        "{\"uuid\":\"a\",\"vcpus\":0,\"mem_mb\":1,\"payload\":\"/p\"}",         /* 0 vCPUs */
        "{\"uuid\":\"a\",\"vcpus\":65,\"mem_mb\":1,\"payload\":\"/p\"}",        /* 65 vCPUs */
        "{\"uuid\":\"a\",\"vcpus\":1,\"mem_mb\":0,\"payload\":\"/p\"}",         /* no memory */
        "{\"uuid\":\"a\",\"vcpus\":1,\"mem_mb\":1,\"payload\":\"p\"}",          /* relative */
        "{\"uuid\":\"a\",\"vcpus\":1,\"mem_mb\":1,\"payload\":\"/a/../p\"}",    /* .. */
        BASE ",\"disks\":{}}",                                                  /* not an array */
        BASE ",\"disks\":[1]}",                                                 /* not objects */
        BASE ",\"disks\":[{\"shelf\":1,\"slot\":1,\"target\":\"local\"}]}",     /* no id */
        BASE ",\"disks\":[{\"id\":\"d\",\"shelf\":1,\"slot\":1}]}",             /* no target */
        BASE ",\"disks\":[{\"id\":\"d\",\"shelf\":1,\"target\":\"local\"}]}",   /* no slot */
        BASE ",\"disks\":[{\"id\":\"d\",\"path\":\"/x\",\"shelf\":1}]}",        /* both kinds */
        BASE ",\"disks\":[{\"id\":\"d\"}]}",                                    /* neither */
        BASE ",\"disks\":[{\"id\":\"d\",\"shelf\":1,\"slot\":1,\"target\":\"remote\"}]}",
        BASE ",\"disks\":[{\"id\":\"d\",\"shelf\":65535,\"slot\":1,\"target\":\"local\"}]}",
        BASE ",\"disks\":[{\"id\":\"d\",\"shelf\":1,\"slot\":255,\"target\":\"local\"}]}",
        BASE ",\"disks\":[{\"id\":\"d\",\"path\":\"/x\",\"size\":1}]}", /* unknown key */
        BASE ",\"disks\":[{\"id\":\"d\",\"path\":\"/x\"},{\"id\":\"d\",\"path\":\"/y\"}]}",
        BASE ",\"nics\":[{\"id\":\"n\"}]}", /* no network */
        BASE ",\"nics\":[{\"id\":\"n\",\"network_id\":1,\"vlan\":4095}]}",
        BASE ",\"nics\":[{\"id\":\"n\",\"network_id\":100000000000}]}", /* bridge name */
        BASE ",\"nics\":[{\"id\":\"n\",\"network_id\":1,\"mac\":\"03:00:00:00:00:01\"}]}",
        BASE ",\"nics\":[{\"id\":\"n\",\"network_id\":1,\"mac\":\"02:00:00:00:00\"}]}",
        BASE ",\"nics\":[{\"id\":\"n\",\"network_id\":1},{\"id\":\"n\",\"network_id\":2}]}",
        BASE ",\"extra\":1}",
    };
    for (size_t i = 0; i < MV_ARRAY_SIZE(bad); i++) {
        char err[256] = "";
        if (parse_start(bad[i], err, sizeof err) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(strstr(err, "vm_start: "));
    }
    /* 17 disks: one more than allowed. */
    char big[4096];
    size_t off = (size_t)snprintf(big, sizeof big, BASE ",\"disks\":[");
    for (int i = 0; i < 17; i++)
        off += (size_t)snprintf(big + off, sizeof big - off, "%s{\"id\":\"d%d\",\"path\":\"/x\"}",
                                i ? "," : "", i);
    snprintf(big + off, sizeof big - off, "]}");
    char err[256];
    assert_int_equal(parse_start(big, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "at most 16"));
    /* Error messages name the element. */
    parse_start(BASE ",\"disks\":[{\"id\":\"d\",\"path\":\"/x\"},{\"id\":\"e\",\"path\":\"x\"}]}",
                err, sizeof err);
    assert_non_null(strstr(err, "disks[1]"));
}

static void test_cpulist(void **state)
{
    uint64_t set[MV_AGENT_CPUSET_WORDS];
    uint16_t order[MV_AGENT_CPU_MAX + 1];
    unsigned n;
    assert_int_equal(mv_agent_cpulist_parse("5,0-2,64", set, &n, order), 0);
    assert_int_equal(n, 5);
    assert_int_equal(order[0], 5);
    assert_int_equal(order[1], 0);
    assert_int_equal(order[3], 2);
    assert_int_equal(order[4], 64);
    assert_int_equal(set[0], (1ull << 5) | 7);
    assert_int_equal(set[1], 1);
    assert_int_equal(mv_agent_cpulist_parse("1023", set, &n, NULL), 0);
    assert_int_equal(mv_agent_cpulist_parse("0-2,2", set, &n, NULL), -1);
    assert_int_equal(mv_agent_cpulist_parse("1-", set, &n, NULL), -1);
    assert_int_equal(mv_agent_cpulist_parse("-1", set, &n, NULL), -1);
    assert_int_equal(mv_agent_cpulist_parse("1,,2", set, &n, NULL), -1);
    assert_int_equal(mv_agent_cpulist_parse("99999999999999999999", set, &n, NULL), -1);
}

static void test_pin_arg(void **state)
{
    char buf[64];
    json_t *r = start_req(BASE ",\"cpuset\":\"0-3\",\"pin\":\"3,1\"}");
    assert_int_equal(mv_vm_pin_arg(r, buf, sizeof buf), 0);
    assert_string_equal(buf, "3,1"); /* vCPU order kept: vcpu0 -> 3, vcpu1 -> 1 */
    json_decref(r);
    r = start_req(BASE ",\"pin\":\"6-7\"}");
    assert_int_equal(mv_vm_pin_arg(r, buf, sizeof buf), 0);
    assert_string_equal(buf, "6,7");
    json_decref(r);
    r = start_req(BASE ",\"cpuset\":\"2-3\"}");
    assert_int_equal(mv_vm_pin_arg(r, buf, sizeof buf), 0);
    assert_string_equal(buf, "float:2-3");
    json_decref(r);
    r = start_req(BASE "}");
    assert_int_equal(mv_vm_pin_arg(r, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    json_decref(r);
    r = start_req(BASE ",\"cpuset\":\"0-1000\"}");
    assert_int_equal(mv_vm_pin_arg(r, buf, 8), -ENAMETOOLONG);
    json_decref(r);
}

static void test_disk_arg(void **state)
{
    struct mv_vm_host h = {.vmm_path = "/b/mvvmm",
                           .run_dir = "/run/vm",
                           .aoe_socket = "/run/mvstored.aoe",
                           .aoe_ifname = "eth0"};
    json_t *r = start_req(
        BASE ",\"disks\":[{\"id\":\"a\",\"shelf\":3,\"slot\":1,\"target\":\"local\"},"
             "{\"id\":\"b\",\"shelf\":4,\"slot\":2,\"target\":\"02:6D:76:25:00:02\",\"ro\":true},"
             "{\"id\":\"c\",\"path\":\"/img/root.raw\",\"ro\":true},"
             "{\"id\":\"d\",\"path\":\"/img/a,b\"}]}");
    json_t *d = json_object_get(r, "disks");
    char buf[256], err[256];
    assert_int_equal(mv_vm_disk_arg(&h, json_array_get(d, 0), buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(buf, "aoe:3.1,unix=/run/mvstored.aoe");
    assert_int_equal(mv_vm_disk_arg(&h, json_array_get(d, 1), buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(buf, "aoe:4.2,if=eth0,target=02:6d:76:25:00:02,ro");
    assert_int_equal(mv_vm_disk_arg(&h, json_array_get(d, 2), buf, sizeof buf, err, sizeof err), 0);
    assert_string_equal(buf, "/img/root.raw,ro");
    /* A comma would split mvvmm's option. */
    assert_int_equal(mv_vm_disk_arg(&h, json_array_get(d, 3), buf, sizeof buf, err, sizeof err),
                     -EINVAL);
    /* No local mvstored AoE socket configured: a local disk cannot be served. */
    h.aoe_socket = "";
    assert_int_equal(mv_vm_disk_arg(&h, json_array_get(d, 0), buf, sizeof buf, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "stored_aoe_socket"));
    assert_int_equal(mv_vm_disk_arg(&h, json_array_get(d, 1), buf, 10, err, sizeof err),
                     -ENAMETOOLONG);
    json_decref(r);
}

static void test_names(void **state)
{
    char b[32];
    assert_int_equal(mv_vm_tap_name(UUID, 0, b, sizeof b), 0);
    assert_string_equal(b, "mvt0b7c2b4e-60");
    assert_int_equal(mv_vm_tap_name(UUID, 7, b, sizeof b), 0);
    assert_string_equal(b, "mvt0b7c2b4e-67");
    assert_true(strlen(b) <= 15);
    assert_int_equal(mv_vm_tap_name("vm1", 3, b, sizeof b), 0);
    assert_string_equal(b, "mvtvm13");
    assert_int_equal(mv_vm_tap_name(UUID, 100, b, sizeof b), -EINVAL);
    assert_int_equal(mv_vm_bridge_name(42, b, sizeof b), 0);
    assert_string_equal(b, "mvbr42");
    assert_int_equal(mv_vm_bridge_name(99999999999ull, b, sizeof b), 0);
    assert_int_equal(mv_vm_bridge_name(100000000000ull, b, sizeof b), -EINVAL);
    assert_int_equal(mv_vm_vlan_ifname("eth0", 42, b, sizeof b), 0);
    assert_string_equal(b, "eth0.42");
    assert_int_equal(mv_vm_vlan_ifname("enp129s0f1np1", 4094, b, sizeof b), 0);
    assert_true(strlen(b) <= 15);
    assert_int_equal(strncmp(b, "mvv4094.", 8), 0);
    char b2[32];
    assert_int_equal(mv_vm_vlan_ifname("enp129s0f0np0", 4094, b2, sizeof b2), 0);
    assert_string_not_equal(b, b2); /* uplinks stay apart */
    assert_int_equal(mv_vm_vlan_ifname("eth0", 0, b, sizeof b), -EINVAL);
    char mac[18], mac2[18];
    json_t *nic = json_pack("{s:s}", "mac", "02:00:00:00:00:09");
    mv_vm_nic_mac(UUID, 0, nic, mac);
    assert_string_equal(mac, "02:00:00:00:00:09");
    json_decref(nic);
    mv_vm_nic_mac(UUID, 0, NULL, mac);
    mv_vm_nic_mac(UUID, 1, NULL, mac2);
    assert_int_equal(strncmp(mac, "02:6d:", 6), 0);
    assert_string_not_equal(mac, mac2);
    char p[64];
    assert_int_equal(mv_vm_file_path("/run/vm", "x", ".sock", p, sizeof p), 0);
    assert_string_equal(p, "/run/vm/x.sock");
    assert_int_equal(mv_vm_file_path("/run/vm", "x", ".sock", p, 8), -ENAMETOOLONG);
}

static int argv_has(char **argv, const char *opt, const char *val)
{
    for (size_t i = 0; argv[i] && argv[i + 1]; i++)
        if (strcmp(argv[i], opt) == 0 && strcmp(argv[i + 1], val) == 0)
            return 1;
    return 0;
}

static void test_build_argv(void **state)
{
    struct mv_vm_host h = {.vmm_path = "/b/mvvmm",
                           .run_dir = "/run/vm",
                           .aoe_socket = "/run/aoe.sock",
                           .aoe_ifname = "eth0",
                           .stop_timeout_ms = 600000};
    json_t *r = start_req(BASE ",\"name\":\"web\",\"cpuset\":\"0-3\",\"pin\":\"2,3\",\"disks\":["
                               "{\"id\":\"a\",\"shelf\":1,\"slot\":0,\"target\":\"local\"}],"
                               "\"nics\":[{\"id\":\"n\",\"network_id\":5}]}");
    char **argv, err[256];
    assert_int_equal(mv_vm_build_argv(&h, r, &argv, err, sizeof err), 0);
    assert_string_equal(argv[0], "/b/mvvmm");
    assert_true(argv_has(argv, "--name", "web"));
    assert_true(argv_has(argv, "--vcpus", "2"));
    assert_true(argv_has(argv, "--mem", "64M"));
    assert_true(argv_has(argv, "--payload", "/g/idle.elf"));
    assert_true(argv_has(argv, "--pin", "2,3"));
    assert_true(argv_has(argv, "--disk", "aoe:1.0,unix=/run/aoe.sock"));
    char mac[18], net[64];
    mv_vm_nic_mac(UUID, 0, NULL, mac);
    snprintf(net, sizeof net, "tap=mvt0b7c2b4e-60,mac=%s", mac);
    assert_true(argv_has(argv, "--net", net));
    assert_true(argv_has(argv, "--control-socket", "/run/vm/" UUID ".sock"));
    assert_true(argv_has(argv, "--serial", "file:/run/vm/" UUID ".console"));
    assert_true(argv_has(argv, "--stop-timeout", "600000"));
    mv_vm_argv_free(argv);
    json_decref(r);
    /* A disk the host cannot serve fails the whole launch, with the reason. */
    h.aoe_socket = NULL;
    r = start_req(BASE ",\"disks\":[{\"id\":\"a\",\"shelf\":1,\"slot\":0,\"target\":\"local\"}]}");
    assert_int_equal(mv_vm_build_argv(&h, r, &argv, err, sizeof err), -EINVAL);
    assert_null(argv);
    json_decref(r);
}

/* ---- cgroups on fake trees ---- */

static void put(const char *dir, const char *file, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void get(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    assert_true(mv_read_file(path, buf, cap) >= 0);
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_cgroup_v1(void **state)
{
    char fs[] = "/tmp/hia-cgv1-XXXXXX", d[64], buf[256], path[512], err[256];
    assert_non_null(mkdtemp(fs));
    snprintf(d, sizeof d, "%s/cpuset", fs);
    mkdir(d, 0755);
    put(d, "cpuset.cpus", "0-7\n");
    put(d, "cpuset.mems", "0-1\n");
    struct mv_cgroup_root r;
    assert_int_equal(mv_cgroup_detect("auto", fs, "mvkvm", &r, err, sizeof err), 0);
    assert_int_equal(r.kind, MV_CGROUP_V1);
    assert_string_equal(r.path, d);
    assert_int_equal(mv_cgroup_vm_create(&r, "vm1", "2-3", path, sizeof path, err, sizeof err), 0);
    snprintf(buf, sizeof buf, "%s/mvkvm/vm1", d);
    assert_string_equal(path, buf);
    /* The parent inherited the root's CPUs and memory nodes, the VM got its CPUs. */
    snprintf(path, sizeof path, "%s/mvkvm/cpuset.cpus", d);
    get(path, buf, sizeof buf);
    assert_string_equal(buf, "0-7");
    snprintf(path, sizeof path, "%s/mvkvm/vm1/cpuset.cpus", d);
    get(path, buf, sizeof buf);
    assert_string_equal(buf, "2-3");
    snprintf(path, sizeof path, "%s/mvkvm/vm1/cpuset.mems", d);
    get(path, buf, sizeof buf);
    assert_string_equal(buf, "0-1");
    /* No cpuset asked: the parent's CPUs. A parent already set is left as it is. */
    snprintf(path, sizeof path, "%s/mvkvm", d);
    put(path, "cpuset.cpus", "4-5\n");
    assert_int_equal(mv_cgroup_vm_create(&r, "vm2", NULL, path, sizeof path, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/mvkvm/vm2/cpuset.cpus", d);
    get(path, buf, sizeof buf);
    assert_string_equal(buf, "4-5");
    /* Attaching writes the pid into cgroup.procs, which must exist (a real cgroup has it). */
    snprintf(path, sizeof path, "%s/mvkvm/vm1", d);
    assert_int_equal(mv_cgroup_attach(path, 1234), -ENOENT);
    put(path, "cgroup.procs", "");
    assert_int_equal(mv_cgroup_attach(path, 1234), 0);
    snprintf(path, sizeof path, "%s/mvkvm/vm1/cgroup.procs", d);
    get(path, buf, sizeof buf);
    assert_string_equal(buf, "1234");
    /* Removing an unknown VM's cgroup is fine. */
    assert_int_equal(mv_cgroup_vm_remove(&r, "nope"), 0);
    /* An explicit v2 request on a v1-only tree fails with a reason. */
    assert_int_equal(mv_cgroup_detect("v2", fs, "mvkvm", &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "v2"));
    rm_rf(fs);
}

static void test_cgroup_v2(void **state)
{
    char fs[] = "/tmp/hia-cgv2-XXXXXX", d[64], buf[256], path[512], err[256];
    assert_non_null(mkdtemp(fs));
    snprintf(d, sizeof d, "%s/unified", fs);
    mkdir(d, 0755);
    put(d, "cgroup.controllers", "cpu io memory\n");
    struct mv_cgroup_root r;
    /* No cpuset controller anywhere: auto falls back to none, explicit v2 fails. */
    assert_int_equal(mv_cgroup_detect("auto", fs, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r.kind, MV_CGROUP_NONE);
    assert_int_equal(mv_cgroup_vm_create(&r, "vm1", "1", path, sizeof path, err, sizeof err), 0);
    assert_string_equal(path, "");
    assert_int_equal(mv_cgroup_detect("v1", fs, NULL, &r, err, sizeof err), -1);
    put(d, "cgroup.controllers", "cpu cpuset io\n");
    assert_int_equal(mv_cgroup_detect("auto", fs, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r.kind, MV_CGROUP_V2);
    assert_string_equal(r.path, d);
    assert_string_equal(r.parent, "mvkvm");
    assert_int_equal(mv_cgroup_vm_create(&r, "vm1", "0,2", path, sizeof path, err, sizeof err), 0);
    /* cpuset handed down at every level, the VM's CPUs set. */
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", d);
    get(path, buf, sizeof buf);
    assert_string_equal(buf, "+cpuset");
    snprintf(path, sizeof path, "%s/mvkvm/cgroup.subtree_control", d);
    get(path, buf, sizeof buf);
    assert_string_equal(buf, "+cpuset");
    snprintf(path, sizeof path, "%s/mvkvm/vm1/cpuset.cpus", d);
    get(path, buf, sizeof buf);
    assert_string_equal(buf, "0,2");
    assert_int_equal(mv_cgroup_detect("bogus", fs, NULL, &r, err, sizeof err), -1);
    assert_int_equal(mv_cgroup_detect("none", fs, NULL, &r, err, sizeof err), 0);
    assert_int_equal(r.kind, MV_CGROUP_NONE);
    rm_rf(fs);
}

static void test_states(void **state)
{
    char why[128];
    assert_string_equal(mv_vm_exit_state(1, 0, why, sizeof why), "STOPPED");
    assert_non_null(strstr(why, "powered off"));
    assert_string_equal(mv_vm_exit_state(1, 3, why, sizeof why), "STOPPED");
    assert_non_null(strstr(why, "status 3"));
    assert_string_equal(mv_vm_exit_state(1, 125, why, sizeof why), "ERROR");
    assert_non_null(strstr(why, "crashed"));
    assert_string_equal(mv_vm_exit_state(1, 1, why, sizeof why), "ERROR");
    assert_string_equal(mv_vm_exit_state(0, 9, why, sizeof why), "ERROR");
    assert_non_null(strstr(why, "signal 9"));
    assert_int_equal(mv_vm_state_code("ACTIVE"), 1);
    assert_int_equal(mv_vm_state_code("PAUSED"), 3);
    assert_int_equal(mv_vm_state_code("POWERING-OFF"), 4);
    assert_int_equal(mv_vm_state_code("STOPPED"), 5);
    assert_int_equal(mv_vm_state_code("ERROR"), 6);
    assert_int_equal(mv_vm_state_code("BUILD"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vm_start_valid), cmocka_unit_test(test_vm_start_invalid),
        cmocka_unit_test(test_cpulist),        cmocka_unit_test(test_pin_arg),
        cmocka_unit_test(test_disk_arg),       cmocka_unit_test(test_names),
        cmocka_unit_test(test_build_argv),     cmocka_unit_test(test_cgroup_v1),
        cmocka_unit_test(test_cgroup_v2),      cmocka_unit_test(test_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
