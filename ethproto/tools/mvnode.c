/* mvnode: a demo node of the control channel on one interface. It announces itself (discovery),
 * answers echo and status requests, and can drive traffic at its peers: N echo requests and a
 * volume of bulk one-way messages, each checked for integrity and order, then prints results and
 * the channel counters. Used by scripts/demo and the ethproto integration tests. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mv/auth.h"
#include "mv/chan_port.h"
#include "mv/channel.h"
#include "mv/daemon.h"
#include "mv/discovery.h"
#include "mv/log.h"
#include "mv/port.h"
#include "mv/util.h"

enum { OP_ECHO = 1, OP_STATUS = 2, OP_BULK = 3 };

#define MAX_PEERS   64
#define OUTSTANDING 64
#define SEC         1000000000ull

struct bulk_rx {
    uint64_t node;
    uint32_t next_idx;
    uint64_t msgs, bytes, errors;
};

struct node {
    struct mv_port *port;
    struct mv_chan *chan;
    struct mv_disc *disc;
    struct mv_chan_port cp;
    struct mv_keyring keys;
    struct bulk_rx bulk[MAX_PEERS];
    unsigned nbulk;
    uint64_t echo_executed;
    bool json;
};

struct opts {
    const char *ifname, *unix_path, *key_path, *state_path, *name, *roles;
    const char *blade, *chassis, *rack;
    unsigned mtu;
    uint64_t node_id;
    unsigned wait_peers;
    double wait_s, duration_s, hello_ms, dead_s;
    uint64_t requests, bulk_bytes, msg_size;
    bool unix_listen, json, xdp;
};

static uint8_t pattern(uint32_t idx, size_t i)
{
    return (uint8_t)(idx * 131 + i * 7 + (i >> 9));
}

static struct bulk_rx *bulk_for(struct node *n, uint64_t peer)
{
    for (unsigned i = 0; i < n->nbulk; i++)
        if (n->bulk[i].node == peer)
            return &n->bulk[i];
    if (n->nbulk == MAX_PEERS)
        return NULL;
    struct bulk_rx *b = &n->bulk[n->nbulk++];
    memset(b, 0, sizeof *b);
    b->node = peer;
    return b;
}

static void on_message(void *user, const struct mv_chan_msg *msg)
{
    struct node *n = user;
    if (msg->op != OP_BULK)
        return;
    struct bulk_rx *b = bulk_for(n, msg->peer_node);
    if (!b)
        return;
    uint32_t idx;
    bool ok = msg->len >= 4;
    if (ok) {
        memcpy(&idx, msg->data, 4);
        ok = idx == b->next_idx;
        for (size_t i = 4; ok && i < msg->len; i++)
            ok = msg->data[i] == pattern(idx, i);
        b->next_idx = idx + 1;
    }
    b->msgs++;
    b->bytes += msg->len;
    b->errors += !ok;
}

static void on_request(void *user, const struct mv_chan_msg *req, struct mv_chan_reply_token tok)
{
    struct node *n = user;
    uint64_t now = mv_now_ns();
    if (req->op == OP_ECHO) {
        n->echo_executed++;
        mv_chan_reply(n->chan, tok, 0, req->data, req->len, now);
    } else if (req->op == OP_STATUS) {
        /* Our counters plus what we received in bulk from the requester. */
        static char buf[65536];
        int len = mv_chan_format_counters(n->chan, buf, sizeof buf - 256, true);
        if (len < 0 || (size_t)len >= sizeof buf - 256)
            len = (int)strlen(buf);
        struct bulk_rx *b = bulk_for(n, req->peer_node);
        len += snprintf(buf + len, sizeof buf - (size_t)len,
                        "\n{\"echo_executed\": %" PRIu64 ", \"bulk_msgs\": %" PRIu64
                        ", \"bulk_bytes\": %" PRIu64 ", \"bulk_errors\": %" PRIu64 "}",
                        n->echo_executed, b ? b->msgs : 0, b ? b->bytes : 0, b ? b->errors : 0);
        mv_chan_reply(n->chan, tok, 0, buf, (size_t)len, now);
    } else {
        mv_chan_reply(n->chan, tok, -EOPNOTSUPP, NULL, 0, now);
    }
}

static void on_peer(void *user, uint64_t node, const uint8_t mac[6], enum mv_chan_peer_event ev)
{
    char m[MV_MAC_STR_LEN];
    mv_mac_format(mac, m);
    mv_info("channel: peer %" PRIu64 " (%s) %s", node, m, mv_chan_peer_event_name(ev));
}

static void on_disc(void *user, const struct mv_disc_peer *p, enum mv_disc_event ev)
{
    char m[MV_MAC_STR_LEN], roles[64];
    mv_mac_format(p->hello.mac, m);
    static const char *const names[] = {"up", "down", "changed"};
    mv_info("discovery: %s node %" PRIu64 " %s host=%s roles=%s version=%s blade=%s chassis=%s "
            "rack=%s incarnation=%" PRIu64,
            names[ev], p->node_id, m, p->hello.hostname,
            mv_role_names(p->hello.roles, roles, sizeof roles), p->hello.version, p->hello.blade,
            p->hello.chassis, p->hello.rack, p->incarnation);
}

static void on_hello(void *user, const struct mv_ctrl_hdr *hdr, const uint8_t *payload, size_t len,
                     uint64_t now)
{
    struct node *n = user;
    if (n->disc)
        mv_disc_handle_hello(n->disc, hdr, payload, len, now);
}

/* Runs the poll loop until done() says so, a stop is requested, or the deadline passes. */
static bool run_until(struct node *n, bool (*done)(struct node *, void *), void *arg,
                      uint64_t deadline)
{
    for (;;) {
        uint64_t now = mv_now_ns();
        if (done && done(n, arg))
            return true;
        if (mv_daemon_stop_requested() || now >= deadline)
            return false;
        /* Nanosecond timeouts: the channel's probe timers are a fraction of a millisecond. */
        int64_t t = mv_chan_port_timeout_ns(&n->cp, now);
        uint64_t timeout = t < 0 ? SEC : (uint64_t)t;
        timeout = MV_MIN(timeout, deadline - now);
        if (done)
            timeout = MV_MIN(timeout, 10000000ull); /* done() may depend on time-less progress */
        struct timespec ts = {(time_t)(timeout / SEC), (long)(timeout % SEC)};
        struct pollfd pfd[2] = {{mv_chan_port_fd(&n->cp), POLLIN, 0},
                                {mv_daemon_stop_eventfd(), POLLIN, 0}};
        if (ppoll(pfd, 2, &ts, NULL) < 0 && errno != EINTR)
            return false;
        if (mv_chan_port_process(&n->cp, mv_now_ns()) < 0)
            mv_warn("port receive failed");
    }
}

static bool enough_peers(struct node *n, void *arg)
{
    unsigned want = *(unsigned *)arg, alive = 0;
    struct mv_disc_peer peers[MAX_PEERS];
    unsigned cnt = mv_disc_peers(n->disc, peers, MAX_PEERS);
    for (unsigned i = 0; i < cnt && i < MAX_PEERS; i++)
        alive += peers[i].alive;
    return alive >= want;
}

/* ---- echo requests ---- */

struct echo_run {
    struct node *n;
    uint64_t peer;
    uint64_t target, issued, done, ok, failed;
    uint32_t rng;
};
struct echo_req {
    struct echo_run *run;
    uint64_t idx;
    size_t len;
};

static void fill(uint8_t *buf, uint64_t idx, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(idx + i * 13);
}

static void on_echo(void *user, int status, const struct mv_chan_msg *resp)
{
    struct echo_req *r = user;
    struct echo_run *run = r->run;
    run->done++;
    bool ok = status == 0 && resp->status == 0 && resp->len == r->len;
    if (ok) {
        uint8_t buf[4096];
        fill(buf, r->idx, r->len);
        ok = memcmp(buf, resp->data, r->len) == 0;
    }
    if (ok)
        run->ok++;
    else {
        run->failed++;
        mv_warn("echo %" PRIu64 " to %" PRIu64 " failed: %s", r->idx, run->peer,
                status ? strerror(-status) : "bad response");
    }
    free(r);
}

static bool echo_progress(struct node *n, void *arg)
{
    struct echo_run *run = arg;
    uint8_t buf[4096];
    while (run->issued < run->target && run->issued - run->done < OUTSTANDING) {
        struct echo_req *r = malloc(sizeof *r);
        run->rng = run->rng * 1103515245 + 12345;
        r->run = run;
        r->idx = run->issued;
        r->len = 1 + (run->rng >> 8) % (run->rng % 16 == 0 ? 4000 : 256);
        fill(buf, r->idx, r->len);
        long id = mv_chan_request(n->chan, run->peer, OP_ECHO, buf, r->len, 30 * SEC, on_echo, r,
                                  mv_now_ns());
        if (id < 0) {
            free(r);
            if (id != -EAGAIN) {
                run->failed += run->target - run->issued;
                run->done += run->target - run->issued;
                run->issued = run->target;
            }
            break;
        }
        run->issued++;
    }
    return run->done >= run->target;
}

/* ---- bulk ---- */

struct bulk_run {
    uint64_t peer, total, sent, msg_size;
    uint32_t idx;
    uint8_t *buf;
    int error;
};

static bool bulk_progress(struct node *n, void *arg)
{
    struct bulk_run *b = arg;
    while (b->sent < b->total && !b->error) {
        size_t len = (size_t)MV_MIN(b->msg_size, b->total - b->sent);
        if (len < 4)
            len = 4;
        memcpy(b->buf, &b->idx, 4);
        for (size_t i = 4; i < len; i++)
            b->buf[i] = pattern(b->idx, i);
        int rc = mv_chan_send(n->chan, b->peer, OP_BULK, b->buf, len, mv_now_ns());
        if (rc == -EAGAIN)
            break;
        if (rc < 0) {
            b->error = rc;
            break;
        }
        b->idx++;
        b->sent += len;
    }
    return b->error || (b->sent >= b->total && mv_chan_tx_queued(n->chan, b->peer) == 0);
}

/* ---- status ---- */

struct status_req {
    bool done;
    int status;
    char *text;
};
static void on_status(void *user, int status, const struct mv_chan_msg *resp)
{
    struct status_req *s = user;
    s->done = true;
    s->status = status;
    if (!status) {
        s->text = malloc(resp->len + 1);
        memcpy(s->text, resp->data, resp->len);
        s->text[resp->len] = 0;
    }
}
static bool status_done(struct node *n, void *arg)
{
    return ((struct status_req *)arg)->done;
}

static uint64_t json_field(const char *text, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\": ", name);
    const char *p = text ? strstr(text, key) : NULL;
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static int drive_traffic(struct node *n, const struct opts *o)
{
    struct mv_disc_peer peers[MAX_PEERS];
    unsigned cnt = MV_MIN(mv_disc_peers(n->disc, peers, MAX_PEERS), (unsigned)MAX_PEERS);
    int failures = 0;
    for (unsigned i = 0; i < cnt; i++) {
        if (!peers[i].alive)
            continue;
        uint64_t peer = peers[i].node_id;
        const char *host = peers[i].hello.hostname;
        if (o->requests) {
            struct echo_run run = {
                .n = n, .peer = peer, .target = o->requests, .rng = (uint32_t)peer};
            uint64_t t0 = mv_now_ns();
            run_until(n, echo_progress, &run, t0 + 600 * SEC);
            double s = (double)(mv_now_ns() - t0) / 1e9;
            printf("result: peer=%s node=%" PRIu64 " requests=%" PRIu64 " ok=%" PRIu64
                   " failed=%" PRIu64 " seconds=%.3f rate=%.0f/s\n",
                   host, peer, run.target, run.ok, run.failed + (run.target - run.done), s,
                   (double)run.ok / (s > 0 ? s : 1));
            failures += run.ok != run.target;
        }
        if (o->bulk_bytes) {
            struct bulk_run b = {.peer = peer, .total = o->bulk_bytes, .msg_size = o->msg_size};
            b.buf = malloc(o->msg_size + 4);
            uint64_t t0 = mv_now_ns();
            bool ok = run_until(n, bulk_progress, &b, t0 + 600 * SEC) && !b.error;
            double s = (double)(mv_now_ns() - t0) / 1e9;
            free(b.buf);
            /* The receiver's own account: messages, bytes, order/content errors. */
            struct status_req st = {0};
            if (mv_chan_request(n->chan, peer, OP_STATUS, NULL, 0, 10 * SEC, on_status, &st,
                                mv_now_ns()) > 0)
                run_until(n, status_done, &st, mv_now_ns() + 15 * SEC);
            uint64_t rmsgs = json_field(st.text, "bulk_msgs"),
                     rbytes = json_field(st.text, "bulk_bytes"),
                     rerr = json_field(st.text, "bulk_errors");
            bool intact = ok && st.text && rmsgs == b.idx && rbytes == b.sent && rerr == 0;
            printf("result: peer=%s node=%" PRIu64 " bulk_bytes=%" PRIu64 " msgs=%u seconds=%.3f "
                   "MiB/s=%.2f received_msgs=%" PRIu64 " received_bytes=%" PRIu64
                   " order_errors=%" PRIu64 " intact=%s\n",
                   host, peer, b.sent, b.idx, s, (double)b.sent / (1 << 20) / (s > 0 ? s : 1),
                   rmsgs, rbytes, rerr, intact ? "yes" : "no");
            free(st.text);
            failures += !intact;
        }
    }
    return failures;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mvnode [options] --interface IF --key FILE\n"
            "       mvnode genkey FILE [ID]     write a new cluster key file (mode 0600)\n"
            "Runs a control-channel node: discovery, echo/status request handlers, and\n"
            "optionally traffic towards every discovered peer.\n"
            "  -i, --interface IF     network interface (AF_PACKET)\n"
            "      --xdp              use an AF_XDP port (falls back to AF_PACKET)\n"
            "      --unix PATH        AF_UNIX seqpacket port instead (--listen to serve)\n"
            "  -k, --key FILE         cluster key file (see docs/protocol.md)\n"
            "      --state FILE       incarnation state file (default: realtime clock)\n"
            "  -n, --name NAME        host name announced (default: gethostname)\n"
            "      --node-id N        node id (default: from the interface MAC)\n"
            "      --roles LIST       hypervisor,controller,storage (default hypervisor)\n"
            "      --blade L --chassis L --rack L   fault-domain labels\n"
            "      --mtu N            MTU used for fragmentation (default: the interface's)\n"
            "      --hello-ms N       HELLO interval (500)\n"
            "      --dead-s S         peer dead after S seconds of silence (3)\n"
            "      --wait-peers N     before traffic, wait for N live peers\n"
            "      --wait-s S         ...for at most S seconds (10)\n"
            "  -r, --requests N       send N echo requests to each peer\n"
            "  -b, --bulk SIZE        send SIZE bytes of bulk messages to each peer (e.g. 64M)\n"
            "      --msg-size SIZE    bulk message size (256k, max 1M)\n"
            "  -d, --duration S       run S seconds then exit (default: until SIGTERM, or after\n"
            "                         the traffic when -r/-b is given)\n"
            "      --json             print counters as JSON\n"
            "  -v, --verbose          debug logging\n"
            "  -h, --help, -V, --version\n");
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return (errno || *end || *out < 0) ? -EINVAL : 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    enum {
        O_XDP = 256,
        O_UNIX,
        O_LISTEN,
        O_STATE,
        O_NODE,
        O_ROLES,
        O_BLADE,
        O_CHASSIS,
        O_RACK,
        O_MTU,
        O_HELLO,
        O_DEAD,
        O_WAIT,
        O_WAITS,
        O_MSG,
        O_JSON
    };
    static const struct option lo[] = {{"interface", 1, 0, 'i'},     {"xdp", 0, 0, O_XDP},
                                       {"unix", 1, 0, O_UNIX},       {"listen", 0, 0, O_LISTEN},
                                       {"key", 1, 0, 'k'},           {"state", 1, 0, O_STATE},
                                       {"name", 1, 0, 'n'},          {"node-id", 1, 0, O_NODE},
                                       {"roles", 1, 0, O_ROLES},     {"blade", 1, 0, O_BLADE},
                                       {"chassis", 1, 0, O_CHASSIS}, {"rack", 1, 0, O_RACK},
                                       {"mtu", 1, 0, O_MTU},         {"hello-ms", 1, 0, O_HELLO},
                                       {"dead-s", 1, 0, O_DEAD},     {"wait-peers", 1, 0, O_WAIT},
                                       {"wait-s", 1, 0, O_WAITS},    {"requests", 1, 0, 'r'},
                                       {"bulk", 1, 0, 'b'},          {"msg-size", 1, 0, O_MSG},
                                       {"duration", 1, 0, 'd'},      {"json", 0, 0, O_JSON},
                                       {"verbose", 0, 0, 'v'},       {"help", 0, 0, 'h'},
                                       {"version", 0, 0, 'V'},       {0, 0, 0, 0}};
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "i:k:n:r:b:d:vhV", lo, NULL)) != -1) {
        int rc = 0;
        uint32_t u32 = 0;
        switch (c) {
        case 'i':
            o->ifname = optarg;
            break;
        case O_XDP:
            o->xdp = true;
            break;
        case O_UNIX:
            o->unix_path = optarg;
            break;
        case O_LISTEN:
            o->unix_listen = true;
            break;
        case 'k':
            o->key_path = optarg;
            break;
        case O_STATE:
            o->state_path = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case O_NODE:
            rc = mv_parse_u64(optarg, &o->node_id);
            break;
        case O_ROLES:
            o->roles = optarg;
            break;
        case O_BLADE:
            o->blade = optarg;
            break;
        case O_CHASSIS:
            o->chassis = optarg;
            break;
        case O_RACK:
            o->rack = optarg;
            break;
        case O_MTU:
            rc = mv_parse_u32(optarg, &o->mtu);
            if (!rc && (o->mtu < 256 || o->mtu > 9000))
                rc = -ERANGE;
            break;
        case O_HELLO:
            rc = parse_double(optarg, &o->hello_ms);
            break;
        case O_DEAD:
            rc = parse_double(optarg, &o->dead_s);
            break;
        case O_WAIT:
            rc = mv_parse_u32(optarg, &u32);
            o->wait_peers = u32;
            break;
        case O_WAITS:
            rc = parse_double(optarg, &o->wait_s);
            break;
        case 'r':
            rc = mv_parse_u64(optarg, &o->requests);
            break;
        case 'b':
            rc = mv_parse_size(optarg, &o->bulk_bytes);
            break;
        case O_MSG:
            rc = mv_parse_size(optarg, &v);
            if (!rc && (v < 4 || v > MV_CTRL_MAX_MSG))
                rc = -ERANGE;
            o->msg_size = v;
            break;
        case 'd':
            rc = parse_double(optarg, &o->duration_s);
            break;
        case O_JSON:
            o->json = true;
            break;
        case 'v':
            mv_log_set_level(LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("mvnode %s\n", MV_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
        if (rc) {
            fprintf(stderr, "mvnode: bad value for option: '%s'\n", optarg);
            return -EINVAL;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "mvnode: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    if (!o->key_path || (!o->ifname && !o->unix_path)) {
        fprintf(stderr, "mvnode: --key and --interface (or --unix) are required\n");
        return -EINVAL;
    }
    return 0;
}

static int genkey(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: mvnode genkey FILE [ID]\n");
        return 2;
    }
    uint32_t id = 1;
    if (argc == 4 && (mv_parse_u32(argv[3], &id) || id > 255)) {
        fprintf(stderr, "mvnode: key id must be 0-255\n");
        return 2;
    }
    char err[256];
    if (mv_keyring_generate_file(argv[2], (uint8_t)id, err, sizeof err)) {
        fprintf(stderr, "mvnode: %s\n", err);
        return 1;
    }
    printf("wrote key %u to %s\n", id, argv[2]);
    return 0;
}

int main(int argc, char **argv)
{
    mv_log_init("mvnode", LOG_INFO);
    mv_port_link_xdp(); /* --xdp */
    if (argc >= 2 && !strcmp(argv[1], "genkey"))
        return genkey(argc, argv);
    struct opts o = {.roles = "hypervisor",
                     .blade = "",
                     .chassis = "",
                     .rack = "",
                     .wait_s = 10,
                     .hello_ms = 500,
                     .dead_s = 3,
                     .msg_size = 256 << 10};
    if (parse_args(argc, argv, &o))
        return 2;
    static struct node n;
    n.json = o.json;
    char err[256];
    if (mv_keyring_load(&n.keys, o.key_path, err, sizeof err)) {
        mv_err("%s", err);
        return 1;
    }
    uint8_t unix_mac[6] = {0x02, 0x6d, 0x76, 0, 0, 0};
    if (o.unix_path) {
        uint64_t id = o.node_id ? o.node_id : (uint64_t)getpid();
        for (int i = 0; i < 3; i++)
            unix_mac[5 - i] = (uint8_t)(id >> (8 * i));
    }
    struct mv_port_config pc = {
        .kind = o.unix_path ? MV_PORT_UNIX : (o.xdp ? MV_PORT_XDP : MV_PORT_PACKET),
        .ifname = o.ifname,
        .unix_path = o.unix_path,
        .unix_listen = o.unix_listen,
        .unix_mac = unix_mac,
        .ethertypes = {MV_ETHERTYPE_CTRL},
        .n_ethertypes = 1,
        /* Per-frame wakeups: acks and responses are latency-bound (see mv/port.h). */
        .low_latency = true,
    };
    int rc = mv_port_open(&pc, &n.port, err, sizeof err);
    if (rc) {
        mv_err("cannot open port: %s", err);
        return 1;
    }
    const uint8_t *mac = mv_port_mac(n.port);
    uint64_t node_id = o.node_id;
    for (int i = 0; !o.node_id && i < 6; i++)
        node_id = node_id << 8 | mac[i];
    if (!node_id)
        node_id = 1;
    uint64_t inc;
    if (mv_incarnation_next(o.state_path, mv_realtime_ns(), &inc, err, sizeof err)) {
        mv_err("%s", err);
        return 1;
    }
    unsigned mtu = o.mtu ? o.mtu : mv_port_mtu(n.port);
    if (mtu > 9000)
        mtu = 9000;
    struct mv_chan_config cc = {
        .node_id = node_id,
        .incarnation = inc,
        .mtu = mtu,
        .keys = &n.keys,
        .send = mv_chan_port_send,
        .send_batch = mv_chan_port_send_batch,
        .send_user = n.port,
        .on_request = on_request,
        .on_message = on_message,
        .on_peer = on_peer,
        .on_hello = on_hello,
        .cb_user = &n,
        .dead_after_ns = (uint64_t)(o.dead_s * 1e9),
    };
    memcpy(cc.mac, mac, 6);
    if ((rc = mv_chan_create(&cc, &n.chan))) {
        mv_err("channel: %s", strerror(-rc));
        return 1;
    }
    struct mv_disc_config dc = {
        .chan = n.chan,
        .interval_ns = (uint64_t)(o.hello_ms * 1e6),
        .dead_after_ns = (uint64_t)(o.dead_s * 1e9),
        .on_event = on_disc,
    };
    memcpy(dc.self.mac, mac, 6);
    char host[64] = "node";
    if (o.name)
        snprintf(host, sizeof host, "%s", o.name);
    else
        gethostname(host, sizeof host - 1);
    snprintf(dc.self.hostname, sizeof dc.self.hostname, "%s", host);
    snprintf(dc.self.version, sizeof dc.self.version, "%s", MV_VERSION);
    snprintf(dc.self.blade, sizeof dc.self.blade, "%s", o.blade);
    snprintf(dc.self.chassis, sizeof dc.self.chassis, "%s", o.chassis);
    snprintf(dc.self.rack, sizeof dc.self.rack, "%s", o.rack);
    if (mv_role_parse(o.roles, &dc.self.roles)) {
        mv_err("bad --roles '%s'", o.roles);
        return 2;
    }
    if ((rc = mv_disc_create(&dc, &n.disc))) {
        mv_err("discovery: %s", strerror(-rc));
        return 1;
    }
    n.cp = (struct mv_chan_port){.port = n.port, .chan = n.chan, .disc = n.disc};
    mv_daemon_handle_signals();
    char macs[MV_MAC_STR_LEN];
    mv_mac_format(mac, macs);
    mv_info("ready: node %" PRIu64 " %s on %s (%s port) mtu %u incarnation %" PRIu64, node_id, macs,
            o.ifname ? o.ifname : o.unix_path, mv_port_kind_name(mv_port_kind(n.port)), mtu, inc);

    int failures = 0;
    uint64_t start = mv_now_ns();
    if (o.wait_peers) {
        uint64_t t0 = mv_now_ns();
        if (!run_until(&n, enough_peers, &o.wait_peers, t0 + (uint64_t)(o.wait_s * 1e9))) {
            mv_err("only found fewer than %u peers in %.1f s", o.wait_peers, o.wait_s);
            failures++;
        } else {
            printf("result: discovered=%u seconds=%.3f\n", o.wait_peers,
                   (double)(mv_now_ns() - t0) / 1e9);
        }
    }
    if (!failures && (o.requests || o.bulk_bytes))
        failures += drive_traffic(&n, &o);
    bool traffic = o.requests || o.bulk_bytes;
    uint64_t end = o.duration_s > 0 ? start + (uint64_t)(o.duration_s * 1e9)
                                    : (traffic ? mv_now_ns() : UINT64_MAX);
    if (traffic && o.duration_s <= 0)
        end = mv_now_ns() + SEC / 2; /* let the last acks go out */
    run_until(&n, NULL, NULL, end);

    static char buf[65536];
    mv_chan_format_counters(n.chan, buf, sizeof buf, o.json);
    printf("%s%s", buf, o.json ? "\n" : "");
    fflush(stdout);
    mv_disc_destroy(n.disc);
    mv_chan_destroy(n.chan);
    mv_port_close(n.port);
    mv_keyring_wipe(&n.keys);
    return failures ? 1 : 0;
}
