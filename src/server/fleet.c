/* Live fleet state: a handful of figures per host and GPU taken from each
 * agent scrape, with deltas (only what changed) pushed to the web UI. The
 * store writer feeds it; HTTP threads read it, both under one lock. */
#include "fleet.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"
#include "../lib/fields.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "store/serieskey.h"

/* The node_exporter-named series a host's figures come from. */
enum host_input { IN_CPU, IN_NET_RX, IN_NET_TX, IN_FS_SIZE, IN_FS_AVAIL, IN_MEM_TOTAL,
                  IN_MEM_AVAIL, IN_LOAD1 };
static const struct {
    const char *metric;
    enum host_input in;
} host_inputs[] = {
    {"node_cpu_seconds_total", IN_CPU},
    {"node_network_receive_bytes_total", IN_NET_RX},
    {"node_network_transmit_bytes_total", IN_NET_TX},
    {"node_filesystem_size_bytes", IN_FS_SIZE},
    {"node_filesystem_avail_bytes", IN_FS_AVAIL},
    {"node_memory_MemTotal_bytes", IN_MEM_TOTAL},
    {"node_memory_MemAvailable_bytes", IN_MEM_AVAIL},
    {"node_load1", IN_LOAD1},
};

/* A MIG device the GPU's agent reported (gpufleet_gpu_mig_device_memory_bytes):
 * the container ledger hands these out instead of the whole GPU. */
#define FLEET_MAX_MIG 7
struct fmig {
    char uuid[96], profile[32];
    double mem_bytes;
    int64_t ts_ms; /* the scrape that last reported it */
};

struct fgpu {
    char uuid[96], model[96];
    struct fmig migs[FLEET_MAX_MIG];
    int nmigs;
    int index;
    int announced; /* index and model were sent */
    int64_t seen_ms; /* the scrape that last had its series: a GPU that fell off has none */
    double v[GM_COUNT], sent[GM_COUNT]; /* the live fields of lib/fields.h */
};

struct fhost {
    char name[65];
    char agent_version[32];
    int64_t ts_ms;
    double v[HF_COUNT], sent[HF_COUNT];
    double cpu_total, cpu_idle, net_rx, net_tx; /* counters of the last scrape */
    int64_t counters_ms;
    struct fgpu *gpus;
    size_t ngpus;
};

/* Deltas are sent in batches at most this often: a big fleet's hosts report
 * spread over each second, and one message of many deltas costs a browser
 * far less than many messages of one. */
#define FLUSH_MS 250
#define BATCH_MAX_BYTES (1 << 20)

struct fleet {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t flusher;
    int stop, has_flusher;
    struct buf batch; /* deltas not yet pushed, comma-separated */
    struct fhost **hosts;
    size_t nhosts;
    uint64_t seq;
    fleet_push_fn push;
    void *push_arg;
    struct buf out; /* writer thread only */
};

/* Pushes the batch as one message. Called with the lock held. */
static void flush_batch(struct fleet *f)
{
    if (!f->batch.len)
        return;
    struct buf msg;
    buf_init(&msg, 0);
    buf_puts(&msg, "{\"type\":\"fleet\",\"deltas\":[");
    buf_append(&msg, f->batch.data, f->batch.len);
    buf_puts(&msg, "]}");
    if (f->push)
        f->push(f->push_arg, msg.data, msg.len);
    buf_free(&msg);
    buf_reset(&f->batch);
}

static void *flusher_main(void *arg)
{
    struct fleet *f = arg;
    pthread_mutex_lock(&f->lock);
    while (!f->stop) {
        now_cond_wait_until(&f->wake, &f->lock, now_mono_ns() + FLUSH_MS * 1000000LL);
        flush_batch(f);
    }
    flush_batch(f);
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

struct fleet *fleet_new(fleet_push_fn push, void *push_arg)
{
    struct fleet *f = xcalloc(1, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    now_cond_init(&f->wake);
    buf_init(&f->batch, 0);
    buf_init(&f->out, 0);
    f->push = push;
    f->push_arg = push_arg;
    if (push)
        f->has_flusher = pthread_create(&f->flusher, NULL, flusher_main, f) == 0;
    return f;
}

static void host_free(struct fhost *h)
{
    free(h->gpus);
    free(h);
}

void fleet_free(struct fleet *f)
{
    if (!f)
        return;
    if (f->has_flusher) {
        pthread_mutex_lock(&f->lock);
        f->stop = 1;
        pthread_cond_signal(&f->wake);
        pthread_mutex_unlock(&f->lock);
        pthread_join(f->flusher, NULL);
    }
    for (size_t i = 0; i < f->nhosts; i++)
        host_free(f->hosts[i]);
    free(f->hosts);
    buf_free(&f->out);
    buf_free(&f->batch);
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static struct fhost *find_host(struct fleet *f, const char *name, int create)
{
    for (size_t i = 0; i < f->nhosts; i++)
        if (!strcmp(f->hosts[i]->name, name))
            return f->hosts[i];
    if (!create)
        return NULL;
    struct fhost *h = xcalloc(1, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", name);
    for (int i = 0; i < HF_COUNT; i++)
        h->v[i] = h->sent[i] = NAN;
    h->cpu_total = h->cpu_idle = h->net_rx = h->net_tx = NAN;
    f->hosts = xrealloc(f->hosts, (f->nhosts + 1) * sizeof(*f->hosts));
    f->hosts[f->nhosts++] = h;
    return h;
}

static struct fgpu *find_gpu(struct fhost *h, const char *key, size_t klen)
{
    char uuid[96], idx[16];

    if (serieskey_label(key, klen, "UUID", uuid, sizeof(uuid)) < 0)
        return NULL;
    for (size_t i = 0; i < h->ngpus; i++)
        if (!strcmp(h->gpus[i].uuid, uuid))
            return &h->gpus[i];
    if (h->ngpus >= 64) /* bound what one target can make us hold */
        return NULL;
    h->gpus = xrealloc(h->gpus, (h->ngpus + 1) * sizeof(*h->gpus));
    struct fgpu *g = &h->gpus[h->ngpus++];
    memset(g, 0, sizeof(*g));
    snprintf(g->uuid, sizeof(g->uuid), "%s", uuid);
    if (serieskey_label(key, klen, "modelName", g->model, sizeof(g->model)) < 0)
        g->model[0] = '\0';
    g->index = serieskey_label(key, klen, "gpu", idx, sizeof(idx)) > 0 ? atoi(idx) : -1;
    for (int i = 0; i < GM_COUNT; i++)
        g->v[i] = g->sent[i] = NAN;
    return g;
}

/* gpufleet_gpu_mig_device_memory_bytes{uuid=PARENT, mig_uuid, profile}:
 * after the parent's DCGM series in the agent's output, so the parent is
 * known by then (a MIG device of an unknown GPU is skipped). */
static void take_mig(struct fhost *h, const char *key, size_t klen, double v, int64_t ts)
{
    char parent[96], uuid[96];
    struct fgpu *g = NULL;

    if (serieskey_label(key, klen, "uuid", parent, sizeof(parent)) <= 0 ||
        serieskey_label(key, klen, "mig_uuid", uuid, sizeof(uuid)) <= 0)
        return;
    for (size_t i = 0; i < h->ngpus && !g; i++)
        if (!strcmp(h->gpus[i].uuid, parent))
            g = &h->gpus[i];
    if (!g)
        return;
    struct fmig *m = NULL;
    for (int i = 0; i < g->nmigs && !m; i++)
        if (!strcmp(g->migs[i].uuid, uuid))
            m = &g->migs[i];
    if (!m) {
        if (g->nmigs == FLEET_MAX_MIG)
            return;
        m = &g->migs[g->nmigs++];
        snprintf(m->uuid, sizeof(m->uuid), "%s", uuid);
    }
    if (serieskey_label(key, klen, "profile", m->profile, sizeof(m->profile)) < 0)
        m->profile[0] = '\0';
    m->mem_bytes = v;
    m->ts_ms = ts;
}

/* Sums of the counters one scrape holds, turned into rates against the
 * previous scrape's. */
struct scrape_sums {
    double cpu_total, cpu_idle, net_rx, net_tx;
    double fs_size, fs_avail;
    int have_cpu, have_net, fs_root;
    double mem_total, mem_avail;
};

static int name_is(const char *key, size_t name_len, const char *name)
{
    return strlen(name) == name_len && !memcmp(key, name, name_len);
}

/* Which host input a series name is, or -1. */
static int host_input(const char *key, size_t nlen)
{
    for (size_t i = 0; i < sizeof(host_inputs) / sizeof(host_inputs[0]); i++)
        if (name_is(key, nlen, host_inputs[i].metric))
            return (int)host_inputs[i].in;
    return -1;
}

/* The root file system's size and free space; without one, the first
 * listed file system's. */
static void take_fs(struct scrape_sums *s, const char *key, size_t klen, int in, double v)
{
    char mp[64];
    int root = serieskey_label(key, klen, "mountpoint", mp, sizeof(mp)) > 0 && !strcmp(mp, "/");

    if (s->fs_root && !root)
        return;
    if (root && !s->fs_root) {
        s->fs_root = 1;
        s->fs_size = s->fs_avail = NAN;
    }
    double *dst = in == IN_FS_SIZE ? &s->fs_size : &s->fs_avail;
    if (isnan(*dst) || root)
        *dst = v;
}

static void take_host_sample(struct fhost *h, struct scrape_sums *s, const char *key, size_t klen,
                             size_t nlen, double v)
{
    char lab[64];
    int in = host_input(key, nlen);

    if (isnan(v) || in < 0)
        return;
    switch ((enum host_input)in) {
    case IN_CPU:
        s->cpu_total += v;
        s->have_cpu = 1;
        if (serieskey_label(key, klen, "mode", lab, sizeof(lab)) > 0 &&
            (!strcmp(lab, "idle") || !strcmp(lab, "iowait")))
            s->cpu_idle += v;
        break;
    case IN_NET_RX:
    case IN_NET_TX:
        if (serieskey_label(key, klen, "device", lab, sizeof(lab)) > 0 && !strcmp(lab, "lo"))
            return;
        *(in == IN_NET_RX ? &s->net_rx : &s->net_tx) += v;
        s->have_net = 1;
        break;
    case IN_FS_SIZE:
    case IN_FS_AVAIL:
        take_fs(s, key, klen, in, v);
        break;
    case IN_MEM_TOTAL:
        s->mem_total = v;
        break;
    case IN_MEM_AVAIL:
        s->mem_avail = v;
        break;
    case IN_LOAD1:
        h->v[HF_LOAD1] = v;
        break;
    }
}

static void finish_host(struct fhost *h, const struct scrape_sums *s, int64_t ts)
{
    double dt = h->counters_ms ? (double)(ts - h->counters_ms) / 1000.0 : 0;

    if (s->have_cpu) {
        double dtot = s->cpu_total - h->cpu_total, didle = s->cpu_idle - h->cpu_idle;
        if (dt > 0 && dtot > 0 && didle >= 0)
            h->v[HF_CPU] = round(1000.0 * (1.0 - didle / dtot)) / 10.0;
        h->cpu_total = s->cpu_total;
        h->cpu_idle = s->cpu_idle;
    }
    if (s->have_net) {
        if (dt > 0 && s->net_rx >= h->net_rx && s->net_tx >= h->net_tx) {
            h->v[HF_NET_RX] = round((s->net_rx - h->net_rx) / dt);
            h->v[HF_NET_TX] = round((s->net_tx - h->net_tx) / dt);
        }
        h->net_rx = s->net_rx;
        h->net_tx = s->net_tx;
    }
    if (s->have_cpu || s->have_net)
        h->counters_ms = ts;
    if (!isnan(s->mem_total) && !isnan(s->mem_avail)) {
        h->v[HF_MEM_TOTAL] = s->mem_total;
        h->v[HF_MEM_USED] = s->mem_total - s->mem_avail;
    }
    if (!isnan(s->fs_size) && !isnan(s->fs_avail)) {
        h->v[HF_DISK_TOTAL] = s->fs_size;
        h->v[HF_DISK_USED] = s->fs_size - s->fs_avail;
    }
}

static void put_num(struct buf *o, double v)
{
    if (isnan(v) || isinf(v))
        buf_puts(o, "null");
    else
        buf_printf(o, "%.10g", v);
}

static int differs(double a, double b)
{
    return isnan(a) ? !isnan(b) : (isnan(b) || a != b);
}

/* JSON names of the figures the fleet carries (lib/fields.h); NULL for a
 * GPU metric it does not. */
static const char *gpu_name(int i)
{
    return gpu_fields[i].live ? gpu_fields[i].field : NULL;
}

static const char *host_name(int i)
{
    return host_fields[i].field;
}

/* Appends the fields of v that differ from sent, updating sent; returns
 * how many were written. */
static int put_fields(struct buf *o, const char *(*name)(int), const double *v, double *sent,
                      int n, int first)
{
    int w = 0;
    for (int i = 0; i < n; i++) {
        if (!name(i) || !differs(v[i], sent[i]))
            continue;
        buf_printf(o, "%s\"%s\":", first && !w ? "" : ",", name(i));
        put_num(o, v[i]);
        sent[i] = v[i];
        w++;
    }
    return w;
}

static void put_gpu(struct buf *o, struct fgpu *g)
{
    buf_puts(o, "{\"uuid\":");
    buf_json_str(o, g->uuid);
    if (!g->announced) {
        buf_printf(o, ",\"index\":%d,\"model\":", g->index);
        buf_json_str(o, g->model);
        g->announced = 1;
    }
    put_fields(o, gpu_name, g->v, g->sent, GM_COUNT, 0);
    buf_puts(o, "}");
}

/* The delta of h against what was sent; returns 1 when it holds a change. */
static int build_delta(struct fleet *f, struct fhost *h, uint64_t seq)
{
    struct buf *o = &f->out;
    int changed = 0;

    buf_reset(o);
    buf_printf(o, "{\"seq\":%llu,\"server\":", (unsigned long long)seq);
    buf_json_str(o, h->name);
    buf_printf(o, ",\"ts_ms\":%lld", (long long)h->ts_ms);
    size_t mark = o->len;
    buf_puts(o, ",\"host\":{");
    if (put_fields(o, host_name, h->v, h->sent, HF_COUNT, 1)) {
        buf_puts(o, "}");
        changed = 1;
    } else {
        o->len = mark;
    }
    int ng = 0;
    for (size_t i = 0; i < h->ngpus; i++) {
        struct fgpu *g = &h->gpus[i];
        int dirty = !g->announced;
        for (int k = 0; k < GM_COUNT && !dirty; k++)
            dirty = differs(g->v[k], g->sent[k]);
        if (!dirty)
            continue;
        buf_puts(o, ng++ ? "," : ",\"gpus\":[");
        put_gpu(o, g);
    }
    if (ng) {
        buf_puts(o, "]");
        changed = 1;
    }
    buf_puts(o, "}");
    return changed;
}

void fleet_ingest(struct fleet *f, const struct ingest_batch *b)
{
    char server[65];
    struct scrape_sums s = {.fs_size = NAN, .fs_avail = NAN, .mem_total = NAN, .mem_avail = NAN};
    struct fhost *h = NULL;
    int up = -1;

    if (!b->is_scrape || strcmp(b->job, "gpufleet-agent") || !b->n)
        return;
    const char *k0 = b->keys.data + b->items[0].key_off;
    if (serieskey_label(k0, b->items[0].key_len, "server", server, sizeof(server)) <= 0)
        return;
    pthread_mutex_lock(&f->lock);
    h = find_host(f, server, 1);
    for (size_t i = 0; i < b->n; i++) {
        const struct ingest_item *it = &b->items[i];
        const char *key = b->keys.data + it->key_off;
        const char *brace = memchr(key, '{', it->key_len);
        size_t nlen = brace ? (size_t)(brace - key) : it->key_len;
        if (key[0] == 'D' && nlen > 12 && !memcmp(key, "DCGM_FI_DEV_", 12)) {
            int m = gpu_field_by_metric(key, nlen);
            struct fgpu *g = m >= 0 && gpu_fields[m].live ? find_gpu(h, key, it->key_len) : NULL;
            if (g) {
                g->v[m] = it->value;
                g->seen_ms = b->scrape_ts_ms;
            }
        } else if (key[0] == 'n' && nlen > 5 && !memcmp(key, "node_", 5)) {
            take_host_sample(h, &s, key, it->key_len, nlen, it->value);
        } else if (key[0] == 'g' && name_is(key, nlen, "gpufleet_gpu_mig_device_memory_bytes")) {
            take_mig(h, key, it->key_len, it->value, b->scrape_ts_ms);
        } else if (name_is(key, nlen, "up")) {
            up = it->value == 1;
        } else if (key[0] == 'g' && name_is(key, nlen, "gpufleet_agent_info")) {
            serieskey_label(key, it->key_len, "version", h->agent_version, sizeof(h->agent_version));
        }
    }
    /* online/offline is the registry's (fleet_status); a failed scrape
     * just has no figures to take */
    if (up == 1) {
        finish_host(h, &s, b->scrape_ts_ms);
        h->ts_ms = b->scrape_ts_ms;
    }
    uint64_t seq = f->seq + 1;
    if (build_delta(f, h, seq)) {
        f->seq = seq;
        /* batched under the lock, so deltas leave in seq order */
        if (f->batch.len)
            buf_putc(&f->batch, ',');
        buf_append(&f->batch, f->out.data, f->out.len);
        if (f->batch.len > BATCH_MAX_BYTES)
            flush_batch(f);
    }
    pthread_mutex_unlock(&f->lock);
}

static json_t *fields_json(const char *(*name)(int), const double *v, int n)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        if (name(i))
            json_object_set_new(o, name(i), isnan(v[i]) ? json_null() : json_real(v[i]));
    return o;
}

json_t *fleet_server_json(struct fleet *f, const char *server)
{
    json_t *out = NULL;

    pthread_mutex_lock(&f->lock);
    struct fhost *h = find_host(f, server, 0);
    if (h) {
        json_t *gpus = json_array();
        for (size_t i = 0; i < h->ngpus; i++) {
            struct fgpu *g = &h->gpus[i];
            json_t *o = fields_json(gpu_name, g->v, GM_COUNT);
            json_object_set_new(o, "uuid", json_string(g->uuid));
            json_object_set_new(o, "index", json_integer(g->index));
            json_object_set_new(o, "model", json_string(g->model));
            /* in the host's last good scrape: a GPU lost or gone since is not */
            json_object_set_new(o, "present", json_boolean(g->seen_ms == h->ts_ms));
            json_t *migs = json_array();
            for (int k = 0; k < g->nmigs; k++)
                if (g->migs[k].ts_ms == h->ts_ms)
                    json_array_append_new(migs, json_pack("{s:s, s:s, s:f}", "uuid", g->migs[k].uuid, "profile",
                                                          g->migs[k].profile, "fb_total_mib",
                                                          g->migs[k].mem_bytes / 1048576.0));
            json_object_set_new(o, "mig_devices", migs);
            json_array_append_new(gpus, o);
        }
        out = json_pack("{s:I, s:o, s:o}", "ts_ms", (json_int_t)h->ts_ms, "host", fields_json(host_name, h->v, HF_COUNT),
                        "gpus", gpus);
    }
    pthread_mutex_unlock(&f->lock);
    return out;
}

void fleet_status(struct fleet *f, const char *server, const char *status, const char *detail,
                  int64_t since_ms)
{
    struct buf d;

    buf_init(&d, 0);
    pthread_mutex_lock(&f->lock);
    buf_printf(&d, "{\"seq\":%llu,\"server\":", (unsigned long long)++f->seq);
    buf_json_str(&d, server);
    buf_puts(&d, ",\"status\":");
    buf_json_str(&d, status);
    buf_puts(&d, ",\"last_error\":");
    buf_json_str(&d, detail);
    buf_printf(&d, ",\"status_since_ms\":%lld}", (long long)since_ms);
    if (f->batch.len)
        buf_putc(&f->batch, ',');
    buf_append(&f->batch, d.data, d.len);
    pthread_mutex_unlock(&f->lock);
    buf_free(&d);
}

int fleet_agent(struct fleet *f, const char *server, char *version, size_t cap, int64_t *ts_ms)
{
    pthread_mutex_lock(&f->lock);
    struct fhost *h = find_host(f, server, 0);
    int rc = h && h->ts_ms ? 0 : -1;
    if (!rc) {
        snprintf(version, cap, "%s", h->agent_version);
        *ts_ms = h->ts_ms;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

uint64_t fleet_seq(struct fleet *f)
{
    pthread_mutex_lock(&f->lock);
    uint64_t s = f->seq;
    pthread_mutex_unlock(&f->lock);
    return s;
}

void fleet_forget(struct fleet *f, const char *server)
{
    if (!server)
        return;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->nhosts; i++) {
        if (strcmp(f->hosts[i]->name, server))
            continue;
        host_free(f->hosts[i]);
        f->hosts[i] = f->hosts[--f->nhosts];
        break;
    }
    pthread_mutex_unlock(&f->lock);
}
