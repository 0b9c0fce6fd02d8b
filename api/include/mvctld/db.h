/* The controller's state: one SQLite database (WAL, foreign keys, busy timeout) whose schema is
 * brought up to date by numbered migrations, each applied in its own transaction at open. */
#ifndef MVCTLD_DB_H
#define MVCTLD_DB_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

struct mvctld_db {
    sqlite3 *sql;
    /* One connection shared by the HTTP worker threads: every use holds this lock, which also
     * keeps multi-statement operations atomic with respect to each other. */
    pthread_mutex_t lock;
    uint64_t generation; /* bumped by every write through this connection */
    sqlite3_stmt *data_version;
};

/* Opens (creating if needed) and migrates. path ":memory:" gives a private in-memory database.
 * Returns 0 or -1 with a reason in err. */
int mvctld_db_open(struct mvctld_db *db, const char *path, char *err, size_t errlen);
void mvctld_db_close(struct mvctld_db *db);
/* Same, migrating only up to schema version `target` (tests build old databases with it). */
int mvctld_db_open_version(struct mvctld_db *db, const char *path, int target, char *err,
                           size_t errlen);

/* Number of migrations this build knows; the schema_version a fully migrated database has. */
int mvctld_db_latest_version(void);
/* Applies migrations up to `target` (tests use a lower target to build an old database). */
int mvctld_db_migrate(struct mvctld_db *db, int target, char *err, size_t errlen);
int mvctld_db_version(struct mvctld_db *db);

/* A value that changes whenever the database content may have changed, by this process or by
 * another connection (PRAGMA data_version). Call with the lock held. */
uint64_t mvctld_db_change_token(struct mvctld_db *db);
void mvctld_db_touch(struct mvctld_db *db); /* after a write through this connection */

int mvctld_db_exec(struct mvctld_db *db, const char *sql); /* 0 or -1 (logged) */
int mvctld_db_begin(struct mvctld_db *db);
int mvctld_db_commit(struct mvctld_db *db);
void mvctld_db_rollback(struct mvctld_db *db);

void mvctld_db_lock(struct mvctld_db *db);
void mvctld_db_unlock(struct mvctld_db *db);

#endif
