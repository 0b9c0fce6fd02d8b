/* The guest library: libc subset, COM1 console, printf, results, power, boot info, hypercalls. */
#include "guest.h"

#define COM1 0x3f8

/* The compiler may emit calls to these even in freestanding code. */
void *memset(void *d, int c, size_t n)
{
    volatile uint8_t *p = d; /* volatile: keep GCC from turning this loop into memset() */
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    volatile uint8_t *dp = d;
    const uint8_t *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    volatile uint8_t *dp = d;
    const uint8_t *sp = s;
    if (dp < sp) {
        while (n--)
            *dp++ = *sp++;
    } else {
        while (n--)
            dp[n] = sp[n];
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (uint8_t)*a - (uint8_t)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b || !*a)
            return (uint8_t)*a - (uint8_t)*b;
    }
    return 0;
}

char *strstr(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; *haystack; haystack++)
        if (!strncmp(haystack, needle, n))
            return (char *)haystack;
    return n ? NULL : (char *)haystack;
}

/* ---- serial ---- */
static volatile int serial_lock;

static void serial_init(void)
{
    outb(COM1 + 1, 0x00); /* no interrupts */
    outb(COM1 + 3, 0x80); /* DLAB */
    outb(COM1 + 0, 0x01); /* 115200 */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xc7); /* FIFO */
    outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void serial_putc_raw(char c)
{
    /* The VMM's UART transmits instantly; bound the wait anyway so a broken LSR cannot hang */
    for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
        cpu_relax();
    outb(COM1, (uint8_t)c);
}

void serial_putc(char c)
{
    if (c == '\n')
        serial_putc_raw('\r');
    serial_putc_raw(c);
}

/* Whole lines from different vCPUs must not interleave */
static void serial_lock_take(void)
{
    while (__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE))
        cpu_relax();
}

static void serial_lock_release(void)
{
    __atomic_store_n(&serial_lock, 0, __ATOMIC_RELEASE);
}

void serial_puts(const char *s)
{
    serial_lock_take();
    while (*s)
        serial_putc(*s++);
    serial_lock_release();
}

/* ---- printf ---- */
struct out_buf {
    char *buf;
    size_t cap, len;
};

static void out_char(struct out_buf *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void out_number(struct out_buf *o, uint64_t v, unsigned base, bool upper, int width,
                       char pad, bool negative)
{
    char tmp[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    if (negative && pad == '0')
        out_char(o, '-');
    for (int w = n + (negative ? 1 : 0); w < width; w++)
        out_char(o, pad);
    if (negative && pad != '0')
        out_char(o, '-');
    while (n)
        out_char(o, tmp[--n]);
}

int guest_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap)
{
    struct out_buf o = {buf, cap, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out_char(&o, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, longs = 0;
        if (*fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z')
            longs++, fmt++;
        switch (*fmt) {
        case 'd':
        case 'i': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            out_number(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, false, width, pad, v < 0);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            out_number(&o, v, *fmt == 'u' ? 10 : 16, *fmt == 'X', width, pad, false);
            break;
        }
        case 'p':
            out_char(&o, '0');
            out_char(&o, 'x');
            out_number(&o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, false, width, pad, false);
            break;
        case 'c':
            out_char(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t n = strlen(s);
            for (size_t w = n; (int)w < width; w++)
                out_char(&o, ' ');
            while (*s)
                out_char(&o, *s++);
            break;
        }
        case '%':
            out_char(&o, '%');
            break;
        case '\0':
            fmt--;
            break;
        default:
            out_char(&o, '%');
            out_char(&o, *fmt);
        }
    }
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return (int)o.len;
}

int guest_snprintf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = guest_vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void guest_printf(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    guest_vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    serial_puts(line);
}

/* ---- results and power ---- */
void guest_pass(const char *name)
{
    guest_printf("PASS %s\n", name);
}

void guest_fail(const char *name, const char *why)
{
    guest_printf("FAIL %s: %s\n", name, why);
}

void guest_failf(const char *name, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    guest_vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    guest_fail(name, why);
}

void guest_exit(uint32_t code)
{
    for (;;) {
        outl(MV_GUEST_EXIT_PORT, code);
        irq_disable();
        __asm__ volatile("hlt");
    }
}

static struct mv_hypercall hc_power;

void guest_poweroff(void)
{
    hc_power.op = MV_HC_POWER_PORTS;
    if (guest_hypercall(&hc_power) == 0 && hc_power.arg[0])
        outw((uint16_t)hc_power.arg[0], (uint16_t)((hc_power.arg[1] << 10) | (1u << 13)));
    guest_fail("poweroff", "PM1a control write did not stop the VM");
    guest_exit(4);
}

void guest_reset_cf9(void)
{
    outb(0xcf9, 0x02); /* select hard reset */
    outb(0xcf9, 0x06); /* and trigger it */
    guest_fail("reset", "0xcf9 write did not reset the VM");
    guest_exit(4);
}

void guest_reset_i8042(void)
{
    outb(0x64, 0xfe); /* pulse the CPU reset line */
    guest_fail("reset", "i8042 0xfe did not reset the VM");
    guest_exit(4);
}

void guest_reset_triple_fault(void)
{
    /* An empty IDT turns the next exception into #DF and then a shutdown (triple fault). */
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = {0, 0};
    __asm__ volatile("lidt %0; ud2" : : "m"(idtr));
    guest_fail("reset", "triple fault did not reset the VM");
    guest_exit(4);
}

/* ---- boot info and hypercalls ---- */
static const struct guest_start_info *start_info;

const struct guest_start_info *guest_start_info(void)
{
    return start_info;
}

const char *guest_cmdline(void)
{
    if (!start_info || !start_info->cmdline_paddr)
        return "";
    return (const char *)(uintptr_t)start_info->cmdline_paddr;
}

bool guest_cmdline_get(const char *key, char *buf, size_t cap)
{
    const char *p = guest_cmdline();
    size_t klen = strlen(key);
    while (*p) {
        while (*p == ' ')
            p++;
        if (!strncmp(p, key, klen) && (p[klen] == ' ' || p[klen] == '\0')) {
            if (cap)
                buf[0] = '\0'; /* a bare key: present, empty value */
            return true;
        }
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            p += klen + 1;
            size_t n = 0;
            while (p[n] && p[n] != ' ')
                n++;
            if (cap == 0)
                return true;
            if (n >= cap)
                n = cap - 1;
            memcpy(buf, p, n);
            buf[n] = '\0';
            return true;
        }
        while (*p && *p != ' ')
            p++;
    }
    return false;
}

uint64_t guest_rsdp(void)
{
    return start_info ? start_info->rsdp_paddr : 0;
}

int guest_hypercall(struct mv_hypercall *hc)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    outl(MV_GUEST_HC_PORT, (uint32_t)(uintptr_t)hc);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return hc->result;
}

void guest_vm_info(struct guest_vm_info *info)
{
    static struct mv_hypercall hc;
    hc.op = MV_HC_INFO;
    hc.result = -1;
    guest_hypercall(&hc);
    info->nr_vcpus = (uint32_t)hc.arg[0];
    info->boot_count = (uint32_t)hc.arg[1];
    info->mem_bytes = hc.arg[2];
}

void guest_lib_bsp_entry(uint64_t cpu, uint64_t start_info_gpa);
void guest_lib_idt_load(void);

void guest_lib_bsp_entry(uint64_t cpu, uint64_t start_info_gpa)
{
    (void)cpu;
    serial_init();
    const struct guest_start_info *si = (const void *)(uintptr_t)start_info_gpa;
    if (si && si->magic == 0x336ec578)
        start_info = si;
    guest_lib_idt_load();
    guest_main();
    guest_exit(0);
}
