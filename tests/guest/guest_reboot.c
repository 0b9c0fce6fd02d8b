/* Reset paths: each boot resets the VM a different way (0xcf9, i8042, triple fault) and
 * mvvmm restarts it; the boot count from MV_HC_INFO says which boot this is. */
#include "guest.h"

void guest_main(void)
{
    struct guest_vm_info info;
    guest_vm_info(&info);
    guest_printf("boot %u\n", info.boot_count);
    switch (info.boot_count) {
    case 0:
        guest_reset_cf9();
    case 1:
        guest_reset_i8042();
    case 2:
        guest_reset_triple_fault();
    case 3:
        guest_pass("reboot");
        guest_exit(0);
    default:
        guest_failf("reboot", "unexpected boot count %u", info.boot_count);
    }
}
