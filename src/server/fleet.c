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
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "store/serieskey.h"

enum gpu_field {
    G_UTIL, G_MEM_UTIL, G_FB_USED, G_FB_TOTAL, G_TEMP, G_MEM_TEMP, G_POWER, G_POWER_LIMIT,
    G_SM_CLOCK, G_MEM_CLOCK, G_PCIE_TX, G_PCIE_RX, G_N
};
enum host_field {
    H_CPU, H_MEM_USED, H_MEM_TOTAL, H_DISK_USED, H_DISK_TOTAL, H_NET_RX, H_NET_TX, H_LOAD1, H_N
};

/* JSON names; units in the names as in the agent's snapshot */
static const char *const gpu_names[G_N] = {"util", "mem_util", "fb_used_mib", "fb_total_mib",
                                           "temp_c", "mem_temp_c", "power_w", "power_limit_w",
                                           "sm_clock_mhz", "mem_clock_mhz", "pcie_tx_kbps",
                                           "pcie_rx_kbps"};
static const char *const host_names[H_N] = {"cpu_percent", "mem_used_bytes", "mem_total_bytes",
                                            "disk_used_bytes", "disk_total_bytes", "net_rx_bps",
                                            "net_tx_bps", "load1"};

static const struct {
    const char *metric;
    enum gpu_field field;
} gpu_metrics[] = {
    {"DCGM_FI_DEV_GPU_UTIL", G_UTIL},         {"DCGM_FI_DEV_MEM_COPY_UTIL", G_MEM_UTIL},
    {"DCGM_FI_DEV_FB_USED", G_FB_USED},       {"DCGM_FI_DEV_FB_TOTAL", G_FB_TOTAL},
    {"DCGM_FI_DEV_GPU_TEMP", G_TEMP},         {"DCGM_FI_DEV_MEMORY_TEMP", G_MEM_TEMP},
    {"DCGM_FI_DEV_POWER_USAGE", G_POWER},     {"DCGM_FI_DEV_ENFORCED_POWER_LIMIT", G_POWER_LIMIT},
    {"DCGM_FI_DEV_SM_CLOCK", G_SM_CLOCK},     {"DCGM_FI_DEV_MEM_CLOCK", G_MEM_CLOCK},
    {"DCGM_FI_DEV_PCIE_TX_THROUGHPUT", G_PCIE_TX}, {"DCGM_FI_DEV_PCIE_RX_THROUGHPUT", G_PCIE_RX},
};

struct fgpu {
    char uuid[96], model[96];
    int index;
    int announced; /* index and model were sent */
    double v[G_N], sent[G_N];
};

struct fhost {
    char name[65];
    int64_t ts_ms;
    double v[H_N], sent[H_N];
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
    for (int i = 0; i < H_N; i++)
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
    for (int i = 0; i < G_N; i++)
        g->v[i] = g->sent[i] = NAN;
    return g;
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

static void take_host_sample(struct fhost *h, struct scrape_sums *s, const char *key, size_t klen,
                             size_t nlen, double v)
{
    char lab[64];

    if (isnan(v))
        return;
    if (name_is(key, nlen, "node_cpu_seconds_total")) {
        s->cpu_total += v;
        s->have_cpu = 1;
        if (serieskey_label(key, klen, "mode", lab, sizeof(lab)) > 0 &&
            (!strcmp(lab, "idle") || !strcmp(lab, "iowait")))
            s->cpu_idle += v;
    } else if (name_is(key, nlen, "node_network_receive_bytes_total") ||
               name_is(key, nlen, "node_network_transmit_bytes_total")) {
        if (serieskey_label(key, klen, "device", lab, sizeof(lab)) > 0 && !strcmp(lab, "lo"))
            return;
        *(key[13] == 'r' ? &s->net_rx : &s->net_tx) += v;
        s->have_net = 1;
    } else if (name_is(key, nlen, "node_filesystem_size_bytes") ||
               name_is(key, nlen, "node_filesystem_avail_bytes")) {
        /* the root file system; without one, the first listed */
        int root = serieskey_label(key, klen, "mountpoint", lab, sizeof(lab)) > 0 &&
                   !strcmp(lab, "/");
        if (s->fs_root && !root)
            return;
        if (root && !s->fs_root) {
            s->fs_root = 1;
            s->fs_size = s->fs_avail = NAN;
        }
        double *dst = key[16] == 's' ? &s->fs_size : &s->fs_avail;
        if (isnan(*dst) || root)
            *dst = v;
    } else if (name_is(key, nlen, "node_memory_MemTotal_bytes")) {
        s->mem_total = v;
    } else if (name_is(key, nlen, "node_memory_MemAvailable_bytes")) {
        s->mem_avail = v;
    } else if (name_is(key, nlen, "node_load1")) {
        h->v[H_LOAD1] = v;
    }
}

static void finish_host(struct fhost *h, const struct scrape_sums *s, int64_t ts)
{
    double dt = h->counters_ms ? (double)(ts - h->counters_ms) / 1000.0 : 0;

    if (s->have_cpu) {
        double dtot = s->cpu_total - h->cpu_total, didle = s->cpu_idle - h->cpu_idle;
        if (dt > 0 && dtot > 0 && didle >= 0)
            h->v[H_CPU] = round(1000.0 * (1.0 - didle / dtot)) / 10.0;
        h->cpu_total = s->cpu_total;
        h->cpu_idle = s->cpu_idle;
    }
    if (s->have_net) {
        if (dt > 0 && s->net_rx >= h->net_rx && s->net_tx >= h->net_tx) {
            h->v[H_NET_RX] = round((s->net_rx - h->net_rx) / dt);
            h->v[H_NET_TX] = round((s->net_tx - h->net_tx) / dt);
        }
        h->net_rx = s->net_rx;
        h->net_tx = s->net_tx;
    }
    if (s->have_cpu || s->have_net)
        h->counters_ms = ts;
    if (!isnan(s->mem_total) && !isnan(s->mem_avail)) {
        h->v[H_MEM_TOTAL] = s->mem_total;
        h->v[H_MEM_USED] = s->mem_total - s->mem_avail;
    }
    if (!isnan(s->fs_size) && !isnan(s->fs_avail)) {
        h->v[H_DISK_TOTAL] = s->fs_size;
        h->v[H_DISK_USED] = s->fs_size - s->fs_avail;
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

/* Appends the fields of v that differ from sent, updating sent; returns
 * how many were written. */
static int put_fields(struct buf *o, const char *const *names, const double *v, double *sent,
                      int n, int first)
{
    int w = 0;
    for (int i = 0; i < n; i++) {
        if (!differs(v[i], sent[i]))
            continue;
        buf_printf(o, "%s\"%s\":", first && !w ? "" : ",", names[i]);
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
    put_fields(o, gpu_names, g->v, g->sent, G_N, 0);
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
    if (put_fields(o, host_names, h->v, h->sent, H_N, 1)) {
        buf_puts(o, "}");
        changed = 1;
    } else {
        o->len = mark;
    }
    int ng = 0;
    for (size_t i = 0; i < h->ngpus; i++) {
        struct fgpu *g = &h->gpus[i];
        int dirty = !g->announced;
        for (int k = 0; k < G_N && !dirty; k++)
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
            for (size_t m = 0; m < sizeof(gpu_metrics) / sizeof(gpu_metrics[0]); m++) {
                if (!name_is(key, nlen, gpu_metrics[m].metric))
                    continue;
                struct fgpu *g = find_gpu(h, key, it->key_len);
                if (g)
                    g->v[gpu_metrics[m].field] = it->value;
                break;
            }
        } else if (key[0] == 'n' && nlen > 5 && !memcmp(key, "node_", 5)) {
            take_host_sample(h, &s, key, it->key_len, nlen, it->value);
        } else if (name_is(key, nlen, "up")) {
            up = it->value == 1;
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

static json_t *fields_json(const char *const *names, const double *v, int n)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(o, names[i], isnan(v[i]) ? json_null() : json_real(v[i]));
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
            json_t *o = fields_json(gpu_names, g->v, G_N);
            json_object_set_new(o, "uuid", json_string(g->uuid));
            json_object_set_new(o, "index", json_integer(g->index));
            json_object_set_new(o, "model", json_string(g->model));
            json_array_append_new(gpus, o);
        }
        out = json_pack("{s:I, s:o, s:o}", "ts_ms", (json_int_t)h->ts_ms, "host", fields_json(host_names, h->v, H_N),
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
