/* Binds a control channel (and optionally discovery and a datagram receiver) to an mv_port, for
 * daemons with a poll loop: poll mv_chan_port_fd() for POLLIN with mv_chan_port_timeout_ms() as
 * the timeout, then call mv_chan_port_process(). */
#ifndef MV_CHAN_PORT_H
#define MV_CHAN_PORT_H

#include <stdint.h>

#include "mv/channel.h"
#include "mv/discovery.h"
#include "mv/port.h"

/* Frames on EtherTypes other than control (e.g. stats 0x88B6) go here instead of the channel. */
typedef void (*mv_chan_port_other_fn)(void *user, const uint8_t *frame, size_t len);

struct mv_chan_port {
    struct mv_port *port;
    struct mv_chan *chan;
    struct mv_disc *disc; /* optional */
    mv_chan_port_other_fn on_other;
    void *other_user;
};

/* A send callback for mv_chan_config.send (user = the mv_port). */
int mv_chan_port_send(void *port, const uint8_t *frame, size_t len);
/* The burst callback for mv_chan_config.send_batch (user = the mv_port): one kernel kick per
 * burst. Prefer it: bulk transfers send and acknowledge in bursts. */
int mv_chan_port_send_batch(void *port, const struct mv_frame *frames, unsigned n);
int mv_chan_port_fd(const struct mv_chan_port *cp);
int mv_chan_port_timeout_ms(const struct mv_chan_port *cp, uint64_t now_ns); /* -1: none */
/* The same in nanoseconds, for ppoll(): the channel's probe timers are sub-millisecond. */
int64_t mv_chan_port_timeout_ns(const struct mv_chan_port *cp, uint64_t now_ns); /* -1: none */
/* Waits until a frame is waiting or the channel's next timer is due, at most max_ns (-1: no
 * limit): spins up to spin_ns first, looking at the port's ring without a system call, then
 * sleeps in ppoll(). A request/response exchange over veth takes ~10-20 us, and a spin of that
 * order spares a sleep and wakeup on each side per exchange (0: no spin; ports that cannot be
 * looked at without a system call never spin). Returns 1 frames waiting, 0 timer or limit,
 * -errno. Call mv_chan_port_process() afterwards either way. */
int mv_chan_port_wait(struct mv_chan_port *cp, int64_t max_ns, uint64_t spin_ns);
/* Receives every waiting frame, feeds it, runs timers. Returns frames processed or -errno. The
 * channel is corked meanwhile: one ack per peer and batch, frames leave in bursts. */
int mv_chan_port_process(struct mv_chan_port *cp, uint64_t now_ns);

#endif
