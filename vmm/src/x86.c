/* Page tables, GDT and segment state for the guest's first instruction (see mv/vmm_x86.h). */
#include "mv/vmm_x86.h"

#include <errno.h>
#include <string.h>

#include "mv/vmm_boot.h"

#define PTE_P    (1ull << 0)
#define PTE_RW   (1ull << 1)
#define PTE_PS   (1ull << 7)
#define CR0_PE   (1ull << 0)
#define CR0_MP   (1ull << 1)
#define CR0_ET   (1ull << 4)
#define CR0_NE   (1ull << 5)
#define CR0_WP   (1ull << 16)
#define CR0_PG   (1ull << 31)
#define CR4_PAE  (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

/* 64-bit GDT descriptor from its parts */
static uint64_t gdt_entry(uint32_t base, uint32_t limit, uint16_t flags)
{
    return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
           ((uint64_t)(limit & 0x000f0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
           (limit & 0x0000ffff);
}

int mv_x86_write_boot_tables(struct mv_guest_mem *mem)
{
    uint64_t *gdt = mv_guest_mem_ptr(mem, MV_BOOT_GDT_GPA, 4 * 8);
    uint64_t *pml4 = mv_guest_mem_ptr(mem, MV_BOOT_PML4_GPA, 4096);
    uint64_t *pdpt = mv_guest_mem_ptr(mem, MV_BOOT_PDPT_GPA, 4096);
    uint64_t *pd = mv_guest_mem_ptr(mem, MV_BOOT_PD_GPA, 4 * 4096);
    if (!gdt || !pml4 || !pdpt || !pd)
        return -EINVAL;
    gdt[0] = 0;
    gdt[1] = gdt_entry(0, 0xfffff, 0xa09b); /* code, L=1, G=1, P, DPL0, accessed */
    gdt[2] = gdt_entry(0, 0xfffff, 0xa09b);
    gdt[3] = gdt_entry(0, 0xfffff, 0xc093); /* data, D/B=1, G=1 */
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = MV_BOOT_PDPT_GPA | PTE_P | PTE_RW;
    for (unsigned i = 0; i < 4; i++)
        pdpt[i] = (MV_BOOT_PD_GPA + i * 4096) | PTE_P | PTE_RW;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
    return 0;
}

static struct kvm_segment flat_segment(uint16_t sel, uint8_t type, bool code64, bool db)
{
    return (struct kvm_segment){.base = 0,
                                .limit = 0xffffffff,
                                .selector = sel,
                                .type = type,
                                .present = 1,
                                .dpl = 0,
                                .db = db,
                                .s = 1,
                                .l = code64,
                                .g = 1};
}

static void set_system_segments(struct kvm_sregs *s)
{
    s->tr = (struct kvm_segment){
        .base = 0, .limit = 0x67, .selector = 0, .type = 11, .present = 1, .s = 0};
    s->ldt = (struct kvm_segment){
        .base = 0, .limit = 0xffff, .selector = 0, .type = 2, .present = 1, .s = 0};
}

void mv_x86_sregs_long_mode(struct kvm_sregs *s, uint16_t code_sel, uint16_t data_sel)
{
    s->cs = flat_segment(code_sel, 11, true, false);
    struct kvm_segment data = flat_segment(data_sel, 3, false, true);
    s->ds = s->es = s->fs = s->gs = s->ss = data;
    set_system_segments(s);
    s->gdt.base = MV_BOOT_GDT_GPA;
    s->gdt.limit = 4 * 8 - 1;
    s->idt.base = 0;
    s->idt.limit = 0;
    s->cr3 = MV_BOOT_PML4_GPA;
    s->cr4 = CR4_PAE;
    s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s->efer = EFER_LME | EFER_LMA;
}

void mv_x86_sregs_pvh(struct kvm_sregs *s)
{
    s->cs = flat_segment(MV_X86_SEL_CODE64, 11, false, true);
    struct kvm_segment data = flat_segment(MV_X86_SEL_DATA, 3, false, true);
    s->ds = s->es = s->fs = s->gs = s->ss = data;
    set_system_segments(s);
    s->gdt.base = MV_BOOT_GDT_GPA;
    s->gdt.limit = 4 * 8 - 1;
    s->cr0 = CR0_PE | CR0_ET;
    s->cr4 = 0;
    s->cr3 = 0;
    s->efer = 0;
}
