/* The route table, readable in one screen, and helpers every resource uses. */
#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/config.h"
#include "../../lib/expo.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../audit.h"
#include "../ratelimit.h"
#include "api.h"

#define PUBLIC ROLE_NONE
#define VIEWER ROLE_VIEWER
#define USER ROLE_USER
#define OPERATOR ROLE_OPERATOR
#define ADMIN ROLE_ADMIN
#define ANYONE (VIEWER | R_PWCHANGE) /* any signed-in caller, even before a password change */

/* The one place authorization is decided: least role, rules, audit action;
 * the last field marks routes that wait on a host (run off the server's
 * threads, see http_route.offload). */
static const struct http_route routes[] = {
    {"POST", "/api/v1/auth/login", api_auth_login, PUBLIC, NULL, "auth.login", 0},
    {"GET", "/api/v1/auth/signup", api_auth_signup_info, PUBLIC, NULL, NULL, 0},
    {"POST", "/api/v1/auth/signup", api_auth_signup, PUBLIC, NULL, "auth.signup", 0},
    {"POST", "/api/v1/auth/logout", api_auth_logout, ANYONE, NULL, "auth.logout", 0},
    {"GET", "/api/v1/auth/me", api_auth_me, ANYONE, NULL, NULL, 0},
    {"POST", "/api/v1/auth/password", api_auth_password, ANYONE, NULL, "auth.password", 0},
    {"GET", "/api/v1/auth/sessions", api_sessions_list, ANYONE | R_OWN, NULL, NULL, 0},
    {"DELETE", "/api/v1/auth/sessions/{id}", api_sessions_delete, ANYONE | R_OWN, NULL, "session.revoke", 0},
    {"GET", "/api/v1/tokens", api_tokens_list, VIEWER | R_OWN, NULL, NULL, 0},
    /* a token never makes tokens: a leaked one, or one meant to expire soon,
     * could otherwise mint others that outlive it */
    {"POST", "/api/v1/tokens", api_tokens_create, VIEWER | R_PERSON, NULL, "token.create", 0},
    {"DELETE", "/api/v1/tokens/{id}", api_tokens_delete, VIEWER | R_OWN, NULL, "token.revoke", 0},
    {"GET", "/api/v1/users", api_users_list, ADMIN, NULL, NULL, 0},
    {"POST", "/api/v1/users", api_users_create, ADMIN, NULL, "user.create", 0},
    {"GET", "/api/v1/users/{id}", api_users_get, ADMIN, NULL, NULL, 0},
    {"PATCH", "/api/v1/users/{id}", api_users_update, ADMIN, NULL, "user.update", 0},
    {"DELETE", "/api/v1/users/{id}", api_users_delete, ADMIN, NULL, "user.delete", 0},
    {"GET", "/api/v1/audit", api_audit_list, ADMIN, NULL, NULL, 0},
    {"GET", "/api/v1/settings", api_settings_get, ADMIN, NULL, NULL, 0},
    {"PATCH", "/api/v1/settings", api_settings_update, ADMIN, NULL, "settings.update", 0},
    {"GET", "/api/v1/servers", api_servers_list, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/servers", api_servers_create, OPERATOR, NULL, "server.create", 0},
    {"GET", "/api/v1/servers/{id}", api_servers_get, VIEWER, NULL, NULL, 0},
    {"PUT", "/api/v1/servers/{id}", api_servers_update, OPERATOR, NULL, "server.update", 0},
    {"PATCH", "/api/v1/servers/{id}", api_servers_update, OPERATOR, NULL, "server.update", 0},
    {"DELETE", "/api/v1/servers/{id}", api_servers_delete, OPERATOR, NULL, "server.delete", 0},
    {"POST", "/api/v1/servers/{id}/check", api_servers_check, OPERATOR, NULL, "server.check", 1},
    {"GET", "/api/v1/servers/{id}/events", api_servers_events, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/prometheus/sd", api_promsd, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/health/fleet", api_health_fleet, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/bmcs", api_bmcs_list, VIEWER, NULL, NULL, 0},
    {"PUT", "/api/v1/servers/{id}/bmc", api_bmc_set, ADMIN, NULL, "bmc.set", 0},
    {"DELETE", "/api/v1/servers/{id}/bmc", api_bmc_delete, ADMIN, NULL, "bmc.delete", 0},
    {"POST", "/api/v1/fleet/plan", api_fleet_plan, ADMIN, NULL, NULL, 0},
    {"POST", "/api/v1/fleet/apply", api_fleet_apply, ADMIN, NULL, "fleet.apply", 0},
    {"GET", "/api/v1/fleet/apply", api_fleet_apply_status, ADMIN, NULL, NULL, 0},
    {"GET", "/api/v1/fleet/ssh-key", api_fleet_ssh_key, ADMIN, NULL, NULL, 0},
    {"GET", "/api/v1/servers/{id}/shell", api_servers_shell, ADMIN, NULL, "host.shell", 1},
    {"GET", "/api/v1/servers/{id}/cleanup", api_cleanup_plan, OPERATOR, NULL, NULL, 1},
    {"POST", "/api/v1/servers/{id}/cleanup", api_cleanup_run, OPERATOR, NULL, "host.cleanup", 1},
    {"GET", "/api/v1/cleanup", api_fleet_cleanup_plan, OPERATOR, NULL, NULL, 1},
    {"POST", "/api/v1/cleanup", api_fleet_cleanup_run, OPERATOR, NULL, "fleet.cleanup", 1},
    {"GET", "/api/v1/servers/{id}/images", api_images_list, VIEWER, NULL, NULL, 1},
    {"DELETE", "/api/v1/servers/{id}/images", api_images_remove, OPERATOR, NULL, "image.remove", 1},
    {"POST", "/api/v1/servers/{id}/images/pull", api_images_pull, OPERATOR, NULL, "image.pull", 1},
    {"POST", "/api/v1/servers/{id}/images/push", api_images_push, OPERATOR, NULL, "image.push", 1},
    {"POST", "/api/v1/servers/{id}/images/build", api_images_build, OPERATOR, api_upload_chunk, "image.build", 1},
    {"GET", "/api/v1/registries", api_registries_list, OPERATOR, NULL, NULL, 0},
    {"PUT", "/api/v1/registries/{registry}", api_registries_set, ADMIN, NULL, "registry.set", 0},
    {"DELETE", "/api/v1/registries/{registry}", api_registries_delete, ADMIN, NULL, "registry.delete", 0},
    {"GET", "/api/v1/servers/{id}/images/pulls", api_images_pulls, VIEWER, NULL, NULL, 1},
    {"GET", "/api/v1/servers/{id}/images/pulls/{pull}", api_images_pull_get, VIEWER, NULL, NULL, 1},
    {"GET", "/api/v1/servers/{id}/images/pulls/{pull}/log/live", api_images_build_log_live, VIEWER, NULL, NULL, 1},
    {"GET", "/api/v1/targets", api_targets_list, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/series", api_query_series, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/labels", api_query_labels, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/label/{name}/values", api_query_label_values, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/query_range", api_query_range, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/latest", api_query_latest, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/export", api_export, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/import/prometheus", api_import_done, OPERATOR, api_import_stream, "data.import", 0},
    /* Prometheus's query API, for Grafana: <server>/prometheus is the data source URL */
    {"GET", "/prometheus/api/v1/query", api_prom_query, VIEWER, NULL, NULL, 0},
    {"POST", "/prometheus/api/v1/query", api_prom_query, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/query_range", api_prom_query_range, VIEWER, NULL, NULL, 0},
    {"POST", "/prometheus/api/v1/query_range", api_prom_query_range, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/series", api_prom_series, VIEWER, NULL, NULL, 0},
    {"POST", "/prometheus/api/v1/series", api_prom_series, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/labels", api_prom_labels, VIEWER, NULL, NULL, 0},
    {"POST", "/prometheus/api/v1/labels", api_prom_labels, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/label/{name}/values", api_prom_label_values, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/status/buildinfo", api_prom_buildinfo, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/rules", api_prom_rules, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/alerts", api_prom_alerts, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/metadata", api_prom_metadata, VIEWER, NULL, NULL, 0},
    {"GET", "/prometheus/api/v1/query_exemplars", api_prom_empty, VIEWER, NULL, NULL, 0},
    {"POST", "/prometheus/api/v1/query_exemplars", api_prom_empty, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/live", api_live, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/fleet", api_fleet, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/apps", api_apps_list, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/apps", api_apps_install, USER, NULL, "app.install", 1},
    {"POST", "/api/v1/apps/import", api_apps_import, USER, api_upload_chunk, "app.import", 1},
    {"GET", "/api/v1/apps/{name}", api_apps_get, VIEWER, NULL, NULL, 0},
    {"DELETE", "/api/v1/apps/{name}", api_apps_remove, USER, NULL, "app.deinstall", 1},
    {"POST", "/api/v1/apps/{name}/promote", api_apps_promote, OPERATOR, NULL, "template.promote", 0},
    {"GET", "/api/v1/apps/{name}/export", api_apps_export, USER, NULL, "app.export", 1},
    {"POST", "/api/v1/apps/{name}/{action}", api_apps_action, USER, NULL, "app.action", 1},
    {"GET", "/api/v1/templates", api_templates_list, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/templates", api_templates_create, OPERATOR, NULL, "template.create", 0},
    {"GET", "/api/v1/templates/export", api_templates_export, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/templates/import", api_templates_import, OPERATOR, NULL, "template.import", 0},
    {"GET", "/api/v1/templates/{slug}", api_templates_get, VIEWER, NULL, NULL, 0},
    {"PUT", "/api/v1/templates/{slug}", api_templates_put, OPERATOR, NULL, "template.update", 0},
    {"DELETE", "/api/v1/templates/{slug}", api_templates_delete, OPERATOR, NULL, "template.delete", 0},
    {"GET", "/api/v1/containers", api_containers_list, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/containers", api_containers_create, USER, NULL, "container.create", 1},
    {"GET", "/api/v1/containers/unmanaged", api_containers_unmanaged, OPERATOR, NULL, NULL, 1},
    {"POST", "/api/v1/containers/unmanaged/{server}/{id}/{action}", api_containers_unmanaged_action, ADMIN, NULL, "container.unmanaged_action", 1},
    {"GET", "/api/v1/containers/{id}", api_containers_get, VIEWER, NULL, NULL, 0},
    {"DELETE", "/api/v1/containers/{id}", api_containers_delete, USER, NULL, "container.remove", 1},
    {"GET", "/api/v1/containers/{id}/stats", api_containers_stats, VIEWER, NULL, NULL, 1},
    {"GET", "/api/v1/containers/{id}/logs", api_containers_logs, VIEWER, NULL, NULL, 1},
    {"GET", "/api/v1/containers/{id}/logs/live", api_containers_logs_live, VIEWER, NULL, NULL, 1},
    {"GET", "/api/v1/containers/{id}/files", api_files_list, USER, NULL, NULL, 1},
    {"GET", "/api/v1/containers/{id}/files/download", api_files_download, USER, NULL, "container.file_download", 1},
    {"PUT", "/api/v1/containers/{id}/files/upload", api_files_upload, USER, api_files_upload_chunk, "container.file_upload", 1},
    {"POST", "/api/v1/containers/{id}/files/mkdir", api_files_mkdir, USER, NULL, "container.file_mkdir", 1},
    {"DELETE", "/api/v1/containers/{id}/files", api_files_delete, USER, NULL, "container.file_delete", 1},
    {"GET", "/api/v1/routes/auth", api_routes_auth, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/containers/{id}/terminal", api_containers_terminal, USER, NULL, "container.terminal", 1},
    {"POST", "/api/v1/containers/{id}/{action}", api_containers_action, USER, NULL, "container.action", 1},
    {"GET", "/api/v1/gpus", api_gpus, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/quota", api_quota_mine, VIEWER, NULL, NULL, 0},
    {"GET", "/api/v1/quotas", api_quotas_list, ADMIN, NULL, NULL, 0},
    {"PUT", "/api/v1/quotas/{user}", api_quotas_set, ADMIN, NULL, "quota.update", 0},
    {"DELETE", "/api/v1/quotas/{user}", api_quotas_delete, ADMIN, NULL, "quota.delete", 0},
    {"GET", "/api/v1/alerts", api_alerts_list, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/alerts/{id}/ack", api_alerts_ack, OPERATOR, NULL, "alert.ack", 0},
    {"DELETE", "/api/v1/alerts/{id}/ack", api_alerts_unack, OPERATOR, NULL, "alert.unack", 0},
    {"POST", "/api/v1/alerts/rules/preview", api_alert_rules_preview, OPERATOR, NULL, NULL, 0},
    {"GET", "/api/v1/alerts/routes", api_alert_routes_get, VIEWER, NULL, NULL, 0},
    {"PUT", "/api/v1/alerts/routes", api_alert_routes_set, OPERATOR, NULL, "alert_routes.update", 0},
    {"GET", "/api/v1/alerts/rules", api_alert_rules_list, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/alerts/rules", api_alert_rules_create, OPERATOR, NULL, "alert_rule.create", 0},
    {"GET", "/api/v1/alerts/rules/{id}", api_alert_rules_get, VIEWER, NULL, NULL, 0},
    {"PUT", "/api/v1/alerts/rules/{id}", api_alert_rules_update, OPERATOR, NULL, "alert_rule.update", 0},
    {"DELETE", "/api/v1/alerts/rules/{id}", api_alert_rules_delete, OPERATOR, NULL, "alert_rule.delete", 0},
    {"GET", "/api/v1/silences", api_silences_list, VIEWER, NULL, NULL, 0},
    {"POST", "/api/v1/silences", api_silences_create, OPERATOR, NULL, "silence.create", 0},
    {"DELETE", "/api/v1/silences/{id}", api_silences_delete, OPERATOR, NULL, "silence.delete", 0},
    {"GET", "/api/v1/receivers", api_receivers_list, OPERATOR, NULL, NULL, 0},
    {"POST", "/api/v1/receivers", api_receivers_create, OPERATOR, NULL, "receiver.create", 0},
    {"PUT", "/api/v1/receivers/{id}", api_receivers_update, OPERATOR, NULL, "receiver.update", 0},
    {"DELETE", "/api/v1/receivers/{id}", api_receivers_delete, OPERATOR, NULL, "receiver.delete", 0},
    {"POST", "/api/v1/receivers/{id}/test", api_receivers_test, OPERATOR, NULL, "receiver.test", 0},
    {"GET", "/api/v1/notifications", api_notifications_list, OPERATOR, NULL, NULL, 0},
    {"POST", "/api/v1/admin/checkpoint", api_checkpoint, ADMIN, NULL, "store.checkpoint", 0},
    {"GET", "/healthz", api_healthz, PUBLIC, NULL, NULL, 0},
    {"GET", "/metrics", api_metrics, VIEWER, NULL, NULL, 0},
    {"GET", "/{*}", api_ui, PUBLIC, NULL, NULL, 0}, /* the web UI; last: it takes what is left */
};

const struct http_route *api_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}

/* ---- the request context ---- */

static void ctx_free(void *p)
{
    struct api_ctx *c = p;
    json_decref(c->details);
    free(c);
}

struct api_ctx *api_ctx(struct http_request *req)
{
    if (!req->ctx) {
        req->ctx = xcalloc(1, sizeof(struct api_ctx));
        req->ctx_free = ctx_free;
    }
    return req->ctx;
}

int64_t api_scope(struct http_request *req)
{
    struct api_ctx *c = api_ctx(req);
    if (req->route && (req->route->flags & R_OWN) && c->who.role < ROLE_ADMIN)
        return c->who.user_id;
    return 0;
}

int64_t api_read_scope(struct http_request *req)
{
    struct api_ctx *c = api_ctx(req);
    return c->who.role == ROLE_USER ? c->who.user_id : 0;
}

int64_t api_act_scope(struct http_request *req)
{
    struct api_ctx *c = api_ctx(req);
    return c->who.role < ROLE_OPERATOR ? c->who.user_id : 0;
}

void api_audit_target(struct http_request *req, const char *fmt, ...)
{
    struct api_ctx *c = api_ctx(req);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->target, sizeof(c->target), fmt, ap);
    va_end(ap);
}

void api_audit_detail(struct http_request *req, const char *key, json_t *value)
{
    struct api_ctx *c = api_ctx(req);
    if (!c->details)
        c->details = json_object();
    json_object_set_new(c->details, key, value);
}

void api_reply_error(struct http_response *resp, const struct errinfo *e)
{
    http_error(resp, e->status, e->code, e->field[0] ? e->field : NULL, "%s", e->message);
}

void api_reply(struct http_response *resp, int status, json_t *out, const struct errinfo *e)
{
    if (!out)
        api_reply_error(resp, e);
    else
        api_json(resp, status, out);
}

void api_reply_rc(struct http_response *resp, int rc, const struct errinfo *e)
{
    api_reply(resp, 200, rc < 0 ? NULL : json_pack("{s:b}", "ok", 1), e);
}

int api_query_text(struct http_request *req, struct http_response *resp, const char *name,
                   size_t max, const char **out)
{
    if (http_query_strict(req, name, out) < 0) {
        http_error(resp, 400, "invalid_parameter", name, "%s must not contain NUL bytes", name);
        return -1;
    }
    if (!*out)
        return 0;
    size_t n = strlen(*out);
    if (n > max || !expo_valid_utf8(*out, n)) {
        http_error(resp, 400, "invalid_parameter", name, "%s must be valid UTF-8 of at most %zu bytes",
                   name, max);
        return -1;
    }
    return 0;
}

/* ---- who is calling ---- */

static int listed(const char *list, const char *addr)
{
    size_t al = strlen(addr);
    while (list && *list && al) {
        list += strspn(list, " ,");
        size_t n = strcspn(list, " ,");
        if (n == al && !strncmp(list, addr, n))
            return 1;
        list += n;
    }
    return 0;
}

int api_trusted_proxy(struct server_app *app, struct http_request *req)
{
    return app->opts->trusted_proxies && listed(app->opts->trusted_proxies, http_client_addr(req));
}

/* The client: the peer, or for a trusted proxy the last address it added
 * to X-Forwarded-For. */
static void find_source(struct server_app *app, struct http_request *req, struct api_ctx *c,
                        int *via_proxy)
{
    const char *peer = http_client_addr(req);
    const char *xff;

    snprintf(c->source, sizeof(c->source), "%s", peer);
    *via_proxy = app->opts->trusted_proxies && listed(app->opts->trusted_proxies, peer);
    if (!*via_proxy || !(xff = http_header(req, "X-Forwarded-For")))
        return;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    last += strspn(last, " ");
    size_t n = strcspn(last, " ");
    if (n == 0 || n >= sizeof(c->source))
        return;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)last[i]) && !strchr(".:", last[i]))
            return;
    memcpy(c->source, last, n);
    c->source[n] = '\0';
}

/* Fills c->who from a bearer token, trusted proxy headers or the session
 * cookie. Returns -1 when a credential was offered and is not valid. */
static int identify(struct server_app *app, struct http_request *req, struct api_ctx *c,
                    int via_proxy)
{
    char secret[AUTH_SECRET_MAX + 1];
    int64_t now = now_wall_ms();
    const char *h = http_header(req, "Authorization");

    if (h) {
        if (auth_bearer_get(h, secret, sizeof(secret)) < 0 ||
            auth_identify_token(app->auth, secret, now, &c->who) < 0)
            return -1;
        return 0;
    }
    if (via_proxy && (h = http_header(req, app->opts->proxy_user_header))) {
        const char *role = http_header(req, app->opts->proxy_role_header);
        return auth_identify_proxy(app->auth, h, role, now, &c->who);
    }
    h = http_header(req, "Cookie");
    if (h && auth_cookie_get(h, "gf_session", secret, sizeof(secret)) == 0)
        return auth_identify_session(app->auth, secret, now, &c->who);
    return 0;
}

/* Whether a scheme://host origin is this server's own. */
static int own_origin(struct server_app *app, struct http_request *req, const char *o, size_t n)
{
    const char *host = http_header(req, "Host");
    const char *pub = app->opts->public_url;

    if (pub) {
        const char *hs = strstr(pub, "://");
        size_t pl = hs ? (size_t)(hs + 3 - pub) + strcspn(hs + 3, "/") : 0;
        if (pl && n == pl && !strncmp(o, pub, n))
            return 1;
    }
    if (!host || !*host)
        return 0;
    size_t hl = strlen(host);
    if (n > 7 && !strncmp(o, "http://", 7) && n - 7 == hl && !strncmp(o + 7, host, hl))
        return 1;
    if (n > 8 && !strncmp(o, "https://", 8) && n - 8 == hl && !strncmp(o + 8, host, hl))
        return 1;
    return 0;
}

int api_same_origin(struct server_app *app, struct http_request *req)
{
    const char *o = http_header(req, "Origin");
    if (o)
        return own_origin(app, req, o, strlen(o));
    const char *ref = http_header(req, "Referer");
    if (!ref)
        return 0;
    const char *hs = strstr(ref, "://");
    if (!hs)
        return 0;
    return own_origin(app, req, ref, (size_t)(hs + 3 - ref) + strcspn(hs + 3, "/?#"));
}

static int mutating(const char *method)
{
    return strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "OPTIONS");
}

/* Takes a request from the caller's bucket: its credential's, or its
 * address's when anonymous. The health check and the UI's files are not
 * counted (monitors and page loads). 0, or -1 having replied 429. */
static int within_rate(struct server_app *app, const struct http_route *route,
                       struct http_request *req, struct http_response *resp)
{
    struct api_ctx *c = api_ctx(req);
    char key[96], retry[32];
    int64_t wait_ms;

    /* nor nginx's check of each request to an app in a container (a
     * notebook's page load is a hundred of them) */
    if (!app->limits || route->handler == api_healthz || route->handler == api_ui ||
        route->handler == api_routes_auth)
        return 0;
    if (c->who.method == AUTH_TOKEN)
        snprintf(key, sizeof(key), "t:%lld", (long long)c->who.token_id);
    else if (c->who.method == AUTH_SESSION)
        snprintf(key, sizeof(key), "s:%lld", (long long)c->who.session_id);
    else if (c->who.user_id)
        snprintf(key, sizeof(key), "u:%lld", (long long)c->who.user_id);
    else
        snprintf(key, sizeof(key), "a:%s", c->source);
    if (ratelimit_take(app->limits, key, now_wall_ms(), &wait_ms) == 0)
        return 0;
    snprintf(retry, sizeof(retry), "%lld", (long long)((wait_ms + 999) / 1000));
    http_add_header(resp, "Retry-After", retry);
    http_error(resp, 429, "rate_limited", NULL,
               "more than rate_limit_per_s (%lld) requests a second; try again in %s s",
               (long long)app->opts->rate_limit_per_s, retry);
    return -1;
}

static int authorize(void *appv, const struct http_route *route, struct http_request *req,
                     struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    int min_role = route->flags & R_ROLE_MASK, via_proxy;

    find_source(app, req, c, &via_proxy);
    int bad = identify(app, req, c, via_proxy) < 0;
    if (within_rate(app, route, req, resp) < 0)
        return -1;
    if (min_role == PUBLIC) {
        /* login by a page of another site would plant that site's session */
        if (mutating(req->method) && (http_header(req, "Origin") || http_header(req, "Referer")) &&
            !api_same_origin(app, req)) {
            http_error(resp, 403, "csrf", "Origin", "cross-site request refused");
            return -1;
        }
        return 0;
    }
    if (bad || !c->who.user_id) {
        http_add_header(resp, "WWW-Authenticate", "Bearer realm=\"gpufleet\"");
        http_error(resp, 401, "unauthorized", bad ? "Authorization" : NULL,
                   bad ? "the credential is invalid, expired or revoked"
                       : "sign in, or send an API token as Authorization: Bearer");
        return -1;
    }
    if (mutating(req->method) && c->who.method != AUTH_TOKEN && !api_same_origin(app, req)) {
        http_error(resp, 403, "csrf", "Origin",
                   "a signed-in browser request that changes something must come from this"
                   " server's own pages (Origin or Referer)");
        return -1;
    }
    if (c->who.must_change_password && !(route->flags & R_PWCHANGE)) {
        http_error(resp, 403, "password_change_required", "password",
                   "change your password first (POST /api/v1/auth/password)");
        return -1;
    }
    if ((route->flags & R_PERSON) && c->who.method == AUTH_TOKEN) {
        http_error(resp, 403, "forbidden", "Authorization",
                   "%s %s is for a signed-in person, not an API token (sign in, or run `gpufleet"
                   " token add` at the server)", route->method, route->pattern);
        return -1;
    }
    if (c->who.role < min_role) {
        http_error(resp, 403, "forbidden", NULL, "%s %s needs the %s role; you are %s",
                   route->method, route->pattern, auth_role_name(min_role),
                   auth_role_name(c->who.role));
        return -1;
    }
    return 0;
}

/* One audit row per mutating request that reached a decision. */
static void after(void *appv, const struct http_route *route, struct http_request *req,
                  const struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);

    if (!route->action || !app->audit)
        return;
    /* anonymous knocking on closed doors is not a change; failed logins are */
    if (resp->status == 401 && strcmp(route->action, "auth.login"))
        return;
    if (!c->target[0] && req->nparams)
        snprintf(c->target, sizeof(c->target), "%s", req->params[0]);
    struct audit_entry e = {
        .ts_ms = now_wall_ms(),
        .user_id = c->who.user_id,
        .username = c->who.username,
        .role = c->who.user_id ? auth_role_name(c->who.role) : "",
        .source = c->source,
        .action = route->action,
        .target = c->target,
        .result = resp->status < 400                          ? "ok"
                  : resp->status == 401 || resp->status == 403 ? "denied"
                                                               : "failed",
        .status = resp->status,
        .details = c->details,
    };
    audit_write(app->audit, &e);
}

struct http_server *api_start(struct server_app *app, const char *tls_cert_pem,
                              const char *tls_key_pem, char *err, size_t errlen)
{
    struct http_config cfg = {
        .listen = app->opts->listen,
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .authorize = authorize,
        .after = after,
        .tls_cert_pem = tls_cert_pem,
        .tls_key_pem = tls_key_pem,
        .app = app,
        .max_body_bytes = 1u << 20,
        .threads = 6,
        .max_connections = (unsigned)app->opts->http_max_connections,
        .max_per_address = (unsigned)app->opts->http_max_connections_per_address,
        .header_timeout_ms = app->opts->http_header_timeout_ms,
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
