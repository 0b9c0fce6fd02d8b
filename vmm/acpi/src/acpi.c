/* ACPI table builder: RSDP, XSDT, FADT, FACS, DSDT (hand-assembled AML), MADT, SRAT, SLIT.
 * Every write goes through a bounded writer; tables are laid out in one buffer whose guest
 * address is known up front, so the pointers between tables are final when written. */
#include "mv/acpi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ACPI_OEM_ID        "MVKVM "
#define ACPI_OEM_TABLE_ID  "MVVMM   "
#define ACPI_OEM_REVISION  1
#define ACPI_CREATOR_ID    "MVKV"
#define ACPI_CREATOR_REV   1
#define ACPI_HEADER_LEN    36
#define ACPI_RSDP_LEN      36
#define ACPI_FADT_LEN      276 /* ACPI 6.x, up to the hypervisor vendor identity */
#define ACPI_FACS_LEN      64
#define ACPI_GAS_SYSTEM_IO 1

/* FADT flags and IA-PC boot architecture flags (ACPI 6.5 tables 5.10 and 5.11) */
#define FADT_F_WBINVD        (1u << 0)
#define FADT_F_PROC_C1       (1u << 2)
#define FADT_F_SLP_BUTTON    (1u << 5) /* no sleep button */
#define FADT_F_FIX_RTC       (1u << 6) /* no RTC wake status in PM1 */
#define FADT_F_TMR_VAL_EXT   (1u << 8) /* 32-bit PM timer */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define IAPC_LEGACY_DEVICES  (1u << 0)
#define IAPC_8042            (1u << 1)
#define IAPC_NO_VGA          (1u << 2)
#define IAPC_NO_MSI          (1u << 3)
#define IAPC_NO_CMOS_RTC     (1u << 5)

/* MADT structure types and interrupt flags */
#define MADT_LAPIC          0
#define MADT_IOAPIC         1
#define MADT_ISO            2
#define MADT_LAPIC_NMI      4
#define MADT_X2APIC         9
#define MADT_X2APIC_NMI     10
#define MADT_PCAT_COMPAT    1u
#define MPS_POLARITY_HIGH   1u
#define MPS_TRIGGER_EDGE    (1u << 2)
#define MPS_TRIGGER_LEVEL   (3u << 2)
#define X2APIC_THRESHOLD    255 /* xAPIC ids 0..254; 0xff is the broadcast id */
#define SRAT_LAPIC_AFFINITY 0
#define SRAT_MEM_AFFINITY   1
#define SRAT_X2APIC_AFFIN   2

/* ---- bounded byte writer ---- */

struct acpi_writer {
    uint8_t *buf;
    size_t cap;
    size_t pos;
    bool overflow;
};

static uint8_t *w_reserve(struct acpi_writer *w, size_t len)
{
    if (w->overflow || len > w->cap - w->pos) {
        w->overflow = true;
        return NULL;
    }
    uint8_t *p = w->buf + w->pos;
    memset(p, 0, len);
    w->pos += len;
    return p;
}

static void w_bytes(struct acpi_writer *w, const void *src, size_t len)
{
    uint8_t *p = w_reserve(w, len);
    if (p)
        memcpy(p, src, len);
}

static void w_u8(struct acpi_writer *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void w_le(struct acpi_writer *w, uint64_t v, unsigned len)
{
    uint8_t b[8];
    for (unsigned i = 0; i < len; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, len);
}

static void put_le(uint8_t *p, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t mv_acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

/* ---- table scaffolding ---- */

struct acpi_build {
    struct acpi_writer w;
    uint64_t gpa; /* guest address of buf[0] */
    struct mv_acpi_result *out;
};

/* Pads so that the next byte lands at a guest address aligned to align (a power of two). */
static void b_align(struct acpi_build *b, size_t align)
{
    size_t pad = (size_t)((align - ((b->gpa + b->w.pos) & (align - 1))) & (align - 1));
    w_reserve(&b->w, pad);
}

static size_t table_begin(struct acpi_build *b, const char *sig, uint8_t revision)
{
    b_align(b, 8);
    size_t start = b->w.pos;
    w_bytes(&b->w, sig, 4);
    w_le(&b->w, 0, 4); /* length, patched by table_end() */
    w_u8(&b->w, revision);
    w_u8(&b->w, 0); /* checksum */
    w_bytes(&b->w, ACPI_OEM_ID, 6);
    w_bytes(&b->w, ACPI_OEM_TABLE_ID, 8);
    w_le(&b->w, ACPI_OEM_REVISION, 4);
    w_bytes(&b->w, ACPI_CREATOR_ID, 4);
    w_le(&b->w, ACPI_CREATOR_REV, 4);
    return start;
}

static void record_table(struct acpi_build *b, const char *sig, size_t start, size_t len)
{
    struct mv_acpi_result *out = b->out;
    if (out->nr_tables >= MV_ACPI_MAX_TABLES)
        return;
    struct mv_acpi_table_info *t = &out->tables[out->nr_tables++];
    memcpy(t->signature, sig, 4);
    t->signature[4] = '\0';
    t->offset = (uint32_t)start;
    t->length = (uint32_t)len;
}

/* Patches length and checksum of the len-byte table at start; returns its guest address. */
static uint64_t table_seal(struct acpi_build *b, size_t start, size_t len)
{
    if (b->w.overflow)
        return 0;
    uint8_t *t = b->w.buf + start;
    put_le(t + 4, len, 4);
    t[9] = 0;
    t[9] = (uint8_t)(0x100 - mv_acpi_checksum(t, len));
    char sig[5];
    memcpy(sig, t, 4);
    sig[4] = '\0';
    record_table(b, sig, start, len);
    return b->gpa + start;
}

/* Seals the table that runs from start to the current end of the buffer. */
static uint64_t table_end(struct acpi_build *b, size_t start)
{
    return table_seal(b, start, b->w.pos - start);
}

/* Generic Address Structure */
static void w_gas(struct acpi_writer *w, uint8_t space, uint8_t bit_width, uint8_t access_size,
                  uint64_t addr)
{
    w_u8(w, space);
    w_u8(w, bit_width);
    w_u8(w, 0); /* bit offset */
    w_u8(w, access_size);
    w_le(w, addr, 8);
}

/* ---- AML ---- */

#define AML_ZERO         0x00
#define AML_ONE          0x01
#define AML_NAME         0x08
#define AML_BYTE_PREFIX  0x0a
#define AML_WORD_PREFIX  0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING       0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE        0x10
#define AML_BUFFER       0x11
#define AML_PACKAGE      0x12
#define AML_EXT_PREFIX   0x5b
#define AML_DEVICE       0x82 /* after AML_EXT_PREFIX */

/* Opens a PkgLength-prefixed object: reserves the 4-byte maximum, aml_pkg_end() shrinks it. */
static size_t aml_pkg_begin(struct acpi_writer *w)
{
    size_t at = w->pos;
    w_reserve(w, 4);
    return at;
}

/* PkgLength counts itself plus the content; 1 byte up to 63, else 2..4 bytes of 4+8+8+8 bits. */
static void aml_pkg_end(struct acpi_writer *w, size_t at)
{
    if (w->overflow)
        return;
    size_t content = w->pos - at - 4;
    unsigned n;
    if (content + 1 < 0x40)
        n = 1;
    else if (content + 2 < (1u << 12))
        n = 2;
    else if (content + 3 < (1u << 20))
        n = 3;
    else if (content + 4 < (1u << 28))
        n = 4;
    else {
        w->overflow = true;
        return;
    }
    size_t total = content + n;
    uint8_t *p = w->buf + at;
    if (n == 1) {
        p[0] = (uint8_t)total;
    } else {
        p[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
        for (unsigned i = 1; i < n; i++)
            p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    }
    memmove(p + n, p + 4, content);
    w->pos -= 4 - n;
}

static void aml_nameseg(struct acpi_writer *w, const char *seg)
{
    w_bytes(w, seg, 4);
}

static void aml_integer(struct acpi_writer *w, uint64_t v)
{
    if (v == 0) {
        w_u8(w, AML_ZERO);
    } else if (v == 1) {
        w_u8(w, AML_ONE);
    } else if (v <= 0xff) {
        w_u8(w, AML_BYTE_PREFIX);
        w_u8(w, (uint8_t)v);
    } else if (v <= 0xffff) {
        w_u8(w, AML_WORD_PREFIX);
        w_le(w, v, 2);
    } else if (v <= 0xffffffffu) {
        w_u8(w, AML_DWORD_PREFIX);
        w_le(w, v, 4);
    } else {
        w_u8(w, AML_QWORD_PREFIX);
        w_le(w, v, 8);
    }
}

static void aml_string(struct acpi_writer *w, const char *s)
{
    w_u8(w, AML_STRING);
    w_bytes(w, s, strlen(s) + 1);
}

/* EisaId("PNP0501"): three 5-bit letters and four hex digits, as a DWordConst. */
static void aml_eisaid(struct acpi_writer *w, const char *id)
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t d[4];
    unsigned digit[4];
    for (int i = 0; i < 4; i++)
        digit[i] = (unsigned)(strchr(hex, id[3 + i]) - hex);
    d[0] = (uint8_t)(((id[0] - 0x40) << 2) | ((id[1] - 0x40) >> 3));
    d[1] = (uint8_t)((((id[1] - 0x40) & 7) << 5) | (id[2] - 0x40));
    d[2] = (uint8_t)((digit[0] << 4) | digit[1]);
    d[3] = (uint8_t)((digit[2] << 4) | digit[3]);
    w_u8(w, AML_DWORD_PREFIX);
    w_bytes(w, d, 4);
}

/* Name (_CRS, ResourceTemplate () {...}): the descriptors come in rt[0..len). */
static void aml_name_crs(struct acpi_writer *w, const uint8_t *rt, size_t len)
{
    w_u8(w, AML_NAME);
    aml_nameseg(w, "_CRS");
    w_u8(w, AML_BUFFER);
    size_t pkg = aml_pkg_begin(w);
    aml_integer(w, len + 2);
    w_bytes(w, rt, len);
    w_u8(w, 0x79); /* End Tag, checksum 0 = "treat as correct" */
    w_u8(w, 0x00);
    aml_pkg_end(w, pkg);
}

static void aml_device_begin(struct acpi_writer *w, const char *name, size_t *pkg)
{
    w_u8(w, AML_EXT_PREFIX);
    w_u8(w, AML_DEVICE);
    *pkg = aml_pkg_begin(w);
    aml_nameseg(w, name);
}

static void aml_com1(struct acpi_writer *w)
{
    size_t dev;
    aml_device_begin(w, "COM1", &dev);
    w_u8(w, AML_NAME);
    aml_nameseg(w, "_HID");
    aml_eisaid(w, "PNP0501");
    w_u8(w, AML_NAME);
    aml_nameseg(w, "_UID");
    aml_integer(w, 1);
    const uint8_t rt[] = {/* IO (Decode16, 0x3f8, 0x3f8, 0x00, 0x08) */
                          0x47, 0x01, MV_ACPI_COM1_PORT & 0xff, MV_ACPI_COM1_PORT >> 8,
                          MV_ACPI_COM1_PORT & 0xff, MV_ACPI_COM1_PORT >> 8, 0x00, 0x08,
                          /* IRQNoFlags () {4} */
                          0x22, 1u << MV_ACPI_COM1_IRQ, 0x00};
    aml_name_crs(w, rt, sizeof(rt));
    aml_pkg_end(w, dev);
}

static void aml_virtio_mmio(struct acpi_writer *w, unsigned idx, const struct mv_acpi_virtio_dev *d)
{
    char name[5];
    snprintf(name, sizeof(name), "VR%02X", idx & 0xffu);
    size_t dev;
    aml_device_begin(w, name, &dev);
    w_u8(w, AML_NAME);
    aml_nameseg(w, "_HID");
    aml_string(w, "LNRO0005");
    w_u8(w, AML_NAME);
    aml_nameseg(w, "_UID");
    aml_integer(w, idx);
    uint8_t rt[12 + 9];
    /* Memory32Fixed (ReadWrite, base, size) */
    rt[0] = 0x86;
    put_le(rt + 1, 9, 2);
    rt[3] = 0x01;
    put_le(rt + 4, d->base, 4);
    put_le(rt + 8, d->size, 4);
    /* Interrupt (ResourceConsumer, Edge|Level, ActiveHigh, Exclusive) {gsi} */
    rt[12] = 0x89;
    put_le(rt + 13, 6, 2);
    rt[15] = d->level ? 0x01 : 0x03;
    rt[16] = 1;
    put_le(rt + 17, d->gsi, 4);
    aml_name_crs(w, rt, sizeof(rt));
    aml_pkg_end(w, dev);
}

static uint64_t build_dsdt(struct acpi_build *b, const struct mv_acpi_config *cfg)
{
    struct acpi_writer *w = &b->w;
    size_t start = table_begin(b, "DSDT", 2); /* revision 2: 64-bit AML integers */

    /* Name (_S5, Package () { SLP_TYPa, SLP_TYPb, 0, 0 }): the DSDT's scope is the root, so
     * names need no '\' prefix (iasl would optimise it away too) */
    w_u8(w, AML_NAME);
    aml_nameseg(w, "_S5_");
    w_u8(w, AML_PACKAGE);
    size_t pkg = aml_pkg_begin(w);
    w_u8(w, 4);
    aml_integer(w, cfg->s5_slp_typ);
    aml_integer(w, cfg->s5_slp_typ);
    aml_integer(w, 0);
    aml_integer(w, 0);
    aml_pkg_end(w, pkg);

    /* Scope (_SB) { devices } */
    w_u8(w, AML_SCOPE);
    size_t scope = aml_pkg_begin(w);
    aml_nameseg(w, "_SB_");
    if (cfg->com1)
        aml_com1(w);
    for (uint32_t i = 0; i < cfg->nr_virtio; i++)
        aml_virtio_mmio(w, i, &cfg->virtio[i]);
    aml_pkg_end(w, scope);
    return table_end(b, start);
}

/* ---- fixed tables ---- */

static uint64_t build_facs(struct acpi_build *b)
{
    b_align(b, 64); /* the FACS must be 64-byte aligned */
    size_t start = b->w.pos;
    uint8_t *p = w_reserve(&b->w, ACPI_FACS_LEN);
    if (!p)
        return 0;
    memcpy(p, "FACS", 4);
    put_le(p + 4, ACPI_FACS_LEN, 4);
    /* hardware signature, waking vectors, global lock, flags: 0 */
    p[32] = 2; /* version */
    record_table(b, "FACS", start, ACPI_FACS_LEN);
    return b->gpa + start;
}

static uint64_t build_fadt(struct acpi_build *b, const struct mv_acpi_config *cfg, uint64_t facs,
                           uint64_t dsdt)
{
    struct acpi_writer *w = &b->w;
    size_t start = table_begin(b, "FACP", 6);
    uint8_t *f = w_reserve(w, ACPI_FADT_LEN - ACPI_HEADER_LEN);
    if (!f)
        return 0;
    f -= ACPI_HEADER_LEN;    /* offsets below are the spec's, from the table start */
    put_le(f + 36, facs, 4); /* FIRMWARE_CTRL (below 4 GiB: X_FIRMWARE_CTRL stays 0) */
    put_le(f + 40, dsdt, 4); /* DSDT */
    f[45] = 0;               /* Preferred_PM_Profile: unspecified */
    put_le(f + 46, cfg->sci_gsi, 2);
    /* SMI_CMD, ACPI_ENABLE, ACPI_DISABLE = 0: always in ACPI mode (SCI_EN reads 1) */
    put_le(f + 56, cfg->pm1a_evt_port, 4);
    put_le(f + 64, cfg->pm1a_cnt_port, 4);
    put_le(f + 76, cfg->pm_tmr_port, 4);
    f[88] = MV_ACPI_PM1A_EVT_LEN;
    f[89] = MV_ACPI_PM1A_CNT_LEN;
    f[91] = MV_ACPI_PM_TMR_LEN;
    put_le(f + 96, 101, 2);       /* P_LVL2_LAT > 100: no C2 */
    put_le(f + 98, 1001, 2);      /* P_LVL3_LAT > 1000: no C3 */
    f[108] = cfg->rtc ? 0x32 : 0; /* CENTURY: the CMOS index Linux reads */
    uint16_t iapc = IAPC_NO_VGA | IAPC_NO_MSI;
    if (cfg->com1 || cfg->i8042)
        iapc |= IAPC_LEGACY_DEVICES;
    if (cfg->i8042)
        iapc |= IAPC_8042;
    if (!cfg->rtc)
        iapc |= IAPC_NO_CMOS_RTC;
    put_le(f + 109, iapc, 2);
    /* PWR_BUTTON (bit 4) clear: the power button is the fixed-feature one in PM1 */
    put_le(f + 112,
           FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_FIX_RTC |
               FADT_F_TMR_VAL_EXT | FADT_F_RESET_REG_SUP,
           4);
    struct acpi_writer gw = {f, ACPI_FADT_LEN, 116, false};
    w_gas(&gw, ACPI_GAS_SYSTEM_IO, 8, 1, cfg->reset_port); /* RESET_REG, byte access */
    f[128] = cfg->reset_value;
    f[131] = 5;               /* FADT minor version: ACPI 6.5 */
    put_le(f + 140, dsdt, 8); /* X_DSDT */
    gw.pos = 148;
    w_gas(&gw, ACPI_GAS_SYSTEM_IO, MV_ACPI_PM1A_EVT_LEN * 8, 2, cfg->pm1a_evt_port);
    gw.pos = 172;
    w_gas(&gw, ACPI_GAS_SYSTEM_IO, MV_ACPI_PM1A_CNT_LEN * 8, 2, cfg->pm1a_cnt_port);
    gw.pos = 208;
    w_gas(&gw, ACPI_GAS_SYSTEM_IO, MV_ACPI_PM_TMR_LEN * 8, 3, cfg->pm_tmr_port);
    memcpy(f + 268, "MVKVM\0\0\0", 8); /* hypervisor vendor identity */
    return table_end(b, start);
}

static uint64_t build_madt(struct acpi_build *b, const struct mv_acpi_config *cfg)
{
    struct acpi_writer *w = &b->w;
    size_t start = table_begin(b, "APIC", 5);
    w_le(w, MV_ACPI_LAPIC_ADDR, 4);
    w_le(w, MADT_PCAT_COMPAT, 4); /* KVM's irqchip has the dual 8259s: Linux masks them */
    bool any_x2apic = false;
    for (uint32_t i = 0; i < cfg->nr_vcpus; i++) {
        if (cfg->apic_id[i] < X2APIC_THRESHOLD) {
            w_u8(w, MADT_LAPIC);
            w_u8(w, 8);
            w_u8(w, (uint8_t)i); /* ACPI processor UID = vCPU index */
            w_u8(w, (uint8_t)cfg->apic_id[i]);
            w_le(w, 1, 4); /* enabled */
        } else {
            any_x2apic = true;
            w_u8(w, MADT_X2APIC);
            w_u8(w, 16);
            w_le(w, 0, 2);
            w_le(w, cfg->apic_id[i], 4);
            w_le(w, 1, 4);
            w_le(w, i, 4);
        }
    }
    w_u8(w, MADT_IOAPIC);
    w_u8(w, 12);
    w_u8(w, (uint8_t)cfg->ioapic_id);
    w_u8(w, 0);
    w_le(w, cfg->ioapic_addr, 4);
    w_le(w, cfg->ioapic_gsi_base, 4);
    /* ISA IRQ 0 (PIT) is wired to IOAPIC pin 2, as on every PC */
    w_u8(w, MADT_ISO);
    w_u8(w, 10);
    w_u8(w, 0); /* bus ISA */
    w_u8(w, 0);
    w_le(w, 2, 4);
    w_le(w, 0, 2); /* conforms to the bus: edge, high */
    /* The SCI is level-triggered, active high */
    w_u8(w, MADT_ISO);
    w_u8(w, 10);
    w_u8(w, 0);
    w_u8(w, (uint8_t)cfg->sci_gsi);
    w_le(w, cfg->sci_gsi, 4);
    w_le(w, MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL, 2);
    /* LINT1 of every processor is the NMI input */
    w_u8(w, MADT_LAPIC_NMI);
    w_u8(w, 6);
    w_u8(w, 0xff); /* all processors */
    w_le(w, MPS_POLARITY_HIGH | MPS_TRIGGER_EDGE, 2);
    w_u8(w, 1);
    if (any_x2apic) {
        w_u8(w, MADT_X2APIC_NMI);
        w_u8(w, 12);
        w_le(w, MPS_POLARITY_HIGH | MPS_TRIGGER_EDGE, 2);
        w_le(w, 0xffffffffu, 4);
        w_u8(w, 1);
        w_le(w, 0, 3);
    }
    return table_end(b, start);
}

static uint64_t build_srat(struct acpi_build *b, const struct mv_acpi_config *cfg)
{
    struct acpi_writer *w = &b->w;
    size_t start = table_begin(b, "SRAT", 3);
    w_le(w, 1, 4); /* reserved, 1 for compatibility */
    w_le(w, 0, 8);
    for (uint32_t i = 0; i < cfg->nr_vcpus; i++) {
        uint32_t pd = cfg->vcpu_node[i];
        if (cfg->apic_id[i] < X2APIC_THRESHOLD) {
            w_u8(w, SRAT_LAPIC_AFFINITY);
            w_u8(w, 16);
            w_u8(w, (uint8_t)pd); /* proximity domain [7:0] */
            w_u8(w, (uint8_t)cfg->apic_id[i]);
            w_le(w, 1, 4); /* enabled */
            w_u8(w, 0);    /* local SAPIC EID */
            w_le(w, pd >> 8, 3);
            w_le(w, 0, 4); /* clock domain */
        } else {
            w_u8(w, SRAT_X2APIC_AFFIN);
            w_u8(w, 24);
            w_le(w, 0, 2);
            w_le(w, pd, 4);
            w_le(w, cfg->apic_id[i], 4);
            w_le(w, 1, 4);
            w_le(w, 0, 4);
            w_le(w, 0, 4);
        }
    }
    for (uint32_t i = 0; i < cfg->nr_mem_ranges; i++) {
        const struct mv_vnuma_range *r = &cfg->mem[i];
        w_u8(w, SRAT_MEM_AFFINITY);
        w_u8(w, 40);
        w_le(w, r->node, 4);
        w_le(w, 0, 2);
        w_le(w, r->gpa, 8); /* base low + high */
        w_le(w, r->size, 8);
        w_le(w, 0, 4);
        w_le(w, 1, 4); /* enabled */
        w_le(w, 0, 8);
    }
    return table_end(b, start);
}

static uint64_t build_slit(struct acpi_build *b, const struct mv_acpi_config *cfg)
{
    struct acpi_writer *w = &b->w;
    size_t start = table_begin(b, "SLIT", 1);
    w_le(w, cfg->nr_nodes, 8);
    for (uint32_t i = 0; i < cfg->nr_nodes; i++)
        w_bytes(w, cfg->distance[i], cfg->nr_nodes);
    return table_end(b, start);
}

/* ---- configuration ---- */

void mv_acpi_config_init(struct mv_acpi_config *cfg, uint32_t nr_vcpus)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->nr_vcpus = nr_vcpus;
    for (uint32_t i = 0; i < MV_ACPI_MAX_VCPUS; i++)
        cfg->apic_id[i] = i;
    cfg->ioapic_addr = MV_ACPI_IOAPIC_ADDR;
    cfg->com1 = true;
    cfg->pm1a_evt_port = MV_ACPI_PM1A_EVT_PORT;
    cfg->pm1a_cnt_port = MV_ACPI_PM1A_CNT_PORT;
    cfg->pm_tmr_port = MV_ACPI_PM_TMR_PORT;
    cfg->reset_port = MV_ACPI_RESET_PORT;
    cfg->reset_value = MV_ACPI_RESET_VALUE;
    cfg->s5_slp_typ = MV_ACPI_S5_SLP_TYP;
    cfg->sci_gsi = MV_ACPI_SCI_GSI;
}

__attribute__((format(printf, 3, 4))) static int acpi_error(char *err, size_t errlen,
                                                            const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "acpi: ");
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

int mv_acpi_config_set_vnuma(struct mv_acpi_config *cfg, const struct mv_vnuma *v, char *err,
                             size_t errlen)
{
    int rc = mv_vnuma_validate(v, err, errlen);
    if (rc)
        return rc;
    if (v->nr_vcpus != cfg->nr_vcpus)
        return acpi_error(err, errlen, "the vNUMA topology has %u vcpus, the VM %u", v->nr_vcpus,
                          cfg->nr_vcpus);
    struct mv_vnuma_range ranges[MV_ACPI_MAX_MEM_RANGES];
    int n = mv_vnuma_layout(v, MV_ACPI_MEM_HOLE_START, MV_ACPI_MEM_HOLE_END, ranges,
                            MV_ACPI_MAX_MEM_RANGES);
    if (n < 0)
        return acpi_error(err, errlen, "vNUMA memory layout needs too many ranges");
    cfg->nr_nodes = v->nr_nodes;
    for (uint32_t c = 0; c < v->nr_vcpus; c++)
        cfg->vcpu_node[c] = v->vcpu_node[c];
    memcpy(cfg->mem, ranges, sizeof(ranges[0]) * (size_t)n);
    cfg->nr_mem_ranges = (uint32_t)n;
    for (uint32_t i = 0; i < v->nr_nodes; i++)
        for (uint32_t j = 0; j < v->nr_nodes; j++)
            cfg->distance[i][j] = v->distance[i][j];
    return 0;
}

/* Intervals [a, a+al) and [b, b+bl) overlap (lengths > 0, no wrap checked by the caller). */
static bool ranges_overlap(uint64_t a, uint64_t al, uint64_t b, uint64_t bl)
{
    return a < b + bl && b < a + al;
}

int mv_acpi_config_validate(const struct mv_acpi_config *cfg, char *err, size_t errlen)
{
    if (cfg->nr_vcpus < 1 || cfg->nr_vcpus > MV_ACPI_MAX_VCPUS)
        return acpi_error(err, errlen, "%u vcpus: must be 1..%u", cfg->nr_vcpus, MV_ACPI_MAX_VCPUS);
    for (uint32_t i = 0; i < cfg->nr_vcpus; i++) {
        if (cfg->apic_id[i] == 0xffffffffu)
            return acpi_error(err, errlen, "vcpu %u: APIC id 0xffffffff is reserved", i);
        for (uint32_t j = 0; j < i; j++)
            if (cfg->apic_id[i] == cfg->apic_id[j])
                return acpi_error(err, errlen, "vcpus %u and %u share APIC id %u", j, i,
                                  cfg->apic_id[i]);
    }
    if (cfg->ioapic_id > 0xff)
        return acpi_error(err, errlen, "IOAPIC id %u is not 0..255", cfg->ioapic_id);
    if (cfg->ioapic_addr > 0xfffff000u || cfg->ioapic_addr % 0x1000)
        return acpi_error(err, errlen, "IOAPIC address 0x%llx is not a page below 4G",
                          (unsigned long long)cfg->ioapic_addr);
    if (cfg->sci_gsi > 15)
        return acpi_error(err, errlen, "SCI GSI %u is not an ISA IRQ 0..15", cfg->sci_gsi);
    if (cfg->sci_gsi == 0 || cfg->sci_gsi == 2 || (cfg->com1 && cfg->sci_gsi == MV_ACPI_COM1_IRQ))
        return acpi_error(err, errlen, "SCI GSI %u collides with the PIT/cascade/COM1",
                          cfg->sci_gsi);
    if (cfg->s5_slp_typ > 7)
        return acpi_error(err, errlen, "S5 SLP_TYP %u is not 0..7", cfg->s5_slp_typ);
    const struct {
        const char *name;
        uint32_t port, len;
    } io[] = {{"PM1a_EVT", cfg->pm1a_evt_port, MV_ACPI_PM1A_EVT_LEN},
              {"PM1a_CNT", cfg->pm1a_cnt_port, MV_ACPI_PM1A_CNT_LEN},
              {"PM_TMR", cfg->pm_tmr_port, MV_ACPI_PM_TMR_LEN},
              {"RESET", cfg->reset_port, 1},
              {"COM1", cfg->com1 ? MV_ACPI_COM1_PORT : 0, 8}};
    for (size_t i = 0; i < sizeof(io) / sizeof(io[0]); i++) {
        if (io[i].port == 0) {
            if (i == 4)
                continue; /* COM1 absent */
            return acpi_error(err, errlen, "%s port 0 is not allowed", io[i].name);
        }
        if (io[i].port + io[i].len > 0x10000)
            return acpi_error(err, errlen, "%s block at 0x%x runs past port 0xffff", io[i].name,
                              io[i].port);
        for (size_t j = 0; j < i; j++)
            if (io[j].port && ranges_overlap(io[i].port, io[i].len, io[j].port, io[j].len))
                return acpi_error(err, errlen, "%s port 0x%x overlaps %s at 0x%x", io[i].name,
                                  io[i].port, io[j].name, io[j].port);
    }

    if (cfg->nr_nodes > MV_ACPI_MAX_NODES)
        return acpi_error(err, errlen, "%u vnodes: at most %u", cfg->nr_nodes, MV_ACPI_MAX_NODES);
    if (cfg->nr_nodes) {
        for (uint32_t i = 0; i < cfg->nr_vcpus; i++)
            if (cfg->vcpu_node[i] >= cfg->nr_nodes)
                return acpi_error(err, errlen, "vcpu %u is on vnode %u of %u", i, cfg->vcpu_node[i],
                                  cfg->nr_nodes);
        if (cfg->nr_mem_ranges < 1 || cfg->nr_mem_ranges > MV_ACPI_MAX_MEM_RANGES)
            return acpi_error(err, errlen, "%u memory ranges: must be 1..%u", cfg->nr_mem_ranges,
                              MV_ACPI_MAX_MEM_RANGES);
        for (uint32_t i = 0; i < cfg->nr_mem_ranges; i++) {
            const struct mv_vnuma_range *r = &cfg->mem[i];
            if (r->node >= cfg->nr_nodes)
                return acpi_error(err, errlen, "memory range %u is on vnode %u of %u", i, r->node,
                                  cfg->nr_nodes);
            if (r->size == 0 || r->gpa > UINT64_MAX - r->size)
                return acpi_error(err, errlen, "memory range %u is empty or wraps", i);
            for (uint32_t j = 0; j < i; j++)
                if (ranges_overlap(r->gpa, r->size, cfg->mem[j].gpa, cfg->mem[j].size))
                    return acpi_error(err, errlen, "memory ranges %u and %u overlap", j, i);
        }
        for (uint32_t i = 0; i < cfg->nr_nodes; i++)
            for (uint32_t j = 0; j < cfg->nr_nodes; j++) {
                uint8_t d = cfg->distance[i][j];
                if ((i == j && d != MV_VNUMA_LOCAL_DISTANCE) ||
                    (i != j && (d <= MV_VNUMA_LOCAL_DISTANCE || d == 255)))
                    return acpi_error(err, errlen, "distance %u->%u = %u is invalid", i, j, d);
            }
    } else if (cfg->nr_mem_ranges) {
        return acpi_error(err, errlen, "memory ranges given without vnodes");
    }

    if (cfg->nr_virtio > MV_ACPI_MAX_VIRTIO)
        return acpi_error(err, errlen, "%u virtio-mmio devices: at most %u", cfg->nr_virtio,
                          MV_ACPI_MAX_VIRTIO);
    for (uint32_t i = 0; i < cfg->nr_virtio; i++) {
        const struct mv_acpi_virtio_dev *d = &cfg->virtio[i];
        if (d->size == 0 || d->base > 0xffffffffu || d->size > 0x100000000ull - d->base)
            return acpi_error(err, errlen, "virtio-mmio %u: window 0x%llx+0x%x is not below 4G", i,
                              (unsigned long long)d->base, d->size);
        if (d->gsi < 1 || d->gsi > 254 || d->gsi == 2 || d->gsi == cfg->sci_gsi ||
            (cfg->com1 && d->gsi == MV_ACPI_COM1_IRQ))
            return acpi_error(err, errlen, "virtio-mmio %u: GSI %u is reserved or out of range", i,
                              d->gsi);
        for (uint32_t j = 0; j < i; j++)
            if (ranges_overlap(d->base, d->size, cfg->virtio[j].base, cfg->virtio[j].size))
                return acpi_error(err, errlen, "virtio-mmio windows %u and %u overlap", j, i);
    }
    return 0;
}

/* ---- build ---- */

const struct mv_acpi_table_info *mv_acpi_find_table(const struct mv_acpi_result *res,
                                                    const char *signature)
{
    for (uint32_t i = 0; i < res->nr_tables && i < MV_ACPI_MAX_TABLES; i++)
        if (strncmp(res->tables[i].signature, signature, 4) == 0)
            return &res->tables[i];
    return NULL;
}

int mv_acpi_build(const struct mv_acpi_config *cfg, uint8_t *buf, size_t cap, uint64_t buf_gpa,
                  struct mv_acpi_result *out)
{
    memset(out, 0, sizeof(*out));
    int rc = mv_acpi_config_validate(cfg, out->err, sizeof(out->err));
    if (rc)
        return rc;
    if (buf_gpa % 16 || buf_gpa >= MV_ACPI_MEM_HOLE_END)
        return acpi_error(out->err, sizeof(out->err),
                          "table address 0x%llx is not 16-byte aligned below 4G",
                          (unsigned long long)buf_gpa);
    if (cap > MV_ACPI_MEM_HOLE_END - buf_gpa)
        cap = (size_t)(MV_ACPI_MEM_HOLE_END - buf_gpa); /* every table stays below 4 GiB */

    struct acpi_build b = {.w = {buf, cap, 0, false}, .gpa = buf_gpa, .out = out};
    bool numa = cfg->nr_nodes > 0;
    unsigned nr_xsdt = numa ? 4 : 2; /* FACP, APIC[, SRAT, SLIT] */

    /* RSDP first so a scan of 0xe0000-0xfffff finds it at buf_gpa; then the XSDT, whose
     * entries are filled once the tables exist. */
    w_reserve(&b.w, ACPI_RSDP_LEN);
    size_t xsdt_start = table_begin(&b, "XSDT", 1);
    size_t xsdt_entries = b.w.pos;
    w_reserve(&b.w, 8 * nr_xsdt);

    uint64_t facs = build_facs(&b);
    uint64_t dsdt = build_dsdt(&b, cfg);
    uint64_t tables[4];
    tables[0] = build_fadt(&b, cfg, facs, dsdt);
    tables[1] = build_madt(&b, cfg);
    if (numa) {
        tables[2] = build_srat(&b, cfg);
        tables[3] = build_slit(&b, cfg);
    }
    if (b.w.overflow) {
        snprintf(out->err, sizeof(out->err), "acpi: tables need more than the %zu bytes available",
                 cap);
        memset(out->tables, 0, sizeof(out->tables));
        out->nr_tables = 0;
        return -ENOSPC;
    }
    for (unsigned i = 0; i < nr_xsdt; i++)
        put_le(buf + xsdt_entries + 8 * i, tables[i], 8);
    uint64_t xsdt = table_seal(&b, xsdt_start, ACPI_HEADER_LEN + 8 * nr_xsdt);

    uint8_t *r = buf;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, ACPI_OEM_ID, 6);
    r[15] = 2;            /* revision: ACPI 2.0+ */
    put_le(r + 16, 0, 4); /* no RSDT */
    put_le(r + 20, ACPI_RSDP_LEN, 4);
    put_le(r + 24, xsdt, 8);
    r[8] = (uint8_t)(0x100 - mv_acpi_checksum(r, 20));
    r[32] = (uint8_t)(0x100 - mv_acpi_checksum(r, ACPI_RSDP_LEN));
    record_table(&b, "RSDP", 0, ACPI_RSDP_LEN);

    out->rsdp_gpa = buf_gpa;
    out->size = b.w.pos;
    return 0;
}
