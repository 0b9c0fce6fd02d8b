/* Boot loaders and structures: RAM split, e820, ELF payload/PVH loading, bzImage loading,
 * boot_params, hvm_start_info, initrd placement, command line; malformed images rejected with
 * guest memory untouched. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mv/guest_mem.h"
#include "mv/vmm_boot.h"

#define MEM_SIZE (32u << 20)

struct fixture {
    uint8_t *ram;
    struct mv_guest_mem mem;
    char err[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->ram = calloc(1, MEM_SIZE);
    mv_guest_mem_init(&f->mem);
    assert_int_equal(mv_guest_mem_add(&f->mem, 0, MEM_SIZE, f->ram), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->ram);
    free(f);
    return 0;
}

static bool ram_is_zero(const struct fixture *f)
{
    for (size_t i = 0; i < MEM_SIZE; i += 64)
        if (f->ram[i])
            return false;
    return true;
}

/* ---- RAM layout and e820 ---- */

static void test_ram_ranges(void **state)
{
    (void)state;
    struct mv_mem_range r[2];
    assert_int_equal(mv_boot_ram_ranges(256ull << 20, r), 1);
    assert_int_equal(r[0].gpa, 0);
    assert_int_equal(r[0].size, 256ull << 20);
    assert_int_equal(mv_boot_ram_ranges(3ull << 30, r), 1);
    assert_int_equal(mv_boot_ram_ranges(5ull << 30, r), 2);
    assert_int_equal(r[0].size, 3ull << 30);
    assert_int_equal(r[1].gpa, 4ull << 30);
    assert_int_equal(r[1].size, 2ull << 30);
}

static void test_e820_small(void **state)
{
    (void)state;
    struct mv_e820_entry e[8];
    int n = mv_boot_e820(64ull << 20, e, 8);
    assert_int_equal(n, 3);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, 0x9fc00);
    assert_int_equal(e[0].type, MV_E820_RAM);
    assert_int_equal(e[1].addr, 0x9fc00);
    assert_int_equal(e[1].addr + e[1].size, 0x100000);
    assert_int_equal(e[1].type, MV_E820_RESERVED);
    assert_int_equal(e[2].addr, 0x100000);
    assert_int_equal(e[2].addr + e[2].size, 64ull << 20);
    assert_int_equal(e[2].type, MV_E820_RAM);
}

static void test_e820_hole(void **state)
{
    (void)state;
    struct mv_e820_entry e[8];
    int n = mv_boot_e820(6ull << 30, e, 8);
    assert_int_equal(n, 4);
    assert_int_equal(e[2].addr + e[2].size, MV_MEM_HOLE_START);
    assert_int_equal(e[3].addr, MV_MEM_HOLE_END);
    assert_int_equal(e[3].size, 3ull << 30);
    /* no entry overlaps the hole, and the RAM adds up */
    uint64_t ram = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].type == MV_E820_RAM)
            ram += e[i].size;
        assert_false(e[i].addr < MV_MEM_HOLE_END && e[i].addr + e[i].size > MV_MEM_HOLE_START);
    }
    assert_int_equal(ram, (6ull << 30) - (0x100000 - 0x9fc00));
    assert_int_equal(mv_boot_e820(6ull << 30, e, 3), -ENOSPC);
    assert_true(mv_boot_e820(512 << 10, e, 8) < 0); /* below 1 MiB: nothing sensible */
}

/* ---- ELF ---- */

struct elf_image {
    uint8_t buf[8192];
    size_t len;
};

/* A minimal ET_EXEC with one PT_LOAD of code at paddr and optionally a PVH note. */
static void make_elf(struct elf_image *im, uint64_t paddr, uint64_t memsz, bool pvh_note)
{
    memset(im, 0, sizeof(*im));
    Elf64_Ehdr *eh = (Elf64_Ehdr *)im->buf;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_entry = paddr + 0x10;
    eh->e_phoff = sizeof(*eh);
    eh->e_ehsize = sizeof(*eh);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = pvh_note ? 2 : 1;
    Elf64_Phdr *ph = (Elf64_Phdr *)(im->buf + eh->e_phoff);
    ph[0].p_type = PT_LOAD;
    ph[0].p_offset = 0x1000;
    ph[0].p_vaddr = paddr;
    ph[0].p_paddr = paddr;
    ph[0].p_filesz = 0x100;
    ph[0].p_memsz = memsz;
    for (int i = 0; i < 0x100; i++)
        im->buf[0x1000 + i] = (uint8_t)(i + 1);
    if (pvh_note) {
        uint8_t *n = im->buf + 0x800;
        uint32_t hdr[3] = {4, 4, 18}; /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
        memcpy(n, hdr, sizeof(hdr));
        memcpy(n + 12, "Xen", 4);
        uint32_t entry = (uint32_t)paddr + 0x40;
        memcpy(n + 16, &entry, 4);
        ph[1].p_type = PT_NOTE;
        ph[1].p_offset = 0x800;
        ph[1].p_filesz = 20;
    }
    im->len = 0x1100;
}

static void test_elf_payload(void **state)
{
    struct fixture *f = *state;
    struct elf_image im;
    struct mv_boot_image b;
    make_elf(&im, 0x100000, 0x2000, false);
    enum mv_boot_kind kind;
    assert_int_equal(mv_boot_detect(im.buf, im.len, &kind, true), 0);
    assert_int_equal(kind, MV_BOOT_PAYLOAD64); /* no note: long-mode payload */
    memset(f->ram + 0x100100, 0xaa, 0x100);    /* bss must be zeroed by the loader */
    assert_int_equal(mv_boot_load_elf(im.buf, im.len, &f->mem, false, &b, f->err, 256), 0);
    assert_int_equal(b.kind, MV_BOOT_PAYLOAD64);
    assert_int_equal(b.entry, 0x100010);
    assert_int_equal(b.load_start, 0x100000);
    assert_int_equal(b.load_end, 0x102000);
    assert_int_equal(f->ram[0x100000], 1);
    assert_int_equal(f->ram[0x1000ff], 0);
    assert_int_equal(f->ram[0x1000fe], 0xff);
    assert_int_equal(f->ram[0x100100], 0);
    assert_int_equal(f->ram[0x101fff], 0);
}

static void test_elf_pvh(void **state)
{
    struct fixture *f = *state;
    struct elf_image im;
    struct mv_boot_image b;
    uint64_t entry;
    make_elf(&im, 0x1000000, 0x1000, true);
    assert_int_equal(mv_boot_elf_pvh_entry(im.buf, im.len, &entry), 0);
    assert_int_equal(entry, 0x1000040);
    enum mv_boot_kind kind;
    assert_int_equal(mv_boot_detect(im.buf, im.len, &kind, true), 0);
    assert_int_equal(kind, MV_BOOT_PVH);
    assert_int_equal(mv_boot_load_elf(im.buf, im.len, &f->mem, true, &b, f->err, 256), 0);
    assert_int_equal(b.kind, MV_BOOT_PVH);
    assert_int_equal(b.entry, 0x1000040);
    /* without the note, PVH is refused */
    make_elf(&im, 0x1000000, 0x1000, false);
    assert_int_equal(mv_boot_elf_pvh_entry(im.buf, im.len, &entry), -ENOENT);
    assert_int_equal(mv_boot_load_elf(im.buf, im.len, &f->mem, true, &b, f->err, 256), -EINVAL);
    assert_non_null(strstr(f->err, "PVH"));
}

/* Each malformation is rejected with a reason, and guest memory stays untouched. */
static void expect_elf_rejected(struct fixture *f, struct elf_image *im, const char *why)
{
    struct mv_boot_image b;
    f->err[0] = '\0';
    assert_int_not_equal(mv_boot_load_elf(im->buf, im->len, &f->mem, false, &b, f->err, 256), 0);
    if (!strstr(f->err, why))
        fail_msg("error '%s' lacks '%s'", f->err, why);
    assert_true(ram_is_zero(f));
}

static void test_elf_malformed(void **state)
{
    struct fixture *f = *state;
    struct elf_image im;
    Elf64_Ehdr *eh = (Elf64_Ehdr *)im.buf;
    Elf64_Phdr *ph = (Elf64_Phdr *)(im.buf + sizeof(Elf64_Ehdr));

    make_elf(&im, 0x100000, 0x1000, false);
    im.len = 40;
    expect_elf_rejected(f, &im, "truncated");
    make_elf(&im, 0x100000, 0x1000, false);
    im.buf[1] = 'X';
    expect_elf_rejected(f, &im, "magic");
    make_elf(&im, 0x100000, 0x1000, false);
    eh->e_ident[EI_CLASS] = ELFCLASS32;
    expect_elf_rejected(f, &im, "ELF64");
    make_elf(&im, 0x100000, 0x1000, false);
    eh->e_machine = EM_AARCH64;
    expect_elf_rejected(f, &im, "x86-64");
    make_elf(&im, 0x100000, 0x1000, false);
    eh->e_type = ET_DYN;
    expect_elf_rejected(f, &im, "ET_EXEC");
    make_elf(&im, 0x100000, 0x1000, false);
    eh->e_phoff = 0xffffffffffffff00ull; /* would wrap */
    expect_elf_rejected(f, &im, "program headers outside");
    make_elf(&im, 0x100000, 0x1000, false);
    eh->e_phnum = 1000;
    expect_elf_rejected(f, &im, "program header table");
    make_elf(&im, 0x100000, 0x1000, false);
    ph[0].p_filesz = 0x200000; /* data past the end of the image */
    ph[0].p_memsz = 0x200000;
    expect_elf_rejected(f, &im, "outside the image");
    make_elf(&im, 0x100000, 0x1000, false);
    ph[0].p_offset = UINT64_MAX - 8;
    expect_elf_rejected(f, &im, "outside the image");
    make_elf(&im, 0x100000, 0x80, false);
    expect_elf_rejected(f, &im, "filesz > memsz");
    make_elf(&im, MEM_SIZE - 0x800, 0x1000, false); /* runs off the end of RAM */
    expect_elf_rejected(f, &im, "outside guest RAM");
    make_elf(&im, 0x100000, UINT64_MAX - 0x1000, false); /* gpa + size wraps */
    expect_elf_rejected(f, &im, "outside guest RAM");
    make_elf(&im, 0x8000, 0x1000, false); /* over the page tables */
    expect_elf_rejected(f, &im, "below 1 MiB");
    make_elf(&im, 0x100000, 0x1000, false);
    eh->e_entry = 0x500000;
    expect_elf_rejected(f, &im, "entry");
    make_elf(&im, 0x100000, 0x1000, false);
    ph[0].p_type = PT_NOTE;
    expect_elf_rejected(f, &im, "no loadable segment");
}

static void test_elf_note_overrun(void **state)
{
    (void)state;
    struct elf_image im;
    uint64_t entry;
    make_elf(&im, 0x1000000, 0x1000, true);
    uint32_t huge = 0xfffffff0u; /* descsz runs far past the note segment */
    memcpy(im.buf + 0x804, &huge, 4);
    assert_int_equal(mv_boot_elf_pvh_entry(im.buf, im.len, &entry), -ENOENT);
}

/* ---- bzImage ---- */

static uint8_t *make_bzimage(size_t *len, uint16_t version, uint64_t pref, uint32_t init_size)
{
    size_t setup_sects = 4;
    size_t kernel_len = 0x3000;
    *len = (setup_sects + 1) * 512 + kernel_len;
    uint8_t *img = calloc(1, *len);
    img[MV_BP_SETUP_SECTS] = (uint8_t)setup_sects;
    img[MV_BP_BOOT_FLAG] = 0x55;
    img[MV_BP_BOOT_FLAG + 1] = 0xaa;
    img[0x200] = 0xeb;
    img[0x201] = 0x6a; /* jump over the header: header ends at 0x26c */
    memcpy(img + MV_BP_HEADER, "HdrS", 4);
    memcpy(img + MV_BP_VERSION, &version, 2);
    img[MV_BP_LOADFLAGS] = 1;
    uint32_t initrd_max = 0x37ffffff, align = 0x200000, cmdline_size = 2047;
    memcpy(img + MV_BP_INITRD_MAX, &initrd_max, 4);
    memcpy(img + MV_BP_KERNEL_ALIGN, &align, 4);
    img[MV_BP_RELOCATABLE] = 1;
    uint16_t xlf = 1 | 2; /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
    memcpy(img + MV_BP_XLOADFLAGS, &xlf, 2);
    memcpy(img + MV_BP_CMDLINE_SIZE, &cmdline_size, 4);
    memcpy(img + MV_BP_PREF_ADDRESS, &pref, 8);
    memcpy(img + MV_BP_INIT_SIZE, &init_size, 4);
    for (size_t i = 0; i < kernel_len; i++)
        img[(setup_sects + 1) * 512 + i] = (uint8_t)(i * 7 + 3);
    return img;
}

static void test_bzimage_load(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *img = make_bzimage(&len, 0x020f, 0x1000000, 0x400000);
    struct mv_boot_image b;
    enum mv_boot_kind kind;
    assert_int_equal(mv_boot_detect(img, len, &kind, false), 0);
    assert_int_equal(kind, MV_BOOT_BZIMAGE);
    assert_int_equal(mv_boot_load_bzimage(img, len, &f->mem, MEM_SIZE, &b, f->err, 256), 0);
    assert_int_equal(b.entry, 0x1000200);
    assert_int_equal(b.load_start, 0x1000000);
    assert_int_equal(b.load_end, 0x1400000);
    assert_int_equal(b.cmdline_size, 2047);
    assert_memory_equal(f->ram + 0x1000000, img + 5 * 512, 0x3000);

    /* boot_params */
    struct mv_boot_extra extra = {.mem_size = MEM_SIZE,
                                  .has_cmdline = true,
                                  .initrd_gpa = 0x1800000,
                                  .initrd_size = 0x1234,
                                  .rsdp_gpa = 0xe0000};
    assert_int_equal(mv_boot_write_boot_params(&f->mem, &b, &extra, f->err, 256), 0);
    uint8_t *bp = f->ram + MV_BOOT_PARAMS_GPA;
    assert_memory_equal(bp + MV_BP_HEADER, "HdrS", 4);
    assert_int_equal(bp[MV_BP_LOADER_TYPE], 0xff);
    assert_true(bp[MV_BP_LOADFLAGS] & 0x80);
    uint32_t v32;
    uint64_t v64;
    memcpy(&v32, bp + MV_BP_CMD_LINE_PTR, 4);
    assert_int_equal(v32, MV_BOOT_CMDLINE_GPA);
    memcpy(&v32, bp + MV_BP_RAMDISK_IMAGE, 4);
    assert_int_equal(v32, 0x1800000);
    memcpy(&v32, bp + MV_BP_RAMDISK_SIZE, 4);
    assert_int_equal(v32, 0x1234);
    memcpy(&v64, bp + MV_BP_ACPI_RSDP, 8);
    assert_int_equal(v64, 0xe0000);
    assert_int_equal(bp[MV_BP_E820_ENTRIES], 3);
    memcpy(&v64, bp + MV_BP_E820_TABLE + 2 * 20, 8);
    assert_int_equal(v64, 0x100000);
    memcpy(&v64, bp + MV_BP_E820_TABLE + 2 * 20 + 8, 8);
    assert_int_equal(v64, MEM_SIZE - 0x100000);
    memcpy(&v32, bp + MV_BP_E820_TABLE + 2 * 20 + 16, 4);
    assert_int_equal(v32, MV_E820_RAM);
    free(img);
}

static void test_bzimage_relocate(void **state)
{
    struct fixture *f = *state;
    size_t len;
    /* preferred address beyond RAM: relocatable kernels go to 16 MiB */
    uint8_t *img = make_bzimage(&len, 0x020f, 0x80000000ull, 0x400000);
    struct mv_boot_image b;
    assert_int_equal(mv_boot_load_bzimage(img, len, &f->mem, MEM_SIZE, &b, f->err, 256), 0);
    assert_int_equal(b.load_start, 16u << 20);
    /* not relocatable: refused */
    memset(f->ram, 0, MEM_SIZE);
    img[MV_BP_RELOCATABLE] = 0;
    assert_int_not_equal(mv_boot_load_bzimage(img, len, &f->mem, MEM_SIZE, &b, f->err, 256), 0);
    assert_non_null(strstr(f->err, "relocatable"));
    assert_true(ram_is_zero(f));
    free(img);
}

static void expect_bz_rejected(struct fixture *f, uint8_t *img, size_t len, const char *why)
{
    struct mv_boot_image b;
    f->err[0] = '\0';
    memset(f->ram, 0, MEM_SIZE);
    assert_int_not_equal(mv_boot_load_bzimage(img, len, &f->mem, MEM_SIZE, &b, f->err, 256), 0);
    if (!strstr(f->err, why))
        fail_msg("error '%s' lacks '%s'", f->err, why);
    assert_true(ram_is_zero(f));
}

static void test_bzimage_malformed(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *img = make_bzimage(&len, 0x020f, 0x1000000, 0x400000);
    expect_bz_rejected(f, img, 0x200, "truncated");
    img[MV_BP_HEADER] = 'X';
    expect_bz_rejected(f, img, len, "magic");
    free(img);
    img = make_bzimage(&len, 0x0209, 0x1000000, 0x400000);
    expect_bz_rejected(f, img, len, "too old");
    free(img);
    img = make_bzimage(&len, 0x020f, 0x1000000, 0x400000);
    img[MV_BP_XLOADFLAGS] = 0;
    expect_bz_rejected(f, img, len, "64-bit");
    free(img);
    img = make_bzimage(&len, 0x020f, 0x1000000, 0x400000);
    img[MV_BP_SETUP_SECTS] = 200; /* setup runs past the file */
    expect_bz_rejected(f, img, len, "no protected-mode kernel");
    free(img);
    img = make_bzimage(&len, 0x020f, 0x1000000, 0x7fffffff); /* needs more than RAM */
    expect_bz_rejected(f, img, len, "guest RAM");
    free(img);
}

/* ---- start info, initrd, command line ---- */

static void test_start_info(void **state)
{
    struct fixture *f = *state;
    struct mv_boot_extra extra = {.mem_size = MEM_SIZE,
                                  .has_cmdline = true,
                                  .initrd_gpa = 0x1000000,
                                  .initrd_size = 4096,
                                  .rsdp_gpa = 0xe0000};
    assert_int_equal(mv_boot_write_start_info(&f->mem, &extra, f->err, 256), 0);
    struct mv_hvm_start_info *si = (void *)(f->ram + MV_BOOT_START_INFO);
    assert_int_equal(si->magic, MV_HVM_START_MAGIC);
    assert_int_equal(si->version, 1);
    assert_int_equal(si->cmdline_paddr, MV_BOOT_CMDLINE_GPA);
    assert_int_equal(si->rsdp_paddr, 0xe0000);
    assert_int_equal(si->memmap_entries, 3);
    assert_int_equal(si->nr_modules, 1);
    struct mv_hvm_memmap_entry *mm = (void *)(f->ram + si->memmap_paddr);
    assert_int_equal(mm[2].addr, 0x100000);
    assert_int_equal(mm[2].size, MEM_SIZE - 0x100000);
    assert_int_equal(mm[1].type, MV_E820_RESERVED);
    struct mv_hvm_modlist_entry *mod = (void *)(f->ram + si->modlist_paddr);
    assert_int_equal(mod->paddr, 0x1000000);
    assert_int_equal(mod->size, 4096);
    /* start info, memmap and module list must not overlap the command line */
    assert_true(si->modlist_paddr + sizeof(*mod) <= MV_BOOT_CMDLINE_GPA);
}

static void test_initrd_and_cmdline(void **state)
{
    struct fixture *f = *state;
    struct mv_boot_image kernel = {
        .kind = MV_BOOT_PVH, .load_start = 0x1000000, .load_end = 0x1800000};
    uint8_t rd[5000];
    memset(rd, 0x5a, sizeof(rd));
    uint64_t gpa;
    assert_int_equal(
        mv_boot_place_initrd(&f->mem, MEM_SIZE, &kernel, rd, sizeof(rd), &gpa, f->err, 256), 0);
    assert_int_equal(gpa % 4096, 0);
    assert_true(gpa >= kernel.load_end && gpa + sizeof(rd) <= MEM_SIZE);
    assert_memory_equal(f->ram + gpa, rd, sizeof(rd));
    /* an initrd that would overlap the kernel */
    uint8_t *big = calloc(1, MEM_SIZE - 0x1000000);
    assert_int_equal(mv_boot_place_initrd(&f->mem, MEM_SIZE, &kernel, big, MEM_SIZE - 0x1000000,
                                          &gpa, f->err, 256),
                     -ENOSPC);
    free(big);

    assert_int_equal(mv_boot_write_cmdline(&f->mem, &kernel, "console=ttyS0 x=1", f->err, 256), 0);
    assert_string_equal((char *)f->ram + MV_BOOT_CMDLINE_GPA, "console=ttyS0 x=1");
    /* longer than a bzImage kernel accepts */
    struct mv_boot_image bz = {.kind = MV_BOOT_BZIMAGE, .cmdline_size = 16};
    assert_int_equal(mv_boot_write_cmdline(&f->mem, &bz, "0123456789abcdefXYZ", f->err, 256),
                     -E2BIG);
    char *huge = malloc(MV_BOOT_CMDLINE_MAX + 10);
    memset(huge, 'a', MV_BOOT_CMDLINE_MAX + 9);
    huge[MV_BOOT_CMDLINE_MAX + 9] = '\0';
    assert_int_equal(mv_boot_write_cmdline(&f->mem, &kernel, huge, f->err, 256), -E2BIG);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ram_ranges),
        cmocka_unit_test(test_e820_small),
        cmocka_unit_test(test_e820_hole),
        cmocka_unit_test_setup_teardown(test_elf_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf_pvh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf_malformed, setup, teardown),
        cmocka_unit_test(test_elf_note_overrun),
        cmocka_unit_test_setup_teardown(test_bzimage_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bzimage_relocate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bzimage_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initrd_and_cmdline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
