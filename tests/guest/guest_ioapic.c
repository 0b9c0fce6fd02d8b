/* IOAPIC: its registers, and a device interrupt through it: the 8250's "transmitter empty"
 * interrupt on IRQ 4 (COM1), routed to a vector on this CPU. */
#include "guest.h"

#define VEC_COM1 0x44
#define COM1     0x3f8

static volatile uint32_t com1_irqs;
static volatile uint8_t com1_iir;

static void on_com1(const struct guest_irq_frame *f)
{
    (void)f;
    com1_iir = inb(COM1 + 2); /* reading IIR acknowledges THRE */
    outb(COM1 + 1, 0);        /* IER off: one interrupt is enough */
    com1_irqs++;
    guest_lapic_eoi();
}

void guest_main(void)
{
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    guest_lapic_enable();

    uint32_t max = guest_ioapic_max_redir();
    if (max != 23)
        guest_failf("ioapic_regs", "max redirection entry %u, want 23", max);
    else
        guest_pass("ioapic_regs");

    guest_set_irq_handler(VEC_COM1, on_com1);
    guest_ioapic_route(4, VEC_COM1, (uint8_t)guest_lapic_id(), false);
    outb(COM1 + 4, 0x0b); /* DTR, RTS, OUT2 (OUT2 gates the IRQ line on a PC) */
    outb(COM1 + 1, 0x02); /* IER: THRE */
    for (unsigned i = 0; i < 1000 && !com1_irqs; i++)
        guest_wait_for_interrupt();
    irq_disable();
    if (com1_irqs != 1)
        guest_failf("ioapic_uart_irq", "%u interrupts", com1_irqs);
    else if ((com1_iir & 0x0f) != 0x02)
        guest_failf("ioapic_uart_irq", "IIR 0x%x, want THRE (0x2)", com1_iir);
    else
        guest_pass("ioapic_uart_irq");
    guest_ioapic_mask(4);
}
