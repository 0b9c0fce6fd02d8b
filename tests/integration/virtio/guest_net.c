/* Test guest: virtio-net through mvvmm and a TAP. The guest posts receive buffers, sends
 * GUEST_FRAMES frames (EtherType 0x88b7, payload "hvi-g2h N") to the broadcast address; the
 * host peer (test script, in a private netns) checks them and answers with HOST_FRAMES frames
 * "hvi-h2g N" to the guest's MAC, which the guest checks. */
#include "guest.h"
#include "guest_virtio.h"

#define ETHERTYPE    0x88b7
#define GUEST_FRAMES 3
#define HOST_FRAMES  3
#define RX_BUFS      8
#define HDR_LEN      12
#define BUF_LEN      (HDR_LEN + 1514)

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue rxq, txq;
static uint8_t rx_buf[RX_BUFS][BUF_LEN] __attribute__((aligned(64)));
static uint8_t tx_buf[BUF_LEN] __attribute__((aligned(64)));

static uint8_t desc_slot[GV_QSZ]; /* descriptor head -> RX buffer */

static void post_rx(unsigned i)
{
    struct gv_buf b = {rx_buf[i], BUF_LEN, true};
    desc_slot[gv_submit(&rxq, &b, 1) % GV_QSZ] = (uint8_t)i;
}

void guest_main(void)
{
    unsigned n = gv_discover(devs, GV_MAX_DEVICES);
    struct gv_device *dev = gv_find(devs, n, 1);
    if (dev == NULL) {
        guest_fail("virtio_net_init", "no virtio-net device");
        return;
    }
    /* MAC (bit 5) and STATUS (bit 16) */
    if (!gv_init(dev, (1ull << 5) | (1ull << 16)) || !gv_queue_setup(dev, &rxq, 0, 0) ||
        !gv_queue_setup(dev, &txq, 1, 1)) {
        guest_failf("virtio_net_init", "handshake failed, status 0x%x", gv_status(dev));
        return;
    }
    for (unsigned i = 0; i < RX_BUFS; i++)
        post_rx(i);
    if (!gv_driver_ok(dev)) {
        guest_failf("virtio_net_init", "DRIVER_OK refused, status 0x%x", gv_status(dev));
        return;
    }
    gv_kick(dev, &rxq);
    uint8_t mac[6];
    for (unsigned i = 0; i < 6; i++)
        mac[i] = gv_config8(dev, i);
    uint16_t link = (uint16_t)(gv_config8(dev, 6) | (gv_config8(dev, 7) << 8));
    guest_printf("virtio-net: mac %02x:%02x:%02x:%02x:%02x:%02x link %u\n", mac[0], mac[1], mac[2],
                 mac[3], mac[4], mac[5], link);
    if (!(link & 1)) {
        guest_fail("virtio_net_init", "link down");
        return;
    }
    guest_pass("virtio_net_init");

    for (unsigned f = 0; f < GUEST_FRAMES; f++) {
        memset(tx_buf, 0, HDR_LEN);
        uint8_t *eth = tx_buf + HDR_LEN;
        memset(eth, 0xff, 6);
        memcpy(eth + 6, mac, 6);
        eth[12] = ETHERTYPE >> 8;
        eth[13] = ETHERTYPE & 0xff;
        memset(eth + 14, 0, 46);
        int plen = guest_snprintf((char *)eth + 14, 46, "hvi-g2h %u", f);
        (void)plen;
        struct gv_buf b = {tx_buf, HDR_LEN + 60, false};
        gv_submit(&txq, &b, 1);
        gv_kick(dev, &txq);
        gv_wait_used(dev, &txq, NULL);
    }
    guest_pass("virtio_net_tx");

    unsigned got = 0;
    while (got < HOST_FRAMES) {
        uint32_t len;
        uint16_t id = gv_wait_used(dev, &rxq, &len);
        unsigned slot = desc_slot[id % GV_QSZ];
        const uint8_t *eth = rx_buf[slot] + HDR_LEN;
        if (len >= HDR_LEN + 14 + 9 && eth[12] == (ETHERTYPE >> 8) &&
            eth[13] == (ETHERTYPE & 0xff)) {
            char want[16];
            guest_snprintf(want, sizeof(want), "hvi-h2g %u", got);
            if (memcmp(eth, mac, 6) != 0 || memcmp(eth + 14, want, strlen(want)) != 0) {
                guest_failf("virtio_net_rx", "frame %u has wrong content", got);
                return;
            }
            got++;
        }
        post_rx(slot);
        gv_kick(dev, &rxq);
    }
    guest_pass("virtio_net_rx");
}
