#include "simnet.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "mv/util.h"

uint64_t sim_rand(struct simnet *net)
{
    net->rng ^= net->rng << 13;
    net->rng ^= net->rng >> 7;
    net->rng ^= net->rng << 17;
    return net->rng;
}

void sim_init(struct simnet *net, uint64_t seed)
{
    memset(net, 0, sizeof *net);
    net->rng = seed * 0x9e3779b97f4a7c15ull + 1;
    net->delay_ns = 50000; /* 50 us one way */
    net->reorder_extra_ns = 400000;
    net->now = 1000000000ull;
}

static bool ev_less(const struct sim_event *a, const struct sim_event *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void push(struct simnet *net, int dst, const uint8_t *frame, size_t len, uint64_t at)
{
    if (net->nev == net->cap) {
        net->cap = net->cap ? net->cap * 2 : 256;
        net->ev = realloc(net->ev, net->cap * sizeof *net->ev);
        assert(net->ev);
    }
    struct sim_event e = {at, net->order++, dst, len, malloc(len)};
    memcpy(e.data, frame, len);
    size_t i = net->nev++;
    while (i > 0 && ev_less(&e, &net->ev[(i - 1) / 2])) {
        net->ev[i] = net->ev[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    net->ev[i] = e;
}

static struct sim_event pop(struct simnet *net)
{
    struct sim_event top = net->ev[0], last = net->ev[--net->nev];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= net->nev)
            break;
        if (c + 1 < net->nev && ev_less(&net->ev[c + 1], &net->ev[c]))
            c++;
        if (!ev_less(&net->ev[c], &last))
            break;
        net->ev[i] = net->ev[c];
        i = c;
    }
    if (net->nev)
        net->ev[i] = last;
    return top;
}

void sim_inject(struct simnet *net, int dst, const uint8_t *frame, size_t len)
{
    push(net, dst, frame, len, net->now);
}

static int sim_send(void *user, const uint8_t *frame, size_t len)
{
    struct sim_node *from = user;
    struct simnet *net = from->net;
    net->frames_sent++;
    if (net->tap)
        net->tap(net->tap_user, from->idx, frame, len);
    if (from->down)
        return 0;
    for (int i = 0; i < net->n; i++) {
        struct sim_node *to = &net->nodes[i];
        if (to == from || (memcmp(frame, to->mac, 6) && !mv_mac_is_broadcast(frame)))
            continue;
        if (net->drop && net->drop(net->drop_user, from->idx, i, frame, len)) {
            net->frames_lost++;
            continue;
        }
        if (net->loss_pm && sim_rand(net) % 1000 < net->loss_pm) {
            net->frames_lost++;
            continue;
        }
        uint64_t at = net->now + net->delay_ns;
        if (net->reorder_pm && sim_rand(net) % 1000 < net->reorder_pm)
            at += sim_rand(net) % net->reorder_extra_ns;
        push(net, i, frame, len, at);
        if (net->dup_pm && sim_rand(net) % 1000 < net->dup_pm)
            push(net, i, frame, len, at + sim_rand(net) % net->reorder_extra_ns);
    }
    return 0;
}

static int sim_send_batch(void *user, const struct mv_frame *frames, unsigned n)
{
    struct sim_node *from = user;
    from->net->burst_calls++;
    from->net->burst_frames += n;
    for (unsigned i = 0; i < n; i++)
        sim_send(user, frames[i].data, frames[i].len);
    return (int)n;
}

static void create_chan(struct simnet *net, int i)
{
    struct sim_node *nd = &net->nodes[i];
    nd->cfg.node_id = nd->node_id;
    nd->cfg.incarnation = nd->incarnation;
    memcpy(nd->cfg.mac, nd->mac, 6);
    nd->cfg.send = net->burst ? NULL : sim_send;
    nd->cfg.send_batch = net->burst ? sim_send_batch : NULL;
    nd->cfg.send_user = nd;
    int rc = mv_chan_create(&nd->cfg, &nd->chan);
    assert(rc == 0);
    (void)rc;
}

void sim_add_node(struct simnet *net, const struct mv_chan_config *base, uint64_t incarnation)
{
    assert(net->n < SIM_MAX_NODES);
    int i = net->n++;
    struct sim_node *nd = &net->nodes[i];
    memset(nd, 0, sizeof *nd);
    nd->net = net;
    nd->idx = i;
    nd->node_id = 100 + (uint64_t)i;
    nd->incarnation = incarnation;
    uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(0x10 + i)};
    memcpy(nd->mac, mac, 6);
    nd->cfg = *base;
    create_chan(net, i);
}

void sim_restart_node(struct simnet *net, int i, uint64_t incarnation)
{
    struct sim_node *nd = &net->nodes[i];
    mv_chan_destroy(nd->chan);
    nd->chan = NULL;
    nd->incarnation = incarnation;
    create_chan(net, i);
}

static uint64_t next_time(struct simnet *net)
{
    uint64_t t = net->nev ? net->ev[0].at : UINT64_MAX;
    for (int i = 0; i < net->n; i++) {
        struct sim_node *nd = &net->nodes[i];
        if (nd->down || !nd->chan)
            continue;
        if (nd->stall_until > net->now) {
            t = MV_MIN(t, nd->stall_until);
            continue;
        }
        t = MV_MIN(t, mv_chan_next_deadline(nd->chan));
        if (nd->disc)
            t = MV_MIN(t, mv_disc_next_deadline(nd->disc));
    }
    return t;
}

static void step(struct simnet *net, uint64_t limit)
{
    uint64_t t = next_time(net);
    if (t > limit)
        t = limit;
    if (t > net->now)
        net->now = t;
    for (int i = 0; net->burst && i < net->n; i++)
        if (net->nodes[i].chan)
            mv_chan_cork(net->nodes[i].chan);
    while (net->nev && net->ev[0].at <= net->now) {
        struct sim_event e = pop(net);
        struct sim_node *to = &net->nodes[e.dst];
        if (to->stall_until > net->now) {
            push(net, e.dst, e.data, e.len, to->stall_until); /* waits in the network */
            free(e.data);
            continue;
        }
        if (!to->down && to->chan)
            mv_chan_input(to->chan, e.data, e.len, net->now);
        free(e.data);
    }
    for (int i = 0; i < net->n; i++) {
        struct sim_node *nd = &net->nodes[i];
        if (nd->down || !nd->chan || nd->stall_until > net->now)
            continue;
        mv_chan_tick(nd->chan, net->now);
        if (nd->disc)
            mv_disc_tick(nd->disc, net->now);
    }
    for (int i = 0; net->burst && i < net->n; i++)
        if (net->nodes[i].chan)
            mv_chan_uncork(net->nodes[i].chan);
}

bool sim_run(struct simnet *net, bool (*done)(void *user), void *user, uint64_t limit_ns)
{
    uint64_t limit = net->now + limit_ns;
    while (!done(user)) {
        if (net->now >= limit)
            return false;
        step(net, limit);
    }
    return true;
}

static bool never(void *user)
{
    (void)user;
    return false;
}

void sim_run_for(struct simnet *net, uint64_t ns)
{
    sim_run(net, never, NULL, ns);
}

void sim_free(struct simnet *net)
{
    for (size_t i = 0; i < net->nev; i++)
        free(net->ev[i].data);
    free(net->ev);
    for (int i = 0; i < net->n; i++) {
        mv_disc_destroy(net->nodes[i].disc);
        mv_chan_destroy(net->nodes[i].chan);
    }
}
