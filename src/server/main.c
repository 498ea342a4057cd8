/* gpufleet: the fleet server (`gpufleet serve`) and its command line. */
#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/websocket.h"
#include "../lib/streamset.h"
#include "routes.h"
#include "../lib/signals.h"
#include "../lib/now.h"
#include "../lib/config.h"
#include "../lib/xalloc.h"
#include "alerts.h"
#include "api/api.h"
#include "audit.h"
#include "auth.h"
#include "cli.h"
#include "apps.h"
#include "containers.h"
#include "fleet.h"
#include "datalock.h"
#include "bmc.h"
#include "fleetops.h"
#include "metadata.h"
#include "settings.h"
#include "options.h"
#include "ratelimit.h"
#include "remote_write.h"
#include "server.h"

/* a restart waits this long for the server before it to let go of the data */
#define DATA_LOCK_WAIT_S 60

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpufleet COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  serve                  run the fleet server\n"
            "  servers list|add|rm|check   manage servers through a running server's API\n"
            "  user add|passwd|list|disable|enable|delete   manage users in the database\n"
            "  token add|list|revoke  API tokens for scripts, in the database\n"
            "  fleet plan|apply -c FILE   make the fleet match a fleet file over SSH (plan: what\n"
            "                         would change)\n"
            "  ssh-key                the fleet key's public half, for the hosts' authorized_keys\n"
            "  prometheus-config      a scrape config for a Prometheus that should scrape the fleet\n"
            "  containers ...         run containers on the fleet (`gpufleet containers --help`)\n"
            "  images ...             list, pull and remove a server's images (`gpufleet images --help`)\n"
            "  gpus                   every GPU of the fleet and which container holds it\n"
            "  routes                 print the route table: method, path, least role,\n"
            "                         ownership rule, audit action, person-only\n"
            "  settings [--markdown]  print every setting: default, bounds, flag, meaning\n"
            "  backup DEST | restore SRC   copy every database (online) / put a copy back\n"
            "  version                print the version\n"
            "\n"
            "gpufleet serve [--config FILE] [--SETTING VALUE ...]: the settings that have\n"
            "a flag are listed by `gpufleet settings`; the config file (YAML) takes every\n"
            "setting by its key, and flags win over it.\n"
            "\n"
            "gpufleet servers: run `gpufleet servers --help`\n");
}

/* The flags of `serve`: --config, --help, and one per setting that has a
 * flag in the table (options.c). */
static struct option *serve_flags(const struct config_key *keys, size_t n)
{
    struct option *o = xcalloc(n + 3, sizeof(*o));
    size_t k = 0;
    o[k++] = (struct option){"config", required_argument, NULL, 'c'};
    o[k++] = (struct option){"help", no_argument, NULL, 'h'};
    for (size_t i = 0; i < n; i++)
        if (keys[i].flag)
            o[k++] = (struct option){keys[i].flag, required_argument, NULL, 256 + (int)i};
    return o;
}

static int parse_serve_args(int argc, char **argv, struct server_options *o)
{
    size_t nkeys;
    const struct config_key *keys = server_options_keys(&nkeys);
    struct option *longopts = serve_flags(keys, nkeys);
    char err[512];
    const char *config = NULL;
    int opt, rc = -1;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            exit(0);
        }
        if (opt == '?') {
            fprintf(stderr, "gpufleet serve: unknown or incomplete option '%s'\n", argv[optind - 1]);
            goto out;
        }
        if (opt == 'c')
            config = optarg;
    }
    if (config && server_options_load(o, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "gpufleet serve: config: %s\n", err);
        goto out;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (opt >= 256 && server_options_set(o, keys[opt - 256].name, optarg, err, sizeof(err)) < 0) {
            fprintf(stderr, "gpufleet serve: %s\n", err);
            goto out;
        }
    if (server_options_finish(o, err, sizeof(err)) < 0) {
        fprintf(stderr, "gpufleet serve: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    free(longopts);
    return rc;
}

/* Reads a whole PEM file (bounded); NULL with err. */
static char *read_pem(const char *path, const char *key, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t n = 0;

    if (!f) {
        snprintf(err, errlen, "%s: %s: %s", key, path, strerror(errno));
        return NULL;
    }
    text = calloc(1, 1 << 20);
    if (text)
        n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    if (!text || n == 0 || !strstr(text, "-----BEGIN ")) {
        snprintf(err, errlen, "%s: %s is not a PEM file", key, path);
        free(text);
        return NULL;
    }
    return text;
}

/* An empty user table gets an admin: the configured password, or a random
 * one that must be changed at first login. The random one is shown on a
 * terminal, else written to DATA/admin-password (0600) - never to the log. */
static int bootstrap_admin(struct server_app *app)
{
    char pw[32], err[256], path[4200];
    struct errinfo e;
    int64_t id;
    const char *given = getenv("GPUFLEET_ADMIN_PASSWORD");

    if (auth_user_count(app->auth) > 0)
        return 0;
    if (!given || !*given)
        given = app->opts->admin_password;
    if (!given)
        auth_random_password(pw, sizeof(pw));
    if (auth_user_create(app->auth, "admin", given ? given : pw, ROLE_ADMIN, !given, now_wall_ms(),
                         &id, &e) < 0) {
        log_error("cannot create the first admin: %s: %s", e.field, e.message);
        return -1;
    }
    struct audit_entry ae = {.ts_ms = now_wall_ms(), .username = "", .source = "server",
                             .action = "user.create", .target = "user:admin", .result = "ok",
                             .status = 201};
    audit_write(app->audit, &ae);
    if (given) {
        log_info("created user 'admin' with the configured password");
        return 0;
    }
    if (isatty(2)) {
        fprintf(stderr, "\n  gpufleet: created user 'admin' with password: %s\n"
                        "  (shown once; you will be asked to change it at first login)\n\n", pw);
        return 0;
    }
    snprintf(path, sizeof(path), "%s/admin-password", app->opts->data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, pw, strlen(pw)) != (ssize_t)strlen(pw) || write(fd, "\n", 1) != 1) {
        snprintf(err, sizeof(err), "%s", strerror(errno));
        log_error("cannot write %s: %s", path, err);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    log_info("created user 'admin'; its first password is in %s (change it at first login,"
             " then delete the file)", path);
    return 0;
}

static void live_event(void *arg, const char *json, size_t len)
{
    ws_hub_broadcast(arg, json, len);
}

/* Each stored batch: to remote_write when configured, and to the live
 * fleet state (which pushes its deltas to browsers). */
static void stored_hook(void *arg, const struct ingest_batch *b)
{
    struct server_app *app = arg;
    if (app->rw)
        remote_write_hook(app->rw, b);
    fleet_ingest(app->fleet, b);
}

/* A server went online or offline: browsers hear it with the fleet's deltas. */
static void status_changed(void *arg, const char *server, const char *status, const char *detail,
                           int64_t since_ms)
{
    fleet_status(arg, server, status, detail, since_ms);
}

/* Opens the databases under data_dir (creating the first admin) and the
 * store. 0, or -1 (logged). */
static int open_databases(struct server_app *app)
{
    struct server_options *o = app->opts;
    struct auth_config ac;
    struct tsdb_config tc;
    char err[512], path[4200];

    if (mkdir(o->data_dir, 0700) < 0 && errno != EEXIST) {
        log_error("data_dir %s: %s", o->data_dir, strerror(errno));
        return -1;
    }
    /* held until the process ends (its descriptor is never closed) */
    if (datalock_take(o->data_dir, DATA_LOCK_WAIT_S, err, sizeof(err)) < 0)
        goto fail;
    if (settings_load(app, err, sizeof(err)) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/gpufleet.db", o->data_dir);
    if (!(app->reg = reg_open(path, err, sizeof(err))))
        goto fail;
    server_options_auth(o, &ac);
    snprintf(path, sizeof(path), "%s/auth.db", o->data_dir);
    if (!(app->auth = auth_open(path, &ac, err, sizeof(err))))
        goto fail;
    snprintf(path, sizeof(path), "%s/audit.db", o->data_dir);
    if (!(app->audit = audit_open(path, o->audit_retention_days, err, sizeof(err))))
        goto fail;
    if (bootstrap_admin(app) < 0)
        return -1;
    server_options_store(o, &tc);
    snprintf(app->db_path, sizeof(app->db_path), "%s/tsdb.db", o->data_dir);
    if (!(app->db = tsdb_open(app->db_path, &tc, err, sizeof(err))))
        goto fail;
    struct ctr_config cc;
    if (ctr_config_from(o, &cc, err, sizeof(err)) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/containers.db", o->data_dir);
    if (!(app->ctr = ctr_open(path, app, &cc, err, sizeof(err))))
        goto fail;
    snprintf(path, sizeof(path), "%s/apps.db", o->data_dir);
    if (!(app->apps = apps_open(path, app, err, sizeof(err))))
        goto fail;
    return 0;
fail:
    log_error("%s", err);
    return -1;
}

/* The data path: store writer, live fleet state and its hub, remote_write,
 * scraper. 0 or -1. */
static int start_pipeline(struct server_app *app)
{
    struct server_options *o = app->opts;
    struct scrape_config sc;

    if (o->remote_write_url)
        app->rw = remote_write_start(o->remote_write_url, (size_t)o->remote_write_queue_samples);
    app->limits = ratelimit_new(o->rate_limit_per_s, o->rate_limit_burst);
    app->hub = ws_hub_new((size_t)o->live_max_clients, (size_t)o->live_max_per_user);
    app->streams = streamset_new((size_t)o->stream_max_sessions, (size_t)o->stream_max_per_user);
    app->fleet = fleet_new(live_event, app->hub);
    reg_on_status(app->reg, status_changed, app->fleet);
    app->in = ingest_start(app->db, 4000000, stored_hook, app);
    if (!app->in)
        return -1;
    server_options_scrape(o, &sc);
    app->meta = metadata_new(0);
    sc.meta = app->meta;
    app->scraper = scraper_start(&sc, app->reg, app->in, app->db);
    return app->scraper ? 0 : -1;
}

/* The alert engine, its events pushed to browsers. 0 or -1 (logged). */
static int start_alerts(struct server_app *app, int https)
{
    struct server_options *o = app->opts;
    char ext[300], err[512], path[4200];

    snprintf(ext, sizeof(ext), "%s", o->public_url ? o->public_url : "");
    if (!o->public_url)
        snprintf(ext, sizeof(ext), "%s://%s", https ? "https" : "http", o->listen);
    struct alerts_config alc = {.eval_interval_ms = o->alert_eval_interval_ms,
                                .rules_file = o->alert_rules_file,
                                .default_rules = (int)o->alert_default_rules,
                                .external_url = ext,
                                .group_by = o->alert_group_by,
                                .group_wait_ms = o->alert_group_wait_ms,
                                .group_interval_ms = o->alert_group_interval_ms,
                                .repeat_interval_ms = o->alert_repeat_interval_ms,
                                .history_days = o->alert_history_days,
                                .on_event = live_event,
                                .event_arg = app->hub};
    snprintf(path, sizeof(path), "%s/alerts.db", o->data_dir);
    if (!(app->alerts = alerts_start(path, &alc, app->db, err, sizeof(err)))) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

/* Stops in the order data flows back: browsers and HTTP first, the store
 * last. Every part may be missing (a failed start). */
static void stop_all(struct server_app *app, struct http_server *http)
{
    ws_hub_close(app->hub); /* its sockets belong to the HTTP server */
    streamset_close(app->streams); /* so do the log follows' and terminals' */
    http_stop(http);
    apps_close(app->apps); /* its jobs and probes call the containers module */
    app->apps = NULL;
    routes_stop(app->routes); /* it reads the containers */
    app->routes = NULL;
    ctr_close(app->ctr); /* its reconcile loop reads the registry and the fleet */
    fleetops_free(app->fleetops); /* waits for an apply: it writes the registry */
    bmc_stop(app->bmc);           /* it pushes to the store writer */
    alerts_stop(app->alerts);
    scraper_stop(app->scraper);
    metadata_free(app->meta);
    ingest_stop(app->in); /* its hook pushes to the fleet and the hub: free them after */
    fleet_free(app->fleet);
    ws_hub_free(app->hub);
    streamset_free(app->streams);
    remote_write_stop(app->rw);
    tsdb_close(app->db);
    reg_close(app->reg);
    auth_close(app->auth);
    audit_close(app->audit);
    ratelimit_free(app->limits);
}

static int serve(int argc, char **argv)
{
    struct server_options opts;
    struct server_app app;
    struct http_server *http = NULL;
    char err[512];
    char *cert = NULL, *key = NULL;
    sigset_t sigs;
    int rc = 1;

    memset(&app, 0, sizeof(app));
    server_options_init(&opts);
    if (parse_serve_args(argc, argv, &opts) < 0)
        goto fail;
    enum log_level level = LOG_INFO;
    log_level_parse(opts.log_level, &level); /* checked by server_options_finish */
    log_set_level(level);
    signals_block_termination(&sigs);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* batches of keys (megabytes) come and go every second: keep them on the
     * heap so their pages are reused instead of faulted in again each time */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    app.opts = &opts;
    app.started_ms = now_wall_ms();
    if (open_databases(&app) < 0)
        goto fail;
    if (opts.tls_cert_file && (!(cert = read_pem(opts.tls_cert_file, "tls_cert_file", err, sizeof(err))) ||
                               !(key = read_pem(opts.tls_key_file, "tls_key_file", err, sizeof(err))))) {
        log_error("%s", err);
        goto fail;
    }
    if (opts.ui_dir && api_ui_load_dir(opts.ui_dir, err, sizeof(err)) < 0) {
        log_error("ui_dir: %s", err);
        goto fail;
    }
    if (start_pipeline(&app) < 0 || start_alerts(&app, cert != NULL) < 0 || ctr_start(app.ctr) < 0)
        goto fail;
    app.fleetops = fleetops_new(&app);
    app.routes = routes_start(&app);
    if (apps_start(app.apps) < 0)
        goto fail;
    snprintf(err, sizeof(err), "%s/bmc.db", opts.data_dir);
    char bmc_path[sizeof(err)];
    snprintf(bmc_path, sizeof(bmc_path), "%s", err);
    if (!(app.bmc = bmc_start(bmc_path, &app, opts.bmc_interval_ms, err, sizeof(err)))) {
        log_error("%s", err);
        goto fail;
    }
    http = api_start(&app, cert, key, err, sizeof(err));
    if (!http) {
        log_error("%s", err);
        goto fail;
    }
    log_info("gpufleet %s serving %s on %s (port %u), data in %s", GPUFLEET_VERSION,
             cert ? "HTTPS" : "HTTP", opts.listen, http_port(http), opts.data_dir);
    signals_wait(&sigs);
    rc = 0;
fail:
    stop_all(&app, http);
    api_ui_unload();
    if (key)
        explicit_bzero(key, strlen(key));
    free(cert);
    free(key);
    server_options_free(&opts);
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("gpufleet %s\n", GPUFLEET_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "serve"))
        return serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "servers"))
        return cli_servers(argc - 1, argv + 1);
    if (!strcmp(argv[1], "images"))
        return cli_images(argc - 1, argv + 1);
    if (!strcmp(argv[1], "containers") || !strcmp(argv[1], "gpus"))
        return cli_containers(argc - 1, argv + 1);
    if (!strcmp(argv[1], "routes")) {
        size_t n;
        const struct http_route *r = api_routes(&n);
        for (size_t i = 0; i < n; i++)
            printf("%s\t%s\t%s\t%s\t%s\t%s\n", r[i].method, r[i].pattern,
                   (r[i].flags & R_ROLE_MASK) ? auth_role_name(r[i].flags & R_ROLE_MASK) : "public",
                   r[i].flags & R_OWN ? "own" : "-", r[i].action ? r[i].action : "-",
                   r[i].flags & R_PERSON ? "person" : "-");
        return 0;
    }
    if (!strcmp(argv[1], "settings")) {
        server_options_print(stdout, argc > 2 && !strcmp(argv[2], "--markdown"));
        return 0;
    }
    if (!strcmp(argv[1], "backup") || !strcmp(argv[1], "restore"))
        return cli_backup(argc - 1, argv + 1);
    if (!strcmp(argv[1], "user"))
        return cli_user(argc - 1, argv + 1);
    if (!strcmp(argv[1], "token"))
        return cli_token(argc - 1, argv + 1);
    if (!strcmp(argv[1], "fleet"))
        return cli_fleet(argc - 1, argv + 1);
    if (!strcmp(argv[1], "ssh-key"))
        return cli_ssh_key(argc - 1, argv + 1);
    if (!strcmp(argv[1], "prometheus-config"))
        return cli_prometheus_config(argc - 1, argv + 1);
    fprintf(stderr, "gpufleet: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
