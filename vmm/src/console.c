/* The serial console behind COM1: stdout (line-buffered), a file, a pty, an AF_UNIX socket or
 * nothing. Input (pty, socket, or stdin when it is a terminal) is fed to the UART by a thread. */
#include "vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mv/log.h"
#include "mv/util.h"

static pthread_mutex_t tx_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t tx_buf[512];
static size_t tx_len;
static bool tx_line_buffered;
static volatile bool console_closing;

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n && fd >= 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a vanished reader must not stop the guest */
        p += w;
        n -= (size_t)w;
    }
}

static void tx_flush_locked(struct mv_vm *vm)
{
    write_all(vm->serial_out_fd, tx_buf, tx_len);
    tx_len = 0;
}

void mv_console_tx(void *ctx, uint8_t byte)
{
    struct mv_vm *vm = ctx;
    pthread_mutex_lock(&tx_lock);
    if (vm->serial_out_fd >= 0) {
        tx_buf[tx_len++] = byte;
        if (!tx_line_buffered || byte == '\n' || tx_len == sizeof(tx_buf))
            tx_flush_locked(vm);
    }
    pthread_mutex_unlock(&tx_lock);
}

static void feed_uart(struct mv_vm *vm, const uint8_t *buf, size_t n)
{
    while (n && !console_closing) {
        size_t took = mv_uart_receive(vm->uart, buf, n);
        buf += took;
        n -= took;
        if (n)
            mv_sleep_ns(1000000); /* FIFO full: the guest has not drained it yet */
    }
}

static void *console_input_thread(void *arg)
{
    struct mv_vm *vm = arg;
    pthread_setname_np(pthread_self(), "console");
    uint8_t buf[256];
    while (!console_closing) {
        if (vm->serial_listen_fd >= 0 && vm->serial_in_fd < 0) {
            struct pollfd p = {.fd = vm->serial_listen_fd, .events = POLLIN};
            if (poll(&p, 1, 200) <= 0)
                continue;
            int c = accept4(vm->serial_listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            pthread_mutex_lock(&tx_lock);
            vm->serial_in_fd = vm->serial_out_fd = c;
            pthread_mutex_unlock(&tx_lock);
            continue;
        }
        struct pollfd p = {.fd = vm->serial_in_fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = read(vm->serial_in_fd, buf, sizeof(buf));
        if (n > 0) {
            feed_uart(vm, buf, (size_t)n);
        } else if (vm->serial_listen_fd >= 0) {
            /* the socket client left: wait for the next one */
            pthread_mutex_lock(&tx_lock);
            close(vm->serial_in_fd);
            vm->serial_in_fd = vm->serial_out_fd = -1;
            pthread_mutex_unlock(&tx_lock);
        } else {
            break; /* EOF on a pty/terminal: no more input */
        }
    }
    return NULL;
}

int mv_console_open(struct mv_vm *vm)
{
    const struct mv_vmm_config *cfg = vm->cfg;
    switch (cfg->serial) {
    case MV_SERIAL_STDOUT:
        vm->serial_out_fd = STDOUT_FILENO;
        tx_line_buffered = true;
        if (isatty(STDIN_FILENO))
            vm->serial_in_fd = STDIN_FILENO;
        break;
    case MV_SERIAL_FILE:
        vm->serial_out_fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (vm->serial_out_fd < 0) {
            mv_err("serial: cannot open %s: %s", cfg->serial_path, strerror(errno));
            return -1;
        }
        tx_line_buffered = true;
        break;
    case MV_SERIAL_PTY: {
        int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || grantpt(fd) || unlockpt(fd) ||
            ptsname_r(fd, vm->serial_pty_path, sizeof(vm->serial_pty_path))) {
            mv_err("serial: cannot create a pty: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        vm->serial_out_fd = vm->serial_in_fd = fd;
        mv_info("serial console on %s", vm->serial_pty_path);
        break;
    }
    case MV_SERIAL_SOCKET: {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(cfg->serial_path) >= sizeof(sa.sun_path)) {
            mv_err("serial: socket path too long: %s", cfg->serial_path);
            return -1;
        }
        strcpy(sa.sun_path, cfg->serial_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        unlink(cfg->serial_path);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1)) {
            mv_err("serial: cannot listen on %s: %s", cfg->serial_path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        vm->serial_listen_fd = fd;
        break;
    }
    case MV_SERIAL_NONE:
        break;
    }
    if (vm->serial_in_fd >= 0 || vm->serial_listen_fd >= 0) {
        console_closing = false;
        if (pthread_create(&vm->serial_thread, NULL, console_input_thread, vm) == 0)
            vm->serial_thread_started = true;
    }
    return 0;
}

void mv_console_close(struct mv_vm *vm)
{
    console_closing = true;
    if (vm->serial_thread_started) {
        pthread_join(vm->serial_thread, NULL);
        vm->serial_thread_started = false;
    }
    pthread_mutex_lock(&tx_lock);
    tx_flush_locked(vm);
    if (vm->serial_out_fd > STDERR_FILENO)
        close(vm->serial_out_fd);
    if (vm->serial_in_fd > STDERR_FILENO && vm->serial_in_fd != vm->serial_out_fd)
        close(vm->serial_in_fd);
    vm->serial_out_fd = vm->serial_in_fd = -1;
    pthread_mutex_unlock(&tx_lock);
    if (vm->serial_listen_fd >= 0) {
        close(vm->serial_listen_fd);
        unlink(vm->cfg->serial_path);
        vm->serial_listen_fd = -1;
    }
}
