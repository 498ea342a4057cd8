/* /api/v1/servers/{id}/images: a host's images through its agent. Viewers
 * see them; operators (who build and deploy) pull and remove. A pull runs
 * on the agent in the background; its progress is read back by its id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/ctrspec.h"
#include "../agentcall.h"
#include "api.h"

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

void api_images_pull(void *appv, struct http_request *req, struct http_response *resp)
{
    json_t *body = api_body_json(req, resp);

    if (!body)
        return;
    api_audit_target(req, "server:%.64s", req->params[0]);
    api_audit_detail(req, "image", json_deep_copy(json_object_get(body, "image")));
    /* only the image travels on: the agent checks it again */
    json_t *fwd = json_pack("{s:O?}", "image", json_object_get(body, "image"));
    relay(appv, req, resp, "POST", "/api/v1/engine/images/pull", fwd, 202);
    json_decref(fwd);
    json_decref(body);
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
