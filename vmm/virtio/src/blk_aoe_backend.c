/* virtio-blk backend on an AoE target through libmvblk (mv/virtio_blk_aoe.h).
 *
 * One struct mvblk (port + initiator state) per disk, driven only by the transport's I/O thread
 * after the attach (libmvblk is single-threaded). A virtio request becomes one mvblk request per
 * run of guest-contiguous segments (libmvblk splits those into frames and keeps many in flight);
 * segments that are not whole sectors go through a bounce buffer instead. The event fd handed
 * to the device is an epoll fd over the port's fd and a timerfd: the timer ticks while frames
 * are outstanding so that libmvblk's retransmission and dead-target timeouts run even when the
 * wire is silent, and fires at once when completions are waiting to be delivered. */
#include "mv/virtio_blk_aoe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/log.h"
#include "mv/util.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- spec parsing ---- */

bool mv_blk_aoe_spec_is_aoe(const char *spec)
{
    return spec != NULL && strncmp(spec, MV_BLK_AOE_PREFIX, strlen(MV_BLK_AOE_PREFIX)) == 0;
}

/* Plain decimal only (mv_parse_u32 would read "010" as octal, surprising in "1.010"). */
static int aoe_parse_decimal(const char *s, size_t len, uint32_t max, uint32_t *out)
{
    if (len == 0 || len > 10)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "SHELF.SLOT" with both in the unicast ranges (0xffff / 0xff are the broadcast values). */
static int aoe_parse_address(const char *s, size_t len, uint16_t *shelf, uint8_t *slot)
{
    const char *dot = memchr(s, '.', len);
    uint32_t sh, sl;
    if (dot == NULL || aoe_parse_decimal(s, (size_t)(dot - s), 0xfffe, &sh) != 0 ||
        aoe_parse_decimal(dot + 1, len - (size_t)(dot - s) - 1, 0xfe, &sl) != 0)
        return -1;
    *shelf = (uint16_t)sh;
    *slot = (uint8_t)sl;
    return 0;
}

static int aoe_parse_ms(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    uint32_t x;
    if (aoe_parse_decimal(v, strlen(v), hi, &x) != 0 || x < lo)
        return -1;
    *out = x;
    return 0;
}

int mv_blk_aoe_spec_parse(const char *spec, struct mv_blk_aoe_spec *out, char *err, size_t errlen)
{
    struct mv_blk_aoe_spec s = {.timeout_ms = MV_BLK_AOE_TIMEOUT_DEF,
                                .dead_ms = MV_BLK_AOE_DEAD_DEF,
                                .queue_depth = MV_BLK_AOE_DEPTH_DEF};
    if (!mv_blk_aoe_spec_is_aoe(spec)) {
        set_err(err, errlen, "not an AoE disk spec (want aoe:SHELF.SLOT,...)");
        return -EINVAL;
    }
    const char *p = spec + strlen(MV_BLK_AOE_PREFIX);
    const char *comma = strchr(p, ',');
    size_t addr_len = comma ? (size_t)(comma - p) : strlen(p);
    if (aoe_parse_address(p, addr_len, &s.shelf, &s.slot) != 0) {
        set_err(err, errlen, "'%.*s': want SHELF.SLOT with shelf 0..65534 and slot 0..254",
                (int)MV_MIN(addr_len, (size_t)64), p);
        return -EINVAL;
    }
    bool seen_timeout = false, seen_dead = false, seen_depth = false, seen_serial = false;
    while (comma != NULL) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t len = comma ? (size_t)(comma - opt) : strlen(opt);
        char o[160];
        if (len == 0) {
            set_err(err, errlen, "empty option (two commas or a trailing comma)");
            return -EINVAL;
        }
        if (len >= sizeof(o)) {
            set_err(err, errlen, "option '%.32s...' too long", opt);
            return -EINVAL;
        }
        memcpy(o, opt, len);
        o[len] = '\0';
        char *v = strchr(o, '=');
        if (v != NULL)
            *v++ = '\0';
        bool dup = false;
        if (strcmp(o, "ro") == 0) {
            if (v != NULL) {
                set_err(err, errlen, "ro takes no value");
                return -EINVAL;
            }
            dup = s.read_only;
            s.read_only = true;
        } else if (v == NULL || *v == '\0') {
            set_err(err, errlen, "option '%s' needs a value (or is unknown)", o);
            return -EINVAL;
        } else if (strcmp(o, "if") == 0) {
            dup = s.ifname[0] != '\0';
            if (strlen(v) >= sizeof(s.ifname) || strchr(v, '/') != NULL) {
                set_err(err, errlen, "if=%s: not an interface name (at most %zu characters)", v,
                        sizeof(s.ifname) - 1);
                return -EINVAL;
            }
            strcpy(s.ifname, v);
        } else if (strcmp(o, "unix") == 0) {
            dup = s.unix_path[0] != '\0';
            if (strlen(v) >= sizeof(s.unix_path)) {
                set_err(err, errlen, "unix=: socket path longer than %zu characters",
                        sizeof(s.unix_path) - 1);
                return -EINVAL;
            }
            strcpy(s.unix_path, v);
        } else if (strcmp(o, "target") == 0) {
            dup = s.has_target;
            if (mv_mac_parse(v, s.target_mac) != 0 || (s.target_mac[0] & 1)) {
                set_err(err, errlen, "target=%s: not a unicast MAC address", v);
                return -EINVAL;
            }
            s.has_target = true;
        } else if (strcmp(o, "serial") == 0) {
            dup = seen_serial;
            seen_serial = true;
            if (strlen(v) > MV_BLK_AOE_SERIAL_MAX) {
                set_err(err, errlen, "serial=%s: longer than %d bytes", v, MV_BLK_AOE_SERIAL_MAX);
                return -EINVAL;
            }
            strcpy(s.serial, v);
        } else if (strcmp(o, "timeout") == 0) {
            dup = seen_timeout;
            seen_timeout = true;
            if (aoe_parse_ms(v, 1, 600000, &s.timeout_ms) != 0) {
                set_err(err, errlen, "timeout=%s: want 1..600000 ms", v);
                return -EINVAL;
            }
        } else if (strcmp(o, "dead") == 0) {
            dup = seen_dead;
            seen_dead = true;
            if (aoe_parse_ms(v, 10, 3600000, &s.dead_ms) != 0) {
                set_err(err, errlen, "dead=%s: want 10..3600000 ms", v);
                return -EINVAL;
            }
        } else if (strcmp(o, "depth") == 0) {
            dup = seen_depth;
            seen_depth = true;
            if (aoe_parse_ms(v, 1, MV_BLK_AOE_DEPTH_MAX, &s.queue_depth) != 0) {
                set_err(err, errlen, "depth=%s: want 1..%u", v, MV_BLK_AOE_DEPTH_MAX);
                return -EINVAL;
            }
        } else {
            set_err(err, errlen,
                    "unknown option '%s' (if=, unix=, target=, ro, serial=, timeout=, dead=, "
                    "depth=)",
                    o);
            return -EINVAL;
        }
        if (dup) {
            set_err(err, errlen, "option '%s' given twice", o);
            return -EINVAL;
        }
    }
    if ((s.ifname[0] != '\0') == (s.unix_path[0] != '\0')) {
        set_err(err, errlen,
                "give exactly one of if=IFACE (raw Ethernet) or unix=PATH "
                "(host-local mvstored)");
        return -EINVAL;
    }
    *out = s;
    return 0;
}

#ifdef MV_HAVE_MVBLK

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "mv/mvblk.h"

#define AOE_TICK_NS       2000000ull    /* retransmission clock while frames are outstanding */
#define AOE_REATTACH_NS   1000000000ull /* after a target failure, look for it again this often */
#define AOE_REATTACH_WAIT 300u          /* ms the I/O thread may spend looking */

struct aoe_req {
    struct aoe_backend *a;
    struct mv_blk_request *br;
    unsigned parts_left;
    int status;
    uint8_t *bounce; /* whole-request copy when segments are not whole sectors */
    struct mvblk_req *parts;
    unsigned parts_cap;
    struct aoe_req *next; /* free list or done list */
};

struct aoe_backend {
    struct mv_blk_aoe_spec spec;
    struct mvblk *b;
    struct mvblk_dev *dev; /* NULL after a failed re-attach */
    uint64_t sectors;
    int epoll_fd, timer_fd;
    int timer_state; /* 0 disarmed, 1 ticking, 2 fired-now */
    unsigned inflight;
    uint64_t next_reattach_ns;
    bool warned_failed;
    struct aoe_req *free_list;
    struct aoe_req *done_head, *done_tail;
    struct mv_blk_aoe_stats stats; /* counters updated with relaxed atomics */
};

static void aoe_stat_add(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

/* Attaches shelf.slot, insisting on target= when given; retries discovery until timeout_ms. */
static int aoe_attach(struct aoe_backend *a, unsigned timeout_ms, char *err, size_t errlen)
{
    const struct mv_blk_aoe_spec *s = &a->spec;
    uint64_t deadline = mv_now_ns() + (uint64_t)timeout_ms * 1000000;
    int rc;
    for (;;) {
        uint64_t now = mv_now_ns();
        unsigned left = now >= deadline ? 1 : (unsigned)MV_MAX((deadline - now) / 1000000, 1ull);
        struct mvblk_dev *dev = NULL;
        rc = mvblk_attach(a->b, s->shelf, s->slot, left, 0, &dev, err, errlen);
        if (rc == 0) {
            const uint8_t *mac = mvblk_dev_target(dev)->mac;
            if (!s->has_target || memcmp(mac, s->target_mac, 6) == 0) {
                a->dev = dev;
                a->sectors = mvblk_dev_sectors(dev);
                return 0;
            }
            char got[MV_MAC_STR_LEN], want[MV_MAC_STR_LEN];
            mv_mac_format(mac, got);
            mv_mac_format(s->target_mac, want);
            set_err(err, errlen, "AoE target %u.%u answered from %s, not from target=%s", s->shelf,
                    s->slot, got, want);
            mvblk_detach(dev);
            rc = -ENOENT;
        }
        if ((rc != -ENOENT && rc != -ETIMEDOUT) || mv_now_ns() >= deadline)
            return rc;
    }
}

/* Keeps the event fd honest: readable at once if completions wait for delivery, every tick
 * while frames are in flight (libmvblk's timers), never when idle. */
static void aoe_update_timer(struct aoe_backend *a)
{
    int want = a->done_head != NULL ? 2 : (mvblk_outstanding(a->b) > 0 ? 1 : 0);
    if (want == a->timer_state && want != 2)
        return;
    struct itimerspec its = {0};
    if (want == 2) {
        its.it_value.tv_nsec = 1;
    } else if (want == 1) {
        its.it_value.tv_nsec = (long)AOE_TICK_NS;
        its.it_interval.tv_nsec = (long)AOE_TICK_NS;
    }
    if (timerfd_settime(a->timer_fd, 0, &its, NULL) == 0)
        a->timer_state = want;
}

static void aoe_part_done(struct mvblk_req *mr, int status)
{
    struct aoe_req *r = mr->priv;
    struct aoe_backend *a = r->a;
    if (status != 0 && r->status == 0)
        r->status = status;
    if (--r->parts_left > 0)
        return;
    r->next = NULL;
    if (a->done_tail != NULL)
        a->done_tail->next = r;
    else
        a->done_head = r;
    a->done_tail = r;
}

static struct aoe_req *aoe_req_get(struct aoe_backend *a, unsigned parts)
{
    struct aoe_req *r = a->free_list;
    if (r != NULL)
        a->free_list = r->next;
    else if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    if (r->parts_cap < parts) {
        unsigned cap = MV_MAX(parts, 4u);
        struct mvblk_req *np = realloc(r->parts, cap * sizeof(*np));
        if (np == NULL) {
            r->next = a->free_list;
            a->free_list = r;
            return NULL;
        }
        r->parts = np;
        r->parts_cap = cap;
    }
    r->a = a;
    r->status = 0;
    r->parts_left = 0;
    r->bounce = NULL;
    return r;
}

static void aoe_req_put(struct aoe_backend *a, struct aoe_req *r)
{
    free(r->bounce);
    r->bounce = NULL;
    r->next = a->free_list;
    a->free_list = r;
}

/* After a target failure libmvblk fails everything at once; look for the target again (it may
 * have restarted) at most once a second, for a short while, from the I/O thread. */
static bool aoe_target_usable(struct aoe_backend *a)
{
    if (a->dev != NULL && !mvblk_dev_failed(a->dev))
        return true;
    uint64_t now = mv_now_ns();
    if (now < a->next_reattach_ns)
        return false;
    a->next_reattach_ns = now + AOE_REATTACH_NS;
    if (a->dev != NULL) {
        mvblk_detach(a->dev); /* its requests were failed already; detach delivers them */
        a->dev = NULL;
    }
    uint64_t old_sectors = a->sectors;
    char err[256] = "";
    if (aoe_attach(a, AOE_REATTACH_WAIT, err, sizeof(err)) != 0) {
        if (!a->warned_failed)
            mv_warn("virtio-blk aoe %u.%u: target failed, requests get IOERR (%s)", a->spec.shelf,
                    a->spec.slot, err);
        a->warned_failed = true;
        return false;
    }
    if (a->sectors != old_sectors) {
        mv_warn("virtio-blk aoe %u.%u: target came back with %" PRIu64 " sectors, had %" PRIu64
                "; keeping it failed",
                a->spec.shelf, a->spec.slot, a->sectors, old_sectors);
        mvblk_detach(a->dev);
        a->dev = NULL;
        a->sectors = old_sectors;
        return false;
    }
    mv_info("virtio-blk aoe %u.%u: target answers again", a->spec.shelf, a->spec.slot);
    a->warned_failed = false;
    aoe_stat_add(&a->stats.reattaches, 1);
    return true;
}

static int aoe_be_submit(void *be, struct mv_blk_request *br)
{
    struct aoe_backend *a = be;
    if (a->inflight >= a->spec.queue_depth)
        return -EAGAIN;
    if (br->op != MV_BLK_OP_READ && br->op != MV_BLK_OP_WRITE && br->op != MV_BLK_OP_FLUSH)
        return -EOPNOTSUPP;
    if (br->op == MV_BLK_OP_WRITE && a->spec.read_only)
        return -EROFS;
    if (!aoe_target_usable(a)) {
        aoe_stat_add(&a->stats.errors, 1);
        return -EIO;
    }
    /* Segments that are whole sectors go straight to/from guest memory, neighbours that are
     * contiguous in the host merged; anything else is bounced as one piece. */
    bool bounce = false;
    unsigned parts = 0;
    for (unsigned i = 0; i < br->iovcnt; i++) {
        if (br->iov[i].iov_len % MV_BLK_SECTOR_SIZE != 0)
            bounce = true;
        if (i == 0 || (uint8_t *)br->iov[i - 1].iov_base + br->iov[i - 1].iov_len !=
                          (uint8_t *)br->iov[i].iov_base)
            parts++;
    }
    if (br->op == MV_BLK_OP_FLUSH || bounce)
        parts = 1;
    if (br->op != MV_BLK_OP_FLUSH && (br->len == 0 || br->len % MV_BLK_SECTOR_SIZE != 0))
        return -EINVAL; /* the device refuses these; never hand libmvblk a partial sector */
    struct aoe_req *r = aoe_req_get(a, parts);
    if (r == NULL)
        return -EAGAIN;
    r->br = br;
    uint64_t lba = br->offset / MV_BLK_SECTOR_SIZE;
    unsigned n = 0;
    if (br->op == MV_BLK_OP_FLUSH) {
        r->parts[n++] = (struct mvblk_req){.op = MVBLK_FLUSH};
    } else if (bounce) {
        r->bounce = malloc(br->len);
        if (r->bounce == NULL) {
            aoe_req_put(a, r);
            return -EAGAIN;
        }
        if (br->op == MV_BLK_OP_WRITE) {
            uint64_t off = 0;
            for (unsigned i = 0; i < br->iovcnt; i++) {
                memcpy(r->bounce + off, br->iov[i].iov_base, br->iov[i].iov_len);
                off += br->iov[i].iov_len;
            }
        }
        r->parts[n++] =
            (struct mvblk_req){.op = br->op == MV_BLK_OP_WRITE ? MVBLK_WRITE : MVBLK_READ,
                               .lba = lba,
                               .count = (uint32_t)(br->len / MV_BLK_SECTOR_SIZE),
                               .buf = r->bounce};
        aoe_stat_add(&a->stats.bounced, 1);
    } else {
        for (unsigned i = 0; i < br->iovcnt; i++) {
            uint32_t sectors = (uint32_t)(br->iov[i].iov_len / MV_BLK_SECTOR_SIZE);
            if (sectors == 0)
                continue;
            struct mvblk_req *prev = n > 0 ? &r->parts[n - 1] : NULL;
            if (prev != NULL && (uint8_t *)prev->buf + (uint64_t)prev->count * MV_BLK_SECTOR_SIZE ==
                                    (uint8_t *)br->iov[i].iov_base) {
                prev->count += sectors;
            } else {
                r->parts[n++] =
                    (struct mvblk_req){.op = br->op == MV_BLK_OP_WRITE ? MVBLK_WRITE : MVBLK_READ,
                                       .lba = lba,
                                       .count = sectors,
                                       .buf = br->iov[i].iov_base};
            }
            lba += sectors;
        }
    }
    /* Completions only run inside mvblk_poll(), so counting after the loop is race-free. */
    unsigned submitted = 0;
    for (unsigned i = 0; i < n; i++) {
        r->parts[i].done = aoe_part_done;
        r->parts[i].priv = r;
        int rc = mvblk_submit(a->dev, &r->parts[i]);
        if (rc < 0) {
            if (submitted == 0) {
                aoe_req_put(a, r);
                aoe_stat_add(&a->stats.errors, 1);
                return rc == -ERANGE ? -ERANGE : -EIO;
            }
            r->status = rc; /* the parts already out complete it, with this error */
            break;
        }
        submitted++;
    }
    r->parts_left = submitted;
    a->inflight++;
    aoe_stat_add(&a->stats.requests, 1);
    aoe_stat_add(&a->stats.parts, submitted);
    return 0;
}

static int aoe_be_flush(void *be)
{
    /* mvblk_submit() has put the frames on the wire; only the clock needs starting. */
    aoe_update_timer(be);
    return 0;
}

static int aoe_deliver(struct aoe_backend *a, mv_blk_done_fn done, void *done_ctx)
{
    int n = 0;
    while (a->done_head != NULL) {
        struct aoe_req *r = a->done_head;
        a->done_head = r->next;
        if (a->done_head == NULL)
            a->done_tail = NULL;
        struct mv_blk_request *br = r->br;
        if (r->status == 0 && r->bounce != NULL && br->op == MV_BLK_OP_READ) {
            uint64_t off = 0;
            for (unsigned i = 0; i < br->iovcnt; i++) {
                memcpy(br->iov[i].iov_base, r->bounce + off, br->iov[i].iov_len);
                off += br->iov[i].iov_len;
            }
        }
        if (r->status != 0)
            aoe_stat_add(&a->stats.errors, 1);
        int64_t result = r->status != 0 ? (r->status == -ERANGE ? -ERANGE : -EIO)
                                        : (br->op == MV_BLK_OP_FLUSH ? 0 : (int64_t)br->len);
        a->inflight--;
        aoe_req_put(a, r);
        if (done != NULL)
            done(br, result, done_ctx);
        n++;
    }
    return n;
}

static int aoe_be_complete(void *be, mv_blk_done_fn done, void *done_ctx)
{
    struct aoe_backend *a = be;
    uint64_t ticks;
    if (read(a->timer_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks) && a->timer_state == 2)
        a->timer_state = 0; /* the one-shot has fired */
    int rc = mvblk_poll(a->b, 0);
    if (rc < 0)
        mv_debug("virtio-blk aoe: mvblk_poll: %s", strerror(-rc));
    if (a->dev != NULL) {
        struct mvblk_dev_stats ds;
        mvblk_dev_get_stats(a->dev, &ds);
        __atomic_store_n(&a->stats.frames_sent, ds.frames_sent, __ATOMIC_RELAXED);
        __atomic_store_n(&a->stats.retransmits, ds.retransmits, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&a->stats.target_failed, a->dev == NULL || mvblk_dev_failed(a->dev),
                     __ATOMIC_RELAXED);
    int n = aoe_deliver(a, done, done_ctx);
    aoe_update_timer(a);
    return n;
}

static int aoe_be_event_fd(void *be)
{
    return ((struct aoe_backend *)be)->epoll_fd;
}

static void aoe_be_destroy(void *be)
{
    struct aoe_backend *a = be;
    if (a == NULL)
        return;
    if (a->dev != NULL) {
        struct mvblk_dev_stats ds;
        mvblk_dev_get_stats(a->dev, &ds);
        mv_info("virtio-blk aoe %u.%u: %" PRIu64 " requests (%" PRIu64 " bounced, %" PRIu64
                " failed), %" PRIu64 " frames, %" PRIu64 " retransmitted, %" PRIu64 " re-attaches",
                a->spec.shelf, a->spec.slot, a->stats.requests, a->stats.bounced, a->stats.errors,
                ds.frames_sent, ds.retransmits, a->stats.reattaches);
    }
    if (a->b != NULL)
        mvblk_close(a->b); /* fails what is still out: their contexts land on the done list */
    aoe_deliver(a, NULL, NULL);
    while (a->free_list != NULL) {
        struct aoe_req *r = a->free_list;
        a->free_list = r->next;
        free(r->parts);
        free(r);
    }
    if (a->epoll_fd >= 0)
        close(a->epoll_fd);
    if (a->timer_fd >= 0)
        close(a->timer_fd);
    free(a);
}

static const struct mv_blk_backend_ops aoe_backend_ops = {
    .submit = aoe_be_submit,
    .flush = aoe_be_flush,
    .complete = aoe_be_complete,
    .event_fd = aoe_be_event_fd,
    .destroy = aoe_be_destroy,
};

int mv_blk_aoe_backend_open(const struct mv_blk_aoe_spec *spec, struct mv_blk_backend *out,
                            char *serial_out, char *err, size_t errlen)
{
    struct aoe_backend *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->spec = *spec;
    a->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int rc;
    if (a->epoll_fd < 0 || a->timer_fd < 0) {
        rc = -errno;
        set_err(err, errlen, "epoll/timerfd: %s", strerror(errno));
        goto fail;
    }
    struct mvblk_config cfg = {.kind = spec->unix_path[0] ? MV_PORT_UNIX : MV_PORT_PACKET,
                               .ifname = spec->ifname[0] ? spec->ifname : NULL,
                               .unix_path = spec->unix_path[0] ? spec->unix_path : NULL,
                               .dead_ms = spec->dead_ms,
                               .low_latency = true}; /* per-frame wakeups: guest I/O latency */
    char perr[256] = "";
    rc = mvblk_open(&cfg, &a->b, perr, sizeof(perr));
    if (rc < 0) {
        set_err(
            err, errlen, "AoE port on %s %s: %s", spec->unix_path[0] ? "unix socket" : "interface",
            spec->unix_path[0] ? spec->unix_path : spec->ifname, perr[0] ? perr : strerror(-rc));
        goto fail;
    }
    rc = aoe_attach(a, spec->timeout_ms, perr, sizeof(perr));
    if (rc < 0) {
        set_err(err, errlen, "%s (after %u ms on %s)", perr[0] ? perr : strerror(-rc),
                spec->timeout_ms, spec->unix_path[0] ? spec->unix_path : spec->ifname);
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, mvblk_fd(a->b), &ev) < 0 ||
        epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, a->timer_fd, &ev) < 0) {
        rc = -errno;
        set_err(err, errlen, "epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    if (serial_out != NULL)
        snprintf(serial_out, MV_BLK_AOE_SERIAL_MAX + 1, "%s", mvblk_dev_serial(a->dev));
    *out = (struct mv_blk_backend){
        .ops = &aoe_backend_ops,
        .be = a,
        .capacity = a->sectors * MV_BLK_SECTOR_SIZE,
        .block_size = MV_BLK_SECTOR_SIZE,
        .read_only = spec->read_only,
        .queue_depth = spec->queue_depth,
    };
    return 0;
fail:
    aoe_be_destroy(a);
    return rc;
}

void mv_blk_aoe_backend_stats(void *be, struct mv_blk_aoe_stats *out)
{
    struct aoe_backend *a = be;
    out->requests = __atomic_load_n(&a->stats.requests, __ATOMIC_RELAXED);
    out->parts = __atomic_load_n(&a->stats.parts, __ATOMIC_RELAXED);
    out->bounced = __atomic_load_n(&a->stats.bounced, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&a->stats.errors, __ATOMIC_RELAXED);
    out->reattaches = __atomic_load_n(&a->stats.reattaches, __ATOMIC_RELAXED);
    out->frames_sent = __atomic_load_n(&a->stats.frames_sent, __ATOMIC_RELAXED);
    out->retransmits = __atomic_load_n(&a->stats.retransmits, __ATOMIC_RELAXED);
    out->target_failed = __atomic_load_n(&a->stats.target_failed, __ATOMIC_RELAXED);
}

#else /* !MV_HAVE_MVBLK */

int mv_blk_aoe_backend_open(const struct mv_blk_aoe_spec *spec, struct mv_blk_backend *out,
                            char *serial_out, char *err, size_t errlen)
{
    (void)spec;
    (void)out;
    (void)serial_out;
    set_err(err, errlen, "mvvmm was built without libmvblk (storage/): no AoE disks");
    return -ENOTSUP;
}

void mv_blk_aoe_backend_stats(void *be, struct mv_blk_aoe_stats *out)
{
    (void)be;
    memset(out, 0, sizeof(*out));
}

#endif
