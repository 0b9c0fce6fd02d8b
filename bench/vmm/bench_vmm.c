/* Start-up, memory and churn measurements of a VMM command line (mvvmm or QEMU), for
 * bench/vmm/run:
 *   bench_vmm start N -- CMD...      N sequential runs: median and min wall ms, median max RSS
 *   bench_vmm rate N P -- CMD...     N runs, P at a time: VMs created, run, destroyed per second
 * Output: "key=value" pairs on one line. A run counts only if CMD exits with EXPECT_RC (env
 * BENCH_EXPECT_RC, default 0). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mv/util.h"

extern char **environ;

static int expect_rc;

static pid_t spawn_quiet(char **argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        fprintf(stderr, "bench_vmm: cannot run %s: %s\n", argv[0], strerror(rc));
        exit(2);
    }
    return pid;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void check_status(int status)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != expect_rc) {
        fprintf(stderr, "bench_vmm: run ended with status 0x%x, expected exit %d\n", status,
                expect_rc);
        exit(3);
    }
}

static int bench_start(unsigned n, char **argv)
{
    uint64_t *ns = calloc(n, sizeof(*ns)), *rss = calloc(n, sizeof(*rss));
    for (unsigned i = 0; i < n; i++) {
        uint64_t t0 = mv_now_ns();
        pid_t pid = spawn_quiet(argv);
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) != pid)
            return 2;
        ns[i] = mv_now_ns() - t0;
        rss[i] = (uint64_t)ru.ru_maxrss;
        check_status(status);
    }
    qsort(ns, n, sizeof(*ns), cmp_u64);
    qsort(rss, n, sizeof(*rss), cmp_u64);
    printf("median_ms=%.2f min_ms=%.2f max_ms=%.2f median_rss_kib=%llu\n", ns[n / 2] / 1e6,
           ns[0] / 1e6, ns[n - 1] / 1e6, (unsigned long long)rss[n / 2]);
    free(ns);
    free(rss);
    return 0;
}

static int bench_rate(unsigned n, unsigned par, char **argv)
{
    unsigned started = 0, done = 0, running = 0;
    uint64_t t0 = mv_now_ns();
    while (done < n) {
        while (running < par && started < n) {
            spawn_quiet(argv);
            started++;
            running++;
        }
        int status;
        if (wait(&status) < 0)
            return 2;
        check_status(status);
        running--;
        done++;
    }
    double s = (mv_now_ns() - t0) / 1e9;
    printf("vms_per_s=%.1f runs=%u parallel=%u seconds=%.3f\n", n / s, n, par, s);
    return 0;
}

int main(int argc, char **argv)
{
    const char *e = getenv("BENCH_EXPECT_RC");
    expect_rc = e ? atoi(e) : 0;
    int dd = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            dd = i;
            break;
        }
    uint32_t n, par;
    if (argc >= 5 && dd == 3 && !strcmp(argv[1], "start") && !mv_parse_u32(argv[2], &n) && n)
        return bench_start(n, argv + dd + 1);
    if (argc >= 6 && dd == 4 && !strcmp(argv[1], "rate") && !mv_parse_u32(argv[2], &n) && n &&
        !mv_parse_u32(argv[3], &par) && par)
        return bench_rate(n, par, argv + dd + 1);
    fprintf(stderr, "usage: bench_vmm start N -- CMD... | bench_vmm rate N P -- CMD...\n");
    return 2;
}
