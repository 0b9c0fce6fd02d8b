/* mvagent: the host agent daemon. Command line and config file here; everything else in
 * libmvagent (mv/agent.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mv/agent.h"
#include "mv/daemon.h"
#include "mv/log.h"
#include "mv/port.h"

#ifndef MV_VERSION
#define MV_VERSION "0"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mvagent [options]\n"
            "The mvkvm host agent: inventory, storage relay to mvstored, statistics (EtherType\n"
            "0x88B6) and performance counters, over the authenticated control channel (0x88B5).\n"
            "  -c, --config FILE          INI file with an [agent] section (default "
            "%s if it exists);\n"
            "                             keys are the long option names with '_' for '-'\n"
            "  -i, --interface IF         control interface\n"
            "  -k, --key-file FILE        cluster key file\n"
            "      --blade L, --chassis L, --rack L   fault-domain labels\n"
            "      --roles LIST           hypervisor,storage,controller (default hypervisor)\n"
            "  -s, --stats-interval SECS  statistics interval (default 10; '500ms' allowed)\n"
            "      --stats-collector MAC  send statistics to this MAC (default broadcast)\n"
            "      --hello-interval SECS  discovery HELLO interval (default 1)\n"
            "      --stored-socket PATH   mvstored's control socket (enables drive operations)\n"
            "      --vmm-run-dir DIR      where mvvmm control sockets (<uuid>.sock) live\n"
            "      --state-dir DIR        incarnation counter and datastore assignments\n"
            "      --xdp                  AF_XDP for the control port\n"
            "VM lifecycle:\n"
            "      --vmm-path FILE        mvvmm binary (default: mvvmm next to mvagent)\n"
            "      --stored-aoe-socket P  local mvstored's AoE socket (disks with target local)\n"
            "      --vm-uplink IF         interface VM networks (bridge + VLAN) ride on\n"
            "                             (default: the control interface)\n"
            "      --cgroup MODE          auto (default), v1, v2, none: the VMs' cpuset cgroups\n"
            "      --cgroup-fs DIR        cgroup mount point (default /sys/fs/cgroup)\n"
            "      --cgroup-parent NAME   parent cgroup of the VMs (default mvkvm)\n"
            "      --vm-stop-timeout SECS graceful stop before a hard stop (default 10)\n"
            "  -l, --log-level LEVEL      err, warning, info, debug\n"
            "  -h, --help, -V, --version\n",
            MV_AGENT_DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"interface", required_argument, 0, 'i'},
        {"key-file", required_argument, 0, 'k'},
        {"blade", required_argument, 0, 1},
        {"chassis", required_argument, 0, 2},
        {"rack", required_argument, 0, 3},
        {"roles", required_argument, 0, 4},
        {"stats-interval", required_argument, 0, 's'},
        {"stats-collector", required_argument, 0, 5},
        {"hello-interval", required_argument, 0, 6},
        {"stored-socket", required_argument, 0, 7},
        {"vmm-run-dir", required_argument, 0, 8},
        {"state-dir", required_argument, 0, 9},
        {"xdp", no_argument, 0, 10},
        {"log-level", required_argument, 0, 'l'},
        {"vmm-path", required_argument, 0, 11},
        {"stored-aoe-socket", required_argument, 0, 12},
        {"vm-uplink", required_argument, 0, 13},
        {"cgroup", required_argument, 0, 14},
        {"cgroup-fs", required_argument, 0, 15},
        {"cgroup-parent", required_argument, 0, 16},
        {"vm-stop-timeout", required_argument, 0, 17},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    const char *config = NULL;
    /* Flags override the file: remember them, apply them after it is loaded. */
    const char *keys[64], *vals[64];
    int nset = 0, c, idx;
    while ((c = getopt_long(argc, argv, "c:i:k:s:l:hV", opts, &idx)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'c':
            config = optarg;
            continue;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("mvagent %s\n", MV_VERSION);
            return 0;
        case 'i':
            key = "interface";
            break;
        case 'k':
            key = "key_file";
            break;
        case 1:
            key = "blade";
            break;
        case 2:
            key = "chassis";
            break;
        case 3:
            key = "rack";
            break;
        case 4:
            key = "roles";
            break;
        case 's':
            key = "stats_interval";
            break;
        case 5:
            key = "stats_collector";
            break;
        case 6:
            key = "hello_interval";
            break;
        case 7:
            key = "stored_socket";
            break;
        case 8:
            key = "vmm_run_dir";
            break;
        case 9:
            key = "state_dir";
            break;
        case 10:
            key = "xdp";
            break;
        case 'l':
            key = "log_level";
            break;
        case 11:
            key = "vmm_path";
            break;
        case 12:
            key = "stored_aoe_socket";
            break;
        case 13:
            key = "vm_uplink";
            break;
        case 14:
            key = "cgroup";
            break;
        case 15:
            key = "cgroup_fs";
            break;
        case 16:
            key = "cgroup_parent";
            break;
        case 17:
            key = "vm_stop_timeout";
            break;
        default:
            usage(stderr);
            return 2;
        }
        if (nset == 64) {
            fprintf(stderr, "mvagent: too many options\n");
            return 2;
        }
        keys[nset] = key;
        vals[nset++] = c == 10 ? "true" : optarg;
    }
    if (optind < argc) {
        fprintf(stderr, "mvagent: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    struct mv_agent_config cfg;
    mv_agent_config_defaults(&cfg);
    char err[512];
    if (!config && access(MV_AGENT_DEFAULT_CONFIG, F_OK) == 0)
        config = MV_AGENT_DEFAULT_CONFIG;
    if (config && mv_agent_config_load(&cfg, config, err, sizeof err) != 0) {
        fprintf(stderr, "mvagent: %s\n", err);
        return 2;
    }
    for (int i = 0; i < nset; i++) {
        if (mv_agent_config_set(&cfg, keys[i], vals[i], err, sizeof err) != 0) {
            fprintf(stderr, "mvagent: --%s: %s\n", keys[i], err);
            return 2;
        }
    }
    if (!cfg.ifname[0]) {
        fprintf(stderr, "mvagent: no control interface (--interface or 'interface' in %s)\n",
                config ? config : MV_AGENT_DEFAULT_CONFIG);
        return 2;
    }
    mv_log_init("mvagent", cfg.log_level);
    mv_port_link_xdp(); /* xdp = true in the config selects it */
    mv_daemon_handle_signals();
    struct mv_agent *a;
    int rc = mv_agent_create(&cfg, &a, err, sizeof err);
    if (rc != 0) {
        mv_err("%s", err);
        return 1;
    }
    rc = mv_agent_run(a);
    mv_agent_destroy(a);
    return rc == 0 ? 0 : 1;
}
