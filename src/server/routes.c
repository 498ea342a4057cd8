/* The routes include, rewritten only when its text changes: nginx reloads
 * gracefully (old workers finish their requests), but not for nothing. */
#include "routes.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "containers.h"
#include "registry.h"

#define LOOK_MS 2000

struct routes {
    struct server_app *app;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop, poked;
    char *last; /* the text written last */
};

/* Only names nginx reads as they are (and the registry and the container
 * rules allow anyway): letters, digits, '_', '.', '-'. */
static int plain(const char *s)
{
    if (!s || !*s || strlen(s) > 128)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

static const char *address_of(const json_t *servers, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s)
        if (!strcmp(json_string_value(json_object_get(s, "name")) ?: "", name))
            return json_string_value(json_object_get(s, "address"));
    return NULL;
}

/* An address nginx takes in proxy_pass: a name or IPv4 as is, IPv6 in []. */
static int host_part(const char *addr, char *out, size_t len)
{
    if (!addr || !*addr || strlen(addr) > 200)
        return -1;
    for (const char *p = addr; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':'))
            return -1;
    snprintf(out, len, strchr(addr, ':') ? "[%s]" : "%s", addr);
    return 0;
}

char *routes_render(const json_t *containers, const json_t *servers, const char *auth_url)
{
    struct buf b;
    size_t i, j;
    json_t *c, *p;

    buf_init(&b, 0);
    buf_printf(&b, "# Written by gpufleet (routes_file): routes to the web apps in containers.\n"
                   "# Do not edit: it is rewritten whenever containers change.\n"
                   "location = /_gpufleet_route_auth {\n    internal;\n"
                   "    proxy_pass %s/api/v1/routes/auth;\n"
                   "    proxy_pass_request_body off;\n    proxy_set_header Content-Length \"\";\n"
                   "    proxy_set_header X-Original-URI $request_uri;\n}\n"
                   "location @gpufleet_route_login {\n    return 302 /?next=$request_uri;\n}\n",
               auth_url);
    json_array_foreach(containers, i, c) {
        const char *owner = json_string_value(json_object_get(c, "owner"));
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *state = json_string_value(json_object_get(c, "state"));
        char host[210];
        if (!plain(owner) || !plain(name) || !state || strcmp(state, "running") ||
            host_part(address_of(servers, json_string_value(json_object_get(c, "server")) ?: ""), host, sizeof(host)) < 0)
            continue;
        json_array_foreach(json_object_get(c, "ports"), j, p) {
            json_int_t in = json_integer_value(json_object_get(p, "container"));
            json_int_t out = json_integer_value(json_object_get(p, "host"));
            const char *proto = json_string_value(json_object_get(p, "proto"));
            if (in < 1 || in > 65535 || out < 1 || out > 65535 || (proto && strcmp(proto, "tcp")))
                continue;
            buf_printf(&b,
                       "location /u/%s/%s/%lld/ {\n"
                       "    auth_request /_gpufleet_route_auth;\n"
                       "    error_page 401 = @gpufleet_route_login;\n"
                       "    proxy_pass http://%s:%lld/;\n"
                       "    proxy_http_version 1.1;\n"
                       "    proxy_set_header Host $http_host;\n"
                       "    proxy_set_header X-Forwarded-Prefix /u/%s/%s/%lld;\n"
                       "    proxy_set_header X-Forwarded-Proto $scheme;\n"
                       "    proxy_set_header Upgrade $http_upgrade;\n"
                       "    proxy_set_header Connection $connection_upgrade_gpufleet;\n"
                       "    proxy_set_header Cookie $gpufleet_app_cookie;\n"
                       "    proxy_read_timeout 1h;\n"
                       "}\n",
                       owner, name, (long long)in, host, (long long)out, owner, name, (long long)in);
        }
    }
    return buf_detach(&b, NULL);
}

int routes_allowed(const char *uri, const struct auth_identity *who)
{
    char owner[128];
    if (!uri || strncmp(uri, "/u/", 3))
        return 404;
    size_t n = strcspn(uri + 3, "/");
    if (!n || n >= sizeof(owner) || uri[3 + n] != '/')
        return 404;
    memcpy(owner, uri + 3, n);
    owner[n] = '\0';
    if (who->role >= ROLE_OPERATOR || !strcmp(owner, who->username))
        return 200;
    return 403;
}

/* ---- the writer ---- */

static void reload_nginx(const char *pidfile)
{
    FILE *f = pidfile ? fopen(pidfile, "r") : NULL;
    long pid = 0;
    if (!f) {
        log_warn("routes: no nginx pid file at %s: nginx is not told of the new routes", pidfile ? pidfile : "(unset)");
        return;
    }
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 1 || kill((pid_t)pid, SIGHUP) < 0)
        log_warn("routes: could not signal nginx (pid file %s): %s", pidfile, pid > 1 ? strerror(errno) : "no pid in it");
    fclose(f);
}

/* Renders, and writes and reloads when the text changed. */
static void look(struct routes *r)
{
    const struct server_options *o = r->app->opts;
    char tmp[4200], auth_url[300];
    json_t *cs = ctr_list(r->app->ctr, 0), *ss = reg_list(r->app->reg);

    if (o->routes_auth_url)
        snprintf(auth_url, sizeof(auth_url), "%s", o->routes_auth_url);
    else /* the listen address, ":PORT" meaning this machine */
        snprintf(auth_url, sizeof(auth_url), "http://%s%s", o->listen[0] == ':' ? "127.0.0.1" : "", o->listen);
    char *text = routes_render(cs, ss, auth_url);
    json_decref(cs);
    json_decref(ss);
    if (r->last && !strcmp(r->last, text)) {
        free(text);
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", o->routes_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, o->routes_file) < 0) {
        log_warn("routes: cannot write %s: %s", o->routes_file, strerror(errno));
        free(text);
        return;
    }
    free(r->last);
    r->last = text;
    log_info("routes: %s written; nginx told to reload", o->routes_file);
    reload_nginx(o->routes_nginx_pidfile);
}

static void *routes_main(void *arg)
{
    struct routes *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        pthread_mutex_unlock(&r->lock);
        look(r);
        pthread_mutex_lock(&r->lock);
        if (!r->poked && !r->stop)
            now_cond_wait_until(&r->wake, &r->lock, now_mono_ns() + LOOK_MS * 1000000LL);
        r->poked = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct routes *routes_start(struct server_app *app)
{
    if (!app->opts->routes_file)
        return NULL;
    struct routes *r = xcalloc(1, sizeof(*r));
    r->app = app;
    pthread_mutex_init(&r->lock, NULL);
    now_cond_init(&r->wake);
    if (pthread_create(&r->thread, NULL, routes_main, r) != 0) {
        log_error("routes: cannot start its thread");
        free(r);
        return NULL;
    }
    return r;
}

void routes_poke(struct routes *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->poked = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void routes_stop(struct routes *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r->last);
    free(r);
}
