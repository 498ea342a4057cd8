/* PromQL functions: of range vectors (rate and the *_over_time family,
 * with Prometheus 2.42's arithmetic), of instant vectors element by
 * element, and the few that need the tree (timestamp, absent, labels). */
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/xalloc.h"
#include "promql_impl.h"

/* ---- functions of a window of samples [lo, hi) ---- */

/* rate, increase and delta: the change over the window, extrapolated to
 * its edges as Prometheus does (not past half an average interval beyond
 * the outer samples, nor below zero for counters). */
static double extrapolated(const struct pq_range *r, size_t lo, size_t hi, int64_t t,
                           int64_t range_ms, int counter, int is_rate, int *ok)
{
    if (hi - lo < 2)
        return *ok = 0, 0;
    double first = r->v[lo], last = r->v[hi - 1];
    double result = last - first;
    if (counter) {
        double prev = 0;
        for (size_t i = lo; i < hi; i++) {
            if (r->v[i] < prev)
                result += prev;
            prev = r->v[i];
        }
    }
    double range_start = (double)(t - range_ms), range_end = (double)t;
    double to_start = ((double)r->t[lo] - range_start) / 1000;
    double to_end = (range_end - (double)r->t[hi - 1]) / 1000;
    double sampled = (double)(r->t[hi - 1] - r->t[lo]) / 1000;
    double avg_step = sampled / (double)(hi - lo - 1);
    if (counter && result > 0 && first >= 0) {
        double to_zero = sampled * (first / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    double threshold = avg_step * 1.1, interval = sampled;
    interval += to_start < threshold ? to_start : avg_step / 2;
    interval += to_end < threshold ? to_end : avg_step / 2;
    result *= interval / sampled;
    if (is_rate)
        result /= (double)range_ms / 1000;
    *ok = 1;
    return result;
}

static double f_rate(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                     const double *p, int *ok)
{
    (void)p;
    return extrapolated(r, lo, hi, t, range, 1, 1, ok);
}

static double f_increase(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                         const double *p, int *ok)
{
    (void)p;
    return extrapolated(r, lo, hi, t, range, 1, 0, ok);
}

static double f_delta(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                      const double *p, int *ok)
{
    (void)p;
    return extrapolated(r, lo, hi, t, range, 0, 0, ok);
}

/* irate and idelta: the last two samples. */
static double instant_change(const struct pq_range *r, size_t lo, size_t hi, int is_rate, int *ok)
{
    if (hi - lo < 2)
        return *ok = 0, 0;
    double last = r->v[hi - 1], prev = r->v[hi - 2];
    double d = is_rate && last < prev ? last : last - prev;
    *ok = 1;
    if (!is_rate)
        return d;
    int64_t dt = r->t[hi - 1] - r->t[hi - 2];
    if (dt == 0)
        return *ok = 0, 0;
    return d / ((double)dt / 1000);
}

static double f_irate(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                      const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    return instant_change(r, lo, hi, 1, ok);
}

static double f_idelta(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                       const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    return instant_change(r, lo, hi, 0, ok);
}

/* The least-squares line through the window's samples, x in seconds from
 * at: its slope and its value at at (Prometheus's linearRegression: a
 * constant window has slope 0, or NaN for an infinite value). */
static void regression(const struct pq_range *r, size_t lo, size_t hi, int64_t at, double *slope,
                       double *intercept)
{
    double n = 0, sx = 0, sy = 0, sxy = 0, sx2 = 0, y0 = r->v[lo];
    int const_y = 1;
    for (size_t i = lo; i < hi; i++) {
        double x = (double)(r->t[i] - at) / 1000, y = r->v[i];
        const_y &= y == y0;
        n++;
        sx += x;
        sy += y;
        sxy += x * y;
        sx2 += x * x;
    }
    if (const_y) {
        *slope = isinf(y0) ? NAN : 0;
        *intercept = isinf(y0) ? NAN : y0;
        return;
    }
    *slope = (sxy - sx * sy / n) / (sx2 - sx * sx / n);
    *intercept = sy / n - *slope * sx / n;
}

/* deriv: the slope per second (times from the first sample's, to keep the
 * sums small). */
static double f_deriv(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                      const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    if (hi - lo < 2)
        return *ok = 0, 0;
    double slope, intercept;
    regression(r, lo, hi, r->t[lo], &slope, &intercept);
    *ok = 1;
    return slope;
}

static double f_avg(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                    const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    double mean = 0, count = 0;
    for (size_t i = lo; i < hi; i++) {
        double v = r->v[i];
        count++;
        if (isinf(mean)) {
            if (isinf(v) && (mean > 0) == (v > 0))
                continue;
            if (!isinf(v) && !isnan(v))
                continue;
        }
        mean += v / count - mean / count;
    }
    *ok = hi > lo;
    return mean;
}

static double f_sum(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                    const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    double s = 0;
    for (size_t i = lo; i < hi; i++)
        s += r->v[i];
    *ok = hi > lo;
    return s;
}

static double f_min(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                    const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    double m = hi > lo ? r->v[lo] : 0;
    for (size_t i = lo; i < hi; i++)
        if (r->v[i] < m || isnan(m))
            m = r->v[i];
    *ok = hi > lo;
    return m;
}

static double f_max(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                    const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    double m = hi > lo ? r->v[lo] : 0;
    for (size_t i = lo; i < hi; i++)
        if (r->v[i] > m || isnan(m))
            m = r->v[i];
    *ok = hi > lo;
    return m;
}

static double f_count(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                      const double *p, int *ok)
{
    (void)r, (void)t, (void)range, (void)p;
    *ok = hi > lo;
    return (double)(hi - lo);
}

static double f_last(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                     const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    *ok = hi > lo;
    return hi > lo ? r->v[hi - 1] : 0;
}

static double f_present(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                        const double *p, int *ok)
{
    (void)r, (void)t, (void)range, (void)p;
    *ok = hi > lo;
    return 1;
}

static double variance(const struct pq_range *r, size_t lo, size_t hi, int *ok)
{
    double count = 0, mean = 0, aux = 0;
    for (size_t i = lo; i < hi; i++) {
        count++;
        double d = r->v[i] - mean;
        mean += d / count;
        aux += d * (r->v[i] - mean);
    }
    *ok = hi > lo;
    return count ? aux / count : 0;
}

static double f_stdvar(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                       const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    return variance(r, lo, hi, ok);
}

static double f_stddev(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                       const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    return sqrt(variance(r, lo, hi, ok));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y))
        return isnan(y) - isnan(x);
    return (x > y) - (x < y);
}

static double f_quantile(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                         const double *p, int *ok)
{
    (void)t, (void)range;
    double q = p[0];
    *ok = hi > lo;
    if (!*ok)
        return 0;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    size_t n = hi - lo;
    double *v = xmalloc(n * sizeof(double));
    memcpy(v, r->v + lo, n * sizeof(double));
    qsort(v, n, sizeof(double), cmp_double);
    double rank = q * (double)(n - 1);
    double l = fmax(0, floor(rank)), u = fmin((double)n - 1, l + 1), w = rank - floor(rank);
    double res = v[(size_t)l] * (1 - w) + v[(size_t)u] * w;
    free(v);
    return res;
}

/* predict_linear: the least-squares line through the window, with its
 * intercept at the step's time, read param[0] seconds later. */
static double f_predict_linear(const struct pq_range *r, size_t lo, size_t hi, int64_t t,
                               int64_t range, const double *p, int *ok)
{
    (void)t, (void)range;
    if (hi - lo < 2)
        return *ok = 0, 0;
    double slope, intercept;
    regression(r, lo, hi, (int64_t)p[3], &slope, &intercept);
    *ok = 1;
    return slope * p[0] + intercept;
}

static double f_changes(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                        const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    double n = 0;
    for (size_t i = lo + 1; i < hi; i++)
        if (r->v[i] != r->v[i - 1] && !(isnan(r->v[i]) && isnan(r->v[i - 1])))
            n++;
    *ok = hi > lo;
    return n;
}

static double f_resets(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range,
                       const double *p, int *ok)
{
    (void)t, (void)range, (void)p;
    double n = 0;
    for (size_t i = lo + 1; i < hi; i++)
        n += r->v[i] < r->v[i - 1];
    *ok = hi > lo;
    return n;
}

/* Evaluates the scalar arguments (all but skip) into params[k][step]. */
static int scalar_args(struct pq_ctx *c, const struct promql_expr *e, size_t skip,
                       struct pq_val *args)
{
    for (size_t i = 0; i < e->nsub; i++) {
        if (i == skip || e->sub[i]->type != PROMQL_SCALAR)
            continue;
        int rc = pq_eval(c, e->sub[i], &args[i]);
        if (rc)
            return rc;
    }
    return 0;
}

typedef double (*range_fn_t)(const struct pq_range *r, size_t lo, size_t hi, int64_t t,
                            int64_t range_ms, const double *param, int *ok);

/* A function of a range vector, fn over each step's window. */
static int call_range_of(struct pq_ctx *c, const struct promql_expr *e, range_fn_t fn,
                         struct pq_val *out)
{
    size_t mi = 0;
    while (e->sub[mi]->type != PROMQL_MATRIX)
        mi++;
    const struct promql_expr *m = e->sub[mi];
    int64_t off = m->kind == PQ_MSEL ? m->sub[0]->offset_ms : m->offset_ms;
    struct pq_val args[5] = {{0}};
    struct pq_range *r = NULL;
    size_t n = 0;
    int rc = scalar_args(c, e, mi, args);
    if (rc == 0)
        rc = pq_eval_range(c, m, &r, &n);
    out->type = PROMQL_VECTOR;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct promql_series *s = pq_add_series(c, out);
        size_t lo = 0, hi = 0, got = 0;
        for (size_t k = 0; k < c->nsteps; k++) {
            int64_t t = c->start + (int64_t)k * c->step - off;
            while (hi < r[i].n && r[i].t[hi] <= t)
                hi++;
            while (lo < hi && r[i].t[lo] < t - m->range_ms)
                lo++;
            /* the scalar arguments in order (the range left out), and the
             * step's own time (offset not taken) in the last slot */
            double p[4] = {0, 0, 0, (double)(t + off)};
            for (size_t a = 0, w = 0; a < e->nsub && w < 3; a++)
                if (a != mi)
                    p[w++] = args[a].n ? args[a].s[0].v[k] : 0;
            int ok = 0;
            double v = fn(&r[i], lo, hi, t, m->range_ms, p, &ok);
            if (!ok)
                continue;
            s->v[k] = v;
            s->ok[k] = 1;
            got++;
        }
        s->labels = r[i].labels;
        s->nlabels = r[i].nlabels;
        r[i].labels = NULL;
        r[i].nlabels = 0;
        if (!e->fn->keeps_name)
            pq_drop_name(s);
        if (!got) {
            pq_labels_free(s->labels, s->nlabels);
            free(s->v);
            free(s->ok);
            out->n--;
        }
        if (rc == 0)
            rc = pq_check_time(c);
    }
    pq_ranges_free(r, n);
    for (size_t a = 0; a < 5; a++)
        pq_val_free(&args[a]);
    return rc ? rc : pq_check_unique(c, out);
}

static int call_range(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    return call_range_of(c, e, e->fn->range_fn, out);
}

/* ---- element-wise functions of an instant vector ---- */

static double f_abs(double v, const double *p) { (void)p; return fabs(v); }
static double f_ceil(double v, const double *p) { (void)p; return ceil(v); }
static double f_floor(double v, const double *p) { (void)p; return floor(v); }
static double f_exp(double v, const double *p) { (void)p; return exp(v); }
static double f_sqrt(double v, const double *p) { (void)p; return sqrt(v); }
static double f_ln(double v, const double *p) { (void)p; return log(v); }
static double f_log2(double v, const double *p) { (void)p; return log2(v); }
static double f_log10(double v, const double *p) { (void)p; return log10(v); }
static double f_sgn(double v, const double *p) { (void)p; return v < 0 ? -1 : v > 0 ? 1 : v; }
/* Go's math.Max and math.Min: NaN wins, unlike C's fmax/fmin */
static double go_max(double a, double b)
{
    return isnan(a) || isnan(b) ? NAN : fmax(a, b);
}

static double go_min(double a, double b)
{
    return isnan(a) || isnan(b) ? NAN : fmin(a, b);
}

static double f_clamp_min(double v, const double *p) { return go_max(p[0], v); }
static double f_clamp_max(double v, const double *p) { return go_min(p[0], v); }
static double f_clamp(double v, const double *p) { return go_max(p[0], go_min(p[1], v)); }

static double f_round(double v, const double *p)
{
    double inv = 1.0 / (isnan(p[0]) ? 1 : p[0]);
    return floor(v * inv + 0.5) / inv;
}

static int call_simple(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    struct pq_val args[5] = {{0}};
    int rc = scalar_args(c, e, 0, args);
    if (rc == 0)
        rc = pq_eval(c, e->sub[0], out);
    for (size_t i = 0; i < out->n && rc == 0; i++) {
        struct promql_series *s = &out->s[i];
        for (size_t k = 0; k < c->nsteps; k++) {
            if (!s->ok[k])
                continue;
            double p[4] = {NAN, NAN, NAN, NAN};
            for (size_t a = 1; a < e->nsub && a < 5; a++)
                p[a - 1] = args[a].s[0].v[k];
            /* round() without its argument rounds to 1 */
            if (!strcmp(e->fn->name, "round") && e->nsub == 1)
                p[0] = 1;
            if (!strcmp(e->fn->name, "clamp") && p[1] < p[0]) {
                s->ok[k] = 0; /* an empty result when max < min */
                continue;
            }
            s->v[k] = e->fn->simple_fn(s->v[k], p);
        }
        pq_drop_name(s);
    }
    for (size_t a = 0; a < 5; a++)
        pq_val_free(&args[a]);
    return rc ? rc : pq_check_unique(c, out);
}

/* ---- functions that need more than values ---- */

static int f_time(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    (void)e;
    out->type = PROMQL_SCALAR;
    struct promql_series *s = pq_add_series(c, out);
    for (size_t k = 0; k < c->nsteps; k++) {
        s->v[k] = (double)(c->start + (int64_t)k * c->step) / 1000;
        s->ok[k] = 1;
    }
    return 0;
}

static int f_vector(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    int rc = pq_eval(c, e->sub[0], out);
    out->type = PROMQL_VECTOR;
    return rc;
}

static int f_scalar(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    struct pq_val in = {0};
    int rc = pq_eval(c, e->sub[0], &in);
    out->type = PROMQL_SCALAR;
    struct promql_series *s = pq_add_series(c, out);
    for (size_t k = 0; k < c->nsteps; k++) {
        size_t present = 0;
        double v = NAN;
        for (size_t i = 0; i < in.n; i++)
            if (in.s[i].ok[k]) {
                present++;
                v = in.s[i].v[k];
            }
        s->v[k] = present == 1 ? v : NAN;
        s->ok[k] = 1;
    }
    pq_val_free(&in);
    return rc;
}

static int f_timestamp(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    int rc;
    if (e->sub[0]->kind == PQ_VSEL) {
        rc = pq_eval_timestamps(c, e->sub[0], out);
    } else {
        rc = pq_eval(c, e->sub[0], out);
        for (size_t i = 0; i < out->n; i++)
            for (size_t k = 0; k < c->nsteps; k++)
                out->s[i].v[k] = (double)(c->start + (int64_t)k * c->step) / 1000;
    }
    for (size_t i = 0; i < out->n; i++)
        pq_drop_name(&out->s[i]);
    return rc ? rc : pq_check_unique(c, out);
}

/* 1 where in has no element, labelled from the equality matchers of sel
 * (a plain selector, or NULL); in is freed. */
static int absent_of(struct pq_ctx *c, struct pq_val *in, const struct promql_expr *sel,
                     struct pq_val *out)
{
    out->type = PROMQL_VECTOR;
    struct promql_series *s = pq_add_series(c, out);
    size_t got = 0;
    for (size_t k = 0; k < c->nsteps; k++) {
        int present = 0;
        for (size_t i = 0; i < in->n && !present; i++)
            present = in->s[i].ok[k];
        if (!present) {
            s->v[k] = 1;
            s->ok[k] = 1;
            got++;
        }
    }
    for (size_t m = 0; sel && m < sel->sel.n; m++)
        if (sel->sel.m[m].op == SEL_EQ && strcmp(sel->sel.m[m].name, "__name__"))
            pq_label_set(s, sel->sel.m[m].name, sel->sel.m[m].value);
    if (!got) {
        pq_val_free(out);
        out->type = PROMQL_VECTOR;
    }
    pq_val_free(in);
    return 0;
}

/* absent(v): 1 where v has nothing, labelled from the selector's
 * equality matchers when v is a plain selector. */
static int f_absent(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    struct pq_val in = {0};
    int rc = pq_eval(c, e->sub[0], &in);
    if (rc) {
        pq_val_free(&in);
        return rc;
    }
    return absent_of(c, &in, e->sub[0]->kind == PQ_VSEL ? e->sub[0] : NULL, out);
}

static int valid_label_name(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* $1, ${1} in repl from the match (group 0 of the pattern is the whole
 * anchored match, so the caller's group n is m[n + 1]). */
static char *expand(const char *repl, const char *src, const regmatch_t *m, size_t nm)
{
    struct buf b = {0};
    for (const char *p = repl; *p; p++) {
        if (*p != '$') {
            buf_putc(&b, *p);
            continue;
        }
        if (p[1] == '$') {
            buf_putc(&b, '$');
            p++;
            continue;
        }
        const char *q = p + 1;
        int braces = *q == '{';
        if (braces)
            q++;
        size_t g = 0, digits = 0;
        while (*q >= '0' && *q <= '9') {
            g = g * 10 + (size_t)(*q++ - '0');
            digits++;
            if (g > 1000)
                break;
        }
        if (!digits || (braces && *q != '}')) {
            /* a name ($name): named groups are not supported; Go expands
             * an unknown name to nothing */
            while (*q && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_' ||
                          (*q >= '0' && *q <= '9')))
                q++;
            if (braces && *q == '}')
                q++;
            p = q - 1;
            continue;
        }
        if (braces)
            q++;
        if (g + 1 < nm && m[g + 1].rm_so >= 0)
            buf_append(&b, src + m[g + 1].rm_so, (size_t)(m[g + 1].rm_eo - m[g + 1].rm_so));
        p = q - 1;
    }
    return buf_detach(&b, NULL);
}

static int f_label_replace(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    const char *dst = e->sub[1]->str, *repl = e->sub[2]->str, *src = e->sub[3]->str,
               *re = e->sub[4]->str;
    if (!valid_label_name(dst))
        return pq_fail(c, PROMQL_BAD_DATA, "invalid destination label name in label_replace(): %s",
                       dst);
    if (sel_regex_risky(re))
        return pq_fail(c, PROMQL_BAD_DATA, "regular expression in label_replace() is too costly");
    size_t len = strlen(re) + 8;
    char *pat = xmalloc(len);
    snprintf(pat, len, "^(%s)$", re);
    regex_t rx;
    int bad = regcomp(&rx, pat, REG_EXTENDED);
    free(pat);
    if (bad)
        return pq_fail(c, PROMQL_BAD_DATA, "invalid regular expression in label_replace(): %s", re);
    int rc = pq_eval(c, e->sub[0], out);
    regmatch_t m[10];
    for (size_t i = 0; i < out->n && rc == 0; i++) {
        struct promql_series *s = &out->s[i];
        const char *sv = pq_label_get(s, src);
        if (!sv)
            sv = "";
        if (regexec(&rx, sv, 10, m, 0) != 0)
            continue;
        char *v = expand(repl, sv, m, 10);
        pq_label_set(s, dst, v);
        free(v);
    }
    regfree(&rx);
    return rc ? rc : pq_check_unique(c, out);
}

static int f_label_join(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    const char *dst = e->sub[1]->str, *sep = e->sub[2]->str;
    if (!valid_label_name(dst))
        return pq_fail(c, PROMQL_BAD_DATA, "invalid destination label name in label_join(): %s",
                       dst);
    int rc = pq_eval(c, e->sub[0], out);
    for (size_t i = 0; i < out->n && rc == 0; i++) {
        struct buf b = {0};
        for (size_t a = 3; a < e->nsub; a++) {
            const char *v = pq_label_get(&out->s[i], e->sub[a]->str);
            if (a > 3)
                buf_puts(&b, sep);
            buf_puts(&b, v ? v : "");
        }
        char *v = buf_detach(&b, NULL);
        pq_label_set(&out->s[i], dst, v);
        free(v);
    }
    return rc ? rc : pq_check_unique(c, out);
}

/* absent_over_time(v[range]): 1 where the window holds no sample,
 * labelled from the selector's equality matchers. */
static int f_absent_over_time(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    struct pq_val in = {0};
    int rc = call_range_of(c, e, f_count, &in);
    if (rc) {
        pq_val_free(&in);
        return rc;
    }
    const struct promql_expr *m = e->sub[0];
    return absent_of(c, &in, m->kind == PQ_MSEL ? m->sub[0] : NULL, out);
}

/* sort and sort_desc: the values as they are; an instant query's elements
 * are ordered by promql_eval (it knows the function at the top). */
static int f_sort(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    return pq_eval(c, e->sub[0], out);
}

/* Go's time arithmetic, as Prometheus's date functions use it: a value is
 * converted with int64(v) (truncated; NaN, Inf and values out of range
 * give the minimum int64 on amd64), then time.Unix(sec, 0).UTC(); seconds
 * are absolute from year -292277022399, in wrapping unsigned arithmetic. */
#define SECS_DAY 86400ULL
#define DAYS_400Y (365ULL * 400 + 97)
#define DAYS_100Y (365ULL * 100 + 24)
#define DAYS_4Y (365ULL * 4 + 1)
#define ABS_ZERO_YEAR (-292277022399LL)

struct go_date {
    long long year;
    int month, day, hour, minute, wday;
};

static int go_leap(long long y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static void go_date_of(double v, struct go_date *d)
{
    int64_t sec = isnan(v) || v >= 9223372036854775807.0 || v < -9223372036854775808.0 ? INT64_MIN
                                                                                        : (int64_t)v;
    const int64_t unix_to_internal = (1969LL * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400) * 86400;
    /* (absoluteZeroYear - 1) * 365.2425 days, exactly as Go's constant */
    const int64_t abs_to_internal = (ABS_ZERO_YEAR - 1) * 31556952LL;
    uint64_t abs = (uint64_t)sec + (uint64_t)unix_to_internal + (uint64_t)(-abs_to_internal);
    d->hour = (int)(abs % SECS_DAY / 3600);
    d->minute = (int)(abs % 3600 / 60);
    d->wday = (int)((abs + 1 * SECS_DAY) % (7 * SECS_DAY) / SECS_DAY); /* Monday is 1 */
    uint64_t days = abs / SECS_DAY, n = days / DAYS_400Y, y = 400 * n;
    days -= DAYS_400Y * n;
    n = days / DAYS_100Y;
    n -= n >> 2;
    y += 100 * n;
    days -= DAYS_100Y * n;
    n = days / DAYS_4Y;
    y += 4 * n;
    days -= DAYS_4Y * n;
    n = days / 365;
    n -= n >> 2;
    y += n;
    days -= 365 * n;
    d->year = (long long)((int64_t)y + ABS_ZERO_YEAR);
    int day = (int)days;
    static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};
    if (go_leap(d->year)) {
        if (day > 31 + 29 - 1) {
            day--;
        } else if (day == 31 + 29 - 1) {
            d->month = 2;
            d->day = 29;
            return;
        }
    }
    int m = day / 31, begin;
    if (day >= before[m + 1]) {
        m++;
        begin = before[m];
    } else {
        begin = before[m];
    }
    d->month = m + 1;
    d->day = day - begin + 1;
}

/* minute() ... year(): a part of the value (Unix seconds, UTC); without an
 * argument, of the step's time. */
static int f_date(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    int rc = 0;
    if (e->nsub)
        rc = pq_eval(c, e->sub[0], out);
    else {
        out->type = PROMQL_VECTOR;
        struct promql_series *s = pq_add_series(c, out);
        for (size_t k = 0; k < c->nsteps; k++) {
            s->v[k] = (double)(c->start + (int64_t)k * c->step) / 1000;
            s->ok[k] = 1;
        }
    }
    const char *f = e->fn->name;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (size_t i = 0; i < out->n && rc == 0; i++) {
        struct promql_series *s = &out->s[i];
        for (size_t k = 0; k < c->nsteps; k++) {
            if (!s->ok[k])
                continue;
            struct go_date d;
            go_date_of(s->v[k], &d);
            s->v[k] = !strcmp(f, "minute")          ? d.minute
                      : !strcmp(f, "hour")          ? d.hour
                      : !strcmp(f, "day_of_week")   ? d.wday
                      : !strcmp(f, "day_of_month")  ? d.day
                      : !strcmp(f, "days_in_month") ? mdays[d.month - 1] + (d.month == 2 && go_leap(d.year))
                      : !strcmp(f, "month")         ? d.month
                                                    : (double)d.year;
        }
        pq_drop_name(s);
    }
    return rc ? rc : pq_check_unique(c, out);
}

struct bucket {
    double le, count;
};

static int cmp_bucket(const void *a, const void *b)
{
    const struct bucket *x = a, *y = b;
    return (x->le > y->le) - (x->le < y->le);
}

/* Prometheus's bucketQuantile (2.42): sorted, equal bounds merged, counts
 * made monotonic, linear interpolation within the bucket. */
static double bucket_quantile(double q, struct bucket *b, size_t n)
{
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(b, n, sizeof(*b), cmp_bucket);
    if (!n || !isinf(b[n - 1].le) || b[n - 1].le < 0)
        return NAN;
    size_t w = 0; /* coalesce equal bounds */
    for (size_t i = 0; i < n; i++) {
        if (w && b[w - 1].le == b[i].le)
            b[w - 1].count += b[i].count;
        else
            b[w++] = b[i];
    }
    n = w;
    double max = -INFINITY; /* ensure monotonic */
    for (size_t i = 0; i < n; i++) {
        if (b[i].count > max)
            max = b[i].count;
        else
            b[i].count = max;
    }
    if (n < 2)
        return NAN;
    double obs = b[n - 1].count;
    if (obs == 0)
        return NAN;
    double rank = q * obs;
    size_t i = 0;
    while (i < n - 1 && !(b[i].count >= rank))
        i++;
    if (i == n - 1)
        return b[n - 2].le;
    if (i == 0 && b[0].le <= 0)
        return b[0].le;
    double start = 0, end = b[i].le, count = b[i].count;
    if (i > 0) {
        start = b[i - 1].le;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* histogram_quantile(q, buckets): per label set without le (name
 * dropped), the q-quantile of the classic histogram's buckets. */
static int f_histogram_quantile(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    struct pq_val q = {0}, in = {0};
    int rc = pq_eval(c, e->sub[0], &q);
    if (rc == 0)
        rc = pq_eval(c, e->sub[1], &in);
    out->type = PROMQL_VECTOR;
    if (rc) {
        pq_val_free(&q);
        pq_val_free(&in);
        return rc;
    }
    /* group the input by its labels without le and __name__ */
    size_t ng = 0;
    size_t *group = xmalloc((in.n ? in.n : 1) * sizeof(size_t));
    double *le = xmalloc((in.n ? in.n : 1) * sizeof(double));
    struct promql_series *keys = xcalloc(in.n ? in.n : 1, sizeof(*keys));
    for (size_t i = 0; i < in.n; i++) {
        const char *l = pq_label_get(&in.s[i], "le");
        char *end = NULL;
        le[i] = l ? strtod(l, &end) : NAN;
        if (!l || !end || *end || end == l) {
            group[i] = (size_t)-1; /* no usable le: left out, as Prometheus does */
            continue;
        }
        struct promql_series tmp = {pq_labels_copy(in.s[i].labels, in.s[i].nlabels), in.s[i].nlabels, 0, 0, 0, 0};
        pq_label_set(&tmp, "le", NULL);
        pq_drop_name(&tmp);
        size_t g = 0;
        for (; g < ng; g++) {
            if (keys[g].nlabels != tmp.nlabels)
                continue;
            size_t k = 0;
            while (k < tmp.nlabels && !strcmp(keys[g].labels[k].name, tmp.labels[k].name) &&
                   !strcmp(keys[g].labels[k].value, tmp.labels[k].value))
                k++;
            if (k == tmp.nlabels)
                break;
        }
        if (g == ng)
            keys[ng++] = tmp;
        else
            pq_labels_free(tmp.labels, tmp.nlabels);
        group[i] = g;
    }
    struct bucket *b = xmalloc((in.n ? in.n : 1) * sizeof(*b));
    for (size_t g = 0; g < ng; g++) {
        struct promql_series *s = pq_add_series(c, out);
        s->labels = keys[g].labels;
        s->nlabels = keys[g].nlabels;
        size_t got = 0;
        for (size_t k = 0; k < c->nsteps; k++) {
            size_t nb = 0;
            for (size_t i = 0; i < in.n; i++)
                if (group[i] == g && in.s[i].ok[k])
                    b[nb++] = (struct bucket){le[i], in.s[i].v[k]};
            if (!nb)
                continue;
            s->v[k] = bucket_quantile(q.s[0].v[k], b, nb);
            s->ok[k] = 1;
            got++;
        }
        if (!got) {
            pq_labels_free(s->labels, s->nlabels);
            free(s->v);
            free(s->ok);
            out->n--;
        }
    }
    free(b);
    free(keys);
    free(le);
    free(group);
    pq_val_free(&q);
    pq_val_free(&in);
    return 0;
}

#define S PROMQL_SCALAR
#define V PROMQL_VECTOR
#define M PROMQL_MATRIX
#define STR PROMQL_STRING
#define RANGE(n, f) {n, V, 1, 1, {M}, f, NULL, call_range, 0}
#define SIMPLE(n, f) {n, V, 1, 1, {V}, NULL, f, call_simple, 0}

static const struct pq_func funcs[] = {
    RANGE("rate", f_rate),
    RANGE("irate", f_irate),
    RANGE("increase", f_increase),
    RANGE("delta", f_delta),
    RANGE("idelta", f_idelta),
    RANGE("deriv", f_deriv),
    RANGE("avg_over_time", f_avg),
    RANGE("min_over_time", f_min),
    RANGE("max_over_time", f_max),
    RANGE("sum_over_time", f_sum),
    RANGE("count_over_time", f_count),
    {"last_over_time", V, 1, 1, {M}, f_last, NULL, call_range, 1}, /* keeps the name */
    RANGE("present_over_time", f_present),
    RANGE("stddev_over_time", f_stddev),
    RANGE("stdvar_over_time", f_stdvar),
    RANGE("changes", f_changes),
    RANGE("resets", f_resets),
    {"quantile_over_time", V, 2, 2, {S, M}, f_quantile, NULL, call_range, 0},
    {"predict_linear", V, 2, 2, {M, S}, f_predict_linear, NULL, call_range, 0},
    {"absent_over_time", V, 1, 1, {M}, NULL, NULL, f_absent_over_time, 0},
    {"histogram_quantile", V, 2, 2, {S, V}, NULL, NULL, f_histogram_quantile, 0},
    {"sort", V, 1, 1, {V}, NULL, NULL, f_sort, 1},
    {"sort_desc", V, 1, 1, {V}, NULL, NULL, f_sort, 1},
    {"minute", V, 0, 1, {V}, NULL, NULL, f_date, 0},
    {"hour", V, 0, 1, {V}, NULL, NULL, f_date, 0},
    {"day_of_week", V, 0, 1, {V}, NULL, NULL, f_date, 0},
    {"day_of_month", V, 0, 1, {V}, NULL, NULL, f_date, 0},
    {"days_in_month", V, 0, 1, {V}, NULL, NULL, f_date, 0},
    {"month", V, 0, 1, {V}, NULL, NULL, f_date, 0},
    {"year", V, 0, 1, {V}, NULL, NULL, f_date, 0},
    SIMPLE("abs", f_abs),
    SIMPLE("ceil", f_ceil),
    SIMPLE("floor", f_floor),
    SIMPLE("exp", f_exp),
    SIMPLE("sqrt", f_sqrt),
    SIMPLE("ln", f_ln),
    SIMPLE("log2", f_log2),
    SIMPLE("log10", f_log10),
    SIMPLE("sgn", f_sgn),
    {"round", V, 1, 2, {V, S}, NULL, f_round, call_simple, 0},
    {"clamp_min", V, 2, 2, {V, S}, NULL, f_clamp_min, call_simple, 0},
    {"clamp_max", V, 2, 2, {V, S}, NULL, f_clamp_max, call_simple, 0},
    {"clamp", V, 3, 3, {V, S, S}, NULL, f_clamp, call_simple, 0},
    {"time", S, 0, 0, {0}, NULL, NULL, f_time, 0},
    {"vector", V, 1, 1, {S}, NULL, NULL, f_vector, 0},
    {"scalar", S, 1, 1, {V}, NULL, NULL, f_scalar, 0},
    {"timestamp", V, 1, 1, {V}, NULL, NULL, f_timestamp, 0},
    {"absent", V, 1, 1, {V}, NULL, NULL, f_absent, 0},
    {"label_replace", V, 5, 5, {V, STR, STR, STR, STR}, NULL, NULL, f_label_replace, 1},
    {"label_join", V, 3, -1, {V, STR, STR, STR, STR}, NULL, NULL, f_label_join, 1},
};

const struct pq_func *pq_func_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
        if (strlen(funcs[i].name) == len && !strncmp(funcs[i].name, name, len))
            return &funcs[i];
    return NULL;
}
