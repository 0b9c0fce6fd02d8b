/* mvaoe's load generator and null target (bench/aoe): kept apart from the operator commands. */
#ifndef MVAOE_BENCH_H
#define MVAOE_BENCH_H

#include <stdint.h>

#include "mv/mvblk.h"

enum mvaoe_rw { MVAOE_RANDREAD, MVAOE_RANDWRITE, MVAOE_READ, MVAOE_WRITE };

struct mvaoe_bench_opts {
    enum mvaoe_rw rw;
    uint32_t bs;      /* bytes, a multiple of 512 */
    unsigned iodepth; /* requests in flight */
    double runtime_s;
    uint64_t offset, size; /* region in bytes (size 0 = to the end of the device) */
    uint64_t seed;
};

/* Parses randread|randwrite|read|write. */
int mvaoe_parse_rw(const char *s, enum mvaoe_rw *out);

/* Runs the load for runtime_s and prints one line: "bench: rw=... bs=... iodepth=... ios=...
 * iops=... MiBps=... lat_us=... retransmits=...". Returns 0 or 1 (an I/O error). */
int mvaoe_bench_run(struct mvblk *b, struct mvblk_dev *dev, const struct mvaoe_bench_opts *o);

/* A null AoE target on interface ifname: answers Query Config, IDENTIFY, READ (zeros), WRITE and
 * FLUSH for shelf.slot without touching storage, until SIGINT/SIGTERM. Measures what the link
 * and the frame path alone allow. */
int mvaoe_reflect_run(const char *ifname, uint16_t shelf, uint8_t slot, uint64_t sectors);

#endif
