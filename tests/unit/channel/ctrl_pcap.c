/* Writes a pcap of real frames produced by the channel, discovery and datagram code (a HELLO
 * exchange, a fragmented request and its response, acks with SACK after a loss, keepalives and a
 * statistics datagram), for the Wireshark dissector test (dissector.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/dgram.h"
#include "mv/discovery.h"
#include "simnet.h"

static FILE *out;

static void write_frame(const uint8_t *frame, size_t len, uint64_t now)
{
    uint32_t rec[4] = {(uint32_t)(now / 1000000000ull), (uint32_t)(now % 1000000000ull / 1000),
                       (uint32_t)len, (uint32_t)len};
    fwrite(rec, sizeof rec, 1, out);
    fwrite(frame, len, 1, out);
}

static void tap(void *user, int from, const uint8_t *frame, size_t len)
{
    struct simnet *net = user;
    write_frame(frame, len, net->now);
}

static void hello_tramp(void *user, const struct mv_ctrl_hdr *hdr, const uint8_t *payload,
                        size_t len, uint64_t now)
{
    struct sim_node *nd = *(struct sim_node **)user;
    mv_disc_handle_hello(nd->disc, hdr, payload, len, now);
}

static void on_request(void *user, const struct mv_chan_msg *req, struct mv_chan_reply_token tok)
{
    struct sim_node *nd = *(struct sim_node **)user;
    mv_chan_reply(nd->chan, tok, -2, "done", 4, nd->net->now);
}

static bool got_response;
static void on_response(void *user, int status, const struct mv_chan_msg *resp)
{
    got_response = status == 0;
}
static bool response_done(void *user)
{
    return got_response;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ctrl_pcap OUT.pcap\n");
        return 2;
    }
    out = fopen(argv[1], "wb");
    if (!out)
        return 1;
    uint32_t gh[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1}; /* microsecond pcap, Ethernet */
    fwrite(gh, sizeof gh, 1, out);
    static struct mv_keyring kr;
    uint8_t key[MV_AUTH_KEY_LEN] = {1, 2, 3};
    mv_keyring_init(&kr);
    mv_keyring_add(&kr, 4, key, 0, true);
    static struct simnet net;
    static struct sim_node *tramp[2];
    sim_init(&net, 5);
    for (int i = 0; i < 2; i++) {
        tramp[i] = &net.nodes[i];
        struct mv_chan_config base = {
            .keys = &kr, .on_hello = hello_tramp, .on_request = on_request, .cb_user = &tramp[i]};
        sim_add_node(&net, &base, 500 + (uint64_t)i);
        struct mv_disc_config dc = {.chan = net.nodes[i].chan};
        memcpy(dc.self.mac, net.nodes[i].mac, 6);
        snprintf(dc.self.hostname, sizeof dc.self.hostname, "host-%d", i);
        strcpy(dc.self.version, "0.1.0");
        strcpy(dc.self.rack, "rack-7");
        dc.self.roles = MV_ROLE_HYPERVISOR;
        if (mv_disc_create(&dc, &net.nodes[i].disc))
            return 1;
    }
    net.tap = tap;
    net.tap_user = &net;
    sim_run_for(&net, 10000000ull); /* HELLOs */
    net.reorder_pm = 300;           /* some reordering: acks with SACK blocks */
    uint8_t req[3000];
    memset(req, 0xab, sizeof req);
    mv_chan_request(net.nodes[0].chan, net.nodes[1].node_id, 77, req, sizeof req, 0, on_response,
                    NULL, net.now);
    if (!sim_run(&net, response_done, NULL, 1000000000ull))
        return 1;
    net.reorder_pm = 0;
    for (int i = 0; i < 2; i++) { /* without HELLOs, idle sessions send keepalives */
        mv_disc_destroy(net.nodes[i].disc);
        net.nodes[i].disc = NULL;
    }
    sim_run_for(&net, 1200000000ull);
    struct mv_dgram_tx tx;
    mv_dgram_tx_init(&tx, &kr, net.nodes[0].mac, net.nodes[0].node_id, 500);
    uint8_t f[256], bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    int len = mv_dgram_seal(&tx, bc, 3, "cpu=42", 6, f, sizeof f);
    write_frame(f, (size_t)len, net.now);
    fclose(out);
    sim_free(&net);
    return 0;
}
