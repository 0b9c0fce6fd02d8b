/* mvagent core: configuration, the control-request dispatcher and the daemon's poll loop (the
 * control channel over an mv_port on the control interface, discovery HELLOs, the statistics
 * timer). main.c only parses the command line. */
#ifndef MV_AGENT_H
#define MV_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/vm.h"

#define MV_AGENT_DEFAULT_CONFIG "/etc/mvkvm/agent.conf"

struct mv_agent_config {
    char ifname[32];    /* control interface; "" = no network (tests drive requests) */
    char key_file[256]; /* cluster key file (mv/auth.h format) */
    char blade[32], chassis[32], rack[32];
    uint32_t roles;             /* MV_ROLE_* (mv/discovery.h); default hypervisor */
    uint32_t stats_interval_ms; /* default 10000 */
    uint32_t hello_interval_ms; /* default 1000 */
    uint8_t collector[6];       /* stats destination; default broadcast */
    char stored_socket[108];    /* mvstored control socket; "" = no storage on this host */
    char vmm_run_dir[256];      /* where each mvvmm's <uuid>.sock lives */
    char state_dir[256];        /* incarnation counter, datastore assignments */
    char sysfs[64], procfs[64];
    bool xdp; /* AF_XDP for the control port (falls back to AF_PACKET) */
    int log_level;
    /* VM lifecycle: vmm_path, stored_aoe_socket, vm_uplink, cgroup, cgroup_fs, cgroup_parent,
     * vm_stop_timeout. vm.run_dir, aoe_ifname and uplink (when unset) follow vmm_run_dir and
     * interface at mv_agent_create(). */
    struct mv_vm_config vm;
};

void mv_agent_config_defaults(struct mv_agent_config *c);
/* One setting by its config-file key (the long option names: "interface", "key_file",
 * "stats_interval", ...). 0, or -1 with a reason in err; c is unchanged then. */
int mv_agent_config_set(struct mv_agent_config *c, const char *key, const char *value, char *err,
                        size_t errlen);
/* Loads an INI file with an [agent] section. -1 with "path:line: reason" in err. */
int mv_agent_config_load(struct mv_agent_config *c, const char *path, char *err, size_t errlen);

struct mv_agent;

/* Opens the port, loads the key, starts channel and discovery (unless cfg->ifname is empty).
 * -errno with a reason in err. */
int mv_agent_create(const struct mv_agent_config *cfg, struct mv_agent **out, char *err,
                    size_t errlen);
void mv_agent_destroy(struct mv_agent *a);
/* Runs until a stop is requested (mv/daemon.h). 0, or -errno on a fatal port error. */
int mv_agent_run(struct mv_agent *a);

/* Executes one control request as if it came over the channel: validates, dispatches, and
 * returns the channel status (0 or -errno) with the reply payload in *reply (malloc'd JSON). */
int mv_agent_handle_request(struct mv_agent *a, uint16_t op, const void *data, size_t len,
                            char **reply, size_t *reply_len);

/* Collects and sends one statistics report now (the timer calls this). Returns the number of
 * frames sent, or -errno. Without a port it only builds the report. */
int mv_agent_send_stats(struct mv_agent *a);

/* The channel node id (0 without a port). */
uint64_t mv_agent_node_id(const struct mv_agent *a);

#endif
