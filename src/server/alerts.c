/* Alert rules, their evaluation over the store, states that survive a
 * restart, silences, acknowledgement and webhook notifications. */
#include "alerts.h"

#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/buf.h"
#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "../lib/yamljson.h"
#include "api/api.h"
#include "store/db.h"
#include "store/selector.h"
#include "store/tsdb.h"

#define MAX_RULES 1000
#define MAX_SERIES_PER_RULE 20000
#define STALE_MS (5 * 60000)
#define MAX_ATTEMPTS 6

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
};

/* The built-in pack: what an operator of NVIDIA fleets watches first.
 * Each rule takes one metric; thresholds are absolute. */
static const char default_rules[] =
    "rules:\n"
    "- {name: GpuTemperatureHigh, metric: DCGM_FI_DEV_GPU_TEMP, agg: avg, window: 1m, op: '>', threshold: 85,"
    " for: 2m, severity: critical, annotations: {summary: 'GPU {{ $labels.gpu }} on {{ $host }} at {{ $value }} C'}}\n"
    "- {name: GpuMemoryTemperatureHigh, metric: DCGM_FI_DEV_MEMORY_TEMP, agg: avg, window: 1m, op: '>',"
    " threshold: 95, for: 2m, severity: critical, annotations: {summary: 'HBM of GPU {{ $labels.gpu }} on {{ $host }} at {{ $value }} C'}}\n"
    "- {name: GpuXidError, metric: gpufleet_gpu_xid_errors_total, agg: rate, window: 5m, op: '>', threshold: 0,"
    " severity: warning, annotations: {summary: 'XID errors on GPU {{ $labels.gpu }} of {{ $host }}'}}\n"
    "- {name: GpuEccDoubleBit, metric: DCGM_FI_DEV_ECC_DBE_VOL_TOTAL, op: '>', threshold: 0,"
    " severity: critical, annotations: {summary: 'double-bit ECC errors on GPU {{ $labels.gpu }} of {{ $host }}'}}\n"
    "- {name: GpuRowRemapPending, metric: DCGM_FI_DEV_ROW_REMAP_PENDING, op: '>', threshold: 0,"
    " severity: warning, annotations: {summary: 'GPU {{ $labels.gpu }} of {{ $host }} needs a reset to remap rows'}}\n"
    "- {name: GpuRowRemapFailed, metric: DCGM_FI_DEV_ROW_REMAP_FAILURE, op: '>', threshold: 0,"
    " severity: critical, annotations: {summary: 'row remapping failed on GPU {{ $labels.gpu }} of {{ $host }}'}}\n"
    "- {name: GpuLost, metric: gpufleet_gpu_lost, op: '>', threshold: 0, severity: critical,"
    " annotations: {summary: 'GPU {{ $labels.gpu }} of {{ $host }} fell off the bus'}}\n"
    "- {name: GpuPowerCapped, metric: 'gpufleet_gpu_clock_event_reason_active{reason=\"sw_power_cap\"}', agg: avg,"
    " window: 15m, op: '>', threshold: 0.9, for: 15m, severity: info,"
    " annotations: {summary: 'GPU {{ $labels.gpu }} of {{ $host }} held at its power limit'}}\n"
    "- {name: GpuMemoryNearlyFull, metric: DCGM_FI_DEV_FB_FREE, op: '<', threshold: 1024, for: 10m,"
    " severity: warning, annotations: {summary: 'GPU {{ $labels.gpu }} of {{ $host }}: {{ $value }} MiB free'}}\n"
    "- {name: TargetDown, metric: up, op: '==', threshold: 0, for: 1m, severity: critical,"
    " annotations: {summary: '{{ $labels.job }} on {{ $labels.instance }} does not answer'}}\n"
    "- {name: HostDiskNearlyFull, metric: 'node_filesystem_avail_bytes{fstype!~\"tmpfs|overlay|squashfs\"}',"
    " op: '<', threshold: 5e9, for: 10m, severity: warning,"
    " annotations: {summary: '{{ $labels.mountpoint }} on {{ $host }}: {{ $value }} bytes left'}}\n"
    "- {name: HostMemoryPressure, metric: node_memory_MemAvailable_bytes, agg: avg, window: 5m, op: '<',"
    " threshold: 1e9, for: 5m, severity: warning, annotations: {summary: '{{ $host }}: {{ $value }} bytes of memory available'}}\n";

enum agg { AGG_LAST, AGG_AVG, AGG_MIN, AGG_MAX, AGG_RATE };
enum op { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE };

struct rule {
    int64_t id;
    char name[65];
    char source[8];
    json_t *body;
    struct selector sel;
    int agg, op;
    double threshold;
    int64_t window_ms, for_ms;
    char severity[17];
    /* the series the selector matched, kept until the store's series
     * change (or a minute passes) */
    struct tsdb_series_info *ser;
    size_t nser;
    uint64_t ser_count;
    int64_t ser_ms;
};

struct active {
    int64_t id; /* row in alerts */
    char *rule;
    char *series;
    json_t *labels, *annotations;
    int firing;
    double value;
    int64_t active_ms, fired_ms;
    int seen;
};

struct note {
    struct note *next;
    int64_t alert_id, due_ms;
    int attempt;
    char receiver[65], url[2049];
    char *payload;
    char status[12];
};

struct alerts {
    struct alerts_config cfg;
    char *external_url;
    struct tsdb *db;
    sqlite3 *meta;
    pthread_mutex_t lock; /* rules, actives, meta */
    struct rule *rules;
    size_t nrules;
    struct active *act;
    size_t nact, capact;
    pthread_t eval_thread, note_thread;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct note *queue;
    int stop;
};

static void set_err(struct reg_error *e, int status, const char *code, const char *field,
                    const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return;
    e->status = status;
    e->code = code;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

/* ---- rules ---- */

static const char *const agg_names[] = {"last", "avg", "min", "max", "rate"};
static const char *const op_names[] = {">", ">=", "<", "<=", "==", "!="};

static int pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static int valid_rule_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64 || !isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

/* Parses a rule; fills r when not NULL (its selector must then be freed). */
static int parse_rule(const json_t *j, const char *prefix, struct rule *r, struct reg_error *e)
{
    char where[128], why[160];
    const char *name = json_string_value(json_object_get(j, "name"));
    struct selector sel;
    int64_t ms;
    json_t *v;

    if (!json_is_object(j)) {
        set_err(e, 400, "invalid_field", prefix, "%s: a rule must be a mapping", prefix);
        return -1;
    }
    snprintf(where, sizeof(where), "%s (%.64s)", prefix, name ? name : "unnamed");
    static const char *known[] = {"name", "metric", "agg", "window", "op", "threshold", "for",
                                  "severity", "labels", "annotations"};
    const char *k;
    json_object_foreach((json_t *)j, k, v)
    {
        size_t i;
        for (i = 0; i < sizeof(known) / sizeof(known[0]) && strcmp(k, known[i]); i++)
            ;
        if (i == sizeof(known) / sizeof(known[0])) {
            set_err(e, 400, "invalid_field", k, "%s.%.64s: unknown field", where, k);
            return -1;
        }
    }
    if (!valid_rule_name(name)) {
        set_err(e, 400, "invalid_field", "name", "%s.name: 1-64 of letters, digits, '_', starting with a letter", where);
        return -1;
    }
    const char *metric = json_string_value(json_object_get(j, "metric"));
    if (!metric || strlen(metric) > 1024) {
        set_err(e, 400, "invalid_field", "metric", "%s.metric: a series selector is required", where);
        return -1;
    }
    if (sel_parse(metric, &sel, why, sizeof(why)) < 0) {
        sel_free(&sel);
        set_err(e, 400, "invalid_field", "metric", "%s.metric: %s", where, why);
        return -1;
    }
    int agg = AGG_LAST, op;
    if ((v = json_object_get(j, "agg")) && (agg = pick(json_string_value(v), agg_names, 5)) < 0) {
        sel_free(&sel);
        set_err(e, 400, "invalid_field", "agg", "%s.agg: one of last, avg, min, max, rate", where);
        return -1;
    }
    if ((op = pick(json_string_value(json_object_get(j, "op")), op_names, 6)) < 0) {
        sel_free(&sel);
        set_err(e, 400, "invalid_field", "op", "%s.op: one of > >= < <= == !=", where);
        return -1;
    }
    v = json_object_get(j, "threshold");
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        sel_free(&sel);
        set_err(e, 400, "invalid_field", "threshold", "%s.threshold: a number is required", where);
        return -1;
    }
    int64_t window = 60000, forms = 0;
    if ((v = json_object_get(j, "window"))) {
        if (!json_is_string(v) || api_parse_duration(json_string_value(v), &ms) < 0 || ms > 86400000) {
            sel_free(&sel);
            set_err(e, 400, "invalid_field", "window", "%s.window: a duration up to 24h, such as 5m", where);
            return -1;
        }
        window = ms;
    }
    if ((v = json_object_get(j, "for"))) {
        if (!json_is_string(v) || api_parse_duration(json_string_value(v), &ms) < 0 || ms > 7 * 86400000LL) {
            sel_free(&sel);
            set_err(e, 400, "invalid_field", "for", "%s.for: a duration up to 7d, such as 2m", where);
            return -1;
        }
        forms = ms;
    }
    const char *sev = json_string_value(json_object_get(j, "severity"));
    if ((v = json_object_get(j, "severity")) && (!sev || !*sev || strlen(sev) > 16)) {
        sel_free(&sel);
        set_err(e, 400, "invalid_field", "severity", "%s.severity: 1-16 characters", where);
        return -1;
    }
    const char *obj_fields[] = {"labels", "annotations"};
    for (int f = 0; f < 2; f++) {
        v = json_object_get(j, obj_fields[f]);
        const char *lk;
        json_t *lv;
        if (!v)
            continue;
        if (!json_is_object(v) || json_object_size(v) > 32) {
            sel_free(&sel);
            set_err(e, 400, "invalid_field", obj_fields[f], "%s.%s: a mapping of up to 32 strings", where, obj_fields[f]);
            return -1;
        }
        json_object_foreach(v, lk, lv)
        {
            if (!json_is_string(lv) || strlen(json_string_value(lv)) > 1024 || strlen(lk) > 64) {
                sel_free(&sel);
                set_err(e, 400, "invalid_field", obj_fields[f], "%s.%s.%.64s: a string of up to 1024 bytes",
                        where, obj_fields[f], lk);
                return -1;
            }
        }
    }
    if (!r) {
        sel_free(&sel);
        return 0;
    }
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->sel = sel;
    r->agg = agg;
    r->op = op;
    r->threshold = json_number_value(json_object_get(j, "threshold"));
    r->window_ms = window;
    r->for_ms = forms;
    snprintf(r->severity, sizeof(r->severity), "%s", sev ? sev : "warning");
    r->body = json_deep_copy(j);
    return 0;
}

int alert_rule_check(const json_t *rule, const char *prefix, struct reg_error *err)
{
    return parse_rule(rule, prefix, NULL, err);
}

/* The rules of a YAML document, checked; a new reference or NULL. */
static json_t *rules_of_yaml(const char *text, size_t len, struct reg_error *e)
{
    char why[200], where[32];
    json_t *doc = yaml_to_json(text, len, why, sizeof(why));
    json_t *rules = doc ? json_object_get(doc, "rules") : NULL;
    size_t i;
    json_t *r;

    if (!doc) {
        set_err(e, 400, "invalid_body", "rules", "rules: %s", why);
        return NULL;
    }
    if (!json_is_array(rules) || json_array_size(rules) > MAX_RULES) {
        json_decref(doc);
        set_err(e, 400, "invalid_field", "rules", "rules: a list of at most %d rules is required", MAX_RULES);
        return NULL;
    }
    json_array_foreach(rules, i, r)
    {
        snprintf(where, sizeof(where), "rules[%zu]", i);
        if (parse_rule(r, where, NULL, e) < 0) {
            json_decref(doc);
            return NULL;
        }
        for (size_t k = 0; k < i; k++)
            if (json_equal(json_object_get(json_array_get(rules, k), "name"), json_object_get(r, "name"))) {
                set_err(e, 400, "invalid_field", "name", "%s: the name %s is used twice", where,
                        json_string_value(json_object_get(r, "name")));
                json_decref(doc);
                return NULL;
            }
    }
    json_incref(rules);
    json_decref(doc);
    return rules;
}

int alert_rules_check_yaml(const char *text, size_t len, struct reg_error *err)
{
    json_t *r = rules_of_yaml(text, len, err);
    json_decref(r);
    return r ? 0 : -1;
}

char *alert_template(const char *t, const json_t *labels, double value)
{
    struct buf out;
    buf_init(&out, 64 * 1024);
    while (*t) {
        const char *open = strstr(t, "{{");
        const char *close = open ? strstr(open, "}}") : NULL;
        if (!open || !close) {
            buf_puts(&out, t);
            break;
        }
        buf_append(&out, t, (size_t)(open - t));
        char expr[128];
        size_t n = (size_t)(close - open - 2);
        snprintf(expr, sizeof(expr), "%.*s", (int)(n < sizeof(expr) - 1 ? n : sizeof(expr) - 1), open + 2);
        char *x = expr + strspn(expr, " ");
        x[strcspn(x, " ")] = '\0';
        if (!strcmp(x, "$value")) {
            buf_printf(&out, "%.4g", value);
        } else if (!strncmp(x, "$labels.", 8)) {
            const char *lv = json_string_value(json_object_get(labels, x + 8));
            buf_puts(&out, lv ? lv : "");
        } else if (!strcmp(x, "$host")) {
            const char *h = json_string_value(json_object_get(labels, "Hostname"));
            if (!h)
                h = json_string_value(json_object_get(labels, "server"));
            if (!h)
                h = json_string_value(json_object_get(labels, "instance"));
            buf_puts(&out, h ? h : "");
        } else {
            buf_append(&out, open, (size_t)(close + 2 - open));
        }
        t = close + 2;
    }
    size_t len;
    char *s = buf_detach(&out, &len);
    return s ? s : xstrdup("");
}

/* ---- storage helpers ---- */

static char *dumps(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    return s ? s : xstrdup("{}");
}

static int store_rule(struct alerts *al, const char *name, const char *source, const json_t *body)
{
    char *text = dumps(body);
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO rules (name, source, body, updated_ms) VALUES (?, ?, ?, ?)"
                                            " ON CONFLICT (name) DO UPDATE SET source = excluded.source,"
                                            " body = excluded.body, updated_ms = excluded.updated_ms");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, now_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    free(text);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void free_rules(struct alerts *al)
{
    for (size_t i = 0; i < al->nrules; i++) {
        sel_free(&al->rules[i].sel);
        json_decref(al->rules[i].body);
        for (size_t k = 0; k < al->rules[i].nser; k++)
            free(al->rules[i].ser[k].key);
        free(al->rules[i].ser);
    }
    free(al->rules);
    al->rules = NULL;
    al->nrules = 0;
}

/* Reads every stored rule into memory. Called with the lock held. */
static void load_rules(struct alerts *al)
{
    struct reg_error e;
    json_error_t jerr;

    free_rules(al);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT id, name, source, body FROM rules ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *body = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
        struct rule r;
        if (body && parse_rule(body, (const char *)sqlite3_column_text(st, 1), &r, &e) == 0) {
            r.id = sqlite3_column_int64(st, 0);
            snprintf(r.source, sizeof(r.source), "%s", (const char *)sqlite3_column_text(st, 2));
            al->rules = xrealloc(al->rules, (al->nrules + 1) * sizeof(*al->rules));
            al->rules[al->nrules++] = r;
        }
        json_decref(body);
    }
    sqlite3_finalize(st);
}

/* Replaces the rules of a source (file, default) with those of a document. */
static int install_rules(struct alerts *al, const char *source, const char *text, size_t len,
                         char *err, size_t errlen)
{
    struct reg_error e;
    json_t *rules = rules_of_yaml(text, len, &e), *r;
    size_t i;

    if (!rules) {
        snprintf(err, errlen, "%s", e.message);
        return -1;
    }
    /* upserts keep each rule's id from one start to the next */
    json_t *names = json_array();
    json_array_foreach(rules, i, r)
    {
        store_rule(al, json_string_value(json_object_get(r, "name")), source, r);
        json_array_append(names, json_object_get(r, "name"));
    }
    char *list = dumps(names);
    sqlite3_stmt *st = db_prepare(al->meta, "DELETE FROM rules WHERE source = ? AND name NOT IN"
                                            " (SELECT value FROM json_each(?))");
    sqlite3_bind_text(st, 1, source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, list, -1, SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_finalize(st);
    free(list);
    json_decref(names);
    json_decref(rules);
    return 0;
}

/* ---- evaluation ---- */

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
 * Recent samples come from memory; SQLite only when the head is young. */
static int series_value(struct alerts *al, const struct rule *r, uint64_t id, int64_t now, double *out)
{
    struct tsdb_point *p = NULL;
    int64_t ts;
    int covered, rc = -1;

    if (r->agg == AGG_LAST && tsdb_last(al->db, id, &ts, out) == 0 && ts <= now) {
        /* the usual case: the newest sample, from memory */
        return now - ts > STALE_MS || isnan(*out) ? -1 : 0;
    }
    int64_t look = r->agg == AGG_LAST ? STALE_MS : r->window_ms;
    long n = tsdb_recent(al->db, id, now - look, now, &p, &covered);
    if (!covered)
        n = tsdb_points(al->db, id, TSDB_RAW, now - look, now, &p);
    if (n > 0 && r->agg == AGG_LAST) {
        *out = p[n - 1].last;
        rc = isnan(*out) ? -1 : 0;
        goto out;
    }
    if (n <= 0)
        goto out;
    double sum = 0, cnt = 0, mn = INFINITY, mx = -INFINITY, inc = 0;
    for (long i = 0; i < n; i++) {
        if (isnan(p[i].last))
            continue;
        sum += p[i].sum;
        cnt += p[i].count;
        mn = fmin(mn, p[i].min);
        mx = fmax(mx, p[i].max);
        if (i > 0)
            inc += p[i].inc;
    }
    if (cnt == 0)
        goto out;
    *out = r->agg == AGG_AVG ? sum / cnt : r->agg == AGG_MIN ? mn : r->agg == AGG_MAX ? mx
                                                               : inc / (r->window_ms / 1000.0);
    rc = 0;
out:
    free(p);
    return rc;
}

/* idx maps the series of one rule's alerts to their place in al->act */
static struct active *find_active(struct alerts *al, json_t *idx, const char *series)
{
    json_t *v = json_object_get(idx, series);
    return v ? &al->act[json_integer_value(v)] : NULL;
}

static void drop_active(struct alerts *al, struct active *a)
{
    free(a->rule);
    free(a->series);
    json_decref(a->labels);
    json_decref(a->annotations);
    *a = al->act[--al->nact];
}

static json_t *series_labels(const char *key)
{
    struct buf b;
    json_error_t jerr;
    buf_init(&b, 0);
    tsdb_key_to_json(key, &b);
    json_t *j = json_loadb(b.data ? b.data : "{}", b.len, 0, &jerr);
    buf_free(&b);
    if (!j)
        j = json_object();
    json_t *name = json_object_get(j, "__name__");
    if (name) {
        json_object_set(j, "metric", name);
        json_object_del(j, "__name__");
    }
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

static void rfc3339(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0) {
        snprintf(out, n, "0001-01-01T00:00:00Z");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    size_t l = strlen(out);
    snprintf(out + l, n - l, ".%03dZ", (int)(ms % 1000));
}

/* Alertmanager's webhook payload, version 4, for one alert. */
static char *payload(struct alerts *al, const char *receiver, const char *status, const json_t *labels,
                     const json_t *annotations, int64_t starts_ms, int64_t ends_ms)
{
    char s[40], e[40], fp[17];
    char *lt = dumps(labels);
    snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)hash_bytes(lt, strlen(lt)));
    free(lt);
    rfc3339(starts_ms, s, sizeof(s));
    rfc3339(ends_ms, e, sizeof(e));
    json_t *group = json_pack("{s:O}", "alertname", json_object_get(labels, "alertname"));
    /* Alertmanager's form: {route matchers}:{group labels} */
    char gk[200];
    const char *an = json_string_value(json_object_get(labels, "alertname"));
    snprintf(gk, sizeof(gk), "{}:{alertname=\"%.150s\"}", an ? an : "");
    json_t *alert = json_pack("{s:s, s:O, s:O, s:s, s:s, s:s, s:s}", "status", status, "labels", labels,
                              "annotations", annotations, "startsAt", s, "endsAt", e, "generatorURL",
                              al->external_url, "fingerprint", fp);
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s, s:o, s:O, s:O, s:s, s:[o]}", "version", "4",
                          "groupKey", gk, "truncatedAlerts", 0, "status", status, "receiver", receiver,
                          "groupLabels", group, "commonLabels", labels, "commonAnnotations", annotations,
                          "externalURL", al->external_url, "alerts", alert);
    char *text = dumps(p);
    json_decref(p);
    return text;
}

static void enqueue(struct alerts *al, int64_t alert_id, const char *status, const json_t *labels,
                    const json_t *annotations, int64_t starts_ms, int64_t ends_ms)
{
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name, url FROM receivers ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        struct note *n = xcalloc(1, sizeof(*n));
        snprintf(n->receiver, sizeof(n->receiver), "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(n->url, sizeof(n->url), "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(n->status, sizeof(n->status), "%s", status);
        n->alert_id = alert_id;
        n->payload = payload(al, n->receiver, status, labels, annotations, starts_ms, ends_ms);
        pthread_mutex_lock(&al->qlock);
        n->next = al->queue;
        al->queue = n;
        pthread_cond_signal(&al->qcond);
        pthread_mutex_unlock(&al->qlock);
    }
    sqlite3_finalize(st);
}

static void update_alert(struct alerts *al, const struct active *a, const char *state, int64_t resolved_ms)
{
    char *ann = dumps(a->annotations);
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

static void observe(struct alerts *al, json_t *idx, const struct rule *r, const char *key, double v,
                    int64_t now)
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
        a->labels = series_labels(key);
        const char *lk;
        json_t *lv;
        json_object_foreach(json_object_get(r->body, "labels"), lk, lv)
            json_object_set(a->labels, lk, lv);
        json_object_set_new(a->labels, "alertname", json_string(r->name));
        json_object_set_new(a->labels, "severity", json_string(r->severity));
        a->active_ms = now;
        a->value = v;
        annotate(r, a);
        char *lt = dumps(a->labels), *at = dumps(a->annotations);
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
        free(lt);
        free(at);
    }
    a->seen = 1;
    a->value = v;
    if (!a->firing && now - a->active_ms >= r->for_ms) {
        a->firing = 1;
        a->fired_ms = now;
        annotate(r, a);
        update_alert(al, a, "firing", 0);
        log_info("alert %s firing: %s = %g", r->name, a->series, v);
        if (!silenced(al, a->labels, now))
            enqueue(al, a->id, "firing", a->labels, a->annotations, a->fired_ms, 0);
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
    r->ser_count = count;
    r->ser_ms = now;
}

static size_t eval_rule(struct alerts *al, struct rule *r, uint64_t count, int64_t now)
{
    refresh_series(al, r, count, now);
    struct tsdb_series_info *ser = r->ser;
    size_t n = r->nser;

    json_t *idx = json_object();
    for (size_t i = 0; i < al->nact; i++)
        if (!strcmp(al->act[i].rule, r->name)) {
            al->act[i].seen = 0;
            json_object_set_new(idx, al->act[i].series, json_integer((json_int_t)i));
        }
    for (size_t i = 0; i < n; i++) {
        double v;
        if (series_value(al, r, ser[i].id, now, &v) == 0 && compare(v, r->op, r->threshold))
            observe(al, idx, r, ser[i].key, v, now);
    }
    json_decref(idx);
    for (size_t i = 0; i < al->nact;) {
        struct active *a = &al->act[i];
        if (strcmp(a->rule, r->name) || a->seen) {
            i++;
            continue;
        }
        if (a->firing) {
            update_alert(al, a, "resolved", now);
            log_info("alert %s resolved: %s", a->rule, a->series);
            if (!silenced(al, a->labels, now))
                enqueue(al, a->id, "resolved", a->labels, a->annotations, a->fired_ms, now);
        } else {
            sqlite3_stmt *st = db_prepare(al->meta, "DELETE FROM alerts WHERE id = ?");
            sqlite3_bind_int64(st, 1, a->id);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
        drop_active(al, a);
    }
    return n;
}

size_t alerts_eval_now(struct alerts *al, int64_t now)
{
    size_t n = 0;
    struct tsdb_stats ts;
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
        update_alert(al, &al->act[i], "resolved", now);
        drop_active(al, &al->act[i]);
    }
    db_exec(al->meta, "COMMIT");
    pthread_mutex_unlock(&al->lock);
    return n;
}

static void *eval_main(void *arg)
{
    struct alerts *al = arg;
    /* the first round one interval after start: scrapes have come in by then */
    int64_t next = now_mono_ns() / 1000000 + al->cfg.eval_interval_ms;
    for (;;) {
        pthread_mutex_lock(&al->qlock);
        while (!al->stop && now_mono_ns() / 1000000 < next) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t wait = next - now_mono_ns() / 1000000;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&al->qcond, &al->qlock, &ts);
        }
        int stop = al->stop;
        pthread_mutex_unlock(&al->qlock);
        if (stop)
            break;
        alerts_eval_now(al, now_wall_ms());
        next += al->cfg.eval_interval_ms;
    }
    return NULL;
}

/* ---- notifications ---- */

static size_t discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

/* POSTs a payload; returns the HTTP status, or -1 with err. */
static long post_json(const char *url, const char *body, char *err, size_t errlen)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = -1;

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(e);
    if (cc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

static void log_attempt(struct alerts *al, const struct note *n, long status, const char *err)
{
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO notifications (ts_ms, receiver, alert_id, status,"
                                            " attempt, result, http_status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(st, 1, now_wall_ms());
    sqlite3_bind_text(st, 2, n->receiver, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, n->alert_id);
    sqlite3_bind_text(st, 4, n->status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, n->attempt);
    sqlite3_bind_text(st, 6, status >= 200 && status < 300 ? "ok" : "error", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, (int)status);
    sqlite3_bind_text(st, 8, err, -1, SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
}

static void *note_main(void *arg)
{
    struct alerts *al = arg;
    pthread_mutex_lock(&al->qlock);
    while (!al->stop) {
        int64_t now = now_mono_ns() / 1000000, next = now + 1000;
        struct note **pp = &al->queue, *due = NULL;
        for (; *pp; pp = &(*pp)->next)
            if ((*pp)->due_ms <= now) {
                due = *pp;
                *pp = due->next;
                break;
            } else if ((*pp)->due_ms < next) {
                next = (*pp)->due_ms;
            }
        if (!due) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (next - now) * 1000000;
            ts.tv_sec += ts.tv_nsec / 1000000000;
            ts.tv_nsec %= 1000000000;
            pthread_cond_timedwait(&al->qcond, &al->qlock, &ts);
            continue;
        }
        pthread_mutex_unlock(&al->qlock);
        char err[256] = "";
        due->attempt++;
        long status = post_json(due->url, due->payload, err, sizeof(err));
        if (status >= 0 && (status < 200 || status >= 300))
            snprintf(err, sizeof(err), "HTTP %ld", status);
        log_attempt(al, due, status, err);
        int retry = (status < 200 || status >= 300) && due->attempt < MAX_ATTEMPTS;
        if (!retry) {
            if (status < 200 || status >= 300)
                log_warn("alerts: %s to %s failed after %d attempts: %s", due->status, due->receiver,
                         due->attempt, err);
            free(due->payload);
            free(due);
        }
        pthread_mutex_lock(&al->qlock);
        if (retry) {
            due->due_ms = now_mono_ns() / 1000000 + (500LL << (due->attempt - 1));
            due->next = al->queue;
            al->queue = due;
        }
    }
    pthread_mutex_unlock(&al->qlock);
    return NULL;
}

/* ---- start / stop ---- */

static void load_states(struct alerts *al)
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

struct alerts *alerts_start(const char *path, const struct alerts_config *cfg, struct tsdb *db,
                            char *err, size_t errlen)
{
    struct alerts *al = xcalloc(1, sizeof(*al));
    char *text = NULL;

    al->cfg = *cfg;
    al->db = db;
    al->external_url = xstrdup(cfg->external_url ? cfg->external_url : "");
    if (al->cfg.eval_interval_ms <= 0)
        al->cfg.eval_interval_ms = 5000;
    al->meta = db_open(path, steps, sizeof(steps) / sizeof(steps[0]), err, errlen);
    if (!al->meta)
        goto fail;
    pthread_mutex_init(&al->lock, NULL);
    pthread_mutex_init(&al->qlock, NULL);
    pthread_cond_init(&al->qcond, NULL);
    if (install_rules(al, "default", cfg->default_rules ? default_rules : "rules: []\n",
                      strlen(cfg->default_rules ? default_rules : "rules: []\n"), err, errlen) < 0)
        goto fail_db;
    if (cfg->rules_file) {
        FILE *f = fopen(cfg->rules_file, "r");
        size_t n = 0;
        if (!f) {
            snprintf(err, errlen, "alert_rules_file: cannot open %s", cfg->rules_file);
            goto fail_db;
        }
        text = xcalloc(1, 4 << 20);
        n = fread(text, 1, (4 << 20) - 1, f);
        fclose(f);
        char why[400];
        if (install_rules(al, "file", text, n, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "alert_rules_file %s: %s", cfg->rules_file, why);
            goto fail_db;
        }
    } else {
        db_exec(al->meta, "DELETE FROM rules WHERE source = 'file'");
    }
    free(text);
    text = NULL;
    load_rules(al);
    load_states(al);
    pthread_create(&al->note_thread, NULL, note_main, al);
    pthread_create(&al->eval_thread, NULL, eval_main, al);
    log_info("alerts: %zu rules, evaluated every %lld ms", al->nrules,
             (long long)al->cfg.eval_interval_ms);
    return al;
fail_db:
    sqlite3_close(al->meta);
fail:
    free(text);
    free(al->external_url);
    free(al);
    return NULL;
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
        free(n->payload);
        free(n);
    }
    while (al->nact)
        drop_active(al, &al->act[0]);
    free(al->act);
    free_rules(al);
    sqlite3_close(al->meta);
    free(al->external_url);
    free(al);
}

/* ---- API ---- */

static json_t *rule_json(const struct rule *r)
{
    json_t *j = json_deep_copy(r->body);
    json_object_set_new(j, "id", json_integer(r->id));
    json_object_set_new(j, "source", json_string(r->source));
    return j;
}

json_t *alerts_rules_list(struct alerts *al)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&al->lock);
    for (size_t i = 0; i < al->nrules; i++)
        json_array_append_new(arr, rule_json(&al->rules[i]));
    pthread_mutex_unlock(&al->lock);
    return arr;
}

static json_t *rule_by_name(struct alerts *al, const char *name)
{
    for (size_t i = 0; i < al->nrules; i++)
        if (!strcmp(al->rules[i].name, name))
            return rule_json(&al->rules[i]);
    return NULL;
}

json_t *alerts_rule_create(struct alerts *al, const json_t *body, struct reg_error *err)
{
    json_t *out = NULL;
    if (parse_rule(body, "rule", NULL, err) < 0)
        return NULL;
    const char *name = json_string_value(json_object_get(body, "name"));
    pthread_mutex_lock(&al->lock);
    json_t *old = rule_by_name(al, name);
    if (old) {
        json_decref(old);
        set_err(err, 409, "conflict", "name", "a rule named %s exists", name);
    } else if (store_rule(al, name, "api", body) == 0) {
        load_rules(al);
        out = rule_by_name(al, name);
    } else {
        set_err(err, 500, "internal", NULL, "cannot store the rule");
    }
    pthread_mutex_unlock(&al->lock);
    return out;
}

static int api_rule_source(struct alerts *al, int64_t id, char *name, size_t n, struct reg_error *err)
{
    for (size_t i = 0; i < al->nrules; i++)
        if (al->rules[i].id == id) {
            if (strcmp(al->rules[i].source, "api")) {
                set_err(err, 409, "conflict", "id", "rule %s comes from the %s rules; change it there",
                        al->rules[i].name, al->rules[i].source);
                return -1;
            }
            snprintf(name, n, "%s", al->rules[i].name);
            return 0;
        }
    set_err(err, 404, "not_found", "id", "no rule with id %lld", (long long)id);
    return -1;
}

json_t *alerts_rule_update(struct alerts *al, int64_t id, const json_t *body, struct reg_error *err)
{
    char name[65];
    json_t *out = NULL;
    if (parse_rule(body, "rule", NULL, err) < 0)
        return NULL;
    pthread_mutex_lock(&al->lock);
    if (api_rule_source(al, id, name, sizeof(name), err) == 0) {
        if (strcmp(name, json_string_value(json_object_get(body, "name")))) {
            set_err(err, 400, "invalid_field", "name", "a rule keeps its name (%s)", name);
        } else {
            store_rule(al, name, "api", body);
            load_rules(al);
            out = rule_by_name(al, name);
        }
    }
    pthread_mutex_unlock(&al->lock);
    return out;
}

int alerts_rule_delete(struct alerts *al, int64_t id, struct reg_error *err)
{
    char name[65];
    int rc = -1;
    pthread_mutex_lock(&al->lock);
    if (api_rule_source(al, id, name, sizeof(name), err) == 0) {
        sqlite3_stmt *st = db_prepare(al->meta, "DELETE FROM rules WHERE id = ?");
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
        load_rules(al);
    }
    pthread_mutex_unlock(&al->lock);
    return rc;
}

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

json_t *alerts_ack(struct alerts *al, int64_t id, const char *by, const char *comment,
                   struct reg_error *err)
{
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "UPDATE alerts SET ack_by = ?, ack_ms = ?, ack_comment = ?"
                                            " WHERE id = ? AND state = 'firing'");
    sqlite3_bind_text(st, 1, by, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now_wall_ms());
    sqlite3_bind_text(st, 3, comment ? comment : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, id);
    sqlite3_step(st);
    int changed = sqlite3_changes(al->meta);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    if (!changed) {
        set_err(err, 404, "not_found", "id", "no firing alert with id %lld", (long long)id);
        return NULL;
    }
    return json_pack("{s:I, s:s}", "id", (json_int_t)id, "ack_by", by);
}

json_t *alerts_silence_create(struct alerts *al, const json_t *body, const char *by, struct reg_error *err)
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
        set_err(err, 400, "invalid_field", "matchers", "matchers: a selector such as {alertname=\"GpuTemperatureHigh\",Hostname=\"gpu-7\"}");
        return NULL;
    }
    sel_free(&sel);
    if ((v = json_object_get(body, "starts_at")) && api_parse_time(json_string_value(v), &starts) < 0) {
        set_err(err, 400, "invalid_field", "starts_at", "starts_at: RFC 3339 or Unix seconds");
        return NULL;
    }
    if ((v = json_object_get(body, "ends_at")) && api_parse_time(json_string_value(v), &ends) < 0) {
        set_err(err, 400, "invalid_field", "ends_at", "ends_at: RFC 3339 or Unix seconds");
        return NULL;
    }
    if ((v = json_object_get(body, "duration"))) {
        if (api_parse_duration(json_string_value(v), &dur) < 0) {
            set_err(err, 400, "invalid_field", "duration", "duration: such as 2h");
            return NULL;
        }
        ends = starts + dur;
    }
    if (ends <= starts || ends <= now) {
        set_err(err, 400, "invalid_field", "ends_at", "a silence needs an end in the future (ends_at or duration)");
        return NULL;
    }
    if (c && strlen(c) > 1024) {
        set_err(err, 400, "invalid_field", "comment", "comment: at most 1024 bytes");
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

static int delete_row(struct alerts *al, const char *sql, int64_t id, const char *what, struct reg_error *err)
{
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, sql);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_step(st);
    int changed = sqlite3_changes(al->meta);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    if (!changed) {
        set_err(err, 404, "not_found", "id", "no %s with id %lld", what, (long long)id);
        return -1;
    }
    return 0;
}

int alerts_silence_delete(struct alerts *al, int64_t id, struct reg_error *err)
{
    return delete_row(al, "DELETE FROM silences WHERE id = ?", id, "silence", err);
}

json_t *alerts_receivers_list(struct alerts *al)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT id, name, type, url FROM receivers ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                                             "name", (const char *)sqlite3_column_text(st, 1), "type",
                                             (const char *)sqlite3_column_text(st, 2), "url",
                                             (const char *)sqlite3_column_text(st, 3)));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    return arr;
}

json_t *alerts_receiver_create(struct alerts *al, const json_t *body, struct reg_error *err)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *type = json_string_value(json_object_get(body, "type"));
    const char *url = json_string_value(json_object_get(body, "url"));

    if (!valid_rule_name(name) && !(name && strlen(name) <= 64 && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == strlen(name) && *name)) {
        set_err(err, 400, "invalid_field", "name", "name: 1-64 of letters, digits, '_', '-', '.'");
        return NULL;
    }
    if (type && strcmp(type, "webhook")) {
        set_err(err, 400, "invalid_field", "type", "type: webhook (Alertmanager payload) is what exists so far");
        return NULL;
    }
    if (!url || strlen(url) > 2048 || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) ||
        strpbrk(url, " \t\r\n")) {
        set_err(err, 400, "invalid_field", "url", "url: an http:// or https:// URL");
        return NULL;
    }
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO receivers (name, type, url, created_ms) VALUES (?, 'webhook', ?, ?)");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    int64_t id = sqlite3_last_insert_rowid(al->meta);
    pthread_mutex_unlock(&al->lock);
    if (rc != SQLITE_DONE) {
        set_err(err, 409, "conflict", "name", "a receiver named %s exists", name);
        return NULL;
    }
    return json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "name", name, "type", "webhook", "url", url);
}

int alerts_receiver_delete(struct alerts *al, int64_t id, struct reg_error *err)
{
    return delete_row(al, "DELETE FROM receivers WHERE id = ?", id, "receiver", err);
}

int alerts_receiver_test(struct alerts *al, int64_t id, struct reg_error *err)
{
    struct note n = {.attempt = 1};
    char e[256] = "";
    int found = 0;

    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name, url FROM receivers WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(n.receiver, sizeof(n.receiver), "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(n.url, sizeof(n.url), "%s", (const char *)sqlite3_column_text(st, 1));
        found = 1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    if (!found) {
        set_err(err, 404, "not_found", "id", "no receiver with id %lld", (long long)id);
        return -1;
    }
    json_t *labels = json_pack("{s:s, s:s}", "alertname", "GpufleetTestNotification", "severity", "info");
    json_t *ann = json_pack("{s:s}", "summary", "a test from gpufleet: this receiver works");
    char *body = payload(al, n.receiver, "firing", labels, ann, now_wall_ms(), 0);
    snprintf(n.status, sizeof(n.status), "test");
    long status = post_json(n.url, body, e, sizeof(e));
    if (status >= 0 && (status < 200 || status >= 300))
        snprintf(e, sizeof(e), "HTTP %ld", status);
    log_attempt(al, &n, status, e);
    free(body);
    json_decref(labels);
    json_decref(ann);
    if (status < 200 || status >= 300) {
        set_err(err, 502, "receiver_failed", "url", "the receiver did not take it: %s", e);
        return -1;
    }
    return 0;
}

json_t *alerts_notifications(struct alerts *al, int limit)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT id, ts_ms, receiver, alert_id, status, attempt, result,"
                                            " http_status, error FROM notifications ORDER BY id DESC LIMIT ?");
    sqlite3_bind_int(st, 1, limit > 0 ? limit : 100);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:I, s:I, s:s, s:I, s:s, s:i, s:s, s:i, s:s}", "id",
                           (json_int_t)sqlite3_column_int64(st, 0), "ts_ms",
                           (json_int_t)sqlite3_column_int64(st, 1), "receiver",
                           (const char *)sqlite3_column_text(st, 2), "alert_id",
                           (json_int_t)sqlite3_column_int64(st, 3), "status",
                           (const char *)sqlite3_column_text(st, 4), "attempt", sqlite3_column_int(st, 5),
                           "result", (const char *)sqlite3_column_text(st, 6), "http_status",
                           sqlite3_column_int(st, 7), "error", (const char *)sqlite3_column_text(st, 8)));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    return arr;
}
