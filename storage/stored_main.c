/* mvstored: the AoE target daemon of a host. Serves the mapped vdisk replicas of its drives over
 * an Ethernet port (AF_PACKET or AF_XDP) and, for initiators on the same host, an AF_UNIX port;
 * takes management requests on a local control socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mv/config.h"
#include "mv/daemon.h"
#include "mv/log.h"
#include "mv/port.h"
#include "mv/util.h"
#include "stored.h"

#define RX_BATCH       64
#define REPLY_POOL     256
#define MAX_CLIENTS    16
#define CTL_BUF        8192
#define MAX_CFG_DRIVES STORED_MAX_DRIVES

struct options {
    char host[MV_DRIVE_HOST_LEN];
    char ifname[64];
    bool xdp;
    bool low_latency;
    bool sync_io;
    bool buffered;
    char unix_socket[108];
    char control_socket[108];
    char *drives[MAX_CFG_DRIVES];
    unsigned n_drives;
    uint8_t mac[6];
    bool have_mac;
    int log_level;
};

struct ctl_client {
    int fd;
    size_t len;
    char buf[CTL_BUF];
};

static struct stored g_stored;
static uint8_t g_reply_mem[REPLY_POOL][MV_ETH_MAX_FRAME];

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mvstored [options]\n"
            "       mvstored --check DRIVE\n"
            "       mvstored --format DRIVE --host NAME [--chunk-size BYTES] [--overcommit PCT]\n"
            "AoE (r11) target serving this host's drives.\n"
            "  -c, --config FILE        INI file, section [mvstored] (keys as the long options;\n"
            "                           'drive' may repeat)\n"
            "  -H, --host NAME          this host's name (owner recorded on formatted drives)\n"
            "  -i, --interface IF       serve AoE on this interface (AF_PACKET)\n"
            "      --xdp                use AF_XDP on the interface (falls back to AF_PACKET)\n"
            "      --low-latency        per-frame wakeups on AF_PACKET (TPACKET_V2; default)\n"
            "      --block-rx           block-batched TPACKET_V3 receive instead\n"
            "      --io uring|sync      data transfers through io_uring (default) or inline\n"
            "      --buffered           page cache instead of O_DIRECT for data\n"
            "  -u, --unix-socket PATH   serve host-local initiators on this AF_UNIX socket\n"
            "  -C, --control-socket PATH  management socket (JSON lines)\n"
            "  -d, --drive PATH         a drive (file or block device); repeatable\n"
            "  -m, --mac MAC            target MAC (default: the interface's, else random)\n"
            "  -l, --log-level LEVEL    err, warning, info, debug\n"
            "      --check DRIVE        verify a drive's metadata and exit (0 = consistent)\n"
            "      --format DRIVE       format a drive and exit\n"
            "  -h, --help, -V, --version\n");
}

static int apply_option(struct options *o, const char *key, const char *value, char *err,
                        size_t errlen)
{
    if (strcmp(key, "host") == 0) {
        if (strlen(value) >= sizeof o->host)
            return snprintf(err, errlen, "host name too long"), -1;
        snprintf(o->host, sizeof o->host, "%s", value);
    } else if (strcmp(key, "interface") == 0) {
        snprintf(o->ifname, sizeof o->ifname, "%s", value);
    } else if (strcmp(key, "xdp") == 0 || strcmp(key, "low_latency") == 0 ||
               strcmp(key, "low-latency") == 0) {
        bool b;
        if (mv_parse_bool(value, &b) != 0)
            return snprintf(err, errlen, "%s: expected true/false", key), -1;
        if (key[0] == 'x')
            o->xdp = b;
        else
            o->low_latency = b;
    } else if (strcmp(key, "buffered") == 0) {
        if (mv_parse_bool(value, &o->buffered) != 0)
            return snprintf(err, errlen, "%s: expected true/false", key), -1;
    } else if (strcmp(key, "io") == 0) {
        if (strcmp(value, "sync") != 0 && strcmp(value, "uring") != 0)
            return snprintf(err, errlen, "io: expected sync or uring"), -1;
        o->sync_io = value[0] == 's';
    } else if (strcmp(key, "unix_socket") == 0 || strcmp(key, "unix-socket") == 0) {
        if (strlen(value) >= sizeof o->unix_socket)
            return snprintf(err, errlen, "socket path too long"), -1;
        snprintf(o->unix_socket, sizeof o->unix_socket, "%s", value);
    } else if (strcmp(key, "control_socket") == 0 || strcmp(key, "control-socket") == 0) {
        if (strlen(value) >= sizeof o->control_socket)
            return snprintf(err, errlen, "socket path too long"), -1;
        snprintf(o->control_socket, sizeof o->control_socket, "%s", value);
    } else if (strcmp(key, "drive") == 0) {
        if (o->n_drives == MAX_CFG_DRIVES)
            return snprintf(err, errlen, "more than %d drives", MAX_CFG_DRIVES), -1;
        o->drives[o->n_drives++] = strdup(value);
    } else if (strcmp(key, "mac") == 0) {
        if (mv_mac_parse(value, o->mac) != 0)
            return snprintf(err, errlen, "bad MAC address '%s'", value), -1;
        o->have_mac = true;
    } else if (strcmp(key, "log_level") == 0 || strcmp(key, "log-level") == 0) {
        o->log_level = mv_log_level_from_name(value);
        if (o->log_level < 0)
            return snprintf(err, errlen, "unknown log level '%s'", value), -1;
    } else {
        return snprintf(err, errlen, "unknown key '%s'", key), -1;
    }
    return 0;
}

static int config_handler(void *user, const char *section, const char *key, const char *value,
                          char *err, size_t errlen)
{
    if (strcmp(section, "mvstored") != 0) {
        snprintf(err, errlen, "unknown section [%s]", section);
        return -1;
    }
    return apply_option(user, key, value, err, errlen);
}

static int listen_control(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 8) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    chmod(path, 0600);
    return fd;
}

/* Reads what a control client sent and answers each complete line. false = drop the client. */
static bool serve_client(struct ctl_client *c)
{
    ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EINTR);
    c->len += (size_t)n;
    c->buf[c->len] = 0;
    char *line = c->buf, *nl;
    static char out[1 << 16];
    while ((nl = strchr(line, '\n'))) {
        *nl = 0;
        stored_control(&g_stored, line, out, sizeof out);
        size_t left = strlen(out);
        const char *p = out;
        while (left) { /* replies are small; a blocking-ish write loop is fine */
            ssize_t w = write(c->fd, p, left);
            if (w < 0 && errno == EAGAIN) {
                struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
                poll(&pfd, 1, 1000);
                continue;
            }
            if (w <= 0)
                return false;
            p += w;
            left -= (size_t)w;
        }
        line = nl + 1;
    }
    c->len -= (size_t)(line - c->buf);
    memmove(c->buf, line, c->len);
    if (c->len == sizeof c->buf - 1)
        return false; /* a line longer than the buffer */
    return true;
}

/* Sends what the port accepts, retrying briefly on a full ring; the rest is dropped and the
 * initiator retransmits. */
static void send_all(struct mv_port *port, struct mv_frame *frames, unsigned n)
{
    unsigned sent = 0;
    for (int tries = 0; sent < n && tries < 100; tries++) {
        int rc = mv_port_send(port, frames + sent, n - sent);
        if (rc < 0) {
            mv_debug("send: %s", strerror(-rc));
            break;
        }
        sent += (unsigned)rc;
        if (sent < n)
            sched_yield();
    }
}

/* Drains a port: every received frame through the target, the replies out in batches. */
static void serve_port(struct mv_port *port, struct aoe_target *t)
{
    struct mv_frame rx[RX_BATCH];
    static struct aoe_target_reply replies[REPLY_POOL];
    static struct mv_frame tx[REPLY_POOL];
    for (int round = 0; round < 16; round++) {
        int n = mv_port_recv(port, rx, RX_BATCH);
        if (n <= 0)
            break;
        unsigned used = 0;
        for (int i = 0; i < n; i++) {
            if (REPLY_POOL - used < RX_BATCH) {
                send_all(port, tx, used);
                used = 0;
            }
            for (unsigned k = used; k < REPLY_POOL; k++)
                replies[k] = (struct aoe_target_reply){.buf = g_reply_mem[k],
                                                       .cap = MV_ETH_HLEN + mv_port_mtu(port)};
            unsigned got = aoe_target_handle_frame(t, rx[i].data, rx[i].len, replies + used,
                                                   MV_MIN(RX_BATCH, REPLY_POOL - used));
            for (unsigned k = used; k < used + got; k++)
                tx[k] = (struct mv_frame){
                    .data = replies[k].buf, .len = (uint32_t)replies[k].len, .conn = rx[i].conn};
            used += got;
        }
        send_all(port, tx, used);
        mv_port_recv_done(port);
    }
}

/* ---- io_uring engine: READ/WRITE data transfers run asynchronously, many in flight; replies
 * leave as their transfers complete. Every buffer is allocated once at start. ---- */

#define URING_SLOTS   256
#define URING_DEPTH   512
#define MAX_PER_FRAME 8

struct uring_slot {
    uint8_t *mem; /* allocation base */
    struct aoe_target_reply r;
    struct mv_port *port;
    uint32_t conn;
    unsigned pending;
    int err;
};

struct txq {
    struct mv_port *port;
    unsigned n;
    struct mv_frame frames[URING_SLOTS];
    unsigned slots[URING_SLOTS];
};

static struct io_uring g_ring;
static bool g_uring;
static struct uring_slot g_slots[URING_SLOTS];
static unsigned g_free[URING_SLOTS], g_nfree;
static struct txq g_txq[2];

static int uring_init(unsigned bounce_len)
{
    int rc = io_uring_queue_init(URING_DEPTH, &g_ring, 0);
    if (rc < 0)
        return rc;
    bounce_len = (bounce_len + 4095) / 4096 * 4096;
    for (unsigned i = 0; i < URING_SLOTS; i++) {
        struct uring_slot *s = &g_slots[i];
        /* Frame placed so its ATA data (offset 36) is 4096-aligned, as O_DIRECT reads need. */
        size_t frame_area = (MV_ETH_MAX_FRAME + 4095) / 4096 * 4096;
        if (posix_memalign((void **)&s->mem, 4096, 4096 + frame_area + bounce_len) != 0)
            return -ENOMEM;
        s->r.buf = s->mem + 4096 - AOE_ATA_HDR_LEN;
        s->r.cap = MV_ETH_MAX_FRAME;
        s->r.bounce = s->mem + 4096 + frame_area;
        g_free[g_nfree++] = i;
    }
    return 0;
}

static void uring_exit(void)
{
    io_uring_queue_exit(&g_ring);
    for (unsigned i = 0; i < URING_SLOTS; i++)
        free(g_slots[i].mem);
}

static struct txq *txq_for(struct mv_port *port)
{
    for (int i = 0; i < 2; i++) {
        if (g_txq[i].port == port || !g_txq[i].port) {
            g_txq[i].port = port;
            return &g_txq[i];
        }
    }
    return &g_txq[0];
}

static void txq_add(unsigned slot)
{
    struct uring_slot *s = &g_slots[slot];
    struct txq *q = txq_for(s->port);
    q->frames[q->n] =
        (struct mv_frame){.data = s->r.buf, .len = (uint32_t)s->r.len, .conn = s->conn};
    q->slots[q->n++] = slot;
}

/* Sends every queued reply and returns the slots (the port copies frames into its ring). */
static void txq_flush(void)
{
    for (int i = 0; i < 2; i++) {
        struct txq *q = &g_txq[i];
        if (!q->n)
            continue;
        send_all(q->port, q->frames, q->n);
        for (unsigned k = 0; k < q->n; k++)
            g_free[g_nfree++] = q->slots[k];
        q->n = 0;
    }
}

static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&g_ring);
    if (!sqe) {
        io_uring_submit(&g_ring);
        sqe = io_uring_get_sqe(&g_ring);
    }
    return sqe;
}

/* Collects completions; a reply whose transfers are all done joins the send queue. */
static void uring_reap(struct aoe_target *t, bool wait)
{
    struct io_uring_cqe *cqe;
    if (wait && io_uring_wait_cqe(&g_ring, &cqe) < 0)
        return;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&g_ring, head, cqe)
    {
        unsigned slot = (unsigned)(io_uring_cqe_get_data64(cqe) >> 8);
        unsigned io = (unsigned)(io_uring_cqe_get_data64(cqe) & 0xff);
        struct uring_slot *s = &g_slots[slot];
        if (cqe->res != (int)s->r.io[io].len && !s->err)
            s->err = cqe->res < 0 ? cqe->res : -EIO;
        if (--s->pending == 0) {
            if (s->err)
                aoe_target_fail_io(t, &s->r, s->err);
            txq_add(slot);
        }
        n++;
    }
    io_uring_cq_advance(&g_ring, n);
}

static void serve_port_uring(struct mv_port *port, struct aoe_target *t)
{
    struct mv_frame rx[RX_BATCH];
    struct aoe_target_reply scratch[MAX_PER_FRAME];
    for (int round = 0; round < 16; round++) {
        uring_reap(t, false);
        txq_flush();
        /* Room for a whole batch, each frame possibly a broadcast with several replies. */
        while (g_nfree < RX_BATCH + MAX_PER_FRAME) {
            io_uring_submit(&g_ring);
            uring_reap(t, true);
            txq_flush();
        }
        int n = mv_port_recv(port, rx, RX_BATCH);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            unsigned max = MV_MIN((unsigned)MAX_PER_FRAME, g_nfree);
            for (unsigned k = 0; k < max; k++)
                scratch[k] = g_slots[g_free[g_nfree - 1 - k]].r;
            unsigned got = aoe_target_handle_frame(t, rx[i].data, rx[i].len, scratch, max);
            for (unsigned k = 0; k < got; k++) {
                unsigned slot = g_free[--g_nfree];
                struct uring_slot *s = &g_slots[slot];
                s->r = scratch[k];
                s->port = port;
                s->conn = rx[i].conn;
                s->err = 0;
                s->pending = s->r.nio;
                if (!s->r.nio) {
                    txq_add(slot);
                    continue;
                }
                for (unsigned j = 0; j < s->r.nio; j++) {
                    struct aoe_target_io *io = &s->r.io[j];
                    struct io_uring_sqe *sqe = get_sqe();
                    if (io->write)
                        io_uring_prep_write(sqe, io->fd, io->mem, io->len, io->off);
                    else
                        io_uring_prep_read(sqe, io->fd, io->mem, io->len, io->off);
                    io_uring_sqe_set_data64(sqe, (uint64_t)slot << 8 | j);
                }
            }
        }
        io_uring_submit(&g_ring);
        txq_flush();
        mv_port_recv_done(port);
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, 0, 'c'},      {"host", required_argument, 0, 'H'},
        {"interface", required_argument, 0, 'i'},   {"xdp", no_argument, 0, 'X'},
        {"low-latency", no_argument, 0, 'L'},       {"block-rx", no_argument, 0, 'J'},
        {"io", required_argument, 0, 'I'},          {"buffered", no_argument, 0, 'B'},
        {"unix-socket", required_argument, 0, 'u'}, {"control-socket", required_argument, 0, 'C'},
        {"drive", required_argument, 0, 'd'},       {"mac", required_argument, 0, 'm'},
        {"log-level", required_argument, 0, 'l'},   {"check", required_argument, 0, 'K'},
        {"format", required_argument, 0, 'F'},      {"chunk-size", required_argument, 0, 'S'},
        {"overcommit", required_argument, 0, 'O'},  {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},           {0, 0, 0, 0},
    };
    /* Per-frame RX wakeups by default: AoE is request/response, and the 1 ms block timeout of a
     * TPACKET_V3 ring halved read throughput in bench/aoe. */
    struct options o = {.log_level = LOG_INFO, .low_latency = true};
    const char *check = NULL, *format = NULL;
    uint64_t chunk = 0;
    uint32_t overcommit = 0;
    char err[512];
    mv_log_init("mvstored", LOG_INFO);
    mv_port_link_xdp(); /* --xdp */
    /* The config file first, so flags override it wherever they appear. */
    for (int i = 1; i < argc - 1; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (mv_config_load(argv[i + 1], config_handler, &o, err, sizeof err) != 0) {
                fprintf(stderr, "mvstored: %s\n", err);
                return 2;
            }
        }
    }
    int c;
    while ((c = getopt_long(argc, argv, "c:H:i:u:C:d:m:l:hV", longopts, NULL)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'c':
            continue;
        case 'H':
            key = "host";
            break;
        case 'i':
            key = "interface";
            break;
        case 'X':
            key = "xdp";
            optarg = "true";
            break;
        case 'L':
            key = "low_latency";
            optarg = "true";
            break;
        case 'I':
            key = "io";
            break;
        case 'J':
            key = "low_latency";
            optarg = "false";
            break;
        case 'B':
            key = "buffered";
            optarg = "true";
            break;
        case 'u':
            key = "unix_socket";
            break;
        case 'C':
            key = "control_socket";
            break;
        case 'd':
            key = "drive";
            break;
        case 'm':
            key = "mac";
            break;
        case 'l':
            key = "log_level";
            break;
        case 'K':
            check = optarg;
            continue;
        case 'F':
            format = optarg;
            continue;
        case 'S':
            if (mv_parse_size(optarg, &chunk) != 0 || chunk > (1u << 30)) {
                fprintf(stderr, "mvstored: bad --chunk-size\n");
                return 2;
            }
            continue;
        case 'O':
            if (mv_parse_u32(optarg, &overcommit) != 0) {
                fprintf(stderr, "mvstored: bad --overcommit\n");
                return 2;
            }
            continue;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("mvstored %s\n", MV_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (apply_option(&o, key, optarg, err, sizeof err) != 0) {
            fprintf(stderr, "mvstored: --%s: %s\n", key, err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mvstored: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    mv_log_set_level(o.log_level);
    if (check) {
        static char report[1 << 16];
        int n = mv_drive_check(check, report, sizeof report);
        if (n < 0) {
            fprintf(stderr, "mvstored: %s: %s\n", check, strerror(-n));
            return 2;
        }
        fputs(report, stdout);
        printf("%s: %s (%d problem%s)\n", check, n ? "INCONSISTENT" : "ok", n, n == 1 ? "" : "s");
        return n ? 1 : 0;
    }
    if (format) {
        struct mv_drive_format_opts fo = {
            .host = o.host, .chunk_size = (uint32_t)chunk, .overcommit_pct = overcommit};
        if (mv_drive_format(format, &fo, err, sizeof err) != 0) {
            fprintf(stderr, "mvstored: %s\n", err);
            return 1;
        }
        printf("%s: formatted for host %s\n", format, o.host);
        return 0;
    }
    if (!o.host[0]) {
        fprintf(stderr, "mvstored: --host is required\n");
        return 2;
    }
    if (!o.ifname[0] && !o.unix_socket[0]) {
        fprintf(stderr, "mvstored: nothing to serve on: give --interface and/or --unix-socket\n");
        return 2;
    }
    mv_daemon_handle_signals();

    struct mv_port *net = NULL, *local = NULL;
    unsigned mtu = 9000;
    if (o.ifname[0]) {
        struct mv_port_config pc = {.kind = o.xdp ? MV_PORT_XDP : MV_PORT_PACKET,
                                    .ifname = o.ifname,
                                    .ethertypes = {MV_ETHERTYPE_AOE},
                                    .n_ethertypes = 1,
                                    .low_latency = o.low_latency};
        int rc = mv_port_open(&pc, &net, err, sizeof err);
        if (rc < 0) {
            mv_err("interface %s: %s", o.ifname, err);
            return 1;
        }
        mtu = mv_port_mtu(net);
        if (!o.have_mac)
            memcpy(o.mac, mv_port_mac(net), 6);
        o.have_mac = true;
    }
    if (!o.have_mac) {
        if (getrandom(o.mac, 6, 0) != 6)
            memset(o.mac, 0x42, 6);
        o.mac[0] = (uint8_t)((o.mac[0] & 0xfe) | 0x02); /* unicast, locally administered */
    }
    if (o.unix_socket[0]) {
        struct mv_port_config pc = {.kind = MV_PORT_UNIX,
                                    .unix_path = o.unix_socket,
                                    .unix_listen = true,
                                    .unix_mac = o.mac};
        int rc = mv_port_open(&pc, &local, err, sizeof err);
        if (rc < 0) {
            mv_err("unix socket %s: %s", o.unix_socket, err);
            mv_port_close(net);
            return 1;
        }
        if (!net)
            mtu = mv_port_mtu(local);
    }
    snprintf(g_stored.host, sizeof g_stored.host, "%s", o.host);
    g_stored.buffered = o.buffered;
    struct aoe_target_config tc = {.mtu = mtu};
    memcpy(tc.mac, o.mac, 6);
    if (aoe_target_create(&tc, &g_stored.target) != 0) {
        mv_err("MTU %u is too small for AoE", mtu);
        return 1;
    }
    if (!o.sync_io) {
        int rc = uring_init(aoe_target_sectors_per_frame(g_stored.target) * AOE_SECTOR_SIZE);
        if (rc < 0)
            mv_warn("io_uring unavailable (%s): inline I/O", strerror(-rc));
        g_uring = rc == 0;
        aoe_target_set_async(g_stored.target, g_uring);
    }
    for (unsigned i = 0; i < o.n_drives; i++) {
        int rc = stored_add_drive(&g_stored, o.drives[i]);
        if (rc < 0)
            mv_warn("drive %s: %s", o.drives[i], strerror(-rc));
        free(o.drives[i]);
    }
    int ctl = -1;
    if (o.control_socket[0]) {
        ctl = listen_control(o.control_socket);
        if (ctl < 0) {
            mv_err("control socket %s: %s", o.control_socket, strerror(-ctl));
            return 1;
        }
    }
    char macs[MV_MAC_STR_LEN];
    mv_mac_format(o.mac, macs);
    mv_info("serving %u target(s) as %s, %u sectors per frame, %s I/O%s%s%s%s",
            aoe_target_count(g_stored.target), macs, aoe_target_sectors_per_frame(g_stored.target),
            g_uring ? "io_uring" : "inline", net ? " on " : "", net ? o.ifname : "",
            local ? " and " : "", local ? o.unix_socket : "");

    struct ctl_client *clients[MAX_CLIENTS] = {0};
    while (!mv_daemon_stop_requested()) {
        struct pollfd pfd[6 + MAX_CLIENTS];
        int np = 0, i_net = -1, i_local = -1, i_ctl = -1;
        pfd[np++] = (struct pollfd){.fd = mv_daemon_stop_eventfd(), .events = POLLIN};
        if (net) {
            i_net = np;
            pfd[np++] = (struct pollfd){.fd = mv_port_fd(net), .events = POLLIN};
        }
        if (local) {
            i_local = np;
            pfd[np++] = (struct pollfd){.fd = mv_port_fd(local), .events = POLLIN};
        }
        if (g_uring)
            pfd[np++] = (struct pollfd){.fd = g_ring.ring_fd, .events = POLLIN};
        if (ctl >= 0) {
            i_ctl = np;
            pfd[np++] = (struct pollfd){.fd = ctl, .events = POLLIN};
        }
        int first_client = np;
        for (int k = 0; k < MAX_CLIENTS; k++)
            if (clients[k])
                pfd[np++] = (struct pollfd){.fd = clients[k]->fd, .events = POLLIN};
        /* The port fds may not signal frames already sitting in a ring: drain on a timeout. */
        int rc = poll(pfd, (nfds_t)np, 100);
        if (rc < 0 && errno != EINTR) {
            mv_err("poll: %s", strerror(errno));
            break;
        }
        void (*serve)(struct mv_port *, struct aoe_target *) =
            g_uring ? serve_port_uring : serve_port;
        if (g_uring) {
            uring_reap(g_stored.target, false);
            txq_flush();
        }
        if (net)
            serve(net, g_stored.target);
        if (local)
            serve(local, g_stored.target);
        (void)i_net;
        (void)i_local;
        for (int p = first_client, k = 0; k < MAX_CLIENTS; k++) {
            if (!clients[k])
                continue;
            if (p < np && pfd[p].fd == clients[k]->fd && (pfd[p].revents & (POLLIN | POLLHUP))) {
                if (!serve_client(clients[k])) {
                    close(clients[k]->fd);
                    free(clients[k]);
                    clients[k] = NULL;
                }
            }
            p++;
        }
        /* Accept after serving, so pfd[] still lines up with clients[] above. */
        if (i_ctl >= 0 && (pfd[i_ctl].revents & POLLIN)) {
            int fd = accept4(ctl, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            int k;
            for (k = 0; fd >= 0 && k < MAX_CLIENTS && clients[k]; k++)
                ;
            if (fd >= 0 && k < MAX_CLIENTS && (clients[k] = calloc(1, sizeof *clients[k])))
                clients[k]->fd = fd;
            else if (fd >= 0)
                close(fd);
        }
    }
    mv_info("stopping");
    for (int k = 0; k < MAX_CLIENTS; k++) {
        if (clients[k]) {
            close(clients[k]->fd);
            free(clients[k]);
        }
    }
    if (ctl >= 0) {
        close(ctl);
        unlink(o.control_socket);
    }
    if (g_uring) {
        /* Let transfers in flight finish before the drives close under them. */
        while (g_nfree + g_txq[0].n + g_txq[1].n < URING_SLOTS) {
            io_uring_submit(&g_ring);
            uring_reap(g_stored.target, true);
        }
        g_txq[0].n = g_txq[1].n = 0;
    }
    mv_port_close(net);
    mv_port_close(local);
    stored_close_drives(&g_stored);
    aoe_target_destroy(g_stored.target);
    if (g_uring)
        uring_exit();
    return 0;
}
