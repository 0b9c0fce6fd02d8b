#include "sql.h"

#include "mv/log.h"

static sqlite3_stmt *query_v(struct mvctld_db *db, const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK) {
        mv_err("sqlite prepare: %s: %s", sqlite3_errmsg(db->sql), sql);
        return NULL;
    }
    for (int i = 1; fmt && *fmt; fmt++, i++) {
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, i);
            break;
        }
        case 'i':
        case 'b':
            sqlite3_bind_int(st, i, *fmt == 'b' ? !!va_arg(ap, int) : va_arg(ap, int));
            break;
        case 'I':
            sqlite3_bind_int64(st, i, va_arg(ap, long long));
            break;
        }
    }
    return st;
}

sqlite3_stmt *mvctld_sql_query(struct mvctld_db *db, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = query_v(db, sql, fmt, ap);
    va_end(ap);
    return st;
}

int mvctld_sql_run(struct mvctld_db *db, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = query_v(db, sql, fmt, ap);
    va_end(ap);
    if (!st)
        return SQLITE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) != SQLITE_CONSTRAINT)
        mv_err("sqlite: %s: %s", sqlite3_errmsg(db->sql), sql);
    return rc;
}

long long mvctld_sql_int(struct mvctld_db *db, long long dflt, const char *sql, const char *fmt,
                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = query_v(db, sql, fmt, ap);
    va_end(ap);
    if (!st)
        return dflt;
    long long v = dflt;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

const char *mvctld_sql_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}
