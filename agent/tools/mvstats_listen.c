/* mvstats-listen: receives the statistics reports hosts send on EtherType 0x88B6, verifies them
 * with the cluster key, merges their chunks and prints each report (text, or one JSON object per
 * line with --json). */
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/agent_proto.h"
#include "mv/daemon.h"
#include "mv/dgram.h"
#include "mv/log.h"
#include "mv/port.h"
#include "mv/stats_frame.h"
#include "mv/util.h"
#include "tool_common.h"

#define MAX_PENDING 64 /* reports being merged at once (one per sending host) */

static void usage(FILE *f)
{
    fprintf(f, "usage: mvstats-listen -i IFACE [-k KEYFILE] [--json] [--count N] [--timeout SECS]\n"
               "Prints the statistics reports (D2.3 2.6.1) hosts broadcast on 0x88B6.\n"
               "  -k, --key FILE     cluster key file (default /etc/mvkvm/cluster.key)\n"
               "  -j, --json         one JSON object per report\n"
               "  -n, --count N      exit after N complete reports (0 = run forever)\n"
               "  -t, --timeout S    exit after S seconds (status 1 if fewer than N reports)\n"
               "  -v, --verbose      report rejected frames and chunks on stderr\n"
               "  -h, --help, -V, --version\n");
}

struct pending {
    bool used;
    uint64_t last_ns;
    struct mv_stats_report *r;
};

static json_t *record_json(unsigned group, const void *rec)
{
    json_t *o = json_object();
    char key[128];
    mv_stats_key_format(group, rec, key, sizeof key);
    json_object_set_new(o, "key", json_string(key));
    size_t nf;
    const struct mv_stats_field_desc *f = mv_stats_fields(&nf);
    for (size_t i = 0; i < nf; i++) {
        if (f[i].group != group)
            continue;
        if (f[i].type == MV_STATS_T_STR) {
            const char *s = mv_stats_field_str(&f[i], rec);
            if (s && s[0])
                json_object_set_new(o, f[i].name, json_string(s));
        } else {
            json_object_set_new(o, f[i].name,
                                json_integer((json_int_t)mv_stats_field_u64(&f[i], rec)));
        }
    }
    return o;
}

/* Each group's record struct has `present` at a different offset; mask it per group. */
static uint32_t record_present(unsigned group, const void *rec)
{
    switch (group) {
    case MV_STATS_G_HOST:
        return ((const struct mv_stats_host *)rec)->present;
    case MV_STATS_G_PCPU:
        return ((const struct mv_stats_pcpu *)rec)->present;
    case MV_STATS_G_NUMA:
        return ((const struct mv_stats_numa *)rec)->present;
    case MV_STATS_G_POOL:
        return ((const struct mv_stats_pool *)rec)->present;
    case MV_STATS_G_GUEST:
        return ((const struct mv_stats_guest *)rec)->present;
    case MV_STATS_G_VCPU:
        return ((const struct mv_stats_vcpu *)rec)->present;
    case MV_STATS_G_GUEST_MEM:
        return ((const struct mv_stats_guest_mem *)rec)->present;
    case MV_STATS_G_VIF:
        return ((const struct mv_stats_vif *)rec)->present;
    case MV_STATS_G_VBD:
        return ((const struct mv_stats_vbd *)rec)->present;
    }
    return 0;
}

static void print_json(const struct mv_stats_report *r)
{
    char node[32];
    snprintf(node, sizeof node, "%08" PRIx64, r->node_id);
    json_t *groups = json_object();
    for (unsigned g = MV_STATS_G_FIRST; g <= MV_STATS_G_LAST; g++) {
        if (!(r->groups_seen & (1u << g)))
            continue;
        json_t *arr = json_array();
        size_t n = mv_stats_group_count(r, g);
        for (size_t i = 0; i < n; i++) {
            const void *rec = mv_stats_group_record(r, g, i);
            json_t *o = record_json(g, rec);
            /* Drop fields the sender left out rather than show them as 0. */
            size_t nf;
            const struct mv_stats_field_desc *f = mv_stats_fields(&nf);
            uint32_t present = record_present(g, rec);
            for (size_t k = 0; k < nf; k++)
                if (f[k].group == g && !(present & (1u << f[k].id)))
                    json_object_del(o, f[k].name);
            json_array_append_new(arr, o);
        }
        json_object_set_new(groups, mv_stats_group_name(g), arr);
    }
    json_t *o =
        json_pack("{s:s, s:I, s:I, s:I, s:b, s:i, s:o}", "node_id", node, "report_id",
                  (json_int_t)r->report_id, "timestamp_ns", (json_int_t)r->timestamp_ns,
                  "interval_ms", (json_int_t)r->interval_ms, "complete",
                  mv_stats_report_complete(r), "chunks", (int)r->chunk_count, "groups", groups);
    json_dumpf(o, stdout, JSON_COMPACT);
    putchar('\n');
    fflush(stdout);
    json_decref(o);
}

/* Prints the report and frees its slot; returns 1 if it was complete. */
static int emit(struct pending *p, bool json_out)
{
    int complete = mv_stats_report_complete(p->r) ? 1 : 0;
    if (json_out) {
        print_json(p->r);
    } else {
        printf("report node=%08" PRIx64 " id=%u chunks=%u/%u\n", p->r->node_id, p->r->report_id,
               p->r->chunks_received, p->r->chunk_count);
        mv_stats_print(stdout, p->r);
        fflush(stdout);
    }
    mv_stats_report_reset(p->r);
    p->used = false;
    return complete;
}

static struct pending *slot_for(struct pending *tab, uint64_t node)
{
    struct pending *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < MAX_PENDING; i++) {
        if (tab[i].used && tab[i].r->node_id == node)
            return &tab[i];
        if (!tab[i].used && !free_slot)
            free_slot = &tab[i];
        if (tab[i].used && (!oldest || tab[i].last_ns < oldest->last_ns))
            oldest = &tab[i];
    }
    if (free_slot)
        return free_slot;
    mv_stats_report_reset(oldest->r); /* table full: the stalest partial report is dropped */
    return oldest;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        TOOL_LONG_OPTIONS_COMMON,
        {"json", no_argument, 0, 'j'},
        {"count", required_argument, 0, 'n'},
        {"timeout", required_argument, 0, 't'},
        {"verbose", no_argument, 0, 'v'},
        {0, 0, 0, 0},
    };
    struct tool_opts t = {.prog = "mvstats-listen", .usage = usage};
    bool json_out = false, verbose = false;
    uint32_t count = 0, timeout_s = 0;
    int c, status;
    while ((c = getopt_long(argc, argv, "i:k:jn:t:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json_out = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'n':
        case 't': /* 0 = no limit: not the agent tools' --timeout */
            if (mv_parse_u32(optarg, c == 'n' ? &count : &timeout_s) != 0) {
                fprintf(stderr, "mvstats-listen: -%c wants a number\n", c);
                return 2;
            }
            break;
        default:
            if ((status = tool_handle_option(&t, c, optarg)) != TOOL_OPT_NEXT)
                return status;
        }
    }
    if (!t.ifname || optind < argc) {
        usage(stderr);
        return 2;
    }
    mv_log_init("mvstats-listen", verbose ? LOG_DEBUG : LOG_WARNING);
    mv_daemon_handle_signals();
    struct mv_keyring keys;
    if (tool_load_keys(&t, &keys) != 0)
        return 1;
    char err[512];
    struct mv_port *port;
    struct mv_port_config pc = {.kind = MV_PORT_PACKET,
                                .ifname = t.ifname,
                                .ethertypes = {MV_ETHERTYPE_STATS},
                                .n_ethertypes = 1};
    if (mv_port_open(&pc, &port, err, sizeof err) != 0) {
        fprintf(stderr, "mvstats-listen: %s: %s\n", t.ifname, err);
        return 1;
    }
    struct mv_dgram_rx *rx = mv_dgram_rx_create(&keys);
    struct pending *tab = calloc(MAX_PENDING, sizeof *tab);
    for (int i = 0; tab && i < MAX_PENDING; i++)
        tab[i].r = calloc(1, sizeof *tab[i].r);
    if (!rx || !tab || !tab[MAX_PENDING - 1].r) {
        fprintf(stderr, "mvstats-listen: out of memory\n");
        return 1;
    }
    fprintf(stderr, "mvstats-listen: listening on %s\n", t.ifname);
    uint64_t deadline = timeout_s ? mv_now_ns() + (uint64_t)timeout_s * 1000000000ull : 0;
    uint32_t done = 0;
    while (!mv_daemon_stop_requested() && (count == 0 || done < count)) {
        uint64_t now = mv_now_ns();
        if (deadline && now >= deadline)
            break;
        int wait_ms = deadline ? (int)((deadline - now) / 1000000 + 1) : 1000;
        mv_port_wait(port, MV_MIN(wait_ms, 1000));
        struct mv_frame fr[32];
        int n = mv_port_recv(port, fr, 32);
        for (int i = 0; i < n; i++) {
            struct mv_dgram_msg m;
            enum mv_auth_cause cause =
                mv_dgram_open(rx, fr[i].data, fr[i].len, mv_realtime_ns() / 1000000000ull, &m);
            if (cause != MV_AUTH_OK) {
                mv_debug("frame rejected: %s", mv_auth_cause_name(cause));
                continue;
            }
            if (m.op != MV_AGENT_DGRAM_STATS)
                continue;
            struct pending *p = slot_for(tab, m.src_node);
            int rc = mv_stats_decode_verbose(m.payload, m.len, p->r, err, sizeof err);
            if (rc == -MV_STATS_E_OTHER_REPORT) {
                /* The next report started before this one completed: print what arrived. */
                done += (uint32_t)emit(p, json_out);
                rc = mv_stats_decode_verbose(m.payload, m.len, p->r, err, sizeof err);
            }
            if (rc != 0) {
                mv_debug("chunk from %016" PRIx64 " rejected: %s (%s)", m.src_node,
                         mv_stats_strerror(rc), err);
                continue;
            }
            p->used = true;
            p->last_ns = mv_now_ns();
            if (mv_stats_report_complete(p->r))
                done += (uint32_t)emit(p, json_out);
        }
        if (n > 0)
            mv_port_recv_done(port);
    }
    uint64_t rej[MV_AUTH_NCAUSES];
    mv_dgram_rx_counters(rx, rej);
    uint64_t bad = 0;
    for (int i = 1; i < MV_AUTH_NCAUSES; i++)
        bad += rej[i];
    fprintf(stderr, "mvstats-listen: %u reports, %" PRIu64 " frames rejected\n", done, bad);
    for (int i = 0; i < MAX_PENDING; i++)
        free(tab[i].r);
    free(tab);
    mv_dgram_rx_destroy(rx);
    mv_port_close(port);
    mv_keyring_wipe(&keys);
    return count && done < count ? 1 : 0;
}
