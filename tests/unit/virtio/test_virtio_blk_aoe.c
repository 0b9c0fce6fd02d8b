/* virtio-blk on the AoE backend against a real mvstored on its AF_UNIX AoE port (no root):
 * the host harness drives the device through the transport's I/O thread; the test's own
 * libmvblk initiator prepares and checks the target's data. Reads (direct, merged, split and
 * bounced segments), writes, flush, many in flight over a small depth, read-only, range errors,
 * an absent target, and a target that goes silent (IOERR after dead=, never a hang) and comes
 * back (re-attached). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mv/mvblk.h"
#include "mv/util.h"
#include "mv/virtio_blk.h"
#include "mv/virtio_blk_aoe.h"

#define SHELF        7
#define SLOT         1
#define DISK_SECTORS 4096u /* 2 MiB vdisk */
#define QSZ          128

static char dir[64], sock_path[128], ctl_path[128];
static pid_t stored_pid = -1;
static struct mvblk *view;         /* the test's own initiator */
static struct mvblk_dev *view_dev; /* ... on SHELF.SLOT */

static uint8_t pattern_byte(uint64_t off)
{
    return (uint8_t)((off * 7 + (off >> 9)) & 0xff);
}

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool file_contains(const char *path, const char *needle)
{
    char buf[8192];
    long n = mv_read_file(path, buf, sizeof(buf));
    return n > 0 && strstr(buf, needle) != NULL;
}

static int group_setup(void **state)
{
    (void)state;
    if (access(MVSTORED_BIN, X_OK) != 0 || access(MVAOE_BIN, X_OK) != 0) {
        printf("skip: mvstored/mvaoe not built\n");
        exit(77);
    }
    snprintf(dir, sizeof(dir), "/tmp/hib-vbaoe.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/aoe.sock", dir);
    snprintf(ctl_path, sizeof(ctl_path), "%s/ctl.sock", dir);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "truncate -s 32M %s/drive.img && %s --format %s/drive.img --host hib "
             "--chunk-size 256K >/dev/null",
             dir, MVSTORED_BIN, dir);
    if (run_cmd(cmd) != 0)
        return -1;
    char drive[128], log[128];
    snprintf(drive, sizeof(drive), "%s/drive.img", dir);
    snprintf(log, sizeof(log), "%s/stored.log", dir);
    stored_pid = fork();
    if (stored_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        execl(MVSTORED_BIN, MVSTORED_BIN, "-H", "hib", "--buffered", "-u", sock_path, "-C",
              ctl_path, "-d", drive, "-m", "02:00:00:00:6b:01", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !file_contains(log, "serving"); i++)
        mv_sleep_ns(20000000);
    if (!file_contains(log, "serving"))
        return -1;
    snprintf(cmd, sizeof(cmd),
             "%s ctl %s '{\"cmd\":\"create\",\"vdisk\":\"hib\",\"size\":%u,\"shelf\":%u,"
             "\"slot\":%u,\"map\":true}' >/dev/null",
             MVAOE_BIN, ctl_path, DISK_SECTORS * 512, SHELF, SLOT);
    if (run_cmd(cmd) != 0)
        return -1;
    struct mvblk_config cfg = {.kind = MV_PORT_UNIX, .unix_path = sock_path};
    char err[256];
    if (mvblk_open(&cfg, &view, err, sizeof(err)) != 0 ||
        mvblk_attach(view, SHELF, SLOT, 2000, 0, &view_dev, err, sizeof(err)) != 0) {
        fprintf(stderr, "test initiator: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mvblk_close(view);
    if (stored_pid > 0) {
        kill(stored_pid, SIGCONT);
        kill(stored_pid, SIGTERM);
        waitpid(stored_pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    run_cmd(cmd);
    return 0;
}

/* The target's contents back to the pattern. */
static void fill_target(void)
{
    static uint8_t disk[DISK_SECTORS * 512];
    for (uint64_t i = 0; i < sizeof(disk); i++)
        disk[i] = pattern_byte(i);
    assert_int_equal(mvblk_write(view_dev, 0, disk, DISK_SECTORS), 0);
}

static void read_target(uint64_t sector, void *buf, uint32_t sectors)
{
    assert_int_equal(mvblk_read(view_dev, sector, buf, sectors), 0);
}

struct fixture {
    struct hx_ram ram;
    struct hx_queue q;
    struct mv_virtio_blk *blk;
    struct mv_virtio_mmio *dev;
    void *be; /* the AoE backend, for its counters */
    int irqs;
};

static void count_irq(void *ctx, uint32_t gsi)
{
    (void)gsi;
    __atomic_fetch_add((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

static struct fixture *make(const char *extra)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    fill_target();
    char spec[256], err[256] = "";
    snprintf(spec, sizeof(spec), "aoe:%u.%u,unix=%s%s", SHELF, SLOT, sock_path, extra);
    struct mv_blk_aoe_spec s;
    assert_int_equal(mv_blk_aoe_spec_parse(spec, &s, err, sizeof(err)), 0);
    struct mv_virtio_blk_params p = {.serial = "hib-aoe", .read_only = s.read_only};
    if (mv_blk_aoe_backend_open(&s, &p.backend, NULL, err, sizeof(err)) != 0)
        fail_msg("open %s: %s", spec, err);
    assert_int_equal(p.backend.capacity, DISK_SECTORS * 512ull);
    f.be = p.backend.be;
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
    assert_true(hx_mmio_setup(f.dev, ~0ull, &f.q, 1) & MV_VIRTIO_STATUS_DRIVER_OK);
    return &f;
}

static int setup_rw(void **state)
{
    *state = make("");
    return 0;
}

static int setup_ro(void **state)
{
    *state = make(",ro");
    return 0;
}

static int setup_shallow(void **state)
{
    *state = make(",depth=4");
    return 0;
}

static int setup_fragile(void **state)
{
    *state = make(",dead=300");
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mv_virtio_mmio_destroy(f->dev);
    mv_virtio_blk_destroy(f->blk);
    hx_ram_fini(&f->ram);
    return 0;
}

struct req {
    uint64_t hdr, status;
    uint16_t head;
};

/* Queues header, the given data buffers, status byte. */
static struct req queue_bufs(struct fixture *f, uint32_t type, uint64_t sector,
                             const struct hx_buf *data, unsigned n, bool publish)
{
    struct req r;
    r.hdr = hx_alloc(&f->ram, 16, 16);
    r.status = hx_alloc(&f->ram, 1, 1);
    uint8_t *h = hx_ptr(&f->ram, r.hdr);
    memcpy(h, &type, 4);
    memset(h + 4, 0, 4);
    memcpy(h + 8, &sector, 8);
    *(uint8_t *)hx_ptr(&f->ram, r.status) = 0xee;
    struct hx_buf bufs[16];
    unsigned k = 0;
    bufs[k++] = (struct hx_buf){r.hdr, 16, false};
    for (unsigned i = 0; i < n; i++)
        bufs[k++] = data[i];
    bufs[k++] = (struct hx_buf){r.status, 1, true};
    r.head = hx_chain(&f->q, bufs, k);
    if (publish) {
        hx_publish(&f->q, r.head);
        mv_virtio_mmio_notify(f->dev, 0);
    }
    return r;
}

static bool wait_used(struct fixture *f, uint16_t n, uint64_t timeout_ns)
{
    uint64_t deadline = mv_now_ns() + timeout_ns;
    while ((uint16_t)(hx_used_idx(&f->q) - f->q.used_seen) < n && mv_now_ns() < deadline)
        mv_sleep_ns(200000);
    return (uint16_t)(hx_used_idx(&f->q) - f->q.used_seen) >= n;
}

static uint32_t run_req(struct fixture *f, const struct req *r)
{
    assert_true(wait_used(f, 1, 10000000000ull));
    uint32_t id, len;
    assert_true(hx_used_next(&f->q, &id, &len));
    assert_int_equal(id, r->head);
    return len;
}

static uint8_t status_of(struct fixture *f, const struct req *r)
{
    return *(uint8_t *)hx_ptr(&f->ram, r->status);
}

/* Reads len bytes at sector into the given pieces and checks them against the pattern. */
static void check_read(struct fixture *f, uint64_t sector, const struct hx_buf *pieces, unsigned n)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        memset(hx_ptr(&f->ram, pieces[i].gpa), 0, pieces[i].len);
        total += pieces[i].len;
    }
    struct req r = queue_bufs(f, MV_VIRTIO_BLK_T_IN, sector, pieces, n, true);
    assert_int_equal(run_req(f, &r), total + 1);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);
    uint64_t off = sector * 512;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = hx_ptr(&f->ram, pieces[i].gpa);
        for (uint32_t b = 0; b < pieces[i].len; b++, off++)
            if (p[b] != pattern_byte(off))
                fail_msg("piece %u byte %u: %u != %u", i, b, p[b], pattern_byte(off));
    }
}

static void test_config_and_reads(void **state)
{
    struct fixture *f = *state;
    uint64_t cap;
    assert_int_equal(mv_virtio_mmio_read(f->dev, 0x100, &cap, 8), 0);
    assert_int_equal(cap, DISK_SECTORS);
    uint64_t feat = mv_virtio_mmio_driver_features(f->dev);
    assert_true(feat & MV_VIRTIO_BLK_F_FLUSH);
    assert_false(feat & MV_VIRTIO_BLK_F_RO);
    assert_false(feat & MV_VIRTIO_BLK_F_DISCARD);

    /* one segment of 32 KiB: libmvblk splits it into frames */
    uint64_t a = hx_alloc(&f->ram, 65536, 4096);
    struct hx_buf one[] = {{a, 32768, true}};
    check_read(f, 5, one, 1);
    /* whole-sector pieces, guest-contiguous: merged into one libmvblk request */
    struct hx_buf contig[] = {{a, 1024, true}, {a + 1024, 512, true}, {a + 1536, 2048, true}};
    check_read(f, 100, contig, 3);
    /* whole-sector pieces scattered in guest memory: one libmvblk request each */
    struct hx_buf scattered[] = {
        {a + 8192, 512, true}, {a + 4096, 1024, true}, {a + 20480, 1536, true}};
    check_read(f, DISK_SECTORS - 6, scattered, 3);
    /* pieces that are not whole sectors: bounced */
    struct hx_buf odd[] = {{a + 7, 700, true}, {a + 40000, 324, true}, {a + 50001, 1024, true}};
    check_read(f, 33, odd, 3);
    struct mv_blk_aoe_stats st;
    mv_blk_aoe_backend_stats(f->be, &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.parts, 1 + 1 + 3 + 1);
    assert_int_equal(st.bounced, 1);
    assert_int_equal(st.errors, 0);
    assert_true(st.frames_sent >= 32768 / 512 / 17);
    assert_true(__atomic_load_n(&f->irqs, __ATOMIC_SEQ_CST) >= 1);
}

static void test_write_flush(void **state)
{
    struct fixture *f = *state;
    uint64_t a = hx_alloc(&f->ram, 16384, 4096);
    uint8_t *p = hx_ptr(&f->ram, a);
    for (unsigned i = 0; i < 16384; i++)
        p[i] = (uint8_t)(i * 31 + 3);
    /* direct, and a bounced write with ragged pieces */
    struct hx_buf w1[] = {{a, 8192, false}};
    struct req r = queue_bufs(f, MV_VIRTIO_BLK_T_OUT, 200, w1, 1, true);
    assert_int_equal(run_req(f, &r), 1);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);
    struct hx_buf w2[] = {{a + 8192, 100, false}, {a + 8292, 1948, false}};
    r = queue_bufs(f, MV_VIRTIO_BLK_T_OUT, 300, w2, 2, true);
    assert_int_equal(run_req(f, &r), 1);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);
    r = queue_bufs(f, MV_VIRTIO_BLK_T_FLUSH, 0, NULL, 0, true);
    assert_int_equal(run_req(f, &r), 1);
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_OK);

    uint8_t back[8192 + 512];
    read_target(200, back, 17);
    assert_memory_equal(back, p, 8192);
    assert_int_equal(back[8192], pattern_byte(216 * 512)); /* neighbour untouched */
    read_target(300, back, 5);
    assert_memory_equal(back, p + 8192, 2048);
    assert_int_equal(back[2048], pattern_byte(304 * 512));
    struct mv_virtio_blk_stats st;
    mv_virtio_blk_get_stats(f->blk, &st);
    assert_int_equal(st.writes, 2);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(st.written_bytes, 8192 + 2048);
}

static void test_many_in_flight(void **state)
{
    /* 40 requests against depth=4: the device stalls on -EAGAIN and resumes on completions */
    struct fixture *f = *state;
    enum { N = 40 };
    static struct req rs[N];
    uint64_t data = hx_alloc(&f->ram, N * 4096ull, 4096);
    for (unsigned i = 0; i < N; i++) {
        struct hx_buf b = {data + i * 4096ull, 4096, i % 2 == 0};
        uint8_t *p = hx_ptr(&f->ram, b.gpa);
        if (!b.writable) /* odd ones write their index into 8 sectors at 1000 + 8 i */
            memset(p, (int)(0x40 + i), 4096);
        rs[i] = queue_bufs(f, b.writable ? MV_VIRTIO_BLK_T_IN : MV_VIRTIO_BLK_T_OUT,
                           b.writable ? i * 8 : 1000 + i * 8, &b, 1, false);
    }
    for (unsigned i = 0; i < N; i++)
        hx_publish(&f->q, rs[i].head);
    mv_virtio_mmio_notify(f->dev, 0);
    assert_true(wait_used(f, N, 20000000000ull));
    for (unsigned i = 0; i < N; i++) {
        uint32_t id, len;
        assert_true(hx_used_next(&f->q, &id, &len));
    }
    uint8_t back[4096];
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(status_of(f, &rs[i]), MV_VIRTIO_BLK_S_OK);
        if (i % 2 == 0) {
            const uint8_t *p = hx_ptr(&f->ram, data + i * 4096ull);
            for (unsigned b = 0; b < 4096; b += 97)
                assert_int_equal(p[b], pattern_byte(i * 4096ull + b));
        } else {
            read_target(1000 + i * 8, back, 8);
            for (unsigned b = 0; b < 4096; b += 97)
                assert_int_equal(back[b], 0x40 + i);
        }
    }
}

static void expect_status(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len,
                          uint8_t want)
{
    uint64_t a = hx_alloc(&f->ram, len ? len : 1, 4096);
    memset(hx_ptr(&f->ram, a), 0x5a, len);
    struct hx_buf b = {a, len, type == MV_VIRTIO_BLK_T_IN};
    struct req r = queue_bufs(f, type, sector, &b, len ? 1 : 0, true);
    run_req(f, &r);
    assert_int_equal(status_of(f, &r), want);
}

static void assert_target_pristine(void)
{
    static uint8_t disk[DISK_SECTORS * 512];
    read_target(0, disk, DISK_SECTORS);
    for (uint64_t i = 0; i < sizeof(disk); i++)
        if (disk[i] != pattern_byte(i))
            fail_msg("target byte %llu changed", (unsigned long long)i);
}

static void test_read_only_and_ranges(void **state)
{
    struct fixture *f = *state;
    assert_true(mv_virtio_mmio_driver_features(f->dev) & MV_VIRTIO_BLK_F_RO);
    expect_status(f, MV_VIRTIO_BLK_T_OUT, 0, 512, MV_VIRTIO_BLK_S_IOERR);
    expect_status(f, MV_VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024, MV_VIRTIO_BLK_S_IOERR);
    expect_status(f, MV_VIRTIO_BLK_T_IN, DISK_SECTORS, 512, MV_VIRTIO_BLK_S_IOERR);
    expect_status(f, MV_VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 512, MV_VIRTIO_BLK_S_OK);
    expect_status(f, MV_VIRTIO_BLK_T_DISCARD, 0, 0, MV_VIRTIO_BLK_S_UNSUPP);
    expect_status(f, MV_VIRTIO_BLK_T_FLUSH, 0, 0, MV_VIRTIO_BLK_S_OK);
    assert_target_pristine();
}

static void test_read_only_backend_refuses_writes(void **state)
{
    /* the backend refuses writes itself, whatever the device above it does */
    (void)state;
    fill_target();
    char spec[256], err[256] = "";
    snprintf(spec, sizeof(spec), "aoe:%u.%u,unix=%s,ro,timeout=2000", SHELF, SLOT, sock_path);
    struct mv_blk_aoe_spec s;
    assert_int_equal(mv_blk_aoe_spec_parse(spec, &s, err, sizeof(err)), 0);
    struct mv_blk_backend be;
    assert_int_equal(mv_blk_aoe_backend_open(&s, &be, NULL, err, sizeof(err)), 0);
    assert_true(be.read_only);
    uint8_t sector[512] = {0};
    struct iovec iov = {sector, sizeof(sector)};
    struct mv_blk_request br = {
        .op = MV_BLK_OP_WRITE, .offset = 0, .len = 512, .iov = &iov, .iovcnt = 1};
    assert_int_equal(be.ops->submit(be.be, &br), -EROFS);
    mv_blk_backend_close(&be);
    assert_target_pristine();
}

static void test_absent_target(void **state)
{
    (void)state;
    char spec[256];
    uint64_t t0 = mv_now_ns();
    snprintf(spec, sizeof(spec), "aoe:%u.%u,unix=%s,timeout=400", SHELF, SLOT + 1, sock_path);
    assert_null(mv_virtio_blk_create_from_spec(spec));
    assert_true(mv_now_ns() - t0 < 3000000000ull); /* bounded by timeout=, not forever */
    snprintf(spec, sizeof(spec), "aoe:%u.%u,unix=%s/none.sock", SHELF, SLOT, dir);
    assert_null(mv_virtio_blk_create_from_spec(spec));
    assert_null(mv_virtio_blk_create_from_spec("aoe:1.2,unix=/x,if=eth0"));
    /* and the whole path through the spec works, with the IDENTIFY serial by default */
    snprintf(spec, sizeof(spec), "aoe:%u.%u,unix=%s", SHELF, SLOT, sock_path);
    struct mv_virtio_blk *blk = mv_virtio_blk_create_from_spec(spec);
    assert_non_null(blk);
    assert_false(mv_virtio_blk_device(blk)->features & MV_VIRTIO_BLK_F_RO);
    mv_virtio_blk_destroy(blk);
}

static void test_target_failure_and_return(void **state)
{
    struct fixture *f = *state;
    uint64_t a = hx_alloc(&f->ram, 4096, 4096);
    struct hx_buf b = {a, 4096, true};
    check_read(f, 0, &b, 1);
    /* the target goes silent: the request must fail (IOERR), not hang the guest */
    assert_int_equal(kill(stored_pid, SIGSTOP), 0);
    uint64_t t0 = mv_now_ns();
    struct req r = queue_bufs(f, MV_VIRTIO_BLK_T_IN, 8, &b, 1, true);
    bool done = wait_used(f, 1, 5000000000ull);
    uint64_t took = mv_now_ns() - t0;
    if (!done)
        kill(stored_pid, SIGCONT);
    assert_true(done);
    uint32_t id, len;
    assert_true(hx_used_next(&f->q, &id, &len));
    assert_int_equal(status_of(f, &r), MV_VIRTIO_BLK_S_IOERR);
    assert_true(took >= 250000000ull); /* retried for about dead=300 first */
    /* further requests fail fast while it stays silent */
    expect_status(f, MV_VIRTIO_BLK_T_IN, 8, 512, MV_VIRTIO_BLK_S_IOERR);
    struct mv_blk_aoe_stats st;
    mv_blk_aoe_backend_stats(f->be, &st);
    assert_true(st.target_failed);
    assert_true(st.errors >= 2);
    /* it comes back: the backend finds it again (at most once a second) */
    assert_int_equal(kill(stored_pid, SIGCONT), 0);
    mv_sleep_ns(1100000000ull);
    check_read(f, 16, &b, 1);
    mv_blk_aoe_backend_stats(f->be, &st);
    assert_int_equal(st.reattaches, 1);
    assert_false(st.target_failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_and_reads, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_write_flush, setup_rw, teardown),
        cmocka_unit_test_setup_teardown(test_many_in_flight, setup_shallow, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_and_ranges, setup_ro, teardown),
        cmocka_unit_test(test_read_only_backend_refuses_writes),
        cmocka_unit_test(test_absent_target),
        cmocka_unit_test_setup_teardown(test_target_failure_and_return, setup_fragile, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
