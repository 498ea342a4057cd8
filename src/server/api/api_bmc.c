/* /api/v1/bmcs and /api/v1/servers/{id}/bmc: each server's BMC (IPMI over
 * LAN), its settings (the password write-only) and its last poll. */
#include "../bmc.h"
#include "api.h"

void api_bmcs_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "bmcs", bmc_list(app->bmc)));
}

/* The name of the server {id}, or NULL when replied to. New reference. */
static json_t *server_of(struct server_app *app, struct http_request *req, struct http_response *resp)
{
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);
    if (id < 0)
        return NULL;
    json_t *s = reg_get(app->reg, id, &e);
    if (!s)
        api_reply_error(resp, &e);
    else
        api_audit_target(req, "server:%.64s", json_string_value(json_object_get(s, "name")));
    return s;
}

void api_bmc_set(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *s = server_of(app, req, resp), *body;
    if (!s)
        return;
    if (!(body = api_body_json(req, resp))) {
        json_decref(s);
        return;
    }
    api_audit_detail(req, "address", json_incref(json_object_get(body, "address")));
    int rc = bmc_set(app->bmc, json_string_value(json_object_get(s, "name")), body, &e);
    json_decref(body);
    json_decref(s);
    api_reply_rc(resp, rc, &e);
}

void api_bmc_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *s = server_of(app, req, resp);
    if (!s)
        return;
    int rc = bmc_delete(app->bmc, json_string_value(json_object_get(s, "name")), &e);
    json_decref(s);
    api_reply_rc(resp, rc, &e);
}
