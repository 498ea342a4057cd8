/* The ledger decisions: quotas, placement, the GPU and port ledgers, and
 * the row updates that take and give back what a container holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "agentcall.h"
#include "containers_impl.h"
#include "fleet.h"
#include "store/db.h"

/* ---- what the fleet has ---- */

void ctr_cands_free(struct cand *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(v[i].live);
    free(v);
}

/* What the ledger hands out on a host: each GPU, or where a GPU is in MIG
 * mode its MIG devices instead (a MIG device has its own UUID, which
 * Docker's DeviceIDs and the CDI names take; the GPU itself is then not
 * given whole). A MIG device's model is "<GPU model> MIG <profile>", so a
 * request for model "1g.10gb" finds it; its memory is its own. */
static void flatten_migs(json_t *live)
{
    json_t *gpus = json_object_get(live, "gpus"), *units, *g, *m;
    size_t i, j;

    if (!json_is_array(gpus))
        return;
    units = json_array();
    json_array_foreach(gpus, i, g) {
        json_t *migs = json_object_get(g, "mig_devices");
        if (json_is_false(json_object_get(g, "present")))
            continue; /* gone from the host: never placed on (reconcile flags its holder) */
        if (!json_array_size(migs)) {
            json_array_append(units, g);
            continue;
        }
        json_array_foreach(migs, j, m) {
            char model[200];
            snprintf(model, sizeof(model), "%s MIG %s", json_string_value(json_object_get(g, "model")) ?: "",
                     json_string_value(json_object_get(m, "profile")) ?: "");
            json_array_append_new(units, json_pack("{s:O, s:O?, s:s, s:O?, s:O?, s:O?}", "uuid",
                                                   json_object_get(m, "uuid"), "index", json_object_get(g, "index"),
                                                   "model", model, "fb_total_mib", json_object_get(m, "fb_total_mib"),
                                                   "parent_uuid", json_object_get(g, "uuid"), "util_percent",
                                                   json_object_get(g, "util_percent")));
        }
    }
    json_object_set_new(live, "gpus", units);
}

/* Every agent with a token, with what its last scrape said. Taken before
 * the ledger lock: the registry and the fleet have locks of their own. */
struct cand *ctr_cands_read(struct ctr *c, size_t *n)
{
    struct reg_target *all = NULL;
    size_t nall = reg_targets(c->app->reg, 0, 0, &all), k = 0;
    struct cand *v = xcalloc(nall ? nall : 1, sizeof(*v));

    for (size_t i = 0; i < nall; i++) {
        if (!all[i].is_agent || !all[i].token[0])
            continue;
        v[k].agent = all[i];
        v[k].live = c->app->fleet ? fleet_server_json(c->app->fleet, all[i].server) : NULL;
        flatten_migs(v[k].live);
        k++;
    }
    free(all);
    *n = k;
    return v;
}

/* ---- placement (lock held) ---- */

static const char SQL_HELD[] = "SELECT 1 FROM gpu_ledger WHERE server_id = ?1 AND uuid = ?2";
static const char SQL_HELD_ON[] = "SELECT uuid FROM gpu_ledger WHERE server_id = ?1";

static int gpu_held(struct ctr *c, int64_t server_id, const char *uuid)
{
    sqlite3_stmt *st = ctr_stmt(c, SQL_HELD);
    int held;
    if (!st)
        return 1; /* unknown: not handed out */
    sqlite3_bind_int64(st, 1, server_id);
    sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
    held = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return held;
}

/* The GPUs held on a host, in one statement rather than one per GPU. A
 * new array of UUIDs; NULL when it cannot be read (then none is free). */
static json_t *held_on(struct ctr *c, int64_t server_id)
{
    sqlite3_stmt *st = ctr_stmt(c, SQL_HELD_ON);
    json_t *out;
    if (!st)
        return NULL;
    out = json_array();
    sqlite3_bind_int64(st, 1, server_id);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(out, json_string(ctr_col_text(st, 0)));
    sqlite3_reset(st);
    return out;
}

static int in_list(const json_t *list, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x)
        if (!strcmp(json_string_value(x), s))
            return 1;
    return 0;
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
    json_t *g, *held = held_on(c, h->agent.server_id);

    if (!held)
        return 0;
    json_array_foreach(json_object_get(h->live, "gpus"), i, g) {
        const char *uuid = json_string_value(json_object_get(g, "uuid"));
        if (!uuid || !gpu_fits(g, s) || in_list(held, uuid))
            continue;
        if (n < max)
            out[n] = uuid;
        n++;
    }
    json_decref(held);
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
int ctr_place(struct ctr *c, struct cand *v, size_t n, struct ctrspec *s, struct errinfo *e)
{
    const char *pick[CTRSPEC_MAX_GPUS];
    int best = -1, named = 0;
    double best_score = 0;

    for (size_t i = 0; i < n; i++) {
        struct cand *h = &v[i];
        if (s->host[0] && strcmp(h->agent.server, s->host))
            continue;
        named = 1;
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
        if (s->host[0] && !named)
            errinfo_set(e, 404, "not_found", "host", "no server %s with an agent token", s->host);
        else if (s->ngpus)
            errinfo_set(e, 409, "no_room", "gpus", "no host%s%s has GPU %s", s->host[0] ? " " : "",
                        s->host, s->gpus[0]);
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

static const char SQL_HOLD[] =
    "INSERT INTO gpu_ledger (server_id, uuid, container_id, since_ms) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_ROW[] =
    "INSERT INTO containers (name, owner_id, owner, server_id, server, image, spec, request, ngpus,"
    " nano_cpus, memory_bytes, state, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
    " ?8, ?9, ?10, ?11, 'creating', ?12, ?12)";

static int insert_gpus(struct ctr *c, int64_t server_id, int64_t id, const struct ctrspec *s,
                       int64_t now, struct errinfo *e)
{
    sqlite3_stmt *st = ctr_stmt(c, SQL_HOLD);
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
    if (st)
        sqlite3_reset(st);
    return st ? rc : -1;
}

/* The container's row and its GPUs, in one transaction. Its id, or -1. */
int64_t ctr_reserve(struct ctr *c, const struct auth_identity *who, const struct cand *h,
                       const struct ctrspec *s, const char *request, struct errinfo *e)
{
    int64_t now = now_wall_ms(), id = -1;
    json_t *spec = ctrspec_agent_json(s);
    char *spec_text = json_dumps(spec, JSON_COMPACT);
    sqlite3_stmt *st = NULL;

    db_exec(c->db, "BEGIN IMMEDIATE");
    st = ctr_stmt(c, SQL_ROW);
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
    sqlite3_reset(st);
    if (insert_gpus(c, h->agent.server_id, id, s, now, e) < 0)
        goto fail;
    db_exec(c->db, "COMMIT");
    goto out;
fail:
    id = -1;
    if (st)
        sqlite3_reset(st);
    db_exec(c->db, "ROLLBACK");
out:
    free(spec_text);
    json_decref(spec);
    return id;
}

/* ---- ports ---- */

static void port_set(struct portset *p, int udp, unsigned port)
{
    p->bits[udp][port / 8] |= (uint8_t)(1u << (port % 8));
}

static int port_isset(const struct portset *p, int udp, unsigned port)
{
    return p->bits[udp][port / 8] & (1u << (port % 8));
}

/* The host's listening sockets, from its agent. 0 or -1 with e. */
int ctr_host_ports(const struct reg_target *agent, struct portset *p, struct errinfo *e)
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
int ctr_assign_ports(struct ctr *c, int64_t server_id, int64_t id, struct ctrspec *s,
                        struct portset *p, struct errinfo *e)
{
    sqlite3_stmt *st = db_prepare(c->db, "SELECT host_port, proto FROM port_ledger WHERE server_id = ?1");
    sqlite3_stmt *ins = NULL;
    int rc = -1;

    sqlite3_bind_int64(st, 1, server_id);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        port_set(p, !strcmp(ctr_col_text(st, 1), "udp"), (unsigned)sqlite3_column_int(st, 0));
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

void ctr_set_spec(struct ctr *c, int64_t id, const struct ctrspec *s)
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

void ctr_set_state(struct ctr *c, int64_t id, const char *engine_id, const char *state,
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

void ctr_delete_row(struct ctr *c, int64_t id)
{
    sqlite3_stmt *st = db_prepare(c->db, "DELETE FROM containers WHERE id = ?1");
    sqlite3_bind_int64(st, 1, id);
    if (st)
        sqlite3_step(st);
    sqlite3_finalize(st);
}

/* Gives back a container's GPUs and ports (stopped, or gone). */
void ctr_release(struct ctr *c, int64_t id)
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

int ctr_row_read(struct ctr *c, int64_t id, int64_t owner_id, struct row *r, struct errinfo *e)
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
        snprintf(r->server, sizeof(r->server), "%s", ctr_col_text(st, 1));
        snprintf(r->engine_id, sizeof(r->engine_id), "%s", ctr_col_text(st, 2));
        snprintf(r->state, sizeof(r->state), "%s", ctr_col_text(st, 3));
        r->holding = sqlite3_column_int(st, 4);
        r->spec = json_loads(ctr_col_text(st, 5), 0, NULL);
        rc = 0;
    }
    sqlite3_finalize(st);
    if (rc < 0)
        errinfo_set(e, 404, "not_found", "id", "no container %lld", (long long)id);
    return rc;
}

/* Takes back the GPUs and ports of a stopped container: the same ones, as
 * its engine container is bound to them. Lock held. */
int ctr_retake(struct ctr *c, const struct row *r, struct errinfo *e)
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
    if (ctr_assign_ports(c, r->server_id, r->id, &s, p, e) < 0) {
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

/* New GPUs and host ports on the same host for a container whose old ones
 * were given away while it was stopped. Lock held. */
int ctr_renew(struct ctr *c, const struct row *r, struct ctrspec *s, struct cand *v, size_t n,
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
    rc = ctr_assign_ports(c, r->server_id, r->id, s, p, e);
    free(p);
    if (rc < 0) {
        ctr_release(c, r->id);
        return -1;
    }
    ctr_set_spec(c, r->id, s);
    sqlite3_stmt *st = db_prepare(c->db, "UPDATE containers SET holding = 1 WHERE id = ?1");
    sqlite3_bind_int64(st, 1, r->id);
    if (st)
        sqlite3_step(st);
    sqlite3_finalize(st);
    return 0;
}
