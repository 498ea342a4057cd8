/* /prometheus/api/v1/...: Prometheus's HTTP query API over the store, so
 * Grafana (a plain "Prometheus" data source with URL <server>/prometheus)
 * and other PromQL clients read gpufleet directly. Shapes, error classes
 * and statuses are Prometheus's; parameters come as a query string or a
 * form-encoded POST body, as Grafana sends them. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../lib/formdata.h"
#include "../../lib/now.h"
#include "../../lib/timefmt.h"
#include "../../lib/xalloc.h"
#include "../alerts.h"
#include "../metadata.h"
#include "../promql/promql.h"
#include "../store/selector.h"
#include "../store/serieskey.h"
#include "../store/tsdb.h"
#include "api.h"

#define MAX_PARAMS 256
#define MAX_POINTS_PER_SERIES 11000
#define MAX_SERIES_LIST 100000

struct params {
    char *name[MAX_PARAMS], *value[MAX_PARAMS];
    size_t n;
};

static void params_free(struct params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->name[i]);
        free(p->value[i]);
    }
}

static void add_param(void *arg, const char *name, const char *value, size_t len)
{
    struct params *p = arg;
    if (p->n == MAX_PARAMS || strlen(value) != len) /* NUL inside: dropped, then "missing" */
        return;
    p->name[p->n] = xstrdup(name);
    p->value[p->n++] = xstrndup(value, len);
}

static void collect_params(struct http_request *req, struct params *p)
{
    http_query_each(req, add_param, p);
    const char *ct = http_header(req, "Content-Type");
    if (strcmp(req->method, "POST") || !ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
        !req->body.data)
        return;
    form_parse(req->body.data, req->body.len, add_param, p);
}

static const char *param(const struct params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->name[i], name))
            return p->value[i];
    return NULL;
}

static const char *const error_types[] = {"", "bad_data", "execution", "timeout", "internal"};

static void prom_error(struct http_response *resp, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void prom_error(struct http_response *resp, int code, const char *fmt, ...)
{
    static const int statuses[] = {200, 400, 422, 503, 500};
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int k = -code;
    resp->status = statuses[k];
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    buf_printf(&resp->body, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", error_types[k]);
    buf_json_str(&resp->body, msg);
    buf_puts(&resp->body, "}\n");
}

/* The success envelope; warning (NULL: none) in its warnings. */
static void prom_reply(struct http_response *resp, const struct buf *data, const char *warning)
{
    resp->status = 200;
    resp->content_type = "application/json";
    buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
    buf_append(&resp->body, data->data ? data->data : "null", data->data ? data->len : 4);
    if (warning) {
        buf_puts(&resp->body, ",\"warnings\":[");
        buf_json_str(&resp->body, warning);
        buf_putc(&resp->body, ']');
    }
    buf_puts(&resp->body, "}\n");
}

static void prom_success(struct http_response *resp, const struct buf *data)
{
    prom_reply(resp, data, NULL);
}

/* What Prometheus (2.49 on) warns when limit cut an answer. */
#define TRUNCATED "results truncated due to limit"

/* A time parameter (Unix seconds, fractions allowed, or RFC 3339). */
static int time_param(const struct params *p, struct http_response *resp, const char *name,
                      int64_t dflt, int64_t *ms)
{
    const char *s = param(p, name);
    *ms = dflt;
    if (!s)
        return 0;
    if (timefmt_parse_time(s, ms) < 0) {
        prom_error(resp, PROMQL_BAD_DATA, "invalid parameter \"%s\": cannot parse \"%s\" to a valid timestamp",
                   name, s);
        return -1;
    }
    return 0;
}

/* The deadline of a query: query_timeout_ms, or the caller's shorter
 * timeout. */
static int deadline(struct server_app *app, const struct params *p, struct http_response *resp,
                    int64_t *ns)
{
    int64_t ms = app->opts->query_timeout_ms;
    const char *s = param(p, "timeout");
    if (s) {
        int64_t t;
        if (promql_parse_duration(s, strlen(s), &t) < 0 || t <= 0) {
            prom_error(resp, PROMQL_BAD_DATA, "invalid parameter \"timeout\": cannot parse \"%s\" to a valid duration", s);
            return -1;
        }
        if (t < ms)
            ms = t;
    }
    *ns = now_mono_ns() + ms * 1000000;
    return 0;
}

static void run_query(struct server_app *app, const struct params *p, struct http_response *resp,
                      int64_t start, int64_t end, int64_t step, int instant)
{
    const char *q = param(p, "query");
    struct promql_expr *e = NULL;
    struct promql_result res;
    char err[400];
    struct promql_limits lim = {.max_samples = (size_t)app->opts->query_max_samples};

    if (!q) {
        prom_error(resp, PROMQL_BAD_DATA, "invalid parameter \"query\": the query is missing");
        return;
    }
    if (deadline(app, p, resp, &lim.deadline_ns) < 0)
        return;
    int rc = promql_parse(q, &e, err, sizeof(err));
    if (rc) {
        prom_error(resp, rc, "invalid parameter \"query\": %s", err);
        return;
    }
    if (!instant && promql_type(e) != PROMQL_SCALAR && promql_type(e) != PROMQL_VECTOR) {
        prom_error(resp, PROMQL_BAD_DATA,
                   "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
                   promql_type(e) == PROMQL_MATRIX ? "range vector" : "string");
        promql_free(e);
        return;
    }
    rc = promql_eval(app->db, e, start, end, step, &lim, &res, err, sizeof(err));
    promql_free(e);
    if (rc) {
        prom_error(resp, rc, "%s", err);
        return;
    }
    struct buf data;
    buf_init(&data, 0);
    promql_result_json(&res, instant, &data);
    promql_result_free(&res);
    prom_success(resp, &data);
    buf_free(&data);
}

void api_prom_query(void *appv, struct http_request *req, struct http_response *resp)
{
    struct params p = {0};
    int64_t t;
    collect_params(req, &p);
    if (time_param(&p, resp, "time", now_wall_ms(), &t) == 0)
        run_query(appv, &p, resp, t, t, 1, 1);
    params_free(&p);
}

void api_prom_query_range(void *appv, struct http_request *req, struct http_response *resp)
{
    struct params p = {0};
    int64_t start, end, step;
    const char *s;
    collect_params(req, &p);
    if (!param(&p, "start") || !param(&p, "end")) {
        prom_error(resp, PROMQL_BAD_DATA, "invalid parameter \"%s\": it is required",
                   param(&p, "start") ? "end" : "start");
        goto done;
    }
    if (time_param(&p, resp, "start", 0, &start) < 0 || time_param(&p, resp, "end", 0, &end) < 0)
        goto done;
    if (end < start) {
        prom_error(resp, PROMQL_BAD_DATA, "end timestamp must not be before start time");
        goto done;
    }
    if (!(s = param(&p, "step")) || promql_parse_duration(s, strlen(s), &step) < 0) {
        prom_error(resp, PROMQL_BAD_DATA, "invalid parameter \"step\": cannot parse \"%s\" to a valid duration",
                   s ? s : "");
        goto done;
    }
    if (step <= 0) {
        prom_error(resp, PROMQL_BAD_DATA,
                   "zero or negative query resolution step widths are not accepted. Try a positive integer");
        goto done;
    }
    if ((end - start) / step > MAX_POINTS_PER_SERIES) {
        prom_error(resp, PROMQL_BAD_DATA,
                   "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
                   "query resolution (?step=XX)");
        goto done;
    }
    run_query(appv, &p, resp, start, end, step, 0);
done:
    params_free(&p);
}

/* The limit parameter (0: none); -1 having replied. */
static int limit_param(const struct params *p, struct http_response *resp, size_t *limit)
{
    const char *s = param(p, "limit");
    *limit = 0;
    if (!s)
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0) {
        prom_error(resp, PROMQL_BAD_DATA, "invalid parameter \"limit\": a number is required");
        return -1;
    }
    *limit = (size_t)v;
    return 0;
}

/* Keeps the first limit elements of the JSON array in data (0: all):
 * TRUNCATED when some were cut, else NULL. */
static const char *truncate_array(struct buf *data, size_t limit)
{
    if (!limit || !data->data)
        return NULL;
    json_t *arr = json_loads(data->data, 0, NULL);
    if (!json_is_array(arr) || json_array_size(arr) <= limit) {
        json_decref(arr);
        return NULL;
    }
    while (json_array_size(arr) > limit)
        json_array_remove(arr, json_array_size(arr) - 1);
    char *s = json_dumps(arr, JSON_COMPACT);
    buf_reset(data);
    buf_puts(data, s);
    free(s);
    json_decref(arr);
    return TRUNCATED;
}

/* The match[] selectors, parsed; -1 having replied. */
static int matchers(const struct params *p, struct http_response *resp, struct selector **out,
                    size_t *n)
{
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->name[i], "match[]"))
            continue;
        struct promql_expr *e;
        char err[400];
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        memset(&(*out)[*n], 0, sizeof(**out));
        if (sel_parse(p->value[i], &(*out)[*n], err, sizeof(err)) < 0) {
            /* the PromQL parser words the error as Prometheus would */
            sel_free(&(*out)[*n]);
            if (promql_parse(p->value[i], &e, err, sizeof(err)) == 0) {
                promql_free(e);
                snprintf(err, sizeof(err), "a series selector is required, not an expression");
            }
            prom_error(resp, PROMQL_BAD_DATA, "invalid parameter \"match[]\": %s", err);
            for (size_t k = 0; k < *n; k++)
                sel_free(&(*out)[k]);
            free(*out);
            *out = NULL;
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static void matchers_free(struct selector *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sel_free(&s[i]);
    free(s);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_id(const void *a, const void *b)
{
    const struct tsdb_series_info *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Series of any of the selectors, each once. TSDB_BUDGET past the budget. */
static size_t union_select(struct server_app *app, const struct selector *sel, size_t nsel,
                           struct tsdb_series_info **out)
{
    struct tsdb_series_info *all = NULL;
    size_t n = 0;
    for (size_t i = 0; i < nsel; i++) {
        struct tsdb_series_info *l;
        size_t k = tsdb_select(app->db, &sel[i], MAX_SERIES_LIST, &l);
        if (k == TSDB_BUDGET) {
            for (size_t j = 0; j < n; j++)
                free(all[j].key);
            free(all);
            return TSDB_BUDGET;
        }
        all = xrealloc(all, (n + k + 1) * sizeof(*all));
        memcpy(all + n, l, k * sizeof(*l));
        n += k;
        free(l);
    }
    if (n)
        qsort(all, n, sizeof(*all), cmp_id);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w && all[w - 1].id == all[i].id) {
            free(all[i].key);
            continue;
        }
        all[w++] = all[i];
    }
    *out = all;
    return w;
}

/* start/end of a discovery request; *on = 0 when neither is given (every
 * matching series counts). -1 having replied. */
static int window_params(const struct params *p, struct http_response *resp, int *on,
                         int64_t *start, int64_t *end)
{
    *on = param(p, "start") || param(p, "end");
    if (time_param(p, resp, "start", 0, start) < 0 || time_param(p, resp, "end", now_wall_ms(), end) < 0)
        return -1;
    return 0;
}

/* Keeps, in place, the series of l with a sample in [start, end] (stale
 * markers are none), reading them in batches; frees the keys of the rest.
 * The new count. */
static size_t keep_in_window(struct server_app *app, struct tsdb_series_info *l, size_t n,
                             int64_t start, int64_t end)
{
    enum { BATCH = 512 };
    uint64_t ids[BATCH];
    struct tsdb_tv *out[BATCH];
    long cnt[BATCH];
    size_t w = 0;
    for (size_t i = 0; i < n; i += BATCH) {
        size_t k = n - i < BATCH ? n - i : BATCH;
        for (size_t j = 0; j < k; j++)
            ids[j] = l[i + j].id;
        int rc = tsdb_samples_many(app->db, ids, k, start, end, out, cnt);
        for (size_t j = 0; j < k; j++) {
            int live = 0;
            for (long s = 0; rc == 0 && s < cnt[j] && !live; s++)
                live = !tsdb_is_stale(out[j][s].v);
            if (rc == 0)
                free(out[j]);
            if (live || rc)
                l[w++] = l[i + j];
            else
                free(l[i + j].key);
        }
    }
    return w;
}

void api_prom_series(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct params p = {0};
    struct selector *sel;
    size_t nsel, limit;
    int windowed;
    int64_t start, end;
    collect_params(req, &p);
    if (limit_param(&p, resp, &limit) < 0 || window_params(&p, resp, &windowed, &start, &end) < 0 ||
        matchers(&p, resp, &sel, &nsel) < 0)
        goto done;
    if (!nsel) {
        prom_error(resp, PROMQL_BAD_DATA, "no match[] parameter provided");
        goto done;
    }
    struct tsdb_series_info *list = NULL;
    size_t n = union_select(app, sel, nsel, &list);
    matchers_free(sel, nsel);
    if (n == TSDB_BUDGET) {
        prom_error(resp, PROMQL_TIMEOUT, "query timed out selecting series");
        goto done;
    }
    if (windowed) /* only series with samples in the window, as Prometheus */
        n = keep_in_window(app, list, n, start, end);
    struct buf data;
    buf_init(&data, 0);
    buf_putc(&data, '[');
    for (size_t i = 0; i < n; i++) {
        if (!limit || i < limit) {
            if (i)
                buf_putc(&data, ',');
            tsdb_key_to_json(list[i].key, &data);
        }
        free(list[i].key);
    }
    buf_putc(&data, ']');
    free(list);
    prom_reply(resp, &data, limit && n > limit ? TRUNCATED : NULL);
    buf_free(&data);
done:
    params_free(&p);
}

/* The sorted, distinct label names (label NULL) or values of one label of
 * the series in l, as a JSON array. */
static void names_of(const struct tsdb_series_info *l, size_t n, const char *label, struct buf *out)
{
    char **v = NULL;
    size_t nv = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        struct serieskey k;
        if (serieskey_parse(l[i].key, strlen(l[i].key), &k) < 0)
            continue;
        for (size_t j = 0; j <= k.nlabels; j++) {
            const char *s = NULL;
            if (label)
                s = j == 0 ? serieskey_get(&k, label) : NULL;
            else
                s = j == 0 ? "__name__" : NULL;
            char *own = NULL;
            if (!label && j > 0)
                s = own = xstrndup(k.labels[j - 1].name, k.labels[j - 1].name_len);
            if (!s)
                continue;
            if (nv == cap) {
                cap = cap ? cap * 2 : 64;
                v = xrealloc(v, cap * sizeof(*v));
            }
            v[nv++] = own ? own : xstrdup(s);
        }
        serieskey_free(&k);
    }
    if (nv)
        qsort(v, nv, sizeof(*v), cmp_names);
    buf_putc(out, '[');
    for (size_t i = 0, w = 0; i < nv; i++) {
        if (!i || strcmp(v[i], v[i - 1])) {
            if (w++)
                buf_putc(out, ',');
            buf_json_str(out, v[i]);
        }
    }
    buf_putc(out, ']');
    for (size_t i = 0; i < nv; i++)
        free(v[i]);
    free(v);
}

/* Label names, or one label's values, of the series matching any match[]
 * (all series without one). */
static void labels(struct server_app *app, struct http_request *req, struct http_response *resp,
                   const char *label)
{
    struct params p = {0};
    struct selector *sel;
    size_t nsel;
    struct buf data;
    size_t limit;
    int windowed;
    int64_t start, end;
    buf_init(&data, 0);
    collect_params(req, &p);
    if (limit_param(&p, resp, &limit) < 0 || window_params(&p, resp, &windowed, &start, &end) < 0 ||
        matchers(&p, resp, &sel, &nsel) < 0)
        goto done;
    if (windowed && nsel) {
        /* the labels of the matching series with samples in the window */
        struct tsdb_series_info *list = NULL;
        size_t n = union_select(app, sel, nsel, &list);
        matchers_free(sel, nsel);
        if (n == TSDB_BUDGET) {
            prom_error(resp, PROMQL_TIMEOUT, "query timed out selecting series");
            goto done;
        }
        n = keep_in_window(app, list, n, start, end);
        names_of(list, n, label, &data);
        for (size_t i = 0; i < n; i++)
            free(list[i].key);
        free(list);
        prom_reply(resp, &data, truncate_array(&data, limit));
        goto done;
    }
    if (nsel <= 1) {
        /* without match[], a window bounds the groups asked (coarse, as
         * Prometheus's blocks): a series' own samples are not read */
        int rc = tsdb_labels_json(app->db, nsel ? sel : NULL, label, windowed ? start : INT64_MIN,
                                  windowed ? end : INT64_MAX, &data);
        matchers_free(sel, nsel);
        const char *warning = truncate_array(&data, limit);
        if (rc < 0)
            prom_error(resp, PROMQL_TIMEOUT, "query timed out selecting series");
        else
            prom_reply(resp, &data, warning);
        goto done;
    }
    /* several selectors: the union of each one's answer */
    char **names = NULL;
    size_t nn = 0;
    for (size_t i = 0; i < nsel; i++) {
        struct buf one;
        buf_init(&one, 0);
        if (tsdb_labels_json(app->db, &sel[i], label, INT64_MIN, INT64_MAX, &one) < 0) {
            buf_free(&one);
            prom_error(resp, PROMQL_TIMEOUT, "query timed out selecting series");
            goto out;
        }
        json_t *arr = json_loads(one.data, 0, NULL);
        buf_free(&one);
        size_t k;
        json_t *v;
        json_array_foreach(arr, k, v)
        {
            const char *s = json_string_value(v);
            int seen = 0;
            for (size_t j = 0; j < nn && !seen; j++)
                seen = !strcmp(names[j], s);
            if (!seen) {
                names = xrealloc(names, (nn + 1) * sizeof(*names));
                names[nn++] = xstrdup(s);
            }
        }
        json_decref(arr);
    }
    if (nn)
        qsort(names, nn, sizeof(*names), cmp_names);
    buf_putc(&data, '[');
    for (size_t i = 0; i < nn; i++) {
        if (i)
            buf_putc(&data, ',');
        buf_json_str(&data, names[i]);
    }
    buf_putc(&data, ']');
    prom_reply(resp, &data, truncate_array(&data, limit));
out:
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    matchers_free(sel, nsel);
done:
    buf_free(&data);
    params_free(&p);
}

void api_prom_labels(void *appv, struct http_request *req, struct http_response *resp)
{
    labels(appv, req, resp, NULL);
}

void api_prom_label_values(void *appv, struct http_request *req, struct http_response *resp)
{
    labels(appv, req, resp, req->params[0]);
}

void api_prom_buildinfo(void *appv, struct http_request *req, struct http_response *resp)
{
    (void)appv, (void)req;
    struct buf data;
    buf_init(&data, 0);
    /* the Prometheus version whose query semantics these are; no
     * "features" field (Grafana would take a server with one for Mimir) */
    buf_puts(&data, "{\"version\":\"2.42.0\",\"revision\":\"gpufleet-" GPUFLEET_VERSION
                    "\",\"branch\":\"gpufleet\",\"buildUser\":\"gpufleet\",\"buildDate\":\"\","
                    "\"goVersion\":\"\"}");
    prom_success(resp, &data);
    buf_free(&data);
}

void api_prom_empty(void *appv, struct http_request *req, struct http_response *resp)
{
    (void)appv, (void)req;
    struct buf data;
    buf_init(&data, 0);
    buf_puts(&data, "[]"); /* no exemplars are kept */
    prom_success(resp, &data);
    buf_free(&data);
}

/* TYPE/HELP/UNIT of the scraped families (?metric=, ?limit=). */
void api_prom_metadata(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct params p = {0};
    collect_params(req, &p);
    const char *metric = param(&p, "metric"), *lim = param(&p, "limit");
    long limit = 0;
    if (lim) {
        char *end;
        limit = strtol(lim, &end, 10);
        if (*end || limit < 0) {
            prom_error(resp, PROMQL_BAD_DATA, "invalid parameter \"limit\": a number is required");
            params_free(&p);
            return;
        }
    }
    struct buf data;
    buf_init(&data, 0);
    metadata_json(app->meta, metric, (size_t)limit, &data);
    prom_success(resp, &data);
    buf_free(&data);
    params_free(&p);
}

/* One of our rules as PromQL: the selector, its window function, the
 * comparison (what the rule evaluates, in the language Grafana shows). */
static void rule_query(const json_t *r, struct buf *q)
{
    const char *metric = json_string_value(json_object_get(r, "metric"));
    const char *agg = json_string_value(json_object_get(r, "agg"));
    const char *window = json_string_value(json_object_get(r, "window"));
    const char *op = json_string_value(json_object_get(r, "op"));
    json_t *th = json_object_get(r, "threshold");
    char num[64];
    const char *expr = json_string_value(json_object_get(r, "expr"));
    if (expr) { /* written in PromQL already */
        buf_puts(q, expr);
        return;
    }
    promql_format_value(num, sizeof(num), json_number_value(th));
    if (!agg || !strcmp(agg, "last"))
        buf_printf(q, "%s", metric ? metric : "");
    else if (!strcmp(agg, "rate"))
        buf_printf(q, "rate(%s[%s])", metric ? metric : "", window ? window : "1m");
    else
        buf_printf(q, "%s_over_time(%s[%s])", agg, metric ? metric : "", window ? window : "1m");
    buf_printf(q, " %s %s", op ? op : ">", num);
}

static json_t *prom_alert(const json_t *a)
{
    char at[40], num[64];
    timefmt_rfc3339(json_integer_value(json_object_get(a, "active_ms")), at, sizeof(at));
    promql_format_value(num, sizeof(num), json_number_value(json_object_get(a, "value")));
    return json_pack("{s:O, s:O, s:s, s:s, s:s}", "labels", json_object_get(a, "labels"), "annotations",
                     json_object_get(a, "annotations"), "state",
                     json_string_value(json_object_get(a, "state")), "activeAt", at, "value", num);
}

static void prom_json(struct http_response *resp, json_t *data)
{
    char *s = json_dumps(data, JSON_COMPACT);
    struct buf b = {.data = s, .len = s ? strlen(s) : 0};
    prom_success(resp, &b);
    free(s);
    json_decref(data);
}

/* Active alerts (pending and firing) in Prometheus's shape. */
static json_t *active_alerts(struct server_app *app)
{
    json_t *ours = alerts_list(app->alerts, "active", 1000), *out = json_array(), *a;
    size_t i;
    json_array_foreach(ours, i, a)
        json_array_append_new(out, prom_alert(a));
    json_decref(ours);
    return out;
}

void api_prom_alerts(void *appv, struct http_request *req, struct http_response *resp)
{
    (void)req;
    prom_json(resp, json_pack("{s:o}", "alerts", active_alerts(appv)));
}

/* Rules grouped by where they come from (builtin, file, api), each with
 * its query, state and alerts, as Prometheus's /api/v1/rules gives them. */
void api_prom_rules(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    json_t *rules = alerts_rules_list(app->alerts), *alerts = alerts_list(app->alerts, "active", 1000);
    json_t *groups = json_object(), *r, *a;
    size_t i, k;
    json_array_foreach(rules, i, r)
    {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *source = json_string_value(json_object_get(r, "source"));
        json_t *mine = json_array();
        const char *state = "inactive";
        json_array_foreach(alerts, k, a)
        {
            if (!name || strcmp(name, json_string_value(json_object_get(a, "rule")) ?: ""))
                continue;
            const char *st = json_string_value(json_object_get(a, "state"));
            if (st && (!strcmp(st, "firing") || !strcmp(state, "inactive")))
                state = st;
            json_array_append_new(mine, prom_alert(a));
        }
        struct buf q = {0};
        rule_query(r, &q);
        int64_t for_ms = 0;
        const char *f = json_string_value(json_object_get(r, "for"));
        if (f)
            timefmt_parse_duration(f, &for_ms);
        json_t *labels = json_object_get(r, "labels") ? json_deep_copy(json_object_get(r, "labels")) : json_object();
        const char *sev = json_string_value(json_object_get(r, "severity"));
        json_object_set_new(labels, "severity", json_string(sev ? sev : "warning"));
        json_t *ann = json_object_get(r, "annotations") ? json_deep_copy(json_object_get(r, "annotations"))
                                                        : json_object();
        json_t *pr = json_pack("{s:s, s:s, s:s, s:f, s:o, s:o, s:o, s:s, s:s, s:s, s:f}", "state", state,
                               "name", name ? name : "", "query", q.data ? q.data : "", "duration",
                               (double)for_ms / 1000, "labels", labels, "annotations", ann, "alerts", mine,
                               "health", "ok", "type", "alerting", "lastError", "", "evaluationTime", 0.0);
        buf_free(&q);
        const char *g = source ? source : "gpufleet";
        json_t *grp = json_object_get(groups, g);
        if (!grp) {
            grp = json_pack("{s:s, s:s, s:[], s:f, s:f}", "name", g, "file", g, "rules", "interval",
                            (double)app->opts->alert_eval_interval_ms / 1000, "evaluationTime", 0.0);
            json_object_set_new(groups, g, grp);
        }
        json_array_append_new(json_object_get(grp, "rules"), pr);
    }
    json_t *list = json_array(), *g;
    const char *key;
    json_object_foreach(groups, key, g)
        json_array_append(list, g);
    json_decref(groups);
    json_decref(rules);
    json_decref(alerts);
    prom_json(resp, json_pack("{s:o}", "groups", list));
}
