/* Guest memory regions: the single place where guest physical addresses become host pointers. */
#include "mv/guest_mem.h"

#include <errno.h>
#include <string.h>

void mv_guest_mem_init(struct mv_guest_mem *mem)
{
    memset(mem, 0, sizeof(*mem));
}

int mv_guest_mem_add(struct mv_guest_mem *mem, uint64_t gpa, uint64_t size, void *host)
{
    if (size == 0 || host == NULL || gpa + size < gpa)
        return -EINVAL;
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const struct mv_guest_mem_region *r = &mem->regions[i];
        /* [gpa, gpa+size) and [r->gpa, r->gpa+r->size) overlap unless one ends before the
         * other starts; both ends are known not to wrap */
        if (gpa < r->gpa + r->size && r->gpa < gpa + size)
            return -EINVAL;
    }
    if (mem->nr_regions >= MV_GUEST_MEM_MAX_REGIONS)
        return -ENOSPC;
    mem->regions[mem->nr_regions++] = (struct mv_guest_mem_region){gpa, size, host};
    return 0;
}

const struct mv_guest_mem_region *mv_guest_mem_find(const struct mv_guest_mem *mem, uint64_t gpa)
{
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const struct mv_guest_mem_region *r = &mem->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size)
            return r;
    }
    return NULL;
}

int mv_guest_mem_read(const struct mv_guest_mem *mem, uint64_t gpa, void *dst, size_t len)
{
    const void *p = mv_guest_mem_ptr(mem, gpa, len);
    if (p == NULL)
        return -EFAULT;
    memcpy(dst, p, len);
    return 0;
}

int mv_guest_mem_write(const struct mv_guest_mem *mem, uint64_t gpa, const void *src, size_t len)
{
    void *p = mv_guest_mem_ptr(mem, gpa, len);
    if (p == NULL)
        return -EFAULT;
    memcpy(p, src, len);
    return 0;
}
