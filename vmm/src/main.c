/* mvvmm: the per-VM monitor. Thin main: parse, create, lock down, run. */
#include <stdio.h>
#include <stdlib.h>

#include "mv/daemon.h"
#include "mv/log.h"
#include "mv/util.h"
#include "mv/vmm.h"

int main(int argc, char **argv)
{
    struct mv_vmm_config cfg;
    char err[512];
    mv_vmm_config_init(&cfg);
    mv_log_init("mvvmm", LOG_INFO);
    int rc = mv_vmm_config_parse_args(&cfg, argc, argv, err, sizeof(err));
    if (rc == 0)
        rc = mv_vmm_config_validate(&cfg, err, sizeof(err));
    if (rc) {
        mv_vmm_config_free(&cfg);
        if (rc > 0)
            return 0;
        fprintf(stderr, "mvvmm: %s\n", err);
        return MV_VMM_EXIT_SETUP_ERROR;
    }
    mv_log_set_level(cfg.log_level);
    mv_daemon_handle_signals();
    struct mv_vm *vm = NULL;
    int status = MV_VMM_EXIT_SETUP_ERROR;
    uint64_t t0 = mv_now_ns();
    if (mv_vm_create(&cfg, &vm) == 0) {
        mv_debug("startup: VM created in %.2f ms", (mv_now_ns() - t0) / 1e6);
        if (mv_vm_lockdown(vm) == 0)
            status = mv_vm_run(vm);
    }
    mv_vm_destroy(vm);
    mv_debug("exit: %.2f ms after startup", (mv_now_ns() - t0) / 1e6);
    mv_vmm_config_free(&cfg);
    return status;
}
