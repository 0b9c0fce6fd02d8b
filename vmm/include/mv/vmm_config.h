/* mvvmm's configuration: command-line flags or a JSON file (--config vm.json), validated, with
 * errors that say what is wrong. Also the --pin syntax. Pure parsing: no KVM. */
#ifndef MV_VMM_CONFIG_H
#define MV_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MV_VMM_MAX_VCPUS     64
#define MV_VMM_MAX_DISKS     8
#define MV_VMM_MAX_NETS      8
#define MV_VMM_DEFAULT_MEM   (128ull << 20)
#define MV_VMM_MAX_HOST_CPUS 1024

enum mv_serial_mode {
    MV_SERIAL_STDOUT = 0, /* default */
    MV_SERIAL_FILE,       /* file:PATH (appended) */
    MV_SERIAL_PTY,        /* pty: a new pseudo-terminal, its path is logged and in "info" */
    MV_SERIAL_SOCKET,     /* socket:PATH: a listening AF_UNIX stream socket, one client */
    MV_SERIAL_NONE,       /* none: output discarded */
};

/* --pin: "2,3" pins vCPU i to host CPU list[i % n]; "float:0-3,6" lets every vCPU float over
 * the set. */
struct mv_pin_spec {
    bool floating;
    uint32_t nr_cpus;
    uint16_t cpus[MV_VMM_MAX_HOST_CPUS];
};

enum mv_irqchip_mode {
    MV_IRQCHIP_KERNEL = 0, /* in-kernel PIC + IOAPIC + LAPIC (+ PIT unless no_pit) */
    MV_IRQCHIP_SPLIT,      /* LAPICs in the kernel, IOAPIC in mvvmm, no PIC/PIT: fast start */
};

struct mv_vmm_config {
    char *name;   /* for logs and "info"; default "vm" */
    char *kernel; /* bzImage or PVH ELF vmlinux */
    char *initrd;
    char *cmdline;
    char *payload; /* ELF test payload entered in long mode (mv/guest_abi.h) */
    uint64_t mem_size;
    bool mem_set; /* --mem given (else --vnuma's sizes decide) */
    uint32_t nr_vcpus;
    char *vnuma; /* mv_vnuma_parse() syntax (docs/acpi.md) */
    struct mv_pin_spec pin;
    bool pin_set;
    char *disks[MV_VMM_MAX_DISKS]; /* "path[,ro][,serial=S]" */
    unsigned nr_disks;
    char *nets[MV_VMM_MAX_NETS]; /* "tap=NAME[,mac=..]" */
    unsigned nr_nets;
    char *control_socket;
    enum mv_serial_mode serial;
    char *serial_path;
    char *user; /* drop to this user (and its group) after setup */
    enum mv_irqchip_mode irqchip;
    bool no_pit;
    bool hugepages;
    bool memfd;
    bool no_seccomp;
    bool no_acpi;
    bool no_reboot;           /* a guest reset ends mvvmm (exit status 0) instead of restarting */
    uint32_t stop_timeout_ms; /* graceful stop: power button, then hard stop after this */
    int log_level;            /* LOG_* */
};

void mv_vmm_config_init(struct mv_vmm_config *cfg);
void mv_vmm_config_free(struct mv_vmm_config *cfg);

/* Parses argv. Returns 0 (run), 1 (--help or --version printed: exit 0), or -1 with err.
 * --config FILE is read where it appears; later flags override it. */
int mv_vmm_config_parse_args(struct mv_vmm_config *cfg, int argc, char **argv, char *err,
                             size_t errlen);
/* JSON object with the long option names as keys ("mem": "256M" or a number of bytes,
 * "vcpus": 2, "disk": ["a.img"], "net": ["tap=x"], "no-pit": true, ...). */
int mv_vmm_config_load_json(struct mv_vmm_config *cfg, const char *path, char *err, size_t errlen);
int mv_vmm_config_load_json_string(struct mv_vmm_config *cfg, const char *json, char *err,
                                   size_t errlen);
/* Cross-field checks (one of kernel/payload, sizes, vcpus). */
int mv_vmm_config_validate(const struct mv_vmm_config *cfg, char *err, size_t errlen);

int mv_pin_parse(const char *spec, struct mv_pin_spec *out, char *err, size_t errlen);
int mv_serial_parse(const char *spec, enum mv_serial_mode *mode, char **path, char *err,
                    size_t errlen);

void mv_vmm_usage(FILE *out);

#endif
