/* Forwarding of every stored sample to a Prometheus remote_write receiver
 * (VictoriaMetrics, Mimir, Thanos, Prometheus): protobuf + snappy, a bounded
 * queue, retries with backoff on 5xx and 429, none on other 4xx. */
#ifndef GF_REMOTE_WRITE_H
#define GF_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

struct remote_write;

/* Starts the sender thread for url; the queue holds at most max_samples. */
struct remote_write *remote_write_start(const char *url, size_t max_samples);

/* Sends what is queued (a last try) and stops. */
void remote_write_stop(struct remote_write *rw);

/* The ingest hook: copies a stored batch into the queue (drops and counts
 * when it is full). Called on the store writer thread. */
void remote_write_hook(void *arg, const struct ingest_batch *b);

struct remote_write_stats {
    uint64_t pending, sent, failed, dropped, retries;
    int64_t last_ok_ms, last_error_ms; /* the last request taken, refused or unanswered */
    long last_status;                  /* of that failure: HTTP status, 0 for no answer */
};
void remote_write_stats(struct remote_write *rw, struct remote_write_stats *st);

/* Encodes samples (canonical keys) as a snappy-compressed WriteRequest.
 * Returns 0, or -1 when a key cannot be parsed. out is reset first. */
int remote_write_encode(const struct ingest_batch *b, struct buf *out);

#endif
