/* Drive format: superblock, replica table, chunk allocation (thin/thick), the written bitmap and
 * generations, overcommit, crash leftovers, --check. Drives are sparse files in /tmp. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/drive.h"

#define CHUNK (64 * 1024)

static char path[64];

static int make_drive(void **state)
{
    snprintf(path, sizeof path, "/tmp/hst-drive-%d.img", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 16 << 20), 0);
    close(fd);
    char err[256];
    struct mv_drive_format_opts o = {
        .host = "host-a", .chunk_size = CHUNK, .max_replicas = 8, .overcommit_pct = 200};
    assert_int_equal(mv_drive_format(path, &o, err, sizeof err), 0);
    return 0;
}

static int remove_drive(void **state)
{
    unlink(path);
    return 0;
}

static struct mv_drive *open_drive(void)
{
    struct mv_drive *d = NULL;
    char err[256];
    int rc = mv_drive_open(path, &d, err, sizeof err);
    if (rc != 0)
        fail_msg("open: %s", err);
    return d;
}

static void assert_check_clean(void)
{
    char report[4096];
    int n = mv_drive_check(path, report, sizeof report);
    if (n != 0)
        fail_msg("check found %d problem(s):\n%s", n, report);
}

static void test_format_and_info(void **state)
{
    struct mv_drive *d = open_drive();
    struct mv_drive_info info;
    mv_drive_get_info(d, &info);
    assert_string_equal(info.host, "host-a");
    assert_int_equal(info.chunk_size, CHUNK);
    assert_true(info.n_chunks > 200 && info.n_chunks < 256);
    assert_int_equal(info.free_chunks, info.n_chunks);
    assert_int_equal(info.session_gen, 2); /* formatted at 1, this open is session 2 */
    assert_int_equal(info.max_replicas, 8);
    mv_drive_close(d);
    d = open_drive();
    mv_drive_get_info(d, &info);
    assert_int_equal(info.session_gen, 3);
    mv_drive_close(d);
    assert_check_clean();
}

static void test_format_rejects_bad_options(void **state)
{
    char err[256];
    struct mv_drive_format_opts o = {.host = "h", .chunk_size = 5000};
    assert_int_equal(mv_drive_format(path, &o, err, sizeof err), -EINVAL);
    o = (struct mv_drive_format_opts){.host = ""};
    assert_int_equal(mv_drive_format(path, &o, err, sizeof err), -EINVAL);
    o = (struct mv_drive_format_opts){.host = "h", .chunk_size = 1u << 30};
    assert_int_equal(mv_drive_format(path, &o, err, sizeof err), -ENOSPC);
    /* The failed formats left the original drive intact. */
    assert_check_clean();
}

static void test_thin_reads_zero_and_allocates_on_write(void **state)
{
    struct mv_drive *d = open_drive();
    char err[256];
    int r = mv_drive_replica_create(d, "vd-thin", 4 * CHUNK, 1, 1, true, err, sizeof err);
    assert_true(r >= 0);
    struct mv_replica_info ri;
    assert_int_equal(mv_drive_replica_info(d, r, &ri), 0);
    assert_int_equal(ri.allocated_chunks, 0);
    uint8_t buf[4096], out[4096];
    memset(out, 0xaa, sizeof out);
    assert_int_equal(mv_drive_replica_read(d, r, CHUNK, out, sizeof out), 0);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], 0);
    memset(buf, 0x5c, sizeof buf);
    assert_int_equal(mv_drive_replica_write(d, r, CHUNK + 1024, buf, 1024), 0);
    assert_int_equal(mv_drive_replica_info(d, r, &ri), 0);
    assert_int_equal(ri.allocated_chunks, 1);
    assert_int_equal(ri.written_chunks, 1);
    uint64_t gen;
    assert_true(mv_drive_chunk_written(d, r, 1, &gen));
    assert_int_equal(gen, 2);
    assert_false(mv_drive_chunk_written(d, r, 0, NULL));
    /* The rest of the freshly written chunk reads as zeros, the written part as data. */
    assert_int_equal(mv_drive_replica_read(d, r, CHUNK, out, 3072), 0);
    for (size_t i = 0; i < 3072; i++)
        assert_int_equal(out[i], (i >= 1024 && i < 2048) ? 0x5c : 0);
    mv_drive_close(d);
    /* Persisted: a new session sees the data, the generation stays until rewritten. */
    d = open_drive();
    r = mv_drive_replica_find(d, "vd-thin");
    assert_true(r >= 0);
    assert_true(mv_drive_chunk_written(d, r, 1, &gen));
    assert_int_equal(gen, 2);
    assert_int_equal(mv_drive_replica_read(d, r, CHUNK + 1024, out, 1024), 0);
    assert_memory_equal(out, buf, 1024);
    assert_int_equal(mv_drive_replica_write(d, r, CHUNK, buf, 512), 0);
    assert_true(mv_drive_chunk_written(d, r, 1, &gen));
    assert_int_equal(gen, 3);
    mv_drive_close(d);
    assert_check_clean();
}

static void test_thick_allocates_up_front_and_overcommit(void **state)
{
    struct mv_drive *d = open_drive();
    char err[256];
    struct mv_drive_info info;
    mv_drive_get_info(d, &info);
    uint64_t n = info.n_chunks;
    int r = mv_drive_replica_create(d, "vd-thick", 10 * CHUNK, 1, 2, false, err, sizeof err);
    assert_true(r >= 0);
    mv_drive_get_info(d, &info);
    assert_int_equal(info.free_chunks, n - 10);
    uint8_t z[512];
    assert_int_equal(mv_drive_replica_read(d, r, 0, z, sizeof z), 0);
    /* Thick larger than free space fails; thin up to 200% of capacity works, beyond fails. */
    assert_int_equal(mv_drive_replica_create(d, "big", n * CHUNK, 1, 3, false, err, sizeof err),
                     -ENOSPC);
    assert_true(
        mv_drive_replica_create(d, "thin1", (n - 10) * CHUNK, 1, 3, true, err, sizeof err) >= 0);
    assert_true(mv_drive_replica_create(d, "thin2", n * CHUNK, 1, 4, true, err, sizeof err) >= 0);
    assert_int_equal(mv_drive_replica_create(d, "thin3", CHUNK, 1, 5, true, err, sizeof err),
                     -ENOSPC);
    assert_int_equal(mv_drive_replica_create(d, "thin1", CHUNK, 1, 6, true, err, sizeof err),
                     -EEXIST);
    assert_int_equal(mv_drive_replica_create(d, "x", 1000, 1, 6, true, err, sizeof err), -EINVAL);
    mv_drive_close(d);
    assert_check_clean();
    d = open_drive();
    mv_drive_get_info(d, &info);
    assert_int_equal(info.free_chunks, n - 10);
    assert_int_equal(info.n_replicas, 3);
    mv_drive_close(d);
}

static void test_thin_runs_out_of_space(void **state)
{
    struct mv_drive *d = open_drive();
    char err[256];
    struct mv_drive_info info;
    mv_drive_get_info(d, &info);
    int r =
        mv_drive_replica_create(d, "vd", (info.n_chunks + 2) * CHUNK, 1, 1, true, err, sizeof err);
    assert_true(r >= 0);
    uint8_t buf[512] = {1};
    uint64_t l;
    for (l = 0; l < info.n_chunks; l++)
        assert_int_equal(mv_drive_replica_write(d, r, l * CHUNK, buf, sizeof buf), 0);
    assert_int_equal(mv_drive_replica_write(d, r, l * CHUNK, buf, sizeof buf), -ENOSPC);
    assert_int_equal(mv_drive_replica_write(d, r, (l + 2) * CHUNK, buf, sizeof buf), -ERANGE);
    /* Delete returns every chunk. */
    assert_int_equal(mv_drive_replica_delete(d, r, err, sizeof err), 0);
    mv_drive_get_info(d, &info);
    assert_int_equal(info.free_chunks, info.n_chunks);
    mv_drive_close(d);
    assert_check_clean();
}

static void test_resize_and_map(void **state)
{
    struct mv_drive *d = open_drive();
    char err[256];
    int r = mv_drive_replica_create(d, "vd", 2 * CHUNK, 3, 4, false, err, sizeof err);
    int r2 = mv_drive_replica_create(d, "vd2", CHUNK, 3, 5, true, err, sizeof err);
    assert_true(r >= 0 && r2 >= 0);
    assert_int_equal(mv_drive_replica_find_aoe(d, 3, 4), -ENOENT); /* not mapped yet */
    assert_int_equal(mv_drive_replica_set_mapped(d, r, true, 3, 4, err, sizeof err), 0);
    assert_int_equal(mv_drive_replica_find_aoe(d, 3, 4), r);
    assert_int_equal(mv_drive_replica_set_mapped(d, r2, true, 3, 4, err, sizeof err), -EADDRINUSE);
    uint8_t buf[512];
    memset(buf, 7, sizeof buf);
    assert_int_equal(mv_drive_replica_write(d, r, CHUNK, buf, sizeof buf), 0);
    assert_int_equal(mv_drive_replica_resize(d, r, 5 * CHUNK, err, sizeof err), 0);
    struct mv_replica_info ri;
    assert_int_equal(mv_drive_replica_info(d, r, &ri), 0);
    assert_int_equal(ri.allocated_chunks, 5);
    assert_int_equal(ri.written_chunks, 1);
    assert_int_equal(mv_drive_replica_resize(d, r, CHUNK, err, sizeof err), 0);
    assert_int_equal(mv_drive_replica_info(d, r, &ri), 0);
    assert_int_equal(ri.allocated_chunks, 1);
    assert_int_equal(ri.written_chunks, 0);
    assert_int_equal(mv_drive_replica_read(d, r, CHUNK, buf, sizeof buf), -ERANGE);
    /* Growing again: the dropped chunk comes back as zeros, not as the old data. */
    assert_int_equal(mv_drive_replica_resize(d, r, 2 * CHUNK, err, sizeof err), 0);
    assert_int_equal(mv_drive_replica_read(d, r, CHUNK, buf, sizeof buf), 0);
    assert_int_equal(buf[0], 0);
    assert_int_equal(mv_drive_replica_set_epoch(d, r, 42), 0);
    assert_int_equal(mv_drive_replica_set_mapped(d, r, false, 0, 0, err, sizeof err), 0);
    mv_drive_close(d);
    assert_check_clean();
    d = open_drive();
    assert_int_equal(mv_drive_replica_info(d, r, &ri), 0);
    assert_int_equal(ri.epoch, 42);
    assert_false(ri.mapped);
    assert_int_equal(ri.size_bytes, 2 * CHUNK);
    mv_drive_close(d);
}

/* Raw surgery on the image: what a crash between metadata writes leaves, and corruption. */
static void test_check_and_reclaim(void **state)
{
    struct mv_drive *d = open_drive();
    char err[256], report[4096];
    int r = mv_drive_replica_create(d, "vd", 2 * CHUNK, 1, 1, false, err, sizeof err);
    assert_true(r >= 0);
    mv_drive_close(d);
    /* Simulate a crash after delete's entry write, before its chunks were freed: zero the
     * replica table entry (4096 + r * 512). */
    int fd = open(path, O_RDWR);
    uint8_t zero[512] = {0};
    assert_int_equal(pwrite(fd, zero, 512, 4096 + r * 512), 512);
    close(fd);
    assert_int_equal(mv_drive_check(path, report, sizeof report), 0);
    assert_non_null(strstr(report, "orphaned"));
    d = open_drive();
    struct mv_drive_info info;
    mv_drive_get_info(d, &info);
    assert_int_equal(info.free_chunks, info.n_chunks);
    mv_drive_close(d);
    assert_int_equal(mv_drive_check(path, report, sizeof report), 0);
    assert_null(strstr(report, "orphaned"));

    /* Corruption is found: a flipped byte in a replica entry, then in the superblock. */
    d = open_drive();
    r = mv_drive_replica_create(d, "vd", 2 * CHUNK, 1, 1, false, err, sizeof err);
    mv_drive_close(d);
    fd = open(path, O_RDWR);
    uint8_t b = 0x55;
    assert_int_equal(pwrite(fd, &b, 1, 4096 + r * 512 + 10), 1);
    close(fd);
    assert_true(mv_drive_check(path, report, sizeof report) > 0);
    assert_non_null(strstr(report, "corrupt"));
    assert_int_equal(mv_drive_open(path, &d, err, sizeof err), -EUCLEAN);
    fd = open(path, O_RDWR);
    assert_int_equal(pwrite(fd, &b, 1, 20), 1);
    close(fd);
    assert_int_equal(mv_drive_check(path, report, sizeof report), 1);
    assert_non_null(strstr(report, "superblock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format_and_info, make_drive, remove_drive),
        cmocka_unit_test_setup_teardown(test_format_rejects_bad_options, make_drive, remove_drive),
        cmocka_unit_test_setup_teardown(test_thin_reads_zero_and_allocates_on_write, make_drive,
                                        remove_drive),
        cmocka_unit_test_setup_teardown(test_thick_allocates_up_front_and_overcommit, make_drive,
                                        remove_drive),
        cmocka_unit_test_setup_teardown(test_thin_runs_out_of_space, make_drive, remove_drive),
        cmocka_unit_test_setup_teardown(test_resize_and_map, make_drive, remove_drive),
        cmocka_unit_test_setup_teardown(test_check_and_reclaim, make_drive, remove_drive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
