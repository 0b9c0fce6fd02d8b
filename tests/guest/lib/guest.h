/* Guest library for the project's bare-metal test guests, run by mvvmm in payload mode (see
 * vmm/include/mv/guest_abi.h for the entry contract). Freestanding, ring 0, general registers
 * only: under PVM ring-0 code is emulated, so keep work small and use no SSE/x87/int n/int3.
 *
 * A guest defines `void guest_main(void)`. The library's entry stub sets a stack, initialises
 * COM1 (0x3f8, 115200 8N1) and an IDT, then calls guest_main(); if it returns the VM exits 0.
 * Success is a "PASS <name>" line on the serial console, failure "FAIL <name>: <why>". */
#ifndef MV_GUEST_H
#define MV_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/guest_abi.h"

#define GUEST_MAX_CPUS 16

void guest_main(void);

/* ---- port and MMIO access ---- */
static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t mmio_read32(uint64_t addr)
{
    return *(volatile uint32_t *)(uintptr_t)addr;
}
static inline void mmio_write32(uint64_t addr, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)addr = v;
}
static inline uint8_t mmio_read8(uint64_t addr)
{
    return *(volatile uint8_t *)(uintptr_t)addr;
}
static inline void mmio_write8(uint64_t addr, uint8_t v)
{
    *(volatile uint8_t *)(uintptr_t)addr = v;
}
static inline uint16_t mmio_read16(uint64_t addr)
{
    return *(volatile uint16_t *)(uintptr_t)addr;
}
static inline void mmio_write16(uint64_t addr, uint16_t v)
{
    *(volatile uint16_t *)(uintptr_t)addr = v;
}
static inline uint64_t mmio_read64(uint64_t addr)
{
    return *(volatile uint64_t *)(uintptr_t)addr;
}
static inline void mmio_write64(uint64_t addr, uint64_t v)
{
    *(volatile uint64_t *)(uintptr_t)addr = v;
}
static inline void guest_barrier(void)
{
    __asm__ volatile("mfence" ::: "memory");
}
static inline void cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}
static inline void irq_enable(void)
{
    __asm__ volatile("sti" ::: "memory");
}
static inline void irq_disable(void)
{
    __asm__ volatile("cli" ::: "memory");
}
/* sti; hlt as one sequence so an interrupt between them cannot be lost */
static inline void guest_wait_for_interrupt(void)
{
    __asm__ volatile("sti; hlt" ::: "memory");
}
static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* ---- freestanding libc subset ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strstr(const char *haystack, const char *needle);

/* ---- serial console (COM1, polled) ---- */
void serial_putc(char c);
void serial_puts(const char *s);
/* %s %c %d %i %u %x %X %p %%, with l/ll/z and width/zero-pad; no floating point */
int guest_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap);
int guest_snprintf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void guest_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- results and VM exit ---- */
void guest_pass(const char *name);                  /* "PASS name\n" */
void guest_fail(const char *name, const char *why); /* "FAIL name: why\n" */
void guest_failf(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the VM now: mvvmm exits with status code (MV_GUEST_EXIT_PORT). */
__attribute__((noreturn)) void guest_exit(uint32_t code);
/* ACPI S5 through the PM1a control port (ports from MV_HC_POWER_PORTS) */
__attribute__((noreturn)) void guest_poweroff(void);
/* Reset via the 0xcf9 reset control register / the i8042 / a triple fault */
__attribute__((noreturn)) void guest_reset_cf9(void);
__attribute__((noreturn)) void guest_reset_i8042(void);
__attribute__((noreturn)) void guest_reset_triple_fault(void);

/* ---- boot information ---- */
/* PVH start info the VMM passed in RSI (NULL if none); fields per Xen's hvm_start_info */
struct guest_start_info {
    uint32_t magic; /* 0x336ec578 */
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};
struct guest_memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type; /* 1 = RAM, 2 = reserved, 3 = ACPI */
    uint32_t reserved;
};
const struct guest_start_info *guest_start_info(void);
const char *guest_cmdline(void); /* "" if none */
/* Value of "key=value" (or "" for a bare "key") on the command line copied into buf;
 * false if absent. buf may be NULL with cap 0 to test presence. */
bool guest_cmdline_get(const char *key, char *buf, size_t cap);
uint64_t guest_rsdp(void); /* RSDP guest-physical address, 0 if none */

/* MV_HC_INFO: vCPUs, boot count, RAM size. */
struct guest_vm_info {
    uint32_t nr_vcpus;
    uint32_t boot_count;
    uint64_t mem_bytes;
};
int guest_hypercall(struct mv_hypercall *hc); /* returns hc->result */
void guest_vm_info(struct guest_vm_info *info);

/* ---- interrupts ---- */
/* The library's IDT covers all 256 vectors; an unexpected exception prints FAIL and exits 3. */
struct guest_irq_frame {
    uint64_t vector, error_code, rip, cs, rflags, rsp, ss;
};
typedef void (*guest_irq_handler)(const struct guest_irq_frame *frame);
void guest_set_irq_handler(uint8_t vector, guest_irq_handler handler);

/* Local APIC (xAPIC MMIO at 0xfee00000) */
#define GUEST_LAPIC_BASE  0xfee00000u
#define GUEST_IOAPIC_BASE 0xfec00000u
uint32_t guest_lapic_id(void);
void guest_lapic_enable(void); /* software-enable, spurious vector 0xff, TPR 0 */
void guest_lapic_eoi(void);
/* Periodic (or one-shot) LAPIC timer on vector; divide by 16 */
void guest_lapic_timer_start(uint8_t vector, uint32_t initial_count, bool periodic);
void guest_lapic_timer_stop(void);
/* IOAPIC: route GSI to vector on the LAPIC dest_apic_id (fixed, physical); edge/high by
 * default, level_low for PCI-style level interrupts */
void guest_ioapic_route(uint32_t gsi, uint8_t vector, uint8_t dest_apic_id, bool level_low);
void guest_ioapic_mask(uint32_t gsi);
uint32_t guest_ioapic_max_redir(void); /* number of redirection entries - 1 */

/* ---- SMP ---- */
typedef void (*guest_ap_fn)(unsigned cpu, void *arg);
/* Starts vCPU cpu in long mode on its own stack running fn(cpu, arg) (MV_HC_START_AP); the AP
 * has the library IDT loaded and halts forever if fn returns. 0 or -errno. */
int guest_start_ap(unsigned cpu, guest_ap_fn fn, void *arg);
unsigned guest_cpu_index(void); /* from the LAPIC id (the VMM uses APIC id = vCPU index) */

#endif
