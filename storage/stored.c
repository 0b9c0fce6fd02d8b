/* mvstored control protocol: one JSON object per line on the AF_UNIX control socket. */
#include "stored.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mv/log.h"
#include "mv/util.h"

int stored_add_drive(struct stored *s, const char *path)
{
    if (s->n_drives == STORED_MAX_DRIVES)
        return -ENOSPC;
    for (unsigned i = 0; i < s->n_drives; i++)
        if (strcmp(s->drives[i].path, path) == 0)
            return -EEXIST;
    struct stored_drive *sd = &s->drives[s->n_drives++];
    memset(sd, 0, sizeof *sd);
    sd->path = strdup(path);
    if (mv_drive_open(path, &sd->drive, sd->problem, sizeof sd->problem) != 0) {
        mv_warn("drive %s not in service: %s", path, sd->problem);
        sd->drive = NULL;
        return 0;
    }
    if (s->buffered)
        mv_drive_disable_direct(sd->drive);
    if (s->target)
        aoe_target_add_drive(s->target, sd->drive);
    struct mv_drive_info info;
    mv_drive_get_info(sd->drive, &info);
    if (strcmp(info.host, s->host) != 0)
        mv_warn("drive %s is owned by host %s, not %s", path, info.host, s->host);
    mv_info("drive %s: %llu chunks of %u bytes, %u replica(s), session %llu, %s", path,
            (unsigned long long)info.n_chunks, info.chunk_size, info.n_replicas,
            (unsigned long long)info.session_gen,
            mv_drive_is_direct(sd->drive) ? "O_DIRECT" : "buffered");
    return 0;
}

void stored_close_drives(struct stored *s)
{
    for (unsigned i = 0; i < s->n_drives; i++) {
        if (s->drives[i].drive) {
            if (s->target)
                aoe_target_remove_drive(s->target, s->drives[i].drive);
            mv_drive_close(s->drives[i].drive);
        }
        free(s->drives[i].path);
    }
    s->n_drives = 0;
}

static struct stored_drive *find_drive(struct stored *s, const char *path)
{
    for (unsigned i = 0; i < s->n_drives; i++)
        if (strcmp(s->drives[i].path, path) == 0)
            return &s->drives[i];
    return NULL;
}

/* The drive holding a replica of vdisk_id, and the replica's index there. */
static struct stored_drive *find_vdisk(struct stored *s, const char *vdisk_id, int *idx)
{
    for (unsigned i = 0; i < s->n_drives; i++) {
        if (!s->drives[i].drive)
            continue;
        int r = mv_drive_replica_find(s->drives[i].drive, vdisk_id);
        if (r >= 0) {
            *idx = r;
            return &s->drives[i];
        }
    }
    return NULL;
}

static json_t *drive_json(const struct stored_drive *sd)
{
    json_t *j = json_object();
    json_object_set_new(j, "path", json_string(sd->path));
    if (!sd->drive) {
        json_object_set_new(j, "state", json_string("unformatted"));
        json_object_set_new(j, "problem", json_string(sd->problem));
        return j;
    }
    struct mv_drive_info info;
    mv_drive_get_info(sd->drive, &info);
    char id[2 * MV_DRIVE_ID_LEN + 1];
    for (int i = 0; i < MV_DRIVE_ID_LEN; i++)
        snprintf(id + 2 * i, 3, "%02x", info.drive_id[i]);
    json_object_set_new(j, "state", json_string("online"));
    json_object_set_new(j, "drive_id", json_string(id));
    json_object_set_new(j, "host", json_string(info.host));
    json_object_set_new(j, "size", json_integer((json_int_t)info.size_bytes));
    json_object_set_new(j, "chunk_size", json_integer(info.chunk_size));
    json_object_set_new(j, "capacity", json_integer((json_int_t)(info.n_chunks * info.chunk_size)));
    json_object_set_new(
        j, "used",
        json_integer((json_int_t)((info.n_chunks - info.free_chunks) * info.chunk_size)));
    json_object_set_new(j, "committed", json_integer((json_int_t)info.committed_bytes));
    json_object_set_new(j, "overcommit_pct", json_integer(info.overcommit_pct));
    json_object_set_new(j, "session", json_integer((json_int_t)info.session_gen));
    json_t *reps = json_array();
    for (unsigned r = 0; r < info.max_replicas; r++) {
        struct mv_replica_info ri;
        if (mv_drive_replica_info(sd->drive, (int)r, &ri) != 0)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "vdisk", json_string(ri.vdisk_id));
        json_object_set_new(o, "size", json_integer((json_int_t)ri.size_bytes));
        json_object_set_new(o, "thin", json_boolean(ri.thin));
        json_object_set_new(o, "mapped", json_boolean(ri.mapped));
        json_object_set_new(o, "shelf", json_integer(ri.shelf));
        json_object_set_new(o, "slot", json_integer(ri.slot));
        json_object_set_new(o, "epoch", json_integer((json_int_t)ri.epoch));
        json_object_set_new(o, "allocated",
                            json_integer((json_int_t)(ri.allocated_chunks * info.chunk_size)));
        json_object_set_new(o, "written",
                            json_integer((json_int_t)(ri.written_chunks * info.chunk_size)));
        json_array_append_new(reps, o);
    }
    json_object_set_new(j, "replicas", reps);
    return j;
}

static void reply(char *out, size_t outlen, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    snprintf(out, outlen, "%s\n", s ? s : "{\"ok\":false,\"error\":\"out of memory\"}");
    free(s);
}

static void reply_error(char *out, size_t outlen, const char *msg)
{
    json_t *j = json_object();
    json_object_set_new(j, "ok", json_false());
    json_object_set_new(j, "error", json_string(msg));
    reply(out, outlen, j);
}

/* Reads an optional unsigned field; false with a message if present and not a number in range. */
static bool get_uint(json_t *req, const char *key, uint64_t max, uint64_t *val, char *err,
                     size_t errlen)
{
    json_t *v = json_object_get(req, key);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        snprintf(err, errlen, "\"%s\" must be an integer from 0 to %llu", key,
                 (unsigned long long)max);
        return false;
    }
    *val = (uint64_t)json_integer_value(v);
    return true;
}

static const char *get_str(json_t *req, const char *key)
{
    return json_string_value(json_object_get(req, key));
}

void stored_control(struct stored *s, const char *request, char *out, size_t outlen)
{
    json_error_t jerr;
    json_t *req = json_loads(request, 0, &jerr);
    char err[300] = "";
    if (!req || !json_is_object(req)) {
        snprintf(err, sizeof err, "bad request: %s", req ? "not an object" : jerr.text);
        json_decref(req);
        reply_error(out, outlen, err);
        return;
    }
    const char *cmd = get_str(req, "cmd");
    const char *vdisk = get_str(req, "vdisk");
    const char *path = get_str(req, "drive");
    uint64_t size = 0, shelf = 0, slot = 0, epoch = 0, chunk = 0, overcommit = 0;
    bool ok = get_uint(req, "size", UINT64_MAX >> 1, &size, err, sizeof err) &&
              get_uint(req, "shelf", 0xfffe, &shelf, err, sizeof err) &&
              get_uint(req, "slot", 0xfe, &slot, err, sizeof err) &&
              get_uint(req, "epoch", INT64_MAX, &epoch, err, sizeof err) &&
              get_uint(req, "chunk_size", 1u << 30, &chunk, err, sizeof err) &&
              get_uint(req, "overcommit_pct", 10000, &overcommit, err, sizeof err);
    json_t *res = json_object();
    int rc = 0;
    if (!ok) {
        rc = -EINVAL;
    } else if (!cmd) {
        snprintf(err, sizeof err, "missing \"cmd\"");
        rc = -EINVAL;
    } else if (strcmp(cmd, "list") == 0) {
        json_t *arr = json_array();
        for (unsigned i = 0; i < s->n_drives; i++)
            json_array_append_new(arr, drive_json(&s->drives[i]));
        json_object_set_new(res, "drives", arr);
        json_object_set_new(res, "host", json_string(s->host));
    } else if (strcmp(cmd, "format") == 0) {
        struct stored_drive *sd = path ? find_drive(s, path) : NULL;
        if (!sd) {
            snprintf(err, sizeof err, "\"drive\" must name a configured drive");
            rc = -ENOENT;
        } else if (sd->drive && !json_is_true(json_object_get(req, "force"))) {
            snprintf(err, sizeof err, "%s is formatted and online; \"force\": true reformats",
                     path);
            rc = -EBUSY;
        } else {
            if (sd->drive) {
                aoe_target_remove_drive(s->target, sd->drive);
                mv_drive_close(sd->drive);
                sd->drive = NULL;
            }
            struct mv_drive_format_opts o = {.host = s->host,
                                             .chunk_size = (uint32_t)chunk,
                                             .overcommit_pct = (uint32_t)overcommit};
            rc = mv_drive_format(path, &o, err, sizeof err);
            if (rc == 0)
                rc = mv_drive_open(path, &sd->drive, err, sizeof err);
            if (rc == 0 && s->buffered)
                mv_drive_disable_direct(sd->drive);
            if (rc == 0 && s->target)
                aoe_target_add_drive(s->target, sd->drive);
            if (rc == 0)
                json_object_set_new(res, "drive", drive_json(sd));
        }
    } else if (strcmp(cmd, "create") == 0) {
        struct stored_drive *sd = NULL;
        int dummy;
        if (!vdisk || !size) {
            snprintf(err, sizeof err, "create needs \"vdisk\" and \"size\"");
            rc = -EINVAL;
        } else if (find_vdisk(s, vdisk, &dummy)) {
            snprintf(err, sizeof err, "vdisk %s already has a replica on this host", vdisk);
            rc = -EEXIST;
        } else if (path) {
            sd = find_drive(s, path);
        } else {
            /* No drive named: the online drive with the most free chunks. */
            uint64_t best = 0;
            for (unsigned i = 0; i < s->n_drives; i++) {
                struct mv_drive_info info;
                if (!s->drives[i].drive)
                    continue;
                mv_drive_get_info(s->drives[i].drive, &info);
                if (!sd || info.free_chunks * info.chunk_size > best) {
                    sd = &s->drives[i];
                    best = info.free_chunks * info.chunk_size;
                }
            }
        }
        if (rc == 0 && (!sd || !sd->drive)) {
            snprintf(err, sizeof err, "no online drive %s", path ? path : "on this host");
            rc = -ENOENT;
        }
        if (rc == 0) {
            bool thin = !json_is_false(json_object_get(req, "thin"));
            int r = mv_drive_replica_create(sd->drive, vdisk, size, (uint16_t)shelf, (uint8_t)slot,
                                            thin, err, sizeof err);
            rc = r < 0 ? r : 0;
            if (rc == 0 && json_is_true(json_object_get(req, "map")))
                rc = mv_drive_replica_set_mapped(sd->drive, r, true, (uint16_t)shelf, (uint8_t)slot,
                                                 err, sizeof err);
            if (rc == 0)
                json_object_set_new(res, "drive", json_string(sd->path));
        }
    } else if (strcmp(cmd, "map") == 0 || strcmp(cmd, "unmap") == 0 || strcmp(cmd, "resize") == 0 ||
               strcmp(cmd, "delete") == 0 || strcmp(cmd, "set_epoch") == 0) {
        int r = -1;
        struct stored_drive *sd = vdisk ? find_vdisk(s, vdisk, &r) : NULL;
        if (!sd) {
            snprintf(err, sizeof err, "no replica of vdisk %s here", vdisk ? vdisk : "(none)");
            rc = -ENOENT;
        } else if (strcmp(cmd, "map") == 0) {
            if (!json_object_get(req, "shelf") || !json_object_get(req, "slot")) {
                struct mv_replica_info ri;
                mv_drive_replica_info(sd->drive, r, &ri);
                if (!json_object_get(req, "shelf"))
                    shelf = ri.shelf;
                if (!json_object_get(req, "slot"))
                    slot = ri.slot;
            }
            rc = mv_drive_replica_set_mapped(sd->drive, r, true, (uint16_t)shelf, (uint8_t)slot,
                                             err, sizeof err);
        } else if (strcmp(cmd, "unmap") == 0) {
            rc = mv_drive_replica_set_mapped(sd->drive, r, false, 0, 0, err, sizeof err);
        } else if (strcmp(cmd, "resize") == 0) {
            rc = mv_drive_replica_resize(sd->drive, r, size, err, sizeof err);
        } else if (strcmp(cmd, "delete") == 0) {
            rc = mv_drive_replica_delete(sd->drive, r, err, sizeof err);
        } else {
            rc = mv_drive_replica_set_epoch(sd->drive, r, epoch);
            if (rc < 0)
                snprintf(err, sizeof err, "%s", strerror(-rc));
        }
    } else {
        snprintf(err, sizeof err, "unknown command \"%s\"", cmd);
        rc = -EINVAL;
    }
    if (rc == 0 && s->target)
        aoe_target_refresh(s->target);
    json_decref(req);
    if (rc < 0) {
        json_decref(res);
        reply_error(out, outlen, err[0] ? err : strerror(-rc));
        return;
    }
    json_object_set_new(res, "ok", json_true());
    reply(out, outlen, res);
}
