/* virtio-mmio transport, version 2. The register state machine runs on the caller's thread (the
 * vCPU that took the MMIO exit); queue kicks arrive on per-queue eventfds (KVM_IOEVENTFD with
 * datamatch, or written by mv_virtio_mmio_notify) and are served by one I/O thread per device,
 * which also serves the fds the device model watches (io_uring completions, TAP). */
#include "mv/virtio_mmio.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "mv/log.h"

#define MMIO_MAX_WATCH 8

enum { EV_KICK = 1, EV_WATCH = 2, EV_STOP = 3 };
#define EV_DATA(type, v) (((uint64_t)(type) << 32) | (uint32_t)(v))

struct mmio_queue {
    uint16_t num;
    bool ready;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    struct mv_virtq vq;
    int kick_fd;
    bool ioeventfd;
};

struct mmio_watch {
    int fd;
    void (*cb)(void *cb_ctx);
    void *cb_ctx;
};

struct mv_virtio_mmio {
    struct mv_virtio_device devc;
    const struct mv_guest_mem *mem;
    uint64_t base;
    uint32_t gsi;
    int vm_fd;
    void (*irq_cb)(void *irq_ctx, uint32_t gsi);
    void *irq_ctx;
    bool no_thread;

    pthread_mutex_t lock; /* recursive: device callbacks call back into the transport */
    uint32_t status;
    uint32_t dev_features_sel, drv_features_sel;
    uint64_t offered_features;
    uint64_t driver_features;
    uint32_t queue_sel;
    uint32_t isr;
    uint32_t config_generation;
    struct mmio_queue queues[MV_VIRTIO_MAX_QUEUES];
    struct mmio_watch watches[MMIO_MAX_WATCH];
    unsigned nr_watches;

    int irq_fd; /* KVM_IRQFD eventfd; -1 in harness mode */
    bool irqfd_registered;
    int epoll_fd;
    int stop_fd;
    pthread_t thread;
    bool thread_running;
    bool warned_bad_access;
};

static void mmio_lock(struct mv_virtio_mmio *dev)
{
    pthread_mutex_lock(&dev->lock);
}

static void mmio_unlock(struct mv_virtio_mmio *dev)
{
    pthread_mutex_unlock(&dev->lock);
}

static void mmio_warn_once(struct mv_virtio_mmio *dev, const char *what, uint64_t offset,
                           uint32_t len)
{
    if (dev->warned_bad_access)
        return;
    dev->warned_bad_access = true;
    mv_warn("virtio-mmio@0x%" PRIx64 ": %s at offset 0x%" PRIx64 " len %u ignored", dev->base, what,
            offset, len);
}

void mv_virtio_mmio_interrupt(struct mv_virtio_mmio *dev, uint32_t isr_bits)
{
    mmio_lock(dev);
    dev->isr |= isr_bits;
    if (dev->irq_fd >= 0) {
        uint64_t one = 1;
        if (write(dev->irq_fd, &one, sizeof(one)) < 0)
            mv_warn("virtio-mmio@0x%" PRIx64 ": irqfd write: %s", dev->base, strerror(errno));
    } else if (dev->irq_cb != NULL) {
        dev->irq_cb(dev->irq_ctx, dev->gsi);
    }
    mmio_unlock(dev);
}

void mv_virtio_mmio_set_needs_reset(struct mv_virtio_mmio *dev, const char *why)
{
    mmio_lock(dev);
    if (!(dev->status & MV_VIRTIO_STATUS_NEEDS_RESET)) {
        mv_warn("virtio-mmio@0x%" PRIx64 ": device needs reset: %s", dev->base, why);
        dev->status |= MV_VIRTIO_STATUS_NEEDS_RESET;
        if (dev->status & MV_VIRTIO_STATUS_DRIVER_OK)
            mv_virtio_mmio_interrupt(dev, MV_VIRTIO_ISR_CONFIG);
    }
    mmio_unlock(dev);
}

static bool mmio_running(const struct mv_virtio_mmio *dev)
{
    return (dev->status & (MV_VIRTIO_STATUS_DRIVER_OK | MV_VIRTIO_STATUS_NEEDS_RESET |
                           MV_VIRTIO_STATUS_FAILED)) == MV_VIRTIO_STATUS_DRIVER_OK;
}

/* A device callback may have found a malformed queue: turn that into NEEDS_RESET. */
static void mmio_check_broken_queues(struct mv_virtio_mmio *dev)
{
    for (unsigned q = 0; q < dev->devc.num_queues; q++) {
        struct mmio_queue *mq = &dev->queues[q];
        if (mq->ready && mq->vq.broken) {
            mv_virtio_mmio_set_needs_reset(dev, mq->vq.error ? mq->vq.error : "queue broken");
            return;
        }
    }
}

/* Runs queue q's handler; lock held. */
static void mmio_run_queue(struct mv_virtio_mmio *dev, uint16_t q)
{
    if (!mmio_running(dev) || q >= dev->devc.num_queues || !dev->queues[q].ready)
        return;
    dev->devc.ops->queue_notify(dev->devc.ctx, q);
    mmio_check_broken_queues(dev);
}

static void mmio_reset(struct mv_virtio_mmio *dev)
{
    if (dev->devc.ops->reset != NULL)
        dev->devc.ops->reset(dev->devc.ctx);
    dev->status = 0;
    dev->dev_features_sel = dev->drv_features_sel = 0;
    dev->driver_features = 0;
    dev->queue_sel = 0;
    dev->isr = 0;
    for (unsigned q = 0; q < MV_VIRTIO_MAX_QUEUES; q++) {
        struct mmio_queue *mq = &dev->queues[q];
        mq->num = 0;
        mq->ready = false;
        mq->desc_gpa = mq->avail_gpa = mq->used_gpa = 0;
        memset(&mq->vq, 0, sizeof(mq->vq));
    }
}

static void mmio_write_status(struct mv_virtio_mmio *dev, uint32_t val)
{
    val &= 0xff;
    if (val == 0) {
        mmio_reset(dev);
        return;
    }
    /* Bits only get set (clearing is a reset); NEEDS_RESET is the device's to set. */
    uint32_t added = val & ~dev->status & ~MV_VIRTIO_STATUS_NEEDS_RESET;
    if (added & MV_VIRTIO_STATUS_FEATURES_OK) {
        uint64_t f = dev->driver_features;
        if ((f & ~dev->offered_features) != 0 || !(f & MV_VIRTIO_F_VERSION_1)) {
            mv_warn("virtio-mmio@0x%" PRIx64 ": driver features 0x%" PRIx64
                    " rejected (offered 0x%" PRIx64 ", VERSION_1 required)",
                    dev->base, f, dev->offered_features);
            added &= ~MV_VIRTIO_STATUS_FEATURES_OK;
        }
    }
    if ((added & MV_VIRTIO_STATUS_DRIVER_OK) &&
        !((dev->status | added) & MV_VIRTIO_STATUS_FEATURES_OK))
        added &= ~MV_VIRTIO_STATUS_DRIVER_OK;
    dev->status |= added;
    if (added & MV_VIRTIO_STATUS_DRIVER_OK) {
        if (dev->devc.ops->activate != NULL && dev->devc.ops->activate(dev->devc.ctx) != 0)
            mv_virtio_mmio_set_needs_reset(dev, "device activation failed");
        /* Buffers made available before DRIVER_OK (e.g. net RX) get looked at now. */
        for (uint16_t q = 0; q < dev->devc.num_queues; q++)
            if (dev->queues[q].ready && mv_virtq_has_work(&dev->queues[q].vq))
                mmio_run_queue(dev, q);
    }
}

static void mmio_queue_ready(struct mv_virtio_mmio *dev, struct mmio_queue *mq, uint32_t val)
{
    if (val == 0) {
        mq->ready = false;
        return;
    }
    if (mq->ready)
        return;
    bool event_idx = (dev->driver_features & MV_VIRTIO_F_EVENT_IDX) != 0;
    int rc = mv_virtq_init(&mq->vq, dev->mem, mq->num, mq->desc_gpa, mq->avail_gpa, mq->used_gpa,
                           event_idx);
    if (rc != 0) {
        mv_virtio_mmio_set_needs_reset(dev, mq->vq.error);
        return;
    }
    mq->ready = true;
}

static uint32_t mmio_read_reg(struct mv_virtio_mmio *dev, uint64_t off)
{
    struct mmio_queue *mq =
        dev->queue_sel < dev->devc.num_queues ? &dev->queues[dev->queue_sel] : NULL;
    switch (off) {
    case MV_VIRTIO_MMIO_MAGIC_VALUE:
        return MV_VIRTIO_MMIO_MAGIC;
    case MV_VIRTIO_MMIO_VERSION_REG:
        return MV_VIRTIO_MMIO_VERSION;
    case MV_VIRTIO_MMIO_DEVICE_ID:
        return dev->devc.device_id;
    case MV_VIRTIO_MMIO_VENDOR_ID_REG:
        return MV_VIRTIO_MMIO_VENDOR_ID;
    case MV_VIRTIO_MMIO_DEVICE_FEATURES:
        if (dev->dev_features_sel > 1)
            return 0;
        return (uint32_t)(dev->offered_features >> (32 * dev->dev_features_sel));
    case MV_VIRTIO_MMIO_QUEUE_NUM_MAX:
        return mq ? dev->devc.queue_max : 0;
    case MV_VIRTIO_MMIO_QUEUE_READY:
        return mq ? mq->ready : 0;
    case MV_VIRTIO_MMIO_INTERRUPT_STATUS:
        return dev->isr;
    case MV_VIRTIO_MMIO_STATUS:
        return dev->status;
    case MV_VIRTIO_MMIO_SHM_LEN_LOW:
    case MV_VIRTIO_MMIO_SHM_LEN_HIGH:
        return 0xffffffffu; /* no shared memory regions */
    case MV_VIRTIO_MMIO_CONFIG_GENERATION:
        return dev->config_generation;
    default:
        mmio_warn_once(dev, "read of unknown/write-only register", off, 4);
        return 0;
    }
}

static void mmio_set_half(uint64_t *v, bool high, uint32_t val)
{
    if (high)
        *v = (*v & 0xffffffffull) | ((uint64_t)val << 32);
    else
        *v = (*v & ~0xffffffffull) | val;
}

static void mmio_write_reg(struct mv_virtio_mmio *dev, uint64_t off, uint32_t val)
{
    struct mmio_queue *mq =
        dev->queue_sel < dev->devc.num_queues ? &dev->queues[dev->queue_sel] : NULL;
    /* Features may only change between DRIVER and FEATURES_OK. */
    bool features_open =
        (dev->status & MV_VIRTIO_STATUS_DRIVER) && !(dev->status & MV_VIRTIO_STATUS_FEATURES_OK);
    switch (off) {
    case MV_VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        dev->dev_features_sel = val;
        return;
    case MV_VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        dev->drv_features_sel = val;
        return;
    case MV_VIRTIO_MMIO_DRIVER_FEATURES:
        if (!features_open || dev->drv_features_sel > 1) {
            mmio_warn_once(dev, "driver features write outside negotiation", off, 4);
            return;
        }
        mmio_set_half(&dev->driver_features, dev->drv_features_sel == 1, val);
        return;
    case MV_VIRTIO_MMIO_QUEUE_SEL:
        dev->queue_sel = val;
        return;
    case MV_VIRTIO_MMIO_QUEUE_NOTIFY:
        if (val < dev->devc.num_queues)
            mv_virtio_mmio_notify(dev, (uint16_t)val);
        return;
    case MV_VIRTIO_MMIO_INTERRUPT_ACK:
        dev->isr &= ~val;
        return;
    case MV_VIRTIO_MMIO_STATUS:
        mmio_write_status(dev, val);
        return;
    default:
        break;
    }
    /* Queue registers: only for an existing, not yet enabled queue. */
    if (mq == NULL || (mq->ready && off != MV_VIRTIO_MMIO_QUEUE_READY)) {
        mmio_warn_once(dev, "queue register write to absent or enabled queue", off, 4);
        return;
    }
    switch (off) {
    case MV_VIRTIO_MMIO_QUEUE_NUM:
        mq->num = val <= dev->devc.queue_max ? (uint16_t)val : 0;
        return;
    case MV_VIRTIO_MMIO_QUEUE_READY:
        mmio_queue_ready(dev, mq, val);
        return;
    case MV_VIRTIO_MMIO_QUEUE_DESC_LOW:
    case MV_VIRTIO_MMIO_QUEUE_DESC_HIGH:
        mmio_set_half(&mq->desc_gpa, off == MV_VIRTIO_MMIO_QUEUE_DESC_HIGH, val);
        return;
    case MV_VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case MV_VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        mmio_set_half(&mq->avail_gpa, off == MV_VIRTIO_MMIO_QUEUE_DRIVER_HIGH, val);
        return;
    case MV_VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case MV_VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        mmio_set_half(&mq->used_gpa, off == MV_VIRTIO_MMIO_QUEUE_DEVICE_HIGH, val);
        return;
    default:
        mmio_warn_once(dev, "write of unknown/read-only register", off, 4);
        return;
    }
}

static bool mmio_config_range_ok(const struct mv_virtio_mmio *dev, uint64_t offset, uint32_t len)
{
    uint64_t coff = offset - MV_VIRTIO_MMIO_CONFIG;
    return (len == 1 || len == 2 || len == 4 || len == 8) && coff < dev->devc.config_size &&
           len <= dev->devc.config_size - coff;
}

int mv_virtio_mmio_read(struct mv_virtio_mmio *dev, uint64_t offset, void *data, uint32_t len)
{
    if (len > 8)
        return -EINVAL;
    memset(data, 0, len);
    mmio_lock(dev);
    int rc = 0;
    if (offset >= MV_VIRTIO_MMIO_CONFIG && offset < MV_VIRTIO_MMIO_SIZE) {
        if (mmio_config_range_ok(dev, offset, len) && dev->devc.ops->config_read != NULL)
            dev->devc.ops->config_read(dev->devc.ctx, (uint32_t)(offset - MV_VIRTIO_MMIO_CONFIG),
                                       data, len);
        else
            rc = -EINVAL;
    } else if (offset < MV_VIRTIO_MMIO_CONFIG && len == 4 && (offset & 3) == 0) {
        uint32_t v = mmio_read_reg(dev, offset);
        memcpy(data, &v, 4);
    } else {
        rc = -EINVAL;
    }
    if (rc != 0)
        mmio_warn_once(dev, "bad read", offset, len);
    mmio_unlock(dev);
    return rc;
}

int mv_virtio_mmio_write(struct mv_virtio_mmio *dev, uint64_t offset, const void *data,
                         uint32_t len)
{
    if (len > 8)
        return -EINVAL;
    mmio_lock(dev);
    int rc = 0;
    if (offset >= MV_VIRTIO_MMIO_CONFIG && offset < MV_VIRTIO_MMIO_SIZE) {
        if (mmio_config_range_ok(dev, offset, len) && dev->devc.ops->config_write != NULL)
            dev->devc.ops->config_write(dev->devc.ctx, (uint32_t)(offset - MV_VIRTIO_MMIO_CONFIG),
                                        data, len);
        else
            rc = -EINVAL;
    } else if (offset < MV_VIRTIO_MMIO_CONFIG && len == 4 && (offset & 3) == 0) {
        uint32_t v;
        memcpy(&v, data, 4);
        mmio_write_reg(dev, offset, v);
    } else {
        rc = -EINVAL;
    }
    if (rc != 0)
        mmio_warn_once(dev, "bad write", offset, len);
    mmio_unlock(dev);
    return rc;
}

int mv_virtio_mmio_cmdline(const struct mv_virtio_mmio *dev, char *buf, size_t len)
{
    return snprintf(buf, len, "virtio_mmio.device=0x%x@0x%" PRIx64 ":%u", MV_VIRTIO_MMIO_SIZE,
                    dev->base, dev->gsi);
}

int mv_virtio_mmio_notify(struct mv_virtio_mmio *dev, uint16_t q)
{
    if (q >= dev->devc.num_queues)
        return -EINVAL;
    if (dev->no_thread) {
        mmio_lock(dev);
        int rc = dev->queues[q].ready ? 0 : -EINVAL;
        mmio_run_queue(dev, q);
        mmio_unlock(dev);
        return rc;
    }
    uint64_t one = 1;
    if (write(dev->queues[q].kick_fd, &one, sizeof(one)) < 0)
        return -errno;
    return 0;
}

/* Handles one epoll event; returns false on the stop event. */
static bool mmio_handle_event(struct mv_virtio_mmio *dev, uint64_t data)
{
    uint32_t type = (uint32_t)(data >> 32), v = (uint32_t)data;
    uint64_t cnt;
    switch (type) {
    case EV_STOP:
        return false;
    case EV_KICK:
        if (read(dev->queues[v].kick_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
            mv_warn("virtio-mmio: kick read: %s", strerror(errno));
        mmio_lock(dev);
        mmio_run_queue(dev, (uint16_t)v);
        mmio_unlock(dev);
        return true;
    case EV_WATCH:
        mmio_lock(dev);
        for (unsigned i = 0; i < dev->nr_watches; i++) {
            if (dev->watches[i].fd == (int)v) {
                dev->watches[i].cb(dev->watches[i].cb_ctx);
                break;
            }
        }
        mmio_check_broken_queues(dev);
        mmio_unlock(dev);
        return true;
    default:
        return true;
    }
}

int mv_virtio_mmio_poll(struct mv_virtio_mmio *dev, int timeout_ms)
{
    struct epoll_event ev[16];
    int n = epoll_wait(dev->epoll_fd, ev, 16, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++)
        mmio_handle_event(dev, ev[i].data.u64);
    return n;
}

static void *mmio_io_thread(void *arg)
{
    struct mv_virtio_mmio *dev = arg;
    struct epoll_event ev[16];
    for (;;) {
        int n = epoll_wait(dev->epoll_fd, ev, 16, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            mv_err("virtio-mmio@0x%" PRIx64 ": epoll_wait: %s", dev->base, strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++)
            if (!mmio_handle_event(dev, ev[i].data.u64))
                return NULL;
    }
}

static int mmio_epoll_add(struct mv_virtio_mmio *dev, int fd, uint64_t data)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
    return epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int mv_virtio_mmio_watch_fd(struct mv_virtio_mmio *dev, int fd, void (*cb)(void *cb_ctx),
                            void *cb_ctx)
{
    mmio_lock(dev);
    int rc = -ENOSPC;
    if (dev->nr_watches < MMIO_MAX_WATCH) {
        rc = mmio_epoll_add(dev, fd, EV_DATA(EV_WATCH, fd));
        if (rc == 0)
            dev->watches[dev->nr_watches++] = (struct mmio_watch){fd, cb, cb_ctx};
    }
    mmio_unlock(dev);
    return rc;
}

void mv_virtio_mmio_unwatch_fd(struct mv_virtio_mmio *dev, int fd)
{
    mmio_lock(dev);
    for (unsigned i = 0; i < dev->nr_watches; i++) {
        if (dev->watches[i].fd == fd) {
            epoll_ctl(dev->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
            dev->watches[i] = dev->watches[--dev->nr_watches];
            break;
        }
    }
    mmio_unlock(dev);
}

static int mmio_ioeventfd(struct mv_virtio_mmio *dev, uint16_t q, bool assign)
{
    struct kvm_ioeventfd io = {
        .datamatch = q,
        .addr = dev->base + MV_VIRTIO_MMIO_QUEUE_NOTIFY,
        .len = 4,
        .fd = dev->queues[q].kick_fd,
        .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    return ioctl(dev->vm_fd, KVM_IOEVENTFD, &io) == 0 ? 0 : -errno;
}

static int mmio_irqfd(struct mv_virtio_mmio *dev, bool assign)
{
    struct kvm_irqfd irq = {
        .fd = (uint32_t)dev->irq_fd,
        .gsi = dev->gsi,
        .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
    };
    return ioctl(dev->vm_fd, KVM_IRQFD, &irq) == 0 ? 0 : -errno;
}

struct mv_virtio_mmio *mv_virtio_mmio_create(const struct mv_virtio_mmio_params *p)
{
    const struct mv_virtio_device *d = p->device;
    if (d == NULL || d->ops == NULL || d->ops->queue_notify == NULL || p->mem == NULL ||
        d->num_queues == 0 || d->num_queues > MV_VIRTIO_MAX_QUEUES || d->queue_max == 0 ||
        d->queue_max > MV_VIRTQ_MAX_SIZE || (d->queue_max & (d->queue_max - 1)) != 0 ||
        d->config_size > MV_VIRTIO_MMIO_SIZE - MV_VIRTIO_MMIO_CONFIG || (p->base & 3) != 0) {
        mv_err("virtio-mmio: invalid device or parameters");
        return NULL;
    }
    struct mv_virtio_mmio *dev = calloc(1, sizeof(*dev));
    if (dev == NULL)
        return NULL;
    dev->devc = *d;
    dev->offered_features = d->features | MV_VIRTIO_F_VERSION_1;
    dev->mem = p->mem;
    dev->base = p->base;
    dev->gsi = p->gsi;
    dev->vm_fd = p->vm_fd;
    dev->irq_cb = p->irq_cb;
    dev->irq_ctx = p->irq_ctx;
    dev->no_thread = p->no_thread;
    dev->irq_fd = dev->stop_fd = -1;
    for (unsigned q = 0; q < MV_VIRTIO_MAX_QUEUES; q++)
        dev->queues[q].kick_fd = -1;

    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&dev->lock, &attr);
    pthread_mutexattr_destroy(&attr);

    const char *what = "epoll";
    dev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (dev->epoll_fd < 0)
        goto fail;
    what = "eventfd";
    dev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (dev->stop_fd < 0 || mmio_epoll_add(dev, dev->stop_fd, EV_DATA(EV_STOP, 0)) != 0)
        goto fail;
    for (uint16_t q = 0; q < d->num_queues; q++) {
        dev->queues[q].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (dev->queues[q].kick_fd < 0 ||
            mmio_epoll_add(dev, dev->queues[q].kick_fd, EV_DATA(EV_KICK, q)) != 0)
            goto fail;
    }
    if (dev->vm_fd >= 0) {
        what = "KVM_IOEVENTFD";
        for (uint16_t q = 0; q < d->num_queues; q++) {
            if (mmio_ioeventfd(dev, q, true) != 0)
                goto fail;
            dev->queues[q].ioeventfd = true;
        }
        what = "KVM_IRQFD";
        dev->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (dev->irq_fd < 0 || mmio_irqfd(dev, true) != 0)
            goto fail;
        dev->irqfd_registered = true;
    }
    what = "device attach";
    if (d->ops->attach != NULL && d->ops->attach(d->ctx, dev) != 0)
        goto fail;
    if (!dev->no_thread) {
        what = "I/O thread";
        int rc = pthread_create(&dev->thread, NULL, mmio_io_thread, dev);
        if (rc != 0) {
            errno = rc;
            goto fail;
        }
        dev->thread_running = true;
    }
    return dev;
fail:
    mv_err("virtio-mmio@0x%" PRIx64 ": %s: %s", p->base, what, strerror(errno));
    mv_virtio_mmio_destroy(dev);
    return NULL;
}

void mv_virtio_mmio_destroy(struct mv_virtio_mmio *dev)
{
    if (dev == NULL)
        return;
    if (dev->thread_running) {
        uint64_t one = 1;
        if (write(dev->stop_fd, &one, sizeof(one)) < 0)
            mv_warn("virtio-mmio: stop write: %s", strerror(errno));
        pthread_join(dev->thread, NULL);
    }
    for (uint16_t q = 0; q < MV_VIRTIO_MAX_QUEUES; q++) {
        if (dev->queues[q].ioeventfd)
            mmio_ioeventfd(dev, q, false);
        if (dev->queues[q].kick_fd >= 0)
            close(dev->queues[q].kick_fd);
    }
    if (dev->irqfd_registered)
        mmio_irqfd(dev, false);
    if (dev->irq_fd >= 0)
        close(dev->irq_fd);
    if (dev->stop_fd >= 0)
        close(dev->stop_fd);
    if (dev->epoll_fd >= 0)
        close(dev->epoll_fd);
    pthread_mutex_destroy(&dev->lock);
    free(dev);
}

uint64_t mv_virtio_mmio_base(const struct mv_virtio_mmio *dev)
{
    return dev->base;
}

uint32_t mv_virtio_mmio_gsi(const struct mv_virtio_mmio *dev)
{
    return dev->gsi;
}

uint8_t mv_virtio_mmio_status(struct mv_virtio_mmio *dev)
{
    mmio_lock(dev);
    uint8_t s = (uint8_t)dev->status;
    mmio_unlock(dev);
    return s;
}

struct mv_virtq *mv_virtio_mmio_queue(struct mv_virtio_mmio *dev, uint16_t q)
{
    if (q >= dev->devc.num_queues || !dev->queues[q].ready)
        return NULL;
    return &dev->queues[q].vq;
}

uint64_t mv_virtio_mmio_driver_features(const struct mv_virtio_mmio *dev)
{
    return dev->driver_features;
}

void mv_virtio_mmio_notify_used(struct mv_virtio_mmio *dev, uint16_t q)
{
    struct mv_virtq *vq = mv_virtio_mmio_queue(dev, q);
    if (vq != NULL && mv_virtq_should_interrupt(vq))
        mv_virtio_mmio_interrupt(dev, MV_VIRTIO_ISR_USED);
}

void mv_virtio_mmio_config_changed(struct mv_virtio_mmio *dev)
{
    mmio_lock(dev);
    dev->config_generation++;
    if (dev->status & MV_VIRTIO_STATUS_DRIVER_OK)
        mv_virtio_mmio_interrupt(dev, MV_VIRTIO_ISR_CONFIG);
    mmio_unlock(dev);
}
