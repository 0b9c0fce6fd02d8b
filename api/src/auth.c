#include "mvctld/auth.h"

#include <stdio.h>
#include <string.h>

int mvctld_auth_init(struct mvctld_auth *a, const char *user, const char *hash)
{
    memset(a, 0, sizeof *a);
    if (sodium_init() < 0 || strlen(user) >= sizeof a->user || strlen(hash) >= sizeof a->hash ||
        strncmp(hash, "$argon2", 7) != 0)
        return -1;
    snprintf(a->user, sizeof a->user, "%s", user);
    snprintf(a->hash, sizeof a->hash, "%s", hash);
    randombytes_buf(a->key, sizeof a->key);
    pthread_mutex_init(&a->lock, NULL);
    return 0;
}

void mvctld_auth_destroy(struct mvctld_auth *a)
{
    pthread_mutex_destroy(&a->lock);
    sodium_memzero(a, sizeof *a);
}

static void digest(const struct mvctld_auth *a, const char *header,
                   unsigned char out[crypto_generichash_BYTES])
{
    crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)header, strlen(header),
                       a->key, sizeof a->key);
}

bool mvctld_auth_cached(struct mvctld_auth *a, const char *header)
{
    unsigned char d[crypto_generichash_BYTES];
    if (!header)
        return false;
    digest(a, header, d);
    bool found = false;
    pthread_mutex_lock(&a->lock);
    for (int i = 0; i < a->nseen; i++)
        found |= sodium_memcmp(a->seen[i], d, sizeof d) == 0;
    pthread_mutex_unlock(&a->lock);
    return found;
}

bool mvctld_auth_verify(struct mvctld_auth *a, const char *header, const char *user,
                        const char *password)
{
    if (!user || !password || !header)
        return false;
    size_t ulen = strlen(user);
    /* Always run the password hash, so the reply time does not reveal whether the user exists. */
    bool pass_ok = crypto_pwhash_str_verify(a->hash, password, strlen(password)) == 0;
    bool user_ok = ulen == strlen(a->user) && sodium_memcmp(user, a->user, ulen) == 0;
    if (!pass_ok || !user_ok)
        return false;
    unsigned char d[crypto_generichash_BYTES];
    digest(a, header, d);
    pthread_mutex_lock(&a->lock);
    memcpy(a->seen[a->next], d, sizeof d);
    a->next = (a->next + 1) % MVCTLD_AUTH_CACHE;
    if (a->nseen < MVCTLD_AUTH_CACHE)
        a->nseen++;
    pthread_mutex_unlock(&a->lock);
    return true;
}

int mvctld_auth_hash_password(const char *password, char out[crypto_pwhash_STRBYTES])
{
    if (sodium_init() < 0)
        return -1;
    return crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE);
}
