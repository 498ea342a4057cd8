/* Containers across the fleet. The database is the truth about who holds
 * what: a GPU row's primary key (server, UUID) makes "one GPU, one
 * container" a constraint SQLite enforces, not a hope. Decisions take the
 * lock for a few statements; calls to agents happen with it released, and
 * a create that fails on its host gives back what it reserved. This file:
 * the database, the rows as the API shows them, metrics. */
#include "containers.h"

#include <ctype.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/websocket.h"
#include "../lib/xalloc.h"
#include "containers_impl.h"
#include "routes.h"
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
    {"per-user quota limits",
     "CREATE TABLE quotas (user_id INTEGER PRIMARY KEY, username TEXT NOT NULL,"
     " containers INTEGER, gpus INTEGER, nano_cpus INTEGER, memory_bytes INTEGER,"
     " updated_ms INTEGER NOT NULL);"},
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
    /* its choices are checked where it is read (config.c) */
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

void ctr_set_limits(struct ctr *c, const struct server_options *o)
{
    pthread_mutex_lock(&c->lock);
    c->cfg.default_nano_cpus = o->container_default_cpus * 1000000000LL;
    c->cfg.default_memory_bytes = o->container_default_memory_mib << 20;
    c->cfg.quota_containers = o->quota_containers;
    c->cfg.quota_gpus = o->quota_gpus;
    c->cfg.quota_nano_cpus = o->quota_cpus * 1000000000LL;
    c->cfg.quota_memory_bytes = o->quota_memory_mib << 20;
    c->cfg.spread = o->container_placement && !strcmp(o->container_placement, "spread");
    pthread_mutex_unlock(&c->lock);
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
    sqlite3_close(c->ckpt);
    for (size_t i = 0; i < c->nstmts; i++)
        sqlite3_finalize(c->stmts[i].st);
    sqlite3_close(c->db);
    free(c->list_text);
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

/* Preparing costs tens of microseconds, as much as the step it serves: a
 * decision runs a few statements per host of the fleet, so the ones it
 * uses are kept. */
sqlite3_stmt *ctr_stmt(struct ctr *c, const char *sql)
{
    for (size_t i = 0; i < c->nstmts; i++)
        if (c->stmts[i].sql == sql) {
            sqlite3_reset(c->stmts[i].st);
            sqlite3_clear_bindings(c->stmts[i].st);
            return c->stmts[i].st;
        }
    sqlite3_stmt *st = db_prepare(c->db, sql);
    if (st && c->nstmts == CTR_MAX_STMTS) {
        log_error("containers: more than %d kept statements", CTR_MAX_STMTS);
        sqlite3_finalize(st);
        return NULL;
    }
    if (st) {
        c->stmts[c->nstmts].sql = sql;
        c->stmts[c->nstmts++].st = st;
    }
    return st;
}

/* Browsers re-read the containers when this arrives. */
void ctr_announce(struct ctr *c)
{
    static const char msg[] = "{\"type\":\"containers\"}";
    if (c->app->hub)
        ws_hub_broadcast(c->app->hub, msg, sizeof(msg) - 1);
    routes_poke(c->app->routes); /* a route may come or go */
}

/* ---- reading rows ---- */

#define COLS "id, name, owner_id, owner, server_id, server, engine_id, image, spec, ngpus," \
             " nano_cpus, memory_bytes, holding, state, detail, created_ms, updated_ms," \
             " (SELECT group_concat(uuid, ',') FROM gpu_ledger g WHERE g.container_id = containers.id)"

const char *ctr_col_text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

/* The GPUs and ports a container holds (or would hold) as JSON. */
/* held: the ledger's GPUs of the row, comma-separated (one subquery of
 * the row's SELECT: a statement per row made a list of 1,000 slow). */
static void add_held(json_t *o, const char *held, const json_t *spec)
{
    json_t *gpus = json_array(), *ports;
    char *copy = xstrdup(held), *save = NULL;

    for (char *u = strtok_r(copy, ",", &save); u; u = strtok_r(NULL, ",", &save))
        json_array_append_new(gpus, json_string(u));
    free(copy);
    /* a stopped container holds none: show the ones it would take back */
    if (!json_array_size(gpus))
        json_array_extend(gpus, json_object_get(spec, "gpus"));
    ports = json_deep_copy(json_object_get(spec, "ports"));
    json_object_set_new(o, "gpus", gpus);
    json_object_set_new(o, "ports", ports ? ports : json_array());
}

static json_t *row_json(sqlite3_stmt *st)
{
    json_t *spec = json_loads(ctr_col_text(st, 8), 0, NULL);
    int64_t id = sqlite3_column_int64(st, 0);
    json_t *o = json_pack(
        "{s:I, s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:O?, s:O?, s:f, s:I, s:b, s:s, s:s, s:I, s:I}",
        "id", (json_int_t)id, "name", ctr_col_text(st, 1), "owner_id",
        (json_int_t)sqlite3_column_int64(st, 2), "owner", ctr_col_text(st, 3), "server_id",
        (json_int_t)sqlite3_column_int64(st, 4), "server", ctr_col_text(st, 5), "engine_id",
        ctr_col_text(st, 6), "image", ctr_col_text(st, 7), "command", json_object_get(spec, "command"),
        "env", json_object_get(spec, "env"), "cpus", (double)sqlite3_column_int64(st, 10) / 1e9,
        "memory_bytes", (json_int_t)sqlite3_column_int64(st, 11), "holding",
        sqlite3_column_int(st, 12), "state", ctr_col_text(st, 13), "detail", ctr_col_text(st, 14),
        "created_ms", (json_int_t)sqlite3_column_int64(st, 15), "updated_ms",
        (json_int_t)sqlite3_column_int64(st, 16));
    json_object_set_new(o, "workspace", json_boolean(json_is_true(json_object_get(spec, "workspace"))));
    add_held(o, ctr_col_text(st, 17), spec);
    json_decref(spec);
    return o;
}

static json_t *list_locked(struct ctr *c, int64_t owner_id)
{
    static const char sql[] = "SELECT " COLS " FROM containers WHERE ?1 = 0 OR owner_id = ?1 ORDER BY id DESC";
    json_t *out = json_array();
    sqlite3_stmt *st = ctr_stmt(c, sql);

    if (!st)
        return out;
    sqlite3_bind_int64(st, 1, owner_id);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(out, row_json(st));
    sqlite3_reset(st);
    return out;
}

json_t *ctr_list(struct ctr *c, int64_t owner_id)
{
    pthread_mutex_lock(&c->lock);
    json_t *out = list_locked(c, owner_id);
    pthread_mutex_unlock(&c->lock);
    return out;
}

/* The list of everyone's containers is what dashboards poll, and with a
 * thousand rows rendering it costs tens of milliseconds: it is rendered
 * once per change of the database (every change goes through c->db, so
 * its count of changed rows says when) and copied out otherwise. A user's
 * own list is at most their quota of rows, rendered each time. */
char *ctr_list_text(struct ctr *c, int64_t owner_id, size_t *len)
{
    char *text;

    if (owner_id) {
        json_t *o = json_pack("{s:o}", "containers", ctr_list(c, owner_id));
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        *len = text ? strlen(text) : 0;
        return text;
    }
    pthread_mutex_lock(&c->lock);
    sqlite3_int64 version = sqlite3_total_changes64(c->db);
    if (c->list_text && c->list_version == version) {
        text = xmalloc(c->list_len + 1);
        memcpy(text, c->list_text, c->list_len + 1);
        *len = c->list_len;
        pthread_mutex_unlock(&c->lock);
        return text;
    }
    json_t *o = json_pack("{s:o}", "containers", list_locked(c, 0));
    pthread_mutex_unlock(&c->lock);
    /* rendered outside the lock; kept unless the database changed meanwhile */
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    *len = text ? strlen(text) : 0;
    if (!text)
        return NULL;
    pthread_mutex_lock(&c->lock);
    if (sqlite3_total_changes64(c->db) == version) {
        free(c->list_text);
        c->list_text = xmalloc(*len + 1);
        memcpy(c->list_text, text, *len + 1);
        c->list_len = *len;
        c->list_version = version;
    }
    pthread_mutex_unlock(&c->lock);
    return text;
}

/* One row as JSON; lock held. NULL with e (404) when not visible. */
json_t *ctr_get_locked(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    json_t *o = NULL;
    sqlite3_stmt *st = db_prepare(c->db, "SELECT " COLS " FROM containers"
                                         " WHERE id = ?1 AND (?2 = 0 OR owner_id = ?2)");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, owner_id);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        o = row_json(st);
    sqlite3_finalize(st);
    if (!o)
        errinfo_set(e, 404, "not_found", "id", "no container %lld", (long long)id);
    return o;
}

json_t *ctr_get(struct ctr *c, int64_t id, int64_t owner_id, struct errinfo *e)
{
    pthread_mutex_lock(&c->lock);
    json_t *o = ctr_get_locked(c, id, owner_id, e);
    pthread_mutex_unlock(&c->lock);
    return o;
}

void ctr_metrics(struct ctr *c, struct buf *out)
{
    pthread_mutex_lock(&c->lock);
    buf_puts(out, "# HELP gpufleet_server_containers Containers gpufleet manages, by state.\n"
                  "# TYPE gpufleet_server_containers gauge\n");
    sqlite3_stmt *st = db_prepare(c->db, "SELECT state, count(*) FROM containers GROUP BY state");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        buf_printf(out, "gpufleet_server_containers{state=\"%s\"} %lld\n", ctr_col_text(st, 0),
                   (long long)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    st = db_prepare(c->db, "SELECT count(*) FROM gpu_ledger");
    buf_printf(out, "# HELP gpufleet_server_gpus_held GPUs the ledger gives to containers.\n"
                    "# TYPE gpufleet_server_gpus_held gauge\n"
                    "gpufleet_server_gpus_held %lld\n",
               st && sqlite3_step(st) == SQLITE_ROW ? (long long)sqlite3_column_int64(st, 0) : 0LL);
    sqlite3_finalize(st);
    summary_write(out, "gpufleet_server_container_decision_seconds",
                  "Ledger decisions of creates (quota, placement, the row and its GPUs; lock held).",
                  &c->decisions);
    summary_write(out, "gpufleet_server_container_decision_cpu_seconds",
                  "CPU time of the same decisions (the rest of their time the thread waited for a core or the disk).",
                  &c->decisions_cpu);
    buf_printf(out, "# HELP gpufleet_server_container_conflicts Conflicts the last reconcile found.\n"
                    "# TYPE gpufleet_server_container_conflicts gauge\n"
                    "gpufleet_server_container_conflicts %zu\n",
               json_array_size(c->conflicts));
    pthread_mutex_unlock(&c->lock);
}
