/* Anchor: 64-byte request/response over TCP with TCP_NODELAY, one request outstanding.
 *   bench_tcp_rr server <ip> <port>
 *   bench_tcp_rr client <ip> <port> <seconds>   -> rate=... p50_us=... p99_us=... */
#include "bench_util.h"

#include "mv/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG_LEN 64

static int io_full(int fd, uint8_t *buf, size_t len, bool writing)
{
    size_t done = 0;

    while (done < len) {
        ssize_t r = writing ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    uint8_t buf[MSG_LEN] = {0};
    int one = 1, fd;
    uint32_t port;

    if (argc < 4 || mv_parse_u32(argv[3], &port) < 0 || port > 65535 ||
        inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) {
        fprintf(stderr, "usage: %s server|client <ip> <port> [seconds]\n", argv[0]);
        return 2;
    }
    sa.sin_port = htons((uint16_t)port);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (!strcmp(argv[1], "server")) {
        int c;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
            perror("bind/listen");
            return 1;
        }
        c = accept(fd, NULL, NULL);
        if (c < 0)
            return 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        while (io_full(c, buf, MSG_LEN, false) == 0 && io_full(c, buf, MSG_LEN, true) == 0)
            ;
        return 0;
    }
    if (argc < 5) {
        fprintf(stderr, "client needs <seconds>\n");
        return 2;
    }
    uint32_t seconds;
    struct lat_samples lat = {0};
    if (mv_parse_u32(argv[4], &seconds) < 0)
        return 2;
    for (int tries = 0; connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0; tries++) {
        if (tries > 50) {
            perror("connect");
            return 1;
        }
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        usleep(20000);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (int i = 0; i < 200; i++) /* warm-up */
        if (io_full(fd, buf, MSG_LEN, true) || io_full(fd, buf, MSG_LEN, false))
            return 1;
    uint64_t start = mv_now_ns(), end = start + (uint64_t)seconds * 1000000000u, now = start;
    uint64_t cpu0 = bench_cpu_ns();
    while (now < end) {
        uint64_t t0 = now;
        if (io_full(fd, buf, MSG_LEN, true) || io_full(fd, buf, MSG_LEN, false))
            return 1;
        now = mv_now_ns();
        lat_add(&lat, now - t0);
    }
    lat_report(&lat, now - start, bench_cpu_ns() - cpu0);
    close(fd);
    free(lat.ns);
    return 0;
}
