/* libmvblk: the AoE (r11) initiator. One struct mvblk owns a port (an interface, or the AF_UNIX
 * socket of the host's mvstored) and drives any number of targets (struct mvblk_dev) on it:
 * discovery by Query Config broadcast, requests split into frames of the sectors per frame the
 * target and MTU allow, many frames in flight under a per-target congestion window, RTT-based
 * retransmission, and failing a target that stays silent for the dead time.
 *
 * Asynchronous use: mvblk_submit() requests, call mvblk_poll() (or poll mvblk_fd() yourself and
 * then call mvblk_poll(b, 0)); completion callbacks run inside mvblk_poll(). Single-threaded:
 * one thread per struct mvblk. The synchronous wrappers poll internally. */
#ifndef MV_MVBLK_H
#define MV_MVBLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/aoe_frame.h"
#include "mv/port.h"

struct mvblk_config {
    enum mv_port_kind kind; /* MV_PORT_PACKET, MV_PORT_XDP or MV_PORT_UNIX */
    const char *ifname;     /* PACKET/XDP */
    const char *unix_path;  /* UNIX: mvstored's --unix-socket */
    const uint8_t *mac;     /* UNIX: our MAC (NULL = random locally administered) */
    unsigned dead_ms;       /* fail a target silent this long (0 = 10000) */
    unsigned max_inflight;  /* frames in flight per target (0 = the target's buffer count) */
    unsigned min_rto_us;    /* retransmission timeout floor (0 = 5000) */
    unsigned max_rto_us;    /* and ceiling (0 = 500000) */
    bool low_latency;       /* PACKET: per-frame wakeups */
};

struct mvblk_target_info {
    uint8_t mac[6];
    uint16_t shelf;
    uint8_t slot;
    uint16_t buffer_count;
    uint16_t firmware;
    uint8_t sectors_per_frame;
    uint16_t cfg_len;
    char cfg[AOE_MAX_CFG_LEN + 1];
};

enum mvblk_op { MVBLK_READ, MVBLK_WRITE, MVBLK_FLUSH };

struct mvblk_dev;

struct mvblk_req {
    enum mvblk_op op;
    uint64_t lba;   /* sectors of 512 bytes */
    uint32_t count; /* sectors; 0 for FLUSH */
    void *buf;
    /* status: 0, -EIO (ATA error), -ERANGE (past the end), -EACCES (reserved by another),
     * -ETIMEDOUT (target failed), -ENODEV (detached). */
    void (*done)(struct mvblk_req *req, int status);
    void *priv;
    /* private to libmvblk */
    struct mvblk_dev *dev_;
    struct mvblk_req *next_;
    uint32_t issued_, frames_left_;
    int status_;
};

struct mvblk_dev_stats {
    uint64_t frames_sent, frames_done, retransmits, errors;
    unsigned inflight, cwnd, ssthresh, max_inflight, sectors_per_frame;
    uint32_t srtt_us, rttvar_us, rto_us;
};

struct mvblk;

int mvblk_open(const struct mvblk_config *cfg, struct mvblk **out, char *err, size_t errlen);
void mvblk_close(struct mvblk *b); /* fails outstanding requests with -ENODEV */
int mvblk_fd(const struct mvblk *b);
const uint8_t *mvblk_mac(const struct mvblk *b);

/* Broadcasts Query Config (read) to shelf.slot (AOE_SHELF_ANY/AOE_SLOT_ANY for all) and collects
 * answers for wait_ms. Returns the number found (at most max) or -errno. */
int mvblk_discover(struct mvblk *b, uint16_t shelf, uint8_t slot, unsigned wait_ms,
                   struct mvblk_target_info *out, unsigned max);

/* Finds shelf.slot, identifies it (capacity, model, serial) and returns a device. With
 * MVBLK_ATTACH_NO_IDENTIFY it stops after discovery (capacity 0): enough for mvblk_exchange()
 * on a target that another initiator has reserved. */
#define MVBLK_ATTACH_NO_IDENTIFY 0x1u
int mvblk_attach(struct mvblk *b, uint16_t shelf, uint8_t slot, unsigned timeout_ms, unsigned flags,
                 struct mvblk_dev **out, char *err, size_t errlen);
/* As mvblk_attach(), but only the target answering from mac (NULL: the first to answer) is
 * taken: two targets can serve one shelf.slot (replicas, a target moving between hosts). Both
 * return as soon as the wanted target answered Query Config (resent every quarter of timeout_ms,
 * at most 250 ms apart); -ENOENT when it stayed silent for timeout_ms. */
int mvblk_attach_mac(struct mvblk *b, uint16_t shelf, uint8_t slot, const uint8_t mac[6],
                     unsigned timeout_ms, unsigned flags, struct mvblk_dev **out, char *err,
                     size_t errlen);
void mvblk_detach(struct mvblk_dev *dev);
uint64_t mvblk_dev_sectors(const struct mvblk_dev *dev);
const char *mvblk_dev_model(const struct mvblk_dev *dev);
const char *mvblk_dev_serial(const struct mvblk_dev *dev);
const struct mvblk_target_info *mvblk_dev_target(const struct mvblk_dev *dev);
bool mvblk_dev_failed(const struct mvblk_dev *dev);
void mvblk_dev_get_stats(const struct mvblk_dev *dev, struct mvblk_dev_stats *out);

int mvblk_submit(struct mvblk_dev *dev, struct mvblk_req *req);
/* Waits up to timeout_ms (-1 forever, 0 not at all) for progress; runs completions. Returns the
 * number of requests completed or -errno. */
int mvblk_poll(struct mvblk *b, int timeout_ms);
unsigned mvblk_outstanding(const struct mvblk *b);
/* When the caller must call mvblk_poll() next even if mvblk_fd() stays quiet: the earliest
 * retransmission (or dead-target) deadline of a frame in flight, on mv_now_ns()'s clock
 * (CLOCK_MONOTONIC); 0 when completions are waiting to run; UINT64_MAX when nothing is timed.
 * Lets an event loop sleep exactly as long as needed instead of polling on a fixed tick. */
uint64_t mvblk_next_deadline_ns(const struct mvblk *b);
/* The same as a poll()/epoll_wait() timeout from now: ms rounded up, -1 when nothing is timed. */
int mvblk_next_timeout_ms(const struct mvblk *b);

/* Synchronous wrappers. */
int mvblk_read(struct mvblk_dev *dev, uint64_t lba, void *buf, uint32_t count);
int mvblk_write(struct mvblk_dev *dev, uint64_t lba, const void *buf, uint32_t count);
int mvblk_flush(struct mvblk_dev *dev);

/* One raw AoE exchange with the device's target (Mac Mask, Reserve/Release, Query Config set,
 * ATA IDENTIFY...): req's addresses, version and tag are filled in; the reply is parsed into
 * *reply with its pointers into replybuf (MV_ETH_MAX_FRAME bytes). Retried until timeout_ms.
 * Returns 0 (AoE errors come back in reply->error), -ETIMEDOUT, -errno. */
int mvblk_exchange(struct mvblk_dev *dev, struct aoe_msg *req, struct aoe_msg *reply,
                   uint8_t *replybuf, unsigned timeout_ms);

#endif
