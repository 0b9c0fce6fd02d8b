/* Blocking-with-deadline JSON-lines client for host-local control sockets. */
#include "mv/jsonline.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mv/util.h"

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = mv_now_ns();
    return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Waits for fd to become ready for events before the deadline. 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int ms = remaining_ms(deadline);
        if (ms == 0)
            return -ETIMEDOUT;
        int rc = poll(&p, 1, ms);
        if (rc > 0)
            return 0;
        if (rc == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int mv_jsonline_call(const char *path, const json_t *req, size_t max_reply, int timeout_ms,
                     json_t **rep, char *err, size_t errlen)
{
    *rep = NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "%s: socket path too long", path);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    char *line = json_dumps(req, JSON_COMPACT);
    if (!line) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    uint64_t deadline = mv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    int rc = 0;
    char *buf = NULL;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        rc = -errno;
        if (rc != -EINPROGRESS && rc != -EAGAIN)
            goto out;
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc)
            goto out;
    }
    size_t len = strlen(line), off = 0;
    line[len] = '\n'; /* the string's NUL becomes the line end */
    while (off < len + 1) {
        ssize_t n = send(fd, line + off, len + 1 - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            rc = -errno;
            goto out;
        }
        if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0)
            goto out;
    }
    buf = malloc(max_reply + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    size_t got = 0;
    for (;;) {
        char *nl = got ? memchr(buf, '\n', got) : NULL;
        if (nl) {
            *nl = 0;
            break;
        }
        if (got == max_reply) {
            rc = -EMSGSIZE;
            goto out;
        }
        ssize_t n = recv(fd, buf + got, max_reply - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0) {
            rc = -ECONNRESET;
            goto out;
        }
        if (errno != EAGAIN && errno != EINTR) {
            rc = -errno;
            goto out;
        }
        if ((rc = wait_fd(fd, POLLIN, deadline)) != 0)
            goto out;
    }
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        snprintf(err, errlen, "%s: reply is not a JSON object", path);
        rc = -EPROTO;
        goto out_noerr;
    }
    *rep = j;
out:
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
out_noerr:
    free(buf);
    free(line);
    if (fd >= 0)
        close(fd);
    return rc;
}
