/* Test guest of the instances rack test: the instance's root volume is its first virtio-blk disk
 * (served over AoE, by this host's mvstored or another host's). It announces its boot (the first
 * serial line, which bench/instances times), writes a pattern that depends on the boot count to
 * 64 sectors, flushes, reads it back and checks it, prints "inst blk ok", and then stays up
 * (interrupts off, halted) until the VMM is stopped. A reboot runs it again (boot count + 1). */
#include "guest.h"
#include "guest_virtio.h"

#define SECTORS 64u

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue vq;
static uint8_t buf[16 * 512] __attribute__((aligned(4096)));

static uint8_t pattern(uint64_t s, unsigned i, unsigned boot)
{
    return (uint8_t)((s * 7 + i + boot * 31) ^ 0xa5);
}

static void check_disk(unsigned boot)
{
    unsigned n = gv_discover(devs, GV_MAX_DEVICES);
    struct gv_device *dev = gv_find(devs, n, 2);
    if (dev == NULL) {
        guest_fail("inst_blk", "no virtio-blk device");
        return;
    }
    if (!gv_init(dev, 1ull << 9 /* FLUSH */) || !gv_queue_setup(dev, &vq, 0, 0) ||
        !gv_driver_ok(dev)) {
        guest_failf("inst_blk", "handshake failed, status 0x%x", gv_status(dev));
        return;
    }
    uint64_t capacity = gv_config64(dev, 0);
    if (capacity < SECTORS) {
        guest_failf("inst_blk", "capacity %llu too small", (unsigned long long)capacity);
        return;
    }
    for (uint64_t s = 0; s < SECTORS; s += 16) {
        for (unsigned k = 0; k < 16; k++)
            for (unsigned i = 0; i < 512; i++)
                buf[k * 512 + i] = pattern(s + k, i, boot);
        uint8_t st = gv_blk_request(dev, &vq, GV_BLK_T_OUT, s, buf, sizeof(buf));
        if (st != 0) {
            guest_failf("inst_blk", "write sector %llu: status %u", (unsigned long long)s, st);
            return;
        }
    }
    if (gv_blk_request(dev, &vq, GV_BLK_T_FLUSH, 0, NULL, 0) != 0) {
        guest_fail("inst_blk", "flush failed");
        return;
    }
    for (uint64_t s = 0; s < SECTORS; s += 16) {
        memset(buf, 0, sizeof(buf));
        uint8_t st = gv_blk_request(dev, &vq, GV_BLK_T_IN, s, buf, sizeof(buf));
        if (st != 0) {
            guest_failf("inst_blk", "read sector %llu: status %u", (unsigned long long)s, st);
            return;
        }
        for (unsigned k = 0; k < 16; k++)
            for (unsigned i = 0; i < 512; i++)
                if (buf[k * 512 + i] != pattern(s + k, i, boot)) {
                    guest_failf("inst_blk", "sector %llu byte %u differs",
                                (unsigned long long)(s + k), i);
                    return;
                }
    }
    guest_printf("inst blk ok %llu sectors, boot %u\n", (unsigned long long)capacity, boot);
}

void guest_main(void)
{
    struct guest_vm_info info;
    guest_vm_info(&info);
    guest_printf("inst boot %u\n", info.boot_count);
    check_disk(info.boot_count);
    for (;;)
        __asm__ volatile("cli; hlt");
}
