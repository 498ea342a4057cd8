/* Tests for src/server/ingest.c: batches, the series-text key cache (its
 * growth, its reset, and the store's labels in place of keys), and the writer queue storing into a real store. */
#include <unistd.h>

#include "testutil.h"

#include "../../src/lib/hash.h"
#include "../../src/server/ingest.h"

struct collect {
    struct ingest_batch *b;
    struct key_cache *cache;
    const struct prom_label *extra;
    size_t nextra;
};

static int on_sample(void *arg, const struct prom_sample *s)
{
    struct collect *c = arg;
    if (c->cache)
        assert_int_equal(ingest_batch_add_cached(c->b, c->cache, s, c->extra, c->nextra, 5), 0);
    else
        assert_int_equal(ingest_batch_add(c->b, s, c->extra, c->nextra, 5), 0);
    return 0;
}

static struct ingest_batch *parse(const char *text, struct key_cache *cache)
{
    struct prom_label extra[1] = {{"job", 3, "j", 1}};
    struct collect c = {ingest_batch_new(), cache, extra, 1};
    struct prom_error err;
    assert_int_equal(prom_parse(text, strlen(text), 0, NULL, on_sample, &c, &err), 0);
    return c.b;
}

static char *many_series(int n)
{
    struct buf b;
    buf_init(&b, 0);
    for (int i = 0; i < n; i++)
        buf_printf(&b, "m{z=\"%d\",a=\"x\\\"y\"} %d\n", i, i);
    return buf_detach(&b, NULL);
}

/* Batches a and b hold the same samples under the same key bytes. */
static void assert_same_keys(const struct ingest_batch *a, const struct ingest_batch *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < b->n; i++) {
        assert_int_equal(a->items[i].key_len, b->items[i].key_len);
        assert_memory_equal(a->keys.data + a->items[i].key_off, b->keys.data + b->items[i].key_off,
                            b->items[i].key_len);
        assert_true(a->items[i].value == b->items[i].value);
    }
}

static void same_keys_with_and_without_cache(void **state)
{
    char *text = many_series(3000); /* the cache grows from 1024 slots twice */
    struct key_cache *cache = key_cache_new(100000);
    struct ingest_batch *plain = parse(text, NULL);

    (void)state;
    for (int round = 0; round < 2; round++) { /* second round: all hits */
        struct ingest_batch *cached = parse(text, cache);
        assert_same_keys(cached, plain);
        ingest_batch_free(cached);
    }
    /* keys are canonical: labels sorted, extra label added, values escaped */
    assert_memory_equal(plain->keys.data, "m{a=\"x\\\"y\",job=\"j\",z=\"0\"}",
                        plain->items[0].key_len);
    ingest_batch_free(plain);
    key_cache_free(cache);
    free(text);
}

static void a_full_cache_starts_over(void **state)
{
    char *text = many_series(500);
    struct key_cache *cache = key_cache_new(64);
    struct ingest_batch *plain = parse(text, NULL);
    struct ingest_batch *cached = parse(text, cache);

    (void)state;
    assert_int_equal(cached->n, 500);
    for (size_t i = 0; i < plain->n; i++)
        assert_memory_equal(cached->keys.data + cached->items[i].key_off,
                            plain->keys.data + plain->items[i].key_off, plain->items[i].key_len);
    ingest_batch_free(plain);
    ingest_batch_free(cached);
    key_cache_free(cache);
    free(text);
}

/* A store in a new folder dir (room for 22 bytes). */
static struct tsdb *open_store(char *dir)
{
    char path[64], err[256];
    struct tsdb_config cfg;
    strcpy(dir, "/tmp/gf-ingest-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tsdb.db", dir);
    tsdb_config_defaults(&cfg);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    assert_non_null(db);
    return db;
}

static void close_store(struct tsdb *db, const char *dir)
{
    char cmd[96];
    tsdb_close(db);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void writer_stores_batches(void **state)
{
    char dir[32];

    (void)state;
    struct tsdb *db = open_store(dir);
    struct ingest *in = ingest_start(db, 1000, NULL, NULL);
    char *text = many_series(300);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ingest_push(in, parse(text, NULL), 5000), 0);
    ingest_sync(in);
    struct ingest_stats st;
    ingest_stats(in, &st);
    assert_int_equal(st.samples, 3000);
    assert_int_equal(st.queued_samples, 0);
    struct tsdb_stats ts;
    tsdb_stats(db, &ts);
    assert_int_equal(ts.series, 300);
    ingest_stop(in);
    close_store(db, dir);
    free(text);
}

/* Once the store has a target's series, its cache keeps the store's labels
 * instead of each key: it holds less, and the keys it gives are the same
 * bytes (they find the same series). */
static void settled_cache_uses_the_store(void **state)
{
    char dir[32];

    (void)state;
    struct tsdb *db = open_store(dir);
    struct ingest *in = ingest_start(db, 100000, NULL, NULL);
    char *text = many_series(600);
    struct key_cache *cache = key_cache_new(100000);
    struct ingest_batch *plain = parse(text, NULL);
    assert_int_equal(ingest_push(in, parse(text, cache), 5000), 0);
    size_t before = key_cache_bytes(cache);
    key_cache_settle(cache, db); /* the writer may not have stored them yet */
    ingest_sync(in);
    key_cache_settle(cache, db); /* it has now */
    size_t after = key_cache_bytes(cache);
    print_message("key cache: %zu -> %zu bytes for 600 series\n", before, after);
    /* neither the text ("m{z=...,a=...}", 18-20 bytes) nor the key (as
     * long) is kept for a series the store has: known by two hashes */
    assert_true(after < before - 600 * 36);
    for (int round = 0; round < 2; round++) {
        struct ingest_batch *cached = parse(text, cache);
        assert_same_keys(cached, plain);
        assert_int_equal(ingest_push(in, cached, 5000), 0);
        key_cache_settle(cache, db);
    }
    ingest_sync(in);
    struct tsdb_stats ts;
    tsdb_stats(db, &ts);
    assert_int_equal(ts.series, 600); /* the same series, not new ones */
    ingest_batch_free(plain);
    key_cache_free(cache);
    ingest_stop(in);
    close_store(db, dir);
    free(text);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The second hash that stands in for a settled entry's text: every one-bit
 * change of a series line changes it, and 20,000 lines that differ little
 * (GPU index, UUID digits) get 20,000 values. */
static void fingerprints_tell_texts_apart(void **state)
{
    (void)state;
    char line[160];
    int n = snprintf(line, sizeof(line),
                     "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\","
                     "UUID=\"GPU-fa4e0000-5e1f-4c1d-9a52-000000000001\","
                     "device=\"nvidia0\",Hostname=\"gpu-000\"}");
    uint64_t base = hash_bytes_fp(line, (size_t)n);
    for (int i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            line[i] ^= (char)(1 << bit);
            assert_true(hash_bytes_fp(line, (size_t)n) != base);
            line[i] ^= (char)(1 << bit);
        }
    assert_true(hash_bytes_fp(line, (size_t)n - 1) != base);
    enum { N = 20000 };
    uint64_t *fp = malloc(N * sizeof(*fp));
    for (int i = 0; i < N; i++) {
        n = snprintf(line, sizeof(line), "m{gpu=\"%d\",UUID=\"GPU-%012d\"}", i % 8, i / 8);
        fp[i] = hash_bytes_fp(line, (size_t)n);
        assert_true(fp[i] != hash_bytes(line, (size_t)n));
    }
    qsort(fp, N, sizeof(*fp), cmp_u64);
    for (int i = 1; i < N; i++)
        assert_true(fp[i] != fp[i - 1]);
    free(fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_keys_with_and_without_cache),
        cmocka_unit_test(a_full_cache_starts_over),
        cmocka_unit_test(writer_stores_batches),
        cmocka_unit_test(settled_cache_uses_the_store),
        cmocka_unit_test(fingerprints_tell_texts_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
