/* Interrupts (IDT, dispatch), local APIC, IOAPIC and AP start-up for the test guests. */
#include "guest.h"

struct __attribute__((packed)) idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t zero;
};

static struct idt_gate idt[256] __attribute__((aligned(16)));
static guest_irq_handler handlers[256];
extern char guest_isr_table[];
extern char guest_ap_start[];

void guest_lib_idt_load(void);
void guest_lib_dispatch_irq(const struct guest_irq_frame *frame);
void guest_lib_ap_entry(uint64_t cpu);

static void idt_load_only(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

void guest_lib_idt_load(void)
{
    for (unsigned v = 0; v < 256; v++) {
        uint64_t addr = (uint64_t)(uintptr_t)guest_isr_table + 16 * v;
        idt[v].offset_low = (uint16_t)addr;
        idt[v].selector = MV_GUEST_CODE_SEL;
        idt[v].ist = 0;
        idt[v].type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
        idt[v].offset_mid = (uint16_t)(addr >> 16);
        idt[v].offset_high = (uint32_t)(addr >> 32);
        idt[v].zero = 0;
    }
    idt_load_only();
}

void guest_set_irq_handler(uint8_t vector, guest_irq_handler handler)
{
    __atomic_store_n(&handlers[vector], handler, __ATOMIC_RELEASE);
}

void guest_lib_dispatch_irq(const struct guest_irq_frame *frame)
{
    guest_irq_handler h = __atomic_load_n(&handlers[frame->vector & 0xff], __ATOMIC_ACQUIRE);
    if (h) {
        h(frame);
        return;
    }
    if (frame->vector == 0xff) /* LAPIC spurious: no EOI */
        return;
    if (frame->vector < 32) {
        guest_failf("exception", "vector %lu error 0x%lx rip 0x%lx", frame->vector,
                    frame->error_code, frame->rip);
        guest_exit(3);
    }
    guest_lapic_eoi(); /* an unclaimed device interrupt: acknowledge and ignore */
}

/* ---- local APIC ---- */
#define LAPIC_ID      0x020
#define LAPIC_EOI     0x0b0
#define LAPIC_SVR     0x0f0
#define LAPIC_TPR     0x080
#define LAPIC_LVT_TMR 0x320
#define LAPIC_TMR_ICR 0x380
#define LAPIC_TMR_DIV 0x3e0

uint32_t guest_lapic_id(void)
{
    return mmio_read32(GUEST_LAPIC_BASE + LAPIC_ID) >> 24;
}

void guest_lapic_enable(void)
{
    mmio_write32(GUEST_LAPIC_BASE + LAPIC_TPR, 0);
    mmio_write32(GUEST_LAPIC_BASE + LAPIC_SVR, 0x100 | 0xff);
}

void guest_lapic_eoi(void)
{
    mmio_write32(GUEST_LAPIC_BASE + LAPIC_EOI, 0);
}

void guest_lapic_timer_start(uint8_t vector, uint32_t initial_count, bool periodic)
{
    mmio_write32(GUEST_LAPIC_BASE + LAPIC_TMR_DIV, 0x3); /* divide by 16 */
    mmio_write32(GUEST_LAPIC_BASE + LAPIC_LVT_TMR, vector | (periodic ? (1u << 17) : 0));
    mmio_write32(GUEST_LAPIC_BASE + LAPIC_TMR_ICR, initial_count);
}

void guest_lapic_timer_stop(void)
{
    mmio_write32(GUEST_LAPIC_BASE + LAPIC_LVT_TMR, 1u << 16);
    mmio_write32(GUEST_LAPIC_BASE + LAPIC_TMR_ICR, 0);
}

/* ---- IOAPIC (indirect register window) ---- */
static void ioapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(GUEST_IOAPIC_BASE, reg);
    mmio_write32(GUEST_IOAPIC_BASE + 0x10, v);
}

static uint32_t ioapic_read(uint32_t reg)
{
    mmio_write32(GUEST_IOAPIC_BASE, reg);
    return mmio_read32(GUEST_IOAPIC_BASE + 0x10);
}

uint32_t guest_ioapic_max_redir(void)
{
    return (ioapic_read(1) >> 16) & 0xff;
}

void guest_ioapic_route(uint32_t gsi, uint8_t vector, uint8_t dest_apic_id, bool level_low)
{
    uint32_t low = vector; /* fixed delivery, physical destination */
    if (level_low)
        low |= (1u << 13) | (1u << 15);
    ioapic_write(0x10 + 2 * gsi + 1, (uint32_t)dest_apic_id << 24);
    ioapic_write(0x10 + 2 * gsi, low);
}

void guest_ioapic_mask(uint32_t gsi)
{
    ioapic_write(0x10 + 2 * gsi, 1u << 16);
}

/* ---- SMP ---- */
#define AP_STACK_SIZE 8192
static uint8_t ap_stacks[GUEST_MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));
static guest_ap_fn ap_fns[GUEST_MAX_CPUS];
static void *ap_args[GUEST_MAX_CPUS];
static struct mv_hypercall ap_hc[GUEST_MAX_CPUS];

unsigned guest_cpu_index(void)
{
    return guest_lapic_id();
}

int guest_start_ap(unsigned cpu, guest_ap_fn fn, void *arg)
{
    if (cpu == 0 || cpu >= GUEST_MAX_CPUS)
        return -22;
    ap_fns[cpu] = fn;
    ap_args[cpu] = arg;
    struct mv_hypercall *hc = &ap_hc[cpu];
    hc->op = MV_HC_START_AP;
    hc->result = -1;
    hc->arg[0] = cpu;
    hc->arg[1] = (uint64_t)(uintptr_t)guest_ap_start;
    hc->arg[2] = (uint64_t)(uintptr_t)&ap_stacks[cpu][AP_STACK_SIZE];
    hc->arg[3] = 0;
    return guest_hypercall(hc);
}

void guest_lib_ap_entry(uint64_t cpu)
{
    idt_load_only();
    if (cpu < GUEST_MAX_CPUS && ap_fns[cpu])
        ap_fns[cpu]((unsigned)cpu, ap_args[cpu]);
}
