/* Output shaping of the osd CLI: --filter (which fields), --if / --if-not (which objects of a
 * list), and the plain-text table. Syntax (docs/cli.md):
 *   --filter=id,name,fault_tolerance.unit   fields to show; dots reach into nested objects
 *   --if=COND  --if-not=COND                repeatable; keep objects where every --if holds
 *                                           and no --if-not holds
 *   COND := PATH          the value is truthy (not false/null/0/""/[]/{})
 *         | PATH=VALUE    the value renders as VALUE, or is an array containing VALUE
 *         | PATH!=VALUE   the negation of PATH=VALUE */
#ifndef OSD_FILTER_H
#define OSD_FILTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define OSD_PATH_MAX   128
#define OSD_VALUE_MAX  256
#define OSD_FIELDS_MAX 64

struct osd_cond {
    char path[OSD_PATH_MAX];
    enum { OSD_COND_TRUTHY, OSD_COND_EQ, OSD_COND_NE } op;
    char value[OSD_VALUE_MAX];
};

struct osd_fields {
    int n;
    char path[OSD_FIELDS_MAX][OSD_PATH_MAX];
};

/* 0, or -1 with a reason in err. */
int osd_cond_parse(const char *s, struct osd_cond *c, char *err, size_t errlen);
bool osd_cond_eval(const struct osd_cond *c, const json_t *obj);
int osd_fields_parse(const char *s, struct osd_fields *f, char *err, size_t errlen);

/* The value at a dotted path, or NULL. Borrowed reference. */
json_t *osd_json_path(const json_t *obj, const char *path);
bool osd_json_truthy(const json_t *v);
/* A value as a table cell: strings as they are, arrays of scalars joined with ',', other
 * containers as compact JSON, null as "-". Caller frees. */
char *osd_render_value(const json_t *v);
/* A new object holding only the fields' values, keyed by their paths. */
json_t *osd_project(const json_t *obj, const struct osd_fields *f);
/* Rows (objects) as an aligned table with a header of the column paths. Caller frees. */
char *osd_table(const json_t *rows, const struct osd_fields *cols);

#endif
