/* Internal to mvproto_port: the port object shared by the three transports. */
#ifndef MV_PORT_INTERNAL_H
#define MV_PORT_INTERNAL_H

#include "mv/port.h"
#include "mv/util.h"

#include <stdio.h>

struct mv_port_packet;
struct mv_port_xdp;
struct mv_port_unix;

struct mv_port {
    enum mv_port_kind kind;
    int fd; /* what mv_port_fd() returns */
    int ifindex;
    unsigned mtu;
    uint8_t mac[6];
    char ifname[32];
    uint16_t ethertypes[MV_PORT_MAX_ETHERTYPES]; /* host order; software filter (UNIX) */
    unsigned n_ethertypes;
    char fallback_reason[160]; /* why XDP fell back to PACKET; "" otherwise */
    /* Counters live behind a pointer so mv_port_get_stats() (const port) can fold in the
     * kernel's clear-on-read statistics. */
    struct mv_port_stats *stats;
    struct mv_port_packet *packet;
    struct mv_port_xdp *xdp;
    struct mv_port_unix *unx;
};

/* Each transport: open fills port (kind, fd, mac, mtu, ...) or returns -errno with a reason. */
int mv_port_packet_open(struct mv_port *port, const struct mv_port_config *cfg, char *err,
                        size_t errlen);
void mv_port_packet_close(struct mv_port *port);
int mv_port_packet_recv(struct mv_port *port, struct mv_frame *frames, unsigned max);
void mv_port_packet_recv_done(struct mv_port *port);
int mv_port_packet_send(struct mv_port *port, const struct mv_frame *frames, unsigned n);
void mv_port_packet_poll_stats(const struct mv_port *port);
int mv_port_packet_rx_ready(struct mv_port *port);

/* The AF_XDP transport is weak: port_xdp.o (and with it libbpf and libxdp) is linked only into
 * programs that call mv_port_link_xdp(). Elsewhere mv_port_xdp_open is NULL and an XDP port falls
 * back to AF_PACKET, so a VMM process does not carry the BPF loader it never uses. The other
 * functions are only reached through a port that mv_port_xdp_open opened. */
#define MV_PORT_XDP_WEAK __attribute__((weak))
MV_PORT_XDP_WEAK int mv_port_xdp_open(struct mv_port *port, const struct mv_port_config *cfg,
                                      char *err, size_t errlen);
MV_PORT_XDP_WEAK void mv_port_xdp_close(struct mv_port *port);
MV_PORT_XDP_WEAK int mv_port_xdp_recv(struct mv_port *port, struct mv_frame *frames, unsigned max);
MV_PORT_XDP_WEAK void mv_port_xdp_recv_done(struct mv_port *port);
MV_PORT_XDP_WEAK int mv_port_xdp_send(struct mv_port *port, const struct mv_frame *frames,
                                      unsigned n);
MV_PORT_XDP_WEAK void mv_port_xdp_poll_stats(const struct mv_port *port);
MV_PORT_XDP_WEAK int mv_port_xdp_rx_ready(struct mv_port *port);

int mv_port_unix_open(struct mv_port *port, const struct mv_port_config *cfg, char *err,
                      size_t errlen);
void mv_port_unix_close(struct mv_port *port);
int mv_port_unix_recv(struct mv_port *port, struct mv_frame *frames, unsigned max);
void mv_port_unix_recv_done(struct mv_port *port);
int mv_port_unix_send(struct mv_port *port, const struct mv_frame *frames, unsigned n);

/* Shared helpers (port.c). */
int mv_port_if_query(struct mv_port *port, const char *ifname, char *err, size_t errlen);
bool mv_port_ethertype_wanted(const struct mv_port *port, const uint8_t *frame, size_t len);

#define mv_port_errf(err, errlen, ...)                                                             \
    do {                                                                                           \
        if ((err) && (errlen))                                                                     \
            snprintf((err), (errlen), __VA_ARGS__);                                                \
    } while (0)

#endif
