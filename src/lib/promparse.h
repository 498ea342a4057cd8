/* Parser for the Prometheus text exposition format (0.0.4) and OpenMetrics
 * text, as real exporters write them: HELP/TYPE/UNIT comments, escaped label
 * values, NaN/Inf, optional timestamps, exemplars (skipped), # EOF. */
#ifndef GF_PROMPARSE_H
#define GF_PROMPARSE_H

#include <stddef.h>
#include <stdint.h>

#define PROM_MAX_LABELS_HARD 128

struct prom_label {
    const char *name;
    size_t name_len;
    const char *value; /* unescaped; not NUL-terminated */
    size_t value_len;
};

struct prom_sample {
    const char *name;
    size_t name_len;
    struct prom_label labels[PROM_MAX_LABELS_HARD];
    size_t nlabels;
    const char *series_text; /* "name{labels}" exactly as written, for caches */
    size_t series_text_len;
    double value;
    int has_ts;
    int64_t ts_ms;
    int type; /* enum prom_type of the family, as the last TYPE line said */
    /* the family the last HELP/TYPE/UNIT lines named, when this sample is
     * of it (its name starts with the family's), else NULL; its HELP text
     * (unescaped) and UNIT, NULL when not given; NUL-terminated */
    const char *family, *help, *unit;
};

enum prom_type { PROM_UNTYPED = 0, PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM, PROM_SUMMARY,
                 PROM_OTHER };

struct prom_limits {
    size_t max_line_len;    /* 0: 64 KiB */
    size_t max_labels;      /* per sample, 0: 64 (never above PROM_MAX_LABELS_HARD) */
    size_t max_name_len;    /* metric and label names, 0: 256 */
    size_t max_value_len;   /* label values, 0: 4096 */
    size_t max_samples;     /* per parse, 0: unlimited */
};

struct prom_error {
    size_t line;
    char msg[200];
};

/* Called once per sample; the pointers are valid during the call only.
 * Return 0 to go on, non-zero to stop (prom_parse then returns that). */
typedef int (*prom_sample_fn)(void *arg, const struct prom_sample *s);

/* Parses len bytes of exposition text. openmetrics selects OpenMetrics rules
 * (timestamps in seconds, # EOF required at the end). Returns 0; a
 * callback's non-zero value; or -1 with err set (line and reason) on the
 * first malformed line or exceeded limit. Samples before the bad line have
 * been delivered. */
int prom_parse(const char *text, size_t len, int openmetrics, const struct prom_limits *lim,
               prom_sample_fn fn, void *arg, struct prom_error *err);

/* Parses a float as the format allows (also NaN, +Inf, -Inf, Inf). Returns
 * 0 or -1. s need not be NUL-terminated. */
int prom_parse_float(const char *s, size_t len, double *out);

#endif
