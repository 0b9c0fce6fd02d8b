/* ACPI power-off: S5 through the PM1a control register; mvvmm must exit 0. */
#include "guest.h"

void guest_main(void)
{
    guest_pass("poweroff_reached");
    guest_poweroff();
}
