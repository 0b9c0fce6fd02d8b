/* osd output shaping: --filter fields, --if/--if-not conditions, table rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "osd/filter.h"

static const char *obj_text =
    "{\"id\":\"fjxi3vnzg4hm9y\",\"name\":\"test\",\"replicas\":2,\"is_thin\":false,"
    "\"used\":0,\"disks\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"tags\":[\"x\",\"y\"],\"none\":null,"
    "\"empty\":[],\"ft\":{\"unit\":\"rack\",\"on\":true}}";

static void test_cond_parse(void **state)
{
    (void)state;
    struct osd_cond c;
    char err[128];
    assert_int_equal(osd_cond_parse("is_thin", &c, err, sizeof err), 0);
    assert_int_equal(c.op, OSD_COND_TRUTHY);
    assert_int_equal(osd_cond_parse("ft.unit=rack", &c, err, sizeof err), 0);
    assert_int_equal(c.op, OSD_COND_EQ);
    assert_string_equal(c.path, "ft.unit");
    assert_string_equal(c.value, "rack");
    assert_int_equal(osd_cond_parse("name!=a=b", &c, err, sizeof err), 0);
    assert_int_equal(c.op, OSD_COND_NE);
    assert_string_equal(c.value, "a=b");
    assert_int_equal(osd_cond_parse("name=", &c, err, sizeof err), 0);
    assert_string_equal(c.value, "");
    static const char *bad[] = {"", "=x", "!=x", ".a", "a.", "a..b", "a b", "a$=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(osd_cond_parse(bad[i], &c, err, sizeof err), -1);
    char longpath[300];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    assert_int_equal(osd_cond_parse(longpath, &c, err, sizeof err), -1);
}

static bool eval(const char *cond)
{
    struct osd_cond c;
    char err[128];
    json_t *o = json_loads(obj_text, 0, NULL);
    assert_int_equal(osd_cond_parse(cond, &c, err, sizeof err), 0);
    bool r = osd_cond_eval(&c, o);
    json_decref(o);
    return r;
}

static void test_cond_eval(void **state)
{
    (void)state;
    assert_true(eval("name"));
    assert_false(eval("is_thin"));
    assert_false(eval("used"));
    assert_false(eval("none"));
    assert_false(eval("empty"));
    assert_false(eval("missing"));
    assert_true(eval("ft.on"));
    assert_true(eval("replicas=2"));
    assert_false(eval("replicas=3"));
    assert_true(eval("is_thin=false"));
    assert_true(eval("ft.unit=rack"));
    assert_true(eval("tags=y"));
    assert_false(eval("tags=z"));
    assert_true(eval("disks.id") == false); /* arrays of objects have no member paths */
    assert_true(eval("name!=other"));
    assert_false(eval("name!=test"));
    assert_true(eval("missing!=x"));
}

static void test_fields_and_table(void **state)
{
    (void)state;
    struct osd_fields f;
    char err[128];
    assert_int_equal(osd_fields_parse("id,name,ft.unit,tags", &f, err, sizeof err), 0);
    assert_int_equal(f.n, 4);
    assert_int_equal(osd_fields_parse("id,,name", &f, err, sizeof err), -1);
    assert_int_equal(osd_fields_parse("", &f, err, sizeof err), -1);
    assert_int_equal(osd_fields_parse("id,", &f, err, sizeof err), -1);
    assert_int_equal(osd_fields_parse("a b", &f, err, sizeof err), -1);
    assert_int_equal(osd_fields_parse("id,name,ft.unit,tags,none", &f, err, sizeof err), 0);

    json_t *o = json_loads(obj_text, 0, NULL);
    json_t *p = osd_project(o, &f);
    assert_string_equal(json_string_value(json_object_get(p, "ft.unit")), "rack");
    assert_int_equal(json_object_size(p), 5);
    json_decref(p);

    json_t *rows = json_pack("[O, {s:s, s:s}]", o, "id", "x", "name", "a-much-longer-name");
    char *t = osd_table(rows, &f);
    const char *want = "ID              NAME                FT.UNIT  TAGS  NONE\n"
                       "fjxi3vnzg4hm9y  test                rack     x,y   -\n"
                       "x               a-much-longer-name  -        -     -\n";
    assert_string_equal(t, want);
    free(t);
    char *cell = osd_render_value(json_object_get(o, "disks"));
    assert_string_equal(cell, "[{\"id\":\"a\"},{\"id\":\"b\"}]");
    free(cell);
    json_decref(rows);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cond_parse),
        cmocka_unit_test(test_cond_eval),
        cmocka_unit_test(test_fields_and_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
