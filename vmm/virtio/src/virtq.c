/* Split virtqueue, device side. The guest owns the ring memory and may change it at any moment
 * (other vCPUs), so each guest field is loaded exactly once into a local before it is checked
 * and used, and every address goes through mv_guest_mem_ptr(). */
#include "mv/virtq.h"

#include <errno.h>
#include <string.h>

#define LOAD16(p)          __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE16(p, v)      __atomic_store_n((p), (uint16_t)(v), __ATOMIC_RELAXED)
#define STORE32(p, v)      __atomic_store_n((p), (uint32_t)(v), __ATOMIC_RELAXED)
#define COMPILER_BARRIER() __asm__ volatile("" ::: "memory")

static int virtq_fail(struct mv_virtq *vq, const char *why)
{
    vq->broken = true;
    vq->error = why;
    return -EIO;
}

int mv_virtq_init(struct mv_virtq *vq, const struct mv_guest_mem *mem, uint16_t size,
                  uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa, bool event_idx)
{
    memset(vq, 0, sizeof(*vq));
    vq->mem = mem;
    vq->broken = true; /* until every check passed */
    if (size == 0 || size > MV_VIRTQ_MAX_SIZE || (size & (size - 1)) != 0) {
        vq->error = "queue size not a power of two in range";
        return -EINVAL;
    }
    if ((desc_gpa & 15) != 0 || (avail_gpa & 1) != 0 || (used_gpa & 3) != 0) {
        vq->error = "misaligned ring";
        return -EINVAL;
    }
    /* The event fields (used_event / avail_event) trail the rings only with EVENT_IDX. */
    uint64_t desc_len = 16ull * size;
    uint64_t avail_len = 4 + 2ull * size + (event_idx ? 2 : 0);
    uint64_t used_len = 4 + 8ull * size + (event_idx ? 2 : 0);
    vq->desc = mv_guest_mem_ptr(mem, desc_gpa, desc_len);
    vq->avail = mv_guest_mem_ptr(mem, avail_gpa, avail_len);
    vq->used = mv_guest_mem_ptr(mem, used_gpa, used_len);
    if (vq->desc == NULL || vq->avail == NULL || vq->used == NULL) {
        vq->error = "ring outside guest memory";
        return -EFAULT;
    }
    vq->size = size;
    vq->event_idx = event_idx;
    vq->broken = false;
    /* The driver zeroes the rings before QueueReady; our indices start from what it left. */
    vq->last_avail_idx = 0;
    vq->used_idx = LOAD16(&vq->used->idx);
    return 0;
}

/* avail_event: the uint16 right after the used ring (present with EVENT_IDX only). */
static uint16_t *virtq_avail_event(struct mv_virtq *vq)
{
    return (uint16_t *)&vq->used->ring[vq->size];
}

/* One descriptor, fetched once. */
static void virtq_read_desc(const struct mv_virtq_desc *table, uint16_t i, struct mv_virtq_desc *d)
{
    memcpy(d, &table[i], sizeof(*d));
    COMPILER_BARRIER(); /* use the copy, never re-read guest memory */
}

int mv_virtq_pop(struct mv_virtq *vq, struct mv_virtq_chain *c)
{
    if (vq->broken)
        return -EIO;
    uint16_t avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail_idx);
    if (pending == 0)
        return 0;
    if (pending > vq->size)
        return virtq_fail(vq, "avail idx moved by more than the queue size");

    uint16_t head = LOAD16(&vq->avail->ring[vq->last_avail_idx & (vq->size - 1)]);
    if (head >= vq->size)
        return virtq_fail(vq, "head descriptor index out of range");

    c->head = head;
    c->n_out = c->n_in = 0;
    c->out_bytes = c->in_bytes = 0;

    const struct mv_virtq_desc *table = vq->desc;
    unsigned table_size = vq->size;
    unsigned walked = 0; /* descriptors taken from the current table: bounds loops */
    bool in_indirect = false;
    uint16_t i = head;
    unsigned nseg = 0;

    for (;;) {
        if (++walked > table_size)
            return virtq_fail(vq, "descriptor chain longer than its table (loop)");
        struct mv_virtq_desc d;
        virtq_read_desc(table, i, &d);

        if (d.flags & MV_VIRTQ_DESC_F_INDIRECT) {
            if (in_indirect)
                return virtq_fail(vq, "nested indirect descriptor");
            if (d.flags & MV_VIRTQ_DESC_F_NEXT)
                return virtq_fail(vq, "indirect descriptor with NEXT");
            if (d.len == 0 || d.len % sizeof(struct mv_virtq_desc) != 0 ||
                d.len / sizeof(struct mv_virtq_desc) > MV_VIRTQ_MAX_SIZE)
                return virtq_fail(vq, "bad indirect table length");
            if ((d.addr & 7) != 0)
                return virtq_fail(vq, "misaligned indirect table");
            const struct mv_virtq_desc *t = mv_guest_mem_ptr(vq->mem, d.addr, d.len);
            if (t == NULL)
                return virtq_fail(vq, "indirect table outside guest memory");
            table = t;
            table_size = d.len / sizeof(struct mv_virtq_desc);
            walked = 0;
            in_indirect = true;
            i = 0;
            continue;
        }

        if (d.len != 0) {
            void *p = mv_guest_mem_ptr(vq->mem, d.addr, d.len);
            if (p == NULL)
                return virtq_fail(vq, "buffer outside guest memory");
            if (nseg >= MV_VIRTQ_MAX_SEGS)
                return virtq_fail(vq, "too many segments in chain");
            if (d.flags & MV_VIRTQ_DESC_F_WRITE) {
                c->n_in++;
                c->in_bytes += d.len;
            } else {
                if (c->n_in != 0)
                    return virtq_fail(vq, "device-readable buffer after a writable one");
                c->n_out++;
                c->out_bytes += d.len;
            }
            c->iov[nseg].iov_base = p;
            c->iov[nseg].iov_len = d.len;
            nseg++;
        }
        if (!(d.flags & MV_VIRTQ_DESC_F_NEXT))
            break;
        if (d.next >= table_size)
            return virtq_fail(vq, "next descriptor index out of range");
        i = d.next;
    }

    vq->last_avail_idx++;
    if (vq->event_idx) /* kick us again for anything past what we consumed */
        STORE16(virtq_avail_event(vq), vq->last_avail_idx);
    return 1;
}

void mv_virtq_unpop(struct mv_virtq *vq)
{
    vq->last_avail_idx--;
}

void mv_virtq_push(struct mv_virtq *vq, uint16_t head, uint32_t written)
{
    struct mv_virtq_used_elem *e = &vq->used->ring[vq->used_idx & (vq->size - 1)];
    STORE32(&e->id, head);
    STORE32(&e->len, written);
    vq->used_idx++;
    /* The element must be visible before the index that publishes it. */
    __atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

bool mv_virtq_should_interrupt(struct mv_virtq *vq)
{
    /* Order our used->idx store before reading the driver's suppression fields, or we may
     * miss a driver that just re-enabled interrupts. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(LOAD16(&vq->avail->flags) & MV_VIRTQ_AVAIL_F_NO_INTERRUPT);
    uint16_t event = LOAD16(&vq->avail->ring[vq->size]);
    uint16_t old = vq->signalled_used;
    uint16_t now = vq->used_idx;
    bool valid = vq->signalled_valid;
    vq->signalled_used = now;
    vq->signalled_valid = true;
    if (!valid)
        return true;
    /* interrupt when used_event lies in (old, now] (virtio 2.7.10) */
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool mv_virtq_has_work(struct mv_virtq *vq)
{
    if (vq->broken)
        return false;
    return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail_idx;
}

bool mv_virtq_enable_notify(struct mv_virtq *vq)
{
    if (vq->broken)
        return false;
    if (vq->event_idx)
        STORE16(virtq_avail_event(vq), vq->last_avail_idx);
    else
        STORE16(&vq->used->flags, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return mv_virtq_has_work(vq);
}

void mv_virtq_disable_notify(struct mv_virtq *vq)
{
    if (vq->broken || vq->event_idx)
        return;
    STORE16(&vq->used->flags, MV_VIRTQ_USED_F_NO_NOTIFY);
}

size_t mv_virtq_chain_copy_out(const struct mv_virtq_chain *c, uint64_t offset, void *dst,
                               size_t len)
{
    size_t done = 0;
    for (unsigned s = 0; s < c->n_out && done < len; s++) {
        size_t seg = c->iov[s].iov_len;
        if (offset >= seg) {
            offset -= seg;
            continue;
        }
        size_t n = seg - offset < len - done ? seg - offset : len - done;
        memcpy((uint8_t *)dst + done, (const uint8_t *)c->iov[s].iov_base + offset, n);
        done += n;
        offset = 0;
    }
    return done;
}

size_t mv_virtq_chain_copy_in(const struct mv_virtq_chain *c, uint64_t offset, const void *src,
                              size_t len)
{
    size_t done = 0;
    for (unsigned s = c->n_out; s < (unsigned)c->n_out + c->n_in && done < len; s++) {
        size_t seg = c->iov[s].iov_len;
        if (offset >= seg) {
            offset -= seg;
            continue;
        }
        size_t n = seg - offset < len - done ? seg - offset : len - done;
        memcpy((uint8_t *)c->iov[s].iov_base + offset, (const uint8_t *)src + done, n);
        done += n;
        offset = 0;
    }
    return done;
}
