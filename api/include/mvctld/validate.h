/* Request-body validation that needs no database: shape (object, known fields, JSON types,
 * required fields) and the value rules of D2.3 §3.4.2 / §3.5.2.1 and the Network model. The
 * store (store.h) adds the rules that need the database (unknown ids, ids in use). */
#ifndef MVCTLD_VALIDATE_H
#define MVCTLD_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>

#include "mvctld/errors.h"

enum mvctld_body_kind {
    MVCTLD_BODY_CREATE, /* all required fields must be present */
    MVCTLD_BODY_EDIT,   /* partial: only present fields are checked; immutable ones refused */
};

/* The longest datastore name D2.3 allows. */
#define MVCTLD_DS_NAME_MAX 31
#define MVCTLD_NAME_MAX    255

/* Each adds an error per broken rule to e and returns the number of errors it added. For EDIT,
 * call with the patch, and then call it again with CREATE on the merged object, so the
 * cross-field rules see the result. */
int mvctld_validate_datastore(const json_t *body, enum mvctld_body_kind kind,
                              struct mvctld_errors *e);
int mvctld_validate_group(const json_t *body, enum mvctld_body_kind kind, struct mvctld_errors *e);
int mvctld_validate_network(const json_t *body, enum mvctld_body_kind kind,
                            struct mvctld_errors *e);
/* Body of the add-members calls: {"<field>": [non-empty array of unique <string|integer>]}. */
int mvctld_validate_id_list(const json_t *body, const char *field, bool integers,
                            struct mvctld_errors *e);

/* Parses a request body: NULL with a message (for a 400) when it is not JSON. */
json_t *mvctld_parse_body(const char *data, size_t len, char *why, size_t whylen);

#endif
