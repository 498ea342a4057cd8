/* The recent-window summary: quantiles by nearest rank over the newest
 * SUMMARY_WINDOW observations (older ones leave the quantiles but stay in
 * count, sum and max), and the exposition Prometheus reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/lib/summary.h"

static void quantiles(void **state)
{
    (void)state;
    struct summary *s = calloc(1, sizeof(*s));
    assert_true(summary_quantile(s, 0.99) == 0);
    for (int i = 100; i >= 1; i--) /* 1..100, out of order */
        summary_add(s, i);
    assert_true(summary_quantile(s, 0.5) == 50);
    assert_true(summary_quantile(s, 0.9) == 90);
    assert_true(summary_quantile(s, 0.99) == 99);
    assert_true(summary_quantile(s, 1) == 100);
    /* a slow outlier long ago leaves the window, not the max */
    summary_add(s, 5000);
    for (int i = 0; i < SUMMARY_WINDOW; i++)
        summary_add(s, 0.25);
    assert_true(summary_quantile(s, 0.99) == 0.25);
    assert_true(s->max == 5000);
    assert_int_equal(s->count, 101 + SUMMARY_WINDOW);
    free(s);
}

static void exposition(void **state)
{
    (void)state;
    struct summary *s = calloc(1, sizeof(*s));
    struct buf b;
    buf_init(&b, 0);
    for (int i = 1; i <= 200; i++)
        summary_add(s, i / 1000.0);
    summary_write(&b, "x_seconds", "How long.", s);
    assert_non_null(strstr(b.data, "# TYPE x_seconds summary\n"));
    assert_non_null(strstr(b.data, "x_seconds{quantile=\"0.5\"} 0.1\n"));
    assert_non_null(strstr(b.data, "x_seconds{quantile=\"0.99\"} 0.198\n"));
    assert_non_null(strstr(b.data, "x_seconds_count 200\n"));
    assert_non_null(strstr(b.data, "x_seconds_sum 20.1\n"));
    assert_non_null(strstr(b.data, "# TYPE x_seconds_max gauge\nx_seconds_max 0.2\n"));
    buf_free(&b);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quantiles),
        cmocka_unit_test(exposition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
