/* The PromQL evaluator: every node is evaluated for all steps at once (a
 * value slot per series per step), as Prometheus's range evaluation does,
 * so the store is read once per selector whatever the step count. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/hash.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../store/tsdb.h"
#include "promql_impl.h"

#define DEFAULT_MAX_SAMPLES 50000000
#define DEFAULT_LOOKBACK_MS 300000
#define DEFAULT_SUBQUERY_STEP_MS 60000

int pq_fail(struct pq_ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return code;
}

int pq_check_time(struct pq_ctx *c)
{
    if (c->deadline_ns && now_mono_ns() > c->deadline_ns)
        return pq_fail(c, PROMQL_TIMEOUT, "query timed out in expression evaluation");
    return 0;
}

/* Counts samples a query holds, against its bound. */
static int hold(struct pq_ctx *c, size_t n)
{
    c->samples += n;
    if (c->samples > c->max_samples)
        return pq_fail(c, PROMQL_EXECUTION,
                       "query processing would load too many samples into memory in query "
                       "execution (more than %zu; narrow the selector, the range or the step)",
                       c->max_samples);
    return 0;
}

/* ---- labels and values ---- */

void pq_labels_free(struct promql_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].name);
        free(l[i].value);
    }
    free(l);
}

struct promql_label *pq_labels_copy(const struct promql_label *l, size_t n)
{
    struct promql_label *r = xmalloc((n ? n : 1) * sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        r[i].name = xstrdup(l[i].name);
        r[i].value = xstrdup(l[i].value);
    }
    return r;
}

const char *pq_label_get(const struct promql_series *s, const char *name)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (!strcmp(s->labels[i].name, name))
            return s->labels[i].value;
    return NULL;
}

void pq_label_set(struct promql_series *s, const char *name, const char *value)
{
    size_t i = 0;
    while (i < s->nlabels && strcmp(s->labels[i].name, name) < 0)
        i++;
    int found = i < s->nlabels && !strcmp(s->labels[i].name, name);
    if (!value || !*value) {
        if (!found)
            return;
        free(s->labels[i].name);
        free(s->labels[i].value);
        memmove(&s->labels[i], &s->labels[i + 1], (s->nlabels - i - 1) * sizeof(*s->labels));
        s->nlabels--;
        return;
    }
    if (found) {
        free(s->labels[i].value);
        s->labels[i].value = xstrdup(value);
        return;
    }
    s->labels = xrealloc(s->labels, (s->nlabels + 1) * sizeof(*s->labels));
    memmove(&s->labels[i + 1], &s->labels[i], (s->nlabels - i) * sizeof(*s->labels));
    s->labels[i].name = xstrdup(name);
    s->labels[i].value = xstrdup(value);
    s->nlabels++;
}

void pq_drop_name(struct promql_series *s)
{
    pq_label_set(s, "__name__", NULL);
}

/* A new empty series at the end of v. */
static struct promql_series *push_series(struct pq_val *v)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->s = xrealloc(v->s, v->cap * sizeof(*v->s));
    }
    struct promql_series *s = &v->s[v->n++];
    memset(s, 0, sizeof(*s));
    return s;
}

struct promql_series *pq_add_series(struct pq_ctx *c, struct pq_val *v)
{
    struct promql_series *s = push_series(v);
    s->v = xcalloc(c->nsteps, sizeof(double));
    s->ok = xcalloc(c->nsteps, 1);
    return s;
}

static void series_free(struct promql_series *s)
{
    pq_labels_free(s->labels, s->nlabels);
    free(s->v);
    free(s->ok);
    free(s->t);
}

void pq_val_free(struct pq_val *v)
{
    for (size_t i = 0; i < v->n; i++)
        series_free(&v->s[i]);
    free(v->s);
    free(v->str);
    memset(v, 0, sizeof(*v));
}

/* A signature of a label set: name\xffvalue\xff... of the labels chosen
 * (on: those named; else all but those named), __name__ left out unless
 * keep_name. */
static char *signature(const struct promql_series *s, const struct pq_names *names, int on,
                       int keep_name)
{
    struct buf b = {0};
    for (size_t i = 0; i < s->nlabels; i++) {
        const char *n = s->labels[i].name;
        int listed = 0;
        for (size_t k = 0; names && k < names->n; k++)
            listed |= !strcmp(names->v[k], n);
        if (on ? !listed : (listed || (!keep_name && !strcmp(n, "__name__"))))
            continue;
        buf_puts(&b, n);
        buf_putc(&b, '\xff');
        buf_puts(&b, s->labels[i].value);
        buf_putc(&b, '\xff');
    }
    return buf_detach(&b, NULL);
}

/* ---- a small string -> index table ---- */

struct sigmap {
    char **keys;
    size_t *vals;
    size_t cap, n;
};

static size_t *sigmap_slot(struct sigmap *m, const char *key, int *found)
{
    if (m->n * 2 >= m->cap) {
        struct sigmap g = {xcalloc(m->cap ? m->cap * 2 : 64, sizeof(char *)),
                           xcalloc(m->cap ? m->cap * 2 : 64, sizeof(size_t)), m->cap ? m->cap * 2 : 64, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                int f;
                *sigmap_slot(&g, m->keys[i], &f) = m->vals[i];
            }
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    size_t mask = m->cap - 1, i = hash_bytes(key, strlen(key)) & mask;
    while (m->keys[i] && strcmp(m->keys[i], key))
        i = (i + 1) & mask;
    *found = m->keys[i] != NULL;
    if (!*found) {
        m->keys[i] = (char *)key;
        m->n++;
    }
    return &m->vals[i];
}

static void sigmap_free(struct sigmap *m, int free_keys)
{
    for (size_t i = 0; free_keys && i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
}

/* Series of v with the same labels: merged where their steps do not
 * overlap (a range query's output keeps one series per label set), an
 * execution error where they do. */
int pq_check_unique(struct pq_ctx *c, const struct pq_val *cv)
{
    struct pq_val *v = (struct pq_val *)cv;
    struct sigmap m = {0};
    size_t w = 0;
    int rc = 0;
    for (size_t i = 0; i < v->n; i++) {
        char *sig = signature(&v->s[i], NULL, 0, 1);
        int found;
        size_t *slot = sigmap_slot(&m, sig, &found);
        if (!found) {
            *slot = w;
            if (w != i)
                v->s[w] = v->s[i];
            w++;
            continue;
        }
        free(sig);
        struct promql_series *into = &v->s[*slot], *from = &v->s[i];
        for (size_t k = 0; k < c->nsteps && rc == 0; k++) {
            if (!from->ok[k])
                continue;
            if (into->ok[k])
                rc = pq_fail(c, PROMQL_EXECUTION,
                             "vector cannot contain metrics with the same labelset");
            into->v[k] = from->v[k];
            into->ok[k] = 1;
        }
        series_free(from);
    }
    v->n = w;
    sigmap_free(&m, 1);
    return rc;
}

/* ---- selectors ---- */

/* One label value of a canonical key from p (after its opening quote),
 * unescaped; *end past its closing quote. */
static char *key_value(const char *p, const char **end)
{
    size_t n = 0;
    const char *q = p;
    while (*q && *q != '"') {
        if (*q == '\\' && q[1])
            q++;
        q++, n++;
    }
    char *v = xmalloc(n + 1), *w = v;
    while (*p && *p != '"') {
        if (*p == '\\' && p[1]) {
            p++;
            *w++ = *p == 'n' ? '\n' : *p;
        } else {
            *w++ = *p;
        }
        p++;
    }
    *w = 0;
    *end = *p == '"' ? p + 1 : p;
    return v;
}

/* A canonical key, name{a="b",...} (labels already in name order, values
 * escaped \\ \" \n), into labels sorted by name with __name__ among them:
 * one pass, no re-sorting. */
static void key_labels(const char *key, struct promql_series *s)
{
    const char *b = strchr(key, '{');
    size_t nl = b ? (size_t)(b - key) : strlen(key), cap = 1;
    for (const char *q = b; q && *q; q++)
        cap += *q == '=';
    s->labels = xmalloc(cap * sizeof(*s->labels));
    s->nlabels = 0;
    char *name = xstrndup(key, nl);
    int name_done = 0;
    const char *p = b ? b + 1 : "";
    while (*p && *p != '}') {
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            break;
        char *ln = xstrndup(p, (size_t)(eq - p));
        if (!name_done && strcmp("__name__", ln) < 0) {
            s->labels[s->nlabels++] = (struct promql_label){xstrdup("__name__"), name};
            name_done = 1;
        }
        s->labels[s->nlabels].name = ln;
        s->labels[s->nlabels++].value = key_value(eq + 2, &p);
        if (*p == ',')
            p++;
    }
    if (!name_done)
        s->labels[s->nlabels++] = (struct promql_label){xstrdup("__name__"), name};
}

/* Label sets in Prometheus's order (labels.Compare). */
static int cmp_labels(const struct promql_label *a, size_t na, const struct promql_label *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c)
            return c;
        if ((c = strcmp(a[i].value, b[i].value)))
            return c;
    }
    return (na > nb) - (na < nb);
}

struct selected {
    struct tsdb_series_info *info;
    struct promql_series *lab; /* parsed labels of each (moved out when used) */
    size_t n;
};

struct sortable {
    struct promql_series lab;
    struct tsdb_series_info info;
};

static int cmp_sortable(const void *a, const void *b)
{
    const struct sortable *x = a, *y = b;
    return cmp_labels(x->lab.labels, x->lab.nlabels, y->lab.labels, y->lab.nlabels);
}

/* Labels parsed once; series in the order of their label sets, as
 * Prometheus's storage gives them: what topk/bottomk keep among equal
 * values depends on it. */
static void sort_by_labels(struct selected *sel)
{
    struct sortable *s = xmalloc((sel->n ? sel->n : 1) * sizeof(*s));
    for (size_t i = 0; i < sel->n; i++) {
        memset(&s[i].lab, 0, sizeof(s[i].lab));
        key_labels(sel->info[i].key, &s[i].lab);
        s[i].info = sel->info[i];
    }
    if (sel->n > 1)
        qsort(s, sel->n, sizeof(*s), cmp_sortable);
    sel->lab = xcalloc(sel->n ? sel->n : 1, sizeof(*sel->lab));
    for (size_t i = 0; i < sel->n; i++) {
        sel->info[i] = s[i].info;
        sel->lab[i] = s[i].lab;
    }
    free(s);
}

struct pq_selcache {
    const struct tsdb *db;
    uint64_t series;  /* the store's series count when selected */
    int64_t at_ns;
    struct tsdb_series_info *info;
    struct promql_series *lab;
    size_t n;
};

void pq_selcache_free(struct pq_selcache *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        pq_labels_free(k->lab[i].labels, k->lab[i].nlabels);
    free(k->info);
    free(k->lab);
    free(k);
}

/* A copy of a cached selection (the caller owns and frees it). */
static void from_cache(const struct pq_selcache *k, struct selected *out)
{
    out->n = k->n;
    out->info = xmalloc((k->n ? k->n : 1) * sizeof(*out->info));
    out->lab = xmalloc((k->n ? k->n : 1) * sizeof(*out->lab));
    for (size_t i = 0; i < k->n; i++) {
        out->info[i] = (struct tsdb_series_info){k->info[i].id, NULL}; /* labels are parsed already */
        memset(&out->lab[i], 0, sizeof(out->lab[i]));
        out->lab[i].labels = pq_labels_copy(k->lab[i].labels, k->lab[i].nlabels);
        out->lab[i].nlabels = k->lab[i].nlabels;
    }
}

/* The series of a selector node, sorted, labels parsed; from its cache
 * while the store has the same series (and for at most a minute). */
static int select_series(struct pq_ctx *c, const struct promql_expr *e, struct selected *out)
{
    struct promql_expr *node = (struct promql_expr *)e; /* the cache is the node's own */
    uint64_t count = tsdb_series_count(c->db);
    int64_t now = now_mono_ns();
    struct pq_selcache *k = node->cache;
    if (k && k->db == c->db && k->series == count && now - k->at_ns < 60000000000LL) {
        from_cache(k, out);
        return 0;
    }
    out->lab = NULL;
    out->n = tsdb_select(c->db, &e->sel, 0, &out->info);
    if (out->n == TSDB_BUDGET) {
        out->n = 0;
        out->info = NULL;
        return pq_fail(c, PROMQL_TIMEOUT, "query timed out selecting series");
    }
    sort_by_labels(out);
    pq_selcache_free(node->cache);
    node->cache = xcalloc(1, sizeof(*node->cache));
    node->cache->db = c->db;
    node->cache->series = count;
    node->cache->at_ns = now;
    struct selected copy = {0};
    /* the cache keeps its own copy; out stays the caller's */
    struct pq_selcache tmp = {.info = out->info, .lab = out->lab, .n = out->n};
    from_cache(&tmp, &copy);
    node->cache->info = copy.info;
    node->cache->lab = copy.lab;
    node->cache->n = copy.n;
    return 0;
}

struct samples {
    struct tsdb_tv **pts;
    long *n;
};

/* Raw samples (stale markers kept) of every selected series in [from, to],
 * read group by group. */
static int fetch(struct pq_ctx *c, const struct selected *sel, int64_t from, int64_t to,
                 struct samples *out)
{
    uint64_t *ids = xmalloc((sel->n ? sel->n : 1) * sizeof(uint64_t));
    out->pts = xcalloc(sel->n ? sel->n : 1, sizeof(*out->pts));
    out->n = xcalloc(sel->n ? sel->n : 1, sizeof(long));
    for (size_t i = 0; i < sel->n; i++)
        ids[i] = sel->info[i].id;
    int rc = tsdb_samples_many(c->db, ids, sel->n, from, to, out->pts, out->n);
    free(ids);
    if (rc < 0)
        return pq_fail(c, PROMQL_INTERNAL, "reading the store failed");
    return pq_check_time(c);
}

static void samples_free(struct samples *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s->pts[i]);
    free(s->pts);
    free(s->n);
}

static void selected_free(struct selected *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->info[i].key);
        if (s->lab)
            pq_labels_free(s->lab[i].labels, s->lab[i].nlabels);
    }
    free(s->lab);
    free(s->info);
}

/* Moves the parsed labels of selected series i into s. */
static void take_labels(struct selected *sel, size_t i, struct promql_series *s)
{
    s->labels = sel->lab[i].labels;
    s->nlabels = sel->lab[i].nlabels;
    sel->lab[i].labels = NULL;
    sel->lab[i].nlabels = 0;
}

struct vsel_fill {
    struct pq_ctx *c;
    const struct promql_expr *e;
    int want_ts;
    struct promql_series *s; /* one per selected series, in their order */
    int rc;                   /* a bound passed (PROMQL_*): the read stopped */
};

/* One series' samples to its value at each step (called by the store as it
 * reads, so a big selection never holds every series' samples at once). */
static int vsel_fill(void *arg, size_t i, const struct tsdb_tv *pts, long n)
{
    struct vsel_fill *f = arg;
    struct pq_ctx *c = f->c;
    struct promql_series *s = &f->s[i];
    s->v = xcalloc(c->nsteps, sizeof(double));
    s->ok = xcalloc(c->nsteps, 1);
    size_t j = 0, got = 0;
    for (size_t k = 0; k < c->nsteps; k++) {
        int64_t ref = c->start + (int64_t)k * c->step - f->e->offset_ms;
        while (j < (size_t)n && pts[j].t <= ref)
            j++;
        if (j == 0)
            continue;
        const struct tsdb_tv *p = &pts[j - 1];
        if (p->t < ref - c->lookback_ms || tsdb_is_stale(p->v))
            continue;
        s->v[k] = f->want_ts ? (double)p->t / 1000.0 : p->v;
        s->ok[k] = 1;
        got++;
    }
    if (!got) {
        free(s->v);
        free(s->ok);
        s->v = NULL;
        s->ok = NULL;
        return 0;
    }
    f->rc = hold(c, got);
    if (!f->rc)
        f->rc = pq_check_time(c);
    return f->rc != 0;
}

/* An instant vector selector: the newest sample at or before each step
 * (minus the offset), if within the lookback and not a stale marker.
 * want_ts: the value is that sample's time in seconds (timestamp()). */
static int eval_vsel(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out, int want_ts)
{
    struct selected sel;
    int rc = select_series(c, e, &sel);
    if (rc)
        return rc;
    out->type = PROMQL_VECTOR;
    uint64_t *ids = xmalloc((sel.n ? sel.n : 1) * sizeof(uint64_t));
    for (size_t i = 0; i < sel.n; i++)
        ids[i] = sel.info[i].id;
    struct vsel_fill f = {c, e, want_ts, xcalloc(sel.n ? sel.n : 1, sizeof(*f.s)), 0};
    rc = tsdb_samples_each(c->db, ids, sel.n, c->start - e->offset_ms - c->lookback_ms,
                           c->end - e->offset_ms, vsel_fill, &f);
    free(ids);
    if (f.rc)
        rc = f.rc;
    else if (rc)
        rc = pq_fail(c, PROMQL_INTERNAL, "reading the store failed");
    for (size_t i = 0; i < sel.n; i++) { /* in the selection's order */
        if (!f.s[i].v)
            continue;
        if (rc) {
            series_free(&f.s[i]);
            continue;
        }
        struct promql_series *s = push_series(out);
        *s = f.s[i];
        take_labels(&sel, i, s);
    }
    free(f.s);
    selected_free(&sel);
    return rc;
}

void pq_ranges_free(struct pq_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pq_labels_free(r[i].labels, r[i].nlabels);
        free(r[i].t);
        free(r[i].v);
    }
    free(r);
}

static int range_of_msel(struct pq_ctx *c, const struct promql_expr *e, struct pq_range **out,
                         size_t *nout)
{
    const struct promql_expr *vs = e->sub[0];
    struct selected sel;
    int rc = select_series(c, vs, &sel);
    if (rc)
        return rc;
    struct pq_range *r = xcalloc(sel.n ? sel.n : 1, sizeof(*r));
    size_t w = 0;
    struct samples all;
    rc = fetch(c, &sel, c->start - vs->offset_ms - e->range_ms, c->end - vs->offset_ms, &all);
    for (size_t i = 0; i < sel.n && rc == 0; i++) {
        struct tsdb_tv *pts = all.pts[i];
        long n = all.n[i];
        size_t live = 0;
        for (long k = 0; k < n; k++)
            live += !tsdb_is_stale(pts[k].v); /* stale markers are no samples of a range */
        if (live == 0)
            continue;
        struct promql_series tmp = {0};
        take_labels(&sel, i, &tmp);
        r[w].labels = tmp.labels;
        r[w].nlabels = tmp.nlabels;
        r[w].t = xmalloc(live * sizeof(int64_t));
        r[w].v = xmalloc(live * sizeof(double));
        for (long k = 0; k < n; k++) {
            if (tsdb_is_stale(pts[k].v))
                continue;
            r[w].t[r[w].n] = pts[k].t;
            r[w].v[r[w].n++] = pts[k].v;
        }
        w++;
        rc = hold(c, live);
    }
    samples_free(&all, sel.n);
    selected_free(&sel);
    *out = r;
    *nout = w;
    return rc;
}

/* A subquery: its expression evaluated at steps aligned to multiples of its
 * step, over the range before the first outer step to the last. */
static int range_of_subquery(struct pq_ctx *c, const struct promql_expr *e, struct pq_range **out,
                             size_t *nout)
{
    struct pq_ctx sc = *c;
    int64_t step = e->step_ms ? e->step_ms : DEFAULT_SUBQUERY_STEP_MS;
    int64_t from = c->start - e->offset_ms - e->range_ms, to = c->end - e->offset_ms;
    int64_t mod = ((from % step) + step) % step;
    if (mod)
        from += step - mod;
    *out = NULL;
    *nout = 0;
    if (from > to)
        return 0;
    sc.start = from;
    sc.end = to;
    sc.step = step;
    /* a subquery's steps are bounded as a query's samples are: x[100y:1ms]
     * would otherwise ask for an array of trillions */
    if ((uint64_t)(to - from) / (uint64_t)step + 1 > c->max_samples)
        return pq_fail(c, PROMQL_EXECUTION,
                       "the subquery has more steps than query_max_samples (%zu); use a larger step",
                       c->max_samples);
    sc.nsteps = (size_t)((to - from) / step) + 1;
    struct pq_val v = {0};
    int rc = pq_eval(&sc, e->sub[0], &v);
    c->samples = sc.samples;
    if (rc) {
        pq_val_free(&v);
        return rc;
    }
    struct pq_range *r = xcalloc(v.n ? v.n : 1, sizeof(*r));
    size_t w = 0;
    for (size_t i = 0; i < v.n; i++) {
        size_t cnt = 0;
        for (size_t k = 0; k < sc.nsteps; k++)
            cnt += v.s[i].ok[k];
        if (!cnt)
            continue;
        r[w].labels = v.s[i].labels;
        r[w].nlabels = v.s[i].nlabels;
        v.s[i].labels = NULL;
        v.s[i].nlabels = 0;
        r[w].t = xmalloc(cnt * sizeof(int64_t));
        r[w].v = xmalloc(cnt * sizeof(double));
        for (size_t k = 0; k < sc.nsteps; k++)
            if (v.s[i].ok[k]) {
                r[w].t[r[w].n] = sc.start + (int64_t)k * step;
                r[w].v[r[w].n++] = v.s[i].v[k];
            }
        w++;
    }
    pq_val_free(&v);
    *out = r;
    *nout = w;
    return 0;
}

int pq_eval_range(struct pq_ctx *c, const struct promql_expr *e, struct pq_range **out, size_t *n)
{
    return e->kind == PQ_MSEL ? range_of_msel(c, e, out, n) : range_of_subquery(c, e, out, n);
}

/* ---- operators ---- */

static int is_comparison(int op)
{
    return op >= OP_EQ && op <= OP_LE;
}

/* Arithmetic drops the metric name (atan2 and comparisons keep it, as in
 * Prometheus 2.42). */
static int drops_name(int op)
{
    return op <= OP_POW;
}

/* The value of lhs op rhs, and whether a comparison holds. */
static double binop(int op, double l, double r, int *keep)
{
    *keep = 1;
    switch (op) {
    case OP_ADD: return l + r;
    case OP_SUB: return l - r;
    case OP_MUL: return l * r;
    case OP_DIV: return l / r;
    case OP_MOD: return fmod(l, r);
    case OP_POW: return pow(l, r);
    case OP_ATAN2: return atan2(l, r);
    case OP_EQ: *keep = l == r; return l;
    case OP_NE: *keep = l != r; return l;
    case OP_GT: *keep = l > r; return l;
    case OP_LT: *keep = l < r; return l;
    case OP_GE: *keep = l >= r; return l;
    case OP_LE: *keep = l <= r; return l;
    }
    return NAN;
}

static int eval_scalar_scalar(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *l,
                              struct pq_val *r, struct pq_val *out)
{
    out->type = PROMQL_SCALAR;
    struct promql_series *s = pq_add_series(c, out);
    for (size_t k = 0; k < c->nsteps; k++) {
        int keep;
        double v = binop(e->op, l->s[0].v[k], r->s[0].v[k], &keep);
        s->v[k] = is_comparison(e->op) ? keep : v;
        s->ok[k] = 1;
    }
    return 0;
}

/* vector op scalar, or scalar op vector (swap): each element with the
 * scalar of its step. */
static int eval_vector_scalar(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *vec,
                              struct pq_val *sc, int swap, struct pq_val *out)
{
    out->type = PROMQL_VECTOR;
    for (size_t i = 0; i < vec->n; i++) {
        struct promql_series *in = &vec->s[i], *s = pq_add_series(c, out);
        size_t got = 0;
        for (size_t k = 0; k < c->nsteps; k++) {
            if (!in->ok[k])
                continue;
            double lv = in->v[k], rv = sc->s[0].v[k];
            int keep;
            double v = swap ? binop(e->op, rv, lv, &keep) : binop(e->op, lv, rv, &keep);
            if (is_comparison(e->op) && swap)
                v = lv; /* the vector's value is kept, whichever side it is on */
            if (e->ret_bool) {
                v = keep;
                keep = 1;
            }
            if (!keep)
                continue;
            s->v[k] = v;
            s->ok[k] = 1;
            got++;
        }
        s->labels = in->labels;
        s->nlabels = in->nlabels;
        in->labels = NULL;
        in->nlabels = 0;
        if (drops_name(e->op) || e->ret_bool)
            pq_drop_name(s);
        if (!got) {
            series_free(s);
            out->n--;
        }
    }
    return pq_check_unique(c, out);
}

/* Groups of series by matching signature: index lists. */
struct groups {
    struct sigmap map;
    size_t **members;
    size_t *count;
    size_t n;
    size_t *of; /* series -> group */
};

static void group_series(const struct pq_val *v, const struct pq_names *names, int on,
                         struct groups *g)
{
    memset(g, 0, sizeof(*g));
    g->of = xcalloc(v->n ? v->n : 1, sizeof(size_t));
    for (size_t i = 0; i < v->n; i++) {
        char *sig = signature(&v->s[i], names, on, 0);
        int found;
        size_t *slot = sigmap_slot(&g->map, sig, &found);
        if (!found) {
            *slot = g->n++;
            g->members = xrealloc(g->members, g->n * sizeof(*g->members));
            g->count = xrealloc(g->count, g->n * sizeof(*g->count));
            g->members[*slot] = NULL;
            g->count[*slot] = 0;
        } else {
            free(sig);
        }
        size_t gi = *slot;
        g->members[gi] = xrealloc(g->members[gi], (g->count[gi] + 1) * sizeof(size_t));
        g->members[gi][g->count[gi]++] = i;
        g->of[i] = gi;
    }
}

static void groups_free(struct groups *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->members[i]);
    free(g->members);
    free(g->count);
    free(g->of);
    sigmap_free(&g->map, 1);
}

/* The group of sig in g, or (size_t)-1. */
static size_t group_find(struct groups *g, const struct promql_series *s, const struct pq_names *names,
                         int on)
{
    if (!g->map.cap)
        return (size_t)-1;
    char *sig = signature(s, names, on, 0);
    size_t mask = g->map.cap - 1, i = hash_bytes(sig, strlen(sig)) & mask;
    while (g->map.keys[i] && strcmp(g->map.keys[i], sig))
        i = (i + 1) & mask;
    size_t r = g->map.keys[i] ? g->map.vals[i] : (size_t)-1;
    free(sig);
    return r;
}

static void move_series(struct pq_ctx *c, struct pq_val *out, struct promql_series *in,
                        const uint8_t *keep_step)
{
    struct promql_series *s = pq_add_series(c, out);
    size_t got = 0;
    for (size_t k = 0; k < c->nsteps; k++)
        if (in->ok[k] && (!keep_step || keep_step[k])) {
            s->v[k] = in->v[k];
            s->ok[k] = 1;
            got++;
        }
    s->labels = in->labels;
    s->nlabels = in->nlabels;
    in->labels = NULL;
    in->nlabels = 0;
    if (!got) {
        series_free(s);
        out->n--;
    }
}

static int eval_set(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *l,
                    struct pq_val *r, struct pq_val *out)
{
    const struct pq_names *names = e->has_matching ? &e->matching : NULL;
    int on = e->has_matching && e->on;
    struct groups rg, lg = {0};
    group_series(r, names, on, &rg);
    if (e->op == OP_OR)
        group_series(l, names, on, &lg);
    uint8_t *keep = xmalloc(c->nsteps);
    out->type = PROMQL_VECTOR;
    /* per step: does any rhs series of the group have a value? */
    for (size_t i = 0; i < l->n; i++) {
        size_t gi = group_find(&rg, &l->s[i], names, on);
        for (size_t k = 0; k < c->nsteps; k++) {
            int present = 0;
            for (size_t m = 0; gi != (size_t)-1 && m < rg.count[gi] && !present; m++)
                present = r->s[rg.members[gi][m]].ok[k];
            keep[k] = e->op == OP_UNLESS ? !present : e->op == OP_AND ? present : 1;
        }
        if (e->op == OP_OR)
            move_series(c, out, &l->s[i], NULL);
        else
            move_series(c, out, &l->s[i], keep);
    }
    if (e->op == OP_OR) {
        /* rhs where no lhs series of its signature has a value at that step
         * (l's series keep their values after their labels moved out) */
        for (size_t i = 0; i < r->n; i++) {
            size_t gi = group_find(&lg, &r->s[i], names, on);
            for (size_t k = 0; k < c->nsteps; k++) {
                int present = 0;
                for (size_t m = 0; gi != (size_t)-1 && m < lg.count[gi] && !present; m++)
                    present = l->s[lg.members[gi][m]].ok[k];
                keep[k] = !present;
            }
            move_series(c, out, &r->s[i], keep);
        }
    }
    groups_free(&lg);
    free(keep);
    groups_free(&rg);
    return pq_check_unique(c, out);
}

/* The labels of a result of one-to-one or many-to-one matching. */
static void result_labels(const struct promql_expr *e, const struct promql_series *many,
                          const struct promql_series *one, struct promql_series *s)
{
    s->labels = pq_labels_copy(many->labels, many->nlabels);
    s->nlabels = many->nlabels;
    if (drops_name(e->op) || e->ret_bool)
        pq_drop_name(s);
    if (e->card == CARD_ONE_ONE && e->has_matching) {
        for (size_t i = 0; i < s->nlabels;) {
            int listed = 0;
            for (size_t k = 0; k < e->matching.n; k++)
                listed |= !strcmp(e->matching.v[k], s->labels[i].name);
            if (listed != e->on) {
                char *n = xstrdup(s->labels[i].name);
                pq_label_set(s, n, NULL);
                free(n);
            } else {
                i++;
            }
        }
    }
    for (size_t k = 0; k < e->include.n; k++)
        pq_label_set(s, e->include.v[k], pq_label_get(one, e->include.v[k]));
}

static int eval_vector_vector(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *l,
                              struct pq_val *r, struct pq_val *out)
{
    const struct pq_names *names = e->has_matching ? &e->matching : NULL;
    int on = e->has_matching && e->on;
    struct pq_val *many = l, *one = r;
    if (e->card == CARD_ONE_MANY) {
        many = r;
        one = l;
    }
    struct groups og, mg;
    group_series(one, names, on, &og);
    group_series(many, names, on, &mg);
    struct sigmap outmap = {0};
    size_t *last_one = xmalloc((many->n ? many->n : 1) * sizeof(size_t));
    size_t *last_out = xmalloc((many->n ? many->n : 1) * sizeof(size_t));
    size_t *one_of = xmalloc((many->n ? many->n : 1) * sizeof(size_t));
    int rc = 0;
    out->type = PROMQL_VECTOR;
    for (size_t i = 0; i < many->n; i++) {
        last_one[i] = (size_t)-1;
        one_of[i] = group_find(&og, &many->s[i], names, on);
    }
    for (size_t k = 0; k < c->nsteps && rc == 0; k++) {
        if (e->card == CARD_ONE_ONE) /* the many side must be unique per step, too */
            for (size_t gi = 0; gi < mg.n && rc == 0; gi++) {
                size_t present = 0;
                for (size_t m = 0; m < mg.count[gi]; m++)
                    present += many->s[mg.members[gi][m]].ok[k];
                if (present > 1)
                    rc = pq_fail(c, PROMQL_EXECUTION,
                                 "found duplicate series for the match group on the left hand "
                                 "side of the operation: many-to-many matching not allowed: "
                                 "matching labels must be unique on one side");
            }
        for (size_t i = 0; i < many->n && rc == 0; i++) {
            const struct promql_series *ms = &many->s[i];
            size_t gi = one_of[i];
            if (!ms->ok[k] || gi == (size_t)-1)
                continue;
            size_t match = (size_t)-1;
            for (size_t m = 0; m < og.count[gi]; m++) {
                size_t oi = og.members[gi][m];
                if (!one->s[oi].ok[k])
                    continue;
                if (match != (size_t)-1) {
                    rc = pq_fail(c, PROMQL_EXECUTION,
                                 "found duplicate series for the match group on the %s hand side "
                                 "of the operation: many-to-many matching not allowed: matching "
                                 "labels must be unique on one side",
                                 one == r ? "right" : "left");
                    break;
                }
                match = oi;
            }
            if (rc || match == (size_t)-1)
                continue;
            double lv = ms->v[k], rv = one->s[match].v[k];
            if (e->card == CARD_ONE_MANY) {
                double t = lv;
                lv = rv;
                rv = t;
            }
            int keep;
            double v = binop(e->op, lv, rv, &keep);
            if (e->ret_bool) {
                v = keep;
                keep = 1;
            }
            if (!keep)
                continue;
            size_t oi;
            if (last_one[i] == match) {
                oi = last_out[i];
            } else {
                struct promql_series tmp = {0};
                result_labels(e, ms, &one->s[match], &tmp);
                char *sig = signature(&tmp, NULL, 0, 1);
                int found;
                size_t *slot = sigmap_slot(&outmap, sig, &found);
                if (found) {
                    free(sig);
                    pq_labels_free(tmp.labels, tmp.nlabels);
                } else {
                    struct promql_series *s = pq_add_series(c, out);
                    s->labels = tmp.labels;
                    s->nlabels = tmp.nlabels;
                    *slot = out->n - 1;
                }
                oi = *slot;
                last_one[i] = match;
                last_out[i] = oi;
            }
            struct promql_series *s = &out->s[oi];
            if (s->ok[k]) {
                rc = pq_fail(c, PROMQL_EXECUTION,
                             "multiple matches for labels: grouping labels must ensure unique "
                             "matches");
                break;
            }
            s->v[k] = v;
            s->ok[k] = 1;
        }
        if (rc == 0)
            rc = pq_check_time(c);
    }
    free(last_one);
    free(last_out);
    free(one_of);
    sigmap_free(&outmap, 1);
    groups_free(&og);
    groups_free(&mg);
    return rc;
}

static int eval_binary(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    struct pq_val l = {0}, r = {0};
    int rc = pq_eval(c, e->sub[0], &l);
    if (rc == 0)
        rc = pq_eval(c, e->sub[1], &r);
    if (rc == 0) {
        if (l.type == PROMQL_SCALAR && r.type == PROMQL_SCALAR)
            rc = eval_scalar_scalar(c, e, &l, &r, out);
        else if (e->op >= OP_AND)
            rc = eval_set(c, e, &l, &r, out);
        else if (r.type == PROMQL_SCALAR)
            rc = eval_vector_scalar(c, e, &l, &r, 0, out);
        else if (l.type == PROMQL_SCALAR)
            rc = eval_vector_scalar(c, e, &r, &l, 1, out);
        else
            rc = eval_vector_vector(c, e, &l, &r, out);
    }
    pq_val_free(&l);
    pq_val_free(&r);
    return rc;
}

/* ---- aggregation ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y)) /* NaN sorts first, as Go's sort of float64s */
        return isnan(y) - isnan(x);
    return (x > y) - (x < y);
}

static double quantile(double q, double *v, size_t n)
{
    if (!n)
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(v, n, sizeof(double), cmp_double);
    double rank = q * (double)(n - 1);
    double lo = fmax(0, floor(rank)), hi = fmin((double)n - 1, lo + 1);
    double w = rank - floor(rank);
    return v[(size_t)lo] * (1 - w) + v[(size_t)hi] * w;
}

/* topk and bottomk keep a heap of k as Prometheus does (Go's
 * container/heap, NaN the least): which of equal values stay depends on
 * the heap's order, so the same algorithm gives the same answer. */
struct kheap {
    size_t *idx;
    size_t n;
    const struct promql_series *s;
    size_t step;
    int top;
};

static int heap_less(const struct kheap *h, size_t i, size_t j)
{
    double a = h->s[h->idx[i]].v[h->step], b = h->s[h->idx[j]].v[h->step];
    if (isnan(a))
        return 1;
    return h->top ? a < b : a > b;
}

static void heap_swap(struct kheap *h, size_t i, size_t j)
{
    size_t t = h->idx[i];
    h->idx[i] = h->idx[j];
    h->idx[j] = t;
}

static void heap_up(struct kheap *h, size_t j)
{
    while (j > 0) {
        size_t i = (j - 1) / 2;
        if (!heap_less(h, j, i))
            break;
        heap_swap(h, i, j);
        j = i;
    }
}

static int heap_down(struct kheap *h, size_t i0)
{
    size_t i = i0;
    for (;;) {
        size_t j = 2 * i + 1;
        if (j >= h->n)
            break;
        if (j + 1 < h->n && heap_less(h, j + 1, j))
            j++;
        if (!heap_less(h, j, i))
            break;
        heap_swap(h, i, j);
        i = j;
    }
    return i > i0;
}

static int eval_topk(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *in,
                     const struct pq_val *param, struct groups *g, struct pq_val *out)
{
    int top = e->op == AGG_TOPK;
    uint8_t **chosen = xcalloc(in->n ? in->n : 1, sizeof(uint8_t *));
    struct kheap h = {.s = in->s, .top = top};
    h.idx = xmalloc((in->n + 1) * sizeof(size_t));
    for (size_t i = 0; i < in->n; i++)
        chosen[i] = xcalloc(c->nsteps, 1);
    for (size_t k = 0; k < c->nsteps; k++) {
        double kf = param->s[0].v[k];
        if (!(kf >= 1))
            continue;
        size_t want = kf > 1e9 ? (size_t)1e9 : (size_t)kf;
        h.step = k;
        for (size_t gi = 0; gi < g->n; gi++) {
            h.n = 0;
            for (size_t m = 0; m < g->count[gi]; m++) {
                size_t si = g->members[gi][m];
                if (!in->s[si].ok[k])
                    continue;
                double v = in->s[si].v[k];
                if (h.n < want) {
                    h.idx[h.n++] = si;
                    heap_up(&h, h.n - 1);
                    continue;
                }
                double root = in->s[h.idx[0]].v[k];
                int better = top ? root < v : root > v;
                if (better || (isnan(root) && !isnan(v))) {
                    h.idx[0] = si;
                    if (want > 1 && !heap_down(&h, 0))
                        heap_up(&h, 0);
                }
            }
            for (size_t p = 0; p < h.n; p++)
                chosen[h.idx[p]][k] = 1;
        }
    }
    out->type = PROMQL_VECTOR;
    for (size_t i = 0; i < in->n; i++) {
        move_series(c, out, &in->s[i], chosen[i]);
        free(chosen[i]);
    }
    free(chosen);
    free(h.idx);
    return 0;
}

static void agg_labels(const struct promql_expr *e, const struct promql_series *in,
                       struct promql_series *s)
{
    if (e->without) {
        s->labels = pq_labels_copy(in->labels, in->nlabels);
        s->nlabels = in->nlabels;
        pq_drop_name(s);
        for (size_t k = 0; k < e->grouping.n; k++)
            pq_label_set(s, e->grouping.v[k], NULL);
        return;
    }
    for (size_t k = 0; k < e->grouping.n; k++)
        pq_label_set(s, e->grouping.v[k], pq_label_get(in, e->grouping.v[k]));
}

/* One step's statistic, taking the members' values in their order: the
 * first starts every statistic, as in Prometheus (the same arithmetic in
 * the same order, so the same floats). */
static void agg_add(int op, double v, double n, double *acc, double *mean)
{
    if (n == 1) {
        *acc = *mean = v;
        if (op == AGG_STDDEV || op == AGG_STDVAR)
            *acc = 0;
        return;
    }
    switch (op) {
    case AGG_SUM: *acc += v; break;
    case AGG_AVG:
        if (isinf(*mean) && ((isinf(v) && (*mean > 0) == (v > 0)) || (!isinf(v) && !isnan(v))))
            break;
        *mean += v / n - *mean / n;
        break;
    case AGG_MIN: if (*acc > v || isnan(*acc)) *acc = v; break;
    case AGG_MAX: if (*acc < v || isnan(*acc)) *acc = v; break;
    case AGG_STDDEV: case AGG_STDVAR: {
        double d = v - *mean;
        *mean += d / n;
        *acc += d * (v - *mean);
        break;
    }
    default: break;
    }
}

/* sum, avg, min, max, count, group, stddev, stdvar: member by member over
 * all steps (each member's arrays read once, in order), each step's
 * running state in arrays. */
static int agg_by_member(struct pq_ctx *c, const struct promql_expr *e, const struct pq_val *in,
                         const struct groups *g, struct pq_val *out)
{
    size_t ns = c->nsteps ? c->nsteps : 1;
    double *acc = xmalloc(ns * sizeof(double)), *mean = xmalloc(ns * sizeof(double));
    double *cnt = xmalloc(ns * sizeof(double));
    int rc = 0;
    for (size_t gi = 0; gi < g->n && rc == 0; gi++) {
        memset(cnt, 0, ns * sizeof(double));
        for (size_t m = 0; m < g->count[gi]; m++) {
            const struct promql_series *is = &in->s[g->members[gi][m]];
            for (size_t k = 0; k < c->nsteps; k++)
                if (is->ok[k])
                    agg_add(e->op, is->v[k], ++cnt[k], &acc[k], &mean[k]);
        }
        struct promql_series *s = pq_add_series(c, out);
        agg_labels(e, &in->s[g->members[gi][0]], s);
        size_t got = 0;
        for (size_t k = 0; k < c->nsteps; k++) {
            if (!cnt[k])
                continue;
            double r = acc[k];
            switch (e->op) {
            case AGG_AVG: r = mean[k]; break;
            case AGG_COUNT: r = cnt[k]; break;
            case AGG_GROUP: r = 1; break;
            case AGG_STDVAR: r = acc[k] / cnt[k]; break;
            case AGG_STDDEV: r = sqrt(acc[k] / cnt[k]); break;
            default: break;
            }
            s->v[k] = r;
            s->ok[k] = 1;
            got++;
        }
        if (!got) {
            series_free(s);
            out->n--;
        }
        rc = pq_check_time(c);
    }
    free(acc);
    free(mean);
    free(cnt);
    return rc;
}

static int eval_aggregation(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    struct pq_val param = {0}, in = {0};
    int rc = 0;
    if (e->nsub == 2)
        rc = pq_eval(c, e->sub[0], &param);
    if (rc == 0)
        rc = pq_eval(c, e->sub[e->nsub - 1], &in);
    if (rc) {
        pq_val_free(&param);
        pq_val_free(&in);
        return rc;
    }
    /* grouping: by(labels) compares those labels; without(labels) all but
     * those and the name */
    struct groups g;
    struct pq_names none = {0};
    const struct pq_names *names = e->has_grouping ? &e->grouping : &none;
    int on = !e->without;
    if (!e->has_grouping)
        on = 1; /* no grouping: one group */
    group_series(&in, names, on, &g);
    out->type = PROMQL_VECTOR;
    if (e->op == AGG_TOPK || e->op == AGG_BOTTOMK) {
        rc = eval_topk(c, e, &in, &param, &g, out);
        goto done;
    }
    if (e->op != AGG_QUANTILE) {
        rc = agg_by_member(c, e, &in, &g, out);
        goto done;
    }
    double *vals = NULL;
    for (size_t gi = 0; gi < g.n; gi++) {
        struct promql_series *s = pq_add_series(c, out);
        agg_labels(e, &in.s[g.members[gi][0]], s);
        vals = xrealloc(vals, (g.count[gi] + 1) * sizeof(double));
        size_t got = 0;
        for (size_t k = 0; k < c->nsteps; k++) {
            size_t nv = 0;
            for (size_t m = 0; m < g.count[gi]; m++) {
                const struct promql_series *is = &in.s[g.members[gi][m]];
                if (is->ok[k])
                    vals[nv++] = is->v[k];
            }
            if (!nv)
                continue;
            s->v[k] = quantile(param.s[0].v[k], vals, nv);
            s->ok[k] = 1;
            got++;
        }
        if (!got) {
            series_free(s);
            out->n--;
        }
        if ((rc = pq_check_time(c)))
            break;
    }
    free(vals);
done:
    groups_free(&g);
    pq_val_free(&param);
    pq_val_free(&in);
    return rc;
}

/* ---- the tree ---- */

static int eval_neg(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    int rc = pq_eval(c, e->sub[0], out);
    if (rc)
        return rc;
    for (size_t i = 0; i < out->n; i++) {
        for (size_t k = 0; k < c->nsteps; k++)
            out->s[i].v[k] = -out->s[i].v[k];
        pq_drop_name(&out->s[i]);
    }
    return out->type == PROMQL_VECTOR ? pq_check_unique(c, out) : 0;
}

/* A matrix at the top of an instant query: the raw samples. */
static int eval_matrix(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    struct pq_range *r = NULL;
    size_t n = 0;
    int rc = pq_eval_range(c, e, &r, &n);
    out->type = PROMQL_MATRIX;
    int64_t off = e->kind == PQ_MSEL ? e->sub[0]->offset_ms : e->offset_ms;
    int64_t lo = c->end - off - e->range_ms, hi = c->end - off;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct promql_series *s = pq_add_series(c, out);
        s->labels = r[i].labels;
        s->nlabels = r[i].nlabels;
        r[i].labels = NULL;
        r[i].nlabels = 0;
        s->t = xmalloc((r[i].n ? r[i].n : 1) * sizeof(int64_t));
        free(s->v);
        s->v = xmalloc((r[i].n ? r[i].n : 1) * sizeof(double));
        for (size_t k = 0; k < r[i].n; k++)
            if (r[i].t[k] >= lo && r[i].t[k] <= hi) {
                s->t[s->nsamples] = r[i].t[k];
                s->v[s->nsamples++] = r[i].v[k];
            }
        if (!s->nsamples) {
            series_free(s);
            out->n--;
        }
    }
    pq_ranges_free(r, n);
    return rc;
}

int pq_eval(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    int rc = pq_check_time(c);
    if (rc)
        return rc;
    switch (e->kind) {
    case PQ_NUM: {
        out->type = PROMQL_SCALAR;
        struct promql_series *s = pq_add_series(c, out);
        for (size_t k = 0; k < c->nsteps; k++) {
            s->v[k] = e->num;
            s->ok[k] = 1;
        }
        return 0;
    }
    case PQ_STR:
        out->type = PROMQL_STRING;
        out->str = xstrdup(e->str);
        return 0;
    case PQ_VSEL:
        return eval_vsel(c, e, out, 0);
    case PQ_MSEL:
    case PQ_SUBQ:
        return eval_matrix(c, e, out);
    case PQ_CALL:
        out->type = e->type;
        return e->fn->special(c, e, out);
    case PQ_AGG:
        return eval_aggregation(c, e, out);
    case PQ_BIN:
        return eval_binary(c, e, out);
    case PQ_NEG:
        return eval_neg(c, e, out);
    }
    return pq_fail(c, PROMQL_INTERNAL, "unknown expression");
}

int pq_eval_timestamps(struct pq_ctx *c, const struct promql_expr *e, struct pq_val *out)
{
    return eval_vsel(c, e, out, 1);
}

static int by_value_asc(const void *a, const void *b)
{
    double x = ((const struct promql_series *)a)->v[0], y = ((const struct promql_series *)b)->v[0];
    if (isnan(x) || isnan(y)) /* NaN at the bottom */
        return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

static int by_value_desc(const void *a, const void *b)
{
    double x = ((const struct promql_series *)a)->v[0], y = ((const struct promql_series *)b)->v[0];
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return (x < y) - (x > y);
}

/* sort() and sort_desc() at the top of an instant query order its
 * elements (elsewhere they change nothing). */
static void sort_instant(const struct promql_expr *e, struct pq_val *v, size_t nsteps)
{
    if (nsteps != 1 || e->kind != PQ_CALL || strncmp(e->fn->name, "sort", 4) || v->n < 2)
        return;
    /* those without a value at the step are not written: they may go anywhere */
    for (size_t i = 0; i < v->n; i++)
        if (!v->s[i].ok[0])
            v->s[i].v[0] = NAN;
    qsort(v->s, v->n, sizeof(*v->s), strcmp(e->fn->name, "sort") ? by_value_desc : by_value_asc);
}

int promql_eval(struct tsdb *db, const struct promql_expr *e, int64_t start_ms, int64_t end_ms,
                int64_t step_ms, const struct promql_limits *lim, struct promql_result *res,
                char *err, size_t errlen)
{
    struct pq_ctx c = {.db = db, .start = start_ms, .end = end_ms, .step = step_ms > 0 ? step_ms : 1,
                       .err = err, .errlen = errlen};
    memset(res, 0, sizeof(*res));
    if (end_ms < start_ms)
        return pq_fail(&c, PROMQL_BAD_DATA, "end timestamp must not be before start time");
    c.nsteps = (size_t)((end_ms - start_ms) / c.step) + 1;
    c.max_samples = lim && lim->max_samples ? lim->max_samples : DEFAULT_MAX_SAMPLES;
    c.deadline_ns = lim ? lim->deadline_ns : 0;
    c.lookback_ms = lim && lim->lookback_ms ? lim->lookback_ms : DEFAULT_LOOKBACK_MS;
    if (c.nsteps > c.max_samples)
        return pq_fail(&c, PROMQL_EXECUTION, "too many steps (%zu)", c.nsteps);
    struct pq_val v = {0};
    int rc = pq_eval(&c, e, &v);
    if (rc) {
        pq_val_free(&v);
        return rc;
    }
    sort_instant(e, &v, c.nsteps);
    res->type = v.type;
    res->start_ms = start_ms;
    res->step_ms = c.step;
    res->nsteps = c.nsteps;
    res->series = v.s;
    res->n = v.n;
    res->str = v.str;
    return 0;
}

void promql_result_free(struct promql_result *res)
{
    struct pq_val v = {.s = res->series, .n = res->n, .str = res->str};
    pq_val_free(&v);
    memset(res, 0, sizeof(*res));
}
