/* Window aggregation over the store's points. */
#include "agg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[AGG_FN_COUNT] = {"avg", "min", "max", "last",
                                                "sum", "count", "rate", "increase"};

int agg_parse(const char *name, enum agg_fn *fn)
{
    for (int i = 0; name && i < AGG_FN_COUNT; i++)
        if (!strcmp(name, names[i])) {
            *fn = (enum agg_fn)i;
            return 0;
        }
    return -1;
}

const char *agg_names(void)
{
    return "avg, min, max, last, sum, count, rate, increase";
}

void agg_init(struct agg_window *w)
{
    *w = (struct agg_window){INFINITY, -INFINITY, 0, 0, NAN, 0};
}

void agg_add(struct agg_window *w, const struct tsdb_point *p)
{
    /* roll-up buckets never hold NaN (it is not fed to them); a raw NaN
     * sample has every statistic NaN */
    if (isnan(p->last) || p->count <= 0)
        return;
    w->min = fmin(w->min, p->min);
    w->max = fmax(w->max, p->max);
    w->sum += p->sum;
    w->count += p->count;
    w->last = p->last;
    w->inc += p->inc;
}

double agg_value(const struct agg_window *w, enum agg_fn fn, int64_t length_ms)
{
    if (w->count <= 0)
        return NAN;
    switch (fn) {
    case AGG_MIN: return w->min;
    case AGG_MAX: return w->max;
    case AGG_LAST: return w->last;
    case AGG_SUM: return w->sum;
    case AGG_COUNT: return w->count;
    case AGG_RATE: return w->inc / ((double)length_ms / 1000.0);
    case AGG_INCREASE: return w->inc;
    default: return w->sum / w->count;
    }
}

void agg_buckets(const struct tsdb_point *p, long n, int64_t start, int64_t step_ms, size_t nb,
                 enum agg_fn fn, double *out)
{
    long k = 0;
    while (k < n && p[k].t < start)
        k++;
    for (size_t b = 0; b < nb; b++) {
        struct agg_window w;
        int64_t end = start + (int64_t)(b + 1) * step_ms;
        agg_init(&w);
        for (; k < n && p[k].t < end; k++)
            agg_add(&w, &p[k]);
        out[b] = agg_value(&w, fn, step_ms);
    }
}

int agg_range(struct tsdb *db, uint64_t series_id, enum tsdb_tier tier, int64_t start,
              int64_t step_ms, size_t nb, enum agg_fn fn, double *out)
{
    struct tsdb_point *p = NULL;
    long n = tsdb_points(db, series_id, tier, start, start + (int64_t)nb * step_ms - 1, &p);
    if (n < 0)
        return -1;
    agg_buckets(p, n, start, step_ms, nb, fn, out);
    free(p);
    return 0;
}

int agg_recent(struct tsdb *db, uint64_t series_id, int64_t end, int64_t length_ms,
               enum agg_fn fn, double *out)
{
    struct tsdb_point *p = NULL;
    int covered;
    int64_t start = end - length_ms + 1;
    long n = tsdb_recent(db, series_id, start, end, &p, &covered);
    if (!covered)
        n = tsdb_points(db, series_id, TSDB_RAW, start, end, &p);
    if (n < 0)
        return -1;
    agg_buckets(p, n, start, length_ms, 1, fn, out);
    free(p);
    return isnan(*out) ? -1 : 0;
}
