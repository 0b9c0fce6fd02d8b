/* Entry points of the guest library: the BSP entry (_start), the AP entry used with
 * MV_HC_START_AP, and 256 interrupt stubs of 16 bytes each (guest_isr_table + 16 * vector). */
    .code64
    .section .text.entry, "ax"
    .globl _start
_start:
    /* RDI = vCPU index, RSI = hvm_start_info gpa (see mv/guest_abi.h) */
    lea guest_boot_stack_top(%rip), %rsp
    xor %ebp, %ebp
    call guest_lib_bsp_entry
1:  cli
    hlt
    jmp 1b

    .globl guest_ap_start
guest_ap_start:
    /* RSP was chosen by guest_start_ap(); RDI = vCPU index */
    xor %ebp, %ebp
    call guest_lib_ap_entry
2:  cli
    hlt
    jmp 2b

    .text
    .balign 16
    .globl guest_isr_table
guest_isr_table:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    pushq $vec
    jmp guest_isr_common
    .set vec, vec + 1
    .endr

guest_isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    lea 120(%rsp), %rdi /* struct guest_irq_frame: vector, error code, CPU frame */
    call guest_lib_dispatch_irq
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq

    .section .bss
    .balign 16
guest_boot_stack:
    .skip 16384
guest_boot_stack_top:
