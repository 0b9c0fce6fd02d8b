/* CPU state for entering a guest: the identity page tables and GDT mvvmm writes into low guest
 * memory, and the special registers for long mode (payloads, bzImage) or the PVH 32-bit flat
 * entry. */
#ifndef MV_VMM_X86_H
#define MV_VMM_X86_H

#include <linux/kvm.h>
#include <stdint.h>

#include "mv/guest_mem.h"

/* GDT selectors: 0x08 and 0x10 are 64-bit code (0x10 = Linux's __BOOT_CS), 0x18 data
 * (__BOOT_DS). */
#define MV_X86_SEL_CODE64  0x08
#define MV_X86_SEL_BOOT_CS 0x10
#define MV_X86_SEL_DATA    0x18

/* Writes the GDT and the page tables identity-mapping [0, 4 GiB) with 2 MiB pages. */
int mv_x86_write_boot_tables(struct mv_guest_mem *mem);

/* Long mode, paging on (CR3 = the tables above), flat segments with the given selectors. */
void mv_x86_sregs_long_mode(struct kvm_sregs *sregs, uint16_t code_sel, uint16_t data_sel);

/* PVH entry: 32-bit protected mode, paging off, flat 4 GiB segments. */
void mv_x86_sregs_pvh(struct kvm_sregs *sregs);

#endif
