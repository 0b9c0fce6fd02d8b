/* Userspace IOAPIC for the split irqchip (KVM_CAP_SPLIT_IRQCHIP: LAPICs in the kernel, IOAPIC
 * here). 24 pins at 0xfec00000; interrupts leave as MSIs; level-triggered pins keep Remote IRR
 * until the LAPIC's EOI comes back (KVM_EXIT_IOAPIC_EOI) and re-fire while still asserted.
 * The current pin -> MSI translation is published through routes_changed so mvvmm can mirror
 * it into KVM's GSI routing (irqfd, EOI-exit bitmaps). Thread-safe; no KVM inside. */
#ifndef MV_VMM_IOAPIC_H
#define MV_VMM_IOAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MV_IOAPIC_BASE    0xfec00000ull
#define MV_IOAPIC_SIZE    0x1000ull
#define MV_IOAPIC_PINS    24
#define MV_IOAPIC_VERSION 0x11

struct mv_ioapic_ops {
    void (*send_msi)(void *ctx, uint64_t address, uint32_t data);
    /* called with the IOAPIC lock held after any redirection-entry change */
    void (*routes_changed)(void *ctx);
};

struct mv_ioapic {
    pthread_mutex_t lock;
    uint32_t id;
    uint32_t ioregsel;
    uint64_t rte[MV_IOAPIC_PINS];
    uint32_t line; /* asserted lines (level) */
    uint32_t irr;  /* edges latched while masked */
    const struct mv_ioapic_ops *ops;
    void *ctx;
};

void mv_ioapic_init(struct mv_ioapic *io, const struct mv_ioapic_ops *ops, void *ctx);
void mv_ioapic_reset(struct mv_ioapic *io); /* all pins masked, edge, vector 0 */
void mv_ioapic_destroy(struct mv_ioapic *io);

/* MMIO at offset (0x00 IOREGSEL, 0x10 IOWIN), 4-byte accesses; others read 0 / are ignored. */
uint32_t mv_ioapic_read(struct mv_ioapic *io, uint64_t offset);
void mv_ioapic_write(struct mv_ioapic *io, uint64_t offset, uint32_t value);

/* A device line changed. Edge pins fire on the rising edge; level pins while high. */
void mv_ioapic_set_irq(struct mv_ioapic *io, unsigned pin, bool level);
/* The LAPIC EOI'd vector: clears Remote IRR of level pins using it, re-fires still-high ones. */
void mv_ioapic_eoi(struct mv_ioapic *io, uint8_t vector);

/* MSI for pin from its redirection entry; false when the pin is masked. */
bool mv_ioapic_pin_msi(const struct mv_ioapic *io, unsigned pin, uint64_t *address, uint32_t *data);

#endif
