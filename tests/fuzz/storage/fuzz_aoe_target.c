/* Fuzz target: arbitrary frames into mvstored's request->reply function, backed by a real (small,
 * sparse, unlinked) drive image with two mapped targets, 5.1 (thin) and 5.2 (thick). Every reply
 * must be a padded, parseable AoE response that fits its buffer. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mv/aoe_target.h"
#include "mv/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t target_mac[6] = {0x02, 0, 0, 0, 0x10, 0x01};
static struct aoe_target *target;
static struct mv_drive *drive;

static void setup(void)
{
    char path[64], err[256];
    snprintf(path, sizeof path, "/tmp/hst-fuzz-%d.img", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4 << 20) != 0)
        abort();
    close(fd);
    struct mv_drive_format_opts o = {.host = "fuzz", .chunk_size = 64 * 1024, .max_replicas = 4};
    if (mv_drive_format(path, &o, err, sizeof err) != 0 ||
        mv_drive_open(path, &drive, err, sizeof err) != 0)
        abort();
    unlink(path); /* the open descriptor keeps it alive; nothing is left behind */
    int r1 = mv_drive_replica_create(drive, "fuzz-thin", 1 << 20, 5, 1, true, err, sizeof err);
    int r2 = mv_drive_replica_create(drive, "fuzz-thick", 256 << 10, 5, 2, false, err, sizeof err);
    if (r1 < 0 || r2 < 0 || mv_drive_replica_set_mapped(drive, r1, true, 5, 1, err, sizeof err) ||
        mv_drive_replica_set_mapped(drive, r2, true, 5, 2, err, sizeof err))
        abort();
    struct aoe_target_config tc = {.mtu = 9000};
    memcpy(tc.mac, target_mac, 6);
    if (aoe_target_create(&tc, &target) != 0 || aoe_target_add_drive(target, drive) != 0)
        abort();
    mv_log_set_level(LOG_CRIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t frame[MV_ETH_MAX_FRAME];
    static uint8_t bufs[4][MV_ETH_MAX_FRAME];
    if (!target)
        setup();
    if (size > sizeof frame)
        size = sizeof frame;
    memcpy(frame, data, size);
    /* Aim at the target unless the input is a broadcast: the MAC filter is not the interesting
     * part. */
    if (size >= 6 && frame[0] != 0xff)
        memcpy(frame, target_mac, 6);
    struct aoe_target_reply rep[4];
    for (int i = 0; i < 4; i++)
        rep[i] = (struct aoe_target_reply){.buf = bufs[i], .cap = sizeof bufs[i]};
    unsigned n = aoe_target_handle_frame(target, frame, size, rep, 4);
    if (n > 4)
        abort();
    for (unsigned i = 0; i < n; i++) {
        struct aoe_msg m;
        if (rep[i].len < MV_ETH_ZLEN || rep[i].len > rep[i].cap)
            abort();
        if (aoe_frame_parse(rep[i].buf, rep[i].len, &m, NULL) != 0)
            abort();
        if (!(m.flags & AOE_FLAG_RESPONSE) || memcmp(m.src, target_mac, 6) != 0)
            abort();
    }
    return 0;
}
