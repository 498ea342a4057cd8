/* /api/v1/servers/{id}/shell: an admin's shell on a host, over SSH with
 * the fleet's key (or the key the fleet file named for it), in the
 * browser's terminal. The host key is checked against its pin; a changed
 * one is refused with both fingerprints. Opening and closing are audited
 * (host.shell, host.shell_end); what is typed is not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/streamset.h"
#include "../ctrsession.h"
#include "../fleetops.h"
#include "../registry.h"
#include "../sshop.h"
#include "api.h"

static void shell_attach(void *arg, int sock, void *urh)
{
    struct ctrsession *s = arg;
    ctrsession_start(s->set, s, sock, urh);
}

static void shell_release(void *arg)
{
    struct ctrsession *s = arg;
    streamset_unreserve(s->set, s->who.user_id);
    ctrsession_free(s);
}

/* rows or cols: 1..1000, default def. -1 when given and not that. */
static int size_of(const char *v, int def)
{
    if (!v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    return *v && !*end && n >= 1 && n <= 1000 ? (int)n : -1;
}

void api_servers_shell(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_ctx *c = api_ctx(req);
    struct reg_target agent;
    struct errinfo e = {0};
    char accept[32], user[65], key[1024], host[300], err[512];
    int port;

    api_audit_target(req, "server:%.64s", req->params[0]);
    if (api_ws_handshake(app, req, resp, accept, sizeof(accept)) < 0)
        return;
    int rows = size_of(http_query(req, "rows"), 24), cols = size_of(http_query(req, "cols"), 80);
    if (rows < 0 || cols < 0) {
        http_error(resp, 400, "invalid_field", rows < 0 ? "rows" : "cols", "1 .. 1000");
        return;
    }
    if (api_find_agent(app, req->params[0], &agent, &e) < 0) {
        api_reply_error(resp, &e);
        return;
    }
    /* the host is where its agent is */
    snprintf(host, sizeof(host), "%s", agent.instance);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    if (host[0] == '[' && colon && colon[-1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    fleetops_ssh_of(app->fleetops, agent.server, user, sizeof(user), &port, key, sizeof(key));
    if (api_stream_seat(app, c->who.user_id, resp) < 0)
        return;
    struct sshop_target t = {.host = host, .user = user, .port = port, .key_file = key[0] ? key : NULL,
                             .pins_dir = app->opts->data_dir, .timeout_ms = 10000};
    struct sshop *ssh = sshop_connect(&t, err, sizeof(err));
    struct sshop_shell *sh = ssh ? sshop_shell_open(ssh, rows, cols, err, sizeof(err)) : NULL;
    if (!sh) {
        streamset_unreserve(app->streams, c->who.user_id);
        /* the words say which: nothing answers, refused, the host key changed */
        http_error(resp, 502, "ssh_failed", NULL, "%s@%s:%d: %s", user, host, port, err);
        return;
    }
    struct ctrsession *s = ctrsession_new(CTRSESSION_SHELL);
    s->shell = sh;
    s->auth = app->auth;
    s->who = c->who;
    s->audit = app->audit;
    s->set = app->streams;
    snprintf(s->server, sizeof(s->server), "%s", agent.server);
    snprintf(s->source, sizeof(s->source), "%s", c->source);
    api_audit_detail(req, "ssh", json_pack("{s:s,s:s,s:i}", "user", user, "host", host, "port", port));
    api_ws_accept(resp, accept, shell_attach, shell_release, s);
}
