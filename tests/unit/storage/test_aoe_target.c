/* The target's request->reply function on a real drive image: every ATA command, Query Config
 * subcommands, Mac Mask enforcement, reservations, AoE and ATA errors. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/aoe_target.h"

#define CHUNK   (64 * 1024)
#define SECTORS 2048 /* 1 MiB vdisk */

static const uint8_t tgt_mac[6] = {0x02, 0, 0, 0, 0x10, 0x01};
static const uint8_t ini_a[6] = {0x02, 0, 0, 0, 0x20, 0x0a};
static const uint8_t ini_b[6] = {0x02, 0, 0, 0, 0x20, 0x0b};

struct fixture {
    char path[64];
    struct mv_drive *drive;
    struct aoe_target *target;
    uint8_t req[MV_ETH_MAX_FRAME];
    size_t req_len;
    /* Placed so that ATA data (offset 36) is 4096-aligned, as O_DIRECT transfers need. */
    uint8_t rbuf[4][16384] __attribute__((aligned(4096)));
    struct aoe_target_reply rep[4];
    struct aoe_msg msg; /* parsed first reply */
};

static int setup(void **state)
{
    struct fixture *f = aligned_alloc(4096, sizeof *f);
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/hst-target-%d.img", getpid());
    int fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(ftruncate(fd, 8 << 20), 0);
    close(fd);
    char err[256];
    struct mv_drive_format_opts o = {.host = "h", .chunk_size = CHUNK};
    assert_int_equal(mv_drive_format(f->path, &o, err, sizeof err), 0);
    assert_int_equal(mv_drive_open(f->path, &f->drive, err, sizeof err), 0);
    int r =
        mv_drive_replica_create(f->drive, "vdisk-0001", SECTORS * 512, 5, 1, true, err, sizeof err);
    assert_int_equal(mv_drive_replica_set_mapped(f->drive, r, true, 5, 1, err, sizeof err), 0);
    r = mv_drive_replica_create(f->drive, "vdisk-0002", 64 * 512, 5, 2, true, err, sizeof err);
    assert_int_equal(mv_drive_replica_set_mapped(f->drive, r, true, 5, 2, err, sizeof err), 0);
    struct aoe_target_config tc = {.mtu = 9000};
    memcpy(tc.mac, tgt_mac, 6);
    assert_int_equal(aoe_target_create(&tc, &f->target), 0);
    assert_int_equal(aoe_target_add_drive(f->target, f->drive), 0);
    assert_int_equal(aoe_target_count(f->target), 2);
    for (int i = 0; i < 4; i++)
        f->rep[i] = (struct aoe_target_reply){.buf = f->rbuf[i] + 4096 - AOE_ATA_HDR_LEN,
                                              .cap = MV_ETH_MAX_FRAME};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    aoe_target_destroy(f->target);
    mv_drive_close(f->drive);
    unlink(f->path);
    free(f);
    return 0;
}

static void init_req(struct aoe_msg *m, const uint8_t *src, uint16_t major, uint8_t minor,
                     uint8_t cmd)
{
    memset(m, 0, sizeof *m);
    memcpy(m->dst, tgt_mac, 6);
    memcpy(m->src, src, 6);
    m->ver = AOE_VERSION;
    m->major = major;
    m->minor = minor;
    m->cmd = cmd;
    m->tag = 0x1000 + cmd;
}

/* Sends msg; returns the number of replies and parses the first into f->msg. */
static unsigned send(struct fixture *f, const struct aoe_msg *m)
{
    f->req_len = aoe_frame_build(m, f->req, sizeof f->req);
    assert_true(f->req_len >= 60);
    unsigned n = aoe_target_handle_frame(f->target, f->req, f->req_len, f->rep, 4);
    for (unsigned i = 0; i < n; i++) {
        assert_true(f->rep[i].len >= 60); /* always padded */
        struct aoe_msg p;
        assert_int_equal(aoe_frame_parse(f->rep[i].buf, f->rep[i].len, &p, NULL), 0);
        assert_true(p.flags & AOE_FLAG_RESPONSE);
        assert_int_equal(p.tag, m->tag);
        assert_memory_equal(p.dst, m->src, 6);
        assert_memory_equal(p.src, tgt_mac, 6);
        if (i == 0)
            f->msg = p;
    }
    return n;
}

static unsigned ata(struct fixture *f, const uint8_t *src, uint8_t minor, uint8_t cmd, uint64_t lba,
                    uint8_t count, const void *data, size_t len)
{
    struct aoe_msg m;
    init_req(&m, src, 5, minor, AOE_CMD_ATA);
    bool write = cmd == ATA_CMD_WRITE || cmd == ATA_CMD_WRITE_EXT;
    m.u.ata = (struct aoe_ata){
        .aflags = (uint8_t)((cmd == ATA_CMD_READ || cmd == ATA_CMD_WRITE ? 0 : AOE_AFLAG_EXT) |
                            (write ? AOE_AFLAG_WRITE : 0)),
        .sector_count = count,
        .cmd_status = cmd,
        .lba = lba,
        .data = data,
        .data_len = len};
    return send(f, &m);
}

static void test_write_read_ext_and_lba28(void **state)
{
    struct fixture *f = *state;
    uint8_t data[17 * 512];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_WRITE_EXT, 100, 17, data, sizeof data), 1);
    assert_false(f->msg.flags & AOE_FLAG_ERROR);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY);
    assert_int_equal(f->msg.u.ata.sector_count, 17);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 100, 17, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY);
    assert_int_equal(f->msg.u.ata.data_len, sizeof data);
    assert_memory_equal(f->msg.u.ata.data, data, sizeof data);
    /* LBA28 commands see the same sectors; bits above 28 are the device register's. */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ, 0xe0000000ull | 101, 1, NULL, 0), 1);
    assert_memory_equal(f->msg.u.ata.data, data + 512, 512);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_WRITE, 0, 2, data, 1024), 1);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY);
    /* The other target is a different disk: still zeros there. */
    assert_int_equal(ata(f, ini_a, 2, ATA_CMD_READ_EXT, 0, 1, NULL, 0), 1);
    for (int i = 0; i < 512; i++)
        assert_int_equal(f->msg.u.ata.data[i], 0);
    struct aoe_target_stats st;
    aoe_target_get_stats(f->target, &st);
    assert_int_equal(st.written_sectors, 19);
    assert_int_equal(st.read_sectors, 19);
}

static void test_ata_errors(void **state)
{
    struct fixture *f = *state;
    uint8_t data[1024] = {0};
    /* Past the end: IDNF. */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, SECTORS - 1, 2, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY | ATA_STATUS_ERR);
    assert_int_equal(f->msg.u.ata.err_feature, ATA_ERR_IDNF);
    assert_int_equal(f->msg.u.ata.data_len, 60 - AOE_ATA_HDR_LEN);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_WRITE_EXT, SECTORS, 1, data, 512), 1);
    assert_int_equal(f->msg.u.ata.err_feature, ATA_ERR_IDNF);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, SECTORS - 1, 1, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY);
    /* More sectors than a frame carries (17 at MTU 9000), or count 0: ABRT. */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 0, 18, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.err_feature, ATA_ERR_ABRT);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 0, 0, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.err_feature, ATA_ERR_ABRT);
    /* Unknown ATA command: ABRT. */
    assert_int_equal(ata(f, ini_a, 1, 0xc8, 0, 1, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.err_feature, ATA_ERR_ABRT);
    /* Write with less data than the sector count: AoE bad argument. */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_WRITE_EXT, 0, 2, data, 512), 1);
    assert_true(f->msg.flags & AOE_FLAG_ERROR);
    assert_int_equal(f->msg.error, AOE_ERR_BAD_ARG);
    /* Write command without the W flag. */
    struct aoe_msg m;
    init_req(&m, ini_a, 5, 1, AOE_CMD_ATA);
    m.u.ata = (struct aoe_ata){.aflags = AOE_AFLAG_EXT,
                               .sector_count = 1,
                               .cmd_status = ATA_CMD_WRITE_EXT,
                               .data = data,
                               .data_len = 512};
    assert_int_equal(send(f, &m), 1);
    assert_int_equal(f->msg.error, AOE_ERR_BAD_ARG);
    /* Nothing was written by any of these. */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 0, 2, NULL, 0), 1);
    struct aoe_target_stats st;
    aoe_target_get_stats(f->target, &st);
    assert_int_equal(st.written_sectors, 0);
}

static void test_identify_flush_power(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_IDENTIFY, 0, 1, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.data_len, 512);
    const uint8_t *id = f->msg.u.ata.data;
#define W(i) ((uint16_t)(id[2 * (i)] | id[2 * (i) + 1] << 8))
    assert_int_equal(W(60) | (uint32_t)W(61) << 16, SECTORS);
    assert_int_equal(W(100) | (uint32_t)W(101) << 16, SECTORS);
    assert_int_equal(W(102), 0);
    assert_int_equal(W(103), 0);
    assert_true(W(83) & 0x0400); /* LBA48 supported */
    assert_true(W(86) & 0x0400); /* and enabled */
    assert_true(W(49) & 0x0200); /* LBA */
    /* Model: word-swapped ASCII. */
    char model[41];
    for (int i = 0; i < 20; i++) {
        model[2 * i] = (char)(W(27 + i) >> 8);
        model[2 * i + 1] = (char)W(27 + i);
    }
    model[40] = 0;
    assert_memory_equal(model, "MVKVM AoE vdisk     ", 20);
    char serial[21];
    for (int i = 0; i < 10; i++) {
        serial[2 * i] = (char)(W(10 + i) >> 8);
        serial[2 * i + 1] = (char)W(10 + i);
    }
    serial[20] = 0;
    assert_memory_equal(serial, "vdisk-0001", 10);
    uint8_t sum = 0;
    for (int i = 0; i < 512; i++)
        sum = (uint8_t)(sum + id[i]);
    assert_int_equal(sum, 0);
    assert_int_equal(id[510], 0xa5);
#undef W
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_FLUSH, 0, 0, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_FLUSH_EXT, 0, 0, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_CHECK_POWER, 0, 0, NULL, 0), 1);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY);
    assert_int_equal(f->msg.u.ata.sector_count, 0xff);
}

static unsigned config(struct fixture *f, const uint8_t *src, uint16_t major, uint8_t minor,
                       uint8_t ccmd, const char *s)
{
    struct aoe_msg m;
    init_req(&m, src, major, minor, AOE_CMD_CONFIG);
    m.u.cfg =
        (struct aoe_cfg){.ccmd = ccmd, .cfg_len = (uint16_t)strlen(s), .cfg = (const uint8_t *)s};
    return send(f, &m);
}

static void test_query_config(void **state)
{
    struct fixture *f = *state;
    /* Broadcast discovery: one reply per target, addressed as itself. */
    assert_int_equal(config(f, ini_a, AOE_SHELF_ANY, AOE_SLOT_ANY, AOE_CCMD_READ, ""), 2);
    assert_int_equal(f->msg.major, 5);
    assert_int_equal(f->msg.u.cfg.sector_count, 17);
    assert_int_equal(f->msg.u.cfg.buffer_count, 64);
    assert_int_equal(f->msg.u.cfg.aoe_ver, AOE_VERSION);
    assert_int_equal(config(f, ini_a, 5, AOE_SLOT_ANY, AOE_CCMD_READ, ""), 2);
    assert_int_equal(config(f, ini_a, 6, AOE_SLOT_ANY, AOE_CCMD_READ, ""), 0);
    /* Set if empty; then set again fails with "config string present"; force set works. */
    assert_int_equal(config(f, ini_a, 5, 1, AOE_CCMD_SET, "owner=a"), 1);
    assert_int_equal(f->msg.u.cfg.cfg_len, 7);
    assert_memory_equal(f->msg.u.cfg.cfg, "owner=a", 7);
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_SET, "owner=b"), 1);
    assert_true(f->msg.flags & AOE_FLAG_ERROR);
    assert_int_equal(f->msg.error, AOE_ERR_CFG_PRESENT);
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_TEST, "owner=a"), 1);
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_TEST, "owner="), 0);
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_TEST_PREFIX, "owner="), 1);
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_TEST_PREFIX, "owner=ab"), 0);
    /* Broadcast test: only the target whose string matches answers. */
    assert_int_equal(config(f, ini_b, AOE_SHELF_ANY, AOE_SLOT_ANY, AOE_CCMD_TEST, "owner=a"), 1);
    assert_int_equal(f->msg.minor, 1);
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_FORCE_SET, "owner=b"), 1);
    assert_memory_equal(f->msg.u.cfg.cfg, "owner=b", 7);
    char big[1025];
    memset(big, 'x', 1024);
    big[1024] = 0;
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_FORCE_SET, big), 1);
    assert_int_equal(f->msg.u.cfg.cfg_len, 1024);
}

static void test_mac_mask(void **state)
{
    struct fixture *f = *state;
    uint8_t dirs[16];
    aoe_mask_dir_put(dirs, AOE_DCMD_ADD, ini_a);
    struct aoe_msg m;
    init_req(&m, ini_a, 5, 1, AOE_CMD_MASK);
    m.u.mask = (struct aoe_mask){.mcmd = AOE_MCMD_EDIT, .dir_count = 1, .dirs = dirs};
    assert_int_equal(send(f, &m), 1);
    assert_int_equal(f->msg.u.mask.merror, AOE_MERR_NONE);
    assert_int_equal(f->msg.u.mask.dir_count, 1);
    /* ini_b is now ignored entirely by 5.1, ATA and discovery alike; 5.2 still answers. */
    assert_int_equal(ata(f, ini_b, 1, ATA_CMD_READ_EXT, 0, 1, NULL, 0), 0);
    assert_int_equal(config(f, ini_b, AOE_SHELF_ANY, AOE_SLOT_ANY, AOE_CCMD_READ, ""), 1);
    assert_int_equal(f->msg.minor, 2);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 0, 1, NULL, 0), 1);
    /* A bad directive changes nothing: [add b, bogus 7] leaves the list as it was. */
    aoe_mask_dir_put(dirs, AOE_DCMD_ADD, ini_b);
    aoe_mask_dir_put(dirs + 8, 7, ini_b);
    m.u.mask.dir_count = 2;
    assert_int_equal(send(f, &m), 1);
    assert_int_equal(f->msg.u.mask.merror, AOE_MERR_BAD_DCMD);
    assert_int_equal(f->msg.u.mask.dir_count, 1);
    assert_int_equal(ata(f, ini_b, 1, ATA_CMD_READ_EXT, 0, 1, NULL, 0), 0);
    /* Read the list. */
    init_req(&m, ini_a, 5, 1, AOE_CMD_MASK);
    assert_int_equal(send(f, &m), 1);
    uint8_t dcmd, mac[6];
    aoe_mask_dir_get(&f->msg.u.mask, 0, &dcmd, mac);
    assert_memory_equal(mac, ini_a, 6);
    /* Full list: 64 entries, the 65th is refused with "list full". */
    uint8_t many[65 * 8];
    for (int i = 0; i < 65; i++) {
        uint8_t x[6] = {0x02, 1, 0, 0, 0, (uint8_t)i};
        aoe_mask_dir_put(many + i * 8, AOE_DCMD_ADD, x);
    }
    init_req(&m, ini_a, 5, 1, AOE_CMD_MASK);
    m.u.mask = (struct aoe_mask){.mcmd = AOE_MCMD_EDIT, .dir_count = 65, .dirs = many};
    assert_int_equal(send(f, &m), 1);
    assert_int_equal(f->msg.u.mask.merror, AOE_MERR_FULL);
    assert_int_equal(f->msg.u.mask.dir_count, 1);
    /* Delete ini_a: the list is empty and everyone is served again. */
    aoe_mask_dir_put(dirs, AOE_DCMD_DELETE, ini_a);
    init_req(&m, ini_a, 5, 1, AOE_CMD_MASK);
    m.u.mask = (struct aoe_mask){.mcmd = AOE_MCMD_EDIT, .dir_count = 1, .dirs = dirs};
    assert_int_equal(send(f, &m), 1);
    assert_int_equal(f->msg.u.mask.dir_count, 0);
    assert_int_equal(ata(f, ini_b, 1, ATA_CMD_READ_EXT, 0, 1, NULL, 0), 1);
}

static unsigned reserve(struct fixture *f, const uint8_t *src, uint8_t rcmd, const uint8_t *macs,
                        uint8_t n)
{
    struct aoe_msg m;
    init_req(&m, src, 5, 1, AOE_CMD_RESERVE);
    m.u.reserve = (struct aoe_reserve){.rcmd = rcmd, .nmacs = n, .macs = macs};
    return send(f, &m);
}

static void test_reservation(void **state)
{
    struct fixture *f = *state;
    uint8_t data[512] = {9};
    assert_int_equal(reserve(f, ini_a, AOE_RCMD_SET, ini_a, 1), 1);
    assert_false(f->msg.flags & AOE_FLAG_ERROR);
    assert_int_equal(f->msg.u.reserve.nmacs, 1);
    /* ini_b conflicts: ATA writes and reads, config set, reserve set. */
    assert_int_equal(ata(f, ini_b, 1, ATA_CMD_WRITE_EXT, 0, 1, data, 512), 1);
    assert_true(f->msg.flags & AOE_FLAG_ERROR);
    assert_int_equal(f->msg.error, AOE_ERR_RESERVED);
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_FORCE_SET, "x"), 1);
    assert_int_equal(f->msg.error, AOE_ERR_RESERVED);
    assert_int_equal(reserve(f, ini_b, AOE_RCMD_SET, ini_b, 1), 1);
    assert_int_equal(f->msg.error, AOE_ERR_RESERVED);
    /* Discovery and reading the reservation still work for everyone. */
    assert_int_equal(config(f, ini_b, 5, 1, AOE_CCMD_READ, ""), 1);
    assert_false(f->msg.flags & AOE_FLAG_ERROR);
    assert_int_equal(reserve(f, ini_b, AOE_RCMD_READ, NULL, 0), 1);
    assert_memory_equal(f->msg.u.reserve.macs, ini_a, 6);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_WRITE_EXT, 0, 1, data, 512), 1);
    assert_false(f->msg.flags & AOE_FLAG_ERROR);
    /* Force set takes it over. */
    assert_int_equal(reserve(f, ini_b, AOE_RCMD_FORCE_SET, ini_b, 1), 1);
    assert_false(f->msg.flags & AOE_FLAG_ERROR);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 0, 1, NULL, 0), 1);
    assert_int_equal(f->msg.error, AOE_ERR_RESERVED);
    /* Release (set with no MACs) by the holder. */
    assert_int_equal(reserve(f, ini_b, AOE_RCMD_SET, NULL, 0), 1);
    assert_int_equal(f->msg.u.reserve.nmacs, 0);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 0, 1, NULL, 0), 1);
    assert_false(f->msg.flags & AOE_FLAG_ERROR);
    assert_int_equal(f->msg.u.ata.data[0], 9);
}

static void test_aoe_level_errors_and_drops(void **state)
{
    struct fixture *f = *state;
    struct aoe_msg m;
    /* Vendor command: not implemented, error 1. */
    init_req(&m, ini_a, 5, 1, 0xf0);
    assert_int_equal(send(f, &m), 1);
    assert_int_equal(f->msg.error, AOE_ERR_BAD_CMD);
    /* Unknown command 9 and version 2: errors 1 and 5, from raw frames. */
    init_req(&m, ini_a, 5, 1, AOE_CMD_RESERVE);
    f->req_len = aoe_frame_build(&m, f->req, sizeof f->req);
    f->req[19] = 9;
    assert_int_equal(aoe_target_handle_frame(f->target, f->req, f->req_len, f->rep, 4), 1);
    assert_int_equal(aoe_frame_parse(f->rep[0].buf, f->rep[0].len, &f->msg, NULL), 0);
    assert_int_equal(f->msg.error, AOE_ERR_BAD_CMD);
    f->req[19] = AOE_CMD_RESERVE;
    f->req[14] = 0x20;
    assert_int_equal(aoe_target_handle_frame(f->target, f->req, f->req_len, f->rep, 4), 1);
    assert_int_equal(aoe_frame_parse(f->rep[0].buf, f->rep[0].len, &f->msg, NULL), 0);
    assert_int_equal(f->msg.error, AOE_ERR_BAD_VERSION);
    /* Dropped: responses, other destination MACs, unknown targets, ATA by broadcast. */
    f->req[14] = 0x18;
    assert_int_equal(aoe_target_handle_frame(f->target, f->req, f->req_len, f->rep, 4), 0);
    f->req[14] = 0x10;
    f->req[5] = 0x99;
    assert_int_equal(aoe_target_handle_frame(f->target, f->req, f->req_len, f->rep, 4), 0);
    assert_int_equal(ata(f, ini_a, 9, ATA_CMD_READ_EXT, 0, 1, NULL, 0), 0);
    init_req(&m, ini_a, 5, AOE_SLOT_ANY, AOE_CMD_ATA);
    m.u.ata = (struct aoe_ata){
        .aflags = AOE_AFLAG_EXT, .sector_count = 1, .cmd_status = ATA_CMD_READ_EXT};
    assert_int_equal(send(f, &m), 0);
    /* Truncated ATA header: bad argument. */
    init_req(&m, ini_a, 5, 1, AOE_CMD_ATA);
    f->req_len = aoe_frame_build(&m, f->req, sizeof f->req);
    assert_int_equal(aoe_target_handle_frame(f->target, f->req, 30, f->rep, 4), 1);
    assert_int_equal(aoe_frame_parse(f->rep[0].buf, f->rep[0].len, &f->msg, NULL), 0);
    assert_int_equal(f->msg.error, AOE_ERR_BAD_ARG);
}

static void test_refresh_keeps_state(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(config(f, ini_a, 5, 1, AOE_CCMD_SET, "keep"), 1);
    char err[256];
    int r = mv_drive_replica_find(f->drive, "vdisk-0002");
    assert_int_equal(mv_drive_replica_set_mapped(f->drive, r, false, 0, 0, err, sizeof err), 0);
    assert_int_equal(aoe_target_refresh(f->target), 0);
    assert_int_equal(aoe_target_count(f->target), 1);
    assert_int_equal(config(f, ini_a, 5, 2, AOE_CCMD_READ, ""), 0);
    assert_int_equal(config(f, ini_a, 5, 1, AOE_CCMD_READ, ""), 1);
    assert_int_equal(f->msg.u.cfg.cfg_len, 4);
}

/* Asynchronous mode: the transfers come back in reply->io; done by hand here as mvstored's
 * io_uring engine does them. Unwritten ranges are zero-filled without a transfer. */
static void do_io(struct aoe_target_reply *r)
{
    for (unsigned j = 0; j < r->nio; j++) {
        struct aoe_target_io *io = &r->io[j];
        ssize_t n = io->write ? pwrite(io->fd, io->mem, io->len, (off_t)io->off)
                              : pread(io->fd, io->mem, io->len, (off_t)io->off);
        assert_int_equal(n, io->len);
    }
}

static void test_async_io(void **state)
{
    struct fixture *f = *state;
    static uint8_t bounce[17 * 512] __attribute__((aligned(4096)));
    aoe_target_set_async(f->target, true);
    for (int i = 0; i < 4; i++)
        f->rep[i].bounce = bounce;
    uint8_t data[17 * 512];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    /* Unwritten: a read needs no transfer and returns zeros. */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 120, 17, NULL, 0), 1);
    assert_int_equal(f->rep[0].nio, 0);
    for (int i = 0; i < 17 * 512; i++)
        assert_int_equal(f->msg.u.ata.data[i], 0);
    /* A write across a chunk boundary (chunk = 128 sectors): two transfers. */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_WRITE_EXT, 120, 17, data, sizeof data), 1);
    assert_int_equal(f->rep[0].nio, 2);
    assert_true(f->rep[0].io[0].write);
    assert_int_equal(f->rep[0].io[0].len + f->rep[0].io[1].len, sizeof data);
    assert_int_equal(f->msg.u.ata.cmd_status, ATA_STATUS_DRDY);
    do_io(&f->rep[0]);
    memset(bounce, 0, sizeof bounce); /* the caller may reuse its bounce buffer now */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 120, 17, NULL, 0), 1);
    assert_int_equal(f->rep[0].nio, 2);
    do_io(&f->rep[0]);
    assert_memory_equal(f->rep[0].buf + AOE_ATA_HDR_LEN, data, sizeof data);
    /* The synchronous path sees the same data. */
    aoe_target_set_async(f->target, false);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 121, 1, NULL, 0), 1);
    assert_memory_equal(f->msg.u.ata.data, data + 512, 512);
    /* A failed transfer becomes an ATA error reply. */
    aoe_target_set_async(f->target, true);
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_READ_EXT, 120, 2, NULL, 0), 1);
    assert_int_equal(f->rep[0].nio, 1);
    aoe_target_fail_io(f->target, &f->rep[0], -EIO);
    struct aoe_msg p;
    assert_int_equal(f->rep[0].len, 60);
    assert_int_equal(aoe_frame_parse(f->rep[0].buf, f->rep[0].len, &p, NULL), 0);
    assert_int_equal(p.u.ata.cmd_status, ATA_STATUS_DRDY | ATA_STATUS_ERR);
    assert_int_equal(p.u.ata.err_feature, ATA_ERR_UNC);
    /* Past the end is still answered at once with IDNF. */
    assert_int_equal(ata(f, ini_a, 1, ATA_CMD_WRITE_EXT, SECTORS, 1, data, 512), 1);
    assert_int_equal(f->rep[0].nio, 0);
    assert_int_equal(f->msg.u.ata.err_feature, ATA_ERR_IDNF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_read_ext_and_lba28, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ata_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identify_flush_power, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mac_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aoe_level_errors_and_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_keeps_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_io, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
