/* Userspace IOAPIC (see mv/vmm_ioapic.h). */
#include "mv/vmm_ioapic.h"

#include <string.h>

#define RTE_VECTOR(r)   ((uint8_t)((r)&0xff))
#define RTE_DELIV(r)    (((r) >> 8) & 7)
#define RTE_DESTMODE(r) (((r) >> 11) & 1)
#define RTE_REMOTE_IRR  (1ull << 14)
#define RTE_LEVEL       (1ull << 15)
#define RTE_MASKED      (1ull << 16)
#define RTE_DEST(r)     ((uint8_t)((r) >> 56))
/* bits the guest may write: all but delivery status (12) and Remote IRR (14) */
#define RTE_WRITABLE (~((1ull << 12) | RTE_REMOTE_IRR))

void mv_ioapic_init(struct mv_ioapic *io, const struct mv_ioapic_ops *ops, void *ctx)
{
    memset(io, 0, sizeof(*io));
    pthread_mutex_init(&io->lock, NULL);
    io->ops = ops;
    io->ctx = ctx;
    mv_ioapic_reset(io);
}

void mv_ioapic_reset(struct mv_ioapic *io)
{
    pthread_mutex_lock(&io->lock);
    io->id = 0;
    io->ioregsel = 0;
    io->line = io->irr = 0;
    for (unsigned i = 0; i < MV_IOAPIC_PINS; i++)
        io->rte[i] = RTE_MASKED;
    if (io->ops && io->ops->routes_changed)
        io->ops->routes_changed(io->ctx);
    pthread_mutex_unlock(&io->lock);
}

void mv_ioapic_destroy(struct mv_ioapic *io)
{
    pthread_mutex_destroy(&io->lock);
}

bool mv_ioapic_pin_msi(const struct mv_ioapic *io, unsigned pin, uint64_t *address, uint32_t *data)
{
    if (pin >= MV_IOAPIC_PINS || (io->rte[pin] & RTE_MASKED))
        return false;
    uint64_t r = io->rte[pin];
    *address = 0xfee00000ull | ((uint64_t)RTE_DEST(r) << 12) | ((uint64_t)RTE_DESTMODE(r) << 2);
    *data = RTE_VECTOR(r) | (RTE_DELIV(r) << 8) | ((r & RTE_LEVEL) ? (1u << 15) | (1u << 14) : 0);
    return true;
}

/* Fires pin if it may: unmasked, and for level pins not awaiting an EOI. Lock held. */
static void ioapic_fire(struct mv_ioapic *io, unsigned pin)
{
    uint64_t addr;
    uint32_t data;
    if (!mv_ioapic_pin_msi(io, pin, &addr, &data)) {
        if (!(io->rte[pin] & RTE_LEVEL))
            io->irr |= 1u << pin; /* masked edge: deliver on unmask */
        return;
    }
    if (io->rte[pin] & RTE_LEVEL) {
        if (io->rte[pin] & RTE_REMOTE_IRR)
            return;
        io->rte[pin] |= RTE_REMOTE_IRR;
    }
    io->irr &= ~(1u << pin);
    if (io->ops && io->ops->send_msi)
        io->ops->send_msi(io->ctx, addr, data);
}

uint32_t mv_ioapic_read(struct mv_ioapic *io, uint64_t offset)
{
    uint32_t v = 0;
    pthread_mutex_lock(&io->lock);
    if (offset == 0x00) {
        v = io->ioregsel;
    } else if (offset == 0x10) {
        uint32_t reg = io->ioregsel;
        if (reg == 0x00)
            v = io->id << 24;
        else if (reg == 0x01)
            v = ((MV_IOAPIC_PINS - 1) << 16) | MV_IOAPIC_VERSION;
        else if (reg == 0x02)
            v = io->id << 24; /* arbitration id */
        else if (reg >= 0x10 && reg < 0x10 + 2 * MV_IOAPIC_PINS) {
            uint64_t r = io->rte[(reg - 0x10) / 2];
            v = (reg & 1) ? (uint32_t)(r >> 32) : (uint32_t)r;
        }
    }
    pthread_mutex_unlock(&io->lock);
    return v;
}

void mv_ioapic_write(struct mv_ioapic *io, uint64_t offset, uint32_t value)
{
    pthread_mutex_lock(&io->lock);
    if (offset == 0x00) {
        io->ioregsel = value & 0xff;
    } else if (offset == 0x10) {
        uint32_t reg = io->ioregsel;
        if (reg == 0x00) {
            io->id = (value >> 24) & 0xf;
        } else if (reg >= 0x10 && reg < 0x10 + 2 * MV_IOAPIC_PINS) {
            unsigned pin = (reg - 0x10) / 2;
            uint64_t old = io->rte[pin];
            uint64_t w = (reg & 1) ? ((uint64_t)value << 32) | (old & 0xffffffffull)
                                   : (old & 0xffffffff00000000ull) | value;
            io->rte[pin] = (w & RTE_WRITABLE) | (old & RTE_REMOTE_IRR);
            if (!(io->rte[pin] & RTE_LEVEL))
                io->rte[pin] &= ~RTE_REMOTE_IRR;
            if (io->ops && io->ops->routes_changed)
                io->ops->routes_changed(io->ctx);
            /* unmasking delivers a latched edge or a still-asserted level */
            if (!(io->rte[pin] & RTE_MASKED) &&
                ((io->irr & (1u << pin)) ||
                 ((io->rte[pin] & RTE_LEVEL) && (io->line & (1u << pin)))))
                ioapic_fire(io, pin);
        }
    }
    pthread_mutex_unlock(&io->lock);
}

void mv_ioapic_set_irq(struct mv_ioapic *io, unsigned pin, bool level)
{
    if (pin >= MV_IOAPIC_PINS)
        return;
    pthread_mutex_lock(&io->lock);
    bool was = io->line & (1u << pin);
    if (level)
        io->line |= 1u << pin;
    else
        io->line &= ~(1u << pin);
    if (level && ((io->rte[pin] & RTE_LEVEL) || !was))
        ioapic_fire(io, pin);
    pthread_mutex_unlock(&io->lock);
}

void mv_ioapic_eoi(struct mv_ioapic *io, uint8_t vector)
{
    pthread_mutex_lock(&io->lock);
    for (unsigned pin = 0; pin < MV_IOAPIC_PINS; pin++) {
        uint64_t r = io->rte[pin];
        if (!(r & RTE_LEVEL) || RTE_VECTOR(r) != vector || !(r & RTE_REMOTE_IRR))
            continue;
        io->rte[pin] &= ~RTE_REMOTE_IRR;
        if (io->line & (1u << pin))
            ioapic_fire(io, pin);
    }
    pthread_mutex_unlock(&io->lock);
}
