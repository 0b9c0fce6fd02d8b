/* AF_UNIX SOCK_SEQPACKET transport for peers on the same host: one message per Ethernet frame.
 * A listening port accepts many connections behind one epoll fd and acts like a learning switch
 * port: a frame goes to the connection its destination MAC was last seen on as a source, and
 * broadcast, multicast or unknown destinations go to every connection. A listening port is an
 * endpoint, not a switch: frames between two clients are not relayed. */
#include "port_internal.h"

#include "mv/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define UNIX_MTU        9000
#define UNIX_RX_SLOTS   64
#define UNIX_MAX_CONNS  256
#define UNIX_MAC_TABLE  512
#define UNIX_LISTEN_TAG 0 /* epoll data of the listening socket; connections count from 1 */

struct unix_conn {
    int fd;
    uint32_t id;
};

struct unix_mac_entry {
    uint8_t mac[6];
    uint32_t conn;
    uint64_t last_used; /* for replacing the least recently seen entry when full */
};

struct mv_port_unix {
    bool listening;
    bool bound; /* we created the path: unlink it on close */
    bool peer_gone;
    int sock;
    int epfd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct unix_conn conns[UNIX_MAX_CONNS];
    unsigned n_conns;
    uint32_t next_conn_id;
    struct unix_mac_entry macs[UNIX_MAC_TABLE];
    unsigned n_macs;
    uint64_t mac_clock;
    uint8_t *rxbuf; /* UNIX_RX_SLOTS frames of MV_ETH_MAX_FRAME */
};

static int unix_make_addr(const char *path, struct sockaddr_un *sa, char *err, size_t errlen)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (!path || !*path || strlen(path) >= sizeof(sa->sun_path)) {
        mv_port_errf(err, errlen, "unix socket path missing or longer than %zu bytes",
                     sizeof(sa->sun_path) - 1);
        return -EINVAL;
    }
    memcpy(sa->sun_path, path, strlen(path));
    return 0;
}

/* A socket file left behind by a dead process is replaced; a live listener is not. */
static int unix_bind_listen(struct mv_port_unix *u, const struct sockaddr_un *sa, char *err,
                            size_t errlen)
{
    if (bind(u->sock, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
        int probe;
        bool alive;

        if (errno != EADDRINUSE)
            goto fail;
        probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        alive = probe >= 0 && connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
        if (probe >= 0)
            close(probe);
        if (alive) {
            mv_port_errf(err, errlen, "%s: another process is listening there", sa->sun_path);
            return -EADDRINUSE;
        }
        unlink(sa->sun_path);
        if (bind(u->sock, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
            goto fail;
    }
    u->bound = true;
    if (listen(u->sock, 64) < 0)
        goto fail;
    return 0;
fail:
    mv_port_errf(err, errlen, "listen on %s: %s", sa->sun_path, strerror(errno));
    return -errno;
}

int mv_port_unix_open(struct mv_port *port, const struct mv_port_config *cfg, char *err,
                      size_t errlen)
{
    struct mv_port_unix *u;
    struct sockaddr_un sa;
    int rc;

    port->kind = MV_PORT_UNIX;
    port->mtu = UNIX_MTU;
    port->ifindex = 0;
    if (!cfg->unix_mac) {
        mv_port_errf(err, errlen, "unix port needs unix_mac");
        return -EINVAL;
    }
    memcpy(port->mac, cfg->unix_mac, 6);
    rc = unix_make_addr(cfg->unix_path, &sa, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(port->ifname, sizeof(port->ifname), "unix");
    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    port->unx = u;
    u->epfd = -1;
    u->listening = cfg->unix_listen;
    u->next_conn_id = 1;
    memcpy(u->path, sa.sun_path, sizeof(u->path));
    u->rxbuf = malloc((size_t)UNIX_RX_SLOTS * MV_ETH_MAX_FRAME);
    u->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (!u->rxbuf || u->sock < 0) {
        rc = u->rxbuf ? -errno : -ENOMEM;
        mv_port_errf(err, errlen, "unix socket: %s", strerror(-rc));
        goto fail;
    }
    if (u->listening) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UNIX_LISTEN_TAG};

        rc = unix_bind_listen(u, &sa, err, errlen);
        if (rc < 0)
            goto fail;
        u->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (u->epfd < 0 || epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->sock, &ev) < 0) {
            rc = -errno;
            mv_port_errf(err, errlen, "epoll: %s", strerror(errno));
            goto fail;
        }
        port->fd = u->epfd;
    } else {
        /* A blocking connect: on a local socket it completes or fails at once. */
        if (connect(u->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
            rc = -errno;
            mv_port_errf(err, errlen, "connect to %s: %s", sa.sun_path, strerror(errno));
            goto fail;
        }
        port->fd = u->sock;
    }
    return 0;
fail:
    mv_port_unix_close(port);
    return rc;
}

void mv_port_unix_close(struct mv_port *port)
{
    struct mv_port_unix *u = port->unx;

    if (!u)
        return;
    for (unsigned i = 0; i < u->n_conns; i++)
        close(u->conns[i].fd);
    if (u->epfd >= 0)
        close(u->epfd);
    if (u->sock >= 0)
        close(u->sock);
    if (u->bound)
        unlink(u->path);
    free(u->rxbuf);
    free(u);
    port->unx = NULL;
    port->fd = -1;
}

static struct unix_conn *unix_find_conn(struct mv_port_unix *u, uint32_t id)
{
    for (unsigned i = 0; i < u->n_conns; i++)
        if (u->conns[i].id == id)
            return &u->conns[i];
    return NULL;
}

static void unix_drop_conn(struct mv_port_unix *u, uint32_t id)
{
    struct unix_conn *c = unix_find_conn(u, id);

    if (!c)
        return;
    epoll_ctl(u->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    *c = u->conns[--u->n_conns];
    for (unsigned i = 0; i < u->n_macs;)
        if (u->macs[i].conn == id)
            u->macs[i] = u->macs[--u->n_macs];
        else
            i++;
    mv_debug("unix port %s: connection %u closed", u->path, id);
}

static void unix_accept_all(struct mv_port_unix *u)
{
    for (;;) {
        int fd = accept4(u->sock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};

        if (fd < 0)
            return;
        if (u->n_conns == UNIX_MAX_CONNS) {
            mv_warn("unix port %s: %d connections already, refusing one", u->path, UNIX_MAX_CONNS);
            close(fd);
            continue;
        }
        ev.data.u32 = u->next_conn_id;
        if (epoll_ctl(u->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            continue;
        }
        u->conns[u->n_conns].fd = fd;
        u->conns[u->n_conns].id = u->next_conn_id;
        u->n_conns++;
        mv_debug("unix port %s: connection %u accepted", u->path, u->next_conn_id);
        if (++u->next_conn_id == 0)
            u->next_conn_id = 1;
    }
}

static void unix_learn(struct mv_port_unix *u, const uint8_t *src, uint32_t conn)
{
    unsigned victim = 0;

    if (src[0] & 1)
        return; /* a multicast source is bogus: never learn it */
    u->mac_clock++;
    for (unsigned i = 0; i < u->n_macs; i++) {
        if (!memcmp(u->macs[i].mac, src, 6)) {
            u->macs[i].conn = conn;
            u->macs[i].last_used = u->mac_clock;
            return;
        }
        if (u->macs[i].last_used < u->macs[victim].last_used)
            victim = i;
    }
    if (u->n_macs < UNIX_MAC_TABLE)
        victim = u->n_macs++;
    memcpy(u->macs[victim].mac, src, 6);
    u->macs[victim].conn = conn;
    u->macs[victim].last_used = u->mac_clock;
}

/* Reads frames from one socket into the slots from *n on. Returns -errno on a dead peer. */
static int unix_read_socket(struct mv_port *port, int fd, uint32_t conn, struct mv_frame *frames,
                            unsigned *n, unsigned max)
{
    struct mv_port_unix *u = port->unx;

    while (*n < max) {
        uint8_t *slot = u->rxbuf + (size_t)*n * MV_ETH_MAX_FRAME;
        ssize_t r = recv(fd, slot, MV_ETH_MAX_FRAME, MSG_DONTWAIT | MSG_TRUNC);

        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -errno;
        }
        if (r == 0)
            return -ECONNRESET; /* we never send empty messages: this is the peer's EOF */
        if (r > MV_ETH_MAX_FRAME || !mv_port_ethertype_wanted(port, slot, (size_t)r)) {
            if (r > MV_ETH_MAX_FRAME)
                mv_debug("unix port %s: dropped a %zd-byte frame (max %d)", u->path, r,
                         MV_ETH_MAX_FRAME);
            port->stats->rx_dropped += r > MV_ETH_MAX_FRAME;
            continue;
        }
        if (u->listening)
            unix_learn(u, slot + 6, conn);
        frames[*n].data = slot;
        frames[*n].len = (uint32_t)r;
        frames[*n].conn = conn;
        port->stats->rx_bytes += (uint64_t)r;
        port->stats->rx_frames++;
        (*n)++;
    }
    return 0;
}

int mv_port_unix_recv(struct mv_port *port, struct mv_frame *frames, unsigned max)
{
    struct mv_port_unix *u = port->unx;
    struct epoll_event evs[32];
    unsigned n = 0;
    int nev, rc;

    max = MV_MIN(max, (unsigned)UNIX_RX_SLOTS);
    if (!u->listening) {
        if (u->peer_gone)
            return -ENOTCONN;
        rc = unix_read_socket(port, u->sock, 0, frames, &n, max);
        if (rc < 0 && n == 0) {
            u->peer_gone = true;
            return rc;
        }
        return (int)n;
    }
    nev = epoll_wait(u->epfd, evs, (int)MV_ARRAY_SIZE(evs), 0);
    for (int i = 0; i < nev && n < max; i++) {
        struct unix_conn *c;

        if (evs[i].data.u32 == UNIX_LISTEN_TAG) {
            unix_accept_all(u);
            continue;
        }
        c = unix_find_conn(u, evs[i].data.u32);
        if (!c)
            continue;
        rc = unix_read_socket(port, c->fd, c->id, frames, &n, max);
        /* Frames already read from a closing peer are returned; the hangup shows next time. */
        if (rc < 0 ||
            ((evs[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) && !(evs[i].events & EPOLLIN)))
            unix_drop_conn(u, c->id);
    }
    return (int)n;
}

void mv_port_unix_recv_done(struct mv_port *port)
{
    (void)port; /* slots are reused by the next recv */
}

/* Sends one frame on one connection. 0, -EAGAIN (socket full) or -errno (peer gone). */
static int unix_send_on(int fd, const uint8_t *frame, size_t len)
{
    if (send(fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len)
        return 0;
    return errno == EINTR ? -EAGAIN : -errno;
}

int mv_port_unix_send(struct mv_port *port, const struct mv_frame *frames, unsigned n)
{
    struct mv_port_unix *u = port->unx;
    uint8_t pad[MV_ETH_ZLEN];
    unsigned i;

    for (i = 0; i < n; i++) {
        const uint8_t *data = frames[i].data;
        size_t len = frames[i].len;
        int rc = 0;

        if (len < MV_ETH_HLEN || len > MV_ETH_HLEN + port->mtu) {
            if (i == 0)
                return -EMSGSIZE;
            break;
        }
        if (len < MV_ETH_ZLEN) {
            memcpy(pad, data, len);
            memset(pad + len, 0, MV_ETH_ZLEN - len);
            data = pad;
            len = MV_ETH_ZLEN;
        }
        if (!u->listening) {
            rc = u->peer_gone ? -ENOTCONN : unix_send_on(u->sock, data, len);
            if (rc == -EPIPE || rc == -ECONNRESET)
                u->peer_gone = true;
        } else {
            struct unix_conn *dst = NULL;

            if (!(data[0] & 1))
                for (unsigned k = 0; k < u->n_macs; k++)
                    if (!memcmp(u->macs[k].mac, data, 6)) {
                        dst = unix_find_conn(u, u->macs[k].conn);
                        break;
                    }
            if (dst) {
                rc = unix_send_on(dst->fd, data, len);
                if (rc < 0 && rc != -EAGAIN)
                    unix_drop_conn(u, dst->id);
            } else {
                /* Flood: a connection that cannot take it misses this frame. */
                for (unsigned k = 0; k < u->n_conns;) {
                    int r = unix_send_on(u->conns[k].fd, data, len);
                    if (r < 0 && r != -EAGAIN) {
                        unix_drop_conn(u, u->conns[k].id);
                        continue;
                    }
                    if (r < 0)
                        port->stats->tx_errors++;
                    k++;
                }
            }
        }
        if (rc == -EAGAIN) {
            port->stats->tx_ring_full++;
            break;
        }
        if (rc < 0) {
            port->stats->tx_errors++;
            if (i == 0)
                return rc;
            break;
        }
        port->stats->tx_frames++;
        port->stats->tx_bytes += len;
    }
    return (int)i;
}
