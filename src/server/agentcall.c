/* Server -> agent calls. The agent's refusals keep their field names, so a
 * user sees which part of the request the host refused. */
#include "agentcall.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/xalloc.h"

#define MAX_ANSWER (32u << 20)

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    return buf_append(arg, p, size * n) < 0 ? 0 : size * n;
}

void agentcall_refusal(long status, const char *body, size_t len, struct errinfo *e)
{
    json_t *j = json_loadb(body ? body : "", len, 0, NULL);
    json_t *err = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *field = json_string_value(json_object_get(err, "field"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    static const char *codes[] = {"invalid_field", "not_found", "engine_refused", "unmanaged",
                                  "no_cdi_spec", "engine_unreachable", "engine_answer",
                                  "no_workspace", "workspace", "token_required", "unauthorized"};
    const char *known = "agent_error";

    /* codes are static strings in errinfo: keep the agent's when we know it */
    for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
        if (!strcmp(code, codes[i]))
            known = codes[i];
    /* the agent refusing our token is the server's fault, not the user's */
    if (status == 401 || status == 403) {
        if (!strcmp(known, "unmanaged"))
            errinfo_set(e, 403, known, field, "%s", msg ? msg : "refused");
        else
            errinfo_set(e, 502, "agent_auth", NULL, "the agent refused the server's token: %s",
                        msg ? msg : "no message");
    } else {
        errinfo_set(e, status >= 400 && status < 600 ? (int)status : 502, known, field, "%s",
                    msg ? msg : "the agent gave no reason");
    }
    json_decref(j);
}

/* One call: a JSON body, or the size bytes of f (a tar), or none. */
static json_t *call(const struct reg_target *t, const char *method, const char *path, const json_t *body,
                    FILE *f, long long size, long timeout_s, struct errinfo *e)
{
    char url[9200], auth[600], curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    struct buf b;
    char *text = NULL;
    json_t *out = NULL;
    long status = 0;
    CURL *c = curl_easy_init();

    buf_init(&b, MAX_ANSWER);
    if (!c) {
        errinfo_set(e, 500, "internal", NULL, "libcurl failed to start a call");
        goto out;
    }
    snprintf(url, sizeof(url), "http://%s%s", t->instance, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, f ? "Content-Type: application/x-tar" : "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    if (f) { /* read as it goes: an upload of gigabytes stays on disk */
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, f);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    } else if (body) {
        text = json_dumps(body, JSON_COMPACT);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        errinfo_set(e, 502, "agent_unreachable", NULL, "the agent of %s at %s: %s", t->server,
                    t->instance, curl_err[0] ? curl_err : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300) {
        agentcall_refusal(status, b.data, b.len, e);
        goto out;
    }
    if (!(out = json_loadb(b.data ? b.data : "", b.len, 0, NULL)))
        errinfo_set(e, 502, "agent_answer", NULL, "the agent of %s answered %s %s with no JSON",
                    t->server, method, path);
out:
    free(text);
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    buf_free(&b);
    return out;
}

json_t *agentcall(const struct reg_target *t, const char *method, const char *path,
                  const json_t *body, long timeout_s, struct errinfo *e)
{
    return call(t, method, path, body, NULL, 0, timeout_s, e);
}

json_t *agentcall_send_file(const struct reg_target *t, const char *method, const char *path, FILE *f,
                            long long size, long timeout_s, struct errinfo *e)
{
    return call(t, method, path, NULL, f, size, timeout_s, e);
}

int agentcall_find(struct registry *r, const char *name, int64_t server_id, const char *field,
                   struct reg_target *out, struct errinfo *e)
{
    struct reg_target *all = NULL;
    size_t n = reg_targets(r, 0, 0, &all);
    int rc = -1, refused = 0;

    for (size_t i = 0; i < n && rc < 0 && !refused; i++) {
        if (!all[i].is_agent)
            continue;
        if (name ? strcmp(all[i].server, name) : all[i].server_id != server_id)
            continue;
        if (!all[i].token[0]) {
            errinfo_set(e, 409, "no_agent_token", field,
                        "server %s has no agent token, so its containers cannot be driven",
                        all[i].server);
            refused = 1;
            break;
        }
        *out = all[i];
        rc = 0;
    }
    if (rc < 0 && !refused)
        errinfo_set(e, 404, "not_found", field, "no server %.64s", name ? name : "with that id");
    free(all);
    return rc;
}
