/* Host-side driver harness (see harness.h). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void hx_ram_init(struct hx_ram *ram, uint64_t size)
{
    memset(ram, 0, sizeof(*ram));
    ram->buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ram->buf == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    ram->gpa = HX_RAM_GPA;
    ram->size = size;
    ram->next = HX_RAM_GPA;
    mv_guest_mem_init(&ram->mem);
    if (mv_guest_mem_add(&ram->mem, ram->gpa, size, ram->buf) != 0)
        abort();
}

void hx_ram_fini(struct hx_ram *ram)
{
    munmap(ram->buf, ram->size);
}

void *hx_ptr(struct hx_ram *ram, uint64_t gpa)
{
    if (gpa < ram->gpa || gpa - ram->gpa >= ram->size)
        abort();
    return ram->buf + (gpa - ram->gpa);
}

uint64_t hx_alloc(struct hx_ram *ram, uint64_t len, uint64_t align)
{
    uint64_t a = (ram->next + align - 1) & ~(align - 1);
    if (a + len > ram->gpa + ram->size) {
        fprintf(stderr, "harness: out of fake guest RAM\n");
        abort();
    }
    ram->next = a + len;
    return a;
}

void hx_queue_init(struct hx_queue *q, struct hx_ram *ram, uint16_t size)
{
    memset(q, 0, sizeof(*q));
    q->ram = ram;
    q->size = size;
    q->desc_gpa = hx_alloc(ram, 16ull * size, 4096);
    q->avail_gpa = hx_alloc(ram, 6 + 2ull * size, 2);
    q->used_gpa = hx_alloc(ram, 6 + 8ull * size, 4096);
    memset(hx_ptr(ram, q->desc_gpa), 0, 16ull * size);
    memset(hx_ptr(ram, q->avail_gpa), 0, 6 + 2ull * size);
    memset(hx_ptr(ram, q->used_gpa), 0, 6 + 8ull * size);
}

struct mv_virtq_desc *hx_desc(struct hx_queue *q, uint16_t i)
{
    return (struct mv_virtq_desc *)hx_ptr(q->ram, q->desc_gpa) + i;
}

void hx_set_desc(struct hx_queue *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    struct mv_virtq_desc *d = hx_desc(q, i);
    d->addr = addr;
    d->len = len;
    d->flags = flags;
    d->next = next;
}

void hx_publish(struct hx_queue *q, uint16_t head)
{
    struct mv_virtq_avail *av = hx_ptr(q->ram, q->avail_gpa);
    av->ring[q->avail_idx & (q->size - 1)] = head;
    q->avail_idx++;
    __atomic_store_n(&av->idx, q->avail_idx, __ATOMIC_RELEASE);
}

uint16_t hx_used_idx(struct hx_queue *q)
{
    struct mv_virtq_used *u = hx_ptr(q->ram, q->used_gpa);
    return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
}

bool hx_used_next(struct hx_queue *q, uint32_t *id, uint32_t *len)
{
    struct mv_virtq_used *u = hx_ptr(q->ram, q->used_gpa);
    if (hx_used_idx(q) == q->used_seen)
        return false;
    struct mv_virtq_used_elem *e = &u->ring[q->used_seen & (q->size - 1)];
    *id = e->id;
    *len = e->len;
    q->used_seen++;
    return true;
}

uint16_t hx_chain(struct hx_queue *q, const struct hx_buf *bufs, unsigned n)
{
    uint16_t head = q->next_desc;
    for (unsigned i = 0; i < n; i++) {
        uint16_t d = (uint16_t)((head + i) & (q->size - 1));
        uint16_t next = (uint16_t)((d + 1) & (q->size - 1));
        uint16_t flags = (uint16_t)((bufs[i].writable ? MV_VIRTQ_DESC_F_WRITE : 0) |
                                    (i + 1 < n ? MV_VIRTQ_DESC_F_NEXT : 0));
        hx_set_desc(q, d, bufs[i].gpa, bufs[i].len, flags, next);
    }
    q->next_desc = (uint16_t)((head + n) & (q->size - 1));
    return head;
}

uint32_t hx_mmio_read32(struct mv_virtio_mmio *dev, uint64_t off)
{
    uint32_t v = 0;
    mv_virtio_mmio_read(dev, off, &v, 4);
    return v;
}

void hx_mmio_write32(struct mv_virtio_mmio *dev, uint64_t off, uint32_t v)
{
    mv_virtio_mmio_write(dev, off, &v, 4);
}

uint32_t hx_mmio_setup(struct mv_virtio_mmio *dev, uint64_t want_features, struct hx_queue *queues,
                       unsigned nq)
{
    hx_mmio_write32(dev, MV_VIRTIO_MMIO_STATUS, 0);
    hx_mmio_write32(dev, MV_VIRTIO_MMIO_STATUS, MV_VIRTIO_STATUS_ACKNOWLEDGE);
    hx_mmio_write32(dev, MV_VIRTIO_MMIO_STATUS,
                    MV_VIRTIO_STATUS_ACKNOWLEDGE | MV_VIRTIO_STATUS_DRIVER);
    uint64_t offered = 0;
    for (uint32_t sel = 0; sel < 2; sel++) {
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
        offered |= (uint64_t)hx_mmio_read32(dev, MV_VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
    }
    uint64_t f = offered & want_features;
    for (uint32_t sel = 0; sel < 2; sel++) {
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> (32 * sel)));
    }
    uint32_t st =
        MV_VIRTIO_STATUS_ACKNOWLEDGE | MV_VIRTIO_STATUS_DRIVER | MV_VIRTIO_STATUS_FEATURES_OK;
    hx_mmio_write32(dev, MV_VIRTIO_MMIO_STATUS, st);
    if (!(hx_mmio_read32(dev, MV_VIRTIO_MMIO_STATUS) & MV_VIRTIO_STATUS_FEATURES_OK))
        return hx_mmio_read32(dev, MV_VIRTIO_MMIO_STATUS);
    for (unsigned i = 0; i < nq; i++) {
        struct hx_queue *q = &queues[i];
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_SEL, i);
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_NUM, q->size);
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc_gpa);
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(q->desc_gpa >> 32));
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)q->avail_gpa);
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(q->avail_gpa >> 32));
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q->used_gpa);
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(q->used_gpa >> 32));
        hx_mmio_write32(dev, MV_VIRTIO_MMIO_QUEUE_READY, 1);
    }
    hx_mmio_write32(dev, MV_VIRTIO_MMIO_STATUS, st | MV_VIRTIO_STATUS_DRIVER_OK);
    return hx_mmio_read32(dev, MV_VIRTIO_MMIO_STATUS);
}
