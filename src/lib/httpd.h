/* HTTP server glue over libmicrohttpd: a route table, bounded request
 * bodies, JSON errors and zero-copy responses. */
#ifndef GF_HTTPD_H
#define GF_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct MHD_Connection;
struct http_server;

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_HEADERS 8

struct http_request {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    /* values of {name} segments of the matched route, in order */
    const char *params[HTTP_MAX_PARAMS];
    char param_store[HTTP_MAX_PARAMS][128];
    size_t nparams;
    struct buf body; /* request body, bounded by the server's max_body_bytes */
    int body_too_big;
    /* streaming routes: state the stream function keeps between chunks, and
     * how to free it if the request ends early */
    void *stream_state;
    void (*stream_cleanup)(void *state);
    int stream_failed;
    /* the application's per-request state (set by its authorize hook) and
     * how to free it when the request ends */
    void *ctx;
    void (*ctx_free)(void *ctx);
    /* internal */
    const struct http_route *route;
    int decided;                 /* routing and authorization are done */
    struct http_response *early; /* an error decided before the body came */
};

struct http_response {
    int status;
    const char *content_type;  /* static string */
    struct buf body;           /* owned; used when data is NULL */
    /* zero-copy body: data stays valid until release(release_arg) is called */
    const void *data;
    size_t data_len;
    void (*release)(void *arg);
    void *release_arg;
    /* a protocol upgrade (status 101): called with the connection's socket
     * and libmicrohttpd's upgrade handle once the response is sent */
    void (*upgrade)(void *arg, int sock, void *mhd_urh);
    void *upgrade_arg;
    /* frees upgrade_arg when the upgrade never happens (the client went
     * away before the 101 was sent); may be NULL */
    void (*upgrade_release)(void *arg);
    char *header_names[HTTP_MAX_HEADERS];
    char *header_values[HTTP_MAX_HEADERS];
    size_t nheaders;
    /* a body another thread produces as it goes (http_pipe_new): the
     * response holds one reference; pipe_length is its size, -1 unknown */
    struct http_pipe *pipe;
    int64_t pipe_length;
};

/* A response body written by another thread while it is sent (a download
 * relayed from elsewhere), through a bounded buffer: a slow client makes
 * the writer wait, nothing grows. Two references: the writer's and the
 * response's. */
struct http_pipe;

/* A pipe holding at most max_buffered bytes, with both references. */
struct http_pipe *http_pipe_new(size_t max_buffered);

/* Appends n bytes, waiting for room. stop(arg) (may be NULL) is asked
 * about once a second while it waits: nonzero gives up. 0, or -1 when the
 * client went away, the response was never sent, or stop said so (the
 * writer should end). */
int http_pipe_write(struct http_pipe *p, const void *data, size_t n, int (*stop)(void *), void *arg);

/* The writer is done (failed: the client sees the connection cut, not a
 * complete body) and drops its reference. */
void http_pipe_close(struct http_pipe *p, int failed);

/* Drops the response's reference, for a response never sent. */
void http_pipe_unref(struct http_pipe *p);

typedef void (*http_handler)(void *app, struct http_request *req, struct http_response *resp);

/* Receives a request body chunk by chunk (no size bound applies); returns 0,
 * or -1 to ignore the rest (the handler then sees stream_failed). */
typedef int (*http_stream_fn)(void *app, struct http_request *req, const char *data, size_t len);

struct http_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/api/v1/servers/{id}": {x} matches one non-empty segment;
                          * a final {*} matches the rest of the path (catch-all, put last) */
    http_handler handler;
    int flags;           /* free for the application's authorize hook */
    http_stream_fn stream; /* NULL: the body is buffered into req->body */
    const char *action;    /* what the route does, for the audit log; NULL for reads */
    /* the handler may wait seconds (on another host, on a container
     * engine): it runs on one of the offload threads while the connection
     * is suspended, so the server's own threads keep serving everyone else */
    int offload;
};

/* Runs before a route's handler; returns 0 to go on, or fills resp (an
 * error) and returns -1 to stop. */
typedef int (*http_authorize)(void *app, const struct http_route *route,
                              struct http_request *req, struct http_response *resp);

/* Runs once a matched route's response is decided, whether its handler ran
 * or the authorize hook refused it (resp then holds the refusal). */
typedef void (*http_after)(void *app, const struct http_route *route, struct http_request *req,
                           const struct http_response *resp);

struct http_config {
    const char *listen;   /* "127.0.0.1:9445", "[::1]:9445", ":9445" (all addresses) */
    const struct http_route *routes;
    size_t nroutes;
    http_authorize authorize; /* may be NULL */
    http_after after;         /* may be NULL */
    const char *tls_cert_pem; /* both set: serve HTTPS (PEM text, not paths) */
    const char *tls_key_pem;
    void *app;
    size_t max_body_bytes;    /* 0: 1 MiB */
    unsigned threads;         /* 0: 1 */
    unsigned max_connections; /* 0: 512 */
    unsigned max_per_address; /* connections from one address, 0: 128 */
    unsigned offload_threads; /* threads for offload routes, 0: 8 */
    /* a request's headers must be in within this long of the connection's
     * start or of the end of its previous request, however slowly they
     * trickle (slowloris); 0: 15 s */
    int64_t header_timeout_ms;
};

/* Binds and starts serving on background threads. Returns NULL with a
 * message in err when the address is invalid or cannot be bound. The route
 * table must outlive the server. */
struct http_server *http_start(const struct http_config *cfg, char *err, size_t errlen);

/* Port actually bound (useful with port 0). */
unsigned http_port(const struct http_server *srv);

/* Stops serving, waits for handlers in flight, frees the server. */
void http_stop(struct http_server *srv);

/* A query-string argument or request header, or NULL. Valid for the
 * request's lifetime. */
const char *http_query(struct http_request *req, const char *name);
const char *http_header(struct http_request *req, const char *name);

/* Calls fn for every query-string argument in order (a name may repeat,
 * as match[] does); value is len bytes (it may hold NUL). */
void http_query_each(struct http_request *req,
                     void (*fn)(void *arg, const char *name, const char *value, size_t len),
                     void *arg);

/* The client's address ("127.0.0.1", "::1"), or "" when unknown. Valid for
 * the request's lifetime. */
const char *http_client_addr(struct http_request *req);

/* Like http_query, but a value holding a NUL byte (%00) gives -1; 0 with
 * *value NULL when absent. */
int http_query_strict(struct http_request *req, const char *name, const char **value);

/* Whether the server speaks TLS. */
int http_is_tls(const struct http_request *req);

/* Whether the client accepts gzip (Accept-Encoding). */
int http_accepts_gzip(struct http_request *req);

/* The same decision from an Accept-Encoding value (NULL: no header):
 * "gzip" or "*" with a q-value above 0. */
int http_gzip_acceptable(const char *accept_encoding);

/* Adds a response header (both strings copied). */
void http_add_header(struct http_response *resp, const char *name, const char *value);

/* Sets status and a JSON error body:
 * {"error":{"code":code,"field":field,"message":...}}; field may be NULL. */
void http_error(struct http_response *resp, int status, const char *code, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Splits "host:port" / "[v6]:port" / ":port" into host (empty for any) and
 * port. Returns 0, or -1 with a message in err. */
int http_parse_listen(const char *listen, char *host, size_t hostlen, unsigned *port, char *err,
                      size_t errlen);

#endif
