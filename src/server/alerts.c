/* The alert engine: start and stop, alert states as the API lists them,
 * acknowledgement and silences. Rules, evaluation and notifications have
 * files of their own (alerts_impl.h). */
#include "alerts_impl.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "../lib/timefmt.h"
#include "store/db.h"

static const struct db_migration steps[] = {
    {"rules, alerts, silences, receivers, notifications",
     "CREATE TABLE rules (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT NOT NULL,"
     " body TEXT NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE TABLE alerts (id INTEGER PRIMARY KEY, rule TEXT NOT NULL, series TEXT NOT NULL,"
     " labels TEXT NOT NULL, annotations TEXT NOT NULL, state TEXT NOT NULL, value REAL,"
     " active_ms INTEGER NOT NULL, fired_ms INTEGER NOT NULL DEFAULT 0,"
     " resolved_ms INTEGER NOT NULL DEFAULT 0, ack_by TEXT NOT NULL DEFAULT '',"
     " ack_ms INTEGER NOT NULL DEFAULT 0, ack_comment TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX alerts_by_state ON alerts (state, id);"
     "CREATE TABLE silences (id INTEGER PRIMARY KEY, matchers TEXT NOT NULL,"
     " starts_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL, created_by TEXT NOT NULL,"
     " comment TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL);"
     "CREATE TABLE receivers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
     " type TEXT NOT NULL, url TEXT NOT NULL, created_ms INTEGER NOT NULL);"
     "CREATE TABLE notifications (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
     " receiver TEXT NOT NULL, alert_id INTEGER NOT NULL, status TEXT NOT NULL,"
     " attempt INTEGER NOT NULL, result TEXT NOT NULL, http_status INTEGER NOT NULL,"
     " error TEXT NOT NULL DEFAULT '');"},
    {"receiver settings (slack, email)",
     "ALTER TABLE receivers ADD COLUMN config TEXT NOT NULL DEFAULT '{}';"},
    {"alert changes waiting in their group (group_wait) survive a crash",
     "CREATE TABLE waiting (alert_id INTEGER PRIMARY KEY, firing INTEGER NOT NULL,"
     " labels TEXT NOT NULL, annotations TEXT NOT NULL, starts_ms INTEGER NOT NULL,"
     " ends_ms INTEGER NOT NULL, since_ms INTEGER NOT NULL);"},
    {"notification routes by labels",
     "CREATE TABLE routes (position INTEGER PRIMARY KEY, matchers TEXT NOT NULL,"
     " receivers TEXT NOT NULL, continue INTEGER NOT NULL DEFAULT 0);"},
};

/* ---- storage helpers ---- */

char *alert_dumps(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    return s ? s : xstrdup("{}");
}

/* ---- start / stop ---- */

struct alerts *alerts_start(const char *path, const struct alerts_config *cfg, struct tsdb *db,
                            char *err, size_t errlen)
{
    struct alerts *al = xcalloc(1, sizeof(*al));

    al->cfg = *cfg;
    al->db = db;
    al->started_ms = now_wall_ms();
    al->external_url = xstrdup(cfg->external_url ? cfg->external_url : "");
    if (al->cfg.eval_interval_ms <= 0)
        al->cfg.eval_interval_ms = 5000;
    al->group_by = json_array();
    for (const char *p = cfg->group_by && *cfg->group_by ? cfg->group_by : "alertname"; *p;) {
        size_t n = strcspn(p, ", ");
        if (n)
            json_array_append_new(al->group_by, json_stringn(p, n));
        p += n;
        p += strspn(p, ", ");
    }
    if (al->cfg.repeat_interval_ms <= 0)
        al->cfg.repeat_interval_ms = 4 * 3600000LL;
    if (al->cfg.history_days <= 0)
        al->cfg.history_days = 90;
    al->meta = db_open(path, steps, sizeof(steps) / sizeof(steps[0]), err, errlen);
    if (!al->meta)
        goto fail;
    pthread_mutex_init(&al->lock, NULL);
    pthread_mutex_init(&al->qlock, NULL);
    now_cond_init(&al->qcond);
    if (alert_rules_setup(al, err, errlen) < 0)
        goto fail_db;
    alert_states_load(al);
    alert_waiting_load(al);
    pthread_create(&al->note_thread, NULL, alert_note_main, al);
    pthread_create(&al->eval_thread, NULL, alert_eval_main, al);
    log_info("alerts: %zu rules, evaluated every %lld ms", al->nrules,
             (long long)al->cfg.eval_interval_ms);
    return al;
fail_db:
    sqlite3_close(al->meta);
fail:
    json_decref(al->group_by);
    free(al->external_url);
    free(al);
    return NULL;
}

static json_t *evaluator_health(struct alerts *al, int64_t now)
{
    json_t *failing = json_array();
    for (size_t i = 0; i < al->nrules; i++)
        if (al->rules[i].error[0])
            json_array_append_new(failing, json_pack("{s:s, s:s}", "rule", al->rules[i].name, "error",
                                                     al->rules[i].error));
    int64_t last = al->last_round_ms ? al->last_round_ms : al->started_ms;
    int late = now - last > 3 * al->cfg.eval_interval_ms + 5000;
    json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:O}", "status",
                            late ? "down" : json_array_size(failing) ? "degraded" : "ok", "rules",
                            (json_int_t)al->nrules, "last_round_ms", (json_int_t)al->last_round_ms,
                            "round_ms", (json_int_t)al->round_ms, "interval_ms",
                            (json_int_t)al->cfg.eval_interval_ms, "failing", failing);
    if (late)
        json_object_set_new(out, "detail", json_sprintf("no evaluation round for %lld s",
                                                        (long long)((now - last) / 1000)));
    else if (json_array_size(failing))
        json_object_set_new(out, "detail", json_sprintf("%zu of %zu rules cannot be evaluated (%s: %s)",
                                                        json_array_size(failing), al->nrules,
                                                        json_string_value(json_object_get(json_array_get(failing, 0), "rule")),
                                                        json_string_value(json_object_get(json_array_get(failing, 0), "error"))));
    else
        json_object_set_new(out, "detail", json_sprintf("%zu rules, evaluated every %lld ms", al->nrules,
                                                        (long long)al->cfg.eval_interval_ms));
    json_decref(failing);
    return out;
}

/* Receivers whose newest delivery attempt failed (main lock held). */
static json_t *failing_receivers(struct alerts *al)
{
    json_t *out = json_array();
    /* SQLite takes the bare columns from the row holding max(id) */
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT receiver, result, error, http_status, ts_ms, max(id)"
                                            " FROM notifications GROUP BY receiver");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        if (strcmp((const char *)sqlite3_column_text(st, 1), "ok"))
            json_array_append_new(out, json_pack("{s:s, s:s, s:i, s:I}", "receiver",
                                                 (const char *)sqlite3_column_text(st, 0), "error",
                                                 (const char *)sqlite3_column_text(st, 2), "http_status",
                                                 sqlite3_column_int(st, 3), "ts_ms",
                                                 (json_int_t)sqlite3_column_int64(st, 4)));
    }
    sqlite3_finalize(st);
    return out;
}

json_t *alerts_health(struct alerts *al, int64_t now)
{
    size_t queued = 0;
    pthread_mutex_lock(&al->lock);
    json_t *ev = evaluator_health(al, now), *failing = failing_receivers(al);
    pthread_mutex_unlock(&al->lock);
    pthread_mutex_lock(&al->qlock);
    for (struct note *n = al->queue; n; n = n->next)
        queued++;
    pthread_mutex_unlock(&al->qlock);
    json_t *first = json_array_get(failing, 0);
    json_t *notes = json_pack("{s:s, s:I, s:o}", "status", first ? "degraded" : "ok", "queued",
                              (json_int_t)queued, "failing", failing);
    json_object_set_new(notes, "detail",
                        first ? json_sprintf("receiver %s: %s", json_string_value(json_object_get(first, "receiver")),
                                             json_string_value(json_object_get(first, "error")))
                              : json_sprintf("%zu notifications waiting", queued));
    return json_pack("{s:o, s:o}", "evaluator", ev, "notifications", notes);
}

void alerts_stop(struct alerts *al)
{
    if (!al)
        return;
    pthread_mutex_lock(&al->qlock);
    al->stop = 1;
    pthread_cond_broadcast(&al->qcond);
    pthread_mutex_unlock(&al->qlock);
    pthread_join(al->eval_thread, NULL);
    pthread_join(al->note_thread, NULL);
    while (al->queue) {
        struct note *n = al->queue;
        al->queue = n->next;
        alert_note_free(n);
    }
    while (al->groups) {
        struct notify_group *g = al->groups;
        al->groups = g->next;
        for (size_t i = 0; i < g->n; i++)
            alert_group_alert_free(&g->a[i]);
        json_decref(g->group_labels);
        free(g->key);
        free(g->a);
        free(g);
    }
    json_decref(al->group_by);
    while (al->nact)
        alert_active_drop(al, &al->act[0]);
    free(al->act);
    alert_rules_free(al);
    sqlite3_close(al->meta);
    free(al->external_url);
    free(al);
}

/* ---- API ---- */

json_t *alerts_list(struct alerts *al, const char *state, int limit)
{
    json_t *arr = json_array();
    json_error_t jerr;
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(
        al->meta, "SELECT id, rule, labels, annotations, state, value, active_ms, fired_ms, resolved_ms,"
                  " ack_by, ack_ms, ack_comment FROM alerts WHERE (?1 IS NULL OR state = ?1 OR"
                  " (?1 = 'active' AND state IN ('pending', 'firing'))) ORDER BY id DESC LIMIT ?2");
    if (state)
        sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : 100);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *labels = json_loads((const char *)sqlite3_column_text(st, 2), 0, &jerr);
        json_t *ann = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:o, s:o, s:s, s:f, s:I, s:I, s:I, s:s, s:I, s:s}", "id",
                           (json_int_t)sqlite3_column_int64(st, 0), "rule",
                           (const char *)sqlite3_column_text(st, 1), "labels",
                           labels ? labels : json_object(), "annotations", ann ? ann : json_object(),
                           "state", (const char *)sqlite3_column_text(st, 4), "value",
                           sqlite3_column_double(st, 5), "active_ms",
                           (json_int_t)sqlite3_column_int64(st, 6), "fired_ms",
                           (json_int_t)sqlite3_column_int64(st, 7), "resolved_ms",
                           (json_int_t)sqlite3_column_int64(st, 8), "ack_by",
                           (const char *)sqlite3_column_text(st, 9), "ack_ms",
                           (json_int_t)sqlite3_column_int64(st, 10), "ack_comment",
                           (const char *)sqlite3_column_text(st, 11)));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    return arr;
}

/* An event for browsers watching (/api/v1/live); takes ev. */
static void tell_browsers(struct alerts *al, json_t *ev)
{
    if (al->cfg.on_event && ev) {
        char *text = alert_dumps(ev);
        al->cfg.on_event(al->cfg.event_arg, text, strlen(text));
        free(text);
    }
    json_decref(ev);
}

/* Sets (by non-empty) or clears an acknowledgement of a firing alert; a
 * clear needs one to be there. Whether a row changed. */
static int ack_row(struct alerts *al, int64_t id, const char *by, const char *comment)
{
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "UPDATE alerts SET ack_by = ?1, ack_ms = ?2, ack_comment = ?3"
                                            " WHERE id = ?4 AND state = 'firing' AND (?1 != '' OR ack_by != '')");
    sqlite3_bind_text(st, 1, by, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, *by ? now_wall_ms() : 0);
    sqlite3_bind_text(st, 3, comment ? comment : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, id);
    sqlite3_step(st);
    int changed = sqlite3_changes(al->meta);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    return changed;
}

json_t *alerts_ack(struct alerts *al, int64_t id, const char *by, const char *comment,
                   struct errinfo *err)
{
    if (!ack_row(al, id, by, comment)) {
        errinfo_set(err, 404, "not_found", "id", "no firing alert with id %lld", (long long)id);
        return NULL;
    }
    alert_notify_acked(al, id);
    tell_browsers(al, json_pack("{s:s, s:I, s:s, s:s, s:I}", "type", "alert_ack", "id", (json_int_t)id, "by", by,
                                "comment", comment ? comment : "", "ts_ms", (json_int_t)now_wall_ms()));
    return json_pack("{s:I, s:s}", "id", (json_int_t)id, "ack_by", by);
}

json_t *alerts_unack(struct alerts *al, int64_t id, struct errinfo *err)
{
    if (!ack_row(al, id, "", "")) {
        errinfo_set(err, 404, "not_found", "id", "no acknowledged firing alert with id %lld", (long long)id);
        return NULL;
    }
    alert_notify_unacked(al, id);
    tell_browsers(al, json_pack("{s:s, s:I, s:I}", "type", "alert_unack", "id", (json_int_t)id, "ts_ms",
                                (json_int_t)now_wall_ms()));
    return json_pack("{s:I, s:s}", "id", (json_int_t)id, "ack_by", "");
}

json_t *alerts_silence_create(struct alerts *al, const json_t *body, const char *by, struct errinfo *err)
{
    char why[160];
    struct selector sel;
    int64_t now = now_wall_ms(), starts = now, ends = 0, dur;
    const char *m = json_string_value(json_object_get(body, "matchers"));
    const char *c = json_string_value(json_object_get(body, "comment"));
    json_t *v;

    if (!m || strlen(m) > 1024 || sel_parse(m, &sel, why, sizeof(why)) < 0) {
        if (m && strlen(m) <= 1024)
            sel_free(&sel);
        errinfo_set(err, 400, "invalid_field", "matchers", "matchers: a selector such as {alertname=\"GpuTemperatureHigh\",Hostname=\"gpu-7\"}");
        return NULL;
    }
    sel_free(&sel);
    if ((v = json_object_get(body, "starts_at")) && timefmt_parse_time(json_string_value(v), &starts) < 0) {
        errinfo_set(err, 400, "invalid_field", "starts_at", "starts_at: RFC 3339 or Unix seconds");
        return NULL;
    }
    if ((v = json_object_get(body, "ends_at")) && timefmt_parse_time(json_string_value(v), &ends) < 0) {
        errinfo_set(err, 400, "invalid_field", "ends_at", "ends_at: RFC 3339 or Unix seconds");
        return NULL;
    }
    if ((v = json_object_get(body, "duration"))) {
        if (timefmt_parse_duration(json_string_value(v), &dur) < 0) {
            errinfo_set(err, 400, "invalid_field", "duration", "duration: such as 2h");
            return NULL;
        }
        ends = starts + dur;
    }
    if (ends <= starts || ends <= now) {
        errinfo_set(err, 400, "invalid_field", "ends_at", "a silence needs an end in the future (ends_at or duration)");
        return NULL;
    }
    if (c && strlen(c) > 1024) {
        errinfo_set(err, 400, "invalid_field", "comment", "comment: at most 1024 bytes");
        return NULL;
    }
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO silences (matchers, starts_ms, ends_ms, created_by,"
                                            " comment, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
    sqlite3_bind_text(st, 1, m, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, starts);
    sqlite3_bind_int64(st, 3, ends);
    sqlite3_bind_text(st, 4, by, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, c ? c : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_step(st);
    sqlite3_finalize(st);
    int64_t id = sqlite3_last_insert_rowid(al->meta);
    pthread_mutex_unlock(&al->lock);
    return json_pack("{s:I, s:s, s:I, s:I, s:s, s:s}", "id", (json_int_t)id, "matchers", m, "starts_ms",
                     (json_int_t)starts, "ends_ms", (json_int_t)ends, "created_by", by, "comment", c ? c : "");
}

json_t *alerts_silences_list(struct alerts *al)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT id, matchers, starts_ms, ends_ms, created_by, comment"
                                            " FROM silences WHERE ends_ms > ? ORDER BY id");
    sqlite3_bind_int64(st, 1, now_wall_ms());
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, json_pack("{s:I, s:s, s:I, s:I, s:s, s:s}", "id",
                                             (json_int_t)sqlite3_column_int64(st, 0), "matchers",
                                             (const char *)sqlite3_column_text(st, 1), "starts_ms",
                                             (json_int_t)sqlite3_column_int64(st, 2), "ends_ms",
                                             (json_int_t)sqlite3_column_int64(st, 3), "created_by",
                                             (const char *)sqlite3_column_text(st, 4), "comment",
                                             (const char *)sqlite3_column_text(st, 5)));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    return arr;
}

int alert_delete_row(struct alerts *al, const char *sql, int64_t id, const char *what, struct errinfo *err)
{
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, sql);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_step(st);
    int changed = sqlite3_changes(al->meta);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    if (!changed) {
        errinfo_set(err, 404, "not_found", "id", "no %s with id %lld", what, (long long)id);
        return -1;
    }
    return 0;
}

int alerts_silence_delete(struct alerts *al, int64_t id, struct errinfo *err)
{
    return alert_delete_row(al, "DELETE FROM silences WHERE id = ?", id, "silence", err);
}
