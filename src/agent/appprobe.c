/* Probing the host's apps (see appprobe.h). */
#include "appprobe.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/ctrspec.h"
#include "../lib/muxframe.h"
#include "../lib/xalloc.h"

struct probe {
    CURL *h;
    char url[700];
    json_t *out; /* this app's answer (borrowed from the list) */
    int has_path;
};

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static int valid_path(const char *p)
{
    size_t n = strlen(p);
    if (n == 0)
        return 1;
    if (p[0] != '/' || n > 512)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 127 || strchr("\"\\#<>", p[i]))
            return 0;
    return 1;
}

static int valid_ip(const char *s)
{
    if (strlen(s) > 45)
        return 0;
    for (const char *c = s; *c; c++)
        if (!strchr("0123456789abcdefABCDEF.:", *c))
            return 0;
    return 1;
}

#define TAIL_MAX_BYTES (64u << 10)

static int tail_piece(void *arg, int stream, const char *data, size_t len)
{
    (void)stream;
    buf_append(arg, data, len);
    return 0;
}

/* The container's last lines of output (stdout and stderr as they came),
 * at most TAIL_MAX_BYTES: a failed app shows why. */
static json_t *log_tail(struct engine *eng, const char *id, int lines)
{
    char path[300];
    struct buf raw, text;
    struct errinfo e = {0};
    struct mux_reader r;
    json_t *out;

    buf_init(&raw, TAIL_MAX_BYTES);
    buf_init(&text, TAIL_MAX_BYTES);
    snprintf(path, sizeof(path), "/" ENGINE_API "/containers/%s/logs?stdout=1&stderr=1&tail=%d", id, lines);
    if (engine_call(eng, "GET", path, NULL, 10, NULL, &raw, &e) != 200) {
        buf_free(&raw);
        buf_free(&text);
        return json_null();
    }
    mux_reader_init(&r);
    /* a TTY container's log is the raw stream, not framed */
    if (raw.len && mux_reader_feed(&r, raw.data, raw.len, tail_piece, &text) < 0) {
        buf_reset(&text);
        buf_append(&text, raw.data, raw.len);
    }
    out = json_stringn(text.data ? text.data : "", text.len);
    if (!out) { /* not UTF-8: those bytes shown as '?' */
        for (size_t i = 0; i < text.len; i++)
            if ((unsigned char)text.data[i] >= 0x80)
                text.data[i] = '?';
        out = json_stringn(text.data ? text.data : "", text.len);
    }
    buf_free(&raw);
    buf_free(&text);
    return out ? out : json_null();
}

static int bad(struct errinfo *e, const char *field, const char *msg)
{
    errinfo_set(e, 400, "invalid_field", field, "%s", msg);
    return -1;
}

/* One app of the request, checked: 0 or -1 with e. */
static int check_item(const json_t *a, struct errinfo *e)
{
    const char *name = json_string_value(json_object_get(a, "name"));
    const char *id = json_string_value(json_object_get(a, "container"));
    json_t *port = json_object_get(a, "port");
    const char *ip = json_string_value(json_object_get(a, "host_ip"));
    const char *path = json_string_value(json_object_get(a, "path"));

    if (!name || !ctrspec_valid_app_name(name))
        return bad(e, "name", "each app has a name (a DNS label)");
    if (!id || !engine_valid_id(id))
        return bad(e, "container", "each app has its container's engine id");
    if (!json_is_integer(port) || json_integer_value(port) < 0 || json_integer_value(port) > 65535)
        return bad(e, "port", "port is the host port, 0..65535");
    if (ip && !valid_ip(ip))
        return bad(e, "host_ip", "host_ip is an IP address");
    if (path && !valid_path(path))
        return bad(e, "path", "path starts with '/', printable ASCII, no spaces, at most 512 bytes");
    json_t *tail = json_object_get(a, "tail");
    if (tail && (!json_is_integer(tail) || json_integer_value(tail) < 0 || json_integer_value(tail) > 200))
        return bad(e, "tail", "tail is a number of log lines, 0..200");
    return 0;
}

static void set_url(struct probe *p, const json_t *a)
{
    const char *ip = json_string_value(json_object_get(a, "host_ip"));
    const char *path = json_string_value(json_object_get(a, "path"));
    int port = (int)json_integer_value(json_object_get(a, "port"));

    /* published on every address: loopback reaches it */
    if (!ip || !*ip || !strcmp(ip, "0.0.0.0"))
        ip = "127.0.0.1";
    else if (!strcmp(ip, "::"))
        ip = "::1";
    p->has_path = path && *path;
    snprintf(p->url, sizeof(p->url), strchr(ip, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s", ip, port,
             p->has_path ? path : "/");
}

static void finish(struct probe *p, CURLcode rc)
{
    long code = 0;

    curl_easy_getinfo(p->h, CURLINFO_RESPONSE_CODE, &code);
    /* without a path any HTTP answer will do; a connection alone will not
     * (Docker's userland proxy accepts on the host port whether or not
     * anything listens in the container) */
    int up = p->has_path ? code >= 200 && code < 400 : code > 0;
    json_object_set_new(p->out, "up", json_boolean(up));
    json_object_set_new(p->out, "http_status", code ? json_integer(code) : json_null());
    if (!up)
        json_object_set_new(p->out, "error",
                            json_string(code ? "the health path did not answer 2xx or 3xx" : curl_easy_strerror(rc)));
}

json_t *appprobe_run(struct engine *eng, const json_t *apps, int timeout_ms, struct errinfo *e)
{
    size_t i, n = json_array_size(apps), np = 0;
    json_t *out = NULL, *a;
    struct probe *probes = NULL;
    CURLM *m = NULL;

    if (!json_is_array(apps) || n > APPPROBE_MAX) {
        errinfo_set(e, 400, "invalid_field", "apps", "apps is a list of at most %d", APPPROBE_MAX);
        return NULL;
    }
    json_array_foreach(apps, i, a)
        if (check_item(a, e) < 0)
            return NULL;
    out = json_array();
    probes = xcalloc(n ? n : 1, sizeof(*probes));
    m = curl_multi_init();
    json_array_foreach(apps, i, a) {
        struct errinfo ie = {0};
        json_t *st = engine_inspect(eng, json_string_value(json_object_get(a, "container")), &ie);
        json_t *o = json_pack("{s:O}", "name", json_object_get(a, "name"));
        json_array_append_new(out, o);
        if (!st) {
            json_object_set_new(o, "state", json_string(ie.status == 404 ? "missing" : "unknown"));
            json_object_set_new(o, "running", json_false());
            json_object_set_new(o, "up", json_false());
            json_object_set_new(o, "error", json_string(ie.message));
            continue;
        }
        static const char *const keep[] = {"state", "running", "exit_code", "started_at", "finished_at", "restart_count"};
        for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
            json_object_set(o, keep[k], json_object_get(st, keep[k]));
        /* Docker says Running while it waits to restart a program that exited */
        const char *state = json_string_value(json_object_get(st, "state"));
        int running = json_is_true(json_object_get(st, "running")) && (!state || strcmp(state, "restarting"));
        json_object_set_new(o, "running", json_boolean(running));
        json_decref(st);
        int tail = (int)json_integer_value(json_object_get(a, "tail"));
        if (tail > 0)
            json_object_set_new(o, "log_tail", log_tail(eng, json_string_value(json_object_get(a, "container")), tail));
        json_object_set_new(o, "up", json_false());
        if (!running || json_integer_value(json_object_get(a, "port")) == 0)
            continue;
        struct probe *p = &probes[np++];
        p->out = o;
        set_url(p, a);
        p->h = curl_easy_init();
        curl_easy_setopt(p->h, CURLOPT_URL, p->url);
        curl_easy_setopt(p->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(p->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(p->h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(p->h, CURLOPT_PROTOCOLS_STR, "http");
        curl_easy_setopt(p->h, CURLOPT_PRIVATE, p);
        curl_easy_setopt(p->h, CURLOPT_USERAGENT, "gpufleet-agent health probe");
        curl_multi_add_handle(m, p->h);
    }
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        struct probe *p = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
        if (p)
            finish(p, msg->data.result);
    }
    for (i = 0; i < np; i++) {
        curl_multi_remove_handle(m, probes[i].h);
        curl_easy_cleanup(probes[i].h);
    }
    curl_multi_cleanup(m);
    free(probes);
    return out;
}
