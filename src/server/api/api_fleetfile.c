/* /api/v1/fleet/plan: what applying a fleet file would change. */
#include "../fleetfile.h"
#include "api.h"

void api_fleet_plan(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    json_t *body = api_body_json(req, resp);

    if (!body)
        return;
    json_t *text = json_object_get(body, "fleet"), *secrets = json_object_get(body, "secrets");
    secrets = json_is_null(secrets) ? NULL : secrets;
    if (!json_is_string(text) || (secrets && !json_is_string(secrets))) {
        json_decref(body);
        http_error(resp, 400, "invalid_field", json_is_string(text) ? "secrets" : "fleet",
                   "fleet (and secrets, when given) are the files' text");
        return;
    }
    json_t *fleet = fleetfile_parse(json_string_value(text), json_string_length(text),
                                    secrets ? json_string_value(secrets) : NULL,
                                    secrets ? json_string_length(secrets) : 0, &e);
    json_decref(body);
    if (!fleet) {
        api_reply_error(resp, &e);
        return;
    }
    json_t *reg = reg_list(app->reg);
    api_json(resp, 200, fleetfile_plan(fleet, reg));
    json_decref(reg);
    json_decref(fleet);
}
