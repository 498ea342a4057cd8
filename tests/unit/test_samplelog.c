/* Tests for src/server/store/samplelog.c: what is written is replayed in
 * order and bit for bit (integers, fractions, NaN payloads, -0), a torn
 * tail ends the replay of its segment only, rotation and deletion of
 * segments. */
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/lib/buf.h"
#include "../../src/server/store/samplelog.h"


/* The replay written out as text, one line per record. */
static void t_group(void *arg, uint64_t id, const char *job, const char *inst)
{
    buf_printf(arg, "group %llu %s/%s\n", (unsigned long long)id, job, inst);
}
static void t_series(void *arg, uint64_t id, uint64_t gid, const char *key, size_t len)
{
    buf_printf(arg, "series %llu %llu %.*s\n", (unsigned long long)id, (unsigned long long)gid,
               (int)len, key);
}
static void t_sample(void *arg, uint64_t id, int64_t ts, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    buf_printf(arg, "sample %llu %lld %016llx\n", (unsigned long long)id, (long long)ts,
               (unsigned long long)bits);
}
static void t_seal(void *arg, uint64_t gid, int which)
{
    buf_printf(arg, "seal %llu %d\n", (unsigned long long)gid, which);
}
static void t_commit(void *arg)
{
    buf_puts(arg, "commit\n");
}
static const struct slog_ops OPS = {t_group, t_series, t_sample, t_seal, t_commit};

static struct slog *open_log(const char *sub)
{
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, sub);
    struct slog *l = slog_open(path, err, sizeof(err));
    if (!l)
        fail_msg("%s", err);
    return l;
}

static void replay(const char *sub, struct buf *out, struct slog_stats *st)
{
    char err[256];
    struct slog *l = open_log(sub);
    assert_int_equal(slog_replay(l, &OPS, out, err, sizeof(err)), 0);
    slog_stats(l, st);
    slog_close(l, 0);
}

static void round_trip(void **state)
{
    (void)state;
    struct buf want, got;
    struct slog_stats st;
    const double vals[] = {0, 1, -1, 42, 1e15, 9007199254740993.0, 0.5, -0.0, 1e300, -3.25,
                           NAN, INFINITY};
    char err[256];

    buf_init(&want, 0);
    buf_init(&got, 0);
    struct slog *l = open_log("rt");
    assert_int_equal(slog_start(l, err, sizeof(err)), 0);
    slog_group(l, 3, "job", "host:9100");
    t_group(&want, 3, "job", "host:9100");
    slog_series(l, 70000, 3, "m{job=\"job\"}", 12);
    t_series(&want, 70000, 3, "m{job=\"job\"}", 12);
    uint64_t stale_bits = 0x7ff0000000000002ULL;
    double stale;
    memcpy(&stale, &stale_bits, 8);
    for (int i = 0; i < 20000; i++) { /* past one run: more than one record */
        uint64_t id = i % 3 ? 70000 : 5;
        int64_t ts = 1795000000000LL + (i % 7 == 3 ? -86400000LL : i * 1000LL);
        double v = i % 50 == 49 ? stale : vals[i % 12];
        slog_sample(l, id, ts, v);
        t_sample(&want, id, ts, v);
        if (i == 12345) {
            slog_seal(l, 3, SLOG_OOO);
            t_seal(&want, 3, SLOG_OOO);
            slog_commit(l);
            t_commit(&want);
        }
    }
    /* timestamps from the ends of the range (imports may say anything) */
    slog_sample(l, 9, INT64_MAX, 1);
    t_sample(&want, 9, INT64_MAX, 1);
    slog_sample(l, 9, INT64_MIN, 2);
    t_sample(&want, 9, INT64_MIN, 2);
    assert_int_equal(slog_flush(l), 0);
    slog_close(l, 0);
    replay("rt", &got, &st);
    assert_int_equal(st.replayed_samples, 20002);
    assert_int_equal(st.torn_bytes, 0);
    assert_string_equal(got.data, want.data);
    buf_free(&want);
    buf_free(&got);
}

/* A crash in the middle of a write: the records before the tear come back,
 * the next segment is read too. */
static void torn_tail(void **state)
{
    (void)state;
    struct buf got;
    struct slog_stats st;
    char err[256], path[160];

    struct slog *l = open_log("torn");
    assert_int_equal(slog_start(l, err, sizeof(err)), 0);
    for (int i = 0; i < 10; i++) {
        slog_sample(l, 1, 1000 + i, i);
        assert_int_equal(slog_flush(l), 0); /* one record each */
    }
    slog_close(l, 0);
    snprintf(path, sizeof(path), "%s/torn/%016llu.seg", tmpdir, 1ULL);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - 3), 0);
    l = open_log("torn");
    assert_int_equal(slog_start(l, err, sizeof(err)), 0); /* segment 2 */
    slog_sample(l, 1, 5000, 7);
    assert_int_equal(slog_flush(l), 0);
    slog_close(l, 0);

    buf_init(&got, 0);
    replay("torn", &got, &st);
    assert_int_equal(st.replayed_samples, 10); /* 9 before the tear, 1 after */
    assert_true(st.torn_bytes > 0);
    assert_non_null(strstr(got.data, "sample 1 1008 "));
    assert_null(strstr(got.data, "sample 1 1009 "));
    assert_non_null(strstr(got.data, "sample 1 5000 "));
    buf_free(&got);

    /* a flipped byte inside a record is found by the check */
    snprintf(path, sizeof(path), "%s/torn/%016llu.seg", tmpdir, 2ULL);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\xff", 1, 10), 1);
    close(fd);
    buf_init(&got, 0);
    replay("torn", &got, &st);
    assert_int_equal(st.replayed_samples, 9);
    buf_free(&got);
}

static void rotate_and_drop(void **state)
{
    (void)state;
    char err[256];
    struct slog_stats st;

    struct slog *l = open_log("rot");
    assert_int_equal(slog_start(l, err, sizeof(err)), 0);
    assert_int_equal(slog_segment(l), 1);
    slog_sample(l, 1, 1, 1);
    assert_int_equal(slog_flush(l), 0);
    slog_maybe_rotate(l, 3600000, 10); /* over 10 bytes: a new segment */
    slog_sync_closed(l);
    assert_int_equal(slog_segment(l), 2);
    slog_maybe_rotate(l, 3600000, 10); /* empty and young: kept */
    assert_int_equal(slog_segment(l), 2);
    slog_sample(l, 1, 2, 2);
    assert_int_equal(slog_flush(l), 0);
    slog_stats(l, &st);
    assert_int_equal(st.segments, 2);
    slog_drop_before(l, 2);
    slog_stats(l, &st);
    assert_int_equal(st.segments, 1);
    slog_close(l, 0);
    struct buf got;
    buf_init(&got, 0);
    replay("rot", &got, &st);
    assert_string_equal(got.data, "sample 1 2 4000000000000000\n");
    buf_free(&got);
    l = open_log("rot");
    slog_close(l, 1); /* everything committed: nothing left */
    replay("rot", &got, &st);
    assert_int_equal(st.segments, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(torn_tail),
        cmocka_unit_test(rotate_and_drop),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
