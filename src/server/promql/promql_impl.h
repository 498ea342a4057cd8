/* What the PromQL parser, evaluator and functions share. */
#ifndef GF_PROMQL_IMPL_H
#define GF_PROMQL_IMPL_H

#include <stdint.h>

#include "../store/selector.h"
#include "promql.h"

enum pq_kind { PQ_NUM, PQ_STR, PQ_VSEL, PQ_MSEL, PQ_SUBQ, PQ_CALL, PQ_AGG, PQ_BIN, PQ_NEG };

enum pq_op {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_POW, OP_ATAN2,
    OP_EQ, OP_NE, OP_GT, OP_LT, OP_GE, OP_LE,
    OP_AND, OP_OR, OP_UNLESS,
};

enum pq_agg {
    AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX, AGG_COUNT, AGG_GROUP, AGG_STDDEV, AGG_STDVAR,
    AGG_TOPK, AGG_BOTTOMK, AGG_QUANTILE,
};

enum pq_card { CARD_ONE_ONE, CARD_MANY_ONE, CARD_ONE_MANY, CARD_MANY_MANY };

struct pq_names {
    char **v;
    size_t n;
};

struct pq_func;

struct promql_expr {
    enum pq_kind kind;
    enum promql_type type;
    double num;
    char *str;
    /* selectors (PQ_VSEL; PQ_MSEL holds one in sub[0]) */
    struct selector sel;
    int64_t offset_ms, range_ms, step_ms; /* step: subqueries, 0 = default */
    /* calls, aggregations, binary operations, subqueries */
    const struct pq_func *fn;
    struct promql_expr **sub;
    size_t nsub;
    int op;               /* enum pq_op or enum pq_agg */
    int without;          /* aggregation: without (else by) */
    int has_grouping;
    struct pq_names grouping;
    int ret_bool;
    enum pq_card card;
    int on, has_matching; /* on(...) vs ignoring(...) */
    struct pq_names matching, include;
    /* PQ_VSEL: the series it matched, kept while the store's series are
     * the same (an alert rule evaluates the same tree every few seconds) */
    struct pq_selcache *cache;
};

/* Values during evaluation: every series has a value slot per step. A
 * scalar is one series without labels, every step set. */
struct pq_val {
    enum promql_type type;
    struct promql_series *s;
    size_t n, cap;
    char *str;
};

struct pq_ctx {
    struct tsdb *db;
    int64_t start, end, step;
    size_t nsteps;
    size_t samples, max_samples; /* held now, the bound */
    int64_t deadline_ns, lookback_ms;
    char *err;
    size_t errlen;
};

/* Samples of one series in a range window: what functions of range
 * vectors read. */
struct pq_range {
    struct promql_label *labels;
    size_t nlabels;
    int64_t *t;
    double *v;
    size_t n;
};

struct pq_func {
    const char *name;
    enum promql_type ret;
    int nargs_min, nargs_max; /* -1: variadic */
    enum promql_type args[5];
    /* one of: */
    double (*range_fn)(const struct pq_range *r, size_t lo, size_t hi, int64_t t, int64_t range_ms,
                       const double *param, int *ok);
    double (*simple_fn)(double v, const double *params);
    int (*special)(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out);
    int keeps_name;
};

const struct pq_func *pq_func_find(const char *name, size_t len);

/* Evaluates e over c's steps into out (empty on entry). 0 or a promql_error. */
int pq_eval(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out);
/* The samples of a range selector or subquery argument, for every series
 * over the whole evaluation (each step reads its window). */
int pq_eval_range(struct pq_ctx *c, const struct promql_expr *e, struct pq_range **out, size_t *n);
void pq_ranges_free(struct pq_range *r, size_t n);
void pq_selcache_free(struct pq_selcache *k);
/* An instant selector whose values are its samples' times (timestamp()). */
int pq_eval_timestamps(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out);

int pq_fail(struct pq_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int pq_check_time(struct pq_ctx *c);

/* Value helpers. */
struct promql_series *pq_add_series(struct pq_ctx *c, struct pq_val *v);
void pq_val_free(struct pq_val *v);
void pq_labels_free(struct promql_label *l, size_t n);
struct promql_label *pq_labels_copy(const struct promql_label *l, size_t n);
const char *pq_label_get(const struct promql_series *s, const char *name);
/* Sets (value non-empty) or removes (empty) a label, keeping them sorted. */
void pq_label_set(struct promql_series *s, const char *name, const char *value);
void pq_drop_name(struct promql_series *s);
/* 0 unless two series of v have the same labels (then an execution error). */
int pq_check_unique(struct pq_ctx *c, const struct pq_val *v);

#endif
