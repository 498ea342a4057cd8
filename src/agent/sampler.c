/* Sampler thread. It owns the collectors; HTTP threads only ever see the
 * published snapshots. A collector that keeps failing is skipped for a
 * doubling number of rounds (collectd's policy), capped at a minute. */
#include "sampler.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "collector.h"

struct coll_state {
    const struct collector *c;
    void *ctx;
    int active;
    int last_ok;
    double last_duration_s;
    uint64_t errors;
    unsigned consecutive_failures;
    int64_t skip_until_ns;
};

struct sampler {
    const struct agent_options *opts;
    struct snapshot_store *store;
    struct history *hist;
    struct coll_state *cs;
    size_t ncs;
    char hostname[256];
    pthread_t thread;
    int thread_running;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    /* self-observation */
    uint64_t seq;
    uint64_t late_total;
    double lateness_s;
    double cpu_s_total;
    double last_duration_s;
};

static void run_collector(struct sampler *s, struct coll_state *c, struct sample_ctx *sc,
                          int64_t now_ns)
{
    int64_t t0, t1;
    int rc;

    if (!c->active || now_ns < c->skip_until_ns)
        return;
    t0 = now_mono_ns();
    rc = c->c->sample(c->ctx, sc);
    t1 = now_mono_ns();
    c->last_duration_s = (double)(t1 - t0) / 1e9;
    c->last_ok = rc == 0;
    if (rc == 0) {
        if (c->consecutive_failures)
            log_info("collector %s: working again", c->c->name);
        c->consecutive_failures = 0;
        return;
    }
    c->errors++;
    if (c->consecutive_failures++ == 0)
        log_warn("collector %s: sample failed; backing off while it keeps failing", c->c->name);
    int64_t backoff = s->opts->interval_ms * 1000000LL;
    for (unsigned i = 1; i < c->consecutive_failures && backoff < 60000000000LL; i++)
        backoff *= 2;
    if (backoff > 60000000000LL)
        backoff = 60000000000LL;
    c->skip_until_ns = t1 + backoff;
}

static void write_self(struct sampler *s, struct expo_writer *w, json_t *root)
{
    struct expo_label l[1];
    size_t hist_samples, hist_bytes;
    json_t *cols = json_array();

    expo_family(w, "gpufleet_agent_info", EXPO_GAUGE, "Version of the gpufleet agent.");
    l[0] = (struct expo_label){"version", AGENT_VERSION};
    expo_sample(w, l, 1, 1);
    expo_family(w, "gpufleet_agent_sample_interval_seconds", EXPO_GAUGE,
                "Configured sampling interval.");
    expo_sample(w, NULL, 0, (double)s->opts->interval_ms / 1000.0);
    expo_family(w, "gpufleet_agent_samples_total", EXPO_COUNTER, "Samples taken since start.");
    expo_sample(w, NULL, 0, (double)s->seq);
    expo_family(w, "gpufleet_agent_sample_duration_seconds", EXPO_GAUGE,
                "Wall time the previous sample took, all collectors together.");
    expo_sample(w, NULL, 0, s->last_duration_s);
    expo_family(w, "gpufleet_agent_sample_cpu_seconds_total", EXPO_COUNTER,
                "CPU time the sampler thread has used.");
    expo_sample(w, NULL, 0, s->cpu_s_total);
    expo_family(w, "gpufleet_agent_sample_lateness_seconds", EXPO_GAUGE,
                "How long after its scheduled time this sample started.");
    expo_sample(w, NULL, 0, s->lateness_s);
    expo_family(w, "gpufleet_agent_samples_late_total", EXPO_COUNTER,
                "Samples that started more than a tenth of the interval late.");
    expo_sample(w, NULL, 0, (double)s->late_total);
    history_stats(s->hist, &hist_samples, &hist_bytes);
    expo_family(w, "gpufleet_agent_history_samples", EXPO_GAUGE,
                "Samples held in the backfill ring.");
    expo_sample(w, NULL, 0, (double)hist_samples);
    expo_family(w, "gpufleet_agent_history_bytes", EXPO_GAUGE,
                "Compressed bytes of values held in the backfill ring.");
    expo_sample(w, NULL, 0, (double)hist_bytes);

    expo_family(w, "gpufleet_collector_up", EXPO_GAUGE,
                "Whether the collector's last sample succeeded.");
    for (size_t i = 0; i < s->ncs; i++) {
        l[0] = (struct expo_label){"collector", s->cs[i].c->name};
        expo_sample(w, l, 1, s->cs[i].active && s->cs[i].last_ok);
    }
    expo_family(w, "gpufleet_collector_duration_seconds", EXPO_GAUGE,
                "How long the collector's last sample took.");
    for (size_t i = 0; i < s->ncs; i++) {
        l[0] = (struct expo_label){"collector", s->cs[i].c->name};
        expo_sample(w, l, 1, s->cs[i].last_duration_s);
    }
    expo_family(w, "gpufleet_collector_errors_total", EXPO_COUNTER,
                "Failed samples of the collector since start.");
    for (size_t i = 0; i < s->ncs; i++) {
        l[0] = (struct expo_label){"collector", s->cs[i].c->name};
        expo_sample(w, l, 1, (double)s->cs[i].errors);
        json_array_append_new(cols, json_pack("{s:s, s:b, s:b, s:f, s:I}", "name",
                                              s->cs[i].c->name, "active", s->cs[i].active, "ok",
                                              s->cs[i].active && s->cs[i].last_ok, "duration_s",
                                              s->cs[i].last_duration_s, "errors",
                                              (json_int_t)s->cs[i].errors));
    }
    json_object_set_new(root, "collectors", cols);
}

void sampler_sample_once(struct sampler *s)
{
    struct buf text;
    struct expo_writer w;
    int64_t t0 = now_mono_ns(), cpu0 = now_thread_cpu_ns();
    int64_t ts_ms = now_wall_ms();
    json_t *root = json_object(), *host = json_object();

    buf_init(&text, 0);
    expo_writer_init(&w, &text);
    json_object_set_new(root, "hostname", json_string(s->hostname));
    json_object_set_new(root, "timestamp_ms", json_integer(ts_ms));
    json_object_set_new(root, "agent_version", json_string(AGENT_VERSION));
    json_object_set(root, "host", host);
    struct sample_ctx sc = {
        .w = &w, .host = host, .root = root, .ts_ms = ts_ms,
        .hostname = s->hostname, .opts = s->opts,
    };
    for (size_t i = 0; i < s->ncs; i++)
        run_collector(s, &s->cs[i], &sc, t0);
    json_decref(host);
    s->seq++;
    write_self(s, &w, root);

    size_t len;
    char *body = buf_detach(&text, &len);
    history_add(s->hist, ts_ms, body, w.series, w.values, w.nseries);
    expo_writer_free(&w);
    snapshot_publish(s->store, snapshot_new(s->seq, ts_ms, body, len, root));
    s->last_duration_s = (double)(now_mono_ns() - t0) / 1e9;
    s->cpu_s_total += (double)(now_thread_cpu_ns() - cpu0) / 1e9;
}

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    int64_t interval_ns = s->opts->interval_ms * 1000000LL;
    int64_t next = now_mono_ns();

    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        pthread_mutex_unlock(&s->lock);
        int64_t start = now_mono_ns();
        s->lateness_s = (double)(start - next) / 1e9;
        if (start - next > interval_ns / 10)
            s->late_total++;
        sampler_sample_once(s);
        next += interval_ns;
        int64_t now = now_mono_ns();
        if (next <= now) /* fell behind by a whole interval: skip, don't burst */
            next = now + interval_ns - (now - next) % interval_ns;
        pthread_mutex_lock(&s->lock);
        while (!s->stop && now_cond_wait_until(&s->wake, &s->lock, next) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

struct sampler *sampler_start(const struct agent_options *opts, struct snapshot_store *store,
                              struct history *hist, int start_thread)
{
    struct sampler *s = xcalloc(1, sizeof(*s));

    s->opts = opts;
    s->store = store;
    s->hist = hist;
    if (opts->hostname)
        snprintf(s->hostname, sizeof(s->hostname), "%s", opts->hostname);
    else if (gethostname(s->hostname, sizeof(s->hostname) - 1) < 0)
        strcpy(s->hostname, "localhost");
    s->ncs = collector_count;
    s->cs = xcalloc(s->ncs, sizeof(*s->cs));
    for (size_t i = 0; i < s->ncs; i++) {
        s->cs[i].c = collector_table[i];
        s->cs[i].active = s->cs[i].c->init(&s->cs[i].ctx, opts) == 0;
        if (!s->cs[i].active)
            log_warn("collector %s: not available on this host", s->cs[i].c->name);
    }
    pthread_mutex_init(&s->lock, NULL);
    now_cond_init(&s->wake);
    if (start_thread) {
        if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
            log_error("sampler: cannot create thread");
            sampler_stop(s);
            return NULL;
        }
        s->thread_running = 1;
    }
    return s;
}

void sampler_stop(struct sampler *s)
{
    if (!s)
        return;
    if (s->thread_running) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    for (size_t i = 0; i < s->ncs; i++)
        if (s->cs[i].active && s->cs[i].c->shutdown)
            s->cs[i].c->shutdown(s->cs[i].ctx);
    free(s->cs);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
