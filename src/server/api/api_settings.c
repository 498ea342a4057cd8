/* /api/v1/settings: the server's settings; retention and scrape intervals
 * change at run time (admin). */
#include "../settings.h"
#include "api.h"

void api_settings_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, json_pack("{s:o}", "settings", settings_json(app)));
}

void api_settings_update(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp), *changes = json_object();

    api_audit_target(req, "settings");
    if (!body) {
        json_decref(changes);
        return;
    }
    int rc = settings_update(app, body, changes, &e);
    json_decref(body);
    if (rc == 0)
        api_audit_detail(req, "changes", json_incref(changes));
    json_decref(changes);
    if (rc < 0) {
        api_reply_error(resp, &e);
        return;
    }
    api_json(resp, 200, json_pack("{s:o}", "settings", settings_json(app)));
}
