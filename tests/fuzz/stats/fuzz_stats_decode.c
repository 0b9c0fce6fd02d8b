/* Fuzz target: the statistics payload decoder. Beyond "no crash": a rejected chunk leaves the
 * partial report untouched and explains why; an accepted one re-encodes, the re-encoding
 * decodes, and encoding that again gives the same bytes (the codec's fixed point). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/stats_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct capture {
    uint8_t *buf;
    size_t len, cap;
    struct mv_stats_report *decode_into; /* NULL: only capture */
};

static int capture_chunk(void *user, const uint8_t *p, size_t len, uint16_t idx, uint16_t cnt)
{
    struct capture *c = user;
    if (c->len + len > c->cap) {
        size_t ncap = (c->len + len) * 2;
        uint8_t *nb = realloc(c->buf, ncap);
        if (!nb)
            abort();
        c->buf = nb;
        c->cap = ncap;
    }
    memcpy(c->buf + c->len, p, len);
    c->len += len;
    if (c->decode_into && mv_stats_decode(p, len, c->decode_into) != 0)
        abort(); /* the encoder produced something the decoder rejects */
    return 0;
}

static struct mv_stats_report *first, *second, *snap;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!first) {
        first = calloc(1, sizeof *first);
        second = calloc(1, sizeof *second);
        snap = calloc(1, sizeof *snap);
        if (!first || !second || !snap)
            abort();
    }
    mv_stats_report_reset(first);
    mv_stats_report_reset(snap);
    char err[160];
    int rc = mv_stats_decode_verbose(data, size, first, err, sizeof err);
    if (rc != 0) {
        if (rc > 0 || err[0] == '\0' || memcmp(first, snap, sizeof *first) != 0)
            abort();
        return 0;
    }
    mv_stats_report_reset(second);
    struct capture c1 = {.decode_into = second}, c2 = {0};
    int n = mv_stats_encode_chunks(first, 1500, capture_chunk, &c1);
    if (n <= 0 || !mv_stats_report_complete(second))
        abort();
    if (mv_stats_encode_chunks(second, 1500, capture_chunk, &c2) != n || c1.len != c2.len ||
        memcmp(c1.buf, c2.buf, c1.len) != 0)
        abort();
    free(c1.buf);
    free(c2.buf);
    return 0;
}
