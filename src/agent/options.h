/* The agent's settings: defaults, the YAML config file, then flags. */
#ifndef GF_AGENT_OPTIONS_H
#define GF_AGENT_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AGENT_DEFAULT_PORT 9445
#define AGENT_VERSION "0.1.0"

struct agent_options {
    char *listen;          /* HOST:PORT */
    int64_t interval_ms;   /* sampling interval, 100..60000 */
    int64_t slow_interval_ms; /* cadence of slow NVML calls (PCIe throughput) */
    int64_t history_minutes;  /* ring of recent samples kept for backfill */
    char *nvml_lib;        /* NULL: libnvidia-ml.so.1 from the loader path */
    char *token_file;      /* bearer token protecting the /api/v1 routes */
    int metrics_need_token; /* also protect /metrics */
    char *hostname;        /* NULL: gethostname() */
    char *proc_root;       /* "/" normally; tests point it at a fixture tree */
    int64_t fs_timeout_ms; /* a mount's statvfs taking longer is reported stale */
    char *log_level;       /* debug, info, warn, error */
    char *engine_socket;   /* the container engine's API socket */
    char *cdi_dirs;        /* colon-separated folders of CDI specs (Podman GPUs) */
    char *workspace_root;  /* owners' workspaces, mounted at /workspace */
    char *apps_root;       /* apps' folders, each mounted at /app in its container */
    int64_t git_clone_max_mib; /* a clone for a build stops past this */
    int64_t git_clone_stall_s; /* a clone silent this long is killed */
    /* derived, not settings */
    char *token;           /* contents of token_file, trimmed */
};

/* Fills defaults. Free with agent_options_free. */
void agent_options_init(struct agent_options *o);
void agent_options_free(struct agent_options *o);

/* Loads a YAML config file into o. Returns 0 or -1 with err naming the
 * setting. */
int agent_options_load(struct agent_options *o, const char *path, char *err, size_t errlen);

/* Parses a YAML text as a config file would be (for tests and fuzzing). */
int agent_options_parse(struct agent_options *o, const char *text, size_t len, char *err,
                        size_t errlen);

/* Sets one setting by its config-file name from text (flags use this). */
int agent_options_set(struct agent_options *o, const char *name, const char *value, char *err,
                      size_t errlen);

/* The table of settings (one row each: name, type, default, bounds, flag,
 * description), and it printed for --help. */
struct config_key;
const struct config_key *agent_options_keys(size_t *n);
void agent_options_print(FILE *f, int markdown);

/* Cross-field checks and derived values (reads the token file). */
int agent_options_finish(struct agent_options *o, char *err, size_t errlen);

#endif
