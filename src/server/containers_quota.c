/* Quotas: the settings give every user the same limits; an admin may give
 * one user other limits (a row of the quotas table, NULL columns keeping
 * the setting). Checked in the create's decision, under the ledger lock. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../lib/ctrspec.h"
#include "../lib/now.h"
#include "containers_impl.h"
#include "store/db.h"

struct usage {
    int64_t containers, gpus, nano_cpus, memory_bytes;
};

static const char SQL_USAGE[] =
    "SELECT count(*), coalesce(sum(CASE WHEN holding THEN nano_cpus END), 0),"
    " coalesce(sum(CASE WHEN holding THEN memory_bytes END), 0),"
    " (SELECT count(*) FROM gpu_ledger g JOIN containers k ON k.id = g.container_id"
    "  WHERE k.owner_id = ?1)"
    " FROM containers WHERE owner_id = ?1 AND state != 'gone'";
static const char SQL_LIMITS[] =
    "SELECT containers, gpus, nano_cpus, memory_bytes FROM quotas WHERE user_id = ?1";

static void usage_of(struct ctr *c, int64_t owner_id, struct usage *u)
{
    sqlite3_stmt *st = ctr_stmt(c, SQL_USAGE);
    memset(u, 0, sizeof(*u));
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, owner_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        u->containers = sqlite3_column_int64(st, 0);
        u->nano_cpus = sqlite3_column_int64(st, 1);
        u->memory_bytes = sqlite3_column_int64(st, 2);
        u->gpus = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
}

/* The user's limits: the settings', overridden column by column. Whether
 * the user has an override. */
static int limits_of(struct ctr *c, int64_t user_id, struct usage *l)
{
    sqlite3_stmt *st = ctr_stmt(c, SQL_LIMITS);
    int own = 0;

    *l = (struct usage){c->cfg.quota_containers, c->cfg.quota_gpus, c->cfg.quota_nano_cpus,
                        c->cfg.quota_memory_bytes};
    if (!st)
        return 0;
    sqlite3_bind_int64(st, 1, user_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t *dst[] = {&l->containers, &l->gpus, &l->nano_cpus, &l->memory_bytes};
        for (int i = 0; i < 4; i++)
            if (sqlite3_column_type(st, i) != SQLITE_NULL)
                *dst[i] = sqlite3_column_int64(st, i);
        own = 1;
    }
    sqlite3_reset(st);
    return own;
}

static int over(struct errinfo *e, const char *field, const char *what, double used, double asked,
                double limit, const char *unit)
{
    errinfo_set(e, 409, "quota_exceeded", field,
                "quota: %s %.4g%s in use + %.4g%s asked is over the limit of %.4g%s", what, used,
                unit, asked, unit, limit, unit);
    return -1;
}

int ctr_check_quota(struct ctr *c, const struct auth_identity *who, int ngpus, int64_t nano_cpus,
                    int64_t memory_bytes, struct errinfo *e)
{
    struct usage u, q;

    if (who->role >= ROLE_ADMIN)
        return 0;
    usage_of(c, who->user_id, &u);
    limits_of(c, who->user_id, &q);
    if (u.containers + 1 > q.containers)
        return over(e, "containers", "containers", (double)u.containers, 1, (double)q.containers, "");
    if (u.gpus + ngpus > q.gpus)
        return over(e, "gpus", "GPUs", (double)u.gpus, ngpus, (double)q.gpus, "");
    if (u.nano_cpus + nano_cpus > q.nano_cpus)
        return over(e, "cpus", "CPUs", (double)u.nano_cpus / 1e9, (double)nano_cpus / 1e9,
                    (double)q.nano_cpus / 1e9, "");
    if (u.memory_bytes + memory_bytes > q.memory_bytes)
        return over(e, "memory", "memory", (double)u.memory_bytes / (1 << 20),
                    (double)memory_bytes / (1 << 20), (double)q.memory_bytes / (1 << 20), " MiB");
    return 0;
}

static json_t *figures_json(const struct usage *u)
{
    return json_pack("{s:I, s:I, s:f, s:I}", "containers", (json_int_t)u->containers, "gpus",
                     (json_int_t)u->gpus, "cpus", (double)u->nano_cpus / 1e9, "memory_bytes",
                     (json_int_t)u->memory_bytes);
}

json_t *ctr_quota_of(struct ctr *c, const struct auth_identity *who)
{
    struct usage u, l;

    pthread_mutex_lock(&c->lock);
    usage_of(c, who->user_id, &u);
    int own = limits_of(c, who->user_id, &l);
    pthread_mutex_unlock(&c->lock);
    return json_pack("{s:s, s:o, s:o, s:b, s:b}", "user", who->username, "use", figures_json(&u),
                     "limits", who->role >= ROLE_ADMIN ? json_null() : figures_json(&l), "own_limits",
                     own, "unlimited", who->role >= ROLE_ADMIN);
}

json_t *ctr_quotas(struct ctr *c)
{
    json_t *users = json_array();

    pthread_mutex_lock(&c->lock);
    struct usage d = {c->cfg.quota_containers, c->cfg.quota_gpus, c->cfg.quota_nano_cpus,
                      c->cfg.quota_memory_bytes};
    sqlite3_stmt *st = db_prepare(c->db, "SELECT user_id, username, containers, gpus, nano_cpus,"
                                         " memory_bytes, updated_ms FROM quotas ORDER BY username");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *o = json_pack("{s:I, s:s, s:I}", "user_id", (json_int_t)sqlite3_column_int64(st, 0),
                              "user", ctr_col_text(st, 1), "updated_ms",
                              (json_int_t)sqlite3_column_int64(st, 6));
        static const char *const keys[] = {"containers", "gpus", "cpus", "memory_bytes"};
        for (int i = 0; i < 4; i++) {
            json_t *v = json_null();
            if (sqlite3_column_type(st, i + 2) != SQLITE_NULL)
                v = i == 2 ? json_real((double)sqlite3_column_int64(st, i + 2) / 1e9)
                           : json_integer(sqlite3_column_int64(st, i + 2));
            json_object_set_new(o, keys[i], v);
        }
        json_array_append_new(users, o);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&c->lock);
    return json_pack("{s:o, s:o}", "defaults", figures_json(&d), "users", users);
}

/* One limit of a PUT body: absent or null keeps the setting (-1). */
static int limit_field(const json_t *body, const char *key, int64_t *out, struct errinfo *e)
{
    json_t *v = json_object_get(body, key);
    int64_t b;

    *out = -1;
    if (!v || json_is_null(v))
        return 0;
    if (!strcmp(key, "memory")) {
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            *out = json_integer_value(v);
            return 0;
        }
        if (json_is_string(v) && ctrspec_parse_memory(json_string_value(v), &b) == 0) {
            *out = b;
            return 0;
        }
        errinfo_set(e, 400, "invalid_field", key, "memory is bytes or a size like 64g, or null for the setting");
        return -1;
    }
    if (!strcmp(key, "cpus")) {
        double x = json_number_value(v);
        if (!json_is_number(v) || !isfinite(x) || x < 0 || x > 1e6) {
            errinfo_set(e, 400, "invalid_field", key, "cpus is a number of CPUs (0-1000000), or null for the setting");
            return -1;
        }
        *out = (int64_t)llround(x * 1e9);
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
        errinfo_set(e, 400, "invalid_field", key, "%s is a whole number (0-1000000), or null for the setting", key);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static void bind_limit(sqlite3_stmt *st, int i, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

int ctr_quota_set(struct ctr *c, int64_t user_id, const char *username, const json_t *body,
                  struct errinfo *e)
{
    static const char *const keys[] = {"containers", "gpus", "cpus", "memory"};
    int64_t v[4];
    const char *k;
    json_t *x;

    if (!json_is_object(body)) {
        errinfo_set(e, 400, "invalid_body", NULL, "the body is a JSON object of containers, gpus, cpus, memory");
        return -1;
    }
    json_object_foreach((json_t *)body, k, x) {
        int known = 0;
        for (int i = 0; i < 4; i++)
            known |= !strcmp(k, keys[i]);
        if (!known) {
            errinfo_set(e, 400, "invalid_field", k, "unknown field %.40s: quotas are containers, gpus, cpus, memory", k);
            return -1;
        }
    }
    for (int i = 0; i < 4; i++)
        if (limit_field(body, keys[i], &v[i], e) < 0)
            return -1;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *st = db_prepare(c->db, "INSERT OR REPLACE INTO quotas (user_id, username, containers,"
                                         " gpus, nano_cpus, memory_bytes, updated_ms)"
                                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    int rc = -1;
    if (st) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_text(st, 2, username, -1, SQLITE_STATIC);
        for (int i = 0; i < 4; i++)
            bind_limit(st, i + 3, v[i]);
        sqlite3_bind_int64(st, 7, now_wall_ms());
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        errinfo_set(e, 500, "internal", NULL, "the containers database refused the quota");
    return rc;
}

int ctr_quota_delete(struct ctr *c, int64_t user_id, struct errinfo *e)
{
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *st = db_prepare(c->db, "DELETE FROM quotas WHERE user_id = ?1");
    int rc = -1;
    if (st) {
        sqlite3_bind_int64(st, 1, user_id);
        rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(c->db) : -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&c->lock);
    if (rc <= 0) {
        errinfo_set(e, rc < 0 ? 500 : 404, rc < 0 ? "internal" : "not_found", "user",
                    rc < 0 ? "the containers database refused" : "that user has no limits of their own");
        return -1;
    }
    return 0;
}
