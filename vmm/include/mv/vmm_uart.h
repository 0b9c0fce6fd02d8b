/* 16550A-compatible UART (COM1) model: registers, 16-byte receive FIFO, THRE/RDA interrupts
 * gated by MCR.OUT2 as on a PC. Output bytes go to a callback; the interrupt line level goes to
 * another (mvvmm drives IRQ 4 with KVM_IRQ_LINE). Thread-safe. */
#ifndef MV_VMM_UART_H
#define MV_VMM_UART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MV_UART_COM1_BASE 0x3f8
#define MV_UART_COM1_IRQ  4
#define MV_UART_NR_REGS   8
#define MV_UART_RX_FIFO   16

typedef void (*mv_uart_tx_fn)(void *ctx, uint8_t byte);
typedef void (*mv_uart_irq_fn)(void *ctx, bool level);

struct mv_uart;

struct mv_uart *mv_uart_create(mv_uart_tx_fn tx, mv_uart_irq_fn irq, void *ctx);
void mv_uart_destroy(struct mv_uart *uart);
/* Back to power-on state (a VM reset); the RX FIFO is emptied. */
void mv_uart_reset(struct mv_uart *uart);

/* Register access at offset 0..7 from the base. */
uint8_t mv_uart_read(struct mv_uart *uart, unsigned offset);
void mv_uart_write(struct mv_uart *uart, unsigned offset, uint8_t value);

/* Host input: queues up to len bytes into the RX FIFO, returns how many fitted. */
size_t mv_uart_receive(struct mv_uart *uart, const uint8_t *buf, size_t len);

#endif
