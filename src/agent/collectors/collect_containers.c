/* Per-container usage: CPU and memory from each container's cgroup (v1 or
 * v2, Docker's and Podman's layouts), GPU memory from the NVML process
 * list (the nvml collector runs first and leaves it in the snapshot), and
 * the GPUs the container holds. Names and owners come from the engine,
 * asked by a thread of this collector every few seconds, so a slow engine
 * never delays a sample. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/log.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../engine.h"
#include "../procfs.h"

#define REFRESH_MS 5000

struct ctr_ctx {
    struct engine *eng;
    const struct agent_options *opts;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    json_t *list; /* engine_list's answer, running containers; under lock */
    struct buf raw;
};

static void *refresher(void *arg)
{
    struct ctr_ctx *c = arg;
    int failing = 0;

    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        pthread_mutex_unlock(&c->lock);
        struct errinfo e = {0};
        json_t *list = engine_list(c->eng, &e);
        if (!list && !failing)
            log_debug("containers: %s", e.message); /* no engine here is normal */
        failing = !list;
        pthread_mutex_lock(&c->lock);
        json_decref(c->list);
        c->list = list;
        if (!c->stop)
            now_cond_wait_until(&c->wake, &c->lock, now_mono_ns() + REFRESH_MS * 1000000LL);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static int ctr_init(void **ctx, const struct agent_options *opts)
{
    struct ctr_ctx *c = xcalloc(1, sizeof(*c));

    c->opts = opts;
    c->eng = engine_new(opts->engine_socket, opts->cdi_dirs, opts->workspace_root, opts->apps_root);
    pthread_mutex_init(&c->lock, NULL);
    now_cond_init(&c->wake);
    buf_init(&c->raw, 1 << 20);
    if (pthread_create(&c->thread, NULL, refresher, c)) {
        engine_free(c->eng);
        free(c);
        return -1;
    }
    *ctx = c;
    return 0;
}

/* A number from the first line of a cgroup file ("max" reads as 0). */
static int read_num(struct ctr_ctx *c, const char *rel, double *v)
{
    char *end;
    if (procfs_read(c->opts->proc_root, rel, &c->raw) < 0 || !c->raw.len)
        return -1;
    *v = strtod(c->raw.data, &end);
    if (end == c->raw.data)
        *v = 0;
    return 0;
}

/* usage_usec of a v2 cpu.stat, in seconds. */
static int read_cpu_v2(struct ctr_ctx *c, const char *rel, double *v)
{
    if (procfs_read(c->opts->proc_root, rel, &c->raw) < 0 || !c->raw.len)
        return -1;
    const char *p = strstr(c->raw.data, "usage_usec ");
    if (!p)
        return -1;
    *v = strtod(p + 11, NULL) / 1e6;
    return 0;
}

struct usage {
    double cpu_seconds, memory_bytes, memory_limit_bytes, gpu_memory_bytes, gpu_util;
};

/* The container's cgroup under the engines' layouts (cgroupfs and systemd
 * drivers), v2 first. 0, or -1 when none is found. */
static int cgroup_usage(struct ctr_ctx *c, const char *id, struct usage *u)
{
    static const char *dirs[] = {"docker/%s", "system.slice/docker-%s.scope",
                                 "libpod_parent/libpod-%s", "machine.slice/libpod-%s.scope"};
    char d[200], p[300];

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(d, sizeof(d), dirs[i], id);
        snprintf(p, sizeof(p), "sys/fs/cgroup/%s/memory.current", d);
        if (read_num(c, p, &u->memory_bytes) == 0) {
            snprintf(p, sizeof(p), "sys/fs/cgroup/%s/memory.max", d);
            read_num(c, p, &u->memory_limit_bytes);
            snprintf(p, sizeof(p), "sys/fs/cgroup/%s/cpu.stat", d);
            read_cpu_v2(c, p, &u->cpu_seconds);
            return 0;
        }
        snprintf(p, sizeof(p), "sys/fs/cgroup/memory/%s/memory.usage_in_bytes", d);
        if (read_num(c, p, &u->memory_bytes) == 0) {
            snprintf(p, sizeof(p), "sys/fs/cgroup/memory/%s/memory.limit_in_bytes", d);
            read_num(c, p, &u->memory_limit_bytes);
            /* v1's "no limit" is a huge page-rounded number */
            if (u->memory_limit_bytes > 1e18)
                u->memory_limit_bytes = 0;
            snprintf(p, sizeof(p), "sys/fs/cgroup/cpuacct/%s/cpuacct.usage", d);
            if (read_num(c, p, &u->cpu_seconds) == 0)
                u->cpu_seconds /= 1e9;
            return 0;
        }
    }
    return -1;
}

/* GPU memory and SM utilization of the container's processes, from the
 * nvml collector's list (utilization summed over its GPUs: two GPUs busy
 * are 200). */
static void gpu_use(const json_t *procs, const char *id, struct usage *u)
{
    size_t i;
    json_t *p;
    json_array_foreach(procs, i, p)
        if (!strcmp(json_string_value(json_object_get(p, "container_id")) ?: "", id)) {
            u->gpu_memory_bytes += (double)json_integer_value(json_object_get(p, "used_memory_bytes"));
            u->gpu_util += json_number_value(json_object_get(p, "sm_util_percent"));
        }
}

static const struct {
    const char *name;
    enum expo_type type;
    const char *help;
} families[] = {
    {"gpufleet_container_cpu_seconds_total", EXPO_COUNTER, "CPU time the container's processes used."},
    {"gpufleet_container_memory_bytes", EXPO_GAUGE, "Memory the container's cgroup uses."},
    {"gpufleet_container_memory_limit_bytes", EXPO_GAUGE, "The container's memory limit (0: none)."},
    {"gpufleet_container_gpu_memory_bytes", EXPO_GAUGE, "GPU memory the container's processes use."},
    {"gpufleet_container_gpu_utilization_percent", EXPO_GAUGE,
     "SM utilization of the container's processes, summed over its GPUs (NVML's process samples)."},
    {"gpufleet_container_gpus", EXPO_GAUGE, "GPUs the container holds (gpufleet's ledger)."},
};

static int ctr_sample(void *ctx, struct sample_ctx *sc)
{
    struct ctr_ctx *c = ctx;
    json_t *list, *x, *out = json_array();
    json_t *procs = json_object_get(sc->root, "processes");
    size_t i, n;

    pthread_mutex_lock(&c->lock);
    list = json_incref(c->list);
    pthread_mutex_unlock(&c->lock);
    n = json_array_size(list);
    struct usage *u = xcalloc(n ? n : 1, sizeof(*u));
    int *have = xcalloc(n ? n : 1, sizeof(*have));
    json_array_foreach(list, i, x) {
        const char *id = json_string_value(json_object_get(x, "id")) ?: "";
        if (!strcmp(json_string_value(json_object_get(x, "state")) ?: "", "running") && engine_valid_id(id))
            if ((have[i] = cgroup_usage(c, id, &u[i]) == 0))
                gpu_use(procs, id, &u[i]);
    }
    /* one family at a time, every container in it */
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        expo_family(sc->w, families[f].name, families[f].type, families[f].help);
        json_array_foreach(list, i, x) {
            if (!have[i])
                continue;
            const char *id = json_string_value(json_object_get(x, "id"));
            struct expo_label l[3] = {{"container", json_string_value(json_object_get(x, "name")) ?: ""},
                                      {"container_id", id},
                                      {"owner", json_string_value(json_object_get(x, "owner")) ?: ""}};
            double v[] = {u[i].cpu_seconds, u[i].memory_bytes, u[i].memory_limit_bytes,
                          u[i].gpu_memory_bytes, u[i].gpu_util,
                          (double)json_array_size(json_object_get(x, "gpus"))};
            expo_sample(sc->w, l, 3, v[f]);
        }
    }
    json_array_foreach(list, i, x)
        if (have[i])
            json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:f, s:f, s:f, s:f, s:f, s:O}", "id",
                                                 json_object_get(x, "id"), "name", json_object_get(x, "name"),
                                                 "owner", json_object_get(x, "owner"), "cpu_seconds",
                                                 u[i].cpu_seconds, "memory_bytes", u[i].memory_bytes,
                                                 "memory_limit_bytes", u[i].memory_limit_bytes,
                                                 "gpu_memory_bytes", u[i].gpu_memory_bytes,
                                                 "gpu_utilization_percent", u[i].gpu_util,
                                                 "gpus", json_object_get(x, "gpus")));
    json_object_set_new(sc->root, "containers", out);
    free(u);
    free(have);
    json_decref(list);
    return 0;
}

static void ctr_shutdown(void *ctx)
{
    struct ctr_ctx *c = ctx;

    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    json_decref(c->list);
    engine_free(c->eng);
    buf_free(&c->raw);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    free(c);
}

const struct collector collect_containers = {"containers", ctr_init, ctr_sample, ctr_shutdown};
