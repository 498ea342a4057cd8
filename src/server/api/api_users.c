/* /api/v1/users (admin), /api/v1/tokens (each their own; admin all) and
 * /api/v1/audit (admin). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/config.h"
#include "../../lib/now.h"
#include "../audit.h"
#include "api.h"

void api_users_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "users", auth_users_list(app->auth)));
}

/* The audit row names the user and the fields changed, never a password. */
static void audit_fields(struct http_request *req, const json_t *body)
{
    const char *k;
    json_t *v, *fields = json_array();
    json_object_foreach((json_t *)body, k, v)
    {
        json_array_append_new(fields, json_string(k));
        if (!strcmp(k, "role") || !strcmp(k, "disabled"))
            api_audit_detail(req, k, json_deep_copy(v));
    }
    api_audit_detail(req, "fields", fields);
}

void api_users_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp), *out;

    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "username"));
    api_audit_target(req, "user:%.64s", name ? name : "");
    audit_fields(req, body);
    out = auth_user_create_json(app->auth, body, now_wall_ms(), &e);
    json_decref(body);
    api_reply(resp, 201, out, &e);
}

void api_users_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);

    if (id < 0)
        return;
    api_reply(resp, 200, auth_user_get(app->auth, id, &e), &e);
}

static void target_user(struct server_app *app, struct http_request *req, int64_t id)
{
    json_t *u = auth_user_get(app->auth, id, NULL);
    api_audit_target(req, "user:%s", u ? json_string_value(json_object_get(u, "username")) : req->params[0]);
    json_decref(u);
}

void api_users_update(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);
    json_t *body, *out;

    if (id < 0 || !(body = api_body_json(req, resp)))
        return;
    target_user(app, req, id);
    audit_fields(req, body);
    out = auth_user_update_json(app->auth, id, body, now_wall_ms(), &e);
    json_decref(body);
    api_reply(resp, 200, out, &e);
}

void api_users_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);

    if (id < 0)
        return;
    target_user(app, req, id);
    api_reply_rc(resp, auth_user_delete(app->auth, id, &e), &e);
}

/* ---- tokens ---- */

void api_tokens_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    api_json(resp, 200,
             json_pack("{s:o}", "tokens", auth_tokens_list(app->auth, api_scope(req), now_wall_ms())));
}

void api_tokens_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    struct errinfo e;
    char secret[96];
    int64_t id, now = now_wall_ms(), ttl_ms = 90 * 86400000LL;
    json_t *body = api_body_json(req, resp), *v;

    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    int role = c->who.role;
    api_audit_target(req, "token:%.64s", name ? name : "");

    if ((v = json_object_get(body, "role")) && (role = auth_role_parse(json_string_value(v))) < 0) {
        http_error(resp, 400, "invalid_field", "role", "role must be admin, operator, user or viewer");
        goto out;
    }
    if ((v = json_object_get(body, "expires_in")) &&
        (!json_is_string(v) || timefmt_parse_duration(json_string_value(v), &ttl_ms) < 0)) {
        http_error(resp, 400, "invalid_field", "expires_in", "expires_in must be a duration such as \"30d\"");
        goto out;
    }
    if (auth_token_create(app->auth, c->who.user_id, c->who.role, name, role, now + ttl_ms, now,
                          secret, sizeof(secret), &id, &e) < 0) {
        api_reply_error(resp, &e);
        goto out;
    }
    api_audit_detail(req, "token_id", json_integer(id));
    api_audit_detail(req, "role", json_string(auth_role_name(role)));
    api_json(resp, 201,
             json_pack("{s:I, s:s, s:s, s:I, s:s, s:s}", "id", (json_int_t)id, "name", name, "role",
                       auth_role_name(role), "expires_ms", (json_int_t)(now + ttl_ms), "token",
                       secret, "note", "shown once: store it now"));
    sodium_memzero(secret, sizeof(secret));
out:
    json_decref(body);
}

void api_tokens_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);

    if (id < 0)
        return;
    api_audit_target(req, "token:%lld", (long long)id);
    api_reply_rc(resp, auth_token_revoke(app->auth, id, api_scope(req), now_wall_ms(), &e), &e);
}

/* ---- audit ---- */

void api_audit_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct audit_filter f = {0};
    const char *since, *until, *limit, *before;
    int64_t v;

    if (api_query_text(req, resp, "user", 64, &f.username) < 0 ||
        api_query_text(req, resp, "action", 64, &f.action) < 0 ||
        api_query_text(req, resp, "target", 160, &f.target) < 0 ||
        api_query_text(req, resp, "since", 40, &since) < 0 ||
        api_query_text(req, resp, "until", 40, &until) < 0 ||
        api_query_text(req, resp, "limit", 10, &limit) < 0 ||
        api_query_text(req, resp, "before_id", 20, &before) < 0)
        return;
    if (since && timefmt_parse_time(since, &f.since_ms) < 0) {
        http_error(resp, 400, "invalid_parameter", "since", "since must be Unix seconds or RFC 3339");
        return;
    }
    if (until && timefmt_parse_time(until, &f.until_ms) < 0) {
        http_error(resp, 400, "invalid_parameter", "until", "until must be Unix seconds or RFC 3339");
        return;
    }
    f.limit = 100;
    if (limit) {
        if (config_parse_int(limit, 1, 1000, &v) < 0) {
            http_error(resp, 400, "invalid_parameter", "limit", "limit must be 1-1000");
            return;
        }
        f.limit = (int)v;
    }
    if (before) {
        if (config_parse_int(before, 1, INT64_MAX, &f.before_id) < 0) {
            http_error(resp, 400, "invalid_parameter", "before_id", "before_id must be a positive integer");
            return;
        }
    }
    api_json(resp, 200, audit_query(app->audit, &f));
}
