/* /healthz and the server's own /metrics. */
#include <stdio.h>
#include <string.h>

#include "../../lib/expo.h"
#include "../../lib/now.h"
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
    int ok = st.last_error[0] == '\0';
    json_t *out = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "status", ok ? "ok" : "degraded",
                            "version", GPUFLEET_VERSION, "uptime_s",
                            (json_int_t)((now_wall_ms() - app->started_ms) / 1000), "series",
                            (json_int_t)st.series, "samples_stored",
                            (json_int_t)st.samples_appended, "queued_samples",
                            (json_int_t)is.queued_samples);
    if (!ok)
        json_object_set_new(out, "error", json_string(st.last_error));
    api_json(resp, ok ? 200 : 503, out);
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
    expo_family(&w, "gpufleet_server_series", EXPO_GAUGE, "Series in the store.");
    expo_sample(&w, NULL, 0, (double)st.series);
    expo_family(&w, "gpufleet_server_samples_appended_total", EXPO_COUNTER,
                "Samples written to the store.");
    expo_sample(&w, NULL, 0, (double)st.samples_appended);
    expo_family(&w, "gpufleet_server_chunks_written_total", EXPO_COUNTER,
                "Compressed chunks written to the store.");
    expo_sample(&w, NULL, 0, (double)st.chunks_written);
    expo_family(&w, "gpufleet_server_chunk_bytes_total", EXPO_COUNTER,
                "Bytes of compressed chunks written.");
    expo_sample(&w, NULL, 0, (double)st.chunk_bytes);
    expo_family(&w, "gpufleet_server_head_samples", EXPO_GAUGE,
                "Samples held in memory, not yet in a chunk.");
    expo_sample(&w, NULL, 0, (double)st.head_samples);
    expo_family(&w, "gpufleet_server_write_errors_total", EXPO_COUNTER,
                "Failed writes to the store (a full disk, for one).");
    expo_sample(&w, NULL, 0, (double)st.write_errors);
    expo_family(&w, "gpufleet_server_ingest_queued_samples", EXPO_GAUGE,
                "Samples waiting for the store writer.");
    expo_sample(&w, NULL, 0, (double)is.queued_samples);
    expo_family(&w, "gpufleet_server_ingest_dropped_batches_total", EXPO_COUNTER,
                "Batches dropped because the writer's queue stayed full.");
    expo_sample(&w, NULL, 0, (double)is.dropped_batches);
    if (app->rw) {
        struct remote_write_stats rs;
        remote_write_stats(app->rw, &rs);
        expo_family(&w, "gpufleet_remote_write_samples_pending", EXPO_GAUGE,
                    "Samples queued for the remote_write receiver.");
        expo_sample(&w, NULL, 0, (double)rs.pending);
        expo_family(&w, "gpufleet_remote_write_samples_sent_total", EXPO_COUNTER,
                    "Samples the receiver accepted.");
        expo_sample(&w, NULL, 0, (double)rs.sent);
        expo_family(&w, "gpufleet_remote_write_samples_failed_total", EXPO_COUNTER,
                    "Samples the receiver refused with a 4xx other than 429 (not retried).");
        expo_sample(&w, NULL, 0, (double)rs.failed);
        expo_family(&w, "gpufleet_remote_write_samples_dropped_total", EXPO_COUNTER,
                    "Samples dropped because the queue was full.");
        expo_sample(&w, NULL, 0, (double)rs.dropped);
        expo_family(&w, "gpufleet_remote_write_retries_total", EXPO_COUNTER,
                    "Requests retried after a 5xx, a 429 or a connection error.");
        expo_sample(&w, NULL, 0, (double)rs.retries);
    }
    expo_writer_free(&w);
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
