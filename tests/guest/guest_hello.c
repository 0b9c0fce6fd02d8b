/* Smallest guest: one line, then exit with the status given as exit=N on the command line. */
#include "guest.h"

void guest_main(void)
{
    char buf[16];
    uint32_t code = 0;
    if (guest_cmdline_get("exit", buf, sizeof(buf)))
        for (const char *p = buf; *p >= '0' && *p <= '9'; p++)
            code = code * 10 + (uint32_t)(*p - '0');
    guest_pass("hello");
    guest_exit(code);
}
