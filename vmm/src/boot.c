/* Loaders and boot structures (see mv/vmm_boot.h). Images are untrusted input: every offset and
 * size is checked against the image and against guest memory before anything is copied. */
#include "mv/vmm_boot.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18

static int boot_error(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int boot_error(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

/* [off, off + n) inside [0, len), without overflow */
static bool range_ok(uint64_t off, uint64_t n, uint64_t len)
{
    return off <= len && n <= len - off;
}

int mv_boot_ram_ranges(uint64_t mem, struct mv_mem_range out[2])
{
    if (mem <= MV_MEM_HOLE_START) {
        out[0] = (struct mv_mem_range){0, mem};
        return 1;
    }
    out[0] = (struct mv_mem_range){0, MV_MEM_HOLE_START};
    out[1] = (struct mv_mem_range){MV_MEM_HOLE_END, mem - MV_MEM_HOLE_START};
    return 2;
}

int mv_boot_e820(uint64_t mem, struct mv_e820_entry *out, size_t max)
{
    struct mv_e820_entry e[5];
    size_t n = 0;
    struct mv_mem_range r[2];
    int nr = mv_boot_ram_ranges(mem, r);
    uint64_t low_end = r[0].size;
    if (low_end < MV_BOOT_HIGH_START)
        return -EINVAL;
    e[n++] = (struct mv_e820_entry){0, MV_BOOT_EBDA_START, MV_E820_RAM};
    /* EBDA + VGA hole + BIOS area: nothing of ours lives in 0xa0000-0xdffff, but real firmware
     * reserves it and Linux expects that */
    e[n++] = (struct mv_e820_entry){MV_BOOT_EBDA_START, MV_BOOT_HIGH_START - MV_BOOT_EBDA_START,
                                    MV_E820_RESERVED};
    e[n++] = (struct mv_e820_entry){MV_BOOT_HIGH_START, low_end - MV_BOOT_HIGH_START, MV_E820_RAM};
    if (nr == 2)
        e[n++] = (struct mv_e820_entry){r[1].gpa, r[1].size, MV_E820_RAM};
    if (n > max)
        return -ENOSPC;
    memcpy(out, e, n * sizeof(e[0]));
    return (int)n;
}

int mv_boot_detect(const uint8_t *img, size_t len, enum mv_boot_kind *kind, bool prefer_pvh)
{
    if (len >= SELFMAG && !memcmp(img, ELFMAG, SELFMAG)) {
        uint64_t entry;
        *kind = (prefer_pvh && mv_boot_elf_pvh_entry(img, len, &entry) == 0) ? MV_BOOT_PVH
                                                                             : MV_BOOT_PAYLOAD64;
        return 0;
    }
    if (len >= 0x210 && get_le16(img + MV_BP_BOOT_FLAG) == 0xaa55 &&
        !memcmp(img + MV_BP_HEADER, "HdrS", 4)) {
        *kind = MV_BOOT_BZIMAGE;
        return 0;
    }
    return -EINVAL;
}

/* Header checks shared by the loader and the note scan. */
/* Images need not be aligned: headers are copied out, never dereferenced in place. */
static int elf_check_header(const uint8_t *img, size_t len, Elf64_Ehdr *ehdr_out, char *err,
                            size_t errlen)
{
    if (len < sizeof(Elf64_Ehdr))
        return boot_error(err, errlen, -EINVAL, "ELF: truncated header (%zu bytes)", len);
    Elf64_Ehdr ehdr;
    memcpy(&ehdr, img, sizeof(ehdr));
    const Elf64_Ehdr *eh = &ehdr;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG))
        return boot_error(err, errlen, -EINVAL, "ELF: bad magic");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return boot_error(err, errlen, -EINVAL, "ELF: not a little-endian ELF64 image");
    if (eh->e_machine != EM_X86_64)
        return boot_error(err, errlen, -EINVAL, "ELF: machine %u is not x86-64", eh->e_machine);
    if (eh->e_type != ET_EXEC)
        return boot_error(err, errlen, -EINVAL, "ELF: type %u is not an executable (ET_EXEC)",
                          eh->e_type);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 64)
        return boot_error(err, errlen, -EINVAL, "ELF: bad program header table (%u x %u)",
                          eh->e_phnum, eh->e_phentsize);
    if (!range_ok(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), len))
        return boot_error(err, errlen, -EINVAL, "ELF: program headers outside the image");
    *ehdr_out = ehdr;
    return 0;
}

int mv_boot_elf_pvh_entry(const uint8_t *img, size_t len, uint64_t *entry)
{
    Elf64_Ehdr ehdr;
    const Elf64_Ehdr *eh = &ehdr;
    if (elf_check_header(img, len, &ehdr, NULL, 0))
        return -EINVAL;
    Elf64_Phdr ph[64];
    memcpy(ph, img + eh->e_phoff, (size_t)eh->e_phnum * sizeof(Elf64_Phdr));
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_NOTE || !range_ok(ph[i].p_offset, ph[i].p_filesz, len))
            continue;
        const uint8_t *p = img + ph[i].p_offset;
        uint64_t left = ph[i].p_filesz;
        while (left >= 12) {
            uint32_t namesz = get_le32(p), descsz = get_le32(p + 4), type = get_le32(p + 8);
            uint64_t name_pad = ((uint64_t)namesz + 3) & ~3ull;
            uint64_t desc_pad = ((uint64_t)descsz + 3) & ~3ull;
            if (name_pad > left - 12 || desc_pad > left - 12 - name_pad)
                break; /* a note running past its segment ends the scan */
            const uint8_t *name = p + 12, *desc = p + 12 + name_pad;
            if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && !memcmp(name, "Xen", 4) &&
                (descsz == 4 || descsz == 8)) {
                *entry = descsz == 4 ? get_le32(desc) : get_le64(desc);
                return 0;
            }
            p += 12 + name_pad + desc_pad;
            left -= 12 + name_pad + desc_pad;
        }
    }
    return -ENOENT;
}

int mv_boot_load_elf(const uint8_t *img, size_t len, struct mv_guest_mem *mem, bool want_pvh,
                     struct mv_boot_image *out, char *err, size_t errlen)
{
    Elf64_Ehdr ehdr;
    const Elf64_Ehdr *eh = &ehdr;
    int rc = elf_check_header(img, len, &ehdr, err, errlen);
    if (rc)
        return rc;
    Elf64_Phdr ph[64]; /* e_phnum <= 64 was checked */
    memcpy(ph, img + eh->e_phoff, (size_t)eh->e_phnum * sizeof(Elf64_Phdr));
    struct mv_boot_image im = {.kind = want_pvh ? MV_BOOT_PVH : MV_BOOT_PAYLOAD64,
                               .load_start = UINT64_MAX};
    unsigned loads = 0;
    bool entry_in_load = false;
    uint64_t entry = eh->e_entry;
    if (want_pvh && mv_boot_elf_pvh_entry(img, len, &entry))
        return boot_error(err, errlen, -EINVAL,
                          "ELF: no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); not a PVH kernel");
    /* Pass 1: validate everything; guest memory is untouched until all segments are known good */
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        if (!range_ok(ph[i].p_offset, ph[i].p_filesz, len))
            return boot_error(err, errlen, -EINVAL,
                              "ELF: segment %u data (offset 0x%llx, %llu bytes) outside the "
                              "image of %zu bytes",
                              i, (unsigned long long)ph[i].p_offset,
                              (unsigned long long)ph[i].p_filesz, len);
        if (ph[i].p_filesz > ph[i].p_memsz)
            return boot_error(err, errlen, -EINVAL, "ELF: segment %u filesz > memsz", i);
        uint64_t pa = ph[i].p_paddr;
        if (ph[i].p_memsz == 0)
            continue;
        if (pa < MV_BOOT_HIGH_START)
            return boot_error(err, errlen, -EINVAL,
                              "ELF: segment %u at 0x%llx is below 1 MiB (boot structures live "
                              "there)",
                              i, (unsigned long long)pa);
        if (!mv_guest_mem_ptr(mem, pa, ph[i].p_memsz))
            return boot_error(err, errlen, -EINVAL,
                              "ELF: segment %u [0x%llx, +0x%llx) is outside guest RAM", i,
                              (unsigned long long)pa, (unsigned long long)ph[i].p_memsz);
        loads++;
        if (pa < im.load_start)
            im.load_start = pa;
        if (pa + ph[i].p_memsz > im.load_end)
            im.load_end = pa + ph[i].p_memsz;
        /* the PVH entry is physical; e_entry may be virtual, so compare both views */
        uint64_t base = want_pvh ? pa : ph[i].p_vaddr;
        if (entry >= base && entry - base < ph[i].p_memsz)
            entry_in_load = true;
    }
    if (!loads)
        return boot_error(err, errlen, -EINVAL, "ELF: no loadable segment");
    if (!entry_in_load)
        return boot_error(err, errlen, -EINVAL, "ELF: entry 0x%llx is not inside a segment",
                          (unsigned long long)entry);
    if (!want_pvh && (entry < MV_BOOT_HIGH_START || !mv_guest_mem_ptr(mem, entry, 1)))
        return boot_error(err, errlen, -EINVAL,
                          "ELF: payload entry 0x%llx must be a physical address in RAM "
                          "(payloads are linked physical == virtual)",
                          (unsigned long long)entry);
    /* Pass 2: copy */
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
            continue;
        uint8_t *dst = mv_guest_mem_ptr(mem, ph[i].p_paddr, ph[i].p_memsz);
        memcpy(dst, img + ph[i].p_offset, ph[i].p_filesz);
        memset(dst + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
    }
    im.entry = entry;
    *out = im;
    return 0;
}

int mv_boot_load_bzimage(const uint8_t *img, size_t len, struct mv_guest_mem *mem,
                         uint64_t mem_size, struct mv_boot_image *out, char *err, size_t errlen)
{
    if (len < 0x290)
        return boot_error(err, errlen, -EINVAL, "bzImage: truncated setup header (%zu bytes)", len);
    if (get_le16(img + MV_BP_BOOT_FLAG) != 0xaa55 || memcmp(img + MV_BP_HEADER, "HdrS", 4))
        return boot_error(err, errlen, -EINVAL, "bzImage: bad magic (no 0xaa55/HdrS)");
    uint16_t version = get_le16(img + MV_BP_VERSION);
    if (version < 0x020c)
        return boot_error(err, errlen, -EINVAL,
                          "bzImage: boot protocol %u.%02u is too old (need 2.12 for the 64-bit "
                          "entry)",
                          version >> 8, version & 0xff);
    uint16_t xloadflags = get_le16(img + MV_BP_XLOADFLAGS);
    if (!(xloadflags & 1))
        return boot_error(err, errlen, -EINVAL, "bzImage: no 64-bit entry (XLF_KERNEL_64)");
    if (!(img[MV_BP_LOADFLAGS] & 1))
        return boot_error(err, errlen, -EINVAL, "bzImage: not a bzImage (LOADED_HIGH clear)");
    unsigned setup_sects = img[MV_BP_SETUP_SECTS] ? img[MV_BP_SETUP_SECTS] : 4;
    uint64_t kernel_off = ((uint64_t)setup_sects + 1) * 512;
    if (kernel_off >= len)
        return boot_error(err, errlen, -EINVAL,
                          "bzImage: no protected-mode kernel after %u "
                          "setup sectors",
                          setup_sects);
    uint64_t kernel_len = len - kernel_off;
    uint64_t init_size = get_le32(img + MV_BP_INIT_SIZE);
    if (init_size < kernel_len)
        init_size = kernel_len;
    uint64_t pref = get_le64(img + MV_BP_PREF_ADDRESS);
    uint32_t align = get_le32(img + MV_BP_KERNEL_ALIGN);
    bool relocatable = img[MV_BP_RELOCATABLE] != 0;
    uint64_t load = pref;
    if (load < MV_BOOT_HIGH_START || !mv_guest_mem_ptr(mem, load, init_size)) {
        if (!relocatable)
            return boot_error(err, errlen, -EINVAL,
                              "bzImage: not relocatable and 0x%llx + %llu does not fit in RAM",
                              (unsigned long long)pref, (unsigned long long)init_size);
        load = 16ull << 20;
        if (align > 1 && (align & (align - 1)) == 0)
            load = (load + align - 1) & ~((uint64_t)align - 1);
        if (!mv_guest_mem_ptr(mem, load, init_size))
            return boot_error(err, errlen, -ENOSPC,
                              "bzImage: kernel needs %llu bytes at 0x%llx, guest RAM is %llu",
                              (unsigned long long)init_size, (unsigned long long)load,
                              (unsigned long long)mem_size);
    }
    struct mv_boot_image im = {.kind = MV_BOOT_BZIMAGE,
                               .entry = load + 0x200, /* 64-bit entry point */
                               .load_start = load,
                               .load_end = load + init_size,
                               .boot_version = version};
    /* the header runs from 0x1f1 to 0x202 + the jump's displacement byte at 0x201 */
    uint32_t hdr_end = 0x202 + img[0x201];
    if (hdr_end > 0x290)
        hdr_end = 0x290;
    im.setup_header_len = hdr_end - 0x1f1;
    memcpy(im.setup_header, img + 0x1f1, im.setup_header_len);
    im.initrd_addr_max = get_le32(img + MV_BP_INITRD_MAX);
    im.cmdline_size = version >= 0x0206 ? get_le32(img + MV_BP_CMDLINE_SIZE) : 255;
    memcpy(mv_guest_mem_ptr(mem, load, kernel_len), img + kernel_off, kernel_len);
    *out = im;
    return 0;
}

int mv_boot_place_initrd(struct mv_guest_mem *mem, uint64_t mem_size,
                         const struct mv_boot_image *kernel, const uint8_t *initrd, size_t len,
                         uint64_t *gpa, char *err, size_t errlen)
{
    struct mv_mem_range r[2];
    mv_boot_ram_ranges(mem_size, r);
    uint64_t top = r[0].size;
    if (kernel->kind == MV_BOOT_BZIMAGE && kernel->initrd_addr_max &&
        top > (uint64_t)kernel->initrd_addr_max + 1)
        top = (uint64_t)kernel->initrd_addr_max + 1;
    if (len == 0 || len > top)
        return boot_error(err, errlen, -ENOSPC, "initrd: %zu bytes do not fit below 0x%llx", len,
                          (unsigned long long)top);
    uint64_t at = (top - len) & ~0xfffull;
    if (at < kernel->load_end || at < MV_BOOT_HIGH_START)
        return boot_error(err, errlen, -ENOSPC,
                          "initrd: %zu bytes do not fit between the kernel (ends 0x%llx) and "
                          "0x%llx; give the guest more memory",
                          len, (unsigned long long)kernel->load_end, (unsigned long long)top);
    void *dst = mv_guest_mem_ptr(mem, at, len);
    if (!dst)
        return boot_error(err, errlen, -EINVAL, "initrd: 0x%llx is outside guest RAM",
                          (unsigned long long)at);
    memcpy(dst, initrd, len);
    *gpa = at;
    return 0;
}

int mv_boot_write_cmdline(struct mv_guest_mem *mem, const struct mv_boot_image *kernel,
                          const char *cmdline, char *err, size_t errlen)
{
    size_t n = strlen(cmdline);
    size_t max = MV_BOOT_CMDLINE_MAX - 1;
    if (kernel && kernel->kind == MV_BOOT_BZIMAGE && kernel->cmdline_size &&
        kernel->cmdline_size < max)
        max = kernel->cmdline_size;
    if (n > max)
        return boot_error(err, errlen, -E2BIG, "command line of %zu bytes exceeds %zu", n, max);
    char *dst = mv_guest_mem_ptr(mem, MV_BOOT_CMDLINE_GPA, n + 1);
    if (!dst)
        return boot_error(err, errlen, -EINVAL, "command line area outside guest RAM");
    memcpy(dst, cmdline, n + 1);
    return 0;
}

int mv_boot_write_boot_params(struct mv_guest_mem *mem, const struct mv_boot_image *kernel,
                              const struct mv_boot_extra *extra, char *err, size_t errlen)
{
    uint8_t *bp = mv_guest_mem_ptr(mem, MV_BOOT_PARAMS_GPA, 4096);
    if (!bp || kernel->kind != MV_BOOT_BZIMAGE)
        return boot_error(err, errlen, -EINVAL, "boot_params: no bzImage or no room");
    struct mv_e820_entry e820[MV_E820_MAX];
    int n = mv_boot_e820(extra->mem_size, e820, MV_E820_MAX);
    if (n < 0)
        return boot_error(err, errlen, n, "boot_params: cannot build the e820 map");
    memset(bp, 0, 4096);
    memcpy(bp + 0x1f1, kernel->setup_header, kernel->setup_header_len);
    bp[MV_BP_LOADER_TYPE] = 0xff; /* undefined boot loader */
    bp[MV_BP_LOADFLAGS] |= 0x80;  /* CAN_USE_HEAP */
    put_le16(bp + MV_BP_HEAP_END, 0xfe00);
    if (extra->has_cmdline) {
        put_le32(bp + MV_BP_CMD_LINE_PTR, (uint32_t)MV_BOOT_CMDLINE_GPA);
        put_le32(bp + MV_BP_EXT_CMDLINE, (uint32_t)(MV_BOOT_CMDLINE_GPA >> 32));
    }
    if (extra->initrd_size) {
        put_le32(bp + MV_BP_RAMDISK_IMAGE, (uint32_t)extra->initrd_gpa);
        put_le32(bp + MV_BP_RAMDISK_SIZE, (uint32_t)extra->initrd_size);
        put_le32(bp + MV_BP_EXT_RAMDISK, (uint32_t)(extra->initrd_gpa >> 32));
        put_le32(bp + MV_BP_EXT_RD_SIZE, (uint32_t)(extra->initrd_size >> 32));
    }
    if (extra->rsdp_gpa && kernel->boot_version >= 0x020e)
        put_le64(bp + MV_BP_ACPI_RSDP, extra->rsdp_gpa);
    bp[MV_BP_E820_ENTRIES] = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        uint8_t *e = bp + MV_BP_E820_TABLE + 20 * i;
        put_le64(e, e820[i].addr);
        put_le64(e + 8, e820[i].size);
        put_le32(e + 16, e820[i].type);
    }
    return 0;
}

int mv_boot_write_start_info(struct mv_guest_mem *mem, const struct mv_boot_extra *extra, char *err,
                             size_t errlen)
{
    struct mv_e820_entry e820[MV_BOOT_MEMMAP_MAX];
    int n = mv_boot_e820(extra->mem_size, e820, MV_BOOT_MEMMAP_MAX);
    if (n < 0)
        return boot_error(err, errlen, n, "start_info: cannot build the memory map");
    uint64_t modlist_gpa =
        MV_BOOT_MEMMAP_GPA + MV_BOOT_MEMMAP_MAX * sizeof(struct mv_hvm_memmap_entry);
    struct mv_hvm_start_info *si = mv_guest_mem_ptr(mem, MV_BOOT_START_INFO, sizeof(*si));
    struct mv_hvm_memmap_entry *mm =
        mv_guest_mem_ptr(mem, MV_BOOT_MEMMAP_GPA, sizeof(*mm) * MV_BOOT_MEMMAP_MAX);
    struct mv_hvm_modlist_entry *mod = mv_guest_mem_ptr(mem, modlist_gpa, sizeof(*mod));
    if (!si || !mm || !mod || modlist_gpa + sizeof(*mod) > MV_BOOT_CMDLINE_GPA)
        return boot_error(err, errlen, -EINVAL, "start_info: boot area outside guest RAM");
    memset(si, 0, sizeof(*si));
    si->magic = MV_HVM_START_MAGIC;
    si->version = 1;
    si->cmdline_paddr = extra->has_cmdline ? MV_BOOT_CMDLINE_GPA : 0;
    si->rsdp_paddr = extra->rsdp_gpa;
    si->memmap_paddr = MV_BOOT_MEMMAP_GPA;
    si->memmap_entries = (uint32_t)n;
    for (int i = 0; i < n; i++)
        mm[i] = (struct mv_hvm_memmap_entry){e820[i].addr, e820[i].size, e820[i].type, 0};
    if (extra->initrd_size) {
        *mod = (struct mv_hvm_modlist_entry){extra->initrd_gpa, extra->initrd_size, 0, 0};
        si->nr_modules = 1;
        si->modlist_paddr = modlist_gpa;
    }
    return 0;
}
