/* virtio-blk on a temp file, driven by a host-side harness that writes descriptors into a fake
 * guest RAM buffer and kicks the queue (vm fd -1, the device's own I/O thread, io_uring file
 * backend): reads, writes and flushes are checked against the file; bad requests get errors
 * and leave the file untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "mv/util.h"
#include "mv/virtio_blk.h"

#define DISK_SECTORS 2048u /* 1 MiB */
#define QSZ          128

struct fixture {
    char path[64];
    int fd; /* test's own view of the disk file */
    struct hx_ram ram;
    struct hx_queue q;
    struct mv_virtio_blk *blk;
    struct mv_virtio_mmio *dev;
    int irqs;
};

static uint8_t pattern_byte(uint64_t off)
{
    return (uint8_t)((off * 7 + (off >> 9)) & 0xff);
}

static void count_irq(void *ctx, uint32_t gsi)
{
    __atomic_fetch_add((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

static struct fixture *make(bool read_only)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    snprintf(f.path, sizeof(f.path), "/tmp/hvi-blk-XXXXXX");
    f.fd = mkstemp(f.path);
    assert_true(f.fd >= 0);
    static uint8_t disk[DISK_SECTORS * 512];
    for (uint64_t i = 0; i < sizeof(disk); i++)
        disk[i] = pattern_byte(i);
    assert_int_equal(pwrite(f.fd, disk, sizeof(disk), 0), (ssize_t)sizeof(disk));

    struct mv_virtio_blk_params p = {.serial = "hvi-serial-0123456789xyz", .read_only = read_only};
    assert_int_equal(mv_blk_file_backend_open(f.path, read_only, true, 32, &p.backend), 0);
    assert_int_equal(p.backend.capacity, sizeof(disk));
    f.blk = mv_virtio_blk_create(&p);
    assert_non_null(f.blk);
    hx_ram_init(&f.ram, 4 << 20);
    hx_queue_init(&f.q, &f.ram, QSZ);
    struct mv_virtio_mmio_params mp = {.device = mv_virtio_blk_device(f.blk),
                                       .mem = &f.ram.mem,
                                       .base = 0xd0000000,
                                       .gsi = 5,
                                       .vm_fd = -1,
                                       .irq_cb = count_irq,
                                       .irq_ctx = &f.irqs};
    f.dev = mv_virtio_mmio_create(&mp);
    assert_non_null(f.dev);
    uint32_t st = hx_mmio_setup(f.dev, ~0ull, &f.q, 1);
    assert_true(st & MV_VIRTIO_STATUS_DRIVER_OK);
    return &f;
}

static int setup_rw(void **state)
{
    *state = make(false);
    return 0;
}

static int setup_ro(void **state)
{
    *state = make(true);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mv_virtio_mmio_destroy(f->dev);
    mv_virtio_blk_destroy(f->blk);
    hx_ram_fini(&f->ram);
    close(f->fd);
    unlink(f->path);
    return 0;
}

struct req {
    uint64_t hdr, data, status;
    uint16_t head;
};

/* Queues one request: header, optional data (split into nseg pieces), status byte. */
static struct req queue_req(struct fixture *f, uint32_t type, uint64_t sector, uint64_t data,
                            uint32_t len, unsigned nseg, bool publish)
{
    struct req r = {.data = data};
    r.hdr = hx_alloc(&f->ram, 16, 16);
    r.status = hx_alloc(&f->ram, 1, 1);
    uint8_t *h = hx_ptr(&f->ram, r.hdr);
    memcpy(h, &type, 4);
    memset(h + 4, 0, 4);
    memcpy(h + 8, &sector, 8);
    *(uint8_t *)hx_ptr(&f->ram, r.status) = 0xee;
    struct hx_buf bufs[8];
    unsigned n = 0;
    bufs[n++] = (struct hx_buf){r.hdr, 16, false};
    bool writable = type == MV_VIRTIO_BLK_T_IN || type == MV_VIRTIO_BLK_T_GET_ID;
    for (unsigned s = 0; s < nseg && len > 0; s++) {
        uint32_t piece = s + 1 < nseg ? len / nseg : len - (len / nseg) * (nseg - 1);
        bufs[n++] = (struct hx_buf){data + (len / nseg) * s, piece, writable};
    }
    bufs[n++] = (struct hx_buf){r.status, 1, true};
    r.head = hx_chain(&f->q, bufs, n);
    if (publish) {
        hx_publish(&f->q, r.head);
        mv_virtio_mmio_notify(f->dev, 0);
    }
    return r;
}

static void wait_used(struct fixture *f, uint16_t n)
{
    uint64_t deadline = mv_now_ns() + 10000000000ull;
    while ((uint16_t)(hx_used_idx(&f->q) - f->q.used_seen) < n && mv_now_ns() < deadline)
        mv_sleep_ns(200000);
    assert_true((uint16_t)(hx_used_idx(&f->q) - f->q.used_seen) >= n);
}

static uint8_t status_of(struct fixture *f, const struct req *r)
{
    return *(uint8_t *)hx_ptr(&f->ram, r->status);
}

/* Runs one request to completion; returns its used length. */
static uint32_t run_req(struct fixture *f, struct req *r)
{
    wait_used(f, 1);
    uint32_t id, len;
    assert_true(hx_used_next(&f->q, &id, &len));
    assert_int_equal(id, r->head);
    return len;
}

static void test_config_space(void **state)
{
    struct fixture *f = *state;
    uint64_t cap;
    assert_int_equal(mv_virtio_mmio_read(f->dev, 0x100, &cap, 8), 0);
    assert_int_equal(cap, DISK_SECTORS);
    uint32_t blk_size;
    mv_virtio_mmio_read(f->dev, 0x100 + 20, &blk_size, 4);
    assert_int_equal(blk_size, 512);
    uint64_t feat = mv_virtio_mmio_driver_features(f->dev);
    assert_true(feat & MV_VIRTIO_BLK_F_FLUSH);
    assert_true(feat & MV_VIRTIO_F_VERSION_1);
    assert_false(feat & MV_VIRTIO_BLK_F_RO);
    assert_int_equal(hx_mmio_read32(f->dev, MV_VIRTIO_MMIO_DEVICE_ID), 2);
}

static void test_read(void **state)
{
    struct fixture *f = *state;
    uint64_t data = hx_alloc(&f->ram, 4 * 512, 4096);
    memset(hx_ptr(&f->ram, data), 0, 4 * 512);
    struct req r = queue_req(f, MV_VIRTIO_BLK_T_IN, 3, data, 4 * 512, 3, true);
    assert_int_equal(run_req(f, &r), 4 * 512 + 1);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);
    const uint8_t *p = hx_ptr(&f->ram, data);
    for (unsigned i = 0; i < 4 * 512; i++)
        assert_int_equal(p[i], pattern_byte(3 * 512 + i));
    assert_true(__atomic_load_n(&f->irqs, __ATOMIC_SEQ_CST) >= 1);
    struct mv_virtio_blk_stats st;
    mv_virtio_blk_get_stats(f->blk, &st);
    assert_int_equal(st.reads, 1);
    assert_int_equal(st.read_bytes, 2048);
}

static void check_write(struct fixture *f, uint64_t sector, uint64_t data, uint32_t len,
                        unsigned nseg)
{
    uint8_t *p = hx_ptr(&f->ram, data);
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(0xa5 ^ i ^ sector);
    struct req r = queue_req(f, MV_VIRTIO_BLK_T_OUT, sector, data, len, nseg, true);
    assert_int_equal(run_req(f, &r), 1);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);
    uint8_t back[8192];
    assert_true(len <= sizeof(back));
    assert_int_equal(pread(f->fd, back, len, (off_t)(sector * 512)), (ssize_t)len);
    assert_memory_equal(back, p, len);
    /* neighbours untouched */
    uint8_t nb;
    assert_int_equal(pread(f->fd, &nb, 1, (off_t)(sector * 512 + len)), 1);
    assert_int_equal(nb, pattern_byte(sector * 512 + len));
}

static void test_write_aligned(void **state)
{
    struct fixture *f = *state;
    check_write(f, 10, hx_alloc(&f->ram, 8192, 4096), 8192, 2); /* O_DIRECT path */
}

static void test_write_unaligned_buffers(void **state)
{
    struct fixture *f = *state;
    /* guest buffers at odd addresses: the backend must fall back to buffered I/O */
    check_write(f, 100, hx_alloc(&f->ram, 3 * 512 + 7, 1) + 7, 3 * 512, 3);
}

static void test_flush(void **state)
{
    struct fixture *f = *state;
    struct req r = queue_req(f, MV_VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, true);
    assert_int_equal(run_req(f, &r), 1);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);
    struct mv_virtio_blk_stats st;
    mv_virtio_blk_get_stats(f->blk, &st);
    assert_int_equal(st.flushes, 1);
}

static void expect_status(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len,
                          uint8_t want)
{
    uint64_t data = hx_alloc(&f->ram, len ? len : 1, 4096);
    memset(hx_ptr(&f->ram, data), 0x5a, len);
    struct req r = queue_req(f, type, sector, data, len, 1, true);
    run_req(f, &r);
    assert_int_equal(status_of(f, &r), want);
}

static void assert_file_pristine(struct fixture *f)
{
    static uint8_t disk[DISK_SECTORS * 512];
    assert_int_equal(pread(f->fd, disk, sizeof(disk), 0), (ssize_t)sizeof(disk));
    for (uint64_t i = 0; i < sizeof(disk); i++)
        if (disk[i] != pattern_byte(i))
            fail_msg("disk byte %llu changed", (unsigned long long)i);
}

static void test_out_of_range(void **state)
{
    struct fixture *f = *state;
    expect_status(f, MV_VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024, MV_VIRTIO_BLK_S_IOERR);
    expect_status(f, MV_VIRTIO_BLK_T_OUT, DISK_SECTORS - 1, 1024, MV_VIRTIO_BLK_S_IOERR);
    expect_status(f, MV_VIRTIO_BLK_T_OUT, DISK_SECTORS, 512, MV_VIRTIO_BLK_S_IOERR);
    /* sector * 512 and sector + n overflow */
    expect_status(f, MV_VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 2, 512, MV_VIRTIO_BLK_S_IOERR);
    expect_status(f, MV_VIRTIO_BLK_T_OUT, UINT64_MAX, 512, MV_VIRTIO_BLK_S_IOERR);
    /* not a whole number of sectors */
    expect_status(f, MV_VIRTIO_BLK_T_OUT, 0, 100, MV_VIRTIO_BLK_S_IOERR);
    /* the last sector itself is fine */
    expect_status(f, MV_VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 512, MV_VIRTIO_BLK_S_OK);
    expect_status(f, 77, 0, 0, MV_VIRTIO_BLK_S_UNSUPP);
    assert_file_pristine(f);
    struct mv_virtio_blk_stats st;
    mv_virtio_blk_get_stats(f->blk, &st);
    assert_int_equal(st.errors, 7);
}

static void test_get_id(void **state)
{
    struct fixture *f = *state;
    uint64_t data = hx_alloc(&f->ram, 20, 1);
    struct req r = queue_req(f, MV_VIRTIO_BLK_T_GET_ID, 0, data, 20, 1, true);
    assert_int_equal(run_req(f, &r), 21);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);
    assert_memory_equal(hx_ptr(&f->ram, data), "hvi-serial-012345678", 20); /* truncated */
}

static void test_write_zeroes(void **state)
{
    struct fixture *f = *state;
    uint64_t seg = hx_alloc(&f->ram, 16, 8);
    uint64_t sector = 200;
    uint32_t num = 3, flags = 0;
    uint8_t *p = hx_ptr(&f->ram, seg);
    memcpy(p, &sector, 8);
    memcpy(p + 8, &num, 4);
    memcpy(p + 12, &flags, 4);
    /* the segment is device-readable data after the header */
    struct req r = {.hdr = hx_alloc(&f->ram, 16, 16), .status = hx_alloc(&f->ram, 1, 1)};
    uint32_t type = MV_VIRTIO_BLK_T_WRITE_ZEROES;
    memset(hx_ptr(&f->ram, r.hdr), 0, 16);
    memcpy(hx_ptr(&f->ram, r.hdr), &type, 4);
    struct hx_buf bufs[] = {{r.hdr, 16, false}, {seg, 16, false}, {r.status, 1, true}};
    r.head = hx_chain(&f->q, bufs, 3);
    hx_publish(&f->q, r.head);
    mv_virtio_mmio_notify(f->dev, 0);
    run_req(f, &r);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);
    uint8_t back[3 * 512 + 1];
    assert_int_equal(pread(f->fd, back, sizeof(back), 200 * 512), (ssize_t)sizeof(back));
    for (unsigned i = 0; i < 3 * 512; i++)
        assert_int_equal(back[i], 0);
    assert_int_equal(back[3 * 512], pattern_byte(203 * 512));
}

static void test_many_in_flight(void **state)
{
    struct fixture *f = *state;
    enum {
        N = 40
    }; /* 120 descriptors of 128, more requests than the backend depth (32):
        * exercises the stall/resume path */
    static struct req rs[N];
    uint64_t data = hx_alloc(&f->ram, N * 4096ull, 4096);
    for (unsigned i = 0; i < N; i++)
        rs[i] = queue_req(f, MV_VIRTIO_BLK_T_IN, i * 8, data + i * 4096ull, 4096, 1, false);
    for (unsigned i = 0; i < N; i++)
        hx_publish(&f->q, rs[i].head);
    mv_virtio_mmio_notify(f->dev, 0);
    wait_used(f, N);
    for (unsigned i = 0; i < N; i++) {
        uint32_t id, len;
        assert_true(hx_used_next(&f->q, &id, &len));
        assert_int_equal(len, 4097);
    }
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(status_of(f, &rs[i]), MV_VIRTIO_BLK_S_OK);
        const uint8_t *p = hx_ptr(&f->ram, data + i * 4096ull);
        for (unsigned b = 0; b < 4096; b += 511)
            assert_int_equal(p[b], pattern_byte(i * 4096ull + b));
    }
}

static void test_malformed_requests(void **state)
{
    struct fixture *f = *state;
    /* header too short */
    uint64_t h = hx_alloc(&f->ram, 8, 8), st = hx_alloc(&f->ram, 1, 1);
    struct hx_buf b1[] = {{h, 8, false}, {st, 1, true}};
    uint16_t head = hx_chain(&f->q, b1, 2);
    hx_publish(&f->q, head);
    /* no status byte at all: completed with nothing written */
    uint64_t h2 = hx_alloc(&f->ram, 16, 16);
    memset(hx_ptr(&f->ram, h2), 0, 16);
    struct hx_buf b2[] = {{h2, 16, false}};
    uint16_t head2 = hx_chain(&f->q, b2, 1);
    hx_publish(&f->q, head2);
    mv_virtio_mmio_notify(f->dev, 0);
    wait_used(f, 2);
    uint32_t id, len;
    assert_true(hx_used_next(&f->q, &id, &len));
    assert_int_equal(id, head);
    assert_int_equal(*(uint8_t *)hx_ptr(&f->ram, st), MV_VIRTIO_BLK_S_IOERR);
    assert_true(hx_used_next(&f->q, &id, &len));
    assert_int_equal(id, head2);
    assert_int_equal(len, 0);
    /* the device keeps working */
    assert_false(mv_virtio_mmio_status(f->dev) & MV_VIRTIO_STATUS_NEEDS_RESET);
    expect_status(f, MV_VIRTIO_BLK_T_IN, 0, 512, MV_VIRTIO_BLK_S_OK);
}

static void test_read_only(void **state)
{
    struct fixture *f = *state;
    assert_true(mv_virtio_mmio_driver_features(f->dev) & MV_VIRTIO_BLK_F_RO);
    expect_status(f, MV_VIRTIO_BLK_T_OUT, 0, 512, MV_VIRTIO_BLK_S_IOERR);
    expect_status(f, MV_VIRTIO_BLK_T_IN, 0, 512, MV_VIRTIO_BLK_S_OK);
    assert_file_pristine(f);
}

static void test_spec_parsing(void **state)
{
    assert_null(mv_virtio_blk_create_from_spec(""));
    assert_null(mv_virtio_blk_create_from_spec("/nonexistent/hvi-disk"));
    char path[] = "/tmp/hvi-spec-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    char spec[128];
    snprintf(spec, sizeof(spec), "%s,bogus", path);
    assert_null(mv_virtio_blk_create_from_spec(spec));
    snprintf(spec, sizeof(spec), "%s,ro,serial=abc,direct=0", path);
    struct mv_virtio_blk *blk = mv_virtio_blk_create_from_spec(spec);
    assert_non_null(blk);
    assert_true(mv_virtio_blk_device(blk)->features & MV_VIRTIO_BLK_F_RO);
    mv_virtio_blk_destroy(blk);
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_space, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_read, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_write_aligned, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_write_unaligned_buffers, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_get_id, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_write_zeroes, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_many_in_flight, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup_ro, teardown),
        cmocka_unit_test(test_spec_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
