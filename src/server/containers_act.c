/* Creating containers and acting on them: the decision under the lock,
 * then the host's agent asked with it released. */
#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "agentcall.h"
#include "containers_impl.h"
#include "store/db.h"

/* ---- create ---- */

static void default_name(const struct auth_identity *who, struct ctrspec *s)
{
    unsigned char r[3];
    char user[40];
    size_t k = 0;

    for (const char *p = who->username; *p && k < sizeof(user) - 1; p++)
        user[k++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '-';
    user[k] = '\0';
    randombytes_buf(r, sizeof(r));
    snprintf(s->name, sizeof(s->name), "%s-%02x%02x%02x", k ? user : "c", r[0], r[1], r[2]);
}

/* Creates and starts the container on its host; lock not held. The engine
 * id, or NULL with e. */
static char *engine_create(const struct reg_target *agent, const struct ctrspec *s,
                           struct errinfo *e)
{
    json_t *spec = ctrspec_agent_json(s), *ans, *ok;
    char path[300], *id = NULL;

    ans = agentcall(agent, "POST", "/api/v1/engine/containers", spec, 120, e);
    json_decref(spec);
    if (!ans)
        return NULL;
    id = xstrdup(json_string_value(json_object_get(ans, "id")) ?: "");
    json_decref(ans);
    /* it goes into paths of later calls: an agent answering nonsense is
     * refused here */
    if (strlen(id) < 12 || strlen(id) > 128 || strspn(id, "0123456789abcdef") != strlen(id)) {
        errinfo_set(e, 502, "agent_answer", NULL, "the agent of %s answered a create with no engine id",
                    agent->server);
        free(id);
        return NULL;
    }
    snprintf(path, sizeof(path), "/api/v1/engine/containers/%s/start", id);
    if (!(ok = agentcall(agent, "POST", path, NULL, 60, e))) {
        /* a container that cannot start is not left behind holding nothing */
        struct errinfo ignore;
        snprintf(path, sizeof(path), "/api/v1/engine/containers/%s", id);
        json_decref(agentcall(agent, "DELETE", path, NULL, 60, &ignore));
        free(id);
        return NULL;
    }
    json_decref(ok);
    return id;
}

/* The decision: quotas, host, GPUs, the row. Lock taken here. The id, or
 * -1 with e; *host is the index of the chosen candidate. */
static int64_t decide(struct ctr *c, const struct auth_identity *who, struct cand *v, size_t n,
                      struct ctrspec *s, const char *request, int *host, struct errinfo *e)
{
    int64_t t0, cpu0, id = -1;

    pthread_mutex_lock(&c->lock);
    t0 = now_mono_ns(); /* the decision, not the wait for the lock */
    cpu0 = now_thread_cpu_ns();
    int ngpus = s->ngpus ? (int)s->ngpus : s->gpu_count;
    if (ctr_check_quota(c, who, ngpus, s->nano_cpus, s->memory_bytes, e) < 0)
        goto out;
    if ((*host = ctr_place(c, v, n, s, e)) < 0)
        goto out;
    snprintf(s->host, sizeof(s->host), "%s", v[*host].agent.server);
    id = ctr_reserve(c, who, &v[*host], s, request, e);
out:
    summary_add(&c->decisions, (double)(now_mono_ns() - t0) / 1e9);
    summary_add(&c->decisions_cpu, (double)(now_thread_cpu_ns() - cpu0) / 1e9);
    pthread_mutex_unlock(&c->lock);
    return id;
}

/* s (parsed from a user's body) with the defaults of the settings. */
static void fill_defaults(struct ctr *c, const struct auth_identity *who, struct ctrspec *s)
{
    if (!s->name[0])
        default_name(who, s);
    pthread_mutex_lock(&c->lock); /* the defaults are live settings */
    if (!s->nano_cpus)
        s->nano_cpus = c->cfg.default_nano_cpus;
    if (!s->memory_bytes)
        s->memory_bytes = c->cfg.default_memory_bytes;
    pthread_mutex_unlock(&c->lock);
    snprintf(s->owner, sizeof(s->owner), "%s", who->username);
    snprintf(s->host_ip, sizeof(s->host_ip), "%s", c->cfg.host_ip);
}

static json_t *create(struct ctr *c, const struct auth_identity *who, const json_t *body, const char *app,
                      const char *user, struct errinfo *e)
{
    struct ctrspec s;
    struct cand *v = NULL;
    struct portset *ports = NULL;
    size_t n = 0;
    int host = -1;
    int64_t id = -1;
    char *engine_id = NULL, *request = NULL;
    json_t *out = NULL;

    if (ctrspec_parse(body, CTRSPEC_USER, &s, e) < 0)
        goto out;
    fill_defaults(c, who, &s);
    snprintf(s.app, sizeof(s.app), "%s", app ? app : "");
    snprintf(s.user, sizeof(s.user), "%s", user ? user : "");
    request = json_dumps(body, JSON_COMPACT);
    v = ctr_cands_read(c, &n);
    if ((id = decide(c, who, v, n, &s, request, &host, e)) < 0)
        goto out;
    s.gf_id = id;
    ports = xcalloc(1, sizeof(*ports));
    if (s.nports && ctr_host_ports(&v[host].agent, ports, e) < 0)
        goto undo;
    pthread_mutex_lock(&c->lock);
    int rc = ctr_assign_ports(c, v[host].agent.server_id, id, &s, ports, e);
    if (!rc)
        ctr_set_spec(c, id, &s);
    pthread_mutex_unlock(&c->lock);
    if (rc < 0 || !(engine_id = engine_create(&v[host].agent, &s, e)))
        goto undo;
    pthread_mutex_lock(&c->lock);
    ctr_set_state(c, id, engine_id, "running", NULL);
    out = ctr_get_locked(c, id, 0, e);
    pthread_mutex_unlock(&c->lock);
    ctr_announce(c);
    goto out;
undo:
    pthread_mutex_lock(&c->lock);
    ctr_delete_row(c, id);
    pthread_mutex_unlock(&c->lock);
out:
    free(engine_id);
    free(request);
    free(ports);
    ctr_cands_free(v, n);
    ctrspec_free(&s);
    return out;
}

json_t *ctr_create(struct ctr *c, const struct auth_identity *who, const json_t *body,
                   struct errinfo *e)
{
    return create(c, who, body, NULL, NULL, e);
}

json_t *ctr_create_app(struct ctr *c, const struct auth_identity *who, const json_t *body, const char *app,
                       const char *user, struct errinfo *e)
{
    return create(c, who, body, app, user, e);
}

int ctr_pick_host(struct ctr *c, const struct auth_identity *who, const json_t *body, char *host, size_t hostlen,
                  struct errinfo *e)
{
    struct ctrspec s;
    struct cand *v = NULL;
    size_t n = 0;
    int rc = -1;

    if (ctrspec_parse(body, CTRSPEC_USER, &s, e) < 0)
        goto out;
    fill_defaults(c, who, &s);
    v = ctr_cands_read(c, &n);
    pthread_mutex_lock(&c->lock);
    int ngpus = s.ngpus ? (int)s.ngpus : s.gpu_count;
    int i = ctr_check_quota(c, who, ngpus, s.nano_cpus, s.memory_bytes, e) < 0 ? -1 : ctr_place(c, v, n, &s, e);
    pthread_mutex_unlock(&c->lock);
    if (i < 0)
        goto out;
    snprintf(host, hostlen, "%s", v[i].agent.server);
    rc = 0;
out:
    ctr_cands_free(v, n);
    ctrspec_free(&s);
    return rc;
}

/* ---- actions ---- */

/* An action's call to the host: POST .../{engine_id}/{action}. */
static int engine_act(const struct reg_target *agent, const char *engine_id, const char *action,
                      struct errinfo *e)
{
    char path[300];
    json_t *ok;

    snprintf(path, sizeof(path), "/api/v1/engine/containers/%s/%s", engine_id, action);
    if (!(ok = agentcall(agent, "POST", path, NULL, 90, e)))
        return -1;
    json_decref(ok);
    return 0;
}

static int engine_delete(const struct reg_target *agent, const char *engine_id, struct errinfo *e)
{
    char path[300];
    json_t *ok;

    if (!engine_id[0])
        return 0;
    snprintf(path, sizeof(path), "/api/v1/engine/containers/%s", engine_id);
    if ((ok = agentcall(agent, "DELETE", path, NULL, 90, e))) {
        json_decref(ok);
        return 0;
    }
    return e->status == 404 ? 0 : -1; /* already gone is what was asked */
}

/* recreate: the same request made again on the same host (the image
 * re-read, the container's own files gone, its workspace kept). */
static int recreate(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    size_t n = 0;
    struct cand *v = ctr_cands_read(c, &n);
    struct row r = {0};
    struct ctrspec s;
    struct reg_target agent;
    char *engine_id = NULL;
    int rc = -1;

    memset(&s, 0, sizeof(s));
    pthread_mutex_lock(&c->lock);
    if (ctr_row_read(c, id, owner_id, &r, e) < 0 || ctrspec_parse(r.spec, CTRSPEC_AGENT, &s, e) < 0) {
        pthread_mutex_unlock(&c->lock);
        goto out;
    }
    if (!r.holding && ctr_retake(c, &r, e) < 0 && ctr_renew(c, &r, &s, v, n, e) < 0) {
        pthread_mutex_unlock(&c->lock);
        goto out;
    }
    ctr_set_state(c, id, NULL, "creating", "recreating");
    pthread_mutex_unlock(&c->lock);
    if (agentcall_find(c->app->reg, NULL, r.server_id, "host", &agent, e) < 0 ||
        engine_delete(&agent, r.engine_id, e) < 0)
        goto failed;
    if (!(engine_id = engine_create(&agent, &s, e)))
        goto failed;
    pthread_mutex_lock(&c->lock);
    ctr_set_state(c, id, engine_id, "running", NULL);
    pthread_mutex_unlock(&c->lock);
    rc = 0;
    goto out;
failed:
    pthread_mutex_lock(&c->lock);
    ctr_set_state(c, id, "", "failed", e->message);
    pthread_mutex_unlock(&c->lock);
out:
    ctr_announce(c);
    free(engine_id);
    ctrspec_free(&s);
    json_decref(r.spec);
    ctr_cands_free(v, n);
    return rc;
}

int ctr_act(struct ctr *c, int64_t id, int64_t owner_id, const char *action, struct errinfo *e)
{
    struct row r;
    struct reg_target agent;
    int took = 0, rc = -1;
    int stop = !strcmp(action, "stop");

    if (!strcmp(action, "recreate"))
        return recreate(c, id, owner_id, e);
    if (!stop && strcmp(action, "start") && strcmp(action, "restart")) {
        errinfo_set(e, 400, "invalid_field", "action", "actions are start, stop, restart and recreate");
        return -1;
    }
    pthread_mutex_lock(&c->lock);
    if (ctr_row_read(c, id, owner_id, &r, e) < 0) {
        pthread_mutex_unlock(&c->lock);
        return -1;
    }
    if (!stop && !r.holding) {
        if (ctr_retake(c, &r, e) < 0) {
            pthread_mutex_unlock(&c->lock);
            goto out;
        }
        took = 1;
    }
    pthread_mutex_unlock(&c->lock);
    if (!r.engine_id[0]) {
        errinfo_set(e, 409, "no_engine_container", "id", "container %lld has no engine container: recreate it",
                    (long long)id);
        goto undo;
    }
    if (agentcall_find(c->app->reg, NULL, r.server_id, "host", &agent, e) < 0 ||
        engine_act(&agent, r.engine_id, action, e) < 0)
        goto undo;
    pthread_mutex_lock(&c->lock);
    if (stop)
        ctr_release(c, id);
    ctr_set_state(c, id, NULL, stop ? "exited" : "running", NULL);
    pthread_mutex_unlock(&c->lock);
    rc = 0;
    ctr_announce(c);
    goto out;
undo:
    if (took) {
        pthread_mutex_lock(&c->lock);
        ctr_release(c, id);
        pthread_mutex_unlock(&c->lock);
    }
out:
    json_decref(r.spec);
    return rc;
}

int ctr_remove(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    struct row r;
    struct reg_target agent;
    int rc = -1;

    pthread_mutex_lock(&c->lock);
    rc = ctr_row_read(c, id, owner_id, &r, e);
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        return -1;
    rc = -1;
    /* a host removed from the registry cannot be asked: the row goes */
    if (agentcall_find(c->app->reg, NULL, r.server_id, "host", &agent, e) == 0 &&
        engine_delete(&agent, r.engine_id, e) < 0)
        goto out;
    pthread_mutex_lock(&c->lock);
    ctr_delete_row(c, id);
    pthread_mutex_unlock(&c->lock);
    rc = 0;
    ctr_announce(c);
out:
    json_decref(r.spec);
    return rc;
}

int ctr_locate(struct ctr *c, int64_t id, int64_t owner_id, struct reg_target *agent,
               char *engine_id, size_t idlen, char *name, size_t namelen, struct errinfo *e)
{
    struct row r;

    pthread_mutex_lock(&c->lock);
    int rc = ctr_row_read(c, id, owner_id, &r, e);
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        return -1;
    snprintf(engine_id, idlen, "%s", r.engine_id);
    snprintf(name, namelen, "%s", json_string_value(json_object_get(r.spec, "name")) ?: "");
    json_decref(r.spec);
    if (!engine_id[0]) {
        errinfo_set(e, 409, "no_engine_container", "id", "the container has no engine container");
        return -1;
    }
    return agentcall_find(c->app->reg, NULL, r.server_id, "host", agent, e);
}

json_t *ctr_stats(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    struct row r;
    struct reg_target agent;
    json_t *out = NULL;
    char path[300];

    pthread_mutex_lock(&c->lock);
    int rc = ctr_row_read(c, id, owner_id, &r, e);
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        return NULL;
    snprintf(path, sizeof(path), "/api/v1/engine/containers/%s/stats", r.engine_id);
    if (!r.engine_id[0])
        errinfo_set(e, 409, "no_engine_container", "id", "the container has no engine container");
    else if (agentcall_find(c->app->reg, NULL, r.server_id, "host", &agent, e) == 0)
        out = agentcall(&agent, "GET", path, NULL, 30, e);
    json_decref(r.spec);
    return out;
}
