/* mvctld's configuration: an INI file (section [mvctld]) overridden by command-line flags. */
#ifndef MVCTLD_CONF_H
#define MVCTLD_CONF_H

#include <stddef.h>

#define MVCTLD_DEFAULT_CONFIG "/etc/mvkvm/mvctld.conf"

struct mvctld_conf {
    char listen[64];      /* address to bind; default 127.0.0.1 */
    unsigned port;        /* default 8080 */
    unsigned threads;     /* HTTP worker threads; default 2 */
    char db_path[512];    /* default /var/lib/mvkvm/mvctld.db */
    char admin_user[128]; /* default admin */
    char admin_password_hash[256];
    char tls_cert[512], tls_key[512]; /* both set: HTTPS */
    int log_level;                    /* syslog level */
    /* [wire]: the raw-Ethernet control plane towards the agents (mvctld/wire.h). Without an
     * interface mvctld runs on the database alone (static inventory, bookkeeping datastores). */
    struct mvctld_wire_conf {
        char ifname[64];      /* interface; "" = no wire */
        char key_file[512];   /* cluster key file; default /etc/mvkvm/cluster.key */
        char node_name[64];   /* host name announced in HELLOs; default gethostname() */
        char state_file[512]; /* incarnation state; "" = realtime clock only */
        char blade[32], chassis[32], rack[32]; /* our fault-domain labels */
        unsigned hello_ms;                     /* HELLO interval; default 1000 */
        unsigned dead_after_ms;      /* agent down after this much silence; default 4000 */
        unsigned inventory_s;        /* inventory refresh period; default 30 */
        unsigned format_timeout_s;   /* drive_format answer deadline; default 60 */
        unsigned reconcile_ms;       /* vm_list period per agent (reconciler); default 2000 */
        unsigned vm_stop_timeout_ms; /* graceful stop before a hard one; default 10000 */
    } wire;
};

void mvctld_conf_defaults(struct mvctld_conf *c);
/* 0, or -1 with "file:line: reason" in err. */
int mvctld_conf_load(struct mvctld_conf *c, const char *path, char *err, size_t errlen);
/* Applies one key=value (the INI keys; flags use the same names; keys of [wire] are written
 * "wire.<key>"). 0 or -1 with a reason. */
int mvctld_conf_set(struct mvctld_conf *c, const char *key, const char *value, char *err,
                    size_t errlen);

#endif
