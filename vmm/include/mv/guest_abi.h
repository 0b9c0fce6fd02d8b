/* The contract between mvvmm and the project's bare-metal test guests ("payload" mode).
 * Shared by the VMM and the freestanding guest library, so: fixed-width types only.
 *
 * Entry: a static ELF64 without a PVH note is loaded at its physical addresses (p_paddr) and
 * entered at e_entry in 64-bit long mode: paging on with an identity map of [0, 4 GiB) in 2 MiB
 * pages (covers RAM below the PCI hole, virtio-mmio windows, IOAPIC, LAPIC), CS = 0x08 (64-bit
 * code), DS/ES/SS = 0x18, interrupts off, RDI = vCPU index (0), RSI = guest-physical address of
 * a PVH `struct hvm_start_info` (magic 0x336ec578: command line, RSDP, e820 memory map).
 * The RSDP is also findable by the legacy scan of 0xE0000-0xFFFFF. */
#ifndef MV_GUEST_ABI_H
#define MV_GUEST_ABI_H

#include <stdint.h>

#define MV_GUEST_CODE_SEL 0x08
#define MV_GUEST_DATA_SEL 0x18

/* isa-debug-exit style: a 1/2/4-byte OUT of value V ends the VM, mvvmm exits with status V & 0xff
 * (QEMU's isa-debug-exit would exit with (V << 1) | 1). */
#define MV_GUEST_EXIT_PORT 0xf4

/* Hypercall: a 4-byte OUT of the guest-physical address (below 4 GiB, 8-byte aligned) of a
 * struct mv_hypercall. mvvmm handles it synchronously and writes result/arg back. */
#define MV_GUEST_HC_PORT 0x0540

enum mv_hypercall_op {
    /* out: arg[0] = number of vCPUs, arg[1] = resets so far (boot count, 0 on first boot),
     *      arg[2] = guest RAM bytes, arg[3] = vCPU index of the caller */
    MV_HC_INFO = 1,
    /* Start an AP directly in long mode (same paging/GDT as the BSP):
     * in: arg[0] = vCPU index (1..n-1), arg[1] = RIP, arg[2] = RSP, arg[3] = value put in RSI.
     * RDI = vCPU index. result -EINVAL (22) for a bad index, -EBUSY (16) if already started. */
    MV_HC_START_AP = 2,
    /* out: arg[0] = ACPI PM1a control port, arg[1] = S5 SLP_TYP value, arg[2] = ACPI reset
     *      register port, arg[3] = value to write there for a reset */
    MV_HC_POWER_PORTS = 3,
};

struct mv_hypercall {
    uint32_t op;
    int32_t result; /* 0 or -errno */
    uint64_t arg[4];
};

#endif
