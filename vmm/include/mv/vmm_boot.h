/* Guest memory layout and boot loaders of mvvmm: RAM split around the 32-bit MMIO hole, the e820
 * map, ELF loading (test payloads entered in long mode, PVH vmlinux entered through
 * XEN_ELFNOTE_PHYS32_ENTRY), bzImage loading (64-bit boot protocol), boot_params and PVH
 * hvm_start_info. Pure code over struct mv_guest_mem: no KVM, unit-tested with fake memory.
 * Every image field is bounds-checked; on error nothing is written to guest memory. */
#ifndef MV_VMM_BOOT_H
#define MV_VMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/guest_mem.h"

/* RAM above 3 GiB moves to 4 GiB: [3 GiB, 4 GiB) holds virtio-mmio windows, IOAPIC, LAPIC. */
#define MV_MEM_HOLE_START 0xc0000000ull
#define MV_MEM_HOLE_END   0x100000000ull

/* Fixed low-memory layout (guest physical). */
#define MV_BOOT_GDT_GPA     0x1000ull /* null, 0x08 code64, 0x10 code64, 0x18 data */
#define MV_BOOT_START_INFO  0x2000ull /* hvm_start_info (PVH and payload) */
#define MV_BOOT_MEMMAP_GPA  0x2100ull /* hvm_memmap_table_entry[] */
#define MV_BOOT_MEMMAP_MAX  64
#define MV_BOOT_CMDLINE_GPA 0x3000ull
#define MV_BOOT_CMDLINE_MAX 4096      /* bytes incl. NUL */
#define MV_BOOT_PARAMS_GPA  0x7000ull /* Linux zero page (bzImage) */
#define MV_BOOT_PML4_GPA    0x9000ull
#define MV_BOOT_PDPT_GPA    0xa000ull
#define MV_BOOT_PD_GPA      0xb000ull /* 4 pages: identity map [0, 4 GiB) in 2 MiB pages */
#define MV_BOOT_EBDA_START  0x9fc00ull
#define MV_BOOT_ACPI_GPA    0xe0000ull /* ACPI tables (RSDP first: the legacy scan finds it) */
#define MV_BOOT_ACPI_MAX    0x20000ull
#define MV_BOOT_HIGH_START  0x100000ull /* kernels and payloads load at or above 1 MiB */
#define MV_BOOT_MIN_MEM     (4ull << 20)

#define MV_E820_RAM      1
#define MV_E820_RESERVED 2
#define MV_E820_ACPI     3
#define MV_E820_MAX      128

struct mv_e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

/* RAM ranges for a guest of mem bytes: [0, min(mem, hole)) and [4 GiB, ...). Returns 1 or 2. */
struct mv_mem_range {
    uint64_t gpa;
    uint64_t size;
};
int mv_boot_ram_ranges(uint64_t mem, struct mv_mem_range out[2]);

/* The e820 map for mem bytes of RAM: low RAM up to the EBDA, reserved EBDA + BIOS area
 * (ACPI tables live there), RAM from 1 MiB, RAM above 4 GiB. Returns the entry count or
 * -ENOSPC. */
int mv_boot_e820(uint64_t mem, struct mv_e820_entry *out, size_t max);

enum mv_boot_kind {
    MV_BOOT_PAYLOAD64 = 1, /* ELF64 test payload: entered in long mode (mv/guest_abi.h) */
    MV_BOOT_PVH,           /* ELF with XEN_ELFNOTE_PHYS32_ENTRY: 32-bit flat, EBX = start info */
    MV_BOOT_BZIMAGE,       /* Linux 64-bit boot protocol: long mode, RSI = boot_params */
};

struct mv_boot_image {
    enum mv_boot_kind kind;
    uint64_t entry;      /* guest physical entry point */
    uint64_t load_start; /* lowest guest physical byte written */
    uint64_t load_end;   /* one past the highest (incl. bss / init_size) */
    /* bzImage only: the setup header copy for boot_params */
    uint8_t setup_header[0x290 - 0x1f1];
    uint32_t setup_header_len;
    uint16_t boot_version;
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;
};

/* Detects the format from the first bytes: "ELF" or a bzImage setup header. */
int mv_boot_detect(const uint8_t *img, size_t len, enum mv_boot_kind *kind, bool prefer_pvh);

/* Validates an ELF64 x86-64 executable and copies its PT_LOAD segments to their physical
 * addresses (zero-filling bss). want_pvh: require a PVH entry note and use it; otherwise use
 * e_entry in long mode. Segments must lie in guest RAM at or above 1 MiB. */
int mv_boot_load_elf(const uint8_t *img, size_t len, struct mv_guest_mem *mem, bool want_pvh,
                     struct mv_boot_image *out, char *err, size_t errlen);

/* Finds the PVH entry (XEN_ELFNOTE_PHYS32_ENTRY) in an ELF's notes: 0 and *entry, -ENOENT. */
int mv_boot_elf_pvh_entry(const uint8_t *img, size_t len, uint64_t *entry);

/* Validates a bzImage (boot protocol >= 2.12, 64-bit entry) and copies its protected-mode
 * kernel to its preferred address (or 16 MiB when relocatable and that does not fit). */
int mv_boot_load_bzimage(const uint8_t *img, size_t len, struct mv_guest_mem *mem,
                         uint64_t mem_size, struct mv_boot_image *out, char *err, size_t errlen);

/* Places the initrd at the top of low RAM (below initrd_addr_max for a bzImage), page aligned,
 * above the kernel. Returns 0 with *gpa, or -ENOSPC/-EINVAL with err. */
int mv_boot_place_initrd(struct mv_guest_mem *mem, uint64_t mem_size,
                         const struct mv_boot_image *kernel, const uint8_t *initrd, size_t len,
                         uint64_t *gpa, char *err, size_t errlen);

/* Writes the command line at MV_BOOT_CMDLINE_GPA. -E2BIG if longer than the kernel accepts. */
int mv_boot_write_cmdline(struct mv_guest_mem *mem, const struct mv_boot_image *kernel,
                          const char *cmdline, char *err, size_t errlen);

struct mv_boot_extra {
    uint64_t mem_size;
    uint64_t initrd_gpa, initrd_size; /* size 0: none */
    uint64_t rsdp_gpa;                /* 0: none */
    bool has_cmdline;
};

/* Linux zero page at MV_BOOT_PARAMS_GPA: setup header, loader type, command line, initrd,
 * e820 table, RSDP address. */
int mv_boot_write_boot_params(struct mv_guest_mem *mem, const struct mv_boot_image *kernel,
                              const struct mv_boot_extra *extra, char *err, size_t errlen);

/* PVH hvm_start_info (version 1) at MV_BOOT_START_INFO with the e820 map as its memmap, the
 * command line, the initrd as module 0 and the RSDP. */
int mv_boot_write_start_info(struct mv_guest_mem *mem, const struct mv_boot_extra *extra, char *err,
                             size_t errlen);

/* hvm_start_info layout (Xen's public arch-x86/hvm/start_info.h) */
#define MV_HVM_START_MAGIC 0x336ec578u
struct mv_hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};
struct mv_hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};
struct mv_hvm_memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

/* boot_params offsets used by the loader and its tests */
#define MV_BP_ACPI_RSDP     0x070
#define MV_BP_EXT_RAMDISK   0x0c0
#define MV_BP_EXT_RD_SIZE   0x0c4
#define MV_BP_EXT_CMDLINE   0x0c8
#define MV_BP_E820_ENTRIES  0x1e8
#define MV_BP_SETUP_SECTS   0x1f1
#define MV_BP_BOOT_FLAG     0x1fe
#define MV_BP_HEADER        0x202
#define MV_BP_VERSION       0x206
#define MV_BP_LOADER_TYPE   0x210
#define MV_BP_LOADFLAGS     0x211
#define MV_BP_RAMDISK_IMAGE 0x218
#define MV_BP_RAMDISK_SIZE  0x21c
#define MV_BP_HEAP_END      0x224
#define MV_BP_CMD_LINE_PTR  0x228
#define MV_BP_INITRD_MAX    0x22c
#define MV_BP_KERNEL_ALIGN  0x230
#define MV_BP_RELOCATABLE   0x234
#define MV_BP_XLOADFLAGS    0x236
#define MV_BP_CMDLINE_SIZE  0x238
#define MV_BP_PREF_ADDRESS  0x258
#define MV_BP_INIT_SIZE     0x260
#define MV_BP_E820_TABLE    0x2d0

#endif
