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

#define STR(field, max) CONFIG_STRING, offsetof(struct agent_options, field), 0, 0, max, NULL
#define INT(field, lo, hi) CONFIG_INT, offsetof(struct agent_options, field), lo, hi, 0, NULL
#define BOOL(field) CONFIG_BOOL, offsetof(struct agent_options, field), 0, 0, 0, NULL

/* Every setting of the agent: docs/agent.md prints this table
 * (gpufleet-agent --help --markdown) and a test compares them. */
static const struct config_key keys[] = {
    {"listen", STR(listen, 200), "127.0.0.1:9445", "listen", 0, "address to serve on: HOST:PORT, [IPv6]:PORT or :PORT (all)"},
    {"interval_ms", INT(interval_ms, 100, 60000), "1000", "interval", 0, "sampling interval"},
    {"slow_interval_ms", INT(slow_interval_ms, 100, 600000), "5000", "slow-interval", 0, "cadence of slow NVML calls (PCIe throughput samples a 20 ms window per GPU)"},
    {"history_minutes", INT(history_minutes, 1, 120), "10", "history-minutes", 0, "samples kept in memory for the server's backfill"},
    {"nvml_lib", STR(nvml_lib, 4096), NULL, "nvml-lib", 0, "the NVML library to load (none: libnvidia-ml.so.1 from the loader path)"},
    {"token_file", STR(token_file, 4096), NULL, "token-file", 0, "file holding the bearer token required on /api/v1/*"},
    {"metrics_need_token", BOOL(metrics_need_token), "false", "metrics-need-token", 0, "require the token on /metrics too"},
    {"hostname", STR(hostname, 255), NULL, "hostname", 0, "host name to report (none: the system's)"},
    {"proc_root", STR(proc_root, 4096), "/", "proc-root", 0, "read /proc and /sys under this folder (tests point it at fixtures)"},
    {"fs_timeout_ms", INT(fs_timeout_ms, 10, 60000), "1000", "fs-timeout", 0, "a mount whose statvfs takes longer is reported stale (gpufleet_filesystem_stale) and skipped until it answers"},
    {"log_level", STR(log_level, 16), "info", "log-level", 0, "debug, info, warn or error"},
    {"engine_socket", STR(engine_socket, 4096), "/var/run/docker.sock", "engine-socket", 0, "the container engine's API socket: Docker's, or Podman's (podman system service)"},
    {"cdi_dirs", STR(cdi_dirs, 4096), "/etc/cdi:/var/run/cdi", "cdi-dirs", 0, "colon-separated folders of CDI specs: where Podman finds NVIDIA GPUs (nvidia-ctk cdi generate)"},
    {"git_clone_max_mib", INT(git_clone_max_mib, 1, 1048576), "8192", "git-clone-max-mib", 0, "a git clone (a build's, an app's) stops once it has received this many MiB (a repository that big is refused)"},
    {"git_clone_stall_s", INT(git_clone_stall_s, 1, 3600), "120", "git-clone-stall-s", 0, "a git clone (a build's, an app's) that receives nothing for this many seconds is stopped"},
    {"apps_root", STR(apps_root, 4096), "/opt/dockerstore", "apps-root", 0, "each app is cloned into a folder of its name here (with its docker-compose.yml), mounted at /app in its container"},
    {"workspace_root", STR(workspace_root, 4096), "/var/lib/gpufleet-agent/workspaces", "workspace-root", 0, "each owner's workspace folder is made here and mounted at /workspace in their containers"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void agent_options_init(struct agent_options *o)
{
    char err[200];

    memset(o, 0, sizeof(*o));
    if (config_defaults(keys, NKEYS, o, err, sizeof(err)) < 0)
        log_error("settings table: %s", err); /* a programming error, caught by the unit tests */
}

const struct config_key *agent_options_keys(size_t *n)
{
    *n = NKEYS;
    return keys;
}

void agent_options_print(FILE *f, int markdown)
{
    config_print(f, keys, NKEYS, markdown);
}

void agent_options_free(struct agent_options *o)
{
    free(o->listen);
    free(o->nvml_lib);
    free(o->token_file);
    free(o->hostname);
    free(o->proc_root);
    free(o->log_level);
    free(o->engine_socket);
    free(o->cdi_dirs);
    free(o->workspace_root);
    free(o->apps_root);
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
