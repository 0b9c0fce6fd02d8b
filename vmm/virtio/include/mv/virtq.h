/* Split virtqueues (virtio 1.x, 2.7) walked from the device side. Every guest address and
 * length is bounds-checked through mv_guest_mem_ptr(); descriptors are read once into host
 * memory (no double fetch); chains are bounded by the queue size (loops are caught that way),
 * indirect tables are bounded and may not nest. A malformed queue makes mv_virtq_pop() return
 * -EIO and marks the queue broken: the transport then sets NEEDS_RESET; nothing crashes and no
 * byte outside guest memory is touched. */
#ifndef MV_VIRTQ_H
#define MV_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mv/guest_mem.h"

#define MV_VIRTQ_MAX_SIZE 1024u /* largest queue (power of two) we accept */
#define MV_VIRTQ_MAX_SEGS 256u  /* most buffers in one chain (direct + indirect) */

/* Descriptor flags */
#define MV_VIRTQ_DESC_F_NEXT     1u
#define MV_VIRTQ_DESC_F_WRITE    2u
#define MV_VIRTQ_DESC_F_INDIRECT 4u
/* avail->flags / used->flags */
#define MV_VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define MV_VIRTQ_USED_F_NO_NOTIFY     1u

/* Guest ring layout (little-endian; this is an x86-only VMM). */
struct mv_virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
struct mv_virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* [size], then used_event */
};
struct mv_virtq_used_elem {
    uint32_t id;
    uint32_t len;
};
struct mv_virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct mv_virtq_used_elem ring[]; /* [size], then avail_event */
};

struct mv_virtq {
    const struct mv_guest_mem *mem;
    uint16_t size; /* entries, power of two */
    bool event_idx;
    bool broken;
    /* Host views of the three rings, checked once at mv_virtq_init(). */
    struct mv_virtq_desc *desc;
    struct mv_virtq_avail *avail;
    struct mv_virtq_used *used;
    uint16_t last_avail_idx; /* next avail entry to take */
    uint16_t used_idx;       /* next used entry to fill (shadow of used->idx) */
    uint16_t signalled_used; /* used_idx at the last interrupt (event idx) */
    bool signalled_valid;
    const char *error; /* why the queue broke */
};

/* A popped chain: out (device-readable) segments first, then in (device-writable) ones. The
 * iovecs point into guest memory (each wholly inside one region). */
struct mv_virtq_chain {
    uint16_t head;
    uint16_t n_out;
    uint16_t n_in;
    uint64_t out_bytes;
    uint64_t in_bytes;
    struct iovec iov[MV_VIRTQ_MAX_SEGS];
};

/* Checks ring placement and sizes (size a power of two <= MV_VIRTQ_MAX_SIZE, rings aligned and
 * wholly inside guest memory). 0 or -EINVAL/-EFAULT with vq->error set. */
int mv_virtq_init(struct mv_virtq *vq, const struct mv_guest_mem *mem, uint16_t size,
                  uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa, bool event_idx);

/* Takes the next available chain. 1: chain filled; 0: ring empty; -EIO: malformed (queue is
 * now broken, vq->error says why; every later call returns -EIO). */
int mv_virtq_pop(struct mv_virtq *vq, struct mv_virtq_chain *chain);

/* Returns the last popped chain unprocessed (e.g. no RX buffer space yet). */
void mv_virtq_unpop(struct mv_virtq *vq);

/* Puts head on the used ring with written bytes; visible to the guest (release barrier). */
void mv_virtq_push(struct mv_virtq *vq, uint16_t head, uint32_t written);

/* After pushing: whether the driver wants an interrupt (NO_INTERRUPT flag or used_event). */
bool mv_virtq_should_interrupt(struct mv_virtq *vq);

/* Whether chains are waiting (one acquire load of avail->idx). */
bool mv_virtq_has_work(struct mv_virtq *vq);

/* Re-enable/disable kicks while the device polls (USED_F_NO_NOTIFY or avail_event). Enabling
 * returns true when work arrived meanwhile (caller must process it). */
bool mv_virtq_enable_notify(struct mv_virtq *vq);
void mv_virtq_disable_notify(struct mv_virtq *vq);

/* Copies from the chain's out segments (byte offset counted from the first out segment) into
 * dst, and from src into the in segments (offset counted from the first in segment). Return
 * the bytes copied (short when the chain is shorter). */
size_t mv_virtq_chain_copy_out(const struct mv_virtq_chain *c, uint64_t offset, void *dst,
                               size_t len);
size_t mv_virtq_chain_copy_in(const struct mv_virtq_chain *c, uint64_t offset, const void *src,
                              size_t len);

#endif
