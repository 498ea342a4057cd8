/* Aggregation of a series over a time window: the one implementation the
 * query API (per step of a range) and the alert evaluator (per rule window)
 * share. A window is (end - length, end] in milliseconds; a range's buckets
 * are [start + k*step, start + (k+1)*step), the same thing written from the
 * other side.
 *
 * What counts: NaN samples (an exporter saying it has no value) are no
 * sample for every function; stale markers end a series (the store drops
 * them, and the increase of a counter does not run across one); a counter
 * that goes down was reset and restarts from its new value (the increase
 * is that value); the first sample the store hands over has no increase
 * (its predecessor is outside what was read). */
#ifndef GF_AGG_H
#define GF_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb.h"

enum agg_fn { AGG_AVG, AGG_MIN, AGG_MAX, AGG_LAST, AGG_SUM, AGG_COUNT, AGG_RATE, AGG_INCREASE,
              AGG_FN_COUNT };

/* The function of a name ("avg", "min", "max", "last", "sum", "count",
 * "rate", "increase"). 0, or -1 when it is none. */
int agg_parse(const char *name, enum agg_fn *fn);

/* The names, comma-separated, for error messages. */
const char *agg_names(void);

/* Running figures of one window. */
struct agg_window {
    double min, max, sum, count, last, inc;
};

void agg_init(struct agg_window *w);

/* Adds a point (a raw sample or a roll-up bucket). */
void agg_add(struct agg_window *w, const struct tsdb_point *p);

/* fn over the window, length_ms long (for rate); NaN when it holds no
 * sample. */
double agg_value(const struct agg_window *w, enum agg_fn fn, int64_t length_ms);

/* fn per bucket of a range: out[k] for [start + k*step, start + (k+1)*step)
 * over the points p (oldest first), NaN where a bucket is empty. */
void agg_buckets(const struct tsdb_point *p, long n, int64_t start, int64_t step_ms, size_t nb,
                 enum agg_fn fn, double *out);

/* One series of a range query: nb buckets of step_ms from start, read from
 * tier. Returns 0, or -1 when the store could not be read. */
int agg_range(struct tsdb *db, uint64_t series_id, enum tsdb_tier tier, int64_t start,
              int64_t step_ms, size_t nb, enum agg_fn fn, double *out);

/* fn of one series over (end - length_ms, end] from raw samples, from
 * memory when the store still holds the window there (alert rounds), else
 * from its chunks. Returns 0 with *out, or -1 when the window holds no
 * sample or the store could not be read. */
int agg_recent(struct tsdb *db, uint64_t series_id, int64_t end, int64_t length_ms,
               enum agg_fn fn, double *out);

#endif
