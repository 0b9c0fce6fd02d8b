/* virtio-net device model (device id 1) on a TAP device: one RX and one TX queue, MAC and link
 * status in config space, the virtio_net_hdr passed straight to the TAP (IFF_VNET_HDR), no
 * offloads negotiated yet. */
#ifndef MV_VIRTIO_NET_H
#define MV_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/virtio_mmio.h"

#define MV_VIRTIO_ID_NET 1u

#define MV_VIRTIO_NET_F_MAC     (1ull << 5)
#define MV_VIRTIO_NET_F_STATUS  (1ull << 16)
#define MV_VIRTIO_NET_S_LINK_UP 1u

#define MV_VIRTIO_NET_HDR_LEN 12u /* struct virtio_net_hdr_mrg_rxbuf, the 1.x header */

/* Opens /dev/net/tun as a TAP (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, vnet header 12 bytes,
 * non-blocking). name: an existing TAP to attach to or one to create; NULL or "" lets the
 * kernel pick. The actual name goes to name_out (IFNAMSIZ). Returns the fd or -errno. */
int mv_tap_open(const char *name, char *name_out, size_t name_out_len);

struct mv_virtio_net_params {
    const char *tap_name; /* attach/create; ignored when tap_fd >= 0 */
    int tap_fd;           /* an already opened TAP (vnet hdr set up), or -1; taken over */
    uint8_t mac[6];
    bool mac_set;        /* else a random locally administered MAC */
    uint16_t queue_size; /* 0: 256 */
};

struct mv_virtio_net;

struct mv_virtio_net *mv_virtio_net_create(const struct mv_virtio_net_params *params);
const struct mv_virtio_device *mv_virtio_net_device(struct mv_virtio_net *net);
const char *mv_virtio_net_tap_name(const struct mv_virtio_net *net);
void mv_virtio_net_get_mac(const struct mv_virtio_net *net, uint8_t mac[6]);
/* Link status in config space; a change raises a config interrupt. */
void mv_virtio_net_set_link(struct mv_virtio_net *net, bool up);
/* Destroy the transport first; closes the TAP. */
void mv_virtio_net_destroy(struct mv_virtio_net *net);

/* Convenience for mvvmm: "tap=NAME[,mac=aa:bb:cc:dd:ee:ff]". */
struct mv_virtio_net *mv_virtio_net_create_from_spec(const char *spec);

struct mv_virtio_net_stats {
    uint64_t rx_frames, rx_bytes, rx_dropped, tx_frames, tx_bytes, tx_errors;
};
void mv_virtio_net_get_stats(struct mv_virtio_net *net, struct mv_virtio_net_stats *out);

#endif
