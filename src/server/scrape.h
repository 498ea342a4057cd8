/* The scraper: one thread driving libcurl's multi interface over every
 * registered target, each on its own interval, with a timeout and a bounded
 * response; samples go to the store writer. Records up,
 * scrape_duration_seconds and scrape_samples_scraped per target as
 * Prometheus does, the servers' online/offline state, and backfills from an
 * agent's history ring after a gap. */
#ifndef GF_SCRAPE_H
#define GF_SCRAPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "registry.h"

/* The scraper's part of the server's settings (options.c has their
 * defaults and bounds). */
struct scrape_config {
    int64_t agent_interval_ms;
    int64_t exporter_interval_ms;
    int64_t timeout_ms;           /* never longer than a target's interval */
    size_t max_body_bytes;        /* after decompression */
    size_t max_series;            /* per target and scrape; 0: no bound */
    size_t max_label_value_len;
    struct metadata *meta;        /* families' TYPE/HELP/UNIT go here (may be NULL) */
};

struct scraper;

struct scraper *scraper_start(const struct scrape_config *cfg, struct registry *reg,
                              struct ingest *in, struct tsdb *db);
void scraper_stop(struct scraper *s);

/* Targets and their last scrape as JSON (caller owns it). */
json_t *scraper_targets_json(struct scraper *s);

/* Parses an exposition body into batch with the given extra labels at ts_ms
 * (cache, when not NULL, remembers keys across calls with the same extra
 * labels).
 * Returns the number of samples, or -1 with err set (line and reason). */
long scrape_parse(const char *body, size_t len, int openmetrics, const struct scrape_config *cfg,
                  const struct prom_label *extra, size_t nextra, int64_t ts_ms,
                  struct key_cache *cache, struct ingest_batch *batch, char *err, size_t errlen);

/* Parses an agent's /api/v1/history JSON into batch (extra labels added).
 * Returns the number of samples, or -1 with err set. */
long scrape_parse_history(const char *body, size_t len, const struct prom_label *extra,
                          size_t nextra, struct ingest_batch *batch, char *err, size_t errlen);

/* Checks a server's agent now: reachable, latency, version, GPU count. */
/* Why a scrape of where (host:port) failed, in words an operator acts on:
 * from the libcurl code, else the HTTP status (not 200). */
void scrape_reason(char *out, size_t n, int curl_code, long http_status, const char *where, long timeout_ms);

json_t *scrape_check_agent(const char *address, int port, const char *token, int timeout_ms);

/* New default intervals for targets without their own; applied at the
 * loop's next pass. Any thread. */
void scraper_set_intervals(struct scraper *s, int64_t agent_ms, int64_t exporter_ms);

#endif
