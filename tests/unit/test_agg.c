/* Tests for src/server/store/agg.c: the query API's per-step path
 * (agg_range) and the alert evaluator's window path (agg_recent) give the
 * same numbers on the same window, a counter with a NaN sample, a reset
 * and a stale marker in it, read from memory, from stored chunks and from
 * the 1-minute roll-up. */
#include <math.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/server/store/agg.h"

#define T0 1795000020000LL /* a minute boundary */
#define KEY "c_total{instance=\"i\",job=\"j\"}"

static char dir[64];

static struct tsdb *open_db(void)
{
    char path[128], err[256];
    struct tsdb_config cfg;
    tsdb_config_defaults(&cfg);
    snprintf(path, sizeof(path), "%s/tsdb.db", dir);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    if (!db)
        fail_msg("open: %s", err);
    return db;
}

static uint64_t series_id(struct tsdb *db)
{
    struct selector sel;
    struct tsdb_series_info *list;
    char err[128];
    assert_int_equal(sel_parse("c_total", &sel, err, sizeof(err)), 0);
    assert_int_equal(tsdb_select(db, &sel, 0, &list), 1);
    uint64_t id = list[0].id;
    free(list[0].key);
    free(list);
    sel_free(&sel);
    return id;
}

/* 10, 20, 30, NaN, 40, 5 (a reset), 15, stale, 100, 110 at 1..10 s */
static void write_counter(struct tsdb *db)
{
    const double v[] = {10, 20, 30, NAN, 40, 5, 15, -1, 100, 110};
    for (int i = 0; i < 10; i++) {
        int64_t t = T0 + (i + 1) * 1000;
        if (v[i] == -1) {
            tsdb_scrape_done(db, "j", "i", t); /* the series vanished: a stale marker */
            continue;
        }
        struct tsdb_sample s = {KEY, strlen(KEY), t, v[i]};
        assert_int_equal(tsdb_append(db, &s, 1), 1);
    }
}

/* Every function through both paths over the 10 s window. */
static void check_window(struct tsdb *db, uint64_t id)
{
    /* expected: NaN is no sample; the increase restarts at the reset (+5)
     * and does not run across the stale marker */
    const double want[AGG_FN_COUNT] = {
        [AGG_AVG] = 330.0 / 8, [AGG_MIN] = 5, [AGG_MAX] = 110, [AGG_LAST] = 110,
        [AGG_SUM] = 330, [AGG_COUNT] = 8, [AGG_RATE] = 5.5, [AGG_INCREASE] = 55,
    };
    for (int f = 0; f < AGG_FN_COUNT; f++) {
        double by_range, by_window;
        /* the bucket [T0+1, T0+10001) is the window (T0, T0+10000] */
        assert_int_equal(agg_range(db, id, TSDB_RAW, T0 + 1, 10000, 1, f, &by_range), 0);
        assert_int_equal(agg_recent(db, id, T0 + 10000, 10000, f, &by_window), 0);
        if (by_range != want[f] || by_window != want[f])
            fail_msg("fn %d: range %g, window %g, want %g", f, by_range, by_window, want[f]);
    }
    /* an empty window is no value on both paths */
    double v;
    assert_int_equal(agg_range(db, id, TSDB_RAW, T0 + 20000, 10000, 1, AGG_AVG, &v), 0);
    assert_true(isnan(v));
    assert_int_equal(agg_recent(db, id, T0 + 30000, 5000, AGG_AVG, &v), -1);
}

static void same_numbers(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/gf-agg-XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct tsdb *db = open_db();
    write_counter(db);
    uint64_t id = series_id(db);
    check_window(db, id); /* from the heads in memory */

    /* the 1-minute roll-up of the same minute holds the same figures */
    const enum agg_fn fns[] = {AGG_AVG, AGG_MIN, AGG_MAX, AGG_LAST, AGG_SUM, AGG_COUNT, AGG_INCREASE};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        double raw, rolled;
        assert_int_equal(agg_range(db, id, TSDB_RAW, T0, 60000, 1, fns[i], &raw), 0);
        assert_int_equal(agg_range(db, id, TSDB_1M, T0, 60000, 1, fns[i], &rolled), 0);
        if (raw != rolled)
            fail_msg("fn %d: raw %g, 1m roll-up %g", fns[i], raw, rolled);
    }
    tsdb_close(db);

    db = open_db(); /* sealed into chunks in SQLite */
    check_window(db, series_id(db));
    tsdb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void names(void **state)
{
    (void)state;
    enum agg_fn fn;
    assert_int_equal(agg_parse("rate", &fn), 0);
    assert_int_equal(fn, AGG_RATE);
    assert_int_equal(agg_parse("median", &fn), -1);
    assert_int_equal(agg_parse(NULL, &fn), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_numbers),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
