/* Reliable channel: bulk one-way transfer (vs bench_frame_blast on the same path).
 *   bench_channel_bulk server <ifname> <max-seconds>
 *       -> mbps=<MB/s delivered> msgs=<n> cpu_us_per_MB=<receiver CPU time per MB>
 *          rx_dropped=<frames the port's ring had no room for>
 *   bench_channel_bulk client <ifname> <server-mac> <seconds> <msg-bytes>
 * BENCH_COUNTERS=1 in the client's environment prints its channel counters to stderr (retransmits,
 * probes, RTOs, cwnd: what to look at when the figure is low). */
#include "bench_chan.h"

#include <errno.h>
#include <stdlib.h>

#define SERVER_NODE 2
#define CLIENT_NODE 1
#define OP_BULK     0x4243

struct bulk_state {
    struct bench_chan b;
    uint64_t bytes, msgs, first, last, cpu0;
};

static void on_message(void *user, const struct mv_chan_msg *msg)
{
    struct bulk_state *s = user;
    s->last = mv_now_ns();
    if (!s->first) {
        s->first = s->last;
        s->cpu0 = bench_cpu_ns();
    }
    s->bytes += msg->len;
    s->msgs++;
}

int main(int argc, char **argv)
{
    static struct bulk_state s;
    struct mv_chan_config cfg = {0};
    uint32_t seconds, size;
    uint8_t peer[6];

    bench_catch_signals();
    if (argc == 4 && !strcmp(argv[1], "server") && mv_parse_u32(argv[3], &seconds) == 0) {
        uint64_t give_up = mv_now_ns() + (uint64_t)seconds * 1000000000u;
        cfg.on_message = on_message;
        cfg.cb_user = &s;
        if (bench_chan_open(&s.b, argv[2], true, SERVER_NODE, &cfg) < 0)
            return 1;
        printf("ready\n");
        fflush(stdout);
        while (!bench_stop && mv_now_ns() < give_up) {
            bench_chan_step(&s.b, 50);
            if (s.first && mv_now_ns() - s.last > 500000000u)
                break;
        }
        struct mv_port_stats ps;
        mv_port_get_stats(s.b.port, &ps);
        printf("mbps=%.1f msgs=%llu cpu_us_per_MB=%.1f rx_dropped=%llu\n",
               s.last > s.first ? (double)s.bytes / ((double)(s.last - s.first) / 1e9) / 1e6 : 0,
               (unsigned long long)s.msgs,
               s.bytes ? (double)(bench_cpu_ns() - s.cpu0) / 1e3 / ((double)s.bytes / 1e6) : 0.0,
               (unsigned long long)ps.rx_dropped);
        bench_chan_close(&s.b);
        return 0;
    }
    if (argc != 6 || strcmp(argv[1], "client") || mv_mac_parse(argv[3], peer) < 0 ||
        mv_parse_u32(argv[4], &seconds) < 0 || mv_parse_u32(argv[5], &size) < 0 || !size) {
        fprintf(stderr,
                "usage: %s server <ifname> <max-seconds> | client <ifname> <server-mac> "
                "<seconds> <msg-bytes>\n",
                argv[0]);
        return 2;
    }
    if (bench_chan_open(&s.b, argv[2], true, CLIENT_NODE, &cfg) < 0)
        return 1;
    mv_chan_add_peer(s.b.chan, SERVER_NODE, peer, 0, mv_now_ns());
    uint8_t *msg = calloc(1, size);
    uint64_t cpu0 = bench_cpu_ns(), sent0 = 0;
    uint64_t end = mv_now_ns() + (uint64_t)seconds * 1000000000u, drain_until;
    while (!bench_stop && mv_now_ns() < end) {
        int rc;
        while ((rc = mv_chan_send(s.b.chan, SERVER_NODE, OP_BULK, msg, size, mv_now_ns())) == 0)
            ;
        if (rc != -EAGAIN) {
            fprintf(stderr, "mv_chan_send: %d\n", rc);
            return 1;
        }
        bench_chan_step(&s.b, 10);
    }
    /* Let the last messages be acknowledged so the receiver's figure covers them. */
    drain_until = mv_now_ns() + 2000000000u;
    while (mv_chan_tx_queued(s.b.chan, SERVER_NODE) && mv_now_ns() < drain_until)
        bench_chan_step(&s.b, 10);
    {
        struct mv_chan_counters c;
        mv_chan_get_counters(s.b.chan, &c);
        sent0 = c.tx_bytes;
        printf("sender cpu_us_per_MB=%.1f\n",
               sent0 ? (double)(bench_cpu_ns() - cpu0) / 1e3 / ((double)sent0 / 1e6) : 0.0);
    }
    if (getenv("BENCH_COUNTERS")) {
        static char buf[16384];
        mv_chan_format_counters(s.b.chan, buf, sizeof(buf), false);
        fputs(buf, stderr);
    }
    bench_chan_close(&s.b);
    free(msg);
    return 0;
}
