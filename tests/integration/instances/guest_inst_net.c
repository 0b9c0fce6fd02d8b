/* Test guest of the instance networking rack test (instances_net.sh): an instance with a root
 * volume (virtio-blk, served over AoE by another host) and one NIC (virtio-net, a TAP on the
 * network's bridge). It checks its disk briefly (one 4 KiB write, flush, read back), then
 * exchanges frames with the echo peer on the network's uplink: for each of FRAMES frames of
 * different lengths (EtherType 0x88b7, broadcast, payload "inst-net req NN" + a pattern) it waits
 * for the peer's reply, which must come back to its own MAC with the same length, "rep" in place
 * of "req" and the pattern intact. Only then it prints "inst net ok" with its MAC and the
 * peer's, and halts until the VMM is stopped. Lock-step, so the RX ring never runs short. */
#include "guest.h"
#include "guest_virtio.h"

#define ETHERTYPE 0x88b7
#define FRAMES    6
#define RX_BUFS   8
#define HDR_LEN   12 /* virtio_net_hdr with VERSION_1 */
#define BUF_LEN   (HDR_LEN + 1514)
#define TAG_LEN   15 /* "inst-net req NN" */

/* Minimum, odd, mid and maximum frame lengths (without FCS). */
static const uint32_t frame_len[FRAMES] = {60, 61, 128, 777, 1500, 1514};

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue blkq, rxq, txq;
static uint8_t sector_buf[4096] __attribute__((aligned(4096)));
static uint8_t rx_buf[RX_BUFS][BUF_LEN] __attribute__((aligned(64)));
static uint8_t tx_buf[BUF_LEN] __attribute__((aligned(64)));
static uint8_t desc_slot[GV_QSZ]; /* RX descriptor head -> buffer */

static uint8_t disk_pattern(unsigned i, unsigned boot)
{
    return (uint8_t)((i * 11 + boot * 29) ^ 0x3c);
}

/* The peer checks the same pattern (instances_net.sh). */
static uint8_t net_pattern(unsigned frame, unsigned i)
{
    return (uint8_t)(frame * 37 + i * 13 + 0x5a);
}

static bool check_disk(unsigned ndev, unsigned boot)
{
    struct gv_device *dev = gv_find(devs, ndev, 2);
    if (dev == NULL) {
        guest_fail("inst_net", "no virtio-blk device");
        return false;
    }
    if (!gv_init(dev, 1ull << 9 /* FLUSH */) || !gv_queue_setup(dev, &blkq, 0, 0) ||
        !gv_driver_ok(dev)) {
        guest_failf("inst_net", "blk handshake failed, status 0x%x", gv_status(dev));
        return false;
    }
    for (unsigned i = 0; i < sizeof(sector_buf); i++)
        sector_buf[i] = disk_pattern(i, boot);
    uint8_t st = gv_blk_request(dev, &blkq, GV_BLK_T_OUT, 0, sector_buf, sizeof(sector_buf));
    if (st == 0)
        st = gv_blk_request(dev, &blkq, GV_BLK_T_FLUSH, 0, NULL, 0);
    if (st == 0) {
        memset(sector_buf, 0, sizeof(sector_buf));
        st = gv_blk_request(dev, &blkq, GV_BLK_T_IN, 0, sector_buf, sizeof(sector_buf));
    }
    if (st != 0) {
        guest_failf("inst_net", "disk write/flush/read: status %u", st);
        return false;
    }
    for (unsigned i = 0; i < sizeof(sector_buf); i++)
        if (sector_buf[i] != disk_pattern(i, boot)) {
            guest_failf("inst_net", "disk byte %u differs", i);
            return false;
        }
    guest_printf("inst blk ok %llu sectors\n", (unsigned long long)gv_config64(dev, 0));
    return true;
}

static void post_rx(unsigned i)
{
    struct gv_buf b = {rx_buf[i], BUF_LEN, true};
    desc_slot[gv_submit(&rxq, &b, 1) % GV_QSZ] = (uint8_t)i;
}

static void send_request(struct gv_device *dev, const uint8_t mac[6], unsigned f)
{
    uint8_t *eth = tx_buf + HDR_LEN;
    memset(tx_buf, 0, HDR_LEN);
    memset(eth, 0xff, 6);
    memcpy(eth + 6, mac, 6);
    eth[12] = ETHERTYPE >> 8;
    eth[13] = ETHERTYPE & 0xff;
    char tag[TAG_LEN + 1];
    guest_snprintf(tag, sizeof(tag), "inst-net req %02u", f);
    memcpy(eth + 14, tag, TAG_LEN);
    for (unsigned i = 14 + TAG_LEN; i < frame_len[f]; i++)
        eth[i] = net_pattern(f, i);
    struct gv_buf b = {tx_buf, HDR_LEN + frame_len[f], false};
    gv_submit(&txq, &b, 1);
    gv_kick(dev, &txq);
    gv_wait_used(dev, &txq, NULL);
}

/* Waits for the reply to frame f; frames of other EtherTypes (the bridge floods what it
 * likes) are skipped. false (after FAIL) when a reply is not what was sent. */
static bool await_reply(struct gv_device *dev, const uint8_t mac[6], unsigned f, uint8_t peer[6])
{
    for (;;) {
        uint32_t len;
        uint16_t id = gv_wait_used(dev, &rxq, &len);
        unsigned slot = desc_slot[id % GV_QSZ];
        const uint8_t *eth = rx_buf[slot] + HDR_LEN;
        bool ours =
            len >= HDR_LEN + 14 && eth[12] == (ETHERTYPE >> 8) && eth[13] == (ETHERTYPE & 0xff);
        const char *why = NULL;
        if (ours) {
            char want[TAG_LEN + 1];
            guest_snprintf(want, sizeof(want), "inst-net rep %02u", f);
            if (len - HDR_LEN != frame_len[f])
                why = "wrong length";
            else if (memcmp(eth, mac, 6) != 0)
                why = "not addressed to our MAC";
            else if ((eth[6] & 1) || memcmp(eth + 6, mac, 6) == 0)
                why = "bad source MAC";
            else if (memcmp(eth + 14, want, TAG_LEN) != 0)
                why = "wrong tag";
            for (unsigned i = 14 + TAG_LEN; why == NULL && i < frame_len[f]; i++)
                if (eth[i] != net_pattern(f, i))
                    why = "payload differs";
            if (why == NULL)
                memcpy(peer, eth + 6, 6);
        }
        post_rx(slot);
        gv_kick(dev, &rxq);
        if (why != NULL) {
            guest_failf("inst_net", "reply %u (%u bytes): %s", f, len - HDR_LEN, why);
            return false;
        }
        if (ours)
            return true;
    }
}

static void check_net(unsigned ndev)
{
    struct gv_device *dev = gv_find(devs, ndev, 1);
    if (dev == NULL) {
        guest_fail("inst_net", "no virtio-net device");
        return;
    }
    /* MAC (bit 5) and STATUS (bit 16); queue slots 1 and 2 (slot 0 is the disk's) */
    if (!gv_init(dev, (1ull << 5) | (1ull << 16)) || !gv_queue_setup(dev, &rxq, 0, 1) ||
        !gv_queue_setup(dev, &txq, 1, 2)) {
        guest_failf("inst_net", "net handshake failed, status 0x%x", gv_status(dev));
        return;
    }
    for (unsigned i = 0; i < RX_BUFS; i++)
        post_rx(i);
    if (!gv_driver_ok(dev)) {
        guest_failf("inst_net", "DRIVER_OK refused, status 0x%x", gv_status(dev));
        return;
    }
    gv_kick(dev, &rxq);
    uint8_t mac[6], peer[6];
    for (unsigned i = 0; i < 6; i++)
        mac[i] = gv_config8(dev, i);
    if (!(gv_config8(dev, 6) & 1)) {
        guest_fail("inst_net", "link down");
        return;
    }
    for (unsigned f = 0; f < FRAMES; f++) {
        send_request(dev, mac, f);
        if (!await_reply(dev, mac, f, peer))
            return;
    }
    guest_printf("inst net ok %u frames mac %02x:%02x:%02x:%02x:%02x:%02x"
                 " peer %02x:%02x:%02x:%02x:%02x:%02x\n",
                 FRAMES, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], peer[0], peer[1], peer[2],
                 peer[3], peer[4], peer[5]);
}

void guest_main(void)
{
    struct guest_vm_info info;
    guest_vm_info(&info);
    guest_printf("inst boot %u\n", info.boot_count);
    unsigned n = gv_discover(devs, GV_MAX_DEVICES);
    if (check_disk(n, info.boot_count))
        check_net(n);
    for (;;)
        __asm__ volatile("cli; hlt");
}
