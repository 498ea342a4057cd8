/* Docker Engine API client over a unix socket (libcurl). One easy handle
 * per call: calls come from the HTTP server's threads, are few, and each
 * may wait on the engine for seconds (a stop's grace period). */
#include "engine.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/xalloc.h"
#include "../lib/yamljson.h"
#include "compose.h"

#define MAX_ANSWER (16u << 20)
#define MAX_CDI_FILE (1u << 20)
#define ENV_NO_GPUS "NVIDIA_VISIBLE_DEVICES=void"
#define API_VERSION "1.41" /* ENGINE_API without its "v" */

enum kind { KIND_UNKNOWN, KIND_DOCKER, KIND_PODMAN };

struct engine {
    char *socket_path;
    char *cdi_dirs;
    char *workspace_root;
    char *apps_root;
    int kind; /* learnt from /version, atomically: any thread */
};

struct engine *engine_new(const char *socket_path, const char *cdi_dirs,
                          const char *workspace_root, const char *apps_root)
{
    struct engine *e = xcalloc(1, sizeof(*e));
    e->apps_root = xstrdup(apps_root ? apps_root : "");
    e->socket_path = xstrdup(socket_path);
    e->cdi_dirs = xstrdup(cdi_dirs ? cdi_dirs : "");
    e->workspace_root = xstrdup(workspace_root ? workspace_root : "");
    return e;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    free(e->socket_path);
    free(e->cdi_dirs);
    free(e->workspace_root);
    free(e->apps_root);
    free(e);
}

int engine_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (!n || n > 128 || id[0] == '.' || id[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == '_' || id[i] == '.' || id[i] == '-'))
            return 0;
    return 1;
}

/* ---- the HTTP call ---- */

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    return buf_append(b, p, size * n) < 0 ? 0 : size * n;
}

/* The engine's own words for a refusal: {"message":...} (both engines). */
static void engine_message(const struct buf *b, char *out, size_t outlen)
{
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
    const char *m = json_string_value(json_object_get(j, "message"));
    snprintf(out, outlen, "%s", m ? m : "no message");
    json_decref(j);
}

/* An engine's refusal (status >= 300) into e: 404 stays not_found, any
 * other becomes `other` (409 where the request was refused, 502 where a
 * read failed), with the engine's own words. */
void engine_refused(const struct buf *b, long status, int other, struct errinfo *e)
{
    char msg[200];
    engine_message(b, msg, sizeof(msg));
    errinfo_set(e, status == 404 ? 404 : other, status == 404 ? "not_found" : "engine_refused", NULL,
                "the engine said %ld: %s", status, msg);
}

/* libcurl's progress callback, about once a second even on a quiet
 * stream: a nonzero answer aborts the call */
struct alive_check {
    int (*alive)(void *arg);
    void *arg;
};

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct alive_check *a = arg;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return a->alive(a->arg) ? 0 : 1;
}

static long perform(struct engine *eng, const char *method, const char *path, const char *body,
                    long timeout_s, engine_sink sink, void *arg, struct alive_check *alive,
                    const struct engine_extra *extra, struct errinfo *e)
{
    char url[1200];
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    long status = -1;
    CURL *c = curl_easy_init();

    if (!c) {
        errinfo_set(e, 500, "internal", NULL, "libcurl failed to start a call");
        return -1;
    }
    snprintf(url, sizeof(url), "http://engine%s", path);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, eng->socket_path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink ? sink : on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, arg);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L); /* no body comes: do not wait for one */
    if (alive) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, alive);
    }
    if (extra && extra->header)
        hdrs = curl_slist_append(hdrs, extra->header);
    if (extra && extra->upload) {
        /* a POST whose body is read from a file as it goes (a build's context) */
        hdrs = curl_slist_append(hdrs, "Content-Type: application/x-tar");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, extra->upload);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)extra->upload_size);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK || (alive && (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_WRITE_ERROR)))
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        errinfo_set(e, 502, "engine_unreachable", NULL, "the container engine at %s: %s",
                    eng->socket_path, curl_err[0] ? curl_err : curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return status;
}

long engine_call(struct engine *eng, const char *method, const char *path, const char *body,
                 long timeout_s, engine_sink sink, void *arg, struct errinfo *e)
{
    return perform(eng, method, path, body, timeout_s, sink, arg, NULL, NULL, e);
}

long engine_call_ex(struct engine *eng, const char *method, const char *path,
                    const struct engine_extra *extra, long timeout_s, engine_sink sink, void *arg,
                    struct errinfo *e)
{
    return perform(eng, method, path, NULL, timeout_s, sink, arg, NULL, extra, e);
}

long engine_stream(struct engine *eng, const char *path, engine_sink sink, void *arg,
                   int (*alive)(void *arg), struct errinfo *e)
{
    struct alive_check a = {alive, arg};
    return perform(eng, "GET", path, NULL, 0, sink, arg, &a, NULL, e);
}

long engine_put_file(struct engine *eng, const char *path, FILE *f, long long size, struct buf *out,
                     struct errinfo *e)
{
    struct engine_extra extra = {.upload = f, .upload_size = size};
    return perform(eng, "PUT", path, NULL, 0, NULL, out, NULL, &extra, e);
}

int engine_connect(struct engine *eng, struct errinfo *e)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = -1;

    if (strlen(eng->socket_path) >= sizeof(sa.sun_path)) {
        errinfo_set(e, 502, "engine_unreachable", NULL, "the engine's socket path is too long");
        return -1;
    }
    memcpy(sa.sun_path, eng->socket_path, strlen(eng->socket_path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        errinfo_set(e, 502, "engine_unreachable", NULL, "the container engine at %s: %s",
                    eng->socket_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static long call(struct engine *eng, const char *method, const char *path, const char *body,
                 long timeout_s, struct buf *out, struct errinfo *e)
{
    return engine_call(eng, method, path, body, timeout_s, NULL, out, e);
}

json_t *engine_call_json(struct engine *eng, const char *method, const char *path,
                         const char *body, long timeout_s, long *status, struct errinfo *e)
{
    struct buf b;
    json_t *j = NULL;

    buf_init(&b, MAX_ANSWER);
    *status = call(eng, method, path, body, timeout_s, &b, e);
    if (*status < 0)
        goto out;
    if (*status >= 300) {
        engine_refused(&b, *status, 409, e);
        goto out;
    }
    if (!(j = json_loadb(b.data ? b.data : "", b.len, 0, NULL)))
        errinfo_set(e, 502, "engine_answer", NULL, "the engine's answer to %s %s is not JSON",
                    method, path);
out:
    buf_free(&b);
    return j;
}

/* ---- what the engine is ---- */

static int detect(struct engine *eng, json_t **version, struct errinfo *e)
{
    long status;
    json_t *v = engine_call_json(eng, "GET", "/" ENGINE_API "/version", NULL, 10, &status, e);
    size_t i;
    json_t *c;
    int kind = KIND_DOCKER;

    if (!v)
        return -1;
    /* Podman's compat API names itself in Components; its Version there is
     * Podman's, so no Docker version is gated on */
    json_array_foreach(json_object_get(v, "Components"), i, c) {
        const char *n = json_string_value(json_object_get(c, "Name"));
        if (n && strstr(n, "Podman"))
            kind = KIND_PODMAN;
    }
    __atomic_store_n(&eng->kind, kind, __ATOMIC_RELEASE);
    if (version)
        *version = v;
    else
        json_decref(v);
    return kind;
}

static int kind_of(struct engine *eng, struct errinfo *e)
{
    int k = __atomic_load_n(&eng->kind, __ATOMIC_ACQUIRE);
    return k != KIND_UNKNOWN ? k : detect(eng, NULL, e);
}

/* The device names of the CDI specs for NVIDIA GPUs in one file. */
static void cdi_file(const char *path, json_t *names)
{
    FILE *f = fopen(path, "re");
    char *text = NULL;
    size_t n;
    json_t *spec = NULL, *d;
    size_t i;
    char err[200];

    if (!f)
        return;
    text = xmalloc(MAX_CDI_FILE);
    n = fread(text, 1, MAX_CDI_FILE, f);
    fclose(f);
    if (n == MAX_CDI_FILE)
        goto out;
    spec = yaml_to_json(text, n, err, sizeof(err));
    if (!spec || !json_is_string(json_object_get(spec, "kind")) ||
        strcmp(json_string_value(json_object_get(spec, "kind")), "nvidia.com/gpu"))
        goto out;
    json_array_foreach(json_object_get(spec, "devices"), i, d)
        if (json_is_string(json_object_get(d, "name")))
            json_array_append(names, json_object_get(d, "name"));
out:
    json_decref(spec);
    free(text);
}

/* Every NVIDIA GPU device the host's CDI specs name. */
static json_t *cdi_devices(struct engine *eng)
{
    json_t *names = json_array();
    char *dirs = xstrdup(eng->cdi_dirs), *save = NULL;

    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        DIR *dir = opendir(d);
        struct dirent *ent;
        if (!dir)
            continue;
        while ((ent = readdir(dir))) {
            const char *dot = strrchr(ent->d_name, '.');
            char path[4200];
            if (!dot || (strcmp(dot, ".json") && strcmp(dot, ".yaml") && strcmp(dot, ".yml")))
                continue;
            snprintf(path, sizeof(path), "%s/%s", d, ent->d_name);
            cdi_file(path, names);
        }
        closedir(dir);
    }
    free(dirs);
    return names;
}

/* Whether the NVIDIA toolkit's hook is where dockerd looks for it (its
 * PATH; the agent's PATH stands in for it) or the engine has the nvidia
 * runtime. */
static int docker_has_nvidia(struct engine *eng)
{
    const char *path = getenv("PATH");
    char *copy = xstrdup(path ? path : "/usr/bin:/usr/local/bin"), *save = NULL;
    int found = 0;
    long status;
    struct errinfo e;

    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/nvidia-container-runtime-hook", d);
        found = access(p, X_OK) == 0;
    }
    free(copy);
    if (found)
        return 1;
    json_t *info = engine_call_json(eng, "GET", "/" ENGINE_API "/info", NULL, 10, &status, &e);
    found = json_object_get(json_object_get(info, "Runtimes"), "nvidia") != NULL;
    json_decref(info);
    return found;
}

json_t *engine_info(struct engine *eng, struct errinfo *e)
{
    json_t *v = NULL, *out;
    int kind = detect(eng, &v, e);
    const char *gpu = "none", *detail;
    json_t *cdi = json_array();

    if (kind < 0) {
        json_decref(cdi);
        return NULL;
    }
    if (kind == KIND_PODMAN) {
        json_decref(cdi);
        cdi = cdi_devices(eng);
        gpu = json_array_size(cdi) ? "cdi" : "none";
        detail = json_array_size(cdi) ? "GPUs as CDI devices nvidia.com/gpu=UUID (libpod API)"
                                       : "no CDI spec for NVIDIA GPUs: run nvidia-ctk cdi generate "
                                         "--device-name-strategy=uuid --output=/etc/cdi/nvidia.yaml";
    } else if (docker_has_nvidia(eng)) {
        gpu = "nvidia";
        detail = "GPUs as DeviceRequests with Driver nvidia (NVIDIA Container Toolkit)";
    } else {
        detail = "no NVIDIA Container Toolkit: install nvidia-container-toolkit";
    }
    out = json_pack("{s:s, s:O?, s:s, s:s, s:s, s:o}", "engine",
                    kind == KIND_PODMAN ? "podman" : "docker", "version",
                    json_object_get(v, "Version"), "api_version", API_VERSION, "gpu_requests",
                    gpu, "gpu_detail", detail, "cdi_devices", cdi);
    json_decref(v);
    return out;
}

/* ---- readers of the engine's answers ---- */

static const char *str_at(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The gpufleet labels of a container, into o. */
static void add_labels(json_t *o, const json_t *labels)
{
    const char *owner = str_at(labels, ENGINE_LABEL_OWNER);
    const char *id = str_at(labels, ENGINE_LABEL_ID);
    const char *gpus = str_at(labels, "gpufleet.gpus");
    json_t *g = json_array();
    char *copy = xstrdup(gpus), *save = NULL;

    json_object_set_new(o, "managed", json_boolean(!strcmp(str_at(labels, ENGINE_LABEL_MANAGED), "true")));
    json_object_set_new(o, "owner", json_string(owner));
    json_object_set_new(o, "gf_id", json_integer(strtoll(id, NULL, 10)));
    json_object_set_new(o, "app", json_string(str_at(labels, ENGINE_LABEL_APP)));
    for (char *u = strtok_r(copy, ",", &save); u; u = strtok_r(NULL, ",", &save))
        json_array_append_new(g, json_string(u));
    free(copy);
    json_object_set_new(o, "gpus", g);
}

json_t *engine_list_from_json(const char *text, size_t len, struct errinfo *e)
{
    json_t *in = json_loadb(text, len, 0, NULL), *out = NULL, *c, *p;
    size_t i, j;

    if (!json_is_array(in)) {
        errinfo_set(e, 502, "engine_answer", NULL, "the engine's container list is not an array");
        goto out;
    }
    out = json_array();
    json_array_foreach(in, i, c) {
        const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
        json_t *o, *ports;
        if (!json_is_object(c) || !json_is_string(json_object_get(c, "Id")))
            continue;
        ports = json_array();
        json_array_foreach(json_object_get(c, "Ports"), j, p) {
            json_int_t pub = json_integer_value(json_object_get(p, "PublicPort"));
            if (!pub)
                continue;
            json_array_append_new(ports, json_pack("{s:I, s:I, s:s, s:s}", "container",
                                                   json_integer_value(json_object_get(p, "PrivatePort")),
                                                   "host", pub, "proto", str_at(p, "Type"), "host_ip",
                                                   str_at(p, "IP")));
        }
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "id", str_at(c, "Id"), "name",
                      name ? name + (name[0] == '/') : "", "image", str_at(c, "Image"),
                      "image_id", str_at(c, "ImageID"), "state",
                      str_at(c, "State"), "status", str_at(c, "Status"), "created",
                      json_integer_value(json_object_get(c, "Created")), "ports", ports);
        add_labels(o, json_object_get(c, "Labels"));
        json_array_append_new(out, o);
    }
out:
    json_decref(in);
    return out;
}

json_t *engine_inspect_from_json(const char *text, size_t len, struct errinfo *e)
{
    json_t *in = json_loadb(text, len, 0, NULL), *out = NULL, *st, *cfg, *hc, *ports, *b;
    const char *k, *name;
    size_t i;

    if (!json_is_object(in) || !json_is_string(json_object_get(in, "Id"))) {
        errinfo_set(e, 502, "engine_answer", NULL, "the engine's inspect answer has no Id");
        goto out;
    }
    st = json_object_get(in, "State");
    cfg = json_object_get(in, "Config");
    hc = json_object_get(in, "HostConfig");
    name = str_at(in, "Name");
    ports = json_array();
    json_object_foreach(json_object_get(json_object_get(in, "NetworkSettings"), "Ports"), k, b) {
        json_t *x;
        json_array_foreach(b, i, x)
            json_array_append_new(
                ports, json_pack("{s:I, s:s, s:I, s:s}", "container", (json_int_t)strtol(k, NULL, 10),
                                 "proto", strchr(k, '/') ? strchr(k, '/') + 1 : "tcp", "host",
                                 (json_int_t)strtol(str_at(x, "HostPort"), NULL, 10), "host_ip",
                                 str_at(x, "HostIp")));
    }
    out = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:s, s:s, s:b, s:I, s:I, s:I, s:o}", "id",
                    str_at(in, "Id"), "name", name + (name[0] == '/'), "image",
                    str_at(cfg, "Image"), "state", str_at(st, "Status"), "running",
                    json_is_true(json_object_get(st, "Running")), "exit_code",
                    json_integer_value(json_object_get(st, "ExitCode")), "started_at",
                    str_at(st, "StartedAt"), "finished_at", str_at(st, "FinishedAt"),
                    "oom_killed", json_is_true(json_object_get(st, "OOMKilled")), "restart_count",
                    json_integer_value(json_object_get(in, "RestartCount")), "nano_cpus",
                    json_integer_value(json_object_get(hc, "NanoCpus")), "memory_bytes",
                    json_integer_value(json_object_get(hc, "Memory")), "ports", ports);
    add_labels(out, json_object_get(cfg, "Labels"));
out:
    json_decref(in);
    return out;
}

json_t *engine_stats_from_json(const char *text, size_t len, struct errinfo *e)
{
    json_t *in = json_loadb(text, len, 0, NULL), *out = NULL;
    json_t *cpu, *mem;

    if (!json_is_object(in) || !json_is_object(json_object_get(in, "memory_stats"))) {
        errinfo_set(e, 502, "engine_answer", NULL, "the engine's stats answer has no memory_stats");
        goto out;
    }
    cpu = json_object_get(json_object_get(in, "cpu_stats"), "cpu_usage");
    mem = json_object_get(in, "memory_stats");
    out = json_pack("{s:f, s:I, s:I, s:I}", "cpu_seconds",
                    (double)json_integer_value(json_object_get(cpu, "total_usage")) / 1e9,
                    "memory_bytes", json_integer_value(json_object_get(mem, "usage")),
                    "memory_limit_bytes", json_integer_value(json_object_get(mem, "limit")),
                    "pids", json_integer_value(json_object_get(json_object_get(in, "pids_stats"), "current")));
out:
    json_decref(in);
    return out;
}

/* A GET whose JSON text a reader turns into our form. */
static json_t *get_read(struct engine *eng, const char *path,
                        json_t *(*reader)(const char *, size_t, struct errinfo *),
                        struct errinfo *e)
{
    struct buf b;
    json_t *out = NULL;
    long status;

    buf_init(&b, MAX_ANSWER);
    status = call(eng, "GET", path, NULL, 30, &b, e);
    if (status < 0)
        goto out;
    if (status >= 300) {
        engine_refused(&b, status, 502, e);
        goto out;
    }
    out = reader(b.data ? b.data : "", b.len, e);
out:
    buf_free(&b);
    return out;
}

json_t *engine_list(struct engine *eng, struct errinfo *e)
{
    return get_read(eng, "/" ENGINE_API "/containers/json?all=1", engine_list_from_json, e);
}

static int check_id(const char *id, struct errinfo *e)
{
    if (engine_valid_id(id))
        return 0;
    errinfo_set(e, 400, "invalid_field", "id", "a container id or name is [A-Za-z0-9_.-], 1-128");
    return -1;
}

/* GET /containers/{id}/{what} read by reader. */
static json_t *get_container(struct engine *eng, const char *id, const char *what,
                             json_t *(*reader)(const char *, size_t, struct errinfo *),
                             struct errinfo *e)
{
    char path[300];

    if (check_id(id, e) < 0)
        return NULL;
    snprintf(path, sizeof(path), "/" ENGINE_API "/containers/%s/%s", id, what);
    return get_read(eng, path, reader, e);
}

json_t *engine_inspect(struct engine *eng, const char *id, struct errinfo *e)
{
    return get_container(eng, id, "json", engine_inspect_from_json, e);
}

json_t *engine_stats(struct engine *eng, const char *id, struct errinfo *e)
{
    return get_container(eng, id, "stats?stream=false&one-shot=true", engine_stats_from_json, e);
}

/* ---- acting on containers ---- */

/* Refuses containers gpufleet did not make, unless allowed. */
static int check_managed(struct engine *eng, const char *id, int allow_unmanaged,
                         struct errinfo *e)
{
    json_t *c = engine_inspect(eng, id, e);
    int managed;

    if (!c)
        return -1;
    managed = json_is_true(json_object_get(c, "managed"));
    json_decref(c);
    if (managed || allow_unmanaged)
        return 0;
    errinfo_set(e, 403, "unmanaged", "id",
                "%.128s was not made by gpufleet; only an admin may act on it", id);
    return -1;
}

/* A call that answers 204/304 with no body. */
static int call_ok(struct engine *eng, const char *method, const char *path, long timeout_s,
                   struct errinfo *e)
{
    struct buf b;
    long status;
    int rc = -1;

    buf_init(&b, 1 << 20);
    status = call(eng, method, path, NULL, timeout_s, &b, e);
    if (status < 0)
        goto out;
    if (status >= 400) {
        engine_refused(&b, status, 409, e);
        goto out;
    }
    rc = 0;
out:
    buf_free(&b);
    return rc;
}

int engine_action(struct engine *eng, const char *id, const char *action, int allow_unmanaged,
                  struct errinfo *e)
{
    char path[300];

    if (check_id(id, e) < 0)
        return -1;
    if (strcmp(action, "start") && strcmp(action, "stop") && strcmp(action, "restart")) {
        errinfo_set(e, 400, "invalid_field", "action", "the action is start, stop or restart");
        return -1;
    }
    if (check_managed(eng, id, allow_unmanaged, e) < 0)
        return -1;
    /* stop and restart give the container 10 s before SIGKILL */
    snprintf(path, sizeof(path), "/" ENGINE_API "/containers/%s/%s%s", id, action,
             strcmp(action, "start") ? "?t=10" : "");
    return call_ok(eng, "POST", path, 60, e);
}

int engine_remove(struct engine *eng, const char *id, int allow_unmanaged, struct errinfo *e)
{
    char path[300];

    if (check_id(id, e) < 0 || check_managed(eng, id, allow_unmanaged, e) < 0)
        return -1;
    snprintf(path, sizeof(path), "/" ENGINE_API "/containers/%s?force=true&v=true", id);
    return call_ok(eng, "DELETE", path, 60, e);
}

/* The owner's workspace folder on this host, made when missing. */
static int workspace_dir(struct engine *eng, const char *owner, char *out, size_t outlen,
                         struct errinfo *e)
{
    if (!eng->workspace_root[0]) {
        errinfo_set(e, 409, "no_workspace", "workspace", "this agent has no workspace_root");
        return -1;
    }
    /* mkdir -p: a fresh host has no /var/lib/gpufleet-agent yet */
    snprintf(out, outlen, "%s", eng->workspace_root);
    for (char *p = out + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(out, 0755) < 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(out, 0755) < 0 && errno != EEXIST)
        goto fail;
    snprintf(out, outlen, "%s/%s", eng->workspace_root, owner);
    if (mkdir(out, 0755) < 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:
    errinfo_set(e, 500, "workspace", "workspace", "cannot make the workspace under %s: %s",
                eng->workspace_root, strerror(errno));
    return -1;
}

const char *engine_apps_root(const struct engine *eng)
{
    return eng->apps_root;
}

int engine_app_dir(const struct engine *eng, const char *name, char *out, size_t outlen)
{
    if (!eng->apps_root[0] || !ctrspec_valid_app_name(name))
        return -1;
    return snprintf(out, outlen, "%s/%s", eng->apps_root, name) < (int)outlen ? 0 : -1;
}

static json_t *labels_of(const struct ctrspec *s, const char *app_dir)
{
    char id[32];
    struct buf gpus;
    json_t *l;

    buf_init(&gpus, 0);
    for (size_t i = 0; i < s->ngpus; i++)
        buf_printf(&gpus, "%s%s", i ? "," : "", s->gpus[i]);
    snprintf(id, sizeof(id), "%lld", (long long)s->gf_id);
    l = json_pack("{s:s, s:s, s:s, s:s}", ENGINE_LABEL_MANAGED, "true", ENGINE_LABEL_OWNER,
                  s->owner, ENGINE_LABEL_ID, id, "gpufleet.gpus", gpus.data ? gpus.data : "");
    if (app_dir)
        compose_labels(l, s, app_dir);
    buf_free(&gpus);
    return l;
}

static json_t *docker_body(const struct ctrspec *s, const char *workspace, const char *app_dir)
{
    json_t *env = json_array(), *exposed = json_object(), *bindings = json_object();
    json_t *hc = json_object(), *body;
    const char *k;
    json_t *v;

    json_object_foreach(s->env, k, v) {
        char *kv = xmalloc(strlen(k) + json_string_length(v) + 2);
        sprintf(kv, "%s=%s", k, json_string_value(v));
        json_array_append_new(env, json_string(kv));
        free(kv);
    }
    for (size_t i = 0; i < s->nports; i++) {
        char key[16], host[8];
        snprintf(key, sizeof(key), "%u/%s", s->ports[i].container, s->ports[i].proto);
        snprintf(host, sizeof(host), "%u", s->ports[i].host);
        json_object_set_new(exposed, key, json_object());
        json_object_set_new(bindings, key, json_pack("[{s:s, s:s}]", "HostIp", s->host_ip[0] ? s->host_ip : "127.0.0.1", "HostPort", host));
    }
    if (s->ngpus) {
        json_t *ids = json_array();
        for (size_t i = 0; i < s->ngpus; i++)
            json_array_append_new(ids, json_string(s->gpus[i]));
        /* DeviceIDs only, never with Count: Docker refuses both */
        json_object_set_new(hc, "DeviceRequests",
                            json_pack("[{s:s, s:o, s:[[s]]}]", "Driver", "nvidia", "DeviceIDs",
                                      ids, "Capabilities", "gpu"));
    } else {
        /* an image's own NVIDIA_VISIBLE_DEVICES=all (CUDA images have it)
         * would hand out every GPU where nvidia is the default runtime */
        json_array_append_new(env, json_string(ENV_NO_GPUS));
    }
    json_object_set_new(hc, "PortBindings", bindings);
    json_object_set_new(hc, "NanoCpus", json_integer(s->nano_cpus));
    json_object_set_new(hc, "Memory", json_integer(s->memory_bytes));
    json_object_set_new(hc, "RestartPolicy", json_pack("{s:s}", "Name", "unless-stopped"));
    /* docker-init as PID 1: signals reach the program (a stop takes
     * milliseconds, not the 10 s grace) and zombies are reaped */
    json_object_set_new(hc, "Init", json_true());
    json_t *binds = json_array();
    if (workspace) {
        char *bind = xmalloc(strlen(workspace) + 16);
        sprintf(bind, "%s:/workspace", workspace);
        json_array_append_new(binds, json_string(bind));
        free(bind);
    }
    if (app_dir) {
        char *bind = xmalloc(strlen(app_dir) + 16);
        sprintf(bind, "%s:/app", app_dir);
        json_array_append_new(binds, json_string(bind));
        free(bind);
    }
    json_object_set_new(hc, "Binds", binds);
    body = json_pack("{s:s, s:o, s:o, s:o, s:o}", "Image", s->image, "Env", env, "Labels",
                     labels_of(s, app_dir), "ExposedPorts", exposed, "HostConfig", hc);
    if (app_dir)
        json_object_set_new(body, "WorkingDir", json_string("/app"));
    if (s->user[0])
        json_object_set_new(body, "User", json_string(s->user));
    /* an app's start command replaces the image's entrypoint too (vLLM's and
     * Ollama's images have one that would take it as arguments) */
    if (s->command)
        json_object_set(body, s->app[0] ? "Entrypoint" : "Cmd", s->command);
    if (s->tty) {
        json_object_set_new(body, "Tty", json_true());
        json_object_set_new(body, "OpenStdin", json_true());
    }
    return body;
}

static json_t *podman_body(const struct ctrspec *s, const char *workspace, const char *app_dir)
{
    json_t *ports = json_array(), *devices = json_array(), *env = json_deep_copy(s->env);
    json_t *limits = json_object(), *body;

    for (size_t i = 0; i < s->nports; i++)
        json_array_append_new(ports, json_pack("{s:s, s:i, s:i, s:s}", "host_ip",
                                               s->host_ip[0] ? s->host_ip : "127.0.0.1", "host_port",
                                               s->ports[i].host, "container_port",
                                               s->ports[i].container, "protocol", s->ports[i].proto));
    for (size_t i = 0; i < s->ngpus; i++) {
        char dev[CTRSPEC_UUID_LEN + 32];
        snprintf(dev, sizeof(dev), "nvidia.com/gpu=%s", s->gpus[i]);
        json_array_append_new(devices, json_pack("{s:s}", "path", dev));
    }
    if (!s->ngpus)
        json_object_set_new(env, "NVIDIA_VISIBLE_DEVICES", json_string("void"));
    if (s->nano_cpus)
        json_object_set_new(limits, "cpu", json_pack("{s:I, s:I}", "quota",
                                                      (json_int_t)(s->nano_cpus / 10000), "period",
                                                      (json_int_t)100000));
    if (s->memory_bytes)
        json_object_set_new(limits, "memory", json_pack("{s:I}", "limit", (json_int_t)s->memory_bytes));
    body = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s}", "name", s->name, "image",
                     s->image, "env", env, "labels", labels_of(s, app_dir), "portmappings", ports,
                     "devices", devices, "resource_limits", limits, "restart_policy",
                     "unless-stopped");
    if (s->command)
        json_object_set(body, s->app[0] ? "entrypoint" : "command", s->command);
    if (s->tty) {
        json_object_set_new(body, "terminal", json_true());
        json_object_set_new(body, "stdin", json_true());
    }
    json_t *mounts = json_array();
    if (workspace)
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:[s]}", "destination", "/workspace", "source",
                                                workspace, "type", "bind", "options", "rbind"));
    if (app_dir) {
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:[s]}", "destination", "/app", "source", app_dir,
                                                "type", "bind", "options", "rbind"));
        json_object_set_new(body, "work_dir", json_string("/app"));
    }
    json_object_set_new(body, "mounts", mounts);
    if (s->user[0])
        json_object_set_new(body, "user", json_string(s->user));
    return body;
}

/* An app's folder, cloned before its container is made: its compose file
 * written there now, from the spec the container is made from. */
static int app_folder(struct engine *eng, const struct ctrspec *s, char *dir, size_t dirlen, struct errinfo *e)
{
    struct stat st;

    if (engine_app_dir(eng, s->app, dir, dirlen) < 0) {
        errinfo_set(e, 409, "no_apps_root", "app", "this agent has no apps_root");
        return -1;
    }
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        errinfo_set(e, 409, "no_app_folder", "app", "%s is not there: the app is installed (cloned) first", dir);
        return -1;
    }
    return compose_write(s, dir, e);
}

/* Podman takes only GPUs its CDI specs name; say how to make one. */
static int check_cdi(struct engine *eng, const struct ctrspec *s, struct errinfo *e)
{
    json_t *names;
    int rc = 0;

    if (!s->ngpus)
        return 0;
    names = cdi_devices(eng);
    for (size_t i = 0; i < s->ngpus && !rc; i++) {
        size_t j;
        json_t *n;
        int found = 0;
        json_array_foreach(names, j, n)
            found |= !strcmp(json_string_value(n), s->gpus[i]);
        if (!found) {
            errinfo_set(e, 409, "no_cdi_spec", "gpus",
                        "this Podman host has no CDI spec naming %s: run nvidia-ctk cdi generate "
                        "--device-name-strategy=uuid --output=/etc/cdi/nvidia.yaml",
                        s->gpus[i]);
            rc = -1;
        }
    }
    json_decref(names);
    return rc;
}

json_t *engine_create(struct engine *eng, const struct ctrspec *s, struct errinfo *e)
{
    char ws[4200], path[300], app_dir[4200];
    json_t *body = NULL, *ans = NULL, *out = NULL;
    char *text = NULL;
    long status;
    int kind = kind_of(eng, e);

    if (kind < 0)
        return NULL;
    if (s->workspace && workspace_dir(eng, s->owner, ws, sizeof(ws), e) < 0)
        return NULL;
    if (s->app[0] && app_folder(eng, s, app_dir, sizeof(app_dir), e) < 0)
        return NULL;
    if (kind == KIND_PODMAN) {
        if (check_cdi(eng, s, e) < 0)
            return NULL;
        body = podman_body(s, s->workspace ? ws : NULL, s->app[0] ? app_dir : NULL);
        snprintf(path, sizeof(path), "/" ENGINE_LIBPOD "/libpod/containers/create");
    } else {
        body = docker_body(s, s->workspace ? ws : NULL, s->app[0] ? app_dir : NULL);
        snprintf(path, sizeof(path), "/" ENGINE_API "/containers/create?name=%s", s->name);
    }
    text = json_dumps(body, JSON_COMPACT);
    ans = engine_call_json(eng, "POST", path, text, 60, &status, e);
    if (!ans)
        goto out;
    if (!json_is_string(json_object_get(ans, "Id"))) {
        errinfo_set(e, 502, "engine_answer", NULL, "the engine's create answer has no Id");
        goto out;
    }
    out = json_pack("{s:O}", "id", json_object_get(ans, "Id"));
out:
    free(text);
    json_decref(body);
    json_decref(ans);
    return out;
}
