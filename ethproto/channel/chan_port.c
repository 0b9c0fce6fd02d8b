/* Binding of a channel (plus discovery) to an mv_port and a poll loop. */
#include "mv/chan_port.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

#include "mv/util.h"

#define CHAN_PORT_ACK_EVERY 8 /* received frames per coalesced ack within a batch */

int mv_chan_port_send(void *port, const uint8_t *frame, size_t len)
{
    int rc = mv_port_send_one(port, frame, len);
    return rc == 1 ? 0 : (rc < 0 ? rc : -ENOBUFS);
}

int mv_chan_port_send_batch(void *port, const struct mv_frame *frames, unsigned n)
{
    return mv_port_send(port, frames, n);
}

int mv_chan_port_fd(const struct mv_chan_port *cp)
{
    return mv_port_fd(cp->port);
}

int64_t mv_chan_port_timeout_ns(const struct mv_chan_port *cp, uint64_t now_ns)
{
    uint64_t d = mv_chan_next_deadline(cp->chan);
    if (cp->disc)
        d = MV_MIN(d, mv_disc_next_deadline(cp->disc));
    if (d == UINT64_MAX)
        return -1;
    if (d <= now_ns)
        return 0;
    return (int64_t)MV_MIN(d - now_ns, 60000000000ull);
}

int mv_chan_port_timeout_ms(const struct mv_chan_port *cp, uint64_t now_ns)
{
    int64_t ns = mv_chan_port_timeout_ns(cp, now_ns);
    return ns < 0 ? -1 : (int)((ns + 999999) / 1000000);
}

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

int mv_chan_port_wait(struct mv_chan_port *cp, int64_t max_ns, uint64_t spin_ns)
{
    uint64_t now = mv_now_ns();
    int64_t to = mv_chan_port_timeout_ns(cp, now);
    int rc;

    if (max_ns >= 0 && (to < 0 || to > max_ns))
        to = max_ns;
    if (to == 0)
        return 0;
    if (spin_ns) {
        uint64_t end = now + (to > 0 ? MV_MIN(spin_ns, (uint64_t)to) : spin_ns);
        for (unsigned i = 0;; i++) {
            rc = mv_port_rx_ready(cp->port);
            if (rc > 0)
                return 1;
            if (rc < 0)
                break; /* cannot tell without a system call: just poll */
            spin_pause();
            if ((i & 15) == 15 && (now = mv_now_ns()) >= end)
                break;
        }
        if (to > 0) {
            uint64_t spent = mv_now_ns() - (end - MV_MIN(spin_ns, (uint64_t)to));
            to = spent >= (uint64_t)to ? 0 : to - (int64_t)spent;
        }
    }
    struct pollfd pfd = {.fd = mv_port_fd(cp->port), .events = POLLIN};
    struct timespec ts = {.tv_sec = (time_t)(to / 1000000000), .tv_nsec = (long)(to % 1000000000)};
    do {
        rc = ppoll(&pfd, 1, to < 0 ? NULL : &ts, NULL);
    } while (rc < 0 && errno == EINTR && to < 0);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    return rc > 0 ? 1 : 0;
}

int mv_chan_port_process(struct mv_chan_port *cp, uint64_t now_ns)
{
    struct mv_frame frames[64];
    int total = 0, rc = 0;
    mv_chan_cork(cp->chan);
    for (;;) {
        int n = mv_port_recv(cp->port, frames, MV_ARRAY_SIZE(frames));
        if (n < 0) {
            rc = n;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (i && i % CHAN_PORT_ACK_EVERY == 0) {
                /* Answer part of a large batch early: the sender refills its window while
                 * this side works through the rest. */
                mv_chan_uncork(cp->chan);
                mv_chan_cork(cp->chan);
            }
            const uint8_t *f = frames[i].data;
            size_t len = frames[i].len;
            bool ctrl = len >= MV_ETH_HLEN && f[12] == (MV_ETHERTYPE_CTRL >> 8) &&
                        f[13] == (MV_ETHERTYPE_CTRL & 0xff);
            if (ctrl)
                mv_chan_input(cp->chan, f, len, now_ns);
            else if (cp->on_other)
                cp->on_other(cp->other_user, f, len);
        }
        mv_port_recv_done(cp->port);
        total += n;
        if (n < (int)MV_ARRAY_SIZE(frames))
            break;
        /* More waiting: answer this batch before reading on. */
        mv_chan_uncork(cp->chan);
        mv_chan_cork(cp->chan);
        now_ns = mv_now_ns();
    }
    if (rc == 0) {
        mv_chan_tick(cp->chan, now_ns);
        if (cp->disc)
            mv_disc_tick(cp->disc, now_ns);
    }
    mv_chan_uncork(cp->chan);
    return rc < 0 ? rc : total;
}
