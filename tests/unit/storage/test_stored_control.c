/* mvstored's control protocol (JSON lines) on real drive images: list, format, create (thin and
 * thick, drive choice), map/unmap with AoE address conflicts, resize, delete, set_epoch, and
 * malformed requests that must change nothing. */
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "stored.h"

struct fx {
    struct stored s;
    char path[2][64];
    char out[1 << 16];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->s.host, sizeof f->s.host, "hostx");
    struct aoe_target_config tc = {.mac = {2, 0, 0, 0, 0, 1}};
    assert_int_equal(aoe_target_create(&tc, &f->s.target), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(f->path[i], sizeof f->path[i], "/tmp/hst-ctl-%d-%d.img", getpid(), i);
        int fd = open(f->path[i], O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_int_equal(ftruncate(fd, (i + 1) * (8 << 20)), 0);
        close(fd);
        assert_int_equal(stored_add_drive(&f->s, f->path[i]), 0);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    stored_close_drives(&f->s);
    aoe_target_destroy(f->s.target);
    for (int i = 0; i < 2; i++)
        unlink(f->path[i]);
    free(f);
    return 0;
}

/* Sends a request, returns the parsed reply (caller decrefs) and checks "ok". */
static json_t *req(struct fx *f, bool want_ok, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    stored_control(&f->s, buf, f->out, sizeof f->out);
    size_t n = strlen(f->out);
    assert_true(n > 0 && f->out[n - 1] == '\n');
    json_error_t e;
    json_t *j = json_loads(f->out, 0, &e);
    assert_non_null(j);
    if (json_is_true(json_object_get(j, "ok")) != want_ok)
        fail_msg("request %s -> %s", buf, f->out);
    if (!want_ok)
        assert_non_null(json_string_value(json_object_get(j, "error")));
    return j;
}

static void test_format_create_list(void **state)
{
    struct fx *f = *state;
    json_t *j = req(f, true, "{\"cmd\":\"list\"}");
    json_t *d0 = json_array_get(json_object_get(j, "drives"), 0);
    assert_string_equal(json_string_value(json_object_get(d0, "state")), "unformatted");
    json_decref(j);
    json_decref(req(f, false, "{\"cmd\":\"create\",\"vdisk\":\"a\",\"size\":1048576}"));
    json_decref(
        req(f, true, "{\"cmd\":\"format\",\"drive\":\"%s\",\"chunk_size\":65536}", f->path[0]));
    json_decref(req(f, true,
                    "{\"cmd\":\"format\",\"drive\":\"%s\",\"chunk_size\":65536,"
                    "\"overcommit_pct\":300}",
                    f->path[1]));
    /* Reformatting an online drive needs force. */
    json_decref(req(f, false, "{\"cmd\":\"format\",\"drive\":\"%s\"}", f->path[0]));
    json_decref(req(f, false, "{\"cmd\":\"format\",\"drive\":\"/nonexistent\"}"));
    /* No drive named: the one with most free space (the 16 MiB one). */
    j = req(f, true,
            "{\"cmd\":\"create\",\"vdisk\":\"a\",\"size\":1048576,\"shelf\":7,\"slot\":1,"
            "\"map\":true}");
    assert_string_equal(json_string_value(json_object_get(j, "drive")), f->path[1]);
    json_decref(j);
    json_decref(req(f, true,
                    "{\"cmd\":\"create\",\"vdisk\":\"b\",\"size\":2097152,\"thin\":false,"
                    "\"drive\":\"%s\",\"shelf\":7,\"slot\":2}",
                    f->path[0]));
    json_decref(req(f, false, "{\"cmd\":\"create\",\"vdisk\":\"a\",\"size\":1048576}"));
    assert_int_equal(aoe_target_count(f->s.target), 1);
    j = req(f, true, "{\"cmd\":\"list\"}");
    json_t *drives = json_object_get(j, "drives");
    d0 = json_array_get(drives, 0);
    assert_string_equal(json_string_value(json_object_get(d0, "state")), "online");
    assert_string_equal(json_string_value(json_object_get(d0, "host")), "hostx");
    assert_int_equal(json_integer_value(json_object_get(d0, "used")), 2097152);
    json_t *rb = json_array_get(json_object_get(d0, "replicas"), 0);
    assert_string_equal(json_string_value(json_object_get(rb, "vdisk")), "b");
    assert_true(json_is_false(json_object_get(rb, "thin")));
    assert_int_equal(json_integer_value(json_object_get(rb, "allocated")), 2097152);
    json_t *d1 = json_array_get(drives, 1);
    assert_int_equal(json_integer_value(json_object_get(d1, "overcommit_pct")), 300);
    json_t *ra = json_array_get(json_object_get(d1, "replicas"), 0);
    assert_true(json_is_true(json_object_get(ra, "mapped")));
    assert_int_equal(json_integer_value(json_object_get(ra, "allocated")), 0);
    json_decref(j);
}

static void test_map_resize_delete(void **state)
{
    struct fx *f = *state;
    json_decref(
        req(f, true, "{\"cmd\":\"format\",\"drive\":\"%s\",\"chunk_size\":65536}", f->path[0]));
    json_decref(req(f, true,
                    "{\"cmd\":\"create\",\"vdisk\":\"a\",\"size\":1048576,\"shelf\":1,"
                    "\"slot\":1,\"map\":true}"));
    json_decref(req(f, true, "{\"cmd\":\"create\",\"vdisk\":\"b\",\"size\":1048576}"));
    /* Same AoE address twice is refused; another address works. */
    json_decref(req(f, false, "{\"cmd\":\"map\",\"vdisk\":\"b\",\"shelf\":1,\"slot\":1}"));
    json_decref(req(f, false, "{\"cmd\":\"map\",\"vdisk\":\"b\",\"shelf\":1,\"slot\":255}"));
    json_decref(req(f, true, "{\"cmd\":\"map\",\"vdisk\":\"b\",\"shelf\":1,\"slot\":2}"));
    assert_int_equal(aoe_target_count(f->s.target), 2);
    json_decref(req(f, true, "{\"cmd\":\"unmap\",\"vdisk\":\"a\"}"));
    assert_int_equal(aoe_target_count(f->s.target), 1);
    json_decref(req(f, true, "{\"cmd\":\"resize\",\"vdisk\":\"b\",\"size\":4194304}"));
    json_decref(req(f, false, "{\"cmd\":\"resize\",\"vdisk\":\"b\",\"size\":1000}"));
    json_decref(req(f, true, "{\"cmd\":\"set_epoch\",\"vdisk\":\"b\",\"epoch\":9}"));
    json_t *j = req(f, true, "{\"cmd\":\"list\"}");
    json_t *reps = json_object_get(json_array_get(json_object_get(j, "drives"), 0), "replicas");
    json_t *rb = json_array_get(reps, 1);
    assert_int_equal(json_integer_value(json_object_get(rb, "size")), 4194304);
    assert_int_equal(json_integer_value(json_object_get(rb, "epoch")), 9);
    json_decref(j);
    json_decref(req(f, true, "{\"cmd\":\"delete\",\"vdisk\":\"b\"}"));
    json_decref(req(f, false, "{\"cmd\":\"delete\",\"vdisk\":\"b\"}"));
    assert_int_equal(aoe_target_count(f->s.target), 0);
}

static void test_malformed_requests(void **state)
{
    struct fx *f = *state;
    json_decref(req(f, false, "not json"));
    json_decref(req(f, false, "[1,2]"));
    json_decref(req(f, false, "{}"));
    json_decref(req(f, false, "{\"cmd\":\"explode\"}"));
    json_decref(req(f, false, "{\"cmd\":\"create\",\"vdisk\":\"x\",\"size\":-5}"));
    json_decref(req(f, false, "{\"cmd\":\"create\",\"vdisk\":\"x\",\"size\":\"big\"}"));
    json_decref(req(f, false, "{\"cmd\":\"map\",\"vdisk\":\"x\",\"shelf\":70000}"));
    /* Nothing changed: both drives still unformatted. */
    json_t *j = req(f, true, "{\"cmd\":\"list\"}");
    json_t *d0 = json_array_get(json_object_get(j, "drives"), 0);
    assert_string_equal(json_string_value(json_object_get(d0, "state")), "unformatted");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format_create_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_resize_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
