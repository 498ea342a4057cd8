/* A Prometheus summary of the last SUMMARY_WINDOW observations: exact
 * quantiles (p50, p90, p99) of a recent window, plus the count and sum of
 * all, for timings where the slowest few matter more than the mean. */
#ifndef GPUFLEET_SUMMARY_H
#define GPUFLEET_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SUMMARY_WINDOW 1024

struct summary {
    double window[SUMMARY_WINDOW]; /* a ring of the newest observations */
    uint64_t count;                /* every observation, not only the window's */
    double sum, max;
};

/* Adds one observation (seconds, bytes: the caller's unit). The caller
 * serializes access (no lock inside). */
void summary_add(struct summary *s, double v);

/* The q-quantile (0..1) of the window, nearest rank; 0 when empty. */
double summary_quantile(const struct summary *s, double q);

/* Writes HELP, TYPE summary, the quantiles 0.5, 0.9 and 0.99, _sum and
 * _count under name, then a gauge name_max of the largest ever seen. */
void summary_write(struct buf *out, const char *name, const char *help, const struct summary *s);

#endif
