/* Agent settings table: one row per setting, shared by the config file and
 * the command-line flags so both validate the same way. */
#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"

#define STR(field, max) CONFIG_STRING, offsetof(struct agent_options, field), 0, 0, max
#define INT(field, lo, hi) CONFIG_INT, offsetof(struct agent_options, field), lo, hi, 0
#define BOOL(field) CONFIG_BOOL, offsetof(struct agent_options, field), 0, 0, 0

static const struct config_key keys[] = {
    {"listen", STR(listen, 200)},
    {"interval_ms", INT(interval_ms, 100, 60000)},
    {"slow_interval_ms", INT(slow_interval_ms, 100, 600000)},
    {"history_minutes", INT(history_minutes, 1, 120)},
    {"nvml_lib", STR(nvml_lib, 4096)},
    {"token_file", STR(token_file, 4096)},
    {"metrics_need_token", BOOL(metrics_need_token)},
    {"hostname", STR(hostname, 255)},
    {"proc_root", STR(proc_root, 4096)},
    {"log_level", STR(log_level, 16)},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void agent_options_init(struct agent_options *o)
{
    char listen[64];

    memset(o, 0, sizeof(*o));
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", AGENT_DEFAULT_PORT);
    o->listen = xstrdup(listen);
    o->interval_ms = 1000;
    o->slow_interval_ms = 5000;
    o->history_minutes = 10;
    o->proc_root = xstrdup("/");
    o->log_level = xstrdup("info");
}

void agent_options_free(struct agent_options *o)
{
    free(o->listen);
    free(o->nvml_lib);
    free(o->token_file);
    free(o->hostname);
    free(o->proc_root);
    free(o->log_level);
    if (o->token) {
        explicit_bzero(o->token, strlen(o->token));
        free(o->token);
    }
    memset(o, 0, sizeof(*o));
}

int agent_options_load(struct agent_options *o, const char *path, char *err, size_t errlen)
{
    return config_load_file(path, keys, NKEYS, o, err, errlen);
}

int agent_options_parse(struct agent_options *o, const char *text, size_t len, char *err,
                        size_t errlen)
{
    return config_parse(text, len, keys, NKEYS, o, err, errlen);
}

int agent_options_set(struct agent_options *o, const char *name, const char *value, char *err,
                      size_t errlen)
{
    return config_set(keys, NKEYS, o, name, value, err, errlen);
}

static int read_token(const char *path, char **out, char *err, size_t errlen)
{
    char tok[512];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "token_file: %s: %s", path, strerror(errno));
        return -1;
    }
    n = read(fd, tok, sizeof(tok) - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "token_file: %s: %s", path, strerror(errno));
        return -1;
    }
    tok[n] = '\0';
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        tok[--n] = '\0';
    if (n < 16 || (size_t)n == sizeof(tok) - 1 || strcspn(tok, " \t\r\n") != (size_t)n) {
        snprintf(err, errlen, "token_file: %s: the token must be 16 to 510 characters on one line",
                 path);
        explicit_bzero(tok, sizeof(tok));
        return -1;
    }
    *out = xstrdup(tok);
    explicit_bzero(tok, sizeof(tok));
    return 0;
}

int agent_options_finish(struct agent_options *o, char *err, size_t errlen)
{
    enum log_level level;

    if (log_level_parse(o->log_level, &level) < 0) {
        snprintf(err, errlen, "log_level: expected debug, info, warn or error");
        return -1;
    }
    if (o->token_file && read_token(o->token_file, &o->token, err, errlen) < 0)
        return -1;
    if (o->metrics_need_token && !o->token) {
        snprintf(err, errlen, "metrics_need_token: set token_file too");
        return -1;
    }
    return 0;
}
