/* The 16550A model: transmit, divisor latch, THRE and RDA interrupts with OUT2 gating and IIR
 * acknowledgement, RX FIFO overrun, loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mv/vmm_uart.h"

struct sink {
    char out[64];
    size_t n;
    bool level;
    int edges;
};

static void tx(void *ctx, uint8_t b)
{
    struct sink *s = ctx;
    if (s->n < sizeof(s->out))
        s->out[s->n++] = (char)b;
}

static void irq(void *ctx, bool level)
{
    struct sink *s = ctx;
    s->level = level;
    s->edges++;
}

static void test_tx_and_dlab(void **state)
{
    (void)state;
    struct sink s = {0};
    struct mv_uart *u = mv_uart_create(tx, irq, &s);
    assert_true(mv_uart_read(u, 5) & 0x60); /* THRE | TEMT */
    mv_uart_write(u, 0, 'h');
    mv_uart_write(u, 0, 'i');
    assert_int_equal(s.n, 2);
    assert_memory_equal(s.out, "hi", 2);
    mv_uart_write(u, 3, 0x80); /* DLAB */
    mv_uart_write(u, 0, 0x01);
    mv_uart_write(u, 1, 0x00);
    assert_int_equal(mv_uart_read(u, 0), 0x01);
    assert_int_equal(s.n, 2); /* divisor writes are not output */
    mv_uart_write(u, 3, 0x03);
    assert_int_equal(mv_uart_read(u, 3), 0x03);
    mv_uart_write(u, 7, 0x5a);
    assert_int_equal(mv_uart_read(u, 7), 0x5a);
    mv_uart_destroy(u);
}

static void test_thre_interrupt(void **state)
{
    (void)state;
    struct sink s = {0};
    struct mv_uart *u = mv_uart_create(tx, irq, &s);
    mv_uart_write(u, 1, 0x02); /* IER THRE without OUT2: pending but not on the line */
    assert_false(s.level);
    assert_int_equal(mv_uart_read(u, 2) & 0x0f, 0x02);
    mv_uart_write(u, 1, 0x00);
    mv_uart_write(u, 4, 0x08); /* OUT2 */
    mv_uart_write(u, 1, 0x02);
    assert_true(s.level);
    assert_int_equal(mv_uart_read(u, 2) & 0x0f, 0x02); /* IIR read acknowledges */
    assert_false(s.level);
    assert_int_equal(mv_uart_read(u, 2) & 0x0f, 0x01);
    mv_uart_write(u, 0, 'x'); /* THR empties again: raised again */
    assert_true(s.level);
    mv_uart_destroy(u);
}

static void test_rx(void **state)
{
    (void)state;
    struct sink s = {0};
    struct mv_uart *u = mv_uart_create(tx, irq, &s);
    mv_uart_write(u, 4, 0x08);
    mv_uart_write(u, 1, 0x01); /* RDA */
    assert_false(s.level);
    uint8_t in[20];
    for (int i = 0; i < 20; i++)
        in[i] = (uint8_t)('a' + i);
    assert_int_equal(mv_uart_receive(u, in, 20), MV_UART_RX_FIFO);
    assert_true(s.level);
    assert_int_equal(mv_uart_read(u, 2) & 0x0f, 0x04);
    assert_true(mv_uart_read(u, 5) & 0x01);
    for (int i = 0; i < MV_UART_RX_FIFO; i++)
        assert_int_equal(mv_uart_read(u, 0), 'a' + i);
    assert_false(mv_uart_read(u, 5) & 0x01);
    assert_false(s.level);
    mv_uart_destroy(u);
}

static void test_loopback_and_reset(void **state)
{
    (void)state;
    struct sink s = {0};
    struct mv_uart *u = mv_uart_create(tx, irq, &s);
    mv_uart_write(u, 4, 0x10 | 0x03); /* loopback, DTR, RTS */
    mv_uart_write(u, 0, 0x42);
    assert_int_equal(s.n, 0);
    assert_int_equal(mv_uart_read(u, 0), 0x42);
    assert_int_equal(mv_uart_read(u, 6) & 0x30, 0x30); /* DTR->DSR, RTS->CTS */
    mv_uart_write(u, 7, 9);
    mv_uart_reset(u);
    assert_int_equal(mv_uart_read(u, 7), 0);
    assert_int_equal(mv_uart_read(u, 4), 0);
    assert_int_equal(mv_uart_read(u, 99), 0xff); /* out of range reads float high */
    mv_uart_destroy(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tx_and_dlab),
        cmocka_unit_test(test_thre_interrupt),
        cmocka_unit_test(test_rx),
        cmocka_unit_test(test_loopback_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
