/* /api/v1/servers/{id}/images: a host's images through its agent. Viewers
 * see them; operators (who build and deploy) pull, push, build and remove.
 * A pull, push or build runs on the agent in the background; its progress
 * (and a build's log) is read back by its id. Registries' credentials go
 * with pulls and pushes (regauth.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/ctrspec.h"
#include "../agentcall.h"
#include "../ctrsession.h"
#include "../regauth.h"
#include "../../lib/xalloc.h"
#include "api.h"

/* What travels to the agent for a pull or push: the image (checked again
 * there) and the credentials of its registry when an admin set them. */
static json_t *with_auth(struct server_app *app, const json_t *body)
{
    const char *image = json_string_value(json_object_get(body, "image"));
    return json_pack("{s:O?,s:o?}", "image", json_object_get(body, "image"), "auth",
                     image ? regauth_for_image(app->opts->data_dir, image) : NULL);
}

int api_find_agent(struct server_app *app, const char *s, struct reg_target *agent, struct errinfo *e)
{
    char *end;
    long long id = strtoll(s, &end, 10);
    if (*s && !*end && id > 0)
        return agentcall_find(app->reg, NULL, id, "server", agent, e);
    return agentcall_find(app->reg, s, 0, "server", agent, e);
}

/* method path on {id}'s agent; its answer is ours */
static void relay(struct server_app *app, struct http_request *req, struct http_response *resp,
                  const char *method, const char *path, const json_t *body, int status)
{
    struct reg_target agent;
    struct errinfo e = {0};
    json_t *out = NULL;

    if (api_find_agent(app, req->params[0], &agent, &e) == 0)
        out = agentcall(&agent, method, path, body, 60, &e);
    api_reply(resp, status, out, &e);
}

void api_images_list(void *appv, struct http_request *req, struct http_response *resp)
{
    relay(appv, req, resp, "GET", "/api/v1/engine/images", NULL, 200);
}

/* ?image=REF: checked here too, since it becomes part of the agent's URL */
void api_images_remove(void *appv, struct http_request *req, struct http_response *resp)
{
    const char *image = NULL, *force = NULL;
    char path[400];

    if (api_query_text(req, resp, "image", 255, &image) < 0 ||
        api_query_text(req, resp, "force", 8, &force) < 0)
        return;
    api_audit_target(req, "server:%.64s", req->params[0]);
    api_audit_detail(req, "image", image ? json_string(image) : json_null());
    /* a reference or an image id: as the agent checks */
    if (!image || !(ctrspec_valid_image(image) || ctrspec_valid_image_id(image))) {
        struct errinfo e;
        errinfo_set(&e, 400, "invalid_field", "image", "image is a reference (team/app:1.2) or an image id");
        api_reply_error(resp, &e);
        return;
    }
    snprintf(path, sizeof(path), "/api/v1/engine/images?image=%s%s", image,
             force && !strcmp(force, "1") ? "&force=1" : "");
    relay(appv, req, resp, "DELETE", path, NULL, 200);
}

/* A pull or a push: the image and its registry's credentials to the agent. */
static void job(struct http_request *req, struct http_response *resp, struct server_app *app, const char *path)
{
    json_t *body = api_body_json(req, resp);

    if (!body)
        return;
    api_audit_target(req, "server:%.64s", req->params[0]);
    api_audit_detail(req, "image", json_deep_copy(json_object_get(body, "image")));
    json_t *fwd = with_auth(app, body);
    relay(app, req, resp, "POST", path, fwd, 202);
    json_decref(fwd);
    json_decref(body);
}

void api_images_pull(void *appv, struct http_request *req, struct http_response *resp)
{
    job(req, resp, appv, "/api/v1/engine/images/pull");
}

void api_images_push(void *appv, struct http_request *req, struct http_response *resp)
{
    job(req, resp, appv, "/api/v1/engine/images/push");
}

/* ---- builds: POST ?tag=T with a context (a tar) as the body, or ?git=URL ---- */

static void context_free(void *arg)
{
    struct api_upload *c = arg;
    if (c->f)
        fclose(c->f);
    free(c);
}

int api_upload_chunk(void *appv, struct http_request *req, const char *data, size_t len)
{
    struct server_app *app = appv;
    struct api_upload *c = req->stream_state;
    if (!c) {
        c = xcalloc(1, sizeof(*c));
        c->f = tmpfile();
        req->stream_state = c;
        req->stream_cleanup = context_free;
    }
    if (!c->f || c->size + (long long)len > (long long)app->opts->files_upload_max_mib << 20 ||
        fwrite(data, 1, len, c->f) != len) {
        c->failed = 1;
        return -1;
    }
    c->size += (long long)len;
    return 0;
}

void api_images_build(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_upload *c = req->stream_state;
    struct reg_target agent;
    struct errinfo e = {0};
    const char *tag = http_query(req, "tag"), *git = http_query(req, "git");
    char path[4000], etag[600], egit[3200];
    json_t *out = NULL;

    api_audit_target(req, "server:%.64s", req->params[0]);
    api_audit_detail(req, "tag", tag ? json_string(tag) : json_null());
    if (git)
        api_audit_detail(req, "git", json_string(git));
    if (!tag || !ctrspec_valid_image(tag)) {
        errinfo_set(&e, 400, "invalid_field", "tag", "tag is the image reference the build gets, like team/app:1.2");
        goto out;
    }
    char gurl[1100], gref[300], gfolder[1100];
    if (git && ctrspec_git_split(git, "git", gurl, sizeof(gurl), gref, sizeof(gref), gfolder, sizeof(gfolder), &e) < 0)
        goto out;
    if (git && ctrspec_git_is_ssh(gurl)) { /* an app takes a deploy key; a build has none to give */
        errinfo_set(&e, 400, "invalid_field", "git", "a build clones without a key: an https://, http:// or git:// URL");
        goto out;
    }
    if (!git && (!c || c->failed || req->stream_failed || !c->size)) {
        errinfo_set(&e, c && c->failed ? 413 : 400, "invalid_field", "context",
                    "the body is the build's context (a tar with a Dockerfile, up to files_upload_max_mib), or give git=URL");
        goto out;
    }
    if (api_find_agent(app, req->params[0], &agent, &e) < 0)
        goto out;
    ctrspec_url_path(tag, etag, sizeof(etag));
    if (git) {
        ctrspec_url_path(git, egit, sizeof(egit));
        snprintf(path, sizeof(path), "/api/v1/engine/images/build?tag=%s&remote=%s", etag, egit);
        out = agentcall(&agent, "POST", path, NULL, 60, &e);
    } else {
        rewind(c->f);
        snprintf(path, sizeof(path), "/api/v1/engine/images/build?tag=%s", etag);
        out = agentcall_send_file(&agent, "POST", path, c->f, c->size, 600, &e);
    }
out:
    api_reply(resp, 202, out, &e);
}

void api_images_pulls(void *appv, struct http_request *req, struct http_response *resp)
{
    relay(appv, req, resp, "GET", "/api/v1/engine/images/pulls", NULL, 200);
}

void api_images_pull_get(void *appv, struct http_request *req, struct http_response *resp)
{
    char path[200];
    int64_t id = api_path_id(req->params[1], resp);

    if (id <= 0)
        return;
    snprintf(path, sizeof(path), "/api/v1/engine/images/pulls/%lld", (long long)id);
    relay(appv, req, resp, "GET", path, NULL, 200);
}

/* A build's log over a WebSocket as the host's agent pushes it: the log
 * messages of a container's follow ({"type":"logs",...} batches, then
 * {"type":"end","reason":"the build ended"}), from the build's start. */
void api_images_build_log_live(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct reg_target agent;
    struct errinfo e = {0};
    char accept[32], path[200];

    if (api_ws_handshake(app, req, resp, accept, sizeof(accept)) < 0)
        return;
    int64_t id = api_path_id(req->params[1], resp);
    if (id <= 0)
        return;
    if (api_find_agent(app, req->params[0], &agent, &e) < 0) {
        api_reply_error(resp, &e);
        return;
    }
    snprintf(path, sizeof(path), "/api/v1/engine/images/pulls/%lld/log", (long long)id);
    api_stream_open(app, req, resp, CTRSESSION_LOGS, &agent, 0, path, accept, "the build ended");
}

/* ---- /api/v1/registries: admins set credentials; never shown again ---- */

void api_registries_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    api_reply(resp, 200, json_pack("{s:o}", "registries", regauth_list(app->opts->data_dir)), NULL);
}

void api_registries_set(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    json_t *body = api_body_json(req, resp);
    if (!body)
        return;
    api_audit_target(req, "registry:%.200s", req->params[0]);
    api_audit_detail(req, "user", json_deep_copy(json_object_get(body, "user")));
    api_reply_rc(resp, regauth_set(app->opts->data_dir, req->params[0], json_string_value(json_object_get(body, "user")),
                                   json_string_value(json_object_get(body, "password")), &e), &e);
    json_decref(body);
}

void api_registries_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    api_audit_target(req, "registry:%.200s", req->params[0]);
    api_reply_rc(resp, regauth_delete(app->opts->data_dir, req->params[0], &e), &e);
}
