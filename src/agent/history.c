/* History ring. Samples form groups led by a keyframe (values stored as they
 * are); later members store the XOR with their predecessor. Whole groups are
 * evicted, so every held sample can be decoded. */
#include "history.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../lib/log.h"
#include "../lib/xalloc.h"

#define GROUP_MAX 60

struct history_dict {
    int refs; /* guarded by history.lock */
    size_t n;
    char *keys;
    uint32_t *off, *len;
};

struct history_entry {
    int64_t ts_ms;
    struct history_dict *dict;
    unsigned char *z;
    uint32_t zlen;
    int keyframe;
};

struct history {
    pthread_mutex_t lock;
    int64_t keep_ms, interval_ms;
    struct history_entry *ring;
    size_t cap, head, count;
    size_t zbytes;
    /* writer state, sampler thread only */
    struct history_dict *cur;
    uint64_t *prev;
    unsigned group_len;
};

static void dict_unref(struct history_dict *d)
{
    if (!d || --d->refs > 0)
        return;
    free(d->keys);
    free(d->off);
    free(d->len);
    free(d);
}

struct history *history_new(int64_t keep_ms, int64_t interval_ms)
{
    struct history *h = xcalloc(1, sizeof(*h));

    pthread_mutex_init(&h->lock, NULL);
    h->keep_ms = keep_ms;
    h->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    /* room for the window plus a group of slack, since eviction is by group */
    h->cap = (size_t)(keep_ms / h->interval_ms) + 2 * GROUP_MAX + 2;
    h->ring = xcalloc(h->cap, sizeof(*h->ring));
    return h;
}

static struct history_entry *at(struct history *h, size_t i)
{
    return &h->ring[(h->head + i) % h->cap];
}

static void drop_oldest(struct history *h)
{
    struct history_entry *e = at(h, 0);

    h->zbytes -= e->zlen;
    free(e->z);
    dict_unref(e->dict);
    memset(e, 0, sizeof(*e));
    h->head = (h->head + 1) % h->cap;
    h->count--;
}

/* Evicts the oldest group while the next group alone still covers the
 * window, or while the ring is full. */
static void evict(struct history *h, int64_t now_ms)
{
    while (h->count > 0) {
        size_t next = 1;
        while (next < h->count && !at(h, next)->keyframe)
            next++;
        int full = h->count == h->cap;
        if (next == h->count && !full)
            return;
        if (!full && at(h, next)->ts_ms > now_ms - h->keep_ms)
            return;
        for (size_t i = 0; i < next; i++)
            drop_oldest(h);
    }
}

void history_free(struct history *h)
{
    if (!h)
        return;
    while (h->count)
        drop_oldest(h);
    dict_unref(h->cur);
    free(h->ring);
    free(h->prev);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static int same_keys(const struct history_dict *d, const char *text,
                     const struct expo_series *series, size_t n)
{
    if (!d || d->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (d->len[i] != series[i].key_len ||
            memcmp(d->keys + d->off[i], text + series[i].key_off, series[i].key_len))
            return 0;
    return 1;
}

static struct history_dict *dict_new(const char *text, const struct expo_series *series, size_t n)
{
    struct history_dict *d = xcalloc(1, sizeof(*d));
    size_t total = 0, pos = 0;

    for (size_t i = 0; i < n; i++)
        total += series[i].key_len;
    d->refs = 1;
    d->n = n;
    d->keys = xmalloc(total + 1);
    d->off = xmalloc((n ? n : 1) * sizeof(uint32_t));
    d->len = xmalloc((n ? n : 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) {
        memcpy(d->keys + pos, text + series[i].key_off, series[i].key_len);
        d->off[i] = (uint32_t)pos;
        d->len[i] = series[i].key_len;
        pos += series[i].key_len;
    }
    return d;
}

void history_add(struct history *h, int64_t ts_ms, const char *text,
                 const struct expo_series *series, const double *values, size_t n)
{
    uint64_t *bits = xmalloc((n ? n : 1) * sizeof(uint64_t));
    uLongf zlen = compressBound((uLong)(n * sizeof(uint64_t)));
    unsigned char *z = xmalloc(zlen);
    int keyframe = 0;

    if (!same_keys(h->cur, text, series, n)) {
        pthread_mutex_lock(&h->lock);
        dict_unref(h->cur);
        pthread_mutex_unlock(&h->lock);
        h->cur = dict_new(text, series, n);
        keyframe = 1;
    }
    if (h->group_len >= GROUP_MAX)
        keyframe = 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, &values[i], sizeof(b));
        bits[i] = keyframe ? b : b ^ h->prev[i];
        if (!keyframe)
            h->prev[i] = b;
        else
            bits[i] = b;
    }
    if (keyframe) {
        h->prev = xrealloc(h->prev, (n ? n : 1) * sizeof(uint64_t));
        memcpy(h->prev, bits, n * sizeof(uint64_t));
        h->group_len = 0;
    }
    h->group_len++;
    if (compress2(z, &zlen, (const Bytef *)bits, (uLong)(n * sizeof(uint64_t)), 1) != Z_OK) {
        log_warn("history: compression failed; sample at %lld not kept", (long long)ts_ms);
        free(z);
        free(bits);
        return;
    }
    free(bits);
    z = xrealloc(z, zlen ? zlen : 1);

    pthread_mutex_lock(&h->lock);
    if (h->count == h->cap)
        evict(h, ts_ms);
    if (h->count == h->cap) /* a single group filling the ring: cannot happen with cap > GROUP_MAX */
        drop_oldest(h);
    struct history_entry *e = at(h, h->count);
    e->ts_ms = ts_ms;
    e->dict = h->cur;
    h->cur->refs++;
    e->z = z;
    e->zlen = (uint32_t)zlen;
    e->keyframe = keyframe;
    h->count++;
    h->zbytes += zlen;
    evict(h, ts_ms);
    pthread_mutex_unlock(&h->lock);
}

void history_stats(struct history *h, size_t *samples, size_t *bytes)
{
    pthread_mutex_lock(&h->lock);
    *samples = h->count;
    *bytes = h->zbytes;
    pthread_mutex_unlock(&h->lock);
}

static void json_string(struct buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf_putc(out, '\\');
            buf_putc(out, (char)c);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(out, esc, 6);
        } else {
            buf_putc(out, (char)c);
        }
    }
    buf_putc(out, '"');
}

static void json_value(struct buf *out, double v)
{
    char num[40];

    if (isnan(v) || isinf(v)) {
        buf_puts(out, isnan(v) ? "\"NaN\"" : v > 0 ? "\"+Inf\"" : "\"-Inf\"");
        return;
    }
    buf_append(out, num, expo_format_value(num, sizeof(num), v));
}

/* Long on purpose: one pass over the ring writing segments as it goes (no
 * copy of the ring is made); its state is the loop's own. */
void history_render_json(struct history *h, int64_t since_ms, int64_t until_ms, struct buf *out)
{
    struct history_entry *copy = NULL;
    size_t ncopy = 0, first = 0;
    int64_t oldest = 0;

    pthread_mutex_lock(&h->lock);
    if (h->count)
        oldest = at(h, 0)->ts_ms;
    while (first < h->count && at(h, first)->ts_ms < since_ms)
        first++;
    if (first < h->count) {
        size_t k = first;
        while (k > 0 && !at(h, k)->keyframe)
            k--;
        ncopy = h->count - k;
        copy = xcalloc(ncopy, sizeof(*copy));
        for (size_t i = 0; i < ncopy; i++) {
            struct history_entry *e = at(h, k + i);
            copy[i] = *e;
            copy[i].z = xmalloc(e->zlen ? e->zlen : 1);
            memcpy(copy[i].z, e->z, e->zlen);
            e->dict->refs++;
        }
    }
    pthread_mutex_unlock(&h->lock);

    buf_printf(out, "{\"interval_ms\":%lld,\"oldest_ms\":%lld,\"segments\":[",
               (long long)h->interval_ms, (long long)oldest);
    uint64_t *vals = NULL;
    size_t nvals = 0;
    struct history_dict *seg = NULL;
    int any_sample = 0;
    for (size_t i = 0; i < ncopy; i++) {
        struct history_entry *e = &copy[i];
        size_t n = e->dict->n;
        uLongf raw_len = (uLongf)(n * sizeof(uint64_t));
        uint64_t *bits = xmalloc(raw_len ? raw_len : 1);
        if (uncompress((Bytef *)bits, &raw_len, e->z, e->zlen) != Z_OK ||
            raw_len != n * sizeof(uint64_t)) {
            free(bits);
            continue;
        }
        if (e->keyframe || nvals != n) {
            free(vals);
            vals = bits;
            nvals = n;
        } else {
            for (size_t j = 0; j < n; j++)
                vals[j] ^= bits[j];
            free(bits);
        }
        if (e->ts_ms < since_ms || (until_ms > 0 && e->ts_ms > until_ms))
            continue;
        if (e->dict != seg) {
            if (seg)
                buf_puts(out, "]},");
            seg = e->dict;
            buf_puts(out, "{\"series\":[");
            for (size_t j = 0; j < n; j++) {
                if (j)
                    buf_putc(out, ',');
                json_string(out, seg->keys + seg->off[j], seg->len[j]);
            }
            buf_puts(out, "],\"samples\":[");
            any_sample = 0;
        }
        buf_puts(out, any_sample ? ",[" : "[");
        any_sample = 1;
        buf_printf(out, "%lld", (long long)e->ts_ms);
        for (size_t j = 0; j < n; j++) {
            double v;
            memcpy(&v, &vals[j], sizeof(v));
            buf_putc(out, ',');
            json_value(out, v);
        }
        buf_putc(out, ']');
    }
    if (seg)
        buf_puts(out, "]}");
    buf_puts(out, "]}\n");
    free(vals);

    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < ncopy; i++) {
        free(copy[i].z);
        dict_unref(copy[i].dict);
    }
    pthread_mutex_unlock(&h->lock);
    free(copy);
}
