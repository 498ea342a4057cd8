/* /api/v1/containers and /api/v1/gpus: containers across the fleet. Users
 * see and act on their own; viewers see all; operators and admins act on
 * all. Someone else's container is 404 to a user, as if it did not exist. */
#include <stdio.h>
#include <string.h>

#include "../containers.h"
#include "api.h"

static int64_t target_id(struct http_request *req, struct http_response *resp)
{
    int64_t id = api_path_id(req->params[0], resp);
    if (id > 0)
        api_audit_target(req, "container:%lld", (long long)id);
    return id;
}

void api_containers_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    size_t len = 0;
    char *text = ctr_list_text(app->ctr, api_read_scope(req), &len);
    if (!text) {
        http_error(resp, 500, "internal", NULL, "the list could not be rendered");
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
    buf_append(&resp->body, text, len);
    buf_putc(&resp->body, '\n');
    free(text);
}

void api_containers_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    json_t *body = api_body_json(req, resp), *out;

    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    api_audit_target(req, "container:%.64s", name ? name : "(auto)");
    api_audit_detail(req, "image", json_deep_copy(json_object_get(body, "image")));
    out = ctr_create(app->ctr, &api_ctx(req)->who, body, &e);
    json_decref(body);
    if (out) {
        api_audit_target(req, "container:%lld", (long long)json_integer_value(json_object_get(out, "id")));
        api_audit_detail(req, "server", json_deep_copy(json_object_get(out, "server")));
        api_audit_detail(req, "gpus", json_deep_copy(json_object_get(out, "gpus")));
    }
    api_reply(resp, 201, out, &e);
}

void api_containers_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    int64_t id = api_path_id(req->params[0], resp);
    if (id > 0)
        api_reply(resp, 200, ctr_get(app->ctr, id, api_read_scope(req), &e), &e);
}

void api_containers_stats(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    int64_t id = api_path_id(req->params[0], resp);
    if (id > 0)
        api_reply(resp, 200, ctr_stats(app->ctr, id, api_read_scope(req), &e), &e);
}

void api_containers_action(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    int64_t id = target_id(req, resp);
    if (id <= 0)
        return;
    api_audit_detail(req, "action", json_string(req->params[1]));
    int rc = ctr_act(app->ctr, id, api_act_scope(req), req->params[1], &e);
    if (rc < 0) {
        api_reply_error(resp, &e);
        return;
    }
    api_reply(resp, 200, ctr_get(app->ctr, id, 0, &e), &e);
}

void api_containers_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    int64_t id = target_id(req, resp);
    if (id > 0)
        api_reply_rc(resp, ctr_remove(app->ctr, id, api_act_scope(req), &e), &e);
}

void api_containers_unmanaged(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    (void)req;
    api_reply(resp, 200, json_pack("{s:o}", "containers", ctr_unmanaged(app->ctr, &e)), &e);
}

void api_containers_unmanaged_action(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    api_audit_target(req, "unmanaged:%.64s/%.64s", req->params[0], req->params[1]);
    api_audit_detail(req, "action", json_string(req->params[2]));
    api_reply_rc(resp, ctr_unmanaged_act(app->ctr, req->params[0], req->params[1], req->params[2], &e), &e);
}

void api_gpus(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, ctr_gpus(app->ctr));
}

void api_quota_mine(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    api_json(resp, 200, ctr_quota_of(app->ctr, &api_ctx(req)->who));
}

void api_quotas_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, ctr_quotas(app->ctr));
}

/* {user}: a user's name; their id is what the quota is kept by */
static int64_t quota_user(struct server_app *app, struct http_request *req, struct http_response *resp)
{
    int64_t id = auth_valid_username(req->params[0]) ? auth_user_id(app->auth, req->params[0]) : 0;
    api_audit_target(req, "user:%.64s", req->params[0]);
    if (id <= 0) {
        struct errinfo e;
        errinfo_set(&e, 404, "not_found", "user", "no user %.64s", req->params[0]);
        api_reply_error(resp, &e);
    }
    return id;
}

void api_quotas_set(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    int64_t id = quota_user(app, req, resp);
    json_t *body;

    if (id <= 0 || !(body = api_body_json(req, resp)))
        return;
    api_audit_detail(req, "limits", json_deep_copy(body));
    int rc = ctr_quota_set(app->ctr, id, req->params[0], body, &e);
    json_decref(body);
    api_reply_rc(resp, rc, &e);
}

void api_quotas_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    int64_t id = quota_user(app, req, resp);
    if (id > 0)
        api_reply_rc(resp, ctr_quota_delete(app->ctr, id, &e), &e);
}
