/* remote_write sender. Samples are grouped into one TimeSeries per series,
 * labels sorted by name (__name__ included), samples in time order, as the
 * specification requires. */
#include "remote_write.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "remote.pb-c.h"
#include "store/serieskey.h"

#define SEND_MAX 5000 /* samples per request */

struct remote_write {
    char *url;
    size_t max;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct ingest_batch *queue; /* samples waiting */
    int stop;
    struct remote_write_stats st;
};

/* ---- encoding ---- */

struct rw_series {
    const char *key;
    size_t key_len;
    Prometheus__TimeSeries ts;
    Prometheus__Label *labels;
    Prometheus__Label **label_ptrs;
    Prometheus__Sample *samples;
    Prometheus__Sample **sample_ptrs;
    size_t ns, cap;
    struct serieskey parsed;
};

static int cmp_label(const void *a, const void *b)
{
    const Prometheus__Label *x = *(Prometheus__Label *const *)a;
    const Prometheus__Label *y = *(Prometheus__Label *const *)b;
    return strcmp(x->name, y->name);
}

/* Fills s's labels (__name__ among them, sorted by name as the format
 * requires) from its key. 0, or -1 for a key that is not canonical. */
static int key_labels(struct rw_series *s)
{
    struct serieskey k;
    if (serieskey_parse(s->key, s->key_len, &k) < 0)
        return -1;
    size_t n = k.nlabels + 1;
    s->labels = xcalloc(n, sizeof(*s->labels));
    s->label_ptrs = xcalloc(n, sizeof(*s->label_ptrs));
    prometheus__label__init(&s->labels[0]);
    s->labels[0].name = "__name__";
    s->labels[0].value = (char *)k.name;
    for (size_t i = 0; i < k.nlabels; i++) {
        prometheus__label__init(&s->labels[i + 1]);
        s->labels[i + 1].name = (char *)k.labels[i].name;
        s->labels[i + 1].value = (char *)k.labels[i].value;
    }
    for (size_t i = 0; i < n; i++)
        s->label_ptrs[i] = &s->labels[i];
    qsort(s->label_ptrs, n, sizeof(*s->label_ptrs), cmp_label);
    s->ts.n_labels = n;
    s->ts.labels = s->label_ptrs;
    s->parsed = k; /* the labels point into it */
    return 0;
}

static int cmp_sample(const void *a, const void *b)
{
    const Prometheus__Sample *x = *(Prometheus__Sample *const *)a;
    const Prometheus__Sample *y = *(Prometheus__Sample *const *)b;
    return (x->timestamp > y->timestamp) - (x->timestamp < y->timestamp);
}

int remote_write_encode(const struct ingest_batch *b, struct buf *out)
{
    struct rw_series *ser = NULL;
    size_t nser = 0;
    int rc = -1;

    buf_reset(out);
    /* group by key (keys of one scrape arrive together, so a linear probe
     * from the last hit is enough in practice; a hash would do for more) */
    for (size_t i = 0; i < b->n; i++) {
        const char *key = b->keys.data + b->items[i].key_off;
        size_t kl = b->items[i].key_len;
        size_t j;
        for (j = 0; j < nser; j++)
            if (ser[j].key_len == kl && !memcmp(ser[j].key, key, kl))
                break;
        if (j == nser) {
            ser = xrealloc(ser, (nser + 1) * sizeof(*ser));
            memset(&ser[nser], 0, sizeof(*ser));
            ser[nser].key = key;
            ser[nser].key_len = kl;
            prometheus__time_series__init(&ser[nser].ts);
            if (key_labels(&ser[nser++]) < 0)
                goto done;
        }
        struct rw_series *s = &ser[j];
        if (s->ns == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 4;
            s->samples = xrealloc(s->samples, s->cap * sizeof(*s->samples));
        }
        prometheus__sample__init(&s->samples[s->ns]);
        s->samples[s->ns].value = b->items[i].value;
        s->samples[s->ns].timestamp = b->items[i].ts_ms;
        s->ns++;
    }
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries **tsp = xcalloc(nser ? nser : 1, sizeof(*tsp));
    for (size_t j = 0; j < nser; j++) {
        struct rw_series *s = &ser[j];
        s->sample_ptrs = xcalloc(s->ns ? s->ns : 1, sizeof(*s->sample_ptrs));
        for (size_t k = 0; k < s->ns; k++)
            s->sample_ptrs[k] = &s->samples[k];
        qsort(s->sample_ptrs, s->ns, sizeof(*s->sample_ptrs), cmp_sample);
        s->ts.n_samples = s->ns;
        s->ts.samples = s->sample_ptrs;
        tsp[j] = &s->ts;
    }
    req.n_timeseries = nser;
    req.timeseries = tsp;
    size_t plen = prometheus__write_request__get_packed_size(&req);
    uint8_t *packed = xmalloc(plen ? plen : 1);
    prometheus__write_request__pack(&req, packed);
    size_t zlen = snappy_max_compressed_length(plen);
    char *z = xmalloc(zlen);
    if (snappy_compress((const char *)packed, plen, z, &zlen) == SNAPPY_OK) {
        buf_append(out, z, zlen);
        rc = 0;
    }
    free(z);
    free(packed);
    free(tsp);
done:
    for (size_t j = 0; j < nser; j++) {
        serieskey_free(&ser[j].parsed);
        free(ser[j].labels);
        free(ser[j].label_ptrs);
        free(ser[j].samples);
        free(ser[j].sample_ptrs);
    }
    free(ser);
    return rc;
}

/* ---- sending ---- */

static size_t discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

/* Returns the HTTP status, or 0 for a transport error. */
static long post(const char *url, const struct buf *body)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    long status = 0;

    h = curl_slist_append(h, "Content-Encoding: snappy");
    h = curl_slist_append(h, "Content-Type: application/x-protobuf");
    h = curl_slist_append(h, "X-Prometheus-Remote-Write-Version: 0.1.0");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body->len);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "gpufleet/0.1");
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

/* Sends one slice, retrying while the receiver says to. */
static void send_slice(struct remote_write *rw, const struct ingest_batch *b, struct buf *body,
                       int64_t *backoff_ms)
{
    for (int attempt = 0;; attempt++) {
        long status = -1;
        if (remote_write_encode(b, body) == 0)
            status = post(rw->url, body);
        pthread_mutex_lock(&rw->lock);
        if (status >= 200 && status < 300) {
            rw->st.last_ok_ms = now_wall_ms();
            rw->st.sent += b->n;
            rw->st.pending -= b->n;
            *backoff_ms = 0;
            pthread_mutex_unlock(&rw->lock);
            return;
        }
        rw->st.last_error_ms = now_wall_ms();
        rw->st.last_status = status < 0 ? 0 : status;
        int retry = status == 0 || status == 429 || status >= 500;
        if (!retry || (rw->stop && attempt >= 2)) {
            rw->st.failed += b->n;
            rw->st.pending -= b->n;
            pthread_mutex_unlock(&rw->lock);
            log_warn("remote_write: %zu samples refused (HTTP %ld); not retried", b->n, status);
            return;
        }
        rw->st.retries++;
        pthread_mutex_unlock(&rw->lock);
        *backoff_ms = *backoff_ms ? *backoff_ms * 2 : 250;
        if (*backoff_ms > 30000)
            *backoff_ms = 30000;
        if (attempt == 0)
            log_warn("remote_write: %s answered %ld; retrying with backoff", rw->url, status);
        struct timespec ts = {*backoff_ms / 1000, (*backoff_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void *sender_main(void *arg)
{
    struct remote_write *rw = arg;
    struct buf body;
    int64_t backoff_ms = 0;

    buf_init(&body, 0);
    pthread_mutex_lock(&rw->lock);
    for (;;) {
        while (!rw->stop && rw->queue->n == 0)
            pthread_cond_wait(&rw->wake, &rw->lock);
        if (rw->queue->n == 0)
            break;
        /* take the whole queue at once; the hook fills a fresh one */
        struct ingest_batch *b = rw->queue;
        rw->queue = ingest_batch_new();
        pthread_mutex_unlock(&rw->lock);
        for (size_t off = 0; off < b->n; off += SEND_MAX) {
            struct ingest_batch view = *b; /* shares b's keys */
            view.items = b->items + off;
            view.n = b->n - off < SEND_MAX ? b->n - off : SEND_MAX;
            send_slice(rw, &view, &body, &backoff_ms);
        }
        ingest_batch_free(b);
        pthread_mutex_lock(&rw->lock);
    }
    pthread_mutex_unlock(&rw->lock);
    buf_free(&body);
    return NULL;
}

struct remote_write *remote_write_start(const char *url, size_t max_samples)
{
    struct remote_write *rw = xcalloc(1, sizeof(*rw));

    rw->url = xstrdup(url);
    rw->max = max_samples;
    rw->queue = ingest_batch_new();
    pthread_mutex_init(&rw->lock, NULL);
    now_cond_init(&rw->wake);
    if (pthread_create(&rw->thread, NULL, sender_main, rw) != 0) {
        log_error("remote_write: cannot start the sender thread");
        ingest_batch_free(rw->queue);
        free(rw->url);
        free(rw);
        return NULL;
    }
    log_info("remote_write: sending every sample to %s", url);
    return rw;
}

void remote_write_stop(struct remote_write *rw)
{
    if (!rw)
        return;
    pthread_mutex_lock(&rw->lock);
    rw->stop = 1;
    pthread_cond_signal(&rw->wake);
    pthread_mutex_unlock(&rw->lock);
    pthread_join(rw->thread, NULL);
    ingest_batch_free(rw->queue);
    pthread_cond_destroy(&rw->wake);
    pthread_mutex_destroy(&rw->lock);
    free(rw->url);
    free(rw);
}

void remote_write_hook(void *arg, const struct ingest_batch *b)
{
    struct remote_write *rw = arg;
    struct ingest_batch *q;

    pthread_mutex_lock(&rw->lock);
    q = rw->queue;
    for (size_t i = 0; i < b->n; i++) {
        if (rw->st.pending >= rw->max) {
            rw->st.dropped += b->n - i;
            break;
        }
        if (q->n == q->cap) {
            q->cap = q->cap ? q->cap * 2 : 1024;
            q->items = xrealloc(q->items, q->cap * sizeof(*q->items));
        }
        q->items[q->n] = b->items[i];
        q->items[q->n].key_off = q->keys.len;
        buf_append(&q->keys, b->keys.data + b->items[i].key_off, b->items[i].key_len);
        q->n++;
        rw->st.pending++;
    }
    pthread_cond_signal(&rw->wake);
    pthread_mutex_unlock(&rw->lock);
}

void remote_write_stats(struct remote_write *rw, struct remote_write_stats *st)
{
    pthread_mutex_lock(&rw->lock);
    *st = rw->st;
    pthread_mutex_unlock(&rw->lock);
}
