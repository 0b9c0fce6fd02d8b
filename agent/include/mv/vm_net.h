/* A VM's network plumbing (issue 5 §4): per network a bridge "mvbr<network_id>" with the uplink
 * enslaved ("<uplink>.<vlan>", a VLAN subinterface created here, or the uplink itself for VLAN
 * 0), and per NIC a persistent TAP (mv/vm_args.h names) on that bridge, which mvvmm opens with
 * --net tap=NAME. Created idempotently with iproute2 (`ip`), removed when no VM uses them. */
#ifndef MV_VM_NET_H
#define MV_VM_NET_H

#include <jansson.h>
#include <stddef.h>

/* Creates what the NICs of VM uuid need (nics: the vm_start "nics" array; NULL or empty is
 * fine). On failure, what this call created for the VM's TAPs is removed again. 0, or -errno
 * with a reason. */
int mv_vm_net_up(const char *uplink, const char *uuid, json_t *nics, char *err, size_t errlen);
/* Removes the VM's TAPs, and each of its bridges (with its VLAN subinterface, or releasing the
 * uplink) that has no TAP left on it. Best effort. */
void mv_vm_net_down(const char *uplink, const char *uuid, json_t *nics);

/* Runs argv[0] (searched in PATH) with argv, stdin/stdout on /dev/null; its stderr (first
 * line) goes into err on failure. 0, or -1. */
int mv_vm_run_cmd(char *const argv[], char *err, size_t errlen);

#endif
