/* /api/v1/auth: login, logout, who am I, password change, and sessions. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"
#include "../../lib/now.h"
#include "../options.h"
#include "api.h"

#define COOKIE "gf_session"

/* Secure when the browser reached us over TLS: ours, or a trusted proxy's. */
static int secure_cookie(struct server_app *app, struct http_request *req)
{
    const char *proto = http_header(req, "X-Forwarded-Proto");
    if (http_is_tls(req))
        return 1;
    if (app->opts->public_url && !strncmp(app->opts->public_url, "https://", 8))
        return 1;
    return proto && !strcmp(proto, "https") && api_trusted_proxy(app, req);
}

static void set_cookie(struct server_app *app, struct http_request *req,
                       struct http_response *resp, const char *value, int64_t max_age_s)
{
    char c[256];
    snprintf(c, sizeof(c), COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", value,
             (long long)max_age_s, secure_cookie(app, req) ? "; Secure" : "");
    http_add_header(resp, "Set-Cookie", c);
}

/* who is signed in, and the password rules, so forms show them before a
 * password fails them */
static json_t *identity_json(const struct server_app *app, const struct auth_identity *who)
{
    /* routes: whether apps in containers are reachable under /u/ (the UI links them) */
    return json_pack("{s:I, s:s, s:s, s:s, s:b, s:{s:I, s:I}, s:b}", "id", (json_int_t)who->user_id, "username",
                     who->username, "role", auth_role_name(who->role), "method",
                     auth_method_name(who->method), "must_change_password",
                     who->must_change_password, "password_rules", "min_length",
                     (json_int_t)app->opts->min_password_length, "max_bytes", (json_int_t)AUTH_PASSWORD_MAX,
                     "routes", app->opts->routes_file != NULL);
}

void api_auth_login(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    char user[AUTH_USERNAME_MAX + 1], pass[AUTH_PASSWORD_MAX + 1], secret[64];
    struct errinfo e;
    struct auth_identity who;
    int64_t retry_ms, sid, now = now_wall_ms();

    if (auth_parse_login(req->body.data, req->body.len, user, pass, &e) < 0) {
        api_reply_error(resp, &e);
        return;
    }
    api_audit_target(req, "user:%s", user);
    int r = auth_login(app->auth, user, pass, c->source, now, &who, &retry_ms);
    sodium_memzero(pass, sizeof(pass));
    if (r == LOGIN_WAIT || r == LOGIN_BUSY) {
        char ra[32];
        snprintf(ra, sizeof(ra), "%lld", (long long)((retry_ms + 999) / 1000));
        http_add_header(resp, "Retry-After", ra);
        http_error(resp, r == LOGIN_WAIT ? 429 : 503, r == LOGIN_WAIT ? "too_many_attempts" : "busy",
                   NULL, "%s; try again in %s s",
                   r == LOGIN_WAIT ? "too many failed logins" : "too many logins at once", ra);
        api_audit_detail(req, "reason", json_string(r == LOGIN_WAIT ? "backoff" : "busy"));
        return;
    }
    if (r != LOGIN_OK) {
        /* one answer for a wrong name, a wrong password and a disabled user */
        http_error(resp, 401, "invalid_credentials", NULL, "wrong user name or password");
        api_audit_detail(req, "reason", json_string(r == LOGIN_DISABLED ? "disabled" : "bad_credentials"));
        return;
    }
    if (auth_session_create(app->auth, who.user_id, c->source, http_header(req, "User-Agent"), now,
                            secret, sizeof(secret), &sid) < 0) {
        http_error(resp, 500, "internal", NULL, "cannot start a session");
        return;
    }
    who.session_id = sid;
    c->who = who;
    set_cookie(app, req, resp, secret, app->opts->session_max_s);
    sodium_memzero(secret, sizeof(secret));
    api_audit_detail(req, "session_id", json_integer(sid));
    json_t *out = identity_json(app, &who);
    json_object_set_new(out, "idle_timeout_s", json_integer(app->opts->session_idle_s));
    json_object_set_new(out, "expires_ms", json_integer(now + app->opts->session_max_s * 1000));
    api_json(resp, 200, out);
}

/* Whether sign-ups are open, and the password rules, for the login page. */
void api_auth_signup_info(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:b, s:{s:I, s:I}}", "enabled", app->opts->self_registration != 0, "password_rules",
                                  "min_length", (json_int_t)app->opts->min_password_length, "max_bytes",
                                  (json_int_t)AUTH_PASSWORD_MAX));
}

/* A sign-up: an account that waits for an admin (202); 404 while
 * self_registration is off. */
void api_auth_signup(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    char user[AUTH_USERNAME_MAX + 1], pass[AUTH_PASSWORD_MAX + 1];
    struct errinfo e;
    int64_t retry_ms = 0;

    if (!app->opts->self_registration) {
        http_error(resp, 404, "not_found", NULL, "self-registration is off: an admin makes accounts");
        return;
    }
    if (auth_parse_login(req->body.data, req->body.len, user, pass, &e) < 0) {
        api_reply_error(resp, &e);
        return;
    }
    api_audit_target(req, "user:%s", user);
    int rc = auth_signup(app->auth, user, pass, c->source, now_wall_ms(), &retry_ms, &e);
    sodium_memzero(pass, sizeof(pass));
    if (rc < 0) {
        if (retry_ms > 0) {
            char ra[32];
            snprintf(ra, sizeof(ra), "%lld", (long long)((retry_ms + 999) / 1000));
            http_add_header(resp, "Retry-After", ra);
        }
        api_reply_error(resp, &e);
        return;
    }
    log_info("auth: %s signed up; waiting for an admin's approval", user);
    api_json(resp, 202, json_pack("{s:s, s:b}", "username", user, "pending", 1));
}

void api_auth_logout(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);

    if (c->who.method == AUTH_SESSION)
        auth_session_revoke(app->auth, c->who.session_id, 0, now_wall_ms(), NULL);
    api_audit_target(req, "session:%lld", (long long)c->who.session_id);
    set_cookie(app, req, resp, "", 0);
    api_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

void api_auth_me(void *appv, struct http_request *req, struct http_response *resp)
{
    api_json(resp, 200, identity_json(appv, &api_ctx(req)->who));
}

void api_auth_password(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    struct errinfo e;
    json_t *body = api_body_json(req, resp);

    if (!body)
        return;
    api_audit_target(req, "user:%s", c->who.username);
    const char *cur = json_string_value(json_object_get(body, "current_password"));
    const char *next = json_string_value(json_object_get(body, "new_password"));
    if (!next) {
        http_error(resp, 400, "invalid_field", "new_password", "new_password is required");
        goto out;
    }
    if (c->who.method == AUTH_PROXY) {
        http_error(resp, 409, "conflict", NULL, "your sign-in comes from the proxy; it has no password here");
        goto out;
    }
    /* what does not depend on the stored password first: a refusal before
     * the current one is verified says nothing about it */
    if (!cur || !strcmp(cur, next)) {
        http_error(resp, 400, "invalid_field", cur ? "new_password" : "current_password",
                   cur ? "new_password must differ from current_password"
                       : "current_password is required");
        goto out;
    }
    char why[128], retry[32];
    if (auth_password_policy(c->who.username, next, (int)app->opts->min_password_length, why,
                             sizeof(why)) < 0) {
        http_error(resp, 400, "invalid_field", "new_password", "new_password: %s", why);
        goto out;
    }
    int64_t wait_ms;
    switch (auth_recheck_password(app->auth, c->who.user_id, cur, c->source, now_wall_ms(), &wait_ms)) {
    case LOGIN_OK:
        break;
    case LOGIN_WAIT:
    case LOGIN_BUSY:
        snprintf(retry, sizeof(retry), "%lld", (long long)((wait_ms + 999) / 1000));
        http_add_header(resp, "Retry-After", retry);
        http_error(resp, 429, "too_many_attempts", "current_password",
                   "too many wrong passwords: try again in %s s", retry);
        goto out;
    default:
        http_error(resp, 403, "invalid_credentials", "current_password",
                   "current_password is wrong");
        goto out;
    }
    if (auth_set_password(app->auth, c->who.user_id, next, 0, c->who.session_id, now_wall_ms(),
                          &e) < 0) {
        if (!strcmp(e.field, "password"))
            snprintf(e.field, sizeof(e.field), "new_password");
        api_reply_error(resp, &e);
        goto out;
    }
    api_json(resp, 200, json_pack("{s:b, s:s}", "ok", 1, "note", "your other sessions were ended"));
out:
    json_decref(body);
}

void api_sessions_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    json_t *list = auth_sessions_list(app->auth, api_scope(req), now_wall_ms());
    size_t i;
    json_t *s;

    json_array_foreach(list, i, s)
    {
        int64_t id = json_integer_value(json_object_get(s, "id"));
        json_object_set_new(s, "current", json_boolean(c->who.method == AUTH_SESSION &&
                                                       id == c->who.session_id));
    }
    api_json(resp, 200, json_pack("{s:o}", "sessions", list));
}

void api_sessions_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);

    if (id < 0)
        return;
    api_audit_target(req, "session:%lld", (long long)id);
    api_reply_rc(resp, auth_session_revoke(app->auth, id, api_scope(req), now_wall_ms(), &e), &e);
}
