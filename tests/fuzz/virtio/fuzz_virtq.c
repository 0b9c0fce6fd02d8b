/* fuzz_virtq: the input is a queue setup plus the contents of guest memory; the queue walker
 * must never touch a byte outside the guest regions (ASan watches: each region is its own
 * exactly-sized heap block) and must never loop.
 * Layout: [0] log2 queue size, [1] flags (bit0 event idx), [2..7] desc/avail/used offsets
 * (u16 LE, relative to region 0), [8..] region 0 contents; region 1 is a 256-byte block
 * filled from the tail of the input, placed after a hole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/guest_mem.h"
#include "mv/virtq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REGION0_GPA 0x10000ull
#define REGION1_LEN 256u

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9 || size > 65536 + 8)
        return 0;
    uint16_t qsize = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
    bool event_idx = data[1] & 1;
    size_t len0 = size - 8;
    uint8_t *r0 = malloc(len0);
    uint8_t *r1 = malloc(REGION1_LEN);
    if (r0 == NULL || r1 == NULL)
        abort();
    memcpy(r0, data + 8, len0);
    for (unsigned i = 0; i < REGION1_LEN; i++)
        r1[i] = data[size - 1 - (i % len0)];
    struct mv_guest_mem mem;
    mv_guest_mem_init(&mem);
    uint64_t gpa1 = (REGION0_GPA + len0 + 0x1000) & ~0xfffull;
    if (mv_guest_mem_add(&mem, REGION0_GPA, len0, r0) != 0 ||
        mv_guest_mem_add(&mem, gpa1, REGION1_LEN, r1) != 0)
        abort();

    struct mv_virtq vq;
    static struct mv_virtq_chain chain;
    if (mv_virtq_init(&vq, &mem, qsize, REGION0_GPA + get16(data + 2),
                      REGION0_GPA + get16(data + 4), REGION0_GPA + get16(data + 6),
                      event_idx) == 0) {
        mv_virtq_disable_notify(&vq);
        /* at most one pass over the ring plus one: pop must make progress or stop */
        for (unsigned round = 0; round <= qsize; round++) {
            int rc = mv_virtq_pop(&vq, &chain);
            if (rc <= 0)
                break;
            volatile uint8_t sink = 0;
            for (unsigned s = 0; s < (unsigned)chain.n_out + chain.n_in; s++) {
                uint8_t *p = chain.iov[s].iov_base;
                size_t l = chain.iov[s].iov_len;
                sink ^= p[0];
                sink ^= p[l - 1];
                if (s >= chain.n_out)
                    p[l - 1] = (uint8_t)(p[l - 1] + 1); /* writable: must be ours to write */
            }
            uint8_t tmp[64];
            mv_virtq_chain_copy_out(&chain, 3, tmp, sizeof(tmp));
            mv_virtq_chain_copy_in(&chain, 1, tmp, sizeof(tmp));
            mv_virtq_push(&vq, chain.head, (uint32_t)chain.in_bytes);
            (void)mv_virtq_should_interrupt(&vq);
            (void)sink;
        }
        (void)mv_virtq_enable_notify(&vq);
    }
    free(r0);
    free(r1);
    return 0;
}
