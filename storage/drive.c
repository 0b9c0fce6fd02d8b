/* mvstored drive format: superblock, replica table, chunk map, data chunks (mv/drive.h).
 *
 * On-disk integers are little-endian (the structs are written as laid out on x86-64/arm64; a
 * static assertion pins each size). Every metadata update rewrites whole 512-byte sectors, the
 * unit a disk writes atomically, so an update is either on disk or not. */
#include "mv/drive.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mv/log.h"
#include "mv/util.h"

#define SB_OFF         0
#define TABLE_OFF      4096
#define REPL_MAGIC     0x4c504552u /* "REPL" */
#define REPL_THIN      0x1u
#define REPL_MAPPED    0x2u
#define CHUNK_WRITTEN  0x1u
#define ENTRY_NONE     UINT32_MAX
#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

struct drive_sb {
    char magic[8];
    uint32_t format_version;
    uint32_t sector_size;
    uint8_t drive_id[MV_DRIVE_ID_LEN];
    char host[MV_DRIVE_HOST_LEN];
    uint64_t size_bytes;
    uint32_t chunk_size;
    uint32_t max_replicas;
    uint64_t table_off;
    uint64_t map_off;
    uint64_t data_off;
    uint64_t n_chunks;
    uint64_t session_gen;
    uint32_t overcommit_pct;
    uint32_t checksum;
    uint8_t reserved[MV_DRIVE_SECTOR - 160];
};
_Static_assert(sizeof(struct drive_sb) == MV_DRIVE_SECTOR, "superblock is one sector");

struct replica_entry {
    uint32_t magic; /* REPL_MAGIC when in use, 0 when free */
    uint32_t flags;
    char vdisk_id[MV_VDISK_ID_LEN];
    uint64_t size_bytes;
    uint64_t epoch;
    uint16_t shelf;
    uint8_t slot;
    uint8_t pad[1];
    uint32_t checksum;
    uint8_t reserved[MV_DRIVE_SECTOR - 96];
};
_Static_assert(sizeof(struct replica_entry) == MV_DRIVE_SECTOR, "replica entry is one sector");

struct chunk_entry {
    uint32_t owner; /* replica index + 1; 0 = free */
    uint32_t flags; /* CHUNK_WRITTEN */
    uint64_t logical;
    uint64_t gen; /* session generation of the last write */
    uint64_t reserved;
};
_Static_assert(sizeof(struct chunk_entry) == 32, "chunk entry is 32 bytes");
#define ENTRIES_PER_SECTOR (MV_DRIVE_SECTOR / sizeof(struct chunk_entry))

struct replica_mem {
    uint32_t *l2p;     /* logical chunk -> data chunk, ENTRY_NONE when unallocated */
    uint64_t *written; /* bitmap over logical chunks, mirrors CHUNK_WRITTEN */
    uint64_t n_logical;
};

struct mv_drive {
    int fd;
    int dfd; /* data fd: O_DIRECT when the backing allows, else fd */
    char *path;
    struct drive_sb sb;
    struct replica_entry *table;
    struct replica_mem *rm;
    struct chunk_entry *map;
    uint32_t *free_stack;
    uint64_t n_free;
    uint8_t *zero_chunk;
};

/* CRC-32 (IEEE), bitwise: metadata is small and rarely written. */
static uint32_t crc32_ieee(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

static uint32_t sb_checksum(const struct drive_sb *sb)
{
    struct drive_sb tmp = *sb;
    tmp.checksum = 0;
    return crc32_ieee(&tmp, sizeof tmp);
}

static uint32_t entry_checksum(const struct replica_entry *e)
{
    struct replica_entry tmp = *e;
    tmp.checksum = 0;
    return crc32_ieee(&tmp, sizeof tmp);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0) {
            memset(p, 0, len); /* a sparse file's tail */
            return 0;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int backing_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (S_ISBLK(st.st_mode))
        return ioctl(fd, BLKGETSIZE64, size) == 0 ? 0 : -errno;
    if (!S_ISREG(st.st_mode))
        return -ENOTBLK;
    *size = (uint64_t)st.st_size;
    return 0;
}

int mv_drive_format(const char *path, const struct mv_drive_format_opts *opts, char *err,
                    size_t errlen)
{
    uint32_t chunk = opts->chunk_size ? opts->chunk_size : MV_DRIVE_DEFAULT_CHUNK;
    uint32_t maxr = opts->max_replicas ? opts->max_replicas : MV_DRIVE_DEFAULT_REPL;
    if (chunk < 4096 || (chunk & (chunk - 1))) {
        set_err(err, errlen, "chunk size %u is not a power of two >= 4096", chunk);
        return -EINVAL;
    }
    if (maxr > MV_DRIVE_MAX_REPL) {
        set_err(err, errlen, "at most %d replicas per drive", MV_DRIVE_MAX_REPL);
        return -EINVAL;
    }
    if (!opts->host || !*opts->host || strlen(opts->host) >= MV_DRIVE_HOST_LEN) {
        set_err(err, errlen, "host name missing or longer than %d bytes", MV_DRIVE_HOST_LEN - 1);
        return -EINVAL;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    uint64_t size;
    int rc = backing_size(fd, &size);
    if (rc < 0) {
        set_err(err, errlen, "%s: cannot size backing: %s", path, strerror(-rc));
        close(fd);
        return rc;
    }
    struct drive_sb sb;
    memset(&sb, 0, sizeof sb);
    memcpy(sb.magic, MV_DRIVE_MAGIC, 8);
    sb.format_version = MV_DRIVE_FORMAT_VERSION;
    sb.sector_size = MV_DRIVE_SECTOR;
    if (opts->drive_id)
        memcpy(sb.drive_id, opts->drive_id, MV_DRIVE_ID_LEN);
    else if (getrandom(sb.drive_id, MV_DRIVE_ID_LEN, 0) != MV_DRIVE_ID_LEN)
        memset(sb.drive_id, 0x5a, MV_DRIVE_ID_LEN);
    snprintf(sb.host, sizeof sb.host, "%s", opts->host);
    sb.size_bytes = size;
    sb.chunk_size = chunk;
    sb.max_replicas = maxr;
    sb.overcommit_pct = opts->overcommit_pct ? opts->overcommit_pct : 100;
    sb.table_off = TABLE_OFF;
    sb.map_off = ALIGN_UP(TABLE_OFF + (uint64_t)maxr * MV_DRIVE_SECTOR, 4096);
    uint64_t n = size > sb.map_off ? (size - sb.map_off) / (chunk + sizeof(struct chunk_entry)) : 0;
    while (n && ALIGN_UP(sb.map_off + n * sizeof(struct chunk_entry), chunk) + n * chunk > size)
        n--;
    if (n == 0 || n >= ENTRY_NONE) {
        set_err(err, errlen, "%s: %llu bytes is too small for one %u-byte chunk", path,
                (unsigned long long)size, chunk);
        close(fd);
        return -ENOSPC;
    }
    sb.n_chunks = n;
    sb.data_off = ALIGN_UP(sb.map_off + n * sizeof(struct chunk_entry), chunk);
    sb.session_gen = 1;
    sb.checksum = sb_checksum(&sb);

    /* Zero the table and map first, the superblock last: a torn format leaves no valid magic. */
    size_t zlen = 1 << 20;
    uint8_t *zero = calloc(1, zlen);
    if (!zero) {
        close(fd);
        return -ENOMEM;
    }
    struct drive_sb blank;
    memset(&blank, 0, sizeof blank);
    rc = pwrite_all(fd, &blank, sizeof blank, SB_OFF);
    for (uint64_t off = TABLE_OFF; rc == 0 && off < sb.data_off; off += zlen)
        rc = pwrite_all(fd, zero, MV_MIN(zlen, sb.data_off - off), off);
    free(zero);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (rc == 0)
        rc = pwrite_all(fd, &sb, sizeof sb, SB_OFF);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc < 0)
        set_err(err, errlen, "%s: write failed: %s", path, strerror(-rc));
    return rc;
}

/* Validates a superblock read from a backing of the given size. */
static const char *sb_problem(const struct drive_sb *sb, uint64_t size)
{
    if (memcmp(sb->magic, MV_DRIVE_MAGIC, 8) != 0)
        return "no mvstored superblock (bad magic)";
    if (sb->checksum != sb_checksum(sb))
        return "superblock checksum mismatch";
    if (sb->format_version != MV_DRIVE_FORMAT_VERSION)
        return "unsupported format version";
    if (sb->sector_size != MV_DRIVE_SECTOR)
        return "unsupported sector size";
    if (sb->chunk_size < 4096 || (sb->chunk_size & (sb->chunk_size - 1)))
        return "bad chunk size";
    if (sb->max_replicas == 0 || sb->max_replicas > MV_DRIVE_MAX_REPL)
        return "bad replica table size";
    if (sb->table_off != TABLE_OFF ||
        sb->map_off < sb->table_off + (uint64_t)sb->max_replicas * MV_DRIVE_SECTOR)
        return "replica table overlaps the chunk map";
    if (sb->n_chunks == 0 || sb->n_chunks >= ENTRY_NONE ||
        sb->data_off < sb->map_off + sb->n_chunks * sizeof(struct chunk_entry))
        return "chunk map overlaps the data area";
    if (sb->data_off + sb->n_chunks * sb->chunk_size > size || sb->size_bytes > size)
        return "layout runs past the end of the backing";
    if (sb->host[MV_DRIVE_HOST_LEN - 1] != 0)
        return "host name not terminated";
    return NULL;
}

static bool entry_used(const struct replica_entry *e)
{
    return e->magic == REPL_MAGIC;
}

static uint64_t replica_chunks(const struct mv_drive *d, const struct replica_entry *e)
{
    return (e->size_bytes + d->sb.chunk_size - 1) / d->sb.chunk_size;
}

static int write_sb(struct mv_drive *d)
{
    d->sb.checksum = sb_checksum(&d->sb);
    return pwrite_all(d->fd, &d->sb, sizeof d->sb, SB_OFF);
}

static int write_entry(struct mv_drive *d, int idx)
{
    struct replica_entry *e = &d->table[idx];
    e->checksum = entry_checksum(e);
    return pwrite_all(d->fd, e, sizeof *e, d->sb.table_off + (uint64_t)idx * MV_DRIVE_SECTOR);
}

/* Writes the map sectors that cover chunk entries [first, last]. */
static int write_map_range(struct mv_drive *d, uint64_t first, uint64_t last)
{
    uint64_t s0 = first / ENTRIES_PER_SECTOR, s1 = last / ENTRIES_PER_SECTOR;
    uint64_t end = MV_MIN((s1 + 1) * ENTRIES_PER_SECTOR, d->sb.n_chunks);
    return pwrite_all(d->fd, &d->map[s0 * ENTRIES_PER_SECTOR],
                      (end - s0 * ENTRIES_PER_SECTOR) * sizeof(struct chunk_entry),
                      d->sb.map_off + s0 * MV_DRIVE_SECTOR);
}

static int rm_alloc(struct replica_mem *rm, uint64_t n_logical)
{
    uint32_t *l2p = malloc(MV_MAX(n_logical, 1) * sizeof *l2p);
    uint64_t *bits = calloc((n_logical + 63) / 64 + 1, sizeof *bits);
    if (!l2p || !bits) {
        free(l2p);
        free(bits);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < n_logical; i++)
        l2p[i] = ENTRY_NONE;
    free(rm->l2p);
    free(rm->written);
    rm->l2p = l2p;
    rm->written = bits;
    rm->n_logical = n_logical;
    return 0;
}

static void free_chunk(struct mv_drive *d, uint32_t p)
{
    memset(&d->map[p], 0, sizeof d->map[p]);
    d->free_stack[d->n_free++] = p;
}

/* Builds the in-memory maps from the chunk map; entries no live replica can own are cleared. */
static int load_maps(struct mv_drive *d, uint64_t *reclaimed)
{
    *reclaimed = 0;
    for (unsigned i = 0; i < d->sb.max_replicas; i++) {
        if (!entry_used(&d->table[i]))
            continue;
        int rc = rm_alloc(&d->rm[i], replica_chunks(d, &d->table[i]));
        if (rc < 0)
            return rc;
    }
    d->n_free = 0;
    for (uint64_t p = d->sb.n_chunks; p-- > 0;) {
        struct chunk_entry *c = &d->map[p];
        if (c->owner == 0) {
            d->free_stack[d->n_free++] = (uint32_t)p;
            continue;
        }
        uint32_t r = c->owner - 1;
        bool ok = r < d->sb.max_replicas && entry_used(&d->table[r]) &&
                  c->logical < d->rm[r].n_logical && d->rm[r].l2p[c->logical] == ENTRY_NONE;
        if (!ok) {
            free_chunk(d, (uint32_t)p);
            int rc = write_map_range(d, p, p);
            if (rc < 0)
                return rc;
            (*reclaimed)++;
            continue;
        }
        d->rm[r].l2p[c->logical] = (uint32_t)p;
        if (c->flags & CHUNK_WRITTEN)
            d->rm[r].written[c->logical / 64] |= 1ull << (c->logical % 64);
    }
    return 0;
}

int mv_drive_open(const char *path, struct mv_drive **out, char *err, size_t errlen)
{
    struct mv_drive *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->fd = open(path, O_RDWR | O_CLOEXEC);
    d->dfd = -1;
    int rc;
    if (d->fd < 0) {
        rc = -errno;
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        free(d);
        return rc;
    }
    d->path = strdup(path);
    uint64_t size = 0;
    rc = backing_size(d->fd, &size);
    if (rc == 0)
        rc = pread_all(d->fd, &d->sb, sizeof d->sb, SB_OFF);
    if (rc < 0) {
        set_err(err, errlen, "%s: %s", path, strerror(-rc));
        goto fail;
    }
    const char *why = sb_problem(&d->sb, size);
    if (why) {
        set_err(err, errlen, "%s: %s", path, why);
        rc = -EUCLEAN;
        goto fail;
    }
    d->table = calloc(d->sb.max_replicas, sizeof *d->table);
    d->rm = calloc(d->sb.max_replicas, sizeof *d->rm);
    d->map = malloc(d->sb.n_chunks * sizeof *d->map);
    d->free_stack = malloc(d->sb.n_chunks * sizeof *d->free_stack);
    d->zero_chunk = aligned_alloc(4096, d->sb.chunk_size);
    if (d->zero_chunk)
        memset(d->zero_chunk, 0, d->sb.chunk_size);
    /* O_DIRECT for the asynchronous data path, where the filesystem or device supports it
     * (tmpfs does not); metadata stays on the buffered descriptor and is synced explicitly. */
    d->dfd = open(path, O_RDWR | O_CLOEXEC | O_DIRECT);
    if (!d->table || !d->rm || !d->map || !d->free_stack || !d->zero_chunk) {
        rc = -ENOMEM;
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    rc = pread_all(d->fd, d->table, d->sb.max_replicas * sizeof *d->table, d->sb.table_off);
    if (rc == 0)
        rc = pread_all(d->fd, d->map, d->sb.n_chunks * sizeof *d->map, d->sb.map_off);
    if (rc < 0) {
        set_err(err, errlen, "%s: reading metadata: %s", path, strerror(-rc));
        goto fail;
    }
    for (unsigned i = 0; i < d->sb.max_replicas; i++) {
        struct replica_entry *e = &d->table[i];
        if (e->magic == 0)
            continue;
        if (!entry_used(e) || e->checksum != entry_checksum(e) ||
            e->vdisk_id[MV_VDISK_ID_LEN - 1] != 0) {
            set_err(err, errlen, "%s: replica table entry %u is corrupt", path, i);
            rc = -EUCLEAN;
            goto fail;
        }
    }
    uint64_t reclaimed;
    rc = load_maps(d, &reclaimed);
    if (rc < 0) {
        set_err(err, errlen, "%s: loading chunk map: %s", path, strerror(-rc));
        goto fail;
    }
    if (reclaimed)
        mv_warn("%s: reclaimed %llu chunk(s) left by an interrupted update", path,
                (unsigned long long)reclaimed);
    /* A new session generation: chunks written from now on carry it (docs/storage.md). */
    d->sb.session_gen++;
    rc = write_sb(d);
    if (rc == 0 && fdatasync(d->fd) != 0)
        rc = -errno;
    if (rc < 0) {
        set_err(err, errlen, "%s: writing superblock: %s", path, strerror(-rc));
        goto fail;
    }
    *out = d;
    return 0;
fail:
    mv_drive_close(d);
    return rc;
}

void mv_drive_close(struct mv_drive *d)
{
    if (!d)
        return;
    if (d->dfd >= 0)
        close(d->dfd);
    if (d->fd >= 0) {
        fdatasync(d->fd);
        close(d->fd);
    }
    for (unsigned i = 0; d->rm && i < d->sb.max_replicas; i++) {
        free(d->rm[i].l2p);
        free(d->rm[i].written);
    }
    free(d->rm);
    free(d->table);
    free(d->map);
    free(d->free_stack);
    free(d->zero_chunk);
    free(d->path);
    free(d);
}

const char *mv_drive_path(const struct mv_drive *d)
{
    return d->path;
}

void mv_drive_get_info(const struct mv_drive *d, struct mv_drive_info *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->drive_id, d->sb.drive_id, MV_DRIVE_ID_LEN);
    memcpy(out->host, d->sb.host, MV_DRIVE_HOST_LEN);
    out->size_bytes = d->sb.size_bytes;
    out->chunk_size = d->sb.chunk_size;
    out->n_chunks = d->sb.n_chunks;
    out->free_chunks = d->n_free;
    out->overcommit_pct = d->sb.overcommit_pct;
    out->session_gen = d->sb.session_gen;
    out->max_replicas = d->sb.max_replicas;
    for (unsigned i = 0; i < d->sb.max_replicas; i++) {
        if (entry_used(&d->table[i])) {
            out->n_replicas++;
            out->committed_bytes += d->table[i].size_bytes;
        }
    }
}

unsigned mv_drive_max_replicas(const struct mv_drive *d)
{
    return d->sb.max_replicas;
}

static bool valid_index(const struct mv_drive *d, int idx)
{
    return idx >= 0 && (unsigned)idx < d->sb.max_replicas && entry_used(&d->table[idx]);
}

int mv_drive_replica_find(const struct mv_drive *d, const char *vdisk_id)
{
    for (unsigned i = 0; i < d->sb.max_replicas; i++)
        if (entry_used(&d->table[i]) && strcmp(d->table[i].vdisk_id, vdisk_id) == 0)
            return (int)i;
    return -ENOENT;
}

int mv_drive_replica_find_aoe(const struct mv_drive *d, uint16_t shelf, uint8_t slot)
{
    for (unsigned i = 0; i < d->sb.max_replicas; i++) {
        const struct replica_entry *e = &d->table[i];
        if (entry_used(e) && (e->flags & REPL_MAPPED) && e->shelf == shelf && e->slot == slot)
            return (int)i;
    }
    return -ENOENT;
}

/* Capacity a replica set would commit: thick replicas need real chunks, thin ones count against
 * the overcommit limit. */
static bool fits_overcommit(const struct mv_drive *d, uint64_t extra_bytes)
{
    struct mv_drive_info info;
    mv_drive_get_info(d, &info);
    uint64_t capacity = d->sb.n_chunks * d->sb.chunk_size;
    return (unsigned __int128)(info.committed_bytes + extra_bytes) * 100 <=
           (unsigned __int128)capacity * d->sb.overcommit_pct;
}

/* Allocates chunks for logical [from, to) of replica idx and persists the map entries (not yet
 * the replica entry: orphans of a crash here are reclaimed at the next open). */
static int allocate_range(struct mv_drive *d, int idx, uint64_t from, uint64_t to)
{
    if (to - from > d->n_free)
        return -ENOSPC;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t l = from; l < to; l++) {
        uint32_t p = d->free_stack[--d->n_free];
        d->map[p] = (struct chunk_entry){.owner = (uint32_t)idx + 1, .logical = l};
        d->rm[idx].l2p[l] = p;
        lo = MV_MIN(lo, p);
        hi = MV_MAX(hi, p);
    }
    if (from == to)
        return 0;
    int rc = write_map_range(d, lo, hi);
    if (rc == 0 && fdatasync(d->fd) != 0)
        rc = -errno;
    return rc;
}

int mv_drive_replica_create(struct mv_drive *d, const char *vdisk_id, uint64_t size_bytes,
                            uint16_t shelf, uint8_t slot, bool thin, char *err, size_t errlen)
{
    if (!vdisk_id || !*vdisk_id || strlen(vdisk_id) >= MV_VDISK_ID_LEN) {
        set_err(err, errlen, "vdisk id missing or longer than %d bytes", MV_VDISK_ID_LEN - 1);
        return -EINVAL;
    }
    if (size_bytes == 0 || size_bytes % MV_DRIVE_SECTOR || (size_bytes >> 9) >> 48) {
        set_err(err, errlen, "size must be a non-zero multiple of %d bytes", MV_DRIVE_SECTOR);
        return -EINVAL;
    }
    if (mv_drive_replica_find(d, vdisk_id) >= 0) {
        set_err(err, errlen, "replica of vdisk %s already on this drive", vdisk_id);
        return -EEXIST;
    }
    if (shelf == 0xffff || slot == 0xff) {
        set_err(err, errlen, "shelf 65535 and slot 255 are AoE broadcast addresses");
        return -EINVAL;
    }
    int idx = -1;
    for (unsigned i = 0; i < d->sb.max_replicas && idx < 0; i++)
        if (!entry_used(&d->table[i]))
            idx = (int)i;
    if (idx < 0) {
        set_err(err, errlen, "replica table full (%u slots)", d->sb.max_replicas);
        return -ENOSPC;
    }
    uint64_t n_logical = (size_bytes + d->sb.chunk_size - 1) / d->sb.chunk_size;
    if (thin ? !fits_overcommit(d, size_bytes) : n_logical > d->n_free) {
        set_err(err, errlen, "not enough space: %s replica of %llu bytes", thin ? "thin" : "thick",
                (unsigned long long)size_bytes);
        return -ENOSPC;
    }
    int rc = rm_alloc(&d->rm[idx], n_logical);
    if (rc == 0 && !thin)
        rc = allocate_range(d, idx, 0, n_logical);
    struct replica_entry *e = &d->table[idx];
    if (rc == 0) {
        memset(e, 0, sizeof *e);
        e->magic = REPL_MAGIC;
        e->flags = thin ? REPL_THIN : 0;
        snprintf(e->vdisk_id, sizeof e->vdisk_id, "%s", vdisk_id);
        e->size_bytes = size_bytes;
        e->shelf = shelf;
        e->slot = slot;
        rc = write_entry(d, idx);
        if (rc == 0 && fdatasync(d->fd) != 0)
            rc = -errno;
    }
    if (rc < 0) {
        set_err(err, errlen, "creating replica: %s", strerror(-rc));
        return rc;
    }
    return idx;
}

int mv_drive_replica_delete(struct mv_drive *d, int idx, char *err, size_t errlen)
{
    if (!valid_index(d, idx)) {
        set_err(err, errlen, "no such replica");
        return -ENOENT;
    }
    /* Entry first: chunks whose owner is gone are reclaimed at open if we crash below. */
    memset(&d->table[idx], 0, sizeof d->table[idx]);
    int rc = write_entry(d, idx);
    if (rc == 0 && fdatasync(d->fd) != 0)
        rc = -errno;
    if (rc < 0) {
        set_err(err, errlen, "deleting replica: %s", strerror(-rc));
        return rc;
    }
    struct replica_mem *rm = &d->rm[idx];
    for (uint64_t l = 0; l < rm->n_logical; l++) {
        if (rm->l2p[l] == ENTRY_NONE)
            continue;
        uint32_t p = rm->l2p[l];
        free_chunk(d, p);
        rc = write_map_range(d, p, p);
        if (rc < 0)
            break; /* the rest is reclaimed at the next open */
    }
    free(rm->l2p);
    free(rm->written);
    memset(rm, 0, sizeof *rm);
    return 0;
}

int mv_drive_replica_resize(struct mv_drive *d, int idx, uint64_t size_bytes, char *err,
                            size_t errlen)
{
    if (!valid_index(d, idx)) {
        set_err(err, errlen, "no such replica");
        return -ENOENT;
    }
    if (size_bytes == 0 || size_bytes % MV_DRIVE_SECTOR || (size_bytes >> 9) >> 48) {
        set_err(err, errlen, "size must be a non-zero multiple of %d bytes", MV_DRIVE_SECTOR);
        return -EINVAL;
    }
    struct replica_entry *e = &d->table[idx];
    struct replica_mem *rm = &d->rm[idx];
    uint64_t old_n = rm->n_logical;
    uint64_t new_n = (size_bytes + d->sb.chunk_size - 1) / d->sb.chunk_size;
    bool thin = e->flags & REPL_THIN;
    if (size_bytes > e->size_bytes &&
        (thin ? !fits_overcommit(d, size_bytes - e->size_bytes) : new_n - old_n > d->n_free)) {
        set_err(err, errlen, "not enough space to grow to %llu bytes",
                (unsigned long long)size_bytes);
        return -ENOSPC;
    }
    int rc = 0;
    if (new_n > old_n) {
        uint32_t *l2p = realloc(rm->l2p, new_n * sizeof *l2p);
        uint64_t *bits = realloc(rm->written, ((new_n + 63) / 64 + 1) * sizeof *bits);
        if (l2p)
            rm->l2p = l2p;
        if (bits)
            rm->written = bits;
        if (!l2p || !bits)
            return -ENOMEM;
        for (uint64_t l = old_n; l < new_n; l++) {
            rm->l2p[l] = ENTRY_NONE;
            rm->written[l / 64] &= ~(1ull << (l % 64));
        }
        for (uint64_t w = old_n / 64 + 1; w < (new_n + 63) / 64 + 1; w++)
            rm->written[w] = 0;
        rm->n_logical = new_n;
        if (!thin)
            rc = allocate_range(d, idx, old_n, new_n);
    }
    if (rc == 0) {
        /* Growing: chunks before the entry. Shrinking: the entry before freeing chunks. */
        e->size_bytes = size_bytes;
        rc = write_entry(d, idx);
        if (rc == 0 && fdatasync(d->fd) != 0)
            rc = -errno;
    }
    if (rc == 0 && new_n < old_n) {
        for (uint64_t l = new_n; l < old_n; l++) {
            if (rm->l2p[l] == ENTRY_NONE)
                continue;
            uint32_t p = rm->l2p[l];
            free_chunk(d, p);
            rm->l2p[l] = ENTRY_NONE;
            rm->written[l / 64] &= ~(1ull << (l % 64));
            if (write_map_range(d, p, p) < 0)
                break;
        }
        rm->n_logical = new_n;
    }
    if (rc < 0)
        set_err(err, errlen, "resizing replica: %s", strerror(-rc));
    return rc;
}

int mv_drive_replica_set_mapped(struct mv_drive *d, int idx, bool mapped, uint16_t shelf,
                                uint8_t slot, char *err, size_t errlen)
{
    if (!valid_index(d, idx)) {
        set_err(err, errlen, "no such replica");
        return -ENOENT;
    }
    struct replica_entry *e = &d->table[idx];
    if (mapped) {
        if (shelf == 0xffff || slot == 0xff) {
            set_err(err, errlen, "shelf 65535 and slot 255 are AoE broadcast addresses");
            return -EINVAL;
        }
        int other = mv_drive_replica_find_aoe(d, shelf, slot);
        if (other >= 0 && other != idx) {
            set_err(err, errlen, "AoE address %u.%u already used by vdisk %s", shelf, slot,
                    d->table[other].vdisk_id);
            return -EADDRINUSE;
        }
        e->shelf = shelf;
        e->slot = slot;
        e->flags |= REPL_MAPPED;
    } else {
        e->flags &= ~REPL_MAPPED;
    }
    int rc = write_entry(d, idx);
    if (rc == 0 && fdatasync(d->fd) != 0)
        rc = -errno;
    if (rc < 0)
        set_err(err, errlen, "updating replica: %s", strerror(-rc));
    return rc;
}

int mv_drive_replica_set_epoch(struct mv_drive *d, int idx, uint64_t epoch)
{
    if (!valid_index(d, idx))
        return -ENOENT;
    d->table[idx].epoch = epoch;
    int rc = write_entry(d, idx);
    if (rc == 0 && fdatasync(d->fd) != 0)
        rc = -errno;
    return rc;
}

int mv_drive_replica_info(const struct mv_drive *d, int idx, struct mv_replica_info *out)
{
    if (!valid_index(d, idx))
        return -ENOENT;
    const struct replica_entry *e = &d->table[idx];
    const struct replica_mem *rm = &d->rm[idx];
    memset(out, 0, sizeof *out);
    out->index = idx;
    memcpy(out->vdisk_id, e->vdisk_id, MV_VDISK_ID_LEN);
    out->size_bytes = e->size_bytes;
    out->shelf = e->shelf;
    out->slot = e->slot;
    out->mapped = e->flags & REPL_MAPPED;
    out->thin = e->flags & REPL_THIN;
    out->epoch = e->epoch;
    for (uint64_t l = 0; l < rm->n_logical; l++) {
        if (rm->l2p[l] != ENTRY_NONE)
            out->allocated_chunks++;
        if (rm->written[l / 64] & (1ull << (l % 64)))
            out->written_chunks++;
    }
    return 0;
}

bool mv_drive_chunk_written(const struct mv_drive *d, int idx, uint64_t chunk, uint64_t *gen)
{
    if (!valid_index(d, idx) || chunk >= d->rm[idx].n_logical)
        return false;
    const struct replica_mem *rm = &d->rm[idx];
    bool w = rm->written[chunk / 64] & (1ull << (chunk % 64));
    if (gen)
        *gen = w ? d->map[rm->l2p[chunk]].gen : 0;
    return w;
}

static int check_range(const struct mv_drive *d, int idx, uint64_t off, size_t len)
{
    if (!valid_index(d, idx))
        return -ENOENT;
    if (off % MV_DRIVE_SECTOR || len % MV_DRIVE_SECTOR)
        return -EINVAL;
    if (off > d->table[idx].size_bytes || len > d->table[idx].size_bytes - off)
        return -ERANGE;
    return 0;
}

static uint64_t chunk_off(const struct mv_drive *d, uint32_t p)
{
    return d->sb.data_off + (uint64_t)p * d->sb.chunk_size;
}

int mv_drive_replica_read(struct mv_drive *d, int idx, uint64_t off, void *buf, size_t len)
{
    int rc = check_range(d, idx, off, len);
    if (rc < 0)
        return rc;
    struct replica_mem *rm = &d->rm[idx];
    uint8_t *out = buf;
    while (len) {
        uint64_t l = off / d->sb.chunk_size, in = off % d->sb.chunk_size;
        size_t n = (size_t)MV_MIN((uint64_t)len, d->sb.chunk_size - in);
        if (rm->written[l / 64] & (1ull << (l % 64)))
            rc = pread_all(d->fd, out, n, chunk_off(d, rm->l2p[l]) + in);
        else
            memset(out, 0, n); /* never written: zeros, no disk access */
        if (rc < 0)
            return rc;
        out += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* First write to a chunk: the whole chunk is written (zeros around the data), made durable, and
 * only then marked written in the map, so a crash never exposes stale data of a reused chunk. */
static int write_fresh_chunk(struct mv_drive *d, int idx, uint64_t l, uint64_t in,
                             const uint8_t *src, size_t n)
{
    struct replica_mem *rm = &d->rm[idx];
    bool allocated_here = false;
    if (rm->l2p[l] == ENTRY_NONE) {
        if (d->n_free == 0)
            return -ENOSPC;
        uint32_t p = d->free_stack[--d->n_free];
        rm->l2p[l] = p;
        allocated_here = true;
    }
    uint32_t p = rm->l2p[l];
    uint64_t base = chunk_off(d, p);
    int rc = 0;
    if (in)
        rc = pwrite_all(d->fd, d->zero_chunk, in, base);
    if (rc == 0)
        rc = pwrite_all(d->fd, src, n, base + in);
    if (rc == 0 && in + n < d->sb.chunk_size)
        rc = pwrite_all(d->fd, d->zero_chunk, d->sb.chunk_size - in - n, base + in + n);
    if (rc == 0 && fdatasync(d->fd) != 0)
        rc = -errno;
    if (rc == 0) {
        d->map[p] = (struct chunk_entry){.owner = (uint32_t)idx + 1,
                                         .flags = CHUNK_WRITTEN,
                                         .logical = l,
                                         .gen = d->sb.session_gen};
        rc = write_map_range(d, p, p);
    }
    if (rc < 0) {
        if (allocated_here) {
            rm->l2p[l] = ENTRY_NONE;
            free_chunk(d, p);
        }
        return rc;
    }
    rm->written[l / 64] |= 1ull << (l % 64);
    return 0;
}

int mv_drive_replica_write(struct mv_drive *d, int idx, uint64_t off, const void *buf, size_t len)
{
    int rc = check_range(d, idx, off, len);
    if (rc < 0)
        return rc;
    struct replica_mem *rm = &d->rm[idx];
    const uint8_t *src = buf;
    while (len) {
        uint64_t l = off / d->sb.chunk_size, in = off % d->sb.chunk_size;
        size_t n = (size_t)MV_MIN((uint64_t)len, d->sb.chunk_size - in);
        if (!(rm->written[l / 64] & (1ull << (l % 64)))) {
            rc = write_fresh_chunk(d, idx, l, in, src, n);
        } else {
            uint32_t p = rm->l2p[l];
            if (d->map[p].gen != d->sb.session_gen) {
                /* Generation before data: a resync may copy a chunk needlessly, never miss
                 * one. Once per chunk per session, so overwrites stay one write each. */
                d->map[p].gen = d->sb.session_gen;
                rc = write_map_range(d, p, p);
            }
            if (rc == 0)
                rc = pwrite_all(d->fd, src, n, chunk_off(d, p) + in);
        }
        if (rc < 0)
            return rc;
        src += n;
        off += n;
        len -= n;
    }
    return 0;
}

int mv_drive_data_fd(const struct mv_drive *d)
{
    return d->dfd >= 0 ? d->dfd : d->fd;
}

bool mv_drive_is_direct(const struct mv_drive *d)
{
    return d->dfd >= 0;
}

void mv_drive_disable_direct(struct mv_drive *d)
{
    if (d->dfd >= 0)
        close(d->dfd);
    d->dfd = -1;
}

/* First write to a chunk on the asynchronous path: allocate, zero on disk, sync, mark written. */
static int prepare_fresh_chunk(struct mv_drive *d, int idx, uint64_t l)
{
    struct replica_mem *rm = &d->rm[idx];
    bool allocated_here = false;
    if (rm->l2p[l] == ENTRY_NONE) {
        if (d->n_free == 0)
            return -ENOSPC;
        rm->l2p[l] = d->free_stack[--d->n_free];
        allocated_here = true;
    }
    uint32_t p = rm->l2p[l];
    int rc = pwrite_all(mv_drive_data_fd(d), d->zero_chunk, d->sb.chunk_size, chunk_off(d, p));
    if (rc == 0 && fdatasync(mv_drive_data_fd(d)) != 0)
        rc = -errno;
    if (rc == 0) {
        d->map[p] = (struct chunk_entry){.owner = (uint32_t)idx + 1,
                                         .flags = CHUNK_WRITTEN,
                                         .logical = l,
                                         .gen = d->sb.session_gen};
        rc = write_map_range(d, p, p);
    }
    if (rc < 0) {
        if (allocated_here) {
            rm->l2p[l] = ENTRY_NONE;
            free_chunk(d, p);
        }
        return rc;
    }
    rm->written[l / 64] |= 1ull << (l % 64);
    return 0;
}

int mv_drive_replica_map(struct mv_drive *d, int idx, uint64_t off, size_t len, bool write,
                         struct mv_drive_seg *segs, unsigned max)
{
    int rc = check_range(d, idx, off, len);
    if (rc < 0)
        return rc;
    struct replica_mem *rm = &d->rm[idx];
    unsigned n = 0;
    while (len) {
        uint64_t l = off / d->sb.chunk_size, in = off % d->sb.chunk_size;
        uint32_t piece = (uint32_t)MV_MIN((uint64_t)len, d->sb.chunk_size - in);
        bool written = rm->written[l / 64] & (1ull << (l % 64));
        if (n == max)
            return -E2BIG;
        if (write && !written) {
            rc = prepare_fresh_chunk(d, idx, l);
            if (rc < 0)
                return rc;
            written = true;
        } else if (write && d->map[rm->l2p[l]].gen != d->sb.session_gen) {
            d->map[rm->l2p[l]].gen = d->sb.session_gen; /* as in mv_drive_replica_write() */
            rc = write_map_range(d, rm->l2p[l], rm->l2p[l]);
            if (rc < 0)
                return rc;
        }
        if (written)
            segs[n] =
                (struct mv_drive_seg){.disk_off = chunk_off(d, rm->l2p[l]) + in, .len = piece};
        else
            segs[n] = (struct mv_drive_seg){.len = piece, .zero = true};
        n++;
        off += piece;
        len -= piece;
    }
    return (int)n;
}

int mv_drive_flush(struct mv_drive *d)
{
    if (d->dfd >= 0 && fdatasync(d->dfd) != 0)
        return -errno;
    return fdatasync(d->fd) == 0 ? 0 : -errno;
}

static void report_line(char *report, size_t reportlen, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_line(char *report, size_t reportlen, size_t *used, const char *fmt, ...)
{
    if (!report || *used + 2 >= reportlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(report + *used, reportlen - *used - 1, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    *used = MV_MIN(*used + (size_t)w, reportlen - 2);
    report[(*used)++] = '\n';
    report[*used] = 0;
}

/* --check: everything mv_drive_open() relies on, reported line by line, nothing written. */
int mv_drive_check(const char *path, char *report, size_t reportlen)
{
    size_t used = 0;
    int errors = 0;
#define FINDING(...)                                                                               \
    do {                                                                                           \
        errors++;                                                                                  \
        report_line(report, reportlen, &used, __VA_ARGS__);                                        \
    } while (0)
    if (report && reportlen)
        report[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint64_t size = 0;
    struct drive_sb sb;
    int rc = backing_size(fd, &size);
    if (rc == 0)
        rc = pread_all(fd, &sb, sizeof sb, SB_OFF);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    const char *why = sb_problem(&sb, size);
    if (why) {
        FINDING("superblock: %s", why);
        close(fd);
        return errors;
    }
    struct replica_entry *table = calloc(sb.max_replicas, sizeof *table);
    struct chunk_entry *map = malloc(sb.n_chunks * sizeof *map);
    uint64_t *seen_bits = NULL;
    uint64_t *first_chunk = calloc(sb.max_replicas, sizeof *first_chunk);
    if (!table || !map || !first_chunk) {
        rc = -ENOMEM;
        goto out;
    }
    rc = pread_all(fd, table, sb.max_replicas * sizeof *table, sb.table_off);
    if (rc == 0)
        rc = pread_all(fd, map, sb.n_chunks * sizeof *map, sb.map_off);
    if (rc < 0)
        goto out;
    /* Offsets of each replica's bit range in one bitmap of (replica, logical) pairs. */
    uint64_t total = 0;
    for (unsigned i = 0; i < sb.max_replicas; i++) {
        struct replica_entry *e = &table[i];
        first_chunk[i] = total;
        if (e->magic == 0)
            continue;
        if (e->magic != REPL_MAGIC || e->checksum != entry_checksum(e)) {
            FINDING("replica %u: corrupt table entry", i);
            e->magic = 0;
            continue;
        }
        if (e->vdisk_id[MV_VDISK_ID_LEN - 1] != 0 || !e->vdisk_id[0])
            FINDING("replica %u: bad vdisk id", i);
        if (e->size_bytes == 0 || e->size_bytes % MV_DRIVE_SECTOR)
            FINDING("replica %u: bad size %llu", i, (unsigned long long)e->size_bytes);
        for (unsigned j = 0; j < i; j++) {
            if (table[j].magic != REPL_MAGIC)
                continue;
            if (strncmp(table[j].vdisk_id, e->vdisk_id, MV_VDISK_ID_LEN) == 0)
                FINDING("replicas %u and %u: same vdisk id", j, i);
            if ((e->flags & REPL_MAPPED) && (table[j].flags & REPL_MAPPED) &&
                table[j].shelf == e->shelf && table[j].slot == e->slot)
                FINDING("replicas %u and %u: same AoE address %u.%u", j, i, e->shelf, e->slot);
        }
        total += (e->size_bytes + sb.chunk_size - 1) / sb.chunk_size;
    }
    seen_bits = calloc(total / 64 + 1, sizeof *seen_bits);
    if (!seen_bits) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t orphans = 0;
    for (uint64_t p = 0; p < sb.n_chunks; p++) {
        struct chunk_entry *c = &map[p];
        if (c->owner == 0) {
            if (c->flags || c->logical || c->gen)
                FINDING("chunk %llu: free but not cleared", (unsigned long long)p);
            continue;
        }
        uint32_t r = c->owner - 1;
        if (r >= sb.max_replicas || table[r].magic != REPL_MAGIC ||
            c->logical >= (table[r].size_bytes + sb.chunk_size - 1) / sb.chunk_size) {
            orphans++; /* left by an interrupted create/resize/delete; open reclaims it */
            continue;
        }
        if (c->flags & ~CHUNK_WRITTEN)
            FINDING("chunk %llu: unknown flags %#x", (unsigned long long)p, c->flags);
        if (c->gen > sb.session_gen)
            FINDING("chunk %llu: generation %llu is in the future (session %llu)",
                    (unsigned long long)p, (unsigned long long)c->gen,
                    (unsigned long long)sb.session_gen);
        if ((c->flags & CHUNK_WRITTEN) && c->gen == 0)
            FINDING("chunk %llu: written without a generation", (unsigned long long)p);
        uint64_t bit = first_chunk[r] + c->logical;
        if (seen_bits[bit / 64] & (1ull << (bit % 64)))
            FINDING("chunk %llu: replica %u logical chunk %llu mapped twice", (unsigned long long)p,
                    r, (unsigned long long)c->logical);
        seen_bits[bit / 64] |= 1ull << (bit % 64);
    }
    for (unsigned i = 0; i < sb.max_replicas; i++) {
        struct replica_entry *e = &table[i];
        if (e->magic != REPL_MAGIC || (e->flags & REPL_THIN))
            continue;
        uint64_t n = (e->size_bytes + sb.chunk_size - 1) / sb.chunk_size;
        for (uint64_t l = 0; l < n; l++) {
            uint64_t bit = first_chunk[i] + l;
            if (!(seen_bits[bit / 64] & (1ull << (bit % 64)))) {
                FINDING("replica %u (thick): logical chunk %llu unallocated", i,
                        (unsigned long long)l);
                break;
            }
        }
    }
    if (orphans)
        report_line(report, reportlen, &used,
                    "note: %llu orphaned chunk(s), reclaimed at next open",
                    (unsigned long long)orphans);
out:
    free(table);
    free(map);
    free(seen_bits);
    free(first_chunk);
    close(fd);
#undef FINDING
    return rc < 0 ? rc : errors;
}
