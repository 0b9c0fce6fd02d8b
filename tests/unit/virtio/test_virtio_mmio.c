/* The virtio-mmio register state machine: identification, status handshake, feature
 * negotiation (VERSION_1 required), queue setup, notify/interrupt paths, config space and
 * generation, reset, NEEDS_RESET on a malformed ring, threaded kicks, and KVM registration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "harness.h"
#include "mv/util.h"
#include "mv/virtio_mmio.h"

#define TEST_DEV_FEATURES (1ull << 3 | MV_VIRTIO_F_EVENT_IDX)

/* A minimal device model for the transport: echoes every chain back as used. */
struct echo_dev {
    struct mv_virtio_mmio *dev;
    uint8_t config[12];
    int notifies;
    int activates;
    int resets;
    int irqs;
    int popped;
    int pop_errors;
};

static int echo_attach(void *ctx, struct mv_virtio_mmio *dev)
{
    ((struct echo_dev *)ctx)->dev = dev;
    return 0;
}

static void echo_config_read(void *ctx, uint32_t off, void *data, uint32_t len)
{
    memcpy(data, ((struct echo_dev *)ctx)->config + off, len);
}

static void echo_config_write(void *ctx, uint32_t off, const void *data, uint32_t len)
{
    memcpy(((struct echo_dev *)ctx)->config + off, data, len);
}

static int echo_activate(void *ctx)
{
    ((struct echo_dev *)ctx)->activates++;
    return 0;
}

static void echo_queue_notify(void *ctx, uint16_t q)
{
    struct echo_dev *e = ctx;
    __atomic_fetch_add(&e->notifies, 1, __ATOMIC_SEQ_CST);
    struct mv_virtq *vq = mv_virtio_mmio_queue(e->dev, q);
    static struct mv_virtq_chain c;
    int rc, n = 0;
    while ((rc = mv_virtq_pop(vq, &c)) == 1) {
        mv_virtq_push(vq, c.head, 0);
        n++;
    }
    e->popped += n;
    if (rc < 0)
        e->pop_errors++;
    if (n > 0)
        mv_virtio_mmio_notify_used(e->dev, q);
}

static void echo_reset(void *ctx)
{
    ((struct echo_dev *)ctx)->resets++;
}

static const struct mv_virtio_device_ops echo_ops = {
    .attach = echo_attach,
    .config_read = echo_config_read,
    .config_write = echo_config_write,
    .activate = echo_activate,
    .queue_notify = echo_queue_notify,
    .reset = echo_reset,
};

static void count_irq(void *ctx, uint32_t gsi)
{
    struct echo_dev *e = ctx;
    assert_int_equal(gsi, 9);
    __atomic_fetch_add(&e->irqs, 1, __ATOMIC_SEQ_CST);
}

struct fixture {
    struct hx_ram ram;
    struct hx_queue q[2];
    struct echo_dev echo;
    struct mv_virtio_device device;
    struct mv_virtio_mmio *dev;
};

static struct fixture *make_fixture(bool no_thread, int vm_fd)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    hx_ram_init(&f.ram, 1 << 20);
    hx_queue_init(&f.q[0], &f.ram, 8);
    hx_queue_init(&f.q[1], &f.ram, 8);
    memcpy(f.echo.config, "configspace!", 12);
    f.device = (struct mv_virtio_device){.device_id = 42,
                                         .features = TEST_DEV_FEATURES,
                                         .config_size = sizeof(f.echo.config),
                                         .num_queues = 2,
                                         .queue_max = 64,
                                         .ops = &echo_ops,
                                         .ctx = &f.echo};
    struct mv_virtio_mmio_params p = {.device = &f.device,
                                      .mem = &f.ram.mem,
                                      .base = 0xd0000000,
                                      .gsi = 9,
                                      .vm_fd = vm_fd,
                                      .irq_cb = count_irq,
                                      .irq_ctx = &f.echo,
                                      .no_thread = no_thread};
    f.dev = mv_virtio_mmio_create(&p);
    return &f;
}

static int setup(void **state)
{
    struct fixture *f = make_fixture(true, -1);
    assert_non_null(f->dev);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mv_virtio_mmio_destroy(f->dev);
    hx_ram_fini(&f->ram);
    return 0;
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
    return hx_mmio_read32(f->dev, off);
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
    hx_mmio_write32(f->dev, off, v);
}

static void test_identification(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_VERSION_REG), 2);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_DEVICE_ID), 42);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_VENDOR_ID_REG), MV_VIRTIO_MMIO_VENDOR_ID);
    wr(f, MV_VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)TEST_DEV_FEATURES);
    wr(f, MV_VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 added */
    wr(f, MV_VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_DEVICE_FEATURES), 0);
    char buf[64];
    mv_virtio_mmio_cmdline(f->dev, buf, sizeof(buf));
    assert_string_equal(buf, "virtio_mmio.device=0x200@0xd0000000:9");
}

static void test_bad_accesses(void **state)
{
    struct fixture *f = *state;
    uint32_t v = 0xdeadbeef;
    uint16_t v16 = 0xbeef;
    assert_int_equal(mv_virtio_mmio_read(f->dev, MV_VIRTIO_MMIO_STATUS, &v16, 2), -EINVAL);
    assert_int_equal(v16, 0); /* reads as zero */
    assert_int_equal(mv_virtio_mmio_read(f->dev, 0x71, &v, 4), -EINVAL);
    assert_int_equal(mv_virtio_mmio_write(f->dev, 0x72, &v, 4), -EINVAL);
    assert_int_equal(mv_virtio_mmio_read(f->dev, 0x400, &v, 4), -EINVAL);
    assert_int_equal(mv_virtio_mmio_read(f->dev, UINT64_MAX - 1, &v, 4), -EINVAL);
    uint8_t big[16];
    assert_int_equal(mv_virtio_mmio_read(f->dev, 0x100, big, 16), -EINVAL);
    /* config space: inside is fine at any width, crossing its end is not */
    uint16_t c16;
    assert_int_equal(mv_virtio_mmio_read(f->dev, 0x100 + 6, &c16, 2), 0);
    assert_memory_equal(&c16, "sp", 2);
    uint64_t c64;
    assert_int_equal(mv_virtio_mmio_read(f->dev, 0x100 + 8, &c64, 8), -EINVAL);
    assert_int_equal(mv_virtio_mmio_read(f->dev, 0x100 + 4, &c64, 8), 0);
    assert_memory_equal(&c64, "igspace!", 8);
    assert_int_equal(mv_virtio_mmio_write(f->dev, 0x100 + 11, "XY", 2), -EINVAL);
    assert_int_equal(f->echo.config[11], '!');
    assert_int_equal(mv_virtio_mmio_write(f->dev, 0x100 + 0, "CO", 2), 0);
    assert_int_equal(f->echo.config[0], 'C');
    /* writes to read-only registers change nothing */
    wr(f, MV_VIRTIO_MMIO_MAGIC_VALUE, 0);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
}

static void test_handshake_ok(void **state)
{
    struct fixture *f = *state;
    uint32_t st = hx_mmio_setup(f->dev, ~0ull, f->q, 2);
    assert_int_equal(st, MV_VIRTIO_STATUS_ACKNOWLEDGE | MV_VIRTIO_STATUS_DRIVER |
                             MV_VIRTIO_STATUS_FEATURES_OK | MV_VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(mv_virtio_mmio_driver_features(f->dev),
                     TEST_DEV_FEATURES | MV_VIRTIO_F_VERSION_1);
    assert_int_equal(f->echo.activates, 1);
    wr(f, MV_VIRTIO_MMIO_QUEUE_SEL, 1);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_QUEUE_READY), 1);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
    wr(f, MV_VIRTIO_MMIO_QUEUE_SEL, 2);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_QUEUE_READY), 0);
    /* an enabled queue's registers cannot move under the device */
    wr(f, MV_VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(f, MV_VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
    assert_non_null(mv_virtio_mmio_queue(f->dev, 0));
    /* features are frozen after FEATURES_OK */
    wr(f, MV_VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(f, MV_VIRTIO_MMIO_DRIVER_FEATURES, 0);
    assert_int_equal(mv_virtio_mmio_driver_features(f->dev),
                     TEST_DEV_FEATURES | MV_VIRTIO_F_VERSION_1);
}

static void negotiate(struct fixture *f, uint64_t features)
{
    wr(f, MV_VIRTIO_MMIO_STATUS, 0);
    wr(f, MV_VIRTIO_MMIO_STATUS, MV_VIRTIO_STATUS_ACKNOWLEDGE | MV_VIRTIO_STATUS_DRIVER);
    wr(f, MV_VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(f, MV_VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(f, MV_VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(f, MV_VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(f, MV_VIRTIO_MMIO_STATUS,
       MV_VIRTIO_STATUS_ACKNOWLEDGE | MV_VIRTIO_STATUS_DRIVER | MV_VIRTIO_STATUS_FEATURES_OK);
}

static void test_feature_negotiation_rules(void **state)
{
    struct fixture *f = *state;
    /* legacy driver without VERSION_1 */
    negotiate(f, 1ull << 3);
    assert_false(rd(f, MV_VIRTIO_MMIO_STATUS) & MV_VIRTIO_STATUS_FEATURES_OK);
    /* a feature the device never offered */
    negotiate(f, MV_VIRTIO_F_VERSION_1 | (1ull << 5));
    assert_false(rd(f, MV_VIRTIO_MMIO_STATUS) & MV_VIRTIO_STATUS_FEATURES_OK);
    /* DRIVER_OK cannot skip FEATURES_OK */
    wr(f, MV_VIRTIO_MMIO_STATUS,
       MV_VIRTIO_STATUS_ACKNOWLEDGE | MV_VIRTIO_STATUS_DRIVER | MV_VIRTIO_STATUS_DRIVER_OK);
    assert_false(rd(f, MV_VIRTIO_MMIO_STATUS) & MV_VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(f->echo.activates, 0);
    /* the subset VERSION_1 alone is fine */
    negotiate(f, MV_VIRTIO_F_VERSION_1);
    assert_true(rd(f, MV_VIRTIO_MMIO_STATUS) & MV_VIRTIO_STATUS_FEATURES_OK);
    /* feature writes before DRIVER are ignored */
    wr(f, MV_VIRTIO_MMIO_STATUS, 0);
    wr(f, MV_VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(f, MV_VIRTIO_MMIO_DRIVER_FEATURES, 1);
    assert_int_equal(mv_virtio_mmio_driver_features(f->dev), 0);
}

static void test_queue_outside_memory_needs_reset(void **state)
{
    struct fixture *f = *state;
    negotiate(f, MV_VIRTIO_F_VERSION_1);
    wr(f, MV_VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(f, MV_VIRTIO_MMIO_QUEUE_NUM, 8);
    wr(f, MV_VIRTIO_MMIO_QUEUE_DESC_LOW, 0x0); /* below guest RAM */
    wr(f, MV_VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)f->q[0].avail_gpa);
    wr(f, MV_VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)f->q[0].used_gpa);
    wr(f, MV_VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_QUEUE_READY), 0);
    assert_true(rd(f, MV_VIRTIO_MMIO_STATUS) & MV_VIRTIO_STATUS_NEEDS_RESET);
    /* a queue size above QueueNumMax is refused too */
    wr(f, MV_VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_STATUS), 0);
    negotiate(f, MV_VIRTIO_F_VERSION_1);
    wr(f, MV_VIRTIO_MMIO_QUEUE_NUM, 128);
    wr(f, MV_VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)f->q[0].desc_gpa);
    wr(f, MV_VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_QUEUE_READY), 0);
}

static void test_notify_and_interrupt(void **state)
{
    struct fixture *f = *state;
    /* kicks before DRIVER_OK do not reach the device */
    assert_int_equal(mv_virtio_mmio_notify(f->dev, 0), -EINVAL);
    assert_int_equal(f->echo.notifies, 0);
    hx_mmio_setup(f->dev, MV_VIRTIO_F_VERSION_1, f->q, 2);
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    struct hx_buf buf = {b, 64, false};
    hx_publish(&f->q[1], hx_chain(&f->q[1], &buf, 1));
    wr(f, MV_VIRTIO_MMIO_QUEUE_NOTIFY, 1); /* the guest's way */
    assert_int_equal(f->echo.notifies, 1);
    assert_int_equal(f->echo.popped, 1);
    assert_int_equal(hx_used_idx(&f->q[1]), 1);
    assert_int_equal(f->echo.irqs, 1);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_INTERRUPT_STATUS), MV_VIRTIO_ISR_USED);
    wr(f, MV_VIRTIO_MMIO_INTERRUPT_ACK, MV_VIRTIO_ISR_USED);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_int_equal(mv_virtio_mmio_notify(f->dev, 5), -EINVAL);
    wr(f, MV_VIRTIO_MMIO_QUEUE_NOTIFY, 5); /* ignored */
    assert_int_equal(f->echo.notifies, 1);
}

static void test_config_generation(void **state)
{
    struct fixture *f = *state;
    hx_mmio_setup(f->dev, MV_VIRTIO_F_VERSION_1, f->q, 2);
    uint32_t g = rd(f, MV_VIRTIO_MMIO_CONFIG_GENERATION);
    mv_virtio_mmio_config_changed(f->dev);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_CONFIG_GENERATION), g + 1);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_INTERRUPT_STATUS), MV_VIRTIO_ISR_CONFIG);
    assert_int_equal(f->echo.irqs, 1);
}

static void test_reset_clears_state(void **state)
{
    struct fixture *f = *state;
    hx_mmio_setup(f->dev, ~0ull, f->q, 2);
    mv_virtio_mmio_interrupt(f->dev, MV_VIRTIO_ISR_USED);
    wr(f, MV_VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_STATUS), 0);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_int_equal(mv_virtio_mmio_driver_features(f->dev), 0);
    wr(f, MV_VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_int_equal(rd(f, MV_VIRTIO_MMIO_QUEUE_READY), 0);
    assert_null(mv_virtio_mmio_queue(f->dev, 0));
    assert_true(f->echo.resets >= 2); /* hx_mmio_setup resets first too */
    /* and the device comes up again */
    uint32_t st = hx_mmio_setup(f->dev, ~0ull, f->q, 2);
    assert_true(st & MV_VIRTIO_STATUS_DRIVER_OK);
}

static void test_malformed_ring_needs_reset(void **state)
{
    struct fixture *f = *state;
    hx_mmio_setup(f->dev, MV_VIRTIO_F_VERSION_1, f->q, 2);
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    hx_set_desc(&f->q[0], 0, b, 8, MV_VIRTQ_DESC_F_NEXT, 0); /* loops on itself */
    hx_publish(&f->q[0], 0);
    f->echo.irqs = 0;
    mv_virtio_mmio_notify(f->dev, 0);
    assert_int_equal(f->echo.pop_errors, 1);
    assert_true(rd(f, MV_VIRTIO_MMIO_STATUS) & MV_VIRTIO_STATUS_NEEDS_RESET);
    assert_true(rd(f, MV_VIRTIO_MMIO_INTERRUPT_STATUS) & MV_VIRTIO_ISR_CONFIG);
    assert_int_equal(f->echo.irqs, 1);
    /* no more queue processing until reset */
    mv_virtio_mmio_notify(f->dev, 1);
    assert_int_equal(f->echo.notifies, 1);
    /* the driver cannot clear NEEDS_RESET by writing status */
    wr(f, MV_VIRTIO_MMIO_STATUS, rd(f, MV_VIRTIO_MMIO_STATUS) & ~MV_VIRTIO_STATUS_NEEDS_RESET);
    assert_true(rd(f, MV_VIRTIO_MMIO_STATUS) & MV_VIRTIO_STATUS_NEEDS_RESET);
}

static void test_threaded_kick(void **state)
{
    struct fixture *f = make_fixture(false, -1);
    assert_non_null(f->dev);
    hx_mmio_setup(f->dev, ~0ull, f->q, 2);
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    for (int i = 0; i < 3; i++) {
        struct hx_buf buf = {b, 64, true};
        hx_publish(&f->q[0], hx_chain(&f->q[0], &buf, 1));
        assert_int_equal(mv_virtio_mmio_notify(f->dev, 0), 0);
    }
    uint64_t deadline = mv_now_ns() + 5000000000ull;
    while (hx_used_idx(&f->q[0]) != 3 && mv_now_ns() < deadline)
        mv_sleep_ns(1000000);
    assert_int_equal(hx_used_idx(&f->q[0]), 3);
    assert_true(__atomic_load_n(&f->echo.irqs, __ATOMIC_SEQ_CST) >= 1);
    mv_virtio_mmio_destroy(f->dev);
    hx_ram_fini(&f->ram);
}

static void test_kvm_registration(void **state)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        print_message("skip: no /dev/kvm (%s)\n", strerror(errno));
        skip();
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    assert_true(vm >= 0);
    assert_int_equal(ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0);
    struct fixture *f = make_fixture(false, vm);
    assert_non_null(f->dev); /* ioeventfd per queue + irqfd registered */
    /* a second device on the same window must fail: the ioeventfds are taken */
    struct mv_virtio_mmio_params p = {
        .device = &f->device, .mem = &f->ram.mem, .base = 0xd0000000, .gsi = 9, .vm_fd = vm};
    assert_null(mv_virtio_mmio_create(&p));
    mv_virtio_mmio_destroy(f->dev); /* deregisters: the window is free again */
    p.no_thread = true;
    struct mv_virtio_mmio *again = mv_virtio_mmio_create(&p);
    assert_non_null(again);
    mv_virtio_mmio_destroy(again);
    hx_ram_fini(&f->ram);
    close(vm);
    close(kvm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_accesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_negotiation_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_outside_memory_needs_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_and_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_clears_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_ring_needs_reset, setup, teardown),
        cmocka_unit_test(test_threaded_kick),
        cmocka_unit_test(test_kvm_registration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
