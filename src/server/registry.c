/* Fleet registry on SQLite. Validation lives here so the API, the CLI and
 * the config file all refuse the same things with the same field names. */
#include "registry.h"

#include <ctype.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "store/db.h"

#define MAX_TARGETS 16
#define MAX_LABELS 32

static const struct db_migration steps[] = {
    {"servers, targets, events",
     "CREATE TABLE servers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
     " address TEXT NOT NULL, agent_port INTEGER NOT NULL, agent_token TEXT,"
     " labels TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL DEFAULT 'unknown',"
     " status_since_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
     " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE TABLE targets (id INTEGER PRIMARY KEY,"
     " server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,"
     " name TEXT NOT NULL, url TEXT NOT NULL, interval_ms INTEGER NOT NULL DEFAULT 0,"
     " UNIQUE (server_id, name));"
     "CREATE TABLE server_events (id INTEGER PRIMARY KEY,"
     " server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,"
     " ts_ms INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX server_events_by_server ON server_events (server_id, ts_ms);"},
};

struct registry {
    pthread_mutex_t lock;
    sqlite3 *db;
    uint64_t version;
    reg_status_fn on_status;
    void *on_status_arg;
};


struct registry *reg_open(const char *path, char *err, size_t errlen)
{
    struct registry *r = xcalloc(1, sizeof(*r));

    r->db = db_open(path, steps, sizeof(steps) / sizeof(steps[0]), err, errlen);
    if (!r->db) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->version = 1;
    return r;
}

void reg_close(struct registry *r)
{
    if (!r)
        return;
    sqlite3_close(r->db);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

uint64_t reg_version(struct registry *r)
{
    return __atomic_load_n(&r->version, __ATOMIC_ACQUIRE);
}

static void bump(struct registry *r)
{
    __atomic_add_fetch(&r->version, 1, __ATOMIC_ACQ_REL);
}

/* ---- validation ---- */

static int valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return 0;
    return 1;
}

static int valid_label_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !(isalpha((unsigned char)s[0]) || s[0] == '_') ||
        !strncmp(s, "__", 2))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

static int valid_address(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(".-:_", s[i]))
            return 0;
    return 1;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* Checks an http(s) URL and extracts host:port for the instance label. */
static int valid_url(const char *url, char *instance, size_t cap)
{
    const char *p;
    size_t n = strlen(url);

    if (n > 2048 || !printable(url))
        return 0;
    if (!strncmp(url, "http://", 7))
        p = url + 7;
    else if (!strncmp(url, "https://", 8))
        p = url + 8;
    else
        return 0;
    size_t hl = strcspn(p, "/?#");
    if (hl == 0 || hl >= cap || memchr(p, '@', hl))
        return 0;
    memcpy(instance, p, hl);
    instance[hl] = '\0';
    return 1;
}

/* The body's fields, checked. Pointers borrow from the JSON. */
struct server_in {
    const char *name, *address, *token;
    int64_t port;
    int has_port, has_token, has_labels, has_targets;
    const json_t *labels, *targets;
};

/* Refuses fields a server does not have. */
static int check_known(const json_t *body, struct errinfo *e)
{
    static const char *known[] = {"name", "address", "agent_port", "agent_token", "labels",
                                  "targets"};
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)body, k, v) {
        int ok = 0;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= !strcmp(k, known[i]);
        if (!ok) {
            errinfo_set(e, 400, "invalid_field", k, "unknown field '%.60s'", k);
            return -1;
        }
    }
    return 0;
}

/* name, address, agent_port and agent_token. */
static int check_agent(const json_t *body, int creating, struct server_in *in, struct errinfo *e)
{
    json_t *v = json_object_get(body, "name");
    if (v) {
        if (!json_is_string(v) || !valid_name(json_string_value(v), 64)) {
            errinfo_set(e, 400, "invalid_field", "name",
                        "name must be 1-64 letters, digits, '.', '_' or '-'");
            return -1;
        }
        in->name = json_string_value(v);
    } else if (creating) {
        errinfo_set(e, 400, "invalid_field", "name", "name is required");
        return -1;
    }
    v = json_object_get(body, "address");
    if (v) {
        if (!json_is_string(v) || !valid_address(json_string_value(v))) {
            errinfo_set(e, 400, "invalid_field", "address",
                        "address must be a host name or IP address");
            return -1;
        }
        in->address = json_string_value(v);
    } else if (creating) {
        errinfo_set(e, 400, "invalid_field", "address", "address is required");
        return -1;
    }
    v = json_object_get(body, "agent_port");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
            errinfo_set(e, 400, "invalid_field", "agent_port", "agent_port must be 1-65535");
            return -1;
        }
        in->port = json_integer_value(v);
        in->has_port = 1;
    }
    v = json_object_get(body, "agent_token");
    if (v && !json_is_null(v)) {
        const char *t = json_is_string(v) ? json_string_value(v) : NULL;
        if (!t || strlen(t) < 16 || strlen(t) > 512 || !printable(t)) {
            errinfo_set(e, 400, "invalid_field", "agent_token",
                        "agent_token must be 16-512 printable characters");
            return -1;
        }
        in->token = t;
        in->has_token = 1;
    } else if (v) {
        in->has_token = 1; /* null clears it */
    }
    return 0;
}

static int check_labels(const json_t *v, struct errinfo *e)
{
    const char *lk;
    json_t *lv;

    if (!json_is_object(v) || json_object_size(v) > MAX_LABELS) {
        errinfo_set(e, 400, "invalid_field", "labels",
                    "labels must be an object of at most %d strings", MAX_LABELS);
        return -1;
    }
    json_object_foreach((json_t *)v, lk, lv) {
        if (!valid_label_name(lk) || !json_is_string(lv) || strlen(json_string_value(lv)) > 256) {
            errinfo_set(e, 400, "invalid_field", "labels",
                        "label '%.60s': names are [a-zA-Z_][a-zA-Z0-9_]* (not __*), values "
                        "strings of at most 256 bytes",
                        lk);
            return -1;
        }
    }
    return 0;
}

/* One target of targets[i]; the names before it are unique already. */
static int check_target(const json_t *all, size_t i, const json_t *t, struct errinfo *e)
{
    char inst[300], field[64];
    json_t *tn = json_object_get(t, "name"), *tu = json_object_get(t, "url"),
           *ti = json_object_get(t, "interval_ms");

    snprintf(field, sizeof(field), "targets[%zu]", i);
    if (!json_is_object(t)) {
        errinfo_set(e, 400, "invalid_field", field, "a target is an object");
        return -1;
    }
    if (!json_is_string(tn) || !valid_name(json_string_value(tn), 64)) {
        snprintf(field, sizeof(field), "targets[%zu].name", i);
        errinfo_set(e, 400, "invalid_field", field,
                    "a target name is 1-64 letters, digits, '.', '_' or '-'");
        return -1;
    }
    if (!json_is_string(tu) || !valid_url(json_string_value(tu), inst, sizeof(inst))) {
        snprintf(field, sizeof(field), "targets[%zu].url", i);
        errinfo_set(e, 400, "invalid_field", field,
                    "a target url is http:// or https:// with a host, without credentials");
        return -1;
    }
    if (ti && (!json_is_integer(ti) || json_integer_value(ti) < 1000 ||
               json_integer_value(ti) > 3600000)) {
        snprintf(field, sizeof(field), "targets[%zu].interval_ms", i);
        errinfo_set(e, 400, "invalid_field", field, "interval_ms must be 1000-3600000");
        return -1;
    }
    for (size_t j = 0; j < i; j++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(all, j), "name")),
                    json_string_value(tn))) {
            snprintf(field, sizeof(field), "targets[%zu].name", i);
            errinfo_set(e, 409, "conflict", field, "two targets named '%s'",
                        json_string_value(tn));
            return -1;
        }
    return 0;
}

static int check_body(const json_t *body, int creating, struct server_in *in, struct errinfo *e)
{
    json_t *v;

    memset(in, 0, sizeof(*in));
    if (!json_is_object(body)) {
        errinfo_set(e, 400, "invalid_body", NULL, "the body must be a JSON object");
        return -1;
    }
    if (check_known(body, e) < 0 || check_agent(body, creating, in, e) < 0)
        return -1;
    if ((v = json_object_get(body, "labels"))) {
        if (check_labels(v, e) < 0)
            return -1;
        in->labels = v;
        in->has_labels = 1;
    }
    if ((v = json_object_get(body, "targets"))) {
        size_t i;
        json_t *t;
        if (!json_is_array(v) || json_array_size(v) > MAX_TARGETS) {
            errinfo_set(e, 400, "invalid_field", "targets",
                        "targets must be an array of at most %d targets", MAX_TARGETS);
            return -1;
        }
        json_array_foreach(v, i, t)
            if (check_target(v, i, t, e) < 0)
                return -1;
        in->targets = v;
        in->has_targets = 1;
    }
    return 0;
}

int reg_validate(const json_t *body, struct errinfo *e)
{
    struct server_in in;
    return check_body(body, 1, &in, e);
}

/* ---- reading ---- */

static json_t *row_json(struct registry *r, sqlite3_stmt *st)
{
    int64_t id = sqlite3_column_int64(st, 0);
    json_error_t jerr;
    json_t *labels = json_loads((const char *)sqlite3_column_text(st, 5), 0, &jerr);
    json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:b, s:o, s:s, s:I, s:s, s:I, s:I}", "id",
                          (json_int_t)id, "name", sqlite3_column_text(st, 1), "address",
                          sqlite3_column_text(st, 2), "agent_port",
                          (json_int_t)sqlite3_column_int64(st, 3), "agent_token_set",
                          sqlite3_column_type(st, 4) != SQLITE_NULL, "labels",
                          labels ? labels : json_object(), "status", sqlite3_column_text(st, 6),
                          "status_since_ms", (json_int_t)sqlite3_column_int64(st, 7),
                          "last_error", sqlite3_column_text(st, 8), "created_ms",
                          (json_int_t)sqlite3_column_int64(st, 9), "updated_ms",
                          (json_int_t)sqlite3_column_int64(st, 10));
    json_t *targets = json_array();
    sqlite3_stmt *ts = db_prepare(r->db, "SELECT name, url, interval_ms FROM targets"
                                         " WHERE server_id = ? ORDER BY id");
    if (ts) {
        sqlite3_bind_int64(ts, 1, id);
        while (sqlite3_step(ts) == SQLITE_ROW) {
            json_t *t = json_pack("{s:s, s:s}", "name", sqlite3_column_text(ts, 0), "url",
                                  sqlite3_column_text(ts, 1));
            if (sqlite3_column_int64(ts, 2))
                json_object_set_new(t, "interval_ms", json_integer(sqlite3_column_int64(ts, 2)));
            json_array_append_new(targets, t);
        }
        sqlite3_finalize(ts);
    }
    json_object_set_new(o, "targets", targets);
    return o;
}

#define SERVER_COLS                                                                                \
    "id, name, address, agent_port, agent_token, labels, status, status_since_ms, last_error,"    \
    " created_ms, updated_ms"

json_t *reg_list(struct registry *r)
{
    json_t *arr = json_array();

    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st = db_prepare(r->db, "SELECT " SERVER_COLS " FROM servers ORDER BY name");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, row_json(r, st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->lock);
    return arr;
}

static json_t *get_locked(struct registry *r, int64_t id, struct errinfo *err)
{
    json_t *o = NULL;
    sqlite3_stmt *st = db_prepare(r->db, "SELECT " SERVER_COLS " FROM servers WHERE id = ?");

    if (!st) {
        errinfo_set(err, 500, "internal", NULL, "database error");
        return NULL;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        o = row_json(r, st);
    else
        errinfo_set(err, 404, "not_found", "id", "no server with id %lld", (long long)id);
    sqlite3_finalize(st);
    return o;
}

json_t *reg_get(struct registry *r, int64_t id, struct errinfo *err)
{
    pthread_mutex_lock(&r->lock);
    json_t *o = get_locked(r, id, err);
    pthread_mutex_unlock(&r->lock);
    return o;
}

/* ---- writing ---- */

static int write_targets(struct registry *r, int64_t id, const json_t *targets)
{
    sqlite3_stmt *del = db_prepare(r->db, "DELETE FROM targets WHERE server_id = ?");
    sqlite3_stmt *ins = db_prepare(r->db, "INSERT INTO targets (server_id, name, url, interval_ms)"
                                          " VALUES (?, ?, ?, ?)");
    size_t i;
    json_t *t;
    int rc = -1;

    if (!del || !ins)
        goto done;
    sqlite3_bind_int64(del, 1, id);
    if (sqlite3_step(del) != SQLITE_DONE)
        goto done;
    json_array_foreach(targets, i, t) {
        json_t *ti = json_object_get(t, "interval_ms");
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_text(ins, 2, json_string_value(json_object_get(t, "name")), -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, json_string_value(json_object_get(t, "url")), -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, ti ? json_integer_value(ti) : 0);
        if (sqlite3_step(ins) != SQLITE_DONE)
            goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return rc;
}

static int is_conflict(sqlite3 *db)
{
    return sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE;
}

/* Reports a failed write of the server row (a taken name is a 409) and
 * rolls the transaction back. */
static void write_failed(struct registry *r, const char *name, struct errinfo *err)
{
    if (is_conflict(r->db))
        errinfo_set(err, 409, "conflict", "name", "a server named '%s' exists", name);
    else
        errinfo_set(err, 500, "internal", NULL, "database error: %s", sqlite3_errmsg(r->db));
    db_exec(r->db, "ROLLBACK");
}

/* Writes the targets (when given), commits, and returns the server as
 * stored; on failure rolls back and returns NULL with err set. */
static json_t *finish_write(struct registry *r, int64_t id, const json_t *targets,
                            struct errinfo *err)
{
    if ((targets && write_targets(r, id, targets) < 0) || db_exec(r->db, "COMMIT") < 0) {
        errinfo_set(err, 500, "internal", NULL, "database error: %s", sqlite3_errmsg(r->db));
        db_exec(r->db, "ROLLBACK");
        return NULL;
    }
    bump(r);
    return get_locked(r, id, err);
}

json_t *reg_create(struct registry *r, const json_t *body, struct errinfo *err)
{
    struct server_in in;
    json_t *out = NULL;
    int64_t now = now_wall_ms();

    if (check_body(body, 1, &in, err) < 0)
        return NULL;
    char *labels = in.labels ? json_dumps(in.labels, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("{}");
    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st = db_prepare(r->db, "INSERT INTO servers (name, address, agent_port,"
                                         " agent_token, labels, created_ms, updated_ms)"
                                         " VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!st || db_exec(r->db, "BEGIN IMMEDIATE") < 0) {
        errinfo_set(err, 500, "internal", NULL, "database error");
        goto done;
    }
    sqlite3_bind_text(st, 1, in.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in.address, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, in.has_port ? in.port : 9445);
    if (in.token)
        sqlite3_bind_text(st, 4, in.token, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_text(st, 5, labels, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        write_failed(r, in.name, err);
        goto done;
    }
    out = finish_write(r, sqlite3_last_insert_rowid(r->db), in.targets, err);
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->lock);
    free(labels);
    return out;
}

json_t *reg_update(struct registry *r, int64_t id, const json_t *body, struct errinfo *err)
{
    struct server_in in;
    json_t *out = NULL;
    char *labels = NULL;

    if (check_body(body, 0, &in, err) < 0)
        return NULL;
    if (in.labels)
        labels = json_dumps(in.labels, JSON_COMPACT | JSON_SORT_KEYS);
    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st = db_prepare(
        r->db, "UPDATE servers SET name = coalesce(?1, name), address = coalesce(?2, address),"
               " agent_port = coalesce(?3, agent_port),"
               " agent_token = CASE WHEN ?4 THEN ?5 ELSE agent_token END,"
               " labels = coalesce(?6, labels), updated_ms = ?7 WHERE id = ?8");
    if (!st || db_exec(r->db, "BEGIN IMMEDIATE") < 0) {
        errinfo_set(err, 500, "internal", NULL, "database error");
        goto done;
    }
    if (in.name)
        sqlite3_bind_text(st, 1, in.name, -1, SQLITE_STATIC);
    if (in.address)
        sqlite3_bind_text(st, 2, in.address, -1, SQLITE_STATIC);
    if (in.has_port)
        sqlite3_bind_int64(st, 3, in.port);
    sqlite3_bind_int(st, 4, in.has_token);
    if (in.token)
        sqlite3_bind_text(st, 5, in.token, -1, SQLITE_STATIC);
    if (labels)
        sqlite3_bind_text(st, 6, labels, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, now_wall_ms());
    sqlite3_bind_int64(st, 8, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        write_failed(r, in.name, err);
        goto done;
    }
    if (sqlite3_changes(r->db) == 0) {
        errinfo_set(err, 404, "not_found", "id", "no server with id %lld", (long long)id);
        db_exec(r->db, "ROLLBACK");
        goto done;
    }
    out = finish_write(r, id, in.targets, err);
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->lock);
    free(labels);
    return out;
}

int reg_delete(struct registry *r, int64_t id, struct errinfo *err)
{
    int rc = -1;

    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st = db_prepare(r->db, "DELETE FROM servers WHERE id = ?");
    if (!st) {
        errinfo_set(err, 500, "internal", NULL, "database error");
        goto done;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        errinfo_set(err, 500, "internal", NULL, "database error: %s", sqlite3_errmsg(r->db));
    } else if (sqlite3_changes(r->db) == 0) {
        errinfo_set(err, 404, "not_found", "id", "no server with id %lld", (long long)id);
    } else {
        rc = 0;
        bump(r);
    }
    sqlite3_finalize(st);
done:
    pthread_mutex_unlock(&r->lock);
    return rc;
}

size_t reg_targets(struct registry *r, int64_t agent_interval_ms, int64_t exporter_interval_ms,
                   struct reg_target **out)
{
    size_t n = 0, cap = 0;
    struct reg_target *v = NULL;

    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st = db_prepare(
        r->db, "SELECT s.id, s.name, s.address, s.agent_port, coalesce(s.agent_token, ''),"
               " NULL, NULL, 0 FROM servers s"
               " UNION ALL SELECT s.id, s.name, NULL, NULL, '', t.name, t.url, t.interval_ms"
               " FROM targets t JOIN servers s ON s.id = t.server_id");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        struct reg_target *t = &v[n];
        memset(t, 0, sizeof(*t));
        t->server_id = sqlite3_column_int64(st, 0);
        snprintf(t->server, sizeof(t->server), "%s", sqlite3_column_text(st, 1));
        if (sqlite3_column_type(st, 6) == SQLITE_NULL) {
            const char *addr = (const char *)sqlite3_column_text(st, 2);
            int port = sqlite3_column_int(st, 3);
            int v6 = strchr(addr, ':') != NULL;
            snprintf(t->instance, sizeof(t->instance), v6 ? "[%s]:%d" : "%s:%d", addr, port);
            snprintf(t->url, sizeof(t->url), "http://%s/metrics", t->instance);
            snprintf(t->job, sizeof(t->job), "gpufleet-agent");
            snprintf(t->token, sizeof(t->token), "%s", sqlite3_column_text(st, 4));
            t->interval_ms = agent_interval_ms;
            t->is_agent = 1;
        } else {
            snprintf(t->job, sizeof(t->job), "%s", sqlite3_column_text(st, 5));
            snprintf(t->url, sizeof(t->url), "%s", sqlite3_column_text(st, 6));
            if (!valid_url(t->url, t->instance, sizeof(t->instance)))
                continue;
            int64_t iv = sqlite3_column_int64(st, 7);
            t->interval_ms = iv ? iv : exporter_interval_ms;
        }
        n++;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->lock);
    *out = v;
    return n;
}

void reg_on_status(struct registry *r, reg_status_fn fn, void *arg)
{
    r->on_status = fn;
    r->on_status_arg = arg;
}

int reg_add_event(struct registry *r, const char *server, int64_t ts_ms, const char *kind, const char *detail)
{
    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st = db_prepare(r->db, "INSERT INTO server_events (server_id, ts_ms, kind, detail)"
                                         " SELECT id, ?2, ?3, ?4 FROM servers WHERE name = ?1");
    sqlite3_bind_text(st, 1, server, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, ts_ms);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, detail, -1, SQLITE_TRANSIENT);
    int rc = st && sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(r->db) == 1 ? 0 : -1;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void reg_set_status(struct registry *r, int64_t server_id, int online, const char *detail,
                    int64_t now_ms)
{
    const char *status = online ? "online" : "offline";
    char name[65] = "";
    int64_t since = now_ms;

    detail = detail ? detail : "";
    pthread_mutex_lock(&r->lock);
    /* a new status, or a new reason for the same one (refused, then
     * timing out): since stays the status's start */
    sqlite3_stmt *st = db_prepare(r->db, "UPDATE servers SET status_since_ms = CASE WHEN status != ?1"
                                         " THEN ?2 ELSE status_since_ms END, status = ?1, last_error = ?3"
                                         " WHERE id = ?4 AND (status != ?1 OR last_error != ?3)"
                                         " RETURNING name, status_since_ms");
    sqlite3_stmt *ev = db_prepare(r->db, "INSERT INTO server_events (server_id, ts_ms, kind, detail)"
                                         " VALUES (?, ?, ?, ?)");
    if (st && ev) {
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_text(st, 3, detail, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, server_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(name, sizeof(name), "%s", (const char *)sqlite3_column_text(st, 0));
            since = sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
        if (name[0] && since == now_ms) { /* events are of status changes */
            sqlite3_bind_int64(ev, 1, server_id);
            sqlite3_bind_int64(ev, 2, now_ms);
            sqlite3_bind_text(ev, 3, status, -1, SQLITE_STATIC);
            sqlite3_bind_text(ev, 4, detail, -1, SQLITE_STATIC);
            if (sqlite3_step(ev) != SQLITE_DONE)
                log_warn("registry: cannot record a status event: %s", sqlite3_errmsg(r->db));
        }
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ev);
    pthread_mutex_unlock(&r->lock);
    if (name[0] && r->on_status)
        r->on_status(r->on_status_arg, name, status, detail, since);
}

json_t *reg_events(struct registry *r, int64_t server_id, int limit, struct errinfo *err)
{
    json_t *arr = NULL, *srv = reg_get(r, server_id, err);

    if (!srv)
        return NULL;
    json_decref(srv);
    arr = json_array();
    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st = db_prepare(r->db, "SELECT ts_ms, kind, detail FROM server_events"
                                         " WHERE server_id = ? ORDER BY ts_ms DESC, id DESC"
                                         " LIMIT ?");
    if (st) {
        sqlite3_bind_int64(st, 1, server_id);
        sqlite3_bind_int(st, 2, limit);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(arr, json_pack("{s:I, s:s, s:s}", "ts_ms",
                                                 (json_int_t)sqlite3_column_int64(st, 0), "kind",
                                                 sqlite3_column_text(st, 1), "detail",
                                                 sqlite3_column_text(st, 2)));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->lock);
    return arr;
}

void reg_integrity(struct registry *r, char *out, size_t outlen)
{
    pthread_mutex_lock(&r->lock);
    db_integrity(r->db, out, outlen);
    pthread_mutex_unlock(&r->lock);
}
