/* A bounded cache of decoded chunk columns: the raw samples of one series
 * in one stored chunk, so that a dashboard asking for the same day again
 * (every refresh) decompresses nothing. Keyed by the chunk's rowid and a
 * hash of its bytes (a rowid freed by retention may be given to another
 * chunk), and the series. Least recently used entries go first. Any
 * thread. */
#ifndef GF_TVCACHE_H
#define GF_TVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb.h"

struct tvcache;

/* A cache of at most max_bytes of samples (0: no cache, every call a miss). */
struct tvcache *tvcache_new(size_t max_bytes);
void tvcache_free(struct tvcache *c);

/* Calls emit with the cached samples of series in chunk (rowid, hash) and
 * returns 1, or returns 0 when they are not cached. emit runs with the
 * cache locked: it must only copy. */
int tvcache_get(struct tvcache *c, int64_t rowid, uint64_t hash, uint64_t series,
                void (*emit)(void *arg, const struct tsdb_tv *v, size_t n), void *arg);

/* Keeps a copy of n samples (n may be 0: the chunk has none of the series). */
void tvcache_put(struct tvcache *c, int64_t rowid, uint64_t hash, uint64_t series,
                 const struct tsdb_tv *v, size_t n);

/* Entries, bytes held, hits and misses so far. */
void tvcache_stats(struct tvcache *c, size_t *entries, size_t *bytes, uint64_t *hits,
                   uint64_t *misses);

#endif
