/* Store writer thread and its queue. Commits at most once a second so
 * SQLite sees few, large transactions. */
#include "ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/now.h"
#include "../lib/xalloc.h"
#include "store/serieskey.h"

struct node {
    struct ingest_batch *b;
    struct node *next;
};

struct ingest {
    struct tsdb *db;
    ingest_hook hook;
    void *hook_arg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t more, room, synced;
    struct node *head, *tail;
    size_t queued, max_queued;
    uint64_t pushed_seq, done_seq;
    int64_t progress_ns; /* when the writer last stored a batch or committed */
    int stop;
    struct ingest_stats st;
};

struct ingest_batch *ingest_batch_new(void)
{
    struct ingest_batch *b = xcalloc(1, sizeof(*b));
    buf_init(&b->keys, 0);
    return b;
}

void ingest_batch_free(struct ingest_batch *b)
{
    if (!b)
        return;
    buf_free(&b->keys);
    free(b->items);
    free(b);
}

int ingest_batch_add(struct ingest_batch *b, const struct prom_sample *s,
                     const struct prom_label *extra, size_t nextra, int64_t ts_ms)
{
    size_t off = b->keys.len;

    if (tsdb_key(s->name, s->name_len, s->labels, s->nlabels, extra, nextra, &b->keys) < 0)
        return -1;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->items = xrealloc(b->items, b->cap * sizeof(*b->items));
    }
    b->items[b->n++] = (struct ingest_item){off, b->keys.len - off, s->has_ts ? s->ts_ms : ts_ms,
                                            s->value};
    return 0;
}

/* A series text the cache knows: its bytes at off in the cache's one
 * buffer (no allocation per entry), its key's bytes after them. Once the
 * store has the series, neither: lab points to the store's labels, and the
 * text is known by its length and two independent hashes (hash_bytes_fp),
 * not its bytes — those were the largest part of the cache (~125 bytes a
 * series; issue 18, memory per series). */
struct kc_entry {
    uint64_t hash;
    const char *lab; /* the store's labels, or NULL: text and key in the buffer */
    union {
        struct {
            uint32_t off, key_len; /* !lab */
        };
        uint64_t fp; /* lab: hash_bytes_fp of the text */
    };
    uint32_t raw_len; /* 0: an empty slot */
};

struct key_cache {
    struct kc_entry *slots;
    size_t cap, n, max;
    size_t keyed; /* entries holding their key's bytes */
    int grew;     /* entries added since key_cache_settle */
    struct buf text;
};

struct key_cache *key_cache_new(size_t max_entries)
{
    struct key_cache *c = xcalloc(1, sizeof(*c));
    c->max = max_entries ? max_entries : 65536;
    c->cap = 1024; /* grows with the series a target really has */
    c->slots = xcalloc(c->cap, sizeof(*c->slots));
    buf_init(&c->text, 0);
    return c;
}

/* Doubles the table, keeping every entry. */
static void key_cache_grow(struct key_cache *c)
{
    size_t cap = c->cap * 2;
    struct kc_entry *slots = xcalloc(cap, sizeof(*slots));

    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].raw_len)
            continue;
        size_t j = c->slots[i].hash & (cap - 1);
        while (slots[j].raw_len)
            j = (j + 1) & (cap - 1);
        slots[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
}

void key_cache_clear(struct key_cache *c)
{
    memset(c->slots, 0, c->cap * sizeof(*c->slots));
    c->n = 0;
    c->keyed = 0;
    buf_reset(&c->text);
}

void key_cache_settle(struct key_cache *c, struct tsdb *db)
{
    if (!c)
        return;
    size_t found = 0;
    for (size_t i = 0; db && c->keyed && i < c->cap; i++) {
        struct kc_entry *e = &c->slots[i];
        if (!e->raw_len || e->lab)
            continue;
        const char *at = c->text.data + e->off;
        const char *lab = tsdb_series_labels(db, at + e->raw_len, e->key_len);
        if (!lab)
            continue;
        e->lab = lab;
        e->fp = hash_bytes_fp(at, e->raw_len);
        found++;
    }
    if (found) {
        /* the text again, with only the entries the store lacks */
        struct buf text;
        buf_init(&text, 0);
        for (size_t i = 0; i < c->cap; i++) {
            struct kc_entry *e = &c->slots[i];
            if (!e->raw_len || e->lab)
                continue;
            const char *at = c->text.data + e->off;
            e->off = (uint32_t)text.len;
            buf_append(&text, at, e->raw_len + e->key_len);
        }
        buf_free(&c->text);
        c->text = text;
        c->keyed -= found;
        c->grew = 1;
    }
    if (c->grew)
        buf_trim(&c->text); /* the doubling's spare half, for good */
    c->grew = 0;
}

size_t key_cache_bytes(const struct key_cache *c)
{
    return c ? sizeof(*c) + c->cap * sizeof(*c->slots) + c->text.cap : 0;
}

void key_cache_free(struct key_cache *c)
{
    if (!c)
        return;
    free(c->slots);
    buf_free(&c->text);
    free(c);
}

int ingest_batch_add_cached(struct ingest_batch *b, struct key_cache *c,
                            const struct prom_sample *s, const struct prom_label *extra,
                            size_t nextra, int64_t ts_ms)
{
    if (!c || !s->series_text || !s->series_text_len || s->series_text_len > 65535)
        return ingest_batch_add(b, s, extra, nextra, ts_ms);
    uint64_t h = hash_bytes(s->series_text, s->series_text_len), fp = 0;
    int have_fp = 0;
    size_t i = h & (c->cap - 1);
    for (; c->slots[i].raw_len; i = (i + 1) & (c->cap - 1)) {
        struct kc_entry *e = &c->slots[i];
        if (e->hash != h || e->raw_len != s->series_text_len)
            continue;
        if (e->lab && !have_fp) {
            fp = hash_bytes_fp(s->series_text, s->series_text_len);
            have_fp = 1;
        }
        if (e->lab ? e->fp == fp : !memcmp(c->text.data + e->off, s->series_text, e->raw_len)) {
            if (b->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 256;
                b->items = xrealloc(b->items, b->cap * sizeof(*b->items));
            }
            size_t off = b->keys.len;
            if (e->lab)
                serieskey_packed_write(e->lab, &b->keys);
            else
                buf_append(&b->keys, c->text.data + e->off + e->raw_len, e->key_len);
            b->items[b->n++] = (struct ingest_item){off, b->keys.len - off,
                                                    s->has_ts ? s->ts_ms : ts_ms, s->value};
            return 0;
        }
    }
    size_t off = b->keys.len;
    if (ingest_batch_add(b, s, extra, nextra, ts_ms) < 0)
        return -1;
    if (c->n >= c->max || c->text.len > UINT32_MAX / 2) {
        key_cache_clear(c);
        i = h & (c->cap - 1);
    } else if ((c->n + 1) * 4 > c->cap * 3) { /* three quarters full: 600 series in 1,024 slots */
        key_cache_grow(c);
        for (i = h & (c->cap - 1); c->slots[i].raw_len; i = (i + 1) & (c->cap - 1))
            ;
    }
    struct kc_entry *e = &c->slots[i];
    e->hash = h;
    e->lab = NULL;
    e->off = (uint32_t)c->text.len;
    e->raw_len = (uint32_t)s->series_text_len;
    e->key_len = (uint32_t)(b->keys.len - off);
    buf_append(&c->text, s->series_text, s->series_text_len);
    buf_append(&c->text, b->keys.data + off, e->key_len);
    c->n++;
    c->keyed++;
    c->grew = 1;
    return 0;
}

static void store(struct ingest *in, struct ingest_batch *b)
{
    struct tsdb_sample *v = xmalloc((b->n ? b->n : 1) * sizeof(*v));

    for (size_t i = 0; i < b->n; i++)
        v[i] = (struct tsdb_sample){b->keys.data + b->items[i].key_off, b->items[i].key_len,
                                    b->items[i].ts_ms, b->items[i].value};
    tsdb_append(in->db, v, b->n);
    free(v);
    if (b->is_scrape)
        tsdb_scrape_done(in->db, b->job, b->instance, b->scrape_ts_ms);
    if (in->hook)
        in->hook(in->hook_arg, b);
}

static void *writer_main(void *arg)
{
    struct ingest *in = arg;
    int64_t last_commit = now_mono_ns();

    pthread_mutex_lock(&in->lock);
    for (;;) {
        while (!in->head && !in->stop && in->done_seq == in->pushed_seq) {
            if (now_cond_wait_until(&in->more, &in->lock, now_mono_ns() + 1000000000LL) ==
                ETIMEDOUT)
                break;
        }
        struct node *n = in->head;
        if (n) {
            in->head = n->next;
            if (!in->head)
                in->tail = NULL;
        }
        int stop = in->stop && !n;
        pthread_mutex_unlock(&in->lock);
        if (n) {
            store(in, n->b);
            pthread_mutex_lock(&in->lock);
            in->progress_ns = now_mono_ns();
            in->queued -= n->b->n;
            in->st.batches++;
            in->st.samples += n->b->n;
            pthread_cond_broadcast(&in->room);
            pthread_mutex_unlock(&in->lock);
            ingest_batch_free(n->b);
            free(n);
        }
        int64_t now = now_mono_ns();
        pthread_mutex_lock(&in->lock);
        int idle = !in->head;
        uint64_t seq = in->pushed_seq;
        int want_sync = in->done_seq != seq && idle;
        pthread_mutex_unlock(&in->lock);
        if (now - last_commit > 1000000000LL || want_sync || stop) {
            tsdb_commit(in->db, now_wall_ms());
            last_commit = now;
        }
        pthread_mutex_lock(&in->lock);
        if (idle && in->done_seq != seq) {
            in->done_seq = seq;
            pthread_cond_broadcast(&in->synced);
        }
        if (stop)
            break;
    }
    pthread_mutex_unlock(&in->lock);
    return NULL;
}

struct ingest *ingest_start(struct tsdb *db, size_t max_queued, ingest_hook hook, void *hook_arg)
{
    struct ingest *in = xcalloc(1, sizeof(*in));

    in->db = db;
    in->hook = hook;
    in->hook_arg = hook_arg;
    in->max_queued = max_queued ? max_queued : 4000000;
    in->progress_ns = now_mono_ns();
    pthread_mutex_init(&in->lock, NULL);
    now_cond_init(&in->more);
    now_cond_init(&in->room);
    now_cond_init(&in->synced);
    if (pthread_create(&in->thread, NULL, writer_main, in) != 0) {
        log_error("ingest: cannot start the writer thread");
        free(in);
        return NULL;
    }
    return in;
}

int ingest_push(struct ingest *in, struct ingest_batch *b, int wait_ms)
{
    struct node *n = xmalloc(sizeof(*n));
    int64_t deadline = now_mono_ns() + (int64_t)wait_ms * 1000000LL;

    pthread_mutex_lock(&in->lock);
    /* a batch larger than the whole queue is let in when the queue is empty */
    while (in->queued && in->queued + b->n > in->max_queued) {
        if (now_cond_wait_until(&in->room, &in->lock, deadline) == ETIMEDOUT) {
            in->st.dropped_batches++;
            pthread_mutex_unlock(&in->lock);
            ingest_batch_free(b);
            free(n);
            return -1;
        }
    }
    n->b = b;
    n->next = NULL;
    if (in->tail)
        in->tail->next = n;
    else
        in->head = n;
    in->tail = n;
    in->queued += b->n;
    in->pushed_seq++;
    pthread_cond_signal(&in->more);
    pthread_mutex_unlock(&in->lock);
    return 0;
}

void ingest_sync(struct ingest *in)
{
    pthread_mutex_lock(&in->lock);
    uint64_t want = in->pushed_seq;
    pthread_cond_signal(&in->more);
    while (in->done_seq < want)
        pthread_cond_wait(&in->synced, &in->lock);
    pthread_mutex_unlock(&in->lock);
}

void ingest_stats(struct ingest *in, struct ingest_stats *st)
{
    pthread_mutex_lock(&in->lock);
    *st = in->st;
    st->queued_samples = in->queued;
    st->stalled_ms = in->queued ? (now_mono_ns() - in->progress_ns) / 1000000 : 0;
    pthread_mutex_unlock(&in->lock);
}

void ingest_stop(struct ingest *in)
{
    if (!in)
        return;
    pthread_mutex_lock(&in->lock);
    in->stop = 1;
    pthread_cond_signal(&in->more);
    pthread_mutex_unlock(&in->lock);
    pthread_join(in->thread, NULL);
    pthread_cond_destroy(&in->more);
    pthread_cond_destroy(&in->room);
    pthread_cond_destroy(&in->synced);
    pthread_mutex_destroy(&in->lock);
    free(in);
}
