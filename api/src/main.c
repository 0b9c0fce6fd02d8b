/* mvctld: the rack controller. It serves the internal REST API (/api) over the SQLite state;
 * inventory comes from the agents (the wire layer, when [wire] names an interface) or from
 * static files. */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "mv/daemon.h"
#include "mv/log.h"
#include "mvctld/auth.h"
#include "mvctld/conf.h"
#include "mvctld/db.h"
#include "mvctld/inventory.h"
#include "mvctld/server.h"
#include "mvctld/wire.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: mvctld [OPTIONS]\n"
            "The mvkvm rack controller: SQLite state and the internal REST API (/api).\n\n"
            "  -c, --config FILE        INI file with a [mvctld] section and optionally a\n"
            "                           [wire] section (default %s;\n"
            "                           missing default file is not an error)\n"
            "  -l, --listen ADDR        address to listen on (default 127.0.0.1)\n"
            "  -p, --port N             TCP port (default 8080; 0 picks a free one)\n"
            "  -d, --db PATH            database file (default /var/lib/mvkvm/mvctld.db)\n"
            "  -t, --threads N          HTTP worker threads (default 2)\n"
            "      --log-level LEVEL    debug, info, notice, warning, err\n"
            "  -i, --wire-interface IF  control interface towards the agents ([wire]\n"
            "                           interface); without one mvctld runs without agents\n"
            "  -k, --wire-key FILE      cluster key file ([wire] key_file,\n"
            "                           default /etc/mvkvm/cluster.key)\n"
            "      --wire-name NAME     host name announced ([wire] node_name)\n"
            "      --import-inventory FILE\n"
            "                           apply a static inventory (one host object or an\n"
            "                           array of them, the agent's format) and exit; safe\n"
            "                           while the daemon runs\n"
            "      --hash-password      read a password from stdin, print its hash for\n"
            "                           admin_password_hash, and exit\n"
            "  -h, --help               this help\n"
            "  -V, --version            print the version\n",
            MVCTLD_DEFAULT_CONFIG);
}

static int hash_password(void)
{
    char pw[1024];
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "Password: ");
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    char *got = fgets(pw, sizeof pw, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    if (!got) {
        fprintf(stderr, "mvctld: no password on stdin\n");
        return 1;
    }
    pw[strcspn(pw, "\r\n")] = 0;
    if (!pw[0]) {
        fprintf(stderr, "mvctld: empty password\n");
        return 1;
    }
    char hash[crypto_pwhash_STRBYTES];
    if (mvctld_auth_hash_password(pw, hash) != 0) {
        fprintf(stderr, "mvctld: hashing failed (out of memory?)\n");
        return 1;
    }
    sodium_memzero(pw, sizeof pw);
    printf("%s\n", hash);
    return 0;
}

enum { OPT_LOG_LEVEL = 256, OPT_IMPORT, OPT_HASH, OPT_WIRE_NAME };

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"port", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"import-inventory", required_argument, NULL, OPT_IMPORT},
        {"hash-password", no_argument, NULL, OPT_HASH},
        {"wire-interface", required_argument, NULL, 'i'},
        {"wire-key", required_argument, NULL, 'k'},
        {"wire-name", required_argument, NULL, OPT_WIRE_NAME},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    const char *config = NULL;
    const char *import = NULL;
    /* Flags override the file, so they are collected first and applied after it. */
    const char *keys[16], *vals[16];
    int nflags = 0;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:p:d:t:i:k:hV", opts, NULL)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            key = "listen";
            break;
        case 'p':
            key = "port";
            break;
        case 'd':
            key = "db";
            break;
        case 't':
            key = "threads";
            break;
        case OPT_LOG_LEVEL:
            key = "log_level";
            break;
        case 'i':
            key = "wire.interface";
            break;
        case 'k':
            key = "wire.key_file";
            break;
        case OPT_WIRE_NAME:
            key = "wire.node_name";
            break;
        case OPT_IMPORT:
            import = optarg;
            break;
        case OPT_HASH:
            return hash_password();
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("mvctld %s\n", MV_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (key && nflags < 16) {
            keys[nflags] = key;
            vals[nflags++] = optarg;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mvctld: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    struct mvctld_conf conf;
    char err[512];
    mvctld_conf_defaults(&conf);
    if (config || access(MVCTLD_DEFAULT_CONFIG, F_OK) == 0) {
        if (mvctld_conf_load(&conf, config ? config : MVCTLD_DEFAULT_CONFIG, err, sizeof err) !=
            0) {
            fprintf(stderr, "mvctld: %s\n", err);
            return 2;
        }
    }
    for (int i = 0; i < nflags; i++) {
        if (mvctld_conf_set(&conf, keys[i], vals[i], err, sizeof err) != 0) {
            fprintf(stderr, "mvctld: --%s: %s\n", keys[i], err);
            return 2;
        }
    }
    mv_log_init("mvctld", conf.log_level);
    if (sodium_init() < 0) {
        mv_err("libsodium cannot initialise");
        return 1;
    }

    struct mvctld_db db;
    if (mvctld_db_open(&db, conf.db_path, err, sizeof err) != 0) {
        mv_err("database: %s", err);
        return 1;
    }
    if (import) {
        int rc = mvctld_inventory_import_file(&db, import, err, sizeof err);
        if (rc != 0)
            mv_err("%s", err);
        mvctld_db_close(&db);
        return rc == 0 ? 0 : 1;
    }
    if (!conf.admin_password_hash[0]) {
        mv_err("no admin_password_hash configured (make one with mvctld --hash-password)");
        mvctld_db_close(&db);
        return 2;
    }
    struct mvctld_auth auth;
    if (mvctld_auth_init(&auth, conf.admin_user, conf.admin_password_hash) != 0) {
        mv_err("admin_password_hash is not a libsodium password hash");
        mvctld_db_close(&db);
        return 2;
    }
    struct mvctld_ctx ctx = {.db = &db};
    mv_daemon_handle_signals();
    /* The wire first: it sets ctx.host_ops, which the HTTP threads read. */
    struct mvctld_wire *wire = NULL;
    if (conf.wire.ifname[0] && !(wire = mvctld_wire_start(&conf, &ctx, err, sizeof err))) {
        mv_err("%s", err);
        mvctld_auth_destroy(&auth);
        mvctld_db_close(&db);
        return 1;
    }
    struct mvctld_server *srv = mvctld_server_start(&conf, &ctx, &auth, err, sizeof err);
    if (!srv) {
        mv_err("%s", err);
        mvctld_wire_stop(wire);
        mvctld_auth_destroy(&auth);
        mvctld_db_close(&db);
        return 1;
    }
    /* The port line is for scripts that start mvctld with --port 0. */
    printf("mvctld listening on port %u\n", mvctld_server_port(srv));
    fflush(stdout);
    struct pollfd pfd = {.fd = mv_daemon_stop_eventfd(), .events = POLLIN};
    while (!mv_daemon_stop_requested())
        poll(&pfd, 1, 1000);
    mv_info("stopping");
    mvctld_server_stop(srv);
    mvctld_wire_stop(wire);
    mvctld_auth_destroy(&auth);
    mvctld_db_close(&db);
    return 0;
}
