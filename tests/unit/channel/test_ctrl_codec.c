/* Control frame codec, SACK blocks and HELLO TLVs: round trips and malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mv/ctrl_frame.h"
#include "mv/discovery.h"

static struct mv_ctrl_hdr data_hdr(void)
{
    struct mv_ctrl_hdr h = {
        .dst = {2, 0, 0, 0, 0, 2},
        .src = {2, 0, 0, 0, 0, 1},
        .ethertype = MV_ETHERTYPE_CTRL,
        .version = MV_CTRL_VERSION,
        .type = MV_CTRL_DATA,
        .flags = MV_CTRL_F_RESPONSE | MV_CTRL_F_ACKREQ,
        .key_id = 3,
        .src_node = 0x1122334455667788ull,
        .src_incarnation = 0x0102030405060708ull,
        .dst_incarnation = 77,
        .counter = 1234567,
        .seq = 0xfffffff0u,
        .ack = 99,
        .window = 256,
        .op = 0xbeef,
        .msg_id = 42,
        .ref = 41,
        .msg_len = 5000,
        .frag_off = 1412,
        .status = -5,
    };
    return h;
}

static uint8_t frame[MV_ETH_MAX_FRAME + 200];

static int encode(const struct mv_ctrl_hdr *h, size_t plen)
{
    uint8_t pl[2000] = {0}; /* zeroed: GCC -O3 cannot tell plen bounds what is read */
    for (size_t i = 0; i < plen; i++)
        pl[i] = (uint8_t)i;
    return mv_ctrl_encode(h, pl, plen, frame, sizeof frame);
}

static void test_roundtrip(void **state)
{
    struct mv_ctrl_hdr h = data_hdr(), out;
    int len = encode(&h, 100);
    assert_int_equal(len, MV_CTRL_OVERHEAD + 100);
    /* Spot-check the wire layout (big-endian, documented offsets). */
    assert_int_equal(frame[12], 0x88);
    assert_int_equal(frame[13], 0xb5);
    assert_int_equal(frame[14], 1);
    assert_int_equal(frame[15], MV_CTRL_DATA);
    assert_int_equal(frame[14 + 6], 0);
    assert_int_equal(frame[14 + 7], 100);
    assert_int_equal(frame[14 + 8], 0x11);
    assert_int_equal(frame[14 + 40], 0xff);
    assert_int_equal(frame[14 + 71], 0xfb); /* status -5 */
    const uint8_t *pl;
    assert_int_equal(mv_ctrl_decode(frame, (size_t)len, &out, &pl), MV_CTRL_OK);
    h.payload_len = 100;
    assert_memory_equal(&h, &out, sizeof h);
    assert_ptr_equal(pl, frame + MV_ETH_HLEN + MV_CTRL_HDR_LEN);
    assert_int_equal(pl[99], 99);
}

static void test_truncated_and_long(void **state)
{
    struct mv_ctrl_hdr h = data_hdr(), out;
    int len = encode(&h, 100);
    for (int l = 0; l < len; l++) {
        enum mv_ctrl_err e = mv_ctrl_decode(frame, (size_t)l, &out, NULL);
        assert_true(e == MV_CTRL_ERR_TRUNCATED ||
                    (l >= 14 && l < 16 && e == MV_CTRL_ERR_TRUNCATED));
    }
    assert_int_equal(mv_ctrl_decode(frame, (size_t)len + 1, &out, NULL), MV_CTRL_ERR_LENGTH);
    assert_int_equal(mv_ctrl_decode(NULL, 0, &out, NULL), MV_CTRL_ERR_TRUNCATED);
    assert_int_equal(mv_ctrl_encode(&h, frame, 100, frame, 150), -ENOSPC);
}

static enum mv_ctrl_err decode_mod(struct mv_ctrl_hdr h, size_t plen, size_t off, uint8_t val)
{
    struct mv_ctrl_hdr out;
    int len = encode(&h, plen);
    assert_true(len > 0);
    if (off != (size_t)-1)
        frame[off] = val;
    return mv_ctrl_decode(frame, (size_t)len, &out, NULL);
}

static void test_bad_fields(void **state)
{
    struct mv_ctrl_hdr h = data_hdr();
    assert_int_equal(decode_mod(h, 10, 12, 0x08), MV_CTRL_ERR_ETHERTYPE);
    assert_int_equal(decode_mod(h, 10, 14, 2), MV_CTRL_ERR_VERSION);
    assert_int_equal(decode_mod(h, 10, 14, 0), MV_CTRL_ERR_VERSION);
    assert_int_equal(decode_mod(h, 10, 15, 0), MV_CTRL_ERR_TYPE);
    assert_int_equal(decode_mod(h, 10, 15, 9), MV_CTRL_ERR_TYPE);
    assert_int_equal(decode_mod(h, 10, 16, 0x80), MV_CTRL_ERR_FLAGS);
    assert_int_equal(decode_mod(h, 10, 19, 1), MV_CTRL_ERR_FIELD); /* reserved */
    struct mv_ctrl_hdr t = h;
    t.flags |= MV_CTRL_F_REQUEST; /* request and response at once */
    assert_int_equal(decode_mod(t, 10, (size_t)-1, 0), MV_CTRL_ERR_FLAGS);
    t = h;
    t.src_node = 0;
    assert_int_equal(decode_mod(t, 10, (size_t)-1, 0), MV_CTRL_ERR_FIELD);
    t = h;
    t.src_incarnation = 0;
    assert_int_equal(decode_mod(t, 10, (size_t)-1, 0), MV_CTRL_ERR_FIELD);
    t = h;
    t.counter = 0;
    assert_int_equal(decode_mod(t, 10, (size_t)-1, 0), MV_CTRL_ERR_FIELD);
    t = h;
    t.seq = 0;
    assert_int_equal(decode_mod(t, 10, (size_t)-1, 0), MV_CTRL_ERR_FIELD);
    t = h;
    t.flags = 0; /* ref and status without RESPONSE */
    assert_int_equal(decode_mod(t, 10, (size_t)-1, 0), MV_CTRL_ERR_FIELD);
    /* DGRAM only on the stats EtherType, and the stats EtherType only carries DGRAM. */
    t = h;
    t.type = MV_CTRL_DGRAM;
    t.flags = 0;
    t.ref = 0;
    t.status = 0;
    t.seq = 0;
    t.msg_len = t.frag_off = 0;
    assert_int_equal(decode_mod(t, 10, (size_t)-1, 0), MV_CTRL_ERR_TYPE);
    t.ethertype = MV_ETHERTYPE_STATS;
    assert_int_equal(decode_mod(t, 10, (size_t)-1, 0), MV_CTRL_OK);
    t.type = MV_CTRL_ACK;
    assert_int_equal(decode_mod(t, 0, (size_t)-1, 0), MV_CTRL_ERR_TYPE);
    /* KEEPALIVE: no payload, no message fields. */
    t = h;
    t.type = MV_CTRL_KEEPALIVE;
    t.flags = 0;
    t.ref = t.status = 0;
    t.seq = t.msg_len = t.frag_off = 0;
    t.op = t.msg_id = 0;
    assert_int_equal(decode_mod(t, 0, (size_t)-1, 0), MV_CTRL_OK);
    assert_int_equal(decode_mod(t, 4, (size_t)-1, 0), MV_CTRL_ERR_LENGTH);
    t.op = 1;
    assert_int_equal(decode_mod(t, 0, (size_t)-1, 0), MV_CTRL_ERR_FIELD);
}

static void test_fragments(void **state)
{
    struct mv_ctrl_hdr h = data_hdr();
    h.msg_len = MV_CTRL_MAX_MSG + 1; /* oversized message */
    h.frag_off = 0;
    assert_int_equal(decode_mod(h, 10, (size_t)-1, 0), MV_CTRL_ERR_FRAGMENT);
    h = data_hdr();
    h.frag_off = 4995; /* runs past msg_len */
    assert_int_equal(decode_mod(h, 10, (size_t)-1, 0), MV_CTRL_ERR_FRAGMENT);
    h.frag_off = 5001; /* starts past msg_len */
    assert_int_equal(decode_mod(h, 0, (size_t)-1, 0), MV_CTRL_ERR_FRAGMENT);
    h.frag_off = 0xffffffffu; /* wrap-around attempt */
    assert_int_equal(decode_mod(h, 10, (size_t)-1, 0), MV_CTRL_ERR_FRAGMENT);
    h = data_hdr();
    h.frag_off = 100; /* empty fragment of a non-empty message */
    assert_int_equal(decode_mod(h, 0, (size_t)-1, 0), MV_CTRL_ERR_FRAGMENT);
    h.msg_len = 0;
    h.frag_off = 0; /* the empty message */
    assert_int_equal(decode_mod(h, 0, (size_t)-1, 0), MV_CTRL_OK);
    h = data_hdr();
    h.msg_len = MV_CTRL_MAX_MSG;
    h.frag_off = MV_CTRL_MAX_MSG - 10; /* last fragment of a 1 MiB message */
    assert_int_equal(decode_mod(h, 10, (size_t)-1, 0), MV_CTRL_OK);
}

static void test_sack(void **state)
{
    struct mv_ctrl_sack in[3] = {{10, 12}, {0xfffffffe, 3}, {100, 101}}, out[MV_CTRL_MAX_SACK];
    uint8_t buf[200];
    int n = mv_ctrl_sack_encode(in, 3, buf, sizeof buf);
    assert_int_equal(n, 24);
    assert_int_equal(mv_ctrl_sack_decode(buf, 24, out, MV_CTRL_MAX_SACK), 3);
    assert_memory_equal(in, out, sizeof in);
    assert_int_equal(mv_ctrl_sack_decode(buf, 23, out, MV_CTRL_MAX_SACK), -EINVAL);
    assert_int_equal(mv_ctrl_sack_decode(buf, 24, out, 2), -EINVAL);
    struct mv_ctrl_sack bad = {5, 5};
    mv_ctrl_sack_encode(&bad, 1, buf, sizeof buf);
    assert_int_equal(mv_ctrl_sack_decode(buf, 8, out, 4), -EINVAL); /* empty */
    bad = (struct mv_ctrl_sack){5, 4};
    mv_ctrl_sack_encode(&bad, 1, buf, sizeof buf);
    assert_int_equal(mv_ctrl_sack_decode(buf, 8, out, 4), -EINVAL); /* backwards */
    bad = (struct mv_ctrl_sack){5, 5 + 70000};
    mv_ctrl_sack_encode(&bad, 1, buf, sizeof buf);
    assert_int_equal(mv_ctrl_sack_decode(buf, 8, out, 4), -EINVAL); /* too wide */
    struct mv_ctrl_sack many[MV_CTRL_MAX_SACK + 1] = {{0, 1}};
    assert_int_equal(mv_ctrl_sack_encode(many, MV_CTRL_MAX_SACK + 1, buf, sizeof buf), -EINVAL);
    /* An ACK frame whose payload is a bad SACK list is rejected by the frame codec. */
    struct mv_ctrl_hdr h = {.dst = {1},
                            .src = {2},
                            .ethertype = MV_ETHERTYPE_CTRL,
                            .version = 1,
                            .type = MV_CTRL_ACK,
                            .src_node = 1,
                            .src_incarnation = 1,
                            .counter = 1,
                            .ack = 5,
                            .window = 64};
    struct mv_ctrl_hdr out_h;
    int len = mv_ctrl_encode(&h, buf, 8, frame, sizeof frame);
    assert_int_equal(mv_ctrl_decode(frame, (size_t)len, &out_h, NULL), MV_CTRL_ERR_SACK);
    len = mv_ctrl_encode(&h, buf, 7, frame, sizeof frame);
    assert_int_equal(mv_ctrl_decode(frame, (size_t)len, &out_h, NULL), MV_CTRL_ERR_SACK);
}

static void test_hello(void **state)
{
    struct mv_hello h = {.mac = {2, 0, 0, 0, 0, 9},
                         .roles = MV_ROLE_HYPERVISOR | MV_ROLE_STORAGE,
                         .interval_ms = 500},
                    out;
    strcpy(h.hostname, "host-a");
    strcpy(h.version, "0.1.0");
    strcpy(h.blade, "b1");
    strcpy(h.chassis, "c1");
    strcpy(h.rack, "r1");
    uint8_t buf[512];
    int n = mv_hello_encode(&h, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(mv_hello_decode(buf, (size_t)n, &out), 0);
    assert_memory_equal(&h, &out, sizeof h);
    /* A truncation is valid only on a TLV boundary after the (required) hostname TLV. */
    int boundary_ok[512] = {0};
    for (int off = 0, seen_host = 0; off < n; off += 2 + buf[off + 1]) {
        seen_host |= buf[off] == MV_HELLO_TLV_HOSTNAME;
        if (seen_host)
            boundary_ok[off + 2 + buf[off + 1]] = 1;
    }
    for (int l = 0; l < n; l++)
        assert_int_equal(mv_hello_decode(buf, (size_t)l, &out), boundary_ok[l] ? 0 : -EINVAL);
    /* Unknown TLV types are skipped. */
    uint8_t ext[600];
    memcpy(ext, buf, (size_t)n);
    ext[n] = 200;
    ext[n + 1] = 3;
    memcpy(ext + n + 2, "xyz", 3);
    assert_int_equal(mv_hello_decode(ext, (size_t)n + 5, &out), 0);
    /* Duplicate known TLV, bad MAC length, control chars, over-long string. */
    memcpy(ext + n, buf, 8);
    assert_int_equal(mv_hello_decode(ext, (size_t)n + 8, &out), -EINVAL);
    memcpy(ext, buf, (size_t)n);
    ext[1] = 5;
    assert_int_equal(mv_hello_decode(ext, (size_t)n, &out), -EINVAL);
    strcpy(h.hostname, "bad\nname");
    assert_int_equal(mv_hello_encode(&h, buf, sizeof buf), -EINVAL);
    uint8_t longname[] = {MV_HELLO_TLV_MAC, 6, 1, 2, 3, 4, 5, 6, MV_HELLO_TLV_HOSTNAME, 64};
    uint8_t big[80];
    memcpy(big, longname, sizeof longname);
    memset(big + sizeof longname, 'a', 64);
    assert_int_equal(mv_hello_decode(big, sizeof longname + 64, &out), -EINVAL);
    big[9] = 63;
    assert_int_equal(mv_hello_decode(big, sizeof longname + 63, &out), 0);
    assert_int_equal(mv_hello_decode(big, 8, &out), -EINVAL); /* no hostname */
    char roles[64];
    assert_string_equal(mv_role_names(MV_ROLE_HYPERVISOR | MV_ROLE_STORAGE, roles, sizeof roles),
                        "hypervisor,storage");
    uint32_t r;
    assert_int_equal(mv_role_parse("controller,storage", &r), 0);
    assert_int_equal(r, MV_ROLE_CONTROLLER | MV_ROLE_STORAGE);
    assert_int_equal(mv_role_parse("controller,pilot", &r), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),  cmocka_unit_test(test_truncated_and_long),
        cmocka_unit_test(test_bad_fields), cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_sack),       cmocka_unit_test(test_hello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
