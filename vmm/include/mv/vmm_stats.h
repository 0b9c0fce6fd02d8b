/* KVM binary statistics (KVM_GET_STATS_FD) of a VM or a vCPU: header and descriptors are read
 * once and bounds-checked, values are re-read on demand with pread. */
#ifndef MV_VMM_STATS_H
#define MV_VMM_STATS_H

#include <stddef.h>
#include <stdint.h>

#define MV_KVM_STAT_NAME_MAX 64

struct mv_kvm_stat_desc {
    char name[MV_KVM_STAT_NAME_MAX];
    uint32_t flags; /* KVM_STATS_TYPE_* | KVM_STATS_UNIT_* | KVM_STATS_BASE_* */
    int16_t exponent;
    uint16_t size;   /* number of u64 values (1, or buckets of a histogram) */
    uint32_t offset; /* bytes from the data block start */
};

struct mv_kvm_stats {
    int fd;
    uint32_t nr_descs;
    struct mv_kvm_stat_desc *descs;
    uint64_t data_offset;
    uint32_t data_words; /* u64 values in the data block */
};

/* Parses the header + descriptor block (as read from the start of a stats fd) into st (fd -1).
 * Every offset, size and name length is checked against len. 0 or -EINVAL. */
int mv_kvm_stats_parse(const uint8_t *buf, size_t len, struct mv_kvm_stats *st);
/* KVM_GET_STATS_FD on a VM or vCPU fd, then parse. 0 or -errno. */
int mv_kvm_stats_open(int owner_fd, struct mv_kvm_stats *st);
/* Reads all values into values[st->data_words]. 0 or -errno. */
int mv_kvm_stats_read(const struct mv_kvm_stats *st, uint64_t *values);
void mv_kvm_stats_close(struct mv_kvm_stats *st);
/* "cumulative", "instant", "peak", "linear_hist", "log_hist" */
const char *mv_kvm_stat_type_name(uint32_t flags);

#endif
