/* INI config files (libinih) with errors that name the file, line and problem. */
#ifndef MV_CONFIG_H
#define MV_CONFIG_H

#include <stddef.h>

/* Return 0 to accept the entry; non-zero after writing a reason into err (the load then fails). */
typedef int (*mv_config_handler)(void *user, const char *section, const char *key,
                                 const char *value, char *err, size_t errlen);

/* Parses path, calling handler per key. On failure returns -1 with "path:line: reason" in err. */
int mv_config_load(const char *path, mv_config_handler handler, void *user, char *err,
                   size_t errlen);

#endif
