/* A deterministic in-process network for channel tests: frames are queued with a delivery time,
 * may be lost, duplicated or delayed (reordered) by a seeded PRNG, and time only moves when the
 * test runs the event loop. No sleeping, no sockets. */
#ifndef MV_TEST_SIMNET_H
#define MV_TEST_SIMNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/channel.h"
#include "mv/discovery.h"

#define SIM_MAX_NODES 4

struct sim_node {
    struct simnet *net;
    int idx;
    bool down; /* frames to and from it vanish */
    /* A stalled process: frames for it wait in the network and its timers do not run until
     * then (a host that was not scheduled). */
    uint64_t stall_until;
    uint8_t mac[6];
    uint64_t node_id, incarnation;
    struct mv_chan *chan;
    struct mv_disc *disc;
    struct mv_chan_config cfg;
    void *app; /* the test's per-node state */
};

struct sim_event {
    uint64_t at, order;
    int dst;
    size_t len;
    uint8_t *data;
};

struct simnet {
    uint64_t now;
    uint64_t rng;
    unsigned loss_pm, dup_pm, reorder_pm; /* per mille */
    uint64_t delay_ns, reorder_extra_ns;
    struct sim_node nodes[SIM_MAX_NODES];
    int n;
    struct sim_event *ev;
    size_t nev, cap;
    uint64_t order;
    uint64_t frames_sent, frames_lost;
    /* optional tap: every frame as sent (before loss) */
    void (*tap)(void *user, int from, const uint8_t *frame, size_t len);
    void *tap_user;
    /* optional filter: true drops this frame on its way from -> to (targeted loss) */
    bool (*drop)(void *user, int from, int to, const uint8_t *frame, size_t len);
    void *drop_user;
    /* Burst mode (set before sim_add_node): channels get send_batch, and the frames that reach
     * a node at one instant are fed to it corked, as mv_chan_port_process() does. */
    bool burst;
    uint64_t burst_calls, burst_frames;
};

void sim_init(struct simnet *net, uint64_t seed);
/* Creates node i's channel from *base (node id, incarnation, mac, send filled in here). */
void sim_add_node(struct simnet *net, const struct mv_chan_config *base, uint64_t incarnation);
void sim_restart_node(struct simnet *net, int i, uint64_t incarnation);
/* Runs until done(user) is true or the simulated time passes limit_ns; returns done's value. */
bool sim_run(struct simnet *net, bool (*done)(void *user), void *user, uint64_t limit_ns);
void sim_run_for(struct simnet *net, uint64_t ns);
void sim_inject(struct simnet *net, int dst, const uint8_t *frame, size_t len);
void sim_free(struct simnet *net);
uint64_t sim_rand(struct simnet *net);

#endif
