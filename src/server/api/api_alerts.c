/* /api/v1/alerts, /api/v1/alerts/rules, /api/v1/silences, /api/v1/receivers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/config.h"
#include "../alerts.h"
#include "api.h"
#include "../../lib/now.h"

static int64_t path_id(struct http_request *req, struct http_response *resp, const char *kind)
{
    int64_t id = api_path_id(req->params[0], resp);
    if (id > 0)
        api_audit_target(req, "%s:%lld", kind, (long long)id);
    return id;
}

void api_alert_rules_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "rules", alerts_rules_list(app->alerts)));
}

void api_alert_rules_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = api_path_id(req->params[0], resp);
    if (id < 0)
        return;
    api_reply(resp, 200, alerts_rule_get(app->alerts, id, &e), &e);
}

void api_alert_rules_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp), *out;
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    api_audit_target(req, "rule:%.64s", name ? name : "");
    out = alerts_rule_create(app->alerts, body, &e);
    json_decref(body);
    api_reply(resp, 201, out, &e);
}

void api_alert_rules_update(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = path_id(req, resp, "rule");
    json_t *body, *out;
    if (id < 0 || !(body = api_body_json(req, resp)))
        return;
    out = alerts_rule_update(app->alerts, id, body, &e);
    json_decref(body);
    api_reply(resp, 200, out, &e);
}

void api_alert_rules_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = path_id(req, resp, "rule");
    if (id < 0)
        return;
    api_reply_rc(resp, alerts_rule_delete(app->alerts, id, &e), &e);
}

void api_alerts_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    const char *state, *limit;
    int64_t n = 100;

    if (api_query_text(req, resp, "state", 16, &state) < 0 || api_query_text(req, resp, "limit", 10, &limit) < 0)
        return;
    if (state && strcmp(state, "pending") && strcmp(state, "firing") && strcmp(state, "resolved") &&
        strcmp(state, "active")) {
        http_error(resp, 400, "invalid_parameter", "state", "state: pending, firing, resolved or active");
        return;
    }
    if (limit && config_parse_int(limit, 1, 1000, &n) < 0) {
        http_error(resp, 400, "invalid_parameter", "limit", "limit must be 1-1000");
        return;
    }
    api_json(resp, 200, json_pack("{s:o}", "alerts", alerts_list(app->alerts, state, (int)n)));
}

void api_alerts_ack(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = path_id(req, resp, "alert");
    const char *comment = NULL;
    json_t *body = NULL, *out;

    if (id < 0)
        return;
    if (req->body.len && !(body = api_body_json(req, resp)))
        return;
    comment = json_string_value(json_object_get(body, "comment"));
    if (comment && strlen(comment) > 1024) {
        json_decref(body);
        http_error(resp, 400, "invalid_field", "comment", "comment: at most 1024 bytes");
        return;
    }
    out = alerts_ack(app->alerts, id, api_ctx(req)->who.username, comment, &e);
    json_decref(body);
    api_reply(resp, 200, out, &e);
}

void api_alerts_unack(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = path_id(req, resp, "alert");
    if (id < 0)
        return;
    api_reply(resp, 200, alerts_unack(app->alerts, id, &e), &e);
}

/* A rule's body, evaluated now: nothing is stored, nobody is notified. */
void api_alert_rules_preview(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp);
    if (!body)
        return;
    json_t *out = alerts_rule_preview(app->alerts, body, now_wall_ms(), &e);
    json_decref(body);
    api_reply(resp, 200, out, &e);
}

void api_alert_routes_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, alerts_routes_get(app->alerts));
}

void api_alert_routes_set(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp);
    if (!body)
        return;
    api_audit_detail(req, "routes", json_deep_copy(json_object_get(body, "routes")));
    json_t *out = alerts_routes_set(app->alerts, body, &e);
    json_decref(body);
    api_reply(resp, 200, out, &e);
}

void api_silences_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "silences", alerts_silences_list(app->alerts)));
}

void api_silences_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp), *out;
    if (!body)
        return;
    out = alerts_silence_create(app->alerts, body, api_ctx(req)->who.username, &e);
    json_decref(body);
    if (!out) {
        api_reply_error(resp, &e);
        return;
    }
    api_audit_target(req, "silence:%lld", (long long)json_integer_value(json_object_get(out, "id")));
    api_audit_detail(req, "matchers", json_deep_copy(json_object_get(out, "matchers")));
    api_json(resp, 201, out);
}

void api_silences_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = path_id(req, resp, "silence");
    if (id < 0)
        return;
    api_reply_rc(resp, alerts_silence_delete(app->alerts, id, &e), &e);
}

void api_receivers_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "receivers", alerts_receivers_list(app->alerts)));
}

void api_receivers_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp), *out;
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    api_audit_target(req, "receiver:%.64s", name ? name : "");
    out = alerts_receiver_create(app->alerts, body, &e);
    json_decref(body);
    api_reply(resp, 201, out, &e);
}

void api_receivers_update(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = path_id(req, resp, "receiver");
    json_t *body;
    if (id < 0 || !(body = api_body_json(req, resp)))
        return;
    json_t *out = alerts_receiver_update(app->alerts, id, body, &e);
    json_decref(body);
    api_reply(resp, 200, out, &e);
}

void api_receivers_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = path_id(req, resp, "receiver");
    if (id < 0)
        return;
    api_reply_rc(resp, alerts_receiver_delete(app->alerts, id, &e), &e);
}

void api_receivers_test(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int64_t id = path_id(req, resp, "receiver");
    if (id < 0)
        return;
    api_reply_rc(resp, alerts_receiver_test(app->alerts, id, &e), &e);
}

void api_notifications_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "notifications", alerts_notifications(app->alerts, 200)));
}
