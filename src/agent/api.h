/* The agent's HTTP API: /metrics, /api/v1/snapshot, /api/v1/history,
 * /healthz. Handlers read published snapshots only; none touches NVML. */
#ifndef GF_AGENT_API_H
#define GF_AGENT_API_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/errinfo.h"
#include "../lib/httpd.h"
#include "history.h"
#include "options.h"
#include "snapshot.h"

struct engine;
struct images;
struct streamset;

struct agent_app {
    const struct agent_options *opts;
    struct snapshot_store *store;
    struct history *hist;
    struct engine *engine; /* the host's container engine */
    struct images *images; /* its images and pulls */
    struct streamset *streams; /* logs and exec streams (attach.h) */
    int64_t started_ms;
};

struct history_params {
    int64_t since_ms;
    int64_t until_ms; /* 0: up to now */
};

/* Parses /api/v1/history's query parameters (each may be NULL). Returns 0,
 * or -1 with the offending parameter's name in *field and a message in err. */
int api_parse_history_params(const char *since, const char *until, int64_t now_ms,
                             int64_t keep_ms, struct history_params *p, const char **field,
                             char *err, size_t errlen);

/* Container engine routes (api_engine.c): the server's control of the
 * host's containers, behind the agent's token. */
void api_engine_info(void *app, struct http_request *req, struct http_response *resp);
void api_engine_list(void *app, struct http_request *req, struct http_response *resp);
void api_engine_create(void *app, struct http_request *req, struct http_response *resp);
void api_engine_inspect(void *app, struct http_request *req, struct http_response *resp);
void api_engine_stats(void *app, struct http_request *req, struct http_response *resp);
void api_engine_action(void *app, struct http_request *req, struct http_response *resp);
void api_engine_remove(void *app, struct http_request *req, struct http_response *resp);
void api_engine_ports(void *app, struct http_request *req, struct http_response *resp);
void api_engine_images(void *app, struct http_request *req, struct http_response *resp);
void api_engine_image_remove(void *app, struct http_request *req, struct http_response *resp);
void api_engine_pull(void *app, struct http_request *req, struct http_response *resp);
void api_engine_pulls(void *app, struct http_request *req, struct http_response *resp);
/* Logs and exec streams (attach.h) on an upgraded connection, and an
 * exec's TTY resize. */
void api_engine_logs(void *app, struct http_request *req, struct http_response *resp);
void api_engine_build_log(void *app, struct http_request *req, struct http_response *resp);
void api_engine_exec(void *app, struct http_request *req, struct http_response *resp);
void api_engine_exec_resize(void *app, struct http_request *req, struct http_response *resp);
/* Disk cleanup (cleanup.h): the plan, and a run of a plan's items. */
void api_engine_cleanup_plan(void *app, struct http_request *req, struct http_response *resp);
void api_engine_cleanup_run(void *app, struct http_request *req, struct http_response *resp);
/* Files in a container (files.h): listing, mkdir, delete, an upload (a
 * tar, streamed to a temporary file), and downloads as archive streams. */
void api_engine_files(void *app, struct http_request *req, struct http_response *resp);
void api_engine_files_mkdir(void *app, struct http_request *req, struct http_response *resp);
void api_engine_files_delete(void *app, struct http_request *req, struct http_response *resp);
void api_engine_archive(void *app, struct http_request *req, struct http_response *resp);
int api_engine_upload_chunk(void *app, struct http_request *req, const char *data, size_t len);
void api_engine_upload(void *app, struct http_request *req, struct http_response *resp);
void api_engine_push(void *app, struct http_request *req, struct http_response *resp);
void api_engine_build(void *app, struct http_request *req, struct http_response *resp);
void api_engine_pull_get(void *app, struct http_request *req, struct http_response *resp);

/* Answers out (stolen) with status, or e's error when out is NULL. */
void api_engine_reply(struct http_response *resp, int status, json_t *out, const struct errinfo *e);

/* A request's body kept in a temporary file as it comes (the stream
 * state of routes whose handler is api_engine_upload_chunk). */
struct upload {
    FILE *f;
    long long size;
    int failed;
};

/* App routes (api_apps.c): clone into an app's folder, check a
 * repository, remove a folder, probe the apps' health. */
void api_apps_clone(void *app, struct http_request *req, struct http_response *resp);
void api_apps_check(void *app, struct http_request *req, struct http_response *resp);
void api_apps_remove(void *app, struct http_request *req, struct http_response *resp);
void api_apps_probe(void *app, struct http_request *req, struct http_response *resp);
void api_apps_files(void *app, struct http_request *req, struct http_response *resp);

/* Starts serving app on opts->listen. NULL with err on failure. */
struct http_server *api_start(struct agent_app *app, char *err, size_t errlen);

#endif
