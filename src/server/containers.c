/* Containers across the fleet. The database is the truth about who holds
 * what: a GPU row's primary key (server, UUID) makes "one GPU, one
 * container" a constraint SQLite enforces, not a hope. Decisions take the
 * lock for a few statements; calls to agents happen with it released, and
 * a create that fails on its host gives back what it reserved. */
#include "containers.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "../lib/buf.h"
#include "../lib/ctrspec.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/websocket.h"
#include "../lib/xalloc.h"
#include "agentcall.h"
#include "fleet.h"
#include "store/db.h"

static const struct db_migration steps[] = {
    {"containers, GPU and port ledgers",
     "CREATE TABLE containers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
     " owner_id INTEGER NOT NULL, owner TEXT NOT NULL, server_id INTEGER NOT NULL,"
     " server TEXT NOT NULL, engine_id TEXT NOT NULL DEFAULT '', image TEXT NOT NULL,"
     " spec TEXT NOT NULL, request TEXT NOT NULL, ngpus INTEGER NOT NULL,"
     " nano_cpus INTEGER NOT NULL, memory_bytes INTEGER NOT NULL,"
     " holding INTEGER NOT NULL DEFAULT 1, state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',"
     " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE INDEX containers_by_owner ON containers (owner_id);"
     "CREATE TABLE gpu_ledger (server_id INTEGER NOT NULL, uuid TEXT NOT NULL,"
     " container_id INTEGER NOT NULL REFERENCES containers(id) ON DELETE CASCADE,"
     " since_ms INTEGER NOT NULL, PRIMARY KEY (server_id, uuid));"
     "CREATE INDEX gpu_ledger_by_container ON gpu_ledger (container_id);"
     "CREATE TABLE port_ledger (server_id INTEGER NOT NULL, host_port INTEGER NOT NULL,"
     " proto TEXT NOT NULL, container_id INTEGER NOT NULL REFERENCES containers(id)"
     " ON DELETE CASCADE, container_port INTEGER NOT NULL,"
     " PRIMARY KEY (server_id, host_port, proto));"
     "CREATE INDEX port_ledger_by_container ON port_ledger (container_id);"},
};

struct ctr {
    struct server_app *app;
    struct ctr_config cfg;
    pthread_mutex_t lock; /* db and the fields below; never held across a call */
    sqlite3 *db;
    json_t *conflicts;    /* what the last reconcile pass found wrong */
    uint64_t decisions;
    double decision_max_ms;
    /* the reconcile loop */
    pthread_t thread;
    int running, stop;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
};

/* ---- settings ---- */

int ctr_config_from(const struct server_options *o, struct ctr_config *cfg, char *err,
                    size_t errlen)
{
    unsigned lo, hi;
    char extra;

    memset(cfg, 0, sizeof(*cfg));
    if (sscanf(o->container_port_range, "%u-%u%c", &lo, &hi, &extra) != 2 || lo < 1 ||
        hi > 65535 || lo > hi) {
        snprintf(err, errlen, "container_port_range: expected LOW-HIGH within 1-65535");
        return -1;
    }
    cfg->port_lo = lo;
    cfg->port_hi = hi;
    snprintf(cfg->host_ip, sizeof(cfg->host_ip), "%s", o->container_host_ip);
    for (const char *p = cfg->host_ip; *p; p++)
        if (!isxdigit((unsigned char)*p) && *p != '.' && *p != ':') {
            snprintf(err, errlen, "container_host_ip: expected an IP address");
            return -1;
        }
    if (strcmp(o->container_placement, "binpack") && strcmp(o->container_placement, "spread")) {
        snprintf(err, errlen, "container_placement: expected binpack or spread");
        return -1;
    }
    cfg->spread = !strcmp(o->container_placement, "spread");
    cfg->default_nano_cpus = o->container_default_cpus * 1000000000LL;
    cfg->default_memory_bytes = o->container_default_memory_mib << 20;
    cfg->quota_containers = o->quota_containers;
    cfg->quota_gpus = o->quota_gpus;
    cfg->quota_nano_cpus = o->quota_cpus * 1000000000LL;
    cfg->quota_memory_bytes = o->quota_memory_mib << 20;
    cfg->reconcile_ms = o->container_reconcile_ms;
    return 0;
}

/* ---- open, close ---- */

struct ctr *ctr_open(const char *path, struct server_app *app, const struct ctr_config *cfg,
                     char *err, size_t errlen)
{
    struct ctr *c = xcalloc(1, sizeof(*c));

    c->db = db_open(path, steps, sizeof(steps) / sizeof(steps[0]), err, errlen);
    if (!c->db) {
        free(c);
        return NULL;
    }
    c->app = app;
    c->cfg = *cfg;
    c->conflicts = json_array();
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->wake_lock, NULL);
    now_cond_init(&c->wake);
    return c;
}

void ctr_close(struct ctr *c)
{
    if (!c)
        return;
    if (c->running) {
        pthread_mutex_lock(&c->wake_lock);
        c->stop = 1;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->wake_lock);
        pthread_join(c->thread, NULL);
    }
    sqlite3_close(c->db);
    json_decref(c->conflicts);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->wake_lock);
    pthread_cond_destroy(&c->wake);
    free(c);
}

void ctr_integrity(struct ctr *c, char *out, size_t outlen)
{
    pthread_mutex_lock(&c->lock);
    db_integrity(c->db, out, outlen);
    pthread_mutex_unlock(&c->lock);
}

/* Browsers re-read the containers when this arrives. */
static void announce(struct ctr *c)
{
    static const char msg[] = "{\"type\":\"containers\"}";
    if (c->app->hub)
        ws_hub_broadcast(c->app->hub, msg, sizeof(msg) - 1);
}

/* ---- reading rows ---- */

#define COLS "id, name, owner_id, owner, server_id, server, engine_id, image, spec, ngpus," \
             " nano_cpus, memory_bytes, holding, state, detail, created_ms, updated_ms"

static const char *col_text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

/* The GPUs and ports a container holds (or would hold) as JSON. */
static void add_held(struct ctr *c, json_t *o, int64_t id, const json_t *spec)
{
    json_t *gpus = json_array(), *ports;
    sqlite3_stmt *st = db_prepare(c->db, "SELECT uuid, since_ms FROM gpu_ledger"
                                         " WHERE container_id = ?1 ORDER BY uuid");
    sqlite3_bind_int64(st, 1, id);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(gpus, json_string(col_text(st, 0)));
    sqlite3_finalize(st);
    /* a stopped container holds none: show the ones it would take back */
    if (!json_array_size(gpus))
        json_array_extend(gpus, json_object_get(spec, "gpus"));
    ports = json_deep_copy(json_object_get(spec, "ports"));
    json_object_set_new(o, "gpus", gpus);
    json_object_set_new(o, "ports", ports ? ports : json_array());
}

static json_t *row_json(struct ctr *c, sqlite3_stmt *st)
{
    json_t *spec = json_loads(col_text(st, 8), 0, NULL);
    int64_t id = sqlite3_column_int64(st, 0);
    json_t *o = json_pack(
        "{s:I, s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:O?, s:O?, s:f, s:I, s:b, s:s, s:s, s:I, s:I}",
        "id", (json_int_t)id, "name", col_text(st, 1), "owner_id",
        (json_int_t)sqlite3_column_int64(st, 2), "owner", col_text(st, 3), "server_id",
        (json_int_t)sqlite3_column_int64(st, 4), "server", col_text(st, 5), "engine_id",
        col_text(st, 6), "image", col_text(st, 7), "command", json_object_get(spec, "command"),
        "env", json_object_get(spec, "env"), "cpus", (double)sqlite3_column_int64(st, 10) / 1e9,
        "memory_bytes", (json_int_t)sqlite3_column_int64(st, 11), "holding",
        sqlite3_column_int(st, 12), "state", col_text(st, 13), "detail", col_text(st, 14),
        "created_ms", (json_int_t)sqlite3_column_int64(st, 15), "updated_ms",
        (json_int_t)sqlite3_column_int64(st, 16));
    json_object_set_new(o, "workspace", json_boolean(json_is_true(json_object_get(spec, "workspace"))));
    add_held(c, o, id, spec);
    json_decref(spec);
    return o;
}

json_t *ctr_list(struct ctr *c, int64_t owner_id)
{
    json_t *out = json_array();

    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *st = db_prepare(c->db, "SELECT " COLS " FROM containers"
                                         " WHERE ?1 = 0 OR owner_id = ?1 ORDER BY id DESC");
    sqlite3_bind_int64(st, 1, owner_id);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(out, row_json(c, st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&c->lock);
    return out;
}

/* One row as JSON; lock held. NULL with e (404) when not visible. */
static json_t *get_locked(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    json_t *o = NULL;
    sqlite3_stmt *st = db_prepare(c->db, "SELECT " COLS " FROM containers"
                                         " WHERE id = ?1 AND (?2 = 0 OR owner_id = ?2)");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, owner_id);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        o = row_json(c, st);
    sqlite3_finalize(st);
    if (!o)
        errinfo_set(e, 404, "not_found", "id", "no container %lld", (long long)id);
    return o;
}

json_t *ctr_get(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    pthread_mutex_lock(&c->lock);
    json_t *o = get_locked(c, id, owner_id, e);
    pthread_mutex_unlock(&c->lock);
    return o;
}

/* ---- what the fleet has ---- */

/* A host that can take containers: its agent and its live figures. */
struct cand {
    struct reg_target agent;
    json_t *live; /* fleet_server_json: {"host":{...},"gpus":[...]}, may be NULL */
};

static void cands_free(struct cand *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(v[i].live);
    free(v);
}

/* Every agent with a token, with what its last scrape said. Taken before
 * the ledger lock: the registry and the fleet have locks of their own. */
static struct cand *cands_read(struct ctr *c, size_t *n)
{
    struct reg_target *all = NULL;
    size_t nall = reg_targets(c->app->reg, 0, 0, &all), k = 0;
    struct cand *v = xcalloc(nall ? nall : 1, sizeof(*v));

    for (size_t i = 0; i < nall; i++) {
        if (!all[i].is_agent || !all[i].token[0])
            continue;
        v[k].agent = all[i];
        v[k].live = c->app->fleet ? fleet_server_json(c->app->fleet, all[i].server) : NULL;
        k++;
    }
    free(all);
    *n = k;
    return v;
}

/* ---- the ledger decision (lock held) ---- */

struct usage {
    int64_t containers, gpus, nano_cpus, memory_bytes;
};

static void usage_of(struct ctr *c, int64_t owner_id, struct usage *u)
{
    sqlite3_stmt *st = db_prepare(
        c->db, "SELECT count(*), coalesce(sum(CASE WHEN holding THEN nano_cpus END), 0),"
               " coalesce(sum(CASE WHEN holding THEN memory_bytes END), 0),"
               " (SELECT count(*) FROM gpu_ledger g JOIN containers k ON k.id = g.container_id"
               "  WHERE k.owner_id = ?1)"
               " FROM containers WHERE owner_id = ?1 AND state != 'gone'");
    memset(u, 0, sizeof(*u));
    sqlite3_bind_int64(st, 1, owner_id);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        u->containers = sqlite3_column_int64(st, 0);
        u->nano_cpus = sqlite3_column_int64(st, 1);
        u->memory_bytes = sqlite3_column_int64(st, 2);
        u->gpus = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
}

static int over(struct errinfo *e, const char *field, const char *what, double used, double asked,
                double limit, const char *unit)
{
    errinfo_set(e, 409, "quota_exceeded", field,
                "quota: %s %.4g%s in use + %.4g%s asked is over the limit of %.4g%s", what, used,
                unit, asked, unit, limit, unit);
    return -1;
}

/* The quota check of a create (admins have none). */
static int check_quota(struct ctr *c, const struct auth_identity *who, int ngpus,
                       int64_t nano_cpus, int64_t memory_bytes, struct errinfo *e)
{
    struct usage u;
    const struct ctr_config *q = &c->cfg;

    if (who->role >= ROLE_ADMIN)
        return 0;
    usage_of(c, who->user_id, &u);
    if (u.containers + 1 > q->quota_containers)
        return over(e, "containers", "containers", (double)u.containers, 1, (double)q->quota_containers, "");
    if (u.gpus + ngpus > q->quota_gpus)
        return over(e, "gpus", "GPUs", (double)u.gpus, ngpus, (double)q->quota_gpus, "");
    if (u.nano_cpus + nano_cpus > q->quota_nano_cpus)
        return over(e, "cpus", "CPUs", (double)u.nano_cpus / 1e9, (double)nano_cpus / 1e9,
                    (double)q->quota_nano_cpus / 1e9, "");
    if (u.memory_bytes + memory_bytes > q->quota_memory_bytes)
        return over(e, "memory", "memory", (double)u.memory_bytes / (1 << 20),
                    (double)memory_bytes / (1 << 20), (double)q->quota_memory_bytes / (1 << 20),
                    " MiB");
    return 0;
}

static int gpu_held(struct ctr *c, int64_t server_id, const char *uuid)
{
    sqlite3_stmt *st = db_prepare(c->db, "SELECT 1 FROM gpu_ledger WHERE server_id = ?1 AND uuid = ?2");
    int held;
    sqlite3_bind_int64(st, 1, server_id);
    sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
    held = st && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return held;
}

/* Whether a GPU of the fleet state matches the request's model and
 * memory. */
static int gpu_fits(const json_t *g, const struct ctrspec *s)
{
    const char *model = json_string_value(json_object_get(g, "model"));
    if (s->gpu_model[0] && (!model || !strcasestr(model, s->gpu_model)))
        return 0;
    if (s->gpu_min_memory_mib &&
        json_number_value(json_object_get(g, "fb_total_mib")) < (double)s->gpu_min_memory_mib)
        return 0;
    return 1;
}

/* The free GPUs of a host that match s, in index order, into out (at most
 * max). Returns how many are free. */
static size_t free_gpus(struct ctr *c, const struct cand *h, const struct ctrspec *s,
                        const char **out, size_t max)
{
    size_t i, n = 0;
    json_t *g;

    json_array_foreach(json_object_get(h->live, "gpus"), i, g) {
        const char *uuid = json_string_value(json_object_get(g, "uuid"));
        if (!uuid || !gpu_fits(g, s) || gpu_held(c, h->agent.server_id, uuid))
            continue;
        if (n < max)
            out[n] = uuid;
        n++;
    }
    return n;
}

static double free_memory(const struct cand *h)
{
    json_t *host = json_object_get(h->live, "host");
    json_t *total = json_object_get(host, "mem_total_bytes"), *used = json_object_get(host, "mem_used_bytes");
    if (!json_is_number(total) || !json_is_number(used))
        return -1; /* unknown: not a reason to refuse */
    return json_number_value(total) - json_number_value(used);
}

/* Whether a host has the GPU uuid in its last scrape. */
static int host_has_gpu(const struct cand *h, const char *uuid)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(h->live, "gpus"), i, g)
        if (!strcmp(json_string_value(json_object_get(g, "uuid")) ?: "", uuid))
            return 1;
    return 0;
}

/* Picks the host and the GPUs of s (filling s->gpus). The host's index, or
 * -1 with e. */
static int place(struct ctr *c, struct cand *v, size_t n, struct ctrspec *s, struct errinfo *e)
{
    const char *pick[CTRSPEC_MAX_GPUS];
    int best = -1;
    double best_score = 0;

    for (size_t i = 0; i < n; i++) {
        struct cand *h = &v[i];
        if (s->host[0] && strcmp(h->agent.server, s->host))
            continue;
        if (s->ngpus) {
            size_t k = 0;
            while (k < s->ngpus && host_has_gpu(h, s->gpus[k]))
                k++;
            if (k < s->ngpus)
                continue;
            best = (int)i;
            break;
        }
        size_t nfree = free_gpus(c, h, s, NULL, 0);
        double mem = free_memory(h);
        if (nfree < (size_t)s->gpu_count || (mem >= 0 && mem < (double)s->memory_bytes))
            continue;
        /* binpack: the fullest host that fits; spread: the emptiest */
        double score = (double)(nfree - (size_t)s->gpu_count) * 1e6 + (mem >= 0 ? mem / 1e9 : 0);
        if (best < 0 || (c->cfg.spread ? score > best_score : score < best_score)) {
            best = (int)i;
            best_score = score;
        }
    }
    if (best < 0) {
        if (s->ngpus)
            errinfo_set(e, 409, "no_room", "gpus", "no host%s%s has GPU %s", s->host[0] ? " " : "",
                        s->host, s->gpus[0]);
        else if (s->host[0] && !n)
            errinfo_set(e, 404, "not_found", "host", "no server %s with an agent token", s->host);
        else
            errinfo_set(e, 409, "no_room", s->gpu_count ? "gpus" : "memory",
                        "no host%s%s has %d free GPU%s%s%s and the memory asked", s->host[0] ? " " : "",
                        s->host, s->gpu_count, s->gpu_count == 1 ? "" : "s",
                        s->gpu_model[0] ? " of model " : "", s->gpu_model);
        return -1;
    }
    if (s->ngpus) {
        for (size_t k = 0; k < s->ngpus; k++)
            if (gpu_held(c, v[best].agent.server_id, s->gpus[k])) {
                errinfo_set(e, 409, "gpu_taken", "gpus", "GPU %s is held by another container",
                            s->gpus[k]);
                return -1;
            }
        return best;
    }
    free_gpus(c, &v[best], s, pick, CTRSPEC_MAX_GPUS);
    for (int k = 0; k < s->gpu_count; k++)
        snprintf(s->gpus[k], CTRSPEC_UUID_LEN, "%s", pick[k]);
    s->ngpus = (size_t)s->gpu_count;
    return best;
}

static int insert_gpus(struct ctr *c, int64_t server_id, int64_t id, const struct ctrspec *s,
                       int64_t now, struct errinfo *e)
{
    sqlite3_stmt *st = db_prepare(c->db, "INSERT INTO gpu_ledger (server_id, uuid, container_id,"
                                         " since_ms) VALUES (?1, ?2, ?3, ?4)");
    int rc = 0;

    for (size_t k = 0; st && k < s->ngpus && !rc; k++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, server_id);
        sqlite3_bind_text(st, 2, s->gpus[k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, id);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            errinfo_set(e, 409, "gpu_taken", "gpus", "GPU %s is held by another container", s->gpus[k]);
            rc = -1;
        }
    }
    sqlite3_finalize(st);
    return st ? rc : -1;
}

/* The container's row and its GPUs, in one transaction. Its id, or -1. */
static int64_t reserve(struct ctr *c, const struct auth_identity *who, const struct cand *h,
                       const struct ctrspec *s, const char *request, struct errinfo *e)
{
    int64_t now = now_wall_ms(), id = -1;
    json_t *spec = ctrspec_agent_json(s);
    char *spec_text = json_dumps(spec, JSON_COMPACT);
    sqlite3_stmt *st = NULL;

    db_exec(c->db, "BEGIN IMMEDIATE");
    st = db_prepare(c->db, "INSERT INTO containers (name, owner_id, owner, server_id, server, image,"
                           " spec, request, ngpus, nano_cpus, memory_bytes, state, created_ms,"
                           " updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                           " 'creating', ?12, ?12)");
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, who->user_id);
    sqlite3_bind_text(st, 3, who->username, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, h->agent.server_id);
    sqlite3_bind_text(st, 5, h->agent.server, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, s->image, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, spec_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, request, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, (int64_t)s->ngpus);
    sqlite3_bind_int64(st, 10, s->nano_cpus);
    sqlite3_bind_int64(st, 11, s->memory_bytes);
    sqlite3_bind_int64(st, 12, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_UNIQUE)
            errinfo_set(e, 409, "name_taken", "name", "a container named %s exists", s->name);
        else
            errinfo_set(e, 500, "internal", NULL, "the containers database refused the row");
        goto fail;
    }
    id = sqlite3_last_insert_rowid(c->db);
    if (insert_gpus(c, h->agent.server_id, id, s, now, e) < 0)
        goto fail;
    db_exec(c->db, "COMMIT");
    goto out;
fail:
    id = -1;
    db_exec(c->db, "ROLLBACK");
out:
    sqlite3_finalize(st);
    free(spec_text);
    json_decref(spec);
    return id;
}

/* ---- ports ---- */

/* Bits of the host ports gpufleet or another program holds on a host. */
struct portset {
    uint8_t bits[2][65536 / 8]; /* [tcp, udp] */
};

static void port_set(struct portset *p, int udp, unsigned port)
{
    p->bits[udp][port / 8] |= (uint8_t)(1u << (port % 8));
}

static int port_isset(const struct portset *p, int udp, unsigned port)
{
    return p->bits[udp][port / 8] & (1u << (port % 8));
}

/* The host's listening sockets, from its agent. 0 or -1 with e. */
static int host_ports(const struct reg_target *agent, struct portset *p, struct errinfo *e)
{
    json_t *ans = agentcall(agent, "GET", "/api/v1/engine/ports", NULL, 10, e);
    size_t i;
    json_t *v;

    if (!ans)
        return -1;
    json_array_foreach(json_object_get(ans, "tcp"), i, v)
        if (json_integer_value(v) > 0 && json_integer_value(v) < 65536)
            port_set(p, 0, (unsigned)json_integer_value(v));
    json_array_foreach(json_object_get(ans, "udp"), i, v)
        if (json_integer_value(v) > 0 && json_integer_value(v) < 65536)
            port_set(p, 1, (unsigned)json_integer_value(v));
    json_decref(ans);
    return 0;
}

/* Assigns host ports to s's ports and writes them to the ledger and the
 * row's spec. Lock held. 0 or -1 with e. */
static int assign_ports(struct ctr *c, int64_t server_id, int64_t id, struct ctrspec *s,
                        struct portset *p, struct errinfo *e)
{
    sqlite3_stmt *st = db_prepare(c->db, "SELECT host_port, proto FROM port_ledger WHERE server_id = ?1");
    sqlite3_stmt *ins = NULL;
    int rc = -1;

    sqlite3_bind_int64(st, 1, server_id);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        port_set(p, !strcmp(col_text(st, 1), "udp"), (unsigned)sqlite3_column_int(st, 0));
    db_exec(c->db, "BEGIN IMMEDIATE");
    ins = db_prepare(c->db, "INSERT INTO port_ledger (server_id, host_port, proto, container_id,"
                            " container_port) VALUES (?1, ?2, ?3, ?4, ?5)");
    for (size_t k = 0; ins && k < s->nports; k++) {
        struct ctrspec_port *q = &s->ports[k];
        int udp = !strcmp(q->proto, "udp");
        if (q->host) {
            if (q->host < c->cfg.port_lo || q->host > c->cfg.port_hi) {
                errinfo_set(e, 400, "invalid_field", "ports.host",
                            "host ports are handed out from %u-%u", c->cfg.port_lo, c->cfg.port_hi);
                goto fail;
            }
            if (port_isset(p, udp, q->host)) {
                errinfo_set(e, 409, "port_taken", "ports.host", "host port %u/%s is in use",
                            q->host, q->proto);
                goto fail;
            }
        } else {
            unsigned h = c->cfg.port_lo;
            while (h <= c->cfg.port_hi && port_isset(p, udp, h))
                h++;
            if (h > c->cfg.port_hi) {
                errinfo_set(e, 409, "no_room", "ports", "no free host port in %u-%u on %s",
                            c->cfg.port_lo, c->cfg.port_hi, s->host);
                goto fail;
            }
            q->host = h;
        }
        port_set(p, udp, q->host);
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, server_id);
        sqlite3_bind_int(ins, 2, (int)q->host);
        sqlite3_bind_text(ins, 3, q->proto, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, id);
        sqlite3_bind_int(ins, 5, (int)q->container);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            errinfo_set(e, 409, "port_taken", "ports.host", "host port %u/%s is in use", q->host, q->proto);
            goto fail;
        }
    }
    rc = 0;
fail:
    db_exec(c->db, rc ? "ROLLBACK" : "COMMIT");
    sqlite3_finalize(st);
    sqlite3_finalize(ins);
    return rc;
}

/* ---- row updates ---- */

static void set_spec(struct ctr *c, int64_t id, const struct ctrspec *s)
{
    json_t *spec = ctrspec_agent_json(s);
    char *text = json_dumps(spec, JSON_COMPACT);
    sqlite3_stmt *st = db_prepare(c->db, "UPDATE containers SET spec = ?2 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    if (st)
        sqlite3_step(st);
    sqlite3_finalize(st);
    free(text);
    json_decref(spec);
}

static void set_state(struct ctr *c, int64_t id, const char *engine_id, const char *state,
                      const char *detail)
{
    sqlite3_stmt *st = db_prepare(c->db, "UPDATE containers SET engine_id = coalesce(?2, engine_id),"
                                         " state = ?3, detail = ?4, updated_ms = ?5 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, id);
    if (engine_id)
        sqlite3_bind_text(st, 2, engine_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, detail ? detail : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_wall_ms());
    if (st)
        sqlite3_step(st);
    sqlite3_finalize(st);
}

static void delete_row(struct ctr *c, int64_t id)
{
    sqlite3_stmt *st = db_prepare(c->db, "DELETE FROM containers WHERE id = ?1");
    sqlite3_bind_int64(st, 1, id);
    if (st)
        sqlite3_step(st);
    sqlite3_finalize(st);
}

/* Gives back a container's GPUs and ports (stopped, or gone). */
static void release(struct ctr *c, int64_t id)
{
    sqlite3_stmt *st;
    static const char *sql[] = {"DELETE FROM gpu_ledger WHERE container_id = ?1",
                                "DELETE FROM port_ledger WHERE container_id = ?1",
                                "UPDATE containers SET holding = 0 WHERE id = ?1"};
    db_exec(c->db, "BEGIN IMMEDIATE");
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        st = db_prepare(c->db, sql[i]);
        sqlite3_bind_int64(st, 1, id);
        if (st)
            sqlite3_step(st);
        sqlite3_finalize(st);
    }
    db_exec(c->db, "COMMIT");
}

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
    int64_t t0 = now_mono_ns(), id = -1;

    pthread_mutex_lock(&c->lock);
    int ngpus = s->ngpus ? (int)s->ngpus : s->gpu_count;
    if (check_quota(c, who, ngpus, s->nano_cpus, s->memory_bytes, e) < 0)
        goto out;
    if ((*host = place(c, v, n, s, e)) < 0)
        goto out;
    snprintf(s->host, sizeof(s->host), "%s", v[*host].agent.server);
    id = reserve(c, who, &v[*host], s, request, e);
out:
    c->decisions++;
    double ms = (double)(now_mono_ns() - t0) / 1e6;
    if (ms > c->decision_max_ms)
        c->decision_max_ms = ms;
    pthread_mutex_unlock(&c->lock);
    return id;
}

json_t *ctr_create(struct ctr *c, const struct auth_identity *who, const json_t *body,
                   struct errinfo *e)
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
    if (!s.name[0])
        default_name(who, &s);
    if (!s.nano_cpus)
        s.nano_cpus = c->cfg.default_nano_cpus;
    if (!s.memory_bytes)
        s.memory_bytes = c->cfg.default_memory_bytes;
    snprintf(s.owner, sizeof(s.owner), "%s", who->username);
    snprintf(s.host_ip, sizeof(s.host_ip), "%s", c->cfg.host_ip);
    request = json_dumps(body, JSON_COMPACT);
    v = cands_read(c, &n);
    if ((id = decide(c, who, v, n, &s, request, &host, e)) < 0)
        goto out;
    s.gf_id = id;
    ports = xcalloc(1, sizeof(*ports));
    if (s.nports && host_ports(&v[host].agent, ports, e) < 0)
        goto undo;
    pthread_mutex_lock(&c->lock);
    int rc = assign_ports(c, v[host].agent.server_id, id, &s, ports, e);
    if (!rc)
        set_spec(c, id, &s);
    pthread_mutex_unlock(&c->lock);
    if (rc < 0 || !(engine_id = engine_create(&v[host].agent, &s, e)))
        goto undo;
    pthread_mutex_lock(&c->lock);
    set_state(c, id, engine_id, "running", NULL);
    out = get_locked(c, id, 0, e);
    pthread_mutex_unlock(&c->lock);
    announce(c);
    goto out;
undo:
    pthread_mutex_lock(&c->lock);
    delete_row(c, id);
    pthread_mutex_unlock(&c->lock);
out:
    free(engine_id);
    free(request);
    free(ports);
    cands_free(v, n);
    ctrspec_free(&s);
    return out;
}

/* ---- actions ---- */

/* What an action needs of a row: its host, engine id and spec. */
struct row {
    int64_t id, server_id;
    char server[65], engine_id[130], state[32];
    int holding;
    json_t *spec;
};

static int row_read(struct ctr *c, int64_t id, int64_t owner_id, struct row *r, struct errinfo *e)
{
    sqlite3_stmt *st = db_prepare(c->db, "SELECT server_id, server, engine_id, state, holding, spec"
                                         " FROM containers WHERE id = ?1 AND (?2 = 0 OR owner_id = ?2)");
    int rc = -1;

    memset(r, 0, sizeof(*r));
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, owner_id);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        r->id = id;
        r->server_id = sqlite3_column_int64(st, 0);
        snprintf(r->server, sizeof(r->server), "%s", col_text(st, 1));
        snprintf(r->engine_id, sizeof(r->engine_id), "%s", col_text(st, 2));
        snprintf(r->state, sizeof(r->state), "%s", col_text(st, 3));
        r->holding = sqlite3_column_int(st, 4);
        r->spec = json_loads(col_text(st, 5), 0, NULL);
        rc = 0;
    }
    sqlite3_finalize(st);
    if (rc < 0)
        errinfo_set(e, 404, "not_found", "id", "no container %lld", (long long)id);
    return rc;
}

/* Takes back the GPUs and ports of a stopped container: the same ones, as
 * its engine container is bound to them. Lock held. */
static int retake(struct ctr *c, const struct row *r, struct errinfo *e)
{
    struct ctrspec s;
    struct portset *p = xcalloc(1, sizeof(*p));
    int rc = -1;

    if (ctrspec_parse(r->spec, CTRSPEC_AGENT, &s, e) < 0)
        goto out;
    db_exec(c->db, "BEGIN IMMEDIATE");
    if (insert_gpus(c, r->server_id, r->id, &s, now_wall_ms(), e) < 0) {
        db_exec(c->db, "ROLLBACK");
        snprintf(e->message + strlen(e->message), sizeof(e->message) - strlen(e->message),
                 " since this container stopped; recreate it to get free ones");
        goto out;
    }
    db_exec(c->db, "COMMIT");
    if (assign_ports(c, r->server_id, r->id, &s, p, e) < 0) {
        sqlite3_stmt *st = db_prepare(c->db, "DELETE FROM gpu_ledger WHERE container_id = ?1");
        sqlite3_bind_int64(st, 1, r->id);
        if (st)
            sqlite3_step(st);
        sqlite3_finalize(st);
        goto out;
    }
    sqlite3_stmt *st = db_prepare(c->db, "UPDATE containers SET holding = 1 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, r->id);
    if (st)
        sqlite3_step(st);
    sqlite3_finalize(st);
    rc = 0;
out:
    ctrspec_free(&s);
    free(p);
    return rc;
}

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

/* New GPUs and host ports on the same host for a container whose old ones
 * were given away while it was stopped. Lock held. */
static int renew(struct ctr *c, const struct row *r, struct ctrspec *s, struct cand *v, size_t n,
                 struct errinfo *e)
{
    struct cand *h = NULL;
    const char *pick[CTRSPEC_MAX_GPUS];
    struct portset *p;
    int rc;

    for (size_t i = 0; i < n; i++)
        if (v[i].agent.server_id == r->server_id)
            h = &v[i];
    if (!h) {
        errinfo_set(e, 409, "no_room", "host", "server %s is gone from the registry", r->server);
        return -1;
    }
    size_t want = s->ngpus;
    s->ngpus = 0;
    if (free_gpus(c, h, s, pick, CTRSPEC_MAX_GPUS) < want) {
        errinfo_set(e, 409, "no_room", "gpus", "%s has fewer than %zu free GPUs now", r->server, want);
        return -1;
    }
    for (size_t k = 0; k < want; k++)
        snprintf(s->gpus[k], CTRSPEC_UUID_LEN, "%s", pick[k]);
    s->ngpus = want;
    for (size_t k = 0; k < s->nports; k++)
        s->ports[k].host = 0;
    db_exec(c->db, "BEGIN IMMEDIATE");
    rc = insert_gpus(c, r->server_id, r->id, s, now_wall_ms(), e);
    db_exec(c->db, rc ? "ROLLBACK" : "COMMIT");
    if (rc < 0)
        return -1;
    p = xcalloc(1, sizeof(*p));
    rc = assign_ports(c, r->server_id, r->id, s, p, e);
    free(p);
    if (rc < 0) {
        release(c, r->id);
        return -1;
    }
    set_spec(c, r->id, s);
    sqlite3_stmt *st = db_prepare(c->db, "UPDATE containers SET holding = 1 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, r->id);
    if (st)
        sqlite3_step(st);
    sqlite3_finalize(st);
    return 0;
}

/* recreate: the same request made again on the same host (the image
 * re-read, the container's own files gone, its workspace kept). */
static int recreate(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    size_t n = 0;
    struct cand *v = cands_read(c, &n);
    struct row r = {0};
    struct ctrspec s;
    struct reg_target agent;
    char *engine_id = NULL;
    int rc = -1;

    memset(&s, 0, sizeof(s));
    pthread_mutex_lock(&c->lock);
    if (row_read(c, id, owner_id, &r, e) < 0 || ctrspec_parse(r.spec, CTRSPEC_AGENT, &s, e) < 0) {
        pthread_mutex_unlock(&c->lock);
        goto out;
    }
    if (!r.holding && retake(c, &r, e) < 0 && renew(c, &r, &s, v, n, e) < 0) {
        pthread_mutex_unlock(&c->lock);
        goto out;
    }
    set_state(c, id, NULL, "creating", "recreating");
    pthread_mutex_unlock(&c->lock);
    if (agentcall_find(c->app->reg, NULL, r.server_id, "host", &agent, e) < 0 ||
        engine_delete(&agent, r.engine_id, e) < 0)
        goto failed;
    if (!(engine_id = engine_create(&agent, &s, e)))
        goto failed;
    pthread_mutex_lock(&c->lock);
    set_state(c, id, engine_id, "running", NULL);
    pthread_mutex_unlock(&c->lock);
    rc = 0;
    goto out;
failed:
    pthread_mutex_lock(&c->lock);
    set_state(c, id, "", "failed", e->message);
    pthread_mutex_unlock(&c->lock);
out:
    announce(c);
    free(engine_id);
    ctrspec_free(&s);
    json_decref(r.spec);
    cands_free(v, n);
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
    if (row_read(c, id, owner_id, &r, e) < 0) {
        pthread_mutex_unlock(&c->lock);
        return -1;
    }
    if (!stop && !r.holding) {
        if (retake(c, &r, e) < 0) {
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
        release(c, id);
    set_state(c, id, NULL, stop ? "exited" : "running", NULL);
    pthread_mutex_unlock(&c->lock);
    rc = 0;
    announce(c);
    goto out;
undo:
    if (took) {
        pthread_mutex_lock(&c->lock);
        release(c, id);
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
    rc = row_read(c, id, owner_id, &r, e);
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        return -1;
    rc = -1;
    /* a host removed from the registry cannot be asked: the row goes */
    if (agentcall_find(c->app->reg, NULL, r.server_id, "host", &agent, e) == 0 &&
        engine_delete(&agent, r.engine_id, e) < 0)
        goto out;
    pthread_mutex_lock(&c->lock);
    delete_row(c, id);
    pthread_mutex_unlock(&c->lock);
    rc = 0;
    announce(c);
out:
    json_decref(r.spec);
    return rc;
}

json_t *ctr_stats(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    struct row r;
    struct reg_target agent;
    json_t *out = NULL;
    char path[300];

    pthread_mutex_lock(&c->lock);
    int rc = row_read(c, id, owner_id, &r, e);
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

/* ---- the fleet's GPUs ---- */

static json_t *holder_of(struct ctr *c, int64_t server_id, const char *uuid)
{
    json_t *h = json_null();
    sqlite3_stmt *st = db_prepare(c->db, "SELECT k.id, k.name, k.owner, g.since_ms, k.state"
                                         " FROM gpu_ledger g JOIN containers k ON k.id = g.container_id"
                                         " WHERE g.server_id = ?1 AND g.uuid = ?2");
    sqlite3_bind_int64(st, 1, server_id);
    sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        h = json_pack("{s:I, s:s, s:s, s:I, s:s}", "container_id",
                      (json_int_t)sqlite3_column_int64(st, 0), "name", col_text(st, 1), "owner",
                      col_text(st, 2), "since_ms", (json_int_t)sqlite3_column_int64(st, 3),
                      "state", col_text(st, 4));
    sqlite3_finalize(st);
    return h;
}

json_t *ctr_gpus(struct ctr *c)
{
    size_t n = 0, i;
    struct cand *v = cands_read(c, &n);
    json_t *out = json_array(), *g;

    pthread_mutex_lock(&c->lock);
    for (size_t k = 0; k < n; k++)
        json_array_foreach(json_object_get(v[k].live, "gpus"), i, g) {
            const char *uuid = json_string_value(json_object_get(g, "uuid"));
            if (!uuid)
                continue;
            json_array_append_new(out, json_pack("{s:s, s:s, s:O?, s:O?, s:O?, s:O?, s:o}",
                                                 "server", v[k].agent.server, "uuid", uuid,
                                                 "index", json_object_get(g, "index"), "model",
                                                 json_object_get(g, "model"), "fb_total_mib",
                                                 json_object_get(g, "fb_total_mib"), "util_percent",
                                                 json_object_get(g, "util_percent"), "holder",
                                                 holder_of(c, v[k].agent.server_id, uuid)));
        }
    json_t *res = json_pack("{s:o, s:O}", "gpus", out, "conflicts", c->conflicts);
    pthread_mutex_unlock(&c->lock);
    cands_free(v, n);
    return res;
}

json_t *ctr_unmanaged(struct ctr *c, struct errinfo *e)
{
    size_t n = 0, i;
    struct cand *v = cands_read(c, &n);
    json_t *out = json_array(), *x;

    (void)e;
    for (size_t k = 0; k < n; k++) {
        struct errinfo ignore = {0};
        json_t *list = agentcall(&v[k].agent, "GET", "/api/v1/engine/containers", NULL, 30, &ignore);
        json_array_foreach(list, i, x) {
            if (json_is_true(json_object_get(x, "managed")))
                continue;
            json_object_set_new(x, "server", json_string(v[k].agent.server));
            json_array_append(out, x);
        }
        json_decref(list);
    }
    cands_free(v, n);
    return out;
}

/* ---- reconcile ---- */

/* The engine container of a row: by engine id, else by our label. */
static json_t *engine_find(json_t *list, const char *engine_id, int64_t id)
{
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
        const char *eid = json_string_value(json_object_get(x, "id"));
        if ((engine_id[0] && eid && !strcmp(eid, engine_id)) ||
            (json_is_true(json_object_get(x, "managed")) &&
             json_integer_value(json_object_get(x, "gf_id")) == id))
            return x;
    }
    return NULL;
}

static void conflict(json_t *conflicts, const char *server, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conflict(json_t *conflicts, const char *server, const char *kind, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(conflicts, json_pack("{s:s, s:s, s:s}", "server", server, "kind", kind,
                                               "message", msg));
}

/* One host: rows against what its engine has. Lock held. Whether anything
 * changed. */
static int reconcile_host(struct ctr *c, const struct cand *h, json_t *list, json_t *conflicts)
{
    int changed = 0;
    int64_t now = now_wall_ms();
    sqlite3_stmt *st = db_prepare(c->db, "SELECT id, engine_id, state, holding, updated_ms, name"
                                         " FROM containers WHERE server_id = ?1");
    json_t *seen = json_object();
    struct row r;
    struct errinfo e;

    sqlite3_bind_int64(st, 1, h->agent.server_id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *state = col_text(st, 2);
        json_t *x = engine_find(list, col_text(st, 1), id);
        char key[32];
        snprintf(key, sizeof(key), "%lld", (long long)id);
        json_object_set_new(seen, key, json_true());
        if (!x) {
            /* creates in flight have no engine container yet */
            if (!strcmp(state, "gone") || !strcmp(state, "failed") ||
                (!strcmp(state, "creating") && now - sqlite3_column_int64(st, 4) < 120000))
                continue;
            log_warn("container %s (%lld) on %s was removed outside gpufleet: its GPUs and ports are free",
                     col_text(st, 5), (long long)id, h->agent.server);
            release(c, id);
            set_state(c, id, NULL, "gone", "removed outside gpufleet");
            changed = 1;
            continue;
        }
        const char *es = json_string_value(json_object_get(x, "state")) ?: "";
        if (!strcmp(es, "running") && !sqlite3_column_int(st, 3) &&
            row_read(c, id, 0, &r, &e) == 0) {
            /* started behind gpufleet's back while it held nothing */
            if (retake(c, &r, &e) < 0)
                conflict(conflicts, h->agent.server, "gpu", "container %s runs without its GPUs or ports: %s",
                         col_text(st, 5), e.message);
            json_decref(r.spec);
        }
        if (strcmp(es, state) && strcmp(state, "creating")) {
            set_state(c, id, json_string_value(json_object_get(x, "id")), es, NULL);
            changed = 1;
        }
    }
    sqlite3_finalize(st);
    /* managed containers the database does not know, and GPUs two claim */
    size_t i, j;
    json_t *x, *g;
    json_array_foreach(list, i, x) {
        char key[32];
        int64_t gid = json_integer_value(json_object_get(x, "gf_id"));
        if (!json_is_true(json_object_get(x, "managed")))
            continue;
        snprintf(key, sizeof(key), "%lld", (long long)gid);
        if (!json_object_get(seen, key))
            conflict(conflicts, h->agent.server, "orphan",
                     "engine container %s is labelled as gpufleet's container %lld, which the database does not have",
                     json_string_value(json_object_get(x, "name")) ?: "?", (long long)gid);
        if (strcmp(json_string_value(json_object_get(x, "state")) ?: "", "running"))
            continue;
        json_array_foreach(json_object_get(x, "gpus"), j, g) {
            json_t *holder = holder_of(c, h->agent.server_id, json_string_value(g) ?: "");
            json_int_t hid = json_integer_value(json_object_get(holder, "container_id"));
            if (hid && hid != gid)
                conflict(conflicts, h->agent.server, "gpu",
                         "GPU %s is used by engine container %s but held by container %lld in the ledger",
                         json_string_value(g), json_string_value(json_object_get(x, "name")) ?: "?",
                         (long long)hid);
            json_decref(holder);
        }
    }
    json_decref(seen);
    return changed;
}

void ctr_reconcile(struct ctr *c)
{
    size_t n = 0;
    struct cand *v = cands_read(c, &n);
    json_t *conflicts = json_array();
    int changed = 0;

    for (size_t k = 0; k < n; k++) {
        struct errinfo e = {0};
        /* hosts whose agent cannot be asked keep their rows as they are */
        json_t *list = agentcall(&v[k].agent, "GET", "/api/v1/engine/containers", NULL, 30, &e);
        if (!list || !json_is_array(list)) {
            json_decref(list);
            continue;
        }
        pthread_mutex_lock(&c->lock);
        changed |= reconcile_host(c, &v[k], list, conflicts);
        pthread_mutex_unlock(&c->lock);
        json_decref(list);
    }
    pthread_mutex_lock(&c->lock);
    if (json_array_size(conflicts) && !json_equal(conflicts, c->conflicts))
        log_warn("containers: %zu conflicts between the ledger and the engines (GET /api/v1/gpus)",
                 json_array_size(conflicts));
    json_decref(c->conflicts);
    c->conflicts = conflicts;
    pthread_mutex_unlock(&c->lock);
    cands_free(v, n);
    if (changed)
        announce(c);
}

static void *reconcile_loop(void *arg)
{
    struct ctr *c = arg;

    for (;;) {
        ctr_reconcile(c);
        pthread_mutex_lock(&c->wake_lock);
        if (!c->stop) {
            now_cond_wait_until(&c->wake, &c->wake_lock,
                                now_mono_ns() + c->cfg.reconcile_ms * 1000000LL);
        }
        int stop = c->stop;
        pthread_mutex_unlock(&c->wake_lock);
        if (stop)
            break;
    }
    return NULL;
}

int ctr_start(struct ctr *c)
{
    if (pthread_create(&c->thread, NULL, reconcile_loop, c))
        return -1;
    c->running = 1;
    return 0;
}

void ctr_metrics(struct ctr *c, struct buf *out)
{
    pthread_mutex_lock(&c->lock);
    buf_puts(out, "# HELP gpufleet_server_containers Containers gpufleet manages, by state.\n"
                  "# TYPE gpufleet_server_containers gauge\n");
    sqlite3_stmt *st = db_prepare(c->db, "SELECT state, count(*) FROM containers GROUP BY state");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        buf_printf(out, "gpufleet_server_containers{state=\"%s\"} %lld\n", col_text(st, 0),
                   (long long)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    st = db_prepare(c->db, "SELECT count(*) FROM gpu_ledger");
    buf_printf(out, "# HELP gpufleet_server_gpus_held GPUs the ledger gives to containers.\n"
                    "# TYPE gpufleet_server_gpus_held gauge\n"
                    "gpufleet_server_gpus_held %lld\n",
               st && sqlite3_step(st) == SQLITE_ROW ? (long long)sqlite3_column_int64(st, 0) : 0LL);
    sqlite3_finalize(st);
    buf_printf(out, "# HELP gpufleet_server_container_decisions_total Ledger decisions of creates.\n"
                    "# TYPE gpufleet_server_container_decisions_total counter\n"
                    "gpufleet_server_container_decisions_total %llu\n"
                    "# HELP gpufleet_server_container_decision_max_seconds The slowest ledger decision.\n"
                    "# TYPE gpufleet_server_container_decision_max_seconds gauge\n"
                    "gpufleet_server_container_decision_max_seconds %.6f\n"
                    "# HELP gpufleet_server_container_conflicts Conflicts the last reconcile found.\n"
                    "# TYPE gpufleet_server_container_conflicts gauge\n"
                    "gpufleet_server_container_conflicts %zu\n",
               (unsigned long long)c->decisions, c->decision_max_ms / 1000.0,
               json_array_size(c->conflicts));
    pthread_mutex_unlock(&c->lock);
}
