/* fio external ioengine "mvblk": fio jobs measure AoE volumes through libmvblk, the initiator the
 * VMM uses, in the same job files as fio's own engines:
 *
 *   ioengine=external:/path/libmvblk_fio.so
 *   aoe_target=9.9          (or filename=e9.9, one target per file)
 *   aoe_unix=/run/mvstored/aoe.sock   (or aoe_if=eth0 [aoe_xdp=1])
 *
 * Built against the source of exactly the installed fio (scripts/fio-source), so io_u, fio_file,
 * thread_data and ioengine_ops are the binary's own layouts; fio refuses the engine unless
 * FIO_IOOPS_VERSION matches. One struct mvblk (one port) per fio job process; files attach to their
 * target in open_file and detach in close_file. queue() collects io_us, commit() submits them all
 * to libmvblk (which keeps many frames in flight), getevents() runs mvblk_poll() until enough
 * completions arrived. */
#include "fio.h"
#include "optgroup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/mvblk.h"
#include "mv/util.h"

#ifndef CONFIG_POSIXAIO
/* The union at the end of struct io_u is as large as its largest member, the POSIX aiocb on
 * Linux; without it our io_u would be smaller than fio's. */
#error "fio's config-host.h lacks CONFIG_POSIXAIO: io_u would not match the fio binary"
#endif

#define MVBLK_FIO_SECTOR 512u

/* Engine options (fio parses them into this struct; off1 0 means "no offset" to fio, hence the
 * leading pointer as every fio engine does). */
struct mvblk_fio_options {
    void *pad;
    char *aoe_target;
    char *aoe_if;
    char *aoe_unix;
    char *aoe_mac;
    char *aoe_src_mac;
    unsigned int aoe_xdp;
    unsigned int aoe_timeout_ms;
    unsigned int aoe_inflight;
};

/* Per io_u: the libmvblk request (its lifetime is the io_u's). */
struct mvblk_fio_req {
    struct mvblk_req req;
    struct io_u *io_u;
    struct mvblk_fio_data *data;
};

/* Per fio job (thread or process). */
struct mvblk_fio_data {
    struct mvblk *b;
    struct io_u **pending; /* queued, not yet committed */
    unsigned npending;
    struct io_u **events;     /* completed, waiting for getevents()/event() */
    unsigned nevents, handed; /* events[0..handed) were returned by the last getevents() */
    unsigned depth;
};

/* Attached target of one fio_file. */
struct mvblk_fio_file {
    struct mvblk_dev *dev;
};

static struct fio_option mvblk_fio_option_table[] = {
    {
        .name = "aoe_target",
        .lname = "AoE target",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct mvblk_fio_options, aoe_target),
        .help = "AoE address SHELF.SLOT of the volume (default: each filename, as eSHELF.SLOT)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "aoe_if",
        .lname = "AoE interface",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct mvblk_fio_options, aoe_if),
        .help = "Ethernet interface to reach the target on (AF_PACKET, needs CAP_NET_RAW)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "aoe_unix",
        .lname = "AoE unix socket",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct mvblk_fio_options, aoe_unix),
        .help = "mvstored's host-local AF_UNIX port (its --unix-socket)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "aoe_mac",
        .lname = "AoE target MAC",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct mvblk_fio_options, aoe_mac),
        .help = "Take only the target answering from this MAC (replicas share SHELF.SLOT)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "aoe_src_mac",
        .lname = "AoE initiator MAC",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct mvblk_fio_options, aoe_src_mac),
        .help = "Our MAC on an AF_UNIX port (default: random locally administered)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "aoe_xdp",
        .lname = "AoE over AF_XDP",
        .type = FIO_OPT_BOOL,
        .off1 = offsetof(struct mvblk_fio_options, aoe_xdp),
        .help = "Use an AF_XDP port on aoe_if instead of AF_PACKET",
        .def = "0",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "aoe_timeout",
        .lname = "AoE attach timeout",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct mvblk_fio_options, aoe_timeout_ms),
        .help = "Milliseconds to wait for the target to answer Query Config",
        .def = "3000",
        .minval = 1,
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "aoe_inflight",
        .lname = "AoE frames in flight",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct mvblk_fio_options, aoe_inflight),
        .help = "Frames in flight per target (0: the target's buffer count)",
        .def = "0",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = NULL,
    },
};

/* "9.9", "e9.9": shelf 0..65534, slot 0..254 (the broadcast values are not addresses). */
static int mvblk_fio_parse_target(const char *s, uint16_t *shelf, uint8_t *slot)
{
    if (*s == 'e')
        s++;
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || dot - s > 5)
        return -EINVAL;
    char head[6];
    memcpy(head, s, (size_t)(dot - s));
    head[dot - s] = '\0';
    uint32_t sh, sl;
    if (mv_parse_u32(head, &sh) || mv_parse_u32(dot + 1, &sl) || sh >= AOE_SHELF_ANY ||
        sl >= AOE_SLOT_ANY)
        return -EINVAL;
    *shelf = (uint16_t)sh;
    *slot = (uint8_t)sl;
    return 0;
}

static int mvblk_fio_file_target(struct thread_data *td, struct fio_file *f, uint16_t *shelf,
                                 uint8_t *slot)
{
    const struct mvblk_fio_options *o = td->eo;
    const char *name = o->aoe_target ? o->aoe_target : f->file_name;
    if (mvblk_fio_parse_target(name, shelf, slot)) {
        log_err("mvblk: '%s' is no AoE address: set aoe_target=SHELF.SLOT or filename=eS.S\n",
                name);
        return -EINVAL;
    }
    return 0;
}

static int mvblk_fio_open_port(struct thread_data *td, struct mvblk **out)
{
    const struct mvblk_fio_options *o = td->eo;
    struct mvblk_config cfg = {0};
    uint8_t src_mac[6];
    if (!!o->aoe_if == !!o->aoe_unix) {
        log_err("mvblk: set exactly one of aoe_if=IFACE and aoe_unix=PATH\n");
        return -EINVAL;
    }
    if (o->aoe_if) {
        if (o->aoe_xdp)
            mv_port_link_xdp();
        cfg.kind = o->aoe_xdp ? MV_PORT_XDP : MV_PORT_PACKET;
        cfg.ifname = o->aoe_if;
    } else {
        cfg.kind = MV_PORT_UNIX;
        cfg.unix_path = o->aoe_unix;
    }
    if (o->aoe_src_mac) {
        if (mv_mac_parse(o->aoe_src_mac, src_mac)) {
            log_err("mvblk: aoe_src_mac=%s is no MAC address\n", o->aoe_src_mac);
            return -EINVAL;
        }
        cfg.mac = src_mac;
    }
    cfg.max_inflight = o->aoe_inflight;
    char err[256];
    int rc = mvblk_open(&cfg, out, err, sizeof(err));
    if (rc < 0)
        log_err("mvblk: %s\n", err);
    return rc;
}

static int mvblk_fio_attach(struct thread_data *td, struct mvblk *b, struct fio_file *f,
                            struct mvblk_dev **out)
{
    const struct mvblk_fio_options *o = td->eo;
    uint16_t shelf;
    uint8_t slot, mac[6];
    int rc = mvblk_fio_file_target(td, f, &shelf, &slot);
    if (rc)
        return rc;
    if (o->aoe_mac && mv_mac_parse(o->aoe_mac, mac)) {
        log_err("mvblk: aoe_mac=%s is no MAC address\n", o->aoe_mac);
        return -EINVAL;
    }
    char err[256];
    rc = mvblk_attach_mac(b, shelf, slot, o->aoe_mac ? mac : NULL, o->aoe_timeout_ms, 0, out, err,
                          sizeof(err));
    if (rc < 0)
        log_err("mvblk: e%u.%u: %s\n", shelf, slot, err);
    return rc;
}

/* Runs in whichever process sets the files up (fio's parent with create_serialize): a port of
 * its own, closed again, so no socket is shared across fio's fork. */
static int mvblk_fio_get_file_size(struct thread_data *td, struct fio_file *f)
{
    if (fio_file_size_known(f))
        return 0;
    struct mvblk *b;
    int rc = mvblk_fio_open_port(td, &b);
    if (rc < 0) {
        td_verror(td, -rc, "mvblk_open");
        return 1;
    }
    struct mvblk_dev *dev;
    rc = mvblk_fio_attach(td, b, f, &dev);
    if (rc < 0) {
        mvblk_close(b);
        td_verror(td, -rc, "mvblk_attach");
        return 1;
    }
    f->real_file_size = mvblk_dev_sectors(dev) * MVBLK_FIO_SECTOR;
    fio_file_set_size_known(f);
    mvblk_detach(dev);
    mvblk_close(b);
    return 0;
}

static int mvblk_fio_init(struct thread_data *td)
{
    struct mvblk_fio_data *d = calloc(1, sizeof(*d));
    if (!d)
        return 1;
    d->depth = td->o.iodepth ? td->o.iodepth : 1;
    d->pending = calloc(d->depth, sizeof(*d->pending));
    d->events = calloc(d->depth, sizeof(*d->events));
    td->io_ops_data = d;
    if (!d->pending || !d->events) {
        td_verror(td, ENOMEM, "calloc");
        return 1;
    }
    int rc = mvblk_fio_open_port(td, &d->b);
    if (rc < 0) {
        td_verror(td, -rc, "mvblk_open");
        return 1;
    }
    return 0;
}

static void mvblk_fio_cleanup(struct thread_data *td)
{
    struct mvblk_fio_data *d = td->io_ops_data;
    if (!d)
        return;
    if (d->b)
        mvblk_close(d->b);
    free(d->pending);
    free(d->events);
    free(d);
    td->io_ops_data = NULL;
}

static int mvblk_fio_open_file(struct thread_data *td, struct fio_file *f)
{
    struct mvblk_fio_data *d = td->io_ops_data;
    struct mvblk_fio_file *ff = calloc(1, sizeof(*ff));
    if (!ff) {
        td_verror(td, ENOMEM, "calloc");
        return 1;
    }
    int rc = mvblk_fio_attach(td, d->b, f, &ff->dev);
    if (rc < 0) {
        free(ff);
        td_verror(td, -rc, "mvblk_attach");
        return 1;
    }
    uint64_t size = mvblk_dev_sectors(ff->dev) * MVBLK_FIO_SECTOR;
    if (fio_file_size_known(f) && f->real_file_size != size)
        log_info("mvblk: %s changed size from %llu to %llu bytes\n", f->file_name,
                 (unsigned long long)f->real_file_size, (unsigned long long)size);
    f->real_file_size = size;
    fio_file_set_size_known(f);
    FILE_SET_ENG_DATA(f, ff);
    return 0;
}

static int mvblk_fio_close_file(struct thread_data *td, struct fio_file *f)
{
    struct mvblk_fio_file *ff = FILE_ENG_DATA(f);
    if (ff) {
        /* Requests of this file still in flight would complete into freed memory. */
        struct mvblk_fio_data *d = td->io_ops_data;
        while (d && mvblk_outstanding(d->b) > 0 && mvblk_poll(d->b, 100) >= 0)
            ;
        mvblk_detach(ff->dev);
        free(ff);
        FILE_SET_ENG_DATA(f, NULL);
    }
    return 0;
}

static int mvblk_fio_invalidate(struct thread_data *td, struct fio_file *f)
{
    return 0; /* no initiator-side cache to drop */
}

static int mvblk_fio_io_u_init(struct thread_data *td, struct io_u *io_u)
{
    struct mvblk_fio_req *r = calloc(1, sizeof(*r));
    if (!r)
        return 1;
    r->io_u = io_u;
    r->data = td->io_ops_data;
    io_u->engine_data = r;
    return 0;
}

static void mvblk_fio_io_u_free(struct thread_data *td, struct io_u *io_u)
{
    free(io_u->engine_data);
    io_u->engine_data = NULL;
}

static void mvblk_fio_req_done(struct mvblk_req *req, int status)
{
    struct mvblk_fio_req *r = req->priv;
    struct mvblk_fio_data *d = r->data;
    struct io_u *io_u = r->io_u;
    io_u->error = status < 0 ? -status : 0;
    io_u->resid = status < 0 ? io_u->xfer_buflen : 0;
    /* At most depth io_us exist, so events[] never overflows. */
    d->events[d->nevents++] = io_u;
}

static enum fio_q_status mvblk_fio_queue(struct thread_data *td, struct io_u *io_u)
{
    struct mvblk_fio_data *d = td->io_ops_data;
    struct mvblk_fio_req *r = io_u->engine_data;
    fio_ro_check(td, io_u);

    memset(&r->req, 0, sizeof(r->req));
    r->req.priv = r;
    r->req.done = mvblk_fio_req_done;
    switch (io_u->ddir) {
    case DDIR_READ:
    case DDIR_WRITE:
        if (io_u->offset % MVBLK_FIO_SECTOR || io_u->xfer_buflen % MVBLK_FIO_SECTOR ||
            io_u->xfer_buflen == 0 || io_u->xfer_buflen / MVBLK_FIO_SECTOR > UINT32_MAX) {
            io_u->error = EINVAL; /* AoE moves whole 512-byte sectors */
            return FIO_Q_COMPLETED;
        }
        r->req.op = io_u->ddir == DDIR_READ ? MVBLK_READ : MVBLK_WRITE;
        r->req.lba = io_u->offset / MVBLK_FIO_SECTOR;
        r->req.count = (uint32_t)(io_u->xfer_buflen / MVBLK_FIO_SECTOR);
        r->req.buf = io_u->xfer_buf;
        break;
    case DDIR_SYNC:
    case DDIR_DATASYNC:
        r->req.op = MVBLK_FLUSH; /* ATA FLUSH CACHE: fdatasync on the target */
        break;
    default:
        io_u->error = EOPNOTSUPP; /* no TRIM in AoE r11 */
        return FIO_Q_COMPLETED;
    }
    if (d->npending >= d->depth)
        return FIO_Q_BUSY;
    d->pending[d->npending++] = io_u;
    return FIO_Q_QUEUED;
}

static int mvblk_fio_commit(struct thread_data *td)
{
    struct mvblk_fio_data *d = td->io_ops_data;
    for (unsigned i = 0; i < d->npending; i++) {
        struct io_u *io_u = d->pending[i];
        struct mvblk_fio_req *r = io_u->engine_data;
        struct mvblk_fio_file *ff = FILE_ENG_DATA(io_u->file);
        int rc = ff ? mvblk_submit(ff->dev, &r->req) : -EBADF;
        if (rc < 0) {
            /* Refused before anything was sent: complete it with the error through the same
             * path as a completion, so fio sees every queued io_u come back once. */
            mvblk_fio_req_done(&r->req, rc);
        }
    }
    d->npending = 0;
    return 0;
}

static int mvblk_fio_getevents(struct thread_data *td, unsigned int min, unsigned int max,
                               const struct timespec *t)
{
    struct mvblk_fio_data *d = td->io_ops_data;
    /* Drop the events handed out by the previous call; keep any extra completions. */
    if (d->handed) {
        memmove(d->events, d->events + d->handed, (d->nevents - d->handed) * sizeof(*d->events));
        d->nevents -= d->handed;
        d->handed = 0;
    }
    uint64_t deadline = t ? mv_now_ns() + (uint64_t)t->tv_sec * 1000000000ull + t->tv_nsec : 0;
    int rc = mvblk_poll(d->b, 0); /* collect whatever is ready without sleeping */
    while (rc >= 0 && d->nevents < min) {
        int wait = -1;
        if (t) {
            uint64_t now = mv_now_ns();
            if (now >= deadline)
                break;
            wait = (int)((deadline - now + 999999) / 1000000);
        }
        rc = mvblk_poll(d->b, wait);
    }
    if (rc < 0 && rc != -EINTR) {
        td_verror(td, -rc, "mvblk_poll");
        return rc;
    }
    d->handed = d->nevents < max ? d->nevents : max;
    return (int)d->handed;
}

static struct io_u *mvblk_fio_event(struct thread_data *td, int event)
{
    struct mvblk_fio_data *d = td->io_ops_data;
    if (event < 0 || (unsigned)event >= d->handed)
        return NULL;
    return d->events[event];
}

/* fio looks this symbol up by name after dlopen(). */
__attribute__((visibility("default"))) struct ioengine_ops ioengine = {
    .name = "mvblk",
    .version = FIO_IOOPS_VERSION,
    .flags = FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NODISKUTIL,
    .init = mvblk_fio_init,
    .cleanup = mvblk_fio_cleanup,
    .queue = mvblk_fio_queue,
    .commit = mvblk_fio_commit,
    .getevents = mvblk_fio_getevents,
    .event = mvblk_fio_event,
    .open_file = mvblk_fio_open_file,
    .close_file = mvblk_fio_close_file,
    .invalidate = mvblk_fio_invalidate,
    .get_file_size = mvblk_fio_get_file_size,
    .io_u_init = mvblk_fio_io_u_init,
    .io_u_free = mvblk_fio_io_u_free,
    .options = mvblk_fio_option_table,
    .option_struct_size = sizeof(struct mvblk_fio_options),
};
