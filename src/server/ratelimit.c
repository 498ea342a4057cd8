/* Token buckets in a fixed table: a caller's bucket is found by a hash of
 * its key; a full table reuses the bucket unused longest (a caller so
 * evicted starts again with a full bucket, which errs on the side of
 * admitting). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/hash.h"
#include "../lib/xalloc.h"

#define SLOTS 4096
#define PROBE 8

struct bucket {
    char key[80];
    double tokens;
    int64_t at_ms; /* when tokens was right; 0: free */
};

struct ratelimit {
    pthread_mutex_t lock;
    double per_ms, burst;
    struct bucket b[SLOTS];
};

struct ratelimit *ratelimit_new(int64_t per_s, int64_t burst)
{
    struct ratelimit *rl = xcalloc(1, sizeof(*rl));
    pthread_mutex_init(&rl->lock, NULL);
    rl->per_ms = (double)per_s / 1000.0;
    rl->burst = (double)(burst > 0 ? burst : 1);
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

/* key's bucket, or a free or the stalest one of its probe run (lock held). */
static struct bucket *find(struct ratelimit *rl, const char *key)
{
    size_t h = (size_t)hash_bytes(key, strlen(key)), stalest = h % SLOTS;
    for (size_t i = 0; i < PROBE; i++) {
        struct bucket *b = &rl->b[(h + i) % SLOTS];
        if (b->at_ms && !strcmp(b->key, key))
            return b;
        if (!b->at_ms || b->at_ms < rl->b[stalest].at_ms)
            stalest = (h + i) % SLOTS;
    }
    struct bucket *b = &rl->b[stalest];
    snprintf(b->key, sizeof(b->key), "%s", key);
    b->tokens = rl->burst;
    b->at_ms = 0;
    return b;
}

int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now, int64_t *retry_ms)
{
    if (!rl || rl->per_ms <= 0)
        return 0;
    pthread_mutex_lock(&rl->lock);
    struct bucket *b = find(rl, key);
    if (b->at_ms && now > b->at_ms)
        b->tokens += (double)(now - b->at_ms) * rl->per_ms;
    if (b->tokens > rl->burst)
        b->tokens = rl->burst;
    b->at_ms = now > 0 ? now : 1;
    int rc = 0;
    if (b->tokens >= 1) {
        b->tokens -= 1;
    } else {
        *retry_ms = (int64_t)((1 - b->tokens) / rl->per_ms) + 1;
        rc = -1;
    }
    pthread_mutex_unlock(&rl->lock);
    return rc;
}
