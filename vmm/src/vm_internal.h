/* State shared by the files of the VMM core (vm.c, devices.c, control.c, stats.c). */
#ifndef MV_VM_INTERNAL_H
#define MV_VM_INTERNAL_H

#include <jansson.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mv/guest_mem.h"
#include "mv/vmm.h"
#include "mv/vmm_boot.h"
#include "mv/vmm_ioapic.h"
#include "mv/vmm_stats.h"
#include "mv/vmm_uart.h"

#ifdef MV_HAVE_ACPI
#include "mv/acpi.h"
#include "mv/vnuma.h"
#endif
#ifdef MV_HAVE_VIRTIO
#include "mv/virtio_blk.h"
#include "mv/virtio_mmio.h"
#include "mv/virtio_net.h"
#endif

/* Per-vCPU exit counters of the VMM (the "vmexits" family of D2.3 6.3). */
enum mv_exit_counter {
    MV_EXIT_TOTAL,
    MV_EXIT_IO,
    MV_EXIT_MMIO,
    MV_EXIT_HLT,
    MV_EXIT_SHUTDOWN,
    MV_EXIT_SYSTEM_EVENT,
    MV_EXIT_INTERNAL_ERROR,
    MV_EXIT_FAIL_ENTRY,
    MV_EXIT_INTR,
    MV_EXIT_OTHER,
    MV_EXIT_IO_UNHANDLED,
    MV_EXIT_MMIO_UNHANDLED,
    MV_EXIT_HYPERCALL,
    MV_EXIT_EOI,
    MV_EXIT_NR
};
extern const char *const mv_exit_counter_names[MV_EXIT_NR];

enum mv_vm_event {
    MV_EV_NONE = 0,
    MV_EV_EXIT,     /* exit port: status in exit_status */
    MV_EV_POWEROFF, /* ACPI S5, KVM_SYSTEM_EVENT_SHUTDOWN */
    MV_EV_RESET,    /* 0xcf9, i8042, triple fault, ACPI reset, SYSTEM_EVENT_RESET */
    MV_EV_CRASH,    /* emulation failure, failed entry, unknown exit */
};

struct mv_vcpu {
    struct mv_vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;
    /* payload mode: APs wait for MV_HC_START_AP before their first KVM_RUN */
    bool runnable;
    bool start_pending;
    uint64_t start_rip, start_rsp, start_arg;
    bool parked;
    bool stop_self; /* set by a device handler: the run is over for this vCPU */
    uint64_t exits[MV_EXIT_NR];
    struct mv_kvm_stats stats;
};

#define MV_VM_MAX_VIRTIO (MV_VMM_MAX_DISKS + MV_VMM_MAX_NETS)
#define MV_VIRTIO_BASE   0xd0000000ull
#define MV_VIRTIO_STRIDE 0x1000ull

struct mv_vm {
    const struct mv_vmm_config *cfg;
    int kvm_fd, vm_fd;
    /* RAM: one host mapping, one or two guest ranges */
    uint8_t *ram;
    uint64_t ram_size;
    int ram_memfd;
    struct mv_guest_mem mem;
    struct mv_mem_range ranges[2];
    int nr_ranges;
    /* the image, kept for resets */
    uint8_t *image;
    size_t image_len;
    uint8_t *initrd;
    size_t initrd_len;
    struct mv_boot_image boot;
    char *cmdline; /* effective: user's + virtio fragments */
    struct kvm_cpuid2 *cpuid;
    unsigned nr_vcpus;
    struct mv_vcpu *vcpus;
    struct mv_kvm_stats vm_stats;
    /* devices */
    bool split_irqchip;
    struct mv_ioapic ioapic;                  /* split irqchip only */
    uint64_t routed_msi_addr[MV_IOAPIC_PINS]; /* what KVM's GSI routing holds now */
    uint32_t routed_msi_data[MV_IOAPIC_PINS];
    bool routed_valid;
    struct mv_uart *uart;
    int serial_out_fd, serial_in_fd, serial_listen_fd;
    char serial_pty_path[64];
    pthread_t serial_thread;
    bool serial_thread_started;
    uint16_t pm1_sts, pm1_en, pm1_cnt;
    bool sci_level;
    uint64_t pm_tmr_start_ns;
    unsigned nr_virtio;
#ifdef MV_HAVE_VIRTIO
    struct mv_virtio_mmio *virtio[MV_VM_MAX_VIRTIO];
    struct mv_virtio_blk *blk[MV_VMM_MAX_DISKS];
    struct mv_virtio_net *net[MV_VMM_MAX_NETS];
#endif
    uint64_t virtio_base[MV_VM_MAX_VIRTIO];
    uint32_t virtio_gsi[MV_VM_MAX_VIRTIO];
#ifdef MV_HAVE_ACPI
    struct mv_vnuma vnuma;
    bool have_vnuma;
#endif
    /* run state */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int event_fd;
    enum mv_vm_event event;
    int exit_status;
    bool stopping; /* vCPU threads must leave their loop */
    bool paused;
    unsigned boot_count;
    uint64_t started_ns;
    /* control socket */
    int control_listen_fd;
    int control_client_fd;
    char control_buf[4096];
    size_t control_len;
    uint64_t stop_deadline_ns; /* graceful stop in progress */
};

/* devices.c: port I/O and MMIO dispatch, run on vCPU threads */
void mv_vm_set_irq(struct mv_vm *vm, uint32_t gsi, bool level);
extern const struct mv_ioapic_ops mv_vm_ioapic_ops;
void mv_vm_handle_io(struct mv_vcpu *vcpu);
void mv_vm_handle_mmio(struct mv_vcpu *vcpu);
/* Ends the run with ev (the first event wins). */
void mv_vm_signal_event(struct mv_vm *vm, enum mv_vm_event ev, int status);
void mv_vm_press_power_button(struct mv_vm *vm);
int mv_vm_devices_reset(struct mv_vm *vm);

/* vm.c: pause/resume/reset used by the control socket */
int mv_vm_pause(struct mv_vm *vm);
int mv_vm_resume(struct mv_vm *vm);

/* control.c */
int mv_control_open(struct mv_vm *vm, const char *path);
void mv_control_close(struct mv_vm *vm);
/* Handles readable control fds; returns an event to act on (reboot/stop) or MV_EV_NONE. */
void mv_control_handle(struct mv_vm *vm, int fd);
json_t *mv_vm_stats_json(struct mv_vm *vm);
json_t *mv_vm_info_json(struct mv_vm *vm);

/* console.c */
int mv_console_open(struct mv_vm *vm);
void mv_console_close(struct mv_vm *vm);
void mv_console_tx(void *ctx, uint8_t byte);

/* seccomp.c */
int mv_seccomp_install(void);

#endif
