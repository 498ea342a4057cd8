/* The apply job: a thread per job, a bounded pool of workers taking hosts
 * in turn. A host's state and step change under the job's lock and are
 * announced to browsers; the SSH work itself holds no lock. */
#include "fleetops.h"

#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/websocket.h"
#include "../lib/xalloc.h"
#include "bmc.h"
#include "fleet.h"
#include "fleetfile.h"
#include "options.h"
#include "registry.h"
#include "server.h"
#include "sshop.h"

#define AGENT_BIN_MAX (64u << 20)
#define HEALTHY_WITHIN_MS 20000

struct host {
    json_t *spec; /* the fleet file's entry, or the registered server to remove */
    char action[16], state[12], step[16], detail[600];
    int64_t started_ms, ms;
};

struct job {
    long id;
    int prune, done;
    json_t *fleet;
    struct host *hosts;
    size_t n, next;
    int64_t started_ms, finished_ms;
    char *agent_bin; /* the binary every host gets */
    size_t agent_len;
};

struct fleetops {
    struct server_app *app;
    pthread_mutex_t lock;
    struct job *job; /* the newest */
    pthread_t thread;
    int has_thread, stop, starting; /* starting: a job is being prepared */
    long last_id;
};

struct fleetops *fleetops_new(struct server_app *app)
{
    struct fleetops *f = xcalloc(1, sizeof(*f));
    f->app = app;
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++)
        json_decref(j->hosts[i].spec);
    free(j->hosts);
    json_decref(j->fleet);
    free(j->agent_bin);
    free(j);
}

void fleetops_free(struct fleetops *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    f->stop = 1; /* hosts not begun are left; those begun finish */
    pthread_mutex_unlock(&f->lock);
    if (f->has_thread)
        pthread_join(f->thread, NULL);
    job_free(f->job);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static void announce(struct fleetops *f)
{
    static const char msg[] = "{\"type\":\"fleet_apply\"}";
    if (f->app->hub)
        ws_hub_broadcast(f->app->hub, msg, sizeof(msg) - 1);
}

/* A host's progress: step (NULL: unchanged) and state with the detail. */
static void progress(struct fleetops *f, struct host *h, const char *step, const char *state, const char *detail)
{
    pthread_mutex_lock(&f->lock);
    if (step)
        snprintf(h->step, sizeof(h->step), "%s", step);
    snprintf(h->state, sizeof(h->state), "%s", state);
    snprintf(h->detail, sizeof(h->detail), "%s", detail ? detail : "");
    h->ms = now_wall_ms() - h->started_ms;
    pthread_mutex_unlock(&f->lock);
    announce(f);
}

static const char *spec_str(const json_t *spec, const char *key)
{
    return json_string_value(json_object_get(spec, key));
}

/* ---- the steps ---- */

static size_t discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

/* Whether http://address:port/healthz answers 200 within the bound. */
static int wait_healthy(const char *address, int port)
{
    char url[400];
    snprintf(url, sizeof(url), strchr(address, ':') ? "http://[%s]:%d/healthz" : "http://%s:%d/healthz", address,
             port);
    int64_t until = now_mono_ns() / 1000000 + HEALTHY_WITHIN_MS;
    while (now_mono_ns() / 1000000 < until) {
        CURL *e = curl_easy_init();
        long status = 0;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1000L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        if (curl_easy_perform(e) == CURLE_OK)
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(e);
        if (status == 200)
            return 0;
        struct timespec ts = {0, 250000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

typedef int (*run_fn)(struct sshop *s, const char *cmd, const void *in, size_t inlen, struct buf *out, char *err,
                      size_t errlen);

/* Runs a fixed command as how runs it; on failure the detail says what
 * failed, with the command's own words. 0 or -1. */
static int run_via(run_fn how, struct sshop *s, const char *cmd, const void *in, size_t inlen, const char *what,
                   char *detail, size_t cap)
{
    struct buf out;
    char err[300];
    buf_init(&out, 1u << 20);
    int rc = how(s, cmd, in, inlen, &out, err, sizeof(err));
    if (rc != 0) {
        /* the command's own words (its last 300 bytes trimmed), or ours */
        const char *o = out.data ? out.data : "";
        size_t olen = out.len;
        while (olen && (o[olen - 1] == '\n' || o[olen - 1] == ' '))
            olen--;
        if (rc < 0 || !olen)
            snprintf(detail, cap, "%s: %s", what, rc < 0 ? err : "failed");
        else if (memmem(o, olen, "sudo:", 5)) /* a non-root SSH user without it */
            snprintf(detail, cap, "%s: the SSH user needs passwordless sudo (sudo said: %.*s)", what,
                     (int)(olen > 200 ? 200 : olen), o);
        else
            snprintf(detail, cap, "%s: %.*s", what, (int)(olen > 300 ? 300 : olen), o);
    }
    buf_free(&out);
    return rc == 0 ? 0 : -1;
}

/* A command of the install: as root (through sudo for another SSH user). */
static int run(struct sshop *s, const char *cmd, const void *in, size_t inlen, const char *what, char *detail,
               size_t cap)
{
    return run_via(sshop_run_root, s, cmd, in, inlen, what, detail, cap);
}

/* Whether port is held by a listening socket on the host (its
 * /proc/net/tcp*), and whether our agent's unit is what runs there. */
static int port_free(struct sshop *s, int port, char *detail, size_t cap)
{
    struct buf out;
    char err[300], want[16];
    buf_init(&out, 4u << 20);
    int rc = sshop_run(s, "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; echo; systemctl is-active gpufleet-agent;"
                          " grep '^listen:' /etc/gpufleet/agent.yaml 2>/dev/null",
                       NULL, 0, &out, err, sizeof(err));
    buf_append(&out, "", 1);
    snprintf(want, sizeof(want), ":%04X ", port);
    int busy = 0;
    for (const char *l = out.data; rc >= 0 && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *local = strchr(l, ':'), *st;
        local = local ? strchr(local + 1, ':') : NULL; /* "  0: ADDR:PORT REM:PORT ST" */
        if (local && !strncmp(local, want, strlen(want)) && (st = strchr(local + strlen(want), ' ')) &&
            !strncmp(st + 1, "0A", 2))
            busy = 1;
    }
    /* the port is ours when our running agent is configured on it */
    char listen[40];
    snprintf(listen, sizeof(listen), ":%d\n", port);
    const char *conf = out.data ? strstr(out.data, "\nlisten:") : NULL;
    int ours = out.data && strstr(out.data, "\nactive") && conf && strstr(conf, listen);
    buf_free(&out);
    if (rc < 0) {
        snprintf(detail, cap, "%s", err);
        return -1;
    }
    if (busy && !ours) {
        snprintf(detail, cap, "port %d already in use on the host (not by gpufleet-agent)", port);
        return -1;
    }
    return 0;
}

/* The fleet key refused and a password given (the secrets file): in with
 * the password, and the fleet key added to the user's authorized_keys, so
 * the password is needed only once. NULL with detail saying both. */
static struct sshop *first_contact(struct fleetops *f, struct sshop_target *t, const char *password, char *detail,
                                   size_t cap)
{
    char pub[600], err[300];
    struct sshop *s;
    if (!password || !strstr(detail, "authentication refused") ||
        sshop_fleet_key(f->app->opts->data_dir, pub, sizeof(pub) - 1, err, sizeof(err)) < 0)
        return NULL;
    t->password = password;
    s = sshop_connect(t, err, sizeof(err));
    t->password = NULL;
    if (!s) {
        snprintf(detail, cap, "%s; with the password too: %s", strstr(detail, "authentication refused") ? "the key was refused" : detail, err);
        return NULL;
    }
    strcat(pub, "\n");
    if (run_via(sshop_run, s, "umask 077 && mkdir -p ~/.ssh && cat > ~/.ssh/gpufleet.pub && (grep -qxF -f ~/.ssh/gpufleet.pub"
               " ~/.ssh/authorized_keys 2>/dev/null || cat ~/.ssh/gpufleet.pub >> ~/.ssh/authorized_keys)"
               " && rm -f ~/.ssh/gpufleet.pub",
            pub, strlen(pub), "cannot add the fleet key", detail, cap) < 0) {
        sshop_close(s);
        return NULL;
    }
    return s;
}

static int step_connect(struct fleetops *f, struct host *h, struct sshop **s, int check_port, char *detail,
                        size_t cap)
{
    const json_t *ssh = json_object_get(h->spec, "ssh");
    struct sshop_target t = {.host = spec_str(h->spec, "address"), .user = spec_str(ssh, "user"),
                             .port = (int)json_integer_value(json_object_get(ssh, "port")),
                             .key_file = spec_str(ssh, "key"), .pins_dir = f->app->opts->data_dir,
                             .timeout_ms = 10000};
    progress(f, h, "connect", "running", NULL);
    if (!(*s = sshop_connect(&t, detail, cap)) && !(*s = first_contact(f, &t, spec_str(ssh, "password"), detail, cap)))
        return -1;
    /* root, or passwordless sudo: asked now, not found out halfway through */
    if (run(*s, "true", NULL, 0, "root on the host", detail, cap) < 0)
        return -1;
    if (run_via(sshop_run, *s, "test -d /run/systemd/system", NULL, 0, "no systemd on the host", detail, cap) < 0) {
        snprintf(detail, cap, "no systemd on the host (/run/systemd/system is missing)");
        return -1;
    }
    return check_port ? port_free(*s, (int)json_integer_value(json_object_get(h->spec, "agent_port")), detail, cap)
                      : 0;
}

static int step_upload(struct fleetops *f, struct job *j, struct host *h, struct sshop *s, char *detail, size_t cap)
{
    progress(f, h, "upload", "running", NULL);
    if (run(s, "umask 022 && mkdir -p /usr/local/bin && cat > /usr/local/bin/gpufleet-agent.new"
               " && chmod 755 /usr/local/bin/gpufleet-agent.new",
            j->agent_bin, j->agent_len, "upload", detail, cap) < 0)
        return -1;
    /* a binary that cannot run there (a library missing) is found now,
     * before the running agent is replaced */
    if (run(s, "/usr/local/bin/gpufleet-agent.new --version 2>&1", NULL, 0,
            "the agent does not run on the host", detail, cap) < 0) {
        char ignored[64];
        run(s, "rm -f /usr/local/bin/gpufleet-agent.new", NULL, 0, "cleanup", ignored, sizeof(ignored));
        return -1;
    }
    return run(s, "mv -f /usr/local/bin/gpufleet-agent.new /usr/local/bin/gpufleet-agent", NULL, 0, "upload",
               detail, cap);
}

static int step_configure(struct fleetops *f, struct job *j, struct host *h, struct sshop *s, const char *token,
                          char *detail, size_t cap)
{
    char conf[256];
    progress(f, h, "configure", "running", NULL);
    snprintf(conf, sizeof(conf), "# written by gpufleet fleet apply (site %s)\nlisten: 0.0.0.0:%lld\ninterval_ms: %lld\n",
             spec_str(j->fleet, "site"), (long long)json_integer_value(json_object_get(h->spec, "agent_port")),
             (long long)json_integer_value(json_object_get(json_object_get(j->fleet, "agent"), "interval_ms")));
    return run(s, "id gpufleet-agent >/dev/null 2>&1 || useradd --system --no-create-home"
                  " --shell /usr/sbin/nologin gpufleet-agent 2>&1",
               NULL, 0, "cannot add the user gpufleet-agent", detail, cap) < 0 ||
                   run(s, "umask 022 && mkdir -p /etc/gpufleet && cat > /etc/gpufleet/agent.yaml", conf,
                       strlen(conf), "configure", detail, cap) < 0 ||
                   run(s, "umask 077 && cat > /etc/gpufleet/agent.token.new && chgrp gpufleet-agent"
                          " /etc/gpufleet/agent.token.new && chmod 640 /etc/gpufleet/agent.token.new"
                          " && mv -f /etc/gpufleet/agent.token.new /etc/gpufleet/agent.token",
                       token, strlen(token), "configure", detail, cap) < 0 ||
                   run(s, "umask 022 && cat > /etc/systemd/system/gpufleet-agent.service", gf_agent_unit,
                       strlen(gf_agent_unit), "configure", detail, cap) < 0
               ? -1
               : 0;
}

static int step_start_verify(struct fleetops *f, struct host *h, struct sshop *s, char *detail, size_t cap)
{
    progress(f, h, "start", "running", NULL);
    if (run(s, "systemctl daemon-reload && systemctl enable gpufleet-agent 2>&1 && systemctl restart"
               " gpufleet-agent 2>&1",
            NULL, 0, "systemd did not start the agent", detail, cap) < 0)
        return -1;
    progress(f, h, "verify", "running", NULL);
    if (wait_healthy(spec_str(h->spec, "address"), (int)json_integer_value(json_object_get(h->spec, "agent_port"))) == 0)
        return 0;
    struct buf out;
    char err[300];
    buf_init(&out, 64u << 10);
    sshop_run_root(s, "journalctl -u gpufleet-agent -n 3 --no-pager -o cat 2>&1", NULL, 0, &out, err, sizeof(err));
    buf_append(&out, "", 1);
    snprintf(detail, cap, "the agent did not become healthy within %d s: %.400s", HEALTHY_WITHIN_MS / 1000,
             out.data ? out.data : "");
    for (char *p = detail; *p; p++)
        *p = *p == '\n' ? ' ' : *p;
    buf_free(&out);
    return -1;
}

/* How each installed server was reached (DATA/fleet_ssh.json: name ->
 * {user, port, key}), so that one the file no longer names can still be
 * reached to uninstall it. Takes the job's lock (workers write it at once). */
static void remember_ssh(struct fleetops *f, const char *name, const json_t *ssh)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/fleet_ssh.json", f->app->opts->data_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    pthread_mutex_lock(&f->lock);
    json_t *all = json_load_file(path, 0, NULL);
    all = json_is_object(all) ? all : (json_decref(all), json_object());
    if (ssh) {
        json_t *keep = json_deep_copy(ssh);
        json_object_del(keep, "password"); /* never on disk */
        json_object_set_new(all, name, keep);
    }
    else
        json_object_del(all, name);
    if (json_dump_file(all, tmp, JSON_COMPACT | JSON_SORT_KEYS) == 0)
        rename(tmp, path);
    json_decref(all);
    pthread_mutex_unlock(&f->lock);
}

static json_t *recall_ssh(struct fleetops *f, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/fleet_ssh.json", f->app->opts->data_dir);
    json_t *all = json_load_file(path, 0, NULL), *one = json_incref(json_object_get(all, name));
    json_decref(all);
    return one;
}

static int64_t registered_id(struct server_app *app, const char *name)
{
    json_t *list = reg_list(app->reg), *s;
    size_t i;
    int64_t id = 0;
    json_array_foreach(list, i, s)
    {
        if (!strcmp(json_string_value(json_object_get(s, "name")), name))
            id = json_integer_value(json_object_get(s, "id"));
    }
    json_decref(list);
    return id;
}

/* The server's BMC as the file says (polled from then on); a local
 * setting, so unchanged servers get it too. 0, or -1 with detail. */
static int set_bmc(struct fleetops *f, struct host *h, char *detail, size_t cap)
{
    struct errinfo e;
    json_t *bmc = json_object_get(h->spec, "bmc");
    if (!bmc || !f->app->bmc)
        return 0;
    const char *user = spec_str(bmc, "user");
    json_t *set = json_pack("{s:O, s:s, s:O*}", "address", json_object_get(bmc, "address"), "user",
                            user ? user : "ADMIN", "password", json_object_get(bmc, "password"));
    int rc = bmc_set(f->app->bmc, spec_str(h->spec, "name"), set, &e);
    json_decref(set);
    if (rc < 0)
        snprintf(detail, cap, "its BMC was refused: %s", e.message);
    return rc;
}

static int step_register(struct fleetops *f, struct host *h, const char *token, char *detail, size_t cap)
{
    struct errinfo e;
    progress(f, h, "register", "running", NULL);
    json_t *body = json_pack("{s:O, s:O, s:O, s:O, s:s}", "name", json_object_get(h->spec, "name"), "address",
                             json_object_get(h->spec, "address"), "agent_port", json_object_get(h->spec, "agent_port"),
                             "labels", json_object_get(h->spec, "labels"), "agent_token", token);
    int64_t id = registered_id(f->app, spec_str(h->spec, "name"));
    json_t *out = id ? reg_update(f->app->reg, id, body, &e) : reg_create(f->app->reg, body, &e);
    json_decref(body);
    if (!out) {
        snprintf(detail, cap, "the registry refused it: %s", e.message);
        return -1;
    }
    json_decref(out);
    if (set_bmc(f, h, detail, cap) < 0)
        return -1;
    if (f->app->hub) {
        static const char msg[] = "{\"type\":\"servers\"}";
        ws_hub_broadcast(f->app->hub, msg, sizeof(msg) - 1);
    }
    return 0;
}

static void install(struct fleetops *f, struct job *j, struct host *h)
{
    char detail[600] = "", token[64];
    unsigned char raw[32];
    struct sshop *s = NULL;

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(token, sizeof(token), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (step_connect(f, h, &s, 1, detail, sizeof(detail)) < 0 || step_upload(f, j, h, s, detail, sizeof(detail)) < 0 ||
        step_configure(f, j, h, s, token, detail, sizeof(detail)) < 0 ||
        step_start_verify(f, h, s, detail, sizeof(detail)) < 0 || step_register(f, h, token, detail, sizeof(detail)) < 0)
        progress(f, h, NULL, "failed", detail);
    else {
        remember_ssh(f, spec_str(h->spec, "name"), json_object_get(h->spec, "ssh"));
        progress(f, h, "register", "ok", h->action[0] == 'i' ? "installed and registered" : "updated");
    }
    sodium_memzero(token, sizeof(token));
    sshop_close(s);
}

static void uninstall(struct fleetops *f, struct host *h)
{
    char detail[600] = "";
    struct sshop *s = NULL;
    struct errinfo e;
    const char *name = spec_str(h->spec, "name");

    if (step_connect(f, h, &s, 0, detail, sizeof(detail)) < 0) {
        progress(f, h, NULL, "failed", detail);
        sshop_close(s);
        return;
    }
    progress(f, h, "start", "running", "uninstalling");
    if (run(s, "systemctl disable --now gpufleet-agent 2>/dev/null; rm -f /etc/systemd/system/gpufleet-agent.service"
               " /usr/local/bin/gpufleet-agent && rm -rf /etc/gpufleet && systemctl daemon-reload",
            NULL, 0, "uninstall", detail, sizeof(detail)) < 0) {
        progress(f, h, NULL, "failed", detail);
        sshop_close(s);
        return;
    }
    sshop_close(s);
    int64_t id = registered_id(f->app, name);
    if (id && reg_delete(f->app->reg, id, &e) == 0 && f->app->fleet)
        fleet_forget(f->app->fleet, name);
    remember_ssh(f, name, NULL);
    progress(f, h, "register", "removed", "agent uninstalled, server removed");
}

/* An unchanged server whose agent answered its last scrape with our
 * version needs nothing; one that did not (stopped, or another version:
 * an upgrade) is installed again. */
static int healthy_and_current(struct fleetops *f, struct host *h)
{
    char version[32];
    int64_t ts;
    const char *name = spec_str(h->spec, "name");
    json_t *list = reg_list(f->app->reg), *s;
    size_t i;
    int online = 0;
    json_array_foreach(list, i, s)
    {
        if (!strcmp(spec_str(s, "name"), name))
            online = !strcmp(spec_str(s, "status"), "online"); /* the last scrape answered */
    }
    json_decref(list);
    return online && f->app->fleet && fleet_agent(f->app->fleet, name, version, sizeof(version), &ts) == 0 &&
           !strcmp(version, GPUFLEET_VERSION);
}

static void do_host(struct fleetops *f, struct job *j, struct host *h)
{
    h->started_ms = now_wall_ms();
    if (!strcmp(h->action, "remove")) {
        if (j->prune)
            uninstall(f, h);
        else
            progress(f, h, NULL, "kept", "registered but not in the file: kept (prune removes it)");
        return;
    }
    if (!strcmp(h->action, "unchanged") && healthy_and_current(f, h)) {
        char detail[600];
        if (set_bmc(f, h, detail, sizeof(detail)) < 0)
            progress(f, h, NULL, "failed", detail);
        else
            progress(f, h, NULL, "unchanged", "registered as in the file, agent up and current");
        return;
    }
    install(f, j, h);
}

static void *worker(void *arg)
{
    struct fleetops *f = arg;
    struct job *j = f->job;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        size_t i = j->next < j->n && !f->stop ? j->next++ : SIZE_MAX;
        pthread_mutex_unlock(&f->lock);
        if (i == SIZE_MAX)
            return NULL;
        do_host(f, j, &j->hosts[i]);
    }
}

/* The job's passwords, overwritten and dropped once it is done. */
static void forget_passwords(json_t *fleet)
{
    size_t i;
    json_t *srv;
    json_array_foreach(json_object_get(fleet, "servers"), i, srv)
    {
        static const char *const holders[] = {"ssh", "bmc"};
        for (int k = 0; k < 2; k++) {
            json_t *o = json_object_get(srv, holders[k]), *pw = json_object_get(o, "password");
            if (json_is_string(pw))
                sodium_memzero((void *)json_string_value(pw), json_string_length(pw));
            json_object_del(o, "password");
        }
    }
}

static void *job_main(void *arg)
{
    struct fleetops *f = arg;
    struct job *j = f->job;
    size_t nw = (size_t)f->app->opts->fleet_apply_parallel;
    nw = nw < j->n ? nw : j->n;
    pthread_t *t = xcalloc(nw ? nw : 1, sizeof(*t));
    for (size_t i = 0; i < nw; i++)
        pthread_create(&t[i], NULL, worker, f);
    for (size_t i = 0; i < nw; i++)
        pthread_join(t[i], NULL);
    free(t);
    pthread_mutex_lock(&f->lock);
    forget_passwords(j->fleet);
    j->done = 1;
    j->finished_ms = now_wall_ms();
    pthread_mutex_unlock(&f->lock);
    log_info("fleet apply %ld: done in %lld ms", j->id, (long long)(j->finished_ms - j->started_ms));
    announce(f);
    return NULL;
}

/* The agent binary: the agent_binary setting, or gpufleet-agent beside
 * this program (never a path from the request). */
static char *read_agent(const struct fleetops *f, size_t *len, struct errinfo *err)
{
    char path[PATH_MAX + 32] = "", self[PATH_MAX] = "";
    const char *p = f->app->opts->agent_binary && *f->app->opts->agent_binary ? f->app->opts->agent_binary : NULL;
    if (!p) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(path, sizeof(path), "%s/gpufleet-agent", self);
        p = path;
    }
    struct buf b;
    buf_init(&b, AGENT_BIN_MAX);
    int rc = buf_append_file(&b, p);
    if (rc < 0 || b.len == 0) {
        errinfo_set(err, 500, "internal", "agent_binary", "the agent binary %.200s %s (the agent_binary setting)", p,
                    rc == BUF_TOOBIG ? "is larger than 64 MiB" : "cannot be read");
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return buf_detach(&b, NULL);
}

long fleetops_start(struct fleetops *f, json_t *fleet, int prune, struct errinfo *err)
{
    /* checked and claimed under one lock: two requests at once get one job */
    pthread_mutex_lock(&f->lock);
    int busy = f->starting || (f->job && !f->job->done);
    long running = f->job ? f->job->id : 0;
    f->starting |= !busy;
    pthread_mutex_unlock(&f->lock);
    if (busy) {
        errinfo_set(err, 409, "conflict", NULL, "an apply is running (job %ld)", running);
        json_decref(fleet);
        return -1;
    }
    struct job *j = xcalloc(1, sizeof(*j));
    j->fleet = fleet;
    j->prune = prune;
    if (!(j->agent_bin = read_agent(f, &j->agent_len, err))) {
        job_free(j);
        pthread_mutex_lock(&f->lock);
        f->starting = 0;
        pthread_mutex_unlock(&f->lock);
        return -1;
    }
    json_t *reg = reg_list(f->app->reg), *plan = fleetfile_plan(fleet, reg), *c;
    size_t i;
    j->hosts = xcalloc(json_array_size(json_object_get(plan, "changes")) + 1, sizeof(*j->hosts));
    json_array_foreach(json_object_get(plan, "changes"), i, c)
    {
        struct host *h = &j->hosts[j->n++];
        const char *name = json_string_value(json_object_get(c, "server"));
        snprintf(h->action, sizeof(h->action), "%s", json_string_value(json_object_get(c, "action")));
        snprintf(h->state, sizeof(h->state), "waiting");
        /* a server to remove is reached as registered, with the site's SSH defaults */
        for (size_t k = 0; !h->spec && k < json_array_size(json_object_get(fleet, "servers")); k++)
            if (!strcmp(spec_str(json_array_get(json_object_get(fleet, "servers"), k), "name"), name))
                h->spec = json_incref(json_array_get(json_object_get(fleet, "servers"), k));
        for (size_t k = 0; !h->spec && k < json_array_size(reg); k++)
            if (!strcmp(spec_str(json_array_get(reg, k), "name"), name)) {
                json_t *ssh = recall_ssh(f, name);
                h->spec = json_deep_copy(json_array_get(reg, k));
                json_object_set_new(h->spec, "ssh", ssh ? ssh : json_deep_copy(json_object_get(fleet, "ssh")));
            }
    }
    json_decref(plan);
    json_decref(reg);
    if (f->has_thread)
        pthread_join(f->thread, NULL); /* the previous job: done, it takes no lock now */
    pthread_mutex_lock(&f->lock);
    job_free(f->job);
    f->job = j;
    j->id = ++f->last_id;
    j->started_ms = now_wall_ms();
    f->has_thread = pthread_create(&f->thread, NULL, job_main, f) == 0;
    f->starting = 0;
    pthread_mutex_unlock(&f->lock);
    log_info("fleet apply %ld: %zu servers of site %s%s", j->id, j->n, spec_str(fleet, "site"),
             prune ? ", pruning" : "");
    return j->id;
}

json_t *fleetops_status(struct fleetops *f)
{
    static const char *const states[] = {"ok", "unchanged", "failed", "kept", "removed"};
    json_int_t counts[5] = {0};
    pthread_mutex_lock(&f->lock);
    struct job *j = f->job;
    if (!j) {
        pthread_mutex_unlock(&f->lock);
        return NULL;
    }
    json_t *hosts = json_array();
    for (size_t i = 0; i < j->n; i++) {
        struct host *h = &j->hosts[i];
        for (int k = 0; k < 5; k++)
            counts[k] += !strcmp(h->state, states[k]);
        json_array_append_new(hosts, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "server", spec_str(h->spec, "name"),
                                               "action", h->action, "state", h->state, "step", h->step, "detail",
                                               h->detail, "ms", (json_int_t)h->ms));
    }
    json_t *out = json_pack("{s:I, s:s, s:I, s:I, s:b, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "id", (json_int_t)j->id,
                            "state", j->done ? "done" : "running", "started_ms", (json_int_t)j->started_ms,
                            "finished_ms", (json_int_t)j->finished_ms, "prune", j->prune, "hosts", hosts, "summary",
                            "ok", counts[0], "unchanged", counts[1], "failed", counts[2], "kept", counts[3],
                            "removed", counts[4]);
    pthread_mutex_unlock(&f->lock);
    return out;
}

void fleetops_ssh_of(struct fleetops *f, const char *name, char *user, size_t userlen, int *port,
                     char *key, size_t keylen)
{
    json_t *ssh = recall_ssh(f, name);
    const char *u = json_string_value(json_object_get(ssh, "user"));
    const char *k = json_string_value(json_object_get(ssh, "key"));
    json_int_t p = json_integer_value(json_object_get(ssh, "port"));
    snprintf(user, userlen, "%s", u && *u ? u : "root");
    *port = p > 0 && p < 65536 ? (int)p : 22;
    snprintf(key, keylen, "%s", k ? k : "");
    json_decref(ssh);
}
