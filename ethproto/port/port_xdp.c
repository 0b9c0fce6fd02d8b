/* AF_XDP transport: our XDP program (xdp_steer.bpf.c, embedded) redirects the configured
 * EtherTypes into an AF_XDP socket in copy mode; other traffic goes on to the kernel. The UMEM's
 * first half feeds the RX fill ring, the second half is the TX frame pool. Jumbo frames span
 * several UMEM chunks (XDP_USE_SG) and are reassembled into a side buffer on receive. */
#include "port_internal.h"

#include "mv/log.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

/* Newer than the system's kernel headers (6.1): multi-buffer AF_XDP, kernel 6.6+. */
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

#define XSK_FRAME_SIZE  XSK_UMEM__DEFAULT_FRAME_SIZE
#define XSK_RING_SIZE   2048u
#define XSK_RX_FRAMES   XSK_RING_SIZE
#define XSK_TX_FRAMES   XSK_RING_SIZE
#define XSK_NUM_FRAMES  (XSK_RX_FRAMES + XSK_TX_FRAMES)
#define XSK_RX_BATCH    256u /* descriptors looked at per recv */
#define XSK_REASM_SLOTS 16u  /* multi-chunk frames returned per recv */
#define XSK_KICK_TRIES  256  /* copy-mode TX sends 32 frames per kick */

extern const uint8_t mv_xdp_steer_obj[];
extern const uint8_t mv_xdp_steer_obj_end[];

struct mv_port_xdp {
    struct bpf_object *obj;
    int prog_fd;
    uint32_t prog_id;
    uint32_t attach_flags; /* XDP_FLAGS_*_MODE actually used */
    bool attached;
    void *umem_area;
    size_t umem_len;
    struct xsk_umem *umem;
    struct xsk_socket *xsk;
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp;
    struct xsk_ring_cons rx;
    struct xsk_ring_prod tx;
    bool sg;
    /* RX descriptors handed to the caller, recycled into the fill ring by recv_done. */
    uint64_t held_addr[XSK_RX_BATCH];
    unsigned held;
    uint8_t *reasm; /* XSK_REASM_SLOTS * MV_ETH_MAX_FRAME */
    /* TX chunks not in flight. */
    uint64_t tx_free[XSK_TX_FRAMES];
    unsigned tx_free_n;
    bool tx_kick_pending;
    uint64_t sw_dropped;
};

/* The format comes from libbpf itself: tell the compiler it is a printf format. */
__attribute__((format(printf, 2, 0))) static int libbpf_log_to_debug(enum libbpf_print_level level,
                                                                     const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;

    if (level == LIBBPF_DEBUG)
        return 0;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    mv_debug("libbpf: %s", buf);
    return 0;
}

static int xdp_load_and_attach(struct mv_port *port, struct mv_port_xdp *x,
                               const struct mv_port_config *cfg, char *err, size_t errlen)
{
    struct bpf_program *prog;
    struct bpf_map *et_map;
    struct bpf_prog_info info;
    uint32_t info_len = sizeof(info);
    uint8_t one = 1;
    int rc;

    libbpf_set_print(libbpf_log_to_debug);
    x->obj = bpf_object__open_mem(mv_xdp_steer_obj,
                                  (size_t)(mv_xdp_steer_obj_end - mv_xdp_steer_obj), NULL);
    if (!x->obj) {
        rc = -errno;
        x->obj = NULL;
        mv_port_errf(err, errlen, "opening the XDP object: %s", strerror(-rc));
        return rc;
    }
    rc = bpf_object__load(x->obj);
    if (rc < 0) {
        mv_port_errf(err, errlen, "loading the XDP program: %s", strerror(-rc));
        return rc;
    }
    prog = bpf_object__find_program_by_name(x->obj, "mv_xdp_steer");
    et_map = bpf_object__find_map_by_name(x->obj, "mv_ethertypes");
    if (!prog || !et_map) {
        mv_port_errf(err, errlen, "XDP object lacks its program or maps");
        return -ENOENT;
    }
    x->prog_fd = bpf_program__fd(prog);
    for (unsigned i = 0; i < cfg->n_ethertypes; i++) {
        uint16_t key = htons(cfg->ethertypes[i]);
        if (bpf_map_update_elem(bpf_map__fd(et_map), &key, &one, BPF_ANY) < 0) {
            rc = -errno;
            mv_port_errf(err, errlen, "EtherType map: %s", strerror(errno));
            return rc;
        }
    }
    if (!cfg->n_ethertypes) {
        uint16_t any = 0;
        if (bpf_map_update_elem(bpf_map__fd(et_map), &any, &one, BPF_ANY) < 0) {
            rc = -errno;
            mv_port_errf(err, errlen, "EtherType map: %s", strerror(errno));
            return rc;
        }
    }
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(x->prog_fd, &info, &info_len) == 0)
        x->prog_id = info.id;

    /* Never replace a program someone else attached. */
    rc = -EOPNOTSUPP;
    if (cfg->xdp_native) {
        x->attach_flags = XDP_FLAGS_DRV_MODE;
        rc = bpf_xdp_attach(port->ifindex, x->prog_fd,
                            XDP_FLAGS_UPDATE_IF_NOEXIST | x->attach_flags, NULL);
        if (rc < 0)
            mv_debug("port %s: native XDP attach failed (%s), trying generic", port->ifname,
                     strerror(-rc));
    }
    if (rc < 0) {
        x->attach_flags = XDP_FLAGS_SKB_MODE;
        rc = bpf_xdp_attach(port->ifindex, x->prog_fd,
                            XDP_FLAGS_UPDATE_IF_NOEXIST | x->attach_flags, NULL);
    }
    if (rc < 0) {
        mv_port_errf(err, errlen, "attaching XDP to %s: %s", port->ifname, strerror(-rc));
        return rc;
    }
    x->attached = true;
    return 0;
}

static int xdp_create_socket(struct mv_port *port, struct mv_port_xdp *x,
                             const struct mv_port_config *cfg, char *err, size_t errlen)
{
    struct xsk_umem_config ucfg = {
        .fill_size = XSK_RING_SIZE,
        .comp_size = XSK_RING_SIZE,
        .frame_size = XSK_FRAME_SIZE,
        .frame_headroom = 0,
        .flags = 0,
    };
    struct xsk_socket_config scfg;
    struct bpf_map *xsks_map;
    uint32_t idx, queue = cfg->xdp_queue;
    int rc, xsk_fd;

    x->umem_len = (size_t)XSK_NUM_FRAMES * XSK_FRAME_SIZE;
    x->umem_area = mmap(NULL, x->umem_len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (x->umem_area == MAP_FAILED) {
        x->umem_area = NULL;
        mv_port_errf(err, errlen, "UMEM mmap: %s", strerror(errno));
        return -ENOMEM;
    }
    rc = xsk_umem__create(&x->umem, x->umem_area, x->umem_len, &x->fill, &x->comp, &ucfg);
    if (rc < 0) {
        x->umem = NULL;
        mv_port_errf(err, errlen, "xsk_umem__create: %s", strerror(-rc));
        return rc;
    }
    /* A frame larger than one chunk needs multi-buffer descriptors. */
    x->sg = MV_ETH_HLEN + port->mtu + 4 > XSK_FRAME_SIZE;
    memset(&scfg, 0, sizeof(scfg));
    scfg.rx_size = XSK_RING_SIZE;
    scfg.tx_size = XSK_RING_SIZE;
    scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
    scfg.xdp_flags = x->attach_flags;
    scfg.bind_flags = XDP_COPY | (x->sg ? XDP_USE_SG : 0);
    rc = xsk_socket__create(&x->xsk, port->ifname, queue, x->umem, &x->rx, &x->tx, &scfg);
    if (rc < 0) {
        x->xsk = NULL;
        mv_port_errf(err, errlen, "AF_XDP socket on %s queue %u%s: %s", port->ifname, queue,
                     x->sg ? " (multi-buffer)" : "", strerror(-rc));
        return rc;
    }
    xsk_fd = xsk_socket__fd(x->xsk);
    xsks_map = bpf_object__find_map_by_name(x->obj, "mv_xsks");
    if (!xsks_map || bpf_map_update_elem(bpf_map__fd(xsks_map), &queue, &xsk_fd, BPF_ANY) < 0) {
        rc = xsks_map ? -errno : -ENOENT;
        mv_port_errf(err, errlen, "XSK map entry for queue %u: %s", queue, strerror(-rc));
        return rc;
    }
    if (xsk_ring_prod__reserve(&x->fill, XSK_RX_FRAMES, &idx) != XSK_RX_FRAMES) {
        mv_port_errf(err, errlen, "fill ring smaller than %u", XSK_RX_FRAMES);
        return -ENOSPC;
    }
    for (uint32_t i = 0; i < XSK_RX_FRAMES; i++)
        *xsk_ring_prod__fill_addr(&x->fill, idx + i) = (uint64_t)i * XSK_FRAME_SIZE;
    xsk_ring_prod__submit(&x->fill, XSK_RX_FRAMES);
    for (uint32_t i = 0; i < XSK_TX_FRAMES; i++)
        x->tx_free[i] = (uint64_t)(XSK_RX_FRAMES + i) * XSK_FRAME_SIZE;
    x->tx_free_n = XSK_TX_FRAMES;
    port->fd = xsk_fd;
    return 0;
}

int mv_port_xdp_open(struct mv_port *port, const struct mv_port_config *cfg, char *err,
                     size_t errlen)
{
    struct mv_port_xdp *x;
    int rc;

    port->kind = MV_PORT_XDP;
    rc = mv_port_if_query(port, cfg->ifname, err, errlen);
    if (rc < 0)
        return rc;
    x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->prog_fd = -1;
    port->xdp = x;
    x->reasm = malloc((size_t)XSK_REASM_SLOTS * MV_ETH_MAX_FRAME);
    if (!x->reasm) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = xdp_load_and_attach(port, x, cfg, err, errlen);
    if (rc < 0)
        goto fail;
    rc = xdp_create_socket(port, x, cfg, err, errlen);
    if (rc < 0)
        goto fail;
    mv_debug("port %s: AF_XDP queue %u, %s mode, mtu %u%s", port->ifname, cfg->xdp_queue,
             x->attach_flags == XDP_FLAGS_DRV_MODE ? "native" : "generic", port->mtu,
             x->sg ? ", multi-buffer" : "");
    return 0;
fail:
    mv_port_xdp_close(port);
    port->fd = -1;
    return rc;
}

void mv_port_xdp_close(struct mv_port *port)
{
    struct mv_port_xdp *x = port->xdp;

    if (!x)
        return;
    if (x->xsk)
        xsk_socket__delete(x->xsk);
    if (x->umem)
        xsk_umem__delete(x->umem);
    if (x->umem_area)
        munmap(x->umem_area, x->umem_len);
    if (x->attached) {
        uint32_t cur = 0;
        /* Detach only if the program on the interface is still ours. */
        if (bpf_xdp_query_id(port->ifindex, (int)x->attach_flags, &cur) == 0 && cur == x->prog_id)
            bpf_xdp_detach(port->ifindex, x->attach_flags, NULL);
    }
    if (x->obj)
        bpf_object__close(x->obj);
    free(x->reasm);
    free(x);
    port->xdp = NULL;
    port->fd = -1;
}

int mv_port_xdp_recv(struct mv_port *port, struct mv_frame *frames, unsigned max)
{
    struct mv_port_xdp *x = port->xdp;
    uint32_t idx, avail, used = 0;
    unsigned n = 0, reasm_used = 0;

    if (x->held)
        mv_port_xdp_recv_done(port);
    avail = xsk_ring_cons__peek(&x->rx, XSK_RX_BATCH, &idx);
    while (used < avail && n < max) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + used);
        uint32_t ndesc = 1, total = d->len;
        bool bad = false;

        /* Find the whole frame: descriptors up to one without XDP_PKT_CONTD. */
        while (xsk_ring_cons__rx_desc(&x->rx, idx + used + ndesc - 1)->options & XDP_PKT_CONTD) {
            if (used + ndesc >= avail)
                goto partial;
            total += xsk_ring_cons__rx_desc(&x->rx, idx + used + ndesc)->len;
            ndesc++;
        }
        if (ndesc > 1 && reasm_used >= XSK_REASM_SLOTS)
            break;
        if (total > MV_ETH_MAX_FRAME || total < MV_ETH_HLEN)
            bad = true;
        if (!bad && ndesc == 1) {
            frames[n].data = xsk_umem__get_data(x->umem_area, d->addr);
        } else if (!bad) {
            uint8_t *dst = x->reasm + (size_t)reasm_used++ * MV_ETH_MAX_FRAME;
            uint32_t off = 0;
            for (uint32_t k = 0; k < ndesc; k++) {
                const struct xdp_desc *dk = xsk_ring_cons__rx_desc(&x->rx, idx + used + k);
                memcpy(dst + off, xsk_umem__get_data(x->umem_area, dk->addr), dk->len);
                off += dk->len;
            }
            frames[n].data = dst;
        }
        for (uint32_t k = 0; k < ndesc; k++) {
            uint64_t a = xsk_ring_cons__rx_desc(&x->rx, idx + used + k)->addr;
            x->held_addr[x->held++] = a - a % XSK_FRAME_SIZE;
        }
        used += ndesc;
        if (bad || !mv_port_ethertype_wanted(port, frames[n].data, total)) {
            x->sw_dropped++;
            continue;
        }
        frames[n].len = total;
        frames[n].conn = 0;
        port->stats->rx_bytes += total;
        n++;
    }
partial:
    /* Descriptors not consumed (frame not complete yet, or caller's array full) stay queued. */
    xsk_ring_cons__cancel(&x->rx, avail - used);
    port->stats->rx_frames += n;
    return (int)n;
}

void mv_port_xdp_recv_done(struct mv_port *port)
{
    struct mv_port_xdp *x = port->xdp;
    uint32_t idx;

    if (!x->held)
        return;
    /* The fill ring has room for every RX chunk, so this cannot come up short. */
    if (xsk_ring_prod__reserve(&x->fill, x->held, &idx) != x->held) {
        mv_err("port %s: fill ring full, %u RX chunks lost", port->ifname, x->held);
    } else {
        for (unsigned i = 0; i < x->held; i++)
            *xsk_ring_prod__fill_addr(&x->fill, idx + i) = x->held_addr[i];
        xsk_ring_prod__submit(&x->fill, x->held);
    }
    xsk_ring_cons__release(&x->rx, x->held);
    x->held = 0;
}

static void xdp_reclaim_tx(struct mv_port_xdp *x)
{
    uint32_t idx, n = xsk_ring_cons__peek(&x->comp, XSK_RING_SIZE, &idx);

    for (uint32_t i = 0; i < n; i++) {
        uint64_t a = *xsk_ring_cons__comp_addr(&x->comp, idx + i);
        x->tx_free[x->tx_free_n++] = a - a % XSK_FRAME_SIZE;
    }
    xsk_ring_cons__release(&x->comp, n);
}

static void xdp_kick(struct mv_port *port)
{
    struct mv_port_xdp *x = port->xdp;

    x->tx_kick_pending = false;
    for (int i = 0; i < XSK_KICK_TRIES; i++) {
        if (sendto(port->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
            return;
        if (errno != EAGAIN && errno != EBUSY && errno != ENOBUFS && errno != EINTR) {
            port->stats->tx_errors++;
            return;
        }
        /* Copy mode sends a bounded batch per call and says EAGAIN while frames remain. */
        xdp_reclaim_tx(x);
    }
    x->tx_kick_pending = true;
}

int mv_port_xdp_send(struct mv_port *port, const struct mv_frame *frames, unsigned n)
{
    struct mv_port_xdp *x = port->xdp;
    unsigned i;

    xdp_reclaim_tx(x);
    for (i = 0; i < n; i++) {
        uint32_t len = frames[i].len, padded = MV_MAX(len, (uint32_t)MV_ETH_ZLEN);
        uint32_t chunks = (padded + XSK_FRAME_SIZE - 1) / XSK_FRAME_SIZE, idx, off = 0;

        if (len < MV_ETH_HLEN || len > MV_ETH_HLEN + port->mtu || (chunks > 1 && !x->sg)) {
            if (i == 0)
                return -EMSGSIZE;
            break;
        }
        if (x->tx_free_n < chunks || xsk_ring_prod__reserve(&x->tx, chunks, &idx) != chunks) {
            port->stats->tx_ring_full++;
            break;
        }
        for (uint32_t k = 0; k < chunks; k++) {
            struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx + k);
            uint32_t part = MV_MIN(padded - off, (uint32_t)XSK_FRAME_SIZE);
            uint8_t *dst;

            d->addr = x->tx_free[--x->tx_free_n];
            dst = xsk_umem__get_data(x->umem_area, d->addr);
            /* off < len always: only a single-chunk frame can need padding. */
            memcpy(dst, frames[i].data + off, MV_MIN(part, len - off));
            if (part > len - off)
                memset(dst + (len - off), 0, part - (len - off));
            d->len = part;
            d->options = k + 1 < chunks ? XDP_PKT_CONTD : 0;
            off += part;
        }
        xsk_ring_prod__submit(&x->tx, chunks);
        port->stats->tx_frames++;
        port->stats->tx_bytes += padded;
    }
    if (i || x->tx_kick_pending)
        xdp_kick(port);
    return (int)i;
}

void mv_port_xdp_poll_stats(const struct mv_port *port)
{
    struct mv_port_xdp *x = port->xdp;
    struct xdp_statistics st;
    socklen_t len = sizeof(st);

    memset(&st, 0, sizeof(st));
    if (getsockopt(port->fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0)
        port->stats->rx_dropped =
            x->sw_dropped + st.rx_dropped + st.rx_ring_full + st.rx_fill_ring_empty_descs;
}

int mv_port_xdp_rx_ready(struct mv_port *port)
{
    /* Looks at the producer index only; nothing is consumed. */
    return xsk_cons_nb_avail(&port->xdp->rx, 1) ? 1 : 0;
}

/* A strong reference to this object: see mv_port_link_xdp() in mv/port.h. */
void mv_port_link_xdp(void)
{
}
