/* Alert rules: the built-in pack, validation with the rule and field named
 * (shared by the file, the API and the fuzzer), templates, storage. */
#include "alerts_impl.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "../lib/timefmt.h"
#include "../lib/yamljson.h"
#include "store/db.h"

/* The built-in pack: what an operator of NVIDIA fleets watches first.
 * Each rule takes one metric; thresholds are absolute. */
const char alert_default_rules[] =
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
    " threshold: 1e9, for: 5m, severity: warning, annotations: {summary: '{{ $host }}: {{ $value }} bytes of memory available'}}\n"
    /* from each server's BMC (ipmi_exporter's names): 2 is critical */
    "- {name: BmcTemperatureCritical, metric: ipmi_temperature_state, op: '==', threshold: 2, severity: critical,"
    " annotations: {summary: '{{ $labels.name }} of {{ $host }} past its critical threshold (BMC)'}}\n"
    "- {name: BmcFanFailed, metric: ipmi_fan_speed_state, op: '==', threshold: 2, severity: critical,"
    " annotations: {summary: 'fan {{ $labels.name }} of {{ $host }} failed (BMC)'}}\n"
    "- {name: BmcPowerSupplyFailed, metric: 'ipmi_sensor_state{type=\"Power Supply\"}', op: '==', threshold: 2,"
    " severity: critical, annotations: {summary: 'power supply {{ $labels.name }} of {{ $host }} failed (BMC)'}}\n"
    "- {name: BmcUnreachable, metric: ipmi_up, op: '==', threshold: 0, for: 2m, severity: warning,"
    " annotations: {summary: 'the BMC of {{ $host }} ({{ $labels.instance }}) does not answer'}}\n";

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

/* Refuses fields a rule does not have (a typo must not pass silently). */
static int check_known(const json_t *j, const char *where, struct errinfo *e)
{
    static const char *known[] = {"name", "metric", "agg", "window", "op", "threshold", "for",
                                  "severity", "labels", "annotations", "expr"};
    const char *k;
    json_t *v;
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
    return 0;
}

/* An optional duration field up to max ms (def when absent). 0 or -1. */
static int rule_duration(const json_t *j, const char *key, int64_t max, const char *hint,
                         const char *where, int64_t *out, struct errinfo *e)
{
    json_t *v = json_object_get(j, key);
    int64_t ms;
    if (!v)
        return 0;
    /* "0s" (Prometheus rule files write it): none */
    const char *s = json_string_value(v);
    if (s && s[0] == '0' && (!s[1] || !strcmp(s + 1, "s") || !strcmp(s + 1, "m"))) {
        *out = 0;
        return 0;
    }
    if (!json_is_string(v) || timefmt_parse_duration(json_string_value(v), &ms) < 0 || ms > max) {
        errinfo_set(e, 400, "invalid_field", key, "%s.%s: %s", where, key, hint);
        return -1;
    }
    *out = ms;
    return 0;
}

/* labels and annotations: mappings of up to 32 short strings. */
static int check_maps(const json_t *j, const char *where, struct errinfo *e)
{
    static const char *const fields[] = {"labels", "annotations"};
    for (int f = 0; f < 2; f++) {
        json_t *v = json_object_get(j, fields[f]), *lv;
        const char *lk;
        if (!v)
            continue;
        if (!json_is_object(v) || json_object_size(v) > 32) {
            errinfo_set(e, 400, "invalid_field", fields[f], "%s.%s: a mapping of up to 32 strings",
                        where, fields[f]);
            return -1;
        }
        json_object_foreach(v, lk, lv)
        {
            if (!json_is_string(lv) || strlen(json_string_value(lv)) > 1024 || strlen(lk) > 64) {
                errinfo_set(e, 400, "invalid_field", fields[f],
                            "%s.%s.%.64s: a string of up to 1024 bytes", where, fields[f], lk);
                return -1;
            }
        }
    }
    return 0;
}

/* A rule written in PromQL: expr instead of metric/agg/window/op/threshold,
 * as in a Prometheus rule file. Fills r when not NULL. */
static int parse_expr_rule(const json_t *j, const char *where, struct rule *r, struct errinfo *e)
{
    static const char *classic[] = {"metric", "agg", "window", "op", "threshold"};
    const char *expr = json_string_value(json_object_get(j, "expr"));
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *sev = json_string_value(json_object_get(j, "severity"));
    struct promql_expr *pe = NULL;
    int64_t for_ms = 0;
    char why[400];

    for (size_t i = 0; i < sizeof(classic) / sizeof(classic[0]); i++)
        if (json_object_get(j, classic[i])) {
            errinfo_set(e, 400, "invalid_field", classic[i],
                        "%s.%s: a rule has either expr (PromQL) or metric/agg/window/op/threshold",
                        where, classic[i]);
            return -1;
        }
    if (!expr || !*expr || strlen(expr) > 16384) {
        errinfo_set(e, 400, "invalid_field", "expr", "%s.expr: a PromQL expression is required", where);
        return -1;
    }
    if (promql_parse(expr, &pe, why, sizeof(why)) != 0) {
        errinfo_set(e, 400, "invalid_field", "expr", "%s.expr: %s", where, why);
        return -1;
    }
    if (promql_type(pe) != PROMQL_VECTOR) {
        promql_free(pe);
        errinfo_set(e, 400, "invalid_field", "expr",
                    "%s.expr: must give an instant vector (each element an alert)", where);
        return -1;
    }
    if (json_object_get(j, "severity") && (!sev || !*sev || strlen(sev) > 16)) {
        promql_free(pe);
        errinfo_set(e, 400, "invalid_field", "severity", "%s.severity: 1-16 characters", where);
        return -1;
    }
    if (rule_duration(j, "for", 7 * 86400000LL, "a duration up to 7d, such as 2m", where, &for_ms, e) < 0 ||
        check_maps(j, where, e) < 0) {
        promql_free(pe);
        return -1;
    }
    if (!r) {
        promql_free(pe);
        return 0;
    }
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->expr = pe;
    r->for_ms = for_ms;
    snprintf(r->severity, sizeof(r->severity), "%s", sev ? sev : "warning");
    r->body = json_deep_copy(j);
    return 0;
}

/* Parses a rule; fills r when not NULL (its selector must then be freed). */
static int parse_rule(const json_t *j, const char *prefix, struct rule *r, struct errinfo *e)
{
    char where[128], why[160];
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *metric = json_string_value(json_object_get(j, "metric"));
    const char *sev = json_string_value(json_object_get(j, "severity"));
    json_t *v, *threshold = json_object_get(j, "threshold");
    enum agg_fn agg = AGG_LAST;
    int64_t window = 60000, for_ms = 0;
    struct selector sel;
    int op;

    if (!json_is_object(j)) {
        errinfo_set(e, 400, "invalid_field", prefix, "%s: a rule must be a mapping", prefix);
        return -1;
    }
    snprintf(where, sizeof(where), "%s (%.64s)", prefix, name ? name : "unnamed");
    if (check_known(j, where, e) < 0)
        return -1;
    if (!valid_rule_name(name)) {
        errinfo_set(e, 400, "invalid_field", "name",
                    "%s.name: 1-64 of letters, digits, '_', starting with a letter", where);
        return -1;
    }
    if (json_object_get(j, "expr"))
        return parse_expr_rule(j, where, r, e);
    if (!metric || strlen(metric) > 1024) {
        errinfo_set(e, 400, "invalid_field", "metric",
                    "%s.metric: a series selector is required (or expr: a PromQL expression)", where);
        return -1;
    }
    if ((v = json_object_get(j, "agg")) && agg_parse(json_string_value(v), &agg) < 0) {
        errinfo_set(e, 400, "invalid_field", "agg", "%s.agg: one of %s", where, agg_names());
        return -1;
    }
    if ((op = pick(json_string_value(json_object_get(j, "op")), op_names, 6)) < 0) {
        errinfo_set(e, 400, "invalid_field", "op", "%s.op: one of > >= < <= == !=", where);
        return -1;
    }
    if (!json_is_number(threshold) || !isfinite(json_number_value(threshold))) {
        errinfo_set(e, 400, "invalid_field", "threshold", "%s.threshold: a number is required",
                    where);
        return -1;
    }
    if (rule_duration(j, "window", 86400000, "a duration up to 24h, such as 5m", where, &window, e) < 0 ||
        rule_duration(j, "for", 7 * 86400000LL, "a duration up to 7d, such as 2m", where, &for_ms, e) < 0)
        return -1;
    if (json_object_get(j, "severity") && (!sev || !*sev || strlen(sev) > 16)) {
        errinfo_set(e, 400, "invalid_field", "severity", "%s.severity: 1-16 characters", where);
        return -1;
    }
    if (check_maps(j, where, e) < 0)
        return -1;
    if (sel_parse(metric, &sel, why, sizeof(why)) < 0) {
        sel_free(&sel);
        errinfo_set(e, 400, "invalid_field", "metric", "%s.metric: %s", where, why);
        return -1;
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
    r->threshold = json_number_value(threshold);
    r->window_ms = window;
    r->for_ms = for_ms;
    snprintf(r->severity, sizeof(r->severity), "%s", sev ? sev : "warning");
    r->body = json_deep_copy(j);
    return 0;
}

/* A Prometheus rule file (groups: - name: .. rules: - alert: .. expr: ..)
 * as our rules: alert is the name, labels.severity the severity; the rest
 * carries over. A new reference, or NULL with e set. */
static json_t *prometheus_groups(const json_t *groups, struct errinfo *e)
{
    json_t *rules = json_array(), *g, *pr;
    size_t gi, ri;
    if (!json_is_array(groups)) {
        errinfo_set(e, 400, "invalid_field", "groups", "groups: a list of rule groups is required");
        goto fail;
    }
    json_array_foreach(groups, gi, g)
    {
        json_t *list = json_object_get(g, "rules");
        if (!json_is_array(list)) {
            errinfo_set(e, 400, "invalid_field", "groups", "groups[%zu].rules: a list is required", gi);
            goto fail;
        }
        json_array_foreach(list, ri, pr)
        {
            if (!json_is_object(pr) || json_object_get(pr, "record")) {
                errinfo_set(e, 400, "invalid_field", "record",
                            "groups[%zu].rules[%zu]: recording rules are not supported (alert rules only)",
                            gi, ri);
                goto fail;
            }
            json_t *r = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(pr, k, v)
                json_object_set(r, strcmp(k, "alert") ? k : "name", v);
            const char *sev = json_string_value(json_object_get(json_object_get(pr, "labels"), "severity"));
            if (sev)
                json_object_set_new(r, "severity", json_string(sev));
            json_array_append_new(rules, r);
        }
    }
    return rules;
fail:
    json_decref(rules);
    return NULL;
}

/* The rules of a YAML document (ours, or a Prometheus rule file), checked;
 * a new reference or NULL. */
static json_t *rules_of_yaml(const char *text, size_t len, struct errinfo *e)
{
    char why[200], where[48];
    json_t *doc = yaml_to_json(text, len, why, sizeof(why));
    json_t *rules = doc ? json_object_get(doc, "rules") : NULL;
    size_t i;
    json_t *r;

    if (!doc) {
        errinfo_set(e, 400, "invalid_body", "rules", "rules: %s", why);
        return NULL;
    }
    if (!rules && json_object_get(doc, "groups")) {
        json_t *conv = prometheus_groups(json_object_get(doc, "groups"), e);
        if (!conv) {
            json_decref(doc);
            return NULL;
        }
        json_object_set_new(doc, "rules", conv);
        rules = conv;
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

static int store_rule(struct alerts *al, const char *name, const char *source, const json_t *body)
{
    char *text = alert_dumps(body);
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

static void rule_free(struct rule *r)
{
    promql_free(r->expr);
    sel_free(&r->sel);
    json_decref(r->body);
    for (size_t k = 0; k < r->nser; k++)
        free(r->ser[k].key);
    free(r->ser);
}

void alert_rules_free(struct alerts *al)
{
    for (size_t i = 0; i < al->nrules; i++)
        rule_free(&al->rules[i]);
    free(al->rules);
    al->rules = NULL;
    al->nrules = 0;
}

/* Reads every stored rule into memory. Called with the lock held. */
void alert_rules_load(struct alerts *al)
{
    struct errinfo e;
    json_error_t jerr;

    alert_rules_free(al);
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
/* Installs the built-in pack (or none) and the rules file (or drops the
 * rules a file gave before), then loads every rule. 0, or -1 with err
 * naming the file, rule and field. Called once at start. */
int alert_rules_setup(struct alerts *al, char *err, size_t errlen)
{
    const char *pack = al->cfg.default_rules ? alert_default_rules : "rules: []\n";
    char *text = NULL;
    int rc = -1;

    if (alert_rules_install(al, "default", pack, strlen(pack), err, errlen) < 0)
        return -1;
    if (al->cfg.rules_file) {
        FILE *f = fopen(al->cfg.rules_file, "r");
        if (!f) {
            snprintf(err, errlen, "alert_rules_file: cannot open %s", al->cfg.rules_file);
            return -1;
        }
        text = xcalloc(1, 4 << 20);
        size_t n = fread(text, 1, (4 << 20) - 1, f);
        fclose(f);
        char why[400];
        if (alert_rules_install(al, "file", text, n, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "alert_rules_file %s: %s", al->cfg.rules_file, why);
            goto out;
        }
    } else {
        db_exec(al->meta, "DELETE FROM rules WHERE source = 'file'");
    }
    alert_rules_load(al);
    rc = 0;
out:
    free(text);
    return rc;
}

int alert_rules_install(struct alerts *al, const char *source, const char *text, size_t len,
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
    char *list = alert_dumps(names);
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

json_t *alerts_rule_preview(struct alerts *al, const json_t *body, int64_t now, struct errinfo *err)
{
    struct rule r;
    if (parse_rule(body, "rule", &r, err) < 0)
        return NULL;
    json_t *out = alert_eval_preview(al, &r, now, err);
    rule_free(&r);
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
        alert_rules_load(al);
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
            alert_rules_load(al);
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
        alert_rules_load(al);
    }
    pthread_mutex_unlock(&al->lock);
    return rc;
}
