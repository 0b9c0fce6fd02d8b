/* A temporary control-channel node that sends one request and waits for its response. */
#include "mv/agent_client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "mv/agent_proto.h"
#include "mv/chan_port.h"
#include "mv/util.h"

int mv_agent_parse_mac(const char *s, uint8_t mac[6])
{
    if (strlen(s) == 12 && strspn(s, "0123456789abcdefABCDEF") == 12) {
        for (int i = 0; i < 6; i++) {
            unsigned v;
            if (sscanf(s + 2 * i, "%2x", &v) != 1)
                return -EINVAL;
            mac[i] = (uint8_t)v;
        }
        return 0;
    }
    return mv_mac_parse(s, mac) == 0 ? 0 : -EINVAL;
}

struct call_result {
    bool done;
    int status;
    json_t *reply;
    char *err;
    size_t errlen;
};

static void on_response(void *user, int status, const struct mv_chan_msg *resp)
{
    struct call_result *r = user;
    r->done = true;
    if (!resp) {
        r->status = status;
        snprintf(r->err, r->errlen, "no answer from the agent: %s", strerror(-status));
        return;
    }
    r->status =
        mv_agent_reply_parse(resp->status, resp->data, resp->len, &r->reply, r->err, r->errlen);
}

int mv_agent_client_call(const char *ifname, const uint8_t mac[6], const struct mv_keyring *keys,
                         uint16_t op, const json_t *req, unsigned timeout_ms, json_t **reply,
                         char *err, size_t errlen)
{
    *reply = NULL;
    struct mv_port *port;
    struct mv_port_config pc = {.kind = MV_PORT_PACKET,
                                .ifname = ifname,
                                .ethertypes = {MV_ETHERTYPE_CTRL},
                                .n_ethertypes = 1,
                                .low_latency = true,
                                .rx_ring_bytes = 1u << 20,
                                .tx_ring_frames = 256};
    char why[256];
    int rc = mv_port_open(&pc, &port, why, sizeof why);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", ifname, why);
        return rc;
    }
    uint64_t node = 0, inc = 0;
    if (getrandom(&node, sizeof node, 0) != sizeof node)
        node = mv_now_ns();
    node |= 1ull << 63;
    mv_incarnation_next(NULL, mv_realtime_ns(), &inc, why, sizeof why);
    struct mv_chan_config cc = {.node_id = node,
                                .incarnation = inc,
                                .mtu = mv_port_mtu(port),
                                .keys = keys,
                                .send = mv_chan_port_send,
                                .send_user = port,
                                .rto_initial_ns = 50000000ull};
    memcpy(cc.mac, mv_port_mac(port), 6);
    struct mv_chan *ch;
    rc = mv_chan_create(&cc, &ch);
    if (rc != 0) {
        snprintf(err, errlen, "channel: %s", strerror(-rc));
        mv_port_close(port);
        return rc;
    }
    struct mv_chan_port cp = {.port = port, .chan = ch};
    uint64_t peer = mv_agent_node_id_from_mac(mac);
    mv_chan_add_peer(ch, peer, mac, 0, mv_now_ns());
    char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    struct call_result res = {.err = err, .errlen = errlen};
    long id = mv_chan_request(ch, peer, op, payload, payload ? strlen(payload) : 0,
                              (uint64_t)timeout_ms * 1000000ull, on_response, &res, mv_now_ns());
    free(payload);
    if (id < 0) {
        snprintf(err, errlen, "request not sent: %s", strerror((int)-id));
        res.done = true;
        res.status = (int)id;
    }
    while (!res.done) {
        int t = mv_chan_port_timeout_ms(&cp, mv_now_ns());
        struct pollfd p = {.fd = mv_chan_port_fd(&cp), .events = POLLIN};
        if (poll(&p, 1, t < 0 ? 1000 : t) < 0 && errno != EINTR)
            break;
        int prc = mv_chan_port_process(&cp, mv_now_ns());
        if (prc < 0) {
            snprintf(err, errlen, "port: %s", strerror(-prc));
            res.status = prc;
            break;
        }
    }
    /* Let the ack of the response go out, so the agent does not retransmit it. */
    for (uint64_t until = mv_now_ns() + 20000000ull; mv_now_ns() < until;) {
        struct pollfd p = {.fd = mv_chan_port_fd(&cp), .events = POLLIN};
        poll(&p, 1, 5);
        mv_chan_port_process(&cp, mv_now_ns());
    }
    mv_chan_destroy(ch);
    mv_port_close(port);
    if (res.status == 0)
        *reply = res.reply;
    else
        json_decref(res.reply);
    return res.status;
}
