/* VM lifecycle on this host (ops 0x0130..0x0137, docs/agent.md "VM lifecycle"): one mvvmm per
 * VM, started detached from the agent (own session and process group, reparented to init when
 * the agent exits) inside the VM's cpuset cgroup, with its NICs on per-network bridges. Each VM
 * leaves in the run directory:
 *   <uuid>.json     the vm_start request and pids (what re-adoption reads)
 *   <uuid>.sock     mvvmm's control socket (state comes from its "info", never from memory)
 *   <uuid>.console  the serial console
 *   <uuid>.log      mvvmm's own log (stderr)
 *   <uuid>.exit     written by the VMM's monitor when mvvmm ends: {"pid","status"|"signal"}
 * Between mvvmm and the agent sits a small monitor process (a fork of the agent, in the VM's
 * session) that only waits for mvvmm and records how it ended, so the exit status survives an
 * agent restart. After a restart the agent rebuilds its table from the *.json files and the
 * live control sockets and never starts a second VMM for a uuid whose VMM runs. */
#ifndef MV_VM_H
#define MV_VM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct mv_vm_config {
    char vmm_path[256];   /* mvvmm; "" = next to the running executable */
    char run_dir[256];    /* agent config vmm_run_dir */
    char aoe_socket[108]; /* local mvstored's AoE AF_UNIX socket (disks with target "local") */
    char aoe_ifname[32];  /* interface for remote AoE targets (the control interface) */
    char uplink[32];      /* interface the VM networks' VLANs ride on (the control interface) */
    char cgroup_mode[8];  /* auto, v1, v2, none */
    char cgroup_fs[128];  /* /sys/fs/cgroup */
    char cgroup_parent[64];
    char procfs[64];
    uint32_t stop_timeout_ms; /* default vm_stop timeout_ms */
};

void mv_vm_config_defaults(struct mv_vm_config *c);

struct mv_vms;

/* Detects the cgroup flavour and adopts every VM of the run directory. 0 or -errno (err). */
int mv_vms_create(const struct mv_vm_config *c, struct mv_vms **out, char *err, size_t errlen);
/* Frees the table; VMMs keep running (the next agent adopts them). */
void mv_vms_destroy(struct mv_vms *vms);
/* Rescans the run directory for VMs not in the table. Returns the number of VMs known. */
int mv_vms_adopt(struct mv_vms *vms);
/* Housekeeping, every few hundred ms: reaps monitors, escalates stops past their deadline to a
 * hard stop (then SIGKILL), tears down the network and cgroup of VMs that ended. */
void mv_vms_tick(struct mv_vms *vms);
unsigned mv_vms_count(const struct mv_vms *vms);

/* Runs one VM op (MV_AGENT_OP_VM_*) on a request validated by mv_agent_request_parse().
 * 0 with *rep, or -errno with a reason in err. */
int mv_vms_handle(struct mv_vms *vms, uint16_t op, json_t *req, json_t **rep, char *err,
                  size_t errlen);

/* The D2.3 Instance state names, and libvirt-style numbers for InstanceInformation.state_code
 * (BUILD 0, ACTIVE 1, PAUSED 3, POWERING-OFF 4, STOPPED 5, ERROR 6). */
int mv_vm_state_code(const char *state);

/* How an exit status of the monitor's record reads: STOPPED for an exit (the guest's exit-port
 * value, 0 after power-off), ERROR for 125 (guest crashed), 1 (setup error) and signals. */
const char *mv_vm_exit_state(int exited, int code, char *reason, size_t cap);

#endif
