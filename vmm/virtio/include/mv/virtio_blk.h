/* virtio-blk device model (device id 2) over a pluggable block backend.
 *
 * The backend interface is asynchronous and completion-driven so that both a raw file through
 * io_uring (mv_blk_file_backend_open) and the AoE initiator libmvblk can sit behind it: the
 * device submits requests (many in flight), calls flush() at the end of a batch, and when the
 * backend's event fd becomes readable (the device's I/O thread watches it) calls complete(),
 * which reports each finished request through the done callback. */
#ifndef MV_VIRTIO_BLK_H
#define MV_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mv/virtio_mmio.h"

#define MV_VIRTIO_ID_BLOCK 2u
#define MV_BLK_SECTOR_SIZE 512u

/* virtio-blk feature bits (5.2.3) */
#define MV_VIRTIO_BLK_F_SIZE_MAX     (1ull << 1)
#define MV_VIRTIO_BLK_F_SEG_MAX      (1ull << 2)
#define MV_VIRTIO_BLK_F_RO           (1ull << 5)
#define MV_VIRTIO_BLK_F_BLK_SIZE     (1ull << 6)
#define MV_VIRTIO_BLK_F_FLUSH        (1ull << 9)
#define MV_VIRTIO_BLK_F_DISCARD      (1ull << 13)
#define MV_VIRTIO_BLK_F_WRITE_ZEROES (1ull << 14)

/* Request types and status (5.2.6) */
#define MV_VIRTIO_BLK_T_IN           0u
#define MV_VIRTIO_BLK_T_OUT          1u
#define MV_VIRTIO_BLK_T_FLUSH        4u
#define MV_VIRTIO_BLK_T_GET_ID       8u
#define MV_VIRTIO_BLK_T_DISCARD      11u
#define MV_VIRTIO_BLK_T_WRITE_ZEROES 13u
#define MV_VIRTIO_BLK_S_OK           0u
#define MV_VIRTIO_BLK_S_IOERR        1u
#define MV_VIRTIO_BLK_S_UNSUPP       2u
#define MV_VIRTIO_BLK_ID_BYTES       20u

enum mv_blk_op {
    MV_BLK_OP_READ,
    MV_BLK_OP_WRITE,
    MV_BLK_OP_FLUSH,
    MV_BLK_OP_DISCARD,
    MV_BLK_OP_WRITE_ZEROES,
};

/* One backend request. The iovecs (guest memory) stay valid until done() is called. */
struct mv_blk_request {
    enum mv_blk_op op;
    uint64_t offset; /* bytes, sector aligned, inside capacity (the device checks) */
    uint64_t len;    /* bytes (read/write: sum of iov; discard/write-zeroes: range) */
    const struct iovec *iov;
    unsigned iovcnt;
    void *opaque; /* the device's; untouched by the backend */
};

/* result: bytes transferred (>= 0) or -errno. */
typedef void (*mv_blk_done_fn)(struct mv_blk_request *req, int64_t result, void *done_ctx);

struct mv_blk_backend_ops {
    /* Queues req. 0: accepted (done() will be called from complete()); -EAGAIN: backend full,
     * retry after completions; other -errno: failed now (done() is not called). */
    int (*submit)(void *be, struct mv_blk_request *req);
    /* Pushes queued requests to the medium (io_uring_submit); called once per batch. */
    int (*flush)(void *be);
    /* Reports finished requests through done. Returns how many. Never blocks. */
    int (*complete)(void *be, mv_blk_done_fn done, void *done_ctx);
    /* Readable when complete() has work; -1 if the backend completes synchronously. */
    int (*event_fd)(void *be);
    void (*destroy)(void *be);
};

struct mv_blk_backend {
    const struct mv_blk_backend_ops *ops;
    void *be;
    uint64_t capacity; /* bytes (a multiple of 512) */
    uint32_t block_size;
    bool read_only;
    bool discard; /* supports MV_BLK_OP_DISCARD */
    bool write_zeroes;
    unsigned queue_depth; /* most requests in flight */
};

/* Raw file or block device through io_uring (O_DIRECT when the file system allows it and
 * direct = true; otherwise buffered). 0 or -errno. */
int mv_blk_file_backend_open(const char *path, bool read_only, bool direct, unsigned queue_depth,
                             struct mv_blk_backend *out);
/* Closes a backend filled by an *_open function (calls ops->destroy). */
void mv_blk_backend_close(struct mv_blk_backend *backend);

struct mv_virtio_blk_params {
    struct mv_blk_backend backend; /* taken over: closed by mv_virtio_blk_destroy() */
    const char *serial;            /* GET_ID answer, up to 20 bytes; NULL: "mvkvm" */
    uint16_t queue_size;           /* 0: 256 */
    bool read_only;                /* forces VIRTIO_BLK_F_RO even on a writable backend */
};

struct mv_virtio_blk;

struct mv_virtio_blk *mv_virtio_blk_create(const struct mv_virtio_blk_params *params);
/* The device to hand to mv_virtio_mmio_create(). */
const struct mv_virtio_device *mv_virtio_blk_device(struct mv_virtio_blk *blk);
/* Destroy the transport first. */
void mv_virtio_blk_destroy(struct mv_virtio_blk *blk);

/* Convenience for mvvmm: "path[,ro][,serial=S][,direct=0]" -> file backend + device, or
 * "aoe:SHELF.SLOT,if=IFACE|unix=PATH[,...]" -> AoE backend (mv/virtio_blk_aoe.h) + device.
 * NULL (with the reason logged) on a bad spec or a disk that cannot be opened/attached. */
struct mv_virtio_blk *mv_virtio_blk_create_from_spec(const char *spec);

struct mv_virtio_blk_stats {
    uint64_t reads, writes, flushes, errors;
    uint64_t read_bytes, written_bytes;
};
void mv_virtio_blk_get_stats(struct mv_virtio_blk *blk, struct mv_virtio_blk_stats *out);

#endif
