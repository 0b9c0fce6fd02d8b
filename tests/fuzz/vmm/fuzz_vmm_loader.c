/* Fuzz target for mvvmm's image loaders and the KVM stats parser. The first byte picks the
 * parser (ELF payload, PVH ELF, bzImage, stats block); the rest is the image. Guest memory is
 * a heap buffer so ASan flags any write outside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/guest_mem.h"
#include "mv/vmm_boot.h"
#include "mv/vmm_stats.h"

#define FUZZ_MEM (24u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *ram;
    static struct mv_guest_mem mem;
    if (!ram) {
        ram = calloc(1, FUZZ_MEM);
        if (!ram)
            abort();
        mv_guest_mem_init(&mem);
        mv_guest_mem_add(&mem, 0, FUZZ_MEM, ram);
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 4;
    const uint8_t *img = data + 1;
    size_t len = size - 1;
    char err[256];
    struct mv_boot_image b;
    enum mv_boot_kind kind;
    uint64_t entry;
    mv_boot_detect(img, len, &kind, true);
    switch (mode) {
    case 0:
    case 1:
        mv_boot_elf_pvh_entry(img, len, &entry);
        if (mv_boot_load_elf(img, len, &mem, mode == 1, &b, err, sizeof(err)) == 0) {
            /* a loaded image must lie inside RAM, at or above 1 MiB */
            if (b.load_start < MV_BOOT_HIGH_START || b.load_end > FUZZ_MEM ||
                b.load_end < b.load_start)
                abort();
        }
        break;
    case 2:
        if (mv_boot_load_bzimage(img, len, &mem, FUZZ_MEM, &b, err, sizeof(err)) == 0) {
            if (b.load_end > FUZZ_MEM || b.entry != b.load_start + 0x200)
                abort();
            struct mv_boot_extra extra = {.mem_size = FUZZ_MEM, .has_cmdline = true};
            mv_boot_write_boot_params(&mem, &b, &extra, err, sizeof(err));
        }
        break;
    case 3: {
        struct mv_kvm_stats st;
        if (mv_kvm_stats_parse(img, len, &st) == 0)
            mv_kvm_stats_close(&st);
        break;
    }
    }
    return 0;
}
