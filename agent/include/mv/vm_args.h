/* What launching one VM needs, built from a validated vm_start request (mv/agent_proto.h) and
 * the host's settings, without touching the system: mvvmm's command line (--pin, --disk aoe:...,
 * --net tap=...), the run-directory file names, and the names of the network devices (TAP,
 * per-network bridge, VLAN subinterface; issue 5 §4). Pure functions, so unit tests cover them. */
#ifndef MV_VM_ARGS_H
#define MV_VM_ARGS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Host-side settings of a launch (from the agent config). */
struct mv_vm_host {
    const char *vmm_path;     /* mvvmm binary */
    const char *run_dir;      /* <uuid>.sock, .console, .json, .exit, .log */
    const char *aoe_socket;   /* local mvstored's AF_UNIX AoE port; "" = none */
    const char *aoe_ifname;   /* interface for remote AoE targets */
    uint32_t stop_timeout_ms; /* mvvmm --stop-timeout (the agent escalates earlier) */
};

/* "<run_dir>/<uuid><suffix>" (suffix ".sock", ".console", ...). 0, or -ENAMETOOLONG. */
int mv_vm_file_path(const char *run_dir, const char *uuid, const char *suffix, char *out,
                    size_t cap);

/* Network device names (IFNAMSIZ-safe): TAP "mvt<first 10 uuid chars><idx>", bridge
 * "mvbr<network id>", VLAN subinterface "<uplink>.<vlan>" (or "mvv<vlan>.<hash>" when that
 * does not fit 15 characters). 0, or -EINVAL. */
int mv_vm_tap_name(const char *uuid, unsigned idx, char *out, size_t cap);
int mv_vm_bridge_name(uint64_t network_id, char *out, size_t cap);
int mv_vm_vlan_ifname(const char *uplink, unsigned vlan, char *out, size_t cap);

/* The NIC's MAC: its "mac", or a locally administered one derived from uuid and index. */
void mv_vm_nic_mac(const char *uuid, unsigned idx, json_t *nic, char out[18]);

/* mvvmm's --pin value: "pin" in vCPU order ("3,2"), else "float:<cpuset>", else "" (no
 * pinning). 0, or -ENAMETOOLONG. */
int mv_vm_pin_arg(json_t *spec, char *out, size_t cap);

/* mvvmm's --disk value for one disk of the request: "PATH[,ro]" for a file, "aoe:S.L,unix=SOCK"
 * for target "local", "aoe:S.L,if=IF,target=MAC" for a remote host. -EINVAL with a reason (no
 * local AoE socket configured, ...). */
int mv_vm_disk_arg(const struct mv_vm_host *h, json_t *disk, char *out, size_t cap, char *err,
                   size_t errlen);

/* The complete mvvmm argv (NULL-terminated, every string malloc'd; free with mv_vm_argv_free).
 * 0, or -errno with a reason. */
int mv_vm_build_argv(const struct mv_vm_host *h, json_t *spec, char ***argv, char *err,
                     size_t errlen);
void mv_vm_argv_free(char **argv);

#endif
