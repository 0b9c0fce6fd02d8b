/* Fuzz the control frame codec: decode must never read out of bounds, and whatever it accepts
 * must re-encode to the same bytes. SACK and HELLO decoders get the payload too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/ctrl_frame.h"
#include "mv/discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes so ASan sees any overread. */
    uint8_t *frame = malloc(size ? size : 1);
    memcpy(frame, data, size);
    struct mv_ctrl_hdr h;
    const uint8_t *pl;
    if (mv_ctrl_decode(frame, size, &h, &pl) == MV_CTRL_OK) {
        uint8_t *again = malloc(size);
        int len = mv_ctrl_encode(&h, pl, h.payload_len, again, size);
        if (len != (int)size)
            abort();
        /* The tag is not the codec's business: compare everything before it. */
        if (memcmp(again, frame, size - MV_CTRL_TAG_LEN) != 0)
            abort();
        free(again);
        struct mv_ctrl_sack blocks[MV_CTRL_MAX_SACK];
        if (h.type == MV_CTRL_ACK &&
            mv_ctrl_sack_decode(pl, h.payload_len, blocks, MV_CTRL_MAX_SACK) < 0)
            abort(); /* the codec promised a valid SACK list */
    }
    struct mv_hello hello;
    if (mv_hello_decode(frame, size, &hello) == 0) {
        if (strlen(hello.hostname) == 0 || strlen(hello.hostname) > MV_HELLO_HOSTNAME_MAX)
            abort();
        uint8_t buf[512];
        if (mv_hello_encode(&hello, buf, sizeof buf) < 0)
            abort(); /* what decodes must encode */
    }
    struct mv_ctrl_sack blocks[MV_CTRL_MAX_SACK];
    mv_ctrl_sack_decode(frame, size, blocks, MV_CTRL_MAX_SACK);
    free(frame);
    return 0;
}
