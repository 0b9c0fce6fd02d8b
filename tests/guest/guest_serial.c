/* Serial console, printf formatting, the command line from hvm_start_info and MV_HC_INFO. */
#include "guest.h"

static void check_fmt(const char *want, const char *fmt, ...)
{
    char got[64];
    va_list ap;
    va_start(ap, fmt);
    guest_vsnprintf(got, sizeof(got), fmt, ap);
    va_end(ap);
    if (strcmp(got, want))
        guest_failf("serial_printf", "'%s' gave '%s', want '%s'", fmt, got, want);
}

void guest_main(void)
{
    guest_printf("hello from the serial guest\n");
    check_fmt("42 -7 ff 0000beef", "%d %i %x %08x", 42, -7, 255u, 0xbeefu);
    check_fmt("18446744073709551615", "%lu", (uint64_t)-1);
    check_fmt("[  ab] x", "[%4s] %c", "ab", 'x');
    check_fmt("0x1000 100%", "%p %d%%", (void *)0x1000, 100);
    guest_pass("serial_printf");

    char v[32];
    if (!guest_start_info())
        guest_fail("serial_cmdline", "no hvm_start_info in RSI");
    else if (!guest_cmdline_get("hello", v, sizeof(v)) || strcmp(v, "world"))
        guest_failf("serial_cmdline", "cmdline '%s' lacks hello=world", guest_cmdline());
    else if (!guest_cmdline_get("answer", v, sizeof(v)) || strcmp(v, "42"))
        guest_failf("serial_cmdline", "cmdline '%s' lacks answer=42", guest_cmdline());
    else
        guest_pass("serial_cmdline");

    struct guest_vm_info info;
    guest_vm_info(&info);
    if (info.nr_vcpus < 1 || info.mem_bytes < (1u << 20))
        guest_failf("serial_info", "vcpus %u mem %lu", info.nr_vcpus, info.mem_bytes);
    else
        guest_pass("serial_info");
}
