/* Images of the host's engine: list, remove, and pulls in the background.
 * A pull's progress is the engine's own stream (one JSON object per line:
 * a layer's status and bytes, or an error), read chunk by chunk as it
 * arrives and kept per pull for whoever asks. */
#include "images.h"

#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/base64.h"
#include "../lib/buf.h"
#include "../lib/ctrspec.h"
#include "../lib/log.h"
#include "../lib/tarw.h"
#include "../lib/xalloc.h"
#include "gitclone.h"

#define PP_MAX_LAYERS 256
#define PP_MAX_LINE (64u << 10)
#define PULL_TIMEOUT_S 3600
#define STOP_WAIT_S 5
#define LOG_KEEP (64u << 10)

/* ---- the pull stream reader ---- */

struct layer {
    char id[72];
    char status[48];
    long long current, total;
    int done;
};

struct pullprog {
    struct buf line;
    struct buf log; /* a build's output ("stream" lines), its last LOG_KEEP bytes */
    long long log_total; /* bytes ever put in log: log holds [log_total - log.len, log_total) */
    int skipping; /* a line past PP_MAX_LINE: dropped up to its newline */
    struct layer *layers;
    size_t n;
    char status[160];
    char error[256];
};

struct pullprog *pullprog_new(void)
{
    struct pullprog *p = xcalloc(1, sizeof(*p));
    buf_init(&p->line, PP_MAX_LINE);
    buf_init(&p->log, 0);
    p->layers = xcalloc(PP_MAX_LAYERS, sizeof(*p->layers));
    return p;
}

void pullprog_free(struct pullprog *p)
{
    if (!p)
        return;
    buf_free(&p->line);
    buf_free(&p->log);
    free(p->layers);
    free(p);
}

static struct layer *layer_of(struct pullprog *p, const char *id)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->layers[i].id, id))
            return &p->layers[i];
    if (p->n == PP_MAX_LAYERS)
        return NULL;
    struct layer *l = &p->layers[p->n++];
    snprintf(l->id, sizeof(l->id), "%s", id);
    return l;
}

/* A layer's line: "Downloading" carries its bytes; the statuses after the
 * download mean all of them arrived. */
static void layer_line(struct pullprog *p, const char *id, const char *status, const json_t *detail)
{
    struct layer *l = layer_of(p, id);
    json_int_t cur = json_integer_value(json_object_get(detail, "current"));
    json_int_t tot = json_integer_value(json_object_get(detail, "total"));

    if (!l)
        return;
    snprintf(l->status, sizeof(l->status), "%s", status);
    if (!strcmp(status, "Downloading") && tot > 0 && cur >= 0) {
        l->total = tot;
        l->current = cur < tot ? cur : tot;
    } else if (!strcmp(status, "Verifying Checksum") || !strcmp(status, "Download complete") ||
               !strcmp(status, "Extracting") || !strcmp(status, "Pull complete")) {
        l->current = l->total;
    }
    /* Podman's compat stream says no more than "Download complete" */
    if (!strcmp(status, "Download complete") || !strcmp(status, "Pull complete") ||
        !strcmp(status, "Already exists"))
        l->done = 1;
}

static void one_line(struct pullprog *p, const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, 0, NULL);
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *err = json_string_value(json_object_get(j, "error"));

    if (!json_is_object(j))
        goto out;
    /* an engine's refusal before the stream starts is {"message":...} */
    const char *stream = json_string_value(json_object_get(j, "stream"));
    if (stream) { /* a build's output */
        buf_puts(&p->log, stream);
        p->log_total += (long long)strlen(stream);
        if (p->log.len > 2 * LOG_KEEP) { /* keep the newest: a build may print a lot */
            memmove(p->log.data, p->log.data + p->log.len - LOG_KEEP, LOG_KEEP);
            p->log.len = LOG_KEEP;
            p->log.data[LOG_KEEP] = '\0';
        }
        goto out;
    }
    if (!err && !status)
        err = json_string_value(json_object_get(j, "message"));
    if (err) {
        snprintf(p->error, sizeof(p->error), "%s", err);
        goto out;
    }
    if (!status)
        goto out;
    /* {"status":"Pulling from library/busybox","id":"latest"}: the id is
     * the tag, not a layer */
    if (id && *id && strncmp(status, "Pulling from", 12))
        layer_line(p, id, status, json_object_get(j, "progressDetail"));
    else
        snprintf(p->status, sizeof(p->status), "%s%s%s", status, id && *id ? " " : "", id ? id : "");
out:
    json_decref(j);
}

void pullprog_feed(struct pullprog *p, const char *data, size_t len)
{
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;

        if (!p->skipping && buf_append(&p->line, data, n) < 0) {
            p->skipping = 1;
            buf_reset(&p->line);
        }
        if (nl) {
            if (!p->skipping && p->line.len)
                one_line(p, p->line.data, p->line.len);
            buf_reset(&p->line);
            p->skipping = 0;
            n++;
        }
        data += n;
        len -= n;
    }
}

const char *pullprog_error(const struct pullprog *p)
{
    return p->error[0] ? p->error : NULL;
}

json_t *pullprog_json(const struct pullprog *p)
{
    json_t *layers = json_array();
    long long done = 0, total = 0;
    int ndone = 0;

    for (size_t i = 0; i < p->n; i++) {
        const struct layer *l = &p->layers[i];
        done += l->current;
        total += l->total;
        ndone += l->done;
        json_array_append_new(layers, json_pack("{s:s, s:s, s:I, s:I, s:b}", "id", l->id, "status",
                                                l->status, "current", (json_int_t)l->current,
                                                "total", (json_int_t)l->total, "done", l->done));
    }
    json_t *o = json_pack("{s:s, s:s?, s:o, s:I, s:I, s:i}", "status", p->status, "error",
                          p->error[0] ? p->error : NULL, "layers", layers, "bytes_done",
                          (json_int_t)done, "bytes_total", (json_int_t)total, "layers_done", ndone);
    if (p->log.len) /* whole lines only, so a cut never splits a character */
        json_object_set_new(o, "log", json_stringn(p->log.data, p->log.len));
    return o;
}

/* ---- pulls, pushes and builds: jobs the engine streams progress of ---- */

static const char *const kind_name[] = {"pull", "push", "build", "clone"};

enum { PULL_RUNNING, PULL_DONE, PULL_FAILED };

struct pull {
    int id;
    int kind; /* IMAGES_PULL, IMAGES_PUSH, IMAGES_BUILD */
    char *auth; /* "X-Registry-Auth: ..." or NULL */
    FILE *ctx;  /* a build's context (a tar), or NULL */
    long long ctx_size;
    char remote[1100]; /* a build's git URL, or "" */
    long long git_max_bytes;
    int git_stall_s;
    char commit[41];   /* what a build from git checked out */
    struct gitclone_progress git; /* the clone's, as it goes */
    int fetch;         /* clone: into the clone there */
    struct gitclone_auth *git_auth; /* clone: a private repository's, or NULL; wiped with the job */
    long uid, gid;     /* clone: the folder's owner after (-1: as is) */
    time_t said;       /* when the clone's progress was last put in the log */
    unsigned said_pct;
    char image[264];
    int state;
    time_t started, finished;
    struct pullprog *prog;
    char fail[256]; /* why, when the engine could not be reached */
    struct images *im;
};

struct images {
    struct engine *eng;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    pthread_cond_t changed; /* a job's log grew or a job ended: its readers look */
    struct pull *pulls[IMAGES_MAX_PULLS]; /* newest first */
    int next_id, running, stopping;
};

struct images *images_new(struct engine *eng)
{
    struct images *im = xcalloc(1, sizeof(*im));
    im->eng = eng;
    pthread_mutex_init(&im->mu, NULL);
    pthread_cond_init(&im->idle, NULL);
    pthread_cond_init(&im->changed, NULL);
    return im;
}

static void pull_free(struct pull *p)
{
    if (!p)
        return;
    pullprog_free(p->prog);
    if (p->git_auth) {
        explicit_bzero(p->git_auth, sizeof(*p->git_auth));
        free(p->git_auth);
    }
    free(p->auth);
    if (p->ctx)
        fclose(p->ctx);
    free(p);
}

int images_free(struct images *im)
{
    struct timespec until;

    if (!im)
        return 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_WAIT_S;
    pthread_mutex_lock(&im->mu);
    im->stopping = 1;
    while (im->running && pthread_cond_timedwait(&im->idle, &im->mu, &until) == 0)
        ;
    int running = im->running;
    pthread_mutex_unlock(&im->mu);
    if (running) {
        /* a pull stalled inside the engine call: the process is ending,
         * and its thread still holds im */
        log_warn("images: %d pull(s) still running at exit", running);
        return running;
    }
    for (int i = 0; i < IMAGES_MAX_PULLS; i++)
        pull_free(im->pulls[i]);
    pthread_cond_destroy(&im->idle);
    pthread_cond_destroy(&im->changed);
    pthread_mutex_destroy(&im->mu);
    free(im);
    return 0;
}

/* the engine's stream, chunk by chunk; 0 stops the transfer */
static size_t pull_sink(char *data, size_t size, size_t n, void *arg)
{
    struct pull *p = arg;
    size_t len = size * n;

    pthread_mutex_lock(&p->im->mu);
    pullprog_feed(p->prog, data, len);
    pthread_cond_broadcast(&p->im->changed);
    int stop = p->im->stopping;
    pthread_mutex_unlock(&p->im->mu);
    return stop ? 0 : len;
}

/* A line of the agent's own in a build's log, as the engine's are. */
static void say(struct pull *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct pull *p, const char *fmt, ...)
{
    char text[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s}", "stream", text);
    char *line = json_dumps(j, JSON_COMPACT);
    pthread_mutex_lock(&p->im->mu);
    pullprog_feed(p->prog, line, strlen(line));
    pullprog_feed(p->prog, "\n", 1);
    pthread_cond_broadcast(&p->im->changed);
    pthread_mutex_unlock(&p->im->mu);
    free(line);
    json_decref(j);
}

/* The clone's progress, in the log each second or each 10%. */
static int clone_progress(void *arg, const struct gitclone_progress *g)
{
    struct pull *p = arg;
    int stopping;
    unsigned pct = g->files_total ? 100 : g->objects_total ? g->objects_received * 100u / g->objects_total : 0;
    time_t now = time(NULL);

    pthread_mutex_lock(&p->im->mu);
    stopping = p->im->stopping;
    p->git = *g;
    pthread_cond_broadcast(&p->im->changed);
    pthread_mutex_unlock(&p->im->mu);
    if (g->files_total && g->files_done < g->files_total)
        return stopping;
    if (now == p->said && pct < p->said_pct + 10)
        return stopping;
    p->said = now;
    p->said_pct = pct;
    if (g->files_total)
        say(p, "git: checked out %u files\n", g->files_total);
    else
        say(p, "git: receiving objects %u%% (%u/%u), %.1f MiB\n", pct, g->objects_received, g->objects_total,
            (double)g->bytes_received / 1048576.0);
    return stopping;
}

/* Why the job failed, under the lock its readers take. */
static void set_fail(struct pull *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_fail(struct pull *p, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&p->im->mu);
    va_start(ap, fmt);
    vsnprintf(p->fail, sizeof(p->fail), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&p->im->mu);
}

/* A build from git: cloned into a temporary folder, its tree (or the
 * folder after "#REF:") made the context. 0, or -1 with why in p->fail. */
static int context_from_git(struct pull *p)
{
    char url[1100], ref[300], folder[1100], workdir[] = "/var/tmp/gpufleet-git-XXXXXX", repo[64], ctx[PATH_MAX],
        real_repo[PATH_MAX], real_ctx[PATH_MAX], err[400];
    struct errinfo e = {0};
    int rc = -1;

    if (ctrspec_git_split(p->remote, "git", url, sizeof(url), ref, sizeof(ref), folder, sizeof(folder), &e) < 0) {
        set_fail(p, "%s", e.message);
        return -1;
    }
    if (!mkdtemp(workdir)) {
        set_fail(p, "no temporary folder for the clone: %s", strerror(errno));
        return -1;
    }
    snprintf(repo, sizeof(repo), "%s/repo", workdir);
    say(p, "git: cloning %s%s%s\n", url, *ref ? " at " : "", ref);
    struct gitclone_opts o = {.url = url, .ref = ref, .dir = repo, .max_bytes = p->git_max_bytes,
                              .progress = clone_progress, .arg = p};
    char sha[41];
    if (gitclone_spawn(&o, p->git_stall_s > 0 ? p->git_stall_s : 120, sha, &e) < 0) {
        set_fail(p, "%s", e.message);
        goto out;
    }
    pthread_mutex_lock(&p->im->mu); /* readers of the job look under it */
    memcpy(p->commit, sha, sizeof(p->commit));
    pthread_mutex_unlock(&p->im->mu);
    say(p, "git: at commit %s\n", sha);
    snprintf(ctx, sizeof(ctx), "%s/%s", repo, folder);
    /* the folder may be a link in the repository: it must stay inside */
    if (!realpath(repo, real_repo) || !realpath(ctx, real_ctx) ||
        (strcmp(real_ctx, real_repo) && strncmp(real_ctx, real_repo, strlen(real_repo))) ||
        (strcmp(real_ctx, real_repo) && real_ctx[strlen(real_repo)] != '/')) {
        set_fail(p, "the repository has no folder \"%.200s\"", folder);
        goto out;
    }
    if (!(p->ctx = tmpfile()) || tarw_tree(p->ctx, real_ctx, ".git", p->git_max_bytes, err, sizeof(err)) < 0 ||
        tarw_end(p->ctx) < 0 || fflush(p->ctx) != 0) {
        set_fail(p, "making the context: %.200s", err[0] ? err : strerror(errno));
        goto out;
    }
    p->ctx_size = ftello(p->ctx);
    rewind(p->ctx);
    say(p, "git: context %.1f MiB\n", (double)p->ctx_size / 1048576.0);
    rc = 0;
out:
    gitclone_remove_tree(workdir);
    return rc;
}

/* mkdir -p: a fresh host has no apps_root yet */
static void mkdir_p(char *path)
{
    for (char *c = path + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = 0;
        mkdir(path, 0755);
        *c = '/';
    }
    mkdir(path, 0755);
}

static pthread_mutex_t chown_lock = PTHREAD_MUTEX_INITIALIZER;
static long chown_to[2]; /* uid, gid: nftw's callback takes no argument */

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return lchown(path, (uid_t)chown_to[0], (gid_t)chown_to[1]) == 0 || errno == ENOENT ? 0 : -1;
}

/* An app's clone: a fresh one made beside the folder and swapped in once
 * complete (a failed clone leaves the app as it was), or a fetch into the
 * folder. 0, or -1 with why in p->fail. */
static int app_clone(struct pull *p)
{
    char url[1100], ref[300], folder[1100], dir[4200], tmp[4300], old[4300], sha[41];
    struct errinfo e = {0};
    int rc = -1, made = 0;

    if (engine_app_dir(p->im->eng, p->image, dir, sizeof(dir)) < 0) {
        set_fail(p, "this agent has no apps_root");
        return -1;
    }
    if (!p->remote[0]) { /* an app of an image alone: its folder is all it needs */
        mkdir_p(dir);
        sha[0] = 0;
        goto owned;
    }
    if (ctrspec_git_split(p->remote, "repository", url, sizeof(url), ref, sizeof(ref), folder, sizeof(folder), &e) < 0) {
        set_fail(p, "%s", e.message);
        return -1;
    }
    struct gitclone_opts o = {.mode = p->fetch ? GITCLONE_FETCH : GITCLONE_CLONE, .url = url, .ref = ref,
                              .auth = p->git_auth, .dir = dir,
                              .max_bytes = p->git_max_bytes, .progress = clone_progress, .arg = p};
    if (!p->fetch) {
        /* beside the folder: the same file system, so the swap is a rename */
        char *slash;
        snprintf(tmp, sizeof(tmp), "%s", dir);
        if ((slash = strrchr(tmp, '/')) && slash != tmp) {
            *slash = 0;
            mkdir_p(tmp);
        }
        snprintf(tmp, sizeof(tmp), "%s.gf-new-XXXXXX", dir);
        if (!mkdtemp(tmp)) {
            set_fail(p, "cannot make a folder beside %s: %s", dir, strerror(errno));
            return -1;
        }
        made = 1;
        o.dir = tmp;
    }
    say(p, "git: %s %s%s%s\n", p->fetch ? "fetching" : "cloning", url, *ref ? " at " : "", ref);
    if (gitclone_spawn(&o, p->git_stall_s > 0 ? p->git_stall_s : 120, sha, &e) < 0) {
        set_fail(p, "%s", e.message);
        goto out;
    }
    if (!p->fetch) {
        snprintf(old, sizeof(old), "%s.gf-old-%ld", dir, (long)getpid());
        gitclone_remove_tree(old);
        if ((rename(dir, old) < 0 && errno != ENOENT) || rename(tmp, dir) < 0) {
            set_fail(p, "cannot put the clone at %s: %s", dir, strerror(errno));
            goto out;
        }
        made = 0;
        gitclone_remove_tree(old);
    }
owned:
    if (p->uid >= 0) {
        pthread_mutex_lock(&chown_lock); /* nftw's callback has no argument */
        chown_to[0] = p->uid;
        chown_to[1] = p->gid >= 0 ? p->gid : p->uid;
        int bad = nftw(dir, chown_one, 16, FTW_PHYS) != 0;
        pthread_mutex_unlock(&chown_lock);
        if (bad) {
            set_fail(p, "cannot give %s to %ld: %s", dir, p->uid, strerror(errno));
            goto out;
        }
    }
    pthread_mutex_lock(&p->im->mu);
    memcpy(p->commit, sha, sizeof(p->commit));
    pthread_mutex_unlock(&p->im->mu);
    if (sha[0])
        say(p, "git: at commit %s in %s\n", sha, dir);
    rc = 0;
out:
    if (made)
        gitclone_remove_tree(tmp);
    return rc;
}

static void *pull_thread(void *arg)
{
    struct pull *p = arg;
    struct images *im = p->im;
    struct errinfo e = {0};
    char *q = curl_easy_escape(NULL, p->image, 0);
    char path[900];
    long status;

    struct engine_extra extra = {.header = p->auth};
    if (p->kind == IMAGES_CLONE) {
        curl_free(q);
        status = app_clone(p) < 0 ? -1 : 200;
        goto done;
    }
    if (p->kind == IMAGES_BUILD && p->remote[0] && context_from_git(p) < 0) {
        curl_free(q);
        status = -1;
        goto done;
    }
    if (p->kind == IMAGES_PUSH) {
        /* name and tag apart: POST /images/NAME/push?tag=TAG */
        char name[264];
        const char *colon = strrchr(p->image, ':'), *slash = strrchr(p->image, '/');
        int has_tag = colon && (!slash || colon > slash);
        snprintf(name, sizeof(name), "%.*s", has_tag ? (int)(colon - p->image) : (int)strlen(p->image), p->image);
        snprintf(path, sizeof(path), "/" ENGINE_API "/images/%s/push?tag=%s", name, has_tag ? colon + 1 : "latest");
    } else if (p->kind == IMAGES_BUILD) {
        snprintf(path, sizeof(path), "/" ENGINE_API "/build?t=%s&rm=1", q ? q : "");
        extra.upload = p->ctx;
        extra.upload_size = p->ctx_size;
    } else {
        snprintf(path, sizeof(path), "/" ENGINE_API "/images/create?fromImage=%s", q ? q : "");
    }
    curl_free(q);
    status = engine_call_ex(im->eng, "POST", path, &extra, PULL_TIMEOUT_S, pull_sink, p, &e);
done:
    pthread_mutex_lock(&im->mu);
    pullprog_feed(p->prog, "\n", 1); /* a last line without its newline */
    if (p->fail[0])
        ; /* the clone failed: said already */
    else if (status < 0)
        snprintf(p->fail, sizeof(p->fail), "%s", e.message);
    else if (status >= 300 && !pullprog_error(p->prog))
        snprintf(p->fail, sizeof(p->fail), "the engine said %ld", status);
    p->state = status >= 200 && status < 300 && !pullprog_error(p->prog) ? PULL_DONE : PULL_FAILED;
    p->finished = time(NULL);
    /* p may be forgotten (freed) once the lock is let go */
    log_info("images: %s %d of %s %s", kind_name[p->kind], p->id, p->image, p->state == PULL_DONE ? "done" : "failed");
    im->running--;
    pthread_cond_broadcast(&im->idle);
    pthread_cond_broadcast(&im->changed);
    pthread_mutex_unlock(&im->mu);
    return NULL;
}

static json_t *pull_json(const struct pull *p)
{
    json_t *kind = json_string(kind_name[p->kind]);
    json_t *o = pullprog_json(p->prog);
    static const char *const states[] = {"running", "done", "failed"};

    json_object_set_new(o, "id", json_integer(p->id));
    json_object_set_new(o, "kind", kind);
    json_object_set_new(o, "image", json_string(p->image));
    json_object_set_new(o, "state", json_string(states[p->state]));
    json_object_set_new(o, "started", json_integer(p->started));
    json_object_set_new(o, "finished", p->finished ? json_integer(p->finished) : json_null());
    if (p->fail[0])
        json_object_set_new(o, "error", json_string(p->fail));
    if (p->commit[0])
        json_object_set_new(o, "commit", json_string(p->commit));
    if (p->remote[0])
        json_object_set_new(o, "git", json_string(p->remote));
    if (p->remote[0])
        json_object_set_new(o, "git_progress",
                            json_pack("{s:i, s:i, s:i, s:I, s:i, s:i}", "objects_total", (int)p->git.objects_total,
                                      "objects_received", (int)p->git.objects_received, "objects_indexed",
                                      (int)p->git.objects_indexed, "bytes_received",
                                      (json_int_t)p->git.bytes_received, "files_total", (int)p->git.files_total,
                                      "files_done", (int)p->git.files_done));
    return o;
}

/* Keeps the newest IMAGES_MAX_PULLS; the oldest finished one makes room
 * (there are at most IMAGES_MAX_RUNNING unfinished). Under im->mu. */
static void remember(struct images *im, struct pull *p)
{
    int last = IMAGES_MAX_PULLS - 1;
    while (last >= 0 && im->pulls[last] && im->pulls[last]->state == PULL_RUNNING)
        last--;
    if (last < 0)
        last = IMAGES_MAX_PULLS - 1;
    pull_free(im->pulls[last]);
    memmove(&im->pulls[1], &im->pulls[0], (size_t)last * sizeof(im->pulls[0]));
    im->pulls[0] = p;
}

json_t *images_job_start(struct images *im, const struct images_job *job, struct errinfo *e)
{
    const char *ref = job->image;
    struct pull *p;
    pthread_t t;
    pthread_attr_t attr;
    json_t *out;

    if (job->kind == IMAGES_CLONE) {
        char gurl[1100], gref[300], gfolder[1100], dir[4200];
        if (!ref || engine_app_dir(im->eng, ref, dir, sizeof(dir)) < 0) {
            errinfo_set(e, 400, "invalid_field", "app", "an app's name is a DNS label, and this agent needs an apps_root");
            return NULL;
        }
        gfolder[0] = 0;
        if (job->remote && *job->remote &&
            ctrspec_git_split(job->remote, "repository", gurl, sizeof(gurl), gref, sizeof(gref), gfolder,
                              sizeof(gfolder), e) < 0)
            return NULL;
        if (gfolder[0]) {
            errinfo_set(e, 400, "invalid_field", "repository", "an app is the whole repository: no \":FOLDER\"");
            return NULL;
        }
    } else if (!ref || !ctrspec_valid_image(ref)) {
        errinfo_set(e, 400, "invalid_field", "image",
                    "image must be a reference like registry:5000/team/app:1.2 (lowercase repository)");
        return NULL;
    }
    if (job->kind == IMAGES_BUILD && !job->ctx == !job->remote) {
        errinfo_set(e, 400, "invalid_field", "context", "a build needs a context (a tar) or a git URL, one of them");
        return NULL;
    }
    if (job->kind == IMAGES_BUILD && job->remote) {
        char gurl[1100], gref[300], gfolder[1100];
        if (ctrspec_git_split(job->remote, "git", gurl, sizeof(gurl), gref, sizeof(gref), gfolder, sizeof(gfolder), e) < 0)
            return NULL;
    }
    p = xcalloc(1, sizeof(*p));
    p->im = im;
    p->kind = job->kind;
    p->ctx = job->ctx;
    p->ctx_size = job->ctx_size;
    snprintf(p->remote, sizeof(p->remote), "%s", job->remote ? job->remote : "");
    p->git_max_bytes = job->git_max_bytes;
    p->git_stall_s = job->git_stall_s;
    p->fetch = job->fetch;
    if (job->git_auth) {
        p->git_auth = xmalloc(sizeof(*p->git_auth));
        memcpy(p->git_auth, job->git_auth, sizeof(*p->git_auth));
    }
    p->uid = job->kind == IMAGES_CLONE ? job->uid : -1;
    p->gid = job->gid;
    if (job->auth)
        p->auth = images_auth_header(job->auth);
    p->prog = pullprog_new();
    p->started = time(NULL);
    /* no tag or digest would make the engine pull every tag */
    const char *slash = strrchr(ref, '/');
    int tagged = strchr(ref, '@') || strchr(slash ? slash : ref, ':');
    snprintf(p->image, sizeof(p->image), "%s%s", ref, tagged || job->kind == IMAGES_CLONE ? "" : ":latest");

    pthread_mutex_lock(&im->mu);
    if (im->running >= IMAGES_MAX_RUNNING || im->stopping) {
        pthread_mutex_unlock(&im->mu);
        p->ctx = NULL; /* the caller's still */
        pull_free(p);
        errinfo_set(e, 429, "busy", NULL, "%d pulls, pushes or builds are running on this host already; try again when one ends",
                    IMAGES_MAX_RUNNING);
        return NULL;
    }
    p->id = ++im->next_id;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, pull_thread, p) != 0) {
        pthread_attr_destroy(&attr);
        pthread_mutex_unlock(&im->mu);
        p->ctx = NULL;
        pull_free(p);
        errinfo_set(e, 500, "internal", NULL, "could not start a job");
        return NULL;
    }
    pthread_attr_destroy(&attr);
    im->running++;
    remember(im, p);
    out = pull_json(p);
    log_info("images: %s %d of %s started", kind_name[p->kind], p->id, p->image);
    pthread_mutex_unlock(&im->mu);
    return out;
}

json_t *images_pull_start(struct images *im, const char *ref, struct errinfo *e)
{
    struct images_job job = {.kind = IMAGES_PULL, .image = ref};
    return images_job_start(im, &job, e);
}

char *images_auth_header(const json_t *auth)
{
    json_t *a = json_pack("{s:s,s:s,s:s}", "username", json_string_value(json_object_get(auth, "username")) ?: "",
                          "password", json_string_value(json_object_get(auth, "password")) ?: "",
                          "serveraddress", json_string_value(json_object_get(auth, "serveraddress")) ?: "");
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!text)
        return NULL;
    size_t n = strlen(text), cap = 32 + 4 * (n / 3 + 1);
    char *out = xmalloc(cap);
    int o = sprintf(out, "X-Registry-Auth: ");
    base64_encode(text, n, BASE64_PAD | BASE64_URL, out + o, cap - (size_t)o); /* as the engines read it */
    free(text);
    return out;
}

json_t *images_pull_get(struct images *im, int id, struct errinfo *e)
{
    json_t *out = NULL;

    pthread_mutex_lock(&im->mu);
    for (int i = 0; i < IMAGES_MAX_PULLS && im->pulls[i] && !out; i++)
        if (im->pulls[i]->id == id)
            out = pull_json(im->pulls[i]);
    pthread_mutex_unlock(&im->mu);
    if (!out)
        errinfo_set(e, 404, "not_found", "pull", "no pull %d on this host (the last %d are kept)", id,
                    IMAGES_MAX_PULLS);
    return out;
}

json_t *images_pulls(struct images *im)
{
    json_t *out = json_array();

    pthread_mutex_lock(&im->mu);
    for (int i = 0; i < IMAGES_MAX_PULLS && im->pulls[i]; i++)
        json_array_append_new(out, pull_json(im->pulls[i]));
    pthread_mutex_unlock(&im->mu);
    return out;
}

/* ---- list and remove ---- */

static json_t *strings(const json_t *a, int skip_none)
{
    json_t *out = json_array(), *v;
    size_t i;

    json_array_foreach(a, i, v) {
        const char *s = json_string_value(v);
        if (s && !(skip_none && strstr(s, "<none>")))
            json_array_append_new(out, json_string(s));
    }
    return out;
}

json_t *images_list_from_json(const char *text, size_t len, const json_t *containers, struct errinfo *e)
{
    json_t *in = json_loadb(text, len, 0, NULL), *out = NULL, *img, *c;
    size_t i, j;

    if (!json_is_array(in)) {
        errinfo_set(e, 502, "engine_answer", NULL, "the engine's image list is not an array");
        goto out;
    }
    out = json_array();
    json_array_foreach(in, i, img) {
        const char *id = json_string_value(json_object_get(img, "Id"));
        json_t *users = json_array();
        if (!id) {
            json_decref(users);
            continue;
        }
        json_array_foreach(containers, j, c) {
            const char *cid = json_string_value(json_object_get(c, "image_id"));
            /* Docker says "sha256:hex"; Podman's compat API the bare hex */
            if (cid && (!strcmp(cid, id) || (!strncmp(id, "sha256:", 7) && !strcmp(cid, id + 7)) ||
                        (!strncmp(cid, "sha256:", 7) && !strcmp(cid + 7, id))))
                json_array_append(users, json_object_get(c, "name"));
        }
        json_array_append_new(out, json_pack("{s:s, s:o, s:o, s:I, s:I, s:o}", "id", id, "tags",
                                             strings(json_object_get(img, "RepoTags"), 1), "digests",
                                             strings(json_object_get(img, "RepoDigests"), 1), "size",
                                             json_integer_value(json_object_get(img, "Size")), "created",
                                             json_integer_value(json_object_get(img, "Created")),
                                             "containers", users));
    }
out:
    json_decref(in);
    return out;
}

json_t *images_list(struct images *im, struct errinfo *e)
{
    struct buf b;
    json_t *containers = engine_list(im->eng, e), *out = NULL;
    long status;

    if (!containers)
        return NULL;
    buf_init(&b, 16u << 20);
    status = engine_call(im->eng, "GET", "/" ENGINE_API "/images/json", NULL, 30, NULL, &b, e);
    if (status >= 300)
        engine_refused(&b, status, 502, e);
    else if (status >= 0)
        out = images_list_from_json(b.data ? b.data : "", b.len, containers, e);
    buf_free(&b);
    json_decref(containers);
    return out;
}

int images_remove(struct images *im, const char *ref, int force, struct errinfo *e)
{
    struct buf b;
    char path[400];
    long status;

    if (!ref || !(ctrspec_valid_image(ref) || ctrspec_valid_image_id(ref))) {
        errinfo_set(e, 400, "invalid_field", "image", "image is a reference (team/app:1.2) or an image id");
        return -1;
    }
    /* a valid reference is [a-z0-9._/:@-]: nothing a path would read */
    snprintf(path, sizeof(path), "/" ENGINE_API "/images/%s?force=%s", ref, force ? "true" : "false");
    buf_init(&b, 1u << 20);
    status = engine_call(im->eng, "DELETE", path, NULL, 120, NULL, &b, e);
    if (status >= 300)
        engine_refused(&b, status, 409, e);
    buf_free(&b);
    return status >= 200 && status < 300 ? 0 : -1;
}

/* Under im->mu: the job of id, or NULL. */
static struct pull *find(struct images *im, int id)
{
    for (int i = 0; i < IMAGES_MAX_PULLS; i++)
        if (im->pulls[i] && im->pulls[i]->id == id)
            return im->pulls[i];
    return NULL;
}

int images_build_log(struct images *im, int id, long long *offset, struct buf *out, int wait_ms, struct errinfo *e)
{
    struct timespec until;
    struct pull *p;
    int rc;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&im->mu);
    for (;;) {
        /* looked up again after each wait: a finished job may be forgotten */
        p = find(im, id);
        if (!p || p->kind != IMAGES_BUILD) {
            errinfo_set(e, 404, "not_found", NULL, "no build %d on this host (the newest %d jobs are kept)", id,
                        IMAGES_MAX_PULLS);
            rc = -1;
            break;
        }
        struct pullprog *pp = p->prog;
        long long first = pp->log_total - (long long)pp->log.len;
        if (*offset < first) /* what was dropped as too old is skipped */
            *offset = first;
        if (*offset < pp->log_total) {
            size_t from = (size_t)(*offset - first);
            buf_append(out, pp->log.data + from, pp->log.len - from);
            *offset = pp->log_total;
        }
        rc = p->state == PULL_RUNNING;
        if (out->len || !rc || im->stopping ||
            pthread_cond_timedwait(&im->changed, &im->mu, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&im->mu);
    return rc;
}
