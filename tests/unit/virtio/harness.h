/* Host-side driver harness for the virtio tests and benchmark: a fake guest RAM buffer
 * registered as guest memory, a bump allocator in it, split rings laid out the way a driver
 * does, and the driver side of the virtio-mmio handshake. */
#ifndef MV_VIRTIO_TEST_HARNESS_H
#define MV_VIRTIO_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "mv/guest_mem.h"
#include "mv/virtio_mmio.h"
#include "mv/virtq.h"

#define HX_RAM_GPA 0x100000ull

struct hx_ram {
    struct mv_guest_mem mem;
    uint8_t *buf;
    uint64_t gpa;
    uint64_t size;
    uint64_t next; /* bump allocator (gpa) */
};

struct hx_queue {
    struct hx_ram *ram;
    uint16_t size;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t avail_idx; /* driver's next avail idx */
    uint16_t used_seen; /* used entries consumed */
    uint16_t next_desc; /* round-robin descriptor allocator */
};

void hx_ram_init(struct hx_ram *ram, uint64_t size);
void hx_ram_fini(struct hx_ram *ram);
void *hx_ptr(struct hx_ram *ram, uint64_t gpa);
uint64_t hx_alloc(struct hx_ram *ram, uint64_t len, uint64_t align);

/* Lays out rings for size entries (with room for the event idx fields). */
void hx_queue_init(struct hx_queue *q, struct hx_ram *ram, uint16_t size);
struct mv_virtq_desc *hx_desc(struct hx_queue *q, uint16_t i);
void hx_set_desc(struct hx_queue *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next);
/* Adds head to the avail ring and publishes it (release store of avail->idx). */
void hx_publish(struct hx_queue *q, uint16_t head);
/* Takes the next used element; false when none. */
bool hx_used_next(struct hx_queue *q, uint32_t *id, uint32_t *len);
uint16_t hx_used_idx(struct hx_queue *q);
/* Builds a chain from n buffers (gpa, len, writable) using descriptors from the round-robin
 * allocator and returns its head (not published). */
struct hx_buf {
    uint64_t gpa;
    uint32_t len;
    bool writable;
};
uint16_t hx_chain(struct hx_queue *q, const struct hx_buf *bufs, unsigned n);

/* Driver side of the handshake: reset, ACKNOWLEDGE, DRIVER, features (the device's offer
 * masked with want), FEATURES_OK, queue setup for queues[0..nq), DRIVER_OK. Returns the
 * final status register value. */
uint32_t hx_mmio_setup(struct mv_virtio_mmio *dev, uint64_t want_features, struct hx_queue *queues,
                       unsigned nq);
uint32_t hx_mmio_read32(struct mv_virtio_mmio *dev, uint64_t off);
void hx_mmio_write32(struct mv_virtio_mmio *dev, uint64_t off, uint32_t v);

#endif
