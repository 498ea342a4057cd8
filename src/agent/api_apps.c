/* The agent's app routes: the server clones an app into its folder here
 * (a background job, watched as pulls and builds are), asks whether a
 * repository and ref exist before it creates anything, removes a folder,
 * and probes the apps' health from this host. The container itself is made
 * through the container routes, with the spec's "app" set. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/ctrspec.h"
#include "api.h"
#include "appprobe.h"
#include "gitclone.h"
#include "images.h"

#define CHECK_STALL_S 20   /* ls-remote: a remote silent this long is down */
#define PROBE_TIMEOUT_MS 1500

static json_t *body_json(struct http_request *req, struct errinfo *e)
{
    json_t *b = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    if (!json_is_object(b)) {
        json_decref(b);
        errinfo_set(e, 400, "invalid_json", "body", "the body must be a JSON object");
        return NULL;
    }
    return b;
}

/* A private repository's credentials in a request body ("username",
 * "password" for http(s); "ssh_key", "passphrase", "host_key" for ssh):
 * 1 with a filled, 0 when there are none, -1 with e when one is too long. */
static int auth_from(const json_t *b, struct gitclone_auth *a, struct errinfo *e)
{
    const struct {
        const char *key;
        char *to;
        size_t len;
    } f[] = {{"username", a->user, sizeof(a->user)},
             {"password", a->password, sizeof(a->password)},
             {"ssh_key", a->ssh_key, sizeof(a->ssh_key)},
             {"passphrase", a->passphrase, sizeof(a->passphrase)},
             {"host_key", a->host_key, sizeof(a->host_key)}};
    int any = 0;

    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        const char *v = json_string_value(json_object_get(b, f[i].key));
        if (v && strlen(v) >= f[i].len) {
            errinfo_set(e, 400, "invalid_field", "repository_auth", "%s is over %zu bytes", f[i].key, f[i].len - 1);
            return -1;
        }
        snprintf(f[i].to, f[i].len, "%s", v ? v : "");
        any |= v && *v && i != 4;
    }
    return any;
}

/* POST /api/v1/engine/apps/{name}/clone {"repository":URL#REF,"fetch","uid","gid"}
 * and a private repository's credentials (auth_from) */
void api_apps_clone(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    json_t *b = body_json(req, &e), *out = NULL;
    static __thread struct gitclone_auth auth; /* 17 KB: not on a worker's stack */
    int has_auth = b ? auth_from(b, &auth, &e) : -1;

    if (b && has_auth >= 0) {
        json_t *uid = json_object_get(b, "uid"), *gid = json_object_get(b, "gid");
        struct images_job job = {.kind = IMAGES_CLONE, .image = req->params[0],
                                 .remote = json_string_value(json_object_get(b, "repository")),
                                 .git_max_bytes = app->opts->git_clone_max_mib << 20,
                                 .git_stall_s = (int)app->opts->git_clone_stall_s,
                                 .fetch = json_is_true(json_object_get(b, "fetch")),
                                 .uid = json_is_integer(uid) ? (long)json_integer_value(uid) : -1,
                                 .gid = json_is_integer(gid) ? (long)json_integer_value(gid) : -1,
                                 .git_auth = has_auth ? &auth : NULL};
        if ((uid && !json_is_integer(uid)) || job.uid < -1 || job.uid > 2147483647L || job.gid < -1 ||
            job.gid > 2147483647L)
            errinfo_set(&e, 400, "invalid_field", "uid", "uid and gid are numbers");
        else
            out = images_job_start(app->images, &job, &e);
    }
    explicit_bzero(&auth, sizeof(auth));
    json_decref(b);
    api_engine_reply(resp, 202, out, &e);
}

/* POST /api/v1/engine/apps/check {"repository":URL#REF} and credentials
 * (auth_from): {"commit"} (zeros for a commit's hex: the remote does not
 * list commits), and "host_key" (SHA256:...) an ssh server showed */
void api_apps_check(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    json_t *b = body_json(req, &e), *out = NULL;
    char url[1100], ref[300], folder[1100], sha[41], seen[64] = "";
    static __thread struct gitclone_auth auth;
    int has_auth;

    (void)app;
    if (!b || (has_auth = auth_from(b, &auth, &e)) < 0)
        goto out;
    const char *repo = json_string_value(json_object_get(b, "repository"));
    if (!repo || ctrspec_git_split(repo, "repository", url, sizeof(url), ref, sizeof(ref), folder, sizeof(folder), &e) < 0) {
        if (!repo)
            errinfo_set(&e, 400, "invalid_field", "repository", "repository is a git URL");
        goto out;
    }
    struct gitclone_opts o = {.mode = GITCLONE_CHECK, .url = url, .ref = ref, .auth = has_auth ? &auth : NULL,
                              .host_key_out = seen};
    if (gitclone_spawn(&o, CHECK_STALL_S, sha, &e) == 0)
        out = json_pack("{s:s, s:s}", "commit", sha, "host_key", seen);
out:
    explicit_bzero(&auth, sizeof(auth));
    json_decref(b);
    api_engine_reply(resp, 200, out, &e);
}

/* DELETE /api/v1/engine/apps/{name}: the app's folder and all in it */
void api_apps_remove(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    char dir[4200];
    struct stat st;

    if (engine_app_dir(app->engine, req->params[0], dir, sizeof(dir)) < 0) {
        errinfo_set(&e, 400, "invalid_field", "app", "an app's name is a DNS label, and this agent needs an apps_root");
    } else if (lstat(dir, &st) < 0) {
        errinfo_set(&e, 404, "not_found", "app", "%s is not there", dir);
    } else if (!S_ISDIR(st.st_mode) || gitclone_remove_tree(dir) < 0) {
        errinfo_set(&e, 500, "internal", "app", "cannot remove %s: %s", dir, strerror(errno));
    } else {
        api_engine_reply(resp, 200, json_pack("{s:b, s:s}", "ok", 1, "removed", dir), &e);
        return;
    }
    api_engine_reply(resp, 200, NULL, &e);
}

/* POST /api/v1/engine/apps/probe {"apps":[...]} (appprobe.h) */
void api_apps_probe(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct errinfo e = {0};
    json_t *b = body_json(req, &e), *out = NULL;

    if (b)
        out = appprobe_run(app->engine, json_object_get(b, "apps"), PROBE_TIMEOUT_MS, &e);
    json_decref(b);
    api_engine_reply(resp, 200, out ? json_pack("{s:o}", "apps", out) : NULL, &e);
}

extern char **environ;

/* PUT /api/v1/engine/apps/{name}/files: the body is an app's export; its
 * app/... entries are unpacked into the app's folder (made first) by GNU
 * tar, run with a fixed argument list: members with ".." or absolute
 * names refused, links to outside the folder made last (tar's own guard),
 * owned by root (the server then gives the folder to the app's user). */
void api_apps_files(void *appv, struct http_request *req, struct http_response *resp)
{
    struct agent_app *app = appv;
    struct upload *u = req->stream_state;
    struct errinfo e = {0};
    char dir[4200];
    struct stat st;
    pid_t pid;
    int status = -1;

    if (engine_app_dir(app->engine, req->params[0], dir, sizeof(dir)) < 0) {
        errinfo_set(&e, 400, "invalid_field", "app", "an app's name is a DNS label, and this agent needs an apps_root");
        goto out;
    }
    if (!u || u->failed || req->stream_failed || !u->size) {
        errinfo_set(&e, 400, "invalid_field", "body", "the body is an app's export (a tar)");
        goto out;
    }
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        errinfo_set(&e, 409, "no_app_folder", "app", "%s is not there: the folder is made first", dir);
        goto out;
    }
    rewind(u->f);
    /* only what is under app/ (the record and anything else stays out) */
    char *argv[] = {"tar", "-x", "-f", "-", "-C", dir, "--no-same-owner", "--strip-components=1", "--wildcards",
                    "app/*", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(u->f), 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    int err = posix_spawnp(&pid, "tar", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        errinfo_set(&e, 500, "internal", NULL, "cannot run tar: %s", strerror(err));
        goto out;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errinfo_set(&e, 400, "invalid_field", "body", "the export could not be unpacked into %s (tar said %d)", dir,
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto out;
    }
    api_engine_reply(resp, 200, json_pack("{s:b, s:s}", "ok", 1, "folder", dir), &e);
    return;
out:
    api_engine_reply(resp, 200, NULL, &e);
}
