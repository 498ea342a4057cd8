/* SQLite databases: opening in WAL mode with a busy timeout, and schema
 * migrations as an ordered table of steps (netdata's sqlite_db_migration). */
#ifndef GF_DB_H
#define GF_DB_H

#include <sqlite3.h>
#include <stddef.h>

/* One migration step: SQL run in a transaction, after which
 * PRAGMA user_version becomes the step's position (1-based). */
struct db_migration {
    const char *what;
    const char *sql;
};

/* Opens (creating) path, sets WAL, busy timeout and foreign keys, and runs
 * the steps beyond the file's user_version. Returns the handle, or NULL
 * with the reason in err. A database newer than the steps is refused. */
sqlite3 *db_open(const char *path, const struct db_migration *steps, size_t nsteps, char *err,
                 size_t errlen);

/* Opens another connection to an existing database for reading. */
sqlite3 *db_open_reader(const char *path, char *err, size_t errlen);

/* Runs SQL without results (BEGIN, COMMIT, PRAGMA ...). Returns 0 or -1. */
int db_exec(sqlite3 *db, const char *sql);

/* Prepares a statement, logging the error; NULL on failure. */
sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql);

/* "ok" when PRAGMA integrity_check passes, else the first problem (copied
 * into out). */
void db_integrity(sqlite3 *db, char *out, size_t outlen);

#endif
