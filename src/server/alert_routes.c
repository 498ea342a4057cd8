/* Routing of notifications by labels, as Alertmanager's routes: an ordered
 * list of {matchers, receivers, continue}. An alert goes to the receivers
 * of the first route whose matchers its labels match (and of the ones after
 * it while a matched route says continue). An alert no route takes goes to
 * the receivers no route names (the default ones); with no routes at all,
 * every receiver gets every alert. */
#include "alerts_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/xalloc.h"
#include "store/db.h"

#define MAX_ROUTES 100
#define MAX_ROUTE_RECEIVERS 20

struct route {
    struct selector sel;
    json_t *receivers; /* names */
    int cont;
};

struct route_set {
    struct route *r;
    size_t n;
    json_t *named; /* {name: true} of every receiver a route names */
};

static int has_name(const json_t *names, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
        if (!strcmp(json_string_value(v), name))
            return 1;
    return 0;
}

int alert_routes_check(const json_t *body, const json_t *receiver_names, struct errinfo *e)
{
    json_t *routes = json_object_get(body, "routes"), *rt;
    size_t i;
    char f[64], why[160];

    if (!json_is_object(body) || !json_is_array(routes)) {
        errinfo_set(e, 400, "invalid_body", "routes", "routes: the body is {\"routes\": [{\"matchers\", \"receivers\", \"continue\"}, ...]}");
        return -1;
    }
    if (json_array_size(routes) > MAX_ROUTES) {
        errinfo_set(e, 400, "invalid_field", "routes", "routes: at most %d", MAX_ROUTES);
        return -1;
    }
    json_array_foreach(routes, i, rt)
    {
        const char *m = json_string_value(json_object_get(rt, "matchers"));
        json_t *rc = json_object_get(rt, "receivers"), *c = json_object_get(rt, "continue"), *name;
        struct selector sel;
        size_t k;

        snprintf(f, sizeof(f), "routes[%zu]", i);
        if (!json_is_object(rt)) {
            errinfo_set(e, 400, "invalid_field", f, "%s: a route is an object of matchers, receivers, continue", f);
            return -1;
        }
        snprintf(f, sizeof(f), "routes[%zu].matchers", i);
        if (!m || strlen(m) > 1024) {
            errinfo_set(e, 400, "invalid_field", f, "%s: label matchers such as {severity=\"critical\"}", f);
            return -1;
        }
        int bad = sel_parse(m, &sel, why, sizeof(why));
        sel_free(&sel);
        if (bad < 0) {
            errinfo_set(e, 400, "invalid_field", f, "%s: %s", f, why);
            return -1;
        }
        snprintf(f, sizeof(f), "routes[%zu].receivers", i);
        if (!json_is_array(rc) || !json_array_size(rc) || json_array_size(rc) > MAX_ROUTE_RECEIVERS) {
            errinfo_set(e, 400, "invalid_field", f, "%s: 1-%d receiver names", f, MAX_ROUTE_RECEIVERS);
            return -1;
        }
        json_array_foreach(rc, k, name)
        {
            if (!json_is_string(name) || !has_name(receiver_names, json_string_value(name))) {
                errinfo_set(e, 400, "invalid_field", f, "%s: %s is not a receiver", f,
                            json_is_string(name) ? json_string_value(name) : "a non-string");
                return -1;
            }
        }
        if (c && !json_is_boolean(c)) {
            snprintf(f, sizeof(f), "routes[%zu].continue", i);
            errinfo_set(e, 400, "invalid_field", f, "%s: true or false", f);
            return -1;
        }
    }
    return 0;
}

/* Receiver names, oldest first. Main lock held. */
static json_t *receiver_names(struct alerts *al)
{
    json_t *names = json_array();
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT name FROM receivers ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(names, json_string((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    return names;
}

/* The stored routes as the API shows them. Main lock held. */
static json_t *routes_json(struct alerts *al)
{
    json_t *arr = json_array();
    json_error_t jerr;
    sqlite3_stmt *st = db_prepare(al->meta, "SELECT matchers, receivers, continue FROM routes ORDER BY position");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *rc = json_loads((const char *)sqlite3_column_text(st, 1), 0, &jerr);
        json_array_append_new(arr, json_pack("{s:s, s:o, s:b}", "matchers", (const char *)sqlite3_column_text(st, 0),
                                             "receivers", rc ? rc : json_array(), "continue",
                                             sqlite3_column_int(st, 2)));
    }
    sqlite3_finalize(st);
    return arr;
}

/* {"routes": [...], "default_receivers": [names no route names]} */
static json_t *routes_answer(struct alerts *al)
{
    json_t *routes = routes_json(al), *names = receiver_names(al), *defaults = json_array(), *rt, *n;
    size_t i, k;
    json_array_foreach(names, i, n)
    {
        int named = 0;
        json_array_foreach(routes, k, rt)
            named |= has_name(json_object_get(rt, "receivers"), json_string_value(n));
        if (!named)
            json_array_append(defaults, n);
    }
    json_decref(names);
    return json_pack("{s:o, s:o}", "routes", routes, "default_receivers", defaults);
}

json_t *alerts_routes_get(struct alerts *al)
{
    pthread_mutex_lock(&al->lock);
    json_t *out = routes_answer(al);
    pthread_mutex_unlock(&al->lock);
    return out;
}

json_t *alerts_routes_set(struct alerts *al, const json_t *body, struct errinfo *err)
{
    json_t *out = NULL, *rt;
    size_t i;

    pthread_mutex_lock(&al->lock);
    json_t *names = receiver_names(al);
    int bad = alert_routes_check(body, names, err);
    json_decref(names);
    if (bad < 0)
        goto done;
    db_exec(al->meta, "BEGIN");
    db_exec(al->meta, "DELETE FROM routes");
    sqlite3_stmt *st = db_prepare(al->meta, "INSERT INTO routes (position, matchers, receivers, continue) VALUES (?, ?, ?, ?)");
    json_array_foreach(json_object_get(body, "routes"), i, rt)
    {
        char *rc = alert_dumps(json_object_get(rt, "receivers"));
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
        sqlite3_bind_text(st, 2, json_string_value(json_object_get(rt, "matchers")), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, rc, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, json_is_true(json_object_get(rt, "continue")));
        bad |= sqlite3_step(st) != SQLITE_DONE;
        free(rc);
    }
    sqlite3_finalize(st);
    if (bad || db_exec(al->meta, "COMMIT") < 0) {
        db_exec(al->meta, "ROLLBACK");
        errinfo_set(err, 500, "internal", NULL, "cannot store the routes");
        goto done;
    }
    out = routes_answer(al);
done:
    pthread_mutex_unlock(&al->lock);
    return out;
}

int alert_routes_naming(struct alerts *al, const char *receiver, char *route, size_t n)
{
    json_t *routes = routes_json(al), *rt;
    size_t i;
    int found = -1;
    json_array_foreach(routes, i, rt)
    {
        if (found < 0 && has_name(json_object_get(rt, "receivers"), receiver)) {
            found = (int)i;
            snprintf(route, n, "%s", json_string_value(json_object_get(rt, "matchers")));
        }
    }
    json_decref(routes);
    return found;
}

struct route_set *alert_routes_load(struct alerts *al)
{
    json_t *routes = routes_json(al), *rt;
    size_t i;
    struct route_set *rs = xcalloc(1, sizeof(*rs));
    char why[160];

    rs->r = xcalloc(json_array_size(routes) + 1, sizeof(*rs->r));
    rs->named = json_object();
    json_array_foreach(routes, i, rt)
    {
        struct route *r = &rs->r[rs->n];
        /* stored routes were checked; one that no longer parses is skipped */
        if (sel_parse(json_string_value(json_object_get(rt, "matchers")), &r->sel, why, sizeof(why)) < 0) {
            sel_free(&r->sel);
            continue;
        }
        r->receivers = json_incref(json_object_get(rt, "receivers"));
        r->cont = json_is_true(json_object_get(rt, "continue"));
        size_t k;
        json_t *name;
        json_array_foreach(r->receivers, k, name)
            json_object_set_new(rs->named, json_string_value(name), json_true());
        rs->n++;
    }
    json_decref(routes);
    return rs;
}

void alert_routes_free(struct route_set *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        sel_free(&rs->r[i].sel);
        json_decref(rs->r[i].receivers);
    }
    free(rs->r);
    json_decref(rs->named);
    free(rs);
}

static const char *label_of(void *arg, const char *name)
{
    return json_string_value(json_object_get(arg, name));
}

int alert_routed(const struct route_set *rs, const json_t *labels, const char *receiver)
{
    int matched = 0;

    if (!rs || !rs->n)
        return 1;
    for (size_t i = 0; i < rs->n; i++) {
        if (!sel_matches(&rs->r[i].sel, label_of, (void *)labels))
            continue;
        matched = 1;
        if (has_name(rs->r[i].receivers, receiver))
            return 1;
        if (!rs->r[i].cont)
            break;
    }
    return !matched && !json_object_get(rs->named, receiver);
}
