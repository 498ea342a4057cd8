/* The BMC poller: settings under a lock, the IPMI sessions outside it (a
 * BMC that does not answer costs its own timeout, never a request's). */
#include "bmc.h"

#include <ipmi_monitoring.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "ingest.h"
#include "options.h"
#include "registry.h"
#include "server.h"
#include "store/db.h"

static const struct db_migration steps[] = {
    {"BMC settings",
     "CREATE TABLE bmcs (server TEXT PRIMARY KEY, address TEXT NOT NULL, user TEXT NOT NULL,"
     " password TEXT NOT NULL, updated_ms INTEGER NOT NULL);"},
    {"the newest SEL record taken as a fleet event", "ALTER TABLE bmcs ADD COLUMN sel_last INTEGER NOT NULL DEFAULT -1;"},
};

#define SEL_MAX_PER_POLL 100

/* What the last poll of a BMC said. */
struct bmc_state {
    char server[65], status[12], detail[300];
    int64_t last_poll_ms;
    int sensors;
};

struct bmc {
    struct server_app *app;
    sqlite3 *db;
    pthread_mutex_t lock; /* db and states */
    pthread_cond_t wake;
    pthread_t thread;
    int stop, poke;
    int64_t interval_ms;
    struct bmc_state *states;
    size_t nstates;
    char cache_dir[4200];
};

/* ---- settings ---- */

static int valid_address(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr(".-:[]", s[i])))
            return 0;
    return 1;
}

int bmc_set(struct bmc *b, const char *server, const json_t *body, struct errinfo *err)
{
    const char *addr = json_string_value(json_object_get(body, "address"));
    const char *user = json_string_value(json_object_get(body, "user"));
    json_t *pw = json_object_get(body, "password");
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)body, k, v)
    {
        if (strcmp(k, "address") && strcmp(k, "user") && strcmp(k, "password")) {
            errinfo_set(err, 400, "invalid_field", k, "unknown field '%.60s'", k);
            return -1;
        }
    }
    if (!valid_address(addr)) {
        errinfo_set(err, 400, "invalid_field", "address", "address is the BMC's host name or IP, with :port if not 623");
        return -1;
    }
    if (!user || !*user || strlen(user) > 16) {
        errinfo_set(err, 400, "invalid_field", "user", "user is 1-16 characters (IPMI's limit)");
        return -1;
    }
    if (pw && (!json_is_string(pw) || json_string_length(pw) > 20)) {
        errinfo_set(err, 400, "invalid_field", "password", "password is at most 20 characters (IPMI 2.0's limit)");
        return -1;
    }
    pthread_mutex_lock(&b->lock);
    sqlite3_stmt *st = db_prepare(b->db, "INSERT INTO bmcs (server, address, user, password, updated_ms)"
                                         " VALUES (?1, ?2, ?3, coalesce(?4, ''), ?5) ON CONFLICT (server) DO UPDATE"
                                         " SET address = ?2, user = ?3, password = coalesce(?4, password),"
                                         " updated_ms = ?5");
    sqlite3_bind_text(st, 1, server, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, addr, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, user, -1, SQLITE_TRANSIENT);
    if (pw)
        sqlite3_bind_text(st, 4, json_string_value(pw), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, now_wall_ms());
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    b->poke = 1;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (rc < 0)
        errinfo_set(err, 500, "internal", NULL, "database error");
    return rc;
}

int bmc_delete(struct bmc *b, const char *server, struct errinfo *err)
{
    pthread_mutex_lock(&b->lock);
    sqlite3_stmt *st = db_prepare(b->db, "DELETE FROM bmcs WHERE server = ?");
    sqlite3_bind_text(st, 1, server, -1, SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_finalize(st);
    int gone = sqlite3_changes(b->db);
    pthread_mutex_unlock(&b->lock);
    if (!gone)
        errinfo_set(err, 404, "not_found", "server", "server %s has no BMC set", server);
    return gone ? 0 : -1;
}

static struct bmc_state *state_of(struct bmc *b, const char *server, int create)
{
    for (size_t i = 0; i < b->nstates; i++)
        if (!strcmp(b->states[i].server, server))
            return &b->states[i];
    if (!create)
        return NULL;
    b->states = xrealloc(b->states, (b->nstates + 1) * sizeof(*b->states));
    struct bmc_state *s = &b->states[b->nstates++];
    memset(s, 0, sizeof(*s));
    snprintf(s->server, sizeof(s->server), "%s", server);
    snprintf(s->status, sizeof(s->status), "unknown");
    return s;
}

json_t *bmc_list(struct bmc *b)
{
    json_t *out = json_array();
    pthread_mutex_lock(&b->lock);
    sqlite3_stmt *st = db_prepare(b->db, "SELECT server, address, user, password <> '' FROM bmcs ORDER BY server");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *server = (const char *)sqlite3_column_text(st, 0);
        struct bmc_state *s = state_of(b, server, 0);
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:I, s:i}", "server", server, "address",
                                             (const char *)sqlite3_column_text(st, 1), "user",
                                             (const char *)sqlite3_column_text(st, 2), "password_set",
                                             sqlite3_column_int(st, 3), "status", s ? s->status : "unknown", "detail",
                                             s ? s->detail : "not polled yet", "last_poll_ms",
                                             (json_int_t)(s ? s->last_poll_ms : 0), "sensors", s ? s->sensors : 0));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&b->lock);
    return out;
}

/* ---- polling ---- */

struct target {
    char server[65], address[256], user[17], password[21];
    int64_t sel_last; /* SEL records up to this one are events already */
};

/* The ipmi_exporter family of a sensor: its name and the state's. */
static void family(int type, int units, const char **value, const char **state)
{
    *value = "ipmi_sensor_value";
    *state = "ipmi_sensor_state";
    if (type == IPMI_MONITORING_SENSOR_TYPE_TEMPERATURE && units == IPMI_MONITORING_SENSOR_UNITS_CELSIUS)
        *value = "ipmi_temperature_celsius", *state = "ipmi_temperature_state";
    else if (type == IPMI_MONITORING_SENSOR_TYPE_FAN && units == IPMI_MONITORING_SENSOR_UNITS_RPM)
        *value = "ipmi_fan_speed_rpm", *state = "ipmi_fan_speed_state";
    else if (units == IPMI_MONITORING_SENSOR_UNITS_VOLTS)
        *value = "ipmi_voltage_volts", *state = "ipmi_voltage_state";
    else if (units == IPMI_MONITORING_SENSOR_UNITS_AMPS)
        *value = "ipmi_current_amperes", *state = "ipmi_current_state";
    else if (units == IPMI_MONITORING_SENSOR_UNITS_WATTS)
        *value = "ipmi_power_watts", *state = "ipmi_power_state";
}

static const char *type_name(int type)
{
    switch (type) {
    case IPMI_MONITORING_SENSOR_TYPE_TEMPERATURE: return "Temperature";
    case IPMI_MONITORING_SENSOR_TYPE_VOLTAGE: return "Voltage";
    case IPMI_MONITORING_SENSOR_TYPE_CURRENT: return "Current";
    case IPMI_MONITORING_SENSOR_TYPE_FAN: return "Fan";
    case IPMI_MONITORING_SENSOR_TYPE_POWER_SUPPLY: return "Power Supply";
    default: return "Other";
    }
}

static void add(struct ingest_batch *batch, const struct prom_label *extra, size_t nextra, const char *name,
                const char *id, const char *sname, const char *type, double v, int64_t ts)
{
    struct prom_sample s;
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.name_len = strlen(name);
    s.value = v;
    size_t n = 0;
    if (id)
        s.labels[n++] = (struct prom_label){"id", 2, id, strlen(id)};
    if (sname)
        s.labels[n++] = (struct prom_label){"name", 4, sname, strlen(sname)};
    if (type)
        s.labels[n++] = (struct prom_label){"type", 4, type, strlen(type)};
    s.nlabels = n;
    ingest_batch_add(batch, &s, extra, nextra, ts);
}

/* An IPMI failure in the words an operator acts on. */
static void reason(ipmi_monitoring_ctx_t c, const struct target *t, char *out, size_t cap)
{
    int e = ipmi_monitoring_ctx_errnum(c);
    /* an IPMI 1.5 BMC answers a wrong password with silence */
    if (e == IPMI_MONITORING_ERR_USERNAME_INVALID || e == IPMI_MONITORING_ERR_PASSWORD_INVALID ||
        e == IPMI_MONITORING_ERR_PASSWORD_VERIFICATION_TIMEOUT ||
        e == IPMI_MONITORING_ERR_PRIVILEGE_LEVEL_INSUFFICIENT || e == IPMI_MONITORING_ERR_PRIVILEGEL_LEVEL_CANNOT_BE_OBTAINED)
        snprintf(out, cap, "the BMC %.120s refused user %.16s: wrong user name or password", t->address, t->user);
    else if (e == IPMI_MONITORING_ERR_SESSION_TIMEOUT || e == IPMI_MONITORING_ERR_CONNECTION_TIMEOUT)
        snprintf(out, cap, "no answer from the BMC %.120s (IPMI over LAN, UDP): down, or a firewall drops it", t->address);
    else
        snprintf(out, cap, "the BMC %.120s: %.120s", t->address, ipmi_monitoring_ctx_errormsg(c));
}

static struct ipmi_monitoring_ipmi_config config_of(const struct target *t, int version)
{
    return (struct ipmi_monitoring_ipmi_config){
        .driver_type = -1, .protocol_version = version, .username = (char *)t->user, .password = (char *)t->password,
        .privilege_level = IPMI_MONITORING_PRIVILEGE_LEVEL_USER,
        .authentication_type = IPMI_MONITORING_AUTHENTICATION_TYPE_MD5, .cipher_suite_id = 3,
        .session_timeout_len = 5000, .retransmission_timeout_len = 1000};
}

/* Reads one BMC's sensors into batch; the count, or -1 with why. IPMI 1.5
 * with MD5 first (what every BMC speaks), then 2.0. */
static int read_sensors(struct bmc *b, const struct target *t, struct ingest_batch *batch, const struct prom_label *extra,
                        size_t nextra, int *version, char *why, size_t cap)
{
    int used = 0;
    ipmi_monitoring_ctx_t c = ipmi_monitoring_ctx_create();
    char cache[4400];
    int n = -1;
    if (!c) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    snprintf(cache, sizeof(cache), "%s", b->cache_dir);
    ipmi_monitoring_ctx_sdr_cache_directory(c, cache);
    static const int versions[] = {IPMI_MONITORING_PROTOCOL_VERSION_1_5, IPMI_MONITORING_PROTOCOL_VERSION_2_0};
    for (int v = 0; v < 2 && n < 0; v++) {
        used = versions[v];
        struct ipmi_monitoring_ipmi_config conf = config_of(t, versions[v]);
        n = ipmi_monitoring_sensor_readings_by_record_id(
            c, t->address, &conf, IPMI_MONITORING_SENSOR_READING_FLAGS_IGNORE_NON_INTERPRETABLE_SENSORS, NULL, 0,
            NULL, NULL);
        if (n < 0 && v == 0) {
            reason(c, t, why, cap);
            /* 2.0 only where 1.5 itself is what failed: a wrong password
             * or a silent BMC would cost a second timeout for nothing */
            int e = ipmi_monitoring_ctx_errnum(c);
            if (e != IPMI_MONITORING_ERR_AUTHENTICATION_TYPE_UNAVAILABLE && e != IPMI_MONITORING_ERR_IPMI_ERROR)
                break;
        }
    }
    int64_t ts = now_wall_ms();
    *version = n >= 0 ? used : -1;
    for (int i = 0; n > 0 && i < n; i++, ipmi_monitoring_sensor_iterator_next(c)) {
        char id[16];
        const char *value_name, *state_name;
        int type = ipmi_monitoring_sensor_read_sensor_type(c);
        int units = ipmi_monitoring_sensor_read_sensor_units(c);
        int state = ipmi_monitoring_sensor_read_sensor_state(c);
        const char *sname = ipmi_monitoring_sensor_read_sensor_name(c);
        snprintf(id, sizeof(id), "%d", ipmi_monitoring_sensor_read_record_id(c));
        family(type, units, &value_name, &state_name);
        const char *tn = !strcmp(value_name, "ipmi_sensor_value") ? type_name(type) : NULL;
        add(batch, extra, nextra, state_name, id, sname ? sname : "", tn,
            state == IPMI_MONITORING_STATE_UNKNOWN ? NAN : (double)state, ts);
        if (ipmi_monitoring_sensor_read_sensor_reading_type(c) == IPMI_MONITORING_SENSOR_READING_TYPE_DOUBLE) {
            double *r = ipmi_monitoring_sensor_read_sensor_reading(c);
            if (r)
                add(batch, extra, nextra, value_name, id, sname ? sname : "", tn, *r, ts);
        }
    }
    ipmi_monitoring_ctx_destroy(c);
    return n;
}

/* The SEL's new records as the server's events ("sel"): sensor, event,
 * direction. A SEL whose newest record is older than the last one taken
 * was cleared (record ids start over): that is an event of its own, and
 * every record in it is new. Returns the newest record id taken (sel_last
 * when none; -1 for a cleared, empty SEL). */
static int64_t read_sel(struct bmc *b, const struct target *t, int version)
{
    ipmi_monitoring_ctx_t c = ipmi_monitoring_ctx_create();
    struct ipmi_monitoring_ipmi_config conf = config_of(t, version);
    int64_t newest = t->sel_last, after = t->sel_last, top = -1;
    char cache[4400], detail[400];
    if (!c)
        return newest;
    snprintf(cache, sizeof(cache), "%s", b->cache_dir);
    ipmi_monitoring_ctx_sdr_cache_directory(c, cache);
    int n = ipmi_monitoring_sel_by_record_id(c, t->address, &conf, 0, NULL, 0, NULL, NULL);
    for (int i = 0; i < n; i++, ipmi_monitoring_sel_iterator_next(c)) {
        int id = ipmi_monitoring_sel_read_record_id(c);
        top = id > top ? id : top;
    }
    if (n >= 0 && top < t->sel_last) {
        snprintf(detail, sizeof(detail), "BMC SEL cleared: its newest record was #%lld, now %s", (long long)t->sel_last,
                 n ? "older ones start over" : "it is empty");
        reg_add_event(b->app->reg, t->server, now_wall_ms(), "sel", detail);
        newest = after = -1;
    }
    if (n > 0)
        ipmi_monitoring_sel_iterator_first(c);
    for (int i = 0, taken = 0; i < n && taken < SEL_MAX_PER_POLL; i++, ipmi_monitoring_sel_iterator_next(c)) {
        int id = ipmi_monitoring_sel_read_record_id(c);
        if (id <= after)
            continue;
        const char *sensor = ipmi_monitoring_sel_read_sensor_name(c);
        const char *what = ipmi_monitoring_sel_read_event_offset_string(c);
        int dir = ipmi_monitoring_sel_read_event_direction(c);
        snprintf(detail, sizeof(detail), "BMC SEL #%d: %s: %s%s", id, sensor && *sensor ? sensor : "?",
                 what && *what ? what : "event",
                 dir == IPMI_MONITORING_SEL_EVENT_DIRECTION_DEASSERTION ? " (deasserted)" : "");
        /* the BMC's clock may be anything; an entry is dated when it is seen */
        reg_add_event(b->app->reg, t->server, now_wall_ms(), "sel", detail);
        newest = id > newest ? id : newest;
        taken++;
    }
    ipmi_monitoring_ctx_destroy(c);
    return newest;
}

static void poll_one(struct bmc *b, const struct target *t)
{
    int version = -1;
    char why[300] = "";
    struct prom_label extra[3] = {{"job", 3, "ipmi", 4},
                                  {"instance", 8, t->address, strlen(t->address)},
                                  {"server", 6, t->server, strlen(t->server)}};
    struct ingest_batch *batch = ingest_batch_new();
    int n = read_sensors(b, t, batch, extra, 3, &version, why, sizeof(why));
    struct prom_sample up;
    memset(&up, 0, sizeof(up));
    up.name = "ipmi_up";
    up.name_len = 7;
    up.value = n >= 0;
    int64_t now = now_wall_ms();
    ingest_batch_add(batch, &up, extra, 3, now);
    batch->is_scrape = 1; /* sensors gone from a BMC get stale markers */
    snprintf(batch->job, sizeof(batch->job), "ipmi");
    snprintf(batch->instance, sizeof(batch->instance), "%s", t->address);
    batch->scrape_ts_ms = now;
    ingest_push(b->app->in, batch, 1000);
    pthread_mutex_lock(&b->lock);
    struct bmc_state *s = state_of(b, t->server, 1);
    int changed = strcmp(s->status, n >= 0 ? "ok" : "down");
    snprintf(s->status, sizeof(s->status), "%s", n >= 0 ? "ok" : "down");
    snprintf(s->detail, sizeof(s->detail), "%s", n >= 0 ? "" : why);
    s->last_poll_ms = now;
    s->sensors = n > 0 ? n : 0;
    pthread_mutex_unlock(&b->lock);
    if (changed && n < 0)
        log_warn("bmc %s: %s", t->server, why);
    int64_t newest = n >= 0 ? read_sel(b, t, version) : t->sel_last;
    if (newest != t->sel_last) {
        pthread_mutex_lock(&b->lock);
        sqlite3_stmt *st = db_prepare(b->db, "UPDATE bmcs SET sel_last = ? WHERE server = ?");
        sqlite3_bind_int64(st, 1, newest);
        sqlite3_bind_text(st, 2, t->server, -1, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&b->lock);
    }
}

/* A round's BMCs, polled POLLERS at a time: one that does not answer
 * costs its timeout once, not once per BMC after it. */
#define POLLERS 16

struct round {
    struct bmc *b;
    const struct target *t;
    size_t n, next;
    pthread_mutex_t lock;
};

static void *poller(void *arg)
{
    struct round *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t i = r->next < r->n ? r->next++ : r->n;
        pthread_mutex_unlock(&r->lock);
        if (i == r->n)
            return NULL;
        poll_one(r->b, &r->t[i]);
    }
}

static void poll_all(struct bmc *b, const struct target *t, size_t n)
{
    struct round r = {.b = b, .t = t, .n = n};
    pthread_t th[POLLERS];
    size_t nt = n < POLLERS ? n : POLLERS;
    pthread_mutex_init(&r.lock, NULL);
    for (size_t i = 0; i < nt; i++)
        pthread_create(&th[i], NULL, poller, &r);
    for (size_t i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&r.lock);
}

/* One round: every BMC whose server is still registered (a server removed
 * from the registry takes its BMC with it). */
static void poll_round(struct bmc *b)
{
    struct target *t = NULL;
    size_t n = 0;
    pthread_mutex_lock(&b->lock);
    sqlite3_stmt *st = db_prepare(b->db, "SELECT server, address, user, password, sel_last FROM bmcs");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        t = xrealloc(t, (n + 1) * sizeof(*t));
        snprintf(t[n].server, sizeof(t[n].server), "%s", sqlite3_column_text(st, 0));
        snprintf(t[n].address, sizeof(t[n].address), "%s", sqlite3_column_text(st, 1));
        snprintf(t[n].user, sizeof(t[n].user), "%s", sqlite3_column_text(st, 2));
        snprintf(t[n].password, sizeof(t[n].password), "%s", sqlite3_column_text(st, 3));
        t[n].sel_last = sqlite3_column_int64(st, 4);
        n++;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&b->lock);
    json_t *servers = reg_list(b->app->reg);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int known = 0;
        for (size_t k = 0; !known && k < json_array_size(servers); k++)
            known = !strcmp(json_string_value(json_object_get(json_array_get(servers, k), "name")), t[i].server);
        if (known)
            t[kept++] = t[i];
        else
            bmc_delete(b, t[i].server, NULL);
    }
    json_decref(servers);
    poll_all(b, t, kept);
    if (t)
        explicit_bzero(t, n * sizeof(*t));
    free(t);
}

static void *poll_main(void *arg)
{
    struct bmc *b = arg;
    for (;;) {
        poll_round(b);
        pthread_mutex_lock(&b->lock);
        int64_t until = now_mono_ns() + b->interval_ms * 1000000LL;
        while (!b->stop && !b->poke && now_cond_wait_until(&b->wake, &b->lock, until) == 0)
            ;
        int stop = b->stop;
        b->poke = 0;
        pthread_mutex_unlock(&b->lock);
        if (stop)
            return NULL;
    }
}

struct bmc *bmc_start(const char *path, struct server_app *app, int64_t interval_ms, char *err, size_t errlen)
{
    int errnum = 0;
    if (ipmi_monitoring_init(0, &errnum) < 0) {
        snprintf(err, errlen, "libipmimonitoring: %s", ipmi_monitoring_ctx_strerror(errnum));
        return NULL;
    }
    struct bmc *b = xcalloc(1, sizeof(*b));
    b->app = app;
    b->interval_ms = interval_ms;
    if (!(b->db = db_open(path, steps, sizeof(steps) / sizeof(steps[0]), err, errlen))) {
        free(b);
        return NULL;
    }
    snprintf(b->cache_dir, sizeof(b->cache_dir), "%s", path);
    char *slash = strrchr(b->cache_dir, '/');
    snprintf(slash ? slash + 1 : b->cache_dir, sizeof(b->cache_dir) - (size_t)(slash ? slash + 1 - b->cache_dir : 0),
             "sdr-cache");
    mkdir(b->cache_dir, 0700);
    pthread_mutex_init(&b->lock, NULL);
    now_cond_init(&b->wake);
    pthread_create(&b->thread, NULL, poll_main, b);
    return b;
}

void bmc_stop(struct bmc *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    sqlite3_close(b->db);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
    free(b->states);
    free(b);
}
