/* Tests for src/server/store/tsdb.c and selector.c: keys, appends, queries
 * from heads and chunks, roll-up maths, stale markers, out-of-order writes,
 * persistence across a restart, and retention. */
#include <math.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/lib/now.h"
#include "../../src/lib/xalloc.h"
#include "../../src/server/store/tsdb.h"

/* 11:07:00 UTC three days ago, set in main: a minute boundary well inside
 * the raw retention of the day the test runs (a fixed date ran out of it
 * 15 days later). */
static int64_t T0;


static struct tsdb *open_db(void)
{
    char path[128], err[256];
    struct tsdb_config cfg;

    tsdb_config_defaults(&cfg);
    cfg.head_rows = 50;
    /* retention is the server's setting (15 d raw, 90 d 1 m by default) */
    cfg.retention_ms[TSDB_RAW] = 15LL * 86400000;
    cfg.retention_ms[TSDB_1M] = 90LL * 86400000;
    snprintf(path, sizeof(path), "%s/tsdb.db", tmpdir);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    if (!db)
        fail_msg("open: %s", err);
    return db;
}

static void append(struct tsdb *db, const char *key, int64_t ts, double v)
{
    struct tsdb_sample s = {key, strlen(key), ts, v};
    assert_int_equal(tsdb_append(db, &s, 1), 1);
}

static uint64_t id_of(struct tsdb *db, const char *selector)
{
    struct selector sel;
    struct tsdb_series_info *list;
    char err[128];
    assert_int_equal(sel_parse(selector, &sel, err, sizeof(err)), 0);
    size_t n = tsdb_select(db, &sel, 0, &list);
    sel_free(&sel);
    assert_int_equal(n, 1);
    uint64_t id = list[0].id;
    free(list[0].key);
    free(list);
    return id;
}

/* Reads of recent windows answer from memory only when memory holds all
 * of the window: samples that came late for an earlier time (an import,
 * a backfill) and went to a chunk through the out-of-order path are read
 * too (they were missed when the window began in the head sealed last). */
static void recent_reads_see_late_samples(void **state)
{
    (void)state;
    struct tsdb *db = open_db();
    int64_t t0 = (now_wall_ms() - 3600000) / 1000 * 1000;
    for (int k = 0; k < 80; k++) /* 50 rows sealed (the previous head), 30 open */
        append(db, "late_a{instance=\"i\",job=\"j\"}", t0 + k * 1000, k);
    for (int k = 0; k < 40; k++) /* older than the open head: out of order */
        append(db, "late_b{instance=\"i\",job=\"j\"}", t0 + (10 + k) * 1000 + 500, k);
    assert_int_equal(tsdb_commit(db, now_wall_ms()), 0); /* the late ones go to a chunk */
    uint64_t ids[2] = {id_of(db, "late_a"), id_of(db, "late_b")};
    struct tsdb_tv *out[2];
    long n[2];
    assert_int_equal(tsdb_samples_many(db, ids, 2, t0 + 20000, t0 + 79000, out, n), 0);
    assert_int_equal(n[0], 60);
    assert_int_equal(n[1], 30); /* b at 20.5 s ... 49.5 s */
    assert_true(out[1][0].t == t0 + 20500 && out[1][29].t == t0 + 49500);
    free(out[0]);
    free(out[1]);
    struct tsdb_point *pts;
    int covered;
    long got = tsdb_recent(db, ids[1], t0 + 20000, t0 + 79000, &pts, &covered);
    assert_true(!covered || got == 30);
    free(pts);
    tsdb_close(db);
}

struct each_seen {
    long calls, count[4];
    int stop_after; /* answer nonzero at this call (0: never) */
};

static int each_record(void *arg, size_t i, const struct tsdb_tv *pts, long n)
{
    struct each_seen *e = arg;
    assert_true(i < 4);
    assert_int_equal(e->count[i], 0); /* once a series */
    for (long k = 1; k < n; k++)
        assert_true(pts[k].t > pts[k - 1].t);
    e->count[i] = n;
    return ++e->calls == e->stop_after;
}

/* The streaming read gives each series (sealed chunks and heads, two
 * groups, ids in no order, one unknown) what the copying read gives, once
 * each; a callback's nonzero answer stops it. */
static void samples_each_matches_many(void **state)
{
    (void)state;
    struct tsdb *db = open_db();
    int64_t t0 = (now_wall_ms() - 7200000) / 1000 * 1000;
    for (int k = 0; k < 400; k++) { /* past a head: chunks and a head */
        append(db, "each_m{instance=\"a\",job=\"j\",gpu=\"0\"}", t0 + k * 1000, k);
        append(db, "each_m{instance=\"a\",job=\"j\",gpu=\"1\"}", t0 + k * 1000, 2 * k);
        if (k % 2 == 0)
            append(db, "each_m{instance=\"b\",job=\"j\",gpu=\"0\"}", t0 + k * 1000 + 7, k);
    }
    assert_int_equal(tsdb_commit(db, now_wall_ms()), 0);
    uint64_t ids[4] = {id_of(db, "each_m{instance=\"b\"}"), id_of(db, "each_m{gpu=\"1\"}"),
                       999999, id_of(db, "each_m{instance=\"a\",gpu=\"0\"}")};
    struct tsdb_tv *out[4];
    long n[4];
    assert_int_equal(tsdb_samples_many(db, ids, 4, t0 + 5000, t0 + 390000, out, n), 0);
    assert_int_equal(n[0], 192); /* b: even seconds 6..388 (+7 ms) */
    assert_int_equal(n[1], 386);
    assert_int_equal(n[2], 0);
    assert_int_equal(n[3], 386);
    assert_true(out[1][0].t == t0 + 5000 && out[1][0].v == 10);
    struct each_seen seen = {0};
    assert_int_equal(tsdb_samples_each(db, ids, 4, t0 + 5000, t0 + 390000, each_record, &seen), 0);
    assert_int_equal(seen.calls, 3);
    for (int i = 0; i < 4; i++)
        assert_int_equal(seen.count[i], n[i]);
    struct each_seen stop = {.stop_after = 1};
    assert_int_equal(tsdb_samples_each(db, ids, 4, t0 + 5000, t0 + 390000, each_record, &stop), 1);
    assert_int_equal(stop.calls, 1);
    for (int i = 0; i < 4; i++)
        free(out[i]);
    tsdb_close(db);
}

static void canonical_keys(void **state)
{
    struct buf b;
    struct prom_label l[3] = {{"zeta", 4, "1", 1}, {"Alpha", 5, "a\"b\\c\nd", 7}, {"empty", 5, "", 0}};
    struct prom_label extra[1] = {{"zeta", 4, "over", 4}};

    (void)state;
    buf_init(&b, 0);
    assert_int_equal(tsdb_key("m", 1, l, 3, extra, 1, &b), 0);
    assert_string_equal(b.data, "m{Alpha=\"a\\\"b\\\\c\\nd\",zeta=\"over\"}");
    buf_reset(&b);
    struct prom_label bad[1] = {{"x", 1, "\xff", 1}};
    assert_int_equal(tsdb_key("m", 1, bad, 1, NULL, 0, &b), -1);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void raw_and_rollups(void **state)
{
    struct tsdb *db = open_db();
    const char *g = "gpu_util{instance=\"h1:9445\",job=\"agent\"}";
    const char *c = "energy_total{instance=\"h1:9445\",job=\"agent\"}";
    struct tsdb_point *p;

    (void)state;
    /* 10 minutes at 1 s: util = second of the minute; a counter +10/s that
     * resets to 0 at minute 5 */
    for (int i = 0; i < 600; i++) {
        append(db, g, T0 + i * 1000, i % 60);
        append(db, c, T0 + i * 1000, i < 300 ? 10.0 * i : 10.0 * (i - 300));
        if (i % 100 == 99)
            tsdb_commit(db, T0 + i * 1000);
    }
    tsdb_commit(db, T0 + 600000);
    uint64_t gid = id_of(db, "gpu_util"), cid = id_of(db, "energy_total");
    long n = tsdb_points(db, gid, TSDB_RAW, T0, T0 + 600000, &p);
    assert_int_equal(n, 600);
    for (long i = 0; i < n; i++) {
        assert_int_equal(p[i].t, T0 + i * 1000);
        assert_true(p[i].last == (double)(i % 60));
    }
    free(p);
    /* minute buckets: 9 are closed, the 10th is open (in the accumulator) */
    n = tsdb_points(db, gid, TSDB_1M, T0, T0 + 600000, &p);
    assert_int_equal(n, 10);
    for (long i = 0; i < n; i++) {
        assert_int_equal(p[i].t, T0 + i * 60000);
        assert_true(p[i].count == 60);
        assert_true(p[i].min == 0 && p[i].max == 59 && p[i].last == 59);
        assert_true(fabs(p[i].sum / p[i].count - 29.5) < 1e-9);
    }
    free(p);
    n = tsdb_points(db, cid, TSDB_1M, T0, T0 + 600000, &p);
    double total = 0;
    for (long i = 0; i < n; i++)
        total += p[i].inc;
    /* 299 steps of 10, a reset that counts from 0, then 299 steps of 10 */
    assert_true(total == 10.0 * 299 + 0 + 10.0 * 299);
    free(p);
    /* the raw increase agrees with the roll-up's */
    n = tsdb_points(db, cid, TSDB_RAW, T0, T0 + 600000, &p);
    double raw_total = 0;
    for (long i = 0; i < n; i++)
        raw_total += p[i].inc;
    assert_true(raw_total == total);
    free(p);
    tsdb_close(db);

    /* after a restart everything is still there, from chunks only */
    db = open_db();
    n = tsdb_points(db, id_of(db, "gpu_util"), TSDB_RAW, T0, T0 + 600000, &p);
    assert_int_equal(n, 600);
    free(p);
    n = tsdb_points(db, id_of(db, "gpu_util"), TSDB_1M, T0, T0 + 600000, &p);
    assert_int_equal(n, 10); /* the open bucket was written at close */
    free(p);
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    assert_int_equal(st.series, 2);
    tsdb_close(db);
}

static void stale_and_out_of_order(void **state)
{
    struct tsdb *db = open_db();
    const char *a = "a{instance=\"h2:1\",job=\"x\"}", *b = "b{instance=\"h2:1\",job=\"x\"}";
    struct tsdb_point *p;

    (void)state;
    int64_t t = T0 + 3600000;
    append(db, a, t, 1);
    append(db, b, t, 2);
    tsdb_scrape_done(db, "x", "h2:1", t);
    append(db, a, t + 1000, 1); /* b vanished from this scrape */
    tsdb_scrape_done(db, "x", "h2:1", t + 1000);
    append(db, a, t + 2000, 1);
    append(db, b, t + 2000, 5); /* and came back */
    tsdb_scrape_done(db, "x", "h2:1", t + 2000);
    long n = tsdb_points(db, id_of(db, "b"), TSDB_RAW, t, t + 5000, &p);
    assert_int_equal(n, 2); /* the stale marker is not a point */
    assert_int_equal(p[1].t, t + 2000);
    assert_true(p[1].inc == 0); /* no increase across a stale marker */
    free(p);
    /* an older sample (a backfill) lands in the side head and is found */
    append(db, a, t - 5000, 7);
    n = tsdb_points(db, id_of(db, "a"), TSDB_RAW, t - 10000, t + 5000, &p);
    assert_int_equal(n, 4);
    assert_true(p[0].last == 7 && p[0].t == t - 5000);
    free(p);
    tsdb_commit(db, t + 3000);
    n = tsdb_points(db, id_of(db, "a"), TSDB_RAW, t - 10000, t + 5000, &p);
    assert_int_equal(n, 4);
    free(p);
    tsdb_close(db);
}

static void retention_drops_old_chunks(void **state)
{
    struct tsdb *db = open_db();
    const char *k = "old{instance=\"h3:1\",job=\"x\"}";
    struct tsdb_point *p;

    (void)state;
    for (int i = 0; i < 200; i++)
        append(db, k, T0 + i * 1000, i);
    tsdb_commit(db, T0 + 200000);
    uint64_t id = id_of(db, "old");
    long n = tsdb_points(db, id, TSDB_RAW, T0, T0 + 200000, &p);
    assert_int_equal(n, 200);
    free(p);
    /* 16 days later the raw tier (15 days) is gone; the 1 m tier is not */
    tsdb_commit(db, T0 + 16LL * 86400000);
    n = tsdb_points(db, id, TSDB_RAW, T0, T0 + 200000, &p);
    assert_true(n < 200 && n >= 0); /* only what was still in the head */
    free(p);
    n = tsdb_points(db, id, TSDB_1M, T0, T0 + 200000, &p);
    assert_true(n >= 3);
    free(p);
    tsdb_close(db);
}

/* label lookup over {"name", "value", ..., NULL} */
static const char *pairs_get(void *arg, const char *name)
{
    const char **p = arg;
    for (; *p; p += 2)
        if (!strcmp(p[0], name))
            return p[1];
    return NULL;
}

static void selectors(void **state)
{
    struct selector sel;
    char err[128];

    (void)state;
    assert_int_equal(sel_parse("up{job=\"a\",instance=~\"h.*\",x!=\"1\",y!~\"z|w\"}", &sel, err,
                               sizeof(err)),
                     0);
    assert_int_equal(sel.n, 5);
    assert_string_equal(sel.metric, "up");
    sel_free(&sel);
    assert_int_equal(sel_parse("up{instance=~\"gpu-[0-9]+:9445|node-.*\",x=~\"a{2,3}b?\"}", &sel,
                               err, sizeof(err)),
                     0);
    sel_free(&sel);
    /* literal alternations match by strcmp, exactly as the regex would */
    assert_int_equal(sel_parse("{__name__=~\"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_DEV_GPU_TEMP\",gpu!~\"1|2\"}",
                               &sel, err, sizeof(err)),
                     0);
    assert_int_equal(sel.m[0].nalts, 2);
    const char *cases[][3] = {{"DCGM_FI_DEV_GPU_UTIL", "0", "1"}, {"DCGM_FI_DEV_GPU_TEMP", "3", "1"},
                              {"DCGM_FI_DEV_GPU_UTILX", "0", "0"}, {"XDCGM_FI_DEV_GPU_TEMP", "0", "0"},
                              {"DCGM_FI_DEV_GPU_UTIL", "1", "0"}, {"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_DEV_GPU_TEMP", "0", "0"},
                              {"", "0", "0"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *labels[] = {"__name__", cases[i][0], "gpu", cases[i][1], NULL};
        int want = cases[i][2][0] == '1';
        assert_int_equal(sel_matches(&sel, pairs_get, labels), want);
        /* the same through regexec */
        int re = regexec(&sel.m[0].re, cases[i][0], 0, NULL, 0) == 0 &&
                 regexec(&sel.m[1].re, cases[i][1], 0, NULL, 0) != 0;
        assert_int_equal(re, want);
    }
    sel_free(&sel);
    /* anything else stays a regex */
    assert_int_equal(sel_parse("{__name__=~\"DCGM_.*|up\"}", &sel, err, sizeof(err)), 0);
    assert_int_equal(sel.m[0].nalts, 0);
    sel_free(&sel);
    const char *bad[] = {"", "{}", "{a=\"\"}", "up{a=b}", "up{a=\"x\"", "up{=\"x\"}",
                         "up{a=~\"(\"}", "up junk", "{a!=\"x\"}",
                         /* costly to compile: refused before regcomp */
                         "up{a=~\"h++++++++\"}", "up{a=~\"(ab)+\"}", "up{a=~\"x{99}\"}",
                         /* back-references (issue 18, defect 1) */
                         "{__name__=~\"(.*)(.*)\\\\2x\"}", "up{a=~\"(a)\\\\1\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sel_parse(bad[i], &sel, err, sizeof(err)) == 0)
            fail_msg("accepted '%s'", bad[i]);
        sel_free(&sel);
    }
}

/* One sample from the far future is refused and counted; the samples after
 * it go to the head as before (issue 18, defect 13). */
static void far_future_refused(void **state)
{
    (void)state;
    char path[128], err[256];
    struct tsdb_config cfg;
    tsdb_config_defaults(&cfg);
    cfg.max_future_ms = 600000;
    snprintf(path, sizeof(path), "%s/future.db", tmpdir);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    assert_non_null(db);
    const char *k = "f{instance=\"h:1\",job=\"x\"}";
    int64_t now = now_wall_ms();
    struct tsdb_sample far = {k, strlen(k), now + 86400000LL * 365, 1};
    assert_int_equal(tsdb_append(db, &far, 1), 0);
    for (int i = 0; i < 10; i++)
        append(db, k, now + i * 1000, i);
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    assert_int_equal(st.future_refused, 1);
    assert_int_equal(st.head_samples, 10); /* all in the head, none out of order */
    struct tsdb_point *p;
    long n = tsdb_points(db, id_of(db, "f"), TSDB_RAW, now, now + 86400000LL * 400, &p);
    assert_int_equal(n, 10);
    free(p);
    tsdb_close(db);
}

/* A query over the series index stops at its budget and says so, instead
 * of holding the store (issue 18, defect 1). */
static void query_budget(void **state)
{
    (void)state;
    char path[128], err[256];
    struct tsdb_config cfg;
    tsdb_config_defaults(&cfg);
    cfg.query_budget_ms = 1;
    snprintf(path, sizeof(path), "%s/budget.db", tmpdir);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    assert_non_null(db);
    struct tsdb_sample *batch = calloc(30000, sizeof(*batch));
    char (*keys)[64] = calloc(30000, 64);
    for (int i = 0; i < 30000; i++) {
        snprintf(keys[i], 64, "b{instance=\"h:1\",job=\"x\",n=\"%d\"}", i);
        batch[i] = (struct tsdb_sample){keys[i], strlen(keys[i]), T0, i};
    }
    assert_int_equal(tsdb_append(db, batch, 30000), 30000);
    struct selector sel;
    struct tsdb_series_info *list;
    assert_int_equal(sel_parse("{n=~\".*1.*2.*3.*4.*5.*\"}", &sel, err, sizeof(err)), 0);
    assert_true(tsdb_select(db, &sel, 0, &list) == TSDB_BUDGET);
    assert_null(list);
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(tsdb_labels_json(db, &sel, "n", INT64_MIN, INT64_MAX, &out), -1);
    assert_int_equal(tsdb_latest_json(db, &sel, &out), -1);
    buf_free(&out);
    sel_free(&sel);
    free(batch);
    free(keys);
    tsdb_close(db);
}

static struct tsdb *open_at(const char *name, size_t head_rows)
{
    char path[128], err[256];
    struct tsdb_config cfg;
    tsdb_config_defaults(&cfg);
    cfg.head_rows = head_rows;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    if (!db)
        fail_msg("open %s: %s", path, err);
    return db;
}

static const char *CK[3] = {"a{instance=\"h\",job=\"j\",n=\"1\"}", "a{instance=\"h\",job=\"j\",n=\"2\"}",
                            "a{instance=\"h\",job=\"j\",n=\"3\"}"};

/* One number from a query of the database tmpdir/name. */
static long sql_number(const char *name, const char *sql)
{
    char path[128];
    sqlite3 *c;
    sqlite3_stmt *st;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    assert_int_equal(sqlite3_open(path, &c), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return n;
}

/* What a kill -9 leaves: the child stores and exits without closing. */
static void crash_after(void (*work)(struct tsdb *db))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        struct tsdb *db = open_at("crash.db", 10);
        work(db);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void first_life(struct tsdb *db)
{
    for (int i = 0; i < 35; i++)
        for (int k = 0; k < 2; k++)
            append(db, CK[k], T0 + i * 1000, i + k * 100);
    tsdb_commit(db, now_wall_ms()); /* three full heads written: logged as committed */
    for (int i = 35; i < 42; i++)
        for (int k = 0; k < (i >= 38 ? 3 : 2); k++)
            append(db, CK[k], T0 + i * 1000, i + k * 100);
    append(db, CK[0], T0 - 5000, 99); /* out of order */
    tsdb_scrape_done(db, "j", "h", T0 + 42000);
}

static void second_life(struct tsdb *db)
{
    for (int i = 43; i < 48; i++)
        append(db, CK[0], T0 + i * 1000, i);
}

static long raw_points(struct tsdb *db, const char *key, struct tsdb_point **p)
{
    char sel[128];
    snprintf(sel, sizeof(sel), "%s", key);
    return tsdb_points(db, id_of(db, sel), TSDB_RAW, T0 - 60000, T0 + 3600000, p);
}


/* kill -9 loses nothing the store had taken: the sample log brings back the
 * heads that were only in memory (raw, out of order, a series made after
 * the last commit, stale markers) and nothing committed is stored twice
 * (issue 18, defect 17). */
static void crash_replay(void **state)
{
    (void)state;
    crash_after(first_life);
    struct tsdb *db = open_at("crash.db", 10);
    struct tsdb_point *p;
    long n = raw_points(db, CK[0], &p);
    assert_int_equal(n, 43); /* 42 in order, 1 out of order; the stale marker is no point */
    assert_int_equal(p[0].t, T0 - 5000);
    assert_true(p[0].last == 99);
    for (int i = 0; i < 42; i++) {
        assert_int_equal(p[i + 1].t, T0 + i * 1000);
        assert_true(p[i + 1].last == i);
    }
    free(p);
    n = raw_points(db, CK[2], &p);
    assert_int_equal(n, 4);
    assert_true(p[3].last == 41 + 200);
    free(p);
    int64_t ts;
    double v;
    /* the stale marker came back too: the series has ended */
    assert_int_equal(tsdb_last(db, id_of(db, CK[1]), &ts, &v), 1);
    tsdb_close(db);
    /* rows 0-29 committed before the kill, 30-42 and the out-of-order one
     * after the replay: none twice */
    assert_int_equal(sql_number("crash.db", "SELECT sum(nrows) FROM chunks WHERE tier = 0"),
                     30 + 13 + 1);

    /* a clean close leaves no log behind; a second crash replays again */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls %s/crash.db-samples)\"", tmpdir);
    assert_int_equal(system(cmd), 0);
    crash_after(second_life);
    db = open_at("crash.db", 10);
    n = raw_points(db, CK[0], &p);
    assert_int_equal(n, 48);
    assert_true(p[47].last == 47);
    free(p);
    tsdb_close(db);
}

/* A commit that fails (the database locked or full) keeps the new series
 * with its chunks for the next one: both are written together, so no chunk
 * names a series the database lacks, and ids are never handed out twice. */
static void failed_commit_keeps_series(void **state)
{
    (void)state;
    char path[128];
    sqlite3 *other;
    struct tsdb *db = open_at("locked.db", 10);
    snprintf(path, sizeof(path), "%s/locked.db", tmpdir);
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 12; i++)
        append(db, "x{instance=\"h\",job=\"j\"}", T0 + i * 1000, i);
    assert_int_equal(tsdb_commit(db, now_wall_ms()), -1);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    for (int i = 0; i < 12; i++)
        append(db, "y{instance=\"h\",job=\"j\"}", T0 + i * 1000, 1000 + i);
    assert_int_equal(tsdb_checkpoint(db, now_wall_ms()), 0);
    tsdb_close(db);
    db = open_at("locked.db", 10);
    struct tsdb_point *p;
    long n = tsdb_points(db, id_of(db, "x"), TSDB_RAW, T0, T0 + 60000, &p);
    assert_int_equal(n, 12);
    assert_true(p[11].last == 11);
    free(p);
    n = tsdb_points(db, id_of(db, "y"), TSDB_RAW, T0, T0 + 60000, &p);
    assert_int_equal(n, 12);
    assert_true(p[0].last == 1000);
    free(p);
    tsdb_close(db);
}


/* 8 GPUs x 4 metrics x 1200 samples, once as one scrape group sharing
 * timestamps, once without job/instance where every GPU has its own clock
 * (the metrics of one GPU share it). */
static void store_shape(const char *name, int own_clock)
{
    struct tsdb *db = open_at(name, 120);
    char keys[32][128];
    struct tsdb_sample batch[32];
    uint32_t seed = 7;
    static const char *metric[4] = {"power", "temp", "util", "clock"};
    for (int i = 0; i < 1200; i++) { /* one import batch a second */
        int64_t scrape_jitter = (int64_t)(i * 7 % 4);
        for (int g = 0; g < 8; g++) {
            seed = seed * 1103515245 + 12345;
            int64_t gpu_jitter = g * 13 + (int64_t)(seed >> 8 & 3);
            for (int m = 0; m < 4; m++) {
                char *key = keys[g * 4 + m];
                if (own_clock)
                    snprintf(key, 128, "%s{gpu=\"%d\"}", metric[m], g);
                else
                    snprintf(key, 128, "%s{gpu=\"%d\",instance=\"n:1\",job=\"dcgm\"}",
                             metric[m], g);
                seed = seed * 1103515245 + 12345;
                /* watts with three decimals as dcgm-exporter has them, then
                 * integers; the same jitter, per GPU or per scrape */
                double v = m ? (double)(40 + g + (seed >> 16 & 7) * m)
                             : 300 + g * 10 + (double)(seed >> 16 & 0x7ff) / 1000;
                batch[g * 4 + m] = (struct tsdb_sample){
                    key, strlen(key), T0 + i * 1000 + (own_clock ? gpu_jitter : scrape_jitter), v};
            }
        }
        assert_int_equal(tsdb_append(db, batch, 32), 32);
    }
    assert_int_equal(tsdb_checkpoint(db, now_wall_ms()), 0);
    struct tsdb_point *p;
    long n = tsdb_points(db, id_of(db, "power{gpu=\"5\"}"), TSDB_RAW, T0, T0 + 3600000, &p);
    assert_int_equal(n, 1200);
    for (int i = 0; i < 1200; i++)
        assert_true(p[i].last >= 350 && p[i].last < 352.048);
    free(p);
    tsdb_close(db);
}

/* The store finds the series that share timestamps itself: samples of one
 * group each on its own clock cost no more than the same samples scraped
 * together (issue 18, defect 14: they took twice the bytes). */
static void own_timestamps_stored_dense(void **state)
{
    (void)state;
    store_shape("dense.db", 0);
    store_shape("own.db", 1);
    const char *bytes = "SELECT sum(length(data)) FROM chunks WHERE tier = 0";
    long dense = sql_number("dense.db", bytes), own = sql_number("own.db", bytes);
    print_message("raw chunk bytes: shared timestamps %ld, own timestamps %ld\n", dense, own);
    /* every GPU's own timestamps are information the shared clock lacks:
     * 1.26 times the bytes here (they were 2 to 4 times) */
    assert_true(own * 100 <= dense * 135);
}


/* Roll-up heads are sealed every 5 minutes (memory holds minutes of them,
 * not an hour) and the small chunks of a complete hour are merged into one
 * without changing a point. */
/* What a scraped target's series cost in memory: 500 series of one
 * target (GPU-like gauges: small integers, a few constants, a counter),
 * a full raw head of 120 rows at 2 s and the one sealed before it, and
 * their roll-ups. Plain arrays took 960 bytes a head per series (x 2 with
 * the sealed copy); compressed heads, moved rather than copied at a seal,
 * must hold both in well under that, and every value must read back. */
static void memory_per_series(void **state)
{
    (void)state;
    struct tsdb *db = open_at("mem.db", 120);
    enum { N = 500, ROWS = 240 };
    char **keys = xcalloc(N, sizeof(*keys));
    struct tsdb_sample *batch = xcalloc(N, sizeof(*batch));
    for (int k = 0; k < N; k++) {
        keys[k] = xmalloc(160);
        snprintf(keys[k], 160,
                 "DCGM_FI_DEV_M%d{Hostname=\"h1\",UUID=\"GPU-%08d\",gpu=\"%d\",instance=\"h1:9400\","
                 "job=\"gpu\"}",
                 k / 8, k, k % 8);
    }
    for (int r = 0; r < ROWS; r++) {
        for (int k = 0; k < N; k++) {
            double v = k % 5 == 0   ? 81559.0                       /* a constant */
                       : k % 5 == 1 ? (double)(r * 1000 + k)        /* a counter */
                       : k % 5 == 2 ? 40.0 + (double)((r * 7 + k) % 13) /* a small gauge */
                       : k % 5 == 3 ? 250.5 + (double)((r + k) % 40) / 4.0
                                    : (double)((r * 31 + k) % 100);
            batch[k] = (struct tsdb_sample){keys[k], strlen(keys[k]), T0 + r * 2000LL, v};
        }
        assert_int_equal(tsdb_append(db, batch, N), N);
    }
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    assert_int_equal(st.series, N);
    double head = (double)st.head_bytes / N, series = (double)st.series_bytes / N;
    print_message("memory per series: heads %.0f bytes, series %.0f bytes\n", head, series);
    assert_true(head < 700);   /* plain: 2 x 960 for the raw heads alone */
    assert_true(series < 400); /* labels once, packed */
    /* the open head and the one sealed before it read back exactly */
    uint64_t id = id_of(db, "DCGM_FI_DEV_M0{UUID=\"GPU-00000003\"}");
    struct tsdb_tv *tv;
    long counts;
    assert_int_equal(tsdb_samples_many(db, &id, 1, T0, T0 + ROWS * 2000LL, &tv, &counts), 0);
    assert_int_equal(counts, ROWS);
    for (int r = 0; r < ROWS; r++)
        assert_true(tv[r].t == T0 + r * 2000LL && tv[r].v == 250.5 + (double)((r + 3) % 40) / 4.0);
    free(tv);
    for (int k = 0; k < N; k++)
        free(keys[k]);
    free(keys);
    free(batch);
    tsdb_close(db);
}

static void rollups_compacted(void **state)
{
    (void)state;
    struct tsdb *db = open_at("compact.db", 120);
    const char *k[3] = {"c{instance=\"h\",job=\"j\",n=\"1\"}", "c{instance=\"h\",job=\"j\",n=\"2\"}",
                        "c{instance=\"h\",job=\"j\",n=\"3\"}"};
    for (int i = 0; i < 3 * 360; i++) /* 3 hours every 10 s */
        for (int j = 0; j < 3; j++)
            append(db, k[j], T0 + i * 10000LL, (i % 37) * (j + 1));
    assert_int_equal(tsdb_commit(db, T0 + 1800000), 0); /* nothing complete yet */
    struct tsdb_point *before, *after;
    uint64_t id = id_of(db, "c{n=\"2\"}");
    long n = tsdb_points(db, id, TSDB_1M, T0, T0 + 3 * 3600000LL, &before);
    assert_true(n >= 175);
    long small = sql_number("compact.db", "SELECT count(*) FROM chunks WHERE tier = 1");
    assert_true(small >= 30); /* 36 of 5 rows */
    assert_int_equal(tsdb_commit(db, T0 + 5 * 3600000LL), 0);
    long merged = sql_number("compact.db", "SELECT count(*) FROM chunks WHERE tier = 1");
    print_message("1-minute chunks: %ld sealed, %ld after compaction\n", small, merged);
    assert_true(merged <= 4);
    assert_int_equal(tsdb_points(db, id, TSDB_1M, T0, T0 + 3 * 3600000LL, &after), n);
    assert_memory_equal(before, after, (size_t)n * sizeof(*before));
    free(before);
    free(after);
    tsdb_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canonical_keys),
        cmocka_unit_test(raw_and_rollups),
        cmocka_unit_test(stale_and_out_of_order),
        cmocka_unit_test(retention_drops_old_chunks),
        cmocka_unit_test(far_future_refused),
        cmocka_unit_test(query_budget),
        cmocka_unit_test(selectors),
        cmocka_unit_test(crash_replay),
        cmocka_unit_test(failed_commit_keeps_series),
        cmocka_unit_test(own_timestamps_stored_dense),
        cmocka_unit_test(rollups_compacted),
        cmocka_unit_test(memory_per_series),
        cmocka_unit_test(recent_reads_see_late_samples),
        cmocka_unit_test(samples_each_matches_many),
    };
    T0 = (now_wall_ms() / 86400000 - 3) * 86400000 + 40020000;
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
