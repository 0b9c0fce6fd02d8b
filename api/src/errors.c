#include "mvctld/errors.h"

void mvctld_errors_init(struct mvctld_errors *e)
{
    e->list = json_array();
}

void mvctld_errors_free(struct mvctld_errors *e)
{
    json_decref(e->list);
    e->list = NULL;
}

int mvctld_errors_count(const struct mvctld_errors *e)
{
    return (int)json_array_size(e->list);
}

void mvctld_errors_add(struct mvctld_errors *e, int code, const char *field, const char *message,
                       const char *detail)
{
    json_t *item =
        json_pack("{s:i, s:s, s:s}", "code", code, "message", message, "field", field ? field : "");
    if (!item)
        return;
    if (detail)
        json_object_set_new(item, "detail", json_string(detail));
    json_array_append_new(e->list, item);
}

int mvctld_errors_has(const struct mvctld_errors *e, int code)
{
    size_t i;
    json_t *item;
    json_array_foreach(e->list, i, item)
    {
        if (json_integer_value(json_object_get(item, "code")) == code)
            return 1;
    }
    return 0;
}

json_t *mvctld_error_body(int status, const char *message, const struct mvctld_errors *e)
{
    json_t *body = json_pack("{s:i, s:s}", "code", status, "message", message);
    if (body && e && e->list && json_array_size(e->list) > 0)
        json_object_set(body, "errors", e->list);
    return body;
}
