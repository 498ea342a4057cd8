/* gpufleet-agent: samples GPU and host metrics and serves them over HTTP. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "../lib/config.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../lib/signals.h"
#include "../lib/now.h"
#include "../lib/streamset.h"

#include "api.h"
#include "attach.h"
#include "engine.h"
#include "gitclone.h"
#include "images.h"
#include "history.h"
#include "options.h"
#include "sampler.h"
#include "snapshot.h"

static void usage(FILE *f, int markdown)
{
    if (!markdown)
        fprintf(f, "usage: gpufleet-agent [--config FILE] [--SETTING VALUE ...] [--help [--markdown]]"
                   " [--version]\n\nThe config file (YAML) takes every setting by its key; flags"
                   " win over it.\nSettings:\n");
    agent_options_print(f, markdown);
}

/* --config, --help, --markdown, --version, and one flag per setting that
 * has one in the table (options.c); a boolean's flag takes no value. */
static struct option *agent_flags(const struct config_key *keys, size_t n)
{
    struct option *o = xcalloc(n + 5, sizeof(*o));
    size_t k = 0;
    o[k++] = (struct option){"config", required_argument, NULL, 'c'};
    o[k++] = (struct option){"help", no_argument, NULL, 'h'};
    o[k++] = (struct option){"markdown", no_argument, NULL, 'M'};
    o[k++] = (struct option){"version", no_argument, NULL, 'V'};
    for (size_t i = 0; i < n; i++)
        if (keys[i].flag)
            o[k++] = (struct option){keys[i].flag,
                                     keys[i].type == CONFIG_BOOL ? no_argument : required_argument,
                                     NULL, 256 + (int)i};
    return o;
}

/* Flags win over the config file, so the file is read first. */
static int parse_args(int argc, char **argv, struct agent_options *o)
{
    size_t nkeys;
    const struct config_key *keys = agent_options_keys(&nkeys);
    struct option *longopts = agent_flags(keys, nkeys);
    char err[512];
    const char *config = NULL;
    int opt, help = 0, markdown = 0, rc = -1;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'h' || opt == 'M') {
            help = 1;
            markdown |= opt == 'M';
        } else if (opt == 'V') {
            printf("gpufleet-agent %s\n", AGENT_VERSION);
            exit(0);
        } else if (opt == '?') {
            fprintf(stderr, "gpufleet-agent: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr, 0);
            goto out;
        } else if (opt == 'c') {
            config = optarg;
        }
    }
    if (help) {
        usage(stdout, markdown);
        exit(0);
    }
    if (optind < argc) {
        fprintf(stderr, "gpufleet-agent: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    if (config && agent_options_load(o, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "gpufleet-agent: config: %s\n", err);
        goto out;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt < 256)
            continue;
        const struct config_key *k = &keys[opt - 256];
        if (agent_options_set(o, k->name, k->type == CONFIG_BOOL ? "true" : optarg, err,
                              sizeof(err)) < 0) {
            fprintf(stderr, "gpufleet-agent: %s\n", err);
            goto out;
        }
    }
    if (agent_options_finish(o, err, sizeof(err)) < 0) {
        fprintf(stderr, "gpufleet-agent: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    free(longopts);
    return rc;
}

int main(int argc, char **argv)
{
    struct agent_options opts;
    struct snapshot_store store;
    struct history *hist = NULL;
    struct sampler *sampler = NULL;
    struct http_server *http = NULL;
    struct agent_app app;
    struct engine *engine = NULL;
    struct images *images = NULL;
    struct streamset *streams = NULL;
    sigset_t sigs;
    char err[512];
    int rc = 1;

    if (argc >= 2 && !strcmp(argv[1], "git-clone")) /* a clone for a build (gitclone.h), nothing else */
        return gitclone_child_main(argc - 1, argv + 1);
    streams = streamset_new(ATTACH_MAX_STREAMS, 0);
    agent_options_init(&opts);
    snapshot_store_init(&store);
    if (parse_args(argc, argv, &opts) < 0)
        goto fail;
    enum log_level level = LOG_INFO;
    log_level_parse(opts.log_level, &level); /* checked by agent_options_finish */
    log_set_level(level);

    /* handle termination in this thread only; every thread inherits the mask */
    signals_block_termination(&sigs);

    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: it is not thread-safe */
    hist = history_new(opts.history_minutes * 60000LL, opts.interval_ms);
    sampler = sampler_start(&opts, &store, hist, 1);
    if (!sampler)
        goto fail;
    engine = engine_new(opts.engine_socket, opts.cdi_dirs, opts.workspace_root, opts.apps_root);
    images = images_new(engine);
    app = (struct agent_app){.opts = &opts, .store = &store, .hist = hist, .engine = engine,
                             .images = images, .streams = streams, .started_ms = now_wall_ms()};
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
    streamset_close(streams); /* their sockets belong to the HTTP server */
    http_stop(http);
    streamset_free(streams);
    sampler_stop(sampler);
    history_free(hist);
    if (images_free(images) == 0) /* else a pull's thread still uses the engine */
        engine_free(engine);
    curl_global_cleanup();
    snapshot_store_free(&store);
    agent_options_free(&opts);
    return rc;
}
