#include "mv/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *log_ident = "mvkvm";
static int log_max_level = LOG_INFO;

void mv_log_init(const char *ident, int max_level)
{
    log_ident = ident;
    log_max_level = max_level;
}

void mv_log_set_level(int max_level)
{
    log_max_level = max_level;
}

int mv_log_level_from_name(const char *name)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                        "warning", "notice", "info", "debug"};
    for (int i = 0; i < 8; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    if (strcmp(name, "error") == 0)
        return LOG_ERR;
    if (strcmp(name, "warn") == 0)
        return LOG_WARNING;
    return -1;
}

void mv_log(int level, const char *fmt, ...)
{
    if (level > log_max_level)
        return;
    /* One fprintf per line keeps lines from concurrent threads whole. */
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "<%d>%s: %s\n", level, log_ident, line);
}
