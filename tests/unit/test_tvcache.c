/* The decoded-chunk cache: hits give back what was put, a chunk rewritten
 * under the same rowid (other bytes) is a miss, the bound holds by
 * dropping the least recently used, and a zero-byte cache keeps nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/server/store/tvcache.h"

struct got {
    struct tsdb_tv v[64];
    size_t n;
};

static void copy(void *arg, const struct tsdb_tv *v, size_t n)
{
    struct got *g = arg;
    if (n) /* an entry of no samples has no array */
        memcpy(g->v, v, n * sizeof(*v));
    g->n = n;
}

static void hits_and_misses(void **state)
{
    (void)state;
    struct tvcache *c = tvcache_new(1 << 20);
    struct tsdb_tv v[3] = {{1000, 1.5}, {2000, 2.5}, {3000, -1}};
    struct got g = {0};
    assert_int_equal(tvcache_get(c, 7, 0xabc, 42, copy, &g), 0);
    tvcache_put(c, 7, 0xabc, 42, v, 3);
    assert_int_equal(tvcache_get(c, 7, 0xabc, 42, copy, &g), 1);
    assert_int_equal(g.n, 3);
    assert_true(g.v[2].t == 3000 && g.v[2].v == -1);
    assert_int_equal(tvcache_get(c, 7, 0xabd, 42, copy, &g), 0); /* rowid reused by other bytes */
    assert_int_equal(tvcache_get(c, 7, 0xabc, 43, copy, &g), 0); /* another series */
    tvcache_put(c, 8, 1, 42, NULL, 0);                           /* the chunk lacks the series */
    g.n = 99;
    assert_int_equal(tvcache_get(c, 8, 1, 42, copy, &g), 1);
    assert_int_equal(g.n, 0);
    size_t entries, bytes;
    uint64_t hits, misses;
    tvcache_stats(c, &entries, &bytes, &hits, &misses);
    assert_int_equal(entries, 2);
    assert_int_equal(hits, 2);
    assert_int_equal(misses, 3);
    tvcache_free(c);
}

static void bounded_lru(void **state)
{
    (void)state;
    struct tsdb_tv v[32];
    for (int i = 0; i < 32; i++)
        v[i] = (struct tsdb_tv){i, i};
    struct tvcache *c = tvcache_new(64 * 1024);
    struct got g;
    for (int64_t r = 0; r < 5000; r++) {
        tvcache_put(c, r, 1, 1, v, 32);
        if (r > 0)
            tvcache_get(c, 0, 1, 1, copy, &g); /* kept in use: never the oldest */
    }
    size_t entries, bytes;
    uint64_t hits, misses;
    tvcache_stats(c, &entries, &bytes, &hits, &misses);
    assert_true(bytes <= 64 * 1024);
    assert_true(entries > 10 && entries < 5000);
    assert_int_equal(tvcache_get(c, 0, 1, 1, copy, &g), 1);    /* the one in use stayed */
    assert_int_equal(tvcache_get(c, 1, 1, 1, copy, &g), 0);    /* an old one went */
    assert_int_equal(tvcache_get(c, 4999, 1, 1, copy, &g), 1); /* the newest is there */
    tvcache_free(c);

    c = tvcache_new(0); /* no cache */
    tvcache_put(c, 1, 1, 1, v, 32);
    assert_int_equal(tvcache_get(c, 1, 1, 1, copy, &g), 0);
    tvcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hits_and_misses),
        cmocka_unit_test(bounded_lru),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
