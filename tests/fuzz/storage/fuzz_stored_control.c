/* Fuzz target: mvstored's control requests (JSON lines on its AF_UNIX control socket). One
 * daemon state with a small drive file lives across inputs, so sequences of requests (format,
 * create, map, resize, delete) are exercised too. Every request gets exactly one JSON reply line,
 * and a refusal carries an error message. */
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stored.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct stored daemon_state;
static char drive_path[64];
static bool ready;

static void remove_drive(void)
{
    unlink(drive_path);
}

static void set_up(void)
{
    snprintf(daemon_state.host, sizeof(daemon_state.host), "fuzzhost");
    struct aoe_target_config tc = {.mac = {2, 0, 0, 0, 0, 9}};
    if (aoe_target_create(&tc, &daemon_state.target) != 0)
        abort();
    snprintf(drive_path, sizeof(drive_path), "/tmp/mv-fuzz-stored-%d.img", getpid());
    int fd = open(drive_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 16 << 20) != 0)
        abort();
    close(fd);
    atexit(remove_drive);
    daemon_state.buffered = true; /* tmpfs has no O_DIRECT */
    if (stored_add_drive(&daemon_state, drive_path) != 0)
        abort();
    ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        set_up();
    char *request = malloc(size + 1);
    if (!request)
        return 0;
    memcpy(request, data, size);
    request[size] = '\0';
    /* The seeds name the drive as DRIVE: point them at this run's file. */
    char *at = strstr(request, "DRIVE");
    char patched[1024];
    if (at && size < 512) {
        snprintf(patched, sizeof(patched), "%.*s%s%s", (int)(at - request), request, drive_path,
                 at + 5);
        free(request);
        request = strdup(patched);
        if (!request)
            return 0;
    }
    static char reply[1 << 16];
    reply[0] = '\0';
    stored_control(&daemon_state, request, reply, sizeof(reply));
    size_t n = strlen(reply);
    if (n == 0 || reply[n - 1] != '\n')
        abort(); /* exactly one reply line */
    json_t *j = json_loads(reply, 0, NULL);
    if (!j)
        abort(); /* the reply is always JSON */
    if (!json_is_true(json_object_get(j, "ok")) && !json_string_value(json_object_get(j, "error")))
        abort(); /* a refusal always says why */
    json_decref(j);
    free(request);
    return 0;
}
