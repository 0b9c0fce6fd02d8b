/* mvstored's on-disk format: a drive (file or block device) holds a superblock, a replica table
 * and a chunk map, then the data chunks. Each vdisk replica owns chunks through the chunk map
 * (thin: allocated on first write; thick: allocated at creation). A chunk map entry records its
 * owner, the logical chunk, a written bit (unwritten chunks read as zeros without touching the
 * disk) and the session generation of the last write to it. Layout and update ordering:
 * docs/storage.md. */
#ifndef MV_DRIVE_H
#define MV_DRIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MV_DRIVE_MAGIC          "MVDRIVE1"
#define MV_DRIVE_FORMAT_VERSION 1
#define MV_DRIVE_SECTOR         512
#define MV_DRIVE_ID_LEN         16
#define MV_DRIVE_HOST_LEN       64
#define MV_VDISK_ID_LEN         64
#define MV_DRIVE_DEFAULT_CHUNK  (1u << 20)
#define MV_DRIVE_DEFAULT_REPL   64
#define MV_DRIVE_MAX_REPL       1024

struct mv_drive;

struct mv_drive_format_opts {
    const char *host;        /* owning host name (required) */
    uint32_t chunk_size;     /* bytes, power of two >= 4096; 0 = 1 MiB */
    uint32_t max_replicas;   /* replica table slots; 0 = 64 */
    uint32_t overcommit_pct; /* thin provisioning limit in % of capacity; 0 = 100 */
    const uint8_t *drive_id; /* 16 bytes, NULL = random */
};

struct mv_drive_info {
    uint8_t drive_id[MV_DRIVE_ID_LEN];
    char host[MV_DRIVE_HOST_LEN];
    uint64_t size_bytes; /* whole drive */
    uint32_t chunk_size;
    uint64_t n_chunks; /* data chunks */
    uint64_t free_chunks;
    uint64_t committed_bytes; /* sum of replica sizes (thin ones included) */
    uint32_t overcommit_pct;
    uint64_t session_gen;
    unsigned max_replicas, n_replicas;
};

struct mv_replica_info {
    int index;
    char vdisk_id[MV_VDISK_ID_LEN];
    uint64_t size_bytes;
    uint16_t shelf;
    uint8_t slot;
    bool mapped;
    bool thin;
    uint64_t epoch;
    uint64_t allocated_chunks, written_chunks;
};

/* Formats path (an existing file or block device) as an empty drive. */
int mv_drive_format(const char *path, const struct mv_drive_format_opts *opts, char *err,
                    size_t errlen);

/* Opens a formatted drive read-write: bumps the session generation and reclaims chunks left
 * owned by no replica by an interrupted create/resize/delete. direct: try O_DIRECT. */
int mv_drive_open(const char *path, struct mv_drive **out, char *err, size_t errlen);
void mv_drive_close(struct mv_drive *d);
const char *mv_drive_path(const struct mv_drive *d);

/* Read-only consistency check. Returns the number of errors found (0 = consistent) or -errno if
 * the drive cannot be read; writes one line per finding into report (may be NULL). */
int mv_drive_check(const char *path, char *report, size_t reportlen);

void mv_drive_get_info(const struct mv_drive *d, struct mv_drive_info *out);

/* Replica management. Functions return 0 / the replica index, or -errno with a reason in err.
 * A replica is exported over AoE (as shelf.slot) while it is mapped. */
int mv_drive_replica_create(struct mv_drive *d, const char *vdisk_id, uint64_t size_bytes,
                            uint16_t shelf, uint8_t slot, bool thin, char *err, size_t errlen);
int mv_drive_replica_find(const struct mv_drive *d, const char *vdisk_id);
int mv_drive_replica_find_aoe(const struct mv_drive *d, uint16_t shelf, uint8_t slot);
int mv_drive_replica_delete(struct mv_drive *d, int index, char *err, size_t errlen);
int mv_drive_replica_resize(struct mv_drive *d, int index, uint64_t size_bytes, char *err,
                            size_t errlen);
int mv_drive_replica_set_mapped(struct mv_drive *d, int index, bool mapped, uint16_t shelf,
                                uint8_t slot, char *err, size_t errlen);
int mv_drive_replica_set_epoch(struct mv_drive *d, int index, uint64_t epoch);
int mv_drive_replica_info(const struct mv_drive *d, int index, struct mv_replica_info *out);
unsigned mv_drive_max_replicas(const struct mv_drive *d);

/* Data path: byte offsets and lengths in whole sectors. Reads of unwritten chunks return zeros
 * without touching the disk. Returns 0 or -errno (-ENOSPC: no free chunk for a thin write,
 * -ERANGE: past the end). */
int mv_drive_replica_read(struct mv_drive *d, int index, uint64_t off, void *buf, size_t len);
int mv_drive_replica_write(struct mv_drive *d, int index, uint64_t off, const void *buf,
                           size_t len);
int mv_drive_flush(struct mv_drive *d);

/* Asynchronous data path (mvstored's io_uring engine): mv_drive_replica_map() translates a
 * replica range into segments of the drive (or zero-fill segments for unwritten chunks on reads)
 * and performs, synchronously, the metadata work a write needs first: a chunk written for the
 * first time is zeroed on disk, synced and marked written before its data segment is returned, so
 * a crash before the data lands reads zeros (the write was not yet acknowledged). The caller then
 * does the segment I/O on mv_drive_data_fd() (O_DIRECT when the backing allows it: buffers and
 * offsets 512-aligned). Returns the number of segments (at most max) or -errno. */
struct mv_drive_seg {
    uint64_t disk_off; /* byte offset on the drive; unused when zero */
    uint32_t len;
    bool zero; /* read: fill with zeros, no I/O */
};
int mv_drive_replica_map(struct mv_drive *d, int index, uint64_t off, size_t len, bool write,
                         struct mv_drive_seg *segs, unsigned max);
int mv_drive_data_fd(const struct mv_drive *d);
bool mv_drive_is_direct(const struct mv_drive *d);
void mv_drive_disable_direct(struct mv_drive *d); /* data fd = the buffered one */

/* Per-chunk state of a replica (for resync and tests): written bit and write generation. */
bool mv_drive_chunk_written(const struct mv_drive *d, int index, uint64_t chunk, uint64_t *gen);

#endif
