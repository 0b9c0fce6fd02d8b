#include "mv/daemon.h"

#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static int stop_fd = -1;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
    if (stop_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(stop_fd, &one, sizeof one); /* async-signal-safe */
        (void)n;
    }
}

void mv_daemon_handle_signals(void)
{
    if (stop_fd < 0)
        stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool mv_daemon_stop_requested(void)
{
    return stop_flag != 0;
}

void mv_daemon_request_stop(void)
{
    on_stop_signal(0);
}

int mv_daemon_stop_eventfd(void)
{
    if (stop_fd < 0)
        stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return stop_fd;
}
