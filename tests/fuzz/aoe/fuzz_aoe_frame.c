/* Fuzz target: any byte string through the AoE parser; whatever parses must rebuild into a frame
 * that parses to the same message (the codec is its own oracle). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/aoe_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aoe_msg m, m2;
    struct aoe_parse_error why;
    if (aoe_frame_parse(data, size, &m, &why) != 0) {
        if (!why.reason)
            abort();
        return 0;
    }
    static uint8_t out[MV_ETH_MAX_FRAME + 64];
    size_t n = aoe_frame_build(&m, out, sizeof out);
    if (n == 0)
        return 0; /* vendor or oversized payloads beyond a jumbo frame */
    if (aoe_frame_parse(out, n, &m2, &why) != 0)
        abort();
    if (m2.cmd != m.cmd || m2.tag != m.tag || m2.major != m.major || m2.minor != m.minor ||
        m2.flags != m.flags)
        abort();
    if (m.cmd == AOE_CMD_ATA && !(m.flags & AOE_FLAG_ERROR) && m2.u.ata.lba != m.u.ata.lba)
        abort();
    return 0;
}
