/* The VM: KVM objects, guest memory, boot, vCPU threads, the main loop, reset (see mv/vmm.h). */
#include "vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/mempolicy.h>
#include <sys/syscall.h>

#include "mv/daemon.h"
#include "mv/guest_abi.h"
#include "mv/log.h"
#include "mv/util.h"
#include "mv/vmm_x86.h"

const char *const mv_exit_counter_names[MV_EXIT_NR] = {
    [MV_EXIT_TOTAL] = "total",
    [MV_EXIT_IO] = "io",
    [MV_EXIT_MMIO] = "mmio",
    [MV_EXIT_HLT] = "hlt",
    [MV_EXIT_SHUTDOWN] = "shutdown",
    [MV_EXIT_SYSTEM_EVENT] = "system_event",
    [MV_EXIT_INTERNAL_ERROR] = "internal_error",
    [MV_EXIT_FAIL_ENTRY] = "fail_entry",
    [MV_EXIT_INTR] = "intr",
    [MV_EXIT_OTHER] = "other",
    [MV_EXIT_IO_UNHANDLED] = "io_unhandled",
    [MV_EXIT_MMIO_UNHANDLED] = "mmio_unhandled",
    [MV_EXIT_HYPERCALL] = "hypercall",
    [MV_EXIT_EOI] = "ioapic_eoi",
};

/* GSIs for virtio-mmio devices: ISA lines nobody else uses (edge, active high by default),
 * then the IOAPIC's upper pins. 4 = COM1, 8 = RTC, 9 = SCI. */
static const uint32_t virtio_gsis[] = {5,  6,  7,  10, 11, 12, 13, 14, 15,
                                       16, 17, 18, 19, 20, 21, 22, 23};

static void kick_signal_handler(int sig)
{
    (void)sig; /* only there to make KVM_RUN return EINTR */
}

/* ---------- memory ---------- */

static int ram_alloc(struct mv_vm *vm)
{
    const struct mv_vmm_config *cfg = vm->cfg;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    int fd = -1;
    if (cfg->memfd) {
        fd = memfd_create("mvvmm-ram", MFD_CLOEXEC | (cfg->hugepages ? MFD_HUGETLB : 0));
        if (fd < 0 || ftruncate(fd, (off_t)vm->ram_size) < 0) {
            mv_err("memory: memfd of %llu bytes: %s", (unsigned long long)vm->ram_size,
                   strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        flags = MAP_SHARED | MAP_NORESERVE;
    } else if (cfg->hugepages) {
        flags |= MAP_HUGETLB;
    }
    void *p = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) {
        mv_err("memory: cannot map %llu bytes of guest RAM%s: %s", (unsigned long long)vm->ram_size,
               cfg->hugepages ? " (huge pages reserved? see /proc/sys/vm/nr_hugepages)" : "",
               strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* guest RAM never goes into a core dump */
    madvise(p, vm->ram_size, MADV_DONTDUMP);
    vm->ram = p;
    vm->ram_memfd = fd;
    vm->nr_ranges = mv_boot_ram_ranges(vm->ram_size, vm->ranges);
    mv_guest_mem_init(&vm->mem);
    uint64_t off = 0;
    for (int i = 0; i < vm->nr_ranges; i++) {
        if (mv_guest_mem_add(&vm->mem, vm->ranges[i].gpa, vm->ranges[i].size, vm->ram + off)) {
            mv_err("memory: cannot describe range %d", i);
            return -1;
        }
        off += vm->ranges[i].size;
    }
    return 0;
}

static void *gpa_host(struct mv_vm *vm, uint64_t gpa, uint64_t len)
{
    return mv_guest_mem_ptr(&vm->mem, gpa, len);
}

/* mbind(2) is called directly: libnuma's wrapper is this same syscall, and not mapping the
 * library keeps ~50 KiB off every VMM's resident memory (scripts/bench vmm). */
static bool host_node_exists(int node)
{
    char path[64];
    snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
    return node >= 0 && node < 1023 && access(path, F_OK) == 0;
}

#ifdef MV_HAVE_ACPI
/* Binds each vnode's guest memory to its host node before anything touches it. */
static int ram_bind_numa(struct mv_vm *vm)
{
    if (!vm->have_vnuma)
        return 0;
    struct mv_vnuma_range r[MV_VNUMA_MAX_NODES + 1];
    int n = mv_vnuma_layout(&vm->vnuma, MV_MEM_HOLE_START, MV_MEM_HOLE_END, r, MV_ARRAY_SIZE(r));
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        int pnode = vm->vnuma.pnode[r[i].node];
        if (pnode < 0)
            continue;
        void *host = gpa_host(vm, r[i].gpa, r[i].size);
        if (!host || !host_node_exists(pnode)) {
            mv_err("numa: vnode %u -> host node %d: no such node", r[i].node, pnode);
            return -1;
        }
        unsigned long mask[16] = {0}; /* nodes 0..1022: the kernel reads maxnode - 1 bits */
        mask[pnode / (8 * sizeof(long))] |= 1ul << (pnode % (8 * sizeof(long)));
        if (syscall(SYS_mbind, host, r[i].size, MPOL_BIND, mask, sizeof(mask) * 8, 0) < 0) {
            mv_err("numa: mbind of vnode %u to node %d: %s", r[i].node, pnode, strerror(errno));
            return -1;
        }
        mv_debug("numa: vnode %u [0x%llx, +0x%llx) bound to host node %d", r[i].node,
                 (unsigned long long)r[i].gpa, (unsigned long long)r[i].size, pnode);
    }
    return 0;
}

/* Online host NUMA nodes, from sysfs's one-line list ("0-1,3"): cheaper than libnuma's
 * directory scan, which costs milliseconds of start-up here. */
static unsigned host_numa_nodes(void)
{
    char buf[256];
    if (mv_read_file("/sys/devices/system/node/online", buf, sizeof(buf)) <= 0)
        return 1;
    unsigned count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",\n", &save); tok; tok = strtok_r(NULL, ",\n", &save)) {
        unsigned lo, hi;
        int n = sscanf(tok, "%u-%u", &lo, &hi);
        if (n == 1)
            count++;
        else if (n == 2 && hi >= lo)
            count += hi - lo + 1;
    }
    return count ? count : 1;
}

static int vnuma_setup(struct mv_vm *vm)
{
    const struct mv_vmm_config *cfg = vm->cfg;
    char err[256];
    if (cfg->vnuma) {
        if (mv_vnuma_parse(cfg->vnuma, cfg->mem_set ? cfg->mem_size : 0, cfg->nr_vcpus, &vm->vnuma,
                           err, sizeof(err))) {
            mv_err("%s", err);
            return -1;
        }
        vm->have_vnuma = true;
        vm->ram_size = mv_vnuma_total_mem(&vm->vnuma);
        return 0;
    }
    unsigned host_nodes = host_numa_nodes();
    /* MicroVisor's default: split guest memory across the host's nodes */
    if (host_nodes > 1 && cfg->nr_vcpus >= host_nodes &&
        cfg->mem_size / host_nodes >= MV_VNUMA_MEM_ALIGN) {
        if (mv_vnuma_default(&vm->vnuma, cfg->mem_size - cfg->mem_size % MV_VNUMA_MEM_ALIGN,
                             cfg->nr_vcpus, host_nodes, NULL, host_nodes, err, sizeof(err))) {
            mv_warn("%s: running without vNUMA", err);
            return 0;
        }
        vm->have_vnuma = true;
        vm->ram_size = mv_vnuma_total_mem(&vm->vnuma);
    }
    return 0;
}
#endif

/* ---------- KVM objects ---------- */

static int kvm_set_gsi_routing(struct mv_vm *vm)
{
    /* As on a PC with the MADT's override IRQ0 -> GSI 2: GSI 0 (where KVM's PIT signals) goes
     * to IOAPIC pin 2; ISA IRQs also reach the PICs; GSI 2 itself is unused. */
    struct {
        struct kvm_irq_routing r;
        struct kvm_irq_routing_entry e[40];
    } rt;
    memset(&rt, 0, sizeof(rt));
    unsigned n = 0;
    for (unsigned irq = 0; irq < 16; irq++) {
        if (irq == 2)
            continue;
        rt.e[n].gsi = irq;
        rt.e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
        rt.e[n].u.irqchip.irqchip = irq < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
        rt.e[n].u.irqchip.pin = irq % 8;
        n++;
    }
    for (unsigned gsi = 0; gsi < 24; gsi++) {
        if (gsi == 2)
            continue;
        rt.e[n].gsi = gsi;
        rt.e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
        rt.e[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        rt.e[n].u.irqchip.pin = gsi == 0 ? 2 : gsi;
        n++;
    }
    rt.r.nr = n;
    if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, &rt.r) < 0) {
        mv_err("kvm: KVM_SET_GSI_ROUTING: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int vcpu_create(struct mv_vm *vm, struct mv_vcpu *vcpu, unsigned index)
{
    memset(vcpu, 0, sizeof(*vcpu));
    vcpu->vm = vm;
    vcpu->index = index;
    vcpu->stats.fd = -1;
    vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (vcpu->fd < 0) {
        mv_err("kvm: KVM_CREATE_VCPU %u: %s", index, strerror(errno));
        return -1;
    }
    int sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz < (int)sizeof(struct kvm_run)) {
        mv_err("kvm: KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
        return -1;
    }
    vcpu->run_size = (size_t)sz;
    vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        vcpu->run = NULL;
        mv_err("kvm: mmap of vCPU %u run area: %s", index, strerror(errno));
        return -1;
    }
    /* CPUID: what KVM supports, with this vCPU's APIC id */
    struct kvm_cpuid2 *c = vm->cpuid;
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffff) | (index << 24);
        else if (e->function == 0xb || e->function == 0x1f)
            e->edx = index;
    }
    if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0) {
        mv_err("kvm: KVM_SET_CPUID2 on vCPU %u: %s", index, strerror(errno));
        return -1;
    }
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
        mv_warn("kvm: KVM_SET_FPU on vCPU %u: %s", index, strerror(errno));
    if (mv_kvm_stats_open(vcpu->fd, &vcpu->stats))
        vcpu->stats.fd = -1;
    return 0;
}

static void vcpu_destroy(struct mv_vcpu *vcpu)
{
    mv_kvm_stats_close(&vcpu->stats);
    if (vcpu->run)
        munmap(vcpu->run, vcpu->run_size);
    if (vcpu->fd >= 0)
        close(vcpu->fd);
    vcpu->run = NULL;
    vcpu->fd = -1;
}

#ifdef MV_HAVE_VIRTIO
static int virtio_transports_create(struct mv_vm *vm)
{
    unsigned i = 0;
    for (unsigned d = 0; d < vm->cfg->nr_disks; d++, i++) {
        struct mv_virtio_mmio_params p = {.device = mv_virtio_blk_device(vm->blk[d]),
                                          .mem = &vm->mem,
                                          .base = vm->virtio_base[i],
                                          .gsi = vm->virtio_gsi[i],
                                          .vm_fd = vm->vm_fd};
        vm->virtio[i] = mv_virtio_mmio_create(&p);
        if (!vm->virtio[i])
            return -1;
    }
    for (unsigned n = 0; n < vm->cfg->nr_nets; n++, i++) {
        struct mv_virtio_mmio_params p = {.device = mv_virtio_net_device(vm->net[n]),
                                          .mem = &vm->mem,
                                          .base = vm->virtio_base[i],
                                          .gsi = vm->virtio_gsi[i],
                                          .vm_fd = vm->vm_fd};
        vm->virtio[i] = mv_virtio_mmio_create(&p);
        if (!vm->virtio[i])
            return -1;
    }
    return 0;
}

static void virtio_transports_destroy(struct mv_vm *vm)
{
    for (unsigned i = 0; i < vm->nr_virtio; i++) {
        if (vm->virtio[i])
            mv_virtio_mmio_destroy(vm->virtio[i]);
        vm->virtio[i] = NULL;
    }
}
#endif

/* Everything tied to one KVM VM fd; rebuilt on a reset. */
static int kvm_setup(struct mv_vm *vm)
{
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        mv_err("kvm: KVM_CREATE_VM: %s", strerror(errno));
        return -1;
    }
    /* Intel needs a TSS area for real mode; harmless elsewhere, so failures are not fatal */
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
        mv_debug("kvm: KVM_SET_TSS_ADDR: %s", strerror(errno));
    uint64_t host_off = 0;
    for (int i = 0; i < vm->nr_ranges; i++) {
        struct kvm_userspace_memory_region r = {.slot = (uint32_t)i,
                                                .guest_phys_addr = vm->ranges[i].gpa,
                                                .memory_size = vm->ranges[i].size,
                                                .userspace_addr =
                                                    (uint64_t)(uintptr_t)(vm->ram + host_off)};
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
            mv_err("kvm: KVM_SET_USER_MEMORY_REGION %d: %s", i, strerror(errno));
            return -1;
        }
        host_off += vm->ranges[i].size;
    }
    if (vm->split_irqchip) {
        /* LAPICs in the kernel, our IOAPIC routes through MSIs; 24 routes for EOI exits */
        struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {MV_IOAPIC_PINS}};
        if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
            mv_err("kvm: KVM_CAP_SPLIT_IRQCHIP: %s", strerror(errno));
            return -1;
        }
        vm->routed_valid = false;
        mv_ioapic_reset(&vm->ioapic); /* installs the (empty) routing table */
    } else {
        if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
            mv_err("kvm: KVM_CREATE_IRQCHIP: %s", strerror(errno));
            return -1;
        }
        if (kvm_set_gsi_routing(vm))
            return -1;
    }
    if (!vm->cfg->no_pit && !vm->split_irqchip) {
        struct kvm_pit_config pit = {.flags = 0};
        if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
            mv_err("kvm: KVM_CREATE_PIT2: %s", strerror(errno));
            return -1;
        }
    }
    if (mv_kvm_stats_open(vm->vm_fd, &vm->vm_stats))
        vm->vm_stats.fd = -1;
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vm->vcpus[i].fd = -1;
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        if (vcpu_create(vm, &vm->vcpus[i], i))
            return -1;
#ifdef MV_HAVE_VIRTIO
    if (virtio_transports_create(vm))
        return -1;
#endif
    return 0;
}

static void kvm_teardown(struct mv_vm *vm)
{
#ifdef MV_HAVE_VIRTIO
    virtio_transports_destroy(vm);
#endif
    if (vm->vcpus)
        for (unsigned i = 0; i < vm->nr_vcpus; i++)
            vcpu_destroy(&vm->vcpus[i]);
    mv_kvm_stats_close(&vm->vm_stats);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    vm->vm_fd = -1;
}

/* ---------- boot ---------- */

static int read_whole_file(const char *path, uint8_t **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mv_err("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > (off_t)(1ull << 31)) {
        mv_err("%s: not a regular file of 1 byte to 2 GiB", path);
        close(fd);
        return -1;
    }
    uint8_t *b = malloc((size_t)st.st_size);
    size_t got = 0;
    while (b && got < (size_t)st.st_size) {
        ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!b || got != (size_t)st.st_size) {
        mv_err("cannot read %s", path);
        free(b);
        return -1;
    }
    *buf = b;
    *len = got;
    return 0;
}

#ifdef MV_HAVE_ACPI
static int acpi_setup(struct mv_vm *vm, uint64_t *rsdp_gpa)
{
    struct mv_acpi_config *ac = calloc(1, sizeof(*ac));
    struct mv_acpi_result *res = calloc(1, sizeof(*res));
    char err[256];
    int rc = -1;
    if (!ac || !res)
        goto out;
    mv_acpi_config_init(ac, vm->nr_vcpus);
    if (vm->have_vnuma && mv_acpi_config_set_vnuma(ac, &vm->vnuma, err, sizeof(err))) {
        mv_err("acpi: %s", err);
        goto out;
    }
    ac->nr_virtio = vm->nr_virtio;
    for (unsigned i = 0; i < vm->nr_virtio && i < MV_ACPI_MAX_VIRTIO; i++)
        ac->virtio[i] = (struct mv_acpi_virtio_dev){.base = vm->virtio_base[i],
                                                    .size = (uint32_t)MV_VIRTIO_STRIDE,
                                                    .gsi = vm->virtio_gsi[i]};
    uint8_t *buf = gpa_host(vm, MV_BOOT_ACPI_GPA, MV_BOOT_ACPI_MAX);
    if (!buf) {
        mv_err("acpi: table area outside RAM");
        goto out;
    }
    if (mv_acpi_build(ac, buf, MV_BOOT_ACPI_MAX, MV_BOOT_ACPI_GPA, res)) {
        mv_err("acpi: %s", res->err);
        goto out;
    }
    *rsdp_gpa = res->rsdp_gpa;
    rc = 0;
out:
    free(ac);
    free(res);
    return rc;
}
#endif

static int vcpu_set_entry(struct mv_vcpu *vcpu, int kind, uint64_t rip, uint64_t rsp, uint64_t arg0,
                          uint64_t arg1)
{
    struct kvm_sregs sregs;
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    struct kvm_regs regs = {.rflags = 2, .rip = rip, .rsp = rsp};
    switch (kind) {
    case MV_BOOT_PAYLOAD64:
        mv_x86_sregs_long_mode(&sregs, MV_GUEST_CODE_SEL, MV_GUEST_DATA_SEL);
        regs.rdi = arg0;
        regs.rsi = arg1;
        break;
    case MV_BOOT_BZIMAGE:
        mv_x86_sregs_long_mode(&sregs, MV_X86_SEL_BOOT_CS, MV_X86_SEL_DATA);
        regs.rsi = arg1;
        break;
    case MV_BOOT_PVH:
        mv_x86_sregs_pvh(&sregs);
        regs.rbx = arg1;
        break;
    }
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}

/* Loads the image and writes every boot structure; run at start and after each reset. */
static int boot_setup(struct mv_vm *vm)
{
    const struct mv_vmm_config *cfg = vm->cfg;
    char err[256];
    int rc;
    enum mv_boot_kind kind;
    if (mv_boot_detect(vm->image, vm->image_len, &kind, cfg->kernel != NULL)) {
        mv_err("%s: neither an ELF nor a bzImage", cfg->kernel ? cfg->kernel : cfg->payload);
        return -1;
    }
    if (cfg->payload && kind != MV_BOOT_PAYLOAD64) {
        mv_err("%s: a payload must be an ELF", cfg->payload);
        return -1;
    }
    if (kind == MV_BOOT_BZIMAGE)
        rc = mv_boot_load_bzimage(vm->image, vm->image_len, &vm->mem, vm->ram_size, &vm->boot, err,
                                  sizeof(err));
    else
        rc = mv_boot_load_elf(vm->image, vm->image_len, &vm->mem, kind == MV_BOOT_PVH, &vm->boot,
                              err, sizeof(err));
    if (rc) {
        mv_err("%s: %s", cfg->kernel ? cfg->kernel : cfg->payload, err);
        return -1;
    }
    if (cfg->kernel && kind == MV_BOOT_PAYLOAD64) {
        mv_err("%s: ELF kernel without a PVH entry note; mvvmm boots vmlinux through PVH",
               cfg->kernel);
        return -1;
    }
    if (mv_x86_write_boot_tables(&vm->mem)) {
        mv_err("boot: cannot write page tables");
        return -1;
    }
    struct mv_boot_extra extra = {.mem_size = vm->ram_size, .has_cmdline = true};
    if (vm->initrd) {
        if (mv_boot_place_initrd(&vm->mem, vm->ram_size, &vm->boot, vm->initrd, vm->initrd_len,
                                 &extra.initrd_gpa, err, sizeof(err))) {
            mv_err("%s", err);
            return -1;
        }
        extra.initrd_size = vm->initrd_len;
    }
    if (mv_boot_write_cmdline(&vm->mem, &vm->boot, vm->cmdline, err, sizeof(err))) {
        mv_err("%s", err);
        return -1;
    }
#ifdef MV_HAVE_ACPI
    if (!cfg->no_acpi && acpi_setup(vm, &extra.rsdp_gpa))
        return -1;
#endif
    if (kind == MV_BOOT_BZIMAGE)
        rc = mv_boot_write_boot_params(&vm->mem, &vm->boot, &extra, err, sizeof(err));
    else
        rc = mv_boot_write_start_info(&vm->mem, &extra, err, sizeof(err));
    if (rc) {
        mv_err("%s", err);
        return -1;
    }
    uint64_t info = kind == MV_BOOT_BZIMAGE ? MV_BOOT_PARAMS_GPA : MV_BOOT_START_INFO;
    rc = vcpu_set_entry(&vm->vcpus[0], (int)kind, vm->boot.entry, 0, 0, info);
    if (rc) {
        mv_err("kvm: setting the boot vCPU's registers: %s", strerror(-rc));
        return -1;
    }
    /* Linux starts its APs with INIT/SIPI through the in-kernel LAPIC; payload APs wait for
     * MV_HC_START_AP */
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        vm->vcpus[i].runnable = i == 0 || kind != MV_BOOT_PAYLOAD64;
        vm->vcpus[i].start_pending = false;
    }
    return 0;
}

/* ---------- vCPU threads ---------- */

/* gva -> gpa through the guest's 4-level tables (for crash reports only); ~0 if unmapped */
static uint64_t gva_to_gpa(struct mv_vm *vm, const struct kvm_sregs *s, uint64_t gva)
{
    if (!(s->cr0 & (1ull << 31)))
        return gva;
    if (!(s->efer & (1ull << 10)))
        return ~0ull; /* only long mode tables are walked */
    uint64_t table = s->cr3 & 0x000ffffffffff000ull;
    for (int level = 3; level >= 0; level--) {
        uint64_t *e = gpa_host(vm, table + ((gva >> (12 + 9 * level)) & 511) * 8, 8);
        if (!e || !(*e & 1))
            return ~0ull;
        if (level > 0 && level < 3 && (*e & (1 << 7))) {
            uint64_t page = 1ull << (12 + 9 * level);
            return (*e & 0x000ffffffffff000ull & ~(page - 1)) | (gva & (page - 1));
        }
        table = *e & 0x000ffffffffff000ull;
    }
    return table | (gva & 0xfff);
}

static void vcpu_dump(struct mv_vcpu *vcpu, const char *why)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    mv_err("vCPU %u: %s", vcpu->index, why);
    if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
        mv_err("  (registers unavailable: %s)", strerror(errno));
        return;
    }
    mv_err("  rip %016llx rsp %016llx rflags %08llx", r.rip, r.rsp, r.rflags);
    mv_err("  rax %016llx rbx %016llx rcx %016llx rdx %016llx", r.rax, r.rbx, r.rcx, r.rdx);
    mv_err("  rsi %016llx rdi %016llx rbp %016llx", r.rsi, r.rdi, r.rbp);
    mv_err("  r8  %016llx r9  %016llx r10 %016llx r11 %016llx", r.r8, r.r9, r.r10, r.r11);
    mv_err("  r12 %016llx r13 %016llx r14 %016llx r15 %016llx", r.r12, r.r13, r.r14, r.r15);
    mv_err("  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx", s.cr0, s.cr2, s.cr3,
           s.cr4, s.efer);
    mv_err("  cs %04x base %llx l %u db %u  ss %04x  gdt %llx/%x idt %llx/%x", s.cs.selector,
           s.cs.base, s.cs.l, s.cs.db, s.ss.selector, s.gdt.base, s.gdt.limit, s.idt.base,
           s.idt.limit);
    uint64_t gpa = gva_to_gpa(vcpu->vm, &s, s.cs.base + r.rip);
    const uint8_t *code = gpa == ~0ull ? NULL : gpa_host(vcpu->vm, gpa, 16);
    if (code) {
        char hex[16 * 3 + 1];
        for (int i = 0; i < 16; i++)
            snprintf(hex + 3 * i, 4, "%02x ", code[i]);
        mv_err("  code at rip (gpa %llx): %s", (unsigned long long)gpa, hex);
    }
}

static void count_exit(struct mv_vcpu *vcpu, enum mv_exit_counter c)
{
    __atomic_fetch_add(&vcpu->exits[c], 1, __ATOMIC_RELAXED);
}

/* false = this vCPU stops (the VM is ending or resetting) */
static bool vcpu_handle_exit(struct mv_vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    struct mv_vm *vm = vcpu->vm;
    char why[160];
    if (!vcpu->exits[MV_EXIT_TOTAL])
        mv_debug("vCPU %u: first exit (%u) %.2f ms after VM start", vcpu->index, run->exit_reason,
                 (mv_now_ns() - vm->started_ns) / 1e6);
    count_exit(vcpu, MV_EXIT_TOTAL);
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        count_exit(vcpu, MV_EXIT_IO);
        mv_vm_handle_io(vcpu);
        return true;
    case KVM_EXIT_MMIO:
        count_exit(vcpu, MV_EXIT_MMIO);
        mv_vm_handle_mmio(vcpu);
        return true;
    case KVM_EXIT_HLT:
        /* only without an in-kernel LAPIC; keep the vCPU halted rather than spinning */
        count_exit(vcpu, MV_EXIT_HLT);
        usleep(1000);
        return true;
    case KVM_EXIT_INTR:
        count_exit(vcpu, MV_EXIT_INTR);
        return true;
    case KVM_EXIT_IOAPIC_EOI:
        count_exit(vcpu, MV_EXIT_EOI);
        if (vm->split_irqchip)
            mv_ioapic_eoi(&vm->ioapic, run->eoi.vector);
        return true;
    case KVM_EXIT_SHUTDOWN:
        count_exit(vcpu, MV_EXIT_SHUTDOWN);
        mv_info("vCPU %u: triple fault: reset (triple fault)", vcpu->index);
        mv_vm_signal_event(vm, MV_EV_RESET, 0);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        count_exit(vcpu, MV_EXIT_SYSTEM_EVENT);
        switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
            mv_info("vCPU %u: system event: powered off", vcpu->index);
            mv_vm_signal_event(vm, MV_EV_POWEROFF, 0);
            return false;
        case KVM_SYSTEM_EVENT_RESET:
            mv_info("vCPU %u: system event: reset (system event)", vcpu->index);
            mv_vm_signal_event(vm, MV_EV_RESET, 0);
            return false;
        default:
            snprintf(why, sizeof(why), "system event %u (crash)", run->system_event.type);
            vcpu_dump(vcpu, why);
            mv_vm_signal_event(vm, MV_EV_CRASH, MV_VMM_EXIT_GUEST_CRASH);
            return false;
        }
    case KVM_EXIT_INTERNAL_ERROR: {
        count_exit(vcpu, MV_EXIT_INTERNAL_ERROR);
        static const char *const sub[] = {"", "emulation failure", "simultaneous exception",
                                          "delivery event failure", "unexpected exit reason"};
        unsigned se = run->internal.suberror;
        int off = snprintf(why, sizeof(why), "KVM internal error %u (%s)", se,
                           se < MV_ARRAY_SIZE(sub) ? sub[se] : "?");
        for (unsigned i = 0; i < run->internal.ndata && i < 4 && off < (int)sizeof(why); i++)
            off += snprintf(why + off, sizeof(why) - (size_t)off, " data[%u]=%llx", i,
                            (unsigned long long)run->internal.data[i]);
        vcpu_dump(vcpu, why);
        mv_vm_signal_event(vm, MV_EV_CRASH, MV_VMM_EXIT_GUEST_CRASH);
        return false;
    }
    case KVM_EXIT_FAIL_ENTRY:
        count_exit(vcpu, MV_EXIT_FAIL_ENTRY);
        snprintf(why, sizeof(why), "VM entry failed: hardware reason 0x%llx on cpu %u",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
                 run->fail_entry.cpu);
        vcpu_dump(vcpu, why);
        mv_vm_signal_event(vm, MV_EV_CRASH, MV_VMM_EXIT_GUEST_CRASH);
        return false;
    default:
        count_exit(vcpu, MV_EXIT_OTHER);
        snprintf(why, sizeof(why), "unhandled exit reason %u", run->exit_reason);
        vcpu_dump(vcpu, why);
        mv_vm_signal_event(vm, MV_EV_CRASH, MV_VMM_EXIT_GUEST_CRASH);
        return false;
    }
}

static void vcpu_pin(struct mv_vcpu *vcpu)
{
    const struct mv_vmm_config *cfg = vcpu->vm->cfg;
    if (!cfg->pin_set)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cfg->pin.floating)
        for (uint32_t i = 0; i < cfg->pin.nr_cpus; i++)
            CPU_SET(cfg->pin.cpus[i], &set);
    else
        CPU_SET(cfg->pin.cpus[vcpu->index % cfg->pin.nr_cpus], &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc)
        mv_warn("vCPU %u: pinning failed: %s", vcpu->index, strerror(rc));
}

static void *vcpu_thread(void *arg)
{
    struct mv_vcpu *vcpu = arg;
    struct mv_vm *vm = vcpu->vm;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
    pthread_setname_np(pthread_self(), name);
    vcpu_pin(vcpu);
    for (;;) {
        bool apply_start = false;
        pthread_mutex_lock(&vm->lock);
        while (!vm->stopping && (vm->paused || !vcpu->runnable)) {
            if (!vcpu->runnable && vcpu->start_pending && !vm->paused) {
                vcpu->runnable = true;
                vcpu->start_pending = false;
                apply_start = true;
                break;
            }
            vcpu->parked = true;
            pthread_cond_broadcast(&vm->cond);
            pthread_cond_wait(&vm->cond, &vm->lock);
        }
        vcpu->parked = false;
        bool stop = vm->stopping;
        pthread_mutex_unlock(&vm->lock);
        if (stop)
            break;
        if (apply_start) {
            struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
            int rc = ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp) < 0 ? -errno : 0;
            if (!rc)
                rc = vcpu_set_entry(vcpu, MV_BOOT_PAYLOAD64, vcpu->start_rip, vcpu->start_rsp,
                                    vcpu->index, vcpu->start_arg);
            if (rc) {
                mv_err("vCPU %u: start failed: %s", vcpu->index, strerror(-rc));
                mv_vm_signal_event(vm, MV_EV_CRASH, MV_VMM_EXIT_GUEST_CRASH);
                break;
            }
        }
        if (!vcpu->exits[MV_EXIT_TOTAL])
            mv_debug("vCPU %u: first KVM_RUN %.2f ms after VM start", vcpu->index,
                     (mv_now_ns() - vm->started_ns) / 1e6);
        if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                vcpu->run->immediate_exit = 0;
                count_exit(vcpu, MV_EXIT_INTR);
                continue;
            }
            mv_err("vCPU %u: KVM_RUN: %s", vcpu->index, strerror(errno));
            mv_vm_signal_event(vm, MV_EV_CRASH, MV_VMM_EXIT_GUEST_CRASH);
            break;
        }
        if (!vcpu_handle_exit(vcpu) || vcpu->stop_self)
            break;
    }
    pthread_mutex_lock(&vm->lock);
    vcpu->parked = true;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    return NULL;
}

static void vcpu_kick(struct mv_vcpu *vcpu)
{
    if (!vcpu->thread_started || !vcpu->run)
        return;
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_kill(vcpu->thread, SIGUSR1);
}

static int vcpus_start(struct mv_vm *vm)
{
    vm->stopping = false;
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct mv_vcpu *v = &vm->vcpus[i];
        int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
        if (rc) {
            mv_err("cannot start vCPU thread %u: %s", i, strerror(rc));
            return -1;
        }
        v->thread_started = true;
    }
    return 0;
}

static void vcpus_stop(struct mv_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->stopping = true;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_kick(&vm->vcpus[i]);
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        if (vm->vcpus[i].thread_started) {
            pthread_join(vm->vcpus[i].thread, NULL);
            vm->vcpus[i].thread_started = false;
        }
    }
}

int mv_vm_pause(struct mv_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->paused) {
        pthread_mutex_unlock(&vm->lock);
        return 0;
    }
    vm->paused = true;
    pthread_mutex_unlock(&vm->lock);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_kick(&vm->vcpus[i]);
    /* wait until every vCPU is out of KVM_RUN */
    pthread_mutex_lock(&vm->lock);
    for (;;) {
        bool all = true;
        for (unsigned i = 0; i < vm->nr_vcpus; i++)
            if (vm->vcpus[i].thread_started && !vm->vcpus[i].parked)
                all = false;
        if (all || vm->stopping)
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    pthread_mutex_unlock(&vm->lock);
    mv_info("paused");
    return 0;
}

int mv_vm_resume(struct mv_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->paused = false;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    mv_info("resumed");
    return 0;
}

void mv_vm_signal_event(struct mv_vm *vm, enum mv_vm_event ev, int status)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->event == MV_EV_NONE) {
        vm->event = ev;
        vm->exit_status = status;
    }
    pthread_mutex_unlock(&vm->lock);
    uint64_t one = 1;
    if (write(vm->event_fd, &one, sizeof(one)) < 0)
        mv_warn("event: %s", strerror(errno));
}

/* ---------- create / run / destroy ---------- */

static int build_cmdline(struct mv_vm *vm)
{
    const char *user = vm->cfg->cmdline ? vm->cfg->cmdline : "";
    size_t cap = strlen(user) + 1 + MV_VM_MAX_VIRTIO * 64;
    vm->cmdline = malloc(cap);
    if (!vm->cmdline)
        return -1;
    size_t off = (size_t)snprintf(vm->cmdline, cap, "%s", user);
#ifdef MV_HAVE_VIRTIO
    /* Linux finds virtio-mmio devices through the DSDT; without ACPI, through the command line */
    if (vm->cfg->no_acpi || vm->cfg->payload) {
        for (unsigned i = 0; i < vm->nr_virtio && off < cap; i++) {
            char frag[96];
            mv_virtio_mmio_cmdline(vm->virtio[i], frag, sizeof(frag));
            off += (size_t)snprintf(vm->cmdline + off, cap - off, "%s%s", off ? " " : "", frag);
        }
    }
#endif
    (void)off;
    return 0;
}

#ifdef MV_HAVE_VIRTIO
static int virtio_models_create(struct mv_vm *vm)
{
    const struct mv_vmm_config *cfg = vm->cfg;
    for (unsigned d = 0; d < cfg->nr_disks; d++) {
        vm->blk[d] = mv_virtio_blk_create_from_spec(cfg->disks[d]);
        if (!vm->blk[d]) {
            mv_err("disk '%s' could not be opened", cfg->disks[d]);
            return -1;
        }
    }
    for (unsigned n = 0; n < cfg->nr_nets; n++) {
        vm->net[n] = mv_virtio_net_create_from_spec(cfg->nets[n]);
        if (!vm->net[n]) {
            mv_err("net '%s' could not be set up", cfg->nets[n]);
            return -1;
        }
    }
    return 0;
}
#endif

int mv_vm_create(const struct mv_vmm_config *cfg, struct mv_vm **out)
{
    struct mv_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -1;
    vm->cfg = cfg;
    vm->kvm_fd = vm->vm_fd = vm->event_fd = vm->ram_memfd = -1;
    vm->control_listen_fd = vm->control_client_fd = -1;
    vm->serial_out_fd = vm->serial_in_fd = vm->serial_listen_fd = -1;
    vm->vm_stats.fd = -1;
    vm->ram_size = cfg->mem_size;
    vm->nr_vcpus = cfg->nr_vcpus;
    vm->split_irqchip = cfg->irqchip == MV_IRQCHIP_SPLIT;
    mv_ioapic_init(&vm->ioapic, &mv_vm_ioapic_ops, vm);
    pthread_mutex_init(&vm->lock, NULL);
    pthread_cond_init(&vm->cond, NULL);
    *out = vm;

    struct sigaction sa = {.sa_handler = kick_signal_handler};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: KVM_RUN must return EINTR */

    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        mv_err("cannot open /dev/kvm: %s", strerror(errno));
        return -1;
    }
    if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        mv_err("kvm: unexpected API version");
        return -1;
    }
    vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->event_fd < 0)
        return -1;
    /* the CPUID template for all vCPUs */
    unsigned nent = 256;
    vm->cpuid = calloc(1, sizeof(*vm->cpuid) + nent * sizeof(struct kvm_cpuid_entry2));
    if (!vm->cpuid)
        return -1;
    vm->cpuid->nent = nent;
    if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0) {
        mv_err("kvm: KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        return -1;
    }
#ifdef MV_HAVE_ACPI
    if (vnuma_setup(vm))
        return -1;
#endif
    if (vm->ram_size < MV_BOOT_MIN_MEM) {
        mv_err("memory: %llu bytes is too little", (unsigned long long)vm->ram_size);
        return -1;
    }
    if (ram_alloc(vm))
        return -1;
#ifdef MV_HAVE_ACPI
    if (ram_bind_numa(vm))
        return -1;
#endif
    vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
    if (!vm->vcpus)
        return -1;
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vm->vcpus[i].fd = -1;

    const char *image = cfg->kernel ? cfg->kernel : cfg->payload;
    if (read_whole_file(image, &vm->image, &vm->image_len))
        return -1;
    if (cfg->initrd && read_whole_file(cfg->initrd, &vm->initrd, &vm->initrd_len))
        return -1;

    vm->nr_virtio = cfg->nr_disks + cfg->nr_nets;
    if (vm->nr_virtio > MV_ARRAY_SIZE(virtio_gsis))
        return -1;
    for (unsigned i = 0; i < vm->nr_virtio; i++) {
        vm->virtio_base[i] = MV_VIRTIO_BASE + i * MV_VIRTIO_STRIDE;
        vm->virtio_gsi[i] = virtio_gsis[i];
    }
#ifdef MV_HAVE_VIRTIO
    if (virtio_models_create(vm))
        return -1;
#else
    if (vm->nr_virtio) {
        mv_err("--disk/--net: mvvmm was built without virtio support");
        return -1;
    }
#endif
    vm->uart = mv_uart_create(mv_console_tx, NULL, vm);
    if (!vm->uart || mv_console_open(vm))
        return -1;
    if (kvm_setup(vm))
        return -1;
    if (build_cmdline(vm) || boot_setup(vm))
        return -1;
    if (cfg->control_socket && mv_control_open(vm, cfg->control_socket))
        return -1;
    mv_info("%s: %s, %llu MiB, %u vCPU%s, %s%s", cfg->name ? cfg->name : "vm", image,
            (unsigned long long)(vm->ram_size >> 20), vm->nr_vcpus, vm->nr_vcpus > 1 ? "s" : "",
            vm->boot.kind == MV_BOOT_PAYLOAD64 ? "payload"
            : vm->boot.kind == MV_BOOT_PVH     ? "PVH"
                                               : "bzImage",
            vm->split_irqchip ? ", split irqchip"
            : cfg->no_pit     ? ", no PIT"
                              : "");
    return 0;
}

static int vm_reset(struct mv_vm *vm)
{
    kvm_teardown(vm);
    vm->boot_count++;
    vm->event = MV_EV_NONE;
    vm->exit_status = 0;
    mv_uart_reset(vm->uart);
    if (kvm_setup(vm) || mv_vm_devices_reset(vm) || boot_setup(vm) || vcpus_start(vm))
        return -1;
    return 0;
}

int mv_vm_run(struct mv_vm *vm)
{
    vm->started_ns = mv_now_ns();
    if (mv_vm_devices_reset(vm) || vcpus_start(vm)) {
        vcpus_stop(vm);
        return MV_VMM_EXIT_SETUP_ERROR;
    }
    int status = 0;
    int stop_fd = mv_daemon_stop_eventfd();
    bool graceful = false;
    for (;;) {
        struct pollfd pfd[4];
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = vm->event_fd, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = stop_fd, .events = POLLIN};
        if (vm->control_listen_fd >= 0)
            pfd[n++] = (struct pollfd){.fd = vm->control_listen_fd, .events = POLLIN};
        if (vm->control_client_fd >= 0)
            pfd[n++] = (struct pollfd){.fd = vm->control_client_fd, .events = POLLIN};
        int timeout = -1;
        if (vm->stop_deadline_ns) {
            uint64_t now = mv_now_ns();
            timeout =
                now >= vm->stop_deadline_ns ? 0 : (int)((vm->stop_deadline_ns - now) / 1000000 + 1);
        }
        int rc = poll(pfd, (nfds_t)n, timeout);
        if (rc < 0 && errno != EINTR) {
            mv_err("poll: %s", strerror(errno));
            status = MV_VMM_EXIT_SETUP_ERROR;
            break;
        }
        if (vm->stop_deadline_ns && mv_now_ns() >= vm->stop_deadline_ns) {
            mv_info("graceful stop timed out: hard stop");
            status = 0;
            break;
        }
        if (mv_daemon_stop_requested() && !graceful) {
            graceful = true;
            if (vm->cfg->stop_timeout_ms == 0) {
                mv_info("stop requested: hard stop");
                break;
            }
            mv_info("stop requested: power button, hard stop in %u ms", vm->cfg->stop_timeout_ms);
            mv_vm_press_power_button(vm);
            vm->stop_deadline_ns = mv_now_ns() + (uint64_t)vm->cfg->stop_timeout_ms * 1000000;
        }
        /* client before listener: a client's EOF must free the slot before the next accept */
        for (int i = n - 1; i >= 2; i--)
            if (pfd[i].revents)
                mv_control_handle(vm, pfd[i].fd);
        uint64_t v;
        if (read(vm->event_fd, &v, sizeof(v)) != sizeof(v))
            continue;
        pthread_mutex_lock(&vm->lock);
        enum mv_vm_event ev = vm->event;
        status = vm->exit_status;
        pthread_mutex_unlock(&vm->lock);
        if (ev == MV_EV_NONE)
            continue;
        vcpus_stop(vm);
        if (ev == MV_EV_RESET && !vm->cfg->no_reboot && !graceful) {
            mv_info("guest reset: restarting (boot %u)", vm->boot_count + 1);
            if (vm_reset(vm)) {
                status = MV_VMM_EXIT_SETUP_ERROR;
                break;
            }
            continue;
        }
        if (ev == MV_EV_POWEROFF)
            mv_info("guest powered off");
        else if (ev == MV_EV_EXIT)
            mv_info("guest exit with status %d", status);
        else if (ev == MV_EV_RESET)
            mv_info("guest reset: not restarting");
        break;
    }
    vcpus_stop(vm);
    mv_debug("run: ended %.2f ms after VM start", (mv_now_ns() - vm->started_ns) / 1e6);
    return status;
}

void mv_vm_destroy(struct mv_vm *vm)
{
    if (!vm)
        return;
    mv_control_close(vm);
    kvm_teardown(vm);
#ifdef MV_HAVE_VIRTIO
    for (unsigned d = 0; d < MV_VMM_MAX_DISKS; d++)
        if (vm->blk[d])
            mv_virtio_blk_destroy(vm->blk[d]);
    for (unsigned n = 0; n < MV_VMM_MAX_NETS; n++)
        if (vm->net[n])
            mv_virtio_net_destroy(vm->net[n]);
#endif
    mv_console_close(vm);
    mv_uart_destroy(vm->uart);
    if (vm->ram) {
        /* for the memory-overhead benchmark: what of the RSS is guest RAM */
        size_t pages = (vm->ram_size + 4095) / 4096;
        unsigned char *vec = malloc(pages);
        if (vec && mincore(vm->ram, vm->ram_size, vec) == 0) {
            size_t resident = 0;
            for (size_t i = 0; i < pages; i++)
                resident += vec[i] & 1;
            mv_debug("guest RAM resident: %zu KiB", resident * 4);
        }
        free(vec);
        munmap(vm->ram, vm->ram_size);
    }
    if (vm->ram_memfd >= 0)
        close(vm->ram_memfd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    if (vm->event_fd >= 0)
        close(vm->event_fd);
    free(vm->vcpus);
    free(vm->cpuid);
    free(vm->image);
    free(vm->initrd);
    free(vm->cmdline);
    mv_ioapic_destroy(&vm->ioapic);
    pthread_mutex_destroy(&vm->lock);
    pthread_cond_destroy(&vm->cond);
    free(vm);
}
