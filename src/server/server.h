/* What the server's parts share: its settings and the running subsystems. */
#ifndef GF_SERVER_H
#define GF_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "registry.h"
#include "scrape.h"
#include "store/tsdb.h"

#define SERVER_DEFAULT_PORT 8470
#define GPUFLEET_VERSION "0.1.0"

struct server_options {
    char *listen;
    char *data_dir;
    char *log_level;
    int64_t agent_interval_ms, exporter_interval_ms, scrape_timeout_ms;
    int64_t max_scrape_bytes, max_series_per_target, max_label_value_len;
    int64_t raw_retention_days, m1_retention_days, h1_retention_days;
    int64_t max_import_bytes; /* per import request */
    char *remote_write_url;   /* optional Prometheus remote_write receiver */
    int64_t remote_write_queue_samples;
};

struct remote_write;

struct server_app {
    struct server_options *opts;
    struct registry *reg;
    struct tsdb *db;
    struct ingest *in;
    struct scraper *scraper;
    struct remote_write *rw;
    char db_path[4096];
    int64_t started_ms;
};

#endif
