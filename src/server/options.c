/* Server settings table, shared by the config file and the flags. */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"

#define STR(f, max) CONFIG_STRING, offsetof(struct server_options, f), 0, 0, max
#define INT(f, lo, hi) CONFIG_INT, offsetof(struct server_options, f), lo, hi, 0

static const struct config_key keys[] = {
    {"listen", STR(listen, 200)},
    {"data_dir", STR(data_dir, 2048)},
    {"log_level", STR(log_level, 16)},
    {"agent_interval_ms", INT(agent_interval_ms, 100, 3600000)},
    {"exporter_interval_ms", INT(exporter_interval_ms, 1000, 3600000)},
    {"scrape_timeout_ms", INT(scrape_timeout_ms, 0, 60000)},
    {"max_scrape_bytes", INT(max_scrape_bytes, 4096, 1LL << 30)},
    {"max_series_per_target", INT(max_series_per_target, 10, 10000000)},
    {"max_label_value_len", INT(max_label_value_len, 16, 65536)},
    {"raw_retention_days", INT(raw_retention_days, 1, 3650)},
    {"m1_retention_days", INT(m1_retention_days, 1, 3650)},
    {"h1_retention_days", INT(h1_retention_days, 1, 36500)},
    {"max_import_bytes", INT(max_import_bytes, 1024, 1LL << 40)},
    {"remote_write_url", STR(remote_write_url, 2048)},
    {"remote_write_queue_samples", INT(remote_write_queue_samples, 1000, 100000000)},
    {"session_idle_s", INT(session_idle_s, 1, 366 * 86400)},
    {"session_max_s", INT(session_max_s, 1, 366 * 86400)},
    {"min_password_length", INT(min_password_length, 8, 128)},
    {"login_backoff_after", INT(login_backoff_after, 1, 1000)},
    {"login_backoff_base_ms", INT(login_backoff_base_ms, 1, 3600000)},
    {"login_backoff_max_ms", INT(login_backoff_max_ms, 1, 86400000)},
    {"max_concurrent_logins", INT(max_concurrent_logins, 1, 64)},
    {"audit_retention_days", INT(audit_retention_days, 1, 36500)},
    {"admin_password", STR(admin_password, 256)},
    {"tls_cert_file", STR(tls_cert_file, 2048)},
    {"tls_key_file", STR(tls_key_file, 2048)},
    {"trusted_proxies", STR(trusted_proxies, 2048)},
    {"proxy_user_header", STR(proxy_user_header, 64)},
    {"proxy_role_header", STR(proxy_role_header, 64)},
    {"public_url", STR(public_url, 512)},
    {"alert_eval_interval_ms", INT(alert_eval_interval_ms, 100, 3600000)},
    {"alert_default_rules", INT(alert_default_rules, 0, 1)},
    {"alert_rules_file", STR(alert_rules_file, 2048)},
    {"alert_group_by", STR(alert_group_by, 512)},
    {"alert_history_days", INT(alert_history_days, 1, 36500)},
    {"alert_group_wait_ms", INT(alert_group_wait_ms, 0, 3600000)},
    {"alert_group_interval_ms", INT(alert_group_interval_ms, 0, 86400000)},
    {"alert_repeat_interval_ms", INT(alert_repeat_interval_ms, 1000, 30LL * 86400000)},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void server_options_init(struct server_options *o)
{
    char listen[64];

    memset(o, 0, sizeof(*o));
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", SERVER_DEFAULT_PORT);
    o->listen = xstrdup(listen);
    o->data_dir = xstrdup("data");
    o->log_level = xstrdup("info");
    o->agent_interval_ms = 2000;
    o->exporter_interval_ms = 15000;
    o->max_scrape_bytes = 16 << 20;
    o->max_series_per_target = 50000;
    o->max_label_value_len = 4096;
    o->raw_retention_days = 15;
    o->m1_retention_days = 90;
    o->h1_retention_days = 730;
    o->max_import_bytes = 1LL << 34;
    o->remote_write_queue_samples = 1000000;
    o->session_idle_s = 12 * 3600;
    o->session_max_s = 7 * 86400;
    o->min_password_length = 10;
    o->login_backoff_after = 3;
    o->login_backoff_base_ms = 1000;
    o->login_backoff_max_ms = 300000;
    o->max_concurrent_logins = 2;
    o->audit_retention_days = 365;
    o->proxy_user_header = xstrdup("X-Fleet-Auth-User");
    o->proxy_role_header = xstrdup("X-Fleet-Auth-Role");
    o->alert_eval_interval_ms = 5000;
    o->alert_default_rules = 1;
    o->alert_group_wait_ms = 10000;
    o->alert_history_days = 90;
    o->alert_group_interval_ms = 60000;
    o->alert_repeat_interval_ms = 4 * 3600000LL;
}

void server_options_free(struct server_options *o)
{
    free(o->listen);
    free(o->data_dir);
    free(o->log_level);
    free(o->remote_write_url);
    free(o->admin_password);
    free(o->tls_cert_file);
    free(o->tls_key_file);
    free(o->trusted_proxies);
    free(o->proxy_user_header);
    free(o->proxy_role_header);
    free(o->public_url);
    free(o->alert_rules_file);
    free(o->alert_group_by);
    memset(o, 0, sizeof(*o));
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
    if (o->public_url && strncmp(o->public_url, "http://", 7) && strncmp(o->public_url, "https://", 8)) {
        snprintf(err, errlen, "public_url: must start with http:// or https://");
        return -1;
    }
    if (o->m1_retention_days < o->raw_retention_days || o->h1_retention_days < o->m1_retention_days) {
        snprintf(err, errlen,
                 "m1_retention_days: each roll-up tier must be kept at least as long as the "
                 "finer one");
        return -1;
    }
    return 0;
}
