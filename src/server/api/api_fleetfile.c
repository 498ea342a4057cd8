/* /api/v1/fleet/plan and /api/v1/fleet/apply: a fleet file's plan, and
 * applying it over SSH; /api/v1/fleet/ssh-key: the fleet key's public half. */
#include <string.h>

#include "../../lib/log.h"
#include "../../lib/now.h"
#include "../auth.h"
#include "../fleetfile.h"
#include "../fleetops.h"
#include "../sshop.h"
#include "api.h"

/* The body's fleet file (and secrets), read; NULL when replied to. *prune
 * from the body when prune is not NULL. */
static json_t *body_fleet(struct http_request *req, struct http_response *resp, int *prune)
{
    struct errinfo e;
    json_t *body = api_body_json(req, resp);

    if (!body)
        return NULL;
    json_t *text = json_object_get(body, "fleet"), *secrets = json_object_get(body, "secrets");
    json_t *pr = json_object_get(body, "prune");
    secrets = json_is_null(secrets) ? NULL : secrets;
    const char *bad = !json_is_string(text)                ? "fleet"
                      : pr && !json_is_boolean(pr)           ? "prune"
                      : secrets && !json_is_string(secrets) ? "secrets"
                                                             : NULL;
    if (bad) {
        json_decref(body); /* bad is static text, not the body's */
        http_error(resp, 400, "invalid_field", bad,
                   "fleet (and secrets, when given) are the files' text; prune is true or false");
        return NULL;
    }
    if (prune)
        *prune = json_is_true(pr);
    json_t *fleet = fleetfile_parse(json_string_value(text), json_string_length(text),
                                    secrets ? json_string_value(secrets) : NULL,
                                    secrets ? json_string_length(secrets) : 0, &e);
    json_decref(body);
    if (!fleet)
        api_reply_error(resp, &e);
    return fleet;
}

/* The site's admin_user as gpufleet has it: {"name","state","detail"}:
 * exists (an admin), create (absent, and the secrets file has an
 * admin_password to make it with), missing (absent, no password),
 * not_admin (a user of another role or disabled: left as it is, said). */
static json_t *admin_state(struct server_app *app, const json_t *fleet)
{
    const char *name = json_string_value(json_object_get(fleet, "admin_user"));
    json_t *users = auth_users_list(app->auth), *u, *found = NULL, *out;
    size_t i;

    json_array_foreach(users, i, u)
        if (!strcmp(json_string_value(json_object_get(u, "username")), name))
            found = u;
    if (found && !strcmp(json_string_value(json_object_get(found, "role")), "admin") &&
        !json_is_true(json_object_get(found, "disabled")))
        out = json_pack("{s:s, s:s, s:s}", "name", name, "state", "exists", "detail", "an admin of gpufleet");
    else if (found)
        out = json_pack("{s:s, s:s, s:s++}", "name", name, "state", "not_admin", "detail", "a user of role ",
                        json_string_value(json_object_get(found, "role")),
                        json_is_true(json_object_get(found, "disabled")) ? ", disabled: left as it is"
                                                                         : ": left as it is (an admin changes roles)");
    else if (json_object_get(fleet, "admin_password"))
        out = json_pack("{s:s, s:s, s:s}", "name", name, "state", "create", "detail",
                        "made an admin with the secrets file's admin_password (changed at first sign-in)");
    else
        out = json_pack("{s:s, s:s, s:s}", "name", name, "state", "missing", "detail",
                        "no such user: give admin_password in the secrets file to make it");
    json_decref(users);
    return out;
}

void api_fleet_plan(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    json_t *fleet = body_fleet(req, resp, NULL);
    if (!fleet)
        return;
    json_t *reg = reg_list(app->reg), *plan = fleetfile_plan(fleet, reg);
    json_object_set_new(plan, "admin_user", admin_state(app, fleet));
    api_json(resp, 200, plan);
    json_decref(reg);
    json_decref(fleet);
}

/* Makes the site's admin_user when the plan says create: before any host
 * is touched, so a password gpufleet refuses stops the apply. 0, or -1
 * with e naming admin_password. */
static int make_admin(struct server_app *app, struct http_request *req, const json_t *fleet, struct errinfo *e)
{
    json_t *st = admin_state(app, fleet);
    int rc = 0;
    if (!strcmp(json_string_value(json_object_get(st, "state")), "create")) {
        int64_t id;
        const char *name = json_string_value(json_object_get(st, "name"));
        rc = auth_user_create(app->auth, name, json_string_value(json_object_get(fleet, "admin_password")), ROLE_ADMIN,
                              1, now_wall_ms(), &id, e);
        if (rc < 0) { /* auth names username or password: the file's keys */
            snprintf(e->field, sizeof(e->field), "%s", strcmp(e->field, "username") ? "admin_password" : "admin_user");
        } else {
            api_audit_detail(req, "admin_user_created", json_string(name));
            log_info("fleet apply: made %s an admin of gpufleet (the fleet file's admin_user)", name);
        }
    }
    json_decref(st);
    return rc;
}

void api_fleet_apply(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e;
    int prune = 0;
    json_t *fleet = body_fleet(req, resp, &prune);
    if (!fleet)
        return;
    api_audit_target(req, "site:%.64s", json_string_value(json_object_get(fleet, "site")));
    api_audit_detail(req, "servers", json_integer((json_int_t)json_array_size(json_object_get(fleet, "servers"))));
    api_audit_detail(req, "prune", json_boolean(prune));
    if (make_admin(app, req, fleet, &e) < 0) {
        json_decref(fleet);
        api_reply_error(resp, &e);
        return;
    }
    json_object_del(fleet, "admin_password"); /* used: the job needs it not */
    long id = fleetops_start(app->fleetops, fleet, prune, &e);
    if (id < 0) {
        api_reply_error(resp, &e);
        return;
    }
    api_json(resp, 202, json_pack("{s:I}", "id", (json_int_t)id));
}

void api_fleet_apply_status(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    json_t *st = fleetops_status(app->fleetops);
    if (!st) {
        http_error(resp, 404, "not_found", NULL, "no fleet apply has run since the server started");
        return;
    }
    api_json(resp, 200, st);
}

void api_fleet_ssh_key(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    char pub[600], err[300];
    (void)req;
    if (sshop_fleet_key(app->opts->data_dir, pub, sizeof(pub), err, sizeof(err)) < 0) {
        http_error(resp, 500, "internal", NULL, "%s", err);
        return;
    }
    api_json(resp, 200, json_pack("{s:s}", "public_key", pub));
}
