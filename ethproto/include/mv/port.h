/* Ports: one API over the three transports raw-Ethernet traffic uses.
 *  - MV_PORT_PACKET: AF_PACKET with TPACKET_V3 RX and TX rings (the default).
 *  - MV_PORT_XDP: AF_XDP socket fed by an XDP program that redirects our EtherTypes to it and
 *    passes everything else to the kernel; falls back to MV_PORT_PACKET with a logged reason.
 *  - MV_PORT_UNIX: AF_UNIX SOCK_SEQPACKET for peers on the same host. Each message is a whole
 *    Ethernet frame, so codecs see the same bytes on every transport; a listening port behaves
 *    like a learning switch (frames go to the connection the destination MAC was last seen on,
 *    broadcast to all).
 * Frames are complete Ethernet frames (dst, src, EtherType, payload) without FCS. */
#ifndef MV_PORT_H
#define MV_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MV_ETH_HLEN        14
#define MV_ETH_ZLEN        60 /* minimum frame length without FCS */
#define MV_ETH_MAX_FRAME   (9000 + MV_ETH_HLEN)
#define MV_ETHERTYPE_AOE   0x88A2
#define MV_ETHERTYPE_CTRL  0x88B5
#define MV_ETHERTYPE_STATS 0x88B6

enum mv_port_kind { MV_PORT_PACKET, MV_PORT_XDP, MV_PORT_UNIX };

#define MV_PORT_MAX_ETHERTYPES 4

struct mv_port_config {
    enum mv_port_kind kind;
    const char *ifname;      /* PACKET, XDP: the interface */
    const char *unix_path;   /* UNIX: socket path */
    bool unix_listen;        /* UNIX: bind+listen (server) instead of connect */
    const uint8_t *unix_mac; /* UNIX: this end's MAC (6 bytes); required */
    /* EtherTypes to receive (host order); others never reach the port. 0 entries = all. */
    uint16_t ethertypes[MV_PORT_MAX_ETHERTYPES];
    unsigned n_ethertypes;
    unsigned rx_ring_bytes;  /* 0 = default (4 MiB) */
    unsigned tx_ring_frames; /* 0 = default (1024) */
    int fanout_group;        /* PACKET: >0 joins a PACKET_FANOUT_HASH group with this id */
    bool xdp_native;         /* XDP: try native (driver) mode before generic */
    unsigned xdp_queue;      /* XDP: the RX queue to bind */
    /* PACKET: a TPACKET_V3 RX ring hands frames over a block at a time, and the kernel only
     * wakes the reader when a block is retired (full, or after the 1 ms block timeout), which
     * batches well but adds up to ~1 ms per request/response. low_latency uses a per-frame
     * TPACKET_V2 ring instead (woken per frame, still drained in batches). Meant for the
     * control channel, whose acks are latency-bound even in bulk transfers (measured faster
     * both ways); high-rate receivers such as AoE keep V3. XDP and UNIX wake per frame anyway.
     * low_latency also sends a lone frame (a request, a response, an ack) with a plain send() on
     * a second socket instead of through the TX ring (cheaper for one frame; bursts keep the
     * ring, which is cheaper for them). */
    bool low_latency;
};

/* A received frame: points into the port's ring, valid until mv_port_recv_done(). */
struct mv_frame {
    uint8_t *data;
    uint32_t len;
    uint32_t conn; /* UNIX listening port: the connection it came on; else 0 */
};

struct mv_port_stats {
    uint64_t rx_frames, rx_bytes, rx_dropped; /* rx_dropped: ring full, as the kernel reports */
    uint64_t tx_frames, tx_bytes, tx_errors, tx_ring_full;
};

struct mv_port;

/* Links the AF_XDP transport (libbpf, libxdp) into the calling program; programs that may open
 * MV_PORT_XDP ports call it once before. Without it such ports fall back to AF_PACKET with the
 * reason "AF_XDP is not linked into this program". */
void mv_port_link_xdp(void);

/* Opens a port. On failure returns -errno and writes a reason into err. */
int mv_port_open(const struct mv_port_config *cfg, struct mv_port **out, char *err, size_t errlen);
void mv_port_close(struct mv_port *port);

enum mv_port_kind mv_port_kind(const struct mv_port *port); /* after any fallback */
/* Why an XDP port fell back to PACKET (also logged with mv_warn); "" when it did not. */
const char *mv_port_fallback_reason(const struct mv_port *port);
const char *mv_port_kind_name(enum mv_port_kind kind);
int mv_port_fd(const struct mv_port *port); /* poll for POLLIN before mv_port_recv() */
const uint8_t *mv_port_mac(const struct mv_port *port);
unsigned mv_port_mtu(const struct mv_port *port); /* payload bytes after the Ethernet header */
int mv_port_ifindex(const struct mv_port *port);  /* 0 for UNIX */

/* Receives up to max frames without blocking. Returns the count (0 if none) or -errno. The frames
 * stay valid until mv_port_recv_done(), which must be called before the next mv_port_recv(). */
int mv_port_recv(struct mv_port *port, struct mv_frame *frames, unsigned max);
void mv_port_recv_done(struct mv_port *port);

/* Whether mv_port_recv() has a frame now, looked up in the shared ring without a system call
 * (for a short spin before sleeping in poll): 1 yes, 0 no, -EOPNOTSUPP where only a system call
 * can tell (UNIX). */
int mv_port_rx_ready(struct mv_port *port);

/* Blocks up to timeout_ms (-1 forever) for a frame to arrive. 1 ready, 0 timeout, -errno. */
int mv_port_wait(struct mv_port *port, int timeout_ms);

/* Sends n frames (copied into the TX ring, padded to MV_ETH_ZLEN) and kicks the kernel once.
 * Returns the number accepted (fewer when the ring is full) or -errno. */
int mv_port_send(struct mv_port *port, const struct mv_frame *frames, unsigned n);
/* One frame, same convention: 1 sent, 0 ring full, -EMSGSIZE bad length, other -errno. */
int mv_port_send_one(struct mv_port *port, const void *frame, size_t len);

void mv_port_get_stats(const struct mv_port *port, struct mv_port_stats *out);

#endif
