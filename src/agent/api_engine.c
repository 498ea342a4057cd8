/* The agent's container routes: the server (holding the agent's token)
 * drives the host's engine through them. Validation is the shared
 * ctrspec's, so a body the server would refuse is refused here too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/streamset.h"
#include "../lib/xalloc.h"
#include "api.h"
#include "attach.h"
#include "cleanup.h"
#include "files.h"
#include "../lib/ctrspec.h"
#include "engine.h"
#include "images.h"
#include "ports.h"

void api_engine_reply(struct http_response *resp, int status, json_t *out, const struct errinfo *e)
{
    if (!out) {
        http_error(resp, e->status ? e->status : 500, e->code ? e->code : "internal",
                   e->field[0] ? e->field : NULL, "%s", e->message);
        return;
    }
    char *text = json_dumps(out, JSON_COMPACT);
    resp->status = status;
    resp->content_type = "application/json";
    buf_puts(&resp->body, text ? text : "null");
    buf_putc(&resp->body, '\n');
    free(text);
    json_decref(out);
}

static void reply_rc(struct http_response *resp, int rc, const struct errinfo *e)
{
    api_engine_reply(resp, 200, rc < 0 ? NULL : json_pack("{s:b}", "ok", 1), e);
}

/* ?unmanaged=1: the server says an admin asked to act on a container
 * gpufleet did not make */
static int allow_unmanaged(struct http_request *req)
{
    const char *v = http_query(req, "unmanaged");
    return v && !strcmp(v, "1");
}

void api_engine_info(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    (void)req;
    api_engine_reply(resp, 200, engine_info(app->engine, &e), &e);
}

void api_engine_ports(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    (void)req;
    api_engine_reply(resp, 200, ports_listening(app->opts->proc_root), NULL);
}

void api_engine_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    (void)req;
    api_engine_reply(resp, 200, engine_list(app->engine, &e), &e);
}

void api_engine_create(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    struct ctrspec s;
    json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    json_t *out = NULL;

    if (ctrspec_parse(body, CTRSPEC_AGENT, &s, &e) == 0)
        out = engine_create(app->engine, &s, &e);
    ctrspec_free(&s);
    json_decref(body);
    api_engine_reply(resp, 201, out, &e);
}

void api_engine_inspect(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    api_engine_reply(resp, 200, engine_inspect(app->engine, req->params[0], &e), &e);
}

void api_engine_stats(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    api_engine_reply(resp, 200, engine_stats(app->engine, req->params[0], &e), &e);
}

void api_engine_action(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    int rc = engine_action(app->engine, req->params[0], req->params[1], allow_unmanaged(req), &e);
    reply_rc(resp, rc, &e);
}

void api_engine_remove(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    int rc = engine_remove(app->engine, req->params[0], allow_unmanaged(req), &e);
    reply_rc(resp, rc, &e);
}

void api_engine_images(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    (void)req;
    api_engine_reply(resp, 200, images_list(app->images, &e), &e);
}

/* DELETE ?image=REF[&force=1]: a reference has '/' and ':', so it is a
 * parameter rather than a path segment */
void api_engine_image_remove(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    const char *force = http_query(req, "force");
    int rc = images_remove(app->images, http_query(req, "image"), force && !strcmp(force, "1"), &e);
    reply_rc(resp, rc, &e);
}

void api_engine_pull(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    json_t *out = NULL;

    if (!json_is_object(body)) {
        errinfo_set(&e, 400, "invalid_body", NULL, "the body is a JSON object {\"image\":...}");
    } else {
        struct images_job job = {.kind = IMAGES_PULL, .image = json_string_value(json_object_get(body, "image")),
                                 .auth = json_object_get(body, "auth")};
        out = images_job_start(app->images, &job, &e);
    }
    json_decref(body);
    api_engine_reply(resp, 202, out, &e);
}

void api_engine_push(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    struct images_job job = {.kind = IMAGES_PUSH, .image = json_string_value(json_object_get(body, "image")),
                             .auth = json_object_get(body, "auth")};
    api_engine_reply(resp, 202, images_job_start(app->images, &job, &e), &e);
    json_decref(body);
}

void api_engine_pulls(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    (void)req;
    api_engine_reply(resp, 200, images_pulls(app->images), NULL);
}

void api_engine_pull_get(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    char *end;
    long id = strtol(req->params[0], &end, 10);

    if (*end || id <= 0 || id > 1000000000) {
        errinfo_set(&e, 400, "invalid_field", "pull", "a pull id is a positive number");
        api_engine_reply(resp, 200, NULL, &e);
        return;
    }
    api_engine_reply(resp, 200, images_pull_get(app->images, (int)id, &e), &e);
}

/* ---- streams: logs and exec on an upgraded connection ---- */

struct stream_upgrade {
    struct agent_app *app;
    struct attach_req r;
};

static void stream_attach(void *arg, int sock, void *urh)
{
    struct stream_upgrade *u = arg;
    attach_start(u->app->engine, u->app->streams, &u->r, sock, urh);
    free(u);
}

static void stream_release(void *arg)
{
    struct stream_upgrade *u = arg;
    streamset_unreserve(u->app->streams, 0);
    free(u);
}

static void stream_route(struct agent_app *app, struct http_request *req, struct http_response *resp,
                         int kind)
{
    struct errinfo e = {0};
    struct attach_req r;
    const char *up = http_header(req, "Upgrade");

    if (!up || strcmp(up, ATTACH_UPGRADE)) {
        http_add_header(resp, "Upgrade", ATTACH_UPGRADE);
        http_error(resp, 426, "upgrade_required", "Upgrade", "this stream needs Upgrade: " ATTACH_UPGRADE);
        return;
    }
    if (attach_parse(kind, req->params[0], http_query(req, "tail"), http_query(req, "since"),
                     http_query(req, "follow"), http_query(req, "timestamps"),
                     http_query(req, "rows"), http_query(req, "cols"), &r, &e) < 0) {
        api_engine_reply(resp, 0, NULL, &e);
        return;
    }
    if (kind == ATTACH_ARCHIVE) {
        const char *path = http_query(req, "path");
        if (!path || !ctrspec_valid_path(path, 1)) {
            http_error(resp, 400, "invalid_field", "path", "path is absolute, without . or .. segments");
            return;
        }
        snprintf(r.path, sizeof(r.path), "%s", path);
    }
    if (streamset_reserve(app->streams, 0) < 0) {
        http_add_header(resp, "Retry-After", "10");
        http_error(resp, 503, "busy", NULL, "the agent has %d streams open already", ATTACH_MAX_STREAMS);
        return;
    }
    r.images = app->images;
    struct stream_upgrade *u = xcalloc(1, sizeof(*u));
    u->app = app;
    u->r = r;
    resp->status = 101;
    http_add_header(resp, "Connection", "Upgrade");
    http_add_header(resp, "Upgrade", ATTACH_UPGRADE);
    resp->upgrade = stream_attach;
    resp->upgrade_arg = u;
    resp->upgrade_release = stream_release;
}

void api_engine_logs(void *appv, struct http_request *req, struct http_response *resp)
{
    stream_route(appv, req, resp, ATTACH_LOGS);
}

/* GET .../images/pulls/{id}/log (Upgrade): a build's log as it grows */
void api_engine_build_log(void *appv, struct http_request *req, struct http_response *resp)
{
    stream_route(appv, req, resp, ATTACH_BUILD);
}

void api_engine_exec(void *appv, struct http_request *req, struct http_response *resp)
{
    stream_route(appv, req, resp, ATTACH_EXEC);
}

void api_engine_exec_resize(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    struct attach_req r;

    if (attach_parse(ATTACH_EXEC, req->params[0], NULL, NULL, NULL, NULL, http_query(req, "rows"),
                     http_query(req, "cols"), &r, &e) == 0 && (!r.rows || !r.cols))
        errinfo_set(&e, 400, "invalid_field", r.rows ? "cols" : "rows", "required");
    if (e.status) {
        api_engine_reply(resp, 0, NULL, &e);
        return;
    }
    reply_rc(resp, attach_resize(app->engine, r.id, r.rows, r.cols, &e), &e);
}

/* ---- cleanup ---- */

void api_engine_cleanup_plan(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    int mask;
    json_t *out = NULL;

    if (cleanup_kinds(http_query(req, "kinds"), &mask, &e) == 0)
        out = cleanup_plan(app->engine, mask, http_query(req, "known"), &e);
    api_engine_reply(resp, 200, out, &e);
}

void api_engine_cleanup_run(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    api_engine_reply(resp, 200, cleanup_run(app->engine, body, &e), &e);
    json_decref(body);
}

void api_engine_archive(void *appv, struct http_request *req, struct http_response *resp)
{
    stream_route(appv, req, resp, ATTACH_ARCHIVE);
}

/* ---- files ---- */

void api_engine_files(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    if (!engine_valid_id(req->params[0])) {
        http_error(resp, 400, "invalid_field", "id", "not a container id");
        return;
    }
    api_engine_reply(resp, 200, files_list(app->engine, req->params[0], http_query(req, "path") ?: "/", &e), &e);
}

/* POST .../files/mkdir?path= and DELETE .../files?path= */
static void files_op(struct agent_app *app, struct http_request *req, struct http_response *resp,
                     int (*op)(struct engine *, const char *, const char *, struct errinfo *))
{
    struct errinfo e = {0};
    const char *path = http_query(req, "path");
    if (!engine_valid_id(req->params[0]) || !path) {
        http_error(resp, 400, "invalid_field", path ? "id" : "path", "a container id and a path");
        return;
    }
    reply_rc(resp, op(app->engine, req->params[0], path, &e), &e);
}

void api_engine_files_mkdir(void *appv, struct http_request *req, struct http_response *resp)
{
    files_op(appv, req, resp, files_mkdir);
}

void api_engine_files_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    files_op(appv, req, resp, files_delete);
}

/* PUT .../archive?path=DIR: the body (a tar) goes to a temporary file as
 * it comes, then to the engine: memory stays flat however big it is. */
static void upload_free(void *arg)
{
    struct upload *u = arg;
    if (u->f)
        fclose(u->f);
    free(u);
}

int api_engine_upload_chunk(void *appv, struct http_request *req, const char *data, size_t len)
{
    (void)appv;
    struct upload *u = req->stream_state;
    if (!u) {
        u = xcalloc(1, sizeof(*u));
        u->f = tmpfile();
        req->stream_state = u;
        req->stream_cleanup = upload_free;
    }
    if (!u->f || u->size + (long long)len > FILES_MAX_UPLOAD || fwrite(data, 1, len, u->f) != len) {
        u->failed = 1;
        return -1;
    }
    u->size += (long long)len;
    return 0;
}

void api_engine_upload(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    struct upload *u = req->stream_state;
    const char *path = http_query(req, "path");
    if (!engine_valid_id(req->params[0]) || !path) {
        http_error(resp, 400, "invalid_field", path ? "id" : "path", "a container id and a path");
        return;
    }
    if (!u || req->stream_failed || u->failed) {
        http_error(resp, u && u->size + 1 > FILES_MAX_UPLOAD ? 413 : 400, "upload_failed", "body",
                   "the upload was empty, too big or could not be stored on the host");
        return;
    }
    rewind(u->f);
    reply_rc(resp, files_upload(app->engine, req->params[0], path, u->f, u->size, &e), &e);
}

/* POST .../images/build?tag=T[&remote=GIT_URL]: the body is the context
 * (a tar), taken as an upload is; with remote, the job clones it here
 * (the engines' own git support differs: Podman's API has none). */
void api_engine_build(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    struct upload *u = req->stream_state;
    const char *remote = http_query(req, "remote");
    struct images_job job = {.kind = IMAGES_BUILD, .image = http_query(req, "tag"), .remote = remote,
                             .git_max_bytes = app->opts->git_clone_max_mib << 20,
                             .git_stall_s = (int)app->opts->git_clone_stall_s};

    if (!remote && (!u || u->failed || req->stream_failed || !u->size)) {
        http_error(resp, 400, "invalid_field", "context", "the body is the build's context, a tar with a Dockerfile");
        return;
    }
    if (u && !remote) {
        rewind(u->f);
        job.ctx = u->f;
        job.ctx_size = u->size;
    }
    json_t *out = images_job_start(app->images, &job, &e);
    if (out && job.ctx)
        u->f = NULL; /* the job's now */
    api_engine_reply(resp, 202, out, &e);
}
