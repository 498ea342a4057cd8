/* gpufleet-agent: samples GPU and host metrics and serves them over HTTP. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/signals.h"
#include "../lib/now.h"
#include "api.h"
#include "history.h"
#include "options.h"
#include "sampler.h"
#include "snapshot.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpufleet-agent [options]\n"
            "\n"
            "  --listen HOST:PORT     address to serve on (default 127.0.0.1:%d)\n"
            "  --interval MS          sampling interval, 100..60000 (default 1000)\n"
            "  --slow-interval MS     cadence of slow NVML calls such as PCIe throughput\n"
            "                         (default 5000)\n"
            "  --history-minutes N    samples kept for backfill (default 10)\n"
            "  --nvml-lib PATH        NVML library to load (default libnvidia-ml.so.1)\n"
            "  --token-file PATH      bearer token required on /api/v1/*\n"
            "  --metrics-need-token   require the token on /metrics too\n"
            "  --hostname NAME        host name to report (default: the system's)\n"
            "  --proc-root DIR        read /proc and /sys under DIR (default /)\n"
            "  --log-level LEVEL      debug, info, warn or error (default info)\n"
            "  --config FILE          YAML file with the same settings (flags win);\n"
            "                         keys: listen, interval_ms, slow_interval_ms,\n"
            "                         history_minutes, nvml_lib, token_file,\n"
            "                         metrics_need_token, hostname, proc_root, log_level\n"
            "  --help, --version\n",
            AGENT_DEFAULT_PORT);
}

static const struct option longopts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"interval", required_argument, NULL, 'i'},
    {"slow-interval", required_argument, NULL, 's'},
    {"history-minutes", required_argument, NULL, 'H'},
    {"nvml-lib", required_argument, NULL, 'n'},
    {"token-file", required_argument, NULL, 't'},
    {"metrics-need-token", no_argument, NULL, 'm'},
    {"hostname", required_argument, NULL, 'N'},
    {"proc-root", required_argument, NULL, 'p'},
    {"log-level", required_argument, NULL, 'L'},
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char *setting_for(int opt)
{
    switch (opt) {
    case 'l': return "listen";
    case 'i': return "interval_ms";
    case 's': return "slow_interval_ms";
    case 'H': return "history_minutes";
    case 'n': return "nvml_lib";
    case 't': return "token_file";
    case 'm': return "metrics_need_token";
    case 'N': return "hostname";
    case 'p': return "proc_root";
    case 'L': return "log_level";
    default: return NULL;
    }
}

/* Flags win over the config file, so the file is read first. */
static int parse_args(int argc, char **argv, struct agent_options *o)
{
    char err[512];
    const char *config = NULL;
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            exit(0);
        }
        if (opt == 'V') {
            printf("gpufleet-agent %s\n", AGENT_VERSION);
            exit(0);
        }
        if (opt == '?') {
            fprintf(stderr, "gpufleet-agent: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            usage(stderr);
            return -1;
        }
        if (opt == 'c')
            config = optarg;
    }
    if (optind < argc) {
        fprintf(stderr, "gpufleet-agent: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (config && agent_options_load(o, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "gpufleet-agent: config: %s\n", err);
        return -1;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *name = setting_for(opt);
        if (!name)
            continue;
        if (agent_options_set(o, name, opt == 'm' ? "true" : optarg, err, sizeof(err)) < 0) {
            fprintf(stderr, "gpufleet-agent: %s\n", err);
            return -1;
        }
    }
    if (agent_options_finish(o, err, sizeof(err)) < 0) {
        fprintf(stderr, "gpufleet-agent: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct agent_options opts;
    struct snapshot_store store;
    struct history *hist = NULL;
    struct sampler *sampler = NULL;
    struct http_server *http = NULL;
    struct agent_app app;
    sigset_t sigs;
    char err[512];
    int rc = 1;

    agent_options_init(&opts);
    snapshot_store_init(&store);
    if (parse_args(argc, argv, &opts) < 0)
        goto fail;
    enum log_level level = LOG_INFO;
    log_level_parse(opts.log_level, &level); /* checked by agent_options_finish */
    log_set_level(level);

    /* handle termination in this thread only; every thread inherits the mask */
    signals_block_termination(&sigs);

    hist = history_new(opts.history_minutes * 60000LL, opts.interval_ms);
    sampler = sampler_start(&opts, &store, hist, 1);
    if (!sampler)
        goto fail;
    app = (struct agent_app){.opts = &opts, .store = &store, .hist = hist,
                             .started_ms = now_wall_ms()};
    http = api_start(&app, err, sizeof(err));
    if (!http) {
        log_error("%s", err);
        goto fail;
    }
    log_info("gpufleet-agent %s listening on %s (port %u), sampling every %lld ms%s",
             AGENT_VERSION, opts.listen, http_port(http), (long long)opts.interval_ms,
             opts.token ? ", API token required" : "");
    signals_wait(&sigs);
    rc = 0;
fail:
    http_stop(http);
    sampler_stop(sampler);
    history_free(hist);
    snapshot_store_free(&store);
    agent_options_free(&opts);
    return rc;
}
