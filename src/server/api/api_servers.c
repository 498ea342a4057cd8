/* /api/v1/servers: the fleet registry over REST. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/websocket.h"
#include "../fleet.h"
#include "../scrape.h"
#include "api.h"

/* Browsers re-read /api/v1/fleet when the registry changed. */
static void announce_change(struct server_app *app)
{
    static const char msg[] = "{\"type\":\"servers\"}";
    if (app->hub)
        ws_hub_broadcast(app->hub, msg, sizeof(msg) - 1);
}

void api_servers_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "servers", reg_list(app->reg)));
}

void api_servers_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp), *out;

    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    api_audit_target(req, "server:%.64s", name ? name : "");
    /* each agent gets its own token unless the caller brings one; it is
     * shown once, here, for the agent's --token-file */
    char token[64] = "";
    if (!json_object_get(body, "agent_token")) {
        unsigned char raw[32];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2base64(token, sizeof(token), raw, sizeof(raw),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        json_object_set_new(body, "agent_token", json_string(token));
        api_audit_detail(req, "agent_token", json_string("generated"));
    }
    out = reg_create(app->reg, body, &e);
    json_decref(body);
    if (!out) {
        sodium_memzero(token, sizeof(token));
        api_reply_error(resp, &e);
        return;
    }
    if (token[0])
        json_object_set_new(out, "agent_token", json_string(token));
    sodium_memzero(token, sizeof(token));
    api_json(resp, 201, out);
    announce_change(app);
}

void api_servers_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);
    json_t *out;

    if (id < 0)
        return;
    out = reg_get(app->reg, id, &e);
    api_reply(resp, 200, out, &e);
}

/* Whether body moves the server (another address or agent port) without
 * bringing its agent token: the stored one would then be sent to the new
 * place. An admin may keep it on purpose (keep_agent_token: true). Replies
 * and returns -1 when refused; takes keep_agent_token out of body. */
static int token_follows(struct http_request *req, struct http_response *resp, const json_t *before,
                         json_t *body)
{
    int keep = json_is_true(json_object_get(body, "keep_agent_token"));
    json_object_del(body, "keep_agent_token");
    if (!before || json_object_get(body, "agent_token"))
        return 0;
    json_t *a = json_object_get(body, "address"), *p = json_object_get(body, "agent_port");
    int moves = (a && !json_equal(a, json_object_get(before, "address"))) ||
                (p && !json_equal(p, json_object_get(before, "agent_port")));
    if (!moves || !json_is_true(json_object_get(before, "agent_token_set")))
        return 0;
    if (keep && api_ctx(req)->who.role >= ROLE_ADMIN) {
        api_audit_detail(req, "agent_token", json_string("kept across a move"));
        return 0;
    }
    http_error(resp, 400, "invalid_field", "agent_token",
               "a new address or agent_port needs the agent's token again: the stored one is"
               " never sent to a new place on its own%s",
               keep ? " (keep_agent_token is for admins)" : "");
    return -1;
}

void api_servers_update(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);
    json_t *body, *out;

    if (id < 0 || !(body = api_body_json(req, resp)))
        return;
    json_t *before = reg_get(app->reg, id, &e);
    api_audit_target(req, "server:%.64s", before ? json_string_value(json_object_get(before, "name")) : req->params[0]);
    if (token_follows(req, resp, before, body) < 0) {
        json_decref(before);
        json_decref(body);
        return;
    }
    out = reg_update(app->reg, id, body, &e);
    json_decref(body);
    const char *old_name = json_string_value(json_object_get(before, "name"));
    const char *new_name = json_string_value(json_object_get(out, "name"));
    if (out && old_name && new_name && strcmp(old_name, new_name) && app->fleet)
        fleet_forget(app->fleet, old_name); /* renamed: the old name's state is stale */
    json_decref(before);
    if (out)
        announce_change(app);
    api_reply(resp, 200, out, &e);
}

void api_servers_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);

    if (id < 0)
        return;
    json_t *before = reg_get(app->reg, id, &e);
    api_audit_target(req, "server:%.64s", before ? json_string_value(json_object_get(before, "name")) : req->params[0]);
    if (reg_delete(app->reg, id, &e) < 0) {
        json_decref(before);
        api_reply_error(resp, &e);
        return;
    }
    if (before && app->fleet)
        fleet_forget(app->fleet, json_string_value(json_object_get(before, "name")));
    json_decref(before);
    resp->status = 204;
    announce_change(app);
}

void api_servers_check(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);
    struct reg_target *targets;
    json_t *srv;

    if (id < 0)
        return;
    srv = reg_get(app->reg, id, &e);
    if (!srv) {
        api_reply_error(resp, &e);
        return;
    }
    api_audit_target(req, "server:%.64s", json_string_value(json_object_get(srv, "name")));
    /* the token is not in the JSON view: take it from the target list */
    size_t n = reg_targets(app->reg, 0, 0, &targets);
    const char *token = "";
    for (size_t i = 0; i < n; i++)
        if (targets[i].server_id == id && targets[i].is_agent)
            token = targets[i].token;
    json_t *out = scrape_check_agent(json_string_value(json_object_get(srv, "address")),
                                     (int)json_integer_value(json_object_get(srv, "agent_port")),
                                     token, 5000);
    if (targets)
        explicit_bzero(targets, n * sizeof(*targets));
    free(targets);
    json_object_set_new(out, "server", json_string(json_string_value(json_object_get(srv, "name"))));
    json_decref(srv);
    api_json(resp, 200, out);
}

void api_servers_events(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);
    json_t *out;

    if (id < 0)
        return;
    out = reg_events(app->reg, id, 200, &e);
    if (!out) {
        api_reply_error(resp, &e);
        return;
    }
    api_json(resp, 200, json_pack("{s:o}", "events", out));
}

void api_targets_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "targets", scraper_targets_json(app->scraper)));
}
