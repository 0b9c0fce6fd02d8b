/* virtio-mmio transport (virtio 1.x "modern", MMIO version 2), independent of the device type.
 *
 * Wiring in a VMM (mvvmm):
 *   struct mv_virtio_blk *blk = mv_virtio_blk_create(&blk_params);           // a device model
 *   struct mv_virtio_mmio_params p = { .device = mv_virtio_blk_device(blk), .mem = &mem,
 *                                      .base = 0xd0000000, .gsi = 5, .vm_fd = vm_fd };
 *   struct mv_virtio_mmio *dev = mv_virtio_mmio_create(&p);
 *   ... on KVM_EXIT_MMIO with base <= addr < base + MV_VIRTIO_MMIO_SIZE:
 *       mv_virtio_mmio_read/write(dev, addr - base, data, len);
 *   mv_virtio_mmio_cmdline(dev, buf, sizeof buf);  // "virtio_mmio.device=0x200@0xd0000000:5"
 *   ... at exit: mv_virtio_mmio_destroy(dev); mv_virtio_blk_destroy(blk);
 *
 * With a VM fd the transport registers one KVM_IOEVENTFD per queue on QueueNotify (datamatch =
 * queue index) and a KVM_IRQFD for the GSI, and runs the device on its own I/O thread (an epoll
 * loop over the queue eventfds and any fds the device watches), so queue kicks and interrupts
 * never pass through the vCPU loop. With vm_fd = -1 (host-side harnesses, tests, benchmarks)
 * kicks come from mv_virtio_mmio_notify() or a QueueNotify write, and interrupts go to irq_cb.
 * All functions are thread-safe (one lock per device; the I/O thread holds it while it runs
 * device callbacks). */
#ifndef MV_VIRTIO_MMIO_H
#define MV_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/guest_mem.h"
#include "mv/virtq.h"

#define MV_VIRTIO_MMIO_SIZE      0x200u /* register window (config space included) */
#define MV_VIRTIO_MMIO_MAGIC     0x74726976u
#define MV_VIRTIO_MMIO_VERSION   2u
#define MV_VIRTIO_MMIO_VENDOR_ID 0x4d564b4du /* "MKVM" */
#define MV_VIRTIO_MAX_QUEUES     8

/* Register offsets (virtio 1.x, 4.2.2). */
enum mv_virtio_mmio_reg {
    MV_VIRTIO_MMIO_MAGIC_VALUE = 0x000,
    MV_VIRTIO_MMIO_VERSION_REG = 0x004,
    MV_VIRTIO_MMIO_DEVICE_ID = 0x008,
    MV_VIRTIO_MMIO_VENDOR_ID_REG = 0x00c,
    MV_VIRTIO_MMIO_DEVICE_FEATURES = 0x010,
    MV_VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014,
    MV_VIRTIO_MMIO_DRIVER_FEATURES = 0x020,
    MV_VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024,
    MV_VIRTIO_MMIO_QUEUE_SEL = 0x030,
    MV_VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034,
    MV_VIRTIO_MMIO_QUEUE_NUM = 0x038,
    MV_VIRTIO_MMIO_QUEUE_READY = 0x044,
    MV_VIRTIO_MMIO_QUEUE_NOTIFY = 0x050,
    MV_VIRTIO_MMIO_INTERRUPT_STATUS = 0x060,
    MV_VIRTIO_MMIO_INTERRUPT_ACK = 0x064,
    MV_VIRTIO_MMIO_STATUS = 0x070,
    MV_VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080,
    MV_VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084,
    MV_VIRTIO_MMIO_QUEUE_DRIVER_LOW = 0x090,
    MV_VIRTIO_MMIO_QUEUE_DRIVER_HIGH = 0x094,
    MV_VIRTIO_MMIO_QUEUE_DEVICE_LOW = 0x0a0,
    MV_VIRTIO_MMIO_QUEUE_DEVICE_HIGH = 0x0a4,
    MV_VIRTIO_MMIO_SHM_SEL = 0x0ac,
    MV_VIRTIO_MMIO_SHM_LEN_LOW = 0x0b0,
    MV_VIRTIO_MMIO_SHM_LEN_HIGH = 0x0b4,
    MV_VIRTIO_MMIO_SHM_BASE_LOW = 0x0b8,
    MV_VIRTIO_MMIO_SHM_BASE_HIGH = 0x0bc,
    MV_VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc,
    MV_VIRTIO_MMIO_CONFIG = 0x100,
};

/* Device status bits (2.1). */
#define MV_VIRTIO_STATUS_ACKNOWLEDGE 1u
#define MV_VIRTIO_STATUS_DRIVER      2u
#define MV_VIRTIO_STATUS_DRIVER_OK   4u
#define MV_VIRTIO_STATUS_FEATURES_OK 8u
#define MV_VIRTIO_STATUS_NEEDS_RESET 64u
#define MV_VIRTIO_STATUS_FAILED      128u

/* InterruptStatus bits. */
#define MV_VIRTIO_ISR_USED   1u
#define MV_VIRTIO_ISR_CONFIG 2u

/* Transport-level feature bits. */
#define MV_VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define MV_VIRTIO_F_EVENT_IDX     (1ull << 29)
#define MV_VIRTIO_F_VERSION_1     (1ull << 32)

struct mv_virtio_mmio;

/* A device model as the transport sees it. Callbacks run with the device lock held, on the
 * I/O thread (queue_notify, fd callbacks) or on the caller's thread (config access, reset). */
struct mv_virtio_device_ops {
    /* Called once from mv_virtio_mmio_create(): the device keeps dev to reach its queues,
     * raise interrupts and watch fds. Non-zero fails the create. */
    int (*attach)(void *ctx, struct mv_virtio_mmio *dev);
    /* Config space (offset relative to 0x100, within config_size; any width 1/2/4/8). */
    void (*config_read)(void *ctx, uint32_t offset, void *data, uint32_t len);
    void (*config_write)(void *ctx, uint32_t offset, const void *data, uint32_t len);
    /* The driver set DRIVER_OK: queues are ready; negotiated features are final. Non-zero
     * makes the transport set NEEDS_RESET. Optional. */
    int (*activate)(void *ctx);
    /* The driver kicked queue q (the queue is ready). Process its available ring. */
    void (*queue_notify)(void *ctx, uint16_t q);
    /* The driver reset the device (Status = 0): drop in-flight state. Optional. */
    void (*reset)(void *ctx);
};

struct mv_virtio_device {
    uint32_t device_id; /* 1 = net, 2 = block */
    uint64_t features;  /* offered features; the transport adds VERSION_1 */
    uint32_t config_size;
    uint16_t num_queues; /* <= MV_VIRTIO_MAX_QUEUES */
    uint16_t queue_max;  /* QueueNumMax of every queue, power of two <= MV_VIRTQ_MAX_SIZE */
    const struct mv_virtio_device_ops *ops;
    void *ctx;
};

struct mv_virtio_mmio_params {
    const struct mv_virtio_device *device; /* copied; ctx must outlive the transport */
    const struct mv_guest_mem *mem;        /* must outlive the transport */
    uint64_t base;                         /* guest physical base of the register window */
    uint32_t gsi;                          /* interrupt line (IOAPIC GSI) */
    int vm_fd;                             /* -1: no KVM (harness mode) */
    /* Harness mode (vm_fd = -1): called on each interrupt, from the I/O thread. */
    void (*irq_cb)(void *irq_ctx, uint32_t gsi);
    void *irq_ctx;
    /* No I/O thread: the caller runs mv_virtio_mmio_poll() (single-threaded harnesses). */
    bool no_thread;
};

/* NULL on failure (logged): bad params, ioeventfd/irqfd registration failure. */
struct mv_virtio_mmio *mv_virtio_mmio_create(const struct mv_virtio_mmio_params *params);
/* Stops the I/O thread, deregisters ioeventfd/irqfd. Does not destroy the device model. */
void mv_virtio_mmio_destroy(struct mv_virtio_mmio *dev);

/* MMIO exit handlers: offset is relative to the base, len 1/2/4/8. Registers below 0x100 must
 * be 32-bit aligned 4-byte accesses; bad accesses read as 0 / are ignored (with a log line
 * once) and return -EINVAL. */
int mv_virtio_mmio_read(struct mv_virtio_mmio *dev, uint64_t offset, void *data, uint32_t len);
int mv_virtio_mmio_write(struct mv_virtio_mmio *dev, uint64_t offset, const void *data,
                         uint32_t len);

/* "virtio_mmio.device=0x200@0xd0000000:5" into buf; returns snprintf's length. */
int mv_virtio_mmio_cmdline(const struct mv_virtio_mmio *dev, char *buf, size_t len);

/* Harness kick of queue q (what a guest QueueNotify write does). Threaded: wakes the I/O
 * thread. no_thread: runs queue_notify now. -EINVAL for a bad or not-ready queue. */
int mv_virtio_mmio_notify(struct mv_virtio_mmio *dev, uint16_t q);
/* no_thread mode: runs pending kicks and fd callbacks, waiting up to timeout_ms (-1: forever)
 * for one. Returns the number of events handled or -errno. */
int mv_virtio_mmio_poll(struct mv_virtio_mmio *dev, int timeout_ms);

uint64_t mv_virtio_mmio_base(const struct mv_virtio_mmio *dev);
uint32_t mv_virtio_mmio_gsi(const struct mv_virtio_mmio *dev);
uint8_t mv_virtio_mmio_status(struct mv_virtio_mmio *dev);

/* --- for device models (called from their callbacks, lock already held) --- */
struct mv_virtq *mv_virtio_mmio_queue(struct mv_virtio_mmio *dev, uint16_t q);
uint64_t mv_virtio_mmio_driver_features(const struct mv_virtio_mmio *dev);
/* Sets InterruptStatus bits and raises the interrupt (irqfd or irq_cb). */
void mv_virtio_mmio_interrupt(struct mv_virtio_mmio *dev, uint32_t isr_bits);
/* After pushing used buffers on q: interrupts unless the driver suppressed it (event idx /
 * NO_INTERRUPT). */
void mv_virtio_mmio_notify_used(struct mv_virtio_mmio *dev, uint16_t q);
/* The device's config changed: bumps ConfigGeneration and raises a config interrupt. */
void mv_virtio_mmio_config_changed(struct mv_virtio_mmio *dev);
/* Marks the device broken (NEEDS_RESET + config interrupt); queues stop until reset. */
void mv_virtio_mmio_set_needs_reset(struct mv_virtio_mmio *dev, const char *why);
/* Runs cb(cb_ctx) on the I/O thread, with the lock held, whenever fd is readable. <= 8 fds. */
int mv_virtio_mmio_watch_fd(struct mv_virtio_mmio *dev, int fd, void (*cb)(void *cb_ctx),
                            void *cb_ctx);
/* Stop watching fd (before the device closes it). */
void mv_virtio_mmio_unwatch_fd(struct mv_virtio_mmio *dev, int fd);

#endif
