/* mvaoe: operator tool for AoE targets through libmvblk (discover, identify, read, write, verify
 * a pattern, Mac Mask, reservations, config string) and a client for mvstored's control socket. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mv/log.h"
#include "mv/mvblk.h"
#include "mv/util.h"
#include "mvaoe_bench.h"

struct opts {
    struct mvblk_config cfg;
    uint8_t mac[6];
    unsigned wait_ms;
    uint64_t size;
    uint64_t offset;
    uint64_t seed;
    unsigned depth, req_sectors;
    bool do_write, do_read;
    bool quiet;
    const uint8_t *target_mac; /* attach only to the target at this MAC */
    uint8_t target_mac_buf[6];
    struct mvaoe_bench_opts bench;
    uint64_t reflect_sectors;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mvaoe [-i IF | -u SOCKET] COMMAND ...\n"
               "  discover [SHELF.SLOT]                Query Config broadcast, list targets\n"
               "  identify SHELF.SLOT                  ATA IDENTIFY: model, serial, capacity\n"
               "  read SHELF.SLOT LBA COUNT            sectors to stdout\n"
               "  write SHELF.SLOT LBA COUNT           sectors from stdin\n"
               "  verify SHELF.SLOT [--size B] [--offset B] [--seed N] [--write-only|--read-only]\n"
               "                                       write a seeded pattern and read it back\n"
               "  flush SHELF.SLOT\n"
               "  mask SHELF.SLOT [add MAC|del MAC]... Mac Mask list: read or edit\n"
               "  reserve SHELF.SLOT read|set|force [MAC...]\n"
               "  config SHELF.SLOT read|test|prefix|set|force [STRING]\n"
               "  ctl CONTROL_SOCKET JSON              one request to mvstored's control socket\n"
               "  bench SHELF.SLOT [--rw R] [--bs B] [--iodepth N] [--runtime S] [--size B]\n"
               "                   [--offset B]        load generator: R = randread (default),\n"
               "                                       randwrite, read, write; prints IOPS, MiB/s\n"
               "  reflect SHELF.SLOT [--sectors N]     null target on -i IF (answers, stores\n"
               "                                       nothing): the link's frame-rate limit\n"
               "options:\n"
               "  -i, --interface IF     AoE over this interface (AF_PACKET)\n"
               "  -u, --unix SOCKET      AoE over mvstored's host-local socket\n"
               "  -m, --mac MAC          our MAC on the unix socket\n"
               "      --low-latency      per-frame wakeups on AF_PACKET (default)\n"
               "      --block-rx         block-batched TPACKET_V3 receive instead\n"
               "  -w, --wait MS          discovery / command timeout (default 1000)\n"
               "      --dead-ms MS       fail a silent target after MS (default 10000)\n"
               "      --max-inflight N   frames in flight per target\n"
               "      --depth N          verify: requests in flight (default 16)\n"
               "      --req-sectors N    verify: sectors per request (default 64)\n"
               "  -t, --target-mac MAC   attach only to the target answering from MAC\n"
               "  -q, --quiet\n"
               "  -h, --help, -V, --version\n");
}

static int parse_target(const char *s, uint16_t *shelf, uint8_t *slot)
{
    const char *dot = strchr(s ? s : "", '.');
    char a[16];
    uint32_t x, y;
    if (!dot || (size_t)(dot - s) >= sizeof a)
        return -EINVAL;
    memcpy(a, s, (size_t)(dot - s));
    a[dot - s] = 0;
    if (mv_parse_u32(a, &x) || mv_parse_u32(dot + 1, &y) || x > 0xffff || y > 0xff)
        return -EINVAL;
    *shelf = (uint16_t)x;
    *slot = (uint8_t)y;
    return 0;
}

/* The pattern: a function of seed and byte position, so any range can be checked alone. */
static void pattern_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x = (off + i) * 0x9e3779b97f4a7c15ull ^ seed;
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 29;
        memcpy(buf + i, &x, 8);
    }
}

struct verify_slot {
    struct mvblk_req req;
    uint8_t *buf;
    bool busy;
};

struct verify_state {
    uint64_t seed;
    uint64_t errors, mismatches;
    int first_error;
    uint8_t *expect;
};

static void verify_done(struct mvblk_req *req, int status)
{
    struct verify_slot *vs = (struct verify_slot *)req;
    struct verify_state *st = req->priv;
    vs->busy = false;
    if (status) {
        if (!st->first_error)
            st->first_error = status;
        st->errors++;
        return;
    }
    if (req->op == MVBLK_READ) {
        size_t len = (size_t)req->count * AOE_SECTOR_SIZE;
        pattern_fill(st->seed, req->lba * AOE_SECTOR_SIZE, st->expect, len);
        if (memcmp(st->expect, vs->buf, len) != 0) {
            if (st->mismatches++ < 5)
                fprintf(stderr, "mvaoe: mismatch in sectors %llu..%llu\n",
                        (unsigned long long)req->lba,
                        (unsigned long long)(req->lba + req->count - 1));
        }
    }
}

static int verify_pass(struct mvblk *b, struct mvblk_dev *dev, const struct opts *o, bool write,
                       struct verify_state *st)
{
    uint64_t first = o->offset / AOE_SECTOR_SIZE;
    uint64_t total = o->size ? o->size / AOE_SECTOR_SIZE : mvblk_dev_sectors(dev) - first;
    if (first + total > mvblk_dev_sectors(dev)) {
        fprintf(stderr, "mvaoe: range past the end of the device\n");
        return -ERANGE;
    }
    struct verify_slot *slots = calloc(o->depth, sizeof *slots);
    for (unsigned i = 0; i < o->depth; i++)
        slots[i].buf = malloc((size_t)o->req_sectors * AOE_SECTOR_SIZE);
    uint64_t next = 0, start = mv_now_ns();
    int rc = 0;
    for (;;) {
        bool any_busy = false;
        for (unsigned i = 0; i < o->depth; i++) {
            struct verify_slot *vs = &slots[i];
            if (!vs->busy && next < total && !st->errors) {
                uint32_t n = (uint32_t)MV_MIN((uint64_t)o->req_sectors, total - next);
                vs->req = (struct mvblk_req){.op = write ? MVBLK_WRITE : MVBLK_READ,
                                             .lba = first + next,
                                             .count = n,
                                             .buf = vs->buf,
                                             .done = verify_done,
                                             .priv = st};
                if (write)
                    pattern_fill(st->seed, (first + next) * AOE_SECTOR_SIZE, vs->buf,
                                 (size_t)n * AOE_SECTOR_SIZE);
                rc = mvblk_submit(dev, &vs->req);
                if (rc < 0)
                    break;
                vs->busy = true;
                next += n;
            }
            any_busy |= vs->busy;
        }
        if (rc < 0 || !any_busy)
            break;
        rc = mvblk_poll(b, 1000);
        if (rc < 0)
            break;
        rc = 0;
    }
    if (rc == 0 && write && !st->errors)
        rc = mvblk_flush(dev);
    double secs = (double)(mv_now_ns() - start) / 1e9;
    struct mvblk_dev_stats ds;
    mvblk_dev_get_stats(dev, &ds);
    if (!o->quiet)
        printf("%s %llu bytes in %.3f s (%.1f MiB/s), frames %llu, retransmits %llu, srtt %u us, "
               "cwnd %u\n",
               write ? "wrote" : "read", (unsigned long long)(total * AOE_SECTOR_SIZE), secs,
               (double)total * AOE_SECTOR_SIZE / 1048576.0 / (secs > 0 ? secs : 1e-9),
               (unsigned long long)ds.frames_sent, (unsigned long long)ds.retransmits, ds.srtt_us,
               ds.cwnd);
    for (unsigned i = 0; i < o->depth; i++)
        free(slots[i].buf);
    free(slots);
    if (rc == 0 && st->first_error)
        rc = st->first_error;
    return rc;
}

static int cmd_verify(struct mvblk *b, struct mvblk_dev *dev, const struct opts *o)
{
    struct verify_state st = {.seed = o->seed};
    st.expect = malloc((size_t)o->req_sectors * AOE_SECTOR_SIZE);
    int rc = 0;
    if (o->do_write)
        rc = verify_pass(b, dev, o, true, &st);
    if (rc == 0 && o->do_read)
        rc = verify_pass(b, dev, o, false, &st);
    free(st.expect);
    if (rc < 0) {
        fprintf(stderr, "mvaoe: verify: %s\n", strerror(-rc));
        return 1;
    }
    if (st.mismatches) {
        fprintf(stderr, "mvaoe: verify: %llu request(s) read back wrong data\n",
                (unsigned long long)st.mismatches);
        return 1;
    }
    if (!o->quiet && o->do_read)
        printf("verify: ok\n");
    return 0;
}

static int cmd_ctl(const char *path, const char *json)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "mvaoe: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    size_t len = strlen(json);
    if (write(fd, json, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
        close(fd);
        return 1;
    }
    static char buf[1 << 16];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(buf, '\n', got))
            break;
    }
    close(fd);
    buf[got] = 0;
    fputs(buf, stdout);
    return strstr(buf, "\"ok\":true") ? 0 : 1;
}

static void print_msg_error(const struct aoe_msg *m)
{
    fprintf(stderr, "mvaoe: target answered error %u (%s)\n", m->error, aoe_error_name(m->error));
}

static int cmd_mask(struct mvblk_dev *dev, int argc, char **argv, unsigned wait_ms)
{
    uint8_t dirs[255 * AOE_MASK_DIR_LEN];
    unsigned n = 0;
    for (int i = 0; i + 1 < argc && n < 255; i += 2) {
        uint8_t mac[6];
        uint8_t dcmd = strcmp(argv[i], "add") == 0   ? AOE_DCMD_ADD
                       : strcmp(argv[i], "del") == 0 ? AOE_DCMD_DELETE
                                                     : 0xff;
        if (dcmd == 0xff || mv_mac_parse(argv[i + 1], mac) != 0) {
            fprintf(stderr, "mvaoe: mask: expected 'add MAC' or 'del MAC'\n");
            return 2;
        }
        aoe_mask_dir_put(dirs + n++ * AOE_MASK_DIR_LEN, dcmd, mac);
    }
    struct aoe_msg req, rep;
    memset(&req, 0, sizeof req);
    req.cmd = AOE_CMD_MASK;
    req.u.mask = (struct aoe_mask){
        .mcmd = n ? AOE_MCMD_EDIT : AOE_MCMD_READ, .dir_count = (uint8_t)n, .dirs = dirs};
    static uint8_t buf[MV_ETH_MAX_FRAME];
    int rc = mvblk_exchange(dev, &req, &rep, buf, wait_ms);
    if (rc < 0) {
        fprintf(stderr, "mvaoe: mask: %s\n", strerror(-rc));
        return 1;
    }
    if (rep.flags & AOE_FLAG_ERROR) {
        print_msg_error(&rep);
        return 1;
    }
    for (unsigned i = 0; i < rep.u.mask.dir_count; i++) {
        uint8_t dcmd, mac[6];
        char s[MV_MAC_STR_LEN];
        aoe_mask_dir_get(&rep.u.mask, i, &dcmd, mac);
        mv_mac_format(mac, s);
        printf("%s\n", s);
    }
    if (rep.u.mask.merror) {
        fprintf(stderr, "mvaoe: mask edit refused (merror %u)\n", rep.u.mask.merror);
        return 1;
    }
    return 0;
}

static int cmd_reserve(struct mvblk_dev *dev, int argc, char **argv, unsigned wait_ms)
{
    if (argc < 1) {
        fprintf(stderr, "mvaoe: reserve read|set|force [MAC...]\n");
        return 2;
    }
    uint8_t rcmd = strcmp(argv[0], "read") == 0    ? AOE_RCMD_READ
                   : strcmp(argv[0], "set") == 0   ? AOE_RCMD_SET
                   : strcmp(argv[0], "force") == 0 ? AOE_RCMD_FORCE_SET
                                                   : 0xff;
    uint8_t macs[255 * 6];
    unsigned n = 0;
    for (int i = 1; i < argc && n < 255; i++) {
        if (mv_mac_parse(argv[i], macs + 6 * n) != 0) {
            fprintf(stderr, "mvaoe: bad MAC '%s'\n", argv[i]);
            return 2;
        }
        n++;
    }
    if (rcmd == 0xff)
        return 2;
    struct aoe_msg req, rep;
    memset(&req, 0, sizeof req);
    req.cmd = AOE_CMD_RESERVE;
    req.u.reserve = (struct aoe_reserve){.rcmd = rcmd, .nmacs = (uint8_t)n, .macs = macs};
    static uint8_t buf[MV_ETH_MAX_FRAME];
    int rc = mvblk_exchange(dev, &req, &rep, buf, wait_ms);
    if (rc < 0) {
        fprintf(stderr, "mvaoe: reserve: %s\n", strerror(-rc));
        return 1;
    }
    if (rep.flags & AOE_FLAG_ERROR) {
        print_msg_error(&rep);
        return rep.error == AOE_ERR_RESERVED ? 3 : 1;
    }
    for (unsigned i = 0; i < rep.u.reserve.nmacs; i++) {
        char s[MV_MAC_STR_LEN];
        mv_mac_format(rep.u.reserve.macs + 6 * i, s);
        printf("%s\n", s);
    }
    return 0;
}

static int cmd_config(struct mvblk_dev *dev, int argc, char **argv, unsigned wait_ms)
{
    static const char *const names[] = {"read", "test", "prefix", "set", "force"};
    int ccmd = -1;
    for (int i = 0; argc > 0 && i < 5; i++)
        if (strcmp(argv[0], names[i]) == 0)
            ccmd = i;
    const char *s = argc > 1 ? argv[1] : "";
    if (ccmd < 0 || strlen(s) > AOE_MAX_CFG_LEN) {
        fprintf(stderr, "mvaoe: config read|test|prefix|set|force [STRING]\n");
        return 2;
    }
    struct aoe_msg req, rep;
    memset(&req, 0, sizeof req);
    req.cmd = AOE_CMD_CONFIG;
    req.u.cfg = (struct aoe_cfg){
        .ccmd = (uint8_t)ccmd, .cfg_len = (uint16_t)strlen(s), .cfg = (const uint8_t *)s};
    static uint8_t buf[MV_ETH_MAX_FRAME];
    int rc = mvblk_exchange(dev, &req, &rep, buf, wait_ms);
    if (rc < 0) {
        fprintf(stderr, "mvaoe: config: %s\n", rc == -ETIMEDOUT ? "no answer" : strerror(-rc));
        return 1;
    }
    if (rep.flags & AOE_FLAG_ERROR) {
        print_msg_error(&rep);
        return 1;
    }
    printf("%.*s\n", rep.u.cfg.cfg_len, (const char *)rep.u.cfg.cfg);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"interface", required_argument, 0, 'i'},
        {"unix", required_argument, 0, 'u'},
        {"mac", required_argument, 0, 'm'},
        {"low-latency", no_argument, 0, 'L'},
        {"block-rx", no_argument, 0, 'J'},
        {"wait", required_argument, 0, 'w'},
        {"dead-ms", required_argument, 0, 'D'},
        {"max-inflight", required_argument, 0, 'M'},
        {"size", required_argument, 0, 's'},
        {"offset", required_argument, 0, 'o'},
        {"seed", required_argument, 0, 'S'},
        {"depth", required_argument, 0, 'd'},
        {"req-sectors", required_argument, 0, 'r'},
        {"write-only", no_argument, 0, 'W'},
        {"read-only", no_argument, 0, 'R'},
        {"quiet", no_argument, 0, 'q'},
        {"target-mac", required_argument, 0, 't'},
        {"rw", required_argument, 0, 1001},
        {"bs", required_argument, 0, 1002},
        {"iodepth", required_argument, 0, 1003},
        {"runtime", required_argument, 0, 1004},
        {"sectors", required_argument, 0, 1005},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    struct opts o = {.cfg = {.kind = MV_PORT_PACKET, .low_latency = true},
                     .wait_ms = 1000,
                     .seed = 1,
                     .depth = 16,
                     .req_sectors = 64,
                     .do_write = true,
                     .do_read = true,
                     .bench = {.rw = MVAOE_RANDREAD, .bs = 4096, .iodepth = 1, .runtime_s = 5},
                     .reflect_sectors = 1ull << 21};
    mv_log_init("mvaoe", LOG_WARNING);
    int c;
    uint32_t u;
    while ((c = getopt_long(argc, argv, "i:u:m:w:s:o:S:d:r:t:qhV", longopts, NULL)) != -1) {
        bool bad = false;
        switch (c) {
        case 'i':
            o.cfg.kind = MV_PORT_PACKET;
            o.cfg.ifname = optarg;
            break;
        case 'u':
            o.cfg.kind = MV_PORT_UNIX;
            o.cfg.unix_path = optarg;
            break;
        case 'm':
            bad = mv_mac_parse(optarg, o.mac) != 0;
            o.cfg.mac = o.mac;
            break;
        case 'L':
            o.cfg.low_latency = true;
            break;
        case 'J':
            o.cfg.low_latency = false;
            break;
        case 'w':
            bad = mv_parse_u32(optarg, &o.wait_ms) != 0;
            break;
        case 'D':
            bad = mv_parse_u32(optarg, &o.cfg.dead_ms) != 0;
            break;
        case 'M':
            bad = mv_parse_u32(optarg, &o.cfg.max_inflight) != 0;
            break;
        case 's':
            bad = mv_parse_size(optarg, &o.size) != 0 || o.size % 512;
            break;
        case 'o':
            bad = mv_parse_size(optarg, &o.offset) != 0 || o.offset % 512;
            break;
        case 'S':
            bad = mv_parse_u64(optarg, &o.seed) != 0;
            break;
        case 'd':
            bad = mv_parse_u32(optarg, &u) != 0 || !u || u > 1024;
            o.depth = u;
            break;
        case 'r':
            bad = mv_parse_u32(optarg, &u) != 0 || !u || u > 65536;
            o.req_sectors = u;
            break;
        case 'W':
            o.do_read = false;
            break;
        case 'R':
            o.do_write = false;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 't':
            bad = mv_mac_parse(optarg, o.target_mac_buf) != 0;
            o.target_mac = o.target_mac_buf;
            break;
        case 1001:
            bad = mvaoe_parse_rw(optarg, &o.bench.rw) != 0;
            break;
        case 1002: {
            uint64_t bs;
            bad = mv_parse_size(optarg, &bs) != 0 || !bs || bs % 512 || bs > (64u << 20);
            o.bench.bs = (uint32_t)bs;
            break;
        }
        case 1003:
            bad = mv_parse_u32(optarg, &u) != 0 || !u || u > 1024;
            o.bench.iodepth = u;
            break;
        case 1004: {
            char *end;
            o.bench.runtime_s = strtod(optarg, &end);
            bad = *end || !(o.bench.runtime_s > 0 && o.bench.runtime_s <= 3600);
            break;
        }
        case 1005:
            bad = mv_parse_u64(optarg, &o.reflect_sectors) != 0 || !o.reflect_sectors ||
                  o.reflect_sectors >= (1ull << 48);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("mvaoe %s\n", MV_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "mvaoe: bad value for -%c: %s\n", c, optarg);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind++];
    int nargs = argc - optind;
    char **args = argv + optind;
    if (strcmp(cmd, "ctl") == 0) {
        if (nargs != 2) {
            fprintf(stderr, "mvaoe: ctl CONTROL_SOCKET JSON\n");
            return 2;
        }
        return cmd_ctl(args[0], args[1]);
    }
    if (strcmp(cmd, "reflect") == 0) {
        uint16_t rshelf;
        uint8_t rslot;
        if (nargs != 1 || parse_target(args[0], &rshelf, &rslot) != 0 || !o.cfg.ifname) {
            fprintf(stderr, "mvaoe: -i IF reflect SHELF.SLOT [--sectors N]\n");
            return 2;
        }
        return mvaoe_reflect_run(o.cfg.ifname, rshelf, rslot, o.reflect_sectors);
    }
    if (!o.cfg.ifname && !o.cfg.unix_path) {
        fprintf(stderr, "mvaoe: give -i IF or -u SOCKET\n");
        return 2;
    }
    char err[256];
    struct mvblk *b;
    if (mvblk_open(&o.cfg, &b, err, sizeof err) != 0) {
        fprintf(stderr, "mvaoe: %s\n", err);
        return 1;
    }
    int ret = 0;
    uint16_t shelf = AOE_SHELF_ANY;
    uint8_t slot = AOE_SLOT_ANY;
    if (strcmp(cmd, "discover") == 0) {
        if (nargs > 0 && parse_target(args[0], &shelf, &slot) != 0) {
            fprintf(stderr, "mvaoe: bad target '%s' (SHELF.SLOT)\n", args[0]);
            ret = 2;
        } else {
            static struct mvblk_target_info found[256];
            int n = mvblk_discover(b, shelf, slot, o.wait_ms, found, 256);
            for (int i = 0; i < n; i++) {
                char m[MV_MAC_STR_LEN];
                mv_mac_format(found[i].mac, m);
                printf("e%u.%u %s bufcnt=%u fw=%#x sectors_per_frame=%u config=\"%s\"\n",
                       found[i].shelf, found[i].slot, m, found[i].buffer_count, found[i].firmware,
                       found[i].sectors_per_frame, found[i].cfg);
            }
            ret = n > 0 ? 0 : 1;
        }
        mvblk_close(b);
        return ret;
    }
    if (nargs < 1 || parse_target(args[0], &shelf, &slot) != 0) {
        fprintf(stderr, "mvaoe: %s needs SHELF.SLOT\n", cmd);
        mvblk_close(b);
        return 2;
    }
    struct mvblk_dev *dev;
    bool raw =
        strcmp(cmd, "mask") == 0 || strcmp(cmd, "reserve") == 0 || strcmp(cmd, "config") == 0;
    int arc = mvblk_attach_mac(b, shelf, slot, o.target_mac, o.wait_ms,
                               raw ? MVBLK_ATTACH_NO_IDENTIFY : 0, &dev, err, sizeof err);
    if (arc != 0) {
        fprintf(stderr, "mvaoe: %s\n", err);
        mvblk_close(b);
        return arc == -EACCES ? 3 : 1; /* 3: reserved by another initiator */
    }
    args++;
    nargs--;
    if (strcmp(cmd, "identify") == 0) {
        const struct mvblk_target_info *t = mvblk_dev_target(dev);
        char m[MV_MAC_STR_LEN];
        mv_mac_format(t->mac, m);
        printf("target e%u.%u at %s\nmodel: %s\nserial: %s\nsectors: %llu (%llu bytes)\n", t->shelf,
               t->slot, m, mvblk_dev_model(dev), mvblk_dev_serial(dev),
               (unsigned long long)mvblk_dev_sectors(dev),
               (unsigned long long)mvblk_dev_sectors(dev) * 512);
    } else if (strcmp(cmd, "read") == 0 || strcmp(cmd, "write") == 0) {
        uint64_t lba, count;
        if (nargs != 2 || mv_parse_u64(args[0], &lba) || mv_parse_u64(args[1], &count) ||
            count > (1u << 20)) {
            fprintf(stderr, "mvaoe: %s SHELF.SLOT LBA COUNT\n", cmd);
            ret = 2;
        } else {
            size_t len = (size_t)count * 512;
            uint8_t *buf = calloc(1, len ? len : 1);
            int rc;
            if (cmd[0] == 'r') {
                rc = mvblk_read(dev, lba, buf, (uint32_t)count);
                if (rc == 0 && fwrite(buf, 1, len, stdout) != len)
                    rc = -EIO;
            } else {
                size_t got = fread(buf, 1, len, stdin);
                (void)got; /* short input is padded with zeros */
                rc = mvblk_write(dev, lba, buf, (uint32_t)count);
            }
            if (rc < 0) {
                fprintf(stderr, "mvaoe: %s: %s\n", cmd, strerror(-rc));
                ret = rc == -EACCES ? 3 : 1;
            }
            free(buf);
        }
    } else if (strcmp(cmd, "verify") == 0) {
        ret = cmd_verify(b, dev, &o);
    } else if (strcmp(cmd, "bench") == 0) {
        o.bench.offset = o.offset;
        o.bench.size = o.size;
        o.bench.seed = o.seed;
        ret = mvaoe_bench_run(b, dev, &o.bench);
    } else if (strcmp(cmd, "flush") == 0) {
        int rc = mvblk_flush(dev);
        if (rc < 0) {
            fprintf(stderr, "mvaoe: flush: %s\n", strerror(-rc));
            ret = 1;
        }
    } else if (strcmp(cmd, "mask") == 0) {
        ret = cmd_mask(dev, nargs, args, o.wait_ms);
    } else if (strcmp(cmd, "reserve") == 0) {
        ret = cmd_reserve(dev, nargs, args, o.wait_ms);
    } else if (strcmp(cmd, "config") == 0) {
        ret = cmd_config(dev, nargs, args, o.wait_ms);
    } else {
        fprintf(stderr, "mvaoe: unknown command '%s'\n", cmd);
        ret = 2;
    }
    mvblk_close(b);
    return ret;
}
