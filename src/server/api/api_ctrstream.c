/* Inside a container: its logs (download, and a live follow over a
 * WebSocket), a web terminal (a WebSocket to a shell in it), and the
 * check nginx makes before each request to a web app in it (routes.h). Who may
 * see a container may read its logs; who may act on it may open a
 * terminal (viewers never). Opening and closing a terminal are audited,
 * what is typed is not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/muxframe.h"
#include "../../lib/streamset.h"
#include "../agentstream.h"
#include "../containers.h"
#include "../ctrsession.h"
#include "../routes.h"
#include "api.h"

#define LIVE_TAIL_DEFAULT "500"


int api_container_locate(struct server_app *app, struct http_request *req, struct http_response *resp,
                         int act, struct api_container *w)
{
    struct api_ctx *c = api_ctx(req);
    struct errinfo e = {0};

    if ((w->id = api_path_id(req->params[0], resp)) <= 0)
        return -1;
    api_audit_target(req, "container:%lld", (long long)w->id);
    int64_t scope = c->who.role == ROLE_USER || (act && c->who.role < ROLE_OPERATOR) ? c->who.user_id : 0;
    if (ctr_locate(app->ctr, w->id, scope, &w->agent, w->engine_id, sizeof(w->engine_id), w->name,
                   sizeof(w->name), &e) < 0) {
        api_reply_error(resp, &e);
        return -1;
    }
    return 0;
}

static int digits(const char *v, size_t max)
{
    size_t n = strlen(v);
    if (!n || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return 1;
}

/* The agent's logs path from tail, since and timestamps, checked here so
 * that nothing unchecked reaches the agent's query string. */
static int logs_path(struct http_request *req, struct http_response *resp, const struct api_container *w,
                     int follow, const char *tail_default, char *path, size_t pathlen)
{
    const char *tail = http_query(req, "tail"), *since = http_query(req, "since");
    const char *ts = http_query(req, "timestamps");
    if (!tail)
        tail = tail_default;
    if (strcmp(tail, "all") && !digits(tail, 9)) {
        http_error(resp, 400, "invalid_field", "tail", "a count of lines or all");
        return -1;
    }
    if (since && !digits(since, 12)) {
        http_error(resp, 400, "invalid_field", "since", "unix seconds");
        return -1;
    }
    if (ts && strcmp(ts, "0") && strcmp(ts, "1")) {
        http_error(resp, 400, "invalid_field", "timestamps", "0 or 1");
        return -1;
    }
    snprintf(path, pathlen, "/api/v1/engine/containers/%s/logs?follow=%d&tail=%s&since=%s&timestamps=%s",
             w->engine_id, follow, tail, since ? since : "0", ts ? ts : "0");
    return 0;
}

/* Holds a stream seat for user (streamset_reserve) or answers why not:
 * 429 past stream_max_per_user, 503 past stream_max_sessions. 0 or -1. */
int api_stream_seat(struct server_app *app, int64_t user, struct http_response *resp)
{
    int room = streamset_reserve(app->streams, user);
    if (room == 0)
        return 0;
    http_add_header(resp, "Retry-After", "10");
    http_error(resp, room == -2 ? 429 : 503, room == -2 ? "too_many_connections" : "busy", NULL,
               room == -2 ? "you have stream_max_per_user log follows, terminals and transfers open already"
                          : "the server holds stream_max_sessions log follows, terminals and transfers");
    return -1;
}

void api_containers_logs(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct errinfo e = {0};
    struct api_container w;
    char path[600], disp[200];
    const char *stream = http_query(req, "stream");
    int mask = 1 << MUX_STDOUT | 1 << MUX_STDERR;
    json_t *hello = NULL;
    struct buf rest;
    int64_t user = api_ctx(req)->who.user_id;

    if (stream && !strcmp(stream, "stdout"))
        mask = 1 << MUX_STDOUT;
    else if (stream && !strcmp(stream, "stderr"))
        mask = 1 << MUX_STDERR;
    else if (stream && strcmp(stream, "both")) {
        http_error(resp, 400, "invalid_field", "stream", "stdout, stderr or both");
        return;
    }
    if (api_container_locate(app, req, resp, 0, &w) < 0 || logs_path(req, resp, &w, 0, "all", path, sizeof(path)) < 0)
        return;
    /* a download is a stream like a follow: it holds a seat while it runs */
    if (api_stream_seat(app, user, resp) < 0)
        return;
    buf_init(&rest, 0);
    int fd = agentstream_open(&w.agent, path, &hello, &rest, &e);
    json_decref(hello);
    if (fd < 0) {
        streamset_unreserve(app->streams, user);
        buf_free(&rest);
        api_reply_error(resp, &e);
        return;
    }
    resp->content_type = "text/plain; charset=utf-8";
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s-logs.txt\"", w.name[0] ? w.name : "container");
    http_add_header(resp, "Content-Disposition", disp);
    api_pipe_logs(app, user, resp, fd, &rest, mask);
    buf_free(&rest);
}

/* ---- WebSockets ---- */

static void session_attach(void *arg, int sock, void *urh)
{
    struct ctrsession *s = arg;
    ctrsession_start(s->set, s, sock, urh);
}

/* The browser went away before the upgrade. */
static void session_release(void *arg)
{
    struct ctrsession *s = arg;
    streamset_unreserve(s->set, s->who.user_id);
    ctrsession_free(s);
}

void api_stream_open(struct server_app *app, struct http_request *req, struct http_response *resp, int kind,
                     const struct reg_target *agent, int64_t container_id, const char *path, const char *accept,
                     const char *ended)
{
    struct api_ctx *c = api_ctx(req);
    struct errinfo e = {0};
    json_t *hello = NULL;

    if (api_stream_seat(app, c->who.user_id, resp) < 0)
        return;
    struct ctrsession *s = ctrsession_new(kind);
    s->agent = *agent;
    s->ended = ended;
    s->auth = app->auth;
    s->who = c->who;
    s->audit = app->audit;
    s->set = app->streams;
    s->container_id = container_id;
    snprintf(s->source, sizeof(s->source), "%s", c->source);
    if ((s->agent_fd = agentstream_open(agent, path, &hello, &s->rest, &e)) < 0) {
        streamset_unreserve(app->streams, c->who.user_id);
        ctrsession_free(s);
        api_reply_error(resp, &e);
        return;
    }
    s->running = json_is_true(json_object_get(hello, "running"));
    snprintf(s->exec_id, sizeof(s->exec_id), "%s", json_string_value(json_object_get(hello, "exec_id")) ?: "");
    json_decref(hello);
    api_ws_accept(resp, accept, session_attach, session_release, s);
}

void api_containers_logs_live(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_container w;
    char accept[32], path[600];

    if (api_ws_handshake(app, req, resp, accept, sizeof(accept)) < 0 || api_container_locate(app, req, resp, 0, &w) < 0 ||
        logs_path(req, resp, &w, 1, LIVE_TAIL_DEFAULT, path, sizeof(path)) < 0)
        return;
    api_stream_open(app, req, resp, CTRSESSION_LOGS, &w.agent, w.id, path, accept, NULL);
}

void api_containers_terminal(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_container w;
    char accept[32], path[600];
    const char *rows = http_query(req, "rows"), *cols = http_query(req, "cols");

    if (api_ws_handshake(app, req, resp, accept, sizeof(accept)) < 0 || api_container_locate(app, req, resp, 1, &w) < 0)
        return;
    if ((rows && !digits(rows, 4)) || (cols && !digits(cols, 4))) {
        http_error(resp, 400, "invalid_field", rows && !digits(rows, 4) ? "rows" : "cols", "1 .. 1000");
        return;
    }
    snprintf(path, sizeof(path), "/api/v1/engine/containers/%s/exec?rows=%s&cols=%s", w.engine_id,
             rows ? rows : "24", cols ? cols : "80");
    api_stream_open(app, req, resp, CTRSESSION_TERMINAL, &w.agent, w.id, path, accept, NULL);
}

/* ---- routes to apps inside: nginx's auth_request ---- */

void api_routes_auth(void *appv, struct http_request *req, struct http_response *resp)
{
    (void)appv;
    int status = routes_allowed(http_header(req, "X-Original-URI"), &api_ctx(req)->who);
    resp->status = status;
    resp->content_type = "text/plain";
    buf_puts(&resp->body, status == 200 ? "ok\n" : status == 403 ? "not yours\n" : "not a route\n");
}
