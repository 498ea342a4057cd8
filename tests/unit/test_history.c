/* Tests for src/agent/history.c: the backfill ring. */
#include <jansson.h>
#include <math.h>

#include "testutil.h"

#include "../../src/agent/history.h"

/* Renders n series named s0..s{n-1} with the given values and adds them. */
static void add(struct history *h, int64_t ts, const double *vals, size_t n, const char *prefix)
{
    struct buf b;
    struct expo_writer w;

    buf_init(&b, 0);
    expo_writer_init(&w, &b);
    expo_family(&w, prefix, EXPO_GAUGE, "x");
    for (size_t i = 0; i < n; i++) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        struct expo_label l = {"i", idx};
        expo_sample(&w, &l, 1, vals[i]);
    }
    history_add(h, ts, b.data, w.series, w.values, w.nseries);
    expo_writer_free(&w);
    buf_free(&b);
}

static json_t *render(struct history *h, int64_t since, int64_t until)
{
    struct buf out;
    json_error_t err;
    json_t *j;

    buf_init(&out, 0);
    history_render_json(h, since, until, &out);
    j = json_loads(out.data, 0, &err);
    if (!j)
        fail_msg("bad JSON: %s in %s", err.text, out.data);
    buf_free(&out);
    return j;
}

static double num(json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        return !strcmp(s, "NaN") ? NAN : s[0] == '+' ? INFINITY : -INFINITY;
    }
    return json_number_value(v);
}

static void round_trips_values(void **state)
{
    struct history *h = history_new(600000, 1000);
    int64_t t0 = 1795000000000LL;

    (void)state;
    /* 150 samples: crosses group boundaries (every 60) */
    for (int k = 0; k < 150; k++) {
        double v[4] = {k, k * 0.5, k % 7 == 0 ? NAN : 1.0 / (k + 1), k == 3 ? -INFINITY : 1e300};
        add(h, t0 + k * 1000, v, 4, "m");
    }
    json_t *j = render(h, t0, 0);
    json_t *segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 1);
    json_t *seg = json_array_get(segs, 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(seg, "series"), 2)),
                        "m{i=\"2\"}");
    json_t *samples = json_object_get(seg, "samples");
    assert_int_equal(json_array_size(samples), 150);
    for (int k = 0; k < 150; k++) {
        json_t *row = json_array_get(samples, (size_t)k);
        assert_int_equal(json_integer_value(json_array_get(row, 0)), t0 + k * 1000);
        assert_true(num(json_array_get(row, 1)) == k);
        assert_true(num(json_array_get(row, 2)) == k * 0.5);
        double third = num(json_array_get(row, 3));
        if (k % 7 == 0)
            assert_true(isnan(third));
        else
            assert_true(third == 1.0 / (k + 1));
        assert_true(num(json_array_get(row, 4)) == (k == 3 ? -INFINITY : 1e300));
    }
    json_decref(j);
    history_free(h);
}

static void since_and_until_select(void **state)
{
    struct history *h = history_new(600000, 1000);
    int64_t t0 = 1795000000000LL;
    double v[1];

    (void)state;
    for (int k = 0; k < 100; k++) {
        v[0] = k;
        add(h, t0 + k * 1000, v, 1, "m");
    }
    json_t *j = render(h, t0 + 70500, 0);
    json_t *samples = json_object_get(json_array_get(json_object_get(j, "segments"), 0), "samples");
    assert_int_equal(json_array_size(samples), 29);
    /* sample 71 is the first: decoding started from its group's keyframe */
    assert_true(num(json_array_get(json_array_get(samples, 0), 1)) == 71);
    json_decref(j);
    j = render(h, t0 + 10000, t0 + 12000);
    samples = json_object_get(json_array_get(json_object_get(j, "segments"), 0), "samples");
    assert_int_equal(json_array_size(samples), 3);
    json_decref(j);
    j = render(h, t0 + 500000, 0);
    assert_int_equal(json_array_size(json_object_get(j, "segments")), 0);
    json_decref(j);
    history_free(h);
}

static void new_segment_when_series_change(void **state)
{
    struct history *h = history_new(600000, 1000);
    int64_t t0 = 1795000000000LL;
    double v[3] = {1, 2, 3};

    (void)state;
    add(h, t0, v, 2, "m");
    add(h, t0 + 1000, v, 2, "m");
    add(h, t0 + 2000, v, 3, "m"); /* a GPU appeared */
    add(h, t0 + 3000, v, 3, "m");
    json_t *j = render(h, 0 + t0, 0);
    json_t *segs = json_object_get(j, "segments");
    assert_int_equal(json_array_size(segs), 2);
    assert_int_equal(json_array_size(json_object_get(json_array_get(segs, 1), "series")), 3);
    assert_true(num(json_array_get(json_array_get(
                    json_object_get(json_array_get(segs, 1), "samples"), 1), 3)) == 3);
    json_decref(j);
    history_free(h);
}

static void keeps_the_window_and_no_more(void **state)
{
    /* keep 2 minutes of 1 s samples; feed 10 minutes */
    struct history *h = history_new(120000, 1000);
    int64_t t0 = 1795000000000LL;
    size_t samples, bytes;
    double v[50];

    (void)state;
    for (int k = 0; k < 600; k++) {
        for (int i = 0; i < 50; i++)
            v[i] = i == 0 ? k : 42; /* mostly unchanged values */
        add(h, t0 + k * 1000, v, 50, "m");
    }
    history_stats(h, &samples, &bytes);
    assert_true(samples >= 120 && samples <= 181);
    /* unchanged values compress to almost nothing */
    assert_true(bytes / samples < 60);
    json_t *j = render(h, t0 + 599000 - 120000, 0);
    json_t *rows = json_object_get(json_array_get(json_object_get(j, "segments"), 0), "samples");
    assert_int_equal(json_array_size(rows), 121);
    assert_true(num(json_array_get(json_array_get(rows, 120), 1)) == 599);
    json_decref(j);
    history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips_values),
        cmocka_unit_test(since_and_until_select),
        cmocka_unit_test(new_segment_when_series_change),
        cmocka_unit_test(keeps_the_window_and_no_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
