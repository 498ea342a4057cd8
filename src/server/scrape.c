/* Scraper thread. Targets are re-read from the registry when it changes;
 * each keeps its schedule, spread over its interval so a fleet is not
 * scraped all at the same instant. */
#include "scrape.h"
#include "metadata.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "store/serieskey.h"

#define MAX_EXTRA 40
/* A 10-minute ring of a busy agent at 100 ms is ~30 MB of JSON; jansson's
 * tree of it is several times that, so the bound stays modest. */
#define HISTORY_MAX_BYTES (64u << 20)

enum req_kind { REQ_SCRAPE, REQ_HISTORY };

struct target {
    struct reg_target t;
    int64_t next_ns;
    int seen; /* still registered after the last reload */
    CURL *easy;
    enum req_kind kind;
    struct buf body;
    int too_big;
    char ctype[128];
    int64_t started_ns, started_ms;
    struct curl_slist *headers;
    /* state */
    int up, ever_scraped, was_up;
    double last_duration_s;
    long last_samples;
    int64_t last_scrape_ms;
    char last_error[256];
    char told_why[256]; /* the offline reason the registry has */
    struct ingest_batch *held; /* a scrape waiting for its backfill */
    struct key_cache *keys;    /* series text -> key or series, for this target's labels */
};

struct scraper {
    struct scrape_config cfg;
    struct registry *reg;
    struct ingest *in;
    struct tsdb *db;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t lock; /* guards targets for scraper_targets_json */
    struct target **targets;
    size_t ntargets;
    uint64_t reg_version;
    int reload_wanted; /* set by scraper_set_intervals */
    int stop;
};

/* ---- parsing ---- */

struct parse_ctx {
    struct ingest_batch *b;
    struct key_cache *cache;
    const struct prom_label *extra;
    size_t nextra;
    int64_t ts_ms;
    long n, bad;
    struct metadata *meta;
    char last_family[256]; /* the family noted last */
};

static int on_sample(void *arg, const struct prom_sample *s)
{
    struct parse_ctx *c = arg;
    /* once per family per scrape */
    if (c->meta && s->family && strcmp(s->family, c->last_family)) {
        metadata_note(c->meta, s->family, s->type, s->help, s->unit);
        snprintf(c->last_family, sizeof(c->last_family), "%s", s->family);
    }
    if (ingest_batch_add_cached(c->b, c->cache, s, c->extra, c->nextra, c->ts_ms) < 0)
        c->bad++;
    else
        c->n++;
    return 0;
}

long scrape_parse(const char *body, size_t len, int openmetrics, const struct scrape_config *cfg,
                  const struct prom_label *extra, size_t nextra, int64_t ts_ms,
                  struct key_cache *cache, struct ingest_batch *batch, char *err, size_t errlen)
{
    struct prom_limits lim = {.max_value_len = cfg->max_label_value_len,
                              .max_samples = cfg->max_series};
    struct prom_error perr;
    struct parse_ctx c = {batch, cache, extra, nextra, ts_ms, 0, 0, cfg->meta, ""};

    if (prom_parse(body, len, openmetrics, &lim, on_sample, &c, &perr) != 0) {
        snprintf(err, errlen, "line %zu: %s", perr.line, perr.msg);
        return -1;
    }
    if (c.bad && c.n == 0) {
        snprintf(err, errlen, "no usable sample (%ld with invalid UTF-8 labels)", c.bad);
        return -1;
    }
    return c.n;
}

static int parse_json_value(json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v))
        return prom_parse_float(json_string_value(v), strlen(json_string_value(v)), out);
    return -1;
}

/* A history key as a sample of the exposition parser's shape, so it is
 * keyed with the target's labels as a scraped line is. 0 or -1. */
static int key_sample(const char *key, struct serieskey *k, struct prom_sample *s)
{
    if (serieskey_parse(key, strlen(key), k) < 0)
        return -1;
    if (k->nlabels > PROM_MAX_LABELS_HARD) {
        serieskey_free(k);
        return -1;
    }
    memset(s, 0, sizeof(*s));
    s->name = k->name;
    s->name_len = k->name_len;
    memcpy(s->labels, k->labels, k->nlabels * sizeof(*k->labels));
    s->nlabels = k->nlabels;
    return 0;
}

long scrape_parse_history(const char *body, size_t len, const struct prom_label *extra,
                          size_t nextra, struct ingest_batch *batch, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    long n = 0;
    size_t si;
    json_t *seg;

    if (!root || !json_is_array(json_object_get(root, "segments"))) {
        snprintf(err, errlen, "history: not the agent's history JSON (%s)",
                 root ? "no segments" : jerr.text);
        json_decref(root);
        return -1;
    }
    json_array_foreach(json_object_get(root, "segments"), si, seg) {
        json_t *series = json_object_get(seg, "series"), *samples = json_object_get(seg, "samples");
        size_t ns = json_array_size(series), k;
        if (!json_is_array(series) || !json_is_array(samples))
            continue;
        struct prom_sample *keys = xcalloc(ns ? ns : 1, sizeof(*keys));
        struct serieskey *parsed = xcalloc(ns ? ns : 1, sizeof(*parsed));
        json_t *sv;
        json_array_foreach(series, k, sv) {
            const char *key = json_string_value(sv);
            if (!key || key_sample(key, &parsed[k], &keys[k]) < 0)
                keys[k].name = NULL;
        }
        size_t r;
        json_t *row;
        json_array_foreach(samples, r, row) {
            json_t *tv = json_array_get(row, 0);
            if (!json_is_integer(tv) || json_array_size(row) != ns + 1)
                continue;
            int64_t ts = json_integer_value(tv);
            for (k = 0; k < ns; k++) {
                double v;
                if (!keys[k].name || parse_json_value(json_array_get(row, k + 1), &v) < 0)
                    continue;
                keys[k].value = v;
                keys[k].has_ts = 1;
                keys[k].ts_ms = ts;
                if (ingest_batch_add(batch, &keys[k], extra, nextra, ts) == 0)
                    n++;
            }
        }
        for (k = 0; k < ns; k++)
            serieskey_free(&parsed[k]);
        free(parsed);
        free(keys);
    }
    json_decref(root);
    return n;
}

/* ---- one target ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct target *t = arg;
    size_t n = size * nmemb;
    if (buf_append(&t->body, data, n) < 0) {
        t->too_big = 1;
        return 0; /* aborts the transfer */
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct target *t = arg;
    size_t n = size * nmemb;
    if (n > 13 && !strncasecmp(data, "Content-Type:", 13)) {
        size_t k = n - 13;
        if (k >= sizeof(t->ctype))
            k = sizeof(t->ctype) - 1;
        memcpy(t->ctype, data + 13, k);
        t->ctype[k] = '\0';
    }
    return n;
}

static int64_t timeout_of(const struct scraper *s, const struct target *t)
{
    /* as scrape_timeout_ms says: a scrape never outlasts its interval */
    int64_t to = s->cfg.timeout_ms;
    return to > t->t.interval_ms ? t->t.interval_ms : to;
}

static void start_request(struct scraper *s, struct target *t, enum req_kind kind,
                          const char *url, size_t max_bytes)
{
    char auth[600];

    t->easy = curl_easy_init();
    t->kind = kind;
    buf_free(&t->body);
    buf_init(&t->body, max_bytes);
    t->too_big = 0;
    t->ctype[0] = '\0';
    t->started_ns = now_mono_ns();
    t->started_ms = now_wall_ms();
    t->headers = curl_slist_append(NULL, "Accept: application/openmetrics-text;version=1.0.0;q=0.9,"
                                         "text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
    if (t->t.token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->t.token);
        t->headers = curl_slist_append(t->headers, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)(kind == REQ_HISTORY ? 30000 : timeout_of(s, t)));
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "gpufleet/0.1");
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_multi_add_handle(s->multi, t->easy);
}

static void finish_request(struct scraper *s, struct target *t)
{
    curl_multi_remove_handle(s->multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    t->easy = NULL;
    /* parsed by now: 500 agents' last answers kept between scrapes were
     * 65 MB (issue 18, memory per series) */
    buf_free(&t->body);
}

static size_t extra_labels(const struct target *t, struct prom_label *l)
{
    size_t n = 0;
    l[n++] = (struct prom_label){"job", 3, t->t.job, strlen(t->t.job)};
    l[n++] = (struct prom_label){"instance", 8, t->t.instance, strlen(t->t.instance)};
    l[n++] = (struct prom_label){"server", 6, t->t.server, strlen(t->t.server)};
    return n;
}

static void add_synthetic(struct ingest_batch *b, const struct prom_label *extra, size_t nextra,
                          const char *name, double v, int64_t ts)
{
    struct prom_sample s;
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.name_len = strlen(name);
    s.value = v;
    ingest_batch_add(b, &s, extra, nextra, ts);
}

void scrape_reason(char *out, size_t n, int curl_code, long http_status, const char *where, long timeout_ms)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OK:
        break;
    case CURLE_COULDNT_CONNECT:
        snprintf(out, n, "nothing answers on %s (connection refused): is the agent running, on this port?", where);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out, n, "no answer from %s within %.1f s: the host is down, a firewall drops the traffic, or the agent is stuck",
                 where, (double)timeout_ms / 1000.0);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out, n, "the name in %s does not resolve (DNS)", where);
        return;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        snprintf(out, n, "%s closed the connection before a full answer (the agent restarting or crashing?)", where);
        return;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
        snprintf(out, n, "%s does not answer in HTTP: is this the agent's port?", where);
        return;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        snprintf(out, n, "the TLS handshake with %s failed", where);
        return;
    default:
        snprintf(out, n, "%s: %s", where, curl_easy_strerror((CURLcode)curl_code));
        return;
    }
    if (http_status == 401 || http_status == 403)
        snprintf(out, n, "%s refused the server's token (HTTP %ld): give it the token it was registered with", where,
                 http_status);
    else if (http_status == 404)
        snprintf(out, n, "%s has no metrics there (HTTP 404): is it a gpufleet agent or an exporter?", where);
    else if (http_status == 429)
        snprintf(out, n, "%s turned the scrape away (HTTP 429, too many requests)", where);
    else if (http_status >= 500)
        snprintf(out, n, "%s failed to answer (HTTP %ld)", where, http_status);
    else
        snprintf(out, n, "%s answered HTTP %ld instead of metrics", where, http_status);
}

/* Online and offline are the registry's; so is why, told again when the
 * reason changes while offline (refused, then timing out) */
static void set_online(struct scraper *s, struct target *t, int up, const char *why)
{
    if (!t->t.is_agent)
        return;
    if (t->ever_scraped && up == t->was_up && (up || !strcmp(why, t->told_why)))
        return;
    snprintf(t->told_why, sizeof(t->told_why), "%s", up ? "" : why);
    reg_set_status(s->reg, t->t.server_id, up, why, now_wall_ms());
    if (up)
        log_info("scrape: server %s is online (%s)", t->t.server, t->t.instance);
    else
        log_warn("scrape: server %s is offline: %s", t->t.server, why);
}

static void on_scrape_done(struct scraper *s, struct target *t, CURLcode cc)
{
    struct prom_label extra[MAX_EXTRA];
    size_t nextra = extra_labels(t, extra);
    long status = 0;
    double dur = (double)(now_mono_ns() - t->started_ns) / 1e9;
    struct ingest_batch *b = ingest_batch_new();
    char err[256] = "";
    long n = -1;

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (t->too_big)
        snprintf(err, sizeof(err), "its answer is larger than %zu bytes (max_scrape_bytes)", s->cfg.max_body_bytes);
    else if (cc != CURLE_OK || status != 200)
        scrape_reason(err, sizeof(err), cc, status, t->t.instance, (long)timeout_of(s, t));
    else {
        int om = strstr(t->ctype, "openmetrics") != NULL;
        if (!t->keys)
            t->keys = key_cache_new(s->cfg.max_series * 2);
        n = scrape_parse(t->body.data ? t->body.data : "", t->body.len, om, &s->cfg, extra,
                         nextra, t->started_ms, t->keys, b, err, sizeof(err));
        key_cache_settle(t->keys, s->db);
        if (n < 0) {
            /* nothing of a malformed scrape is kept, as Prometheus does */
            ingest_batch_free(b);
            b = ingest_batch_new();
        }
    }
    int up = n >= 0;
    add_synthetic(b, extra, nextra, "up", up, t->started_ms);
    add_synthetic(b, extra, nextra, "scrape_duration_seconds", dur, t->started_ms);
    add_synthetic(b, extra, nextra, "scrape_samples_scraped", up ? (double)n : 0, t->started_ms);
    b->is_scrape = 1;
    snprintf(b->job, sizeof(b->job), "%s", t->t.job);
    snprintf(b->instance, sizeof(b->instance), "%s", t->t.instance);
    b->scrape_ts_ms = t->started_ms;

    pthread_mutex_lock(&s->lock);
    t->up = up;
    t->last_duration_s = dur;
    t->last_samples = up ? n : 0;
    t->last_scrape_ms = t->started_ms;
    snprintf(t->last_error, sizeof(t->last_error), "%s", err);
    pthread_mutex_unlock(&s->lock);
    if (!up)
        log_debug("scrape %s: %s", t->t.url, err);
    set_online(s, t, up, up ? "" : err);

    /* after a gap, fetch what the agent still holds before storing this */
    /* nothing stored (a first contact, or a crash lost the heads): take all
     * the agent holds */
    int64_t last = tsdb_last_ts(s->db, t->t.job, t->t.instance);
    int gap = last == 0 || t->started_ms - last > 2 * t->t.interval_ms;
    int first_up = up && (!t->ever_scraped || !t->was_up);
    t->ever_scraped = 1;
    t->was_up = up;
    finish_request(s, t);
    if (t->t.is_agent && first_up && gap) {
        char url[2200];
        if (last)
            snprintf(url, sizeof(url), "http://%s/api/v1/history?since=%lld", t->t.instance,
                     (long long)(last + 1));
        else
            snprintf(url, sizeof(url), "http://%s/api/v1/history", t->t.instance);
        t->held = b;
        start_request(s, t, REQ_HISTORY, url, HISTORY_MAX_BYTES);
        log_info("scrape: backfilling %s from %lld (a %lld ms gap)", t->t.instance,
                 (long long)last, (long long)(t->started_ms - last));
        return;
    }
    ingest_push(s->in, b, 1000);
}

static void on_history_done(struct scraper *s, struct target *t, CURLcode cc)
{
    struct prom_label extra[MAX_EXTRA];
    size_t nextra = extra_labels(t, extra);
    long status = 0;
    char err[256] = "";

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status == 200) {
        struct ingest_batch *b = ingest_batch_new();
        long n = scrape_parse_history(t->body.data ? t->body.data : "", t->body.len, extra,
                                      nextra, b, err, sizeof(err));
        if (n >= 0) {
            log_info("scrape: backfilled %ld samples from %s", n, t->t.instance);
            ingest_push(s->in, b, 5000);
        } else {
            ingest_batch_free(b);
        }
    } else {
        snprintf(err, sizeof(err), "%s", cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP error");
    }
    if (err[0])
        log_warn("scrape: backfill from %s failed: %s", t->t.instance, err);
    finish_request(s, t);
    if (t->held)
        ingest_push(s->in, t->held, 1000);
    t->held = NULL;
}

/* ---- the loop ---- */

static int same_target(const struct reg_target *a, const struct reg_target *b)
{
    return a->server_id == b->server_id && !strcmp(a->job, b->job) && !strcmp(a->url, b->url);
}

static void reload(struct scraper *s)
{
    struct reg_target *list;
    size_t n = reg_targets(s->reg, __atomic_load_n(&s->cfg.agent_interval_ms, __ATOMIC_RELAXED),
                           __atomic_load_n(&s->cfg.exporter_interval_ms, __ATOMIC_RELAXED), &list);
    int64_t now = now_mono_ns();

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->ntargets; i++)
        s->targets[i]->seen = 0;
    for (size_t k = 0; k < n; k++) {
        struct target *t = NULL;
        for (size_t i = 0; i < s->ntargets && !t; i++)
            if (same_target(&s->targets[i]->t, &list[k]))
                t = s->targets[i];
        if (!t) {
            t = xcalloc(1, sizeof(*t));
            buf_init(&t->body, 0);
            /* spread first scrapes over the interval */
            uint64_t h = 1469598103934665603ULL;
            for (const char *p = list[k].url; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
            t->next_ns = now + (int64_t)(h % (uint64_t)(list[k].interval_ms / 4 + 1)) * 1000000LL;
            s->targets = xrealloc(s->targets, (s->ntargets + 1) * sizeof(*s->targets));
            s->targets[s->ntargets++] = t;
        }
        if (t->keys && strcmp(t->t.server, list[k].server))
            key_cache_clear(t->keys); /* the server label changed */
        t->t = list[k];
        t->seen = 1;
    }
    /* drop targets no longer registered (once idle); their series end
     * with a stale marker, as Prometheus ends a vanished target's, so
     * their alerts (TargetDown above all) resolve now instead of firing on
     * the last sample until it is 5 minutes old */
    size_t w = 0, nended = 0;
    struct ingest_batch **ended = xcalloc(s->ntargets + 1, sizeof(*ended));
    for (size_t i = 0; i < s->ntargets; i++) {
        struct target *t = s->targets[i];
        if (!t->seen && !t->easy) {
            struct ingest_batch *b = ended[nended++] = ingest_batch_new();
            b->is_scrape = 1;
            snprintf(b->job, sizeof(b->job), "%s", t->t.job);
            snprintf(b->instance, sizeof(b->instance), "%s", t->t.instance);
            b->scrape_ts_ms = now_wall_ms();
            buf_free(&t->body);
            key_cache_free(t->keys);
            ingest_batch_free(t->held);
            free(t);
            continue;
        }
        s->targets[w++] = t;
    }
    s->ntargets = w;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < nended; i++)
        ingest_push(s->in, ended[i], 1000);
    free(ended);
    if (list)
        explicit_bzero(list, n * sizeof(*list));
    free(list);
}

static void *scrape_main(void *arg)
{
    struct scraper *s = arg;

    for (;;) {
        pthread_mutex_lock(&s->lock);
        int stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
        uint64_t v = reg_version(s->reg);
        if (v != s->reg_version || __atomic_exchange_n(&s->reload_wanted, 0, __ATOMIC_RELAXED)) {
            s->reg_version = v;
            reload(s);
        }
        int64_t now = now_mono_ns(), next = now + 200000000LL;
        for (size_t i = 0; i < s->ntargets; i++) {
            struct target *t = s->targets[i];
            if (!t->seen || t->easy)
                continue;
            if (t->next_ns <= now) {
                start_request(s, t, REQ_SCRAPE, t->t.url, s->cfg.max_body_bytes);
                t->next_ns += t->t.interval_ms * 1000000LL;
                if (t->next_ns <= now) /* fell behind: skip, don't burst */
                    t->next_ns = now + t->t.interval_ms * 1000000LL;
            }
            if (t->next_ns < next)
                next = t->next_ns;
        }
        int running = 0;
        curl_multi_perform(s->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(s->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct target *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            if (t->kind == REQ_SCRAPE)
                on_scrape_done(s, t, msg->data.result);
            else
                on_history_done(s, t, msg->data.result);
        }
        int wait_ms = (int)((next - now_mono_ns()) / 1000000LL);
        if (wait_ms < 1)
            wait_ms = 1;
        if (wait_ms > 200)
            wait_ms = 200;
        curl_multi_poll(s->multi, NULL, 0, wait_ms, NULL);
    }
    return NULL;
}

struct scraper *scraper_start(const struct scrape_config *cfg, struct registry *reg,
                              struct ingest *in, struct tsdb *db)
{
    struct scraper *s = xcalloc(1, sizeof(*s));

    s->cfg = *cfg;
    s->reg = reg;
    s->in = in;
    s->db = db;
    s->multi = curl_multi_init();
    /* keep a connection per target alive between scrapes; several targets
     * may share a host (exporters beside an agent, or simulated fleets) */
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 4096L);
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->thread, NULL, scrape_main, s) != 0) {
        log_error("scrape: cannot start the scraper thread");
        curl_multi_cleanup(s->multi);
        free(s);
        return NULL;
    }
    return s;
}

void scraper_stop(struct scraper *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_mutex_unlock(&s->lock);
    curl_multi_wakeup(s->multi);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->ntargets; i++) {
        struct target *t = s->targets[i];
        if (t->easy)
            finish_request(s, t);
        buf_free(&t->body);
        key_cache_free(t->keys);
        ingest_batch_free(t->held);
        free(t);
    }
    free(s->targets);
    curl_multi_cleanup(s->multi);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

json_t *scraper_targets_json(struct scraper *s)
{
    json_t *arr = json_array();

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->ntargets; i++) {
        struct target *t = s->targets[i];
        if (!t->seen)
            continue;
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:b, s:I, s:f, s:I, s:s}", "server",
                           t->t.server, "job", t->t.job, "instance", t->t.instance, "url",
                           t->t.url, "interval_ms", (json_int_t)t->t.interval_ms, "scraped",
                           t->ever_scraped, "up", t->up, "last_scrape_ms",
                           (json_int_t)t->last_scrape_ms, "last_duration_s", t->last_duration_s,
                           "last_samples", (json_int_t)t->last_samples, "last_error",
                           t->last_error));
    }
    pthread_mutex_unlock(&s->lock);
    return arr;
}

json_t *scrape_check_agent(const char *address, int port, const char *token, int timeout_ms)
{
    char url[400], auth[600];
    struct buf body;
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    json_t *out;
    int v6 = strchr(address, ':') != NULL;

    buf_init(&body, 8u << 20);
    snprintf(url, sizeof(url), v6 ? "http://[%s]:%d/api/v1/snapshot" : "http://%s:%d/api/v1/snapshot",
             address, port);
    if (token && *token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(NULL, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    struct target fake;
    memset(&fake, 0, sizeof(fake));
    fake.body = body;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &fake);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    int64_t t0 = now_mono_ns();
    CURLcode cc = curl_easy_perform(e);
    double ms = (double)(now_mono_ns() - t0) / 1e6;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    out = json_pack("{s:s, s:f}", "url", url, "latency_ms", round(ms * 100) / 100);
    if (cc != CURLE_OK || status != 200) {
        char why[256], where[300];
        snprintf(where, sizeof(where), v6 ? "[%s]:%d" : "%s:%d", address, port);
        scrape_reason(why, sizeof(why), cc, status, where, timeout_ms);
        json_object_set_new(out, "reachable", json_boolean(cc == CURLE_OK));
        json_object_set_new(out, "ok", json_false());
        json_object_set_new(out, "error", json_string(why));
    } else {
        json_error_t jerr;
        json_t *snap = json_loadb(fake.body.data, fake.body.len, 0, &jerr);
        json_object_set_new(out, "reachable", json_true());
        json_object_set_new(out, "ok", json_boolean(snap != NULL));
        if (snap) {
            json_object_set(out, "agent_version", json_object_get(snap, "agent_version"));
            json_object_set(out, "hostname", json_object_get(snap, "hostname"));
            json_object_set_new(out, "gpu_count",
                                json_integer((json_int_t)json_array_size(json_object_get(snap, "gpus"))));
            json_object_set(out, "nvml", json_object_get(snap, "nvml"));
            json_decref(snap);
        } else {
            json_object_set_new(out, "error", json_string("the reply is not an agent snapshot"));
        }
    }
    buf_free(&fake.body);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return out;
}

void scraper_set_intervals(struct scraper *s, int64_t agent_ms, int64_t exporter_ms)
{
    __atomic_store_n(&s->cfg.agent_interval_ms, agent_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&s->cfg.exporter_interval_ms, exporter_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&s->reload_wanted, 1, __ATOMIC_RELAXED);
}
