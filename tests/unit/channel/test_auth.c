/* Authentication: key files, tags (forged, truncated, wrong key), rotation window, replay
 * window, incarnations, authenticated datagrams; discovery over a simulated network. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "mv/auth.h"
#include "mv/dgram.h"
#include "mv/discovery.h"
#include "simnet.h"

static const char *hex_a = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *hex_b = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";

static void test_keyfile_parse(void **state)
{
    struct mv_keyring kr;
    char err[256], text[512];
    snprintf(text, sizeof text, "# cluster keys\nkey 1 %s\n\nkey 2 %s active expires=2000000000\n",
             hex_a, hex_b);
    assert_int_equal(mv_keyring_parse(&kr, text, err, sizeof err), 0);
    assert_int_equal(kr.n, 2);
    assert_int_equal(kr.keys[kr.active].id, 2);
    assert_int_equal(kr.keys[kr.active].expires_s, 2000000000);
    assert_int_equal(kr.keys[0].key[31], 0x1f);
    /* Without an `active` mark the highest id signs. */
    snprintf(text, sizeof text, "key 7 %s\nkey 3 %s\n", hex_a, hex_b);
    assert_int_equal(mv_keyring_parse(&kr, text, err, sizeof err), 0);
    assert_int_equal(kr.keys[kr.active].id, 7);
    const char *bad[] = {
        "",                                   /* no keys */
        "key 1 0011\n",                       /* short key */
        "key 256 %s\n",                       /* id range */
        "key x %s\n",                         /* id not a number */
        "kee 1 %s\n",                         /* keyword */
        "key 1 %s bogus\n",                   /* unknown option */
        "key 1 %s expires=soon\n",            /* bad expiry */
        "key 1 %s\nkey 1 %s\n",               /* duplicate id */
        "key 1 %s active\nkey 2 %s active\n", /* two active keys */
        "key 1 zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", /* not hex */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(text, sizeof text, bad[i], hex_a, hex_a);
#pragma GCC diagnostic pop
        err[0] = 0;
        assert_int_equal(mv_keyring_parse(&kr, text, err, sizeof err), -EINVAL);
        assert_true(err[0] != 0);
        assert_int_equal(kr.n, 0); /* nothing half-loaded */
    }
    snprintf(text, sizeof text, "key 1 %s\nkey 2 %s bogus\n", hex_a, hex_b);
    mv_keyring_parse(&kr, text, err, sizeof err);
    assert_non_null(strstr(err, "line 2"));
}

static void test_keyfile_generate(void **state)
{
    char path[] = "/tmp/hc-keyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    char err[256];
    assert_int_equal(mv_keyring_generate_file(path, 5, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(mv_keyring_generate_file(path, 5, err, sizeof err), -EEXIST);
    struct mv_keyring kr;
    assert_int_equal(mv_keyring_load(&kr, path, err, sizeof err), 0);
    assert_int_equal(kr.n, 1);
    assert_int_equal(kr.keys[0].id, 5);
    assert_true(kr.keys[0].active);
    unlink(path);
    assert_true(mv_keyring_load(&kr, path, err, sizeof err) < 0);
    assert_non_null(strstr(err, path));
}

static void make_keys(struct mv_keyring *kr, uint8_t id, uint8_t fill, uint64_t expires)
{
    uint8_t k[MV_AUTH_KEY_LEN];
    memset(k, fill, sizeof k);
    assert_int_equal(mv_keyring_add(kr, id, k, expires, true), 0);
}

static int signed_frame(const struct mv_keyring *kr, uint8_t *buf, size_t cap, uint64_t counter)
{
    struct mv_ctrl_hdr h = {.dst = {2, 0, 0, 0, 0, 2},
                            .src = {2, 0, 0, 0, 0, 1},
                            .ethertype = MV_ETHERTYPE_CTRL,
                            .version = 1,
                            .type = MV_CTRL_KEEPALIVE,
                            .src_node = 9,
                            .src_incarnation = 1,
                            .counter = counter};
    int len = mv_ctrl_encode(&h, NULL, 0, buf, cap);
    assert_true(len > 0);
    assert_int_equal(mv_auth_seal(kr, buf, (size_t)len), 0);
    return len;
}

static void test_tags(void **state)
{
    struct mv_keyring kr, other, empty;
    mv_keyring_init(&kr);
    mv_keyring_init(&other);
    mv_keyring_init(&empty);
    make_keys(&kr, 1, 0xaa, 0);
    make_keys(&other, 1, 0xbb, 0);
    uint8_t f[256];
    int len = signed_frame(&kr, f, sizeof f, 1);
    assert_int_equal(f[MV_CTRL_OFF_KEYID], 1);
    assert_int_equal(mv_auth_verify(&kr, f, (size_t)len, 0), MV_AUTH_OK);
    assert_int_equal(mv_auth_verify(&other, f, (size_t)len, 0), MV_AUTH_BAD_TAG); /* wrong key */
    assert_int_equal(mv_auth_verify(&empty, f, (size_t)len, 0), MV_AUTH_UNKNOWN_KEY);
    assert_int_equal(mv_auth_seal(&empty, f, (size_t)len), -ENOKEY);
    /* Every single-bit change anywhere (Ethernet header included) is caught. */
    for (int bit = 0; bit < len * 8; bit++) {
        if (bit / 8 == MV_CTRL_OFF_KEYID)
            continue;
        f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(mv_auth_verify(&kr, f, (size_t)len, 0), MV_AUTH_BAD_TAG);
        f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(mv_auth_verify(&kr, f, MV_CTRL_OVERHEAD - 1, 0), MV_AUTH_MALFORMED);
}

static size_t from_hex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
    return n;
}

/* Frames sealed by an independent implementation (tests/integration/ethproto/mvtag.py, plain
 * Python after docs/protocol.md §4.1) verify here: the tag algorithm is what the document says. */
static void test_tags_interop(void **state)
{
    uint8_t key[MV_AUTH_KEY_LEN], f[256];
    struct mv_keyring kr;
    for (int i = 0; i < MV_AUTH_KEY_LEN; i++)
        key[i] = (uint8_t)i;
    mv_keyring_init(&kr);
    assert_int_equal(mv_keyring_add(&kr, 1, key, 0, true), 0);
    /* KEEPALIVE (ACKREQ) on 0x88B5, counter 3. */
    size_t len =
        from_hex("02000000000102000000000588b501040008010000000000000000000005000000000000"
                 "00070000000000000001000000000000000300000000000000010040000000000000000000"
                 "000000000000000000000000007d788d087ab0d3a3f94d8fe7e9e79295",
                 f);
    assert_int_equal(len, MV_CTRL_OVERHEAD);
    assert_int_equal(mv_auth_verify(&kr, f, len, 0), MV_AUTH_OK);
    f[20] ^= 1;
    assert_int_equal(mv_auth_verify(&kr, f, len, 0), MV_AUTH_BAD_TAG);
    /* Statistics DGRAM on 0x88B6 (its own counter space: the EtherType is in the nonce),
     * counter 2^47 + 5. */
    len = from_hex(
        "02000000000102000000000588b60105000001000006000000000000000500000000000000070000"
        "0000000000000000800000000005000000000000000100400003000000090000000000000000000000"
        "0000000000737461747321bfea2f798d93855e88632ba5984ae21a",
        f);
    assert_int_equal(len, MV_CTRL_OVERHEAD + 6);
    assert_int_equal(mv_auth_verify(&kr, f, len, 0), MV_AUTH_OK);
    uint8_t tag[MV_CTRL_TAG_LEN];
    memcpy(tag, f + len - MV_CTRL_TAG_LEN, sizeof tag);
    assert_int_equal(mv_auth_seal(&kr, f, len), 0); /* we compute the same tag */
    assert_memory_equal(tag, f + len - MV_CTRL_TAG_LEN, sizeof tag);
    /* The same frame claimed on the control EtherType does not verify. */
    f[13] = 0xb5;
    assert_int_equal(mv_auth_verify(&kr, f, len, 0), MV_AUTH_BAD_TAG);
    /* A counter of 2^48 or more is never sealed (the nonce holds 48 bits), nor accepted. */
    f[MV_ETH_HLEN + 33] = 1;
    assert_int_equal(mv_auth_seal(&kr, f, len), -EOVERFLOW);
    assert_int_equal(mv_auth_verify(&kr, f, len, 0), MV_AUTH_BAD_TAG);
}

/* The per-sender subkey cache gives the tags of plain XChaCha20-Poly1305 (computed here the long
 * way, nonce laid out as docs/protocol.md §4.1 says) for more senders and keys than it holds, in
 * an order that evicts entries, and forgets nothing it must not: a frame from a cached sender
 * under another key with the same id still fails. */
static void test_tags_subkey_cache(void **state)
{
    struct mv_keyring kr[2];
    for (int k = 0; k < 2; k++) {
        mv_keyring_init(&kr[k]);
        make_keys(&kr[k], 1, (uint8_t)(0x10 + k), 0);
    }
    for (int round = 0; round < 3; round++) {
        for (uint64_t node = 1; node <= 40; node++) {
            struct mv_ctrl_hdr h = {.dst = {2, 0, 0, 0, 0, 2},
                                    .src = {2, 0, 0, 0, 0, 1},
                                    .ethertype = MV_ETHERTYPE_CTRL,
                                    .version = 1,
                                    .type = MV_CTRL_KEEPALIVE,
                                    .src_node = node,
                                    .src_incarnation = 100 + (uint64_t)round,
                                    .counter = node * 7 + (uint64_t)round};
            uint8_t f[256], nonce[24], expect[MV_CTRL_TAG_LEN], none[1];
            int len = mv_ctrl_encode(&h, NULL, 0, f, sizeof f);
            int k = (int)((node + (uint64_t)round) % 2);
            assert_true(len > 0);
            assert_int_equal(mv_auth_seal(&kr[k], f, (size_t)len), 0);
            memcpy(nonce, f + MV_ETH_HLEN + 8, 16);
            memcpy(nonce + 16, f + 12, 2);
            memcpy(nonce + 18, f + MV_ETH_HLEN + 34, 6);
            crypto_aead_xchacha20poly1305_ietf_encrypt_detached(none, expect, NULL, NULL, 0, f,
                                                                (size_t)len - MV_CTRL_TAG_LEN, NULL,
                                                                nonce, kr[k].keys[0].key);
            assert_memory_equal(expect, f + len - MV_CTRL_TAG_LEN, MV_CTRL_TAG_LEN);
            assert_int_equal(mv_auth_verify(&kr[k], f, (size_t)len, 0), MV_AUTH_OK);
            assert_int_equal(mv_auth_verify(&kr[1 - k], f, (size_t)len, 0), MV_AUTH_BAD_TAG);
        }
        if (round == 1)
            mv_auth_forget_cached_keys();
    }
}

static void test_rotation(void **state)
{
    /* Node X has switched to key 2; node Y still signs with key 1 but accepts both. */
    struct mv_keyring x, y;
    mv_keyring_init(&x);
    mv_keyring_init(&y);
    make_keys(&x, 1, 0x11, 1000); /* old key: accepted until t=1000 */
    make_keys(&x, 2, 0x22, 0);    /* new, active */
    make_keys(&y, 2, 0x22, 0);
    make_keys(&y, 1, 0x11, 0); /* y signs with 1 */
    uint8_t f[256];
    int len = signed_frame(&y, f, sizeof f, 1);
    assert_int_equal(f[MV_CTRL_OFF_KEYID], 1);
    assert_int_equal(mv_auth_verify(&x, f, (size_t)len, 999), MV_AUTH_OK);
    assert_int_equal(mv_auth_verify(&x, f, (size_t)len, 1000), MV_AUTH_EXPIRED_KEY);
    len = signed_frame(&x, f, sizeof f, 2);
    assert_int_equal(f[MV_CTRL_OFF_KEYID], 2);
    assert_int_equal(mv_auth_verify(&y, f, (size_t)len, 5000), MV_AUTH_OK);
    /* After the old key is removed it is unknown. */
    assert_int_equal(mv_keyring_remove(&x, 1), 0);
    len = signed_frame(&y, f, sizeof f, 3);
    assert_int_equal(mv_auth_verify(&x, f, (size_t)len, 0), MV_AUTH_UNKNOWN_KEY);
    assert_int_equal(mv_keyring_remove(&x, 1), -ENOENT);
}

static void test_replay_window(void **state)
{
    struct mv_replay_window w = {0};
    assert_int_equal(mv_replay_check_commit(&w, 10, 5), MV_AUTH_OK);
    assert_int_equal(mv_replay_check_commit(&w, 10, 5), MV_AUTH_REPLAY);
    assert_int_equal(mv_replay_check_commit(&w, 10, 3), MV_AUTH_OK); /* reordered, in window */
    assert_int_equal(mv_replay_check_commit(&w, 10, 3), MV_AUTH_REPLAY);
    assert_int_equal(mv_replay_check_commit(&w, 10, 5000), MV_AUTH_OK);
    assert_int_equal(mv_replay_check_commit(&w, 10, 5000 - MV_REPLAY_WINDOW), MV_AUTH_REPLAY);
    assert_int_equal(mv_replay_check_commit(&w, 10, 5000 - MV_REPLAY_WINDOW + 1), MV_AUTH_OK);
    assert_int_equal(mv_replay_check_commit(&w, 10, 4999), MV_AUTH_OK);
    assert_int_equal(mv_replay_check_commit(&w, 10, 0), MV_AUTH_REPLAY);
    /* Stale incarnation refused, state unchanged; a newer one restarts the window. */
    assert_int_equal(mv_replay_check_commit(&w, 9, 6000), MV_AUTH_STALE_INCARNATION);
    assert_int_equal(w.top, 5000);
    assert_int_equal(mv_replay_check_commit(&w, 11, 1), MV_AUTH_OK);
    assert_int_equal(mv_replay_check_commit(&w, 10, 9999), MV_AUTH_STALE_INCARNATION);
    assert_int_equal(mv_replay_check_commit(&w, 11, 1), MV_AUTH_REPLAY);
    /* Bits recycled correctly when the window slides by less than its size. */
    for (uint64_t c = 2; c < 3000; c += 3)
        assert_int_equal(mv_replay_check_commit(&w, 11, c), MV_AUTH_OK);
    for (uint64_t c = 2999 - 900; c < 3000; c++)
        assert_int_equal(mv_replay_check_commit(&w, 11, c),
                         (c - 2) % 3 == 0 ? MV_AUTH_REPLAY : MV_AUTH_OK);
}

static void test_incarnation(void **state)
{
    char path[] = "/tmp/hc-incXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    char err[256];
    uint64_t a, b, c;
    assert_int_equal(mv_incarnation_next(path, 5000000000ull, &a, err, sizeof err), 0);
    assert_int_equal(a, 5000000);
    /* The clock stepped back: still increases. */
    assert_int_equal(mv_incarnation_next(path, 1000, &b, err, sizeof err), 0);
    assert_int_equal(b, a + 1);
    assert_int_equal(mv_incarnation_next(path, 9000000000ull, &c, err, sizeof err), 0);
    assert_int_equal(c, 9000000);
    FILE *f = fopen(path, "w");
    fputs("garbage\n", f);
    fclose(f);
    assert_int_equal(mv_incarnation_next(path, 1, &c, err, sizeof err), -EINVAL);
    unlink(path);
    assert_int_equal(mv_incarnation_next(NULL, 7000, &c, err, sizeof err), 0);
    assert_int_equal(c, 7);
}

static void test_dgram(void **state)
{
    struct mv_keyring kr, other;
    mv_keyring_init(&kr);
    mv_keyring_init(&other);
    make_keys(&kr, 1, 0x33, 0);
    make_keys(&other, 1, 0x44, 0);
    uint8_t mac[6] = {2, 0, 0, 0, 0, 7}, bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    struct mv_dgram_tx tx, tx_old, tx_wrong;
    mv_dgram_tx_init(&tx_old, &kr, mac, 7, 100);
    mv_dgram_tx_init(&tx, &kr, mac, 7, 200);
    mv_dgram_tx_init(&tx_wrong, &other, mac, 7, 300);
    struct mv_dgram_rx *rx = mv_dgram_rx_create(&kr);
    uint8_t f[2][256], old[256];
    int len = mv_dgram_seal(&tx, bcast, 12, "stats!", 6, f[0], sizeof f[0]);
    assert_int_equal(len, MV_CTRL_OVERHEAD + 6);
    assert_int_equal(f[0][12], 0x88);
    assert_int_equal(f[0][13], 0xb6);
    int len2 = mv_dgram_seal(&tx, bcast, 12, "again!", 6, f[1], sizeof f[1]);
    int olen = mv_dgram_seal(&tx_old, bcast, 12, "oldold", 6, old, sizeof old);
    struct mv_dgram_msg m;
    assert_int_equal(mv_dgram_open(rx, f[1], (size_t)len2, 0, &m), MV_AUTH_OK);
    assert_int_equal(mv_dgram_open(rx, f[0], (size_t)len, 0, &m), MV_AUTH_OK); /* reordered */
    assert_int_equal(m.src_node, 7);
    assert_int_equal(m.op, 12);
    assert_int_equal(m.len, 6);
    assert_memory_equal(m.payload, "stats!", 6);
    assert_int_equal(mv_dgram_open(rx, f[0], (size_t)len, 0, &m), MV_AUTH_REPLAY);
    assert_int_equal(mv_dgram_open(rx, old, (size_t)olen, 0, &m), MV_AUTH_STALE_INCARNATION);
    assert_int_equal(mv_dgram_open(rx, f[0], (size_t)len - 3, 0, &m), MV_AUTH_MALFORMED);
    len = mv_dgram_seal(&tx, bcast, 12, "forged", 6, f[0], sizeof f[0]);
    f[0][MV_ETH_HLEN + MV_CTRL_HDR_LEN] ^= 1;
    assert_int_equal(mv_dgram_open(rx, f[0], (size_t)len, 0, &m), MV_AUTH_BAD_TAG);
    len = mv_dgram_seal(&tx_wrong, bcast, 12, "wrongk", 6, f[0], sizeof f[0]);
    assert_int_equal(mv_dgram_open(rx, f[0], (size_t)len, 0, &m), MV_AUTH_BAD_TAG);
    uint64_t c[MV_AUTH_NCAUSES];
    mv_dgram_rx_counters(rx, c);
    assert_int_equal(c[MV_AUTH_OK], 2);
    assert_int_equal(c[MV_AUTH_REPLAY], 1);
    assert_int_equal(c[MV_AUTH_STALE_INCARNATION], 1);
    assert_int_equal(c[MV_AUTH_MALFORMED], 1);
    assert_int_equal(c[MV_AUTH_BAD_TAG], 2);
    uint8_t big[MV_ETH_MAX_FRAME + 200];
    assert_int_equal(mv_dgram_seal(&tx, bcast, 1, big, MV_ETH_MAX_FRAME, big, sizeof big),
                     -EMSGSIZE);
    mv_dgram_rx_destroy(rx);
}

/* ---- discovery over the simulated network ---- */

struct disc_app {
    unsigned up, down, changed;
};
static struct disc_app dapps[SIM_MAX_NODES];

static void on_disc(void *user, const struct mv_disc_peer *p, enum mv_disc_event ev)
{
    struct disc_app *a = user;
    if (ev == MV_DISC_UP)
        a->up++;
    else if (ev == MV_DISC_DOWN)
        a->down++;
    else
        a->changed++;
}

static void attach_disc(struct simnet *net, int i)
{
    struct sim_node *nd = &net->nodes[i];
    struct mv_disc_config dc = {.chan = nd->chan, .on_event = on_disc, .cb_user = &dapps[i]};
    memcpy(dc.self.mac, nd->mac, 6);
    dc.self.roles = i == 0 ? MV_ROLE_CONTROLLER : MV_ROLE_HYPERVISOR | MV_ROLE_STORAGE;
    snprintf(dc.self.hostname, sizeof dc.self.hostname, "host-%d", i);
    strcpy(dc.self.version, "0.1.0");
    snprintf(dc.self.blade, sizeof dc.self.blade, "blade-%d", i);
    strcpy(dc.self.chassis, "chassis-1");
    strcpy(dc.self.rack, "rack-1");
    assert_int_equal(mv_disc_create(&dc, &nd->disc), 0);
}

static struct simnet *g_net;
static bool all_discovered(void *user)
{
    for (int i = 0; i < g_net->n; i++) {
        if (g_net->nodes[i].down)
            continue;
        struct mv_disc_peer peers[SIM_MAX_NODES];
        unsigned n = mv_disc_peers(g_net->nodes[i].disc, peers, SIM_MAX_NODES);
        unsigned alive = 0;
        for (unsigned j = 0; j < n && j < SIM_MAX_NODES; j++)
            alive += peers[j].alive;
        if (alive != (unsigned)g_net->n - 1)
            return false;
    }
    return true;
}

/* The channel needs its on_hello user before the discovery object (which needs the channel)
 * exists: route through the node. */
static void hello_tramp(void *user, const struct mv_ctrl_hdr *hdr, const uint8_t *payload,
                        size_t len, uint64_t now)
{
    struct sim_node *nd = *(struct sim_node **)user;
    mv_disc_handle_hello(nd->disc, hdr, payload, len, now);
}
static struct sim_node *tramp_nodes[SIM_MAX_NODES];

static void test_discovery(void **state)
{
    static struct mv_keyring kr;
    mv_keyring_init(&kr);
    make_keys(&kr, 1, 0x55, 0);
    struct simnet net;
    sim_init(&net, 42);
    net.loss_pm = 50;
    g_net = &net;
    memset(dapps, 0, sizeof dapps);
    for (int i = 0; i < 3; i++) {
        struct mv_chan_config base = {
            .keys = &kr, .on_hello = hello_tramp, .cb_user = &tramp_nodes[i]};
        tramp_nodes[i] = &net.nodes[i];
        sim_add_node(&net, &base, 10 + (uint64_t)i);
        attach_disc(&net, i);
    }
    uint64_t t0 = net.now;
    assert_true(sim_run(&net, all_discovered, NULL, 2000000000ull));
    print_message("discovery complete after %.3f s (simulated)\n", (double)(net.now - t0) / 1e9);
    for (int i = 0; i < 3; i++)
        assert_int_equal(dapps[i].up, 2);
    const struct mv_disc_peer *p = mv_disc_find(net.nodes[0].disc, net.nodes[2].node_id);
    assert_non_null(p);
    assert_string_equal(p->hello.hostname, "host-2");
    assert_string_equal(p->hello.blade, "blade-2");
    assert_string_equal(p->hello.rack, "rack-1");
    assert_int_equal(p->hello.roles, MV_ROLE_HYPERVISOR | MV_ROLE_STORAGE);
    assert_int_equal(p->incarnation, 12);
    assert_memory_equal(p->hello.mac, net.nodes[2].mac, 6);
    /* Discovery told the channel: node 0 can talk to node 2 without any other setup. */
    struct mv_chan_peer_info pi;
    assert_int_equal(mv_chan_peer_info(net.nodes[0].chan, net.nodes[2].node_id, &pi), 0);
    assert_int_equal(pi.incarnation, 12);
    /* Node 2 goes silent: down events after the dead timeout (4 intervals = 2 s). */
    net.nodes[2].down = true;
    sim_run_for(&net, 2600000000ull);
    assert_int_equal(dapps[0].down, 1);
    assert_int_equal(dapps[1].down, 1);
    assert_false(mv_disc_find(net.nodes[0].disc, net.nodes[2].node_id)->alive);
    /* It comes back restarted: up again, with the new incarnation. */
    mv_disc_destroy(net.nodes[2].disc);
    net.nodes[2].disc = NULL;
    sim_restart_node(&net, 2, 99);
    attach_disc(&net, 2);
    net.nodes[2].down = false;
    assert_true(sim_run(&net, all_discovered, NULL, 2000000000ull));
    assert_int_equal(dapps[0].up, 3);
    assert_int_equal(mv_disc_find(net.nodes[0].disc, net.nodes[2].node_id)->incarnation, 99);
    assert_int_equal(mv_disc_hellos_rejected(net.nodes[0].disc), 0);
    sim_free(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyfile_parse), cmocka_unit_test(test_keyfile_generate),
        cmocka_unit_test(test_tags),          cmocka_unit_test(test_tags_interop),
        cmocka_unit_test(test_rotation),      cmocka_unit_test(test_replay_window),
        cmocka_unit_test(test_incarnation),   cmocka_unit_test(test_dgram),
        cmocka_unit_test(test_discovery),     cmocka_unit_test(test_tags_subkey_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
