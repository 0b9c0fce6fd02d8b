/* Ports: open/close and dispatch to the transport, shared interface queries. */
#include "port_internal.h"

#include "mv/log.h"

#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

const char *mv_port_kind_name(enum mv_port_kind kind)
{
    switch (kind) {
    case MV_PORT_PACKET:
        return "packet";
    case MV_PORT_XDP:
        return "xdp";
    case MV_PORT_UNIX:
        return "unix";
    }
    return "unknown";
}

int mv_port_if_query(struct mv_port *port, const char *ifname, char *err, size_t errlen)
{
    struct ifreq ifr;
    int s, rc = 0;

    if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ) {
        mv_port_errf(err, errlen, "interface name missing or too long");
        return -EINVAL;
    }
    port->ifindex = (int)if_nametoindex(ifname);
    if (!port->ifindex) {
        rc = -errno;
        mv_port_errf(err, errlen, "interface %s: %s", ifname, strerror(errno));
        return rc;
    }
    snprintf(port->ifname, sizeof(port->ifname), "%s", ifname);
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        rc = -errno;
        mv_port_errf(err, errlen, "socket: %s", strerror(errno));
        return rc;
    }
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, ifname, strlen(ifname));
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
        rc = -errno;
        mv_port_errf(err, errlen, "%s: SIOCGIFHWADDR: %s", ifname, strerror(errno));
        goto out;
    }
    memcpy(port->mac, ifr.ifr_hwaddr.sa_data, 6);
    if (ioctl(s, SIOCGIFMTU, &ifr) < 0) {
        rc = -errno;
        mv_port_errf(err, errlen, "%s: SIOCGIFMTU: %s", ifname, strerror(errno));
        goto out;
    }
    if (ifr.ifr_mtu <= 0 || ifr.ifr_mtu > MV_ETH_MAX_FRAME - MV_ETH_HLEN) {
        rc = -EMSGSIZE;
        mv_port_errf(err, errlen, "%s: MTU %d not supported (max %d)", ifname, ifr.ifr_mtu,
                     MV_ETH_MAX_FRAME - MV_ETH_HLEN);
        goto out;
    }
    port->mtu = (unsigned)ifr.ifr_mtu;
out:
    close(s);
    return rc;
}

bool mv_port_ethertype_wanted(const struct mv_port *port, const uint8_t *frame, size_t len)
{
    uint16_t et;

    if (len < MV_ETH_HLEN)
        return false;
    if (!port->n_ethertypes)
        return true;
    et = (uint16_t)(frame[12] << 8 | frame[13]);
    for (unsigned i = 0; i < port->n_ethertypes; i++)
        if (port->ethertypes[i] == et)
            return true;
    return false;
}

static void port_free(struct mv_port *port)
{
    free(port->stats);
    free(port);
}

int mv_port_open(const struct mv_port_config *cfg, struct mv_port **out, char *err, size_t errlen)
{
    struct mv_port *port;
    char xdp_err[128] = "";
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!cfg || cfg->n_ethertypes > MV_PORT_MAX_ETHERTYPES) {
        mv_port_errf(err, errlen, "at most %d EtherTypes", MV_PORT_MAX_ETHERTYPES);
        return -EINVAL;
    }
    port = calloc(1, sizeof(*port));
    if (!port)
        return -ENOMEM;
    port->stats = calloc(1, sizeof(*port->stats));
    if (!port->stats) {
        free(port);
        return -ENOMEM;
    }
    port->fd = -1;
    port->n_ethertypes = cfg->n_ethertypes;
    memcpy(port->ethertypes, cfg->ethertypes, sizeof(port->ethertypes));

    switch (cfg->kind) {
    case MV_PORT_UNIX:
        rc = mv_port_unix_open(port, cfg, err, errlen);
        break;
    case MV_PORT_XDP:
        /* A missing interface is the caller's error, not a reason to fall back. */
        rc = mv_port_if_query(port, cfg->ifname, err, errlen);
        if (rc < 0)
            break;
        if (mv_port_xdp_open) {
            rc = mv_port_xdp_open(port, cfg, xdp_err, sizeof(xdp_err));
            if (rc == 0)
                break;
        } else {
            snprintf(xdp_err, sizeof(xdp_err), "AF_XDP is not linked into this program");
        }
        /* Any XDP failure degrades to AF_PACKET: the port still works, only slower. */
        snprintf(port->fallback_reason, sizeof(port->fallback_reason), "%s", xdp_err);
        mv_warn("port %s: AF_XDP unavailable (%s), falling back to AF_PACKET",
                cfg->ifname ? cfg->ifname : "?", xdp_err);
        /* fall through */
    case MV_PORT_PACKET:
        rc = mv_port_packet_open(port, cfg, err, errlen);
        break;
    default:
        mv_port_errf(err, errlen, "unknown port kind %d", (int)cfg->kind);
        rc = -EINVAL;
    }
    if (rc < 0) {
        port_free(port);
        return rc;
    }
    *out = port;
    return 0;
}

void mv_port_close(struct mv_port *port)
{
    if (!port)
        return;
    switch (port->kind) {
    case MV_PORT_PACKET:
        mv_port_packet_close(port);
        break;
    case MV_PORT_XDP:
        mv_port_xdp_close(port);
        break;
    case MV_PORT_UNIX:
        mv_port_unix_close(port);
        break;
    }
    port_free(port);
}

enum mv_port_kind mv_port_kind(const struct mv_port *port)
{
    return port->kind;
}

const char *mv_port_fallback_reason(const struct mv_port *port)
{
    return port->fallback_reason;
}

int mv_port_fd(const struct mv_port *port)
{
    return port->fd;
}

const uint8_t *mv_port_mac(const struct mv_port *port)
{
    return port->mac;
}

unsigned mv_port_mtu(const struct mv_port *port)
{
    return port->mtu;
}

int mv_port_ifindex(const struct mv_port *port)
{
    return port->ifindex;
}

int mv_port_recv(struct mv_port *port, struct mv_frame *frames, unsigned max)
{
    if (!max)
        return 0;
    switch (port->kind) {
    case MV_PORT_PACKET:
        return mv_port_packet_recv(port, frames, max);
    case MV_PORT_XDP:
        return mv_port_xdp_recv(port, frames, max);
    case MV_PORT_UNIX:
        return mv_port_unix_recv(port, frames, max);
    }
    return -EINVAL;
}

void mv_port_recv_done(struct mv_port *port)
{
    switch (port->kind) {
    case MV_PORT_PACKET:
        mv_port_packet_recv_done(port);
        break;
    case MV_PORT_XDP:
        mv_port_xdp_recv_done(port);
        break;
    case MV_PORT_UNIX:
        mv_port_unix_recv_done(port);
        break;
    }
}

int mv_port_rx_ready(struct mv_port *port)
{
    switch (port->kind) {
    case MV_PORT_PACKET:
        return mv_port_packet_rx_ready(port);
    case MV_PORT_XDP:
        return mv_port_xdp_rx_ready(port);
    case MV_PORT_UNIX:
        break;
    }
    return -EOPNOTSUPP;
}

int mv_port_wait(struct mv_port *port, int timeout_ms)
{
    struct pollfd pfd = {.fd = port->fd, .events = POLLIN};
    int rc;

    do {
        rc = poll(&pfd, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (rc > 0 && (pfd.revents & (POLLERR | POLLNVAL)) && !(pfd.revents & POLLIN))
        return -EIO;
    return rc > 0 ? 1 : 0;
}

int mv_port_send(struct mv_port *port, const struct mv_frame *frames, unsigned n)
{
    if (!n)
        return 0;
    switch (port->kind) {
    case MV_PORT_PACKET:
        return mv_port_packet_send(port, frames, n);
    case MV_PORT_XDP:
        return mv_port_xdp_send(port, frames, n);
    case MV_PORT_UNIX:
        return mv_port_unix_send(port, frames, n);
    }
    return -EINVAL;
}

int mv_port_send_one(struct mv_port *port, const void *frame, size_t len)
{
    struct mv_frame f = {.data = (uint8_t *)frame, .len = (uint32_t)len};

    if (len > UINT32_MAX)
        return -EMSGSIZE;
    return mv_port_send(port, &f, 1);
}

void mv_port_get_stats(const struct mv_port *port, struct mv_port_stats *out)
{
    if (port->kind == MV_PORT_PACKET)
        mv_port_packet_poll_stats(port);
    else if (port->kind == MV_PORT_XDP)
        mv_port_xdp_poll_stats(port);
    *out = *port->stats;
}
