/* Fuzz frames into a channel. First byte even: the rest is one raw frame, fed to a channel whose
 * key no input was signed with, so nothing may execute, be delivered or create state (any callback
 * aborts). First byte odd: the rest is a sequence of frames (2-byte length, bytes, 1-byte time
 * step) that the harness signs with the cluster key, to explore the protocol state machine
 * behind authentication: it must never crash, leak or violate its own invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mv/auth.h"
#include "mv/channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t our_mac[6] = {2, 0, 0, 0, 0, 1};
static bool raw_mode;
static struct mv_chan *chan;
static uint64_t now;

static int send_nothing(void *user, const uint8_t *frame, size_t len)
{
    return 0;
}

static void on_request(void *user, const struct mv_chan_msg *req, struct mv_chan_reply_token tok)
{
    if (raw_mode)
        abort();
    mv_chan_reply(chan, tok, 0, req->data, req->len > 100 ? 100 : req->len, now);
}
static void on_message(void *user, const struct mv_chan_msg *msg)
{
    if (raw_mode)
        abort();
}
static void on_peer(void *user, uint64_t node, const uint8_t mac[6], enum mv_chan_peer_event ev)
{
    if (raw_mode)
        abort();
}
static void on_hello(void *user, const struct mv_ctrl_hdr *hdr, const uint8_t *payload, size_t len,
                     uint64_t t)
{
    if (raw_mode)
        abort();
}

static struct mv_keyring keys;     /* signs the frames of sequence mode */
static struct mv_keyring raw_keys; /* a key no input was ever signed with */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (keys.n == 0) {
        uint8_t k[MV_AUTH_KEY_LEN];
        for (int i = 0; i < MV_AUTH_KEY_LEN; i++)
            k[i] = (uint8_t)i;
        mv_keyring_init(&keys);
        mv_keyring_add(&keys, 1, k, 0, true);
        for (int i = 0; i < MV_AUTH_KEY_LEN; i++)
            k[i] = (uint8_t)(100 + i);
        mv_keyring_init(&raw_keys);
        mv_keyring_add(&raw_keys, 1, k, 0, true);
    }
    if (size < 1)
        return 0;
    raw_mode = !(data[0] & 1);
    struct mv_chan_config cfg = {
        .node_id = 1,
        .incarnation = 1,
        .mtu = 1500,
        .keys = raw_mode ? &raw_keys : &keys,
        .send = send_nothing,
        .on_request = on_request,
        .on_message = on_message,
        .on_peer = on_peer,
        .on_hello = on_hello,
        .window = 64,
        .reassembly_limit = 2u << 20,
    };
    memcpy(cfg.mac, our_mac, 6);
    if (mv_chan_create(&cfg, &chan) != 0)
        abort();
    now = 1000000000ull;
    data++;
    size--;
    if (raw_mode) {
        uint8_t *f = malloc(size ? size : 1);
        memcpy(f, data, size);
        if (mv_chan_input(chan, f, size, now) == MV_AUTH_OK)
            abort();
        if (mv_chan_peers(chan, NULL, 0) != 0)
            abort();
        free(f);
    } else {
        static uint8_t f[MV_ETH_MAX_FRAME + MV_CTRL_OVERHEAD];
        while (size >= 3) {
            size_t len = (size_t)data[0] << 8 | data[1];
            uint8_t step = data[2];
            data += 3;
            size -= 3;
            if (len > size)
                len = size;
            memcpy(f, data, len);
            if (len >= MV_CTRL_OVERHEAD)
                mv_auth_seal(&keys, f, len);
            mv_chan_input(chan, f, len, now);
            data += len;
            size -= len;
            now += (uint64_t)step * 1000000ull;
            mv_chan_tick(chan, now);
        }
        struct mv_chan_counters c;
        mv_chan_get_counters(chan, &c);
        if (c.requests_executed < c.responses_sent - c.dup_requests && c.dup_requests == 0)
            abort(); /* a response without an executed request */
    }
    mv_chan_destroy(chan);
    chan = NULL;
    return 0;
}
