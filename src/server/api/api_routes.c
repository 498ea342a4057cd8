/* The route table, readable in one screen, and helpers every resource uses. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/config.h"
#include "api.h"

static const struct http_route routes[] = {
    {"GET", "/api/v1/servers", api_servers_list, 0, NULL},
    {"POST", "/api/v1/servers", api_servers_create, 0, NULL},
    {"GET", "/api/v1/servers/{id}", api_servers_get, 0, NULL},
    {"PUT", "/api/v1/servers/{id}", api_servers_update, 0, NULL},
    {"PATCH", "/api/v1/servers/{id}", api_servers_update, 0, NULL},
    {"DELETE", "/api/v1/servers/{id}", api_servers_delete, 0, NULL},
    {"POST", "/api/v1/servers/{id}/check", api_servers_check, 0, NULL},
    {"GET", "/api/v1/servers/{id}/events", api_servers_events, 0, NULL},
    {"GET", "/api/v1/targets", api_targets_list, 0, NULL},
    {"GET", "/api/v1/series", api_query_series, 0, NULL},
    {"GET", "/api/v1/labels", api_query_labels, 0, NULL},
    {"GET", "/api/v1/label/{name}/values", api_query_label_values, 0, NULL},
    {"GET", "/api/v1/query_range", api_query_range, 0, NULL},
    {"GET", "/api/v1/latest", api_query_latest, 0, NULL},
    {"GET", "/api/v1/export", api_export, 0, NULL},
    {"POST", "/api/v1/import/prometheus", api_import_done, 0, api_import_stream},
    {"GET", "/healthz", api_healthz, 0, NULL},
    {"GET", "/metrics", api_metrics, 0, NULL},
};

struct http_server *api_start(struct server_app *app, char *err, size_t errlen)
{
    struct http_config cfg = {
        .listen = app->opts->listen,
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .app = app,
        .max_body_bytes = 1u << 20,
        .threads = 4,
    };
    return http_start(&cfg, err, errlen);
}

void api_json(struct http_response *resp, int status, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    resp->status = status;
    resp->content_type = "application/json";
    if (text) {
        buf_puts(&resp->body, text);
        buf_putc(&resp->body, '\n');
        free(text);
    }
}

json_t *api_body_json(struct http_request *req, struct http_response *resp)
{
    json_error_t jerr;
    json_t *v;

    if (!req->body.len) {
        http_error(resp, 400, "invalid_body", "body", "a JSON body is required");
        return NULL;
    }
    v = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        http_error(resp, 400, "invalid_body", "body", "invalid JSON at line %d: %s", jerr.line,
                   jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_error(resp, 400, "invalid_body", "body", "the body must be a JSON object");
        return NULL;
    }
    return v;
}

int64_t api_path_id(const char *s, struct http_response *resp)
{
    int64_t id;
    if (config_parse_int(s, 1, INT64_MAX, &id) < 0) {
        http_error(resp, 400, "invalid_parameter", "id", "id must be a positive integer");
        return -1;
    }
    return id;
}

int api_parse_time(const char *s, int64_t *ms)
{
    char *end;
    double v;

    if (!s || !*s || strlen(s) > 40)
        return -1;
    if (isdigit((unsigned char)s[0]) && strchr(s, '-') == NULL) {
        v = strtod(s, &end);
        if (*end || !isfinite(v) || v < 0 || v > 1e11)
            return -1;
        *ms = (int64_t)llround(v * 1000.0);
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    double frac = 0;
    if (*end == '.') {
        char *fe;
        frac = strtod(end, &fe);
        end = fe;
    }
    if (strcmp(end, "Z") != 0)
        return -1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *ms = (int64_t)t * 1000 + (int64_t)llround(frac * 1000.0);
    return 0;
}

int api_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
                 {"w", 604800000}, {"", 1000}};
    char *end;
    double v;

    if (!s || !*s || strlen(s) > 32 || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
        return -1;
    v = strtod(s, &end);
    if (!isfinite(v) || v <= 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit))
            continue;
        double r = v * units[i].ms;
        if (r < 1 || r > 1e13)
            return -1;
        *ms = (int64_t)llround(r);
        return 0;
    }
    return -1;
}
