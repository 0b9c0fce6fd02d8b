/* What the agent's operator tools (mvctl-agent, mvctl-perfc, mvstats-listen) share: the options
 * naming the interface, the agent's control MAC, the cluster key file and the reply timeout;
 * --help and --version; loading the cluster key. */
#ifndef MV_TOOL_COMMON_H
#define MV_TOOL_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mv/auth.h"

#ifndef MV_VERSION
#define MV_VERSION "0"
#endif

#define TOOL_DEFAULT_KEY_FILE "/etc/mvkvm/cluster.key"

/* getopt_long entries for the options tool_handle_option() handles. */
#define TOOL_LONG_OPTIONS_COMMON                                                                   \
    {"interface", required_argument, 0, 'i'}, {"key", required_argument, 0, 'k'},                  \
        {"help", no_argument, 0, 'h'},                                                             \
    {                                                                                              \
        "version", no_argument, 0, 'V'                                                             \
    }
/* ... and for the tools that ask one agent. */
#define TOOL_LONG_OPTIONS_AGENT                                                                    \
    {"mvmac", required_argument, 0, 'm'},                                                          \
    {                                                                                              \
        "timeout", required_argument, 0, 't'                                                       \
    }

struct tool_opts {
    const char *prog;       /* in messages and --version */
    void (*usage)(FILE *f); /* --help (stdout) and bad usage (stderr) */
    const char *ifname;     /* -i */
    const char *key_file;   /* -k; NULL = TOOL_DEFAULT_KEY_FILE */
    uint8_t mac[6];         /* --mvmac */
    bool have_mac;
    uint32_t timeout_s; /* --timeout, 1..600 */
};

/* tool_handle_option() handled the option: go on parsing. */
#define TOOL_OPT_NEXT (-1)

/* Handles option c (as getopt_long returned it, with its argument arg) when it is one of -i, -k,
 * --mvmac, --timeout, -h, -V; anything else is bad usage. Returns TOOL_OPT_NEXT, or the status
 * the tool exits with: 0 after --help/--version, 2 on a bad value or an unknown option (both
 * reported on stderr). */
int tool_handle_option(struct tool_opts *t, int c, const char *arg);

/* Loads the cluster key file into keys (initialised here). 0, or -1 with the reason printed. */
int tool_load_keys(const struct tool_opts *t, struct mv_keyring *keys);

#endif
