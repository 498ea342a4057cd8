/* SQLite glue shared by the metadata store and the time-series store. */
#include "db.h"

#include <stdio.h>
#include <string.h>

#include "../../lib/log.h"

int db_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("sqlite: %s (in: %.60s)", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("sqlite: cannot prepare '%.80s': %s", sql, sqlite3_errmsg(db));
        return NULL;
    }
    return st;
}

static int setup(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    if (db_exec(db, "PRAGMA journal_mode=WAL") < 0 || db_exec(db, "PRAGMA synchronous=NORMAL") < 0 ||
        db_exec(db, "PRAGMA foreign_keys=ON") < 0) {
        snprintf(err, errlen, "cannot configure the database: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st = db_prepare(db, "PRAGMA user_version");
    int v = -1;

    if (st && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

sqlite3 *db_open(const char *path, const struct db_migration *steps, size_t nsteps, char *err,
                 size_t errlen)
{
    sqlite3 *db = NULL;
    int v;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        goto fail;
    }
    if (setup(db, err, errlen) < 0)
        goto fail;
    v = user_version(db);
    if (v < 0) {
        snprintf(err, errlen, "%s: not a database (%s)", path, sqlite3_errmsg(db));
        goto fail;
    }
    if ((size_t)v > nsteps) {
        snprintf(err, errlen, "%s: schema version %d is newer than this program knows (%zu)",
                 path, v, nsteps);
        goto fail;
    }
    for (size_t i = (size_t)v; i < nsteps; i++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version=%zu", i + 1);
        if (db_exec(db, "BEGIN IMMEDIATE") < 0)
            goto step_fail;
        if (db_exec(db, steps[i].sql) < 0 || db_exec(db, bump) < 0) {
            db_exec(db, "ROLLBACK");
            goto step_fail;
        }
        if (db_exec(db, "COMMIT") < 0)
            goto step_fail;
        log_info("%s: migrated to schema %zu (%s)", path, i + 1, steps[i].what);
        continue;
step_fail:
        snprintf(err, errlen, "%s: migration %zu (%s) failed: %s", path, i + 1, steps[i].what,
                 sqlite3_errmsg(db));
        goto fail;
    }
    return db;
fail:
    sqlite3_close(db);
    return NULL;
}

sqlite3 *db_open_reader(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

void db_integrity(sqlite3 *db, char *out, size_t outlen)
{
    sqlite3_stmt *st = db_prepare(db, "PRAGMA integrity_check");

    snprintf(out, outlen, "cannot run integrity_check");
    if (st && sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}
