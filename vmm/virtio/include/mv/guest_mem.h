/* Guest physical memory as a few regions {gpa, size, host pointer}, with one overflow-safe
 * translation that every device and loader uses: a guest address range is usable only when it
 * lies wholly inside one region. Never dereference a guest address any other way. */
#ifndef MV_GUEST_MEM_H
#define MV_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MV_GUEST_MEM_MAX_REGIONS 8

struct mv_guest_mem_region {
    uint64_t gpa;  /* first guest physical address */
    uint64_t size; /* bytes; gpa + size never wraps (checked on add) */
    void *host;    /* host mapping of gpa */
};

struct mv_guest_mem {
    unsigned nr_regions;
    struct mv_guest_mem_region regions[MV_GUEST_MEM_MAX_REGIONS];
};

void mv_guest_mem_init(struct mv_guest_mem *mem);

/* Adds a region. -EINVAL: size 0, host NULL, gpa + size wraps, or overlaps a region;
 * -ENOSPC: table full. The table is unchanged on error. */
int mv_guest_mem_add(struct mv_guest_mem *mem, uint64_t gpa, uint64_t size, void *host);

/* Host pointer for [gpa, gpa + len) when that range lies wholly inside one region, else NULL.
 * len 0 is treated as 1 (gpa itself must be inside). Safe for any gpa/len (no overflow). */
static inline void *mv_guest_mem_ptr(const struct mv_guest_mem *mem, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        len = 1;
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const struct mv_guest_mem_region *r = &mem->regions[i];
        /* gpa - r->gpa cannot underflow after the first test; compare lengths, never sums */
        if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
            return (uint8_t *)r->host + (gpa - r->gpa);
    }
    return NULL;
}

/* The region containing gpa, or NULL. */
const struct mv_guest_mem_region *mv_guest_mem_find(const struct mv_guest_mem *mem, uint64_t gpa);

/* Copies between guest and host memory; -EFAULT (nothing copied) unless the whole range is in
 * one region. */
int mv_guest_mem_read(const struct mv_guest_mem *mem, uint64_t gpa, void *dst, size_t len);
int mv_guest_mem_write(const struct mv_guest_mem *mem, uint64_t gpa, const void *src, size_t len);

#endif
