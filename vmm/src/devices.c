/* Port I/O and MMIO dispatch on vCPU threads: COM1, the exit port and hypercalls of test
 * payloads, ACPI PM1a/PM timer/reset register, i8042 reset, harmless legacy ports, virtio-mmio
 * windows. Unclaimed accesses read as all ones, are counted and logged once per port. */
#include "vm_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "mv/guest_abi.h"
#include "mv/log.h"
#include "mv/util.h"

#ifdef MV_HAVE_ACPI
#define PM1A_EVT   MV_ACPI_PM1A_EVT_PORT
#define PM1A_CNT   MV_ACPI_PM1A_CNT_PORT
#define PM_TMR     MV_ACPI_PM_TMR_PORT
#define RESET_PORT MV_ACPI_RESET_PORT
#define S5_SLP_TYP MV_ACPI_S5_SLP_TYP
#define SCI_GSI    MV_ACPI_SCI_GSI
#define PM_TMR_HZ  MV_ACPI_PM_TMR_HZ
#else
#define PM1A_EVT   0x600
#define PM1A_CNT   0x604
#define PM_TMR     0x608
#define RESET_PORT 0xcf9
#define S5_SLP_TYP 5
#define SCI_GSI    9
#define PM_TMR_HZ  3579545
#endif
#define PM1_STS_PWRBTN (1u << 8)
#define PM1_EN_PWRBTN  (1u << 8)
#define PM1_CNT_SCI_EN (1u << 0)
#define PM1_CNT_SLP_EN (1u << 13)

void mv_vm_set_irq(struct mv_vm *vm, uint32_t gsi, bool level)
{
    if (vm->split_irqchip) {
        mv_ioapic_set_irq(&vm->ioapic, gsi, level);
        return;
    }
    struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};
    if (vm->vm_fd >= 0 && ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        mv_warn("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

/* ---- split irqchip: the userspace IOAPIC talks MSI to the in-kernel LAPICs ---- */
static void ioapic_send_msi(void *ctx, uint64_t address, uint32_t data)
{
    struct mv_vm *vm = ctx;
    struct kvm_msi msi = {
        .address_lo = (uint32_t)address, .address_hi = (uint32_t)(address >> 32), .data = data};
    if (vm->vm_fd >= 0 && ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
        mv_warn("KVM_SIGNAL_MSI: %s", strerror(errno));
}

/* Mirrors the IOAPIC's unmasked pins into KVM's GSI routing as MSI routes: irqfds (virtio)
 * reach the guest through them, and KVM derives the vectors that need EOI exits from them.
 * Only rewritten when something changed: each KVM_SET_GSI_ROUTING waits for an RCU period. */
static void ioapic_routes_changed(void *ctx)
{
    struct mv_vm *vm = ctx;
    uint64_t addr[MV_IOAPIC_PINS] = {0};
    uint32_t data[MV_IOAPIC_PINS] = {0};
    for (unsigned pin = 0; pin < MV_IOAPIC_PINS; pin++)
        if (!mv_ioapic_pin_msi(&vm->ioapic, pin, &addr[pin], &data[pin]))
            addr[pin] = 0;
    if (vm->routed_valid && !memcmp(addr, vm->routed_msi_addr, sizeof(addr)) &&
        !memcmp(data, vm->routed_msi_data, sizeof(data)))
        return;
    if (vm->vm_fd < 0)
        return;
    struct {
        struct kvm_irq_routing r;
        struct kvm_irq_routing_entry e[MV_IOAPIC_PINS];
    } rt;
    memset(&rt, 0, sizeof(rt));
    unsigned n = 0;
    for (unsigned pin = 0; pin < MV_IOAPIC_PINS; pin++) {
        if (!addr[pin])
            continue;
        rt.e[n].gsi = pin;
        rt.e[n].type = KVM_IRQ_ROUTING_MSI;
        rt.e[n].u.msi.address_lo = (uint32_t)addr[pin];
        rt.e[n].u.msi.address_hi = (uint32_t)(addr[pin] >> 32);
        rt.e[n].u.msi.data = data[pin];
        n++;
    }
    rt.r.nr = n;
    if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, &rt.r) < 0) {
        mv_warn("KVM_SET_GSI_ROUTING: %s", strerror(errno));
        return;
    }
    memcpy(vm->routed_msi_addr, addr, sizeof(addr));
    memcpy(vm->routed_msi_data, data, sizeof(data));
    vm->routed_valid = true;
}

const struct mv_ioapic_ops mv_vm_ioapic_ops = {
    .send_msi = ioapic_send_msi,
    .routes_changed = ioapic_routes_changed,
};

static void uart_irq(void *ctx, bool level)
{
    mv_vm_set_irq(ctx, 4, level);
}

/* SCI is level-triggered: high while an enabled PM1 status bit is set */
static void pm_update_sci(struct mv_vm *vm)
{
    bool level = (vm->pm1_sts & vm->pm1_en & PM1_EN_PWRBTN) && (vm->pm1_cnt & PM1_CNT_SCI_EN);
    if (level != vm->sci_level) {
        vm->sci_level = level;
        mv_vm_set_irq(vm, SCI_GSI, level);
    }
}

int mv_vm_devices_reset(struct mv_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->pm1_sts = vm->pm1_en = 0;
    vm->pm1_cnt = PM1_CNT_SCI_EN; /* no SMI_CMD: always in ACPI mode */
    vm->sci_level = false;
    vm->pm_tmr_start_ns = mv_now_ns();
    pthread_mutex_unlock(&vm->lock);
    /* the UART's IRQ callback needs the VM fd, set once KVM objects exist */
    mv_uart_destroy(vm->uart);
    vm->uart = mv_uart_create(mv_console_tx, uart_irq, vm);
    return vm->uart ? 0 : -1;
}

void mv_vm_press_power_button(struct mv_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->pm1_sts |= PM1_STS_PWRBTN;
    pm_update_sci(vm);
    pthread_mutex_unlock(&vm->lock);
}

static uint32_t pm_read(struct mv_vm *vm, uint16_t port, unsigned size)
{
    uint32_t v = 0;
    pthread_mutex_lock(&vm->lock);
    if (port >= PM_TMR && port < PM_TMR + 4) {
        uint64_t ns = mv_now_ns() - vm->pm_tmr_start_ns;
        uint64_t ticks = (ns / 1000) * PM_TMR_HZ / 1000000;
        v = (uint32_t)(ticks >> (8 * (port - PM_TMR)));
    } else if (port >= PM1A_EVT && port < PM1A_EVT + 4) {
        uint32_t reg = vm->pm1_sts | ((uint32_t)vm->pm1_en << 16);
        v = reg >> (8 * (port - PM1A_EVT));
    } else if (port >= PM1A_CNT && port < PM1A_CNT + 2) {
        v = (uint32_t)vm->pm1_cnt >> (8 * (port - PM1A_CNT));
    }
    pthread_mutex_unlock(&vm->lock);
    return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

/* true when the write ended the run (power-off) */
static bool pm_write(struct mv_vm *vm, uint16_t port, unsigned size, uint32_t v)
{
    bool off = false;
    pthread_mutex_lock(&vm->lock);
    if (port >= PM1A_EVT && port < PM1A_EVT + 4) {
        /* byte lanes of {PM1_STS (write 1 to clear), PM1_EN} */
        for (unsigned i = 0; i < size; i++) {
            unsigned lane = (unsigned)(port - PM1A_EVT) + i;
            uint8_t b = (uint8_t)(v >> (8 * i));
            if (lane < 2)
                vm->pm1_sts &= (uint16_t) ~((uint16_t)b << (8 * lane));
            else if (lane < 4)
                vm->pm1_en = (uint16_t)((vm->pm1_en & ~(0xff << (8 * (lane - 2)))) |
                                        (b << (8 * (lane - 2))));
        }
        pm_update_sci(vm);
    } else if (port >= PM1A_CNT && port < PM1A_CNT + 2) {
        uint16_t val = port == PM1A_CNT && size >= 2 ? (uint16_t)v
                       : port == PM1A_CNT ? (uint16_t)((vm->pm1_cnt & 0xff00) | (v & 0xff))
                                          : (uint16_t)((vm->pm1_cnt & 0xff) | (v << 8));
        vm->pm1_cnt = (uint16_t)((val & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN);
        if ((val & PM1_CNT_SLP_EN) && ((val >> 10) & 7) == S5_SLP_TYP)
            off = true;
        else if (val & PM1_CNT_SLP_EN)
            mv_info("ACPI sleep type %u requested: ignored", (val >> 10) & 7);
    }
    pthread_mutex_unlock(&vm->lock);
    if (off) {
        mv_info("ACPI S5: powered off");
        mv_vm_signal_event(vm, MV_EV_POWEROFF, 0);
    }
    return off;
}

static void handle_hypercall(struct mv_vcpu *vcpu, uint32_t gpa)
{
    struct mv_vm *vm = vcpu->vm;
    struct mv_hypercall hc;
    __atomic_fetch_add(&vcpu->exits[MV_EXIT_HYPERCALL], 1, __ATOMIC_RELAXED);
    if (gpa % 8 || mv_guest_mem_read(&vm->mem, gpa, &hc, sizeof(hc))) {
        mv_warn("vCPU %u: hypercall block at 0x%x is misaligned or outside RAM", vcpu->index, gpa);
        return;
    }
    hc.result = 0;
    switch (hc.op) {
    case MV_HC_INFO:
        hc.arg[0] = vm->nr_vcpus;
        hc.arg[1] = vm->boot_count;
        hc.arg[2] = vm->ram_size;
        hc.arg[3] = vcpu->index;
        break;
    case MV_HC_START_AP: {
        uint64_t cpu = hc.arg[0];
        if (cpu == 0 || cpu >= vm->nr_vcpus || vm->boot.kind != MV_BOOT_PAYLOAD64) {
            hc.result = -EINVAL;
            break;
        }
        struct mv_vcpu *ap = &vm->vcpus[cpu];
        pthread_mutex_lock(&vm->lock);
        if (ap->runnable || ap->start_pending) {
            hc.result = -EBUSY;
        } else {
            ap->start_rip = hc.arg[1];
            ap->start_rsp = hc.arg[2];
            ap->start_arg = hc.arg[3];
            ap->start_pending = true;
            pthread_cond_broadcast(&vm->cond);
        }
        pthread_mutex_unlock(&vm->lock);
        break;
    }
    case MV_HC_POWER_PORTS:
        hc.arg[0] = PM1A_CNT;
        hc.arg[1] = S5_SLP_TYP;
        hc.arg[2] = RESET_PORT;
        hc.arg[3] = 0x06;
        break;
    default:
        hc.result = -ENOSYS;
    }
    mv_guest_mem_write(&vm->mem, gpa, &hc, sizeof(hc));
}

static void log_unhandled_once(struct mv_vcpu *vcpu, const char *what, uint64_t addr, bool write)
{
    /* a small table of ports/addresses already reported, so a polling guest cannot flood logs */
    static uint64_t seen[64];
    static unsigned nseen;
    static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
    uint64_t key = addr << 1 | write;
    pthread_mutex_lock(&seen_lock);
    for (unsigned i = 0; i < nseen; i++) {
        if (seen[i] == key) {
            pthread_mutex_unlock(&seen_lock);
            return;
        }
    }
    if (nseen < MV_ARRAY_SIZE(seen))
        seen[nseen++] = key;
    pthread_mutex_unlock(&seen_lock);
    mv_debug("vCPU %u: unhandled %s %s at 0x%llx", vcpu->index, what, write ? "write" : "read",
             (unsigned long long)addr);
}

/* One element of a (possibly rep) port access. */
static void io_one(struct mv_vcpu *vcpu, uint16_t port, bool out, unsigned size, uint8_t *data)
{
    struct mv_vm *vm = vcpu->vm;
    uint32_t v = 0;
    if (out)
        memcpy(&v, data, size);
    uint32_t in = 0xffffffffu;
    bool handled = true;

    if (port >= MV_UART_COM1_BASE && port < MV_UART_COM1_BASE + 8) {
        for (unsigned i = 0; i < size; i++) {
            unsigned off = (unsigned)(port - MV_UART_COM1_BASE) + i;
            if (off >= 8)
                break;
            if (out)
                mv_uart_write(vm->uart, off, (uint8_t)(v >> (8 * i)));
            else
                in =
                    (in & ~(0xffu << (8 * i))) | ((uint32_t)mv_uart_read(vm->uart, off) << (8 * i));
        }
    } else if (port == MV_GUEST_EXIT_PORT) {
        if (out) {
            mv_vm_signal_event(vm, MV_EV_EXIT, (int)(v & 0xff));
            vcpu->stop_self = true; /* this vCPU stops here */
        }
    } else if (port == MV_GUEST_HC_PORT && size == 4) {
        if (out)
            handle_hypercall(vcpu, v);
    } else if ((port >= PM1A_EVT && port < PM1A_EVT + 4) ||
               (port >= PM1A_CNT && port < PM1A_CNT + 2) || (port >= PM_TMR && port < PM_TMR + 4)) {
        if (out) {
            if (pm_write(vm, port, size, v))
                vcpu->stop_self = true;
        } else {
            in = pm_read(vm, port, size);
        }
    } else if (port == RESET_PORT && size == 1) {
        /* 0xcf9 reset control: bit 2 starts the reset (bit 1 chooses hard reset) */
        if (out && (v & 0x04)) {
            mv_info("vCPU %u: reset (cf9)", vcpu->index);
            mv_vm_signal_event(vm, MV_EV_RESET, 0);
            vcpu->stop_self = true;
        }
        in = 0;
    } else if (port == 0x64 || port == 0x60) {
        /* i8042: only the reset line (command 0xfe); status reads say "nothing to read" */
        if (out && port == 0x64 && (v & 0xff) == 0xfe) {
            mv_info("vCPU %u: reset (i8042)", vcpu->index);
            mv_vm_signal_event(vm, MV_EV_RESET, 0);
            vcpu->stop_self = true;
        }
        in = 0;
    } else if (port == 0x80 || port == 0xed) {
        in = 0; /* POST code / I/O delay ports: Linux writes them to wait */
    } else {
        handled = false;
    }
    if (!handled) {
        __atomic_fetch_add(&vcpu->exits[MV_EXIT_IO_UNHANDLED], 1, __ATOMIC_RELAXED);
        log_unhandled_once(vcpu, "port", port, out);
    }
    if (!out)
        memcpy(data, &in, size);
}

void mv_vm_handle_io(struct mv_vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    unsigned size = run->io.size;
    if (size != 1 && size != 2 && size != 4)
        return;
    /* data lives inside the run page: bound count * size by the mapping */
    uint64_t off = run->io.data_offset;
    uint64_t total = (uint64_t)run->io.count * size;
    if (off > vcpu->run_size || total > vcpu->run_size - off)
        return;
    uint8_t *data = (uint8_t *)run + off;
    for (uint32_t i = 0; i < run->io.count; i++)
        io_one(vcpu, run->io.port, run->io.direction == KVM_EXIT_IO_OUT, size, data + i * size);
}

void mv_vm_handle_mmio(struct mv_vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    struct mv_vm *vm = vcpu->vm;
    uint64_t addr = run->mmio.phys_addr;
    uint32_t len = run->mmio.len;
    if (len == 0 || len > 8)
        return;
    if (vm->split_irqchip && addr >= MV_IOAPIC_BASE && addr - MV_IOAPIC_BASE < MV_IOAPIC_SIZE) {
        uint64_t off = addr - MV_IOAPIC_BASE;
        if (len != 4) {
            if (!run->mmio.is_write)
                memset(run->mmio.data, 0, len);
            return;
        }
        if (run->mmio.is_write) {
            uint32_t v;
            memcpy(&v, run->mmio.data, 4);
            mv_ioapic_write(&vm->ioapic, off, v);
        } else {
            uint32_t v = mv_ioapic_read(&vm->ioapic, off);
            memcpy(run->mmio.data, &v, 4);
        }
        return;
    }
#ifdef MV_HAVE_VIRTIO
    for (unsigned i = 0; i < vm->nr_virtio; i++) {
        uint64_t base = vm->virtio_base[i];
        if (addr >= base && addr - base < MV_VIRTIO_STRIDE && vm->virtio[i]) {
            if (addr - base + len > MV_VIRTIO_STRIDE)
                break;
            if (run->mmio.is_write)
                mv_virtio_mmio_write(vm->virtio[i], addr - base, run->mmio.data, len);
            else if (mv_virtio_mmio_read(vm->virtio[i], addr - base, run->mmio.data, len))
                memset(run->mmio.data, 0, len);
            return;
        }
    }
#endif
    (void)vm;
    __atomic_fetch_add(&vcpu->exits[MV_EXIT_MMIO_UNHANDLED], 1, __ATOMIC_RELAXED);
    log_unhandled_once(vcpu, "MMIO", addr, run->mmio.is_write);
    if (!run->mmio.is_write)
        memset(run->mmio.data, 0xff, len);
}
