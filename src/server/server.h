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
    int64_t max_sample_future_ms; /* samples further ahead of the clock are refused */
    int64_t query_timeout_ms;     /* a query's time over the series index */
    int64_t query_max_samples;    /* samples one PromQL query may hold */
    int64_t query_cache_mb;       /* decoded chunks kept for queries */
    int64_t http_max_connections, http_max_connections_per_address, http_header_timeout_ms;
    int64_t live_max_clients, live_max_per_user;
    int64_t stream_max_sessions, stream_max_per_user, files_upload_max_mib;
    char *routes_file, *routes_nginx_pidfile, *routes_auth_url;
    int64_t rate_limit_per_s, rate_limit_burst;
    char *remote_write_url;   /* optional Prometheus remote_write receiver */
    char *agent_binary;       /* what fleet apply installs ("": beside this program) */
    int64_t fleet_apply_parallel; /* hosts installed at once */
    int64_t bmc_interval_ms;      /* how often each BMC is read */
    int64_t remote_write_queue_samples;
    /* users and sessions (docs/auth.md) */
    int64_t session_idle_s, session_max_s, min_password_length, self_registration;
    int64_t login_backoff_after, login_backoff_base_ms, login_backoff_max_ms;
    int64_t max_concurrent_logins, audit_retention_days;
    char *admin_password;    /* the first admin's password, for unattended installs */
    char *tls_cert_file, *tls_key_file;
    char *trusted_proxies;   /* comma-separated addresses whose SSO headers count */
    char *proxy_user_header, *proxy_role_header;
    char *public_url;        /* the origin browsers use, when behind a proxy */
    char *ui_dir;            /* the web UI from a folder instead of the binary */
    /* alerts (docs/alerts.md) */
    int64_t alert_eval_interval_ms, alert_default_rules;
    int64_t alert_group_wait_ms, alert_group_interval_ms, alert_repeat_interval_ms, alert_history_days;
    char *alert_rules_file, *alert_group_by;
    /* containers (docs/containers.md) */
    char *container_port_range, *container_host_ip, *container_placement;
    int64_t container_default_cpus, container_default_memory_mib, container_reconcile_ms;
    int64_t quota_containers, quota_gpus, quota_cpus, quota_memory_mib;
    /* apps (docs/apps.md) */
    char *apps_default_image;
    int64_t apps_uid, apps_allow_root, apps_health_timeout_s, apps_probe_ms;
};

struct remote_write;
struct auth;
struct audit;
struct alerts;
struct ws_hub;
struct fleet;
struct ratelimit;
struct ctr;
struct fleetops;
struct bmc;
struct streamset;
struct routes;
struct apps;

struct server_app {
    struct server_options *opts;
    struct registry *reg;
    struct tsdb *db;
    struct ingest *in;
    struct scraper *scraper;
    struct remote_write *rw;
    struct auth *auth;
    struct audit *audit;
    struct alerts *alerts;
    struct ws_hub *hub; /* browsers on /api/v1/live */
    struct metadata *meta; /* scraped families' TYPE/HELP/UNIT */
    struct fleet *fleet; /* live state for the UI, fed by the store writer */
    struct ratelimit *limits; /* requests per caller */
    struct ctr *ctr;          /* containers and their ledgers */
    struct fleetops *fleetops; /* fleet file applies over SSH */
    struct bmc *bmc;           /* BMC sensors over IPMI */
    struct streamset *streams; /* container log follows and terminals */
    struct routes *routes;     /* nginx routes to apps in containers (NULL: off) */
    struct apps *apps;         /* apps from git and the marketplace's templates */
    char db_path[4096];
    int64_t started_ms;
};

#endif
