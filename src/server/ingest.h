/* The store writer: the only thread that writes time series. Scrapes,
 * backfills and imports hand it batches through a bounded queue. */
#ifndef GF_INGEST_H
#define GF_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/promparse.h"
#include "store/tsdb.h"

/* A batch of samples with their keys; build with ingest_batch_add. */
struct ingest_batch {
    struct buf keys;        /* canonical keys back to back */
    struct ingest_item {
        size_t key_off, key_len;
        int64_t ts_ms;
        double value;
    } *items;
    size_t n, cap;
    /* when set, the batch is one scrape of job/instance at scrape_ts_ms:
     * series of that target missing from it get stale markers */
    int is_scrape;
    char job[65], instance[300];
    int64_t scrape_ts_ms;
};

struct ingest_batch *ingest_batch_new(void);
void ingest_batch_free(struct ingest_batch *b);

/* Adds one sample of a parsed line with extra labels (job, instance,
 * server, ...), using ts_ms when the line has no timestamp. Returns 0, or -1
 * when the sample cannot be keyed (invalid UTF-8, key too long). */
int ingest_batch_add(struct ingest_batch *b, const struct prom_sample *s,
                     const struct prom_label *extra, size_t nextra, int64_t ts_ms);

/* Remembers the canonical key of each series text seen ("name{labels}" as
 * an exporter wrote it), so repeated scrapes and imports skip sorting,
 * escaping and validating labels. Valid for one set of extra labels. */
struct key_cache;
struct key_cache *key_cache_new(size_t max_entries);
void key_cache_free(struct key_cache *c);
void key_cache_clear(struct key_cache *c);
/* After a scrape: entries whose series db has by now keep the store's
 * labels instead of their key (written from them on a hit: a key is most
 * of an entry's bytes, and a target's cache is kept for as long as it is
 * scraped), and what growing left spare is given back. db NULL: only the
 * latter. The cache must not outlive db. */
void key_cache_settle(struct key_cache *c, struct tsdb *db);
/* Bytes the cache holds (its table and text). */
size_t key_cache_bytes(const struct key_cache *c);

/* ingest_batch_add through a cache (NULL: none). */
int ingest_batch_add_cached(struct ingest_batch *b, struct key_cache *c,
                            const struct prom_sample *s, const struct prom_label *extra,
                            size_t nextra, int64_t ts_ms);

/* Called with each batch after it is stored (the remote_write forwarder). */
typedef void (*ingest_hook)(void *arg, const struct ingest_batch *b);

struct ingest;

/* Starts the writer over db; max_queued bounds the samples waiting. */
struct ingest *ingest_start(struct tsdb *db, size_t max_queued, ingest_hook hook, void *hook_arg);

/* Hands a batch over (ownership passes). Waits up to wait_ms for room;
 * returns 0, or -1 when the queue stayed full (the batch is freed and
 * counted as dropped). */
int ingest_push(struct ingest *in, struct ingest_batch *b, int wait_ms);

/* Blocks until everything pushed so far is stored and committed. */
void ingest_sync(struct ingest *in);

struct ingest_stats {
    uint64_t batches, samples, dropped_batches, queued_samples;
    int64_t stalled_ms; /* samples wait and none was stored for this long (0: moving) */
};
void ingest_stats(struct ingest *in, struct ingest_stats *st);

/* Stores what is queued, commits, and stops the thread. */
void ingest_stop(struct ingest *in);

#endif
