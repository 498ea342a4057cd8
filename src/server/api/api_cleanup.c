/* Disk cleanup of a host, or of the fleet, through the agents (their
 * cleanup.h): GET is the plan (what would go and the bytes it frees), POST
 * removes exactly a plan's items that are still unused. Operators and
 * admins; every run is audited with the bytes freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../agentcall.h"
#include "../apps.h"
#include "../registry.h"
#include "api.h"

/* ?kinds= as the agent's URL will carry it: letters and commas. */
static int kinds_path(struct http_request *req, struct http_response *resp, char *path, size_t len)
{
    const char *kinds = NULL;
    if (api_query_text(req, resp, "kinds", 64, &kinds) < 0)
        return -1;
    for (const char *p = kinds ? kinds : ""; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && *p != ',') {
            struct errinfo e;
            errinfo_set(&e, 400, "invalid_field", "kinds", "kinds is a list of containers, dangling, images, volumes, cache, apps");
            api_reply_error(resp, &e);
            return -1;
        }
    snprintf(path, len, "/api/v1/engine/cleanup?kinds=%s", kinds ? kinds : "");
    return 0;
}

/* The plan's path for one host: the apps the server knows there go with
 * it, so the agent lists only the folders no app owns. A new string. */
static char *host_path(struct server_app *app, const char *path, const char *server)
{
    char *known = app->apps ? apps_names_on(app->apps, server) : NULL;
    size_t n = strlen(path) + (known ? strlen(known) : 0) + 16;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s&known=%s", path, known ? known : "");
    free(known);
    return out;
}

void api_cleanup_plan(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct reg_target agent;
    struct errinfo e = {0};
    char path[160];
    json_t *out = NULL;

    if (kinds_path(req, resp, path, sizeof(path)) < 0)
        return;
    if (api_find_agent(app, req->params[0], &agent, &e) == 0) {
        char *p = host_path(app, path, agent.server);
        out = p ? agentcall(&agent, "GET", p, NULL, 120, &e) : NULL;
        free(p);
    }
    api_reply(resp, 200, out, &e);
}

/* The run on one agent; its answer, or NULL with e. Only kind and id of
 * each item travel on. */
static json_t *run_on(struct server_app *app, const struct reg_target *agent, const json_t *items, struct errinfo *e)
{
    json_t *fwd = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
        json_array_append_new(fwd, json_pack("{s:O?,s:O?}", "kind", json_object_get(it, "kind"), "id",
                                             json_object_get(it, "id")));
    char *known = app->apps ? apps_names_on(app->apps, agent->server) : NULL;
    json_t *body = json_pack("{s:o, s:s}", "items", fwd, "known", known ? known : "");
    free(known);
    json_t *out = agentcall(agent, "POST", "/api/v1/engine/cleanup", body, 600, e);
    json_decref(body);
    return out;
}

static void audit_run(struct http_request *req, const json_t *out)
{
    api_audit_detail(req, "bytes", json_deep_copy(json_object_get(out, "bytes")));
    api_audit_detail(req, "removed", json_integer((json_int_t)json_array_size(json_object_get(out, "removed"))));
    api_audit_detail(req, "skipped", json_integer((json_int_t)json_array_size(json_object_get(out, "skipped"))));
}

void api_cleanup_run(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct reg_target agent;
    struct errinfo e = {0};
    json_t *body = api_body_json(req, resp), *out = NULL;

    if (!body)
        return;
    api_audit_target(req, "server:%.64s", req->params[0]);
    if (!json_is_array(json_object_get(body, "items")))
        errinfo_set(&e, 400, "invalid_field", "items", "items is the array of a plan's items to remove");
    else if (api_find_agent(app, req->params[0], &agent, &e) == 0 &&
             (out = run_on(app, &agent, json_object_get(body, "items"), &e)))
        audit_run(req, out);
    json_decref(body);
    api_reply(resp, 200, out, &e);
}

/* Every agent's plan: {"servers":[{"server","items","bytes"} or
 * {"server","error"}],"bytes":total}. One host failing is its row. */
void api_fleet_cleanup_plan(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct reg_target *all = NULL;
    char path[160];
    json_int_t total = 0;

    if (kinds_path(req, resp, path, sizeof(path)) < 0)
        return;
    size_t n = reg_targets(app->reg, 0, 0, &all);
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        struct errinfo e = {0};
        if (!all[i].is_agent || !all[i].token[0])
            continue;
        char *p = host_path(app, path, all[i].server);
        json_t *plan = p ? agentcall(&all[i], "GET", p, NULL, 120, &e) : NULL;
        free(p);
        if (!plan) {
            json_array_append_new(rows, json_pack("{s:s,s:s}", "server", all[i].server, "error", e.message));
            continue;
        }
        total += json_integer_value(json_object_get(plan, "bytes"));
        json_object_set_new(plan, "server", json_string(all[i].server));
        json_array_append_new(rows, plan);
    }
    free(all);
    api_reply(resp, 200, json_pack("{s:o,s:I}", "servers", rows, "bytes", total), NULL);
}

/* {"servers":{"NAME":{"items":[...]}}}: each host's run. */
void api_fleet_cleanup_run(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    json_t *body = api_body_json(req, resp), *servers, *rows = json_array(), *plan;
    json_int_t freed = 0;
    size_t removed = 0;
    const char *name;

    if (!body)
        goto out;
    servers = json_object_get(body, "servers");
    if (!json_is_object(servers)) {
        struct errinfo e;
        errinfo_set(&e, 400, "invalid_field", "servers", "servers maps a server's name to {\"items\":[...]} of its plan");
        api_reply_error(resp, &e);
        goto out;
    }
    json_object_foreach(servers, name, plan) {
        struct reg_target agent;
        struct errinfo e = {0};
        json_t *r = NULL;
        if (!json_is_array(json_object_get(plan, "items")))
            errinfo_set(&e, 400, "invalid_field", "items", "servers.%.64s.items is not an array", name);
        else if (agentcall_find(app->reg, name, 0, "servers", &agent, &e) == 0)
            r = run_on(app, &agent, json_object_get(plan, "items"), &e);
        if (!r) {
            json_array_append_new(rows, json_pack("{s:s,s:s}", "server", name, "error", e.message));
            continue;
        }
        freed += json_integer_value(json_object_get(r, "bytes"));
        removed += json_array_size(json_object_get(r, "removed"));
        json_object_set_new(r, "server", json_string(name));
        json_array_append_new(rows, r);
    }
    api_audit_target(req, "fleet");
    api_audit_detail(req, "bytes", json_integer(freed));
    api_audit_detail(req, "removed", json_integer((json_int_t)removed));
    api_reply(resp, 200, json_pack("{s:O,s:I}", "servers", rows, "bytes", freed), NULL);
out:
    json_decref(rows);
    json_decref(body);
}
