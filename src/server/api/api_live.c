/* /api/v1/live: the WebSocket that pushes alert changes (and, with the web
 * UI, fleet updates) to browsers as they happen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../lib/now.h"
#include "../../lib/websocket.h"
#include "../../lib/xalloc.h"
#include "api.h"

struct live_upgrade {
    struct ws_hub *hub;
    char hello[256];
    struct auth *auth;
    struct auth_identity who;
    uint64_t gen; /* auth.db's generation at the last check */
};

/* The stream lives as long as the credential that opened it. */
static int still_valid(void *arg)
{
    struct live_upgrade *u = arg;
    return auth_still_valid(u->auth, &u->who, now_wall_ms(), &u->gen);
}

static void attach(void *arg, int sock, void *urh)
{
    struct live_upgrade *u = arg;
    /* the client owns u from here (still_valid's argument), and frees it */
    /* users see their own apps' events; viewers and up everyone's */
    ws_hub_attach(u->hub, sock, urh, u->hello, u->who.user_id, u->who.role != ROLE_USER, still_valid, u, free);
}

/* The client went away before the upgrade: its seat is given back. */
static void release(void *arg)
{
    struct live_upgrade *u = arg;
    ws_hub_unreserve(u->hub, u->who.user_id);
    free(u);
}

int api_ws_handshake(struct server_app *app, struct http_request *req, struct http_response *resp,
                     char *accept, size_t acceptlen)
{
    struct api_ctx *c = api_ctx(req);
    const char *up = http_header(req, "Upgrade");
    const char *ver = http_header(req, "Sec-WebSocket-Version");

    if (!up || strcasecmp(up, "websocket")) {
        http_add_header(resp, "Upgrade", "websocket");
        http_error(resp, 426, "upgrade_required", "Upgrade", "this is a WebSocket endpoint");
        return -1;
    }
    if (!ver || strcmp(ver, "13")) {
        http_add_header(resp, "Sec-WebSocket-Version", "13");
        http_error(resp, 400, "invalid_header", "Sec-WebSocket-Version", "WebSocket version 13 only");
        return -1;
    }
    /* browsers send cookies with cross-site WebSocket handshakes too */
    if (c->who.method != AUTH_TOKEN && !api_same_origin(app, req)) {
        http_error(resp, 403, "csrf", "Origin", "a WebSocket from another site's page is refused");
        return -1;
    }
    if (ws_accept_key(http_header(req, "Sec-WebSocket-Key"), accept, acceptlen) < 0) {
        http_error(resp, 400, "invalid_header", "Sec-WebSocket-Key", "a 16-byte base64 nonce is required");
        return -1;
    }
    return 0;
}

void api_ws_accept(struct http_response *resp, const char *accept, void (*upgrade)(void *, int, void *),
                   void (*upgrade_release)(void *), void *arg)
{
    resp->status = 101;
    http_add_header(resp, "Upgrade", "websocket");
    http_add_header(resp, "Sec-WebSocket-Accept", accept);
    resp->upgrade = upgrade;
    resp->upgrade_arg = arg;
    resp->upgrade_release = upgrade_release;
}

void api_live(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    char accept[32];

    if (api_ws_handshake(app, req, resp, accept, sizeof(accept)) < 0)
        return;
    int room = ws_hub_reserve(app->hub, c->who.user_id);
    if (room < 0) {
        http_add_header(resp, "Retry-After", "30");
        http_error(resp, room == -2 ? 429 : 503, room == -2 ? "too_many_connections" : "busy", NULL,
                   room == -2 ? "you have live_max_per_user live connections open already"
                              : "the server holds live_max_clients live connections");
        return;
    }
    struct live_upgrade *u = xcalloc(1, sizeof(*u));
    u->hub = app->hub;
    u->auth = app->auth;
    u->who = c->who;
    snprintf(u->hello, sizeof(u->hello),
             "{\"type\":\"hello\",\"user\":\"%s\",\"role\":\"%s\",\"server_time_ms\":%lld}",
             c->who.username, auth_role_name(c->who.role), (long long)now_wall_ms());
    api_ws_accept(resp, accept, attach, release, u);
}
