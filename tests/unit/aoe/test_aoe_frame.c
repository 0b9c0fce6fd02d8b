/* AoE r11 codec: round trips of every message, byte layout against the spec, malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mv/aoe_frame.h"

static const uint8_t mac_a[6] = {0x02, 0, 0, 0, 0, 0xa};
static const uint8_t mac_b[6] = {0x02, 0, 0, 0, 0, 0xb};

static void init_req(struct aoe_msg *m, uint8_t cmd)
{
    memset(m, 0, sizeof *m);
    memcpy(m->dst, mac_b, 6);
    memcpy(m->src, mac_a, 6);
    m->ver = AOE_VERSION;
    m->major = 0x1234;
    m->minor = 7;
    m->cmd = cmd;
    m->tag = 0xdeadbeef;
}

static void test_ata_layout_and_round_trip(void **state)
{
    uint8_t data[1024], buf[2048];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    struct aoe_msg m, p;
    init_req(&m, AOE_CMD_ATA);
    m.u.ata.aflags = AOE_AFLAG_EXT | AOE_AFLAG_WRITE;
    m.u.ata.sector_count = 2;
    m.u.ata.cmd_status = 0x34;
    m.u.ata.lba = 0x0000a1b2c3d4e5f6ull;
    m.u.ata.data = data;
    m.u.ata.data_len = sizeof data;
    size_t n = aoe_frame_build(&m, buf, sizeof buf);
    assert_int_equal(n, AOE_ATA_HDR_LEN + 1024);
    /* Byte layout per the spec: EtherType, ver 1 in the high nibble, big-endian major/tag,
     * lba0 first. */
    assert_int_equal(buf[12], 0x88);
    assert_int_equal(buf[13], 0xa2);
    assert_int_equal(buf[14], 0x10);
    assert_int_equal(buf[16], 0x12);
    assert_int_equal(buf[17], 0x34);
    assert_int_equal(buf[18], 7);
    assert_int_equal(buf[20], 0xde);
    assert_int_equal(buf[23], 0xef);
    assert_int_equal(buf[24], 0x41);
    assert_int_equal(buf[27], 0x34);
    assert_int_equal(buf[28], 0xf6);
    assert_int_equal(buf[33], 0xa1);
    assert_int_equal(aoe_frame_parse(buf, n, &p, NULL), 0);
    assert_int_equal(p.major, 0x1234);
    assert_int_equal(p.minor, 7);
    assert_int_equal(p.tag, 0xdeadbeef);
    assert_int_equal(p.u.ata.lba, m.u.ata.lba);
    assert_int_equal(p.u.ata.aflags, m.u.ata.aflags);
    assert_int_equal(p.u.ata.data_len, 1024);
    assert_memory_equal(p.u.ata.data, data, 1024);
    assert_memory_equal(p.src, mac_a, 6);
}

static void test_short_reply_padded_to_60(void **state)
{
    uint8_t buf[128];
    memset(buf, 0xff, sizeof buf);
    struct aoe_msg req, rep;
    init_req(&req, AOE_CMD_ATA);
    aoe_msg_init_reply(&rep, &req, mac_b);
    rep.u.ata = (struct aoe_ata){.cmd_status = 0x40};
    size_t n = aoe_frame_build(&rep, buf, sizeof buf);
    assert_int_equal(n, 60);
    for (size_t i = AOE_ATA_HDR_LEN; i < 60; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[14], 0x18); /* ver 1, response */
    assert_memory_equal(buf, mac_a, 6);
}

static void test_cfg_round_trip(void **state)
{
    uint8_t buf[2048];
    struct aoe_msg m, p;
    init_req(&m, AOE_CMD_CONFIG);
    m.flags = AOE_FLAG_RESPONSE;
    m.u.cfg = (struct aoe_cfg){.buffer_count = 64,
                               .firmware = 0x4001,
                               .sector_count = 17,
                               .aoe_ver = 1,
                               .ccmd = AOE_CCMD_SET,
                               .cfg_len = 5,
                               .cfg = (const uint8_t *)"hello"};
    size_t n = aoe_frame_build(&m, buf, sizeof buf);
    assert_int_equal(n, 60);
    assert_int_equal(buf[29], 0x13);
    assert_int_equal(aoe_frame_parse(buf, n, &p, NULL), 0);
    assert_int_equal(p.u.cfg.buffer_count, 64);
    assert_int_equal(p.u.cfg.firmware, 0x4001);
    assert_int_equal(p.u.cfg.sector_count, 17);
    assert_int_equal(p.u.cfg.aoe_ver, 1);
    assert_int_equal(p.u.cfg.ccmd, AOE_CCMD_SET);
    assert_int_equal(p.u.cfg.cfg_len, 5);
    assert_memory_equal(p.u.cfg.cfg, "hello", 5);
}

static void test_mask_and_reserve_round_trip(void **state)
{
    uint8_t dirs[16], buf[256];
    aoe_mask_dir_put(dirs, AOE_DCMD_ADD, mac_a);
    aoe_mask_dir_put(dirs + 8, AOE_DCMD_DELETE, mac_b);
    struct aoe_msg m, p;
    init_req(&m, AOE_CMD_MASK);
    m.u.mask = (struct aoe_mask){.mcmd = AOE_MCMD_EDIT, .dir_count = 2, .dirs = dirs};
    size_t n = aoe_frame_build(&m, buf, sizeof buf);
    assert_int_equal(aoe_frame_parse(buf, n, &p, NULL), 0);
    assert_int_equal(p.u.mask.dir_count, 2);
    uint8_t dcmd, mac[6];
    aoe_mask_dir_get(&p.u.mask, 1, &dcmd, mac);
    assert_int_equal(dcmd, AOE_DCMD_DELETE);
    assert_memory_equal(mac, mac_b, 6);

    init_req(&m, AOE_CMD_RESERVE);
    uint8_t macs[12];
    memcpy(macs, mac_a, 6);
    memcpy(macs + 6, mac_b, 6);
    m.u.reserve = (struct aoe_reserve){.rcmd = AOE_RCMD_SET, .nmacs = 2, .macs = macs};
    n = aoe_frame_build(&m, buf, sizeof buf);
    assert_int_equal(aoe_frame_parse(buf, n, &p, NULL), 0);
    assert_int_equal(p.u.reserve.rcmd, AOE_RCMD_SET);
    assert_int_equal(p.u.reserve.nmacs, 2);
    assert_memory_equal(p.u.reserve.macs + 6, mac_b, 6);
}

/* Each malformed frame is rejected with a reason and the AoE error a target would answer. */
static void test_malformed(void **state)
{
    uint8_t buf[256] = {0};
    struct aoe_msg m, p;
    struct aoe_parse_error why;

    assert_int_equal(aoe_frame_parse(buf, 10, &p, &why), -EINVAL);
    assert_int_equal(why.reply_error, 0);

    init_req(&m, AOE_CMD_ATA);
    size_t n = aoe_frame_build(&m, buf, sizeof buf);
    buf[12] = 0x08; /* IPv4 */
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);
    assert_string_equal(why.reason, "EtherType is not AoE");

    n = aoe_frame_build(&m, buf, sizeof buf);
    buf[14] = 0x20; /* version 2 */
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);
    assert_int_equal(why.reply_error, AOE_ERR_BAD_VERSION);
    assert_int_equal(p.tag, 0xdeadbeef); /* header still usable for the error reply */

    n = aoe_frame_build(&m, buf, sizeof buf);
    assert_int_equal(aoe_frame_parse(buf, AOE_ATA_HDR_LEN - 1, &p, &why), -EINVAL);
    assert_int_equal(why.reply_error, AOE_ERR_BAD_ARG);

    init_req(&m, 9);
    m.cmd = AOE_CMD_ATA;
    n = aoe_frame_build(&m, buf, sizeof buf);
    buf[19] = 9; /* unknown command */
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);
    assert_int_equal(why.reply_error, AOE_ERR_BAD_CMD);

    init_req(&m, AOE_CMD_CONFIG);
    m.u.cfg.cfg_len = 0;
    n = aoe_frame_build(&m, buf, sizeof buf);
    buf[30] = 0x04; /* cfg_len 1025 */
    buf[31] = 0x01;
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);
    buf[30] = 0;
    buf[31] = 60; /* fits 1024 but not the frame */
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);
    assert_string_equal(why.reason, "config string runs past the frame");
    buf[31] = 0;
    buf[29] = 0x17; /* ccmd 7 */
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);

    init_req(&m, AOE_CMD_MASK);
    n = aoe_frame_build(&m, buf, sizeof buf);
    buf[27] = 5; /* 5 directives = 40 bytes, only 32 present */
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);
    buf[27] = 4;
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), 0);
    buf[25] = 2; /* mcmd 2 */
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);

    init_req(&m, AOE_CMD_RESERVE);
    n = aoe_frame_build(&m, buf, sizeof buf);
    buf[25] = 6; /* 36 bytes of MACs, 34 present */
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);
    buf[25] = 5;
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), 0);
    buf[24] = 3;
    assert_int_equal(aoe_frame_parse(buf, n, &p, &why), -EINVAL);
}

/* vblade's replies: not padded, ATA sector count 0, data appended. */
static void test_accepts_vblade_style_reply(void **state)
{
    uint8_t buf[AOE_ATA_HDR_LEN + 512];
    memset(buf, 0, sizeof buf);
    memcpy(buf, mac_a, 6);
    memcpy(buf + 6, mac_b, 6);
    buf[12] = 0x88;
    buf[13] = 0xa2;
    buf[14] = 0x18;
    buf[19] = AOE_CMD_ATA;
    buf[27] = 0x40;
    struct aoe_msg p;
    assert_int_equal(aoe_frame_parse(buf, sizeof buf, &p, NULL), 0);
    assert_int_equal(p.u.ata.sector_count, 0);
    assert_int_equal(p.u.ata.data_len, 512);
    /* A bare header-only response (e.g. an unpadded config reply cut short) still parses the
     * header, and an error response needs nothing beyond it. */
    buf[14] = 0x1c;
    buf[15] = AOE_ERR_RESERVED;
    assert_int_equal(aoe_frame_parse(buf, AOE_HDR_LEN, &p, NULL), 0);
    assert_int_equal(p.error, AOE_ERR_RESERVED);
}

static void test_build_limits(void **state)
{
    uint8_t buf[2048];
    struct aoe_msg m;
    init_req(&m, AOE_CMD_ATA);
    m.u.ata.lba = 1ull << 48;
    assert_int_equal(aoe_frame_build(&m, buf, sizeof buf), 0);
    m.u.ata.lba = 0;
    assert_int_equal(aoe_frame_build(&m, buf, 59), 0);
    init_req(&m, AOE_CMD_CONFIG);
    m.u.cfg.cfg_len = 1025;
    m.u.cfg.cfg = buf;
    assert_int_equal(aoe_frame_build(&m, buf, sizeof buf), 0);
    init_req(&m, 0x20);
    assert_int_equal(aoe_frame_build(&m, buf, sizeof buf), 0);
}

static void test_sectors_for_mtu(void **state)
{
    assert_int_equal(aoe_max_sectors_for_mtu(1500), 2);
    assert_int_equal(aoe_max_sectors_for_mtu(9000), 17);
    assert_int_equal(aoe_max_sectors_for_mtu(20), 0);
    assert_int_equal(aoe_max_sectors_for_mtu(1000000), 255);
    assert_string_equal(aoe_error_name(AOE_ERR_RESERVED), "target is reserved");
    assert_string_equal(aoe_error_name(99), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ata_layout_and_round_trip),
        cmocka_unit_test(test_short_reply_padded_to_60),
        cmocka_unit_test(test_cfg_round_trip),
        cmocka_unit_test(test_mask_and_reserve_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_accepts_vblade_style_reply),
        cmocka_unit_test(test_build_limits),
        cmocka_unit_test(test_sectors_for_mtu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
