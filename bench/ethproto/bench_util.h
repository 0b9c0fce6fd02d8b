/* Small helpers shared by the ethproto bench tools: latency samples and percentiles, and this
 * process's CPU time (user + system) per operation, which the load of a shared machine disturbs
 * far less than rates and latencies do. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* CPU time (user + system) this process has used, in ns. */
static inline uint64_t bench_cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

struct lat_samples {
    uint64_t *ns;
    size_t n, cap;
};

static inline void lat_add(struct lat_samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        uint64_t *p = realloc(s->ns, cap * sizeof(*p));
        if (!p)
            return;
        s->ns = p;
        s->cap = cap;
    }
    s->ns[s->n++] = ns;
}

static inline int lat_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints "rate=<ops/s> p50_us=<> p99_us=<> n=<> cpu_us=<per op>" for ops completed in
 * elapsed_ns, having used cpu_ns of CPU time meanwhile. */
static inline void lat_report(struct lat_samples *s, uint64_t elapsed_ns, uint64_t cpu_ns)
{
    double p50 = 0, p99 = 0;

    if (s->n) {
        qsort(s->ns, s->n, sizeof(*s->ns), lat_cmp);
        p50 = (double)s->ns[s->n / 2] / 1e3;
        p99 = (double)s->ns[(s->n * 99) / 100] / 1e3;
    }
    printf("rate=%.0f p50_us=%.1f p99_us=%.1f n=%zu cpu_us=%.2f\n",
           elapsed_ns ? (double)s->n * 1e9 / (double)elapsed_ns : 0.0, p50, p99, s->n,
           s->n ? (double)cpu_ns / 1e3 / (double)s->n : 0.0);
    fflush(stdout);
}

static volatile sig_atomic_t bench_stop;

static inline void bench_on_signal(int sig)
{
    (void)sig;
    bench_stop = 1;
}

static inline void bench_catch_signals(void)
{
    struct sigaction sa = {.sa_handler = bench_on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

#endif
