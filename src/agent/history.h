/* Ring of recent samples kept so the server can backfill what it missed.
 * Each sample's values are XORed with the previous sample's and deflated,
 * so unchanged series cost almost nothing; series keys are kept once per
 * change of the series set. */
#ifndef GF_AGENT_HISTORY_H
#define GF_AGENT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/expo.h"

struct history;

/* A ring that keeps at least keep_ms of samples taken every interval_ms. */
struct history *history_new(int64_t keep_ms, int64_t interval_ms);
void history_free(struct history *h);

/* Records one sample: series[i] locates key i inside text, values[i] is its
 * value. Sampler thread only. */
void history_add(struct history *h, int64_t ts_ms, const char *text,
                 const struct expo_series *series, const double *values, size_t n);

/* Appends the samples taken at or after since_ms (and at or before until_ms)
 * as JSON:
 * {"interval_ms":N,"oldest_ms":T,"segments":[{"series":[KEY...],
 *   "samples":[[TS,V...]...]}]}
 * where KEY is "name{labels}" in exposition syntax and a new segment starts
 * whenever the set of series changed. NaN and infinities are the strings
 * "NaN", "+Inf", "-Inf". Any thread; holds the lock only to copy. */
void history_render_json(struct history *h, int64_t since_ms, int64_t until_ms, struct buf *out);

/* Number of samples held and bytes of compressed value data. */
void history_stats(struct history *h, size_t *samples, size_t *bytes);

#endif
