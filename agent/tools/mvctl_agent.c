/* mvctl-agent: sends one control request to a host's agent and prints the JSON reply. For
 * operators and tests; the controller speaks the same protocol (docs/agent.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/agent_client.h"
#include "mv/agent_proto.h"
#include "mv/log.h"
#include "tool_common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mvctl-agent -i IFACE --mvmac MAC [-k KEYFILE] [--timeout S] OP [JSON]\n"
               "OP: ping, inventory, drive_list, drive_format, replica_create, replica_map,\n"
               "    replica_unmap, replica_delete, replica_resize, perfc_dump, perfc_get,\n"
               "    perfc_reset, vm_start, vm_stop, vm_reboot, vm_pause, vm_unpause, vm_delete,\n"
               "    vm_info, vm_list (or a number such as 0x0101). JSON: the request object.\n"
               "Prints the reply; exit status 1 and the agent's error on failure.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        TOOL_LONG_OPTIONS_COMMON,
        TOOL_LONG_OPTIONS_AGENT,
        {0, 0, 0, 0},
    };
    struct tool_opts t = {.prog = "mvctl-agent", .usage = usage, .timeout_s = 10};
    int c, rc;
    while ((c = getopt_long(argc, argv, "i:m:k:t:hV", opts, NULL)) != -1)
        if ((rc = tool_handle_option(&t, c, optarg)) != TOOL_OPT_NEXT)
            return rc;
    if (!t.ifname || !t.have_mac || optind >= argc || argc - optind > 2) {
        usage(stderr);
        return 2;
    }
    const struct mv_agent_op_desc *d = mv_agent_op_by_name(argv[optind]);
    uint32_t op;
    if (d) {
        op = d->op;
    } else {
        char *end;
        errno = 0;
        unsigned long v = strtoul(argv[optind], &end, 0);
        if (errno || *end || v == 0 || v > 0xffff) {
            fprintf(stderr, "mvctl-agent: unknown operation '%s'\n", argv[optind]);
            return 2;
        }
        op = (uint32_t)v;
    }
    json_t *req = NULL;
    if (optind + 1 < argc) {
        json_error_t je;
        /* Sent as given (not validated here): the agent is the one that must refuse. */
        req = json_loads(argv[optind + 1], JSON_DECODE_ANY, &je);
        if (!req) {
            fprintf(stderr, "mvctl-agent: bad JSON: %s\n", je.text);
            return 2;
        }
    }
    mv_log_init("mvctl-agent", LOG_WARNING);
    struct mv_keyring keys;
    if (tool_load_keys(&t, &keys) != 0)
        return 1;
    char err[512];
    json_t *reply;
    rc = mv_agent_client_call(t.ifname, t.mac, &keys, (uint16_t)op, req, t.timeout_s * 1000, &reply,
                              err, sizeof err);
    json_decref(req);
    mv_keyring_wipe(&keys);
    if (rc != 0) {
        fprintf(stderr, "mvctl-agent: %s (status %d)\n", err, rc);
        return 1;
    }
    json_dumpf(reply, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(reply);
    return 0;
}
