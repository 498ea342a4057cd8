/* The query API: series and label discovery, range queries over the tier
 * that suits the step, the latest value of every series, and export. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/expo.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../store/selector.h"
#include "api.h"

#define MAX_QUERY_SERIES 2000
#define MAX_POINTS 11000
#define MAX_EXPORT_BYTES (256u << 20)

enum fn { FN_AVG, FN_MIN, FN_MAX, FN_LAST, FN_RATE, FN_SUM, FN_COUNT };

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
    tsdb_labels_json(app->db, has ? &sel : NULL, label, &data);
    if (has)
        sel_free(&sel);
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

static int parse_fn(const char *s, enum fn *fn)
{
    static const char *names[] = {"avg", "min", "max", "last", "rate", "sum", "count"};
    if (!s) {
        *fn = FN_AVG;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(s, names[i])) {
            *fn = (enum fn)i;
            return 0;
        }
    return -1;
}

struct window {
    double min, max, sum, count, last, inc;
    int has;
};

static double window_value(const struct window *w, enum fn fn, int64_t step_ms)
{
    switch (fn) {
    case FN_MIN: return w->min;
    case FN_MAX: return w->max;
    case FN_LAST: return w->last;
    case FN_RATE: return w->inc / ((double)step_ms / 1000.0);
    case FN_SUM: return w->sum;
    case FN_COUNT: return w->count;
    default: return w->count > 0 ? w->sum / w->count : NAN;
    }
}

static void json_value(struct buf *out, int64_t t, double v)
{
    char num[40];
    expo_format_value(num, sizeof(num), v);
    buf_printf(out, "[%.3f,\"%s\"]", (double)t / 1000.0, num);
}

void api_query_range(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct selector sel;
    int64_t now = now_wall_ms(), start, end, step;
    enum fn fn;
    const char *s;

    if (time_range(req, resp, now, &start, &end) < 0)
        return;
    step = (end - start) / 250 > 1000 ? (end - start) / 250 : 1000;
    if ((s = http_query(req, "step")) && timefmt_parse_duration(s, &step) < 0) {
        http_error(resp, 400, "invalid_parameter", "step",
                   "step must be a positive duration (15, 15s, 1m, 1h)");
        return;
    }
    if ((end - start) / step + 1 > MAX_POINTS) {
        http_error(resp, 400, "invalid_parameter", "step",
                   "more than %d points per series; use a larger step", MAX_POINTS);
        return;
    }
    if (parse_fn(http_query(req, "fn"), &fn) < 0) {
        http_error(resp, 400, "invalid_parameter", "fn",
                   "fn must be avg, min, max, last, rate, sum or count");
        return;
    }
    enum tsdb_tier tier = step >= 3600000 ? TSDB_1H : step >= 60000 ? TSDB_1M : TSDB_RAW;
    if (start < now - app->opts->raw_retention_days * 86400000 && tier < TSDB_1M)
        tier = TSDB_1M;
    if (start < now - app->opts->m1_retention_days * 86400000 && tier < TSDB_1H)
        tier = TSDB_1H;
    if ((s = http_query(req, "tier"))) {
        if (!strcmp(s, "raw"))
            tier = TSDB_RAW;
        else if (!strcmp(s, "1m"))
            tier = TSDB_1M;
        else if (!strcmp(s, "1h"))
            tier = TSDB_1H;
        else {
            http_error(resp, 400, "invalid_parameter", "tier", "tier must be raw, 1m or 1h");
            return;
        }
    }
    if (selector_param(req, resp, "match", 1, &sel) < 0)
        return;
    struct tsdb_series_info *list;
    size_t n = tsdb_select(app->db, &sel, MAX_QUERY_SERIES + 1, &list);
    sel_free(&sel);
    if (n > MAX_QUERY_SERIES) {
        for (size_t i = 0; i < n; i++)
            free(list[i].key);
        free(list);
        http_error(resp, 400, "invalid_parameter", "match",
                   "the selector matches more than %d series; narrow it", MAX_QUERY_SERIES);
        return;
    }
    static const char *tier_names[] = {"raw", "1m", "1h"};
    size_t npts = (size_t)((end - start) / step) + 1;
    struct window *w = xmalloc(npts * sizeof(*w));
    struct buf data;
    buf_init(&data, 0);
    buf_printf(&data, "{\"resultType\":\"matrix\",\"tier\":\"%s\",\"step_s\":%.3f,\"result\":[",
               tier_names[tier], (double)step / 1000.0);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct tsdb_point *p;
        long np = tsdb_points(app->db, list[i].id, tier, start, end + step - 1, &p);
        if (np < 0) {
            failed = 1;
            np = 0;
        }
        memset(w, 0, npts * sizeof(*w));
        for (long k = 0; k < np; k++) {
            if (p[k].t < start)
                continue;
            size_t b = (size_t)((p[k].t - start) / step);
            if (b >= npts)
                continue;
            struct window *x = &w[b];
            if (!x->has) {
                *x = (struct window){p[k].min, p[k].max, p[k].sum, p[k].count, p[k].last,
                                     p[k].inc, 1};
                continue;
            }
            x->min = fmin(x->min, p[k].min);
            x->max = fmax(x->max, p[k].max);
            x->sum += p[k].sum;
            x->count += p[k].count;
            x->last = p[k].last;
            x->inc += p[k].inc;
        }
        free(p);
        if (i)
            buf_putc(&data, ',');
        buf_puts(&data, "{\"metric\":");
        tsdb_key_to_json(list[i].key, &data);
        buf_puts(&data, ",\"values\":[");
        int any = 0;
        for (size_t b = 0; b < npts; b++) {
            if (!w[b].has)
                continue;
            if (any++)
                buf_putc(&data, ',');
            json_value(&data, start + (int64_t)b * step, window_value(&w[b], fn, step));
        }
        buf_puts(&data, "]}");
        free(list[i].key);
    }
    buf_puts(&data, "]}");
    free(list);
    free(w);
    if (failed) {
        buf_free(&data);
        http_error(resp, 500, "storage_error", NULL, "the store could not be read; see the log");
        return;
    }
    success(resp, &data);
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
    tsdb_latest_json(app->db, has ? &sel : NULL, &data);
    buf_puts(&data, "]}");
    if (has)
        sel_free(&sel);
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
