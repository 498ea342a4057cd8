/* Routes to the web apps inside containers: /u/OWNER/CONTAINER/PORT/ under
 * the fleet's address, proxied by nginx to the host's port for that
 * container port. gpufleet writes the nginx include (routes_file) whenever
 * the set of running containers with ports changes, then tells nginx to
 * reload (SIGHUP to the pid in routes_nginx_pidfile). Each request is
 * checked by nginx's auth_request against /api/v1/routes/auth: the owner
 * and operators pass, anyone else signed in gets 403, nobody signed in is
 * sent to the login page. */
#ifndef GF_ROUTES_H
#define GF_ROUTES_H

#include <jansson.h>

#include "auth.h"
#include "server.h"

struct routes;

/* Starts writing app->opts->routes_file (NULL when it is not set: routes
 * are off). */
struct routes *routes_start(struct server_app *app);
void routes_stop(struct routes *r);

/* Writes now instead of at the next look (a container changed). */
void routes_poke(struct routes *r);

/* The include's text for containers (ctr_list's form) and servers
 * (reg_list's form); auth_url: gpufleet's own address for the subrequest.
 * A new string. Exposed for the unit test. */
char *routes_render(const json_t *containers, const json_t *servers, const char *auth_url);

/* Whether who may reach the route of uri (/u/OWNER/...): 200 (the owner,
 * an operator or an admin), 403 (someone else), 404 (not a route path). */
int routes_allowed(const char *uri, const struct auth_identity *who);

#endif
