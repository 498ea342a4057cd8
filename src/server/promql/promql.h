/* PromQL: a parser and an evaluator over the store, for the
 * Prometheus-compatible query API (Grafana) and alert rules. The semantics
 * are Prometheus 2.42's: a 5-minute lookback, stale markers, closed range
 * windows [t - range, t], rate()'s extrapolation, vector matching.
 * Anything outside the supported language is refused at parse time with
 * the construct named, never answered wrongly. */
#ifndef GF_PROMQL_H
#define GF_PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include "../../lib/buf.h"

struct tsdb;

enum promql_type { PROMQL_SCALAR, PROMQL_VECTOR, PROMQL_MATRIX, PROMQL_STRING };

/* Errors, as Prometheus's API classes them. */
enum promql_error {
    PROMQL_OK = 0,
    PROMQL_BAD_DATA = -1,  /* 400: a bad query */
    PROMQL_EXECUTION = -2, /* 422: it parsed but cannot be answered (many-to-many, too many samples) */
    PROMQL_TIMEOUT = -3,   /* 503: past its time budget */
    PROMQL_INTERNAL = -4,  /* 500: the store failed */
};

struct promql_expr;

/* Parses text (at most 64 KiB). 0 and *out (free with promql_free), or
 * PROMQL_BAD_DATA with the reason, and where it is, in err. */
int promql_parse(const char *text, struct promql_expr **out, char *err, size_t errlen);
void promql_free(struct promql_expr *e);

/* The type the expression evaluates to. */
enum promql_type promql_type(const struct promql_expr *e);

struct promql_limits {
    size_t max_samples;   /* samples one query may hold at once (Prometheus's
                           * query.max-samples); 0: 50 million */
    int64_t deadline_ns;  /* CLOCK_MONOTONIC time past which it stops; 0: none */
    int64_t lookback_ms;  /* 0: 5 minutes */
};

struct promql_label {
    char *name, *value;
};

/* One series of a result: labels sorted by name (__name__ among them where
 * kept), and a value per step where ok[i] (vector and scalar results); raw
 * samples t/v for a matrix selector asked as an instant query. */
struct promql_series {
    struct promql_label *labels;
    size_t nlabels;
    double *v;
    uint8_t *ok;
    int64_t *t; /* matrix of raw samples only */
    size_t nsamples;
};

struct promql_result {
    enum promql_type type;
    int64_t start_ms, step_ms;
    size_t nsteps;
    struct promql_series *series;
    size_t n;
    char *str; /* a string result */
};

/* Evaluates e at every step from start to end (ms, end included; step > 0;
 * an instant query is start == end). 0 and *res (free with
 * promql_result_free), or a promql_error with the reason in err. The
 * series each selector matched are kept in e while the store's series stay
 * the same (for at most a minute), so a tree evaluated again and again (an
 * alert rule) selects once: one thread at a time per tree. */
int promql_eval(struct tsdb *db, const struct promql_expr *e, int64_t start_ms, int64_t end_ms,
                int64_t step_ms, const struct promql_limits *lim, struct promql_result *res,
                char *err, size_t errlen);
void promql_result_free(struct promql_result *res);

/* Appends the result's "data" object in Prometheus's API shape:
 * {"resultType":..,"result":..}; instant: vectors as "value", else every
 * series as a matrix of "values" (steps without a value left out). */
void promql_result_json(const struct promql_result *res, int instant, struct buf *out);

/* Formats a sample value as Prometheus does (shortest, no exponent for
 * ordinary magnitudes; NaN, +Inf, -Inf). Returns the length. */
size_t promql_format_value(char *dst, size_t cap, double v);

/* Parses a duration in Prometheus's form ("5m", "1h30m", "1m0s", "250ms";
 * units y w d h m s ms in that order, each at most once) or plain seconds
 * ("30", "1.5"). 0 and *ms, or -1. */
int promql_parse_duration(const char *s, size_t len, int64_t *ms);

#endif
