#include "mvctld/conf.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "mv/config.h"
#include "mv/log.h"
#include "mv/util.h"

void mvctld_conf_defaults(struct mvctld_conf *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1");
    c->port = 8080;
    c->threads = 2;
    snprintf(c->db_path, sizeof c->db_path, "/var/lib/mvkvm/mvctld.db");
    snprintf(c->admin_user, sizeof c->admin_user, "admin");
    c->log_level = LOG_INFO;
    snprintf(c->wire.key_file, sizeof c->wire.key_file, "/etc/mvkvm/cluster.key");
    c->wire.hello_ms = 1000;
    c->wire.dead_after_ms = 4000;
    c->wire.inventory_s = 30;
    c->wire.format_timeout_s = 60;
    c->wire.reconcile_ms = 2000;
    c->wire.vm_stop_timeout_ms = 10000;
}

static int copy(char *dst, size_t cap, const char *key, const char *value, char *err,
                size_t errlen);

static int set_range(unsigned *dst, const char *key, const char *value, unsigned lo, unsigned hi,
                     char *err, size_t errlen)
{
    uint32_t n;
    if (mv_parse_u32(value, &n) != 0 || n < lo || n > hi) {
        snprintf(err, errlen, "%s must be %u-%u, not '%s'", key, lo, hi, value);
        return -1;
    }
    *dst = n;
    return 0;
}

static int wire_set(struct mvctld_wire_conf *w, const char *key, const char *value, char *err,
                    size_t errlen)
{
    if (strcmp(key, "interface") == 0)
        return copy(w->ifname, sizeof w->ifname, key, value, err, errlen);
    if (strcmp(key, "key_file") == 0)
        return copy(w->key_file, sizeof w->key_file, key, value, err, errlen);
    if (strcmp(key, "node_name") == 0)
        return copy(w->node_name, sizeof w->node_name, key, value, err, errlen);
    if (strcmp(key, "state_file") == 0)
        return copy(w->state_file, sizeof w->state_file, key, value, err, errlen);
    if (strcmp(key, "blade") == 0)
        return copy(w->blade, sizeof w->blade, key, value, err, errlen);
    if (strcmp(key, "chassis") == 0)
        return copy(w->chassis, sizeof w->chassis, key, value, err, errlen);
    if (strcmp(key, "rack") == 0)
        return copy(w->rack, sizeof w->rack, key, value, err, errlen);
    if (strcmp(key, "hello_interval_ms") == 0)
        return set_range(&w->hello_ms, key, value, 100, 60000, err, errlen);
    if (strcmp(key, "dead_after_ms") == 0)
        return set_range(&w->dead_after_ms, key, value, 300, 600000, err, errlen);
    if (strcmp(key, "inventory_interval") == 0)
        return set_range(&w->inventory_s, key, value, 1, 86400, err, errlen);
    if (strcmp(key, "vm_stop_timeout_ms") == 0)
        return set_range(&w->vm_stop_timeout_ms, key, value, 0, 600000, err, errlen);
    if (strcmp(key, "reconcile_interval_ms") == 0)
        return set_range(&w->reconcile_ms, key, value, 100, 3600000, err, errlen);
    if (strcmp(key, "format_timeout") == 0)
        return set_range(&w->format_timeout_s, key, value, 1, 3600, err, errlen);
    snprintf(err, errlen, "unknown key '%s' in [wire]", key);
    return -1;
}

static int copy(char *dst, size_t cap, const char *key, const char *value, char *err, size_t errlen)
{
    if (strlen(value) >= cap) {
        snprintf(err, errlen, "%s is too long (at most %zu bytes)", key, cap - 1);
        return -1;
    }
    snprintf(dst, cap, "%s", value);
    return 0;
}

int mvctld_conf_set(struct mvctld_conf *c, const char *key, const char *value, char *err,
                    size_t errlen)
{
    uint32_t n;
    if (strncmp(key, "wire.", 5) == 0)
        return wire_set(&c->wire, key + 5, value, err, errlen);
    if (strcmp(key, "listen") == 0)
        return copy(c->listen, sizeof c->listen, key, value, err, errlen);
    if (strcmp(key, "port") == 0) {
        if (mv_parse_u32(value, &n) != 0 || n > 65535) { /* 0: any free port */
            snprintf(err, errlen, "port must be 0-65535, not '%s'", value);
            return -1;
        }
        c->port = n;
        return 0;
    }
    if (strcmp(key, "threads") == 0) {
        if (mv_parse_u32(value, &n) != 0 || n == 0 || n > 64) {
            snprintf(err, errlen, "threads must be 1-64, not '%s'", value);
            return -1;
        }
        c->threads = n;
        return 0;
    }
    if (strcmp(key, "db") == 0)
        return copy(c->db_path, sizeof c->db_path, key, value, err, errlen);
    if (strcmp(key, "admin_user") == 0)
        return copy(c->admin_user, sizeof c->admin_user, key, value, err, errlen);
    if (strcmp(key, "admin_password_hash") == 0)
        return copy(c->admin_password_hash, sizeof c->admin_password_hash, key, value, err, errlen);
    if (strcmp(key, "tls_cert") == 0)
        return copy(c->tls_cert, sizeof c->tls_cert, key, value, err, errlen);
    if (strcmp(key, "tls_key") == 0)
        return copy(c->tls_key, sizeof c->tls_key, key, value, err, errlen);
    if (strcmp(key, "log_level") == 0) {
        int lvl = mv_log_level_from_name(value);
        if (lvl < 0) {
            snprintf(err, errlen, "unknown log_level '%s'", value);
            return -1;
        }
        c->log_level = lvl;
        return 0;
    }
    snprintf(err, errlen, "unknown key '%s'", key);
    return -1;
}

static int conf_entry(void *user, const char *section, const char *key, const char *value,
                      char *err, size_t errlen)
{
    if (strcmp(section, "wire") == 0)
        return wire_set(&((struct mvctld_conf *)user)->wire, key, value, err, errlen);
    if (strcmp(section, "mvctld") != 0) {
        snprintf(err, errlen, "unknown section [%s] (expected [mvctld] or [wire])", section);
        return -1;
    }
    return mvctld_conf_set(user, key, value, err, errlen);
}

int mvctld_conf_load(struct mvctld_conf *c, const char *path, char *err, size_t errlen)
{
    return mv_config_load(path, conf_entry, c, err, errlen);
}
