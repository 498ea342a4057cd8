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
#include "options.h"
#include "registry.h"
#include "scrape.h"
#include "store/tsdb.h"

/* The settings a running server can take without a restart. */
static const char *const live_keys[] = {"raw_retention_days", "m1_retention_days",
                                        "h1_retention_days", "agent_interval_ms",
                                        "exporter_interval_ms"};
#define NLIVE (sizeof(live_keys) / sizeof(live_keys[0]))

static const char *const secret_keys[] = {"admin_password"};

/* One lock over app->opts' live fields and the file. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int is_live(const char *name)
{
    for (size_t i = 0; i < NLIVE; i++)
        if (!strcmp(live_keys[i], name))
            return 1;
    return 0;
}

static int64_t *int_field(struct server_options *o, const struct config_key *k)
{
    return (int64_t *)((char *)o + k->offset);
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
        int secret = 0;
        for (size_t s = 0; s < sizeof(secret_keys) / sizeof(secret_keys[0]); s++)
            secret |= !strcmp(secret_keys[s], k->name);
        if (secret)
            continue;
        json_t *o = json_pack("{s:s, s:b}", "name", k->name, "live", is_live(k->name));
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
    for (size_t i = 0; i < NLIVE; i++)
        fprintf(f, "%s: %lld\n", live_keys[i],
                (long long)*int_field(app->opts, find_key(live_keys[i])));
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) < 0) {
        unlink(tmp);
        return fail(e, 500, "internal", "", "cannot write settings.conf");
    }
    return 0;
}

int settings_update(struct server_app *app, const json_t *body, json_t *changes, struct errinfo *e)
{
    int64_t next[NLIVE];
    const char *name;
    json_t *v;
    char msg[200];

    if (!json_is_object(body) || !json_object_size(body))
        return fail(e, 400, "invalid_body", "", "a JSON object of settings to change");
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < NLIVE; i++)
        next[i] = *int_field(app->opts, find_key(live_keys[i]));
    json_object_foreach((json_t *)body, name, v) {
        const struct config_key *k = find_key(name);
        size_t i = 0;
        while (i < NLIVE && strcmp(live_keys[i], name))
            i++;
        if (!k || i == NLIVE) {
            pthread_mutex_unlock(&lock);
            snprintf(msg, sizeof(msg), "%s", k ? "needs a restart: set it in the config file"
                                               : "no such setting");
            return fail(e, 400, "invalid_field", strlen(name) < 60 ? name : "(name)", msg);
        }
        if (!json_is_integer(v) || json_integer_value(v) < k->min || json_integer_value(v) > k->max) {
            pthread_mutex_unlock(&lock);
            snprintf(msg, sizeof(msg), "an integer from %lld to %lld", (long long)k->min,
                     (long long)k->max);
            return fail(e, 400, "invalid_field", name, msg);
        }
        next[i] = json_integer_value(v);
    }
    if (next[1] < next[0] || next[2] < next[1]) {
        pthread_mutex_unlock(&lock);
        return fail(e, 400, "invalid_field", next[1] < next[0] ? "m1_retention_days" : "h1_retention_days",
                    "each roll-up tier must be kept at least as long as the finer one");
    }
    int64_t old[NLIVE];
    for (size_t i = 0; i < NLIVE; i++) {
        int64_t *f = int_field(app->opts, find_key(live_keys[i]));
        old[i] = *f;
        *f = next[i];
    }
    if (write_file(app, e) < 0) {
        for (size_t i = 0; i < NLIVE; i++)
            *int_field(app->opts, find_key(live_keys[i])) = old[i];
        pthread_mutex_unlock(&lock);
        return -1;
    }
    for (size_t i = 0; i < NLIVE; i++)
        if (old[i] != next[i])
            json_object_set_new(changes, live_keys[i],
                                json_pack("{s:I, s:I}", "from", (json_int_t)old[i], "to", (json_int_t)next[i]));
    struct server_options *o = app->opts;
    if (app->db) {
        tsdb_set_retention(app->db, TSDB_RAW, o->raw_retention_days * 86400000LL);
        tsdb_set_retention(app->db, TSDB_1M, o->m1_retention_days * 86400000LL);
        tsdb_set_retention(app->db, TSDB_1H, o->h1_retention_days * 86400000LL);
    }
    if (app->scraper)
        scraper_set_intervals(app->scraper, o->agent_interval_ms, o->exporter_interval_ms);
    pthread_mutex_unlock(&lock);
    return 0;
}
