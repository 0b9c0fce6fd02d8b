/* Reliable channel: 64-byte request/response, one request outstanding (vs bench_tcp_rr).
 *   bench_channel_rr server <ifname>
 *   bench_channel_rr client <ifname> <server-mac> <seconds>   -> rate=... p50_us=... p99_us=...
 * BENCH_COUNTERS=1 in the client's environment prints its channel counters to stderr;
 * BENCH_SPIN_US=<us> spins that long before sleeping in poll (mv_chan_port_wait()). */
#include "bench_chan.h"

#define MSG_LEN     64
#define SERVER_NODE 2
#define CLIENT_NODE 1
#define OP_ECHO     0x4242

struct rr_state {
    struct bench_chan b;
    bool done;
    int status;
};

static void on_request(void *user, const struct mv_chan_msg *req, struct mv_chan_reply_token tok)
{
    struct rr_state *s = user;
    mv_chan_reply(s->b.chan, tok, 0, req->data, req->len, mv_now_ns());
}

static void on_response(void *user, int status, const struct mv_chan_msg *resp)
{
    struct rr_state *s = user;
    s->done = true;
    s->status = status;
}

int main(int argc, char **argv)
{
    static struct rr_state s;
    struct mv_chan_config cfg = {0};
    uint8_t msg[MSG_LEN] = {0};

    bench_catch_signals();
    if (argc == 3 && !strcmp(argv[1], "server")) {
        cfg.on_request = on_request;
        cfg.cb_user = &s;
        if (bench_chan_open(&s.b, argv[2], true, SERVER_NODE, &cfg) < 0)
            return 1;
        while (!bench_stop)
            bench_chan_step(&s.b, 100);
        bench_chan_close(&s.b);
        return 0;
    }
    uint32_t seconds;
    uint8_t peer[6];
    if (argc != 5 || strcmp(argv[1], "client") || mv_mac_parse(argv[3], peer) < 0 ||
        mv_parse_u32(argv[4], &seconds) < 0) {
        fprintf(stderr, "usage: %s server <ifname> | client <ifname> <server-mac> <seconds>\n",
                argv[0]);
        return 2;
    }
    if (bench_chan_open(&s.b, argv[2], true, CLIENT_NODE, &cfg) < 0)
        return 1;
    mv_chan_add_peer(s.b.chan, SERVER_NODE, peer, 0, mv_now_ns());

    struct lat_samples lat = {0};
    uint64_t start = 0, end = 0, now = mv_now_ns(), warm_until = now + 300000000u, cpu0 = 0;
    while (!bench_stop) {
        uint64_t t0 = mv_now_ns();
        long id;
        s.done = false;
        id = mv_chan_request(s.b.chan, SERVER_NODE, OP_ECHO, msg, sizeof(msg), 1000000000u,
                             on_response, &s, t0);
        if (id < 0) {
            fprintf(stderr, "mv_chan_request: %ld\n", id);
            return 1;
        }
        while (!s.done && !bench_stop)
            bench_chan_step(&s.b, 100);
        if (s.status != 0) {
            fprintf(stderr, "request failed: %d\n", s.status);
            return 1;
        }
        now = mv_now_ns();
        if (now < warm_until)
            continue; /* warm-up: session setup, RTT estimate */
        if (!start) {
            start = t0;
            cpu0 = bench_cpu_ns();
            end = start + (uint64_t)seconds * 1000000000u;
        }
        lat_add(&lat, now - t0);
        if (now >= end)
            break;
    }
    lat_report(&lat, now - start, bench_cpu_ns() - cpu0);
    if (getenv("BENCH_COUNTERS")) {
        static char buf[16384];
        mv_chan_format_counters(s.b.chan, buf, sizeof(buf), false);
        fputs(buf, stderr);
    }
    bench_chan_close(&s.b);
    free(lat.ns);
    return 0;
}
