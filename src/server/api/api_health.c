/* /healthz and the server's own /metrics. */
#include <stdio.h>
#include <string.h>

#include "../../lib/expo.h"
#include "../../lib/now.h"
#include "../containers.h"
#include "../remote_write.h"
#include "api.h"

void api_healthz(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct tsdb_stats st;
    struct ingest_stats is;

    (void)req;
    tsdb_stats(app->db, &st);
    ingest_stats(app->in, &is);
    /* the writer has work and stores none: a query holding the store, a
     * disk that does not answer (issue 18: /healthz said ok while frozen) */
    int stalled = is.stalled_ms > 10000;
    int ok = st.last_error[0] == '\0' && !stalled;
    json_t *out = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "status", ok ? "ok" : "degraded",
                            "version", GPUFLEET_VERSION, "uptime_s",
                            (json_int_t)((now_wall_ms() - app->started_ms) / 1000), "series",
                            (json_int_t)st.series, "samples_stored",
                            (json_int_t)st.samples_appended, "queued_samples",
                            (json_int_t)is.queued_samples);
    if (stalled)
        json_object_set_new(out, "error", json_sprintf("the store writer has stored nothing for %lld s"
                                                       " with %llu samples waiting",
                                                       (long long)(is.stalled_ms / 1000),
                                                       (unsigned long long)is.queued_samples));
    else if (!ok)
        json_object_set_new(out, "error", json_string(st.last_error));
    api_json(resp, ok ? 200 : 503, out);
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
