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
}

void server_options_free(struct server_options *o)
{
    free(o->listen);
    free(o->data_dir);
    free(o->log_level);
    free(o->remote_write_url);
    memset(o, 0, sizeof(*o));
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
    if (o->m1_retention_days < o->raw_retention_days || o->h1_retention_days < o->m1_retention_days) {
        snprintf(err, errlen,
                 "m1_retention_days: each roll-up tier must be kept at least as long as the "
                 "finer one");
        return -1;
    }
    return 0;
}
