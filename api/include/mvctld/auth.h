/* HTTP Basic authentication of the administrator. The password is stored only as a libsodium
 * crypto_pwhash_str hash. A verification costs ~0.1 s by design, so verified Authorization
 * headers are remembered as a keyed hash (BLAKE2b with a per-process random key): a repeat of
 * the same header is accepted with one hash and a constant-time compare, and the plain password
 * is never kept. */
#ifndef MVCTLD_AUTH_H
#define MVCTLD_AUTH_H

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>

#define MVCTLD_AUTH_CACHE 16

struct mvctld_auth {
    char user[128];
    char hash[crypto_pwhash_STRBYTES];
    unsigned char key[crypto_generichash_KEYBYTES];
    unsigned char seen[MVCTLD_AUTH_CACHE][crypto_generichash_BYTES];
    int nseen, next;
    pthread_mutex_t lock;
};

/* 0, or -1 when the hash is not a crypto_pwhash_str string. */
int mvctld_auth_init(struct mvctld_auth *a, const char *user, const char *hash);
void mvctld_auth_destroy(struct mvctld_auth *a);

/* Is this exact Authorization header value known to be valid? */
bool mvctld_auth_cached(struct mvctld_auth *a, const char *header);
/* Full check of decoded credentials; on success remembers `header`. */
bool mvctld_auth_verify(struct mvctld_auth *a, const char *header, const char *user,
                        const char *password);

/* crypto_pwhash_str with the interactive limits; 0 or -1. */
int mvctld_auth_hash_password(const char *password, char out[crypto_pwhash_STRBYTES]);

#endif
