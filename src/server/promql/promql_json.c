/* Results in the shapes of Prometheus's HTTP API: values as strings in
 * Go's shortest fixed-point form, times as seconds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/expo.h"
#include "promql_impl.h"

size_t promql_format_value(char *dst, size_t cap, double v)
{
    if (isnan(v))
        return (size_t)snprintf(dst, cap, "NaN");
    if (isinf(v))
        return (size_t)snprintf(dst, cap, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15) /* most values: integers, without printf */
        return expo_format_value(dst, cap, v);
    /* the fewest significant digits that read back as v: 15 digits do for
     * most, 17 for every double */
    char e[40];
    static const int tries[] = {15, 16, 17};
    for (size_t i = 0; i < 3; i++) {
        snprintf(e, sizeof(e), "%.*e", tries[i] - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is [-]d[.ddd]e[+-]XX: written out without the exponent, as Go's
     * strconv.FormatFloat(v, 'f', -1, 64) does */
    const char *p = e;
    int neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char out[400];
    size_t k = 0;
    if (neg && !(nd == 1 && digits[0] == '0' && !signbit(v)))
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
    if (ms % 1000 == 0)
        buf_printf(out, "%lld", (long long)(ms / 1000));
    else
        buf_printf(out, "%.3f", (double)ms / 1000);
}

static void put_point(struct buf *out, int64_t ms, double v)
{
    char num[400];
    buf_putc(out, '[');
    put_time(out, ms);
    buf_puts(out, ",\"");
    promql_format_value(num, sizeof(num), v);
    buf_puts(out, num);
    buf_puts(out, "\"]");
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
                put_point(out, res->start_ms + (int64_t)k * res->step_ms, s->v[k]);
            }
        }
        buf_puts(out, "]}");
    }
    buf_puts(out, "]}");
}
