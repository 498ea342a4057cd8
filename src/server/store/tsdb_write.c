/* The store's write path (the writer thread): heads, sealing into chunks,
 * roll-ups, stale markers, commits and retention. */
#include "tsdb_impl.h"

#include <errno.h>
#include <malloc.h>
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

void tsdb_head_free(struct head *h)
{
    for (size_t c = 0; c < h->ncols; c++)
        hcol_free(&h->cols[c]);
    free(h->cols);
    free(h->ids);
    free(h->ts);
    memset(h, 0, sizeof(*h));
}

static void head_clear(struct head *h)
{
    for (size_t c = 0; c < h->ncols; c++)
        hcol_free(&h->cols[c]);
    h->nrows = 0;
    h->ncols = 0;
    h->filled = 0;
}

size_t tsdb_head_bytes(const struct head *h)
{
    size_t n = h->cap * sizeof(*h->ts) + h->colcap * (sizeof(*h->ids) + sizeof(*h->cols));
    for (size_t c = 0; c < h->ncols; c++)
        n += hcol_bytes(&h->cols[c]) - sizeof(struct hcol); /* the struct is in the array */
    return n;
}

void tsdb_head_column(const struct head *h, size_t c, double *out)
{
    hcol_read(&h->cols[c], h->nrows, out);
}

long tsdb_head_find(const struct head *h, uint64_t id)
{
    for (size_t c = h->ncols; c-- > 0;)
        if (h->ids[c] == id)
            return (long)c;
    return -1;
}

static size_t head_col(struct head *h, uint64_t id)
{
    long found = tsdb_head_find(h, id);
    if (found >= 0)
        return (size_t)found;
    if (h->ncols == h->colcap) {
        h->colcap = h->colcap ? h->colcap * 2 : 64;
        h->ids = xrealloc(h->ids, h->colcap * sizeof(*h->ids));
        h->cols = xrealloc(h->cols, h->colcap * sizeof(*h->cols));
    }
    h->ids[h->ncols] = id;
    memset(&h->cols[h->ncols], 0, sizeof(*h->cols)); /* all absent */
    return h->ncols++;
}

static void head_grow(struct head *h, size_t cap)
{
    if (cap <= h->cap)
        return;
    h->ts = xrealloc(h->ts, cap * sizeof(*h->ts));
    for (size_t c = 0; c < h->ncols; c++)
        hcol_grow(&h->cols[c], cap);
    h->cap = cap;
}

/* Row for ts, inserting one if needed. */
static size_t head_row(struct head *h, int64_t ts)
{
    if (h->nrows && ts == h->ts[h->nrows - 1])
        return h->nrows - 1;
    if (h->nrows == h->cap)
        head_grow(h, h->cap ? h->cap * 2 : h->first_cap ? h->first_cap : 16);
    if (!h->nrows || ts > h->ts[h->nrows - 1]) {
        h->ts[h->nrows] = ts;
        return h->nrows++;
    }
    size_t lo = 0, hi = h->nrows;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->ts[mid] < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < h->nrows && h->ts[lo] == ts)
        return lo;
    memmove(h->ts + lo + 1, h->ts + lo, (h->nrows - lo) * sizeof(*h->ts));
    h->ts[lo] = ts;
    for (size_t c = 0; c < h->ncols; c++)
        hcol_insert_row(&h->cols[c], lo, h->nrows, h->cap);
    h->nrows++;
    return lo;
}

static void cell_set(struct head *h, size_t c, size_t r, double v)
{
    h->filled += (size_t)hcol_set(&h->cols[c], r, v, h->nrows, h->cap);
}

static void head_set(struct head *h, uint64_t id, int64_t ts, double v)
{
    size_t c = head_col(h, id);
    size_t r = head_row(h, ts);
    cell_set(h, c, r, v);
}

/* A raw head is sealed once its columns hold head_rows values on average:
 * series of one group that do not share timestamps (each GPU pushed on its
 * own clock) make more rows than values per column, which the chunk
 * stores sparse (chunk.c, type 3). Eight times the rows at most bounds its
 * memory; a head at least half full is sealed at head_rows. */
static int head_full(const struct tsdb *db, const struct head *h)
{
    /* mostly dense (a series that appeared late, or stopped): sealed at
     * head_rows, as its memory was allocated for */
    return h->nrows >= db->cfg.head_rows &&
           (h->filled >= db->cfg.head_rows * h->ncols || h->filled * 2 >= h->nrows * h->ncols ||
            h->nrows >= 8 * db->cfg.head_rows);
}

static uint64_t cur_seg(const struct tsdb *db)
{
    return db->log ? slog_segment(db->log) : 0;
}

/* Encodes columns [c0, c0 + ncols) of all (its values column after
 * column) as one pending chunk of g. */
static void add_pending(struct tsdb *db, struct group *g, const struct chunk_data *all, int tier,
                        uint64_t seg, size_t c0, size_t ncols)
{
    struct chunk_data cd = *all;
    struct pending *p;
    size_t nrows = all->nrows;

    cd.ncols = ncols;
    cd.series = all->series + c0;
    cd.values = all->values + c0 * nrows;
    if (db->npend == db->pend_cap) {
        db->pend_cap = db->pend_cap ? db->pend_cap * 2 : 32;
        db->pend = xrealloc(db->pend, db->pend_cap * sizeof(*db->pend));
    }
    p = &db->pend[db->npend];
    memset(p, 0, sizeof(*p));
    buf_init(&p->data, 0);
    if (chunk_encode(&cd, db->cfg.zstd_level, &p->data) < 0) {
        log_error("tsdb: cannot encode a chunk of %s/%s; %zu samples dropped", g->job,
                  g->instance, nrows * ncols);
        buf_free(&p->data);
        return;
    }
    p->grp = g->id;
    p->tier = tier;
    p->seg = seg;
    p->tmin = all->ts[0];
    p->tmax = all->ts[nrows - 1];
    p->rows = nrows;
    p->cols = ncols;
    db->npend++;
}

/* All of all, in chunks a reader accepts (CHUNK_MAX_VALUES values each): a
 * target of 50,000 series would make one it refuses. A roll-up series'
 * statistics stay in one chunk (a reader wants them together). */
static void add_pieces(struct tsdb *db, struct group *g, const struct chunk_data *all, int tier,
                       uint64_t seg)
{
    size_t per = CHUNK_MAX_VALUES / all->nrows, unit = tier == TSDB_RAW ? 1 : NSTAT;
    per -= per % unit;
    if (!per)
        per = unit;
    for (size_t c = 0; c < all->ncols; c += per)
        add_pending(db, g, all, tier, seg, c, all->ncols - c < per ? all->ncols - c : per);
}

void tsdb_seal(struct tsdb *db, struct group *g, struct head *h)
{
    if (!h->nrows)
        return;
    int ooo = h == &g->ooo;
    if (db->log && !db->replaying)
        slog_seal(db->log, g->id, ooo ? SLOG_OOO : TSDB_RAW);
    struct chunk_data all = {.nrows = h->nrows, .ncols = h->ncols, .ts = h->ts, .series = h->ids};
    all.values = xmalloc((h->ncols ? h->nrows * h->ncols : 1) * sizeof(double));
    for (size_t c = 0; c < h->ncols; c++)
        tsdb_head_column(h, c, all.values + c * h->nrows);
    add_pieces(db, g, &all, TSDB_RAW, ooo ? g->ooo_seg : g->raw_seg);
    free(all.values);
    /* recent windows (alert rules) keep reading from memory after a seal:
     * the sealed head moves to prev_raw, whose arrays the new one reuses */
    if (h == &g->raw) {
        struct head old = g->prev_raw;
        g->prev_raw = *h;
        *h = old;
        h->first_cap = g->prev_raw.first_cap;
        /* its column arrays to the columns it has (doubling left up to half
         * spare); the next head starts from these sizes */
        struct head *p = &g->prev_raw;
        if (p->ncols && p->colcap > p->ncols) {
            p->ids = xrealloc(p->ids, p->ncols * sizeof(*p->ids));
            p->cols = xrealloc(p->cols, p->ncols * sizeof(*p->cols));
            p->colcap = p->ncols;
        }
    }
    head_clear(h);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Indexes into recs (arg) by series, then time, then the order they came
 * in (a later record of the same bucket wins, as a cell written again
 * would). */
static int cmp_rec(const void *a, const void *b, void *arg)
{
    const struct rrec *recs = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const struct rrec *x = &recs[i], *y = &recs[j];
    if (x->id != y->id)
        return (x->id > y->id) - (x->id < y->id);
    if (x->t != y->t)
        return (x->t > y->t) - (x->t < y->t);
    return (i > j) - (i < j);
}

void tsdb_seal_rollup(struct tsdb *db, struct group *g, int tier)
{
    struct rollup *r = &g->roll[tier];
    if (!r->n)
        return;
    if (db->log && !db->replaying)
        slog_seal(db->log, g->id, tier);
    size_t n = r->n, nrows = 0, nser = 0;
    size_t *order = xmalloc(n * sizeof(*order));
    int64_t *ts = xmalloc(n * sizeof(*ts));
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        ts[i] = r->v[i].t;
    }
    qsort_r(order, n, sizeof(*order), cmp_rec, r->v);
    qsort(ts, n, sizeof(*ts), cmp_i64);
    for (size_t i = 0; i < n; i++)
        if (!i || ts[i] != ts[nrows - 1])
            ts[nrows++] = ts[i];
    for (size_t i = 0; i < n; i++)
        nser += !i || r->v[order[i]].id != r->v[order[i - 1]].id;
    struct chunk_data all = {.nrows = nrows, .ncols = nser * NSTAT, .ts = ts};
    uint64_t *ids = xmalloc(all.ncols * sizeof(*ids));
    double *v = xmalloc(all.ncols * nrows * sizeof(double));
    for (size_t i = 0; i < all.ncols * nrows; i++)
        v[i] = chunk_absent();
    for (size_t i = 0, c = 0; i < n; i++) {
        const struct rrec *x = &r->v[order[i]];
        if (i && x->id != r->v[order[i - 1]].id)
            c += NSTAT;
        int64_t *at = bsearch(&x->t, ts, nrows, sizeof(*ts), cmp_i64);
        size_t row = (size_t)(at - ts);
        for (int k = 0; k < NSTAT; k++) {
            ids[c + (size_t)k] = (x->id << 3) | (uint64_t)k;
            v[(c + (size_t)k) * nrows + row] = x->st[k];
        }
    }
    all.series = ids;
    all.values = v;
    add_pieces(db, g, &all, tier, cur_seg(db));
    free(order);
    free(ts);
    free(ids);
    free(v);
    /* the next bucket closes for as many series: room for this many, not
     * the doubling's spare half on top */
    if (r->cap > n) {
        r->v = xrealloc(r->v, n * sizeof(*r->v));
        r->cap = n;
    }
    r->n = 0;
    r->nts = 0;
}

static void acc_feed(struct tsdb *db, struct series *s, int tier, int64_t t, const double *st);

void tsdb_acc_emit(struct tsdb *db, struct series *s, int tier)
{
    struct acc *a = SACC(s, tier);
    struct group *g = s->grp;
    struct rollup *r = &g->roll[tier];

    if (a->bucket == ACC_NONE)
        return;
    if (!db->replaying && r->nts >= TIER_SEAL_ROWS[tier] && a->bucket > r->last_t)
        tsdb_seal_rollup(db, g, tier);
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    struct rrec *x = &r->v[r->n++];
    x->id = s->id;
    x->t = a->bucket;
    memcpy(x->st, a->st, sizeof(x->st));
    if (r->n == 1 || a->bucket > r->last_t) {
        r->nts++;
        r->last_t = a->bucket;
    }
    if (tier + 1 < TSDB_TIERS)
        acc_feed(db, s, tier + 1, a->bucket, a->st);
    a->bucket = ACC_NONE;
}

static void acc_feed(struct tsdb *db, struct series *s, int tier, int64_t t, const double *st)
{
    struct acc *a = SACC(s, tier);
    int64_t bucket = t - (((t % TIER_RES_MS[tier]) + TIER_RES_MS[tier]) % TIER_RES_MS[tier]);

    if (a->bucket != ACC_NONE && bucket < a->bucket)
        return; /* older than the open bucket: only the raw tier keeps it */
    if (a->bucket != ACC_NONE && bucket > a->bucket)
        tsdb_acc_emit(db, s, tier);
    if (a->bucket == ACC_NONE) {
        a->bucket = bucket;
        memcpy(a->st, st, sizeof(a->st));
        return;
    }
    a->st[ST_MIN] = fmin(a->st[ST_MIN], st[ST_MIN]);
    a->st[ST_MAX] = fmax(a->st[ST_MAX], st[ST_MAX]);
    a->st[ST_SUM] += st[ST_SUM];
    a->st[ST_COUNT] += st[ST_COUNT];
    a->st[ST_LAST] = st[ST_LAST];
    a->st[ST_INC] += st[ST_INC];
}

static void push(void ***arr, size_t *n, size_t *cap, void *x)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *arr = xrealloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[(*n)++] = x;
}

/* The group of job/instance, made (in memory and the log; the database
 * gets it with the next commit) when new. */
static struct group *group_get(struct tsdb *db, const char *job, const char *inst)
{
    struct group *g = tsdb_group_find(db, job, inst);
    if (g)
        return g;
    g = tsdb_group_new(db, db->next_group_id++, job, inst);
    push((void ***)&db->new_groups, &db->nnew_groups, &db->new_groups_cap, g);
    if (db->log && !db->replaying)
        slog_group(db->log, g->id, job, inst);
    return g;
}

/* The group of a series with neither job nor instance (imports, pushes):
 * the store finds the series that share timestamps itself (issue 18,
 * defect 14). A new one joins the group of the sample before it in its
 * batch when that has the same timestamp and no job or instance either
 * (the metrics of one GPU come together, each GPU maybe on its own clock),
 * else it founds one, named after it. A replay passes the logged group. */
static struct group *cohort(struct tsdb *db, uint64_t id, const struct series *peer,
                            uint64_t grp_id)
{
    struct group *g = grp_id ? tsdb_group_by_id(db, grp_id) : NULL;
    char name[32];

    if (g)
        return g;
    if (peer && !tsdb_label_of(peer, "job") && !tsdb_label_of(peer, "instance"))
        return peer->grp;
    snprintf(name, sizeof(name), "~s%llu", (unsigned long long)id); /* "~" starts no name */
    return group_get(db, "", name);
}

/* A new series: id 0 takes the next one (a replay passes the logged one,
 * and its group). peer: the series of the sample before it in its batch,
 * when that has the same timestamp. */
static struct series *series_new(struct tsdb *db, const char *key, size_t len, uint64_t id,
                                 const struct series *peer, uint64_t grp_id)
{
    if (len > MAX_KEY)
        return NULL;
    /* only keys as tsdb_key writes them: the index finds a series by the
     * key its labels write (serieskey_is) */
    struct series *s = tsdb_series_make(key, len);
    if (!s || !serieskey_packed_is(s->lab, key, len)) {
        tsdb_series_free(s);
        return NULL;
    }
    s->id = id ? id : db->next_series_id;
    if (s->id < db->by_id_cap && db->by_id[s->id]) {
        tsdb_series_free(s); /* a damaged log naming an id twice */
        return NULL;
    }
    if (s->id >= db->next_series_id)
        db->next_series_id = s->id + 1;
    const char *job = tsdb_label_of(s, "job"), *inst = tsdb_label_of(s, "instance");
    s->grp = job || inst ? group_get(db, job ? job : "", inst ? inst : "")
                         : cohort(db, s->id, peer, grp_id);
    tsdb_add_member(s->grp, s);
    tsdb_series_index(db, s);
    push((void ***)&db->new_series, &db->nnew_series, &db->new_series_cap, s);
    if (db->log && !db->replaying)
        slog_series(db->log, s->id, s->grp->id, key, len);
    return s;
}

static void append_one(struct tsdb *db, struct series *s, int64_t ts, double v)
{
    struct group *g = s->grp;
    struct head *h = &g->raw;

    if (h->nrows && ts < h->ts[0]) {
        /* older than the open head: a backfill or import of the past */
        if (!db->replaying && g->ooo.nrows >= db->cfg.head_rows * 4 &&
            ts > g->ooo.ts[g->ooo.nrows - 1])
            tsdb_seal(db, g, &g->ooo);
        if (!g->ooo.nrows)
            g->ooo_seg = cur_seg(db);
        if (ts > g->ooo_newest)
            g->ooo_newest = ts;
        head_set(&g->ooo, s->id, ts, v);
    } else {
        if (!db->replaying && head_full(db, h) && ts > h->ts[h->nrows - 1])
            tsdb_seal(db, g, h);
        if (!h->nrows) {
            g->head_opened_ms = now_wall_ms();
            g->raw_seg = cur_seg(db);
        }
        /* the column it had is still its own while it holds its id */
        if (s->raw_col >= h->ncols || h->ids[s->raw_col] != s->id)
            s->raw_col = (uint32_t)head_col(h, s->id);
        size_t row = head_row(h, ts); /* may grow every column: before indexing */
        cell_set(h, s->raw_col, row, v);
    }
    if (ts >= s->last_ts) {
        s->last_ts = ts;
        s->last_value = v;
    }
    if (ts > g->last_ts)
        g->last_ts = ts;
    if (ts < g->first_ts || !g->first_ts)
        g->first_ts = ts;
    if (chunk_is_stale(v)) {
        s->prev_ts = PREV_NONE;
        return;
    }
    if (isnan(v))
        return;
    if (s->prev_ts != PREV_NONE && ts <= s->prev_ts)
        return; /* out of order: raw only */
    double inc = 0;
    if (s->prev_ts != PREV_NONE)
        inc = v >= s->prev_value ? v - s->prev_value : v; /* a counter reset restarts at v */
    s->prev_ts = ts;
    s->prev_value = v;
    double st[NSTAT] = {v, v, v, 1, v, inc};
    acc_feed(db, s, TSDB_1M, ts, st);
}

/* Writes the log's buffered records. On a full disk some writes still fit
 * (a page with room) and most do not: a failure is logged once a minute at
 * most, with how many there were, and recovery once writes have gone
 * through for 10 s. */
static void log_flush(struct tsdb *db)
{
    if (!db->log)
        return;
    if (slog_flush(db->log) < 0) {
        int64_t now = now_mono_ns() / 1000000;
        db->log_failures++;
        db->log_failed_ms = now;
        if (!db->log_failing || now - db->log_failure_logged_ms >= 60000) {
            log_error("tsdb: cannot write the sample log: %s (%llu failed writes); samples since"
                      " are in memory only until their chunks are written", strerror(errno),
                      (unsigned long long)db->log_failures);
            db->log_failure_logged_ms = now;
        }
        db->log_failing = 1;
        return;
    }
    if (db->log_failing && now_mono_ns() / 1000000 - db->log_failed_ms >= 10000) {
        log_warn("tsdb: the sample log is written again");
        db->log_failing = 0;
        db->log_failures = 0;
    }
}

size_t tsdb_append(struct tsdb *db, const struct tsdb_sample *smp, size_t n)
{
    size_t stored = 0;
    struct series *prev = NULL;
    int64_t prev_ts = 0;

    int64_t latest = db->cfg.max_future_ms > 0 ? now_wall_ms() + db->cfg.max_future_ms : INT64_MAX;

    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < n; i++) {
        if (smp[i].ts_ms > latest) {
            db->st.future_refused++;
            continue;
        }
        struct series *s = tsdb_series_find(db, smp[i].key, smp[i].key_len);
        if (!s)
            s = series_new(db, smp[i].key, smp[i].key_len, 0,
                           prev && prev_ts == smp[i].ts_ms ? prev : NULL, 0);
        if (!s)
            continue;
        prev = s;
        prev_ts = smp[i].ts_ms;
        append_one(db, s, smp[i].ts_ms, smp[i].value);
        if (db->log)
            slog_sample(db->log, s->id, smp[i].ts_ms, smp[i].value);
        stored++;
    }
    log_flush(db);
    db->st.samples_appended += stored;
    pthread_rwlock_unlock(&db->lock);
    return stored;
}

void tsdb_scrape_done(struct tsdb *db, const char *job, const char *instance, int64_t ts_ms)
{
    pthread_rwlock_wrlock(&db->lock);
    struct group *g = tsdb_group_find(db, job, instance);
    for (size_t i = 0; g && i < g->nmembers; i++) {
        struct series *s = g->members[i];
        if (s->last_ts && s->last_ts < ts_ms && !chunk_is_stale(s->last_value)) {
            append_one(db, s, ts_ms, chunk_stale());
            if (db->log)
                slog_sample(db->log, s->id, ts_ms, chunk_stale());
        }
    }
    log_flush(db);
    pthread_rwlock_unlock(&db->lock);
}

static void retention(struct tsdb *db, int64_t now_ms)
{
    sqlite3_stmt *st = db_prepare(db->w, "DELETE FROM chunks WHERE tier = ? AND t_max < ?");
    if (!st)
        return;
    for (int t = 0; t < TSDB_TIERS; t++) {
        int64_t keep = __atomic_load_n(&db->cfg.retention_ms[t], __ATOMIC_RELAXED);
        if (keep <= 0)
            continue;
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, t);
        sqlite3_bind_int64(st, 2, now_ms - keep);
        if (sqlite3_step(st) != SQLITE_DONE)
            log_warn("tsdb: retention of tier %d failed: %s", t, sqlite3_errmsg(db->w));
    }
    sqlite3_finalize(st);
}

/* The new groups and series, in the commit's transaction. 0, or -1. */
static int insert_new(struct tsdb *db)
{
    for (size_t i = 0; i < db->nnew_groups; i++) {
        struct group *g = db->new_groups[i];
        sqlite3_reset(db->ins_group);
        sqlite3_bind_int64(db->ins_group, 1, (sqlite3_int64)g->id);
        sqlite3_bind_text(db->ins_group, 2, g->job, -1, SQLITE_STATIC);
        sqlite3_bind_text(db->ins_group, 3, g->instance, -1, SQLITE_STATIC);
        if (sqlite3_step(db->ins_group) != SQLITE_DONE)
            return -1;
    }
    struct buf key;
    buf_init(&key, 0);
    for (size_t i = 0; i < db->nnew_series; i++) {
        struct series *s = db->new_series[i];
        buf_reset(&key);
        tsdb_series_key(s, &key);
        sqlite3_reset(db->ins_series);
        sqlite3_bind_int64(db->ins_series, 1, (sqlite3_int64)s->id);
        sqlite3_bind_text(db->ins_series, 2, key.data, (int)key.len, SQLITE_STATIC);
        sqlite3_bind_int64(db->ins_series, 3, (sqlite3_int64)s->grp->id);
        if (sqlite3_step(db->ins_series) != SQLITE_DONE) {
            buf_free(&key);
            return -1;
        }
    }
    buf_free(&key);
    return 0;
}

static int insert_chunks(struct tsdb *db)
{
    for (size_t i = 0; i < db->npend; i++) {
        struct pending *p = &db->pend[i];
        sqlite3_reset(db->ins_chunk);
        sqlite3_bind_int64(db->ins_chunk, 1, (sqlite3_int64)p->grp);
        sqlite3_bind_int(db->ins_chunk, 2, p->tier);
        sqlite3_bind_int64(db->ins_chunk, 3, p->tmin);
        sqlite3_bind_int64(db->ins_chunk, 4, p->tmax);
        sqlite3_bind_int64(db->ins_chunk, 5, (sqlite3_int64)p->rows);
        sqlite3_bind_int64(db->ins_chunk, 6, (sqlite3_int64)p->cols);
        sqlite3_bind_blob(db->ins_chunk, 7, p->data.data, (int)p->data.len, SQLITE_STATIC);
        if (sqlite3_step(db->ins_chunk) != SQLITE_DONE)
            return -1;
    }
    return 0;
}

/* Segments of the sample log whose every sample is in a committed chunk
 * are deleted: those older than the oldest one an open raw or out-of-order
 * head, or an unwritten chunk, opened in. */
static void log_trim(struct tsdb *db)
{
    uint64_t keep = slog_segment(db->log);

    for (size_t i = 0; i < db->ngroups; i++) {
        struct group *g = db->groups[i];
        if (g->raw.nrows && g->raw_seg < keep)
            keep = g->raw_seg;
        if (g->ooo.nrows && g->ooo_seg < keep)
            keep = g->ooo_seg;
    }
    for (size_t i = 0; i < db->npend; i++)
        if (db->pend[i].seg < keep)
            keep = db->pend[i].seg;
    slog_drop_before(db->log, keep);
    slog_maybe_rotate(db->log, 60000, 64u << 20);
}

int tsdb_commit(struct tsdb *db, int64_t now_ms)
{
    int rc = 0;

    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < db->ngroups; i++) {
        struct group *g = db->groups[i];
        if (g->raw.nrows && now_ms - g->head_opened_ms > db->cfg.max_head_age_ms)
            tsdb_seal(db, g, &g->raw);
        if (g->ooo.nrows)
            tsdb_seal(db, g, &g->ooo);
    }
    if (db->npend || db->nnew_series || db->nnew_groups) {
        if (db_exec(db->w, "BEGIN IMMEDIATE") < 0 || insert_new(db) < 0 || insert_chunks(db) < 0 ||
            db_exec(db->w, "COMMIT") < 0) {
            snprintf(db->st.last_error, sizeof(db->st.last_error), "writing chunks: %s",
                     sqlite3_errmsg(db->w));
            db->st.write_errors++;
            db_exec(db->w, "ROLLBACK");
            log_error("tsdb: %s; %zu chunks and %zu new series kept in memory and retried",
                      db->st.last_error, db->npend, db->nnew_series);
            rc = -1;
        } else {
            db->st.last_error[0] = '\0';
            for (size_t i = 0; i < db->npend; i++) {
                db->st.chunks_written++;
                db->st.chunk_bytes += db->pend[i].data.len;
                buf_free(&db->pend[i].data);
            }
            db->npend = 0;
            db->nnew_series = db->nnew_groups = 0;
            if (db->log)
                slog_commit(db->log);
        }
    }
    log_flush(db);
    if (db->log && !db->replaying)
        log_trim(db);
    pthread_rwlock_unlock(&db->lock);
    if (db->log)
        slog_sync_closed(db->log);
    if (now_ms - db->last_retention_ms > 60000) {
        db->last_retention_ms = now_ms;
        retention(db, now_ms);
    }
    if (rc == 0 && now_ms - db->last_compact_ms > 60000) {
        db->last_compact_ms = now_ms;
        tsdb_compact(db, now_ms, 200);
        /* every seal frees a head's column buffers by the thousand: give
         * the free pages back (the server keeps freed memory otherwise,
         * M_TRIM_THRESHOLD) */
        malloc_trim(0);
    }
    return rc;
}

int tsdb_checkpoint(struct tsdb *db, int64_t now_ms)
{
    pthread_rwlock_wrlock(&db->lock);
    tsdb_seal_all(db);
    pthread_rwlock_unlock(&db->lock);
    return tsdb_commit(db, now_ms);
}

/* Every head and out-of-order buffer of every group into chunks (caller
 * holds the write lock); a checkpoint and a close both need it. */
void tsdb_seal_all(struct tsdb *db)
{
    for (size_t i = 0; i < db->ngroups; i++) {
        struct group *g = db->groups[i];
        tsdb_seal(db, g, &g->ooo);
        tsdb_seal(db, g, &g->raw);
        for (int t = 1; t < TSDB_TIERS; t++)
            tsdb_seal_rollup(db, g, t);
    }
}

/* ---- the sample log's replay (at open) ---- */

static void replay_group(void *arg, uint64_t id, const char *job, const char *instance)
{
    struct tsdb *db = arg;
    struct group *g = tsdb_group_find(db, job, instance);

    if (g) {
        if (g->id != id)
            log_warn("tsdb: the sample log names group %s/%s %llu, the database %llu", job,
                     instance, (unsigned long long)id, (unsigned long long)g->id);
        return;
    }
    if (tsdb_group_by_id(db, id))
        return; /* an id taken by another: a damaged log */
    g = tsdb_group_new(db, id, job, instance);
    if (id >= db->next_group_id)
        db->next_group_id = id + 1;
    push((void ***)&db->new_groups, &db->nnew_groups, &db->new_groups_cap, g);
}

static void replay_series(void *arg, uint64_t id, uint64_t gid, const char *key, size_t len)
{
    struct tsdb *db = arg;
    if (!id || tsdb_series_find(db, key, len))
        return; /* committed before the crash */
    series_new(db, key, len, id, NULL, gid);
}

static void replay_sample(void *arg, uint64_t id, int64_t ts, double v)
{
    struct tsdb *db = arg;
    struct series *s = id < db->by_id_cap ? db->by_id[id] : NULL;
    if (s)
        append_one(db, s, ts, v);
}

static void replay_seal(void *arg, uint64_t gid, int which)
{
    struct tsdb *db = arg;
    struct group *g = tsdb_group_by_id(db, gid);
    if (!g)
        return;
    if (which == SLOG_OOO || which == TSDB_RAW)
        tsdb_seal(db, g, which == SLOG_OOO ? &g->ooo : &g->raw);
    else if (which < TSDB_TIERS)
        tsdb_seal_rollup(db, g, which);
}

/* Every chunk sealed before this point was committed: drop the copies. */
static void replay_commit(void *arg)
{
    struct tsdb *db = arg;
    for (size_t i = 0; i < db->npend; i++)
        buf_free(&db->pend[i].data);
    db->npend = 0;
}

long tsdb_replay(struct tsdb *db, char *err, size_t errlen)
{
    static const struct slog_ops ops = {replay_group, replay_series, replay_sample, replay_seal,
                                        replay_commit};
    struct slog_stats st;

    db->replaying = 1;
    int rc = slog_replay(db->log, &ops, db, err, errlen);
    db->replaying = 0;
    if (rc < 0)
        return -1;
    slog_stats(db->log, &st);
    return (long)st.replayed_samples;
}
