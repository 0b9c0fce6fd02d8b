/* Minimal freestanding virtio-mmio (version 2) driver for the project's bare-metal test guests:
 * device discovery from the kernel command line (virtio_mmio.device=SIZE@BASE:GSI, as mvvmm
 * appends it), the status/feature handshake, split queues in guest RAM (identity mapped, so
 * guest virtual = guest physical), and interrupt-driven waits through the IOAPIC. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#define GV_MAX_DEVICES 8
#define GV_QSZ         16
#define GV_IRQ_VECTOR  0x50 /* + device index */

struct gv_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct gv_queue {
    uint16_t index;
    uint16_t size;
    uint16_t next_desc;
    uint16_t avail_idx;
    uint16_t used_seen;
    struct gv_desc *desc;
    volatile uint16_t *avail; /* flags, idx, ring[size] */
    volatile uint8_t *used;   /* flags, idx, {id,len}[size] */
};

struct gv_device {
    uint64_t base;
    uint32_t gsi;
    uint32_t device_id;
    volatile uint32_t irqs; /* interrupts taken */
};

struct gv_buf {
    void *addr;
    uint32_t len;
    bool writable;
};

/* Finds virtio-mmio devices on the command line; returns how many (<= GV_MAX_DEVICES). */
unsigned gv_discover(struct gv_device *devs, unsigned max);
/* The first discovered device with this id, or NULL (prints why). */
struct gv_device *gv_find(struct gv_device *devs, unsigned n, uint32_t device_id);

/* Reset, ACKNOWLEDGE, DRIVER, negotiate VERSION_1 | want, FEATURES_OK. false on failure. */
bool gv_init(struct gv_device *dev, uint64_t want_features);
/* Sets up queue q in static guest memory (slot picks one of the library's ring sets). */
bool gv_queue_setup(struct gv_device *dev, struct gv_queue *vq, uint16_t q, unsigned slot);
/* DRIVER_OK, and routes the device's GSI to a vector on this CPU (interrupts counted). */
bool gv_driver_ok(struct gv_device *dev);
uint32_t gv_status(struct gv_device *dev);

uint32_t gv_read32(struct gv_device *dev, uint32_t off);
void gv_write32(struct gv_device *dev, uint32_t off, uint32_t v);
uint8_t gv_config8(struct gv_device *dev, uint32_t off);
uint32_t gv_config32(struct gv_device *dev, uint32_t off);
uint64_t gv_config64(struct gv_device *dev, uint32_t off);

/* Chains bufs, publishes the chain; returns its head. */
uint16_t gv_submit(struct gv_queue *vq, const struct gv_buf *bufs, unsigned n);
void gv_kick(struct gv_device *dev, struct gv_queue *vq);
/* Waits (halting between interrupts) for the next used element; returns its id. */
uint16_t gv_wait_used(struct gv_device *dev, struct gv_queue *vq, uint32_t *len);

/* virtio-blk request types (virtio 1.x, 5.2.6). */
#define GV_BLK_T_IN     0u
#define GV_BLK_T_OUT    1u
#define GV_BLK_T_FLUSH  4u
#define GV_BLK_T_GET_ID 8u
/* One virtio-blk request on vq (header, data when len > 0, status byte), waited for. Returns the
 * status byte, or 0xff when the device completed another chain than this one. */
uint8_t gv_blk_request(struct gv_device *dev, struct gv_queue *vq, uint32_t type, uint64_t sector,
                       void *data, uint32_t len);

#endif
