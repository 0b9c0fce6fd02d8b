/* Fuzz target: mvvmm's --config vm.json (and the agent-written spec files it reads back). Every
 * document is accepted or refused with a message, and validation of whatever was accepted never
 * crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/vmm_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    if (!json)
        return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    struct mv_vmm_config cfg;
    mv_vmm_config_init(&cfg);
    char err[256] = "";
    if (mv_vmm_config_load_json_string(&cfg, json, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort(); /* a refusal always says why */
    } else {
        err[0] = '\0';
        if (mv_vmm_config_validate(&cfg, err, sizeof(err)) != 0 && err[0] == '\0')
            abort();
    }
    mv_vmm_config_free(&cfg);
    free(json);
    return 0;
}
