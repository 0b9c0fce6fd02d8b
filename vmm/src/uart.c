/* 16550A UART model (see mv/vmm_uart.h). */
#include "mv/vmm_uart.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum {
    REG_RBR_THR = 0, /* DLL when DLAB */
    REG_IER = 1,     /* DLM when DLAB */
    REG_IIR_FCR = 2,
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define IER_RDA    0x01
#define IER_THRE   0x02
#define IER_RLS    0x04
#define IER_MS     0x08
#define IIR_NONE   0x01
#define IIR_THRE   0x02
#define IIR_RDA    0x04
#define IIR_FIFO   0xc0
#define LCR_DLAB   0x80
#define MCR_OUT2   0x08
#define MCR_LOOP   0x10
#define LSR_DR     0x01
#define LSR_OE     0x02
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define FCR_EN     0x01
#define FCR_CLR_RX 0x02

struct mv_uart {
    pthread_mutex_t lock;
    mv_uart_tx_fn tx;
    mv_uart_irq_fn irq;
    void *ctx;
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
    bool thre_pending; /* THR empty interrupt not yet acknowledged by an IIR read */
    bool irq_level;
    uint8_t rx[MV_UART_RX_FIFO];
    unsigned rx_head, rx_count;
};

static void uart_power_on(struct mv_uart *u)
{
    u->ier = 0;
    u->lcr = 0x03;
    u->mcr = 0;
    u->lsr = LSR_THRE | LSR_TEMT;
    u->msr = 0xb0; /* DCD, DSR, CTS: a connected terminal */
    u->scr = 0;
    u->fcr = 0;
    u->dll = 0x0c;
    u->dlm = 0;
    u->thre_pending = false;
    u->rx_head = u->rx_count = 0;
}

/* Highest-priority pending source, as IIR reports it */
static uint8_t uart_pending(const struct mv_uart *u)
{
    if ((u->ier & IER_RDA) && u->rx_count)
        return IIR_RDA;
    if ((u->ier & IER_THRE) && u->thre_pending)
        return IIR_THRE;
    return IIR_NONE;
}

/* Recomputes the line; the callback runs under the lock, so it must not call back into us */
static void uart_update_irq(struct mv_uart *u)
{
    bool level = uart_pending(u) != IIR_NONE && (u->mcr & MCR_OUT2);
    if (level != u->irq_level) {
        u->irq_level = level;
        if (u->irq)
            u->irq(u->ctx, level);
    }
}

struct mv_uart *mv_uart_create(mv_uart_tx_fn tx, mv_uart_irq_fn irq, void *ctx)
{
    struct mv_uart *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    pthread_mutex_init(&u->lock, NULL);
    u->tx = tx;
    u->irq = irq;
    u->ctx = ctx;
    uart_power_on(u);
    return u;
}

void mv_uart_destroy(struct mv_uart *u)
{
    if (!u)
        return;
    pthread_mutex_destroy(&u->lock);
    free(u);
}

void mv_uart_reset(struct mv_uart *u)
{
    pthread_mutex_lock(&u->lock);
    uart_power_on(u);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

static void rx_push(struct mv_uart *u, uint8_t b)
{
    if (u->rx_count == MV_UART_RX_FIFO) {
        u->lsr |= LSR_OE;
        return;
    }
    u->rx[(u->rx_head + u->rx_count) % MV_UART_RX_FIFO] = b;
    u->rx_count++;
    u->lsr |= LSR_DR;
}

uint8_t mv_uart_read(struct mv_uart *u, unsigned offset)
{
    uint8_t v = 0xff;
    pthread_mutex_lock(&u->lock);
    switch (offset) {
    case REG_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
        } else if (u->rx_count) {
            v = u->rx[u->rx_head];
            u->rx_head = (u->rx_head + 1) % MV_UART_RX_FIFO;
            if (--u->rx_count == 0)
                u->lsr &= (uint8_t)~LSR_DR;
        } else {
            v = 0;
        }
        break;
    case REG_IER:
        v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case REG_IIR_FCR: {
        uint8_t p = uart_pending(u);
        v = p | ((u->fcr & FCR_EN) ? IIR_FIFO : 0);
        if (p == IIR_THRE)
            u->thre_pending = false; /* reading IIR acknowledges THRE */
        break;
    }
    case REG_LCR:
        v = u->lcr;
        break;
    case REG_MCR:
        v = u->mcr;
        break;
    case REG_LSR:
        v = u->lsr;
        u->lsr &= (uint8_t)~LSR_OE;
        break;
    case REG_MSR:
        if (u->mcr & MCR_LOOP) /* loopback: outputs appear on the modem inputs */
            v = (uint8_t)(((u->mcr & 0x0c) << 4) | ((u->mcr & 0x01) << 5) | ((u->mcr & 0x02) << 3));
        else
            v = u->msr;
        break;
    case REG_SCR:
        v = u->scr;
        break;
    }
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return v;
}

void mv_uart_write(struct mv_uart *u, unsigned offset, uint8_t value)
{
    pthread_mutex_lock(&u->lock);
    switch (offset) {
    case REG_RBR_THR:
        if (u->lcr & LCR_DLAB) {
            u->dll = value;
        } else if (u->mcr & MCR_LOOP) {
            rx_push(u, value);
            u->thre_pending = true;
        } else {
            /* transmission is instantaneous: THR is empty again at once */
            if (u->tx)
                u->tx(u->ctx, value);
            u->thre_pending = true;
        }
        break;
    case REG_IER:
        if (u->lcr & LCR_DLAB) {
            u->dlm = value;
        } else {
            uint8_t old = u->ier;
            u->ier = value & 0x0f;
            /* enabling THRE with an empty THR raises it at once (what Linux's 8250 probes) */
            if (!(old & IER_THRE) && (u->ier & IER_THRE))
                u->thre_pending = true;
        }
        break;
    case REG_IIR_FCR:
        u->fcr = value & 0xc9;
        if (value & FCR_CLR_RX) {
            u->rx_head = u->rx_count = 0;
            u->lsr &= (uint8_t)~LSR_DR;
        }
        break;
    case REG_LCR:
        u->lcr = value;
        break;
    case REG_MCR:
        u->mcr = value & 0x1f;
        break;
    case REG_LSR:
    case REG_MSR:
        break; /* read-only */
    case REG_SCR:
        u->scr = value;
        break;
    }
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

size_t mv_uart_receive(struct mv_uart *u, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    pthread_mutex_lock(&u->lock);
    while (n < len && u->rx_count < MV_UART_RX_FIFO)
        rx_push(u, buf[n++]);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return n;
}
