/* Binding of a channel (plus discovery) to an mv_port and a poll loop. */
#include "mv/chan_port.h"

#include <errno.h>

#include "mv/util.h"

int mv_chan_port_send(void *port, const uint8_t *frame, size_t len)
{
    int rc = mv_port_send_one(port, frame, len);
    return rc == 1 ? 0 : (rc < 0 ? rc : -ENOBUFS);
}

int mv_chan_port_fd(const struct mv_chan_port *cp)
{
    return mv_port_fd(cp->port);
}

int mv_chan_port_timeout_ms(const struct mv_chan_port *cp, uint64_t now_ns)
{
    uint64_t d = mv_chan_next_deadline(cp->chan);
    if (cp->disc)
        d = MV_MIN(d, mv_disc_next_deadline(cp->disc));
    if (d == UINT64_MAX)
        return -1;
    if (d <= now_ns)
        return 0;
    uint64_t ms = (d - now_ns + 999999) / 1000000;
    return ms > 60000 ? 60000 : (int)ms;
}

int mv_chan_port_process(struct mv_chan_port *cp, uint64_t now_ns)
{
    struct mv_frame frames[64];
    int total = 0;
    for (;;) {
        int n = mv_port_recv(cp->port, frames, MV_ARRAY_SIZE(frames));
        if (n < 0)
            return n;
        for (int i = 0; i < n; i++) {
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
        now_ns = mv_now_ns();
    }
    mv_chan_tick(cp->chan, now_ns);
    if (cp->disc)
        mv_disc_tick(cp->disc, now_ns);
    return total;
}
