/* mvvmm: one VM on raw /dev/kvm ioctls. mv_vm_create() does all setup (memory, irqchip, vCPUs,
 * image loading, devices, ACPI); mv_vm_run() runs until the guest powers off, exits through the
 * exit port, crashes, or a stop is requested (SIGTERM, control socket). */
#ifndef MV_VMM_H
#define MV_VMM_H

#include <stdbool.h>
#include <stdint.h>

#include "mv/vmm_config.h"

#define MV_VMM_EXIT_SETUP_ERROR 1
#define MV_VMM_EXIT_GUEST_CRASH 125

struct mv_vm;

/* 0 and *out, or -1 after logging what failed. cfg must outlive the VM. */
int mv_vm_create(const struct mv_vmm_config *cfg, struct mv_vm **out);
/* Locks the process down after setup: drop privileges (cfg->user), seccomp (unless disabled). */
int mv_vm_lockdown(struct mv_vm *vm);
/* Runs the VM; returns mvvmm's exit status (see mv/vmm_config.h usage text). */
int mv_vm_run(struct mv_vm *vm);
void mv_vm_destroy(struct mv_vm *vm);

#endif
