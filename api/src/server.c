#include "mvctld/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/log.h"
#include "mv/util.h"
#include "mvctld/errors.h"
#include "mvctld/router.h"

#define CACHE_SLOTS 32
#define URL_MAX     256

/* A serialized response body shared by the cache and the responses MHD is still sending. */
struct shared_body {
    atomic_int refs;
    size_t len;
    char data[];
};

struct cache_slot {
    char url[URL_MAX];
    struct shared_body *body;
};

struct mvctld_server {
    struct MHD_Daemon *mhd;
    struct mvctld_ctx *ctx;
    struct mvctld_auth *auth;
    unsigned port;
    char *tls_cert, *tls_key;
    pthread_mutex_t cache_lock;
    uint64_t cache_token;
    struct cache_slot cache[CACHE_SLOTS];
    int cache_next;
};

struct request_state {
    char *body;
    size_t len, cap;
    bool too_large;
};

static void body_unref(struct shared_body *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

static void body_free_cb(void *cls)
{
    body_unref(cls);
}

static struct shared_body *body_from_json(const json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    struct shared_body *b = malloc(sizeof *b + len + 1);
    if (b) {
        atomic_init(&b->refs, 1);
        b->len = len;
        memcpy(b->data, text, len + 1);
    }
    free(text);
    return b;
}

/* Takes one reference of b. */
static enum MHD_Result send_body(struct MHD_Connection *conn, int status, struct shared_body *b,
                                 const char *allow, bool challenge)
{
    struct MHD_Response *r;
    if (b)
        r = MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data, body_free_cb,
                                                                   b);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        body_unref(b);
        return MHD_NO;
    }
    if (b)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (allow && *allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (challenge)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"mvctld\", charset=\"UTF-8\"");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, json_t *j,
                                 const char *allow, bool challenge)
{
    struct shared_body *b = j ? body_from_json(j) : NULL;
    json_decref(j);
    if (j && !b)
        return MHD_NO;
    return send_body(conn, status, b, allow, challenge);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *msg,
                                  bool challenge)
{
    return send_json(conn, status, mvctld_error_body(status, msg, NULL), NULL, challenge);
}

static bool authenticated(struct mvctld_server *s, struct MHD_Connection *conn)
{
    const char *header =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header)
        return false;
    if (mvctld_auth_cached(s->auth, header))
        return true;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(conn, &pass);
    bool ok = mvctld_auth_verify(s->auth, header, user, pass);
    if (pass) {
        sodium_memzero(pass, strlen(pass));
        MHD_free(pass);
    }
    if (user)
        MHD_free(user);
    return ok;
}

/* Returns a referenced cached body for url, or NULL. Drops the cache when the data changed. */
static struct shared_body *cache_get(struct mvctld_server *s, const char *url)
{
    struct shared_body *hit = NULL;
    mvctld_db_lock(s->ctx->db);
    uint64_t token = mvctld_db_change_token(s->ctx->db);
    mvctld_db_unlock(s->ctx->db);
    pthread_mutex_lock(&s->cache_lock);
    if (token != s->cache_token) {
        for (int i = 0; i < CACHE_SLOTS; i++) {
            body_unref(s->cache[i].body);
            s->cache[i].body = NULL;
        }
        s->cache_token = token;
    }
    for (int i = 0; i < CACHE_SLOTS && !hit; i++) {
        if (s->cache[i].body && strcmp(s->cache[i].url, url) == 0) {
            hit = s->cache[i].body;
            atomic_fetch_add(&hit->refs, 1);
        }
    }
    pthread_mutex_unlock(&s->cache_lock);
    return hit;
}

static void cache_put(struct mvctld_server *s, const char *url, uint64_t token,
                      struct shared_body *b)
{
    if (strlen(url) >= URL_MAX)
        return;
    pthread_mutex_lock(&s->cache_lock);
    if (token == s->cache_token) { /* else the data changed while we built the body */
        struct cache_slot *slot = &s->cache[s->cache_next];
        s->cache_next = (s->cache_next + 1) % CACHE_SLOTS;
        body_unref(slot->body);
        snprintf(slot->url, sizeof slot->url, "%s", url);
        atomic_fetch_add(&b->refs, 1);
        slot->body = b;
    }
    pthread_mutex_unlock(&s->cache_lock);
}

static enum MHD_Result handle_api(struct mvctld_server *s, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const struct request_state *st)
{
    struct mvctld_request rq = {
        .method = method,
        .path = url,
        .q_node_id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "node_id"),
        .q_free = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "free"),
        .body = st->body,
        .body_len = st->len,
    };
    bool cacheable = strcmp(method, "GET") == 0 &&
                     MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) == 0;
    if (cacheable) {
        struct shared_body *hit = cache_get(s, url);
        if (hit)
            return send_body(conn, 200, hit, NULL, false);
    }
    uint64_t token = 0;
    if (cacheable) {
        mvctld_db_lock(s->ctx->db);
        token = mvctld_db_change_token(s->ctx->db);
        mvctld_db_unlock(s->ctx->db);
    }
    struct mvctld_response rs;
    mvctld_api_handle(s->ctx, &rq, &rs);
    if (cacheable && rs.status == 200 && rs.body) {
        struct shared_body *b = body_from_json(rs.body);
        json_decref(rs.body);
        if (!b)
            return MHD_NO;
        cache_put(s, url, token, b);
        return send_body(conn, 200, b, NULL, false);
    }
    if (rs.status >= 500)
        mv_err("%s %s: %d", method, url, rs.status);
    return send_json(conn, rs.status, rs.body, rs.allow, false);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct mvctld_server *s = cls;
    struct request_state *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!st->too_large && st->len + *upload_size > MVCTLD_MAX_BODY) {
            st->too_large = true;
            free(st->body);
            st->body = NULL;
            st->len = st->cap = 0;
        }
        if (!st->too_large) {
            if (st->len + *upload_size > st->cap) {
                size_t cap = MV_MAX(st->cap * 2, st->len + *upload_size);
                char *nb = realloc(st->body, cap);
                if (!nb)
                    return MHD_NO;
                st->body = nb;
                st->cap = cap;
            }
            memcpy(st->body + st->len, upload_data, *upload_size);
            st->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/api/health") == 0) {
        if (strcmp(method, "GET") != 0)
            return send_json(conn, 405, mvctld_error_body(405, "Method not allowed.", NULL), "GET",
                             false);
        return send_json(conn, 200,
                         json_pack("{s:s, s:s, s:i}", "status", "ok", "version", MV_VERSION,
                                   "schema_version", mvctld_db_latest_version()),
                         NULL, false);
    }
    if (!authenticated(s, conn))
        return send_error(conn, 401, "Authentication required.", true);
    if (st->too_large)
        return send_error(conn, 413, "The request body is larger than 1 MiB.", false);
    return handle_api(s, conn, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request_state *st = *con_cls;
    if (st) {
        free(st->body);
        free(st);
    }
    *con_cls = NULL;
}

static char *slurp(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf && n == 0) {
        snprintf(err, errlen, "%s: empty", path);
        free(buf);
        return NULL;
    }
    return buf;
}

struct mvctld_server *mvctld_server_start(const struct mvctld_conf *conf, struct mvctld_ctx *ctx,
                                          struct mvctld_auth *auth, char *err, size_t errlen)
{
    struct mvctld_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->ctx = ctx;
    s->auth = auth;
    pthread_mutex_init(&s->cache_lock, NULL);
    struct sockaddr_in6 sa6 = {0};
    struct sockaddr_in sa4 = {0};
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, conf->listen, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)conf->port);
        sa = (struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, conf->listen, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)conf->port);
        sa = (struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "listen: '%s' is not an IP address", conf->listen);
        free(s);
        return NULL;
    }
    bool tls = conf->tls_cert[0] || conf->tls_key[0];
    if (tls) {
        if (!conf->tls_cert[0] || !conf->tls_key[0]) {
            snprintf(err, errlen, "HTTPS needs both tls_cert and tls_key");
            free(s);
            return NULL;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "this libmicrohttpd has no TLS support");
            free(s);
            return NULL;
        }
        s->tls_cert = slurp(conf->tls_cert, err, errlen);
        s->tls_key = s->tls_cert ? slurp(conf->tls_key, err, errlen) : NULL;
        if (!s->tls_key) {
            free(s->tls_cert);
            free(s);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, sa},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)conf->threads, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 1024, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, s->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    s->mhd = MHD_start_daemon(flags, (uint16_t)conf->port, NULL, NULL, on_request, s,
                              MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot listen on %s port %u (address in use, or bad TLS files?)",
                 conf->listen, conf->port);
        free(s->tls_cert);
        free(s->tls_key);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : conf->port;
    mv_info("serving the internal API on %s%s%s port %u (%s)",
            sa == (struct sockaddr *)&sa6 ? "[" : "", conf->listen,
            sa == (struct sockaddr *)&sa6 ? "]" : "", s->port, tls ? "https" : "http");
    return s;
}

unsigned mvctld_server_port(const struct mvctld_server *s)
{
    return s->port;
}

void mvctld_server_stop(struct mvctld_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    for (int i = 0; i < CACHE_SLOTS; i++)
        body_unref(s->cache[i].body);
    pthread_mutex_destroy(&s->cache_lock);
    free(s->tls_cert);
    free(s->tls_key);
    free(s);
}
