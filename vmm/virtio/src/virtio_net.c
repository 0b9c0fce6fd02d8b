/* virtio-net device model on a TAP. The TAP carries the 12-byte virtio_net_hdr itself
 * (IFF_VNET_HDR + TUNSETVNETHDRSZ), so frames move between guest buffers and the TAP with one
 * readv/writev each, no copy. RX is driven by the TAP fd (watched only while the guest has
 * posted receive buffers, so an empty ring never spins), TX by queue kicks. */
#include "mv/virtio_net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "mv/log.h"
#include "mv/util.h"

#define NET_RXQ         0
#define NET_TXQ         1
#define NET_CONFIG_SIZE 8u /* mac[6], status */
#define NET_DEFAULT_QSZ 256u
#define NET_RX_BATCH    64 /* frames per wakeup before interrupting and yielding */

struct mv_virtio_net {
    struct mv_virtio_device device;
    struct mv_virtio_mmio *dev;
    int tap_fd;
    char tap_name[IFNAMSIZ];
    uint8_t config[NET_CONFIG_SIZE];
    bool rx_watching;
    struct mv_virtq_chain chain;
    struct mv_virtio_net_stats stats;
};

int mv_tap_open(const char *name, char *name_out, size_t name_out_len)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (name != NULL && *name != '\0') {
        if (strlen(name) >= IFNAMSIZ) {
            close(fd);
            return -ENAMETOOLONG;
        }
        memcpy(ifr.ifr_name, name, strlen(name) + 1);
    }
    int hdr = MV_VIRTIO_NET_HDR_LEN;
    if (ioctl(fd, TUNSETIFF, &ifr) != 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (name_out != NULL && name_out_len > 0)
        snprintf(name_out, name_out_len, "%s", ifr.ifr_name);
    return fd;
}

static void net_stat_add(uint64_t *counter, uint64_t v)
{
    __atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

static void net_tap_readable(void *ctx);

static void net_rx_watch(struct mv_virtio_net *net, bool on)
{
    if (on == net->rx_watching || net->dev == NULL)
        return;
    if (on) {
        if (mv_virtio_mmio_watch_fd(net->dev, net->tap_fd, net_tap_readable, net) != 0) {
            mv_warn("virtio-net: cannot watch %s", net->tap_name);
            return;
        }
    } else {
        mv_virtio_mmio_unwatch_fd(net->dev, net->tap_fd);
    }
    net->rx_watching = on;
}

/* Moves frames from the TAP into posted RX buffers. */
static void net_rx(struct mv_virtio_net *net)
{
    struct mv_virtq *vq = mv_virtio_mmio_queue(net->dev, NET_RXQ);
    if (vq == NULL)
        return;
    int frames = 0;
    while (frames < NET_RX_BATCH) {
        int rc = mv_virtq_pop(vq, &net->chain);
        if (rc == 0) {
            /* ring empty: ask for a kick, re-check (the guest may have just posted), else stop
             * reading the TAP until the RX kick */
            if (mv_virtq_enable_notify(vq))
                continue;
            net_rx_watch(net, false);
            break;
        }
        if (rc < 0) {
            net_rx_watch(net, false);
            break;
        }
        const struct mv_virtq_chain *c = &net->chain;
        if (c->n_out != 0 || c->in_bytes < MV_VIRTIO_NET_HDR_LEN) {
            /* a receive buffer must be device-writable and hold the header */
            net_rx_watch(net, false);
            mv_virtio_mmio_set_needs_reset(net->dev, "malformed RX buffer");
            return;
        }
        ssize_t n = readv(net->tap_fd, c->iov, c->n_in);
        if (n < 0) {
            mv_virtq_unpop(vq);
            if (errno != EAGAIN && errno != EINTR)
                mv_warn("virtio-net: read %s: %s", net->tap_name, strerror(errno));
            net_rx_watch(net, true);
            break;
        }
        if ((size_t)n < MV_VIRTIO_NET_HDR_LEN) {
            mv_virtq_unpop(vq);
            net_stat_add(&net->stats.rx_dropped, 1);
            continue;
        }
        uint16_t one = 1; /* num_buffers: always one buffer without MRG_RXBUF */
        mv_virtq_chain_copy_in(c, 10, &one, sizeof(one));
        mv_virtq_push(vq, c->head, (uint32_t)n);
        net_stat_add(&net->stats.rx_frames, 1);
        net_stat_add(&net->stats.rx_bytes, (uint64_t)n - MV_VIRTIO_NET_HDR_LEN);
        frames++;
    }
    if (frames > 0)
        mv_virtio_mmio_notify_used(net->dev, NET_RXQ);
}

static void net_tap_readable(void *ctx)
{
    net_rx(ctx);
}

/* Sends every chain on the TX queue to the TAP. */
static void net_tx(struct mv_virtio_net *net)
{
    struct mv_virtq *vq = mv_virtio_mmio_queue(net->dev, NET_TXQ);
    if (vq == NULL)
        return;
    bool pushed = false;
    for (;;) {
        mv_virtq_disable_notify(vq);
        int rc;
        while ((rc = mv_virtq_pop(vq, &net->chain)) == 1) {
            const struct mv_virtq_chain *c = &net->chain;
            if (c->out_bytes < MV_VIRTIO_NET_HDR_LEN || c->n_in != 0) {
                net_stat_add(&net->stats.tx_errors, 1);
            } else {
                ssize_t n = writev(net->tap_fd, c->iov, c->n_out);
                if (n < 0) {
                    net_stat_add(&net->stats.tx_errors, 1);
                } else {
                    net_stat_add(&net->stats.tx_frames, 1);
                    net_stat_add(&net->stats.tx_bytes, c->out_bytes - MV_VIRTIO_NET_HDR_LEN);
                }
            }
            mv_virtq_push(vq, c->head, 0);
            pushed = true;
        }
        if (rc < 0 || !mv_virtq_enable_notify(vq))
            break;
    }
    if (pushed)
        mv_virtio_mmio_notify_used(net->dev, NET_TXQ);
}

static int net_attach(void *ctx, struct mv_virtio_mmio *dev)
{
    ((struct mv_virtio_net *)ctx)->dev = dev;
    return 0;
}

static int net_activate(void *ctx)
{
    net_rx_watch(ctx, true);
    return 0;
}

static void net_reset(void *ctx)
{
    net_rx_watch(ctx, false);
}

static void net_queue_notify(void *ctx, uint16_t q)
{
    struct mv_virtio_net *net = ctx;
    if (q == NET_RXQ) {
        net_rx_watch(net, true); /* new buffers: read the TAP again */
        net_rx(net);
    } else if (q == NET_TXQ) {
        net_tx(net);
    }
}

static void net_config_read(void *ctx, uint32_t offset, void *data, uint32_t len)
{
    struct mv_virtio_net *net = ctx;
    memcpy(data, net->config + offset, len);
}

static void net_config_write(void *ctx, uint32_t offset, const void *data, uint32_t len)
{
    /* the MAC is not writable: VIRTIO_NET_F_CTRL_MAC_ADDR is not offered */
}

static const struct mv_virtio_device_ops net_ops = {
    .attach = net_attach,
    .config_read = net_config_read,
    .config_write = net_config_write,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
};

struct mv_virtio_net *mv_virtio_net_create(const struct mv_virtio_net_params *p)
{
    uint16_t qsz = p->queue_size ? p->queue_size : NET_DEFAULT_QSZ;
    if (qsz > MV_VIRTQ_MAX_SIZE || (qsz & (qsz - 1)) != 0) {
        mv_err("virtio-net: queue size %u not a power of two <= %u", qsz, MV_VIRTQ_MAX_SIZE);
        return NULL;
    }
    struct mv_virtio_net *net = calloc(1, sizeof(*net));
    if (net == NULL)
        return NULL;
    if (p->tap_fd >= 0) {
        net->tap_fd = p->tap_fd;
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        if (ioctl(p->tap_fd, TUNGETIFF, &ifr) == 0)
            snprintf(net->tap_name, sizeof(net->tap_name), "%s", ifr.ifr_name);
    } else {
        net->tap_fd = mv_tap_open(p->tap_name, net->tap_name, sizeof(net->tap_name));
        if (net->tap_fd < 0) {
            mv_err("virtio-net: TAP %s: %s", p->tap_name ? p->tap_name : "(new)",
                   strerror(-net->tap_fd));
            free(net);
            return NULL;
        }
    }
    if (p->mac_set) {
        memcpy(net->config, p->mac, 6);
    } else {
        if (getrandom(net->config, 6, 0) != 6)
            memcpy(net->config, (uint8_t[]){0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, 6);
        net->config[0] = (uint8_t)((net->config[0] & 0xfe) | 0x02); /* unicast, local */
    }
    uint16_t status = MV_VIRTIO_NET_S_LINK_UP;
    memcpy(net->config + 6, &status, 2);
    net->device = (struct mv_virtio_device){
        .device_id = MV_VIRTIO_ID_NET,
        .features = MV_VIRTIO_NET_F_MAC | MV_VIRTIO_NET_F_STATUS | MV_VIRTIO_F_INDIRECT_DESC |
                    MV_VIRTIO_F_EVENT_IDX,
        .config_size = NET_CONFIG_SIZE,
        .num_queues = 2,
        .queue_max = qsz,
        .ops = &net_ops,
        .ctx = net,
    };
    return net;
}

const struct mv_virtio_device *mv_virtio_net_device(struct mv_virtio_net *net)
{
    return &net->device;
}

const char *mv_virtio_net_tap_name(const struct mv_virtio_net *net)
{
    return net->tap_name;
}

void mv_virtio_net_get_mac(const struct mv_virtio_net *net, uint8_t mac[6])
{
    memcpy(mac, net->config, 6);
}

void mv_virtio_net_set_link(struct mv_virtio_net *net, bool up)
{
    uint16_t status = up ? MV_VIRTIO_NET_S_LINK_UP : 0;
    memcpy(net->config + 6, &status, 2);
    if (net->dev != NULL)
        mv_virtio_mmio_config_changed(net->dev);
}

void mv_virtio_net_destroy(struct mv_virtio_net *net)
{
    if (net == NULL)
        return;
    if (net->tap_fd >= 0)
        close(net->tap_fd);
    free(net);
}

struct mv_virtio_net *mv_virtio_net_create_from_spec(const char *spec)
{
    char buf[256];
    if (spec == NULL || strlen(spec) >= sizeof(buf)) {
        mv_err("virtio-net: net spec missing or too long");
        return NULL;
    }
    strcpy(buf, spec);
    struct mv_virtio_net_params p = {.tap_fd = -1};
    char *save = NULL;
    for (char *opt = strtok_r(buf, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
        if (strncmp(opt, "tap=", 4) == 0) {
            p.tap_name = opt + 4;
        } else if (strncmp(opt, "mac=", 4) == 0) {
            if (mv_mac_parse(opt + 4, p.mac) != 0) {
                mv_err("virtio-net: net spec '%s': bad MAC '%s'", spec, opt + 4);
                return NULL;
            }
            p.mac_set = true;
        } else {
            mv_err("virtio-net: net spec '%s': unknown option '%s' (tap=, mac=)", spec, opt);
            return NULL;
        }
    }
    return mv_virtio_net_create(&p);
}

void mv_virtio_net_get_stats(struct mv_virtio_net *net, struct mv_virtio_net_stats *out)
{
    out->rx_frames = __atomic_load_n(&net->stats.rx_frames, __ATOMIC_RELAXED);
    out->rx_bytes = __atomic_load_n(&net->stats.rx_bytes, __ATOMIC_RELAXED);
    out->rx_dropped = __atomic_load_n(&net->stats.rx_dropped, __ATOMIC_RELAXED);
    out->tx_frames = __atomic_load_n(&net->stats.tx_frames, __ATOMIC_RELAXED);
    out->tx_bytes = __atomic_load_n(&net->stats.tx_bytes, __ATOMIC_RELAXED);
    out->tx_errors = __atomic_load_n(&net->stats.tx_errors, __ATOMIC_RELAXED);
}
