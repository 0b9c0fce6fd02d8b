/* Small SQLite helpers shared by store.c and inventory.c (internal to libmvctld). */
#ifndef MVCTLD_SQL_H
#define MVCTLD_SQL_H

#include <sqlite3.h>
#include <stdarg.h>

#include "mvctld/db.h"

/* Prepares sql and binds the arguments fmt describes: 's' text (NULL binds NULL), 'i' int,
 * 'I' long long, 'b' int as 0/1. NULL on error (logged). */
sqlite3_stmt *mvctld_sql_query(struct mvctld_db *db, const char *sql, const char *fmt, ...);
/* Prepare, bind, step to the end. 0, or the SQLite error code (logged unless a constraint). */
int mvctld_sql_run(struct mvctld_db *db, const char *sql, const char *fmt, ...);
/* First column of the first row as an integer; dflt when there is no row. */
long long mvctld_sql_int(struct mvctld_db *db, long long dflt, const char *sql, const char *fmt,
                         ...);
const char *mvctld_sql_col_text(sqlite3_stmt *st, int col); /* "" for NULL */

#endif
