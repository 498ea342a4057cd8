/* Apps: the database, rows as the API shows them, installs and lifecycle
 * actions (see apps.h). */
#include "apps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/ctrspec.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/websocket.h"
#include "../lib/xalloc.h"
#include "agentcall.h"
#include "appspec.h"
#include "apps_impl.h"
#include "containers.h"
#include "options.h"
#include "store/db.h"

static const struct db_migration steps[] = {
    {"apps and templates",
     "CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, owner_id INTEGER NOT NULL,"
     " owner TEXT NOT NULL, owner_role INTEGER NOT NULL, server TEXT NOT NULL, spec TEXT NOT NULL, ctr TEXT NOT NULL,"
     " container_id INTEGER NOT NULL DEFAULT 0, host_port INTEGER NOT NULL DEFAULT 0,"
     " commit_sha TEXT NOT NULL DEFAULT '', phase TEXT NOT NULL, desired TEXT NOT NULL DEFAULT 'running',"
     " health TEXT NOT NULL, health_since_ms INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '',"
     " log_tail TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE TABLE templates (slug TEXT PRIMARY KEY, doc TEXT NOT NULL, builtin INTEGER NOT NULL DEFAULT 0,"
     " updated_ms INTEGER NOT NULL);"
     "CREATE TABLE seeded (version INTEGER NOT NULL);"},
    {"a private repository's credentials (never shown)", "ALTER TABLE apps ADD COLUMN secret TEXT NOT NULL DEFAULT '';"},
};

#define COLS "id, name, owner_id, owner, owner_role, server, spec, ctr, container_id, host_port, commit_sha, phase," \
             " desired, health, health_since_ms, detail, log_tail, created_ms, updated_ms, secret"

static const char *col(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? t : "";
}

/* ---- live entries ---- */

struct app_live *apps_live(struct apps *a, const char *name)
{
    for (size_t i = 0; i < a->nlive; i++)
        if (!strcmp(a->live[i].name, name))
            return &a->live[i];
    a->live = xrealloc(a->live, (a->nlive + 1) * sizeof(*a->live));
    struct app_live *l = &a->live[a->nlive++];
    memset(l, 0, sizeof(*l));
    snprintf(l->name, sizeof(l->name), "%s", name);
    return l;
}

static void live_forget(struct apps *a, const char *name)
{
    for (size_t i = 0; i < a->nlive; i++)
        if (!strcmp(a->live[i].name, name)) {
            json_decref(a->live[i].progress);
            a->live[i] = a->live[--a->nlive];
            return;
        }
}

/* The app's row and what memory holds of it go. Lock held. */
static void forget(struct apps *a, const char *name)
{
    sqlite3_stmt *st = db_prepare(a->db, "DELETE FROM apps WHERE name = ?1");
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    live_forget(a, name);
}

/* ---- rows ---- */

/* The registry's targets, read once for the rows of an answer (before
 * the lock: the registry has its own). Free .t. */
struct hosts {
    struct reg_target *t;
    size_t n;
};

static void hosts_read(struct apps *a, struct hosts *h)
{
    h->n = reg_targets(a->app->reg, 0, 0, &h->t);
}

/* Where a browser reaches the app: the fleet's route to it where nginx
 * routes are on, else its host's address and port. */
static json_t *url_of(struct apps *a, const struct hosts *h, const char *owner, const char *name, const char *server,
                      int host_port, int port)
{
    char url[600], host[300];

    if (!host_port)
        return json_null();
    if (a->app->routes) {
        snprintf(url, sizeof(url), "/u/%s/" APPSPEC_CONTAINER_PREFIX "%s/%d/", owner, name, port);
        return json_string(url);
    }
    for (size_t i = 0; i < h->n; i++) {
        if (!h->t[i].is_agent || strcmp(h->t[i].server, server))
            continue;
        snprintf(host, sizeof(host), "%s", h->t[i].instance);
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = 0;
        snprintf(url, sizeof(url), "http://%s:%d/", host, host_port);
        return json_string(url);
    }
    return json_null();
}

/* One app as the API shows it; lock held. */
static json_t *row_json(struct apps *a, const struct hosts *h, sqlite3_stmt *st)
{
    json_t *spec = json_loads(col(st, 6), 0, NULL), *o;
    const char *name = col(st, 1);
    struct app_live *l = NULL;

    for (size_t i = 0; i < a->nlive; i++)
        if (!strcmp(a->live[i].name, name))
            l = &a->live[i];
    o = json_is_object(spec) ? json_copy(spec) : json_object();
    json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
    json_object_set_new(o, "owner_id", json_integer(sqlite3_column_int64(st, 2)));
    json_object_set_new(o, "owner", json_string(col(st, 3)));
    json_object_set_new(o, "server", json_string(col(st, 5)));
    json_object_set_new(o, "container_id", json_integer(sqlite3_column_int64(st, 8)));
    json_object_set_new(o, "container", json_sprintf(APPSPEC_CONTAINER_PREFIX "%s", name));
    json_object_set_new(o, "host_port", json_integer(sqlite3_column_int(st, 9)));
    json_object_set_new(o, "commit", json_string(col(st, 10)));
    json_object_set_new(o, "phase", json_string(col(st, 11)));
    json_object_set_new(o, "desired", json_string(col(st, 12)));
    json_object_set_new(o, "health", json_string(col(st, 13)));
    json_object_set_new(o, "health_since_ms", json_integer(sqlite3_column_int64(st, 14)));
    json_object_set_new(o, "detail", json_string(col(st, 15)));
    json_object_set_new(o, "log_tail", json_string(col(st, 16)));
    json_object_set_new(o, "created_ms", json_integer(sqlite3_column_int64(st, 17)));
    json_object_set_new(o, "updated_ms", json_integer(sqlite3_column_int64(st, 18)));
    json_object_set_new(o, "private", json_boolean(col(st, 19)[0] != 0)); /* its credentials are never shown */
    if (col(st, 19)[0]) { /* an ssh server's pinned host key is no secret: people compare it */
        json_t *sec = json_loads(col(st, 19), 0, NULL);
        const char *hk = json_string_value(json_object_get(sec, "host_key"));
        if (hk && *hk)
            json_object_set_new(o, "host_key", json_string(hk));
        json_decref(sec);
    }
    json_object_set_new(o, "busy", json_boolean(l && l->busy));
    json_object_set_new(o, "progress", l && l->progress ? json_deep_copy(l->progress) : json_null());
    json_object_set_new(o, "url", url_of(a, h, col(st, 3), name, col(st, 5), sqlite3_column_int(st, 9),
                                         (int)json_integer_value(json_object_get(spec, "port"))));
    json_decref(spec);
    return o;
}

int apps_row_read(struct apps *a, const char *name, int64_t owner_id, struct app_row *r, struct errinfo *e)
{
    sqlite3_stmt *st = db_prepare(a->db, "SELECT " COLS " FROM apps WHERE name = ?1 AND (?2 = 0 OR owner_id = ?2)");
    int rc = -1;

    memset(r, 0, sizeof(*r));
    if (!st) {
        errinfo_set(e, 500, "internal", NULL, "the apps database failed");
        return -1;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, owner_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        errinfo_set(e, 404, "not_found", "app", "no app %.64s", name);
        goto out;
    }
    r->id = sqlite3_column_int64(st, 0);
    snprintf(r->name, sizeof(r->name), "%s", col(st, 1));
    r->owner_id = sqlite3_column_int64(st, 2);
    snprintf(r->owner, sizeof(r->owner), "%s", col(st, 3));
    r->owner_role = sqlite3_column_int(st, 4);
    snprintf(r->server, sizeof(r->server), "%s", col(st, 5));
    r->spec = json_loads(col(st, 6), 0, NULL);
    r->ctr = json_loads(col(st, 7), 0, NULL);
    r->container_id = sqlite3_column_int64(st, 8);
    r->host_port = sqlite3_column_int(st, 9);
    snprintf(r->commit, sizeof(r->commit), "%s", col(st, 10));
    snprintf(r->phase, sizeof(r->phase), "%s", col(st, 11));
    snprintf(r->desired, sizeof(r->desired), "%s", col(st, 12));
    snprintf(r->health, sizeof(r->health), "%s", col(st, 13));
    r->health_since_ms = sqlite3_column_int64(st, 14);
    snprintf(r->detail, sizeof(r->detail), "%s", col(st, 15));
    r->secret = json_loads(col(st, 19), 0, NULL);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

void apps_row_free(struct app_row *r)
{
    json_decref(r->spec);
    json_decref(r->ctr);
    json_decref(r->secret);
    r->spec = r->ctr = r->secret = NULL;
}

void apps_set_health(struct apps *a, const char *name, const char *health, const char *detail, const char *log_tail,
                     int anew)
{
    sqlite3_stmt *st = db_prepare(a->db,
                                  "UPDATE apps SET health_since_ms = CASE WHEN health = ?2 AND NOT ?6 THEN health_since_ms"
                                  " ELSE ?5 END,"
                                  " health = ?2, detail = ?3, log_tail = COALESCE(?4, log_tail), updated_ms = ?5"
                                  " WHERE name = ?1");
    if (!st)
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, health, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, detail ? detail : "", -1, SQLITE_TRANSIENT);
    if (log_tail)
        sqlite3_bind_text(st, 4, log_tail, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now_wall_ms());
    sqlite3_bind_int(st, 6, anew);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

/* The app as the API shows it; lock held. NULL with e. */
static json_t *get_locked(struct apps *a, const struct hosts *h, const char *name, int64_t owner_id,
                          struct errinfo *e)
{
    sqlite3_stmt *st = db_prepare(a->db, "SELECT " COLS " FROM apps WHERE name = ?1 AND (?2 = 0 OR owner_id = ?2)");
    json_t *out = NULL;

    if (!st) {
        errinfo_set(e, 500, "internal", NULL, "the apps database failed");
        return NULL;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, owner_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        out = row_json(a, h, st);
    else
        errinfo_set(e, 404, "not_found", "app", "no app %.64s", name);
    sqlite3_finalize(st);
    return out;
}

void apps_announce(struct apps *a, const char *name)
{
    struct errinfo e;
    struct hosts h;
    hosts_read(a, &h);
    pthread_mutex_lock(&a->lock);
    json_t *o = get_locked(a, &h, name, 0, &e);
    pthread_mutex_unlock(&a->lock);
    free(h.t);
    if (!o || !a->app->hub) {
        json_decref(o);
        return;
    }
    int64_t owner = json_integer_value(json_object_get(o, "owner_id"));
    json_t *msg = json_pack("{s:s, s:[o]}", "type", "apps", "apps", o);
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text)
        ws_hub_broadcast_owned(a->app->hub, text, strlen(text), owner);
    free(text);
    json_decref(msg);
}

/* An app that is gone: its owner's browsers are told (by name). */
static void announce_gone(struct apps *a, const char *name, int64_t owner)
{
    json_t *msg = json_pack("{s:s, s:[s]}", "type", "apps", "removed", name);
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text && a->app->hub)
        ws_hub_broadcast_owned(a->app->hub, text, strlen(text), owner);
    free(text);
    json_decref(msg);
}

json_t *apps_list(struct apps *a, int64_t owner_id)
{
    json_t *list = json_array();
    struct hosts h;
    hosts_read(a, &h);
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = db_prepare(a->db, "SELECT " COLS " FROM apps WHERE ?1 = 0 OR owner_id = ?1 ORDER BY name");
    if (st) {
        sqlite3_bind_int64(st, 1, owner_id);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(list, row_json(a, &h, st));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&a->lock);
    free(h.t);
    return json_pack("{s:o}", "apps", list);
}

json_t *apps_get(struct apps *a, const char *name, int64_t owner_id, struct errinfo *e)
{
    struct hosts h;
    hosts_read(a, &h);
    pthread_mutex_lock(&a->lock);
    json_t *o = get_locked(a, &h, name, owner_id, e);
    pthread_mutex_unlock(&a->lock);
    free(h.t);
    return o;
}

/* ---- open and close ---- */

void apps_set_limits(struct apps *a, const struct server_options *o)
{
    pthread_mutex_lock(&a->lock);
    snprintf(a->cfg.image, sizeof(a->cfg.image), "%s", o->apps_default_image ? o->apps_default_image : "");
    a->cfg.uid = (long)o->apps_uid;
    a->cfg.allow_root = o->apps_allow_root != 0;
    a->cfg.health_timeout_s = o->apps_health_timeout_s;
    a->cfg.probe_ms = o->apps_probe_ms;
    pthread_mutex_unlock(&a->lock);
}

struct apps *apps_open(const char *path, struct server_app *app, char *err, size_t errlen)
{
    struct apps *a = xcalloc(1, sizeof(*a));
    a->app = app;
    pthread_mutex_init(&a->lock, NULL);
    now_cond_init(&a->wake);
    pthread_cond_init(&a->jobs_done, NULL);
    if (!(a->db = db_open(path, steps, sizeof(steps) / sizeof(steps[0]), err, errlen))) {
        free(a);
        return NULL;
    }
    apps_set_limits(a, app->opts);
    apps_seed_templates(a);
    /* a job's thread ended with the server that ran it */
    char *msg = NULL;
    sqlite3_exec(a->db,
                 "UPDATE apps SET phase = 'failed', health = 'FAILED', detail = 'the server stopped during its '"
                 " || phase || ': reinstall it' WHERE phase IN ('installing', 'reinstalling', 'updating', 'importing')",
                 NULL, NULL, &msg);
    sqlite3_free(msg);
    return a;
}

int apps_start(struct apps *a)
{
    pthread_mutex_lock(&a->lock);
    if (pthread_create(&a->thread, NULL, apps_health_main, a) != 0) {
        pthread_mutex_unlock(&a->lock);
        log_error("apps: cannot start the health loop");
        return -1;
    }
    a->running = 1;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

void apps_close(struct apps *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_broadcast(&a->wake);
    /* jobs look at stop between their calls to the agent */
    int64_t until = now_mono_ns() + 30000000000LL;
    while (a->jobs && now_mono_ns() < until)
        now_cond_wait_until(&a->jobs_done, &a->lock, now_mono_ns() + 100000000LL);
    int jobs = a->jobs;
    int running = a->running;
    pthread_mutex_unlock(&a->lock);
    if (running)
        pthread_join(a->thread, NULL);
    if (jobs) {
        log_warn("apps: %d job(s) still running at exit", jobs);
        return; /* their threads still use a */
    }
    for (size_t i = 0; i < a->nlive; i++)
        json_decref(a->live[i].progress);
    free(a->live);
    sqlite3_close(a->db);
    pthread_cond_destroy(&a->wake);
    pthread_cond_destroy(&a->jobs_done);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- install ---- */

/* Whether the repository and ref are there, asked of the host that will
 * clone them. 0, or -1 with e (400 naming repository or ref, 502). */
static int check_remote(const char *server, const json_t *spec, struct server_app *app, struct errinfo *e)
{
    struct reg_target t;
    const char *repo = json_string_value(json_object_get(spec, "repository"));
    json_t *ans;

    if (!*repo)
        return 0;
    if (agentcall_find(app->reg, server, 0, "host", &t, e) < 0)
        return -1;
    json_t *body = json_pack("{s:s}", "repository", repo);
    const char *ref = json_string_value(json_object_get(spec, "ref"));
    if (*ref)
        json_object_set_new(body, "repository", json_sprintf("%s#%s", repo, ref));
    json_t *auth = json_object_get(spec, "repository_auth");
    json_object_update(body, auth); /* username, password; ssh_key, passphrase, host_key */
    ans = agentcall(&t, "POST", "/api/v1/engine/apps/check", body, 60, e);
    json_decref(body);
    if (!ans) {
        /* the remote's refusal is the user's input being wrong */
        if (((e->status == 502 || e->status == 504) && !strcmp(e->field, "repository")) ||
            (e->status == 404 && !strcmp(e->field, "ref")))
            e->status = 400;
        return -1;
    }
    /* an ssh server's host key, pinned on first contact: every later
     * clone and fetch must meet the same one */
    const char *seen = json_string_value(json_object_get(ans, "host_key"));
    if (json_is_object(auth) && seen && *seen && !*json_string_value(json_object_get(auth, "host_key")))
        json_object_set_new(auth, "host_key", json_string(seen));
    json_decref(ans);
    return 0;
}

/* The app's row; a private repository's credentials go to their own
 * column, never into the spec the API shows. */
static int insert_row(struct apps *a, const struct auth_identity *who, const char *server, const json_t *spec,
                      const json_t *ctr, struct errinfo *e)
{
    sqlite3_stmt *st = db_prepare(a->db,
                                  "INSERT INTO apps (name, owner_id, owner, owner_role, server, spec, ctr, phase, health,"
                                  " health_since_ms, created_ms, updated_ms, secret) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                                  " 'installing', 'STARTING', ?8, ?8, ?8, ?9)");
    json_t *shown = json_copy((json_t *)spec), *auth = json_object_get(spec, "repository_auth");
    json_object_del(shown, "repository_auth");
    char *stext = json_dumps(shown, JSON_COMPACT), *ctext = json_dumps(ctr, JSON_COMPACT);
    char *secret = auth ? json_dumps(auth, JSON_COMPACT) : NULL;
    json_decref(shown);
    int rc = -1;

    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, json_string_value(json_object_get(spec, "name")), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, who->user_id);
    sqlite3_bind_text(st, 3, who->username, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, who->role);
    sqlite3_bind_text(st, 5, server, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, stext, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, ctext, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 8, now_wall_ms());
    sqlite3_bind_text(st, 9, secret ? secret : "", -1, SQLITE_TRANSIENT);
    int s = sqlite3_step(st);
    if (s == SQLITE_CONSTRAINT)
        errinfo_set(e, 409, "exists", "name", "there is an app named %.64s already", json_string_value(json_object_get(spec, "name")));
    else if (s != SQLITE_DONE)
        errinfo_set(e, 500, "internal", NULL, "the apps database failed: %s", sqlite3_errmsg(a->db));
    else
        rc = 0;
out:
    sqlite3_finalize(st);
    free(stext);
    free(ctext);
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
    return rc;
}

static int name_taken(struct apps *a, const char *name)
{
    sqlite3_stmt *st = db_prepare(a->db, "SELECT 1 FROM apps WHERE name = ?1");
    int taken = 0;
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        taken = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    return taken;
}

/* The template named by body's "template", or NULL (404 in e when it
 * names one that is not there). */
static json_t *template_of(struct apps *a, const json_t *body, struct errinfo *e, int *bad)
{
    json_t *t = json_object_get(body, "template");
    *bad = 0;
    if (!t || json_is_null(t) || (json_is_string(t) && !json_string_length(t)))
        return NULL;
    if (!json_is_string(t)) {
        errinfo_set(e, 400, "invalid_field", "template", "template is a template's slug");
        *bad = 1;
        return NULL;
    }
    json_t *tpl = apps_template_get(a, json_string_value(t), e);
    if (!tpl) {
        snprintf(e->field, sizeof(e->field), "template");
        *bad = 1;
    }
    return tpl;
}

/* An install or an import: checked, placed, the repository asked of the
 * host (an install's), recorded, its job started (files: an import's). */
static json_t *begin(struct apps *a, const struct auth_identity *who, const json_t *body, struct app_files *files,
                     struct errinfo *e)
{
    json_t *spec = NULL, *ctr = NULL, *tpl, *out = NULL;
    char host[65], image[256];
    int bad;

    tpl = template_of(a, body, e, &bad);
    if (bad)
        return NULL;
    pthread_mutex_lock(&a->lock);
    snprintf(image, sizeof(image), "%s", a->cfg.image);
    struct appspec_defaults d = {.image = image, .health_timeout_s = a->cfg.health_timeout_s};
    int allow_root = a->cfg.allow_root;
    pthread_mutex_unlock(&a->lock);
    if (appspec_parse(body, tpl, &d, &spec, &ctr, e) < 0)
        goto out;
    if (json_is_true(json_object_get(spec, "run_as_root")) && who->role < ROLE_ADMIN && !allow_root) {
        errinfo_set(e, 403, "forbidden", "run_as_root", "only an admin lets an app run as root (or apps_allow_root)");
        goto out;
    }
    const char *name = json_string_value(json_object_get(spec, "name"));
    pthread_mutex_lock(&a->lock);
    int taken = name_taken(a, name);
    pthread_mutex_unlock(&a->lock);
    if (taken) {
        errinfo_set(e, 409, "exists", "name", "there is an app named %.64s already", name);
        goto out;
    }
    /* the host first: the clone is made where the container will run */
    if (ctr_pick_host(a->app->ctr, who, ctr, host, sizeof(host), e) < 0 ||
        (!files && check_remote(host, spec, a->app, e) < 0))
        goto out;
    json_object_set_new(ctr, "host", json_string(host));
    pthread_mutex_lock(&a->lock);
    int rc = insert_row(a, who, host, spec, ctr, e);
    struct app_live *l = rc == 0 ? apps_live(a, name) : NULL;
    if (l) {
        l->busy = 1;
        json_decref(l->progress);
        l->progress = json_pack("{s:s}", "step", "queued");
    }
    pthread_mutex_unlock(&a->lock);
    if (rc < 0)
        goto out;
    if (apps_job_start(a, name, files ? JOB_IMPORT : JOB_INSTALL, NULL, NULL, files, e) < 0) {
        pthread_mutex_lock(&a->lock);
        forget(a, name);
        pthread_mutex_unlock(&a->lock);
        goto out;
    }
    log_info("apps: %s %s on %s for %s", name, files ? "importing" : "installing", host, who->username);
    out = apps_get(a, name, 0, e);
    apps_announce(a, name);
out:
    json_decref(tpl);
    json_decref(spec);
    json_decref(ctr);
    return out;
}

json_t *apps_install(struct apps *a, const struct auth_identity *who, const json_t *body, struct errinfo *e)
{
    return begin(a, who, body, NULL, e);
}

/* The record an export begins with (its first entry), or NULL with e. */
static json_t *read_record(FILE *f, long long size, struct errinfo *e)
{
    char h[512];
    json_t *rec = NULL;

    rewind(f);
    if (size < 1024 || fread(h, 1, sizeof(h), f) != sizeof(h) || strncmp(h, "gpufleet-app.json", 100)) {
        errinfo_set(e, 400, "invalid_field", "body", "the body is an app's export (a tar whose first entry is gpufleet-app.json)");
        return NULL;
    }
    char size_field[13];
    memcpy(size_field, h + 124, 12); /* the field alone, not what follows it */
    size_field[12] = 0;
    long long n = strtoll(size_field, NULL, 8);
    if (n <= 0 || n > (1 << 20) || 512 + n > size) {
        errinfo_set(e, 400, "invalid_field", "body", "the export's gpufleet-app.json is missing or too big");
        return NULL;
    }
    char *text = xmalloc((size_t)n + 1);
    if (fread(text, 1, (size_t)n, f) == (size_t)n) {
        text[n] = 0;
        rec = json_loadb(text, (size_t)n, 0, NULL);
    }
    free(text);
    if (!json_is_object(rec) || json_integer_value(json_object_get(rec, "gpufleet_app")) != 1) {
        json_decref(rec);
        errinfo_set(e, 400, "invalid_field", "body", "the export's gpufleet-app.json is not an app's record");
        return NULL;
    }
    return rec;
}

json_t *apps_import(struct apps *a, const struct auth_identity *who, FILE **tar, long long size, const char *name,
                    const char *host, struct errinfo *e)
{
    static const char *const fields[] = {"name", "repository", "ref", "start_command", "port", "health_path",
                                         "image", "gpus", "cpus", "memory", "env", "run_as_root", "health_timeout_s"};
    struct app_files files = {.f = *tar, .size = size};
    json_t *rec = read_record(*tar, size, e), *body, *out;

    if (!rec)
        return NULL;
    /* the record's fields, as a request; its template may not be here */
    body = json_object();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (json_object_get(rec, fields[i]) && !json_is_null(json_object_get(rec, fields[i])))
            json_object_set(body, fields[i], json_object_get(rec, fields[i]));
    json_t *env = json_object_get(body, "env");
    if (json_is_object(env))
        json_object_del(env, "HOME"); /* set again from run_as_root */
    if (name && *name)
        json_object_set_new(body, "name", json_string(name));
    if (host && *host)
        json_object_set_new(body, "host", json_string(host));
    else
        json_object_del(body, "host");
    snprintf(files.commit, sizeof(files.commit), "%s", json_string_value(json_object_get(rec, "commit")) ?: "");
    out = begin(a, who, body, &files, e);
    if (!files.f)
        *tar = NULL; /* the job's now */
    json_decref(body);
    json_decref(rec);
    return out;
}

/* ---- actions ---- */

static void set_desired(struct apps *a, const char *name, const char *desired)
{
    sqlite3_stmt *st = db_prepare(a->db, "UPDATE apps SET desired = ?2, updated_ms = ?3 WHERE name = ?1");
    if (!st)
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, desired, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now_wall_ms());
    sqlite3_step(st);
    sqlite3_finalize(st);
}

/* Marks the app busy for a job, or says why not (409). Lock held. */
static int claim(struct apps *a, const struct app_row *r, struct errinfo *e)
{
    struct app_live *l = apps_live(a, r->name);
    if (l->busy) {
        errinfo_set(e, 409, "busy", "app", "%s is busy (%s): try again when that ends", r->name, r->phase);
        return -1;
    }
    l->busy = 1;
    l->fails = 0;
    json_decref(l->progress);
    l->progress = json_pack("{s:s}", "step", "queued");
    return 0;
}

static int lifecycle(struct apps *a, struct app_row *r, const char *action, struct errinfo *e)
{
    if (strcmp(r->phase, "ready") || !r->container_id) {
        errinfo_set(e, 409, "not_installed", "app", "%s is %s: it has no container to %s (reinstall it)", r->name,
                    r->phase, action);
        return -1;
    }
    if (ctr_act(a->app->ctr, r->container_id, 0, action, e) < 0)
        return -1;
    pthread_mutex_lock(&a->lock);
    int stop = !strcmp(action, "stop");
    set_desired(a, r->name, stop ? "stopped" : "running");
    /* the light says what was asked at once (a start's clock starts now);
     * the probes confirm it */
    apps_set_health(a, r->name, stop ? "STOPPED" : "STARTING", stop ? "stopped by its owner" : "", NULL, 1);
    apps_live(a, r->name)->fails = 0;
    a->poke = 1;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    apps_announce(a, r->name);
    return 0;
}

int apps_act(struct apps *a, const char *name, int64_t owner_id, const char *action, const json_t *body,
             struct errinfo *e)
{
    struct app_row r;
    int rc = -1, kind;
    const char *ref = NULL;
    json_t *auth = NULL;

    pthread_mutex_lock(&a->lock);
    if (apps_row_read(a, name, owner_id, &r, e) < 0) {
        pthread_mutex_unlock(&a->lock);
        return -1;
    }
    if (!strcmp(action, "start") || !strcmp(action, "stop") || !strcmp(action, "restart")) {
        int busy = apps_live(a, name)->busy;
        pthread_mutex_unlock(&a->lock);
        if (busy)
            errinfo_set(e, 409, "busy", "app", "%s is busy (%s): try again when that ends", name, r.phase);
        else
            rc = lifecycle(a, &r, action, e);
        goto out;
    }
    if (!strcmp(action, "reinstall"))
        kind = JOB_REINSTALL;
    else if (!strcmp(action, "update"))
        kind = JOB_UPDATE;
    else {
        pthread_mutex_unlock(&a->lock);
        errinfo_set(e, 404, "not_found", "action", "actions are start, stop, restart, reinstall and update");
        goto out;
    }
    json_t *jref = json_object_get(body, "ref");
    if (jref && !json_is_null(jref)) {
        ref = json_string_value(jref);
        if (!ref || (*ref && !ctrspec_valid_git_ref(ref))) {
            pthread_mutex_unlock(&a->lock);
            errinfo_set(e, 400, "invalid_field", "ref", "ref is a branch, a tag or a commit");
            goto out;
        }
    }
    if (kind == JOB_UPDATE && strcmp(r.phase, "ready")) {
        pthread_mutex_unlock(&a->lock);
        errinfo_set(e, 409, "not_installed", "app", "%s is %s: an update needs an installed app (reinstall it)", name, r.phase);
        goto out;
    }
    if (!*json_string_value(json_object_get(r.spec, "repository")) && (kind == JOB_UPDATE || (ref && *ref))) {
        pthread_mutex_unlock(&a->lock);
        errinfo_set(e, 409, "no_repository", "ref", "%s has no repository to fetch", name);
        goto out;
    }
    /* new credentials (a rotated token or deploy key), used by this job
     * and kept if it succeeds; the pinned host key stays unless given */
    json_t *cred = json_object_get(body, "repository_auth");
    if (cred && appspec_parse_auth(cred, json_string_value(json_object_get(r.spec, "repository")), &auth, e) < 0) {
        pthread_mutex_unlock(&a->lock);
        goto out;
    }
    if (cred && !auth)
        auth = json_null();
    const char *old_pin = json_string_value(json_object_get(r.secret, "host_key"));
    if (json_is_object(auth) && old_pin && json_object_get(auth, "ssh_key") &&
        !*json_string_value(json_object_get(auth, "host_key")))
        json_object_set_new(auth, "host_key", json_string(old_pin));
    if (claim(a, &r, e) < 0) {
        pthread_mutex_unlock(&a->lock);
        goto out;
    }
    pthread_mutex_unlock(&a->lock);
    if (apps_job_start(a, name, kind, ref, auth, NULL, e) < 0) {
        pthread_mutex_lock(&a->lock);
        apps_live(a, name)->busy = 0;
        pthread_mutex_unlock(&a->lock);
        goto out;
    }
    apps_announce(a, name);
    rc = 0;
out:
    json_decref(auth);
    apps_row_free(&r);
    return rc;
}

int apps_remove(struct apps *a, const char *name, int64_t owner_id, int keep_folder, struct errinfo *e)
{
    struct app_row r;
    struct reg_target t;
    int rc = -1;

    pthread_mutex_lock(&a->lock);
    if (apps_row_read(a, name, owner_id, &r, e) < 0) {
        pthread_mutex_unlock(&a->lock);
        return -1;
    }
    if (claim(a, &r, e) < 0) {
        pthread_mutex_unlock(&a->lock);
        goto out;
    }
    pthread_mutex_unlock(&a->lock);
    if (r.container_id && ctr_remove(a->app->ctr, r.container_id, 0, e) < 0 && e->status != 404)
        goto release;
    if (!keep_folder) {
        char path[200];
        json_t *ok;
        snprintf(path, sizeof(path), "/api/v1/engine/apps/%s", name);
        if (agentcall_find(a->app->reg, r.server, 0, "server", &t, e) < 0)
            goto release;
        if (!(ok = agentcall(&t, "DELETE", path, NULL, 120, e)) && e->status != 404)
            goto release;
        json_decref(ok);
    }
    pthread_mutex_lock(&a->lock);
    forget(a, name);
    pthread_mutex_unlock(&a->lock);
    log_info("apps: %s deinstalled from %s (folder %s)", name, r.server, keep_folder ? "kept" : "removed");
    announce_gone(a, name, r.owner_id);
    memset(e, 0, sizeof(*e));
    rc = 0;
    goto out;
release:
    pthread_mutex_lock(&a->lock);
    apps_live(a, name)->busy = 0;
    json_decref(apps_live(a, name)->progress);
    apps_live(a, name)->progress = NULL;
    pthread_mutex_unlock(&a->lock);
out:
    apps_row_free(&r);
    return rc;
}

char *apps_names_on(struct apps *a, const char *server)
{
    struct buf b;
    buf_init(&b, 0);
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = db_prepare(a->db, "SELECT name FROM apps WHERE server = ?1 ORDER BY name");
    if (st)
        sqlite3_bind_text(st, 1, server, -1, SQLITE_TRANSIENT);
    for (int i = 0; st && sqlite3_step(st) == SQLITE_ROW; i++)
        buf_printf(&b, "%s%s", i ? "," : "", col(st, 0));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    char *out = buf_detach(&b, NULL);
    return out ? out : strdup("");
}

void apps_metrics(struct apps *a, struct buf *out)
{
    static const char *const lights[] = {"STARTING", "RUNNING", "STOPPED", "FAILED"};
    int64_t n[4] = {0};
    int busy = 0;

    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = db_prepare(a->db, "SELECT health, count(*) FROM apps GROUP BY health");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        for (int i = 0; i < 4; i++)
            if (!strcmp(col(st, 0), lights[i]))
                n[i] = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    for (size_t i = 0; i < a->nlive; i++)
        busy += a->live[i].busy;
    uint64_t probes = a->probes, done = a->installs_done, failed = a->installs_failed;
    pthread_mutex_unlock(&a->lock);
    buf_puts(out, "# HELP gpufleet_apps Apps by the state of their health light.\n# TYPE gpufleet_apps gauge\n");
    for (int i = 0; i < 4; i++)
        buf_printf(out, "gpufleet_apps{health=\"%s\"} %lld\n", lights[i], (long long)n[i]);
    buf_printf(out, "# HELP gpufleet_apps_jobs Installs, reinstalls and updates running.\n# TYPE gpufleet_apps_jobs gauge\n"
                    "gpufleet_apps_jobs %d\n", busy);
    buf_printf(out, "# HELP gpufleet_apps_probes_total Health probes of apps made.\n# TYPE gpufleet_apps_probes_total counter\n"
                    "gpufleet_apps_probes_total %llu\n", (unsigned long long)probes);
    buf_printf(out, "# HELP gpufleet_apps_installs_total Installs, reinstalls and updates ended, by result.\n"
                    "# TYPE gpufleet_apps_installs_total counter\n"
                    "gpufleet_apps_installs_total{result=\"ok\"} %llu\ngpufleet_apps_installs_total{result=\"failed\"} %llu\n",
               (unsigned long long)done, (unsigned long long)failed);
}
