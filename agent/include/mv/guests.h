/* The guests running on this host: one mvvmm per VM, found by its control socket in the VMM run
 * directory (`<dir>/<uuid>.sock`; a name that is not a UUID gets a stable UUID derived from it).
 * Each scan asks every VMM for `info` and `stats`, and reads the vCPU threads' CPU time and last
 * CPU, the VMM's resident memory and its TAP devices' counters, for the statistics groups of
 * D2.3 §2.6.1 and the performance counters. */
#ifndef MV_GUESTS_H
#define MV_GUESTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define MV_GUESTS_MAX      256
#define MV_GUEST_MAX_VCPUS 64
#define MV_GUEST_MAX_DEVS  16
#define MV_GUEST_DEVNAME   32

struct mv_guest_vcpu {
    uint64_t cpu_time_ns;   /* utime + stime of the vCPU thread */
    int last_pcpu;          /* CPU it last ran on, -1 unknown */
    uint32_t util_centipct; /* over the last scan interval, 0..10000 */
};

struct mv_guest_vif {
    char id[MV_GUEST_DEVNAME]; /* the TAP device name */
    /* guest view: what the guest received is what the TAP transmitted */
    uint64_t rx_bytes, rx_packets, rx_errors, rx_drops;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_drops;
    bool valid;
};

struct mv_guest_vbd {
    char id[MV_GUEST_DEVNAME];     /* "vbd0" */
    char device[MV_GUEST_DEVNAME]; /* "vda" */
    char backing[16];              /* "aoe", "file" */
};

struct mv_guest {
    uint8_t uuid[16];
    char sock[256];
    char name[64];
    int pid;
    uint64_t mem_max, mem_used; /* bytes */
    unsigned n_vcpus;
    struct mv_guest_vcpu vcpu[MV_GUEST_MAX_VCPUS];
    unsigned n_vif, n_vbd;
    struct mv_guest_vif vif[MV_GUEST_MAX_DEVS];
    struct mv_guest_vbd vbd[MV_GUEST_MAX_DEVS];
    json_t *perfc;       /* the VMM's "perfc" array (owned), NULL if unavailable */
    uint64_t sampled_ns; /* monotonic time of the scan */
};

struct mv_guests {
    char run_dir[256];
    char procfs[64], sysfs[64];
    long clk_tck;
    unsigned n;
    struct mv_guest g[MV_GUESTS_MAX];
};

void mv_guests_init(struct mv_guests *gs, const char *run_dir, const char *procfs,
                    const char *sysfs);
void mv_guests_clear(struct mv_guests *gs);
/* Rescans the run directory and samples every VMM (timeout_ms per VMM call). Guests that do not
 * answer are dropped from the table. Returns the number of guests. */
int mv_guests_scan(struct mv_guests *gs, int timeout_ms);

/* "<uuid>" (36 chars) parsed into 16 bytes: 0 or -EINVAL. Any other name: a stable UUID from a
 * hash of it (version nibble 8, "custom", so it never collides with a parsed random UUID v4). */
int mv_uuid_parse(const char *s, uint8_t out[16]);
void mv_uuid_from_name(const char *name, uint8_t out[16]);
void mv_uuid_format(const uint8_t u[16], char out[37]);

/* Parses /proc/<pid>/task/<tid>/stat text: utime+stime ticks and the last CPU. 0 or -EINVAL. */
int mv_guests_parse_task_stat(const char *text, uint64_t *ticks, int *last_cpu);

#endif
