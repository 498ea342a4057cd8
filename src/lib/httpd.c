/* libmicrohttpd glue. MHD calls the access handler several times per request:
 * first to set up, then with body chunks, then once with no data; the route is
 * dispatched on that last call. */
#include "httpd.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"
#include "now.h"
#include "xalloc.h"

/* A connection as the header deadline sees it. */
struct conn_watch {
    struct conn_watch *prev, *next;
    int fd;
    int64_t waiting_ns; /* headers awaited since; 0: in a request, or upgraded */
};

struct request_priv;

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_config cfg;
    unsigned port;
    pthread_mutex_t watch_lock;
    pthread_cond_t reaper_wake;
    struct conn_watch *watches;
    pthread_t reaper;
    int reaper_started, stopping;
    /* offload routes: suspended requests waiting for a thread */
    pthread_mutex_t jobs_lock;
    pthread_cond_t jobs_wake;
    struct request_priv *jobs_head, *jobs_tail;
    pthread_t *offloaders;
    unsigned noffloaders;
    int jobs_stop;
};

struct upgrade {
    void (*fn)(void *arg, int sock, void *urh);
    void (*release)(void *arg);
    void *arg;
};

/* What a request keeps beyond the public struct. */
struct request_priv {
    struct http_request pub;
    struct http_server *srv;
    const struct http_route *denied; /* a matched route the authorize hook refused */
    struct upgrade *upgrade;         /* queued; the upgrade handler takes it */
    char addr[INET6_ADDRSTRLEN];
    /* an offload route: queued, then answered by an offload thread */
    struct request_priv *job_next;
    int offloaded;
    struct http_response *answer; /* set by the offload thread before it resumes */
};

int http_parse_listen(const char *listen, char *host, size_t hostlen, unsigned *port, char *err,
                      size_t errlen)
{
    const char *colon;
    size_t hlen;
    char *end;
    unsigned long p;

    if (!listen || !*listen) {
        snprintf(err, errlen, "listen: empty address");
        return -1;
    }
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "listen: expected [IPv6]:PORT, got '%s'", listen);
            return -1;
        }
        hlen = (size_t)(close - listen - 1);
        if (hlen >= hostlen)
            goto toolong;
        memcpy(host, listen + 1, hlen);
        host[hlen] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon) {
            snprintf(err, errlen, "listen: expected HOST:PORT, got '%s'", listen);
            return -1;
        }
        hlen = (size_t)(colon - listen);
        if (hlen >= hostlen)
            goto toolong;
        memcpy(host, listen, hlen);
        host[hlen] = '\0';
    }
    p = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || p > 65535) {
        snprintf(err, errlen, "listen: port must be 0-65535, got '%s'", colon + 1);
        return -1;
    }
    *port = (unsigned)p;
    return 0;
toolong:
    snprintf(err, errlen, "listen: host too long");
    return -1;
}

const char *http_query(struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int http_query_strict(struct http_request *req, const char *name, const char **value)
{
    const char *v = NULL;
    size_t n = 0;

    *value = NULL;
    if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      &n) != MHD_YES || !v)
        return 0;
    if (strlen(v) != n)
        return -1;
    *value = v;
    return 0;
}

struct each_arg {
    void (*fn)(void *arg, const char *name, const char *value, size_t len);
    void *arg;
};

static enum MHD_Result each_one(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                const char *value, size_t value_size)
{
    struct each_arg *e = cls;
    (void)kind, (void)key_size;
    if (key)
        e->fn(e->arg, key, value ? value : "", value ? value_size : 0);
    return MHD_YES;
}

void http_query_each(struct http_request *req,
                     void (*fn)(void *arg, const char *name, const char *value, size_t len),
                     void *arg)
{
    struct each_arg e = {fn, arg};
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, each_one, &e);
}

const char *http_client_addr(struct http_request *req)
{
    struct request_priv *p = (struct request_priv *)req;
    if (p->addr[0])
        return p->addr;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return "";
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, p->addr,
                  sizeof(p->addr));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, p->addr,
                  sizeof(p->addr));
    return p->addr;
}

int http_is_tls(const struct http_request *req)
{
    const struct request_priv *p = (const struct request_priv *)req;
    return p->srv->cfg.tls_cert_pem != NULL;
}

const char *http_header(struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int http_accepts_gzip(struct http_request *req)
{
    return http_gzip_acceptable(http_header(req, "Accept-Encoding"));
}

int http_gzip_acceptable(const char *ae)
{
    while (ae && *ae) {
        size_t n = strcspn(ae, ",");
        char tok[64];
        if (n < sizeof(tok)) {
            memcpy(tok, ae, n);
            tok[n] = '\0';
            char *name = tok + strspn(tok, " \t");
            char *params = strchr(name, ';');
            if (params)
                *params++ = '\0';
            name[strcspn(name, " \t")] = '\0';
            if (!strcasecmp(name, "gzip") || !strcmp(name, "*")) {
                const char *q = params ? strstr(params, "q=") : NULL;
                return !q || strtod(q + 2, NULL) > 0;
            }
        }
        ae += n;
        if (*ae == ',')
            ae++;
    }
    return 0;
}

void http_add_header(struct http_response *resp, const char *name, const char *value)
{
    if (resp->nheaders >= HTTP_MAX_HEADERS)
        return;
    resp->header_names[resp->nheaders] = xstrdup(name);
    resp->header_values[resp->nheaders] = xstrdup(value);
    resp->nheaders++;
}

void http_error(struct http_response *resp, int status, const char *code, const char *field,
                const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    json_t *err, *root;
    char *text;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (field)
        json_object_set_new(err, "field", json_string(field));
    root = json_pack("{s:o}", "error", err);
    text = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    resp->status = status;
    resp->content_type = "application/json";
    resp->data = NULL;
    buf_reset(&resp->body);
    if (text) {
        buf_puts(&resp->body, text);
        buf_putc(&resp->body, '\n');
        free(text);
    }
}

/* Matches path against pattern, filling req->params for {x} segments. */
static int match_route(const char *pattern, const char *path, struct http_request *req)
{
    const char *p = pattern, *s = path;
    size_t np = 0;

    while (*p && *s) {
        if (!strcmp(p, "{*}")) { /* the rest of the path, slashes included */
            req->nparams = np;
            return 1;
        }
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            size_t n = strcspn(s, "/");
            if (!pe || n == 0 || n >= sizeof(req->param_store[0]) || np >= HTTP_MAX_PARAMS)
                return 0;
            memcpy(req->param_store[np], s, n);
            req->param_store[np][n] = '\0';
            req->params[np] = req->param_store[np];
            np++;
            p = pe + 1;
            s += n;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    if (!strcmp(p, "{*}"))
        p += 3;
    if (*p || *s)
        return 0;
    req->nparams = np;
    return 1;
}

static void release_resp(struct http_response *resp)
{
    http_pipe_unref(resp->pipe); /* never sent */
    resp->pipe = NULL;
    buf_free(&resp->body);
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
}

/* Finds the route and authorizes, once the headers are in. On an error the
 * response is kept in req->early and sent when the body has been read. */
static void decide(struct http_server *srv, struct http_request *req)
{
    const struct http_route *path_match = NULL;
    struct http_response *early = xcalloc(1, sizeof(*early));

    req->decided = 1;
    buf_init(&early->body, 0);
    early->status = 200;
    for (size_t i = 0; i < srv->cfg.nroutes; i++) {
        const struct http_route *r = &srv->cfg.routes[i];
        if (!match_route(r->pattern, req->path, req))
            continue;
        if (!strstr(r->pattern, "{*}")) /* a catch-all makes no path's methods wrong */
            path_match = r;
        int same = !strcmp(r->method, req->method) ||
                   (!strcmp(req->method, "HEAD") && !strcmp(r->method, "GET"));
        if (!same)
            continue;
        if (srv->cfg.authorize && srv->cfg.authorize(srv->cfg.app, r, req, early) < 0) {
            ((struct request_priv *)req)->denied = r;
            req->early = early;
            return;
        }
        req->route = r;
        buf_free(&early->body);
        free(early);
        return;
    }
    if (path_match)
        http_error(early, 405, "method_not_allowed", NULL, "%s is not allowed on %s",
                   req->method, req->path);
    else
        http_error(early, 404, "not_found", NULL, "no such path: %s", req->path);
    req->early = early;
}

static void dispatch(struct http_server *srv, struct http_request *req,
                     struct http_response *resp)
{
    if (req->body_too_big) {
        http_error(resp, 413, "body_too_large", NULL, "request body larger than %zu bytes",
                   srv->cfg.max_body_bytes);
        return;
    }
    req->route->handler(srv->cfg.app, req, resp);
}

/* ---- bodies produced by another thread ---- */

struct http_pipe {
    pthread_mutex_t lock;
    pthread_cond_t room;
    char *ring;
    size_t cap, start, len;
    int refs, closed, failed, gone, suspended;
    struct MHD_Connection *conn; /* set when the response is queued */
};

struct http_pipe *http_pipe_new(size_t max_buffered)
{
    struct http_pipe *p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    now_cond_init(&p->room);
    p->cap = max_buffered ? max_buffered : 256 * 1024;
    p->ring = xmalloc(p->cap);
    p->refs = 2;
    return p;
}

static void pipe_drop(struct http_pipe *p)
{
    pthread_mutex_lock(&p->lock);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->room);
    free(p->ring);
    free(p);
}

/* The client may read again (lock held). */
static void pipe_wake_reader(struct http_pipe *p)
{
    if (p->suspended && p->conn) {
        p->suspended = 0;
        MHD_resume_connection(p->conn);
    }
}

int http_pipe_write(struct http_pipe *p, const void *data, size_t n, int (*stop)(void *), void *arg)
{
    const char *c = data;
    pthread_mutex_lock(&p->lock);
    while (n > 0) {
        if (p->gone) {
            pthread_mutex_unlock(&p->lock);
            return -1;
        }
        if (p->len == p->cap) {
            now_cond_wait_until(&p->room, &p->lock, now_mono_ns() + 1000000000LL);
            if (p->len == p->cap && stop && stop(arg)) {
                pthread_mutex_unlock(&p->lock);
                return -1;
            }
            continue;
        }
        size_t end = (p->start + p->len) % p->cap;
        size_t take = p->cap - p->len;
        if (take > p->cap - end)
            take = p->cap - end;
        if (take > n)
            take = n;
        memcpy(p->ring + end, c, take);
        p->len += take;
        c += take;
        n -= take;
        pipe_wake_reader(p);
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void http_pipe_close(struct http_pipe *p, int failed)
{
    pthread_mutex_lock(&p->lock);
    p->closed = 1;
    p->failed = failed;
    pipe_wake_reader(p);
    pthread_mutex_unlock(&p->lock);
    pipe_drop(p);
}

void http_pipe_unref(struct http_pipe *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->gone = 1; /* the writer stops at its next write */
    pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->lock);
    pipe_drop(p);
}

static void pipe_free_cb(void *cls)
{
    http_pipe_unref(cls); /* the response is done with it (sent, or the client left) */
}

/* libmicrohttpd asks for the next bytes; with none yet the connection is
 * suspended until the writer brings some (returning 0 alone would spin). */
static ssize_t pipe_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_pipe *p = cls;
    ssize_t n = 0;
    (void)pos;
    pthread_mutex_lock(&p->lock);
    if (p->len) {
        size_t take = p->len < max ? p->len : max;
        if (take > p->cap - p->start)
            take = p->cap - p->start;
        memcpy(buf, p->ring + p->start, take);
        p->start = (p->start + take) % p->cap;
        p->len -= take;
        pthread_cond_broadcast(&p->room);
        n = (ssize_t)take;
    } else if (p->closed) {
        n = p->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        p->suspended = 1;
        MHD_suspend_connection(p->conn);
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

static void free_cb(void *arg)
{
    struct http_response *resp = arg;
    if (resp->release)
        resp->release(resp->release_arg);
    free(resp);
}

static struct conn_watch *watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Marks a connection waiting for headers (when) or not (0). The watch
 * lives until MHD says the connection closed, after its last callback. */
static void set_waiting(struct MHD_Connection *conn, int64_t when)
{
    struct conn_watch *w = watch_of(conn);
    if (w)
        __atomic_store_n(&w->waiting_ns, when, __ATOMIC_RELAXED);
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct upgrade *u = cls;
    (void)conn;
    (void)req_cls;
    (void)extra_in;
    if (extra_in_size)
        log_debug("http: %zu bytes arrived before the upgrade; dropped", extra_in_size);
    struct conn_watch *w = watch_of(conn);
    if (w) /* no header deadline on an upgraded socket */
        __atomic_store_n(&w->waiting_ns, (int64_t)0, __ATOMIC_RELAXED);
    u->fn(u->arg, sock, urh);
    free(u);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_response *resp,
                                     struct request_priv *priv)
{
    struct MHD_Response *mr;
    enum MHD_Result ret;

    if (resp->pipe) {
        struct http_pipe *p = resp->pipe;
        resp->pipe = NULL; /* the MHD response holds the reference now */
        p->conn = conn;
        mr = MHD_create_response_from_callback(resp->pipe_length >= 0 ? (uint64_t)resp->pipe_length : MHD_SIZE_UNKNOWN,
                                               64 * 1024, pipe_read, p, pipe_free_cb);
        if (!mr) {
            http_pipe_unref(p);
            return MHD_NO;
        }
    } else if (resp->upgrade && resp->status == 101) {
        struct upgrade *u = xmalloc(sizeof(*u));
        u->fn = resp->upgrade;
        u->release = resp->upgrade_release;
        u->arg = resp->upgrade_arg;
        mr = MHD_create_response_for_upgrade(on_upgrade, u);
        if (!mr) {
            if (u->release)
                u->release(u->arg);
            free(u);
            return MHD_NO;
        }
        priv->upgrade = u; /* released in on_completed unless the upgrade happens */
    } else if (!resp->data) {
        size_t len;
        char *body = buf_detach(&resp->body, &len);
        mr = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    } else {
        struct http_response *keep = xmalloc(sizeof(*keep));
        *keep = (struct http_response){.release = resp->release, .release_arg = resp->release_arg};
        mr = MHD_create_response_from_buffer_with_free_callback_cls(
            resp->data_len, (void *)resp->data, free_cb, keep);
        resp->release = NULL;
    }
    if (!mr)
        return MHD_NO;
    if (resp->content_type)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(mr, resp->header_names[i], resp->header_values[i]);
    ret = MHD_queue_response(conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

/* Queues a suspended request for an offload thread. */
static void answer(struct http_server *srv, struct request_priv *priv);

static void offload(struct http_server *srv, struct request_priv *priv)
{
    pthread_mutex_lock(&srv->jobs_lock);
    if (srv->jobs_stop) { /* stopping: nobody would take it */
        pthread_mutex_unlock(&srv->jobs_lock);
        answer(srv, priv);
        return;
    }
    priv->job_next = NULL;
    if (srv->jobs_tail)
        srv->jobs_tail->job_next = priv;
    else
        srv->jobs_head = priv;
    srv->jobs_tail = priv;
    pthread_cond_signal(&srv->jobs_wake);
    pthread_mutex_unlock(&srv->jobs_lock);
}

/* Runs a suspended request's handler and resumes its connection (the last
 * touch: MHD may finish and free the request right after). */
static void answer(struct http_server *srv, struct request_priv *priv)
{
    struct http_request *req = &priv->pub;
    struct http_response *resp = xcalloc(1, sizeof(*resp));

    resp->status = 200;
    buf_init(&resp->body, 0);
    dispatch(srv, req, resp);
    if (srv->cfg.after)
        srv->cfg.after(srv->cfg.app, req->route, req, resp);
    priv->answer = resp;
    MHD_resume_connection(req->conn);
}

/* The offload threads: they drain the queue before they stop, so no
 * connection stays suspended. */
static void *offload_main(void *arg)
{
    struct http_server *srv = arg;

    pthread_mutex_lock(&srv->jobs_lock);
    for (;;) {
        while (!srv->jobs_head && !srv->jobs_stop)
            pthread_cond_wait(&srv->jobs_wake, &srv->jobs_lock);
        struct request_priv *priv = srv->jobs_head;
        if (!priv)
            break;
        srv->jobs_head = priv->job_next;
        if (!srv->jobs_head)
            srv->jobs_tail = NULL;
        pthread_mutex_unlock(&srv->jobs_lock);
        answer(srv, priv);
        pthread_mutex_lock(&srv->jobs_lock);
    }
    pthread_mutex_unlock(&srv->jobs_lock);
    return NULL;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    struct http_server *srv = cls;
    struct http_request *req = *con_cls;
    struct http_response resp;
    enum MHD_Result ret;

    (void)version;
    if (!req) {
        struct request_priv *priv = xcalloc(1, sizeof(*priv));
        priv->srv = srv;
        req = &priv->pub;
        buf_init(&req->body, srv->cfg.max_body_bytes);
        req->conn = conn;
        req->method = method;
        req->path = url;
        set_waiting(conn, 0); /* the headers are in */
        decide(srv, req);
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (req->early || req->stream_failed || req->body_too_big) {
            /* the answer is decided: read and drop the rest */
        } else if (req->route->stream) {
            if (req->route->stream(srv->cfg.app, req, upload_data, *upload_data_size) < 0)
                req->stream_failed = 1;
        } else if (buf_append(&req->body, upload_data, *upload_data_size) < 0) {
            req->body_too_big = 1;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    req->conn = conn;
    req->method = method;
    req->path = url;
    if (req->early) {
        const struct http_route *denied = ((struct request_priv *)req)->denied;
        if (denied && srv->cfg.after)
            srv->cfg.after(srv->cfg.app, denied, req, req->early);
        ret = send_response(conn, req->early, (struct request_priv *)req);
        release_resp(req->early);
        free(req->early);
        req->early = NULL;
        return ret;
    }
    struct request_priv *priv = (struct request_priv *)req;
    if (priv->answer) { /* resumed: the offload thread has answered */
        ret = send_response(conn, priv->answer, priv);
        if (priv->answer->release)
            priv->answer->release(priv->answer->release_arg);
        release_resp(priv->answer);
        free(priv->answer);
        priv->answer = NULL;
        return ret;
    }
    if (req->route->offload && !priv->offloaded && !req->body_too_big) {
        priv->offloaded = 1;
        MHD_suspend_connection(conn);
        offload(srv, priv);
        return MHD_YES;
    }
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    buf_init(&resp.body, 0);
    dispatch(srv, req, &resp);
    if (srv->cfg.after)
        srv->cfg.after(srv->cfg.app, req->route, req, &resp);
    ret = send_response(conn, &resp, (struct request_priv *)req);
    if (resp.release) /* the response was never queued with its data */
        resp.release(resp.release_arg);
    release_resp(&resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_request *req = *con_cls;
    (void)cls;
    /* the next request's headers are awaited from now (MHD calls this
     * before an upgrade too: on_upgrade clears it again) */
    set_waiting(conn, now_mono_ns());
    if (!req)
        return;
    struct request_priv *priv = (struct request_priv *)req;
    /* a 101 queued whose connection ended first: its handler never runs */
    if (priv->upgrade && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        if (priv->upgrade->release)
            priv->upgrade->release(priv->upgrade->arg);
        free(priv->upgrade);
    }
    if (req->stream_cleanup)
        req->stream_cleanup(req->stream_state);
    if (req->ctx_free)
        req->ctx_free(req->ctx);
    if (req->early) {
        release_resp(req->early);
        free(req->early);
    }
    if (priv->answer) {
        if (priv->answer->release)
            priv->answer->release(priv->answer->release_arg);
        release_resp(priv->answer);
        free(priv->answer);
    }
    buf_free(&req->body);
    free(req);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    struct conn_watch *w = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        w = xcalloc(1, sizeof(*w));
        w->fd = ci ? ci->connect_fd : -1;
        w->waiting_ns = now_mono_ns();
        pthread_mutex_lock(&srv->watch_lock);
        w->next = srv->watches;
        if (w->next)
            w->next->prev = w;
        srv->watches = w;
        pthread_mutex_unlock(&srv->watch_lock);
        *socket_context = w;
        return;
    }
    if (!w)
        return;
    pthread_mutex_lock(&srv->watch_lock);
    if (w->prev)
        w->prev->next = w->next;
    else
        srv->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&srv->watch_lock);
    free(w);
    *socket_context = NULL;
}

/* Shuts the sockets whose headers are overdue: MHD's own timeout restarts
 * with every byte, so a client trickling a header line at a time would
 * hold its connection for ever. */
static void *reaper_main(void *arg)
{
    struct http_server *srv = arg;
    int64_t limit = srv->cfg.header_timeout_ms * 1000000LL;

    pthread_mutex_lock(&srv->watch_lock);
    while (!srv->stopping) {
        now_cond_wait_until(&srv->reaper_wake, &srv->watch_lock, now_mono_ns() + 1000000000LL);
        int64_t now = now_mono_ns();
        for (struct conn_watch *w = srv->watches; w; w = w->next) {
            int64_t since = __atomic_load_n(&w->waiting_ns, __ATOMIC_RELAXED);
            if (since && now - since > limit && w->fd >= 0) {
                shutdown(w->fd, SHUT_RDWR);
                __atomic_store_n(&w->waiting_ns, (int64_t)0, __ATOMIC_RELAXED);
            }
        }
    }
    pthread_mutex_unlock(&srv->watch_lock);
    return NULL;
}

static void start_offloaders(struct http_server *srv)
{
    unsigned n = srv->cfg.offload_threads ? srv->cfg.offload_threads : 8;

    pthread_mutex_init(&srv->jobs_lock, NULL);
    pthread_cond_init(&srv->jobs_wake, NULL);
    srv->offloaders = xcalloc(n, sizeof(*srv->offloaders));
    for (unsigned i = 0; i < n; i++)
        if (pthread_create(&srv->offloaders[srv->noffloaders], NULL, offload_main, srv) == 0)
            srv->noffloaders++;
}

/* Lets the offload threads answer what is queued, then joins them: MHD
 * must not be stopped with a connection suspended. */
static void stop_offloaders(struct http_server *srv)
{
    pthread_mutex_lock(&srv->jobs_lock);
    srv->jobs_stop = 1;
    pthread_cond_broadcast(&srv->jobs_wake);
    pthread_mutex_unlock(&srv->jobs_lock);
    for (unsigned i = 0; i < srv->noffloaders; i++)
        pthread_join(srv->offloaders[i], NULL);
    free(srv->offloaders);
    pthread_mutex_destroy(&srv->jobs_lock);
    pthread_cond_destroy(&srv->jobs_wake);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("http: %s", msg);
}

struct http_server *http_start(const struct http_config *cfg, char *err, size_t errlen)
{
    struct http_server *srv = NULL;
    char host[128];
    unsigned port;
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME;

    if (http_parse_listen(cfg->listen, host, sizeof(host), &port, err, errlen) < 0)
        return NULL;
    memset(&ss, 0, sizeof(ss));
    if (!*host || !strcmp(host, "0.0.0.0")) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (strchr(host, ':')) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            goto badhost;
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        if (!strcmp(host, "localhost"))
            strcpy(host, "127.0.0.1");
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            goto badhost;
    }
    srv = xcalloc(1, sizeof(*srv));
    srv->cfg = *cfg;
    if (!srv->cfg.max_body_bytes)
        srv->cfg.max_body_bytes = 1u << 20;
    if (!srv->cfg.max_connections)
        srv->cfg.max_connections = 512;
    if (!srv->cfg.max_per_address)
        srv->cfg.max_per_address = 128;
    if (srv->cfg.header_timeout_ms <= 0)
        srv->cfg.header_timeout_ms = 15000;
    pthread_mutex_init(&srv->watch_lock, NULL);
    now_cond_init(&srv->reaper_wake);
    start_offloaders(srv); /* before MHD: a request may come at once */
    unsigned threads = cfg->threads ? cfg->threads : 1;
    if (cfg->tls_cert_pem && cfg->tls_key_pem)
        srv->daemon = MHD_start_daemon(
            flags | MHD_USE_TLS, (uint16_t)port, NULL, NULL, on_access, srv,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
            MHD_OPTION_CONNECTION_LIMIT, srv->cfg.max_connections,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->cfg.max_per_address,
            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_HTTPS_MEM_CERT, cfg->tls_cert_pem,
            MHD_OPTION_HTTPS_MEM_KEY, cfg->tls_key_pem, MHD_OPTION_END);
    else
        srv->daemon = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
            NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, srv->cfg.max_connections,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->cfg.max_per_address,
            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "listen: cannot bind %s (in use, not an address of this host%s)",
                 cfg->listen, cfg->tls_cert_pem ? ", or the TLS certificate/key is invalid" : "");
        stop_offloaders(srv);
        pthread_mutex_destroy(&srv->watch_lock);
        pthread_cond_destroy(&srv->reaper_wake);
        free(srv);
        return NULL;
    }
    srv->reaper_started = pthread_create(&srv->reaper, NULL, reaper_main, srv) == 0;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : port;
    return srv;
badhost:
    snprintf(err, errlen, "listen: '%s' is not an IP address", host);
    return NULL;
}

unsigned http_port(const struct http_server *srv)
{
    return srv->port;
}

void http_stop(struct http_server *srv)
{
    if (!srv)
        return;
    if (srv->reaper_started) {
        pthread_mutex_lock(&srv->watch_lock);
        srv->stopping = 1;
        pthread_cond_signal(&srv->reaper_wake);
        pthread_mutex_unlock(&srv->watch_lock);
        pthread_join(srv->reaper, NULL);
    }
    stop_offloaders(srv);
    MHD_stop_daemon(srv->daemon);
    pthread_mutex_destroy(&srv->watch_lock);
    pthread_cond_destroy(&srv->reaper_wake);
    free(srv);
}
