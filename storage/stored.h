/* mvstored internals shared by its main loop and the control-protocol tests. */
#ifndef MV_STORED_H
#define MV_STORED_H

#include <stddef.h>

#include "mv/aoe_target.h"
#include "mv/drive.h"

#define STORED_MAX_DRIVES AOE_TARGET_MAX_DRIVES

struct stored_drive {
    char *path;
    struct mv_drive *drive; /* NULL while unformatted or unreadable */
    char problem[256];      /* why drive is NULL */
};

struct stored {
    char host[MV_DRIVE_HOST_LEN];
    struct stored_drive drives[STORED_MAX_DRIVES];
    unsigned n_drives;
    struct aoe_target *target;
    bool buffered; /* no O_DIRECT for data */
};

/* Adds a configured drive and opens it if formatted (an unformatted one waits for "format"). */
int stored_add_drive(struct stored *s, const char *path);
void stored_close_drives(struct stored *s);

/* Handles one control request (a JSON object) and writes one JSON reply line (NUL-terminated,
 * newline included) into out. Requests: {"cmd": "list" | "format" | "create" | "map" | "unmap" |
 * "resize" | "delete" | "set_epoch", ...}; see docs/storage.md. */
void stored_control(struct stored *s, const char *request, char *out, size_t outlen);

#endif
