/* The reliable authenticated control channel (D2.3 §2.4 "Ethernet packet handler").
 *
 * Transport-independent core: the owner feeds received frames in with mv_chan_input(), the
 * channel emits frames through the send callback, and time is always passed in explicitly
 * (monotonic nanoseconds), so the whole protocol runs deterministically in tests. mv/chan_port.h
 * binds it to an mv_port and a poll loop.
 *
 * Per peer (node id) there is one session: sequence numbers, cumulative + selective acks,
 * SACK-based loss recovery (RACK loss detection, tail loss probes, one window cut per episode,
 * spurious-RTO undo; docs/protocol.md §3.4), Jacobson/Karels RTO (Karn's rule, exponential
 * backoff) as the last resort, a receiver window and AIMD congestion window, acks coalesced per
 * batch of input, fragmentation/reassembly of messages up to 1 MiB, in-order
 * delivery, request/response with at-most-once execution, one-way messages, keepalives and
 * peer-dead detection. A peer restart (higher incarnation) resets its session and fails the
 * requests pending on it.
 *
 * Not thread-safe: one thread drives a channel; callbacks run inside mv_chan_input() or
 * mv_chan_tick() and may call back into the channel (send, request, reply). */
#ifndef MV_CHANNEL_H
#define MV_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mv/auth.h"
#include "mv/ctrl_frame.h"

struct mv_chan;

/* Emits one complete frame. Return 0, or a negative errno (the frame counts as lost; the
 * protocol retransmits). */
typedef int (*mv_chan_send_fn)(void *user, const uint8_t *frame, size_t len);
/* Emits n frames in one go (one kernel kick per burst, e.g. mv_port_send()). Returns how many
 * were accepted (the rest count as lost) or a negative errno (all lost). */
typedef int (*mv_chan_send_batch_fn)(void *user, const struct mv_frame *frames, unsigned n);

/* A delivered message (valid only during the callback). */
struct mv_chan_msg {
    uint64_t peer_node;
    uint64_t peer_incarnation;
    uint16_t op;
    uint32_t msg_id;
    int32_t status; /* responses: the handler's status */
    const uint8_t *data;
    size_t len;
};

/* Identifies a request to answer; may be kept and answered later (deferred replies). */
struct mv_chan_reply_token {
    uint64_t peer_node;
    uint64_t peer_incarnation;
    uint32_t req_id;
    uint16_t op; /* the request's op; the response carries it back */
};

enum mv_chan_peer_event {
    MV_CHAN_PEER_UP,      /* first authenticated frame from a new peer, or back after DEAD */
    MV_CHAN_PEER_RESTART, /* new incarnation: session reset, pending requests failed */
    MV_CHAN_PEER_DEAD,    /* nothing heard for dead_after_ns: pending requests failed */
};
const char *mv_chan_peer_event_name(enum mv_chan_peer_event ev);

/* A request arrived: run it and call mv_chan_reply() with tok (now or later). Runs at most once
 * per request, whatever the network duplicates. */
typedef void (*mv_chan_request_fn)(void *user, const struct mv_chan_msg *req,
                                   struct mv_chan_reply_token tok);
typedef void (*mv_chan_message_fn)(void *user, const struct mv_chan_msg *msg);
typedef void (*mv_chan_peer_fn)(void *user, uint64_t peer_node, const uint8_t mac[6],
                                enum mv_chan_peer_event ev);
/* Authenticated HELLO payload (discovery hooks in here). */
typedef void (*mv_chan_hello_fn)(void *user, const struct mv_ctrl_hdr *hdr, const uint8_t *payload,
                                 size_t len, uint64_t now_ns);
/* Completion of mv_chan_request(): status 0 with resp, or -ETIMEDOUT, -ECONNRESET (peer
 * restarted), -EHOSTDOWN (peer dead), -ECANCELED (channel destroyed) with resp NULL. */
typedef void (*mv_chan_response_fn)(void *user, int status, const struct mv_chan_msg *resp);

struct mv_chan_config {
    uint64_t node_id;     /* non-zero, unique in the cluster */
    uint64_t incarnation; /* non-zero, from mv_incarnation_next() */
    uint8_t mac[6];
    unsigned mtu;                  /* payload bytes after the Ethernet header; 0 = 1500 */
    const struct mv_keyring *keys; /* must outlive the channel; may be updated in place */
    mv_chan_send_fn send;
    void *send_user;
    /* Callbacks (any may be NULL) and their user pointer. */
    mv_chan_request_fn on_request;
    mv_chan_message_fn on_message;
    mv_chan_peer_fn on_peer;
    mv_chan_hello_fn on_hello;
    void *cb_user;
    /* Realtime clock in seconds for key expiry; NULL = the system clock. */
    uint64_t (*realtime_s)(void);
    /* Tunables; 0 picks the default shown. */
    uint64_t rto_initial_ns;     /* 200 ms */
    uint64_t rto_min_ns;         /* 5 ms */
    uint64_t rto_max_ns;         /* 2 s */
    uint64_t ack_delay_ns;       /* 2 ms: delayed ack when only one frame is unacknowledged */
    uint64_t keepalive_ns;       /* 500 ms of silence before probing */
    uint64_t dead_after_ns;      /* 3 s of silence: peer dead */
    uint64_t request_timeout_ns; /* 30 s default for mv_chan_request(timeout 0) */
    unsigned window;             /* receive window in frames, power of two <= 1024: 256 */
    unsigned cwnd_max;           /* frames: = window */
    size_t tx_queue_limit;       /* bytes queued per peer before sends get -EAGAIN: 4 MiB */
    size_t reassembly_limit;     /* bytes of partial messages across all peers: 16 MiB */
    unsigned max_peers;          /* sessions: 1024 */
    unsigned response_cache;     /* responses remembered per peer for duplicate requests: 64 */
    /* Optional burst output (send_user is its user pointer too). When set, frames emitted during
     * one call into the channel (or between mv_chan_cork() and mv_chan_uncork()) are handed
     * over together, up to 32 at a time, and send may be NULL. mv_chan_port_send_batch() binds
     * it to an mv_port. */
    mv_chan_send_batch_fn send_batch;
};

/* Counters, global (mv_chan_get_counters) and per session (mv_chan_peer_info). */
struct mv_chan_counters {
    uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes;
    uint64_t tx_data, rx_data, tx_acks, rx_acks, tx_keepalives, tx_hellos, rx_hellos;
    uint64_t retransmits, fast_retransmits, rto_expiries;
    uint64_t tlp_probes;        /* tail loss probes sent (each one frame) */
    uint64_t recoveries;        /* loss recovery episodes (one congestion back-off each) */
    uint64_t spurious_rtos;     /* RTOs undone: the peer had received the frames (it was slow) */
    uint64_t dup_drops;         /* DATA already received (duplicates, spurious retransmits) */
    uint64_t out_of_window;     /* DATA beyond the receive window */
    uint64_t reassembly_errors; /* overlapping/out-of-range fragments, memory limit */
    uint64_t protocol_errors;   /* structurally bad frames (codec), also in auth_fail[MALFORMED] */
    uint64_t send_errors;       /* send callback failures */
    uint64_t msgs_sent, msgs_delivered, bytes_delivered;
    uint64_t requests_sent, requests_executed, responses_sent, responses_received;
    uint64_t dup_requests; /* request ids seen again: answered from the cache */
    uint64_t request_timeouts, request_failures, unmatched_responses;
    uint64_t peer_restarts, peer_deaths;
    uint64_t auth_fail[MV_AUTH_NCAUSES]; /* by cause; [MV_AUTH_OK] unused */
};

struct mv_chan_peer_info {
    uint64_t node_id;
    uint8_t mac[6];
    uint64_t incarnation;
    bool alive;
    uint64_t last_rx_ns;
    uint64_t srtt_ns, rttvar_ns, rto_ns;
    unsigned cwnd, ssthresh, peer_window, in_flight;
    size_t tx_queued_bytes; /* not yet acknowledged */
    unsigned pending_requests;
    struct mv_chan_counters c;
};

int mv_chan_create(const struct mv_chan_config *cfg, struct mv_chan **out);
/* Fails every pending request with -ECANCELED, frees everything. */
void mv_chan_destroy(struct mv_chan *ch);

/* Feeds one received frame (any EtherType; others are ignored). Returns MV_AUTH_OK if the frame
 * was authentic and processed, else the reason it was dropped (already counted). */
enum mv_auth_cause mv_chan_input(struct mv_chan *ch, const uint8_t *frame, size_t len,
                                 uint64_t now_ns);
/* Output coalescing for a caller that feeds a batch of received frames: between cork and
 * uncork, acknowledgements owed "immediately" are merged into one per peer and frames are
 * gathered into bursts; mv_chan_uncork() sends them. Nests; every other call flushes on return
 * when not corked. */
void mv_chan_cork(struct mv_chan *ch);
void mv_chan_uncork(struct mv_chan *ch);
/* Runs timers (retransmission, delayed acks, keepalives, dead peers, request timeouts). */
void mv_chan_tick(struct mv_chan *ch, uint64_t now_ns);
/* Absolute time (ns) at which mv_chan_tick() next has work; UINT64_MAX if none. */
uint64_t mv_chan_next_deadline(const struct mv_chan *ch);

/* Sessions are created on the first authenticated frame from a peer, or here (discovery calls it
 * with what a HELLO said; incarnation 0 = not yet known). */
int mv_chan_add_peer(struct mv_chan *ch, uint64_t node_id, const uint8_t mac[6],
                     uint64_t incarnation, uint64_t now_ns);

/* One-way reliable message (delivered once, in order). -EAGAIN: the peer's queue is full, try
 * after acks drain it (mv_chan_tx_queued()); -EHOSTUNREACH: unknown peer; -EHOSTDOWN: dead;
 * -EMSGSIZE: over MV_CTRL_MAX_MSG. */
int mv_chan_send(struct mv_chan *ch, uint64_t peer_node, uint16_t op, const void *data, size_t len,
                 uint64_t now_ns);
/* Request: cb runs exactly once, with the response or an error. timeout_ns 0 = the default.
 * Returns the request id (> 0) or a negative errno as for mv_chan_send (cb not called then). */
long mv_chan_request(struct mv_chan *ch, uint64_t peer_node, uint16_t op, const void *data,
                     size_t len, uint64_t timeout_ns, mv_chan_response_fn cb, void *cb_user,
                     uint64_t now_ns);
/* Answers a request (status 0 or -errno). -ECONNRESET if the requester restarted meanwhile. */
int mv_chan_reply(struct mv_chan *ch, struct mv_chan_reply_token tok, int32_t status,
                  const void *data, size_t len, uint64_t now_ns);
/* Broadcasts an authenticated HELLO with this payload (mv/discovery.h builds it). */
int mv_chan_send_hello(struct mv_chan *ch, const void *payload, size_t len, uint64_t now_ns);

size_t mv_chan_tx_queued(const struct mv_chan *ch, uint64_t peer_node); /* unacked bytes */
const struct mv_chan_config *mv_chan_config(const struct mv_chan *ch);
void mv_chan_get_counters(const struct mv_chan *ch, struct mv_chan_counters *out);
int mv_chan_peer_info(const struct mv_chan *ch, uint64_t peer_node, struct mv_chan_peer_info *out);
/* Fills up to max node ids of known peers; returns the total count. */
unsigned mv_chan_peers(const struct mv_chan *ch, uint64_t *nodes, unsigned max);
/* Writes the global counters (and per-peer lines) as text "name value\n" / JSON-ish; returns
 * the length snprintf would have written. */
int mv_chan_format_counters(const struct mv_chan *ch, char *buf, size_t cap, bool json);

#endif
