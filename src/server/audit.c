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

/* Rows by nobody identified (failed and throttled logins) are what an
 * attacker can make without an account: each source writes at most
 * ANON_PER_SOURCE a window and all sources ANON_TOTAL; the rest, and every
 * throttled attempt (429), are counted and written as one summary row per
 * source and window ("audit.suppressed"), so the disk cannot be filled this
 * way. */
#define ANON_WINDOW_MS 60000
#define ANON_PER_SOURCE 20
#define ANON_TOTAL 120
#define ANON_SOURCES 256

struct anon_source {
    char source[64];
    char action[48];
    int64_t window_ms; /* start of its window; 0: free slot */
    int rows;          /* written in the window */
    int64_t counted;   /* left out in the window */
};

struct audit {
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *ins;
    int64_t retention_ms;
    int64_t pruned_ms;
    /* under lock */
    struct anon_source anon[ANON_SOURCES];
    int64_t anon_window_ms;
    int anon_rows;
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

static void summarize(struct audit *au, struct anon_source *a, int64_t now);

void audit_close(struct audit *au)
{
    if (!au)
        return;
    pthread_mutex_lock(&au->lock);
    for (int i = 0; i < ANON_SOURCES; i++)
        summarize(au, &au->anon[i], now_wall_ms());
    pthread_mutex_unlock(&au->lock);
    sqlite3_finalize(au->ins);
    sqlite3_close(au->db);
    pthread_mutex_destroy(&au->lock);
    free(au);
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Inserts one row (lock held); the SQLite result. */
static int insert(struct audit *au, const struct audit_entry *e, const char *details)
{
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
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Writes what a source's window left out as one row, and frees the slot
 * (lock held). */
static void summarize(struct audit *au, struct anon_source *a, int64_t now)
{
    if (!a->window_ms)
        return;
    if (a->counted) {
        char details[200], target[80];
        snprintf(details, sizeof(details), "{\"action\":\"%s\",\"count\":%lld,\"from_ms\":%lld,\"to_ms\":%lld}",
                 a->action, (long long)a->counted, (long long)a->window_ms, (long long)now);
        snprintf(target, sizeof(target), "source:%s", a->source);
        struct audit_entry s = {.ts_ms = now, .username = "", .role = "", .source = a->source,
                                .action = "audit.suppressed", .target = target, .result = "failed",
                                .status = 429};
        if (insert(au, &s, details) != SQLITE_DONE)
            log_error("audit: cannot write a summary for %s", a->source);
    }
    memset(a, 0, sizeof(*a));
}

/* Whether an anonymous row is written (1) or only counted (0); lock held. */
static int admit_anonymous(struct audit *au, const struct audit_entry *e)
{
    struct anon_source *a = NULL, *free_slot = NULL, *oldest = NULL;
    const char *src = or_empty(e->source);

    for (int i = 0; i < ANON_SOURCES; i++) {
        struct anon_source *x = &au->anon[i];
        if (x->window_ms && e->ts_ms - x->window_ms >= ANON_WINDOW_MS)
            summarize(au, x, e->ts_ms); /* its window is over */
        if (!x->window_ms) {
            free_slot = free_slot ? free_slot : x;
        } else if (!strcmp(x->source, src)) {
            a = x;
        } else if (!oldest || x->window_ms < oldest->window_ms) {
            oldest = x;
        }
    }
    if (!a) {
        a = free_slot ? free_slot : oldest;
        if (a == oldest)
            summarize(au, a, e->ts_ms);
        snprintf(a->source, sizeof(a->source), "%s", src);
        snprintf(a->action, sizeof(a->action), "%s", or_empty(e->action));
        a->window_ms = e->ts_ms;
    }
    if (e->ts_ms - au->anon_window_ms >= ANON_WINDOW_MS) {
        au->anon_window_ms = e->ts_ms;
        au->anon_rows = 0;
    }
    /* a throttled attempt (429) is one of a stream: counted, never a row */
    if (e->status == 429 || a->rows >= ANON_PER_SOURCE || au->anon_rows >= ANON_TOTAL) {
        a->counted++;
        return 0;
    }
    a->rows++;
    au->anon_rows++;
    return 1;
}

int audit_write(struct audit *au, const struct audit_entry *e)
{
    char *details = e->details ? json_dumps(e->details, JSON_COMPACT) : NULL;
    int rc = SQLITE_DONE;

    pthread_mutex_lock(&au->lock);
    if (e->user_id || admit_anonymous(au, e))
        rc = insert(au, e, details);
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
