/* ACPI tables for mvvmm: RSDP (v2), XSDT, FADT (ACPI 6.x, full hardware model with PM1a/PM-timer
 * I/O blocks and a reset register), FACS, DSDT (hand-assembled AML: \_S5, COM1, virtio-mmio
 * LNRO0005 devices), MADT, SRAT and SLIT, written into one buffer that the VMM copies to guest
 * memory at buf_gpa. Pure library: no KVM. Layout and choices: docs/acpi.md.
 *
 * The I/O ports below are what mvvmm emulates:
 *   PM1a_EVT (4 bytes): PM1_STS at +0 (write 1 to clear), PM1_EN at +2. Power button = fixed
 *     feature: the VMM sets PWRBTN_STS and, if PWRBTN_EN is set, asserts the SCI (level, high).
 *   PM1a_CNT (2 bytes): reads must show SCI_EN (no SMI_CMD: the platform is always in ACPI mode);
 *     a write with SLP_EN and SLP_TYP == MV_ACPI_S5_SLP_TYP is a power-off.
 *   PM_TMR (4 bytes): 32-bit free-running counter at 3.579545 MHz.
 *   RESET (1 byte): writing MV_ACPI_RESET_VALUE resets the VM (the classic 0xcf9 register). */
#ifndef MV_ACPI_H
#define MV_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/vnuma.h"

#define MV_ACPI_PM1A_EVT_PORT 0x600
#define MV_ACPI_PM1A_EVT_LEN  4
#define MV_ACPI_PM1A_CNT_PORT 0x604
#define MV_ACPI_PM1A_CNT_LEN  2
#define MV_ACPI_PM_TMR_PORT   0x608
#define MV_ACPI_PM_TMR_LEN    4
#define MV_ACPI_RESET_PORT    0xcf9
#define MV_ACPI_RESET_VALUE   0x06
#define MV_ACPI_SCI_GSI       9
#define MV_ACPI_S5_SLP_TYP    5
#define MV_ACPI_PM_TMR_HZ     3579545

/* PM1 register bits the VMM needs */
#define MV_ACPI_PM1_STS_TMR           (1u << 0)
#define MV_ACPI_PM1_STS_PWRBTN        (1u << 8)
#define MV_ACPI_PM1_STS_WAK           (1u << 15)
#define MV_ACPI_PM1_EN_TMR            (1u << 0)
#define MV_ACPI_PM1_EN_PWRBTN         (1u << 8)
#define MV_ACPI_PM1_CNT_SCI_EN        (1u << 0)
#define MV_ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define MV_ACPI_PM1_CNT_SLP_TYP_MASK  (7u << 10)
#define MV_ACPI_PM1_CNT_SLP_EN        (1u << 13)

#define MV_ACPI_IOAPIC_ADDR 0xfec00000u
#define MV_ACPI_LAPIC_ADDR  0xfee00000u
#define MV_ACPI_COM1_PORT   0x3f8
#define MV_ACPI_COM1_IRQ    4

/* The 32-bit MMIO hole (virtio-mmio windows, IOAPIC, LAPIC): RAM above 3 GiB moves to 4 GiB. */
#define MV_ACPI_MEM_HOLE_START 0xc0000000ull
#define MV_ACPI_MEM_HOLE_END   0x100000000ull

#define MV_ACPI_MAX_VCPUS      MV_VNUMA_MAX_VCPUS
#define MV_ACPI_MAX_NODES      MV_VNUMA_MAX_NODES
#define MV_ACPI_MAX_MEM_RANGES (MV_VNUMA_MAX_NODES + 1) /* one vnode may straddle the hole */
#define MV_ACPI_MAX_VIRTIO     32
#define MV_ACPI_MAX_TABLES     8 /* RSDP XSDT FACP FACS DSDT APIC SRAT SLIT */
/* Enough for every table at the maximum configuration. */
#define MV_ACPI_MAX_SIZE 32768

struct mv_acpi_virtio_dev {
    uint64_t base; /* MMIO window, below 4 GiB (Memory32Fixed) */
    uint32_t size;
    uint32_t gsi;
    bool level; /* level-triggered (default edge: irqfd without resample) */
};

struct mv_acpi_config {
    uint32_t nr_vcpus;                   /* 1..MV_ACPI_MAX_VCPUS */
    uint32_t apic_id[MV_ACPI_MAX_VCPUS]; /* >= 255 get x2APIC structures */
    uint32_t ioapic_id;                  /* KVM's in-kernel IOAPIC: 0 */
    uint32_t ioapic_gsi_base;            /* 0 */
    uint64_t ioapic_addr;                /* MV_ACPI_IOAPIC_ADDR */
    /* NUMA: nr_nodes 0 = no SRAT/SLIT. Fill with mv_acpi_config_set_vnuma(). */
    uint32_t nr_nodes;
    uint32_t vcpu_node[MV_ACPI_MAX_VCPUS];
    uint32_t nr_mem_ranges;
    struct mv_vnuma_range mem[MV_ACPI_MAX_MEM_RANGES];
    uint8_t distance[MV_ACPI_MAX_NODES][MV_ACPI_MAX_NODES];
    /* DSDT devices */
    uint32_t nr_virtio;
    struct mv_acpi_virtio_dev virtio[MV_ACPI_MAX_VIRTIO];
    bool com1; /* PNP0501 at 0x3f8, IRQ 4 */
    /* Fixed hardware (defaults: the MV_ACPI_* constants) */
    uint16_t pm1a_evt_port;
    uint16_t pm1a_cnt_port;
    uint16_t pm_tmr_port;
    uint16_t reset_port;
    uint8_t reset_value;
    uint8_t s5_slp_typ; /* 0..7 */
    uint32_t sci_gsi;   /* 0..15: an ISA IRQ, overridden to level/high in the MADT */
    bool i8042;         /* IAPC_BOOT_ARCH 8042 flag: Linux probes the i8042 only if set */
    bool rtc;           /* clear = "CMOS RTC not present" boot flag */
};

struct mv_acpi_table_info {
    char signature[5]; /* "RSDP" for the RSD PTR */
    uint32_t offset;   /* from the start of buf */
    uint32_t length;
};

struct mv_acpi_result {
    uint64_t rsdp_gpa; /* = buf_gpa: the RSDP comes first (16-byte aligned) */
    size_t size;       /* bytes of buf used */
    uint32_t nr_tables;
    struct mv_acpi_table_info tables[MV_ACPI_MAX_TABLES];
    char err[160]; /* why mv_acpi_build() failed */
};

/* Defaults: nr_vcpus vCPUs with APIC id = index, no NUMA, no virtio, COM1 present, the
 * MV_ACPI_* ports, SCI on GSI 9, no i8042, no RTC. */
void mv_acpi_config_init(struct mv_acpi_config *cfg, uint32_t nr_vcpus);

/* Copies a validated vNUMA topology into cfg: vcpu->node map, distances and the memory ranges of
 * mv_vnuma_layout(MV_ACPI_MEM_HOLE_START, MV_ACPI_MEM_HOLE_END). v->nr_vcpus must equal
 * cfg->nr_vcpus. 0 or -EINVAL with a message. */
int mv_acpi_config_set_vnuma(struct mv_acpi_config *cfg, const struct mv_vnuma *v, char *err,
                             size_t errlen);

/* Everything mv_acpi_build() checks, without building. 0 or -EINVAL with a message. */
int mv_acpi_config_validate(const struct mv_acpi_config *cfg, char *err, size_t errlen);

/* Builds all tables into buf (to be placed at guest-physical buf_gpa, 16-byte aligned, all tables
 * below 4 GiB). 0, -EINVAL (bad config or gpa) or -ENOSPC (cap too small); on error out->err
 * says why. buf bytes past out->size are untouched. */
int mv_acpi_build(const struct mv_acpi_config *cfg, uint8_t *buf, size_t cap, uint64_t buf_gpa,
                  struct mv_acpi_result *out);

/* The table with that signature in a result, or NULL. */
const struct mv_acpi_table_info *mv_acpi_find_table(const struct mv_acpi_result *res,
                                                    const char *signature);

/* Sum of len bytes modulo 256 (0 for a table with a correct checksum). */
uint8_t mv_acpi_checksum(const uint8_t *p, size_t len);

#endif
