/* The latest sample, immutable once published: rendered /metrics text, its
 * gzip form (made once, by the first scrape that asks) and the JSON view.
 * The sampler publishes by swapping a pointer; readers hold a reference. */
#ifndef GF_AGENT_SNAPSHOT_H
#define GF_AGENT_SNAPSHOT_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct snapshot {
    int refs; /* atomic */
    uint64_t seq;
    int64_t ts_ms;
    char *text;
    size_t text_len;
    json_t *json_root; /* owned, read-only after publish */
    pthread_mutex_t lazy_lock; /* guards the lazily made forms below */
    char *gz;
    size_t gz_len;
    char *json;
    size_t json_len;
};

struct snapshot_store {
    pthread_mutex_t lock;
    struct snapshot *cur;
};

/* Takes ownership of text (malloc'd) and root. refs starts at 1 (the
 * creator's); publish hands that reference to the store. */
struct snapshot *snapshot_new(uint64_t seq, int64_t ts_ms, char *text, size_t text_len,
                              json_t *root);

/* Drops a reference; the last one frees the snapshot. Any thread. */
void snapshot_put(struct snapshot *s);

/* Gzip of text, made on first call. Returns 0 or -1 (zlib failure). The
 * returned pointer lives as long as the caller's reference. */
int snapshot_gzip(struct snapshot *s, const char **data, size_t *len);

/* Compact JSON of json_root, made on first call; lifetime as above. */
int snapshot_json(struct snapshot *s, const char **data, size_t *len);

void snapshot_store_init(struct snapshot_store *st);
void snapshot_store_free(struct snapshot_store *st);

/* Replaces the current snapshot (store takes the caller's reference). */
void snapshot_publish(struct snapshot_store *st, struct snapshot *s);

/* A new reference to the current snapshot, or NULL before the first sample.
 * Release with snapshot_put. */
struct snapshot *snapshot_get(struct snapshot_store *st);

#endif
