#include "osd/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool path_ok(const char *p)
{
    if (!*p || *p == '.' || p[strlen(p) - 1] == '.' || strstr(p, ".."))
        return false;
    for (; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

int osd_cond_parse(const char *s, struct osd_cond *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *eq = strchr(s, '=');
    size_t plen = eq ? (size_t)(eq - s) : strlen(s);
    c->op = OSD_COND_TRUTHY;
    if (eq) {
        c->op = OSD_COND_EQ;
        if (plen > 0 && s[plen - 1] == '!') {
            c->op = OSD_COND_NE;
            plen--;
        }
        if (strlen(eq + 1) >= sizeof c->value) {
            snprintf(err, errlen, "condition value is too long");
            return -1;
        }
        snprintf(c->value, sizeof c->value, "%s", eq + 1);
    }
    if (plen == 0 || plen >= sizeof c->path) {
        snprintf(err, errlen, "condition '%s' has no field name", s);
        return -1;
    }
    memcpy(c->path, s, plen);
    c->path[plen] = 0;
    if (!path_ok(c->path)) {
        snprintf(err, errlen, "'%s' is not a field path (letters, digits, _ - and dots)", c->path);
        return -1;
    }
    return 0;
}

json_t *osd_json_path(const json_t *obj, const char *path)
{
    char buf[OSD_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = (json_t *)obj;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = json_is_object(cur) ? json_object_get(cur, tok) : NULL;
    return cur;
}

bool osd_json_truthy(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_TRUE:
        return true;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return false; /* false, null, missing */
    }
}

static char *render_scalar(const json_t *v)
{
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return strdup(buf);
    case JSON_REAL:
        snprintf(buf, sizeof buf, "%g", json_real_value(v));
        return strdup(buf);
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_NULL:
        return strdup("null");
    default:
        return json_dumps(v, JSON_COMPACT);
    }
}

static bool equals(const json_t *v, const char *want)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_array(item) && equals(item, want))
                return true;
        }
        return false;
    }
    char *s = render_scalar(v);
    bool eq = s && strcmp(s, want) == 0;
    free(s);
    return eq;
}

bool osd_cond_eval(const struct osd_cond *c, const json_t *obj)
{
    json_t *v = osd_json_path(obj, c->path);
    switch (c->op) {
    case OSD_COND_TRUTHY:
        return v && osd_json_truthy(v);
    case OSD_COND_EQ:
        return v && equals(v, c->value);
    case OSD_COND_NE:
        return !v || !equals(v, c->value);
    }
    return false;
}

int osd_fields_parse(const char *s, struct osd_fields *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    const char *p = s;
    while (1) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= OSD_PATH_MAX) {
            snprintf(err, errlen, "--filter: empty or too long field name in '%s'", s);
            return -1;
        }
        if (f->n == OSD_FIELDS_MAX) {
            snprintf(err, errlen, "--filter: more than %d fields", OSD_FIELDS_MAX);
            return -1;
        }
        memcpy(f->path[f->n], p, len);
        f->path[f->n][len] = 0;
        if (!path_ok(f->path[f->n])) {
            snprintf(err, errlen, "--filter: '%s' is not a field path", f->path[f->n]);
            return -1;
        }
        f->n++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

char *osd_render_value(const json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("-");
    if (json_is_array(v)) {
        size_t i, total = 1;
        json_t *item;
        bool scalars = true;
        json_array_foreach(v, i, item)
        {
            scalars = scalars && !json_is_object(item) && !json_is_array(item);
        }
        if (!scalars)
            return json_dumps(v, JSON_COMPACT);
        char **parts = calloc(json_array_size(v) + 1, sizeof *parts);
        json_array_foreach(v, i, item)
        {
            parts[i] = render_scalar(item);
            total += strlen(parts[i]) + 1;
        }
        char *out = malloc(total);
        out[0] = 0;
        json_array_foreach(v, i, item)
        {
            if (i)
                strcat(out, ",");
            strcat(out, parts[i]);
            free(parts[i]);
        }
        free(parts);
        return out;
    }
    return render_scalar(v);
}

json_t *osd_project(const json_t *obj, const struct osd_fields *f)
{
    json_t *out = json_object();
    for (int i = 0; i < f->n; i++) {
        json_t *v = osd_json_path(obj, f->path[i]);
        json_object_set(out, f->path[i], v ? v : json_null());
    }
    return out;
}

char *osd_table(const json_t *rows, const struct osd_fields *cols)
{
    size_t nrows = json_array_size(rows);
    size_t width[OSD_FIELDS_MAX];
    char **cells = calloc((nrows + 1) * (size_t)cols->n + 1, sizeof *cells);
    for (int c = 0; c < cols->n; c++) {
        cells[c] = strdup(cols->path[c]);
        for (char *p = cells[c]; *p; p++)
            *p = (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : *p;
        width[c] = strlen(cells[c]);
    }
    for (size_t r = 0; r < nrows; r++) {
        for (int c = 0; c < cols->n; c++) {
            char *cell = osd_render_value(osd_json_path(json_array_get(rows, r), cols->path[c]));
            cells[(r + 1) * (size_t)cols->n + (size_t)c] = cell;
            if (strlen(cell) > width[c])
                width[c] = strlen(cell);
        }
    }
    size_t total = 1;
    for (size_t i = 0; i < (nrows + 1) * (size_t)cols->n; i++)
        total += strlen(cells[i]);
    for (int c = 0; c < cols->n; c++)
        total += (width[c] + 2) * (nrows + 1);
    total += nrows + 1;
    char *out = malloc(total);
    size_t pos = 0;
    for (size_t r = 0; r <= nrows; r++) {
        for (int c = 0; c < cols->n; c++) {
            const char *cell = cells[r * (size_t)cols->n + (size_t)c];
            bool last = c == cols->n - 1;
            if (last)
                pos += (size_t)sprintf(out + pos, "%s", cell);
            else
                pos += (size_t)sprintf(out + pos, "%-*s  ", (int)width[c], cell);
        }
        out[pos++] = '\n';
    }
    out[pos] = 0;
    for (size_t i = 0; i < (nrows + 1) * (size_t)cols->n; i++)
        free(cells[i]);
    free(cells);
    return out;
}
