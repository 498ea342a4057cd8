/* Agent HTTP handlers. /metrics serves bytes rendered once per sample (and
 * gzipped once per sample), so a scrape costs a reference count and a copy
 * into the socket. */
#include "api.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/config.h"
#include "../lib/now.h"

/* ROUTE_TOKEN: the token when one is set; ROUTE_NEEDS_TOKEN: refused
 * outright on an agent without one (history and, later, control) */
enum { ROUTE_OPEN = 0, ROUTE_TOKEN = 1, ROUTE_METRICS = 2, ROUTE_NEEDS_TOKEN = 3 };

static int token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);

    /* constant time in the length of the presented token */
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

static int authorize(void *appv, const struct http_route *route, struct http_request *req,
                     struct http_response *resp)
{
    struct agent_app *app = appv;
    const char *h;

    if (!app->opts->token) {
        if (route->flags != ROUTE_NEEDS_TOKEN)
            return 0;
        http_error(resp, 403, "token_required", "token_file",
                   "this agent has no token (--token-file), so its %s API is off", req->path);
        return -1;
    }
    if (route->flags == ROUTE_OPEN ||
        (route->flags == ROUTE_METRICS && !app->opts->metrics_need_token))
        return 0;
    h = http_header(req, "Authorization");
    if (h && !strncasecmp(h, "Bearer ", 7) && token_equal(h + 7, app->opts->token))
        return 0;
    http_add_header(resp, "WWW-Authenticate", "Bearer realm=\"gpufleet-agent\"");
    http_error(resp, 401, "unauthorized", "Authorization",
               "a valid bearer token is required");
    return -1;
}

static void release_snapshot(void *arg)
{
    snapshot_put(arg);
}

static struct snapshot *current(struct agent_app *app, struct http_response *resp)
{
    struct snapshot *s = snapshot_get(app->store);
    if (!s)
        http_error(resp, 503, "not_ready", NULL, "the first sample has not been taken yet");
    return s;
}

static void handle_metrics(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct snapshot *s = current(app, resp);
    const char *gz;
    size_t gz_len;

    if (!s)
        return;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    http_add_header(resp, "Vary", "Accept-Encoding");
    if (http_accepts_gzip(req) && snapshot_gzip(s, &gz, &gz_len) == 0) {
        http_add_header(resp, "Content-Encoding", "gzip");
        resp->data = gz;
        resp->data_len = gz_len;
    } else {
        resp->data = s->text;
        resp->data_len = s->text_len;
    }
    resp->release = release_snapshot;
    resp->release_arg = s;
}

static void handle_snapshot(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct snapshot *s = current(app, resp);
    const char *json;
    size_t len;

    (void)req;
    if (!s)
        return;
    if (snapshot_json(s, &json, &len) < 0) {
        snapshot_put(s);
        http_error(resp, 500, "internal", NULL, "cannot render the snapshot");
        return;
    }
    resp->content_type = "application/json";
    resp->data = json;
    resp->data_len = len;
    resp->release = release_snapshot;
    resp->release_arg = s;
}

int api_parse_history_params(const char *since, const char *until, int64_t now_ms,
                             int64_t keep_ms, struct history_params *p, const char **field,
                             char *err, size_t errlen)
{
    /* timestamps are Unix milliseconds; anything before 2000 or past 2200
     * is a unit mistake (seconds, microseconds) worth telling apart */
    const int64_t lo = 946684800000LL, hi = 7258118400000LL;

    p->since_ms = now_ms - keep_ms;
    p->until_ms = 0;
    if (since && config_parse_int(since, lo, hi, &p->since_ms) < 0) {
        *field = "since";
        snprintf(err, errlen, "since must be a Unix time in milliseconds");
        return -1;
    }
    if (until && config_parse_int(until, lo, hi, &p->until_ms) < 0) {
        *field = "until";
        snprintf(err, errlen, "until must be a Unix time in milliseconds");
        return -1;
    }
    if (p->until_ms && p->until_ms < p->since_ms) {
        *field = "until";
        snprintf(err, errlen, "until must not be before since");
        return -1;
    }
    return 0;
}

static void handle_history(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct history_params p;
    const char *field = NULL;
    char err[160];

    if (api_parse_history_params(http_query(req, "since"), http_query(req, "until"),
                                 now_wall_ms(), app->opts->history_minutes * 60000LL, &p, &field,
                                 err, sizeof(err)) < 0) {
        http_error(resp, 400, "invalid_parameter", field, "%s", err);
        return;
    }
    resp->content_type = "application/json";
    history_render_json(app->hist, p.since_ms, p.until_ms, &resp->body);
}

static void handle_healthz(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct snapshot *s = snapshot_get(app->store);
    int64_t now = now_wall_ms();

    (void)req;
    resp->content_type = "application/json";
    if (!s) {
        resp->status = 503;
        buf_puts(&resp->body, "{\"status\":\"starting\"}\n");
        return;
    }
    int64_t age = now - s->ts_ms;
    /* stale if the sampler missed more than three intervals */
    int stale = age > 3 * app->opts->interval_ms + 1000;
    resp->status = stale ? 503 : 200;
    buf_printf(&resp->body,
               "{\"status\":\"%s\",\"last_sample_ms\":%lld,\"sample_age_ms\":%lld,"
               "\"uptime_s\":%lld}\n",
               stale ? "stale" : "ok", (long long)s->ts_ms, (long long)age,
               (long long)((now - app->started_ms) / 1000));
    snapshot_put(s);
}

static const struct http_route routes[] = {
    {"GET", "/metrics", handle_metrics, ROUTE_METRICS, NULL, NULL, 0},
    {"GET", "/api/v1/snapshot", handle_snapshot, ROUTE_TOKEN, NULL, NULL, 0},
    {"GET", "/api/v1/history", handle_history, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"GET", "/healthz", handle_healthz, ROUTE_OPEN, NULL, NULL, 0},
    {"GET", "/api/v1/engine", api_engine_info, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"GET", "/api/v1/engine/ports", api_engine_ports, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"GET", "/api/v1/engine/containers", api_engine_list, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"POST", "/api/v1/engine/containers", api_engine_create, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"GET", "/api/v1/engine/containers/{id}", api_engine_inspect, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"DELETE", "/api/v1/engine/containers/{id}", api_engine_remove, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"GET", "/api/v1/engine/containers/{id}/stats", api_engine_stats, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"GET", "/api/v1/engine/containers/{id}/logs", api_engine_logs, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"GET", "/api/v1/engine/containers/{id}/exec", api_engine_exec, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"GET", "/api/v1/engine/containers/{id}/archive", api_engine_archive, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"PUT", "/api/v1/engine/containers/{id}/archive", api_engine_upload, ROUTE_NEEDS_TOKEN, api_engine_upload_chunk, NULL, 1},
    {"GET", "/api/v1/engine/containers/{id}/files", api_engine_files, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"POST", "/api/v1/engine/containers/{id}/files/mkdir", api_engine_files_mkdir, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"DELETE", "/api/v1/engine/containers/{id}/files", api_engine_files_delete, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"POST", "/api/v1/engine/exec/{id}/resize", api_engine_exec_resize, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"POST", "/api/v1/engine/containers/{id}/{action}", api_engine_action, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"GET", "/api/v1/engine/cleanup", api_engine_cleanup_plan, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"POST", "/api/v1/engine/cleanup", api_engine_cleanup_run, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"GET", "/api/v1/engine/images", api_engine_images, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"DELETE", "/api/v1/engine/images", api_engine_image_remove, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"POST", "/api/v1/engine/images/pull", api_engine_pull, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"POST", "/api/v1/engine/images/push", api_engine_push, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"POST", "/api/v1/engine/images/build", api_engine_build, ROUTE_NEEDS_TOKEN, api_engine_upload_chunk, NULL, 1},
    {"GET", "/api/v1/engine/images/pulls", api_engine_pulls, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"GET", "/api/v1/engine/images/pulls/{id}", api_engine_pull_get, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"GET", "/api/v1/engine/images/pulls/{id}/log", api_engine_build_log, ROUTE_NEEDS_TOKEN, NULL, NULL, 0},
    {"POST", "/api/v1/engine/apps/check", api_apps_check, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"POST", "/api/v1/engine/apps/probe", api_apps_probe, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"POST", "/api/v1/engine/apps/{name}/clone", api_apps_clone, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"DELETE", "/api/v1/engine/apps/{name}", api_apps_remove, ROUTE_NEEDS_TOKEN, NULL, NULL, 1},
    {"PUT", "/api/v1/engine/apps/{name}/files", api_apps_files, ROUTE_NEEDS_TOKEN, api_engine_upload_chunk, NULL, 1},
};

struct http_server *api_start(struct agent_app *app, char *err, size_t errlen)
{
    struct http_config cfg = {
        .listen = app->opts->listen,
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .authorize = authorize,
        .app = app,
        .max_body_bytes = 64 * 1024,
        /* engine calls wait (a stop's grace period): more threads so
         * scrapes are not queued behind them */
        .threads = 4,
    };
    return http_start(&cfg, err, errlen);
}
