/* /api/v1/containers/{id}/files: a file browser into a container (its
 * filesystem and the owner's workspace at /workspace): list a folder,
 * download a file (as it is) or a folder (a tar), upload a file, make a
 * folder, delete. Who may act on the container may do this (viewers never:
 * files hold secrets). Downloads stream through a bounded pipe and uploads
 * through a temporary file, so memory stays flat whatever the size. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/ctrspec.h"
#include "../../lib/muxframe.h"
#include "../../lib/streamset.h"
#include "../../lib/tarw.h"
#include "../../lib/xalloc.h"
#include "../agentcall.h"
#include "../agentstream.h"
#include "api.h"

#define PIPE_BYTES (1u << 20)

/* ?path=, checked (root allowed when allow_root) and URL-encoded. */
static const char *path_arg(struct http_request *req, struct http_response *resp, int allow_root,
                            char *enc, size_t enclen)
{
    const char *path = http_query(req, "path");
    if (!path && allow_root)
        path = "/";
    if (!path || !ctrspec_valid_path(path, allow_root)) {
        http_error(resp, 400, "invalid_field", "path", "path is absolute, without . or .. segments%s",
                   allow_root ? "" : ", and not /");
        return NULL;
    }
    ctrspec_url_path(path, enc, enclen);
    return path;
}

void api_files_list(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_container w;
    struct errinfo e = {0};
    char enc[13000], url[13300];
    const char *path = path_arg(req, resp, 1, enc, sizeof(enc));

    if (!path || api_container_locate(app, req, resp, 1, &w) < 0)
        return;
    snprintf(url, sizeof(url), "/api/v1/engine/containers/%s/files?path=%s", w.engine_id, enc);
    api_reply(resp, 200, agentcall(&w.agent, "GET", url, NULL, 120, &e), &e);
}

static void simple(struct server_app *app, struct http_request *req, struct http_response *resp,
                   const char *method, const char *what)
{
    struct api_container w;
    struct errinfo e = {0};
    char enc[13000], url[13300];
    const char *path = path_arg(req, resp, 0, enc, sizeof(enc));

    if (!path || api_container_locate(app, req, resp, 1, &w) < 0)
        return;
    api_audit_detail(req, "path", json_string(path));
    snprintf(url, sizeof(url), "/api/v1/engine/containers/%s/files%s?path=%s", w.engine_id, what, enc);
    api_reply(resp, 200, agentcall(&w.agent, method, url, NULL, 120, &e), &e);
}

void api_files_mkdir(void *appv, struct http_request *req, struct http_response *resp)
{
    simple(appv, req, resp, "POST", "/mkdir");
}

void api_files_delete(void *appv, struct http_request *req, struct http_response *resp)
{
    simple(appv, req, resp, "DELETE", "");
}

/* ---- downloads ---- */

struct download {
    struct streamset *set;
    int fd;
    struct http_pipe *pipe;
    struct buf first;  /* what came before the pipe started: sent first */
    long long left;    /* a file's bytes still to send; -1: all there is (a tar) */
    int mux_mask;      /* logs: the engine's frames of these streams, unframed; 0: bytes as they come */
    struct mux_reader mux;
};

static int set_closing(void *arg)
{
    return streamset_closing(arg);
}

static int mux_out(void *arg, int stream, const char *data, size_t len)
{
    struct download *d = arg;
    if (!(d->mux_mask & 1 << stream))
        return 0;
    return http_pipe_write(d->pipe, data, len, set_closing, d->set);
}

static int put(struct download *d, const char *data, size_t len)
{
    if (d->mux_mask)
        return mux_reader_feed(&d->mux, data, len, mux_out, d);
    return http_pipe_write(d->pipe, data, len, set_closing, d->set);
}

static void download_run(void *arg)
{
    struct download *d = arg;
    char chunk[65536];
    int failed = 0;

    if (d->first.len && put(d, d->first.data, d->first.len) < 0)
        failed = 1;
    while (!failed && d->left != 0) {
        struct pollfd p = {d->fd, POLLIN, 0};
        if (poll(&p, 1, 60000) != 1) {
            failed = 1;
            break;
        }
        ssize_t n = recv(d->fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* a file must come whole; a tar and logs end with the stream (logs at a frame's end) */
            failed = d->left > 0 || n < 0 || (d->mux_mask && !mux_reader_at_boundary(&d->mux));
            break;
        }
        size_t take = d->left >= 0 && (long long)n > d->left ? (size_t)d->left : (size_t)n;
        if (put(d, chunk, take) < 0)
            failed = 1;
        if (d->left > 0)
            d->left -= (long long)take;
    }
    http_pipe_close(d->pipe, failed);
    d->pipe = NULL;
}

static void download_end(void *arg)
{
    struct download *d = arg;
    if (d->pipe)
        http_pipe_close(d->pipe, 1);
    close(d->fd);
    buf_free(&d->first);
    free(d);
}

/* Reads until b holds n bytes (60 s at most). 0 or -1. */
static int read_at_least(int fd, struct buf *b, size_t n)
{
    char chunk[4096];
    while (b->len < n) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 60000) != 1)
            return -1;
        ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
        if (r <= 0 || buf_append(b, chunk, (size_t)r) < 0)
            return -1;
    }
    return 0;
}

static long long octal(const char *p, size_t n)
{
    long long v = 0;
    for (size_t i = 0; i < n && p[i]; i++) {
        if (p[i] == ' ')
            continue;
        if (p[i] < '0' || p[i] > '7')
            return -1;
        v = v * 8 + (p[i] - '0');
    }
    return v;
}

/* Hands d to a thread of the stream set (its seat reserved for user); the
 * answer (resp's status and headers set) goes out as the pipe fills. */
static void start(struct server_app *app, int64_t user, struct http_response *resp, struct download *d)
{
    if (streamset_run(app->streams, user, download_run, download_end, d, d->fd, -1) == 0)
        return;
    /* no thread (the server is stopping): both references go */
    resp->pipe = NULL;
    http_pipe_unref(d->pipe);
    http_pipe_close(d->pipe, 1);
    d->pipe = NULL;
    buf_free(&resp->body);
    buf_init(&resp->body, 0);
    http_error(resp, 503, "busy", NULL, "the server is stopping");
    close(d->fd);
    buf_free(&d->first);
    free(d);
}

void api_pipe_logs(struct server_app *app, int64_t user, struct http_response *resp, int fd, struct buf *first,
                   int mux_mask)
{
    struct download *d = xcalloc(1, sizeof(*d));
    d->set = app->streams;
    d->fd = fd;
    d->first = *first;
    buf_init(first, 0);
    d->left = -1;
    d->mux_mask = mux_mask;
    mux_reader_init(&d->mux);
    d->pipe = http_pipe_new(PIPE_BYTES);
    resp->status = 200;
    resp->pipe = d->pipe;
    resp->pipe_length = -1;
    start(app, user, resp, d);
}

void api_files_download(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct api_container w;
    struct errinfo e = {0};
    char enc[13000], url[13300], disp[400];
    json_t *hello = NULL;
    const char *path = path_arg(req, resp, 1, enc, sizeof(enc));
    struct api_ctx *c = api_ctx(req);

    if (!path || api_container_locate(app, req, resp, 1, &w) < 0)
        return;
    if (api_stream_seat(app, c->who.user_id, resp) < 0)
        return;
    struct download *d = xcalloc(1, sizeof(*d));
    d->set = app->streams;
    buf_init(&d->first, 0);
    snprintf(url, sizeof(url), "/api/v1/engine/containers/%s/archive?path=%s", w.engine_id, enc);
    if ((d->fd = agentstream_open(&w.agent, url, &hello, &d->first, &e)) < 0) {
        api_reply_error(resp, &e);
        goto refused;
    }
    json_decref(hello);
    if (read_at_least(d->fd, &d->first, TARW_BLOCK) < 0) {
        http_error(resp, 502, "agent_answer", NULL, "the archive from %s broke off", w.agent.server);
        goto refused;
    }
    /* a regular file comes as it is; anything else (a folder, a link) as the tar */
    const char *h = d->first.data;
    char base[256], type = h[156];
    /* the file's name for the browser: no quote or backslash in the header */
    snprintf(base, sizeof(base), "%s", strrchr(path, '/') + 1);
    for (char *q = base; *q; q++)
        if (*q == '"' || *q == '\\')
            *q = '_';
    long long size = octal(h + 124, 12);
    resp->status = 200;
    d->pipe = http_pipe_new(PIPE_BYTES);
    resp->pipe = d->pipe;
    if ((type == '0' || type == '\0') && size >= 0) {
        memmove(d->first.data, d->first.data + TARW_BLOCK, d->first.len - TARW_BLOCK);
        d->first.len -= TARW_BLOCK;
        if ((long long)d->first.len > size)
            d->first.len = (size_t)size;
        d->left = size - (long long)d->first.len;
        resp->pipe_length = size;
        resp->content_type = "application/octet-stream";
        snprintf(disp, sizeof(disp), "attachment; filename=\"%.200s\"", base);
    } else {
        d->left = -1;
        resp->pipe_length = -1;
        resp->content_type = "application/x-tar";
        snprintf(disp, sizeof(disp), "attachment; filename=\"%.200s.tar\"", *base ? base : "root");
    }
    http_add_header(resp, "Content-Disposition", disp);
    api_audit_detail(req, "path", json_string(path));
    start(app, c->who.user_id, resp, d);
    return;
refused:
    streamset_unreserve(app->streams, c->who.user_id);
    if (d->fd >= 0)
        close(d->fd);
    buf_free(&d->first);
    free(d);
}

int api_pipe_archive(struct server_app *app, int64_t user, struct http_response *resp, const struct reg_target *agent,
                     const char *engine_id, const char *path, struct buf *prefix, const char *filename,
                     struct errinfo *e)
{
    char enc[9000], url[9300], disp[400];
    json_t *hello = NULL;
    struct download *d;

    d = xcalloc(1, sizeof(*d));
    d->set = app->streams;
    buf_init(&d->first, 0);
    ctrspec_url_path(path, enc, sizeof(enc));
    snprintf(url, sizeof(url), "/api/v1/engine/containers/%s/archive?path=%s", engine_id, enc);
    if ((d->fd = agentstream_open(agent, url, &hello, &d->first, e)) < 0) {
        streamset_unreserve(app->streams, user);
        buf_free(&d->first);
        free(d);
        return -1;
    }
    json_decref(hello);
    /* the prefix's entries first: a tar of tars' entries is one tar */
    if (prefix && prefix->len) {
        buf_append(prefix, d->first.data ? d->first.data : "", d->first.len);
        buf_free(&d->first);
        d->first = *prefix;
        buf_init(prefix, 0);
    }
    d->left = -1;
    d->pipe = http_pipe_new(PIPE_BYTES);
    resp->status = 200;
    resp->pipe = d->pipe;
    resp->pipe_length = -1;
    resp->content_type = "application/x-tar";
    snprintf(disp, sizeof(disp), "attachment; filename=\"%.200s\"", filename);
    http_add_header(resp, "Content-Disposition", disp);
    start(app, user, resp, d);
    return 0;
}

/* ---- uploads: PUT ?path=/folder/name, the file as the body ---- */

/* The body becomes a tar (one file) in a temporary file as it comes: its
 * size is the request's Content-Length, checked at the end. */
struct upload {
    FILE *f;
    long long declared, got;
    int failed;
    char why[160];
};

static void upload_free(void *arg)
{
    struct upload *u = arg;
    if (u->f)
        fclose(u->f);
    free(u);
}

int api_files_upload_chunk(void *appv, struct http_request *req, const char *data, size_t len)
{
    struct server_app *app = appv;
    struct upload *u = req->stream_state;
    long long max = (long long)app->opts->files_upload_max_mib << 20;
    if (!u) {
        const char *path = http_query(req, "path"), *cl = http_header(req, "Content-Length");
        /* the path is checked before its last '/' is looked for: a path
         * without one would otherwise point the name before the string */
        const char *name = path && ctrspec_valid_path(path, 0) ? strrchr(path, '/') + 1 : NULL;
        char h[TARW_BLOCK];
        u = xcalloc(1, sizeof(*u));
        req->stream_state = u;
        req->stream_cleanup = upload_free;
        u->declared = cl ? strtoll(cl, NULL, 10) : -1;
        if (!name || !*name || strlen(name) >= 100) {
            snprintf(u->why, sizeof(u->why), "path is /folder/name, the name under 100 bytes");
            goto fail;
        }
        if (u->declared < 0 || u->declared > max) {
            snprintf(u->why, sizeof(u->why), "a Content-Length up to files_upload_max_mib (%lld MiB) is needed",
                     (long long)app->opts->files_upload_max_mib);
            goto fail;
        }
        tarw_header(h, name, TARW_FILE, 0644, u->declared, time(NULL), NULL);
        if (!(u->f = tmpfile()) || fwrite(h, 1, TARW_BLOCK, u->f) != TARW_BLOCK) {
            snprintf(u->why, sizeof(u->why), "no room for the upload on the server: %s", strerror(errno));
            goto fail;
        }
    }
    if (u->failed)
        return -1;
    if (u->got + (long long)len > u->declared || fwrite(data, 1, len, u->f) != len) {
        snprintf(u->why, sizeof(u->why), "more than Content-Length, or no room on the server");
        goto fail;
    }
    u->got += (long long)len;
    return 0;
fail:
    u->failed = 1;
    return -1;
}

void api_files_upload(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    struct upload *u = req->stream_state;
    struct api_container w;
    struct errinfo e = {0};
    char enc[13000], url[13300], dir[4200];
    const char *path = http_query(req, "path");

    api_audit_detail(req, "path", path ? json_string(path) : json_null());
    if (!u && http_header(req, "Content-Length") && !strcmp(http_header(req, "Content-Length"), "0"))
        api_files_upload_chunk(appv, req, "", 0); /* an empty file: no chunk came */
    u = req->stream_state;
    if (!u || u->failed || req->stream_failed || u->got != u->declared) {
        http_error(resp, u && u->declared > ((long long)app->opts->files_upload_max_mib << 20) ? 413 : 400,
                   "invalid_field", u && u->why[0] && strstr(u->why, "path") ? "path" : "body", "%s",
                   u && u->why[0] ? u->why : "the upload was cut short");
        return;
    }
    if (api_container_locate(app, req, resp, 1, &w) < 0)
        return;
    size_t pad = (size_t)((TARW_BLOCK - u->got % TARW_BLOCK) % TARW_BLOCK);
    if (tarw_pad(u->f, u->got) < 0 || tarw_end(u->f) < 0 || fflush(u->f) != 0) {
        http_error(resp, 507, "no_room", NULL, "no room for the upload on the server");
        return;
    }
    long long total = TARW_BLOCK + u->got + (long long)pad + 2 * TARW_BLOCK;
    rewind(u->f);
    snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(path, '/') - path), path);
    ctrspec_url_path(dir[0] ? dir : "/", enc, sizeof(enc));
    snprintf(url, sizeof(url), "/api/v1/engine/containers/%s/archive?path=%s", w.engine_id, enc);
    api_audit_detail(req, "bytes", json_integer(u->got));
    json_t *out = agentcall_send_file(&w.agent, "PUT", url, u->f, total, 3600, &e);
    json_decref(out);
    api_reply(resp, 201, out ? json_pack("{s:s,s:I}", "path", path, "bytes", (json_int_t)u->got) : NULL, &e);
}
