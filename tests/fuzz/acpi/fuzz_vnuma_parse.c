/* Fuzz target: mv_vnuma_parse() on arbitrary text. Byte 0 picks the vCPU count (0 = from the
 * spec), byte 1 the memory size in 64 MiB units (0 = from the spec), the rest is the spec.
 * Whatever is accepted must validate, lay out, and give ACPI tables with correct checksums;
 * whatever is rejected must come with a "vnuma: " message and leave the output untouched. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/acpi.h"
#include "mv/vnuma.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mv_vnuma v, before;
    static struct mv_acpi_config cfg;
    static uint8_t buf[MV_ACPI_MAX_SIZE];
    static char spec[MV_VNUMA_SPEC_MAX + 64];
    if (size < 2 || size - 2 >= sizeof(spec))
        return 0;
    uint32_t vcpus = data[0];
    uint64_t mem = (uint64_t)data[1] << 26;
    memcpy(spec, data + 2, size - 2);
    spec[size - 2] = '\0';

    memset(&v, 0x5c, sizeof(v));
    before = v;
    char err[256] = "";
    if (mv_vnuma_parse(spec, mem, vcpus, &v, err, sizeof(err)) != 0) {
        if (strncmp(err, "vnuma: ", 7) != 0 || memcmp(&v, &before, sizeof(v)) != 0)
            abort();
        return 0;
    }
    if (mv_vnuma_validate(&v, err, sizeof(err)) != 0)
        abort();
    if ((vcpus && v.nr_vcpus != vcpus) || (mem && mv_vnuma_total_mem(&v) != mem))
        abort();
    char line[4096];
    if (mv_vnuma_format(&v, line, sizeof(line)) < 0)
        abort();

    mv_acpi_config_init(&cfg, v.nr_vcpus);
    if (mv_acpi_config_set_vnuma(&cfg, &v, err, sizeof(err)) != 0)
        abort();
    struct mv_acpi_result res;
    if (mv_acpi_build(&cfg, buf, sizeof(buf), 0xe0000, &res) != 0)
        abort();
    for (uint32_t i = 0; i < res.nr_tables; i++) {
        const struct mv_acpi_table_info *t = &res.tables[i];
        if (strcmp(t->signature, "FACS") && mv_acpi_checksum(buf + t->offset, t->length))
            abort();
    }
    uint64_t per_node = 0;
    for (uint32_t i = 0; i < cfg.nr_mem_ranges; i++) {
        const struct mv_vnuma_range *r = &cfg.mem[i];
        if (r->gpa < MV_ACPI_MEM_HOLE_END && r->gpa + r->size > MV_ACPI_MEM_HOLE_START)
            abort(); /* nothing in the MMIO hole */
        per_node += r->size;
    }
    if (per_node != mv_vnuma_total_mem(&v))
        abort();
    return 0;
}
