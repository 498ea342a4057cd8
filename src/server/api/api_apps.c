/* /api/v1/apps and /api/v1/templates: apps from git and the marketplace.
 * Users install and act on their own apps; viewers see all; operators and
 * admins act on all and keep the templates. Someone else's app is 404 to a
 * user, as if it did not exist. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../lib/tarw.h"
#include "../apps.h"
#include "../containers.h"
#include "api.h"

static int flag(struct http_request *req, const char *name)
{
    const char *v = http_query(req, name);
    return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

void api_apps_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    api_json(resp, 200, apps_list(app->apps, api_read_scope(req)));
}

void api_apps_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    api_reply(resp, 200, apps_get(app->apps, req->params[0], api_read_scope(req), &e), &e);
}

void api_apps_install(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    json_t *body = api_body_json(req, resp), *out;

    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    api_audit_target(req, "app:%.64s", name ? name : "?");
    static const char *const noted[] = {"repository", "ref", "template", "image", "gpus", "host"};
    for (size_t i = 0; i < sizeof(noted) / sizeof(noted[0]); i++)
        if (json_object_get(body, noted[i]))
            api_audit_detail(req, noted[i], json_deep_copy(json_object_get(body, noted[i])));
    out = apps_install(app->apps, &api_ctx(req)->who, body, &e);
    json_decref(body);
    if (out)
        api_audit_detail(req, "server", json_deep_copy(json_object_get(out, "server")));
    api_reply(resp, 202, out, &e);
}

void api_apps_action(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    json_t *body = NULL;

    api_audit_target(req, "app:%.64s", req->params[0]);
    api_audit_detail(req, "action", json_string(req->params[1]));
    if (req->body.len && !(body = api_body_json(req, resp)))
        return;
    if (json_object_get(body, "ref"))
        api_audit_detail(req, "ref", json_deep_copy(json_object_get(body, "ref")));
    if (json_object_get(body, "repository_auth")) /* that they changed, never what to */
        api_audit_detail(req, "repository_auth", json_string("replaced"));
    int rc = apps_act(app->apps, req->params[0], api_act_scope(req), req->params[1], body, &e);
    json_decref(body);
    if (rc < 0) {
        api_reply_error(resp, &e);
        return;
    }
    api_reply(resp, 200, apps_get(app->apps, req->params[0], 0, &e), &e);
}

/* DELETE /api/v1/apps/{name}[?keep_folder=1] */
void api_apps_remove(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    int keep = flag(req, "keep_folder");

    api_audit_target(req, "app:%.64s", req->params[0]);
    api_audit_detail(req, "keep_folder", json_boolean(keep));
    api_reply_rc(resp, apps_remove(app->apps, req->params[0], api_act_scope(req), keep, &e), &e);
}

void api_apps_promote(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    json_t *body = req->body.len ? api_body_json(req, resp) : json_object(), *out;

    if (!body)
        return;
    api_audit_target(req, "app:%.64s", req->params[0]);
    out = apps_promote(app->apps, req->params[0], 0, body, &e);
    json_decref(body);
    if (out)
        api_audit_detail(req, "template", json_deep_copy(json_object_get(out, "slug")));
    api_reply(resp, 201, out, &e);
}

void api_templates_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_json(resp, 200, apps_templates(app->apps));
}

void api_templates_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    api_reply(resp, 200, apps_template_get(app->apps, req->params[0], &e), &e);
}

void api_templates_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    json_t *body = api_body_json(req, resp);

    if (!body)
        return;
    const char *slug = json_string_value(json_object_get(body, "slug"));
    api_audit_target(req, "template:%.64s", slug ? slug : "?");
    api_reply(resp, 201, apps_template_put(app->apps, body, 1, &e), &e);
    json_decref(body);
}

/* PUT /api/v1/templates/{slug}: the body is the whole template */
void api_templates_put(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    json_t *body = api_body_json(req, resp);

    if (!body)
        return;
    api_audit_target(req, "template:%.64s", req->params[0]);
    json_t *slug = json_object_get(body, "slug");
    if (slug && (!json_is_string(slug) || strcmp(json_string_value(slug), req->params[0]))) {
        errinfo_set(&e, 400, "invalid_field", "slug", "the slug is the one in the path (a new slug is a new template)");
        api_reply_error(resp, &e);
    } else {
        json_object_set_new(body, "slug", json_string(req->params[0]));
        api_reply(resp, 200, apps_template_put(app->apps, body, 0, &e), &e);
    }
    json_decref(body);
}

void api_templates_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    api_audit_target(req, "template:%.64s", req->params[0]);
    api_reply_rc(resp, apps_template_delete(app->apps, req->params[0], &e), &e);
}

void api_templates_export(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    http_add_header(resp, "Content-Disposition", "attachment; filename=\"gpufleet-templates.json\"");
    api_json(resp, 200, apps_templates_export(app->apps));
}

/* POST /api/v1/templates/import[?replace=1]: ours or Portainer's v2 file */
void api_templates_import(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    json_t *body = api_body_json(req, resp), *out;

    if (!body)
        return;
    api_audit_target(req, "templates");
    out = apps_templates_import(app->apps, body, flag(req, "replace"), &e);
    json_decref(body);
    if (out)
        api_audit_detail(req, "imported", json_deep_copy(json_object_get(out, "imported")));
    api_reply(resp, 200, out, &e);
}

/* GET /api/v1/apps/{name}/export: a tar of the app's record
 * (gpufleet-app.json) and its folder (app/..., from its container's /app,
 * .git and what the app wrote there included), streamed from its host. */
void api_apps_export(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    struct errinfo e = {0};
    struct reg_target agent;
    char engine_id[130], cname[130], h[TARW_BLOCK], file[200];
    struct buf prefix;
    json_t *a = apps_get(app->apps, req->params[0], api_act_scope(req), &e);

    api_audit_target(req, "app:%.64s", req->params[0]);
    buf_init(&prefix, 0);
    if (!a)
        goto fail;
    json_int_t cid = json_integer_value(json_object_get(a, "container_id"));
    if (!cid) {
        errinfo_set(&e, 409, "not_installed", "app", "%s has no container to read its folder through: reinstall it",
                    req->params[0]);
        goto fail;
    }
    if (ctr_locate(app->ctr, cid, 0, &agent, engine_id, sizeof(engine_id), cname, sizeof(cname), &e) < 0)
        goto fail;
    /* what the record is, not what it is doing now */
    static const char *const runtime[] = {"busy", "progress", "health", "health_since_ms", "detail", "log_tail",
                                          "url", "host_port", "container_id", "phase", "desired", "id", "owner_id"};
    for (size_t i = 0; i < sizeof(runtime) / sizeof(runtime[0]); i++)
        json_object_del(a, runtime[i]);
    json_object_set_new(a, "gpufleet_app", json_integer(1));
    char *text = json_dumps(a, JSON_INDENT(2) | JSON_SORT_KEYS);
    size_t n = text ? strlen(text) : 0;
    if (!text || tarw_header(h, "gpufleet-app.json", TARW_FILE, 0644, (long long)n, time(NULL), NULL) < 0) {
        free(text);
        errinfo_set(&e, 500, "internal", NULL, "the record could not be written");
        goto fail;
    }
    buf_append(&prefix, h, sizeof(h));
    buf_append(&prefix, text, n);
    static const char zeros[TARW_BLOCK];
    if (n % TARW_BLOCK)
        buf_append(&prefix, zeros, TARW_BLOCK - n % TARW_BLOCK);
    free(text);
    if (api_stream_seat(app, c->who.user_id, resp) < 0)
        goto out;
    snprintf(file, sizeof(file), "%s.app.tar", req->params[0]);
    if (api_pipe_archive(app, c->who.user_id, resp, &agent, engine_id, "/app", &prefix, file, &e) < 0)
        goto fail;
    goto out;
fail:
    api_reply_error(resp, &e);
out:
    buf_free(&prefix);
    json_decref(a);
}

/* POST /api/v1/apps/import?host=H&name=N: the body is an app's export */
void api_apps_import(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_upload *u = req->stream_state;
    struct errinfo e = {0};
    const char *name = http_query(req, "name"), *host = http_query(req, "host");
    json_t *out = NULL;

    api_audit_target(req, "app:%.64s", name ? name : "(its record's)");
    if (host)
        api_audit_detail(req, "host", json_string(host));
    if (!u || u->failed || req->stream_failed || !u->size)
        errinfo_set(&e, u && u->failed ? 413 : 400, "invalid_field", "body",
                    "the body is an app's export (a tar from /api/v1/apps/NAME/export, at most files_upload_max_mib)");
    else
        out = apps_import(app->apps, &api_ctx(req)->who, &u->f, u->size, name, host, &e);
    if (out)
        api_audit_detail(req, "app", json_deep_copy(json_object_get(out, "name")));
    api_reply(resp, 202, out, &e);
}
