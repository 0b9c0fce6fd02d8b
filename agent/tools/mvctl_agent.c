/* mvctl-agent: sends one control request to a host's agent and prints the JSON reply. For
 * operators and tests; the controller speaks the same protocol (docs/agent.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/agent_client.h"
#include "mv/agent_proto.h"
#include "mv/log.h"
#include "mv/util.h"

#ifndef MV_VERSION
#define MV_VERSION "0"
#endif

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
        {"interface", required_argument, 0, 'i'},
        {"mvmac", required_argument, 0, 'm'},
        {"key", required_argument, 0, 'k'},
        {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    const char *ifname = NULL, *key_file = "/etc/mvkvm/cluster.key";
    uint8_t mac[6];
    int have_mac = 0, c;
    uint32_t timeout_s = 10;
    while ((c = getopt_long(argc, argv, "i:m:k:t:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            ifname = optarg;
            break;
        case 'm':
            if (mv_agent_parse_mac(optarg, mac) != 0) {
                fprintf(stderr, "mvctl-agent: bad MAC '%s'\n", optarg);
                return 2;
            }
            have_mac = 1;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 't':
            if (mv_parse_u32(optarg, &timeout_s) != 0 || !timeout_s || timeout_s > 600) {
                fprintf(stderr, "mvctl-agent: --timeout wants 1..600 seconds\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("mvctl-agent %s\n", MV_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!ifname || !have_mac || optind >= argc || argc - optind > 2) {
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
    char err[512];
    struct mv_keyring keys;
    mv_keyring_init(&keys);
    if (mv_keyring_load(&keys, key_file, err, sizeof err) != 0) {
        fprintf(stderr, "mvctl-agent: key file %s: %s\n", key_file, err);
        return 1;
    }
    json_t *reply;
    int rc = mv_agent_client_call(ifname, mac, &keys, (uint16_t)op, req, timeout_s * 1000, &reply,
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
