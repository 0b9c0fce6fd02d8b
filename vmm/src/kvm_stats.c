/* KVM binary stats reader (see mv/vmm_stats.h). */
#include "mv/vmm_stats.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int mv_kvm_stats_parse(const uint8_t *buf, size_t len, struct mv_kvm_stats *st)
{
    struct kvm_stats_header h;
    if (len < sizeof(h))
        return -EINVAL;
    memcpy(&h, buf, sizeof(h));
    uint64_t desc_size = sizeof(struct kvm_stats_desc) + (uint64_t)h.name_size;
    if (h.name_size == 0 || h.name_size > 4096 || h.num_desc > 65536)
        return -EINVAL;
    if (h.desc_offset > len || (uint64_t)h.num_desc * desc_size > len - h.desc_offset)
        return -EINVAL;
    struct mv_kvm_stat_desc *descs = calloc(h.num_desc ? h.num_desc : 1, sizeof(*descs));
    if (!descs)
        return -ENOMEM;
    uint64_t data_end = 0;
    for (uint32_t i = 0; i < h.num_desc; i++) {
        struct kvm_stats_desc d;
        const uint8_t *p = buf + h.desc_offset + i * desc_size;
        memcpy(&d, p, sizeof(d));
        const char *name = (const char *)p + sizeof(d);
        size_t nlen = strnlen(name, h.name_size);
        if (nlen == 0 || nlen == h.name_size || d.size == 0 || d.offset % 8) {
            free(descs);
            return -EINVAL;
        }
        uint64_t end = (uint64_t)d.offset + (uint64_t)d.size * 8;
        if (end > data_end)
            data_end = end;
        size_t copy = nlen < MV_KVM_STAT_NAME_MAX - 1 ? nlen : MV_KVM_STAT_NAME_MAX - 1;
        memcpy(descs[i].name, name, copy);
        descs[i].name[copy] = '\0';
        descs[i].flags = d.flags;
        descs[i].exponent = d.exponent;
        descs[i].size = d.size;
        descs[i].offset = d.offset;
    }
    if (data_end / 8 > (1u << 24)) {
        free(descs);
        return -EINVAL;
    }
    *st = (struct mv_kvm_stats){.fd = -1,
                                .nr_descs = h.num_desc,
                                .descs = descs,
                                .data_offset = h.data_offset,
                                .data_words = (uint32_t)(data_end / 8)};
    return 0;
}

int mv_kvm_stats_open(int owner_fd, struct mv_kvm_stats *st)
{
    int fd = ioctl(owner_fd, KVM_GET_STATS_FD, NULL);
    if (fd < 0)
        return -errno;
    struct kvm_stats_header h;
    if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        close(fd);
        return -EIO;
    }
    /* header and descriptors precede the data block */
    uint64_t len = h.data_offset > h.desc_offset ? h.data_offset : h.desc_offset;
    if (len > (16u << 20) || len < sizeof(h)) {
        close(fd);
        return -EINVAL;
    }
    uint8_t *buf = malloc(len);
    if (!buf || pread(fd, buf, len, 0) != (ssize_t)len) {
        free(buf);
        close(fd);
        return -EIO;
    }
    int rc = mv_kvm_stats_parse(buf, len, st);
    free(buf);
    if (rc) {
        close(fd);
        return rc;
    }
    st->fd = fd;
    return 0;
}

int mv_kvm_stats_read(const struct mv_kvm_stats *st, uint64_t *values)
{
    size_t n = (size_t)st->data_words * 8;
    if (st->fd < 0)
        return -EBADF;
    ssize_t got = pread(st->fd, values, n, (off_t)st->data_offset);
    return got == (ssize_t)n ? 0 : -EIO;
}

void mv_kvm_stats_close(struct mv_kvm_stats *st)
{
    if (st->fd >= 0)
        close(st->fd);
    free(st->descs);
    memset(st, 0, sizeof(*st));
    st->fd = -1;
}

const char *mv_kvm_stat_type_name(uint32_t flags)
{
    switch (flags & KVM_STATS_TYPE_MASK) {
    case KVM_STATS_TYPE_CUMULATIVE:
        return "cumulative";
    case KVM_STATS_TYPE_INSTANT:
        return "instant";
    case KVM_STATS_TYPE_PEAK:
        return "peak";
    case KVM_STATS_TYPE_LINEAR_HIST:
        return "linear_hist";
    case KVM_STATS_TYPE_LOG_HIST:
        return "log_hist";
    default:
        return "unknown";
    }
}
