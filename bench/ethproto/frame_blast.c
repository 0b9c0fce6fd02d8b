/* Anchor: the physical limit of the path. The sender blasts maximum-size frames through a
 * TPACKET_V3 TX ring; the receiver counts them through a TPACKET_V3 RX ring.
 *   bench_frame_blast recv <ifname> <max-seconds>  -> mbps=<MB/s received> frames=<n>
 * cpu_us_per_MB=<> bench_frame_blast send <ifname> <dst-mac> <seconds> */
#include "bench_util.h"

#include "mv/port.h"
#include "mv/util.h"

#include <string.h>
#include <unistd.h>

#define BLAST_ETHERTYPE 0x88B5
#define BATCH           64

static struct mv_port *open_port(const char *ifname)
{
    struct mv_port_config cfg = {.kind = MV_PORT_PACKET, .ifname = ifname, .n_ethertypes = 1};
    struct mv_port *p;
    char err[160];

    cfg.ethertypes[0] = BLAST_ETHERTYPE;
    if (mv_port_open(&cfg, &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "port %s: %s\n", ifname, err);
        exit(1);
    }
    return p;
}

static int blast_recv(const char *ifname, uint32_t max_s)
{
    struct mv_port *p = open_port(ifname);
    struct mv_frame f[256];
    uint64_t frames = 0, bytes = 0, first = 0, last = 0, cpu0 = 0;
    uint64_t give_up = mv_now_ns() + (uint64_t)max_s * 1000000000u;

    printf("ready\n");
    fflush(stdout);
    while (!bench_stop && mv_now_ns() < give_up) {
        int n;
        if (mv_port_wait(p, 100) <= 0) {
            if (first && mv_now_ns() - last > 300000000u)
                break; /* the sender stopped */
            continue;
        }
        n = mv_port_recv(p, f, 256);
        for (int i = 0; i < n; i++)
            bytes += f[i].len;
        if (n > 0) {
            last = mv_now_ns();
            if (!first)
                first = last;
            cpu0 = bench_cpu_ns();
            frames += (uint64_t)n;
        }
        mv_port_recv_done(p);
    }
    printf("mbps=%.1f frames=%llu cpu_us_per_MB=%.1f\n",
           last > first ? (double)bytes / ((double)(last - first) / 1e9) / 1e6 : 0.0,
           (unsigned long long)frames,
           bytes ? (double)(bench_cpu_ns() - cpu0) / 1e3 / ((double)bytes / 1e6) : 0.0);
    mv_port_close(p);
    return 0;
}

static int blast_send(const char *ifname, const char *dst_s, uint32_t seconds)
{
    struct mv_port *p = open_port(ifname);
    size_t len = MV_ETH_HLEN + mv_port_mtu(p);
    uint8_t *buf = calloc(BATCH, len), dst[6];
    struct mv_frame f[BATCH];
    uint64_t end = mv_now_ns() + (uint64_t)seconds * 1000000000u;

    if (mv_mac_parse(dst_s, dst) < 0) {
        fprintf(stderr, "bad MAC %s\n", dst_s);
        return 2;
    }
    for (int i = 0; i < BATCH; i++) {
        uint8_t *b = buf + (size_t)i * len;
        memcpy(b, dst, 6);
        memcpy(b + 6, mv_port_mac(p), 6);
        b[12] = BLAST_ETHERTYPE >> 8;
        b[13] = BLAST_ETHERTYPE & 0xff;
        f[i].data = b;
        f[i].len = (uint32_t)len;
    }
    while (!bench_stop && mv_now_ns() < end)
        if (mv_port_send(p, f, BATCH) < BATCH)
            usleep(20); /* ring full: let the kernel drain it */
    mv_port_close(p);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t secs;

    bench_catch_signals();
    if (argc == 4 && !strcmp(argv[1], "recv") && mv_parse_u32(argv[3], &secs) == 0)
        return blast_recv(argv[2], secs);
    if (argc == 5 && !strcmp(argv[1], "send") && mv_parse_u32(argv[4], &secs) == 0)
        return blast_send(argv[2], argv[3], secs);
    fprintf(stderr, "usage: %s recv <ifname> <max-seconds> | send <ifname> <dst-mac> <seconds>\n",
            argv[0]);
    return 2;
}
