/* Announces its boot and halts with interrupts off: a VM that stays up until mvvmm stops it
 * (control-socket and signal tests). */
#include "guest.h"

void guest_main(void)
{
    struct guest_vm_info info;
    guest_vm_info(&info);
    guest_printf("idle boot %u\n", info.boot_count);
    for (;;)
        __asm__ volatile("cli; hlt");
}
