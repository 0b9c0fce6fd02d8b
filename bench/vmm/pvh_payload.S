/* The trivial PVH payload of the start-up benchmark: entered in 32-bit protected mode through
 * XEN_ELFNOTE_PHYS32_ENTRY (by mvvmm and by QEMU alike), it writes 0 to the isa-debug-exit
 * port 0xf4 (its first I/O exit) and halts. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 4, 18 /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_start

    .text
    .code32
    .globl pvh_start
pvh_start:
    xor %eax, %eax
    outb %al, $0xf4
1:  hlt
    jmp 1b
