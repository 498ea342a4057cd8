/* The reconcile loop (the database against every host's engine; it
 * reports conflicts and never stops a user's work), and the fleet's GPUs
 * with their holders. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "agentcall.h"
#include "containers_impl.h"
#include "store/db.h"

/* ---- the fleet's GPUs ---- */

static const char SQL_HOLDER[] =
    "SELECT k.id, k.name, k.owner, g.since_ms, k.state FROM gpu_ledger g"
    " JOIN containers k ON k.id = g.container_id WHERE g.server_id = ?1 AND g.uuid = ?2";

static json_t *holder_of(struct ctr *c, int64_t server_id, const char *uuid)
{
    json_t *h = json_null();
    sqlite3_stmt *st = ctr_stmt(c, SQL_HOLDER);
    if (!st)
        return h;
    sqlite3_bind_int64(st, 1, server_id);
    sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        h = json_pack("{s:I, s:s, s:s, s:I, s:s}", "container_id",
                      (json_int_t)sqlite3_column_int64(st, 0), "name", ctr_col_text(st, 1), "owner",
                      ctr_col_text(st, 2), "since_ms", (json_int_t)sqlite3_column_int64(st, 3),
                      "state", ctr_col_text(st, 4));
    sqlite3_reset(st);
    return h;
}

json_t *ctr_gpus(struct ctr *c)
{
    size_t n = 0, i;
    struct cand *v = ctr_cands_read(c, &n);
    json_t *out = json_array(), *g;

    pthread_mutex_lock(&c->lock);
    for (size_t k = 0; k < n; k++)
        json_array_foreach(json_object_get(v[k].live, "gpus"), i, g) {
            const char *uuid = json_string_value(json_object_get(g, "uuid"));
            if (!uuid)
                continue;
            json_array_append_new(out, json_pack("{s:s, s:s, s:O?, s:O?, s:O?, s:O?, s:O?, s:o}",
                                                 "server", v[k].agent.server, "uuid", uuid,
                                                 "parent_uuid", json_object_get(g, "parent_uuid"),
                                                 "index", json_object_get(g, "index"), "model",
                                                 json_object_get(g, "model"), "fb_total_mib",
                                                 json_object_get(g, "fb_total_mib"), "util_percent",
                                                 json_object_get(g, "util_percent"), "holder",
                                                 holder_of(c, v[k].agent.server_id, uuid)));
        }
    json_t *res = json_pack("{s:o, s:O}", "gpus", out, "conflicts", c->conflicts);
    pthread_mutex_unlock(&c->lock);
    ctr_cands_free(v, n);
    return res;
}

json_t *ctr_unmanaged(struct ctr *c, struct errinfo *e)
{
    size_t n = 0, i;
    struct cand *v = ctr_cands_read(c, &n);
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
    ctr_cands_free(v, n);
    return out;
}

int ctr_unmanaged_act(struct ctr *c, const char *server, const char *engine_id, const char *action,
                      struct errinfo *e)
{
    struct reg_target agent;
    char path[400];
    const char *method = "POST";
    json_t *ok;

    /* a path segment of the agent's API: an engine id or name, nothing
     * that could reach another of its routes */
    size_t n = strlen(engine_id);
    if (!n || n > 128 || engine_id[0] == '.' || engine_id[0] == '-' ||
        strspn(engine_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n) {
        errinfo_set(e, 400, "invalid_field", "id", "a container id or name is [A-Za-z0-9_.-], 1-128");
        return -1;
    }
    if (agentcall_find(c->app->reg, server, 0, "server", &agent, e) < 0)
        return -1;
    if (!strcmp(action, "remove")) {
        method = "DELETE";
        snprintf(path, sizeof(path), "/api/v1/engine/containers/%.128s?unmanaged=1", engine_id);
    } else if (!strcmp(action, "start") || !strcmp(action, "stop") || !strcmp(action, "restart")) {
        snprintf(path, sizeof(path), "/api/v1/engine/containers/%.128s/%s?unmanaged=1", engine_id, action);
    } else {
        errinfo_set(e, 400, "invalid_field", "action", "actions are start, stop, restart and remove");
        return -1;
    }
    if (!(ok = agentcall(&agent, method, path, NULL, 90, e)))
        return -1;
    json_decref(ok);
    return 0;
}

/* ---- reconcile ---- */

/* The engine's containers by engine id and by our id label ("#ID"), so a
 * pass over a host is linear in its containers. New reference. */
static json_t *engine_index(json_t *list)
{
    json_t *idx = json_object(), *x;
    size_t i;
    char key[32];

    json_array_foreach(list, i, x) {
        const char *eid = json_string_value(json_object_get(x, "id"));
        if (eid)
            json_object_set(idx, eid, x);
        if (json_is_true(json_object_get(x, "managed"))) {
            snprintf(key, sizeof(key), "#%lld", (long long)json_integer_value(json_object_get(x, "gf_id")));
            json_object_set(idx, key, x);
        }
    }
    return idx;
}

/* The engine container of a row: by engine id, else by our label. */
static json_t *engine_find(json_t *idx, const char *engine_id, int64_t id)
{
    char key[32];
    json_t *x = engine_id[0] ? json_object_get(idx, engine_id) : NULL;

    if (x)
        return x;
    snprintf(key, sizeof(key), "#%lld", (long long)id);
    return json_object_get(idx, key);
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

static const char SQL_LEDGER_ON[] = "SELECT g.uuid, c.name FROM gpu_ledger g JOIN containers c ON c.id = g.container_id"
                                    " WHERE g.server_id = ?1";

/* Ledger entries whose GPU or MIG device the host no longer reports (a
 * GPU fallen off the bus, a MIG device destroyed): flagged, never released
 * behind the user's back. Only against a host that has been scraped. Lock
 * held. */
static void vanished(struct ctr *c, const struct cand *h, json_t *conflicts)
{
    json_t *units = json_object_get(h->live, "gpus"), *u, *present;
    size_t i;

    if (!json_is_array(units) || json_integer_value(json_object_get(h->live, "ts_ms")) <= 0)
        return;
    present = json_object();
    json_array_foreach(units, i, u) /* flattened: what can be held now */
        if (json_string_value(json_object_get(u, "uuid")))
            json_object_set_new(present, json_string_value(json_object_get(u, "uuid")), json_true());
    sqlite3_stmt *st = ctr_stmt(c, SQL_LEDGER_ON);
    if (st) {
        sqlite3_bind_int64(st, 1, h->agent.server_id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *uuid = ctr_col_text(st, 0);
            if (!json_object_get(present, uuid))
                conflict(conflicts, h->agent.server, "vanished",
                         "GPU %s held by container %s is no longer reported by the host (fallen off the bus, "
                         "or a MIG device destroyed); the ledger keeps it until the container is removed",
                         uuid, ctr_col_text(st, 1));
        }
        sqlite3_reset(st);
    }
    json_decref(present);
}

/* One host: rows against what its engine has. Lock held. Whether anything
 * changed. */
static int reconcile_host(struct ctr *c, const struct cand *h, json_t *list, json_t *conflicts)
{
    int changed = 0;
    int64_t now = now_wall_ms();
    sqlite3_stmt *st = db_prepare(c->db, "SELECT id, engine_id, state, holding, updated_ms, name"
                                         " FROM containers WHERE server_id = ?1");
    json_t *seen = json_object(), *idx = engine_index(list);
    struct row r;
    struct errinfo e;

    sqlite3_bind_int64(st, 1, h->agent.server_id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *state = ctr_col_text(st, 2);
        json_t *x = engine_find(idx, ctr_col_text(st, 1), id);
        char key[32];
        snprintf(key, sizeof(key), "%lld", (long long)id);
        json_object_set_new(seen, key, json_true());
        if (!x) {
            /* creates in flight have no engine container yet */
            if (!strcmp(state, "gone") || !strcmp(state, "failed") ||
                (!strcmp(state, "creating") && now - sqlite3_column_int64(st, 4) < 120000))
                continue;
            log_warn("container %s (%lld) on %s was removed outside gpufleet: its GPUs and ports are free",
                     ctr_col_text(st, 5), (long long)id, h->agent.server);
            ctr_release(c, id);
            ctr_set_state(c, id, NULL, "gone", "removed outside gpufleet");
            changed = 1;
            continue;
        }
        const char *es = json_string_value(json_object_get(x, "state")) ?: "";
        if (!strcmp(es, "running") && !sqlite3_column_int(st, 3) &&
            ctr_row_read(c, id, 0, &r, &e) == 0) {
            /* started behind gpufleet's back while it held nothing */
            if (ctr_retake(c, &r, &e) < 0)
                conflict(conflicts, h->agent.server, "gpu", "container %s runs without its GPUs or ports: %s",
                         ctr_col_text(st, 5), e.message);
            json_decref(r.spec);
        }
        /* a create whose server died before it recorded the result is
         * taken as the engine has it once it is old */
        int stale_create = !strcmp(state, "creating") && now - sqlite3_column_int64(st, 4) >= 120000;
        if (strcmp(es, state) && (strcmp(state, "creating") || stale_create)) {
            ctr_set_state(c, id, json_string_value(json_object_get(x, "id")), es, NULL);
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
    json_decref(idx);
    vanished(c, h, conflicts);
    return changed;
}

void ctr_reconcile(struct ctr *c)
{
    size_t n = 0;
    struct cand *v = ctr_cands_read(c, &n);
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
    ctr_cands_free(v, n);
    if (changed)
        ctr_announce(c);
}

static void *reconcile_loop(void *arg)
{
    struct ctr *c = arg;

    for (;;) {
        ctr_reconcile(c);
        if (c->ckpt)
            sqlite3_wal_checkpoint_v2(c->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
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
    /* SQLite checkpoints the WAL in the commit that fills it (1,000 pages),
     * so that create's decision, under the lock, would wait on the disk: the
     * loop does it instead, on a connection of its own, without the lock
     * (a passive checkpoint never waits for the writer, nor it for one) */
    const char *path = sqlite3_db_filename(c->db, "main");
    if (path && sqlite3_open_v2(path, &c->ckpt, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK) {
        db_exec(c->db, "PRAGMA wal_autocheckpoint=0");
    } else {
        sqlite3_close(c->ckpt);
        c->ckpt = NULL;
    }
    if (pthread_create(&c->thread, NULL, reconcile_loop, c))
        return -1;
    c->running = 1;
    return 0;
}
