/* Test guest: virtio-blk through mvvmm. The disk (prepared by the test script) holds a known
 * pattern: sector s starts with s as a little-endian u64, then byte i is (s * 13 + i) & 0xff.
 * The guest reads and checks 128 sectors, writes its own pattern to sectors 512..575, flushes,
 * reads them back, checks errors for out-of-range and read-only-style misuse; the script then
 * checks the host file. Interrupts (irqfd -> IOAPIC) wake every wait. */
#include "guest.h"
#include "guest_virtio.h"

#define WRITE_FIRST 512u
#define WRITE_COUNT 64u

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue vq;
static uint8_t buf[16 * 512] __attribute__((aligned(4096)));

static uint8_t disk_byte(uint64_t s, unsigned i)
{
    if (i < 8)
        return (uint8_t)(s >> (8 * i));
    return (uint8_t)(s * 13 + i);
}

static uint8_t guest_byte(uint64_t s, unsigned i)
{
    return (uint8_t)((s * 3 + i) ^ 0x5a);
}

void guest_main(void)
{
    unsigned n = gv_discover(devs, GV_MAX_DEVICES);
    struct gv_device *dev = gv_find(devs, n, 2);
    if (dev == NULL) {
        guest_fail("virtio_blk_init", "no virtio-blk device");
        return;
    }
    if (!gv_init(dev, 1ull << 9 /* FLUSH */) || !gv_queue_setup(dev, &vq, 0, 0) ||
        !gv_driver_ok(dev)) {
        guest_failf("virtio_blk_init", "handshake failed, status 0x%x", gv_status(dev));
        return;
    }
    uint64_t capacity = gv_config64(dev, 0);
    guest_printf("virtio-blk: capacity %llu sectors\n", (unsigned long long)capacity);
    if (capacity < WRITE_FIRST + WRITE_COUNT) {
        guest_failf("virtio_blk_init", "capacity %llu too small", (unsigned long long)capacity);
        return;
    }
    guest_pass("virtio_blk_init");

    /* read 128 sectors, 16 at a time, and check the script's pattern */
    for (uint64_t s = 0; s < 128; s += 16) {
        memset(buf, 0, sizeof(buf));
        uint8_t st = gv_blk_request(dev, &vq, GV_BLK_T_IN, s, buf, sizeof(buf));
        if (st != 0) {
            guest_failf("virtio_blk_read", "sector %llu status %u", (unsigned long long)s, st);
            return;
        }
        for (unsigned k = 0; k < 16; k++)
            for (unsigned i = 0; i < 512; i++)
                if (buf[k * 512 + i] != disk_byte(s + k, i)) {
                    guest_failf("virtio_blk_read", "sector %llu byte %u: %u != %u",
                                (unsigned long long)(s + k), i, buf[k * 512 + i],
                                disk_byte(s + k, i));
                    return;
                }
    }
    guest_pass("virtio_blk_read");

    /* write our pattern, flush, read back */
    for (uint64_t s = WRITE_FIRST; s < WRITE_FIRST + WRITE_COUNT; s += 16) {
        for (unsigned k = 0; k < 16; k++)
            for (unsigned i = 0; i < 512; i++)
                buf[k * 512 + i] = guest_byte(s + k, i);
        uint8_t st = gv_blk_request(dev, &vq, GV_BLK_T_OUT, s, buf, sizeof(buf));
        if (st != 0) {
            guest_failf("virtio_blk_write", "sector %llu status %u", (unsigned long long)s, st);
            return;
        }
    }
    uint8_t st = gv_blk_request(dev, &vq, GV_BLK_T_FLUSH, 0, NULL, 0);
    if (st != 0) {
        guest_failf("virtio_blk_flush", "status %u", st);
        return;
    }
    guest_pass("virtio_blk_flush");
    for (uint64_t s = WRITE_FIRST; s < WRITE_FIRST + WRITE_COUNT; s += 16) {
        memset(buf, 0, sizeof(buf));
        st = gv_blk_request(dev, &vq, GV_BLK_T_IN, s, buf, sizeof(buf));
        for (unsigned k = 0; k < 16 && st == 0; k++)
            for (unsigned i = 0; i < 512; i++)
                if (buf[k * 512 + i] != guest_byte(s + k, i)) {
                    guest_failf("virtio_blk_write", "read-back sector %llu byte %u",
                                (unsigned long long)(s + k), i);
                    return;
                }
        if (st != 0) {
            guest_failf("virtio_blk_write", "read-back status %u", st);
            return;
        }
    }
    guest_pass("virtio_blk_write");

    /* errors: beyond the end, straddling the end, unknown type */
    if (gv_blk_request(dev, &vq, GV_BLK_T_IN, capacity, buf, 512) != 1 ||
        gv_blk_request(dev, &vq, GV_BLK_T_OUT, capacity - 1, buf, 1024) != 1 ||
        gv_blk_request(dev, &vq, 99, 0, NULL, 0) != 2) {
        guest_fail("virtio_blk_errors", "out-of-range or unknown request not refused");
        return;
    }
    guest_pass("virtio_blk_errors");

    memset(buf, 0, 32);
    if (gv_blk_request(dev, &vq, GV_BLK_T_GET_ID, 0, buf, 20) != 0 ||
        memcmp(buf, "hvi-disk", 9) != 0) {
        guest_fail("virtio_blk_get_id", "serial mismatch");
        return;
    }
    guest_pass("virtio_blk_get_id");

    if (dev->irqs == 0) {
        guest_fail("virtio_blk_irq", "no interrupt received");
        return;
    }
    guest_printf("virtio-blk: %u interrupts\n", dev->irqs);
    guest_pass("virtio_blk_irq");
}
