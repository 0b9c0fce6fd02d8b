/* The wire thread: port + channel + discovery, agents' inventories and liveness, and the drive
 * commands the HTTP side queues (mvctld/wire.h). Only this thread touches the channel. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "mv/agent_proto.h"
#include "mv/auth.h"
#include "mv/chan_port.h"
#include "mv/channel.h"
#include "mv/discovery.h"
#include "mv/log.h"
#include "mv/port.h"
#include "mv/util.h"
#include "mvctld/instances.h"
#include "mvctld/inventory.h"
#include "mvctld/wire.h"
#include "sql.h"

#define SEC               1000000000ull
#define QUEUE_MAX         4096 /* queued host commands before host_ops say -EAGAIN */
#define INVENTORY_TIMEOUT (10 * SEC)
#define INVENTORY_RETRY   (2 * SEC)
#define LAST_SEEN_PERIOD  (10 * SEC)
#define MAX_POLL_MS       500
#define NODE_ID_LEN       16
#define VM_LIST_TIMEOUT   (10 * SEC)
#define VM_OP_TIMEOUT     (60 * SEC) /* vm_start waits for mvvmm; vm_stop for the guest */
#define PLAN_PERIOD       (1 * SEC)  /* the reconciler runs at least this often */

/* An agent the controller has heard from. */
struct wire_peer {
    uint64_t chan_id;
    char node_id[NODE_ID_LEN + 1]; /* the inventory's id: the chan id in 8 hex digits */
    uint64_t incarnation;
    bool alive;
    bool inventory_in_flight;
    uint64_t next_inventory_ns, next_seen_ns;
    /* Reconciler: its VM list was applied since it (or we) started; next periodic vm_list. */
    bool listed, list_in_flight;
    uint64_t next_list_ns;
};

/* A reconciler command (volume replica or VM op) waiting for its answer. */
struct wire_cmd {
    struct mvctld_wire *w;
    json_t *cmd;
};

/* A vm_list request waiting for its answer. */
struct wire_list_req {
    struct mvctld_wire *w;
    uint64_t chan_id;
    uint64_t incarnation;
    long long asked_at; /* realtime ns: the answer is a snapshot of that moment */
};

/* A drive command waiting for its answer. */
struct wire_op {
    struct mvctld_wire *w;
    bool release;
    bool resent; /* sent again once after the agent restarted under it */
    json_t *cmd;
    char disk[72], datastore[72], node[NODE_ID_LEN + 1];
    struct wire_op *next;
};

/* An inventory request waiting for its answer. */
struct wire_inv_req {
    struct mvctld_wire *w;
    uint64_t chan_id;
};

struct mvctld_wire {
    struct mvctld_wire_conf conf;
    struct mvctld_ctx *ctx;
    struct mvctld_db *db;
    struct mvctld_host_ops ops;

    struct mv_port *port;
    struct mv_chan *chan;
    struct mv_disc *disc;
    struct mv_chan_port cp;
    struct mv_keyring keys;

    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    int evfd;

    /* The queue between the HTTP threads and this one: {"kind", "datastore", "disks"}. */
    pthread_mutex_t qlock;
    json_t *queue;

    /* Wire thread only. */
    struct wire_peer *peers;
    unsigned npeers, cap;
    struct wire_op *ops_in_flight;
    json_t *grace_nodes; /* online in the database at start, not yet heard from */
    uint64_t grace_deadline_ns;
    /* Reconciler (wire thread): keys of commands in flight, when to plan next. */
    json_t *busy;
    uint64_t next_plan_ns;
    atomic_bool kicked;
};

/* ---------------------------------------------------------------- host ops (HTTP threads) */

static int enqueue(struct mvctld_wire *w, json_t *item)
{
    if (atomic_load(&w->stop)) {
        json_decref(item);
        return -ESHUTDOWN;
    }
    pthread_mutex_lock(&w->qlock);
    int rc = 0;
    if (json_array_size(w->queue) >= QUEUE_MAX)
        rc = -EAGAIN;
    else
        json_array_append(w->queue, item);
    pthread_mutex_unlock(&w->qlock);
    json_decref(item);
    if (rc == 0) {
        uint64_t one = 1;
        if (write(w->evfd, &one, sizeof one) < 0)
            mv_debug("wire: eventfd write: %s", strerror(errno));
    }
    return rc;
}

static int ops_format_drives(void *user, const char *node_id, const json_t *datastore,
                             const json_t *disk_ids)
{
    const char *ds = json_string_value(json_object_get(datastore, "id"));
    if (!ds)
        return -EINVAL;
    return enqueue(user, json_pack("{s:s, s:s, s:s, s:O}", "kind", "format", "node", node_id,
                                   "datastore", ds, "disks", disk_ids));
}

static int ops_release_drives(void *user, const char *node_id, const char *datastore_id,
                              const json_t *disk_ids)
{
    return enqueue(user, json_pack("{s:s, s:s, s:s, s:O}", "kind", "release", "node", node_id,
                                   "datastore", datastore_id, "disks", disk_ids));
}

static int ops_update_datastore(void *user, const char *node_id, const json_t *datastore)
{
    /* mvstored fixes a drive's overcommit limit when it formats it and has no request to change
     * it later: a changed policy applies to drives formatted from now on (docs/controller.md). */
    mv_debug("wire: datastore %s changed; node %s keeps its drives' format",
             json_string_value(json_object_get(datastore, "id")), node_id);
    return 0;
}

static void ops_kick(void *user)
{
    struct mvctld_wire *w = user;
    atomic_store(&w->kicked, true);
    uint64_t one = 1;
    if (write(w->evfd, &one, sizeof one) < 0)
        mv_debug("wire: eventfd write: %s", strerror(errno));
}

/* A synchronous vm_info for an HTTP thread: two references (the waiter and the wire thread's
 * callback), the last one frees it, so a waiter that timed out leaves safely. */
struct wire_sync {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    bool done;
    int status;
    json_t *reply;
    char err[256];
};

static void sync_put(struct wire_sync *s)
{
    pthread_mutex_lock(&s->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) {
        json_decref(s->reply);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
    }
}

static void sync_finish(struct wire_sync *s, int status, json_t *reply, const char *err)
{
    pthread_mutex_lock(&s->lock);
    s->done = true;
    s->status = status;
    s->reply = reply;
    snprintf(s->err, sizeof s->err, "%s", err ? err : "");
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    sync_put(s);
}

static int ops_vm_info(void *user, const char *node_id, const char *uuid, int timeout_ms,
                       json_t **out, char *err, size_t errlen)
{
    struct mvctld_wire *w = user;
    struct wire_sync *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, errlen, "out of memory"), -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    s->refs = 2;
    int rc = enqueue(w, json_pack("{s:s, s:s, s:s, s:I}", "kind", "vm_info", "node", node_id,
                                  "uuid", uuid, "sync", (json_int_t)(intptr_t)s));
    if (rc != 0) {
        s->refs = 1;
        sync_put(s);
        return snprintf(err, errlen, "the wire layer is not taking requests"), rc;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->done && pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
        ;
    bool done = s->done;
    rc = done ? s->status : -ETIMEDOUT;
    if (done && rc == 0)
        *out = json_incref(s->reply);
    snprintf(err, errlen, "%s", done ? s->err : "no answer in time");
    pthread_mutex_unlock(&s->lock);
    sync_put(s);
    return rc;
}

static void on_vm_info(void *user, int status, const struct mv_chan_msg *resp)
{
    struct wire_sync *s = user;
    char err[256] = "";
    json_t *reply = NULL;
    if (status == 0)
        status = mv_agent_reply_parse(resp->status, resp->data, resp->len, &reply, err, sizeof err);
    else
        snprintf(err, sizeof err, "the agent did not answer: %s", strerror(-status));
    sync_finish(s, status, reply, err);
}

static uint64_t chan_id_of(const char *node_id);

static void send_vm_info(struct mvctld_wire *w, const json_t *item, uint64_t now)
{
    struct wire_sync *s =
        (struct wire_sync *)(intptr_t)json_integer_value(json_object_get(item, "sync"));
    const char *node = json_string_value(json_object_get(item, "node"));
    json_t *payload = json_pack("{s:s}", "uuid", json_string_value(json_object_get(item, "uuid")));
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    long id = text ? mv_chan_request(w->chan, chan_id_of(node), MVCTLD_OP_VM_INFO, text,
                                     strlen(text), 5 * SEC, on_vm_info, s, now)
                   : -ENOMEM;
    free(text);
    if (id <= 0)
        sync_finish(s, (int)id, NULL, "node unreachable");
}

/* ---------------------------------------------------------------- peers */

static struct wire_peer *peer_find(struct mvctld_wire *w, uint64_t chan_id)
{
    for (unsigned i = 0; i < w->npeers; i++)
        if (w->peers[i].chan_id == chan_id)
            return &w->peers[i];
    return NULL;
}

static struct wire_peer *peer_add(struct mvctld_wire *w, uint64_t chan_id)
{
    struct wire_peer *p = peer_find(w, chan_id);
    if (p)
        return p;
    if (w->npeers == w->cap) {
        unsigned ncap = w->cap ? 2 * w->cap : 16;
        struct wire_peer *np = realloc(w->peers, ncap * sizeof *np);
        if (!np)
            return NULL;
        w->peers = np;
        w->cap = ncap;
    }
    p = &w->peers[w->npeers++];
    memset(p, 0, sizeof *p);
    p->chan_id = chan_id;
    /* The agent's node id is the last four MAC bytes, the inventory writes them in hex. */
    snprintf(p->node_id, sizeof p->node_id, "%08" PRIx64, chan_id);
    return p;
}

static uint64_t chan_id_of(const char *node_id)
{
    uint64_t v = 0;
    size_t n = strlen(node_id);
    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = node_id[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    return v;
}

/* ---------------------------------------------------------------- drive commands */

/* Same command for the same disk already sent (a format and a later release may overlap: the
 * channel delivers them in order and the agent runs them in order). */
static bool op_in_flight(struct mvctld_wire *w, const char *disk, bool release)
{
    for (struct wire_op *o = w->ops_in_flight; o; o = o->next)
        if (o->release == release && strcmp(o->disk, disk) == 0)
            return true;
    return false;
}

static void op_unlink(struct mvctld_wire *w, struct wire_op *op)
{
    for (struct wire_op **pp = &w->ops_in_flight; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            return;
        }
}

static void op_free(struct wire_op *op)
{
    json_decref(op->cmd);
    free(op);
}

static void send_command_once(struct mvctld_wire *w, const json_t *cmd, bool resent, uint64_t now);

static void on_drive_answer(void *user, int status, const struct mv_chan_msg *resp)
{
    struct wire_op *op = user;
    struct mvctld_wire *w = op->w;
    op_unlink(w, op);
    /* Shutting down: leave the disk pending; the next run sends the command again. */
    if (status == -ECANCELED || atomic_load(&w->stop)) {
        op_free(op);
        return;
    }
    /* The agent restarted before answering: it is back, so ask the new incarnation (once). */
    if (status == -ECONNRESET && !op->resent) {
        json_t *cmd = json_incref(op->cmd);
        op_free(op);
        send_command_once(w, cmd, true, mv_now_ns());
        json_decref(cmd);
        return;
    }
    char err[400] = "";
    struct mvctld_drive_result res = {0};
    int rc = status;
    if (rc == 0)
        rc = mvctld_wire_parse_format_reply(resp->status, resp->data, resp->len, &res, err,
                                            sizeof err);
    else
        snprintf(err, sizeof err, "node %s did not answer: %s", op->node, strerror(-status));
    if (op->release) {
        if (rc == 0)
            mvctld_wire_release_done(w->db, op->disk, op->datastore);
        else
            mv_warn("disk %s: release on node %s failed (retried after its next inventory): %s",
                    op->disk, op->node, err);
    } else {
        mvctld_wire_format_done(w->db, op->disk, op->datastore, rc == 0 ? &res : NULL, err);
    }
    op_free(op);
}

static void send_command_once(struct mvctld_wire *w, const json_t *cmd, bool resent, uint64_t now)
{
    const char *disk = json_string_value(json_object_get(cmd, "disk"));
    const char *node = json_string_value(json_object_get(cmd, "node"));
    const char *ds = json_string_value(json_object_get(cmd, "datastore"));
    const char *kind = json_string_value(json_object_get(cmd, "op"));
    bool release = kind && strcmp(kind, "release") == 0;
    if (!disk || !node || !ds || op_in_flight(w, disk, release))
        return;
    json_t *payload = mvctld_wire_request_payload(cmd);
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    struct wire_op *op = calloc(1, sizeof *op);
    if (!text || !op) {
        free(text);
        free(op);
        return;
    }
    op->w = w;
    op->release = release;
    op->resent = resent;
    op->cmd = json_deep_copy(cmd);
    snprintf(op->disk, sizeof op->disk, "%s", disk);
    snprintf(op->datastore, sizeof op->datastore, "%s", ds);
    snprintf(op->node, sizeof op->node, "%s", node);
    long id =
        mv_chan_request(w->chan, chan_id_of(node), MV_AGENT_OP_DRIVE_FORMAT, text, strlen(text),
                        (uint64_t)w->conf.format_timeout_s * SEC, on_drive_answer, op, now);
    free(text);
    if (id > 0) {
        op->next = w->ops_in_flight;
        w->ops_in_flight = op;
        mv_info("disk %s: %s on node %s sent (datastore %s)", disk, release ? "release" : "format",
                node, ds);
        return;
    }
    char err[200];
    snprintf(err, sizeof err, "node %s is unreachable: %s", node, strerror((int)-id));
    if (release)
        mv_warn("disk %s: release not sent (retried after its next inventory): %s", disk, err);
    else
        mvctld_wire_format_done(w->db, disk, ds, NULL, err);
    op_free(op);
}

static void send_command(struct mvctld_wire *w, const json_t *cmd, uint64_t now)
{
    send_command_once(w, cmd, false, now);
}

static void send_commands(struct mvctld_wire *w, json_t *cmds, uint64_t now)
{
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c)
    {
        send_command(w, c, now);
    }
    json_decref(cmds);
}

static void drain_queue(struct mvctld_wire *w, uint64_t now)
{
    uint64_t cnt;
    if (read(w->evfd, &cnt, sizeof cnt) < 0 && errno != EAGAIN)
        mv_debug("wire: eventfd read: %s", strerror(errno));
    pthread_mutex_lock(&w->qlock);
    json_t *items = w->queue;
    w->queue = json_array();
    pthread_mutex_unlock(&w->qlock);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *kind = json_string_value(json_object_get(it, "kind"));
        const char *ds = json_string_value(json_object_get(it, "datastore"));
        const json_t *disks = json_object_get(it, "disks");
        if (strcmp(kind, "vm_info") == 0)
            send_vm_info(w, it, now);
        else if (strcmp(kind, "format") == 0)
            send_commands(w, mvctld_wire_plan_format(w->db, ds, disks), now);
        else
            send_commands(w, mvctld_wire_plan_release(w->db, ds, disks), now);
    }
    json_decref(items);
}

/* ---------------------------------------------------------------- reconciler */

static void on_cmd_answer(void *user, int status, const struct mv_chan_msg *resp)
{
    struct wire_cmd *wc = user;
    struct mvctld_wire *w = wc->w;
    const char *key = json_string_value(json_object_get(wc->cmd, "key"));
    if (key)
        json_object_del(w->busy, key);
    const char *op = json_string_value(json_object_get(wc->cmd, "op"));
    const char *node = json_string_value(json_object_get(wc->cmd, "node"));
    if (status == -ECANCELED || atomic_load(&w->stop)) {
        json_decref(wc->cmd);
        free(wc);
        return;
    }
    if (status != 0) {
        /* No answer (host down, restarted, timeout): the outcome is unknown, so nothing is
         * recorded; the host's next vm_list tells, and the plan sends it again if needed. */
        mv_warn("%s on node %s: no answer: %s", op, node, strerror(-status));
    } else {
        char err[400] = "";
        json_t *reply = NULL;
        int rc = mv_agent_reply_parse(resp->status, resp->data, resp->len, &reply, err, sizeof err);
        mvctld_reconcile_done(w->db, wc->cmd, rc, reply, err);
        json_decref(reply);
        mv_info("%s on node %s (%s): %s", op, node, key ? key : "", rc == 0 ? "done" : err);
    }
    json_decref(wc->cmd);
    free(wc);
    atomic_store(&w->kicked, true); /* the next step may be ready (migration, deletion) */
}

static void send_reconcile_cmd(struct mvctld_wire *w, json_t *cmd, uint64_t now)
{
    const char *op = json_string_value(json_object_get(cmd, "op"));
    const char *key = json_string_value(json_object_get(cmd, "key"));
    if (!op || !key)
        return;
    if (strcmp(op, "forget") == 0) { /* database only */
        mvctld_reconcile_done(w->db, cmd, 0, NULL, NULL);
        return;
    }
    const char *node = json_string_value(json_object_get(cmd, "node"));
    char *text = json_dumps(json_object_get(cmd, "payload"), JSON_COMPACT);
    struct wire_cmd *wc = calloc(1, sizeof *wc);
    if (!text || !wc || !node) {
        free(text);
        free(wc);
        return;
    }
    wc->w = w;
    wc->cmd = json_incref(cmd);
    json_object_set_new(w->busy, key, json_true());
    long id = mv_chan_request(w->chan, chan_id_of(node),
                              (uint16_t)json_integer_value(json_object_get(cmd, "code")), text,
                              strlen(text), VM_OP_TIMEOUT, on_cmd_answer, wc, now);
    free(text);
    if (id <= 0) {
        mv_warn("%s on node %s not sent: %s", op, node, strerror((int)-id));
        json_object_del(w->busy, key);
        json_decref(wc->cmd);
        free(wc);
        return;
    }
    mv_info("%s sent to node %s (%s)", op, node, key);
}

static void reconcile(struct mvctld_wire *w, uint64_t now)
{
    json_t *listed = json_object();
    for (unsigned i = 0; i < w->npeers; i++)
        if (w->peers[i].alive && w->peers[i].listed)
            json_object_set_new(listed, w->peers[i].node_id, json_true());
    /* Nodes online in the database at our start and not heard from yet count as not listed:
     * they may run VMs we do not know about. */
    json_t *cmds = mvctld_reconcile_plan(w->db, w->busy, listed, (int)w->conf.vm_stop_timeout_ms);
    if (json_array_size(w->grace_nodes) > 0) {
        /* Only replica operations until the grace period ends; no VM is started. */
        size_t i;
        json_t *c;
        json_array_foreach(cmds, i, c)
        {
            if (json_object_get(c, "volume"))
                send_reconcile_cmd(w, c, now);
        }
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(cmds, i, c)
        {
            send_reconcile_cmd(w, c, now);
        }
    }
    json_decref(cmds);
    json_decref(listed);
    w->next_plan_ns = now + PLAN_PERIOD;
}

static void on_vm_list(void *user, int status, const struct mv_chan_msg *resp)
{
    struct wire_list_req *req = user;
    struct mvctld_wire *w = req->w;
    struct wire_peer *p = peer_find(w, req->chan_id);
    uint64_t inc = req->incarnation;
    long long asked_at = req->asked_at;
    free(req);
    if (!p || status == -ECANCELED || atomic_load(&w->stop))
        return;
    p->list_in_flight = false;
    uint64_t now = mv_now_ns();
    p->next_list_ns = now + (uint64_t)w->conf.reconcile_ms * 1000000ull;
    char err[400];
    json_t *ans = NULL;
    int rc = status;
    if (rc == 0)
        rc = mv_agent_reply_parse(resp->status, resp->data, resp->len, &ans, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s", strerror(-status));
    if (rc == 0 && p->incarnation != inc) {
        rc = -ESTALE; /* answered by an agent that restarted since: ask the new one */
        p->next_list_ns = now;
    }
    if (rc == 0 && mvctld_reconcile_vm_list(w->db, p->node_id, ans, asked_at, w->busy) < 0) {
        snprintf(err, sizeof err, "malformed vm_list answer");
        rc = -EPROTO;
    }
    json_decref(ans);
    if (rc != 0) {
        if (rc != -ESTALE)
            mv_warn("vm_list of node %s: %s", p->node_id, err);
        return;
    }
    if (!p->listed)
        mv_info("node %s listed its VMs", p->node_id);
    p->listed = true;
    atomic_store(&w->kicked, true);
}

static void request_vm_list(struct mvctld_wire *w, struct wire_peer *p, uint64_t now)
{
    if (p->list_in_flight)
        return;
    struct wire_list_req *req = malloc(sizeof *req);
    if (!req)
        return;
    *req = (struct wire_list_req){.w = w,
                                  .chan_id = p->chan_id,
                                  .incarnation = p->incarnation,
                                  .asked_at = (long long)mv_realtime_ns()};
    long id = mv_chan_request(w->chan, p->chan_id, MVCTLD_OP_VM_LIST, "{}", 2, VM_LIST_TIMEOUT,
                              on_vm_list, req, now);
    if (id > 0) {
        p->list_in_flight = true;
        p->next_list_ns = UINT64_MAX;
    } else {
        free(req);
        p->next_list_ns = now + INVENTORY_RETRY;
    }
}

/* ---------------------------------------------------------------- inventory */

static void on_inventory(void *user, int status, const struct mv_chan_msg *resp)
{
    struct wire_inv_req *req = user;
    struct mvctld_wire *w = req->w;
    struct wire_peer *p = peer_find(w, req->chan_id);
    free(req);
    if (!p || status == -ECANCELED || atomic_load(&w->stop))
        return;
    p->inventory_in_flight = false;
    uint64_t now = mv_now_ns();
    char err[400];
    json_t *inv = NULL;
    int rc = status;
    if (rc == 0)
        rc = mv_agent_reply_parse(resp->status, resp->data, resp->len, &inv, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s", strerror(-status));
    const char *node = json_string_value(json_object_get(inv, "node_id"));
    if (rc == 0 && (!node || strcmp(node, p->node_id) != 0)) {
        snprintf(err, sizeof err, "inventory names node '%.64s', the channel says %s",
                 node ? node : "(none)", p->node_id);
        rc = -EPROTO;
    }
    if (rc == 0 && mvctld_inventory_apply(w->db, inv, MVCTLD_INV_AGENT, err, sizeof err) != 0)
        rc = -EINVAL;
    if (rc != 0) {
        mv_warn("inventory of node %s: %s", p->node_id, err);
        p->next_inventory_ns = now + INVENTORY_RETRY;
        json_decref(inv);
        return;
    }
    p->next_inventory_ns = now + (uint64_t)w->conf.inventory_s * SEC;
    p->next_seen_ns = now + LAST_SEEN_PERIOD;
    json_t *cmds = mvctld_wire_reconcile(w->db, p->node_id, inv);
    json_decref(inv);
    /* The peer table may move (realloc) in callbacks: p is not used after this. */
    send_commands(w, cmds, now);
}

static void request_inventory(struct mvctld_wire *w, struct wire_peer *p, uint64_t now)
{
    if (p->inventory_in_flight)
        return;
    struct wire_inv_req *req = malloc(sizeof *req);
    if (!req)
        return;
    req->w = w;
    req->chan_id = p->chan_id;
    long id = mv_chan_request(w->chan, p->chan_id, MV_AGENT_OP_INVENTORY, "{}", 2,
                              INVENTORY_TIMEOUT, on_inventory, req, now);
    if (id > 0) {
        p->inventory_in_flight = true;
        p->next_inventory_ns = UINT64_MAX;
    } else {
        free(req);
        p->next_inventory_ns = now + INVENTORY_RETRY;
    }
}

/* ---------------------------------------------------------------- channel callbacks */

static void on_hello(void *user, const struct mv_ctrl_hdr *hdr, const uint8_t *payload, size_t len,
                     uint64_t now)
{
    struct mvctld_wire *w = user;
    mv_disc_handle_hello(w->disc, hdr, payload, len, now);
}

static void grace_forget(struct mvctld_wire *w, const char *node)
{
    size_t i;
    json_t *v;
    json_array_foreach(w->grace_nodes, i, v)
    {
        if (strcmp(json_string_value(v), node) == 0) {
            json_array_remove(w->grace_nodes, i);
            return;
        }
    }
}

static void on_disc(void *user, const struct mv_disc_peer *dp, enum mv_disc_event ev)
{
    struct mvctld_wire *w = user;
    /* Agents announce hypervisor and/or storage; other controllers are not hosts. */
    if (!(dp->hello.roles & (MV_ROLE_HYPERVISOR | MV_ROLE_STORAGE)))
        return;
    uint64_t now = mv_now_ns();
    struct wire_peer *p = ev == MV_DISC_DOWN ? peer_find(w, dp->node_id) : peer_add(w, dp->node_id);
    if (!p)
        return;
    switch (ev) {
    case MV_DISC_UP:
        mv_info("agent %s (%s) up, incarnation %" PRIu64, p->node_id, dp->hello.hostname,
                dp->incarnation);
        p->alive = true;
        p->incarnation = dp->incarnation;
        grace_forget(w, p->node_id);
        p->listed = false;
        request_inventory(w, p, now);
        request_vm_list(w, p, now);
        break;
    case MV_DISC_CHANGED:
        /* A restarted agent (new incarnation) or new labels: its inventory may have changed. */
        if (dp->incarnation != p->incarnation)
            mv_info("agent %s (%s) restarted, incarnation %" PRIu64, p->node_id, dp->hello.hostname,
                    dp->incarnation);
        if (dp->incarnation != p->incarnation) {
            p->inventory_in_flight = false; /* the restart failed the pending request */
            p->list_in_flight = false;
            p->listed = false; /* what it runs must be asked again before anything starts */
        }
        p->incarnation = dp->incarnation;
        p->alive = true;
        request_inventory(w, p, now);
        if (!p->listed)
            request_vm_list(w, p, now);
        break;
    case MV_DISC_DOWN:
        p->alive = false;
        p->listed = false;
        mv_warn("agent %s (%s) silent: node down", p->node_id, dp->hello.hostname);
        mvctld_node_lost(w->db, p->node_id);
        mvctld_reconcile_node_lost(w->db, p->node_id);
        break;
    }
}

static void on_chan_peer(void *user, uint64_t peer, const uint8_t mac[6],
                         enum mv_chan_peer_event ev)
{
    mv_debug("wire: channel peer %016" PRIx64 ": %s", peer, mv_chan_peer_event_name(ev));
}

/* ---------------------------------------------------------------- thread */

static void run_timers(struct mvctld_wire *w, uint64_t now)
{
    for (unsigned i = 0; i < w->npeers; i++) {
        struct wire_peer *p = &w->peers[i];
        if (!p->alive)
            continue;
        if (now >= p->next_list_ns)
            request_vm_list(w, p, now);
        if (now >= p->next_inventory_ns)
            request_inventory(w, p, now);
        else if (now >= p->next_seen_ns) {
            p->next_seen_ns = now + LAST_SEEN_PERIOD;
            if (mvctld_node_seen(w->db, p->node_id) == -ENOENT) /* forgotten meanwhile */
                request_inventory(w, p, now);
        }
    }
    if (w->grace_deadline_ns && now >= w->grace_deadline_ns) {
        /* Online when mvctld stopped, silent since it started: down. */
        size_t i;
        json_t *v;
        json_array_foreach(w->grace_nodes, i, v)
        {
            mv_warn("node %s not heard from since mvctld started: down", json_string_value(v));
            mvctld_node_lost(w->db, json_string_value(v));
        }
        json_array_clear(w->grace_nodes);
        w->grace_deadline_ns = 0;
        atomic_store(&w->kicked, true);
    }
    if (atomic_exchange(&w->kicked, false) || now >= w->next_plan_ns)
        reconcile(w, now);
}

static void *wire_main(void *arg)
{
    struct mvctld_wire *w = arg;
    while (!atomic_load(&w->stop)) {
        uint64_t now = mv_now_ns();
        int timeout = mv_chan_port_timeout_ms(&w->cp, now);
        if (timeout < 0 || timeout > MAX_POLL_MS)
            timeout = MAX_POLL_MS;
        struct pollfd pfd[2] = {{mv_chan_port_fd(&w->cp), POLLIN, 0}, {w->evfd, POLLIN, 0}};
        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            mv_err("wire: poll: %s", strerror(errno));
            break;
        }
        if (atomic_load(&w->stop))
            break;
        now = mv_now_ns();
        if (pfd[1].revents & POLLIN)
            drain_queue(w, now);
        int rc = mv_chan_port_process(&w->cp, now);
        if (rc < 0 && rc != -EAGAIN && rc != -EINTR)
            mv_warn("wire: control port: %s", strerror(-rc));
        run_timers(w, mv_now_ns());
    }
    return NULL;
}

/* ---------------------------------------------------------------- start / stop */

static void wire_free(struct mvctld_wire *w)
{
    if (w->disc)
        mv_disc_destroy(w->disc);
    if (w->chan)
        mv_chan_destroy(w->chan); /* fails what is in flight with -ECANCELED */
    if (w->port)
        mv_port_close(w->port);
    mv_keyring_wipe(&w->keys);
    while (w->ops_in_flight) { /* only if a request callback never ran */
        struct wire_op *o = w->ops_in_flight;
        w->ops_in_flight = o->next;
        op_free(o);
    }
    if (w->evfd >= 0)
        close(w->evfd);
    size_t qi;
    json_t *it;
    json_array_foreach(w->queue, qi, it)
    {
        /* A waiter of a vm_info that never went out: answer it. */
        if (json_object_get(it, "sync"))
            sync_finish(
                (struct wire_sync *)(intptr_t)json_integer_value(json_object_get(it, "sync")),
                -ESHUTDOWN, NULL, "mvctld is stopping");
    }
    json_decref(w->queue);
    json_decref(w->grace_nodes);
    json_decref(w->busy);
    pthread_mutex_destroy(&w->qlock);
    free(w->peers);
    free(w);
}

static json_t *online_agent_nodes(struct mvctld_db *db)
{
    json_t *a = json_array();
    mvctld_db_lock(db);
    sqlite3_stmt *st = mvctld_sql_query(
        db, "SELECT id FROM nodes WHERE source = 'agent' AND state = 'online'", NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(a, json_string(mvctld_sql_col_text(st, 0)));
    sqlite3_finalize(st);
    mvctld_db_unlock(db);
    return a;
}

struct mvctld_wire *mvctld_wire_start(const struct mvctld_conf *conf, struct mvctld_ctx *ctx,
                                      char *err, size_t errlen)
{
    struct mvctld_wire *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->conf = conf->wire;
    w->ctx = ctx;
    w->db = ctx->db;
    w->evfd = -1;
    pthread_mutex_init(&w->qlock, NULL);
    w->queue = json_array();
    w->busy = json_object();
    mv_keyring_init(&w->keys);
    char why[300];
    int rc;
    if ((rc = mv_keyring_load(&w->keys, w->conf.key_file, why, sizeof why)) != 0) {
        snprintf(err, errlen, "wire: key file %s: %s", w->conf.key_file, why);
        goto fail;
    }
    struct mv_port_config pc = {
        .kind = MV_PORT_PACKET,
        .ifname = w->conf.ifname,
        .ethertypes = {MV_ETHERTYPE_CTRL},
        .n_ethertypes = 1,
        .low_latency = true, /* request/response traffic: per-frame wakeups */
        .rx_ring_bytes = 1u << 20,
        .tx_ring_frames = 256,
    };
    if ((rc = mv_port_open(&pc, &w->port, why, sizeof why)) != 0) {
        snprintf(err, errlen, "wire: port on %s: %s", w->conf.ifname, why);
        goto fail;
    }
    const uint8_t *mac = mv_port_mac(w->port);
    uint64_t inc;
    if ((rc = mv_incarnation_next(w->conf.state_file[0] ? w->conf.state_file : NULL,
                                  mv_realtime_ns(), &inc, why, sizeof why)) != 0) {
        snprintf(err, errlen, "wire: incarnation: %s", why);
        goto fail;
    }
    /* Our node id: all six MAC bytes, so it never collides with an agent's (last four). */
    uint64_t node_id = 0;
    for (int i = 0; i < 6; i++)
        node_id = node_id << 8 | mac[i];
    if (node_id <= 0xffffffffull)
        node_id |= 1ull << 40;
    unsigned mtu = mv_port_mtu(w->port);
    struct mv_chan_config cc = {
        .node_id = node_id,
        .incarnation = inc,
        .mtu = mtu > 9000 ? 9000 : mtu,
        .keys = &w->keys,
        .send = mv_chan_port_send,
        .send_user = w->port,
        .on_peer = on_chan_peer,
        .on_hello = on_hello,
        .cb_user = w,
        .dead_after_ns = (uint64_t)w->conf.dead_after_ms * 1000000ull,
    };
    memcpy(cc.mac, mac, 6);
    if ((rc = mv_chan_create(&cc, &w->chan)) != 0) {
        snprintf(err, errlen, "wire: channel: %s", strerror(-rc));
        goto fail;
    }
    struct mv_disc_config dc = {
        .chan = w->chan,
        .interval_ns = (uint64_t)w->conf.hello_ms * 1000000ull,
        .dead_after_ns = (uint64_t)w->conf.dead_after_ms * 1000000ull,
        .on_event = on_disc,
        .cb_user = w,
    };
    memcpy(dc.self.mac, mac, 6);
    dc.self.roles = MV_ROLE_CONTROLLER;
    dc.self.interval_ms = w->conf.hello_ms;
    char host[64] = "mvctld";
    if (w->conf.node_name[0])
        snprintf(host, sizeof host, "%s", w->conf.node_name);
    else if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "mvctld");
    snprintf(dc.self.hostname, sizeof dc.self.hostname, "%.*s", MV_HELLO_HOSTNAME_MAX, host);
    snprintf(dc.self.version, sizeof dc.self.version, "%.*s", MV_HELLO_LABEL_MAX, MV_VERSION);
    snprintf(dc.self.blade, sizeof dc.self.blade, "%s", w->conf.blade);
    snprintf(dc.self.chassis, sizeof dc.self.chassis, "%s", w->conf.chassis);
    snprintf(dc.self.rack, sizeof dc.self.rack, "%s", w->conf.rack);
    if ((rc = mv_disc_create(&dc, &w->disc)) != 0) {
        snprintf(err, errlen, "wire: discovery: %s", strerror(-rc));
        goto fail;
    }
    w->cp = (struct mv_chan_port){.port = w->port, .chan = w->chan, .disc = w->disc};
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->evfd < 0) {
        snprintf(err, errlen, "wire: eventfd: %s", strerror(errno));
        goto fail;
    }
    w->grace_nodes = online_agent_nodes(w->db);
    w->grace_deadline_ns =
        mv_now_ns() + ((uint64_t)w->conf.dead_after_ms + w->conf.hello_ms) * 1000000ull;
    w->ops = (struct mvctld_host_ops){.format_drives = ops_format_drives,
                                      .release_drives = ops_release_drives,
                                      .update_datastore = ops_update_datastore,
                                      .kick = ops_kick,
                                      .vm_info = ops_vm_info};
    ctx->host_ops = &w->ops;
    ctx->host_ops_ctx = w;
    if ((rc = pthread_create(&w->thread, NULL, wire_main, w)) != 0) {
        ctx->host_ops = NULL;
        ctx->host_ops_ctx = NULL;
        snprintf(err, errlen, "wire: thread: %s", strerror(rc));
        goto fail;
    }
    w->thread_started = true;
    char macs[MV_MAC_STR_LEN];
    mv_mac_format(mac, macs);
    mv_info("wire: controller %s on %s (%s), node %016" PRIx64 ", incarnation %" PRIu64, host,
            w->conf.ifname, macs, node_id, inc);
    return w;
fail:
    wire_free(w);
    return NULL;
}

void mvctld_wire_stop(struct mvctld_wire *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    uint64_t one = 1;
    if (write(w->evfd, &one, sizeof one) < 0)
        mv_debug("wire: eventfd write: %s", strerror(errno));
    if (w->thread_started)
        pthread_join(w->thread, NULL);
    w->ctx->host_ops = NULL;
    w->ctx->host_ops_ctx = NULL;
    wire_free(w);
}
