/* Logging to stderr with systemd priority prefixes ("<3>message"), so journald keeps levels. */
#ifndef MV_LOG_H
#define MV_LOG_H

#include <syslog.h>

void mv_log_init(const char *ident, int max_level);
void mv_log_set_level(int max_level);
int mv_log_level_from_name(const char *name); /* "debug", "info", ...; -1 if unknown */
void mv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mv_err(...)   mv_log(LOG_ERR, __VA_ARGS__)
#define mv_warn(...)  mv_log(LOG_WARNING, __VA_ARGS__)
#define mv_info(...)  mv_log(LOG_INFO, __VA_ARGS__)
#define mv_debug(...) mv_log(LOG_DEBUG, __VA_ARGS__)

#endif
