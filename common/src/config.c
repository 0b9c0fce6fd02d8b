#include "mv/config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>

struct config_ctx {
    mv_config_handler handler;
    void *user;
    char reason[256];
    int failed;
};

static int config_entry(void *user, const char *section, const char *key, const char *value)
{
    struct config_ctx *ctx = user;
    if (ctx->failed)
        return 0;
    if (ctx->handler(ctx->user, section, key, value, ctx->reason, sizeof ctx->reason) != 0) {
        ctx->failed = 1;
        return 0; /* inih reports this line number */
    }
    return 1;
}

int mv_config_load(const char *path, mv_config_handler handler, void *user, char *err,
                   size_t errlen)
{
    struct config_ctx ctx = {.handler = handler, .user = user};
    int line = ini_parse(path, config_entry, &ctx);
    if (line == 0)
        return 0;
    if (line == -1)
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    else if (line == -2)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (ctx.failed)
        snprintf(err, errlen, "%s:%d: %s", path, line, ctx.reason);
    else
        snprintf(err, errlen, "%s:%d: syntax error", path, line);
    return -1;
}
