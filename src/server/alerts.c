/* Alert rules, their evaluation over the store, states that survive a
 * restart, silences, acknowledgement and webhook notifications. */
#include "alerts.h"

#include <ctype.h>
#include <errno.h>
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
#include "../lib/timefmt.h"
#include "../lib/xalloc.h"
#include "../lib/yamljson.h"
#include "store/agg.h"
#include "store/db.h"
#include "store/selector.h"
#include "store/serieskey.h"
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
    {"receiver settings (slack, email)",
     "ALTER TABLE receivers ADD COLUMN config TEXT NOT NULL DEFAULT '{}';"},
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

enum op { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE };

struct rule {
    int64_t id;
    char name[65];
    char source[8];
    json_t *body;
    struct selector sel;
    enum agg_fn agg;
    int op;
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

/* One delivery to one receiver (retried until it is taken). */
struct note {
    struct note *next;
    int64_t alert_id, due_ms;
    int attempt;
    char receiver[65], type[16], url[2049];
    json_t *config; /* email: from, to, username, password, ca_file */
    char *payload;  /* JSON (webhook, slack) or a whole message (email) */
    char *subject;
    char status[12];
};

/* An alert as a group holds it until its next notification. */
struct group_alert {
    int64_t id;
    int firing;
    int acked; /* someone is on it: no repeats for it */
    json_t *labels, *annotations;
    int64_t starts_ms, ends_ms;
};

/* Alerts notified together: same values of the group_by labels. */
struct notify_group {
    struct notify_group *next;
    char *key;
    json_t *group_labels;
    struct group_alert *a;
    size_t n;
    int dirty;
    int64_t flush_ms, last_flush_ms;
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
    struct notify_group *groups; /* under qlock */
    json_t *group_by;            /* label names from cfg.group_by */
    int64_t pruned_ms;
    int stop;
};


/* ---- rules ---- */

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
static int parse_rule(const json_t *j, const char *prefix, struct rule *r, struct errinfo *e)
{
    char where[128], why[160];
    const char *name = json_string_value(json_object_get(j, "name"));
    struct selector sel;
    int64_t ms;
    json_t *v;

    if (!json_is_object(j)) {
        errinfo_set(e, 400, "invalid_field", prefix, "%s: a rule must be a mapping", prefix);
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
            errinfo_set(e, 400, "invalid_field", k, "%s.%.64s: unknown field", where, k);
            return -1;
        }
    }
    if (!valid_rule_name(name)) {
        errinfo_set(e, 400, "invalid_field", "name", "%s.name: 1-64 of letters, digits, '_', starting with a letter", where);
        return -1;
    }
    const char *metric = json_string_value(json_object_get(j, "metric"));
    if (!metric || strlen(metric) > 1024) {
        errinfo_set(e, 400, "invalid_field", "metric", "%s.metric: a series selector is required", where);
        return -1;
    }
    if (sel_parse(metric, &sel, why, sizeof(why)) < 0) {
        sel_free(&sel);
        errinfo_set(e, 400, "invalid_field", "metric", "%s.metric: %s", where, why);
        return -1;
    }
    enum agg_fn agg = AGG_LAST;
    int op;
    if ((v = json_object_get(j, "agg")) && agg_parse(json_string_value(v), &agg) < 0) {
        sel_free(&sel);
        errinfo_set(e, 400, "invalid_field", "agg", "%s.agg: one of %s", where, agg_names());
        return -1;
    }
    if ((op = pick(json_string_value(json_object_get(j, "op")), op_names, 6)) < 0) {
        sel_free(&sel);
        errinfo_set(e, 400, "invalid_field", "op", "%s.op: one of > >= < <= == !=", where);
        return -1;
    }
    v = json_object_get(j, "threshold");
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        sel_free(&sel);
        errinfo_set(e, 400, "invalid_field", "threshold", "%s.threshold: a number is required", where);
        return -1;
    }
    int64_t window = 60000, forms = 0;
    if ((v = json_object_get(j, "window"))) {
        if (!json_is_string(v) || timefmt_parse_duration(json_string_value(v), &ms) < 0 || ms > 86400000) {
            sel_free(&sel);
            errinfo_set(e, 400, "invalid_field", "window", "%s.window: a duration up to 24h, such as 5m", where);
            return -1;
        }
        window = ms;
    }
    if ((v = json_object_get(j, "for"))) {
        if (!json_is_string(v) || timefmt_parse_duration(json_string_value(v), &ms) < 0 || ms > 7 * 86400000LL) {
            sel_free(&sel);
            errinfo_set(e, 400, "invalid_field", "for", "%s.for: a duration up to 7d, such as 2m", where);
            return -1;
        }
        forms = ms;
    }
    const char *sev = json_string_value(json_object_get(j, "severity"));
    if ((v = json_object_get(j, "severity")) && (!sev || !*sev || strlen(sev) > 16)) {
        sel_free(&sel);
        errinfo_set(e, 400, "invalid_field", "severity", "%s.severity: 1-16 characters", where);
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
            errinfo_set(e, 400, "invalid_field", obj_fields[f], "%s.%s: a mapping of up to 32 strings", where, obj_fields[f]);
            return -1;
        }
        json_object_foreach(v, lk, lv)
        {
            if (!json_is_string(lv) || strlen(json_string_value(lv)) > 1024 || strlen(lk) > 64) {
                sel_free(&sel);
                errinfo_set(e, 400, "invalid_field", obj_fields[f], "%s.%s.%.64s: a string of up to 1024 bytes",
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

/* The rules of a YAML document, checked; a new reference or NULL. */
static json_t *rules_of_yaml(const char *text, size_t len, struct errinfo *e)
{
    char why[200], where[32];
    json_t *doc = yaml_to_json(text, len, why, sizeof(why));
    json_t *rules = doc ? json_object_get(doc, "rules") : NULL;
    size_t i;
    json_t *r;

    if (!doc) {
        errinfo_set(e, 400, "invalid_body", "rules", "rules: %s", why);
        return NULL;
    }
    if (!json_is_array(rules) || json_array_size(rules) > MAX_RULES) {
        json_decref(doc);
        errinfo_set(e, 400, "invalid_field", "rules", "rules: a list of at most %d rules is required", MAX_RULES);
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
                errinfo_set(e, 400, "invalid_field", "name", "%s: the name %s is used twice", where,
                        json_string_value(json_object_get(r, "name")));
                json_decref(doc);
                return NULL;
            }
    }
    json_incref(rules);
    json_decref(doc);
    return rules;
}

int alert_rules_check_yaml(const char *text, size_t len, struct errinfo *err)
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
    struct errinfo e;
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
    struct errinfo e;
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
 * The newest sample and recent windows come from memory (agg_recent reads
 * SQLite only when the head is young). */
static int series_value(struct alerts *al, const struct rule *r, uint64_t id, int64_t now, double *out)
{
    int64_t ts;

    if (r->agg == AGG_LAST && tsdb_last(al->db, id, &ts, out) == 0 && ts <= now)
        return now - ts > STALE_MS || isnan(*out) ? -1 : 0; /* the usual case */
    return agg_recent(al->db, id, now, r->agg == AGG_LAST ? STALE_MS : r->window_ms, r->agg, out);
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

static json_t *common(const struct group_alert *a, size_t n, int annotations)
{
    json_t *c = json_deep_copy(annotations ? a[0].annotations : a[0].labels);
    const char *k;
    json_t *v, *tmp;
    json_object_foreach_safe(c, tmp, k, v)
    {
        for (size_t i = 1; i < n; i++)
            if (!json_equal(v, json_object_get(annotations ? a[i].annotations : a[i].labels, k))) {
                json_object_del(c, k);
                break;
            }
    }
    return c;
}

static void fingerprint(const json_t *labels, char out[17])
{
    char *lt = dumps(labels);
    snprintf(out, 17, "%016llx", (unsigned long long)hash_bytes(lt, strlen(lt)));
    free(lt);
}

/* Alertmanager's webhook payload, version 4, for a group's alerts. */
static char *am_payload(struct alerts *al, const char *receiver, const json_t *group_labels,
                        const struct group_alert *a, size_t n)
{
    char s[40], e[40], fp[17], gk[512];
    json_t *alerts = json_array();
    int firing = 0;
    size_t off = 0;

    for (size_t i = 0; i < n; i++) {
        firing |= a[i].firing;
        timefmt_rfc3339(a[i].starts_ms, s, sizeof(s));
        timefmt_rfc3339(a[i].firing ? 0 : a[i].ends_ms, e, sizeof(e));
        fingerprint(a[i].labels, fp);
        json_array_append_new(alerts, json_pack("{s:s, s:O, s:O, s:s, s:s, s:s, s:s}", "status",
                                                a[i].firing ? "firing" : "resolved", "labels", a[i].labels,
                                                "annotations", a[i].annotations, "startsAt", s, "endsAt", e,
                                                "generatorURL", al->external_url, "fingerprint", fp));
    }
    /* Alertmanager's form: {route matchers}:{group labels} */
    const char *k;
    json_t *v;
    off += (size_t)snprintf(gk, sizeof(gk), "{}:{");
    json_object_foreach((json_t *)group_labels, k, v)
        if (off < sizeof(gk))
            off += (size_t)snprintf(gk + off, sizeof(gk) - off, "%s%s=\"%.100s\"", off > 4 ? "," : "", k,
                                    json_string_value(v) ? json_string_value(v) : "");
    if (off < sizeof(gk))
        snprintf(gk + off, sizeof(gk) - off, "}");
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s, s:O, s:o, s:o, s:s, s:o}", "version", "4",
                          "groupKey", gk, "truncatedAlerts", 0, "status", firing ? "firing" : "resolved",
                          "receiver", receiver, "groupLabels", group_labels, "commonLabels",
                          common(a, n, 0), "commonAnnotations", common(a, n, 1), "externalURL",
                          al->external_url, "alerts", alerts);
    char *text = dumps(p);
    json_decref(p);
    return text;
}

/* "[FIRING:2] GpuHot" and one line per alert, for chat and mail. */
static char *human_text(const json_t *group_labels, const struct group_alert *a, size_t n, char **subject)
{
    struct buf b;
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
        nf += (size_t)a[i].firing;
    const char *name = json_string_value(json_object_get(group_labels, "alertname"));
    char subj[300];
    if (nf)
        snprintf(subj, sizeof(subj), "[FIRING:%zu] %s", nf, name ? name : "alerts");
    else
        snprintf(subj, sizeof(subj), "[RESOLVED] %s", name ? name : "alerts");
    *subject = xstrdup(subj);
    buf_init(&b, 1 << 20);
    buf_printf(&b, "%s\n", subj);
    for (size_t i = 0; i < n; i++) {
        const char *sum = json_string_value(json_object_get(a[i].annotations, "summary"));
        buf_printf(&b, "- %s: %s (", a[i].firing ? "firing" : "resolved", sum ? sum : "");
        const char *k;
        json_t *v;
        int first = 1;
        json_object_foreach(a[i].labels, k, v)
        {
            if (!strcmp(k, "alertname"))
                continue;
            buf_printf(&b, "%s%s=%s", first ? "" : ", ", k, json_string_value(v) ? json_string_value(v) : "");
            first = 0;
        }
        buf_puts(&b, ")\n");
    }
    size_t len;
    char *t = buf_detach(&b, &len);
    return t ? t : xstrdup("");
}

/* The SMTP message (headers and body) for one email receiver. */
static char *mail_message(const json_t *cfg, const char *subject, const char *text)
{
    char date[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_printf(&b, "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\n",
               date, json_string_value(json_object_get(cfg, "from")),
               json_string_value(json_object_get(cfg, "to")), subject);
    /* a line that is just "." would end the message early */
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        if (*p == '.')
            buf_putc(&b, '.');
        /* label values come from exporters: no bare CR or other controls
         * into the SMTP stream */
        for (size_t i = 0; i < n; i++)
            buf_putc(&b, (unsigned char)p[i] < 0x20 && p[i] != '\t' ? ' ' : p[i]);
        buf_puts(&b, "\r\n");
        p += n + (p[n] == '\n');
    }
    size_t len;
    char *m = buf_detach(&b, &len);
    return m ? m : xstrdup("");
}

static void push_note(struct alerts *al, struct note *n)
{
    n->next = al->queue;
    al->queue = n;
}

/* Builds one delivery per receiver for a group's alerts. Called with
 * qlock held; reads the receivers under the main lock's database. */
static void deliver(struct alerts *al, const json_t *group_labels, const struct group_alert *a, size_t n,
                    const char *status, json_t *receivers)
{
    size_t i;
    json_t *r;
    json_array_foreach(receivers, i, r)
    {
        struct note *nt = xcalloc(1, sizeof(*nt));
        const char *type = json_string_value(json_object_get(r, "type"));
        snprintf(nt->receiver, sizeof(nt->receiver), "%s", json_string_value(json_object_get(r, "name")));
        snprintf(nt->type, sizeof(nt->type), "%s", type);
        snprintf(nt->url, sizeof(nt->url), "%s", json_string_value(json_object_get(r, "url")));
        snprintf(nt->status, sizeof(nt->status), "%s", status);
        nt->alert_id = a[0].id;
        nt->config = json_incref(json_object_get(r, "config"));
        if (!strcmp(type, "webhook")) {
            nt->payload = am_payload(al, nt->receiver, group_labels, a, n);
        } else {
            char *subject, *text = human_text(group_labels, a, n, &subject);
            if (!strcmp(type, "slack")) {
                json_t *j = json_pack("{s:s}", "text", text);
                nt->payload = dumps(j);
                json_decref(j);
            } else {
                nt->payload = mail_message(nt->config, subject, text);
            }
            nt->subject = subject;
            free(text);
        }
        push_note(al, nt);
    }
}

static json_t *receivers_snapshot(struct alerts *al)
{
    json_t *arr = json_array();
    json_error_t jerr;
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name, type, url, config FROM receivers ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "name", (const char *)sqlite3_column_text(st, 0),
                                             "type", (const char *)sqlite3_column_text(st, 1), "url",
                                             (const char *)sqlite3_column_text(st, 2), "config",
                                             cfg ? cfg : json_object()));
    }
    sqlite3_finalize(st);
    return arr;
}

static void group_alert_free(struct group_alert *g)
{
    json_decref(g->labels);
    json_decref(g->annotations);
}

/* An alert changed (firing, resolved): into its group, to be notified at
 * the group's next flush. Called with the main lock held. */
static void notify(struct alerts *al, int64_t id, int firing, const json_t *labels, const json_t *annotations,
                   int64_t starts_ms, int64_t ends_ms, int64_t now)
{
    json_t *gl = json_object();
    size_t i;
    json_t *name;
    json_array_foreach(al->group_by, i, name)
    {
        json_t *v = json_object_get(labels, json_string_value(name));
        json_object_set_new(gl, json_string_value(name), v ? json_incref(v) : json_string(""));
    }
    char *key = dumps(gl);
    pthread_mutex_lock(&al->qlock);
    struct notify_group *g;
    for (g = al->groups; g && strcmp(g->key, key); g = g->next)
        ;
    if (!g) {
        g = xcalloc(1, sizeof(*g));
        g->key = key;
        key = NULL;
        g->group_labels = json_incref(gl);
        g->next = al->groups;
        al->groups = g;
        g->flush_ms = now + al->cfg.group_wait_ms; /* wait for others of the group */
    } else if (!g->dirty) {
        int64_t t = g->last_flush_ms + al->cfg.group_interval_ms;
        g->flush_ms = t > now ? t : now;
    }
    g->dirty = 1;
    for (i = 0; i < g->n && g->a[i].id != id; i++)
        ;
    if (i == g->n) {
        g->a = xrealloc(g->a, (g->n + 1) * sizeof(*g->a));
        memset(&g->a[g->n], 0, sizeof(g->a[0]));
        g->n++;
    } else {
        group_alert_free(&g->a[i]);
    }
    g->a[i] = (struct group_alert){id, firing, 0, json_deep_copy(labels), json_deep_copy(annotations),
                                   starts_ms, ends_ms};
    pthread_cond_signal(&al->qcond);
    pthread_mutex_unlock(&al->qlock);
    free(key);
    json_decref(gl);
}

/* Sends the groups that are due: changed ones after their wait, and
 * firing ones again every repeat interval. Called with qlock held. */
static int64_t flush_groups(struct alerts *al, json_t *receivers, int64_t now)
{
    int64_t next = now + 1000;
    for (struct notify_group **pp = &al->groups; *pp;) {
        struct notify_group *g = *pp;
        int repeat = !g->dirty && g->n && now - g->last_flush_ms >= al->cfg.repeat_interval_ms;
        if (repeat) {
            size_t acked = 0;
            for (size_t i = 0; i < g->n; i++)
                acked += (size_t)g->a[i].acked;
            if (acked == g->n) { /* all acknowledged: quiet until something changes */
                g->last_flush_ms = now;
                repeat = 0;
            }
        }
        if ((g->dirty && now >= g->flush_ms) || repeat) {
            size_t nf = 0;
            for (size_t i = 0; i < g->n; i++)
                nf += (size_t)g->a[i].firing;
            deliver(al, g->group_labels, g->a, g->n, nf ? "firing" : "resolved", receivers);
            /* resolved alerts were told once; firing ones stay for repeats */
            size_t w = 0;
            for (size_t i = 0; i < g->n; i++) {
                if (g->a[i].firing)
                    g->a[w++] = g->a[i];
                else
                    group_alert_free(&g->a[i]);
            }
            g->n = w;
            g->dirty = 0;
            g->last_flush_ms = now;
        }
        if (!g->n && !g->dirty) {
            *pp = g->next;
            json_decref(g->group_labels);
            free(g->key);
            free(g->a);
            free(g);
            continue;
        }
        if (g->dirty && g->flush_ms < next)
            next = g->flush_ms;
        pp = &g->next;
    }
    return next;
}

/* A state change for browsers watching (/api/v1/live). */
static void emit(struct alerts *al, const struct active *a, const char *state, int64_t now)
{
    if (!al->cfg.on_event)
        return;
    json_t *ev = json_pack("{s:s, s:I, s:s, s:s, s:O, s:O, s:f, s:I}", "type", "alert", "id", (json_int_t)a->id,
                           "rule", a->rule, "state", state, "labels", a->labels, "annotations", a->annotations,
                           "value", isfinite(a->value) ? a->value : 0.0, "ts_ms", (json_int_t)now);
    char *text = dumps(ev);
    al->cfg.on_event(al->cfg.event_arg, text, strlen(text));
    free(text);
    json_decref(ev);
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
        emit(al, a, "pending", now);
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
        emit(al, a, "firing", now);
        log_info("alert %s firing: %s = %g", r->name, a->series, v);
        if (!silenced(al, a->labels, now))
            notify(al, a->id, 1, a->labels, a->annotations, a->fired_ms, 0, now);
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
        emit(al, a, a->firing ? "resolved" : "inactive", now);
        if (a->firing) {
            update_alert(al, a, "resolved", now);
            log_info("alert %s resolved: %s", a->rule, a->series);
            if (!silenced(al, a->labels, now))
                notify(al, a->id, 0, a->labels, a->annotations, a->fired_ms, now, now);
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
    prune_history(al, now);
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

struct mail_src {
    const char *p;
    size_t left;
};

static size_t mail_read(char *out, size_t size, size_t n, void *arg)
{
    struct mail_src *m = arg;
    size_t k = size * n < m->left ? size * n : m->left;
    memcpy(out, m->p, k);
    m->p += k;
    m->left -= k;
    return k;
}

/* Sends a message over SMTP (libcurl): STARTTLS required unless the
 * receiver says tls: none; smtps:// is TLS from the start. Returns 250 when
 * the server took it, else -1 with err. */
static long send_mail(const char *url, const json_t *cfg, const char *message, char *err, size_t errlen)
{
    CURL *e = curl_easy_init();
    struct curl_slist *rcpt = NULL;
    struct mail_src src = {message, strlen(message)};
    const char *to = json_string_value(json_object_get(cfg, "to"));
    const char *tls = json_string_value(json_object_get(cfg, "tls"));
    const char *user = json_string_value(json_object_get(cfg, "username"));
    const char *pass = json_string_value(json_object_get(cfg, "password"));
    const char *ca = json_string_value(json_object_get(cfg, "ca_file"));
    char from[300];
    long status = -1;

    snprintf(from, sizeof(from), "<%s>", json_string_value(json_object_get(cfg, "from")));
    for (const char *p = to; p && *p;) {
        size_t n = strcspn(p, ",");
        char one[300];
        snprintf(one, sizeof(one), "<%.*s>", (int)(n < 290 ? n : 290), p + strspn(p, " "));
        rcpt = curl_slist_append(rcpt, one);
        p += n + (p[n] == ',');
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, mail_read);
    curl_easy_setopt(e, CURLOPT_READDATA, &src);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (!tls || strcmp(tls, "none"))
        curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    if (user)
        curl_easy_setopt(e, CURLOPT_USERNAME, user);
    if (pass)
        curl_easy_setopt(e, CURLOPT_PASSWORD, pass);
    CURLcode cc = curl_easy_perform(e);
    if (cc == CURLE_OK)
        status = 250;
    else
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(e);
    return status;
}

static int taken(const struct note *n, long status)
{
    return !strcmp(n->type, "email") ? status == 250 : status >= 200 && status < 300;
}

/* One attempt at a delivery; logged. Returns whether it was taken. */
static int send_note(struct alerts *al, struct note *n, char *err, size_t errlen)
{
    long status;
    n->attempt++;
    if (!strcmp(n->type, "email"))
        status = send_mail(n->url, n->config, n->payload, err, errlen);
    else
        status = post_json(n->url, n->payload, err, errlen);
    if (status >= 0 && !taken(n, status))
        snprintf(err, errlen, "HTTP %ld", status);
    log_attempt(al, n, taken(n, status) ? 200 : status, err);
    return taken(n, status);
}

static void note_free(struct note *n)
{
    json_decref(n->config);
    free(n->payload);
    free(n->subject);
    free(n);
}

static int groups_due(struct alerts *al, int64_t now)
{
    for (struct notify_group *g = al->groups; g; g = g->next)
        if ((g->dirty && now >= g->flush_ms) ||
            (!g->dirty && g->n && now - g->last_flush_ms >= al->cfg.repeat_interval_ms))
            return 1;
    return 0;
}

static void *note_main(void *arg)
{
    struct alerts *al = arg;
    pthread_mutex_lock(&al->qlock);
    while (!al->stop) {
        int64_t wall = now_wall_ms();
        if (groups_due(al, wall)) {
            /* lock order: the main lock before qlock, as notify() takes them */
            pthread_mutex_unlock(&al->qlock);
            pthread_mutex_lock(&al->lock);
            json_t *recv = receivers_snapshot(al);
            pthread_mutex_unlock(&al->lock);
            pthread_mutex_lock(&al->qlock);
            flush_groups(al, recv, now_wall_ms());
            json_decref(recv);
        }
        int64_t now = now_mono_ns() / 1000000, next = now + 200;
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
            now_cond_wait_until(&al->qcond, &al->qlock, next * 1000000);
            continue;
        }
        pthread_mutex_unlock(&al->qlock);
        char err[256] = "";
        int ok = send_note(al, due, err, sizeof(err));
        int retry = !ok && due->attempt < MAX_ATTEMPTS;
        if (!retry) {
            if (!ok)
                log_warn("alerts: %s to %s failed after %d attempts: %s", due->status, due->receiver,
                         due->attempt, err);
            note_free(due);
        }
        pthread_mutex_lock(&al->qlock);
        if (retry) {
            due->due_ms = now_mono_ns() / 1000000 + (500LL << (due->attempt - 1));
            push_note(al, due);
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
    json_decref(al->group_by);
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
        note_free(n);
    }
    while (al->groups) {
        struct notify_group *g = al->groups;
        al->groups = g->next;
        for (size_t i = 0; i < g->n; i++)
            group_alert_free(&g->a[i]);
        json_decref(g->group_labels);
        free(g->key);
        free(g->a);
        free(g);
    }
    json_decref(al->group_by);
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

json_t *alerts_rule_get(struct alerts *al, int64_t id, struct errinfo *err)
{
    json_t *out = NULL;
    pthread_mutex_lock(&al->lock);
    for (size_t i = 0; i < al->nrules && !out; i++)
        if (al->rules[i].id == id)
            out = rule_json(&al->rules[i]);
    pthread_mutex_unlock(&al->lock);
    if (!out)
        errinfo_set(err, 404, "not_found", "id", "no rule with id %lld", (long long)id);
    return out;
}

json_t *alerts_rule_create(struct alerts *al, const json_t *body, struct errinfo *err)
{
    json_t *out = NULL;
    if (parse_rule(body, "rule", NULL, err) < 0)
        return NULL;
    const char *name = json_string_value(json_object_get(body, "name"));
    pthread_mutex_lock(&al->lock);
    json_t *old = rule_by_name(al, name);
    if (old) {
        json_decref(old);
        errinfo_set(err, 409, "conflict", "name", "a rule named %s exists", name);
    } else if (store_rule(al, name, "api", body) == 0) {
        load_rules(al);
        out = rule_by_name(al, name);
    } else {
        errinfo_set(err, 500, "internal", NULL, "cannot store the rule");
    }
    pthread_mutex_unlock(&al->lock);
    return out;
}

static int api_rule_source(struct alerts *al, int64_t id, char *name, size_t n, struct errinfo *err)
{
    for (size_t i = 0; i < al->nrules; i++)
        if (al->rules[i].id == id) {
            if (strcmp(al->rules[i].source, "api")) {
                errinfo_set(err, 409, "conflict", "id", "rule %s comes from the %s rules; change it there",
                        al->rules[i].name, al->rules[i].source);
                return -1;
            }
            snprintf(name, n, "%s", al->rules[i].name);
            return 0;
        }
    errinfo_set(err, 404, "not_found", "id", "no rule with id %lld", (long long)id);
    return -1;
}

json_t *alerts_rule_update(struct alerts *al, int64_t id, const json_t *body, struct errinfo *err)
{
    char name[65];
    json_t *out = NULL;
    if (parse_rule(body, "rule", NULL, err) < 0)
        return NULL;
    pthread_mutex_lock(&al->lock);
    if (api_rule_source(al, id, name, sizeof(name), err) == 0) {
        if (strcmp(name, json_string_value(json_object_get(body, "name")))) {
            errinfo_set(err, 400, "invalid_field", "name", "a rule keeps its name (%s)", name);
        } else {
            store_rule(al, name, "api", body);
            load_rules(al);
            out = rule_by_name(al, name);
        }
    }
    pthread_mutex_unlock(&al->lock);
    return out;
}

int alerts_rule_delete(struct alerts *al, int64_t id, struct errinfo *err)
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
                   struct errinfo *err)
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
        errinfo_set(err, 404, "not_found", "id", "no firing alert with id %lld", (long long)id);
        return NULL;
    }
    pthread_mutex_lock(&al->qlock);
    for (struct notify_group *g = al->groups; g; g = g->next)
        for (size_t i = 0; i < g->n; i++)
            if (g->a[i].id == id)
                g->a[i].acked = 1;
    pthread_mutex_unlock(&al->qlock);
    if (al->cfg.on_event) {
        json_t *ev = json_pack("{s:s, s:I, s:s, s:s, s:I}", "type", "alert_ack", "id", (json_int_t)id, "by", by,
                               "comment", comment ? comment : "", "ts_ms", (json_int_t)now_wall_ms());
        char *text = dumps(ev);
        al->cfg.on_event(al->cfg.event_arg, text, strlen(text));
        free(text);
        json_decref(ev);
    }
    return json_pack("{s:I, s:s}", "id", (json_int_t)id, "ack_by", by);
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

static int delete_row(struct alerts *al, const char *sql, int64_t id, const char *what, struct errinfo *err)
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
    return delete_row(al, "DELETE FROM silences WHERE id = ?", id, "silence", err);
}

json_t *alerts_receivers_list(struct alerts *al)
{
    json_t *arr = json_array();
    json_error_t jerr;
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT id, name, type, url, config FROM receivers ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 4), 0, &jerr);
        if (!cfg)
            cfg = json_object();
        /* secrets are write-only */
        if (json_object_get(cfg, "password")) {
            json_object_del(cfg, "password");
            json_object_set_new(cfg, "password_set", json_true());
        }
        json_t *r = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0), "name",
                              (const char *)sqlite3_column_text(st, 1), "type",
                              (const char *)sqlite3_column_text(st, 2), "url",
                              (const char *)sqlite3_column_text(st, 3));
        json_object_update(r, cfg);
        json_decref(cfg);
        json_array_append_new(arr, r);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    return arr;
}

static int printable_text(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* An address list "a@b, c@d": no spaces inside, no angle brackets. */
static int valid_addresses(const char *s, int max)
{
    int n = 0;
    if (!printable_text(s, 2048))
        return 0;
    for (const char *p = s; *p;) {
        p += strspn(p, " ");
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end && p[end - 1] == ' ')
            end--;
        const char *at = memchr(p, '@', end);
        if (!end || !at || at == p || at == p + end - 1)
            return 0;
        for (size_t i = 0; i < end; i++)
            if (strchr(" <>\"\\;:", p[i]))
                return 0;
        if (++n > max)
            return 0;
        p += len + (p[len] == ',');
    }
    return n > 0;
}

json_t *alerts_receiver_create(struct alerts *al, const json_t *body, struct errinfo *err)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *type = json_string_value(json_object_get(body, "type"));
    const char *url = json_string_value(json_object_get(body, "url"));
    json_t *cfg = json_object();
    json_t *out = NULL;

    if (!name || !*name || strlen(name) > 64 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(name)) {
        errinfo_set(err, 400, "invalid_field", "name", "name: 1-64 of letters, digits, '_', '-', '.'");
        goto out;
    }
    if (!type)
        type = "webhook";
    if (strcmp(type, "webhook") && strcmp(type, "slack") && strcmp(type, "email")) {
        errinfo_set(err, 400, "invalid_field", "type", "type: webhook (Alertmanager payload), slack or email");
        goto out;
    }
    int mail = !strcmp(type, "email");
    if (!url || !printable_text(url, 2048) || strchr(url, ' ') ||
        (mail ? strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8)
              : strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
        errinfo_set(err, 400, "invalid_field", "url", mail ? "url: smtp://HOST:PORT or smtps://HOST:PORT"
                                                       : "url: an http:// or https:// URL");
        goto out;
    }
    if (mail) {
        static const char *strs[] = {"from", "to", "username", "password", "ca_file", "tls"};
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
            json_t *v = json_object_get(body, strs[i]);
            if (!v)
                continue;
            if (!printable_text(json_string_value(v), 512)) {
                errinfo_set(err, 400, "invalid_field", strs[i], "%s: printable text of at most 512 bytes", strs[i]);
                goto out;
            }
            json_object_set(cfg, strs[i], v);
        }
        if (!valid_addresses(json_string_value(json_object_get(cfg, "from")), 1)) {
            errinfo_set(err, 400, "invalid_field", "from", "from: one address such as gpufleet@example.com");
            goto out;
        }
        if (!valid_addresses(json_string_value(json_object_get(cfg, "to")), 20)) {
            errinfo_set(err, 400, "invalid_field", "to", "to: 1-20 addresses, comma-separated");
            goto out;
        }
        const char *tls = json_string_value(json_object_get(cfg, "tls"));
        if (tls && strcmp(tls, "starttls") && strcmp(tls, "none")) {
            errinfo_set(err, 400, "invalid_field", "tls", "tls: starttls (the default) or none");
            goto out;
        }
    }
    char *ct = dumps(cfg);
    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO receivers (name, type, url, config, created_ms)"
                                            " VALUES (?, ?, ?, ?, ?)");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, url, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, ct, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    int64_t id = sqlite3_last_insert_rowid(al->meta);
    pthread_mutex_unlock(&al->lock);
    free(ct);
    if (rc != SQLITE_DONE) {
        errinfo_set(err, 409, "conflict", "name", "a receiver named %s exists", name);
        goto out;
    }
    out = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "name", name, "type", type, "url", url);
out:
    json_decref(cfg);
    return out;
}

int alerts_receiver_delete(struct alerts *al, int64_t id, struct errinfo *err)
{
    return delete_row(al, "DELETE FROM receivers WHERE id = ?", id, "receiver", err);
}

int alerts_receiver_test(struct alerts *al, int64_t id, struct errinfo *err)
{
    char e[256] = "";
    json_error_t jerr;
    json_t *recv = json_array();

    pthread_mutex_lock(&al->lock);
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name, type, url, config FROM receivers WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 3), 0, &jerr);
        json_array_append_new(recv, json_pack("{s:s, s:s, s:s, s:o}", "name", (const char *)sqlite3_column_text(st, 0),
                                              "type", (const char *)sqlite3_column_text(st, 1), "url",
                                              (const char *)sqlite3_column_text(st, 2), "config",
                                              cfg ? cfg : json_object()));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&al->lock);
    if (!json_array_size(recv)) {
        json_decref(recv);
        errinfo_set(err, 404, "not_found", "id", "no receiver with id %lld", (long long)id);
        return -1;
    }
    struct group_alert ga = {0, 1, 0, json_pack("{s:s, s:s}", "alertname", "GpufleetTestNotification", "severity", "info"),
                             json_pack("{s:s}", "summary", "a test from gpufleet: this receiver works"),
                             now_wall_ms(), 0};
    json_t *gl = json_pack("{s:s}", "alertname", "GpufleetTestNotification");
    struct note *saved, *n;
    /* build the delivery as the notifier would, but send it here and now */
    pthread_mutex_lock(&al->qlock);
    saved = al->queue;
    al->queue = NULL;
    deliver(al, gl, &ga, 1, "test", recv);
    n = al->queue;
    al->queue = saved;
    pthread_mutex_unlock(&al->qlock);
    int ok = send_note(al, n, e, sizeof(e));
    note_free(n);
    group_alert_free(&ga);
    json_decref(gl);
    json_decref(recv);
    if (!ok) {
        errinfo_set(err, 502, "receiver_failed", "url", "the receiver did not take it: %s", e);
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
