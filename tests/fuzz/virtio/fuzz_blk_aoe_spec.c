/* Fuzz target: mvvmm's "aoe:SHELF.SLOT,..." disk spec parser (a command-line and config-file
 * input). Every input is parsed or refused with a message; nothing else may happen. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/virtio_blk_aoe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char spec[512];
    if (size >= sizeof(spec))
        size = sizeof(spec) - 1;
    memcpy(spec, data, size);
    spec[size] = '\0';
    struct mv_blk_aoe_spec out;
    char err[256] = "";
    if (mv_blk_aoe_spec_parse(spec, &out, err, sizeof(err)) != 0 && err[0] == '\0')
        abort(); /* a refusal always says why */
    return 0;
}
