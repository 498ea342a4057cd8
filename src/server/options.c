/* Server settings table, shared by the config file and the flags. */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "auth.h"

#define STR(f, max) CONFIG_STRING, offsetof(struct server_options, f), 0, 0, max, NULL
#define CHOICE(f, list) CONFIG_STRING, offsetof(struct server_options, f), 0, 0, sizeof(list), list
#define INT(f, lo, hi) CONFIG_INT, offsetof(struct server_options, f), lo, hi, 0, NULL
#define LIVE CONFIG_LIVE
#define SECRET CONFIG_SECRET

/* Every setting of the server: docs/server.md, auth.md and alerts.md print
 * this table (gpufleet settings --markdown) and a test compares them. */
static const struct config_key keys[] = {
    {"listen", STR(listen, 200), "127.0.0.1:8470", "listen", 0, "address to serve on: HOST:PORT, [IPv6]:PORT or :PORT (all)"},
    {"data_dir", STR(data_dir, 2048), "data", "data", 0, "where the databases live"},
    {"log_level", STR(log_level, 16), "info", "log-level", 0, "debug, info, warn or error"},
    {"agent_interval_ms", INT(agent_interval_ms, 100, 3600000), "2000", "agent-interval", LIVE, "scrape interval of agents"},
    {"exporter_interval_ms", INT(exporter_interval_ms, 1000, 3600000), "15000", "exporter-interval", LIVE, "scrape interval of other exporters (a target's own interval_ms wins)"},
    {"scrape_timeout_ms", INT(scrape_timeout_ms, 100, 60000), "10000", NULL, 0, "a scrape taking longer fails; never longer than the target's interval"},
    {"max_scrape_bytes", INT(max_scrape_bytes, 4096, 1LL << 30), "16777216", NULL, 0, "largest scrape body after decompression; larger fails the target"},
    {"max_series_per_target", INT(max_series_per_target, 10, 10000000), "50000", NULL, 0, "more samples in one scrape fail the target"},
    {"max_label_value_len", INT(max_label_value_len, 16, 65536), "4096", NULL, 0, "longest label value accepted from an exporter"},
    {"raw_retention_days", INT(raw_retention_days, 1, 3650), "15", NULL, LIVE, "how long raw samples are kept"},
    {"m1_retention_days", INT(m1_retention_days, 1, 3650), "90", NULL, LIVE, "how long the 1-minute roll-up is kept (at least raw_retention_days)"},
    {"h1_retention_days", INT(h1_retention_days, 1, 36500), "730", NULL, LIVE, "how long the 1-hour roll-up is kept (at least m1_retention_days)"},
    {"max_sample_future_ms", INT(max_sample_future_ms, 1000, 86400000), "600000", NULL, 0, "a sample stamped further ahead of the server's clock is refused and counted"},
    {"http_max_connections", INT(http_max_connections, 16, 100000), "512", NULL, 0, "connections the HTTP server holds at once"},
    {"http_max_connections_per_address", INT(http_max_connections_per_address, 1, 100000), "128", NULL, 0, "connections from one address at once (the rest of the room is kept for others)"},
    {"http_header_timeout_ms", INT(http_header_timeout_ms, 1000, 600000), "15000", NULL, 0, "a request's headers must be in this long after its connection opened or its last request ended, however slowly they come"},
    {"live_max_clients", INT(live_max_clients, 1, 10000), "128", NULL, 0, "browsers on the live WebSocket at once (fewer than http_max_connections)"},
    {"live_max_per_user", INT(live_max_per_user, 1, 10000), "16", NULL, 0, "live WebSockets of one user at once"},
    {"stream_max_sessions", INT(stream_max_sessions, 1, 10000), "64", NULL, 0, "container log follows and terminals open at once (fewer than http_max_connections)"},
    {"stream_max_per_user", INT(stream_max_per_user, 1, 10000), "8", NULL, 0, "container log follows and terminals of one user at once"},
    {"files_upload_max_mib", INT(files_upload_max_mib, 1, 8191), "4096", NULL, 0, "a file uploaded into a container at most (MiB); it passes through a temporary file on the server and on the host"},
    {"rate_limit_per_s", INT(rate_limit_per_s, 0, 1000000), "50", NULL, 0, "API requests a second, on average, of one token, session or anonymous address (0: no limit); past it 429 with Retry-After"},
    {"rate_limit_burst", INT(rate_limit_burst, 1, 1000000), "400", NULL, 0, "requests a caller may make at once before rate_limit_per_s applies"},
    {"query_timeout_ms", INT(query_timeout_ms, 100, 600000), "10000", NULL, 0, "a query still selecting series after this long is answered 503 timeout"},
    {"query_cache_mb", INT(query_cache_mb, 0, 1048576), "128", NULL, 0, "decoded chunks kept in memory for repeated queries (a refreshed dashboard); 0: none"},
    {"query_max_samples", INT(query_max_samples, 1000, 1000000000), "50000000", NULL, 0, "samples one PromQL query may hold at once (Prometheus's query.max-samples); past it 422 execution"},
    {"max_import_bytes", INT(max_import_bytes, 1024, 1LL << 40), "17179869184", NULL, 0, "largest body of one import request (it is streamed)"},
    {"remote_write_url", STR(remote_write_url, 2048), NULL, "remote-write", 0, "a Prometheus remote_write receiver that gets every stored sample"},
    {"agent_binary", STR(agent_binary, 4096), NULL, "agent-binary", 0, "the agent fleet apply installs (none: gpufleet-agent beside this program)"},
    {"fleet_apply_parallel", INT(fleet_apply_parallel, 1, 256), "64", NULL, 0, "hosts fleet apply installs at once (each mostly waits on its network)"},
    {"bmc_interval_ms", INT(bmc_interval_ms, 1000, 3600000), "30000", "bmc-interval", 0, "how often each server's BMC sensors are read (IPMI over LAN)"},
    {"remote_write_queue_samples", INT(remote_write_queue_samples, 1000, 100000000), "1000000", NULL, 0, "samples held while the receiver is slow or down"},
    {"session_idle_s", INT(session_idle_s, 1, 366 * 86400), "43200", NULL, 0, "a session unused this long ends"},
    {"session_max_s", INT(session_max_s, 1, 366 * 86400), "604800", NULL, 0, "a session ends this long after login (at least session_idle_s)"},
    {"min_password_length", INT(min_password_length, 8, 128), "10", NULL, 0, "shortest password accepted"},
    {"self_registration", INT(self_registration, 0, 1), "0", NULL, 0, "1: a sign-up page makes accounts that wait for an admin's approval, then have the user role and the default quotas"},
    {"login_backoff_after", INT(login_backoff_after, 1, 1000), "3", NULL, 0, "failed logins of a user or address before waits start"},
    {"login_backoff_base_ms", INT(login_backoff_base_ms, 1, 3600000), "1000", NULL, 0, "the first wait; it doubles with each failure"},
    {"login_backoff_max_ms", INT(login_backoff_max_ms, 1, 86400000), "300000", NULL, 0, "the longest wait"},
    {"max_concurrent_logins", INT(max_concurrent_logins, 1, 64), "2", NULL, 0, "password hashes computed at once (each takes 64 MiB)"},
    {"audit_retention_days", INT(audit_retention_days, 1, 36500), "365", NULL, 0, "how long audit rows are kept"},
    {"admin_password", STR(admin_password, 256), NULL, NULL, SECRET, "the first admin's password, for unattended installs"},
    {"tls_cert_file", STR(tls_cert_file, 2048), NULL, NULL, 0, "PEM certificate: serve HTTPS (with tls_key_file)"},
    {"tls_key_file", STR(tls_key_file, 2048), NULL, NULL, 0, "PEM private key of tls_cert_file"},
    {"trusted_proxies", STR(trusted_proxies, 2048), NULL, NULL, 0, "comma-separated addresses whose SSO and forwarding headers count"},
    {"proxy_user_header", STR(proxy_user_header, 64), "X-Fleet-Auth-User", NULL, 0, "the header a trusted proxy names the user in"},
    {"proxy_role_header", STR(proxy_role_header, 64), "X-Fleet-Auth-Role", NULL, 0, "the header a trusted proxy names the role in"},
    {"public_url", STR(public_url, 512), NULL, NULL, 0, "the origin browsers use when the server is behind a proxy"},
    {"routes_file", STR(routes_file, 2048), NULL, NULL, 0, "the nginx include gpufleet writes with a route /u/OWNER/CONTAINER/PORT/ per running container port (unset: no routes); see docs/inside.md"},
    {"routes_nginx_pidfile", STR(routes_nginx_pidfile, 2048), "/run/nginx.pid", NULL, 0, "nginx's pid file: nginx gets SIGHUP (a graceful reload) when the routes change"},
    {"routes_auth_url", STR(routes_auth_url, 512), NULL, NULL, 0, "where nginx reaches gpufleet for each route's auth_request (default: http:// and the listen address)"},
    {"ui_dir", STR(ui_dir, 2048), NULL, "ui-dir", 0, "serve the web UI from this folder (a build of web/) instead of the one built in"},
    {"alert_eval_interval_ms", INT(alert_eval_interval_ms, 100, 3600000), "5000", NULL, 0, "how often alert rules are evaluated"},
    {"alert_default_rules", INT(alert_default_rules, 0, 1), "1", NULL, 0, "load the built-in rule pack (1) or not (0)"},
    {"alert_rules_file", STR(alert_rules_file, 2048), NULL, NULL, 0, "a YAML file of alert rules, read at start"},
    {"alert_group_by", STR(alert_group_by, 512), "alertname", NULL, 0, "labels whose values make alerts one notification"},
    {"alert_history_days", INT(alert_history_days, 1, 36500), "90", NULL, 0, "how long resolved alerts and notification logs are kept"},
    {"alert_group_wait_ms", INT(alert_group_wait_ms, 0, 3600000), "10000", NULL, 0, "wait after a group's first alert for others"},
    {"alert_group_interval_ms", INT(alert_group_interval_ms, 0, 86400000), "60000", NULL, 0, "least time between two notifications of a group"},
    {"container_port_range", STR(container_port_range, 32), "20000-29999", NULL, 0, "host ports handed out to container ports, LOW-HIGH"},
    {"container_host_ip", STR(container_host_ip, 63), "0.0.0.0", NULL, 0, "address containers' host ports are bound to on their host"},
    {"container_default_cpus", INT(container_default_cpus, 1, 4096), "2", NULL, LIVE, "CPU cores of a container that asks for none"},
    {"container_default_memory_mib", INT(container_default_memory_mib, 6, 16LL << 20), "8192", NULL, LIVE, "memory limit of a container that asks for none"},
    {"container_placement", CHOICE(container_placement, "binpack|spread"), "binpack", NULL, LIVE, "automatic placement: binpack (fill the fullest host that fits) or spread (the emptiest)"},
    {"apps_default_image", STR(apps_default_image, 255), "nvcr.io/nvidia/pytorch:24.10-py3", NULL, 0, "the image of an app whose template and request name none (a curated NVIDIA PyTorch image)"},
    {"apps_uid", INT(apps_uid, 1, 2147483647), "1000", NULL, LIVE, "the user (and group) id apps run as in their containers, and own their folders"},
    {"apps_allow_root", INT(apps_allow_root, 0, 1), "0", NULL, LIVE, "1: any user may run an app as root (run_as_root); 0: only admins may"},
    {"apps_health_timeout_s", INT(apps_health_timeout_s, 1, 86400), "900", NULL, LIVE, "an app STARTING this long without answering on its port (or health path) turns FAILED (an app's health_timeout_s wins)"},
    {"apps_probe_ms", INT(apps_probe_ms, 100, 600000), "2000", NULL, 0, "how often every app's health is probed from its host"},
    {"container_reconcile_ms", INT(container_reconcile_ms, 200, 600000), "5000", NULL, 0, "how often the ledgers are compared with every host's engine"},
    {"quota_containers", INT(quota_containers, 0, 1000000), "20", NULL, LIVE, "containers per user (admins have no quota)"},
    {"quota_gpus", INT(quota_gpus, 0, 100000), "8", NULL, LIVE, "GPUs a user's containers may hold"},
    {"quota_cpus", INT(quota_cpus, 0, 1000000), "64", NULL, LIVE, "CPU cores a user's running containers may have"},
    {"quota_memory_mib", INT(quota_memory_mib, 0, 1LL << 32), "262144", NULL, LIVE, "memory a user's running containers may have"},
    {"alert_repeat_interval_ms", INT(alert_repeat_interval_ms, 1000, 30LL * 86400000), "14400000", NULL, 0, "a firing group is notified again this often"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void server_options_init(struct server_options *o)
{
    char err[200];

    memset(o, 0, sizeof(*o));
    if (config_defaults(keys, NKEYS, o, err, sizeof(err)) < 0)
        log_error("settings table: %s", err); /* a programming error, caught by the unit tests */
}

void server_options_free(struct server_options *o)
{
    free(o->listen);
    free(o->data_dir);
    free(o->log_level);
    free(o->remote_write_url);
    free(o->agent_binary);
    free(o->admin_password);
    free(o->tls_cert_file);
    free(o->tls_key_file);
    free(o->trusted_proxies);
    free(o->proxy_user_header);
    free(o->proxy_role_header);
    free(o->public_url);
    free(o->routes_file);
    free(o->routes_nginx_pidfile);
    free(o->routes_auth_url);
    free(o->alert_rules_file);
    free(o->alert_group_by);
    free(o->ui_dir);
    free(o->container_port_range);
    free(o->container_host_ip);
    free(o->container_placement);
    free(o->apps_default_image);
    memset(o, 0, sizeof(*o));
}

void server_options_print(FILE *f, int markdown)
{
    config_print(f, keys, NKEYS, markdown);
}

void server_options_scrape(const struct server_options *o, struct scrape_config *c)
{
    c->agent_interval_ms = o->agent_interval_ms;
    c->exporter_interval_ms = o->exporter_interval_ms;
    c->timeout_ms = o->scrape_timeout_ms;
    c->max_body_bytes = (size_t)o->max_scrape_bytes;
    c->max_series = (size_t)o->max_series_per_target;
    c->max_label_value_len = (size_t)o->max_label_value_len;
    c->meta = NULL; /* the server sets its table */
}

void server_options_auth(const struct server_options *o, struct auth_config *c)
{
    memset(c, 0, sizeof(*c));
    c->session_idle_ms = o->session_idle_s * 1000;
    c->session_max_ms = o->session_max_s * 1000;
    c->min_password_len = (int)o->min_password_length;
    c->backoff_after = (int)o->login_backoff_after;
    c->backoff_base_ms = o->login_backoff_base_ms;
    c->backoff_max_ms = o->login_backoff_max_ms;
    c->max_concurrent_logins = (int)o->max_concurrent_logins;
    c->token_max_ms = 366 * 86400 * 1000LL;
}

void server_options_store(const struct server_options *o, struct tsdb_config *c)
{
    tsdb_config_defaults(c);
    c->retention_ms[TSDB_RAW] = o->raw_retention_days * 86400000LL;
    c->retention_ms[TSDB_1M] = o->m1_retention_days * 86400000LL;
    c->retention_ms[TSDB_1H] = o->h1_retention_days * 86400000LL;
    c->max_future_ms = o->max_sample_future_ms;
    c->query_budget_ms = o->query_timeout_ms;
    c->cache_bytes = (size_t)o->query_cache_mb << 20;
}

const struct config_key *server_options_keys(size_t *n)
{
    *n = NKEYS;
    return keys;
}

int server_options_load(struct server_options *o, const char *path, char *err, size_t errlen)
{
    return config_load_file(path, keys, NKEYS, o, err, errlen);
}

int server_options_parse(struct server_options *o, const char *text, size_t len, char *err,
                         size_t errlen)
{
    return config_parse(text, len, keys, NKEYS, o, err, errlen);
}

int server_options_set(struct server_options *o, const char *name, const char *value, char *err,
                       size_t errlen)
{
    return config_set(keys, NKEYS, o, name, value, err, errlen);
}

int server_options_finish(struct server_options *o, char *err, size_t errlen)
{
    enum log_level level;

    if (log_level_parse(o->log_level, &level) < 0) {
        snprintf(err, errlen, "log_level: expected debug, info, warn or error");
        return -1;
    }
    if (!*o->data_dir) {
        snprintf(err, errlen, "data_dir: must not be empty");
        return -1;
    }
    if (o->remote_write_url && strncmp(o->remote_write_url, "http://", 7) &&
        strncmp(o->remote_write_url, "https://", 8)) {
        snprintf(err, errlen, "remote_write_url: must start with http:// or https://");
        return -1;
    }
    if (!o->tls_cert_file != !o->tls_key_file) {
        snprintf(err, errlen, "%s: TLS needs both tls_cert_file and tls_key_file",
                 o->tls_cert_file ? "tls_key_file" : "tls_cert_file");
        return -1;
    }
    if (o->session_max_s < o->session_idle_s) {
        snprintf(err, errlen, "session_max_s: must be at least session_idle_s");
        return -1;
    }
    if (o->stream_max_sessions + o->live_max_clients >= o->http_max_connections) {
        snprintf(err, errlen, "stream_max_sessions: with live_max_clients it must stay below "
                 "http_max_connections (%lld), so that plain requests always find room",
                 (long long)o->http_max_connections);
        return -1;
    }
    if (o->live_max_clients >= o->http_max_connections) {
        snprintf(err, errlen, "live_max_clients: must be below http_max_connections (%lld), so"
                              " WebSockets leave room for requests", (long long)o->http_max_connections);
        return -1;
    }
    if (o->public_url && strncmp(o->public_url, "http://", 7) && strncmp(o->public_url, "https://", 8)) {
        snprintf(err, errlen, "public_url: must start with http:// or https://");
        return -1;
    }
    if (o->m1_retention_days < o->raw_retention_days || o->h1_retention_days < o->m1_retention_days) {
        snprintf(err, errlen,
                 "%s: each roll-up tier must be kept at least as long as the finer one",
                 o->m1_retention_days < o->raw_retention_days ? "m1_retention_days"
                                                               : "h1_retention_days");
        return -1;
    }
    return 0;
}
