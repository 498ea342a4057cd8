/* Browser <-> agent relays for logs and terminals. One thread per session
 * polls both connections; wslay frames the browser's side. The agent's
 * connection is read only while what waits for the browser stays small,
 * so a slow browser slows the agent and the engine (TCP's own backpressure)
 * instead of growing a buffer here. */
#include "ctrsession.h"

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
#include <wslay/wslay.h>

#include "../lib/log.h"
#include "../lib/muxframe.h"
#include "../lib/now.h"
#include "../lib/streamset.h"
#include "../lib/xalloc.h"
#include "agentcall.h"
#include "audit.h"
#include "sshop.h"

#define BROWSER_BEHIND (1u << 20) /* queued for the browser before the agent waits */
#define BATCH_BYTES (256u << 10)  /* a logs message at most (about) */
#define BATCH_MS 100              /* lines wait this long to go out together */
#define PING_MS 30000

struct relay {
    struct ctrsession *s;
    wslay_event_context_ptr ctx;
    struct streamset *set;
    /* logs */
    struct mux_reader mux;
    struct buf batch;       /* {"type":"logs","chunks":[["o","..."],... being built */
    int batch_stream;       /* the stream of the open chunk; -1: none open */
    int64_t batch_since_ns; /* when the batch's first bytes came; 0: empty */
    unsigned char carry[3][4]; /* an incomplete UTF-8 sequence per stream */
    size_t ncarry[3];
    /* terminal */
    uint64_t bytes_in, bytes_out;
    const char *end_reason;
    uint16_t close_code;
    int going, close_queued, failed;
    int64_t going_ns;
};

struct ctrsession *ctrsession_new(int kind)
{
    struct ctrsession *s = xcalloc(1, sizeof(*s));
    s->kind = kind;
    s->agent_fd = -1;
    s->browser_fd = -1;
    buf_init(&s->rest, 1u << 20);
    return s;
}

void ctrsession_free(struct ctrsession *s)
{
    if (!s)
        return;
    if (s->agent_fd >= 0)
        close(s->agent_fd);
    sshop_shell_close(s->shell);
    buf_free(&s->rest);
    free(s);
}

/* ---- text for JSON ---- */

/* The length of the UTF-8 sequence at p (n bytes there): > 0 valid, 0
 * incomplete but valid so far, -1 invalid. */
static int utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return -1;
    /* no overlong forms, no surrogates, nothing past U+10FFFF */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xBF))
            return -1;
    }
    return len;
}

size_t ctrsession_json_text(struct buf *b, const unsigned char *p, size_t n, int final)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            size_t j = i;
            while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\')
                j++;
            buf_append(b, (const char *)p + i, j - i);
            i = j;
            continue;
        }
        if (c < 0x80) {
            static const char hex[] = "0123456789abcdef";
            if (c == '"' || c == '\\') {
                char e[2] = {'\\', (char)c};
                buf_append(b, e, 2);
            } else if (c == '\n') {
                buf_append(b, "\\n", 2);
            } else if (c == '\t') {
                buf_append(b, "\\t", 2);
            } else if (c == '\r') {
                buf_append(b, "\\r", 2);
            } else {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                buf_append(b, e, 6);
            }
            i++;
            continue;
        }
        int len = utf8_len(p + i, n - i);
        if (len == 0 && !final)
            break; /* the rest of the sequence comes with the next bytes */
        if (len <= 0) {
            buf_append(b, "\xEF\xBF\xBD", 3);
            i++;
            continue;
        }
        buf_append(b, (const char *)p + i, (size_t)len);
        i += (size_t)len;
    }
    return i;
}

/* ---- the browser's side (wslay) ---- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *data, size_t len, int flags, void *arg)
{
    struct relay *r = arg;
    (void)flags;
    ssize_t n = recv(r->s->browser_fd, data, len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else if (n <= 0)
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return n > 0 ? n : -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *arg)
{
    struct relay *r = arg;
    (void)flags;
    ssize_t n = send(r->s->browser_fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else if (n < 0)
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return n >= 0 ? n : -1;
}

static void queue(struct relay *r, int opcode, const void *data, size_t len)
{
    struct wslay_event_msg m = {(uint8_t)opcode, data, len};
    wslay_event_queue_msg(r->ctx, &m); /* wslay copies it */
}

/* The session ends: the close goes out after what is queued (wslay sends
 * control frames first, so queued now it would overtake the last logs). */
static void close_with(struct relay *r, uint16_t code, const char *reason)
{
    if (r->going)
        return;
    r->going = 1;
    r->going_ns = now_mono_ns();
    r->close_code = code;
    if (!r->end_reason)
        r->end_reason = reason;
}

static void queue_close(struct relay *r)
{
    if (!r->going || r->close_queued || wslay_event_get_queued_msg_count(r->ctx) > 0)
        return;
    r->close_queued = 1;
    wslay_event_queue_close(r->ctx, r->close_code, (const uint8_t *)r->end_reason, strlen(r->end_reason));
}

/* ---- the far end: the agent's stream, or a host's shell ---- */

static int up_fd(const struct ctrsession *s)
{
    return s->shell ? sshop_shell_fd(s->shell) : s->agent_fd;
}

/* > 0 bytes, 0 at its end, -1 broken, -2 nothing now */
static ssize_t up_read(struct ctrsession *s, char *buf, size_t n)
{
    if (s->shell)
        return sshop_shell_read(s->shell, buf, n);
    ssize_t got = recv(s->agent_fd, buf, n, MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return -2;
    return got;
}

static void up_resize(struct relay *r, int rows, int cols)
{
    char path[300];
    struct errinfo e = {0};
    if (r->s->shell) {
        sshop_shell_resize(r->s->shell, rows, cols);
        return;
    }
    snprintf(path, sizeof(path), "/api/v1/engine/exec/%s/resize?rows=%d&cols=%d", r->s->exec_id, rows, cols);
    json_decref(agentcall(&r->s->agent, "POST", path, NULL, 10, &e));
}

static int send_agent(struct relay *r, const char *p, size_t n)
{
    if (r->s->shell)
        return sshop_shell_write(r->s->shell, p, n);
    while (n > 0) {
        ssize_t w = send(r->s->agent_fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* {"type":"resize","rows":R,"cols":C} or {"type":"input","data":"..."}. */
static void terminal_control(struct relay *r, const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type && !strcmp(type, "input")) {
        const char *d = json_string_value(json_object_get(j, "data"));
        size_t n = json_string_length(json_object_get(j, "data"));
        if (d && send_agent(r, d, n) < 0)
            close_with(r, 1011, "the host's end of the terminal failed");
        r->bytes_in += n;
    } else if (type && !strcmp(type, "resize")) {
        json_int_t rows = json_integer_value(json_object_get(j, "rows"));
        json_int_t cols = json_integer_value(json_object_get(j, "cols"));
        if (rows >= 1 && rows <= 1000 && cols >= 1 && cols <= 1000)
            up_resize(r, (int)rows, (int)cols);
    }
    json_decref(j);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
    struct relay *r = arg;
    (void)ctx;
    if (r->s->kind == CTRSESSION_LOGS || r->going)
        return; /* a logs follow only listens; control frames are wslay's */
    if (m->opcode == WSLAY_BINARY_FRAME) {
        if (send_agent(r, (const char *)m->msg, m->msg_length) < 0)
            close_with(r, 1011, "the host's end of the terminal failed");
        r->bytes_in += m->msg_length;
    } else if (m->opcode == WSLAY_TEXT_FRAME) {
        terminal_control(r, (const char *)m->msg, m->msg_length);
    }
}

/* ---- logs: frames to batches ---- */

static void batch_flush(struct relay *r)
{
    if (!r->batch_since_ns)
        return;
    buf_puts(&r->batch, r->batch_stream >= 0 ? "\"]]}" : "]}");
    queue(r, WSLAY_TEXT_FRAME, r->batch.data, r->batch.len);
    r->batch.len = 0;
    r->batch_stream = -1;
    r->batch_since_ns = 0;
}

/* Opens a chunk of stream in the batch (starting the batch when empty). */
static void batch_open(struct relay *r, int stream)
{
    if (!r->batch_since_ns) {
        buf_puts(&r->batch, "{\"type\":\"logs\",\"chunks\":[");
        r->batch_since_ns = now_mono_ns();
        r->batch_stream = -1;
    }
    if (r->batch_stream == stream)
        return;
    if (r->batch_stream >= 0)
        buf_puts(&r->batch, "\"],");
    buf_puts(&r->batch, stream == MUX_STDERR ? "[\"e\",\"" : "[\"o\",\"");
    r->batch_stream = stream;
}

static int on_frame(void *arg, int stream, const char *data, size_t len)
{
    struct relay *r = arg;
    const unsigned char *p = (const unsigned char *)data;
    size_t *nc = &r->ncarry[stream];

    batch_open(r, stream);
    /* finish a sequence split across pieces, a byte at a time */
    while (*nc && len) {
        r->carry[stream][(*nc)++] = *p++;
        len--;
        size_t used = ctrsession_json_text(&r->batch, r->carry[stream], *nc, *nc == 4);
        memmove(r->carry[stream], r->carry[stream] + used, *nc - used);
        *nc -= used;
    }
    if (*nc)
        return 0; /* still incomplete: all of this piece went into it */
    size_t used = ctrsession_json_text(&r->batch, p, len, 0);
    memcpy(r->carry[stream], p + used, len - used); /* at most 3 bytes */
    *nc = len - used;
    if (r->batch.len >= BATCH_BYTES)
        batch_flush(r);
    return 0;
}

static void logs_from_agent(struct relay *r, const char *data, size_t len)
{
    if (mux_reader_feed(&r->mux, data, len, on_frame, r) < 0) {
        r->end_reason = "the host sent something other than log frames";
        r->failed = 1;
    }
}

/* The logs ended: what is held goes out, then why it ended. */
static void logs_end(struct relay *r, int running_before)
{
    for (int st = 1; st <= 2; st++)
        if (r->ncarry[st]) {
            batch_open(r, st);
            ctrsession_json_text(&r->batch, r->carry[st], r->ncarry[st], 1);
            r->ncarry[st] = 0;
        }
    batch_flush(r);
    char msg[200];
    snprintf(msg, sizeof(msg), "{\"type\":\"end\",\"reason\":\"%s\"}",
             r->failed                 ? "the host's stream broke off"
             : r->s->ended             ? r->s->ended
             : running_before          ? "the container stopped"
                                       : "the container is not running");
    queue(r, WSLAY_TEXT_FRAME, msg, strlen(msg));
}

/* ---- the session ---- */

static void from_agent(struct relay *r, const char *data, size_t len)
{
    if (r->s->kind == CTRSESSION_LOGS) {
        logs_from_agent(r, data, len);
        return;
    }
    queue(r, WSLAY_BINARY_FRAME, data, len);
    r->bytes_out += len;
}

static int revoked(struct relay *r, int64_t *checked_ns)
{
    int64_t now = now_mono_ns();
    if (now - *checked_ns < 1000000000LL)
        return 0;
    *checked_ns = now;
    return !auth_still_valid(r->s->auth, &r->s->who, now_wall_ms(), &r->s->auth_gen);
}

static void audit_end(struct relay *r, int64_t started_ms)
{
    struct ctrsession *s = r->s;
    char target[100];
    if (s->kind == CTRSESSION_LOGS || !s->audit)
        return;
    if (s->kind == CTRSESSION_SHELL)
        snprintf(target, sizeof(target), "server:%s", s->server);
    else
        snprintf(target, sizeof(target), "container:%lld", (long long)s->container_id);
    json_t *d = json_pack("{s:I,s:s,s:I,s:I}", "duration_ms", (json_int_t)(now_wall_ms() - started_ms),
                          "reason", r->end_reason ? r->end_reason : "closed", "bytes_in",
                          (json_int_t)r->bytes_in, "bytes_out", (json_int_t)r->bytes_out);
    struct audit_entry e = {.ts_ms = now_wall_ms(), .user_id = s->who.user_id,
                            .username = s->who.username, .role = auth_role_name(s->who.role),
                            .source = s->source,
                            .action = s->kind == CTRSESSION_SHELL ? "host.shell_end" : "container.terminal_end",
                            .target = target, .result = "ok", .status = 200, .details = d};
    audit_write(s->audit, &e);
    json_decref(d);
}

static void relay_loop(struct relay *r, int running_before)
{
    struct ctrsession *s = r->s;
    int agent_open = 1, idle_ms = 0;
    int64_t checked_ns = now_mono_ns();
    char chunk[65536];

    if (s->rest.len)
        from_agent(r, s->rest.data, s->rest.len);
    while (wslay_event_want_read(r->ctx) || wslay_event_want_write(r->ctx)) {
        int take = agent_open && !r->going && !r->failed &&
                   wslay_event_get_queued_msg_length(r->ctx) < BROWSER_BEHIND;
        struct pollfd p[2] = {{s->browser_fd, (short)((wslay_event_want_read(r->ctx) ? POLLIN : 0) |
                                                      (wslay_event_want_write(r->ctx) ? POLLOUT : 0)), 0},
                              {agent_open ? up_fd(s) : -1, (short)(take ? POLLIN : 0), 0}};
        int timeout = r->batch_since_ns ? BATCH_MS / 2 : 1000;
        if (take && s->shell && sshop_shell_pending(s->shell))
            timeout = 0; /* libssh holds bytes it read already */
        int n = poll(p, 2, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (!r->going && streamset_closing(r->set))
            close_with(r, 1001, "the server is stopping");
        if (!r->going && revoked(r, &checked_ns))
            close_with(r, 1008, "credential revoked");
        if (n == 0 && (idle_ms += timeout) >= PING_MS) {
            queue(r, WSLAY_PING, NULL, 0);
            idle_ms = 0;
        }
        if (r->going && ((r->close_queued && n == 0) || now_mono_ns() - r->going_ns > 5000000000LL))
            break; /* a close the browser never answers, or a browser that stopped reading */
        if ((p[0].revents & POLLIN) && wslay_event_recv(r->ctx) != 0)
            break;
        /* once the far end ended it is not read again (a hang-up keeps
         * polling as readable, and the end must be said once) */
        if (agent_open && (p[1].revents || (take && s->shell))) {
            ssize_t got = up_read(s, chunk, sizeof(chunk));
            if (got > 0) {
                from_agent(r, chunk, (size_t)got);
            } else if (got == 0 || got == -1) {
                agent_open = 0;
                if (s->kind == CTRSESSION_LOGS)
                    logs_end(r, running_before);
                close_with(r, 1000, s->kind == CTRSESSION_LOGS ? "the logs ended" : "the session ended");
            }
        }
        if (r->failed && !r->going) {
            logs_end(r, running_before);
            close_with(r, 1011, r->end_reason);
        }
        if (r->batch_since_ns && now_mono_ns() - r->batch_since_ns >= BATCH_MS * 1000000LL)
            batch_flush(r);
        if (wslay_event_want_write(r->ctx) && wslay_event_send(r->ctx) != 0)
            break;
        queue_close(r);
        if (wslay_event_want_write(r->ctx) && wslay_event_send(r->ctx) != 0)
            break;
        if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
            break;
        if (r->close_queued && !wslay_event_want_write(r->ctx) && !wslay_event_want_read(r->ctx))
            break;
    }
    if (!r->end_reason)
        r->end_reason = "the browser closed it";
}

static void session_main(void *arg)
{
    struct ctrsession *s = arg;
    struct relay r = {.s = s, .batch_stream = -1};
    struct wslay_event_callbacks cb = {on_recv, on_send, NULL, NULL, NULL, NULL, on_msg};
    struct timeval tv = {10, 0};
    int one = 1;
    int64_t started_ms = now_wall_ms();

    r.set = s->set;
    mux_reader_init(&r.mux);
    buf_init(&r.batch, 0);
    fcntl(s->browser_fd, F_SETFL, fcntl(s->browser_fd, F_GETFL) | O_NONBLOCK);
    /* a key's echo is one small write each way: no Nagle delay on either */
    setsockopt(s->browser_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(up_fd(s), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (s->agent_fd >= 0)
        setsockopt(s->agent_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (wslay_event_context_server_init(&r.ctx, &cb, &r) != 0)
        goto out;
    wslay_event_config_set_max_recv_msg_length(r.ctx, 64 * 1024);
    relay_loop(&r, s->running);
    wslay_event_context_free(r.ctx);
    audit_end(&r, started_ms);
out:
    buf_free(&r.batch);
}

static void session_end(void *arg)
{
    struct ctrsession *s = arg;
    if (s->urh)
        MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
    else if (s->browser_fd >= 0)
        close(s->browser_fd);
    ctrsession_free(s);
}

int ctrsession_start(struct streamset *set, struct ctrsession *s, int sock, void *mhd_urh)
{
    s->browser_fd = sock;
    s->urh = mhd_urh;
    s->set = set;
    if (streamset_run(set, s->who.user_id, session_main, session_end, s, sock, up_fd(s)) == 0)
        return 0;
    session_end(s);
    return -1;
}
