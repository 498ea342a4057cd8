/* The PromQL parser: every construct parses with the right type, every
 * error is refused with its reason; durations and value formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/server/promql/promql.h"

static void parses(void **state)
{
    (void)state;
    static const struct {
        const char *q;
        enum promql_type t;
    } ok[] = {
        {"up", PROMQL_VECTOR},
        {"up{job=\"a\",instance!='b',x=~`c.*`,y!~\"d\"}", PROMQL_VECTOR},
        {"{__name__=\"up\"}", PROMQL_VECTOR},
        {"up[5m]", PROMQL_MATRIX},
        {"up[1m0s] offset 4m15s", PROMQL_MATRIX},
        {"up offset -1h", PROMQL_VECTOR},
        {"rate(up[5m])[30m:1m]", PROMQL_MATRIX},
        {"max_over_time(rate(x_total[5m])[30m:] offset 1m)", PROMQL_VECTOR},
        {"1 + 2 * 3 ^ 2", PROMQL_SCALAR},
        {"-2 ^ 2", PROMQL_SCALAR},
        {"1 > bool 2", PROMQL_SCALAR},
        {"0x1F + 1e3 + .5 + Inf - NaN", PROMQL_SCALAR},
        {"\"a\\tb\\u00e9\\x41\\101\"", PROMQL_STRING},
        {"sum by (a, b) (up)", PROMQL_VECTOR},
        {"sum(up) without (a)", PROMQL_VECTOR},
        {"topk(3, up)", PROMQL_VECTOR},
        {"quantile by (x) (0.9, up)", PROMQL_VECTOR},
        {"a / on (x) group_left (y) b", PROMQL_VECTOR},
        {"a * ignoring (x) group_right b", PROMQL_VECTOR},
        {"a > bool on (x) b", PROMQL_VECTOR},
        {"a and b or c unless d", PROMQL_VECTOR},
        {"a atan2 b", PROMQL_VECTOR},
        {"scalar(up)", PROMQL_SCALAR},
        {"vector(time())", PROMQL_VECTOR},
        {"label_replace(up, \"d\", \"$1\", \"s\", \"(.*)\")", PROMQL_VECTOR},
        {"label_join(up, \"d\", \",\", \"a\", \"b\", \"c\")", PROMQL_VECTOR},
        {"round(up, 0.5) + clamp(up, 0, 1) + abs(-up)", PROMQL_VECTOR},
        {"quantile_over_time(0.5, up[5m])", PROMQL_VECTOR},
        {"absent(up{job=\"x\"}) # a comment", PROMQL_VECTOR},
        {"job:up:rate5m", PROMQL_VECTOR},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct promql_expr *e = NULL;
        char err[400] = "";
        if (promql_parse(ok[i].q, &e, err, sizeof(err)) != 0)
            fail_msg("%s: %s", ok[i].q, err);
        assert_int_equal(promql_type(e), ok[i].t);
        promql_free(e);
    }
}

static void refused(void **state)
{
    (void)state;
    static const struct {
        const char *q, *why;
    } bad[] = {
        {"", "empty"},
        {"sum(", "end of the query"},
        {"up{job=\"a\"", "expected ',' or '}'"},
        {"up{job=~\"(\"}", "invalid regular expression"},
        {"up{job=~\"(.*)\\\\1\"}", "too costly"},
        {"{job=~\".*\"}", "matcher that needs a value"},
        {"rate(up)", "expected type range vector"},
        {"up[5m] + 1", "binary expression must contain only scalar and instant vector"},
        {"1 > 2", "BOOL"},
        {"up and 1", "set operator"},
        {"rate(up[5m]) offset 1m", "offset modifier"},
        {"up offset 1m offset 2m", "multiple times"},
        {"up @ 100", "@ modifier"},
        {"holt_winters(up[5m], 0.5, 0.5)", "holt_winters"},
        {"nosuch(up)", "not supported"},
        {"topk(up)", "expected type scalar in aggregation parameter"},
        {"round(up, 1, 2)", "wrong number of arguments"},
        {"topk(\"a\", up)", "expected type scalar"},
        {"sum(up[5m])", "expected type instant vector"},
        {"up[5x]", "bad number or duration"},
        {"up[1s5m]", "bad duration"},
        {"up[0s]", "above zero"},
        {"\"\\q\"", "unknown escape"},
        {"\"abc", "unterminated"},
        {"1 + bool 2", "comparison operators"},
        {"a + on(x) group_left(x) b", "ON and GROUP"},
        {"up up", "after the end"},
        {"(up", "')'"},
        {"rate(up[5m])[5m]", "ranges only allowed for vector selectors"},
        {"\"a\"[5m:1m]", "subquery is only allowed on instant vector"},
        {"- \"a\"", "unary expression"},
        {"by", "unexpected keyword"},
        {"up $ 1", "unexpected character"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct promql_expr *e = NULL;
        char err[400] = "";
        int rc = promql_parse(bad[i].q, &e, err, sizeof(err));
        if (rc != PROMQL_BAD_DATA || e || !strstr(err, bad[i].why))
            fail_msg("%s: rc %d, '%s' (wanted '%s')", bad[i].q, rc, err, bad[i].why);
    }
    /* deep nesting is bounded, not a stack overflow */
    char deep[4000];
    memset(deep, '(', 1500);
    strcpy(deep + 1500, "1");
    memset(deep + 1501, ')', 1500);
    deep[3001] = 0;
    struct promql_expr *e;
    char err[400];
    assert_int_equal(promql_parse(deep, &e, err, sizeof(err)), PROMQL_BAD_DATA);
    assert_non_null(strstr(err, "nests deeper"));
}

static void durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {{"5m", 300000}, {"1h30m", 5400000}, {"1m0s", 60000}, {"4m15s", 255000},
              {"250ms", 250}, {"1y", 31536000000LL}, {"2w1d", 1296000000}, {"30", 30000},
              {"1.5", 1500}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;
        assert_int_equal(promql_parse_duration(ok[i].s, strlen(ok[i].s), &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *bad[] = {"", "5", "m", "5x", "1s1m", "1m1m", "-5m", "5m ", "99999999999999999999y"};
    int64_t ms;
    for (size_t i = 1; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strcmp(bad[i], "5") && promql_parse_duration(bad[i], strlen(bad[i]), &ms) == 0)
            fail_msg("duration '%s' accepted", bad[i]);
}

/* The significant digits of text (no sign, point, leading or trailing
 * zeros). */
static void sig_digits(const char *t, char *out)
{
    size_t k = 0;
    for (; *t; t++)
        if (*t >= '0' && *t <= '9' && (k || *t != '0'))
            out[k++] = *t;
    while (k > 1 && out[k - 1] == '0')
        k--;
    out[k] = 0;
}

/* The shortest digits that read back, found the slow way. */
static void reference_digits(double v, char *out)
{
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    *strchr(e, 'e') = 0;
    sig_digits(e, out);
}

static void values(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *s;
    } cases[] = {{2, "2"},           {0.1, "0.1"},        {1e21, "1000000000000000000000"},
                 {-2.5, "-2.5"},     {1e-7, "0.0000001"}, {123456.789, "123456.789"},
                 {1.0 / 3, "0.3333333333333333"}, {49.375, "49.375"},
                 {-0.05, "-0.05"},  {0.001, "0.001"},     {123.45678912, "123.45678912"},
                 {2.5e-9, "0.0000000025"}, {99999.99999999, "99999.99999999"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[400];
        promql_format_value(buf, sizeof(buf), cases[i].v);
        assert_string_equal(buf, cases[i].s);
    }
    /* the fewest digits, as the slow reference finds them, over values of
     * every kind: random bits, computed averages and rates */
    unsigned long long x = 88172645463325252ULL;
    for (int i = 0; i < 120000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v;
        if (i % 3 == 0) {
            memcpy(&v, &x, sizeof(v));
            if (!isfinite(v) || v == 0 || fabs(v) > 1e21 || fabs(v) < 1e-12)
                continue;
        } else if (i % 3 == 1) {
            v = (double)(x % 1000000) / 7.0 / (double)(1 + x % 13);
        } else {
            v = ((double)(x % 100000) / 100.0 + 0.1 * (double)(x % 7)) / 3.0;
        }
        char b[400], got[40], want[40];
        promql_format_value(b, sizeof(b), v);
        sig_digits(b, got);
        reference_digits(v, want);
        if (strcmp(got, want) || strtod(b, NULL) != v)
            fail_msg("%.17g formatted as %s (digits %s, shortest %s)", v, b, got, want);
    }
    /* whatever the path taken, the text reads back as the value */
    unsigned seed = 1;
    for (int i = 0; i < 50000; i++) {
        seed = seed * 1103515245u + 12345u;
        double v = (double)(int)(seed >> 8) / (double)(1 << (seed % 20)) * ((seed & 1) ? 1 : -1);
        if (i % 3 == 0)
            v = (double)(seed % 100000) / 1000.0;
        char b[400];
        promql_format_value(b, sizeof(b), v);
        if (strtod(b, NULL) != v || strchr(b, 'e'))
            fail_msg("%.17g formatted as %s", v, b);
    }
    char buf[40];
    promql_format_value(buf, sizeof(buf), 1.0 / 0.0);
    assert_string_equal(buf, "+Inf");
    promql_format_value(buf, sizeof(buf), -1.0 / 0.0);
    assert_string_equal(buf, "-Inf");
    promql_format_value(buf, sizeof(buf), __builtin_nan(""));
    assert_string_equal(buf, "NaN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses),
        cmocka_unit_test(refused),
        cmocka_unit_test(durations),
        cmocka_unit_test(values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
