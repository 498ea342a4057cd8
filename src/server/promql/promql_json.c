/* Results in the shapes of Prometheus's HTTP API: values as strings in
 * Go's shortest fixed-point form, times as seconds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/expo.h"
#include "promql_impl.h"

/* Decimal digits of n (n >= 0) into out; their count. */
static int snprint_int(char *out, long long n)
{
    char tmp[24];
    int k = 0;
    do
        tmp[k++] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    for (int i = 0; i < k; i++)
        out[i] = tmp[k - 1 - i];
    return k;
}

static const double P10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The digits of v to p (15 or 16) significant digits, when that many read
 * back as v, found without printf or strtod: a candidate integer i (below
 * 2^53, so exact) scaled by an exact power of ten is one correctly rounded
 * operation, hence what strtod gives for the same decimal. 0; -1 when
 * p digits do not read back as v; -2 when this method cannot tell (a
 * power of ten past 1e22, or candidates past 2^53). */
static int shortest_digits(double v, int p, char *digits, size_t *nd, int *exp10)
{
    double a = fabs(v);
    if (!(a > 0) || a > 1e300 || a < 1e-300)
        return -2;
    int e10 = (int)floor(log10(a));
    int s = p - 1 - e10;
    if (s > 22 || s < -22)
        return -2;
    double scaled = s >= 0 ? a * P10[s] : a / P10[-s];
    double i0 = nearbyint(scaled), best = -1;
    for (int d = -1; d <= 1; d++) {
        double i = i0 + d;
        if (i > 9007199254740992.0)
            return -2;
        if (i < P10[p - 1] || i >= P10[p])
            continue;
        double back = s >= 0 ? i / P10[s] : i * P10[-s];
        if (back == a && (best < 0 || fabs(i - scaled) < fabs(best - scaled)))
            best = i;
    }
    if (best < 0)
        return -1;
    *nd = (size_t)snprint_int(digits, (long long)best);
    *exp10 = (int)*nd - 1 - s;
    return 0;
}

size_t promql_format_value(char *dst, size_t cap, double v)
{
    if (isnan(v))
        return (size_t)snprintf(dst, cap, "NaN");
    if (isinf(v))
        return (size_t)snprintf(dst, cap, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15) /* most values: integers, without printf */
        return expo_format_value(dst, cap, v);
    /* a few decimals (averages, percentages): i / 10^k is v exactly as
     * strtod would read "i with k decimals" (both correctly rounded), and
     * the smallest such k gives Go's shortest fixed form */
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    /* if any k <= 8 works, k = 8 does (under 1e6, v * 1e8 is within 0.02
     * of the integer i * 10^(8-k)): one test spares the loop for the many
     * values (float noise of averages) that have no short form */
    int few = fabs(v) < 1e6 && nearbyint(v * 1e8) / 1e8 == v;
    for (int k = 1; k <= 8 && few; k++) {
        double x = nearbyint(v * p10[k]);
        if (x / p10[k] != v)
            continue;
        char digits[32];
        long long i = (long long)fabs(x);
        int nd = snprint_int(digits, i);
        size_t o = 0;
        if (v < 0 && o + 1 < cap)
            dst[o++] = '-';
        int lead = nd - k; /* digits before the point */
        if (lead <= 0) {
            dst[o++] = '0';
            dst[o++] = '.';
            for (int z = 0; z < -lead; z++)
                dst[o++] = '0';
            for (int d = 0; d < nd; d++)
                dst[o++] = digits[d];
        } else {
            for (int d = 0; d < nd; d++) {
                if (d == lead)
                    dst[o++] = '.';
                dst[o++] = digits[d];
            }
        }
        dst[o] = 0;
        return o;
    }
    char digits[24];
    size_t nd = 0;
    int exp10 = 0, neg = signbit(v) != 0;
    int r = shortest_digits(v, 15, digits, &nd, &exp10);
    if (r == -1)
        r = shortest_digits(v, 16, digits, &nd, &exp10);
    if (r < 0) {
        /* printf and strtod where the method above cannot tell (-2), or
         * for 17 digits (which always read back; only printf gets them
         * exactly right). e is [-]d.dddde[+-]XX */
        char e[40];
        for (int d = r == -2 ? 15 : 17; d <= 17; d++) {
            snprintf(e, sizeof(e), "%.*e", d - 1, v);
            if (d == 17 || strtod(e, NULL) == v)
                break;
        }
        const char *p = e + (e[0] == '-');
        nd = 0;
        for (; *p && *p != 'e'; p++)
            if (*p != '.')
                digits[nd++] = *p;
        exp10 = atoi(p + 1);
    }
    /* written out without the exponent, as Go's
     * strconv.FormatFloat(v, 'f', -1, 64) does */
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char out[400];
    size_t k = 0;
    if (neg)
        out[k++] = '-';
    int point = exp10 + 1; /* digits before the decimal point */
    if (point <= 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (int i = 0; i < -point; i++)
            out[k++] = '0';
        for (size_t i = 0; i < nd; i++)
            out[k++] = digits[i];
    } else {
        for (int i = 0; i < point; i++)
            out[k++] = (size_t)i < nd ? digits[i] : '0';
        if ((size_t)point < nd) {
            out[k++] = '.';
            for (size_t i = (size_t)point; i < nd; i++)
                out[k++] = digits[i];
        }
    }
    out[k] = 0;
    return (size_t)snprintf(dst, cap, "%s", out);
}

static void put_time(struct buf *out, int64_t ms)
{
    /* seconds with up to three decimals, as Prometheus writes them */
    char d[32];
    int n = 0;
    if (ms < 0) {
        buf_printf(out, "%.3f", (double)ms / 1000);
        return;
    }
    n = snprint_int(d, ms / 1000);
    buf_append(out, d, (size_t)n);
    if (ms % 1000) {
        int frac = (int)(ms % 1000);
        char f[4] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10), 0};
        int fl = 3;
        while (f[fl - 1] == '0')
            fl--;
        buf_putc(out, '.');
        buf_append(out, f, (size_t)fl);
    }
}

/* A point; when steps is given (a range result's step times, written
 * once), the time is taken from it. */
static void put_point_at(struct buf *out, int64_t ms, double v, const struct buf *steps,
                         const uint32_t *at, size_t k)
{
    if (!steps) {
        char num[400];
        buf_putc(out, '[');
        put_time(out, ms);
        buf_puts(out, ",\"");
        size_t nl = promql_format_value(num, sizeof(num), v);
        buf_append(out, num, nl);
        buf_puts(out, "\"]");
        return;
    }
    /* a range result's points (most of a big answer): composed here and
     * appended once */
    char pt[480];
    size_t tl = at[k + 1] - at[k], o = 0;
    pt[o++] = '[';
    memcpy(pt + o, steps->data + at[k], tl);
    o += tl;
    pt[o++] = ',';
    pt[o++] = '"';
    o += promql_format_value(pt + o, sizeof(pt) - o - 2, v);
    pt[o++] = '"';
    pt[o++] = ']';
    buf_append(out, pt, o);
}

static void put_point(struct buf *out, int64_t ms, double v)
{
    put_point_at(out, ms, v, NULL, NULL, 0);
}

static void put_metric(struct buf *out, const struct promql_series *s)
{
    buf_puts(out, "{\"metric\":{");
    for (size_t i = 0; i < s->nlabels; i++) {
        if (i)
            buf_putc(out, ',');
        buf_json_str(out, s->labels[i].name);
        buf_putc(out, ':');
        buf_json_str(out, s->labels[i].value);
    }
    buf_putc(out, '}');
}

void promql_result_json(const struct promql_result *res, int instant, struct buf *out)
{
    int64_t last = res->start_ms + (int64_t)(res->nsteps ? res->nsteps - 1 : 0) * res->step_ms;
    if (res->type == PROMQL_STRING) {
        buf_puts(out, "{\"resultType\":\"string\",\"result\":[");
        put_time(out, last);
        buf_putc(out, ',');
        buf_json_str(out, res->str ? res->str : "");
        buf_puts(out, "]}");
        return;
    }
    if (instant && res->type == PROMQL_SCALAR) {
        buf_puts(out, "{\"resultType\":\"scalar\",\"result\":");
        put_point(out, last, res->n ? res->series[0].v[0] : NAN);
        buf_putc(out, '}');
        return;
    }
    int vector = instant && res->type == PROMQL_VECTOR;
    /* every series of a range result has the same step times: written once */
    struct buf steps = {0};
    uint32_t *at = NULL;
    if (!vector && res->nsteps > 1) {
        at = malloc((res->nsteps + 1) * sizeof(*at));
        for (size_t k = 0; at && k < res->nsteps; k++) {
            at[k] = (uint32_t)steps.len;
            put_time(&steps, res->start_ms + (int64_t)k * res->step_ms);
        }
        if (at)
            at[res->nsteps] = (uint32_t)steps.len;
    }
    buf_printf(out, "{\"resultType\":\"%s\",\"result\":[", vector ? "vector" : "matrix");
    size_t w = 0;
    for (size_t i = 0; i < res->n; i++) {
        const struct promql_series *s = &res->series[i];
        if (vector) {
            if (!s->ok[0])
                continue;
            if (w++)
                buf_putc(out, ',');
            put_metric(out, s);
            buf_puts(out, ",\"value\":");
            put_point(out, last, s->v[0]);
            buf_putc(out, '}');
            continue;
        }
        size_t npts = s->t ? s->nsamples : 0;
        for (size_t k = 0; !s->t && k < res->nsteps && !npts; k++)
            npts += s->ok[k];
        if (!npts) /* a series without a point is left out, as Prometheus does */
            continue;
        if (w++)
            buf_putc(out, ',');
        put_metric(out, s);
        buf_puts(out, ",\"values\":[");
        size_t pw = 0;
        if (s->t) { /* raw samples of a range selector */
            for (size_t k = 0; k < s->nsamples; k++) {
                if (pw++)
                    buf_putc(out, ',');
                put_point(out, s->t[k], s->v[k]);
            }
        } else {
            for (size_t k = 0; k < res->nsteps; k++) {
                if (!s->ok[k])
                    continue;
                if (pw++)
                    buf_putc(out, ',');
                put_point_at(out, res->start_ms + (int64_t)k * res->step_ms, s->v[k],
                             at ? &steps : NULL, at, k);
            }
        }
        buf_puts(out, "]}");
    }
    buf_puts(out, "]}");
    buf_free(&steps);
    free(at);
}
