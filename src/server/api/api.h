/* The server's HTTP API: one file per resource; the route table is in
 * api_routes.c. Handlers return JSON; errors use the shared shape
 * {"error":{"code","field","message"}}. */
#ifndef GF_API_H
#define GF_API_H

#include <jansson.h>
#include <stdint.h>

#include "../../lib/httpd.h"
#include "../../lib/timefmt.h"
#include "../auth.h"
#include "../registry.h"
#include "../server.h"

/* Route flags: the least role in the low bits, and rules on top. */
#define R_ROLE_MASK 0x0f
#define R_OWN 0x10      /* below admin, the handler sees only the caller's own objects */
#define R_PWCHANGE 0x20 /* allowed while a password change is pending */
#define R_PERSON 0x40   /* a signed-in person (session or proxy), not an API token */

/* What the authorize hook learnt about a request, and what the handler adds
 * for its audit row. */
struct api_ctx {
    struct auth_identity who;
    char source[64];   /* client address (the proxy's client when trusted) */
    char target[160];  /* audit target: "server:3", "user:alice" */
    json_t *details;   /* audit details, owned; never secrets */
};

/* The request's context (set for every routed request). */
struct api_ctx *api_ctx(struct http_request *req);

/* The user id a handler of an R_OWN route must restrict itself to: the
 * caller's below admin, 0 (everyone) for admins. */
int64_t api_scope(struct http_request *req);

/* Whose containers and apps the caller may see: a user their own (their
 * id), viewers and up all (0). */
int64_t api_read_scope(struct http_request *req);
/* ... and act on: below operator their own, operators and admins all (0);
 * the routes keep viewers out. */
int64_t api_act_scope(struct http_request *req);

/* Sets the audit row's target (printf-style). */
void api_audit_target(struct http_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Adds key: value (reference stolen) to the audit row's details. */
void api_audit_detail(struct http_request *req, const char *key, json_t *value);

/* CSRF: whether a browser's request comes from a page of this server
 * (Origin, else Referer, against Host and public_url). */
int api_same_origin(struct server_app *app, struct http_request *req);

/* A WebSocket handshake's checks (Upgrade, version 13, same origin for a
 * browser, the key): 0 with Sec-WebSocket-Accept in accept, or -1 with
 * resp the refusal. */
int api_ws_handshake(struct server_app *app, struct http_request *req, struct http_response *resp,
                     char *accept, size_t acceptlen);

/* Answers 101 to a checked handshake: upgrade(arg, sock, mhd_urh) takes
 * the connection, release(arg) runs when the upgrade never happens. */
void api_ws_accept(struct http_response *resp, const char *accept, void (*upgrade)(void *, int, void *),
                   void (*release)(void *), void *arg);

/* Whether the peer is one of trusted_proxies (exact address match). */
int api_trusted_proxy(struct server_app *app, struct http_request *req);

struct reg_target;
/* The agent of a server named by its id or its name (a path's {id}). 0,
 * or -1 with e (404 naming "server", 409 without an agent token). */
int api_find_agent(struct server_app *app, const char *s, struct reg_target *agent, struct errinfo *e);

/* A container a path's {id} names, and where it runs. */
struct api_container {
    struct reg_target agent;
    char engine_id[130], name[130];
    int64_t id;
};

/* The container of the path (params[0]), if the caller may see (act 0) or
 * act on (act 1) it; the audit target set. 0, or -1 with resp the refusal
 * (404 for a user's view of someone else's). */
int api_container_locate(struct server_app *app, struct http_request *req, struct http_response *resp,
                         int act, struct api_container *w);

/* Streams the tar of path in a container (its host's agent, its engine
 * id) to the caller, after prefix's bytes (whole tar entries; taken, may
 * be NULL), as an attachment named filename, on the stream seat of user's
 * the caller holds (api_stream_seat). 0 (resp is the answer), or -1 with
 * e and the seat given back. */
int api_pipe_archive(struct server_app *app, int64_t user, struct http_response *resp, const struct reg_target *agent,
                     const char *engine_id, const char *path, struct buf *prefix, const char *filename,
                     struct errinfo *e);

/* Replies with an input error. */
void api_reply_error(struct http_response *resp, const struct errinfo *e);

/* Replies with out (reference stolen) and status, or with e when out is
 * NULL: the tail of most handlers. */
void api_reply(struct http_response *resp, int status, json_t *out, const struct errinfo *e);

/* Replies {"ok":true}, or with e when rc < 0. */
void api_reply_rc(struct http_response *resp, int rc, const struct errinfo *e);

/* A query parameter as text: absent gives NULL; NUL bytes, invalid UTF-8 or
 * more than max bytes give a 400 naming it and -1. */
int api_query_text(struct http_request *req, struct http_response *resp, const char *name,
                   size_t max, const char **out);

/* Starts the HTTP server for app on app->opts->listen (HTTPS when
 * tls_pem holds a certificate and key). */
struct http_server *api_start(struct server_app *app, const char *tls_cert_pem,
                              const char *tls_key_pem, char *err, size_t errlen);

/* Serves the web UI from a folder (a build of web/) instead of the one
 * built in: read once, at start. 0, or -1 with err. */
int api_ui_load_dir(const char *dir, char *err, size_t errlen);
void api_ui_unload(void);

/* The route table, for tests that walk it. */
const struct http_route *api_routes(size_t *n);

/* Replies with a JSON value (reference stolen) and a status. */
void api_json(struct http_response *resp, int status, json_t *v);

/* Parses the request body as a JSON object; on failure replies 400 naming
 * the body and returns NULL. */
json_t *api_body_json(struct http_request *req, struct http_response *resp);

/* Parses a positive id from a path segment; replies 400 and returns -1 when
 * it is not one. */
int64_t api_path_id(const char *s, struct http_response *resp);

/* Resource handlers. */
/* apps and templates (api_apps.c) */
void api_apps_list(void *app, struct http_request *req, struct http_response *resp);
void api_apps_get(void *app, struct http_request *req, struct http_response *resp);
void api_apps_install(void *app, struct http_request *req, struct http_response *resp);
void api_apps_action(void *app, struct http_request *req, struct http_response *resp);
void api_apps_remove(void *app, struct http_request *req, struct http_response *resp);
void api_apps_promote(void *app, struct http_request *req, struct http_response *resp);
void api_apps_export(void *app, struct http_request *req, struct http_response *resp);
void api_apps_import(void *app, struct http_request *req, struct http_response *resp);
void api_templates_list(void *app, struct http_request *req, struct http_response *resp);
void api_templates_get(void *app, struct http_request *req, struct http_response *resp);
void api_templates_create(void *app, struct http_request *req, struct http_response *resp);
void api_templates_put(void *app, struct http_request *req, struct http_response *resp);
void api_templates_delete(void *app, struct http_request *req, struct http_response *resp);
void api_templates_export(void *app, struct http_request *req, struct http_response *resp);
void api_templates_import(void *app, struct http_request *req, struct http_response *resp);

void api_containers_list(void *app, struct http_request *req, struct http_response *resp);
void api_containers_create(void *app, struct http_request *req, struct http_response *resp);
void api_containers_get(void *app, struct http_request *req, struct http_response *resp);
void api_containers_stats(void *app, struct http_request *req, struct http_response *resp);
/* api_images.c: pushes, builds and registries' credentials */
void api_images_push(void *app, struct http_request *req, struct http_response *resp);
void api_images_build_log_live(void *app, struct http_request *req, struct http_response *resp);
/* A request's body kept in a temporary file as it comes (req->stream_state,
 * freed with the request): a route's stream handler, bounded by
 * files_upload_max_mib (failed set past it). */
struct api_upload {
    FILE *f;
    long long size;
    int failed;
};
int api_upload_chunk(void *app, struct http_request *req, const char *data, size_t len);
void api_images_build(void *app, struct http_request *req, struct http_response *resp);
void api_registries_list(void *app, struct http_request *req, struct http_response *resp);
void api_registries_set(void *app, struct http_request *req, struct http_response *resp);
void api_registries_delete(void *app, struct http_request *req, struct http_response *resp);
/* api_cleanup.c: a host's and the fleet's disk cleanup (plan, run) */
void api_cleanup_plan(void *app, struct http_request *req, struct http_response *resp);
void api_cleanup_run(void *app, struct http_request *req, struct http_response *resp);
void api_fleet_cleanup_plan(void *app, struct http_request *req, struct http_response *resp);
void api_fleet_cleanup_run(void *app, struct http_request *req, struct http_response *resp);
/* api_shell.c: an admin's shell on a host over SSH (WebSocket) */
void api_servers_shell(void *app, struct http_request *req, struct http_response *resp);
/* api_files.c: a container's files (list, download, upload, mkdir, delete) */
/* Holds a stream seat for user or answers 429/503 saying which bound:
 * 0, or -1 (resp answered). */
int api_stream_seat(struct server_app *app, int64_t user, struct http_response *resp);
/* Opens the agent's stream at path for a WebSocket session of kind
 * (ctrsession.h) and answers 101 after the handshake (accept), or the
 * refusal (429/503 past the stream bounds, the agent's own). ended: the
 * words of a log stream's normal end (static; NULL: the container's). */
void api_stream_open(struct server_app *app, struct http_request *req, struct http_response *resp, int kind,
                     const struct reg_target *agent, int64_t container_id, const char *path, const char *accept,
                     const char *ended);
void api_files_list(void *app, struct http_request *req, struct http_response *resp);
/* Answers resp (200, its headers already set by the caller) with a
 * container's logs as they come from the agent's stream fd (first: bytes
 * already read, taken over), the engine's frames of the streams in
 * mux_mask unframed, through a bounded pipe on a thread of app->streams
 * in the seat reserved for user: memory stays flat whatever the size.
 * Takes fd and the seat; on a stopping server answers 503 itself. */
void api_pipe_logs(struct server_app *app, int64_t user, struct http_response *resp, int fd, struct buf *first,
                   int mux_mask);
void api_files_download(void *app, struct http_request *req, struct http_response *resp);
int api_files_upload_chunk(void *app, struct http_request *req, const char *data, size_t len);
void api_files_upload(void *app, struct http_request *req, struct http_response *resp);
void api_files_mkdir(void *app, struct http_request *req, struct http_response *resp);
void api_files_delete(void *app, struct http_request *req, struct http_response *resp);
/* api_ctrstream.c: logs (download, live follow) and the web terminal */
void api_containers_logs(void *app, struct http_request *req, struct http_response *resp);
void api_containers_logs_live(void *app, struct http_request *req, struct http_response *resp);
void api_containers_terminal(void *app, struct http_request *req, struct http_response *resp);
void api_routes_auth(void *app, struct http_request *req, struct http_response *resp);
void api_containers_action(void *app, struct http_request *req, struct http_response *resp);
void api_containers_delete(void *app, struct http_request *req, struct http_response *resp);
void api_containers_unmanaged(void *app, struct http_request *req, struct http_response *resp);
void api_containers_unmanaged_action(void *app, struct http_request *req, struct http_response *resp);
void api_images_list(void *app, struct http_request *req, struct http_response *resp);
void api_images_remove(void *app, struct http_request *req, struct http_response *resp);
void api_images_pull(void *app, struct http_request *req, struct http_response *resp);
void api_images_pulls(void *app, struct http_request *req, struct http_response *resp);
void api_images_pull_get(void *app, struct http_request *req, struct http_response *resp);
void api_quota_mine(void *app, struct http_request *req, struct http_response *resp);
void api_quotas_list(void *app, struct http_request *req, struct http_response *resp);
void api_quotas_set(void *app, struct http_request *req, struct http_response *resp);
void api_quotas_delete(void *app, struct http_request *req, struct http_response *resp);
void api_gpus(void *app, struct http_request *req, struct http_response *resp);
void api_servers_list(void *app, struct http_request *req, struct http_response *resp);
void api_servers_create(void *app, struct http_request *req, struct http_response *resp);
void api_servers_get(void *app, struct http_request *req, struct http_response *resp);
void api_servers_update(void *app, struct http_request *req, struct http_response *resp);
void api_servers_delete(void *app, struct http_request *req, struct http_response *resp);
void api_servers_check(void *app, struct http_request *req, struct http_response *resp);
void api_servers_events(void *app, struct http_request *req, struct http_response *resp);
void api_health_fleet(void *app, struct http_request *req, struct http_response *resp);
void api_fleet_plan(void *app, struct http_request *req, struct http_response *resp);
void api_fleet_apply(void *app, struct http_request *req, struct http_response *resp);
void api_fleet_apply_status(void *app, struct http_request *req, struct http_response *resp);
void api_fleet_ssh_key(void *app, struct http_request *req, struct http_response *resp);
void api_bmcs_list(void *app, struct http_request *req, struct http_response *resp);
void api_bmc_set(void *app, struct http_request *req, struct http_response *resp);
void api_bmc_delete(void *app, struct http_request *req, struct http_response *resp);
void api_promsd(void *app, struct http_request *req, struct http_response *resp);
void api_targets_list(void *app, struct http_request *req, struct http_response *resp);
void api_prom_query(void *app, struct http_request *req, struct http_response *resp);
void api_prom_query_range(void *app, struct http_request *req, struct http_response *resp);
void api_prom_series(void *app, struct http_request *req, struct http_response *resp);
void api_prom_labels(void *app, struct http_request *req, struct http_response *resp);
void api_prom_label_values(void *app, struct http_request *req, struct http_response *resp);
void api_prom_buildinfo(void *app, struct http_request *req, struct http_response *resp);
void api_prom_rules(void *app, struct http_request *req, struct http_response *resp);
void api_prom_alerts(void *app, struct http_request *req, struct http_response *resp);
void api_prom_metadata(void *app, struct http_request *req, struct http_response *resp);
void api_prom_empty(void *app, struct http_request *req, struct http_response *resp);
void api_query_series(void *app, struct http_request *req, struct http_response *resp);
void api_query_labels(void *app, struct http_request *req, struct http_response *resp);
void api_query_label_values(void *app, struct http_request *req, struct http_response *resp);
void api_query_range(void *app, struct http_request *req, struct http_response *resp);
void api_query_latest(void *app, struct http_request *req, struct http_response *resp);
void api_export(void *app, struct http_request *req, struct http_response *resp);
int api_import_stream(void *app, struct http_request *req, const char *data, size_t len);
void api_import_done(void *app, struct http_request *req, struct http_response *resp);
void api_auth_login(void *app, struct http_request *req, struct http_response *resp);
void api_auth_logout(void *app, struct http_request *req, struct http_response *resp);
void api_auth_me(void *app, struct http_request *req, struct http_response *resp);
void api_auth_password(void *app, struct http_request *req, struct http_response *resp);
void api_sessions_list(void *app, struct http_request *req, struct http_response *resp);
void api_sessions_delete(void *app, struct http_request *req, struct http_response *resp);
void api_tokens_list(void *app, struct http_request *req, struct http_response *resp);
void api_tokens_create(void *app, struct http_request *req, struct http_response *resp);
void api_tokens_delete(void *app, struct http_request *req, struct http_response *resp);
void api_users_list(void *app, struct http_request *req, struct http_response *resp);
void api_users_create(void *app, struct http_request *req, struct http_response *resp);
void api_users_get(void *app, struct http_request *req, struct http_response *resp);
void api_users_update(void *app, struct http_request *req, struct http_response *resp);
void api_users_delete(void *app, struct http_request *req, struct http_response *resp);
void api_audit_list(void *app, struct http_request *req, struct http_response *resp);
void api_alert_rules_list(void *app, struct http_request *req, struct http_response *resp);
void api_alert_rules_get(void *app, struct http_request *req, struct http_response *resp);
void api_alert_rules_create(void *app, struct http_request *req, struct http_response *resp);
void api_alert_rules_update(void *app, struct http_request *req, struct http_response *resp);
void api_alert_rules_delete(void *app, struct http_request *req, struct http_response *resp);
void api_alerts_list(void *app, struct http_request *req, struct http_response *resp);
void api_alerts_ack(void *app, struct http_request *req, struct http_response *resp);
void api_alerts_unack(void *app, struct http_request *req, struct http_response *resp);
void api_auth_signup(void *app, struct http_request *req, struct http_response *resp);
void api_receivers_update(void *app, struct http_request *req, struct http_response *resp);
void api_auth_signup_info(void *app, struct http_request *req, struct http_response *resp);
void api_alert_rules_preview(void *app, struct http_request *req, struct http_response *resp);
void api_alert_routes_get(void *app, struct http_request *req, struct http_response *resp);
void api_alert_routes_set(void *app, struct http_request *req, struct http_response *resp);
void api_silences_list(void *app, struct http_request *req, struct http_response *resp);
void api_silences_create(void *app, struct http_request *req, struct http_response *resp);
void api_silences_delete(void *app, struct http_request *req, struct http_response *resp);
void api_receivers_list(void *app, struct http_request *req, struct http_response *resp);
void api_receivers_create(void *app, struct http_request *req, struct http_response *resp);
void api_receivers_delete(void *app, struct http_request *req, struct http_response *resp);
void api_receivers_test(void *app, struct http_request *req, struct http_response *resp);
void api_live(void *app, struct http_request *req, struct http_response *resp);
void api_fleet(void *app, struct http_request *req, struct http_response *resp);
void api_settings_get(void *app, struct http_request *req, struct http_response *resp);
void api_settings_update(void *app, struct http_request *req, struct http_response *resp);
void api_ui(void *app, struct http_request *req, struct http_response *resp);
void api_notifications_list(void *app, struct http_request *req, struct http_response *resp);
void api_healthz(void *app, struct http_request *req, struct http_response *resp);
void api_checkpoint(void *app, struct http_request *req, struct http_response *resp);
void api_metrics(void *app, struct http_request *req, struct http_response *resp);

#endif
