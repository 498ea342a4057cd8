/* The server's HTTP API: one file per resource; the route table is in
 * api_routes.c. Handlers return JSON; errors use the shared shape
 * {"error":{"code","field","message"}}. */
#ifndef GF_API_H
#define GF_API_H

#include <jansson.h>
#include <stdint.h>

#include "../../lib/httpd.h"
#include "../server.h"

/* Starts the HTTP server for app on app->opts->listen. */
struct http_server *api_start(struct server_app *app, char *err, size_t errlen);

/* Replies with a JSON value (reference stolen) and a status. */
void api_json(struct http_response *resp, int status, json_t *v);

/* Parses the request body as a JSON object; on failure replies 400 naming
 * the body and returns NULL. */
json_t *api_body_json(struct http_request *req, struct http_response *resp);

/* Parses a positive id from a path segment; replies 400 and returns -1 when
 * it is not one. */
int64_t api_path_id(const char *s, struct http_response *resp);

/* Parses a time as Unix seconds (decimals allowed) or RFC 3339; returns 0
 * and the time in ms, or -1. */
int api_parse_time(const char *s, int64_t *ms);

/* Parses a duration: seconds ("15", "0.5") or with a unit (ms, s, m, h, d,
 * w); returns 0 and milliseconds (> 0), or -1. */
int api_parse_duration(const char *s, int64_t *ms);

/* Resource handlers. */
void api_servers_list(void *app, struct http_request *req, struct http_response *resp);
void api_servers_create(void *app, struct http_request *req, struct http_response *resp);
void api_servers_get(void *app, struct http_request *req, struct http_response *resp);
void api_servers_update(void *app, struct http_request *req, struct http_response *resp);
void api_servers_delete(void *app, struct http_request *req, struct http_response *resp);
void api_servers_check(void *app, struct http_request *req, struct http_response *resp);
void api_servers_events(void *app, struct http_request *req, struct http_response *resp);
void api_targets_list(void *app, struct http_request *req, struct http_response *resp);
void api_query_series(void *app, struct http_request *req, struct http_response *resp);
void api_query_labels(void *app, struct http_request *req, struct http_response *resp);
void api_query_label_values(void *app, struct http_request *req, struct http_response *resp);
void api_query_range(void *app, struct http_request *req, struct http_response *resp);
void api_query_latest(void *app, struct http_request *req, struct http_response *resp);
void api_export(void *app, struct http_request *req, struct http_response *resp);
int api_import_stream(void *app, struct http_request *req, const char *data, size_t len);
void api_import_done(void *app, struct http_request *req, struct http_response *resp);
void api_healthz(void *app, struct http_request *req, struct http_response *resp);
void api_metrics(void *app, struct http_request *req, struct http_response *resp);

#endif
