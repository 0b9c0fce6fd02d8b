/* Option handling and key loading shared by the agent's operator tools. */
#include "tool_common.h"

#include "mv/agent_client.h"
#include "mv/util.h"

int tool_handle_option(struct tool_opts *t, int c, const char *arg)
{
    switch (c) {
    case 'i':
        t->ifname = arg;
        return TOOL_OPT_NEXT;
    case 'k':
        t->key_file = arg;
        return TOOL_OPT_NEXT;
    case 'm':
        if (mv_agent_parse_mac(arg, t->mac) != 0) {
            fprintf(stderr, "%s: bad MAC '%s'\n", t->prog, arg);
            return 2;
        }
        t->have_mac = true;
        return TOOL_OPT_NEXT;
    case 't':
        if (mv_parse_u32(arg, &t->timeout_s) != 0 || t->timeout_s == 0 || t->timeout_s > 600) {
            fprintf(stderr, "%s: --timeout wants 1..600 seconds\n", t->prog);
            return 2;
        }
        return TOOL_OPT_NEXT;
    case 'h':
        t->usage(stdout);
        return 0;
    case 'V':
        printf("%s %s\n", t->prog, MV_VERSION);
        return 0;
    default:
        t->usage(stderr);
        return 2;
    }
}

int tool_load_keys(const struct tool_opts *t, struct mv_keyring *keys)
{
    const char *path = t->key_file ? t->key_file : TOOL_DEFAULT_KEY_FILE;
    char err[512];
    mv_keyring_init(keys);
    if (mv_keyring_load(keys, path, err, sizeof err) != 0) {
        fprintf(stderr, "%s: key file %s: %s\n", t->prog, path, err);
        return -1;
    }
    return 0;
}
