/* The store's read path (any thread): series and label discovery, points
 * of a series from chunks and heads, latest values. */
#include "tsdb_impl.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/expo.h"
#include "../../lib/hash.h"
#include "../../lib/log.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "chunk.h"
#include "db.h"

void tsdb_reader_free(struct reader *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->chunks);
    sqlite3_close(r->conn);
    free(r);
}

struct reader *tsdb_reader_open(struct tsdb *db)
{
    char err[256];
    struct reader *r = xcalloc(1, sizeof(*r));

    r->conn = db_open_reader(db->path, err, sizeof(err));
    if (r->conn)
        r->chunks = db_prepare(r->conn, "SELECT data, rowid FROM chunks WHERE grp = ? AND tier = ?"
                                        " AND t_max >= ? AND t_min <= ? ORDER BY t_min");
    if (!r->conn || !r->chunks) {
        log_error("tsdb: cannot open a reader: %s", r->conn ? sqlite3_errmsg(r->conn) : err);
        tsdb_reader_free(r);
        return NULL;
    }
    return r;
}

struct reader *tsdb_reader_get(struct tsdb *db)
{
    struct reader *r = NULL;

    pthread_mutex_lock(&db->readers_lock);
    if (db->nidle)
        r = db->idle[--db->nidle];
    pthread_mutex_unlock(&db->readers_lock);
    return r ? r : tsdb_reader_open(db);
}

void tsdb_reader_put(struct tsdb *db, struct reader *r)
{
    sqlite3_reset(r->chunks);
    sqlite3_clear_bindings(r->chunks);
    pthread_mutex_lock(&db->readers_lock);
    if (db->nidle < READERS_KEPT) {
        db->idle[db->nidle++] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&db->readers_lock);
    tsdb_reader_free(r);
}

/* Series visited per hold of the read lock: a slow selector (a regex
 * over a big store) never keeps the writer waiting for more than a slice. */
#define SLICE 1024

/* Calls fn on every series, the read lock held for a slice at a time;
 * series are never freed while the store is open, so a pointer kept across
 * slices stays good. Stops early when fn returns non-zero (0 then), or
 * when the query budget is spent (-1). */
static int each_series(struct tsdb *db, int (*fn)(void *arg, struct series *s), void *arg)
{
    int64_t budget = __atomic_load_n(&db->cfg.query_budget_ms, __ATOMIC_RELAXED);
    int64_t deadline = budget > 0 ? now_mono_ns() + budget * 1000000LL : INT64_MAX;

    for (size_t i = 0;;) {
        pthread_rwlock_rdlock(&db->lock);
        size_t end = i + SLICE < db->by_id_cap ? i + SLICE : db->by_id_cap;
        int stop = 0;
        for (; i < end && !stop; i++)
            if (db->by_id[i])
                stop = fn(arg, db->by_id[i]);
        int done = stop || i >= db->by_id_cap;
        pthread_rwlock_unlock(&db->lock);
        if (done)
            return 0;
        if (now_mono_ns() > deadline)
            return -1;
    }
}

static int selected(const struct selector *sel, const struct series *s)
{
    return !sel || ((!sel->metric || !strcmp(sel->metric, serieskey_packed_name(s->lab))) &&
                    sel_matches(sel, tsdb_label_get, (void *)s));
}

struct select_ctx {
    const struct selector *sel;
    size_t max, n, cap;
    struct tsdb_series_info *v;
};

static int select_one(void *arg, struct series *s)
{
    struct select_ctx *c = arg;
    if (!selected(c->sel, s))
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n].id = s->id;
    struct buf key;
    buf_init(&key, 0);
    tsdb_series_key(s, &key);
    c->v[c->n].key = buf_detach(&key, NULL);
    return ++c->n == c->max && c->max;
}

size_t tsdb_select(struct tsdb *db, const struct selector *sel, size_t max,
                   struct tsdb_series_info **out)
{
    struct select_ctx c = {sel, max, 0, 0, NULL};

    *out = NULL;
    if (each_series(db, select_one, &c) < 0) {
        for (size_t i = 0; i < c.n; i++)
            free(c.v[i].key);
        free(c.v);
        return TSDB_BUDGET;
    }
    *out = c.v;
    return c.n;
}

void tsdb_series_json(const struct series *s, struct buf *out)
{
    serieskey_packed_json(s->lab, out);
}

void tsdb_key_to_json(const char *key, struct buf *out)
{
    struct serieskey k;
    if (serieskey_parse(key, strlen(key), &k) < 0) {
        buf_puts(out, "{}");
        return;
    }
    serieskey_json(&k, out);
    serieskey_free(&k);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct labels_ctx {
    const struct selector *sel;
    const char *label;
    int64_t start, end;
    char **names; /* into the series, which outlive the query */
    size_t n, cap;
};

static int labels_one(void *arg, struct series *s)
{
    struct labels_ctx *c = arg;
    if ((c->start != INT64_MIN || c->end != INT64_MAX) &&
        (!s->grp->last_ts || s->grp->last_ts < c->start || s->grp->first_ts > c->end))
        return 0;
    if (!selected(c->sel, s))
        return 0;
    const char *at = NULL, *name = "__name__", *value;
    do {
        const char *v = c->label ? tsdb_label_of(s, c->label) : name;
        if (v) {
            if (c->n == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 64;
                c->names = xrealloc(c->names, c->cap * sizeof(*c->names));
            }
            c->names[c->n++] = (char *)v;
        }
    } while (!c->label && serieskey_packed_next(s->lab, &at, &name, &value));
    return 0;
}

int tsdb_labels_json(struct tsdb *db, const struct selector *sel, const char *label,
                     int64_t start, int64_t end, struct buf *out)
{
    struct labels_ctx c = {sel, label, start, end, NULL, 0, 0};

    if (each_series(db, labels_one, &c) < 0) {
        free(c.names);
        return -1;
    }
    if (c.n)
        qsort(c.names, c.n, sizeof(*c.names), cmp_str);
    buf_putc(out, '[');
    for (size_t i = 0, w = 0; i < c.n; i++) {
        if (i && !strcmp(c.names[i], c.names[i - 1]))
            continue;
        if (w++)
            buf_putc(out, ',');
        buf_json_str(out, c.names[i]);
    }
    buf_putc(out, ']');
    free(c.names);
    return 0;
}

struct pts {
    struct tsdb_point *v;
    size_t n, cap;
};

static void pts_add(struct pts *p, const struct tsdb_point *pt)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 256;
        p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
    }
    p->v[p->n++] = *pt;
}

/* The first of n times in order that is at or after start (n if none). */
static size_t first_from(const int64_t *ts, size_t n, int64_t start)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts[mid] < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Adds the points of series id from a set of columns (raw or roll-up). */
static void collect(struct pts *p, int tier, uint64_t id, size_t nrows, const int64_t *ts,
                    size_t ncols, const uint64_t *ids, double *const *cols, int64_t start,
                    int64_t end)
{
    if (tier == TSDB_RAW) {
        for (size_t c = 0; c < ncols; c++) {
            if (ids[c] != id)
                continue;
            /* rows are in time order: start at the first one >= start */
            size_t lo = first_from(ts, nrows, start);
            for (size_t r = lo; r < nrows && ts[r] <= end; r++) {
                double v = cols[c][r];
                if (chunk_is_absent(v))
                    continue;
                struct tsdb_point pt = {ts[r], v, v, v, 1, v, 0};
                if (chunk_is_stale(v))
                    pt.count = -1; /* marks a stale marker until sorted */
                pts_add(p, &pt);
            }
            return; /* one column per series in a raw head or chunk */
        }
        return;
    }
    const double *st[NSTAT] = {0};
    for (size_t c = 0; c < ncols; c++)
        if ((ids[c] >> 3) == id && (ids[c] & 7) < NSTAT)
            st[ids[c] & 7] = cols[c];
    for (int k = 0; k < NSTAT; k++)
        if (!st[k])
            return;
    for (size_t r = 0; r < nrows; r++) {
        if (ts[r] < start || ts[r] > end || chunk_is_absent(st[ST_COUNT][r]))
            continue;
        struct tsdb_point pt = {ts[r], st[0][r], st[1][r], st[2][r], st[3][r], st[4][r], st[5][r]};
        pts_add(p, &pt);
    }
}

#define SMALL_ROWS 256

/* Heads keep their columns compressed: series id's decoded for a read,
 * into small (SMALL_ROWS) when it fits, else allocated (free it when it
 * is not small). NULL when h has no such column. */
static double *head_values(const struct head *h, uint64_t id, double *small)
{
    long c = tsdb_head_find(h, id);
    if (c < 0 || !h->nrows)
        return NULL;
    double *col = h->nrows <= SMALL_ROWS ? small : xmalloc(h->nrows * sizeof(double));
    tsdb_head_column(h, (size_t)c, col);
    return col;
}

static void collect_head(struct pts *p, uint64_t id, const struct head *h, int64_t start,
                         int64_t end)
{
    double small[SMALL_ROWS], *col = head_values(h, id, small);
    if (!col)
        return;
    collect(p, TSDB_RAW, id, h->nrows, h->ts, 1, &id, &col, start, end);
    if (col != small)
        free(col);
}

/* Series id's closed roll-up buckets in memory (not yet in a chunk). */
static void collect_rollup(struct pts *p, uint64_t id, const struct rollup *r, int64_t start,
                           int64_t end)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct rrec *x = &r->v[i];
        if (x->id != id || x->t < start || x->t > end)
            continue;
        const double *a = x->st;
        struct tsdb_point pt = {x->t, a[0], a[1], a[2], a[3], a[4], a[5]};
        pts_add(p, &pt);
    }
}

struct want_series {
    uint64_t id;
    int tier;
};

/* Raw columns carry the series id, roll-up columns id << 3 | statistic. */
static int want_series(void *arg, uint64_t col)
{
    const struct want_series *w = arg;
    return w->tier == TSDB_RAW ? col == w->id : (col >> 3) == w->id;
}

static int cmp_point(const void *a, const void *b)
{
    const struct tsdb_point *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

/* Sorts collected points, drops repeated timestamps and stale markers,
 * computes raw increases and keeps those from start on; hands p's array to
 * *out. */
static long finish_points(struct pts *p, enum tsdb_tier tier, int64_t start, int64_t lo, int sorted,
                          struct tsdb_point **out)
{
    /* chunks come oldest first and heads after them: usually in order */
    for (size_t i = 1; !sorted && i < p->n; i++)
        if (p->v[i].t < p->v[i - 1].t)
            break;
        else if (i == p->n - 1)
            sorted = 1;
    if (p->n > 1 && !sorted)
        qsort(p->v, p->n, sizeof(*p->v), cmp_point);
    /* drop repeated timestamps (one of them is kept) and stale markers, and
     * compute the increase between raw samples */
    size_t w = 0;
    double prev = 0;
    int has_prev = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct tsdb_point pt = p->v[i];
        if (i + 1 < p->n && p->v[i + 1].t == pt.t)
            continue;
        if (tier == TSDB_RAW) {
            if (pt.count < 0) { /* a stale marker ends the series for a while */
                has_prev = 0;
                continue;
            }
            /* NaN is a value (kept), but no counter increase comes of it */
            pt.inc = has_prev && !isnan(pt.last)
                         ? (pt.last >= prev ? pt.last - prev : pt.last)
                         : 0;
            if (!isnan(pt.last)) {
                prev = pt.last;
                has_prev = 1;
            }
        }
        if (pt.t < (tier == TSDB_RAW ? start : lo))
            continue;
        p->v[w++] = pt;
    }
    *out = p->v;
    return (long)w;
}

long tsdb_points(struct tsdb *db, uint64_t series_id, enum tsdb_tier tier, int64_t start,
                 int64_t end, struct tsdb_point **out)
{
    struct pts p = {0};
    uint64_t gid;

    *out = NULL;
    /* widen by one bucket so a roll-up bucket that starts before start but
     * holds later samples is found */
    int64_t lo = start - TIER_RES_MS[tier];
    pthread_rwlock_rdlock(&db->lock);
    struct series *s = series_id < db->by_id_cap ? db->by_id[series_id] : NULL;
    if (!s) {
        pthread_rwlock_unlock(&db->lock);
        return 0;
    }
    gid = s->grp->id;
    pthread_rwlock_unlock(&db->lock);

    struct reader *rd = tsdb_reader_get(db);
    if (!rd)
        return -1;
    sqlite3_stmt *st = rd->chunks;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)gid);
    sqlite3_bind_int(st, 2, tier);
    sqlite3_bind_int64(st, 3, lo);
    sqlite3_bind_int64(st, 4, end);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct chunk_data cd;
        char err[128];
        struct want_series ws = {series_id, tier};
        if (chunk_decode_some(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                              want_series, &ws, &cd, err, sizeof(err)) < 0) {
            log_warn("tsdb: a chunk of group %llu is unreadable (%s); skipped",
                     (unsigned long long)gid, err);
            continue;
        }
        double **cols = xmalloc((cd.ncols ? cd.ncols : 1) * sizeof(double *));
        for (size_t c = 0; c < cd.ncols; c++)
            cols[c] = cd.values + c * cd.nrows;
        collect(&p, tier, series_id, cd.nrows, cd.ts, cd.ncols, cd.series, cols, lo, end);
        free(cols);
        chunk_data_free(&cd);
    }
    tsdb_reader_put(db, rd);
    if (rc != SQLITE_DONE) {
        free(p.v);
        return -1;
    }
    pthread_rwlock_rdlock(&db->lock);
    s = db->by_id[series_id];
    struct group *g = s->grp;
    if (tier == TSDB_RAW) {
        collect_head(&p, series_id, &g->ooo, lo, end);
        collect_head(&p, series_id, &g->raw, lo, end);
    } else {
        collect_rollup(&p, series_id, &g->roll[tier], lo, end);
    }
    if (tier > TSDB_RAW && SACC(s, tier)->bucket != ACC_NONE && SACC(s, tier)->bucket <= end) {
        const double *a = SACC(s, tier)->st;
        struct tsdb_point pt = {SACC(s, tier)->bucket, a[0], a[1], a[2], a[3], a[4], a[5]};
        pts_add(&p, &pt);
    }
    pthread_rwlock_unlock(&db->lock);

    return finish_points(&p, tier, start, lo, 0, out);
}

struct tvs {
    struct tsdb_tv *v;
    size_t n, cap;
};

/* Adds the raw samples of series id in [start, end] from a set of columns
 * (a chunk or a head), stale markers kept as they are. */
static void collect_tv(struct tvs *p, uint64_t id, size_t nrows, const int64_t *ts, size_t ncols,
                       const uint64_t *ids, double *const *cols, int64_t start, int64_t end)
{
    for (size_t c = 0; c < ncols; c++) {
        if (ids[c] != id)
            continue;
        size_t lo = first_from(ts, nrows, start);
        for (size_t r = lo; r < nrows && ts[r] <= end; r++) {
            double v = cols[c][r];
            if (chunk_is_absent(v))
                continue;
            if (p->n == p->cap) {
                p->cap = p->cap ? p->cap * 2 : 256;
                p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
            }
            p->v[p->n++] = (struct tsdb_tv){ts[r], v};
        }
        return;
    }
}

static int cmp_tv(const void *a, const void *b)
{
    const struct tsdb_tv *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

/* In time order (usually already: chunks oldest first, heads after), one
 * sample per timestamp. */
static long finish_tv(struct tvs *p, struct tsdb_tv **out)
{
    size_t i = 1;
    while (i < p->n && p->v[i].t > p->v[i - 1].t)
        i++;
    *out = p->v;
    if (i >= p->n) /* strictly ascending already: nothing to move */
        return (long)p->n;
    int sorted = 1;
    for (; i < p->n && sorted; i++)
        sorted = p->v[i].t >= p->v[i - 1].t;
    if (!sorted)
        qsort(p->v, p->n, sizeof(*p->v), cmp_tv);
    size_t w = 0;
    for (i = 0; i < p->n; i++) {
        if (i + 1 < p->n && p->v[i + 1].t == p->v[i].t)
            continue;
        p->v[w++] = p->v[i];
    }
    return (long)w;
}

struct many {
    const uint64_t *ids;
    size_t *order; /* indexes into ids of one group, sorted by id */
    size_t n;
};

static int want_many(void *arg, uint64_t col)
{
    const struct many *m = arg;
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t v = m->ids[m->order[mid]];
        if (v == col)
            return 1;
        if (v < col)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Series ids with their group, sortable by group then id. */
struct member {
    uint64_t gid, id;
    size_t at;
};

static int cmp_member(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    if (x->gid != y->gid)
        return (x->gid > y->gid) - (x->gid < y->gid);
    return (x->id > y->id) - (x->id < y->id);
}

struct clip {
    struct tvs *p;
    int64_t start, end;
};

/* The first of v[0..n) (in time order) at or after t. */
static size_t tv_first_from(const struct tsdb_tv *v, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Room for k more samples. The first chunk of a window guesses the whole
 * window's count from its own rate (at most 64 chunks' worth), so a long
 * read is not copied again and again as its array doubles. */
static void tvs_reserve(struct tvs *p, const struct tsdb_tv *first, size_t k, int64_t end)
{
    if (p->n + k <= p->cap)
        return;
    size_t want = p->cap * 2 > p->n + k ? p->cap * 2 : p->n + k + 256;
    int64_t span = first[k - 1].t - first[0].t;
    if (p->n == 0 && k > 1 && span > 0 && end > first[0].t) {
        double guess = (double)k * (double)(end - first[0].t) / (double)span + 16;
        double most = 64.0 * (double)k;
        size_t g = (size_t)(guess < most ? guess : most);
        if (g > want)
            want = g;
    }
    p->cap = want;
    p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
}

/* Appends the samples of v (in time order) within [start, end], in one
 * copy: cache hits and misses. Most chunks lie wholly inside the window,
 * which their ends tell without searching (cold memory: each probe of a
 * search is a cache miss). */
static void emit_clip(void *arg, const struct tsdb_tv *v, size_t n)
{
    const struct clip *c = arg;
    if (!n)
        return;
    size_t lo = v[0].t >= c->start ? 0 : tv_first_from(v, n, c->start);
    size_t end = v[n - 1].t <= c->end ? n : tv_first_from(v, n, c->end + 1);
    if (lo >= end)
        return;
    size_t k = end - lo;
    tvs_reserve(c->p, v + lo, k, c->end);
    memcpy(c->p->v + c->p->n, v + lo, k * sizeof(*v));
    c->p->n += k;
}

/* The chunks of one group in [start, end]: each series' samples from the
 * cache of decoded chunks, or the chunk decoded once for all series it
 * lacks (their whole columns then cached). */
static int read_group(struct tsdb *db, struct reader *rd, uint64_t gid, const struct many *m,
                      struct tvs *p, int64_t start, int64_t end)
{
    sqlite3_stmt *st = rd->chunks;
    size_t *miss = xmalloc((m->n ? m->n : 1) * sizeof(size_t));
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)gid);
    sqlite3_bind_int(st, 2, TSDB_RAW);
    sqlite3_bind_int64(st, 3, start);
    sqlite3_bind_int64(st, 4, end);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        int64_t rowid = sqlite3_column_int64(st, 1);
        uint64_t hash = hash_bytes(blob, len) ^ len;
        size_t nmiss = 0;
        for (size_t k = 0; k < m->n; k++) {
            struct clip c = {&p[m->order[k]], start, end};
            if (!tvcache_get(db->cache, rowid, hash, m->ids[m->order[k]], emit_clip, &c))
                miss[nmiss++] = m->order[k];
        }
        if (!nmiss)
            continue;
        struct many mm = {m->ids, miss, nmiss}; /* still in id order */
        struct chunk_data cd;
        char err[128];
        if (chunk_decode_some(blob, len, want_many, &mm, &cd, err, sizeof(err)) < 0) {
            log_warn("tsdb: a chunk of group %llu is unreadable (%s); skipped",
                     (unsigned long long)gid, err);
            continue;
        }
        double **cols = xmalloc((cd.ncols ? cd.ncols : 1) * sizeof(double *));
        for (size_t c = 0; c < cd.ncols; c++)
            cols[c] = cd.values + c * cd.nrows;
        for (size_t k = 0; k < nmiss; k++) {
            struct tvs whole = {0};
            uint64_t id = m->ids[miss[k]];
            collect_tv(&whole, id, cd.nrows, cd.ts, cd.ncols, cd.series, cols, INT64_MIN, INT64_MAX);
            tvcache_put(db->cache, rowid, hash, id, whole.v, whole.n);
            struct clip c = {&p[miss[k]], start, end};
            emit_clip(&c, whole.v, whole.n);
            free(whole.v);
        }
        free(cols);
        chunk_data_free(&cd);
    }
    sqlite3_reset(st);
    free(miss);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void head_tv(struct tvs *p, uint64_t id, const struct head *h, int64_t start, int64_t end)
{
    double small[SMALL_ROWS], *col = head_values(h, id, small);
    if (!col)
        return;
    collect_tv(p, id, h->nrows, h->ts, 1, &id, &col, start, end);
    if (col != small)
        free(col);
}

/* Whether a group's heads in memory hold everything from start on: the
 * open raw head reaches back to start (a sample older than its first row
 * goes to the out-of-order path, so none of those is at or after start),
 * or the head sealed before it does and no out-of-order sample at or after
 * start was taken since (it may sit in a chunk by now). Lock held. */
static int memory_covers(const struct group *g, int64_t start, int *in_head)
{
    const struct head *h = &g->raw, *prev = &g->prev_raw;
    *in_head = h->nrows > 0 && h->ts[0] <= start;
    int in_prev = prev->nrows > 0 && prev->ts[0] <= start &&
                  (h->nrows == 0 || prev->ts[prev->nrows - 1] <= h->ts[0]) &&
                  g->ooo.nrows == 0 && g->ooo_newest < start;
    return *in_head || in_prev;
}

/* Hands one series' samples, in p (reset after), to each: its answer. */
static int hand_over(struct tvs *p, size_t i, tsdb_each_fn each, void *arg)
{
    struct tsdb_tv *pts;
    long cnt = finish_tv(p, &pts);
    int rc = cnt ? each(arg, i, pts, cnt) : 0;
    p->n = 0;
    return rc;
}

int tsdb_samples_each(struct tsdb *db, const uint64_t *ids, size_t n, int64_t start, int64_t end,
                      tsdb_each_fn each, void *arg)
{
    struct member *mem = xmalloc((n ? n : 1) * sizeof(*mem));
    /* p[i] borrows a buffer of gb while its group is read: memory for
     * one group's series at a time, reused, whatever n is */
    struct tvs *p = xcalloc(n ? n : 1, sizeof(*p)), *gb = NULL, one = {0};
    size_t *order = xmalloc((n ? n : 1) * sizeof(size_t)), ngb = 0;
    size_t nm = 0;
    int rc = 0;

    /* recent windows (alert rules, the last minutes of a dashboard) come
     * from memory alone */
    for (size_t i = 0; i < n && rc == 0; i++) {
        pthread_rwlock_rdlock(&db->lock);
        struct series *s = ids[i] < db->by_id_cap ? db->by_id[ids[i]] : NULL;
        int in_head;
        if (s && memory_covers(s->grp, start, &in_head)) {
            if (!in_head)
                head_tv(&one, ids[i], &s->grp->prev_raw, start, end);
            head_tv(&one, ids[i], &s->grp->raw, start, end);
        } else if (s) {
            mem[nm++] = (struct member){s->grp->id, ids[i], i};
        }
        pthread_rwlock_unlock(&db->lock);
        rc = hand_over(&one, i, each, arg);
    }
    if (nm)
        qsort(mem, nm, sizeof(*mem), cmp_member);
    struct reader *rd = nm && rc == 0 ? tsdb_reader_get(db) : NULL;
    if (nm && rc == 0 && !rd)
        rc = -1;
    for (size_t i = 0; i < nm && rc == 0;) { /* group by group */
        size_t j = i;
        while (j < nm && mem[j].gid == mem[i].gid) {
            order[j - i] = mem[j].at;
            j++;
        }
        size_t g = j - i;
        if (g > ngb) {
            gb = xrealloc(gb, g * sizeof(*gb));
            memset(gb + ngb, 0, (g - ngb) * sizeof(*gb));
            ngb = g;
        }
        for (size_t k = 0; k < g; k++)
            p[order[k]] = gb[k];
        struct many m = {ids, order, g};
        rc = read_group(db, rd, mem[i].gid, &m, p, start, end);
        pthread_rwlock_rdlock(&db->lock);
        for (size_t k = 0; k < g && rc == 0; k++) {
            struct series *s = db->by_id[mem[i + k].id];
            head_tv(&p[mem[i + k].at], mem[i + k].id, &s->grp->ooo, start, end);
            head_tv(&p[mem[i + k].at], mem[i + k].id, &s->grp->raw, start, end);
        }
        pthread_rwlock_unlock(&db->lock);
        for (size_t k = 0; k < g; k++) {
            if (rc == 0)
                rc = hand_over(&p[order[k]], order[k], each, arg);
            gb[k] = p[order[k]];
            gb[k].n = 0;
        }
        i = j;
    }
    if (rd)
        tsdb_reader_put(db, rd);
    for (size_t k = 0; k < ngb; k++)
        free(gb[k].v);
    free(gb);
    free(one.v);
    free(mem);
    free(p);
    free(order);
    return rc;
}

struct copied {
    struct tsdb_tv **out;
    long *counts;
};

static int copy_out(void *arg, size_t i, const struct tsdb_tv *pts, long n)
{
    struct copied *c = arg;
    c->out[i] = xmalloc((size_t)n * sizeof(*pts));
    memcpy(c->out[i], pts, (size_t)n * sizeof(*pts));
    c->counts[i] = n;
    return 0;
}

int tsdb_samples_many(struct tsdb *db, const uint64_t *ids, size_t n, int64_t start, int64_t end,
                      struct tsdb_tv **out, long *counts)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        counts[i] = 0;
    }
    struct copied c = {out, counts};
    int rc = tsdb_samples_each(db, ids, n, start, end, copy_out, &c);
    if (rc == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        free(out[i]);
        out[i] = NULL;
        counts[i] = 0;
    }
    return rc;
}

long tsdb_recent(struct tsdb *db, uint64_t series_id, int64_t start, int64_t end,
                 struct tsdb_point **out, int *covered)
{
    struct pts p = {0};

    *out = NULL;
    *covered = 0;
    pthread_rwlock_rdlock(&db->lock);
    struct series *s = series_id < db->by_id_cap ? db->by_id[series_id] : NULL;
    if (!s) {
        pthread_rwlock_unlock(&db->lock);
        return 0;
    }
    const struct head *h = &s->grp->raw, *prev = &s->grp->prev_raw;
    int in_head;
    *covered = memory_covers(s->grp, start, &in_head);
    if (*covered) {
        if (!in_head)
            collect_head(&p, series_id, prev, start, end);
        collect_head(&p, series_id, h, start, end);
    }
    pthread_rwlock_unlock(&db->lock);
    if (!*covered)
        return 0;
    /* heads keep rows in time order, and the sealed one ends before the open one */
    return finish_points(&p, TSDB_RAW, start, start, 1, out);
}

int tsdb_last(struct tsdb *db, uint64_t series_id, int64_t *ts_ms, double *value)
{
    int rc = -1;
    pthread_rwlock_rdlock(&db->lock);
    struct series *s = series_id < db->by_id_cap ? db->by_id[series_id] : NULL;
    if (s && s->last_ts) {
        *ts_ms = s->last_ts;
        *value = s->last_value;
        rc = chunk_is_stale(s->last_value) ? 1 : 0;
    }
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

struct latest_ctx {
    const struct selector *sel;
    struct buf *out;
    long n;
};

static int latest_one(void *arg, struct series *s)
{
    struct latest_ctx *c = arg;
    if (!s->last_ts || chunk_is_stale(s->last_value) || !selected(c->sel, s))
        return 0;
    char tail[96], num[40];
    expo_format_value(num, sizeof(num), s->last_value);
    int64_t t = s->last_ts;
    int tl = snprintf(tail, sizeof(tail), ",\"value\":[%lld.%03lld,\"%s\"]}", (long long)(t / 1000),
                      (long long)(t % 1000 < 0 ? -(t % 1000) : t % 1000), num);
    if (c->n++)
        buf_putc(c->out, ',');
    buf_append(c->out, "{\"metric\":", 10);
    tsdb_series_json(s, c->out); /* rendered here: a copy per series would cost memory */
    buf_append(c->out, tail, (size_t)tl);
    return 0;
}

long tsdb_latest_json(struct tsdb *db, const struct selector *sel, struct buf *out)
{
    struct latest_ctx c = {sel, out, 0};
    return each_series(db, latest_one, &c) < 0 ? -1 : c.n;
}
