/* Driver for fuzz targets in non-libFuzzer builds: replays every file of the seed corpus, then a
 * deterministic stream of mutations of those seeds (bit flips, truncations, extensions), so each
 * ctest run exercises the parser with malformed input even without clang's libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS        256
#define REPLAY_MAX_INPUT 65536
#define MUTATIONS        20000

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static size_t nseeds;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void load_seed(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f || nseeds == MAX_SEEDS) {
        if (f)
            fclose(f);
        return;
    }
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    size_t n = fread(buf, 1, REPLAY_MAX_INPUT, f);
    fclose(f);
    seeds[nseeds] = buf;
    seed_len[nseeds++] = n;
}

static void load_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        load_seed(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        load_seed(p);
    }
    if (d)
        closedir(d);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        load_path(argv[i]);
    for (size_t i = 0; i < nseeds; i++)
        LLVMFuzzerTestOneInput(seeds[i], seed_len[i]);
    static uint8_t buf[REPLAY_MAX_INPUT];
    for (int m = 0; m < MUTATIONS; m++) {
        size_t len = 0;
        if (nseeds) {
            size_t s = rng_next() % nseeds;
            len = seed_len[s];
            memcpy(buf, seeds[s], len);
        }
        switch (rng_next() % 4) {
        case 0: /* flip a few bits */
            for (int k = 0; len && k < 4; k++)
                buf[rng_next() % len] ^= (uint8_t)(1u << (rng_next() % 8));
            break;
        case 1: /* truncate */
            len = len ? rng_next() % len : 0;
            break;
        case 2: /* extend with random bytes */
            for (size_t k = rng_next() % 64; k && len < REPLAY_MAX_INPUT; k--)
                buf[len++] = (uint8_t)rng_next();
            break;
        default: /* random bytes at random places, including length fields */
            for (int k = 0; len && k < 8; k++)
                buf[rng_next() % len] = (uint8_t)rng_next();
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("replayed %zu seeds and %d mutations\n", nseeds, MUTATIONS);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i]);
    return 0;
}
