/* Tests for src/lib/expo.c: the exposition writer. */
#include <math.h>

#include "testutil.h"

#include "../../src/lib/expo.h"

static void escapes_label_values(void **state)
{
    struct buf b;
    struct expo_writer w;
    struct expo_label l[1] = {{"path", "C:\\dir \"x\"\nend"}};

    (void)state;
    buf_init(&b, 0);
    expo_writer_init(&w, &b);
    expo_family(&w, "m", EXPO_GAUGE, "Help with \\ and\nnewline.");
    expo_sample(&w, l, 1, 1);
    assert_string_equal(b.data, "# HELP m Help with \\\\ and\\nnewline.\n"
                                "# TYPE m gauge\n"
                                "m{path=\"C:\\\\dir \\\"x\\\"\\nend\"} 1\n");
    expo_writer_free(&w);
    buf_free(&b);
}

static void replaces_invalid_utf8(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 0);
    /* a lone continuation byte, an overlong '/', then valid "é" */
    expo_escape_label_value(&b, "a\x80" "b\xc0\xaf" "c\xc3\xa9");
    assert_string_equal(b.data, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c\xc3\xa9");
    buf_free(&b);
}

static void formats_values(void **state)
{
    char s[40];
    double vals[] = {0.1, 631.95, 1e-7, 123456789.123, 2.5e20, -3.75};

    (void)state;
    expo_format_value(s, sizeof(s), NAN);
    assert_string_equal(s, "NaN");
    expo_format_value(s, sizeof(s), INFINITY);
    assert_string_equal(s, "+Inf");
    expo_format_value(s, sizeof(s), -INFINITY);
    assert_string_equal(s, "-Inf");
    expo_format_value(s, sizeof(s), 81559);
    assert_string_equal(s, "81559");
    expo_format_value(s, sizeof(s), -42);
    assert_string_equal(s, "-42");
    expo_format_value(s, sizeof(s), 631.95);
    assert_string_equal(s, "631.95");
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        expo_format_value(s, sizeof(s), vals[i]);
        assert_true(strtod(s, NULL) == vals[i]);
    }
}

static void empty_family_writes_nothing(void **state)
{
    struct buf b;
    struct expo_writer w;

    (void)state;
    buf_init(&b, 0);
    expo_writer_init(&w, &b);
    expo_family(&w, "unsupported_everywhere", EXPO_GAUGE, "x");
    expo_family(&w, "c_total", EXPO_COUNTER, "A counter.");
    expo_sample(&w, NULL, 0, 3);
    assert_null(strstr(b.data, "unsupported_everywhere"));
    assert_non_null(strstr(b.data, "# TYPE c_total counter\nc_total 3\n"));
    expo_writer_free(&w);
    buf_free(&b);
}

static void indexes_series_keys(void **state)
{
    struct buf b;
    struct expo_writer w;
    struct expo_label l[2] = {{"gpu", "0"}, {"UUID", "GPU-1"}};

    (void)state;
    buf_init(&b, 0);
    expo_writer_init(&w, &b);
    expo_family(&w, "DCGM_FI_DEV_GPU_UTIL", EXPO_GAUGE, "GPU utilization (in %).");
    expo_sample(&w, l, 2, 77);
    expo_sample(&w, NULL, 0, 5);
    assert_int_equal(w.nseries, 2);
    assert_memory_equal(b.data + w.series[0].key_off, "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-1\"}",
                        w.series[0].key_len);
    assert_int_equal(w.series[1].key_len, strlen("DCGM_FI_DEV_GPU_UTIL"));
    assert_true(w.values[0] == 77);
    expo_writer_free(&w);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_label_values),
        cmocka_unit_test(replaces_invalid_utf8),
        cmocka_unit_test(formats_values),
        cmocka_unit_test(empty_family_writes_nothing),
        cmocka_unit_test(indexes_series_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
