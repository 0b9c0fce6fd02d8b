/* Timer interrupts: the LAPIC timer (periodic), then the PIT on IRQ0 through the IOAPIC (the
 * MADT's override routes IRQ0 to GSI 2, and mvvmm's GSI routing matches). "nopit" on the
 * command line skips the PIT part (split irqchip VMs have none). */
#include "guest.h"

#define VEC_LAPIC_TIMER 0x40
#define VEC_PIT         0x41

static volatile uint32_t lapic_ticks, pit_ticks;

static void on_lapic_timer(const struct guest_irq_frame *f)
{
    (void)f;
    lapic_ticks++;
    guest_lapic_eoi();
}

static void on_pit(const struct guest_irq_frame *f)
{
    (void)f;
    pit_ticks++;
    guest_lapic_eoi();
}

/* Halts until *counter reaches want; bounded so a missing interrupt fails instead of hanging
 * (the runner's timeout would catch it, but a FAIL line says more). */
static bool wait_ticks(volatile uint32_t *counter, uint32_t want)
{
    for (unsigned i = 0; i < 500 && *counter < want; i++)
        guest_wait_for_interrupt();
    irq_disable();
    return *counter >= want;
}

void guest_main(void)
{
    outb(0x21, 0xff); /* mask the legacy PICs: everything goes through the IOAPIC */
    outb(0xa1, 0xff);
    guest_lapic_enable();

    guest_set_irq_handler(VEC_LAPIC_TIMER, on_lapic_timer);
    guest_lapic_timer_start(VEC_LAPIC_TIMER, 200000, true);
    if (wait_ticks(&lapic_ticks, 5))
        guest_pass("lapic_timer");
    else
        guest_failf("lapic_timer", "%u ticks", lapic_ticks);
    guest_lapic_timer_stop();

    if (guest_cmdline_get("nopit", NULL, 0)) {
        guest_printf("no PIT in this VM (split irqchip): PIT test skipped\n");
        return;
    }
    guest_set_irq_handler(VEC_PIT, on_pit);
    /* a slow LAPIC timer keeps waking the wait loop, so a silent PIT fails instead of hanging */
    guest_lapic_timer_start(VEC_LAPIC_TIMER, 200000, true);
    guest_ioapic_route(2, VEC_PIT, (uint8_t)guest_lapic_id(), false);
    outb(0x43, 0x34);         /* channel 0, lo/hi byte, mode 2 (rate generator) */
    outb(0x40, 11932 & 0xff); /* 100 Hz */
    outb(0x40, 11932 >> 8);
    if (wait_ticks(&pit_ticks, 3))
        guest_pass("pit_ioapic");
    else
        guest_failf("pit_ioapic", "%u ticks", pit_ticks);
    guest_ioapic_mask(2);
    guest_lapic_timer_stop();
}
