/* Test guest for mvvmm's ACPI tables: finds the RSDP (start info and the legacy 0xe0000-0xfffff
 * scan must agree), walks the XSDT checking every checksum, and compares MADT, SRAT, SLIT, FADT
 * and DSDT with what the test configured, then powers off through the FADT's PM1a control port
 * and the DSDT's \_S5 value. Expected values come on the command line:
 *   acpi_nodes=N            vnodes (0: no SRAT/SLIT expected)
 *   acpi_cpu_nodes=a,b,..   vnode of each vCPU
 *   acpi_dist=d,d,..        SLIT row by row
 *   acpi_mem=n:base:size,.. SRAT memory ranges in order (base/size in hex)
 *   acpi_virtio=N           LNRO0005 devices in the DSDT
 * Ring-0 code is emulated under PVM: only byte loops over a few KiB of tables. */
#include "guest.h"

#define MAX_NODES  32
#define MAX_CPUS   64
#define MAX_RANGES 40

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t sum8(const uint8_t *p, uint32_t len)
{
    uint8_t s = 0;
    for (uint32_t i = 0; i < len; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

static const uint8_t *phys(uint64_t gpa)
{
    return (const uint8_t *)(uintptr_t)gpa;
}

/* ---- command line ---- */

/* Parses "a,b:c" (',' and ':' both separate; decimal, or hex digits) into out; returns the
 * count or -1. */
static int parse_list(const char *s, uint64_t *out, int max, bool hex)
{
    int n = 0;
    while (*s) {
        if (n == max)
            return -1;
        uint64_t v = 0;
        bool any = false;
        for (; *s && *s != ',' && *s != ':'; s++) {
            unsigned d;
            if (*s >= '0' && *s <= '9')
                d = (unsigned)(*s - '0');
            else if (hex && *s >= 'a' && *s <= 'f')
                d = (unsigned)(*s - 'a' + 10);
            else if (hex && *s >= 'A' && *s <= 'F')
                d = (unsigned)(*s - 'A' + 10);
            else
                return -1;
            v = v * (hex ? 16 : 10) + d;
            any = true;
        }
        if (!any)
            return -1;
        out[n++] = v;
        if (*s)
            s++;
    }
    return n;
}

/* The list under key: its length, NOT_GIVEN if the key is absent; a malformed list is a FAIL of
 * test (returns -1), never a silently skipped check. */
#define NOT_GIVEN (-2)
static int expected_list(const char *key, uint64_t *out, int max, bool hex, const char *test)
{
    static char buf[1024];
    if (!guest_cmdline_get(key, buf, sizeof(buf)))
        return NOT_GIVEN;
    int n = parse_list(buf, out, max, hex);
    if (n < 0)
        guest_failf(test, "malformed %s= on the command line", key);
    return n;
}

/* ---- table lookup ---- */

static uint64_t rsdp_gpa;
static const uint8_t *xsdt;
static uint32_t xsdt_entries;

static const uint8_t *find_table(const char *sig)
{
    for (uint32_t i = 0; i < xsdt_entries; i++) {
        const uint8_t *t = phys(le(xsdt + 36 + 8 * i, 8));
        if (!memcmp(t, sig, 4))
            return t;
    }
    return NULL;
}

static bool check_rsdp(void)
{
    const char *name = "acpi_rsdp";
    rsdp_gpa = guest_rsdp();
    uint64_t scanned = 0;
    for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
        const uint8_t *p = phys(a);
        if (!memcmp(p, "RSD PTR ", 8) && sum8(p, 20) == 0) {
            scanned = a;
            break;
        }
    }
    if (!rsdp_gpa) {
        guest_fail(name, "no RSDP address in the start info");
        return false;
    }
    if (scanned != rsdp_gpa) {
        guest_failf(name, "start info says 0x%llx, the 0xe0000 scan finds 0x%llx",
                    (unsigned long long)rsdp_gpa, (unsigned long long)scanned);
        return false;
    }
    const uint8_t *r = phys(rsdp_gpa);
    if (sum8(r, 20) || r[15] < 2 || le(r + 20, 4) != 36 || sum8(r, 36)) {
        guest_fail(name, "bad RSDP checksum, revision or length");
        return false;
    }
    uint64_t x = le(r + 24, 8);
    if (!x || x >= 0x100000000ull) {
        guest_failf(name, "XSDT address 0x%llx", (unsigned long long)x);
        return false;
    }
    xsdt = phys(x);
    uint32_t len = (uint32_t)le(xsdt + 4, 4);
    if (memcmp(xsdt, "XSDT", 4) || len < 36 || (len - 36) % 8 || len > 4096 || sum8(xsdt, len)) {
        guest_fail(name, "bad XSDT signature, length or checksum");
        return false;
    }
    xsdt_entries = (len - 36) / 8;
    guest_pass(name);
    return true;
}

static void check_checksums(void)
{
    const char *name = "acpi_checksums";
    unsigned n = 0;
    for (uint32_t i = 0; i < xsdt_entries; i++) {
        uint64_t g = le(xsdt + 36 + 8 * i, 8);
        const uint8_t *t = phys(g);
        uint32_t len = (uint32_t)le(t + 4, 4);
        if (g == 0 || g >= 0x100000000ull || len < 36 || len > 65536) {
            guest_failf(name, "XSDT entry %u: table 0x%llx length %u", i, (unsigned long long)g,
                        len);
            return;
        }
        if (sum8(t, len)) {
            guest_failf(name, "%c%c%c%c checksum is off by %u", t[0], t[1], t[2], t[3],
                        sum8(t, len));
            return;
        }
        n++;
    }
    const uint8_t *f = find_table("FACP");
    if (!f) {
        guest_fail(name, "no FADT");
        return;
    }
    uint64_t dsdt = le(f + 140, 8) ? le(f + 140, 8) : le(f + 40, 4);
    const uint8_t *d = phys(dsdt);
    uint32_t dlen = (uint32_t)le(d + 4, 4);
    if (memcmp(d, "DSDT", 4) || dlen < 36 || dlen > 65536 || sum8(d, dlen)) {
        guest_fail(name, "bad DSDT signature, length or checksum");
        return;
    }
    uint64_t facs = le(f + 132, 8) ? le(f + 132, 8) : le(f + 36, 4);
    if (!facs || facs % 64 || memcmp(phys(facs), "FACS", 4) || le(phys(facs) + 4, 4) < 64) {
        guest_failf(name, "bad FACS at 0x%llx", (unsigned long long)facs);
        return;
    }
    guest_printf("acpi: %u tables in the XSDT + DSDT + FACS, checksums good\n", n);
    guest_pass(name);
}

/* The DSDT's \_S5 SLP_TYPa, or -1. */
static int dsdt_s5(const uint8_t *d, uint32_t len)
{
    for (uint32_t i = 36; i + 8 < len; i++) {
        if (memcmp(d + i, "_S5_", 4) || d[i + 4] != 0x12)
            continue;
        const uint8_t *p = d + i + 5;
        p += 1 + (p[0] >> 6); /* PkgLength */
        p++;                  /* NumElements */
        if (p[0] == 0x0a)
            return p[1];
        if (p[0] == 0x00 || p[0] == 0x01)
            return p[0];
        return -1;
    }
    return -1;
}

static unsigned count_in(const uint8_t *d, uint32_t len, const char *s, uint32_t slen)
{
    unsigned n = 0;
    for (uint32_t i = 0; i + slen <= len; i++)
        if (!memcmp(d + i, s, slen))
            n++;
    return n;
}

static uint16_t pm1a_cnt_port;
static int s5_typ = -1;

static void check_fadt_dsdt(void)
{
    const char *name = "acpi_fadt";
    const uint8_t *f = find_table("FACP");
    static struct mv_hypercall hc;
    hc.op = MV_HC_POWER_PORTS;
    hc.result = -1;
    guest_hypercall(&hc);
    if (!f || hc.result != 0) {
        guest_failf(name, "%s", f ? "MV_HC_POWER_PORTS failed" : "no FADT");
        return;
    }
    pm1a_cnt_port = (uint16_t)le(f + 64, 4);
    uint64_t x_cnt = le(f + 176, 8), reset = le(f + 120, 8);
    if (pm1a_cnt_port != hc.arg[0] || (x_cnt && x_cnt != hc.arg[0]) || reset != hc.arg[2] ||
        f[116] != 1 || f[128] != hc.arg[3]) {
        guest_failf(name,
                    "FADT PM1a_CNT 0x%x reset 0x%llx/0x%x, mvvmm emulates 0x%llx 0x%llx/0x%llx",
                    pm1a_cnt_port, (unsigned long long)reset, f[128], (unsigned long long)hc.arg[0],
                    (unsigned long long)hc.arg[2], (unsigned long long)hc.arg[3]);
        return;
    }
    if (le(f + 112, 4) & (1u << 20)) {
        guest_fail(name, "FADT says hardware-reduced");
        return;
    }
    if (!le(f + 56, 4) || f[88] != 4 || !le(f + 76, 4) || f[91] != 4 || !le(f + 46, 2)) {
        guest_fail(name, "PM1a event block, PM timer or SCI missing");
        return;
    }
    guest_pass(name);

    name = "acpi_dsdt";
    uint64_t dsdt = le(f + 140, 8) ? le(f + 140, 8) : le(f + 40, 4);
    const uint8_t *d = phys(dsdt);
    uint32_t dlen = (uint32_t)le(d + 4, 4);
    s5_typ = dsdt_s5(d, dlen);
    if (s5_typ < 0 || (uint64_t)s5_typ != hc.arg[1]) {
        guest_failf(name, "\\_S5 SLP_TYP %d, mvvmm expects %llu", s5_typ,
                    (unsigned long long)hc.arg[1]);
        return;
    }
    static const uint8_t pnp0501[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
    if (!count_in(d, dlen, (const char *)pnp0501, sizeof(pnp0501))) {
        guest_fail(name, "no PNP0501 (COM1) device");
        return;
    }
    char want[16];
    uint64_t nv;
    if (guest_cmdline_get("acpi_virtio", want, sizeof(want))) {
        unsigned have = count_in(d, dlen, "LNRO0005", 9);
        if (parse_list(want, &nv, 1, false) != 1 || nv != have) {
            guest_failf(name, "%u LNRO0005 devices, expected %s", have, want);
            return;
        }
    }
    guest_pass(name);
}

static void check_madt(const struct guest_vm_info *info)
{
    const char *name = "acpi_madt";
    const uint8_t *m = find_table("APIC");
    if (!m) {
        guest_fail(name, "no MADT");
        return;
    }
    uint32_t len = (uint32_t)le(m + 4, 4);
    uint8_t seen[MAX_CPUS] = {0};
    unsigned cpus = 0, ioapics = 0;
    bool pit = false, sci = false;
    uint32_t sci_gsi = (uint32_t)le(find_table("FACP") + 46, 2);
    for (uint32_t off = 44; off + 2 <= len;) {
        const uint8_t *e = m + off;
        if (e[1] < 2 || off + e[1] > len) {
            guest_failf(name, "structure at %u has length %u", off, e[1]);
            return;
        }
        uint32_t id = 0xffffffffu;
        if (e[0] == 0 && (le(e + 4, 4) & 1))
            id = e[3];
        else if (e[0] == 9 && (le(e + 8, 4) & 1))
            id = (uint32_t)le(e + 4, 4);
        if (id != 0xffffffffu) {
            /* mvvmm gives vCPU i APIC id i */
            if (id >= MAX_CPUS || id >= info->nr_vcpus || seen[id]) {
                guest_failf(name, "unexpected or repeated APIC id %u", id);
                return;
            }
            seen[id] = 1;
            cpus++;
        }
        if (e[0] == 1 && le(e + 4, 4) == GUEST_IOAPIC_BASE && le(e + 8, 4) == 0)
            ioapics++;
        if (e[0] == 2 && e[3] == 0 && le(e + 4, 4) == 2)
            pit = true;
        if (e[0] == 2 && e[3] == sci_gsi && (le(e + 8, 2) & 0xf) == 0xd)
            sci = true;
        off += e[1];
    }
    if (cpus != info->nr_vcpus || ioapics != 1 || !pit || !sci) {
        guest_failf(name, "%u CPUs (VM has %u), %u IOAPICs, IRQ0->2 %s, SCI level/high %s", cpus,
                    info->nr_vcpus, ioapics, pit ? "yes" : "no", sci ? "yes" : "no");
        return;
    }
    guest_pass(name);
}

/* e820 RAM must lie inside the SRAT's memory ranges. */
static bool e820_covered(const uint64_t *base, const uint64_t *size, int n)
{
    const struct guest_start_info *si = guest_start_info();
    if (!si || !si->memmap_paddr)
        return true;
    const struct guest_memmap_entry *mm =
        (const struct guest_memmap_entry *)(uintptr_t)si->memmap_paddr;
    for (uint32_t i = 0; i < si->memmap_entries && i < 64; i++) {
        if (mm[i].type != 1)
            continue;
        uint64_t cur = mm[i].addr, end = mm[i].addr + mm[i].size;
        while (cur < end) {
            int k;
            for (k = 0; k < n; k++)
                if (cur >= base[k] && cur < base[k] + size[k])
                    break;
            if (k == n) {
                guest_failf("acpi_srat", "e820 RAM at 0x%llx is in no SRAT range",
                            (unsigned long long)cur);
                return false;
            }
            cur = base[k] + size[k];
        }
    }
    return true;
}

static void check_numa(const struct guest_vm_info *info)
{
    char buf[512];
    uint64_t want_nodes = 0;
    if (guest_cmdline_get("acpi_nodes", buf, sizeof(buf)) &&
        parse_list(buf, &want_nodes, 1, false) != 1) {
        guest_fail("acpi_srat", "bad acpi_nodes= on the command line");
        return;
    }
    const uint8_t *srat = find_table("SRAT"), *slit = find_table("SLIT");
    if (want_nodes == 0) {
        if (srat || slit)
            guest_fail("acpi_srat", "SRAT/SLIT present without vNUMA");
        else
            guest_pass("acpi_no_numa");
        return;
    }
    if (!srat || !slit) {
        guest_fail("acpi_srat", "no SRAT or SLIT");
        return;
    }

    /* SLIT */
    const char *name = "acpi_slit";
    uint64_t n = le(slit + 36, 8);
    static uint64_t dist[MAX_NODES * MAX_NODES];
    int nd = expected_list("acpi_dist", dist, MAX_NODES * MAX_NODES, false, name);
    if (nd == -1)
        return;
    if (n != want_nodes || le(slit + 4, 4) != 44 + n * n) {
        guest_failf(name, "%llu localities, expected %llu", (unsigned long long)n,
                    (unsigned long long)want_nodes);
        return;
    }
    for (uint64_t i = 0; i < n * n; i++) {
        uint8_t d = slit[44 + i];
        bool diag = i / n == i % n;
        if ((diag && d != 10) || (!diag && d <= 10) ||
            (nd >= 0 && (nd != (int)(n * n) || dist[i] != d))) {
            guest_failf(name, "distance %llu->%llu is %u", (unsigned long long)(i / n),
                        (unsigned long long)(i % n), d);
            return;
        }
    }
    guest_pass(name);

    /* SRAT */
    name = "acpi_srat";
    static uint64_t cpu_node[MAX_CPUS];
    int ncn = expected_list("acpi_cpu_nodes", cpu_node, MAX_CPUS, false, name);
    static uint64_t want_mem[MAX_RANGES * 3];
    int nm = expected_list("acpi_mem", want_mem, MAX_RANGES * 3, true, name);
    if (ncn == -1 || nm == -1)
        return;
    if (nm >= 0 && nm % 3) {
        guest_fail(name, "acpi_mem= wants node:base:size triples");
        return;
    }
    if (ncn >= 0 && (uint32_t)ncn != info->nr_vcpus) {
        guest_failf(name, "acpi_cpu_nodes lists %d vcpus, the VM has %u", ncn, info->nr_vcpus);
        return;
    }
    uint32_t len = (uint32_t)le(srat + 4, 4);
    unsigned cpus = 0;
    int nr = 0;
    static uint64_t base[MAX_RANGES], size[MAX_RANGES];
    uint64_t total = 0;
    for (uint32_t off = 48; off + 2 <= len;) {
        const uint8_t *e = srat + off;
        if (e[1] < 2 || off + e[1] > len) {
            guest_failf(name, "structure at %u has length %u", off, e[1]);
            return;
        }
        uint32_t apic = 0xffffffffu, pd = 0;
        if (e[0] == 0 && (le(e + 4, 4) & 1)) {
            apic = e[3];
            pd = e[2] | (uint32_t)le(e + 9, 3) << 8;
        } else if (e[0] == 2 && (le(e + 12, 4) & 1)) {
            apic = (uint32_t)le(e + 8, 4);
            pd = (uint32_t)le(e + 4, 4);
        } else if (e[0] == 1 && (le(e + 28, 4) & 1)) {
            uint32_t mpd = (uint32_t)le(e + 2, 4);
            uint64_t b = le(e + 8, 8), s = le(e + 16, 8);
            if (nr == MAX_RANGES || mpd >= n) {
                guest_failf(name, "memory range %d in domain %u", nr, mpd);
                return;
            }
            /* the test's layout (gpa order, vnode by vnode) */
            if (nm >= 0 && (nr * 3 + 2 >= nm || want_mem[nr * 3] != mpd ||
                            want_mem[nr * 3 + 1] != b || want_mem[nr * 3 + 2] != s)) {
                guest_failf(name, "memory range %d: node %u 0x%llx+0x%llx not as configured", nr,
                            mpd, (unsigned long long)b, (unsigned long long)s);
                return;
            }
            base[nr] = b;
            size[nr++] = s;
            total += s;
        }
        if (apic != 0xffffffffu) {
            if (apic >= info->nr_vcpus || pd >= n || (ncn >= 0 && cpu_node[apic] != pd)) {
                guest_failf(name, "vcpu %u in domain %u not as configured", apic, pd);
                return;
            }
            cpus++;
        }
        off += e[1];
    }
    if (cpus != info->nr_vcpus || (nm >= 0 && nr * 3 != nm)) {
        guest_failf(name, "%u vcpus and %d memory ranges in the SRAT", cpus, nr);
        return;
    }
    if (info->mem_bytes && total != info->mem_bytes) {
        guest_failf(name, "SRAT memory adds up to 0x%llx, the VM has 0x%llx",
                    (unsigned long long)total, (unsigned long long)info->mem_bytes);
        return;
    }
    if (!e820_covered(base, size, nr))
        return;
    guest_printf("acpi: %llu vnodes, %u vcpus, %d memory ranges, %llu MiB\n", (unsigned long long)n,
                 cpus, nr, (unsigned long long)(total >> 20));
    guest_pass(name);
}

void guest_main(void)
{
    struct guest_vm_info info;
    guest_vm_info(&info);
    if (!check_rsdp())
        return;
    check_checksums();
    check_fadt_dsdt();
    check_madt(&info);
    check_numa(&info);

    /* Power off the way Linux does: SLP_TYP from \_S5 and SLP_EN into the FADT's PM1a_CNT. */
    if (pm1a_cnt_port && s5_typ >= 0) {
        guest_printf("acpi: S5 through PM1a_CNT 0x%x\n", pm1a_cnt_port);
        outw(pm1a_cnt_port, (uint16_t)((s5_typ << 10) | (1u << 13)));
        for (int i = 0; i < 1000; i++)
            cpu_relax();
        guest_fail("acpi_poweroff", "still running after the S5 write");
    }
}
