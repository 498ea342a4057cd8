/* /healthz and the server's own /metrics. */
#include <stdio.h>
#include <string.h>

#include "../../lib/expo.h"
#include "../../lib/now.h"
#include "../alerts.h"
#include "../bmc.h"
#include "../apps.h"
#include "../containers.h"
#include "../fleet.h"
#include "../scrape.h"
#include "../remote_write.h"
#include "api.h"

/* The store's state: "degraded" with the reason when the writer has work
 * and stores none (a query holding the store, a disk that does not answer:
 * issue 18, /healthz said ok while frozen) or the last write failed. */
static json_t *store_health(struct server_app *app)
{
    struct tsdb_stats st;
    struct ingest_stats is;

    tsdb_stats(app->db, &st);
    ingest_stats(app->in, &is);
    int stalled = is.stalled_ms > 10000;
    int ok = st.last_error[0] == '\0' && !stalled;
    json_t *out = json_pack("{s:s, s:I, s:I, s:I}", "status", ok ? "ok" : "degraded", "series",
                            (json_int_t)st.series, "samples_stored", (json_int_t)st.samples_appended,
                            "queued_samples", (json_int_t)is.queued_samples);
    if (stalled)
        json_object_set_new(out, "error", json_sprintf("the store writer has stored nothing for %lld s"
                                                       " with %llu samples waiting",
                                                       (long long)(is.stalled_ms / 1000),
                                                       (unsigned long long)is.queued_samples));
    else if (!ok)
        json_object_set_new(out, "error", json_string(st.last_error));
    else
        json_object_set_new(out, "detail", json_sprintf("%llu series, %llu samples waiting",
                                                        (unsigned long long)st.series,
                                                        (unsigned long long)is.queued_samples));
    return out;
}

void api_healthz(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    json_t *out = store_health(app);
    int ok = !strcmp(json_string_value(json_object_get(out, "status")), "ok");
    json_object_set_new(out, "version", json_string(GPUFLEET_VERSION));
    json_object_set_new(out, "uptime_s", json_integer((now_wall_ms() - app->started_ms) / 1000));
    api_json(resp, ok ? 200 : 503, out);
}

/* An agent target as the fleet health lists it: up, the age of its last
 * good scrape, the version it reported. */
static json_t *agent_health(struct server_app *app, json_t *t, int64_t now)
{
    const char *server = json_string_value(json_object_get(t, "server"));
    char version[32] = "";
    int64_t ts = 0, interval = json_integer_value(json_object_get(t, "interval_ms"));
    int up = json_is_true(json_object_get(t, "up"));
    int seen = app->fleet && fleet_agent(app->fleet, server, version, sizeof(version), &ts) == 0;
    double age = seen ? (double)(now - ts) / 1000.0 : -1;
    const char *status = !up ? "down" : age < 0 || age * 1000 > 3 * interval + 5000 ? "stale" : "ok";
    json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "server", server, "instance",
                            json_string_value(json_object_get(t, "instance")), "status", status,
                            "version", version);
    json_object_set_new(out, "last_sample_age_s", age < 0 ? json_null() : json_real(age));
    if (!up && json_is_true(json_object_get(t, "scraped")))
        json_object_set(out, "detail", json_object_get(t, "last_error"));
    else if (!up)
        json_object_set_new(out, "detail", json_string("not scraped yet"));
    else if (!strcmp(status, "stale"))
        json_object_set_new(out, "detail", json_sprintf("no good scrape for %.0f s", age));
    else if (version[0] && strcmp(version, GPUFLEET_VERSION))
        json_object_set_new(out, "detail", json_sprintf("agent %s, server %s", version, GPUFLEET_VERSION));
    else
        json_object_set_new(out, "detail", json_string(""));
    return out;
}

static json_t *remote_write_health(struct server_app *app)
{
    struct remote_write_stats rs;
    if (!app->rw)
        return json_pack("{s:s, s:s}", "status", "off", "detail", "no remote_write_url set");
    remote_write_stats(app->rw, &rs);
    int failing = rs.last_error_ms > rs.last_ok_ms;
    json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "status", failing ? "degraded" : "ok",
                            "pending", (json_int_t)rs.pending, "sent", (json_int_t)rs.sent, "failed",
                            (json_int_t)rs.failed, "dropped", (json_int_t)rs.dropped, "last_ok_ms",
                            (json_int_t)rs.last_ok_ms);
    if (failing && rs.last_status)
        json_object_set_new(out, "detail", json_sprintf("the receiver answered HTTP %ld; %llu samples waiting",
                                                        rs.last_status, (unsigned long long)rs.pending));
    else if (failing)
        json_object_set_new(out, "detail", json_sprintf("the receiver does not answer; %llu samples waiting",
                                                        (unsigned long long)rs.pending));
    else
        json_object_set_new(out, "detail", json_sprintf("%llu samples sent, %llu waiting",
                                                        (unsigned long long)rs.sent,
                                                        (unsigned long long)rs.pending));
    return out;
}

static int worse(const char *a, const char *b)
{
    static const char *const order[] = {"ok", "off", "stale", "degraded", "down"};
    int ra = 0, rb = 0;
    for (int i = 0; i < 5; i++) {
        ra = !strcmp(a, order[i]) ? i : ra;
        rb = !strcmp(b, order[i]) ? i : rb;
    }
    return ra > rb;
}

static void component(json_t *list, const char *name, json_t *c, const char **overall)
{
    json_object_set_new(c, "name", json_string(name));
    if (!json_object_get(c, "detail") && json_object_get(c, "error"))
        json_object_set(c, "detail", json_object_get(c, "error"));
    else if (!json_object_get(c, "detail"))
        json_object_set_new(c, "detail", json_string(""));
    const char *st = json_string_value(json_object_get(c, "status"));
    if (strcmp(st, "off") && worse(st, *overall))
        *overall = !strcmp(st, "down") && strcmp(name, "store") ? "degraded" : st;
    json_array_append_new(list, c);
}

/* Long for its list: every part of the server that can fail, each with a
 * status and the reason, then every agent and exporter. */
void api_health_fleet(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    int64_t now = now_wall_ms();
    const char *overall = "ok";
    json_t *comps = json_array(), *agents = json_array(), *exporters = json_array();
    json_t *targets = app->scraper ? scraper_targets_json(app->scraper) : json_array(), *t;
    size_t i, up = 0, n = json_array_size(targets);

    (void)req;
    component(comps, "store", store_health(app), &overall);
    json_array_foreach(targets, i, t)
    {
        up += json_is_true(json_object_get(t, "up"));
        if (!strcmp(json_string_value(json_object_get(t, "job")), "gpufleet-agent"))
            json_array_append_new(agents, agent_health(app, t, now));
        else
            json_array_append_new(exporters, json_pack("{s:O, s:O, s:O, s:s, s:O}", "server",
                                                       json_object_get(t, "server"), "job",
                                                       json_object_get(t, "job"), "instance",
                                                       json_object_get(t, "instance"), "status",
                                                       json_is_true(json_object_get(t, "up")) ? "ok" : "down",
                                                       "detail", json_object_get(t, "last_error")));
    }
    component(comps, "scraper",
              json_pack("{s:s, s:o}", "status", up == n ? "ok" : "degraded", "detail",
                        json_sprintf("%zu of %zu targets up", up, n)),
              &overall);
    if (app->alerts) {
        json_t *ah = alerts_health(app->alerts, now);
        component(comps, "alert_evaluator", json_incref(json_object_get(ah, "evaluator")), &overall);
        component(comps, "notifications", json_incref(json_object_get(ah, "notifications")), &overall);
        json_decref(ah);
    }
    component(comps, "remote_write", remote_write_health(app), &overall);
    json_decref(targets);
    /* each BMC: status ok/down/unknown with the reason; one down degrades */
    json_t *bmcs = app->bmc ? bmc_list(app->bmc) : json_array(), *b;
    json_array_foreach(bmcs, i, b)
    {
        json_object_del(b, "user");
        json_object_del(b, "password_set");
        if (!strcmp(json_string_value(json_object_get(b, "status")), "down") && !strcmp(overall, "ok"))
            overall = "degraded";
    }
    api_json(resp, 200, json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o}", "status", overall, "version",
                                  GPUFLEET_VERSION, "ts_ms", (json_int_t)now, "components", comps,
                                  "agents", agents, "exporters", exporters, "bmcs", bmcs));
}

/* Writes one unlabeled series as its own family. */
static void one(struct expo_writer *w, const char *name, enum expo_type type, const char *help,
                double v)
{
    expo_family(w, name, type, help);
    expo_sample(w, NULL, 0, v);
}

void api_metrics(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct tsdb_stats st;
    struct ingest_stats is;
    struct expo_writer w;

    (void)req;
    tsdb_stats(app->db, &st);
    ingest_stats(app->in, &is);
    expo_writer_init(&w, &resp->body);
    one(&w, "gpufleet_server_series", EXPO_GAUGE, "Series in the store.", (double)st.series);
    one(&w, "gpufleet_server_samples_appended_total", EXPO_COUNTER,
        "Samples written to the store.", (double)st.samples_appended);
    one(&w, "gpufleet_server_chunks_written_total", EXPO_COUNTER,
        "Compressed chunks written to the store.", (double)st.chunks_written);
    one(&w, "gpufleet_server_chunk_bytes_total", EXPO_COUNTER,
        "Bytes of compressed chunks written.", (double)st.chunk_bytes);
    one(&w, "gpufleet_server_head_samples", EXPO_GAUGE,
        "Samples held in memory, not yet in a chunk.", (double)st.head_samples);
    one(&w, "gpufleet_server_head_bytes", EXPO_GAUGE,
        "Memory of the store's heads: samples not yet in a chunk, the last sealed head, roll-ups.",
        (double)st.head_bytes);
    one(&w, "gpufleet_server_series_bytes", EXPO_GAUGE,
        "Memory of the store's series: their index entries and labels.", (double)st.series_bytes);
    one(&w, "gpufleet_server_sample_log_bytes", EXPO_GAUGE,
        "Bytes of the store's sample log on disk (what a crash would replay).",
        (double)st.log_bytes);
    one(&w, "gpufleet_server_sample_log_write_errors_total", EXPO_COUNTER,
        "Writes to the sample log that failed (their samples are in memory only until"
        " their chunks are written).",
        (double)st.log_write_errors);
    one(&w, "gpufleet_server_samples_future_refused_total", EXPO_COUNTER,
        "Samples refused for a timestamp too far ahead of the clock (max_sample_future_ms).",
        (double)st.future_refused);
    one(&w, "gpufleet_server_write_errors_total", EXPO_COUNTER,
        "Failed writes to the store (a full disk, for one).", (double)st.write_errors);
    one(&w, "gpufleet_server_query_cache_bytes", EXPO_GAUGE,
        "Decoded samples the queries' chunk cache holds (query_cache_mb bounds it).", (double)st.cache_bytes);
    one(&w, "gpufleet_server_query_cache_entries", EXPO_GAUGE,
        "Series-in-chunk columns in the queries' chunk cache.", (double)st.cache_entries);
    one(&w, "gpufleet_server_query_cache_hits_total", EXPO_COUNTER,
        "Chunk columns a query found decoded in the cache.", (double)st.cache_hits);
    one(&w, "gpufleet_server_query_cache_misses_total", EXPO_COUNTER,
        "Chunk columns a query had to decompress.", (double)st.cache_misses);
    one(&w, "gpufleet_server_ingest_queued_samples", EXPO_GAUGE,
        "Samples waiting for the store writer.", (double)is.queued_samples);
    one(&w, "gpufleet_server_ingest_dropped_batches_total", EXPO_COUNTER,
        "Batches dropped because the writer's queue stayed full.", (double)is.dropped_batches);
    if (app->rw) {
        struct remote_write_stats rs;
        remote_write_stats(app->rw, &rs);
        one(&w, "gpufleet_remote_write_samples_pending", EXPO_GAUGE,
            "Samples queued for the remote_write receiver.", (double)rs.pending);
        one(&w, "gpufleet_remote_write_samples_sent_total", EXPO_COUNTER,
            "Samples the receiver accepted.", (double)rs.sent);
        one(&w, "gpufleet_remote_write_samples_failed_total", EXPO_COUNTER,
            "Samples the receiver refused with a 4xx other than 429 (not retried).",
            (double)rs.failed);
        one(&w, "gpufleet_remote_write_samples_dropped_total", EXPO_COUNTER,
            "Samples dropped because the queue was full.", (double)rs.dropped);
        one(&w, "gpufleet_remote_write_retries_total", EXPO_COUNTER,
            "Requests retried after a 5xx, a 429 or a connection error.", (double)rs.retries);
    }
    expo_writer_free(&w);
    if (app->ctr)
        ctr_metrics(app->ctr, &resp->body);
    if (app->apps)
        apps_metrics(app->apps, &resp->body);
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

void api_checkpoint(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    ingest_sync(app->in); /* what is queued is stored first */
    int rc = tsdb_checkpoint(app->db, now_wall_ms());
    if (rc < 0) {
        http_error(resp, 500, "storage_error", NULL, "the store could not commit; see the log");
        return;
    }
    api_json(resp, 200, json_pack("{s:b}", "ok", 1));
}
