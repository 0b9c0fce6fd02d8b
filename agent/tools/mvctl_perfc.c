/* mvctl-perfc: reads or resets a host's hypervisor performance counters over the control channel
 * (D2.3 §2.6.2, Appendix 6.3), from a temporary node on the given interface. */
#include <stdio.h>

#include "mv/agent_proto.h"
#include "mv/agent_client.h"
#include "mv/log.h"
#include "mv/perfc.h"
#include "tool_common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mvctl-perfc -i IFACE --mvmac MAC (--perfc-dump | --perfc-get NAME |\n"
               "                   --perfc-reset [--perfc-name NAME]) [--key FILE] [--json]\n"
               "                   [--timeout SECS]\n"
               "Reads the hypervisor performance counters of the mvagent whose control MAC is\n"
               "MAC (a0369f2058c4 or a0:36:9f:20:58:c4), or resets them (the agent keeps a\n"
               "baseline; counting goes on).\n"
               "  -k, --key FILE   cluster key file (default /etc/mvkvm/cluster.key)\n"
               "      --json       print the agent's reply as JSON instead of the table\n"
               "  -h, --help, -V, --version\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        TOOL_LONG_OPTIONS_COMMON,
        TOOL_LONG_OPTIONS_AGENT,
        {"perfc-dump", no_argument, 0, 'd'},
        {"perfc-get", required_argument, 0, 'g'},
        {"perfc-reset", no_argument, 0, 'r'},
        {"perf-reset", no_argument, 0, 'r'},
        {"perfc-name", required_argument, 0, 'n'},
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    struct tool_opts t = {.prog = "mvctl-perfc", .usage = usage, .timeout_s = 5};
    const char *name = NULL;
    bool json_out = false;
    int action = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, "i:k:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
        case 'r':
            if (action && action != c)
                goto conflicting;
            action = c;
            break;
        case 'g':
            if (action && action != c)
                goto conflicting;
            action = c;
            name = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'j':
            json_out = true;
            break;
        default:
            if ((rc = tool_handle_option(&t, c, optarg)) != TOOL_OPT_NEXT)
                return rc;
        }
    }
    if (!t.ifname || !t.have_mac || !action || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (name && action == 'd') {
        fprintf(stderr, "mvctl-perfc: --perfc-name goes with --perfc-reset\n");
        return 2;
    }
    mv_log_init("mvctl-perfc", LOG_WARNING);

    struct mv_keyring keys;
    if (tool_load_keys(&t, &keys) != 0)
        return 1;
    char err[512];
    uint16_t op = action == 'd'   ? MV_AGENT_OP_PERFC_DUMP
                  : action == 'g' ? MV_AGENT_OP_PERFC_GET
                                  : MV_AGENT_OP_PERFC_RESET;
    json_t *req = json_object();
    if (name)
        json_object_set_new(req, "name", json_string(name));
    json_t *reply;
    int status = mv_agent_client_call(t.ifname, t.mac, &keys, op, req, t.timeout_s * 1000, &reply,
                                      err, sizeof err);
    json_decref(req);
    rc = 0;
    if (status != 0) {
        fprintf(stderr, "mvctl-perfc: %s\n", err);
        rc = 1;
    } else if (json_out) {
        json_dumpf(reply, stdout, JSON_INDENT(1));
        putchar('\n');
    } else if (action == 'r') {
        json_int_t n = json_integer_value(json_object_get(reply, "reset"));
        printf("Performance counters RESET (%lld counters)\n", (long long)n);
    } else {
        struct mv_perfc_set *s;
        uint64_t now_ns;
        if (mv_perfc_from_json(reply, &s, &now_ns, err, sizeof err) != 0) {
            fprintf(stderr, "mvctl-perfc: bad reply: %s\n", err);
            rc = 1;
        } else {
            mv_perfc_print(stdout, s, now_ns, NULL);
            mv_perfc_set_free(s);
        }
    }
    json_decref(reply);
    mv_keyring_wipe(&keys);
    return rc;
conflicting:
    fprintf(stderr, "mvctl-perfc: give one of --perfc-dump, --perfc-get, --perfc-reset\n");
    return 2;
}
