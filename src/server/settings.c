/* Run-time settings: what the settings page shows and changes. */
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "apps.h"
#include "containers.h"
#include "options.h"
#include "registry.h"
#include "scrape.h"
#include "store/tsdb.h"


/* One lock over app->opts' live fields and the file. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int is_live(const struct config_key *k)
{
    return (k->flags & CONFIG_LIVE) != 0;
}

static int64_t *int_field(struct server_options *o, const struct config_key *k)
{
    return (int64_t *)((char *)o + k->offset);
}

/* Live strings are owned by app->opts; a change puts a new copy in and
 * frees the old one under this file's lock, so they are read under it too
 * (settings_json, the modules' setters below). */
static char **str_field(struct server_options *o, const struct config_key *k)
{
    return (char **)(void *)((char *)o + k->offset);
}

static int is_live_str(const struct config_key *k)
{
    return is_live(k) && k->type == CONFIG_STRING;
}

static int live_same(const struct config_key *k, struct server_options *a, struct server_options *b)
{
    if (k->type != CONFIG_STRING)
        return *int_field(a, k) == *int_field(b, k);
    const char *x = *str_field(a, k), *y = *str_field(b, k);
    return x == y || (x && y && !strcmp(x, y));
}

static json_t *live_json(const struct config_key *k, struct server_options *o)
{
    if (k->type != CONFIG_STRING)
        return json_integer(*int_field(o, k));
    const char *v = *str_field(o, k);
    return v ? json_string(v) : json_null();
}

/* Frees the live strings read_body put into next (those not shared with cur). */
static void drop_new_strings(struct server_options *next, struct server_options *cur)
{
    size_t n;
    const struct config_key *keys = server_options_keys(&n);
    for (size_t i = 0; i < n; i++)
        if (is_live_str(&keys[i]) && *str_field(next, &keys[i]) != *str_field(cur, &keys[i])) {
            free(*str_field(next, &keys[i]));
            *str_field(next, &keys[i]) = *str_field(cur, &keys[i]);
        }
}

static const struct config_key *find_key(const char *name)
{
    size_t n;
    const struct config_key *keys = server_options_keys(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static void path_of(struct server_app *app, char *out, size_t len)
{
    snprintf(out, len, "%s/settings.conf", app->opts->data_dir);
}

int settings_load(struct server_app *app, char *err, size_t errlen)
{
    char path[4200], e[400];

    path_of(app, path, sizeof(path));
    if (access(path, F_OK) < 0)
        return 0;
    if (server_options_load(app->opts, path, e, sizeof(e)) < 0 ||
        server_options_finish(app->opts, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "%s: %s", path, e);
        return -1;
    }
    log_info("settings changed from the web UI/API read from %s", path);
    return 0;
}

json_t *settings_json(struct server_app *app)
{
    size_t n;
    const struct config_key *keys = server_options_keys(&n);
    json_t *arr = json_array();

    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &keys[i];
        if (k->flags & CONFIG_SECRET)
            continue;
        json_t *o = json_pack("{s:s, s:b, s:s}", "name", k->name, "live", is_live(k), "help",
                              k->help);
        if (k->choices) {
            json_t *c = json_array();
            const char *p = k->choices, *at;
            size_t len;
            while (config_choice_next(&p, &at, &len))
                json_array_append_new(c, json_stringn(at, len));
            json_object_set_new(o, "choices", c);
        }
        if (k->type == CONFIG_INT) {
            json_object_set_new(o, "value", json_integer(*int_field(app->opts, k)));
            json_object_set_new(o, "min", json_integer(k->min));
            json_object_set_new(o, "max", json_integer(k->max));
        } else if (k->type == CONFIG_BOOL) {
            json_object_set_new(o, "value", json_boolean(*(int *)((char *)app->opts + k->offset)));
        } else {
            const char *v = *(char **)((char *)app->opts + k->offset);
            json_object_set_new(o, "value", v ? json_string(v) : json_null());
        }
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&lock);
    return arr;
}

static int fail(struct errinfo *e, int status, const char *code, const char *field, const char *msg)
{
    errinfo_set(e, status, code, field, "%s", msg);
    return -1;
}

/* Writes the live settings (all of them: the file is the UI's) atomically. */
static int write_file(struct server_app *app, struct errinfo *e)
{
    char path[4200], tmp[4300];
    FILE *f;

    path_of(app, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        if (fd >= 0)
            close(fd);
        return fail(e, 500, "internal", "", strerror(errno));
    }
    fprintf(f, "# written by gpufleet when settings change from the web UI or the API;\n"
               "# read over the config file and flags at start. Delete it to drop them.\n");
    size_t n;
    const struct config_key *keys = server_options_keys(&n);
    for (size_t i = 0; i < n; i++) {
        if (!is_live(&keys[i]))
            continue;
        /* a JSON string is a YAML double-quoted scalar */
        json_t *v = live_json(&keys[i], app->opts);
        char *text = json_dumps(v, JSON_ENCODE_ANY);
        fprintf(f, "%s: %s\n", keys[i].name, text ? text : "null");
        free(text);
        json_decref(v);
    }
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) < 0) {
        unlink(tmp);
        return fail(e, 500, "internal", "", "cannot write settings.conf");
    }
    return 0;
}

/* Copies the live settings of from into to. */
static void copy_live(struct server_options *to, const struct server_options *from)
{
    size_t n;
    const struct config_key *keys = server_options_keys(&n);
    for (size_t i = 0; i < n; i++) {
        if (!is_live(&keys[i]))
            continue;
        if (keys[i].type == CONFIG_STRING)
            *str_field(to, &keys[i]) = *str_field((struct server_options *)from, &keys[i]);
        else
            *int_field(to, &keys[i]) = *int_field((struct server_options *)from, &keys[i]);
    }
}

/* Reads body's settings into next (a copy of the running ones). 0, or -1
 * with e naming the first bad one. */
static int read_body(const json_t *body, struct server_options *next, struct errinfo *e)
{
    const char *name;
    json_t *v;
    char msg[200];

    json_object_foreach((json_t *)body, name, v) {
        const struct config_key *k = find_key(name);
        if (!k || !is_live(k)) {
            snprintf(msg, sizeof(msg), "%s", k ? "needs a restart: set it in the config file"
                                               : "no such setting");
            return fail(e, 400, "invalid_field", strlen(name) < 60 ? name : "(name)", msg);
        }
        if (k->type == CONFIG_STRING) {
            size_t n;
            const struct config_key *keys = server_options_keys(&n);
            if (!json_is_string(v))
                return fail(e, 400, "invalid_field", name, "a string");
            *str_field(next, k) = NULL; /* the running one's stays with it */
            if (config_set(keys, n, next, name, json_string_value(v), msg, sizeof(msg)) < 0)
                return fail(e, 400, "invalid_field", name, msg);
            continue;
        }
        if (!json_is_integer(v) || json_integer_value(v) < k->min || json_integer_value(v) > k->max) {
            snprintf(msg, sizeof(msg), "an integer from %lld to %lld", (long long)k->min,
                     (long long)k->max);
            return fail(e, 400, "invalid_field", name, msg);
        }
        *int_field(next, k) = json_integer_value(v);
    }
    char why[300];
    if (server_options_finish(next, why, sizeof(why)) < 0) {
        /* the cross-field checks of a start ("m1_retention_days: ...") */
        char field[64];
        snprintf(field, sizeof(field), "%.*s", (int)strcspn(why, ":"), why);
        return fail(e, 400, "invalid_field", field, why);
    }
    return 0;
}

int settings_update(struct server_app *app, const json_t *body, json_t *changes, struct errinfo *e)
{
    size_t n;
    const struct config_key *keys = server_options_keys(&n);

    if (!json_is_object(body) || !json_object_size(body))
        return fail(e, 400, "invalid_body", "", "a JSON object of settings to change");
    pthread_mutex_lock(&lock);
    struct server_options next = *app->opts, old = *app->opts; /* strings shared, not owned */
    if (read_body(body, &next, e) < 0) {
        drop_new_strings(&next, &old);
        goto fail;
    }
    copy_live(app->opts, &next);
    if (write_file(app, e) < 0) {
        copy_live(app->opts, &old);
        drop_new_strings(&next, &old);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if (is_live(&keys[i]) && !live_same(&keys[i], &old, &next))
            json_object_set_new(changes, keys[i].name,
                                json_pack("{s:o, s:o}", "from", live_json(&keys[i], &old), "to",
                                          live_json(&keys[i], &next)));
    for (size_t i = 0; i < n; i++) /* the replaced strings: nobody holds them now */
        if (is_live_str(&keys[i]) && *str_field(&old, &keys[i]) != *str_field(&next, &keys[i]))
            free(*str_field(&old, &keys[i]));
    struct server_options *o = app->opts;
    if (app->db) {
        tsdb_set_retention(app->db, TSDB_RAW, o->raw_retention_days * 86400000LL);
        tsdb_set_retention(app->db, TSDB_1M, o->m1_retention_days * 86400000LL);
        tsdb_set_retention(app->db, TSDB_1H, o->h1_retention_days * 86400000LL);
    }
    if (app->scraper)
        scraper_set_intervals(app->scraper, o->agent_interval_ms, o->exporter_interval_ms);
    if (app->ctr)
        ctr_set_limits(app->ctr, o);
    if (app->apps)
        apps_set_limits(app->apps, o);
    pthread_mutex_unlock(&lock);
    return 0;
fail:
    pthread_mutex_unlock(&lock);
    return -1;
}
