/* AF_PACKET transport: TPACKET_V3 RX ring (or per-frame TPACKET_V2 when low_latency), a TX ring of
 * the same version kicked once per batch, a classic BPF filter on the EtherTypes, and our own
 * outgoing frames ignored. A low_latency port sends a lone frame with a plain send() on a second,
 * receive-less socket instead: the TX ring's frames reach the stack as zero-copy page fragments,
 * which a veth (or any path that delivers locally) must copy out again (skb_copy_ubufs), and the
 * kick walks the ring; for one frame the plain send measured ~15 % less CPU per request/response
 * here, while bursts stay cheaper through the ring (~15 % less CPU per MB in bulk). (The TX ring
 * socket cannot do both: with a ring, every send on it goes through the ring.) */
#include "port_internal.h"

#include "mv/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RX_BLOCK_SIZE     (128u << 10) /* V3: holds 14 jumbo frames */
#define RX_DEFAULT_BYTES  (4u << 20)
#define RX_BLOCK_TOV_MS   1
#define TX_DEFAULT_FRAMES 1024
#define TX_BLOCK_MIN      (64u << 10)
#define SNDBUF_BYTES      (4 << 20)
#define MMSG_BATCH        64 /* frames per sendmmsg() call */
#define SINGLE_SEND_MAX   1  /* low_latency: bursts up to this size bypass the TX ring */
/* V2 (low_latency): slots are packed into blocks of this size, and there are at least
 * RX_V2_MIN_FRAMES of them whatever the byte budget. The control channel lets a peer have 256
 * frames (its default window) in flight, and a receiver holds up to a batch more until it releases
 * them; a ring of 256 jumbo slots (what 4 MiB made at MTU 9000) overflowed in bulk transfers,
 * and every overflow cost a loss recovery. */
#define RX_V2_BLOCK_SIZE (128u << 10)
#define RX_V2_MIN_FRAMES 1024u

struct mv_port_packet {
    bool v3;
    uint8_t *map;
    size_t map_len;
    /* RX. V3: units are blocks; V2: units are frame slots. */
    uint8_t *rx_ring;
    unsigned rx_unit_size, rx_unit_nr;
    /* V2: slots are packed rx_per_block to a block */
    unsigned rx_block_size, rx_per_block;
    unsigned rx_cur;       /* unit being read (V3) / next slot to read (V2) */
    unsigned rx_release;   /* first unit not yet handed back to the kernel */
    unsigned rx_done;      /* units fully consumed, waiting for recv_done */
    bool rx_block_open;    /* V3: rx_cur's packets are being walked */
    unsigned rx_pkts_left; /* V3: packets not yet returned in the open block */
    uint32_t rx_next_off;  /* V3: offset of the next packet in the open block */
    /* TX */
    int tx_single_fd; /* low_latency: socket for lone frames (no ring, receives nothing); or -1 */
    uint8_t *tx_ring;
    unsigned tx_frame_size, tx_frame_nr, tx_frames_per_block, tx_block_size;
    unsigned tx_head;
    unsigned tx_data_off;
    bool tx_kick_pending; /* the last kick could not take every frame (socket buffer full) */
};

static unsigned next_pow2(unsigned v)
{
    unsigned p = 1;

    while (p < v)
        p <<= 1;
    return p;
}

/* Only the configured EtherTypes pass: "ldh [12]; jeq #t, accept; ...; ret #0". */
static int packet_attach_filter(int fd, const struct mv_port_config *cfg)
{
    struct sock_filter code[2 + 2 * MV_PORT_MAX_ETHERTYPES];
    struct sock_fprog prog;
    unsigned n = cfg->n_ethertypes, k = 0;

    if (!n)
        return 0;
    code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12);
    for (unsigned i = 0; i < n; i++) {
        /* jt skips to the accept at the end: the remaining (n-1-i) jeqs and the reject. */
        code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, cfg->ethertypes[i],
                                                 (uint8_t)(n - 1 - i + 1), 0);
    }
    code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
    code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
    prog.len = (unsigned short)k;
    prog.filter = code;
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
        return -errno;
    return 0;
}

static int packet_setup_rings(struct mv_port *port, struct mv_port_packet *pk,
                              const struct mv_port_config *cfg, char *err, size_t errlen)
{
    unsigned rx_bytes = cfg->rx_ring_bytes ? cfg->rx_ring_bytes : RX_DEFAULT_BYTES;
    unsigned tx_frames = cfg->tx_ring_frames ? cfg->tx_ring_frames : TX_DEFAULT_FRAMES;
    unsigned hdrlen = pk->v3 ? TPACKET3_HDRLEN : TPACKET2_HDRLEN;
    unsigned max_frame = MV_ETH_HLEN + port->mtu + 4; /* room for one VLAN tag */
    int version = pk->v3 ? TPACKET_V3 : TPACKET_V2;
    struct tpacket_req3 rx, tx;
    size_t rx_len, tx_len;

    if (setsockopt(port->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0) {
        mv_port_errf(err, errlen, "PACKET_VERSION: %s", strerror(errno));
        return -errno;
    }

    memset(&rx, 0, sizeof(rx));
    if (pk->v3) {
        rx.tp_block_size = RX_BLOCK_SIZE;
        rx.tp_block_nr = MV_MAX(rx_bytes / RX_BLOCK_SIZE, 4u);
        rx.tp_frame_size = 2048; /* V3 packs frames; this only sizes tp_frame_nr */
        rx.tp_frame_nr = rx.tp_block_nr * (RX_BLOCK_SIZE / rx.tp_frame_size);
        rx.tp_retire_blk_tov = RX_BLOCK_TOV_MS;
        pk->rx_unit_size = rx.tp_block_size;
        pk->rx_unit_nr = rx.tp_block_nr;
    } else {
        /* V2 slots: header, sockaddr_ll and the frame must fit; blocks hold whole slots. */
        unsigned slot = TPACKET_ALIGN(TPACKET_ALIGN(hdrlen) + 16 + max_frame);
        unsigned per_block, blocks;
        rx.tp_frame_size = slot;
        rx.tp_block_size = MV_MAX(RX_V2_BLOCK_SIZE, next_pow2(slot));
        per_block = rx.tp_block_size / slot;
        blocks = MV_MAX(rx_bytes / slot, RX_V2_MIN_FRAMES);
        blocks = (blocks + per_block - 1) / per_block;
        rx.tp_block_nr = blocks;
        rx.tp_frame_nr = blocks * per_block;
        pk->rx_unit_size = slot;
        pk->rx_unit_nr = rx.tp_frame_nr;
        pk->rx_block_size = rx.tp_block_size;
        pk->rx_per_block = per_block;
    }
    if (setsockopt(port->fd, SOL_PACKET, PACKET_RX_RING, &rx,
                   pk->v3 ? sizeof(rx) : sizeof(struct tpacket_req)) < 0) {
        mv_port_errf(err, errlen, "PACKET_RX_RING: %s", strerror(errno));
        return -errno;
    }

    memset(&tx, 0, sizeof(tx));
    pk->tx_data_off = hdrlen - (unsigned)sizeof(struct sockaddr_ll);
    pk->tx_frame_size = TPACKET_ALIGN(pk->tx_data_off + max_frame);
    pk->tx_block_size = MV_MAX(TX_BLOCK_MIN, next_pow2(pk->tx_frame_size));
    pk->tx_frames_per_block = pk->tx_block_size / pk->tx_frame_size;
    tx.tp_block_size = pk->tx_block_size;
    tx.tp_block_nr = (tx_frames + pk->tx_frames_per_block - 1) / pk->tx_frames_per_block;
    tx.tp_frame_size = pk->tx_frame_size;
    tx.tp_frame_nr = tx.tp_block_nr * pk->tx_frames_per_block;
    pk->tx_frame_nr = tx.tp_frame_nr;
    if (setsockopt(port->fd, SOL_PACKET, PACKET_TX_RING, &tx,
                   pk->v3 ? sizeof(tx) : sizeof(struct tpacket_req)) < 0) {
        mv_port_errf(err, errlen, "PACKET_TX_RING: %s", strerror(errno));
        return -errno;
    }

    rx_len = (size_t)rx.tp_block_size * rx.tp_block_nr;
    tx_len = (size_t)tx.tp_block_size * tx.tp_block_nr;
    pk->map_len = rx_len + tx_len;
    pk->map =
        mmap(NULL, pk->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, port->fd, 0);
    if (pk->map == MAP_FAILED) {
        pk->map = NULL;
        mv_port_errf(err, errlen, "mmap of %zu ring bytes: %s", pk->map_len, strerror(errno));
        return -errno;
    }
    pk->rx_ring = pk->map;
    pk->tx_ring = pk->map + rx_len;
    return 0;
}

/* The low_latency port's socket for lone frames: bound to the interface with protocol 0, so the
 * kernel never queues a received frame on it. */
static int packet_open_single_tx(struct mv_port *port, struct mv_port_packet *pk, char *err,
                                 size_t errlen)
{
    struct sockaddr_ll sll;
    int sndbuf = SNDBUF_BYTES;

    pk->tx_single_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (pk->tx_single_fd < 0) {
        mv_port_errf(err, errlen, "AF_PACKET socket: %s", strerror(errno));
        return -errno;
    }
    if (setsockopt(pk->tx_single_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
        (void)setsockopt(pk->tx_single_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;
    sll.sll_ifindex = port->ifindex;
    if (bind(pk->tx_single_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        mv_port_errf(err, errlen, "bind to %s: %s", port->ifname, strerror(errno));
        return -errno;
    }
    return 0;
}

int mv_port_packet_open(struct mv_port *port, const struct mv_port_config *cfg, char *err,
                        size_t errlen)
{
    struct mv_port_packet *pk;
    struct sockaddr_ll sll;
    int one = 1, sndbuf = SNDBUF_BYTES, rc;

    port->kind = MV_PORT_PACKET;
    rc = mv_port_if_query(port, cfg->ifname, err, errlen);
    if (rc < 0)
        return rc;
    pk = calloc(1, sizeof(*pk));
    if (!pk)
        return -ENOMEM;
    port->packet = pk;
    pk->v3 = !cfg->low_latency;
    pk->tx_single_fd = -1;

    /* Protocol 0: nothing is queued before the filter and rings exist; bind() starts it. */
    port->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (port->fd < 0) {
        rc = -errno;
        mv_port_errf(err, errlen, "AF_PACKET socket: %s", strerror(errno));
        goto fail;
    }
    rc = packet_attach_filter(port->fd, cfg);
    if (rc < 0) {
        mv_port_errf(err, errlen, "SO_ATTACH_FILTER: %s", strerror(-rc));
        goto fail;
    }
    if (setsockopt(port->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
        rc = -errno;
        mv_port_errf(err, errlen, "PACKET_IGNORE_OUTGOING: %s", strerror(errno));
        goto fail;
    }
    /* Best effort: a larger send buffer lets a whole TX ring be in flight on real NICs. */
    if (setsockopt(port->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
        (void)setsockopt(port->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    rc = packet_setup_rings(port, pk, cfg, err, errlen);
    if (rc < 0)
        goto fail;

    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = port->ifindex;
    if (bind(port->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        rc = -errno;
        mv_port_errf(err, errlen, "bind to %s: %s", port->ifname, strerror(errno));
        goto fail;
    }
    if (cfg->fanout_group > 0) {
        int fanout = (cfg->fanout_group & 0xffff) | (PACKET_FANOUT_HASH << 16);
        if (setsockopt(port->fd, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof(fanout)) < 0) {
            rc = -errno;
            mv_port_errf(err, errlen, "PACKET_FANOUT group %d: %s", cfg->fanout_group,
                         strerror(errno));
            goto fail;
        }
    }
    if (cfg->low_latency) {
        rc = packet_open_single_tx(port, pk, err, errlen);
        if (rc < 0)
            goto fail;
    }
    mv_debug("port %s: AF_PACKET %s ring, mtu %u", port->ifname, pk->v3 ? "V3" : "V2", port->mtu);
    return 0;
fail:
    mv_port_packet_close(port);
    return rc;
}

void mv_port_packet_close(struct mv_port *port)
{
    struct mv_port_packet *pk = port->packet;

    if (pk && pk->map)
        munmap(pk->map, pk->map_len);
    if (pk && pk->tx_single_fd >= 0)
        close(pk->tx_single_fd);
    if (port->fd >= 0)
        close(port->fd);
    port->fd = -1;
    free(pk);
    port->packet = NULL;
}

static void packet_kick(struct mv_port *port)
{
    struct mv_port_packet *pk = port->packet;

    if (sendto(port->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
        if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
            pk->tx_kick_pending = true;
            return;
        }
        port->stats->tx_errors++;
    }
    pk->tx_kick_pending = false;
}

static uint8_t *rx_unit(const struct mv_port_packet *pk, unsigned i)
{
    if (pk->v3)
        return pk->rx_ring + (size_t)i * pk->rx_unit_size;
    return pk->rx_ring + (size_t)(i / pk->rx_per_block) * pk->rx_block_size +
           (size_t)(i % pk->rx_per_block) * pk->rx_unit_size;
}

static int packet_recv_v2(struct mv_port *port, struct mv_frame *frames, unsigned max)
{
    struct mv_port_packet *pk = port->packet;
    unsigned n = 0;

    while (n < max && pk->rx_done < pk->rx_unit_nr) {
        struct tpacket2_hdr *h = (struct tpacket2_hdr *)rx_unit(pk, pk->rx_cur);
        uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);

        if (!(status & TP_STATUS_USER))
            break;
        pk->rx_cur = (pk->rx_cur + 1) % pk->rx_unit_nr;
        pk->rx_done++;
        if ((size_t)h->tp_mac + h->tp_snaplen > pk->rx_unit_size || h->tp_snaplen < h->tp_len ||
            h->tp_snaplen < MV_ETH_HLEN) {
            port->stats->rx_dropped++; /* truncated or malformed slot */
            continue;
        }
        frames[n].data = (uint8_t *)h + h->tp_mac;
        frames[n].len = h->tp_snaplen;
        frames[n].conn = 0;
        port->stats->rx_bytes += h->tp_snaplen;
        n++;
    }
    port->stats->rx_frames += n;
    return (int)n;
}

static int packet_recv_v3(struct mv_port *port, struct mv_frame *frames, unsigned max)
{
    struct mv_port_packet *pk = port->packet;
    unsigned n = 0;

    while (n < max) {
        struct tpacket_block_desc *bd = (struct tpacket_block_desc *)rx_unit(pk, pk->rx_cur);
        struct tpacket3_hdr *h;

        if (!pk->rx_block_open) {
            uint32_t status = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);

            if (!(status & TP_STATUS_USER) || pk->rx_done >= pk->rx_unit_nr)
                break;
            pk->rx_block_open = true;
            pk->rx_pkts_left = bd->hdr.bh1.num_pkts;
            pk->rx_next_off = bd->hdr.bh1.offset_to_first_pkt;
        }
        if (!pk->rx_pkts_left) {
            pk->rx_block_open = false;
            pk->rx_cur = (pk->rx_cur + 1) % pk->rx_unit_nr;
            pk->rx_done++;
            continue;
        }
        if (pk->rx_next_off + sizeof(*h) > pk->rx_unit_size) {
            pk->rx_pkts_left = 0; /* corrupt chain: abandon the rest of the block */
            port->stats->rx_dropped++;
            continue;
        }
        h = (struct tpacket3_hdr *)((uint8_t *)bd + pk->rx_next_off);
        pk->rx_pkts_left--;
        pk->rx_next_off += h->tp_next_offset;
        if (pk->rx_pkts_left && !h->tp_next_offset)
            pk->rx_pkts_left = 0;
        if ((size_t)((uint8_t *)h - (uint8_t *)bd) + h->tp_mac + h->tp_snaplen > pk->rx_unit_size ||
            h->tp_snaplen < h->tp_len || h->tp_snaplen < MV_ETH_HLEN) {
            port->stats->rx_dropped++;
            continue;
        }
        frames[n].data = (uint8_t *)h + h->tp_mac;
        frames[n].len = h->tp_snaplen;
        frames[n].conn = 0;
        port->stats->rx_bytes += h->tp_snaplen;
        n++;
    }
    port->stats->rx_frames += n;
    return (int)n;
}

int mv_port_packet_recv(struct mv_port *port, struct mv_frame *frames, unsigned max)
{
    struct mv_port_packet *pk = port->packet;

    if (pk->tx_kick_pending)
        packet_kick(port);
    /* Callers must release before receiving again; doing it here keeps the ring moving. */
    if (pk->rx_done)
        mv_port_packet_recv_done(port);
    return pk->v3 ? packet_recv_v3(port, frames, max) : packet_recv_v2(port, frames, max);
}

void mv_port_packet_recv_done(struct mv_port *port)
{
    struct mv_port_packet *pk = port->packet;

    for (; pk->rx_done; pk->rx_done--) {
        uint8_t *u = rx_unit(pk, pk->rx_release);

        if (pk->v3)
            __atomic_store_n(&((struct tpacket_block_desc *)u)->hdr.bh1.block_status,
                             TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        else
            __atomic_store_n(&((struct tpacket2_hdr *)u)->tp_status, TP_STATUS_KERNEL,
                             __ATOMIC_RELEASE);
        pk->rx_release = (pk->rx_release + 1) % pk->rx_unit_nr;
    }
}

static uint8_t *tx_frame(const struct mv_port_packet *pk, unsigned i)
{
    return pk->tx_ring + (size_t)(i / pk->tx_frames_per_block) * pk->tx_block_size +
           (size_t)(i % pk->tx_frames_per_block) * pk->tx_frame_size;
}

/* Output without the TX ring: sendmmsg() straight from the caller's frames on fd, short ones
 * padded with a second iovec of zeros. Same convention as mv_port_send(). */
static int packet_send_copy(struct mv_port *port, int fd, const struct mv_frame *frames, unsigned n)
{
    static const uint8_t zeros[MV_ETH_ZLEN];
    struct mmsghdr msgs[MMSG_BATCH];
    struct iovec iov[MMSG_BATCH][2];
    unsigned done = 0;

    while (done < n) {
        unsigned k = 0;
        int rc;

        for (; k < MMSG_BATCH && done + k < n; k++) {
            const struct mv_frame *f = &frames[done + k];

            if (f->len < MV_ETH_HLEN || f->len > MV_ETH_HLEN + port->mtu)
                break;
            iov[k][0] = (struct iovec){.iov_base = f->data, .iov_len = f->len};
            iov[k][1] = (struct iovec){.iov_base = (void *)zeros,
                                       .iov_len = f->len < MV_ETH_ZLEN ? MV_ETH_ZLEN - f->len : 0};
            msgs[k] = (struct mmsghdr){.msg_hdr = {.msg_iov = iov[k], .msg_iovlen = 2}};
        }
        if (!k)
            return done ? (int)done : -EMSGSIZE;
        rc = sendmmsg(fd, msgs, k, MSG_DONTWAIT);
        if (rc < 0) {
            if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
                port->stats->tx_ring_full++;
                break;
            }
            if (!done) {
                port->stats->tx_errors++;
                return -errno;
            }
            break;
        }
        for (int i = 0; i < rc; i++) {
            port->stats->tx_frames++;
            port->stats->tx_bytes += MV_MAX(frames[done + i].len, (uint32_t)MV_ETH_ZLEN);
        }
        done += (unsigned)rc;
        if ((unsigned)rc < k) {
            if (done < n && frames[done].len >= MV_ETH_HLEN &&
                frames[done].len <= MV_ETH_HLEN + port->mtu)
                port->stats->tx_ring_full++; /* the kernel stopped early: buffer full */
            break;
        }
    }
    return (int)done;
}

int mv_port_packet_send(struct mv_port *port, const struct mv_frame *frames, unsigned n)
{
    struct mv_port_packet *pk = port->packet;
    unsigned i;

    if (pk->tx_single_fd >= 0 && n <= SINGLE_SEND_MAX) {
        if (pk->tx_kick_pending)
            packet_kick(port); /* what the ring holds leaves first */
        return packet_send_copy(port, pk->tx_single_fd, frames, n);
    }

    for (i = 0; i < n; i++) {
        uint8_t *slot = tx_frame(pk, pk->tx_head);
        uint32_t len = frames[i].len;
        uint32_t *status = pk->v3 ? &((struct tpacket3_hdr *)slot)->tp_status
                                  : &((struct tpacket2_hdr *)slot)->tp_status;
        uint32_t st = __atomic_load_n(status, __ATOMIC_ACQUIRE);

        if (len < MV_ETH_HLEN || len > MV_ETH_HLEN + port->mtu) {
            if (i == 0)
                return -EMSGSIZE;
            break;
        }
        if (st == TP_STATUS_WRONG_FORMAT)
            port->stats->tx_errors++; /* the kernel refused this slot earlier; reuse it */
        else if (st != TP_STATUS_AVAILABLE) {
            port->stats->tx_ring_full++;
            break;
        }
        memcpy(slot + pk->tx_data_off, frames[i].data, len);
        if (len < MV_ETH_ZLEN) {
            memset(slot + pk->tx_data_off + len, 0, MV_ETH_ZLEN - len);
            len = MV_ETH_ZLEN;
        }
        if (pk->v3) {
            struct tpacket3_hdr *h = (struct tpacket3_hdr *)slot;
            h->tp_len = len;
            h->tp_snaplen = len;
            h->tp_next_offset = 0;
        } else {
            struct tpacket2_hdr *h = (struct tpacket2_hdr *)slot;
            h->tp_len = len;
            h->tp_snaplen = len;
        }
        __atomic_store_n(status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        pk->tx_head = (pk->tx_head + 1) % pk->tx_frame_nr;
        port->stats->tx_frames++;
        port->stats->tx_bytes += len;
    }
    if (i || pk->tx_kick_pending)
        packet_kick(port);
    return (int)i;
}

void mv_port_packet_poll_stats(const struct mv_port *port)
{
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof(st);

    memset(&st, 0, sizeof(st));
    /* Clear-on-read: fold into our counters. */
    if (getsockopt(port->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
        port->stats->rx_dropped += st.tp_drops;
}

int mv_port_packet_rx_ready(struct mv_port *port)
{
    const struct mv_port_packet *pk = port->packet;
    const uint8_t *u;
    uint32_t status;

    if (pk->v3 && pk->rx_block_open)
        return 1; /* the open block's rest, or its release, is still to be walked */
    if (pk->rx_done >= pk->rx_unit_nr)
        return 1; /* everything handed out: recv releases and looks again */
    u = rx_unit(pk, pk->rx_cur);
    status = pk->v3
                 ? __atomic_load_n(&((const struct tpacket_block_desc *)u)->hdr.bh1.block_status,
                                   __ATOMIC_ACQUIRE)
                 : __atomic_load_n(&((const struct tpacket2_hdr *)u)->tp_status, __ATOMIC_ACQUIRE);
    return (status & TP_STATUS_USER) ? 1 : 0;
}
