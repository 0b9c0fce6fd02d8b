/* Block backend on a raw file or block device through io_uring. Requests whose buffers and
 * offsets meet the O_DIRECT alignment go to an O_DIRECT descriptor (no page-cache copy); the
 * others (and every request when the file system refuses O_DIRECT) go to a buffered one. */
#include "mv/virtio_blk.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mv/log.h"

struct file_backend {
    int fd;        /* buffered */
    int direct_fd; /* O_DIRECT, or -1 */
    uint32_t dio_mem_align, dio_offset_align;
    struct io_uring ring;
    int event_fd;
    unsigned depth;
    unsigned inflight;
    unsigned queued; /* prepared, not yet submitted */
};

static bool file_backend_direct_ok(const struct file_backend *fb, const struct mv_blk_request *r)
{
    if (fb->direct_fd < 0 || (r->offset % fb->dio_offset_align) != 0)
        return false;
    for (unsigned i = 0; i < r->iovcnt; i++)
        if (((uintptr_t)r->iov[i].iov_base % fb->dio_mem_align) != 0 ||
            (r->iov[i].iov_len % fb->dio_offset_align) != 0)
            return false;
    return true;
}

static int file_backend_submit(void *be, struct mv_blk_request *r)
{
    struct file_backend *fb = be;
    if (fb->inflight >= fb->depth)
        return -EAGAIN;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&fb->ring);
    if (sqe == NULL) {
        /* SQ full of prepared entries: push them and retry once */
        io_uring_submit(&fb->ring);
        fb->queued = 0;
        sqe = io_uring_get_sqe(&fb->ring);
        if (sqe == NULL)
            return -EAGAIN;
    }
    int fd = file_backend_direct_ok(fb, r) ? fb->direct_fd : fb->fd;
    switch (r->op) {
    case MV_BLK_OP_READ:
        io_uring_prep_readv(sqe, fd, r->iov, r->iovcnt, r->offset);
        break;
    case MV_BLK_OP_WRITE:
        io_uring_prep_writev(sqe, fd, r->iov, r->iovcnt, r->offset);
        break;
    case MV_BLK_OP_FLUSH:
        io_uring_prep_fsync(sqe, fb->fd, IORING_FSYNC_DATASYNC);
        break;
    case MV_BLK_OP_DISCARD:
        io_uring_prep_fallocate(sqe, fb->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, r->offset,
                                r->len);
        break;
    case MV_BLK_OP_WRITE_ZEROES:
        io_uring_prep_fallocate(sqe, fb->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, r->offset,
                                r->len);
        break;
    default:
        /* give the unused sqe back as a no-op so the ring stays consistent */
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, NULL);
        fb->queued++;
        return -EOPNOTSUPP;
    }
    io_uring_sqe_set_data(sqe, r);
    fb->inflight++;
    fb->queued++;
    return 0;
}

static int file_backend_flush(void *be)
{
    struct file_backend *fb = be;
    if (fb->queued == 0)
        return 0;
    fb->queued = 0;
    int rc = io_uring_submit(&fb->ring);
    return rc < 0 ? rc : 0;
}

static int file_backend_complete(void *be, mv_blk_done_fn done, void *done_ctx)
{
    struct file_backend *fb = be;
    uint64_t cnt;
    if (read(fb->event_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        return -errno;
    int n = 0;
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&fb->ring, &cqe) == 0) {
        struct mv_blk_request *r = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&fb->ring, cqe);
        if (r == NULL)
            continue;
        fb->inflight--;
        done(r, res, done_ctx);
        n++;
    }
    return n;
}

static int file_backend_event_fd(void *be)
{
    return ((struct file_backend *)be)->event_fd;
}

static void file_backend_destroy(void *be)
{
    struct file_backend *fb = be;
    /* The kernel finishes or cancels what is in flight when the ring goes away. */
    io_uring_queue_exit(&fb->ring);
    close(fb->event_fd);
    close(fb->fd);
    if (fb->direct_fd >= 0)
        close(fb->direct_fd);
    free(fb);
}

static const struct mv_blk_backend_ops file_backend_ops = {
    .submit = file_backend_submit,
    .flush = file_backend_flush,
    .complete = file_backend_complete,
    .event_fd = file_backend_event_fd,
    .destroy = file_backend_destroy,
};

/* O_DIRECT alignment from statx (STATX_DIOALIGN, Linux 6.1+), else a safe 4096. */
static void file_backend_dio_align(struct file_backend *fb)
{
    fb->dio_mem_align = 4096;
    fb->dio_offset_align = 4096;
#ifdef STATX_DIOALIGN
    struct statx stx;
    if (statx(fb->direct_fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_mem_align != 0 &&
        stx.stx_dio_offset_align != 0) {
        fb->dio_mem_align = stx.stx_dio_mem_align;
        fb->dio_offset_align = stx.stx_dio_offset_align;
    }
#endif
}

int mv_blk_file_backend_open(const char *path, bool read_only, bool direct, unsigned queue_depth,
                             struct mv_blk_backend *out)
{
    memset(out, 0, sizeof(*out));
    if (queue_depth == 0)
        queue_depth = 128;
    struct file_backend *fb = calloc(1, sizeof(*fb));
    if (fb == NULL)
        return -ENOMEM;
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    fb->fd = open(path, flags);
    if (fb->fd < 0) {
        int err = -errno;
        mv_err("virtio-blk: open %s: %s", path, strerror(errno));
        free(fb);
        return err;
    }
    fb->direct_fd = direct ? open(path, flags | O_DIRECT) : -1;
    if (fb->direct_fd >= 0)
        file_backend_dio_align(fb);

    struct stat st;
    uint64_t size = 0;
    if (fstat(fb->fd, &st) == 0 && S_ISBLK(st.st_mode)) {
        if (ioctl(fb->fd, BLKGETSIZE64, &size) != 0)
            size = 0;
    } else if (fstat(fb->fd, &st) == 0) {
        size = (uint64_t)st.st_size;
    }
    int rc = io_uring_queue_init(queue_depth, &fb->ring, 0);
    if (rc < 0) {
        mv_err("virtio-blk: io_uring_queue_init: %s", strerror(-rc));
        goto fail;
    }
    fb->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fb->event_fd < 0 || (rc = io_uring_register_eventfd(&fb->ring, fb->event_fd)) < 0) {
        rc = fb->event_fd < 0 ? -errno : rc;
        mv_err("virtio-blk: io_uring eventfd: %s", strerror(-rc));
        io_uring_queue_exit(&fb->ring);
        if (fb->event_fd >= 0)
            close(fb->event_fd);
        goto fail;
    }
    fb->depth = queue_depth;
    out->ops = &file_backend_ops;
    out->be = fb;
    out->capacity = size & ~(uint64_t)(MV_BLK_SECTOR_SIZE - 1);
    out->block_size = MV_BLK_SECTOR_SIZE;
    out->read_only = read_only;
    out->discard = S_ISREG(st.st_mode) && !read_only;
    out->write_zeroes = S_ISREG(st.st_mode) && !read_only;
    out->queue_depth = queue_depth;
    mv_debug("virtio-blk: %s: %llu bytes, %s, O_DIRECT %s", path, (unsigned long long)size,
             read_only ? "ro" : "rw", fb->direct_fd >= 0 ? "on" : "off");
    return 0;
fail:
    close(fb->fd);
    if (fb->direct_fd >= 0)
        close(fb->direct_fd);
    free(fb);
    return rc;
}

void mv_blk_backend_close(struct mv_blk_backend *backend)
{
    if (backend->ops != NULL && backend->ops->destroy != NULL)
        backend->ops->destroy(backend->be);
    memset(backend, 0, sizeof(*backend));
}
