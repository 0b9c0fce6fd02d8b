/* mvacpi-dump: builds the ACPI tables mvvmm would give a VM and writes each one to
 * <dir>/<signature>.dat (lower case), ready for `iasl -d`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/acpi.h"
#include "mv/util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mvacpi-dump --out DIR [options]\n"
               "  --out DIR            write <sig>.dat per table and acpi.bin (the whole buffer)\n"
               "  --vcpus N            number of vCPUs (default 1)\n"
               "  --mem SIZE           guest memory (default 64M)\n"
               "  --vnuma SPEC         vNUMA topology, e.g. nodes=2,cpus=0:1 (docs/acpi.md);\n"
               "                       without it there is no SRAT/SLIT\n"
               "  --apic-ids A:B:..    APIC id of each vCPU (default: the vCPU index)\n"
               "  --virtio BASE:SIZE:GSI  a virtio-mmio device in the DSDT (repeatable)\n"
               "  --gpa ADDR           guest address of the tables (default 0xe0000)\n"
               "  --i8042 --rtc --no-com1  platform flags\n"
               "  --help --version\n");
}

static int parse_virtio(char *s, struct mv_acpi_virtio_dev *d)
{
    char *size = strchr(s, ':');
    char *gsi = size ? strchr(size + 1, ':') : NULL;
    if (!gsi)
        return -EINVAL;
    *size++ = '\0';
    *gsi++ = '\0';
    memset(d, 0, sizeof(*d));
    uint64_t b, z;
    if (mv_parse_u64(s, &b) || mv_parse_size(size, &z) || z > UINT32_MAX ||
        mv_parse_u32(gsi, &d->gsi))
        return -EINVAL;
    d->base = b;
    d->size = (uint32_t)z;
    return 0;
}

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "mvacpi-dump: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"vcpus", required_argument, NULL, 'c'},
                                         {"mem", required_argument, NULL, 'm'},
                                         {"vnuma", required_argument, NULL, 'n'},
                                         {"apic-ids", required_argument, NULL, 'a'},
                                         {"virtio", required_argument, NULL, 'v'},
                                         {"gpa", required_argument, NULL, 'g'},
                                         {"i8042", no_argument, NULL, 'k'},
                                         {"rtc", no_argument, NULL, 'r'},
                                         {"no-com1", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *out_dir = NULL, *vnuma = NULL;
    char *apic_ids = NULL;
    uint32_t vcpus = 1;
    uint64_t mem = 64ull << 20, gpa = 0xe0000;
    static struct mv_acpi_config cfg;
    struct mv_acpi_virtio_dev virtio[MV_ACPI_MAX_VIRTIO];
    uint32_t nr_virtio = 0;
    bool i8042 = false, rtc = false, com1 = true;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out_dir = optarg;
            break;
        case 'c':
            if (mv_parse_u32(optarg, &vcpus) || vcpus < 1 || vcpus > MV_ACPI_MAX_VCPUS) {
                fprintf(stderr, "mvacpi-dump: --vcpus '%s': 1..%u\n", optarg, MV_ACPI_MAX_VCPUS);
                return 2;
            }
            break;
        case 'm':
            if (mv_parse_size(optarg, &mem)) {
                fprintf(stderr, "mvacpi-dump: --mem '%s' is not a size\n", optarg);
                return 2;
            }
            break;
        case 'n':
            vnuma = optarg;
            break;
        case 'a':
            apic_ids = optarg;
            break;
        case 'v':
            if (nr_virtio == MV_ACPI_MAX_VIRTIO || parse_virtio(optarg, &virtio[nr_virtio])) {
                fprintf(stderr, "mvacpi-dump: --virtio: want BASE:SIZE:GSI (at most %u)\n",
                        MV_ACPI_MAX_VIRTIO);
                return 2;
            }
            nr_virtio++;
            break;
        case 'g':
            if (mv_parse_u64(optarg, &gpa)) {
                fprintf(stderr, "mvacpi-dump: --gpa '%s' is not an address\n", optarg);
                return 2;
            }
            break;
        case 'k':
            i8042 = true;
            break;
        case 'r':
            rtc = true;
            break;
        case 's':
            com1 = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("mvacpi-dump %s\n", MV_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!out_dir || optind != argc) {
        usage(stderr);
        return 2;
    }

    mv_acpi_config_init(&cfg, vcpus);
    cfg.i8042 = i8042;
    cfg.rtc = rtc;
    cfg.com1 = com1;
    cfg.nr_virtio = nr_virtio;
    memcpy(cfg.virtio, virtio, sizeof(virtio[0]) * nr_virtio);
    if (apic_ids) {
        uint32_t n = 0;
        for (char *tok = strtok(apic_ids, ":"); tok; tok = strtok(NULL, ":")) {
            if (n == vcpus || mv_parse_u32(tok, &cfg.apic_id[n])) {
                fprintf(stderr, "mvacpi-dump: --apic-ids: %u ids wanted\n", vcpus);
                return 2;
            }
            n++;
        }
        if (n != vcpus) {
            fprintf(stderr, "mvacpi-dump: --apic-ids: %u ids wanted, got %u\n", vcpus, n);
            return 2;
        }
    }
    char err[256];
    if (vnuma) {
        static struct mv_vnuma v;
        if (mv_vnuma_parse(vnuma, mem, vcpus, &v, err, sizeof(err)) ||
            mv_acpi_config_set_vnuma(&cfg, &v, err, sizeof(err))) {
            fprintf(stderr, "mvacpi-dump: %s\n", err);
            return 2;
        }
        char line[2048];
        mv_vnuma_format(&v, line, sizeof(line));
        printf("vnuma: %s\n", line);
    }

    static uint8_t buf[MV_ACPI_MAX_SIZE];
    struct mv_acpi_result res;
    if (mv_acpi_build(&cfg, buf, sizeof(buf), gpa, &res)) {
        fprintf(stderr, "mvacpi-dump: %s\n", res.err);
        return 1;
    }
    for (uint32_t i = 0; i < res.nr_tables; i++) {
        const struct mv_acpi_table_info *t = &res.tables[i];
        char name[16];
        snprintf(name, sizeof(name), "%c%c%c%c.dat", t->signature[0] | 0x20, t->signature[1] | 0x20,
                 t->signature[2] | 0x20, t->signature[3] | 0x20);
        if (write_file(out_dir, name, buf + t->offset, t->length))
            return 1;
        printf("%s gpa 0x%llx length %u\n", t->signature, (unsigned long long)(gpa + t->offset),
               t->length);
    }
    if (write_file(out_dir, "acpi.bin", buf, res.size))
        return 1;
    printf("total %zu bytes, RSDP at 0x%llx\n", res.size, (unsigned long long)res.rsdp_gpa);
    return 0;
}
