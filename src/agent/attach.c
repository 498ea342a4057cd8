/* Logs and exec streams: a thread per stream that pumps between the
 * server's upgraded connection and the engine. Writes block (with a time
 * limit), so a slow reader slows the engine's side instead of making
 * anyone buffer without bound. */
#include "attach.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/muxframe.h"
#include "../lib/streamset.h"
#include "../lib/xalloc.h"
#include "engine.h"
#include "images.h"
#include "../lib/ctrspec.h"

#define SEND_TIMEOUT_S 60
#define HEAD_MAX 8192
/* bash where the image has it, else sh */
#define SHELL_CMD "if command -v bash >/dev/null 2>&1; then exec bash; fi; exec sh"

struct job {
    struct engine *eng;
    struct streamset *set;
    struct attach_req r;
    int sock;
    void *urh;
    int tty;
};

static int parse_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int parse_flag(const char *v, int *out)
{
    if (!v)
        return 0;
    if (strcmp(v, "0") && strcmp(v, "1") && strcmp(v, "true") && strcmp(v, "false"))
        return -1;
    *out = !strcmp(v, "1") || !strcmp(v, "true");
    return 0;
}

int attach_parse(int kind, const char *id, const char *tail, const char *since,
                 const char *follow, const char *timestamps, const char *rows,
                 const char *cols, struct attach_req *r, struct errinfo *e)
{
    long v;
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->tail = -1;
    if (!id || !engine_valid_id(id)) {
        errinfo_set(e, 400, "invalid_field", "id", "not a container id");
        return -1;
    }
    snprintf(r->id, sizeof(r->id), "%s", id);
    if (tail && strcmp(tail, "all")) {
        if (parse_long(tail, 0, 100000000, &v) < 0) {
            errinfo_set(e, 400, "invalid_field", "tail", "a count of lines (0 .. 100000000) or all");
            return -1;
        }
        r->tail = v;
    }
    if (since) {
        if (parse_long(since, 0, 253402300799L, &v) < 0) {
            errinfo_set(e, 400, "invalid_field", "since", "unix seconds");
            return -1;
        }
        r->since_s = v;
    }
    if (parse_flag(follow, &r->follow) < 0 || parse_flag(timestamps, &r->timestamps) < 0) {
        errinfo_set(e, 400, "invalid_field", parse_flag(follow, &r->follow) < 0 ? "follow" : "timestamps",
                    "0 or 1");
        return -1;
    }
    if (rows) {
        if (parse_long(rows, 1, 1000, &v) < 0) {
            errinfo_set(e, 400, "invalid_field", "rows", "1 .. 1000");
            return -1;
        }
        r->rows = (int)v;
    }
    if (cols) {
        if (parse_long(cols, 1, 1000, &v) < 0) {
            errinfo_set(e, 400, "invalid_field", "cols", "1 .. 1000");
            return -1;
        }
        r->cols = (int)v;
    }
    return 0;
}

/* ---- the server's side ---- */

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_line(int fd, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    int rc = text ? send_all(fd, text, strlen(text)) : -1;
    if (rc == 0)
        rc = send_all(fd, "\n", 1);
    free(text);
    json_decref(j);
    return rc;
}

static void send_error(int fd, const struct errinfo *e)
{
    send_line(fd, json_pack("{s:{s:s,s:s,s:i}}", "error", "code", e->code ? e->code : "internal",
                            "message", e->message, "status", e->status ? e->status : 500));
}

/* Whether the server still listens (it never writes on a logs stream, so
 * any readable end is its hang-up) and the agent is not stopping. */
static int server_there(struct job *j)
{
    struct pollfd p = {j->sock, POLLRDHUP, 0};
    if (streamset_closing(j->set))
        return 0;
    return !(poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)));
}

/* ---- logs ---- */

static int logs_alive(void *arg)
{
    return server_there(arg);
}

static size_t logs_sink(char *data, size_t size, size_t n, void *arg)
{
    struct job *j = arg;
    size_t len = size * n;
    if (j->tty) {
        unsigned char h[8];
        mux_header(h, MUX_STDOUT, (uint32_t)len);
        if (send_all(j->sock, h, sizeof(h)) < 0)
            return 0;
    }
    return send_all(j->sock, data, len) < 0 ? 0 : len;
}

static void run_logs(struct job *j)
{
    struct errinfo e = {0};
    char path[600], tail[32] = "all";
    long status;

    snprintf(path, sizeof(path), "/%s/containers/%s/json", ENGINE_API, j->r.id);
    json_t *info = engine_call_json(j->eng, "GET", path, NULL, 30, &status, &e);
    if (!info) {
        send_error(j->sock, &e);
        return;
    }
    j->tty = json_is_true(json_object_get(json_object_get(info, "Config"), "Tty"));
    int running = json_is_true(json_object_get(json_object_get(info, "State"), "Running"));
    json_decref(info);
    if (send_line(j->sock, json_pack("{s:b,s:b,s:b}", "ok", 1, "tty", j->tty, "running", running)) < 0)
        return;
    if (j->r.tail >= 0)
        snprintf(tail, sizeof(tail), "%ld", j->r.tail);
    snprintf(path, sizeof(path), "/%s/containers/%s/logs?stdout=1&stderr=1&follow=%d&timestamps=%d&tail=%s&since=%lld",
             ENGINE_API, j->r.id, j->r.follow, j->r.timestamps, tail, j->r.since_s);
    status = engine_stream(j->eng, path, logs_sink, j, logs_alive, &e);
    if (status < 0 || status >= 300)
        log_info("attach: logs of %s: %s", j->r.id, status < 0 ? e.message : "refused by the engine");
}

/* ---- exec ---- */

/* Reads the engine's answer head to an exec start; what came after it
 * (the stream's first bytes) is left in rest. The status, or -1. */
static int read_head(int fd, char *head, size_t cap, size_t *have, size_t *head_len)
{
    *have = 0;
    while (*have < cap - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1)
            return -1;
        ssize_t r = recv(fd, head + *have, cap - 1 - *have, 0);
        if (r <= 0)
            return -1;
        *have += (size_t)r;
        head[*have] = '\0';
        char *end = strstr(head, "\r\n\r\n");
        if (end) {
            *head_len = (size_t)(end + 4 - head);
            int code = 0;
            if (sscanf(head, "HTTP/1.%*d %d", &code) != 1)
                return -1;
            return code;
        }
    }
    return -1;
}

static int start_exec(struct job *j, char *exec_id, size_t idlen, int *efd, char *rest,
                      size_t *rest_len, struct errinfo *e)
{
    char path[400], req[1024], head[HEAD_MAX];
    long status;
    size_t have, head_len = 0;

    json_t *body = json_pack("{s:b,s:b,s:b,s:b,s:[s],s:[s,s,s]}", "AttachStdin", 1, "AttachStdout", 1,
                             "AttachStderr", 1, "Tty", 1, "Env", "TERM=xterm-256color", "Cmd",
                             "/bin/sh", "-c", SHELL_CMD);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    snprintf(path, sizeof(path), "/%s/containers/%s/exec", ENGINE_API, j->r.id);
    json_t *made = engine_call_json(j->eng, "POST", path, text, 30, &status, e);
    free(text);
    const char *id = json_string_value(json_object_get(made, "Id"));
    if (!made || !id || !engine_valid_id(id)) {
        if (made)
            errinfo_set(e, 502, "engine_answer", NULL, "the engine's exec answer has no Id");
        json_decref(made);
        return -1;
    }
    snprintf(exec_id, idlen, "%s", id);
    json_decref(made);
    if ((*efd = engine_connect(j->eng, e)) < 0)
        return -1;
    const char *start = "{\"Detach\":false,\"Tty\":true}";
    int n = snprintf(req, sizeof(req),
                     "POST /%s/exec/%s/start HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json\r\n"
                     "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: %zu\r\n\r\n%s",
                     ENGINE_API, exec_id, strlen(start), start);
    int code = send_all(*efd, req, (size_t)n) < 0 ? -1 : read_head(*efd, head, sizeof(head), &have, &head_len);
    if (code != 101 && code != 200) {
        errinfo_set(e, 502, "engine_refused", NULL, "the engine did not start the exec (answer %d)", code);
        return -1;
    }
    *rest_len = have - head_len;
    memcpy(rest, head + head_len, *rest_len);
    return 0;
}

/* Copies what is readable on from to to: 0, or -1 when from ended or to
 * failed. */
static int pump(int from, int to)
{
    char b[16384];
    ssize_t r = recv(from, b, sizeof(b), 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (r <= 0)
        return -1;
    return send_all(to, b, (size_t)r);
}

static void run_exec(struct job *j)
{
    struct errinfo e = {0};
    char exec_id[129], rest[HEAD_MAX];
    size_t rest_len = 0;
    int efd = -1;

    if (start_exec(j, exec_id, sizeof(exec_id), &efd, rest, &rest_len, &e) < 0) {
        send_error(j->sock, &e);
        goto out;
    }
    if (send_line(j->sock, json_pack("{s:b,s:s}", "ok", 1, "exec_id", exec_id)) < 0 ||
        (rest_len && send_all(j->sock, rest, rest_len) < 0))
        goto out;
    if (j->r.rows && j->r.cols)
        attach_resize(j->eng, exec_id, j->r.rows, j->r.cols, &e);
    for (;;) {
        struct pollfd p[2] = {{j->sock, POLLIN, 0}, {efd, POLLIN, 0}};
        int r = poll(p, 2, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (streamset_closing(j->set))
            break;
        if (p[0].revents && pump(j->sock, efd) < 0)
            break;
        if (p[1].revents && pump(efd, j->sock) < 0)
            break;
    }
out:
    if (efd >= 0)
        close(efd); /* the shell reads its end: it exits */
}

int attach_resize(struct engine *eng, const char *exec_id, int rows, int cols, struct errinfo *e)
{
    char path[400];
    long status;
    struct buf b;

    if (!engine_valid_id(exec_id)) {
        errinfo_set(e, 400, "invalid_field", "id", "not an exec id");
        return -1;
    }
    snprintf(path, sizeof(path), "/%s/exec/%s/resize?h=%d&w=%d", ENGINE_API, exec_id, rows, cols);
    buf_init(&b, 64 * 1024);
    status = engine_call(eng, "POST", path, NULL, 10, NULL, &b, e);
    if (status >= 300)
        engine_refused(&b, status, 409, e);
    buf_free(&b);
    return status >= 200 && status < 300 ? 0 : -1;
}

/* ---- archive ---- */

static size_t raw_sink(char *data, size_t size, size_t n, void *arg)
{
    struct job *j = arg;
    return send_all(j->sock, data, size * n) < 0 ? 0 : size * n;
}

static void run_archive(struct job *j)
{
    struct errinfo e = {0};
    char path[9000], enc[8800];
    struct buf b;

    ctrspec_url_path(j->r.path, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/%s/containers/%s/archive?path=%s", ENGINE_API, j->r.id, enc);
    buf_init(&b, 64 * 1024);
    long status = engine_call(j->eng, "HEAD", path, NULL, 30, NULL, &b, &e);
    buf_free(&b);
    if (status == 404)
        errinfo_set(&e, 404, "not_found", "path", "no %.200s in the container", j->r.path);
    else if (status >= 300)
        errinfo_set(&e, 409, "engine_refused", "path", "the engine refused to read %.200s (%ld)", j->r.path, status);
    if (status < 200 || status >= 300) {
        send_error(j->sock, &e);
        return;
    }
    if (send_line(j->sock, json_pack("{s:b}", "ok", 1)) < 0)
        return;
    status = engine_stream(j->eng, path, raw_sink, j, logs_alive, &e);
    if (status < 0 || status >= 300)
        log_info("attach: archive of %s: %s", j->r.id, status < 0 ? e.message : "refused by the engine");
}

/* ---- a build's log ---- */

static void run_build(struct job *j)
{
    struct errinfo e = {0};
    long long offset = 0;
    struct buf text;
    int id = atoi(j->r.id), rc;

    buf_init(&text, 0);
    /* a first look says whether the build is there */
    rc = images_build_log(j->r.images, id, &offset, &text, 0, &e);
    if (rc < 0) {
        send_error(j->sock, &e);
        goto out;
    }
    if (send_line(j->sock, json_pack("{s:b,s:b}", "ok", 1, "running", rc == 1)) < 0)
        goto out;
    for (;;) {
        if (text.len) {
            unsigned char h[8];
            mux_header(h, MUX_STDOUT, (uint32_t)text.len);
            if (send_all(j->sock, h, sizeof(h)) < 0 || send_all(j->sock, text.data, text.len) < 0)
                break;
            text.len = 0;
        }
        if (rc != 1 || !server_there(j))
            break;
        rc = images_build_log(j->r.images, id, &offset, &text, 1000, &e);
    }
out:
    buf_free(&text);
}

/* ---- threads ---- */

static void job_main(void *arg)
{
    struct job *j = arg;
    struct timeval tv = {SEND_TIMEOUT_S, 0};
    int one = 1;

    /* blocking, with a bound: a server that stops reading ends the stream */
    fcntl(j->sock, F_SETFL, fcntl(j->sock, F_GETFL) & ~O_NONBLOCK);
    setsockopt(j->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    /* a terminal's key and its echo are small writes: no Nagle delay */
    setsockopt(j->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (j->r.kind == ATTACH_LOGS)
        run_logs(j);
    else if (j->r.kind == ATTACH_ARCHIVE)
        run_archive(j);
    else if (j->r.kind == ATTACH_BUILD)
        run_build(j);
    else
        run_exec(j);
}

static void job_end(void *arg)
{
    struct job *j = arg;
    if (j->urh)
        MHD_upgrade_action(j->urh, MHD_UPGRADE_ACTION_CLOSE);
    else
        close(j->sock);
    free(j);
}

int attach_start(struct engine *eng, struct streamset *set, const struct attach_req *r,
                 int sock, void *mhd_urh)
{
    struct job *j = xcalloc(1, sizeof(*j));
    *j = (struct job){.eng = eng, .set = set, .r = *r, .sock = sock, .urh = mhd_urh};
    if (streamset_run(set, 0, job_main, job_end, j, sock, -1) == 0)
        return 0;
    job_end(j);
    return -1;
}
