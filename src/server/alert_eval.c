/* Alert evaluation: each round reads every rule's series from the store
 * and walks their states inactive -> pending -> firing -> resolved. */
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
#include "store/db.h"
#include "store/serieskey.h"

static int compare(double v, int op, double t)
{
    switch (op) {
    case OP_GT: return v > t;
    case OP_GE: return v >= t;
    case OP_LT: return v < t;
    case OP_LE: return v <= t;
    case OP_EQ: return v == t;
    default: return v != t;
    }
}

/* The rule's value for one series at now; 0, or -1 when there is none.
 * The newest sample and recent windows come from memory (agg_recent reads
 * SQLite only when the head is young). */
static int series_value(struct alerts *al, const struct rule *r, uint64_t id, int64_t now, double *out)
{
    int64_t ts;

    int rc = tsdb_last(al->db, id, &ts, out);
    if (rc == 1 && ts <= now)
        return -1; /* ended: whatever the window still holds is of the past */
    if (r->agg == AGG_LAST && rc == 0 && ts <= now)
        return now - ts > STALE_MS || isnan(*out) ? -1 : 0; /* the usual case */
    return agg_recent(al->db, id, now, r->agg == AGG_LAST ? STALE_MS : r->window_ms, r->agg, out);
}

/* idx maps the series of one rule's alerts to their place in al->act */
static struct active *find_active(struct alerts *al, json_t *idx, const char *series)
{
    json_t *v = json_object_get(idx, series);
    return v ? &al->act[json_integer_value(v)] : NULL;
}

void alert_active_drop(struct alerts *al, struct active *a)
{
    free(a->rule);
    free(a->series);
    json_decref(a->labels);
    json_decref(a->annotations);
    *a = al->act[--al->nact];
}

/* A series' labels as an alert carries them: "metric" for the name. */
static json_t *series_labels(const char *key)
{
    struct serieskey k;
    json_t *j = json_object();
    if (serieskey_parse(key, strlen(key), &k) < 0)
        return j;
    json_object_set_new(j, "metric", json_string(k.name));
    for (size_t i = 0; i < k.nlabels; i++)
        json_object_set_new(j, k.labels[i].name, json_string(k.labels[i].value));
    serieskey_free(&k);
    return j;
}

static const char *label_get(void *arg, const char *name)
{
    return json_string_value(json_object_get(arg, name));
}

static int silenced(struct alerts *al, const json_t *labels, int64_t now)
{
    int hit = 0;
    char why[128];
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT matchers FROM silences WHERE starts_ms <= ? AND ends_ms > ?");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now);
    while (!hit && st && sqlite3_step(st) == SQLITE_ROW) {
        struct selector sel;
        if (sel_parse((const char *)sqlite3_column_text(st, 0), &sel, why, sizeof(why)) == 0)
            hit = sel_matches(&sel, label_get, (void *)labels);
        sel_free(&sel);
    }
    sqlite3_finalize(st);
    return hit;
}

/* A state change for browsers watching (/api/v1/live). */
static void emit(struct alerts *al, const struct active *a, const char *state, int64_t now)
{
    if (!al->cfg.on_event)
        return;
    json_t *ev = json_pack("{s:s, s:I, s:s, s:s, s:O, s:O, s:f, s:I, s:I, s:I}", "type", "alert", "id", (json_int_t)a->id,
                           "rule", a->rule, "state", state, "labels", a->labels, "annotations", a->annotations,
                           "value", isfinite(a->value) ? a->value : 0.0, "ts_ms", (json_int_t)now, "active_ms",
                           (json_int_t)a->active_ms, "fired_ms", (json_int_t)a->fired_ms);
    char *text = alert_dumps(ev);
    al->cfg.on_event(al->cfg.event_arg, text, strlen(text));
    free(text);
    json_decref(ev);
}

static void update_alert(struct alerts *al, const struct active *a, const char *state, int64_t resolved_ms)
{
    char *ann = alert_dumps(a->annotations);
    sqlite3_stmt *st = db_prepare(al->meta, "UPDATE alerts SET state = ?, value = ?, fired_ms = ?,"
                                            " resolved_ms = ?, annotations = ? WHERE id = ?");
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, a->value);
    sqlite3_bind_int64(st, 3, a->fired_ms);
    sqlite3_bind_int64(st, 4, resolved_ms);
    sqlite3_bind_text(st, 5, ann, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, a->id);
    sqlite3_step(st);
    sqlite3_finalize(st);
    free(ann);
}

static void annotate(const struct rule *r, struct active *a)
{
    json_t *ann = json_object(), *tv;
    const char *k;
    json_object_foreach(json_object_get(r->body, "annotations"), k, tv)
    {
        char *s = alert_template(json_string_value(tv), a->labels, a->value);
        json_object_set_new(ann, k, json_string(s));
        free(s);
    }
    json_decref(a->annotations);
    a->annotations = ann;
}

/* labels: the alert's series labels (taken), or NULL: from key. */
static void observe(struct alerts *al, json_t *idx, const struct rule *r, const char *key, double v,
                    int64_t now, json_t *labels)
{
    struct active *a = find_active(al, idx, key);
    if (!a) {
        if (al->nact == al->capact) {
            al->capact = al->capact ? al->capact * 2 : 64;
            al->act = xrealloc(al->act, al->capact * sizeof(*al->act));
        }
        a = &al->act[al->nact++];
        memset(a, 0, sizeof(*a));
        a->rule = xstrdup(r->name);
        a->series = xstrdup(key);
        a->labels = labels ? labels : series_labels(key);
        labels = NULL;
        const char *lk;
        json_t *lv;
        json_object_foreach(json_object_get(r->body, "labels"), lk, lv)
            json_object_set(a->labels, lk, lv);
        json_object_set_new(a->labels, "alertname", json_string(r->name));
        json_object_set_new(a->labels, "severity", json_string(r->severity));
        a->active_ms = now;
        a->value = v;
        annotate(r, a);
        char *lt = alert_dumps(a->labels), *at = alert_dumps(a->annotations);
        sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO alerts (rule, series, labels, annotations,"
                                                " state, value, active_ms) VALUES (?, ?, ?, ?, 'pending', ?, ?)");
        sqlite3_bind_text(st, 1, r->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, lt, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 5, v);
        sqlite3_bind_int64(st, 6, now);
        sqlite3_step(st);
        sqlite3_finalize(st);
        a->id = sqlite3_last_insert_rowid(al->meta);
        json_object_set_new(idx, key, json_integer((json_int_t)(a - al->act)));
        emit(al, a, "pending", now);
        free(lt);
        free(at);
    }
    json_decref(labels);
    a->seen = 1;
    a->value = v;
    if (!a->firing && now - a->active_ms >= r->for_ms) {
        a->firing = 1;
        a->fired_ms = now;
        annotate(r, a);
        update_alert(al, a, "firing", 0);
        emit(al, a, "firing", now);
        log_info("alert %s firing: %s = %g", r->name, a->series, v);
        if (!silenced(al, a->labels, now))
            alert_notify(al, a->id, 1, a->labels, a->annotations, a->fired_ms, 0, now);
    }
}

static void refresh_series(struct alerts *al, struct rule *r, uint64_t count, int64_t now)
{
    if (r->ser && r->ser_count == count && now - r->ser_ms < 60000 && now >= r->ser_ms)
        return;
    for (size_t k = 0; k < r->nser; k++)
        free(r->ser[k].key);
    free(r->ser);
    r->ser = NULL;
    r->nser = tsdb_select(al->db, &r->sel, MAX_SERIES_PER_RULE, &r->ser);
    r->error[0] = '\0';
    if (r->nser == TSDB_BUDGET) { /* no series this round */
        log_warn("alerts: rule %s: its selector ran past query_timeout_ms", r->name);
        snprintf(r->error, sizeof(r->error), "its selector ran past query_timeout_ms");
        r->nser = 0;
    }
    r->ser_count = count;
    r->ser_ms = now;
}

/* An alert whose condition no longer holds (or whose series ended, or
 * whose rule went): a firing one is resolved and notified, a pending one
 * forgotten. Dropped from al->act, so a is then another alert. */
static void end_alert(struct alerts *al, struct active *a, int64_t now)
{
    emit(al, a, a->firing ? "resolved" : "inactive", now);
    if (a->firing) {
        update_alert(al, a, "resolved", now);
        log_info("alert %s resolved: %s", a->rule, a->series);
        if (!silenced(al, a->labels, now))
            alert_notify(al, a->id, 0, a->labels, a->annotations, a->fired_ms, now, now);
    } else {
        sqlite3_stmt *st = db_prepare(al->meta, "DELETE FROM alerts WHERE id = ?");
        sqlite3_bind_int64(st, 1, a->id);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    alert_active_drop(al, a);
}

/* A PromQL rule at now: every element of its result is an alert, labelled
 * with the element's labels (the metric name dropped, as Prometheus
 * does). 0 and *res, or -1 with the reason in err (the rule's alerts then
 * stay as they are). */
static int eval_expr(struct alerts *al, const struct rule *r, int64_t now, struct promql_result *res,
                     char *err, size_t errlen)
{
    struct promql_limits lim = {.max_samples = 5000000, .deadline_ns = now_mono_ns() + 2000000000LL};
    return promql_eval(al->db, r->expr, now, now, 1, &lim, res, err, errlen) == 0 ? 0 : -1;
}

static json_t *element_labels(const struct promql_series *s)
{
    json_t *j = json_object();
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, "__name__"))
            json_object_set_new(j, s->labels[i].name, json_string(s->labels[i].value));
    return j;
}

static size_t eval_expr_rule(struct alerts *al, struct rule *r, int64_t now, json_t *idx)
{
    struct promql_result res;
    char err[300];
    if (eval_expr(al, r, now, &res, err, sizeof(err)) < 0) {
        log_warn("alerts: rule %s: %s", r->name, err);
        snprintf(r->error, sizeof(r->error), "%s", err);
        for (size_t i = 0; i < al->nact; i++)
            if (!strcmp(al->act[i].rule, r->name))
                al->act[i].seen = 1;
        return 0;
    }
    r->error[0] = '\0';
    for (size_t i = 0; i < res.n; i++) {
        if (!res.series[i].ok[0])
            continue;
        json_t *labels = element_labels(&res.series[i]);
        char *key = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
        observe(al, idx, r, key, res.series[i].v[0], now, labels);
        free(key);
    }
    size_t n = res.n;
    promql_result_free(&res);
    return n;
}

/* A classic rule: its selector's series, each compared at now. */
static size_t eval_selector_rule(struct alerts *al, struct rule *r, uint64_t count, int64_t now,
                                 json_t *idx)
{
    refresh_series(al, r, count, now);
    for (size_t i = 0; i < r->nser; i++) {
        double v;
        if (series_value(al, r, r->ser[i].id, now, &v) == 0 && compare(v, r->op, r->threshold))
            observe(al, idx, r, r->ser[i].key, v, now, NULL);
    }
    return r->nser;
}

static size_t eval_rule(struct alerts *al, struct rule *r, uint64_t count, int64_t now)
{
    /* the rule's alerts, by series; those not seen this round end */
    json_t *idx = json_object();
    for (size_t i = 0; i < al->nact; i++)
        if (!strcmp(al->act[i].rule, r->name)) {
            al->act[i].seen = 0;
            json_object_set_new(idx, al->act[i].series, json_integer((json_int_t)i));
        }
    size_t n = r->expr ? eval_expr_rule(al, r, now, idx) : eval_selector_rule(al, r, count, now, idx);
    json_decref(idx);
    for (size_t i = 0; i < al->nact;) {
        struct active *a = &al->act[i];
        if (strcmp(a->rule, r->name) || a->seen) {
            i++;
            continue;
        }
        end_alert(al, a, now);
    }
    return n;
}

/* Resolved alerts and the notification log past history_days go, hourly:
 * a flapping fleet would otherwise grow alerts.db without end. Called
 * with the lock held. */
static void prune_history(struct alerts *al, int64_t now)
{
    if (now - al->pruned_ms < 3600000 && now >= al->pruned_ms)
        return;
    al->pruned_ms = now;
    int64_t before = now - al->cfg.history_days * 86400000LL;
    static const char *const sql[] = {"DELETE FROM alerts WHERE state = 'resolved' AND resolved_ms < ?",
                                      "DELETE FROM notifications WHERE ts_ms < ?",
                                      "DELETE FROM silences WHERE ends_ms < ?"};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        sqlite3_stmt *st = db_prepare(al->meta, sql[i]);
        sqlite3_bind_int64(st, 1, before);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
}

#define PREVIEW_MAX 50

static int by_firing_then_value(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int fx = json_is_true(json_object_get(x, "fires")), fy = json_is_true(json_object_get(y, "fires"));
    if (fx != fy)
        return fy - fx;
    double vx = json_number_value(json_object_get(x, "value")), vy = json_number_value(json_object_get(y, "value"));
    return (vx < vy) - (vx > vy);
}

/* The preview of a PromQL rule: every element fires. */
static json_t *preview_expr(struct alerts *al, struct rule *r, int64_t now, struct errinfo *err)
{
    struct promql_result res;
    char why[300];
    if (eval_expr(al, r, now, &res, why, sizeof(why)) < 0) {
        errinfo_set(err, 422, "execution", "expr", "expr: %s", why);
        return NULL;
    }
    json_t *list = json_array();
    size_t with_value = 0;
    for (size_t i = 0; i < res.n; i++) {
        if (!res.series[i].ok[0])
            continue;
        if (with_value++ < PREVIEW_MAX)
            json_array_append_new(list, json_pack("{s:o, s:f, s:b}", "labels", element_labels(&res.series[i]),
                                                  "value", res.series[i].v[0], "fires", 1));
    }
    promql_result_free(&res);
    return json_pack("{s:I, s:I, s:I, s:o}", "series", (json_int_t)with_value, "with_value",
                     (json_int_t)with_value, "firing", (json_int_t)with_value, "matches", list);
}

json_t *alert_eval_preview(struct alerts *al, struct rule *r, int64_t now, struct errinfo *err)
{
    if (r->expr)
        return preview_expr(al, r, now, err);
    struct tsdb_series_info *ser = NULL;
    size_t n = tsdb_select(al->db, &r->sel, MAX_SERIES_PER_RULE, &ser);
    if (n == TSDB_BUDGET) {
        errinfo_set(err, 503, "timeout", "metric", "metric: the selector ran past query_timeout_ms");
        return NULL;
    }
    size_t nm = 0, firing = 0, with_value = 0;
    json_t **m = xcalloc(n + 1, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        double v;
        if (series_value(al, r, ser[i].id, now, &v) < 0 || !isfinite(v))
            continue;
        int fires = compare(v, r->op, r->threshold);
        with_value++;
        firing += fires;
        m[nm++] = json_pack("{s:o, s:f, s:b}", "labels", series_labels(ser[i].key), "value", v, "fires", fires);
    }
    qsort(m, nm, sizeof(*m), by_firing_then_value);
    json_t *list = json_array();
    for (size_t i = 0; i < nm; i++) {
        if (i < PREVIEW_MAX)
            json_array_append(list, m[i]);
        json_decref(m[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(ser[i].key);
    free(ser);
    free(m);
    return json_pack("{s:I, s:I, s:I, s:o}", "series", (json_int_t)n, "with_value", (json_int_t)with_value,
                     "firing", (json_int_t)firing, "matches", list);
}

size_t alerts_eval_now(struct alerts *al, int64_t now)
{
    size_t n = 0;
    struct tsdb_stats ts;
    int64_t t0 = now_mono_ns();
    tsdb_stats(al->db, &ts);
    pthread_mutex_lock(&al->lock);
    db_exec(al->meta, "BEGIN");
    for (size_t i = 0; i < al->nrules; i++)
        n += eval_rule(al, &al->rules[i], ts.series, now);
    /* a rule removed since: its alerts end */
    for (size_t i = 0; i < al->nact;) {
        size_t k;
        for (k = 0; k < al->nrules && strcmp(al->rules[k].name, al->act[i].rule); k++)
            ;
        if (k < al->nrules) {
            i++;
            continue;
        }
        end_alert(al, &al->act[i], now);
    }
    prune_history(al, now);
    db_exec(al->meta, "COMMIT");
    al->last_round_ms = now;
    al->round_ms = (now_mono_ns() - t0) / 1000000;
    pthread_mutex_unlock(&al->lock);
    return n;
}

void *alert_eval_main(void *arg)
{
    struct alerts *al = arg;
    /* the first round one interval after start: scrapes have come in by then */
    int64_t next = now_mono_ns() / 1000000 + al->cfg.eval_interval_ms;
    for (;;) {
        pthread_mutex_lock(&al->qlock);
        while (!al->stop && now_cond_wait_until(&al->qcond, &al->qlock, next * 1000000) != ETIMEDOUT)
            ;
        int stop = al->stop;
        pthread_mutex_unlock(&al->qlock);
        if (stop)
            break;
        alerts_eval_now(al, now_wall_ms());
        next += al->cfg.eval_interval_ms;
    }
    return NULL;
}

void alert_states_load(struct alerts *al)
{
    json_error_t jerr;
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT id, rule, series, labels, annotations, state, value,"
                                            " active_ms, fired_ms FROM alerts WHERE state IN ('pending', 'firing')");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        if (al->nact == al->capact) {
            al->capact = al->capact ? al->capact * 2 : 64;
            al->act = xrealloc(al->act, al->capact * sizeof(*al->act));
        }
        struct active *a = &al->act[al->nact++];
        memset(a, 0, sizeof(*a));
        a->id = sqlite3_column_int64(st, 0);
        a->rule = xstrdup((const char *)sqlite3_column_text(st, 1));
        a->series = xstrdup((const char *)sqlite3_column_text(st, 2));
        a->labels = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
        a->annotations = json_loads((const char *)sqlite3_column_text(st, 4), 0, &jerr);
        if (!a->labels)
            a->labels = json_object();
        if (!a->annotations)
            a->annotations = json_object();
        a->firing = !strcmp((const char *)sqlite3_column_text(st, 5), "firing");
        a->value = sqlite3_column_double(st, 6);
        a->active_ms = sqlite3_column_int64(st, 7);
        a->fired_ms = sqlite3_column_int64(st, 8);
    }
    sqlite3_finalize(st);
    if (al->nact)
        log_info("alerts: %zu pending or firing alerts carried over", al->nact);
}
