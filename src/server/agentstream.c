/* The server's side of agent streams: a plain TCP connection (agents
 * speak HTTP; a stream is one request that the agent upgrades), a
 * deadline on every step before the stream starts. */
#include "agentstream.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include "../lib/now.h"
#include "agentcall.h"

#define CONNECT_MS 5000
#define ANSWER_MS 15000
#define HEAD_MAX (16u << 10)
#define HELLO_MAX (64u << 10)

/* host and port out of "host:port" or "[v6]:port". 0 or -1. */
static int split_instance(const char *inst, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(inst, ':');
    if (!colon || colon == inst || !colon[1] || strlen(colon + 1) >= portlen)
        return -1;
    const char *h = inst;
    size_t n = (size_t)(colon - inst);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hostlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

/* A connection within CONNECT_MS, or -1. */
static int dial(const char *instance, char *why, size_t whylen)
{
    char host[256], port[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
    int fd = -1;

    if (split_instance(instance, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(why, whylen, "not host:port");
        return -1;
    }
    int g = getaddrinfo(host, port, &hints, &res);
    if (g) {
        snprintf(why, whylen, "%s", gai_strerror(g));
        return -1;
    }
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof(err);
            rc = poll(&p, 1, CONNECT_MS) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && !err ? 0 : -1;
            errno = err ? err : ETIMEDOUT;
        }
        if (rc < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline_ms)
{
    while (n > 0) {
        struct pollfd pf = {fd, POLLOUT, 0};
        int64_t left = deadline_ms - (now_mono_ns() / 1000000);
        if (left <= 0 || poll(&pf, 1, (int)left) != 1)
            return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads into b until it holds stop (after `from`) or max bytes; the
 * offset just past stop, or -1 (closed, too big, past the deadline). */
static long read_until(int fd, struct buf *b, size_t from, const char *stop, size_t max, int64_t deadline_ms)
{
    char chunk[4096];
    for (;;) {
        if (b->len > from) {
            char *hit = memmem(b->data + from, b->len - from, stop, strlen(stop));
            if (hit)
                return (long)(hit - b->data) + (long)strlen(stop);
        }
        if (b->len - from >= max)
            return -1;
        struct pollfd pf = {fd, POLLIN, 0};
        int64_t left = deadline_ms - (now_mono_ns() / 1000000);
        if (left <= 0 || poll(&pf, 1, (int)left) != 1)
            return -1;
        ssize_t r = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0 || buf_append(b, chunk, (size_t)r) < 0)
            return -1;
    }
}

/* The refusal in an answer that is not 101: its body (as far as it came
 * within the deadline) read as the agent's error. */
static void refusal(int fd, struct buf *b, long head_end, int status, int64_t deadline_ms,
                    struct errinfo *e)
{
    const char *cl = strcasestr(b->data, "\r\ncontent-length:");
    size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
    if (want > HELLO_MAX)
        want = HELLO_MAX;
    while (b->len - (size_t)head_end < want) {
        char chunk[4096];
        struct pollfd pf = {fd, POLLIN, 0};
        int64_t left = deadline_ms - (now_mono_ns() / 1000000);
        if (left <= 0 || poll(&pf, 1, (int)left) != 1)
            break;
        ssize_t r = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (r <= 0 || buf_append(b, chunk, (size_t)r) < 0)
            break;
    }
    agentcall_refusal(status, b->data + head_end, b->len - (size_t)head_end, e);
}

/* The first line: {"ok":true,...}, or {"error":{"code","message","status"}}. */
static json_t *hello_of(const char *line, size_t len, const struct reg_target *t, struct errinfo *e)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    json_t *err = json_object_get(j, "error");
    if (json_is_true(json_object_get(j, "ok")))
        return j;
    if (err) {
        json_int_t st = json_integer_value(json_object_get(err, "status"));
        const char *code = json_string_value(json_object_get(err, "code"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        errinfo_set(e, st >= 400 && st < 600 ? (int)st : 502,
                    code && !strcmp(code, "not_found") ? "not_found" : "engine_refused", NULL, "%s",
                    msg ? msg : "the engine refused");
    } else {
        errinfo_set(e, 502, "agent_answer", NULL, "the agent of %s began the stream without a hello",
                    t->server);
    }
    json_decref(j);
    return NULL;
}

int agentstream_open(const struct reg_target *t, const char *path, json_t **hello,
                     struct buf *rest, struct errinfo *e)
{
    char why[200] = "", req[3600];
    struct buf b;
    int fd, status = 0;
    int64_t deadline = (now_mono_ns() / 1000000) + ANSWER_MS;

    *hello = NULL;
    buf_init(&b, HEAD_MAX + HELLO_MAX + 8192);
    if ((fd = dial(t->instance, why, sizeof(why))) < 0) {
        errinfo_set(e, 502, "agent_unreachable", NULL, "the agent of %s at %s: %s", t->server,
                    t->instance, why);
        goto fail;
    }
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Connection: Upgrade\r\nUpgrade: gpufleet-stream\r\n\r\n",
                     path, t->instance, t->token);
    if (n < 0 || (size_t)n >= sizeof(req) || send_all(fd, req, (size_t)n, deadline) < 0)
        goto broken;
    long head_end = read_until(fd, &b, 0, "\r\n\r\n", HEAD_MAX, deadline);
    if (head_end < 0 || buf_putc(&b, '\0') < 0)
        goto broken;
    b.len--; /* the NUL only ends the head for the searches below */
    if (sscanf(b.data, "HTTP/1.%*d %d", &status) != 1)
        goto broken;
    if (status != 101) {
        refusal(fd, &b, head_end, status, deadline, e);
        goto fail;
    }
    long line_end = read_until(fd, &b, (size_t)head_end, "\n", HELLO_MAX, deadline);
    if (line_end < 0)
        goto broken;
    if (!(*hello = hello_of(b.data + head_end, (size_t)(line_end - head_end), t, e)))
        goto fail;
    if (buf_append(rest, b.data + line_end, b.len - (size_t)line_end) < 0)
        goto broken;
    buf_free(&b);
    return fd;
broken:
    errinfo_set(e, 502, "agent_answer", NULL, "the agent of %s at %s did not open the stream",
                t->server, t->instance);
fail:
    json_decref(*hello);
    *hello = NULL;
    if (fd >= 0)
        close(fd);
    buf_free(&b);
    return -1;
}
