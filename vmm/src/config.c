/* mvvmm configuration: flags and JSON share one key/value setter (see mv/vmm_config.h). */
#include "mv/vmm_config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "mv/log.h"
#include "mv/util.h"
#include "mv/vmm_boot.h"

static int cfg_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cfg_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void mv_vmm_config_init(struct mv_vmm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mem_size = MV_VMM_DEFAULT_MEM;
    cfg->nr_vcpus = 1;
    cfg->stop_timeout_ms = 10000;
    cfg->log_level = LOG_INFO;
}

void mv_vmm_config_free(struct mv_vmm_config *cfg)
{
    free(cfg->name);
    free(cfg->kernel);
    free(cfg->initrd);
    free(cfg->cmdline);
    free(cfg->payload);
    free(cfg->vnuma);
    free(cfg->control_socket);
    free(cfg->serial_path);
    free(cfg->user);
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        free(cfg->disks[i]);
    for (unsigned i = 0; i < cfg->nr_nets; i++)
        free(cfg->nets[i]);
    memset(cfg, 0, sizeof(*cfg));
}

static int set_string(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

/* "3" or "0-3" */
static int parse_cpu_range(const char *s, uint32_t *lo, uint32_t *hi)
{
    char buf[32];
    const char *dash = strchr(s, '-');
    if (!dash)
        return mv_parse_u32(s, lo) ? -1 : (*hi = *lo, 0);
    size_t n = (size_t)(dash - s);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (mv_parse_u32(buf, lo) || mv_parse_u32(dash + 1, hi) || *hi < *lo)
        return -1;
    return 0;
}

int mv_pin_parse(const char *spec, struct mv_pin_spec *out, char *err, size_t errlen)
{
    struct mv_pin_spec p = {0};
    const char *list = spec;
    if (!strncmp(spec, "float:", 6)) {
        p.floating = true;
        list = spec + 6;
    }
    if (!*list)
        return cfg_error(err, errlen, "pin: empty CPU list in '%s'", spec);
    char *copy = strdup(list);
    if (!copy)
        return cfg_error(err, errlen, "pin: out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint32_t lo, hi;
        if (parse_cpu_range(tok, &lo, &hi) || hi >= MV_VMM_MAX_HOST_CPUS) {
            rc = cfg_error(err, errlen, "pin: bad CPU or range '%s' (CPUs are 0..%u)", tok,
                           MV_VMM_MAX_HOST_CPUS - 1);
            break;
        }
        for (uint32_t c = lo; c <= hi; c++) {
            if (p.nr_cpus == MV_VMM_MAX_HOST_CPUS) {
                rc = cfg_error(err, errlen, "pin: more than %u CPUs", MV_VMM_MAX_HOST_CPUS);
                goto out;
            }
            p.cpus[p.nr_cpus++] = (uint16_t)c;
        }
    }
out:
    free(copy);
    if (rc == 0 && p.nr_cpus == 0)
        rc = cfg_error(err, errlen, "pin: no CPUs in '%s'", spec);
    if (rc == 0)
        *out = p;
    return rc;
}

int mv_serial_parse(const char *spec, enum mv_serial_mode *mode, char **path, char *err,
                    size_t errlen)
{
    const char *arg = NULL;
    enum mv_serial_mode m;
    if (!strcmp(spec, "stdout")) {
        m = MV_SERIAL_STDOUT;
    } else if (!strcmp(spec, "none")) {
        m = MV_SERIAL_NONE;
    } else if (!strcmp(spec, "pty")) {
        m = MV_SERIAL_PTY;
    } else if (!strncmp(spec, "file:", 5)) {
        m = MV_SERIAL_FILE;
        arg = spec + 5;
    } else if (!strncmp(spec, "socket:", 7)) {
        m = MV_SERIAL_SOCKET;
        arg = spec + 7;
    } else {
        return cfg_error(err, errlen,
                         "serial: '%s' is not stdout, none, pty, file:PATH or socket:PATH", spec);
    }
    if (arg && !*arg)
        return cfg_error(err, errlen, "serial: '%s' needs a path", spec);
    if (arg && set_string(path, arg))
        return cfg_error(err, errlen, "serial: out of memory");
    *mode = m;
    return 0;
}

static int parse_flag(const char *key, const char *v, bool *out, char *err, size_t errlen)
{
    if (!v)
        return (*out = true, 0);
    if (mv_parse_bool(v, out))
        return cfg_error(err, errlen, "%s: '%s' is not a boolean", key, v);
    return 0;
}

/* The one place every option is interpreted. v NULL = a flag given without value. */
static int config_set(struct mv_vmm_config *cfg, const char *key, const char *v, char *err,
                      size_t errlen)
{
    static const char *const string_keys[] = {"name",    "kernel", "initrd",         "cmdline",
                                              "payload", "vnuma",  "control-socket", "user"};
    char **string_dst[] = {&cfg->name,    &cfg->kernel, &cfg->initrd,         &cfg->cmdline,
                           &cfg->payload, &cfg->vnuma,  &cfg->control_socket, &cfg->user};
    for (size_t i = 0; i < MV_ARRAY_SIZE(string_keys); i++) {
        if (strcmp(key, string_keys[i]))
            continue;
        if (!v || (!*v && strcmp(key, "cmdline")))
            return cfg_error(err, errlen, "%s: needs a value", key);
        return set_string(string_dst[i], v) ? cfg_error(err, errlen, "out of memory") : 0;
    }
    if (!strcmp(key, "mem")) {
        uint64_t m;
        if (!v || mv_parse_size(v, &m) || m < MV_BOOT_MIN_MEM)
            return cfg_error(err, errlen, "mem: '%s' is not a size of at least 4M (e.g. 256M, 2G)",
                             v ? v : "");
        if (m % 4096)
            return cfg_error(err, errlen, "mem: %s is not a multiple of 4 KiB", v);
        cfg->mem_size = m;
        cfg->mem_set = true;
        return 0;
    }
    if (!strcmp(key, "vcpus")) {
        uint32_t n;
        if (!v || mv_parse_u32(v, &n) || n < 1 || n > MV_VMM_MAX_VCPUS)
            return cfg_error(err, errlen, "vcpus: '%s' is not a number from 1 to %u", v ? v : "",
                             MV_VMM_MAX_VCPUS);
        cfg->nr_vcpus = n;
        return 0;
    }
    if (!strcmp(key, "pin")) {
        if (!v)
            return cfg_error(err, errlen, "pin: needs a value");
        if (mv_pin_parse(v, &cfg->pin, err, errlen))
            return -1;
        cfg->pin_set = true;
        return 0;
    }
    if (!strcmp(key, "disk") || !strcmp(key, "net")) {
        bool disk = key[0] == 'd';
        unsigned *n = disk ? &cfg->nr_disks : &cfg->nr_nets;
        char **arr = disk ? cfg->disks : cfg->nets;
        unsigned max = disk ? MV_VMM_MAX_DISKS : MV_VMM_MAX_NETS;
        if (!v || !*v)
            return cfg_error(err, errlen, "%s: needs a value", key);
        if (*n == max)
            return cfg_error(err, errlen, "%s: at most %u", key, max);
        if (!disk && strncmp(v, "tap=", 4))
            return cfg_error(err, errlen, "net: '%s' must start with tap=NAME", v);
        arr[*n] = strdup(v);
        if (!arr[*n])
            return cfg_error(err, errlen, "out of memory");
        (*n)++;
        return 0;
    }
    if (!strcmp(key, "serial"))
        return v ? mv_serial_parse(v, &cfg->serial, &cfg->serial_path, err, errlen)
                 : cfg_error(err, errlen, "serial: needs a value");
    if (!strcmp(key, "irqchip")) {
        if (v && !strcmp(v, "kernel"))
            cfg->irqchip = MV_IRQCHIP_KERNEL;
        else if (v && !strcmp(v, "split"))
            cfg->irqchip = MV_IRQCHIP_SPLIT;
        else
            return cfg_error(err, errlen, "irqchip: '%s' is not kernel or split", v ? v : "");
        return 0;
    }
    if (!strcmp(key, "stop-timeout")) {
        uint32_t ms;
        if (!v || mv_parse_u32(v, &ms))
            return cfg_error(err, errlen, "stop-timeout: '%s' is not milliseconds", v ? v : "");
        cfg->stop_timeout_ms = ms;
        return 0;
    }
    if (!strcmp(key, "log-level")) {
        int l = v ? mv_log_level_from_name(v) : -1;
        if (l < 0)
            return cfg_error(err, errlen, "log-level: '%s' is not debug/info/notice/warning/err",
                             v ? v : "");
        cfg->log_level = l;
        return 0;
    }
    static const char *const flag_keys[] = {"no-pit",     "hugepages", "memfd",
                                            "no-seccomp", "no-acpi",   "no-reboot"};
    bool *flag_dst[] = {&cfg->no_pit,     &cfg->hugepages, &cfg->memfd,
                        &cfg->no_seccomp, &cfg->no_acpi,   &cfg->no_reboot};
    for (size_t i = 0; i < MV_ARRAY_SIZE(flag_keys); i++)
        if (!strcmp(key, flag_keys[i]))
            return parse_flag(key, v, flag_dst[i], err, errlen);
    return cfg_error(err, errlen, "unknown option '%s'", key);
}

static int json_value_set(struct mv_vmm_config *cfg, const char *key, json_t *val, char *err,
                          size_t errlen)
{
    char num[32];
    switch (json_typeof(val)) {
    case JSON_STRING:
        return config_set(cfg, key, json_string_value(val), err, errlen);
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(val));
        return config_set(cfg, key, num, err, errlen);
    case JSON_TRUE:
    case JSON_FALSE:
        return config_set(cfg, key, json_is_true(val) ? "true" : "false", err, errlen);
    case JSON_ARRAY: {
        if (strcmp(key, "disk") && strcmp(key, "net"))
            return cfg_error(err, errlen, "%s: a list is only allowed for disk and net", key);
        size_t i;
        json_t *item;
        json_array_foreach(val, i, item)
        {
            if (!json_is_string(item))
                return cfg_error(err, errlen, "%s[%zu]: must be a string", key, i);
            if (config_set(cfg, key, json_string_value(item), err, errlen))
                return -1;
        }
        return 0;
    }
    default:
        return cfg_error(err, errlen, "%s: unsupported JSON type", key);
    }
}

static int load_json(struct mv_vmm_config *cfg, json_t *root, const char *what, char *err,
                     size_t errlen)
{
    if (!json_is_object(root)) {
        json_decref(root);
        return cfg_error(err, errlen, "%s: the top level must be a JSON object", what);
    }
    const char *key;
    json_t *val;
    char inner[256];
    json_object_foreach(root, key, val)
    {
        if (json_value_set(cfg, key, val, inner, sizeof(inner))) {
            json_decref(root);
            return cfg_error(err, errlen, "%s: %s", what, inner);
        }
    }
    json_decref(root);
    return 0;
}

int mv_vmm_config_load_json_string(struct mv_vmm_config *cfg, const char *json, char *err,
                                   size_t errlen)
{
    json_error_t je;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return cfg_error(err, errlen, "config:%d:%d: %s", je.line, je.column, je.text);
    return load_json(cfg, root, "config", err, errlen);
}

int mv_vmm_config_load_json(struct mv_vmm_config *cfg, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return cfg_error(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    return load_json(cfg, root, path, err, errlen);
}

int mv_vmm_config_validate(const struct mv_vmm_config *cfg, char *err, size_t errlen)
{
    if (!cfg->kernel && !cfg->payload)
        return cfg_error(err, errlen, "nothing to run: give --kernel or --payload");
    if (cfg->kernel && cfg->payload)
        return cfg_error(err, errlen, "--kernel and --payload exclude each other");
    if (cfg->initrd && !cfg->kernel)
        return cfg_error(err, errlen, "--initrd needs --kernel");
    if ((cfg->serial == MV_SERIAL_FILE || cfg->serial == MV_SERIAL_SOCKET) && !cfg->serial_path)
        return cfg_error(err, errlen, "serial: missing path");
    if (cfg->pin_set && !cfg->pin.floating && cfg->pin.nr_cpus < cfg->nr_vcpus)
        mv_warn("pin: %u CPUs for %u vCPUs: vCPUs share CPUs", cfg->pin.nr_cpus, cfg->nr_vcpus);
    return 0;
}

void mv_vmm_usage(FILE *out)
{
    fprintf(
        out,
        "usage: mvvmm (--kernel IMAGE [--initrd FILE] | --payload GUEST.elf) [options]\n"
        "       mvvmm --config vm.json [options]\n"
        "Runs one virtual machine on /dev/kvm.\n\n"
        "  --kernel IMAGE        Linux bzImage or PVH ELF vmlinux\n"
        "  --initrd FILE         initial ramdisk\n"
        "  --cmdline TEXT        kernel command line (payloads read it from start info)\n"
        "  --payload ELF         bare-metal test payload, entered in 64-bit long mode\n"
        "  --mem SIZE            guest RAM (default 128M; above 3G it continues at 4G)\n"
        "  --vcpus N             vCPUs (default 1, max %u)\n"
        "  --vnuma SPEC          vNUMA: nodes=N,mem=S:S,cpus=L:L,dist=D:..,pnodes=P:P\n"
        "  --pin LIST            pin vCPU i to CPU LIST[i %% n]; float:LIST = float over the set\n"
        "  --disk PATH[,ro]      virtio-blk disk (repeatable)\n"
        "  --net tap=NAME[,mac=M] virtio-net on a TAP (repeatable)\n"
        "  --control-socket PATH JSON control socket (info, pause, resume, reboot, stop, stats)\n"
        "  --serial MODE         stdout (default), file:PATH, pty, socket:PATH, none\n"
        "  --user NAME           drop privileges after setup\n"
        "  --no-pit              no in-kernel PIT (faster start for payloads without it)\n"
        "  --irqchip MODE        kernel (default: in-kernel IOAPIC/PIC/PIT) or split\n"
        "                        (IOAPIC in mvvmm, no PIC/PIT: fastest start and teardown)\n"
        "  --hugepages           back RAM with hugetlbfs pages\n"
        "  --memfd               back RAM with a memfd (shareable)\n"
        "  --no-acpi             no ACPI tables\n"
        "  --no-reboot           a guest reset ends mvvmm instead of restarting the VM\n"
        "  --no-seccomp          do not install the syscall allowlist\n"
        "  --stop-timeout MS     graceful stop: power button, hard stop after MS (10000)\n"
        "  --name NAME           VM name for logs\n"
        "  --log-level LEVEL     debug, info (default), notice, warning, err\n"
        "  --config FILE         JSON object with these option names as keys\n"
        "  --help, --version\n\n"
        "Exit status: the guest's exit-port value, 0 after a power-off, 1 for setup errors,\n"
        "125 when the guest crashed (emulation failure, failed entry, unknown exit).\n",
        MV_VMM_MAX_VCPUS);
}

int mv_vmm_config_parse_args(struct mv_vmm_config *cfg, int argc, char **argv, char *err,
                             size_t errlen)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"name", required_argument, 0, 0},
        {"kernel", required_argument, 0, 0},
        {"initrd", required_argument, 0, 0},
        {"cmdline", required_argument, 0, 0},
        {"payload", required_argument, 0, 0},
        {"mem", required_argument, 0, 0},
        {"vcpus", required_argument, 0, 0},
        {"vnuma", required_argument, 0, 0},
        {"pin", required_argument, 0, 0},
        {"disk", required_argument, 0, 0},
        {"net", required_argument, 0, 0},
        {"control-socket", required_argument, 0, 0},
        {"serial", required_argument, 0, 0},
        {"user", required_argument, 0, 0},
        {"stop-timeout", required_argument, 0, 0},
        {"irqchip", required_argument, 0, 0},
        {"log-level", required_argument, 0, 0},
        {"no-pit", no_argument, 0, 0},
        {"hugepages", no_argument, 0, 0},
        {"memfd", no_argument, 0, 0},
        {"no-seccomp", no_argument, 0, 0},
        {"no-acpi", no_argument, 0, 0},
        {"no-reboot", no_argument, 0, 0},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    for (;;) {
        int idx = -1;
        int c = getopt_long(argc, argv, "+", opts, &idx);
        if (c == -1)
            break;
        switch (c) {
        case 'h':
            mv_vmm_usage(stdout);
            return 1;
        case 'V':
            printf("mvvmm %s\n", MV_VERSION);
            return 1;
        case 'c':
            if (mv_vmm_config_load_json(cfg, optarg, err, errlen))
                return -1;
            break;
        case 0:
            if (config_set(cfg, opts[idx].name, optarg, err, errlen))
                return -1;
            break;
        case ':':
            return cfg_error(err, errlen, "%s needs a value (see --help)", argv[optind - 1]);
        default:
            return cfg_error(err, errlen, "unknown or incomplete option '%s' (see --help)",
                             argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cfg_error(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
    return 0;
}
