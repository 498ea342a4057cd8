/* The decoded-chunk cache: a chained hash table of entries on a doubly
 * linked recency list, under one mutex (lookups are short copies). */
#include "tvcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/xalloc.h"

struct entry {
    int64_t rowid;
    uint64_t hash, series;
    struct tsdb_tv *v;
    size_t n;
    struct entry *hnext;       /* bucket chain */
    struct entry *prev, *next; /* recency: head is the newest */
};

struct tvcache {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, entries, bytes, max;
    struct entry *head, *tail;
    uint64_t hits, misses;
};

#define ENTRY_BYTES(n) (sizeof(struct entry) + (n) * sizeof(struct tsdb_tv))

struct tvcache *tvcache_new(size_t max_bytes)
{
    struct tvcache *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->max = max_bytes;
    c->nbuckets = 4096;
    c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
    return c;
}

void tvcache_free(struct tvcache *c)
{
    if (!c)
        return;
    for (struct entry *e = c->head, *next; e; e = next) {
        next = e->next;
        free(e->v);
        free(e);
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static size_t slot(const struct tvcache *c, int64_t rowid, uint64_t hash, uint64_t series)
{
    uint64_t h = hash ^ ((uint64_t)rowid * 0x9E3779B97F4A7C15ULL) ^ (series * 0xC2B2AE3D27D4EB4FULL);
    h ^= h >> 29;
    return (size_t)(h & (c->nbuckets - 1));
}

static void unlink_lru(struct tvcache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(struct tvcache *c, struct entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static struct entry **find(struct tvcache *c, int64_t rowid, uint64_t hash, uint64_t series)
{
    struct entry **pp = &c->buckets[slot(c, rowid, hash, series)];
    while (*pp && !((*pp)->rowid == rowid && (*pp)->hash == hash && (*pp)->series == series))
        pp = &(*pp)->hnext;
    return pp;
}

int tvcache_get(struct tvcache *c, int64_t rowid, uint64_t hash, uint64_t series,
                void (*emit)(void *arg, const struct tsdb_tv *v, size_t n), void *arg)
{
    if (!c || !c->max)
        return 0;
    pthread_mutex_lock(&c->lock);
    struct entry *e = *find(c, rowid, hash, series);
    if (e) {
        unlink_lru(c, e);
        push_front(c, e);
        emit(arg, e->v, e->n);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return e != NULL;
}

/* Drops the least recently used entries until bytes fit (lock held). */
static void evict(struct tvcache *c, size_t room)
{
    while (c->tail && c->bytes + room > c->max) {
        struct entry *e = c->tail;
        unlink_lru(c, e);
        struct entry **pp = find(c, e->rowid, e->hash, e->series);
        *pp = e->hnext;
        c->bytes -= ENTRY_BYTES(e->n);
        c->entries--;
        free(e->v);
        free(e);
    }
}

void tvcache_put(struct tvcache *c, int64_t rowid, uint64_t hash, uint64_t series,
                 const struct tsdb_tv *v, size_t n)
{
    if (!c || !c->max || ENTRY_BYTES(n) > c->max / 4)
        return;
    struct entry *e = xcalloc(1, sizeof(*e));
    e->rowid = rowid;
    e->hash = hash;
    e->series = series;
    e->n = n;
    if (n) {
        e->v = xmalloc(n * sizeof(*v));
        memcpy(e->v, v, n * sizeof(*v));
    }
    pthread_mutex_lock(&c->lock);
    struct entry **pp = find(c, rowid, hash, series);
    if (*pp) { /* another query cached it meanwhile */
        pthread_mutex_unlock(&c->lock);
        free(e->v);
        free(e);
        return;
    }
    evict(c, ENTRY_BYTES(n));
    pp = find(c, rowid, hash, series);
    *pp = e;
    push_front(c, e);
    c->bytes += ENTRY_BYTES(n);
    c->entries++;
    if (c->entries > c->nbuckets * 2) { /* grow: rehash every entry */
        size_t nb = c->nbuckets * 4;
        struct entry **b = xcalloc(nb, sizeof(*b));
        for (struct entry *x = c->head; x; x = x->next) {
            c->nbuckets = nb; /* slot() reads it */
            size_t s = slot(c, x->rowid, x->hash, x->series);
            x->hnext = b[s];
            b[s] = x;
        }
        free(c->buckets);
        c->buckets = b;
        c->nbuckets = nb;
    }
    pthread_mutex_unlock(&c->lock);
}

void tvcache_stats(struct tvcache *c, size_t *entries, size_t *bytes, uint64_t *hits,
                   uint64_t *misses)
{
    pthread_mutex_lock(&c->lock);
    *entries = c->entries;
    *bytes = c->bytes;
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}
