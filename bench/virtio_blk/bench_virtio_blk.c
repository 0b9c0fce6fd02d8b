/* virtio-blk device-model throughput vs raw io_uring on the same file.
 *
 * ours:   a host-side driver keeps QD requests on a virtio-blk queue in fake guest RAM, kicks
 *         through the transport's eventfd (what a KVM ioeventfd does for a guest write) and
 *         sleeps on an eventfd signalled by the interrupt callback; the device runs on its own
 *         I/O thread over the io_uring file backend (O_DIRECT). No guest CPU in the loop.
 * anchor: one thread doing the same I/O (same block size, queue depth, offsets, O_DIRECT)
 *         with liburing directly.
 * Prints: bench: virtio_blk_<bs>_<rw> ours=<MB/s> anchor=<MB/s> ratio=<r> goal=0.8 PASS|MISS */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "mv/log.h"
#include "mv/util.h"
#include "mv/virtio_blk.h"

#define QD         32
#define QSZ        128
#define FILE_BYTES (256ull << 20)
#define GOAL       0.8

static double seconds = 1.5;

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t span_bytes = FILE_BYTES; /* offsets are drawn from [0, span_bytes) */
static uint64_t next_offset(uint32_t bs)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (rng % (span_bytes / bs)) * bs;
}

/* ---- ours: the virtio-blk device model ---- */

struct slot {
    uint64_t hdr, data, status;
    uint16_t head;
};

static void irq_to_eventfd(void *ctx, uint32_t gsi)
{
    uint64_t one = 1;
    if (write(*(int *)ctx, &one, sizeof(one)) < 0)
        abort();
}

static void slot_fill(struct hx_ram *ram, struct slot *s, bool write_op, uint32_t bs)
{
    uint8_t *h = hx_ptr(ram, s->hdr);
    uint32_t type = write_op ? MV_VIRTIO_BLK_T_OUT : MV_VIRTIO_BLK_T_IN;
    uint64_t sector = next_offset(bs) / 512;
    memcpy(h, &type, 4);
    memset(h + 4, 0, 4);
    memcpy(h + 8, &sector, 8);
}

/* The device model over the given backend (taken over). */
static double run_device(struct mv_blk_backend backend, uint32_t bs, bool write_op)
{
    struct mv_virtio_blk_params p = {.backend = backend};
    struct mv_virtio_blk *blk = mv_virtio_blk_create(&p);
    struct hx_ram ram;
    hx_ram_init(&ram, (uint64_t)QD * bs + (4 << 20));
    struct hx_queue q;
    hx_queue_init(&q, &ram, QSZ);
    int irq_fd = eventfd(0, EFD_CLOEXEC);
    struct mv_virtio_mmio_params mp = {.device = mv_virtio_blk_device(blk),
                                       .mem = &ram.mem,
                                       .base = 0xd0000000,
                                       .gsi = 5,
                                       .vm_fd = -1,
                                       .irq_cb = irq_to_eventfd,
                                       .irq_ctx = &irq_fd};
    struct mv_virtio_mmio *dev = mv_virtio_mmio_create(&mp);
    if (dev == NULL ||
        !(hx_mmio_setup(dev, ~0ull & ~MV_VIRTIO_F_EVENT_IDX, &q, 1) & MV_VIRTIO_STATUS_DRIVER_OK))
        exit(1);

    static struct slot slots[QD];
    for (unsigned i = 0; i < QD; i++) {
        struct slot *s = &slots[i];
        s->hdr = hx_alloc(&ram, 16, 16);
        s->data = hx_alloc(&ram, bs, 4096);
        s->status = hx_alloc(&ram, 1, 1);
        memset(hx_ptr(&ram, s->data), 0x3c, bs);
        s->head = (uint16_t)(3 * i);
        hx_set_desc(&q, s->head, s->hdr, 16, MV_VIRTQ_DESC_F_NEXT, s->head + 1);
        hx_set_desc(&q, s->head + 1, s->data, bs,
                    MV_VIRTQ_DESC_F_NEXT | (write_op ? 0 : MV_VIRTQ_DESC_F_WRITE), s->head + 2);
        hx_set_desc(&q, s->head + 2, s->status, 1, MV_VIRTQ_DESC_F_WRITE, 0);
        slot_fill(&ram, s, write_op, bs);
        hx_publish(&q, s->head);
    }
    uint64_t done = 0, t0 = mv_now_ns(), until = t0 + (uint64_t)(seconds * 1e9);
    mv_virtio_mmio_notify(dev, 0);
    uint64_t now = t0;
    while (now < until) {
        uint64_t cnt;
        if (read(irq_fd, &cnt, sizeof(cnt)) < 0 && errno != EINTR)
            abort();
        uint32_t id, len;
        unsigned resubmitted = 0;
        while (hx_used_next(&q, &id, &len)) {
            struct slot *s = &slots[id / 3];
            if (*(uint8_t *)hx_ptr(&ram, s->status) != 0) {
                fprintf(stderr, "bench: request failed\n");
                exit(1);
            }
            done++;
            slot_fill(&ram, s, write_op, bs);
            hx_publish(&q, s->head);
            resubmitted++;
        }
        if (resubmitted)
            mv_virtio_mmio_notify(dev, 0);
        now = mv_now_ns();
    }
    double secs = (double)(now - t0) / 1e9;
    mv_virtio_mmio_destroy(dev);
    mv_virtio_blk_destroy(blk);
    close(irq_fd);
    hx_ram_fini(&ram);
    return (double)done * bs / secs / 1e6;
}

static double run_ours(const char *path, uint32_t bs, bool write_op)
{
    struct mv_blk_backend be;
    if (mv_blk_file_backend_open(path, false, true, QD * 2, &be) != 0)
        exit(1);
    return run_device(be, bs, write_op);
}

/* ---- anchor: raw io_uring ---- */

static double run_anchor(const char *path, uint32_t bs, bool write_op)
{
    int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        perror("open O_DIRECT");
        exit(1);
    }
    struct io_uring ring;
    if (io_uring_queue_init(QD * 2, &ring, 0) < 0)
        exit(1);
    static struct iovec iov[QD];
    for (unsigned i = 0; i < QD; i++) {
        if (posix_memalign(&iov[i].iov_base, 4096, bs) != 0)
            exit(1);
        memset(iov[i].iov_base, 0x3c, bs);
        iov[i].iov_len = bs;
    }
    for (unsigned i = 0; i < QD; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        if (write_op)
            io_uring_prep_writev(sqe, fd, &iov[i], 1, next_offset(bs));
        else
            io_uring_prep_readv(sqe, fd, &iov[i], 1, next_offset(bs));
        io_uring_sqe_set_data64(sqe, i);
    }
    io_uring_submit(&ring);
    uint64_t done = 0, t0 = mv_now_ns(), until = t0 + (uint64_t)(seconds * 1e9), now = t0;
    while (now < until) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&ring, &cqe) != 0)
            exit(1);
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            if (cqe->res != (int)bs) {
                fprintf(stderr, "anchor: I/O failed: %d\n", cqe->res);
                exit(1);
            }
            unsigned i = (unsigned)io_uring_cqe_get_data64(cqe);
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            if (write_op)
                io_uring_prep_writev(sqe, fd, &iov[i], 1, next_offset(bs));
            else
                io_uring_prep_readv(sqe, fd, &iov[i], 1, next_offset(bs));
            io_uring_sqe_set_data64(sqe, i);
            n++;
        }
        io_uring_cq_advance(&ring, n);
        io_uring_submit(&ring);
        done += n;
        now = mv_now_ns();
    }
    double secs = (double)(now - t0) / 1e9;
    io_uring_queue_exit(&ring); /* waits for what is still in flight */
    for (unsigned i = 0; i < QD; i++)
        free(iov[i].iov_base);
    close(fd);
    return (double)done * bs / secs / 1e6;
}

/* ---- the AoE backend: mvstored on its AF_UNIX port, beside this binary ---- */
#ifdef HAVE_MVBLK
#include <libgen.h>
#include <signal.h>
#include <sys/wait.h>

#include "mv/mvblk.h"
#include "mv/virtio_blk_aoe.h"

#define AOE_VDISK_BYTES (64ull << 20)

struct aoe_target {
    char dir[64], sock[128];
    pid_t pid;
};

static bool log_has(const char *path, const char *what)
{
    char buf[4096];
    long n = mv_read_file(path, buf, sizeof(buf));
    return n > 0 && strstr(buf, what) != NULL;
}

/* Formats a drive in dir, starts mvstored on it and maps a vdisk as 1.1. */
static int aoe_target_start(struct aoe_target *t, const char *dir)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char bindir[4096], stored[4200], aoe[4200];
    snprintf(bindir, sizeof(bindir), "%s", dirname(self));
    snprintf(stored, sizeof(stored), "%s/mvstored", bindir);
    snprintf(aoe, sizeof(aoe), "%s/mvaoe", bindir);
    if (access(stored, X_OK) != 0 || access(aoe, X_OK) != 0)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "%s/hib-bench-aoe.XXXXXX", dir);
    if (mkdtemp(t->dir) == NULL)
        return -1;
    snprintf(t->sock, sizeof(t->sock), "%s/aoe.sock", t->dir);
    char cmd[9000], drive[128], log[128], ctl[128];
    snprintf(drive, sizeof(drive), "%s/drive.img", t->dir);
    snprintf(log, sizeof(log), "%s/stored.log", t->dir);
    snprintf(ctl, sizeof(ctl), "%s/ctl.sock", t->dir);
    snprintf(cmd, sizeof(cmd), "truncate -s %llu %s && %s --format %s --host bench >/dev/null",
             (unsigned long long)(AOE_VDISK_BYTES + (32ull << 20)), drive, stored, drive);
    if (system(cmd) != 0)
        return -1;
    t->pid = fork();
    if (t->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        execl(stored, stored, "-H", "bench", "-u", t->sock, "-C", ctl, "-d", drive, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250 && !log_has(log, "serving"); i++)
        mv_sleep_ns(20000000);
    snprintf(cmd, sizeof(cmd),
             "%s ctl %s '{\"cmd\":\"create\",\"vdisk\":\"bench\",\"size\":%llu,\"shelf\":1,"
             "\"slot\":1,\"map\":true,\"thin\":false}' >/dev/null",
             aoe, ctl, (unsigned long long)AOE_VDISK_BYTES);
    return system(cmd) == 0 ? 0 : -1;
}

static void aoe_target_stop(struct aoe_target *t)
{
    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", t->dir);
}

struct mvblk_slot {
    struct mvblk_req req;
    struct mvblk_dev *dev;
    bool write_op;
    uint32_t bs;
    uint64_t *done;
};

static void mvblk_slot_issue(struct mvblk_slot *s);
static bool mvblk_stopping; /* mvblk_close() fails what is in flight: do not re-issue */

static void mvblk_slot_done(struct mvblk_req *req, int status)
{
    struct mvblk_slot *s = req->priv;
    if (mvblk_stopping)
        return;
    if (status != 0) {
        fprintf(stderr, "bench: libmvblk request failed: %d\n", status);
        exit(1);
    }
    (*s->done)++;
    mvblk_slot_issue(s);
}

static void mvblk_slot_issue(struct mvblk_slot *s)
{
    s->req = (struct mvblk_req){.op = s->write_op ? MVBLK_WRITE : MVBLK_READ,
                                .lba = next_offset(s->bs) / 512,
                                .count = s->bs / 512,
                                .buf = s->req.buf,
                                .done = mvblk_slot_done,
                                .priv = s};
    if (mvblk_submit(s->dev, &s->req) != 0)
        exit(1);
}

/* Anchor: libmvblk itself, QD requests kept in flight by its completion callbacks. */
static double run_libmvblk(const char *sock, uint32_t bs, bool write_op)
{
    struct mvblk_config cfg = {.kind = MV_PORT_UNIX, .unix_path = sock};
    struct mvblk *b;
    struct mvblk_dev *dev;
    char err[256];
    if (mvblk_open(&cfg, &b, err, sizeof(err)) != 0 ||
        mvblk_attach(b, 1, 1, 3000, 0, &dev, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench: libmvblk: %s\n", err);
        exit(1);
    }
    static struct mvblk_slot slots[QD];
    uint64_t done = 0;
    for (unsigned i = 0; i < QD; i++) {
        slots[i] = (struct mvblk_slot){.dev = dev, .write_op = write_op, .bs = bs, .done = &done};
        slots[i].req.buf = aligned_alloc(4096, bs);
        if (slots[i].req.buf == NULL)
            exit(1);
        memset(slots[i].req.buf, 0x3c, bs);
        mvblk_slot_issue(&slots[i]);
    }
    uint64_t t0 = mv_now_ns(), until = t0 + (uint64_t)(seconds * 1e9), now = t0;
    while (now < until) {
        if (mvblk_poll(b, 100) < 0)
            exit(1);
        now = mv_now_ns();
    }
    double secs = (double)(now - t0) / 1e9;
    uint64_t counted = done;
    mvblk_stopping = true;
    mvblk_close(b);
    mvblk_stopping = false;
    for (unsigned i = 0; i < QD; i++)
        free(slots[i].req.buf);
    return (double)counted * bs / secs / 1e6;
}

static double run_aoe_device(const char *sock, uint32_t bs, bool write_op)
{
    char spec[256], err[256];
    snprintf(spec, sizeof(spec), "aoe:1.1,unix=%s,depth=%d", sock, QD * 2);
    struct mv_blk_aoe_spec s;
    struct mv_blk_backend be;
    if (mv_blk_aoe_spec_parse(spec, &s, err, sizeof(err)) != 0 ||
        mv_blk_aoe_backend_open(&s, &be, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench: %s: %s\n", spec, err);
        exit(1);
    }
    return run_device(be, bs, write_op);
}
#endif

int main(int argc, char **argv)
{
    mv_log_init("bench_virtio_blk", LOG_WARNING);
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: bench_virtio_blk [--seconds S] [--dir DIR]\n"
                    "virtio-blk device model vs raw io_uring, QD %d, O_DIRECT\n",
                    QD);
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/hvi-bench-blk.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    /* Allocate real blocks so reads hit the disk path, not holes. */
    static uint8_t chunk[1 << 20];
    memset(chunk, 0xa5, sizeof(chunk));
    for (uint64_t off = 0; off < FILE_BYTES; off += sizeof(chunk))
        if (pwrite(fd, chunk, sizeof(chunk), (off_t)off) != (ssize_t)sizeof(chunk)) {
            perror("pwrite");
            unlink(path);
            return 1;
        }
    fsync(fd);
    close(fd);

    static const uint32_t sizes[] = {4096, 65536};
    double file_mbs[2][2] = {{0}};
    int rc = 0;
    for (unsigned s = 0; s < 2; s++) {
        for (int w = 0; w < 2; w++) {
            uint32_t bs = sizes[s];
            double anchor = run_anchor(path, bs, w);
            double ours = run_ours(path, bs, w);
            file_mbs[s][w] = ours;
            double ratio = anchor > 0 ? ours / anchor : 0;
            printf("bench: virtio_blk_%uk_rand%s ours=%.1f anchor=%.1f ratio=%.2f goal=%.1f %s\n",
                   bs / 1024, w ? "write" : "read", ours, anchor, ratio, GOAL,
                   ratio >= GOAL ? "PASS" : "MISS");
            fflush(stdout);
        }
    }
#ifdef HAVE_MVBLK
    /* AoE backend (host-local mvstored over AF_UNIX) against libmvblk alone; and, for scale,
     * against the file backend's figure from above (informational, no goal). */
    struct aoe_target t = {0};
    if (aoe_target_start(&t, dir) != 0) {
        fprintf(stderr,
                "bench: mvstored/mvaoe not found beside this binary: AoE figures skipped\n");
    } else {
        span_bytes = AOE_VDISK_BYTES;
        for (unsigned s = 0; s < 2; s++) {
            for (int w = 0; w < 2; w++) {
                uint32_t bs = sizes[s];
                double anchor = run_libmvblk(t.sock, bs, w);
                double ours = run_aoe_device(t.sock, bs, w);
                double ratio = anchor > 0 ? ours / anchor : 0;
                printf("bench: virtio_blk_aoe_unix_%uk_rand%s ours=%.1f anchor=%.1f ratio=%.2f "
                       "goal=%.1f %s\n",
                       bs / 1024, w ? "write" : "read", ours, anchor, ratio, GOAL,
                       ratio >= GOAL ? "PASS" : "MISS");
                printf("info: virtio_blk_%uk_rand%s aoe_unix=%.1f file=%.1f MB/s\n", bs / 1024,
                       w ? "write" : "read", ours, file_mbs[s][w]);
                fflush(stdout);
            }
        }
    }
    aoe_target_stop(&t);
#endif
    unlink(path);
    return rc;
}
