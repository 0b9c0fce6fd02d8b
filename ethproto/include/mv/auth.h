/* Frame authentication: a 16-byte Poly1305 tag over the whole frame (Ethernet header, control
 * header, payload) as XChaCha20-Poly1305 computes it (libsodium; the frame is the associated
 * data, the nonce is sender node, incarnation, EtherType and counter: docs/protocol.md §4.1), a
 * cluster key ring with key ids for rotation, a per-peer sliding replay window and incarnation
 * numbers that increase across restarts.
 *
 * Key file format (text, mode 0600, one key per line, '#' starts a comment):
 *     key <id 0-255> <64 hex digits> [active] [expires=<unix seconds>]
 * Exactly one key may be marked `active` (it signs outgoing frames; if none is marked, the
 * highest id signs). Every listed key that has not expired verifies incoming frames, so a rotation
 * is: add the new key everywhere, mark it active everywhere, then remove (or expire) the old one.
 */
#ifndef MV_AUTH_H
#define MV_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MV_AUTH_KEY_LEN  32
#define MV_AUTH_MAX_KEYS 8

enum mv_auth_cause {
    MV_AUTH_OK = 0,
    MV_AUTH_MALFORMED,         /* truncated or structurally invalid (codec rejected it) */
    MV_AUTH_UNKNOWN_KEY,       /* key id not in the key ring */
    MV_AUTH_EXPIRED_KEY,       /* key id known but past its rotation window */
    MV_AUTH_BAD_TAG,           /* forged or corrupted: MAC mismatch */
    MV_AUTH_REPLAY,            /* counter already seen or below the replay window */
    MV_AUTH_STALE_INCARNATION, /* sender incarnation older than the one we know */
    MV_AUTH_WRONG_DST,         /* addressed to an older incarnation of this node */
    MV_AUTH_NCAUSES
};
const char *mv_auth_cause_name(enum mv_auth_cause cause);

struct mv_auth_key {
    uint8_t id;
    bool active;
    uint64_t expires_s; /* realtime seconds; 0 = never */
    uint8_t key[MV_AUTH_KEY_LEN];
};

struct mv_keyring {
    struct mv_auth_key keys[MV_AUTH_MAX_KEYS];
    unsigned n;
    int active; /* index into keys of the signing key, -1 if empty */
};

void mv_keyring_init(struct mv_keyring *kr);
/* Adds (or replaces, by id) a key. active=true makes it the signing key. -ENOSPC when full. */
int mv_keyring_add(struct mv_keyring *kr, uint8_t id, const uint8_t key[MV_AUTH_KEY_LEN],
                   uint64_t expires_s, bool active);
int mv_keyring_remove(struct mv_keyring *kr, uint8_t id);
/* Parses key file text. On failure returns -EINVAL with "line N: reason" in err. */
int mv_keyring_parse(struct mv_keyring *kr, const char *text, char *err, size_t errlen);
/* Loads a key file (see the format above). Warns (does not fail) if it is group/world readable. */
int mv_keyring_load(struct mv_keyring *kr, const char *path, char *err, size_t errlen);
/* Writes a new key file with one fresh random active key (mode 0600, refuses to overwrite). */
int mv_keyring_generate_file(const char *path, uint8_t id, char *err, size_t errlen);
void mv_keyring_wipe(struct mv_keyring *kr); /* zeroes key material (and this thread's cache) */
/* Zeroes this thread's cache of per-sender subkeys derived from keys (seal/verify refill it). */
void mv_auth_forget_cached_keys(void);

/* Signs a frame encoded by mv_ctrl_encode(): writes the signing key id into the header and the
 * tag into the last MV_CTRL_TAG_LEN bytes. Returns 0 or -ENOKEY / -EINVAL. */
int mv_auth_seal(const struct mv_keyring *kr, uint8_t *frame, size_t len);

/* Checks the tag with the key named in the header (now_s: realtime seconds, for expiry).
 * The frame must already have passed mv_ctrl_decode(). Constant-time comparison. */
enum mv_auth_cause mv_auth_verify(const struct mv_keyring *kr, const uint8_t *frame, size_t len,
                                  uint64_t now_s);

/* Sliding replay window over a sender's frame counters (1024 frames deep), per sender
 * incarnation. */
#define MV_REPLAY_WINDOW 1024
struct mv_replay_window {
    uint64_t incarnation; /* 0 = nothing seen yet */
    uint64_t top;         /* highest counter accepted */
    uint64_t bits[MV_REPLAY_WINDOW / 64];
};
/* Checks and, when acceptable, records (incarnation, counter). A higher incarnation restarts the
 * window (the caller detects a peer restart by comparing incarnations before this call). Returns
 * MV_AUTH_OK, MV_AUTH_REPLAY or MV_AUTH_STALE_INCARNATION; on rejection nothing changes. */
enum mv_auth_cause mv_replay_check_commit(struct mv_replay_window *w, uint64_t incarnation,
                                          uint64_t counter);

/* Incarnation numbers: max(previous + 1, realtime in microseconds), persisted in state_path
 * (atomically: write temp, fsync, rename) before it is returned, so a restart always gets a
 * larger number even if the clock steps back. state_path NULL: realtime microseconds only. */
int mv_incarnation_next(const char *state_path, uint64_t realtime_ns, uint64_t *out, char *err,
                        size_t errlen);

#endif
