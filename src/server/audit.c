/* Audit rows on SQLite, append-only from the API's point of view. */
#include "audit.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "store/db.h"

static const struct db_migration steps[] = {
    {"audit",
     "CREATE TABLE audit (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
     " user_id INTEGER NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL,"
     " source TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,"
     " result TEXT NOT NULL, status INTEGER NOT NULL, details TEXT NOT NULL DEFAULT '{}');"
     "CREATE INDEX audit_by_ts ON audit (ts_ms);"
     "CREATE INDEX audit_by_user ON audit (username, id);"
     "CREATE INDEX audit_by_action ON audit (action, id);"},
};

struct audit {
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *ins;
    int64_t retention_ms;
    int64_t pruned_ms;
};

struct audit *audit_open(const char *path, int64_t retention_days, char *err, size_t errlen)
{
    struct audit *au = xcalloc(1, sizeof(*au));

    au->db = db_open(path, steps, sizeof(steps) / sizeof(steps[0]), err, errlen);
    if (!au->db)
        goto fail;
    au->ins = db_prepare(au->db, "INSERT INTO audit (ts_ms, user_id, username, role, source,"
                                 " action, target, result, status, details)"
                                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!au->ins) {
        snprintf(err, errlen, "%s: cannot prepare the insert", path);
        goto fail;
    }
    pthread_mutex_init(&au->lock, NULL);
    au->retention_ms = retention_days * 86400000LL;
    audit_prune(au, now_wall_ms());
    return au;
fail:
    sqlite3_close(au->db);
    free(au);
    return NULL;
}

void audit_close(struct audit *au)
{
    if (!au)
        return;
    sqlite3_finalize(au->ins);
    sqlite3_close(au->db);
    pthread_mutex_destroy(&au->lock);
    free(au);
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

int audit_write(struct audit *au, const struct audit_entry *e)
{
    char *details = e->details ? json_dumps(e->details, JSON_COMPACT) : NULL;
    int rc;

    pthread_mutex_lock(&au->lock);
    sqlite3_stmt *st = au->ins;
    sqlite3_bind_int64(st, 1, e->ts_ms);
    sqlite3_bind_int64(st, 2, e->user_id);
    sqlite3_bind_text(st, 3, or_empty(e->username), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, or_empty(e->role), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, or_empty(e->source), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, or_empty(e->action), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, or_empty(e->target), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, or_empty(e->result), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 9, e->status);
    sqlite3_bind_text(st, 10, details ? details : "{}", -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&au->lock);
    free(details);
    if (rc != SQLITE_DONE) {
        log_error("audit: cannot write %s by %s: %s", or_empty(e->action), or_empty(e->username),
                  sqlite3_errstr(rc));
        return -1;
    }
    if (e->ts_ms - __atomic_load_n(&au->pruned_ms, __ATOMIC_RELAXED) > 3600000)
        audit_prune(au, e->ts_ms);
    return 0;
}

int64_t audit_prune(struct audit *au, int64_t now)
{
    int64_t n = 0;
    __atomic_store_n(&au->pruned_ms, now, __ATOMIC_RELAXED);
    if (au->retention_ms <= 0)
        return 0;
    pthread_mutex_lock(&au->lock);
    sqlite3_stmt *st = db_prepare(au->db, "DELETE FROM audit WHERE ts_ms < ?");
    sqlite3_bind_int64(st, 1, now - au->retention_ms);
    if (sqlite3_step(st) == SQLITE_DONE)
        n = sqlite3_changes(au->db);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&au->lock);
    if (n)
        log_info("audit: %lld rows past retention removed", (long long)n);
    return n;
}

json_t *audit_query(struct audit *au, const struct audit_filter *f)
{
    json_t *entries = json_array();
    int limit = f->limit > 0 ? f->limit : 100;
    int64_t last_id = 0;
    int n = 0, more = 0;
    char prefix[140] = "";

    /* "server.*" asks for every server action */
    if (f->action) {
        size_t al = strlen(f->action);
        if (al >= 2 && !strcmp(f->action + al - 2, ".*"))
            snprintf(prefix, sizeof(prefix), "%.*s.", (int)(al - 2), f->action);
    }
    pthread_mutex_lock(&au->lock);
    sqlite3_stmt *st = db_prepare(
        au->db, "SELECT id, ts_ms, user_id, username, role, source, action, target, result,"
                " status, details FROM audit WHERE (?1 IS NULL OR username = ?1)"
                " AND (?2 IS NULL OR action = ?2 OR (?3 <> '' AND substr(action, 1, length(?3)) = ?3))"
                " AND (?4 IS NULL OR target = ?4) AND (?5 = 0 OR ts_ms >= ?5)"
                " AND (?6 = 0 OR ts_ms <= ?6) AND (?7 = 0 OR id < ?7)"
                " ORDER BY id DESC LIMIT ?8");
    if (f->username)
        sqlite3_bind_text(st, 1, f->username, -1, SQLITE_TRANSIENT);
    if (f->action)
        sqlite3_bind_text(st, 2, f->action, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, prefix, -1, SQLITE_TRANSIENT);
    if (f->target)
        sqlite3_bind_text(st, 4, f->target, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, f->since_ms);
    sqlite3_bind_int64(st, 6, f->until_ms);
    sqlite3_bind_int64(st, 7, f->before_id);
    sqlite3_bind_int(st, 8, limit + 1);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        json_error_t jerr;
        const char *d = (const char *)sqlite3_column_text(st, 10);
        json_t *details = json_loads(d ? d : "{}", 0, &jerr);
        last_id = sqlite3_column_int64(st, 0);
        json_array_append_new(
            entries,
            json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:o}", "id",
                      (json_int_t)last_id, "ts_ms", (json_int_t)sqlite3_column_int64(st, 1),
                      "user_id", (json_int_t)sqlite3_column_int64(st, 2), "username",
                      (const char *)sqlite3_column_text(st, 3), "role",
                      (const char *)sqlite3_column_text(st, 4), "source",
                      (const char *)sqlite3_column_text(st, 5), "action",
                      (const char *)sqlite3_column_text(st, 6), "target",
                      (const char *)sqlite3_column_text(st, 7), "result",
                      (const char *)sqlite3_column_text(st, 8), "status",
                      sqlite3_column_int(st, 9), "details", details ? details : json_object()));
        n++;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&au->lock);
    return json_pack("{s:o, s:o}", "entries", entries, "next_before_id",
                     more ? json_integer(last_id) : json_null());
}
