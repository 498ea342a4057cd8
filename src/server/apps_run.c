/* The apps' jobs (install, reinstall, update: a clone on the host, then the
 * container) and the health loop that probes every app from its host and
 * sets its light. Calls to agents are made without the module's lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "agentcall.h"
#include "appspec.h"
#include "apps_impl.h"
#include "containers.h"
#include "store/db.h"

#define POLL_NS 200000000LL     /* a clone's progress is read this often */
#define SAY_MS 250              /* and pushed to browsers at most this often */
#define FAILS_TO_FAILED 3       /* a RUNNING app not answering this many probes in a row */
#define TAIL_LINES 30
#define STARTING_PROBE_MS 250   /* while an app starts: its RUNNING is seen this soon */

static const char *const job_phase[] = {"installing", "reinstalling", "updating", "importing"};
static const char *const job_name[] = {"install", "reinstall", "update", "import"};

struct job {
    struct apps *a;
    char name[64];
    int kind;
    int has_ref;
    char ref[300];
    json_t *auth;           /* new credentials (null: none), or NULL: the app's */
    struct app_files files; /* JOB_IMPORT's */
};

/* ---- jobs ---- */

static int stopping(struct apps *a)
{
    pthread_mutex_lock(&a->lock);
    int s = a->stop;
    pthread_mutex_unlock(&a->lock);
    return s;
}

/* The job's progress (p stolen), pushed at most every SAY_MS unless force. */
static void progress(struct apps *a, const char *name, json_t *p, int force)
{
    int64_t now = now_wall_ms();
    pthread_mutex_lock(&a->lock);
    struct app_live *l = apps_live(a, name);
    json_decref(l->progress);
    l->progress = p;
    int say = force || now - l->said_ms >= SAY_MS;
    if (say)
        l->said_ms = now;
    pthread_mutex_unlock(&a->lock);
    if (say)
        apps_announce(a, name);
}

/* The last line of a job's log, for the progress. */
static json_t *last_line(const char *log)
{
    if (!log || !*log)
        return json_string("");
    size_t n = strlen(log);
    while (n && log[n - 1] == '\n')
        n--;
    size_t b = n;
    while (b && log[b - 1] != '\n')
        b--;
    return json_stringn(log + b, n - b) ?: json_string("");
}

/* Clones (or fetches) on the host and waits for it: 0 with the commit in
 * sha, or -1 with e. */
static int clone_on_host(struct apps *a, const struct reg_target *t, const struct app_row *r, int kind, long uid,
                         char sha[41], struct errinfo *e)
{
    /* an import's folder is made empty (and, again, given to the app's
     * user after its files are in): no clone */
    const char *repo = kind == JOB_IMPORT ? "" : json_string_value(json_object_get(r->spec, "repository"));
    const char *ref = json_string_value(json_object_get(r->spec, "ref"));
    char path[200];
    json_t *body, *ans;
    int rc = -1;

    body = json_pack("{s:s, s:b}", "repository", "", "fetch", kind == JOB_UPDATE);
    if (*repo)
        json_object_set_new(body, "repository", *ref ? json_sprintf("%s#%s", repo, ref) : json_string(repo));
    if (uid >= 0)
        json_object_set_new(body, "uid", json_integer(uid)), json_object_set_new(body, "gid", json_integer(uid));
    if (*repo && json_is_object(r->secret))
        json_object_update(body, r->secret); /* username, password: to the agent only */
    snprintf(path, sizeof(path), "/api/v1/engine/apps/%s/clone", r->name);
    ans = agentcall(t, "POST", path, body, 60, e);
    json_decref(body);
    if (!ans)
        return -1;
    json_int_t id = json_integer_value(json_object_get(ans, "id"));
    json_decref(ans);
    snprintf(path, sizeof(path), "/api/v1/engine/images/pulls/%lld", (long long)id);
    for (;;) {
        if (stopping(a)) {
            errinfo_set(e, 503, "stopping", NULL, "the server is stopping");
            return -1;
        }
        struct timespec ts = {0, POLL_NS};
        nanosleep(&ts, NULL);
        if (!(ans = agentcall(t, "GET", path, NULL, 30, e)))
            return -1;
        const char *state = json_string_value(json_object_get(ans, "state"));
        json_t *p = json_deep_copy(json_object_get(ans, "git_progress"));
        if (!json_is_object(p))
            json_decref(p), p = json_object();
        json_object_set_new(p, "step", json_string(kind == JOB_UPDATE ? "fetch" : kind == JOB_IMPORT ? "folder" : "clone"));
        json_object_set_new(p, "line", last_line(json_string_value(json_object_get(ans, "log"))));
        int ended = !state || strcmp(state, "running");
        progress(a, r->name, p, ended);
        if (!ended) {
            json_decref(ans);
            continue;
        }
        if (state && !strcmp(state, "done")) {
            snprintf(sha, 41, "%s", json_string_value(json_object_get(ans, "commit")) ?: "");
            rc = 0;
        } else {
            const char *why = json_string_value(json_object_get(ans, "error"));
            errinfo_set(e, 502, "clone_failed", "repository", "%s: %s", *repo ? "the clone failed" : "the folder",
                        why ? why : "the host's job ended without a word");
        }
        json_decref(ans);
        return rc;
    }
}

/* The app's container: made (install, or none left), or recreated from
 * the same spec over the new clone. Its id and host port, or -1 with e. */
static int64_t container_for(struct apps *a, const struct app_row *r, long uid, int *host_port, struct errinfo *e)
{
    struct auth_identity who = {.user_id = r->owner_id, .role = r->owner_role};
    char user[48] = "";
    json_t *c = NULL;

    snprintf(who.username, sizeof(who.username), "%s", r->owner);
    if (uid > 0)
        snprintf(user, sizeof(user), "%d:%d", (int)uid, (int)uid);
    if (r->container_id && ctr_act(a->app->ctr, r->container_id, 0, "recreate", e) == 0)
        c = ctr_get(a->app->ctr, r->container_id, 0, e);
    else if (!r->container_id || e->status == 404)
        c = ctr_create_app(a->app->ctr, &who, r->ctr, r->name, user, e);
    if (!c)
        return -1;
    int64_t id = json_integer_value(json_object_get(c, "id"));
    *host_port = (int)json_integer_value(json_object_get(json_array_get(json_object_get(c, "ports"), 0), "host"));
    json_decref(c);
    return id;
}

/* An import's folder: made empty, the export's app/... entries unpacked
 * into it by its host's agent, then given to the app's user, all before
 * its container exists (so it starts from them). 0 or -1 with e. */
static int import_files(struct apps *a, const struct reg_target *t, const struct app_row *r, long uid,
                        struct app_files *files, struct errinfo *e)
{
    char path[300], sha[41];
    json_t *ok;

    if (clone_on_host(a, t, r, JOB_IMPORT, -1, sha, e) < 0)
        return -1;
    progress(a, r->name, json_pack("{s:s, s:I}", "step", "files", "bytes_total", (json_int_t)files->size), 1);
    rewind(files->f);
    snprintf(path, sizeof(path), "/api/v1/engine/apps/%s/files", r->name);
    if (!(ok = agentcall_send_file(t, "PUT", path, files->f, files->size, 3600, e)))
        return -1;
    json_decref(ok);
    return uid >= 0 ? clone_on_host(a, t, r, JOB_IMPORT, uid, sha, e) : 0;
}

static void set_phase(struct apps *a, const char *name, const char *phase, const json_t *spec)
{
    char *text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    sqlite3_stmt *st = db_prepare(a->db, "UPDATE apps SET phase = ?2, spec = COALESCE(?3, spec), updated_ms = ?4"
                                         " WHERE name = ?1");
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, phase, -1, SQLITE_TRANSIENT);
        if (text)
            sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, now_wall_ms());
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    free(text);
}

static void finish_ok(struct apps *a, const char *name, int64_t container_id, int host_port, const char *sha)
{
    sqlite3_stmt *st = db_prepare(a->db, "UPDATE apps SET phase = 'ready', desired = 'running', container_id = ?2,"
                                         " host_port = ?3, commit_sha = ?4, log_tail = '', updated_ms = ?5 WHERE name = ?1");
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, container_id);
        sqlite3_bind_int(st, 3, host_port);
        sqlite3_bind_text(st, 4, sha, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, now_wall_ms());
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    apps_set_health(a, name, "STARTING", "", NULL, 1);
    a->poke = 1;
    pthread_cond_broadcast(&a->wake);
}

/* Credentials a job used, kept for the next ones (never shown). */
static void set_secret(struct apps *a, const char *name, const json_t *auth)
{
    sqlite3_stmt *st = db_prepare(a->db, "UPDATE apps SET secret = ?2 WHERE name = ?1");
    char *text = json_is_object(auth) ? json_dumps(auth, JSON_COMPACT) : NULL;

    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, text ? text : "", -1, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (text) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct apps *a = j->a;
    struct app_row r;
    struct reg_target t;
    struct errinfo e = {0};
    char sha[41] = "";
    int host_port = 0, ok = 0;
    int64_t cid = -1, t0 = now_mono_ns();

    pthread_mutex_lock(&a->lock);
    int have = apps_row_read(a, j->name, 0, &r, &e) == 0;
    long uid = a->cfg.uid;
    if (have) {
        if (j->has_ref)
            json_object_set_new(r.spec, "ref", json_string(j->ref));
        set_phase(a, j->name, job_phase[j->kind], j->has_ref ? r.spec : NULL);
    }
    pthread_mutex_unlock(&a->lock);
    if (!have)
        goto end;
    if (json_is_true(json_object_get(r.spec, "run_as_root")))
        uid = -1;
    if (j->auth) {
        json_decref(r.secret);
        r.secret = json_is_object(j->auth) ? json_incref(j->auth) : NULL;
    }
    apps_announce(a, j->name);
    if (agentcall_find(a->app->reg, r.server, 0, "server", &t, &e) < 0)
        goto end;
    if (j->kind == JOB_IMPORT ? import_files(a, &t, &r, uid, &j->files, &e) < 0
                              : clone_on_host(a, &t, &r, j->kind, uid, sha, &e) < 0)
        goto end;
    if (j->kind == JOB_IMPORT)
        snprintf(sha, sizeof(sha), "%s", j->files.commit);
    progress(a, j->name, json_pack("{s:s, s:s}", "step", "container", "commit", sha), 1);
    if ((cid = container_for(a, &r, uid, &host_port, &e)) < 0)
        goto end;
    ok = 1;
end:
    pthread_mutex_lock(&a->lock);
    if (have && ok) {
        finish_ok(a, j->name, cid, host_port, sha);
        if (j->auth)
            set_secret(a, j->name, j->auth);
        a->installs_done++;
    } else if (have) {
        char detail[600];
        snprintf(detail, sizeof(detail), "the %s failed: %s", job_name[j->kind], e.message);
        /* a failed reinstall or update leaves the app as it was (the old
         * clone and container stay) */
        int installed = j->kind != JOB_INSTALL && r.container_id && strcmp(r.phase, "failed");
        set_phase(a, j->name, installed ? "ready" : "failed", NULL);
        apps_set_health(a, j->name, installed ? r.health : "FAILED", detail, NULL, 0);
        a->installs_failed++;
    }
    struct app_live *l = apps_live(a, j->name);
    l->busy = 0;
    json_decref(l->progress);
    l->progress = NULL;
    a->jobs--;
    pthread_cond_broadcast(&a->jobs_done);
    pthread_mutex_unlock(&a->lock);
    if (have) {
        log_info("apps: %s %s %s in %.1f s%s%s", j->name, job_name[j->kind], ok ? "done" : "failed",
                 (double)(now_mono_ns() - t0) / 1e9, ok ? "" : ": ", ok ? "" : e.message);
        apps_announce(a, j->name);
    }
    apps_row_free(&r);
    if (j->files.f)
        fclose(j->files.f);
    json_decref(j->auth);
    free(j);
    return NULL;
}

int apps_job_start(struct apps *a, const char *name, int kind, const char *ref, json_t *auth,
                   struct app_files *files, struct errinfo *e)
{
    struct job *j = xcalloc(1, sizeof(*j));
    pthread_t th;
    pthread_attr_t attr;

    j->a = a;
    j->kind = kind;
    snprintf(j->name, sizeof(j->name), "%s", name);
    if (ref) {
        j->has_ref = 1;
        snprintf(j->ref, sizeof(j->ref), "%s", ref);
    }
    pthread_mutex_lock(&a->lock);
    if (a->stop || a->jobs >= APPS_MAX_JOBS) {
        pthread_mutex_unlock(&a->lock);
        free(j);
        errinfo_set(e, 503, "busy", NULL, "%d installs, reinstalls and updates run already: try again when one ends",
                    APPS_MAX_JOBS);
        return -1;
    }
    a->jobs++;
    pthread_mutex_unlock(&a->lock);
    if (files)
        j->files = *files;
    j->auth = json_incref(auth);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, job_main, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&a->lock);
        a->jobs--;
        pthread_mutex_unlock(&a->lock);
        json_decref(j->auth);
        free(j); /* the files stay the caller's */
        errinfo_set(e, 500, "internal", NULL, "could not start the job");
        return -1;
    }
    if (files)
        files->f = NULL;
    return 0;
}

/* ---- the health loop ---- */

struct probe {
    char name[64], server[65], health[16], desired[16], path[520], engine_id[130], old_detail[600];
    int64_t container_id, since_ms, timeout_s, owner_id;
    int host_port, port, fails, missing;
    struct reg_target agent;
    /* what the probe says */
    char new_health[16], detail[600];
    int want_tail, changed;
    json_t *result;
};

/* The apps to probe: installed, not in a job. Lock held. */
static struct probe *read_probes(struct apps *a, size_t *n)
{
    sqlite3_stmt *st = db_prepare(a->db, "SELECT name, server, container_id, host_port, spec, desired, health,"
                                         " health_since_ms, owner_id, detail FROM apps WHERE phase = 'ready' AND container_id > 0");
    struct probe *v = NULL;
    size_t cap = 0;

    *n = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        struct app_live *l = apps_live(a, name);
        if (l->busy)
            continue;
        if (*n == cap)
            v = xrealloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
        struct probe *p = &v[(*n)++];
        memset(p, 0, sizeof(*p));
        json_t *spec = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
        snprintf(p->name, sizeof(p->name), "%s", name);
        snprintf(p->server, sizeof(p->server), "%s", (const char *)sqlite3_column_text(st, 1));
        p->container_id = sqlite3_column_int64(st, 2);
        p->host_port = sqlite3_column_int(st, 3);
        snprintf(p->path, sizeof(p->path), "%s", json_string_value(json_object_get(spec, "health_path")) ?: "");
        p->port = (int)json_integer_value(json_object_get(spec, "port"));
        p->timeout_s = json_integer_value(json_object_get(spec, "health_timeout_s"));
        if (p->timeout_s <= 0)
            p->timeout_s = a->cfg.health_timeout_s;
        snprintf(p->desired, sizeof(p->desired), "%s", (const char *)sqlite3_column_text(st, 5));
        snprintf(p->health, sizeof(p->health), "%s", (const char *)sqlite3_column_text(st, 6));
        p->since_ms = sqlite3_column_int64(st, 7);
        p->owner_id = sqlite3_column_int64(st, 8);
        snprintf(p->old_detail, sizeof(p->old_detail), "%s", (const char *)sqlite3_column_text(st, 9));
        p->fails = l->fails;
        json_decref(spec);
    }
    sqlite3_finalize(st);
    return v;
}

/* The light a probe's result gives (into p->new_health, p->detail). */
static void judge(struct probe *p, const json_t *res, int64_t now_ms)
{
    const char *state = json_string_value(json_object_get(res, "state"));
    int running = json_is_true(json_object_get(res, "running")), up = json_is_true(json_object_get(res, "up"));
    const char *err = json_string_value(json_object_get(res, "error"));
    const char *h = p->health, *why = err ? err : "no answer";

    snprintf(p->detail, sizeof(p->detail), "%s", p->old_detail);
    if (p->missing || (state && !strcmp(state, "missing"))) {
        h = "FAILED";
        snprintf(p->detail, sizeof(p->detail), "its container is gone (removed outside the app): reinstall it");
    } else if (!running) {
        h = strcmp(p->desired, "stopped") ? "FAILED" : "STOPPED";
        if (*h == 'S')
            snprintf(p->detail, sizeof(p->detail), "stopped by its owner");
        else
            snprintf(p->detail, sizeof(p->detail), "its container %s (exit code %lld)",
                     state && !strcmp(state, "restarting") ? "is restarting after an exit" : "exited",
                     (long long)json_integer_value(json_object_get(res, "exit_code")));
    } else if (up) {
        h = "RUNNING";
        p->fails = 0;
        p->detail[0] = 0;
    } else if (!strcmp(h, "RUNNING")) {
        if (++p->fails >= FAILS_TO_FAILED) {
            h = "FAILED";
            snprintf(p->detail, sizeof(p->detail), "stopped answering on port %d%s%s: %s", p->port,
                     p->path[0] ? " at " : "", p->path, why);
        }
    } else if (!strcmp(h, "STARTING")) {
        if (now_ms - p->since_ms > p->timeout_s * 1000) {
            h = "FAILED";
            snprintf(p->detail, sizeof(p->detail), "not healthy within %lld s: port %d%s%s: %s", (long long)p->timeout_s,
                     p->port, p->path[0] ? " at " : "", p->path, why);
        }
    } else if (!strcmp(h, "STOPPED")) {
        /* started outside the app's actions: its clock starts now */
        h = "STARTING";
        p->detail[0] = 0;
    } /* FAILED stays so while it runs and does not answer (a crash loop the
       * engine restarts, or one that never came up): answering clears it */
    snprintf(p->new_health, sizeof(p->new_health), "%s", h);
    p->changed = strcmp(p->new_health, p->health) != 0;
    p->want_tail = p->changed && !strcmp(p->new_health, "FAILED");
}

/* One call per host: the probes of its apps (with their log tails when
 * tail), each result into its probe. */
static void probe_host(struct probe *v, size_t n, const char *server, int tail)
{
    json_t *apps = json_array(), *ans;
    struct probe *first = NULL;
    struct errinfo e = {0};
    size_t *idx = xcalloc(n ? n : 1, sizeof(*idx)), k = 0;

    for (size_t i = 0; i < n; i++) {
        struct probe *p = &v[i];
        if (p->missing || strcmp(p->server, server) || (tail && !p->want_tail))
            continue;
        first = first ? first : p;
        idx[k++] = i;
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "name", p->name, "container", p->engine_id, "port",
                              p->host_port, "host_ip", "", "path", p->path);
        if (tail)
            json_object_set_new(o, "tail", json_integer(TAIL_LINES));
        json_array_append_new(apps, o);
    }
    if (!first)
        goto out;
    json_t *body = json_pack("{s:o}", "apps", apps);
    apps = NULL;
    ans = agentcall(&first->agent, "POST", "/api/v1/engine/apps/probe", body, 20, &e);
    json_decref(body);
    if (!ans) {
        log_debug("apps: probing the apps of %s: %s", server, e.message);
        for (size_t i = 0; i < k; i++)
            v[idx[i]].result = NULL;
        goto out;
    }
    json_t *res = json_object_get(ans, "apps");
    for (size_t i = 0; i < k && i < json_array_size(res); i++) {
        json_decref(v[idx[i]].result);
        v[idx[i]].result = json_incref(json_array_get(res, i));
    }
    json_decref(ans);
out:
    json_decref(apps);
    free(idx);
}

/* One pass: every installed app probed, its light set. Returns how many
 * are STARTING after it. */
static int probe_all(struct apps *a)
{
    size_t n;
    int64_t now;
    int starting = 0;

    pthread_mutex_lock(&a->lock);
    struct probe *v = read_probes(a, &n);
    pthread_mutex_unlock(&a->lock);
    if (!n) {
        free(v);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct errinfo e = {0};
        char cname[70];
        if (ctr_locate(a->app->ctr, v[i].container_id, 0, &v[i].agent, v[i].engine_id, sizeof(v[i].engine_id), cname,
                       sizeof(cname), &e) < 0)
            v[i].missing = e.status == 404 || e.status == 409;
    }
    /* each host once: the servers in the order first seen */
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= !strcmp(v[j].server, v[i].server);
        if (!seen && !v[i].missing)
            probe_host(v, n, v[i].server, 0);
    }
    now = now_wall_ms();
    for (size_t i = 0; i < n; i++)
        if (v[i].result || v[i].missing)
            judge(&v[i], v[i].result, now);
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= v[j].want_tail && !strcmp(v[j].server, v[i].server);
        if (!seen && v[i].want_tail && !v[i].missing)
            probe_host(v, n, v[i].server, 1);
    }
    pthread_mutex_lock(&a->lock);
    a->probes += n;
    for (size_t i = 0; i < n; i++) {
        struct probe *p = &v[i];
        if (!p->result && !p->missing)
            continue; /* the host did not answer: the light stays */
        apps_live(a, p->name)->fails = p->fails;
        if (p->changed) {
            const char *tail = p->want_tail ? json_string_value(json_object_get(p->result, "log_tail")) : NULL;
            apps_set_health(a, p->name, p->new_health, p->detail, tail ? tail : (p->want_tail ? "" : NULL), 0);
        }
    }
    pthread_mutex_unlock(&a->lock);
    for (size_t i = 0; i < n; i++) {
        if (v[i].changed)
            apps_announce(a, v[i].name);
        starting += !strcmp(v[i].result || v[i].missing ? v[i].new_health : v[i].health, "STARTING");
        json_decref(v[i].result);
    }
    free(v);
    return starting;
}

void *apps_health_main(void *arg)
{
    struct apps *a = arg;

    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        pthread_mutex_unlock(&a->lock);
        int starting = probe_all(a);
        pthread_mutex_lock(&a->lock);
        /* an app that starts is looked at often, so its RUNNING shows within
         * a quarter second of its port answering; a start wakes the loop */
        int64_t ms = starting && a->cfg.probe_ms > STARTING_PROBE_MS ? STARTING_PROBE_MS : a->cfg.probe_ms;
        int64_t until = now_mono_ns() + ms * 1000000LL;
        a->poke = 0;
        while (!a->stop && !a->poke && now_mono_ns() < until)
            now_cond_wait_until(&a->wake, &a->lock, until);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}
