/* The query API: series and label discovery, range queries over the tier
 * that suits the step, the latest value of every series, and export. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/expo.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../store/agg.h"
#include "../store/selector.h"
#include "api.h"

/* What one range query may answer: bounded by the points (series x steps,
 * about 20 bytes of JSON each), not by series alone: an hour of a 1,000-host
 * x 8-GPU fleet's utilization at one step a minute (the overview's heatmap)
 * is 8,000 series but only 0.5 M points. */
#define MAX_QUERY_SERIES 100000
#define MAX_QUERY_POINTS 4000000
#define MAX_POINTS 11000
#define MAX_EXPORT_BYTES (256u << 20)

/* Parses the selector in parameter name (required or not); replies 400 on a
 * bad one. Returns 1 parsed, 0 absent (and not required), -1 replied. */
static int selector_param(struct http_request *req, struct http_response *resp, const char *name,
                          int required, struct selector *sel)
{
    const char *v = http_query(req, name);
    char err[200];

    if (!v && !strcmp(name, "match"))
        v = http_query(req, "match[]");
    if (!v) {
        if (!required)
            return 0;
        http_error(resp, 400, "invalid_parameter", name, "%s is required (a series selector)",
                   name);
        return -1;
    }
    if (sel_parse(v, sel, err, sizeof(err)) < 0) {
        sel_free(sel);
        http_error(resp, 400, "invalid_parameter", name, "%s: %s", name, err);
        return -1;
    }
    return 1;
}

/* Reads start and end (default: the hour before now); replies 400 naming
 * the bad one and returns -1. */
static int time_range(struct http_request *req, struct http_response *resp, int64_t now,
                      int64_t *start, int64_t *end)
{
    const char *s;

    *end = now;
    if ((s = http_query(req, "end")) && timefmt_parse_time(s, end) < 0) {
        http_error(resp, 400, "invalid_parameter", "end", "end must be Unix seconds or RFC 3339");
        return -1;
    }
    *start = *end - 3600000;
    if ((s = http_query(req, "start")) && timefmt_parse_time(s, start) < 0) {
        http_error(resp, 400, "invalid_parameter", "start",
                   "start must be Unix seconds or RFC 3339");
        return -1;
    }
    if (*end < *start) {
        http_error(resp, 400, "invalid_parameter", "end", "end must not be before start");
        return -1;
    }
    return 0;
}

/* A query that spent its budget (query_timeout_ms): the same answer
 * whichever query it was. */
static void over_budget(struct server_app *app, struct http_response *resp)
{
    http_error(resp, 503, "timeout", "match",
               "the query ran past query_timeout_ms (%lld ms); narrow the selector",
               (long long)app->opts->query_timeout_ms);
}

static void success(struct http_response *resp, struct buf *data)
{
    resp->content_type = "application/json";
    buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
    buf_append(&resp->body, data->data ? data->data : "null", data->data ? data->len : 4);
    buf_puts(&resp->body, "}\n");
}

void api_query_series(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct selector sel;
    struct tsdb_series_info *list;
    struct buf data;

    if (selector_param(req, resp, "match", 1, &sel) < 0)
        return;
    size_t n = tsdb_select(app->db, &sel, 100000, &list);
    sel_free(&sel);
    if (n == TSDB_BUDGET) {
        over_budget(app, resp);
        return;
    }
    buf_init(&data, 0);
    buf_putc(&data, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&data, ',');
        tsdb_key_to_json(list[i].key, &data);
        free(list[i].key);
    }
    buf_putc(&data, ']');
    free(list);
    success(resp, &data);
    buf_free(&data);
}

/* Label names (label NULL) or one label's values, of the matching series. */
static void labels_reply(struct server_app *app, struct http_request *req,
                         struct http_response *resp, const char *label)
{
    struct selector sel;
    struct buf data;
    int has = selector_param(req, resp, "match", 0, &sel);

    if (has < 0)
        return;
    buf_init(&data, 0);
    int rc = tsdb_labels_json(app->db, has ? &sel : NULL, label, INT64_MIN, INT64_MAX, &data);
    if (has)
        sel_free(&sel);
    if (rc < 0)
        over_budget(app, resp);
    else
        success(resp, &data);
    buf_free(&data);
}

void api_query_labels(void *appv, struct http_request *req, struct http_response *resp)
{
    labels_reply(appv, req, resp, NULL);
}

void api_query_label_values(void *appv, struct http_request *req, struct http_response *resp)
{
    labels_reply(appv, req, resp, req->params[0]);
}

static void json_value(struct buf *out, int64_t t, double v)
{
    char num[40];
    expo_format_value(num, sizeof(num), v);
    buf_printf(out, "[%.3f,\"%s\"]", (double)t / 1000.0, num);
}

/* The tier a range query reads: the coarsest whose buckets are no wider
 * than the step, and one that still holds the start; "tier" overrides.
 * Returns 0, or -1 having replied 400. */
static int pick_tier(struct server_app *app, struct http_request *req, struct http_response *resp,
                     int64_t now, int64_t start, int64_t step, enum tsdb_tier *tier)
{
    static const char *const names[TSDB_TIERS] = {"raw", "1m", "1h"};
    const char *s = http_query(req, "tier");

    *tier = step >= 3600000 ? TSDB_1H : step >= 60000 ? TSDB_1M : TSDB_RAW;
    if (start < now - app->opts->raw_retention_days * 86400000 && *tier < TSDB_1M)
        *tier = TSDB_1M;
    if (start < now - app->opts->m1_retention_days * 86400000 && *tier < TSDB_1H)
        *tier = TSDB_1H;
    if (!s)
        return 0;
    for (int t = 0; t < TSDB_TIERS; t++)
        if (!strcmp(s, names[t])) {
            *tier = (enum tsdb_tier)t;
            return 0;
        }
    http_error(resp, 400, "invalid_parameter", "tier", "tier must be raw, 1m or 1h");
    return -1;
}

/* start, end, step and fn of a range query; -1 having replied 400. */
static int range_params(struct http_request *req, struct http_response *resp, int64_t now,
                        int64_t *start, int64_t *end, int64_t *step, enum agg_fn *fn)
{
    const char *s;

    if (time_range(req, resp, now, start, end) < 0)
        return -1;
    *step = (*end - *start) / 250 > 1000 ? (*end - *start) / 250 : 1000;
    if ((s = http_query(req, "step")) && timefmt_parse_duration(s, step) < 0) {
        http_error(resp, 400, "invalid_parameter", "step",
                   "step must be a positive duration (15, 15s, 1m, 1h)");
        return -1;
    }
    if ((*end - *start) / *step + 1 > MAX_POINTS) {
        http_error(resp, 400, "invalid_parameter", "step",
                   "more than %d points per series; use a larger step", MAX_POINTS);
        return -1;
    }
    *fn = AGG_AVG;
    if ((s = http_query(req, "fn")) && agg_parse(s, fn) < 0) {
        http_error(resp, 400, "invalid_parameter", "fn", "fn must be one of %s", agg_names());
        return -1;
    }
    return 0;
}

/* Appends one series of the result: its labels and its non-empty buckets. */
static void range_series(struct buf *data, const char *key, int64_t start, int64_t step,
                         const double *v, size_t nb)
{
    int any = 0;

    buf_puts(data, "{\"metric\":");
    tsdb_key_to_json(key, data);
    buf_puts(data, ",\"values\":[");
    for (size_t b = 0; b < nb; b++) {
        if (isnan(v[b]))
            continue;
        if (any++)
            buf_putc(data, ',');
        json_value(data, start + (int64_t)b * step, v[b]);
    }
    buf_puts(data, "]}");
}

void api_query_range(void *appv, struct http_request *req, struct http_response *resp)
{
    static const char *const tier_names[] = {"raw", "1m", "1h"};
    struct server_app *app = appv;
    struct selector sel;
    struct tsdb_series_info *list = NULL;
    int64_t now = now_wall_ms(), start, end, step;
    enum agg_fn fn;
    enum tsdb_tier tier;
    size_t n = 0;
    double *v = NULL;
    struct buf data;

    buf_init(&data, 0);
    if (range_params(req, resp, now, &start, &end, &step, &fn) < 0 ||
        pick_tier(app, req, resp, now, start, step, &tier) < 0 ||
        selector_param(req, resp, "match", 1, &sel) < 0)
        goto done;
    n = tsdb_select(app->db, &sel, MAX_QUERY_SERIES + 1, &list);
    sel_free(&sel);
    if (n == TSDB_BUDGET) {
        n = 0;
        over_budget(app, resp);
        goto done;
    }
    if (n > MAX_QUERY_SERIES) {
        http_error(resp, 400, "invalid_parameter", "match",
                   "the selector matches more than %d series; narrow it", MAX_QUERY_SERIES);
        goto done;
    }
    size_t nb = (size_t)((end - start) / step) + 1;
    if (n * nb > MAX_QUERY_POINTS) {
        http_error(resp, 400, "invalid_parameter", "step",
                   "step: %zu series x %zu steps is more than %d points; a longer step, a shorter range or a narrower match",
                   n, nb, MAX_QUERY_POINTS);
        goto done;
    }
    v = xmalloc(nb * sizeof(*v));
    buf_printf(&data, "{\"resultType\":\"matrix\",\"tier\":\"%s\",\"step_s\":%.3f,\"result\":[",
               tier_names[tier], (double)step / 1000.0);
    for (size_t i = 0; i < n; i++) {
        if (agg_range(app->db, list[i].id, tier, start, step, nb, fn, v) < 0) {
            http_error(resp, 500, "storage_error", NULL, "the store could not be read; see the log");
            goto done;
        }
        if (i)
            buf_putc(&data, ',');
        range_series(&data, list[i].key, start, step, v, nb);
    }
    buf_puts(&data, "]}");
    success(resp, &data);
done:
    for (size_t i = 0; i < n; i++)
        free(list[i].key);
    free(list);
    free(v);
    buf_free(&data);
}

void api_query_latest(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct selector sel;
    struct buf data;
    const char *server = http_query(req, "server");
    int has = selector_param(req, resp, "match", 0, &sel);
    char err[200];

    if (has < 0)
        return;
    if (server && has && sel_add_eq(&sel, "server", server) < 0) { /* both: the series of that server */
        sel_free(&sel);
        http_error(resp, 400, "invalid_parameter", "match", "match: at most %d matchers with server", SEL_MAX_MATCHERS - 1);
        return;
    }
    if (server && !has) {
        struct buf q;
        buf_init(&q, 0);
        buf_puts(&q, "{server=\"");
        for (const char *p = server; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_putc(&q, '\\');
            buf_putc(&q, *p);
        }
        buf_puts(&q, "\"}");
        if (sel_parse(q.data, &sel, err, sizeof(err)) < 0) {
            sel_free(&sel);
            buf_free(&q);
            http_error(resp, 400, "invalid_parameter", "server", "server: %s", err);
            return;
        }
        buf_free(&q);
        has = 1;
    }
    buf_init(&data, 0);
    buf_puts(&data, "{\"resultType\":\"vector\",\"result\":[");
    long got = tsdb_latest_json(app->db, has ? &sel : NULL, &data);
    buf_puts(&data, "]}");
    if (has)
        sel_free(&sel);
    if (got < 0)
        over_budget(app, resp);
    else
        success(resp, &data);
    buf_free(&data);
}

void api_export(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct selector sel;
    int64_t end = now_wall_ms(), start;
    char num[40];

    if (time_range(req, resp, end, &start, &end) < 0)
        return;
    if (selector_param(req, resp, "match", 1, &sel) < 0)
        return;
    struct tsdb_series_info *list;
    size_t n = tsdb_select(app->db, &sel, 0, &list);
    sel_free(&sel);
    if (n == TSDB_BUDGET) {
        over_budget(app, resp);
        return;
    }
    struct buf out;
    buf_init(&out, MAX_EXPORT_BYTES);
    int too_big = 0;
    for (size_t i = 0; i < n; i++) {
        struct tsdb_point *p = NULL;
        long np = too_big ? 0 : tsdb_points(app->db, list[i].id, TSDB_RAW, start, end, &p);
        for (long k = 0; k < np && !too_big; k++) {
            expo_format_value(num, sizeof(num), p[k].last);
            too_big = buf_printf(&out, "%s %s %lld\n", list[i].key, num, (long long)p[k].t) < 0;
        }
        free(p);
        free(list[i].key);
    }
    free(list);
    if (too_big) {
        buf_free(&out);
        http_error(resp, 400, "invalid_parameter", "start",
                   "the export is larger than %u bytes; narrow the range or the selector",
                   MAX_EXPORT_BYTES);
        return;
    }
    resp->content_type = "text/plain; charset=utf-8";
    buf_free(&resp->body);
    resp->body = out;
}
