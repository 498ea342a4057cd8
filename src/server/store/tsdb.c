/* Time-series store. See tsdb.h for the model; chunk.c for the encoding. */
#include "tsdb.h"

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
#include "serieskey.h"

#define NSTAT 6 /* roll-up columns per series: min max sum count last inc */
enum { ST_MIN, ST_MAX, ST_SUM, ST_COUNT, ST_LAST, ST_INC };
static const int64_t TIER_RES_MS[TSDB_TIERS] = {0, 60000, 3600000};
static const size_t TIER_ROWS[TSDB_TIERS] = {0, 60, 24}; /* rows per roll-up chunk */
#define MAX_KEY 16384

static const struct db_migration tsdb_steps[] = {
    {"series and chunks",
     "CREATE TABLE groups (id INTEGER PRIMARY KEY, job TEXT NOT NULL, instance TEXT NOT NULL,"
     " UNIQUE (job, instance));"
     "CREATE TABLE series (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,"
     " grp INTEGER NOT NULL REFERENCES groups(id));"
     "CREATE TABLE chunks (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, tier INTEGER NOT NULL,"
     " t_min INTEGER NOT NULL, t_max INTEGER NOT NULL, nrows INTEGER NOT NULL,"
     " ncols INTEGER NOT NULL, data BLOB NOT NULL);"
     "CREATE INDEX chunks_by_time ON chunks (grp, tier, t_max);"},
};

struct acc {
    int has;
    int64_t bucket;
    double st[NSTAT];
};

struct group;

struct series {
    uint64_t id;
    char *key;
    size_t key_len;
    struct serieskey lab; /* the key read back: name and labels */
    struct group *grp;
    int64_t last_ts;
    double last_value;
    int64_t prev_ts; /* for the increase of counters */
    double prev_value;
    int has_prev;
    struct acc acc[TSDB_TIERS];
    char *json;       /* {"__name__":...,labels}: rendered once for /latest */
    size_t json_len;
    size_t raw_col;   /* this series' column in its group's raw head ... */
    uint64_t raw_gen; /* ... valid while the head's generation is this */
    struct series *hnext;
};

struct head {
    uint64_t gen; /* changes whenever columns are dropped */
    size_t nrows, cap, ncols, colcap;
    int64_t *ts;
    uint64_t *ids;
    double **vals;
};

struct group {
    uint64_t id;
    char *job, *instance;
    struct head head[TSDB_TIERS];
    struct head ooo;
    struct head prev_raw; /* the raw head sealed last, kept for recent reads */
    int64_t head_opened_ms;
    int64_t last_ts;
    struct series **members;
    size_t nmembers, cap;
    struct group *hnext;
};

struct pending {
    uint64_t grp;
    int tier;
    int64_t tmin, tmax;
    size_t rows, cols;
    struct buf data;
};

struct tsdb {
    char *path;
    struct tsdb_config cfg;
    sqlite3 *w;
    sqlite3_stmt *ins_series, *ins_group, *ins_chunk;
    pthread_rwlock_t lock;
    struct series **shash;
    size_t shash_cap, nseries;
    struct series **by_id; /* index: id -> series (ids are dense rowids) */
    size_t by_id_cap;
    struct group **ghash;
    size_t ghash_cap, ngroups;
    struct group **groups;
    size_t groups_cap;
    struct pending *pend;
    size_t npend, pend_cap;
    int64_t last_retention_ms;
    pthread_mutex_t readers_lock; /* guards idle */
    struct reader **idle;         /* connections ready for a query */
    size_t nidle;
    struct tsdb_stats st;
};

/* A read connection with its chunk query prepared. Queries borrow one from
 * the pool and give it back, so no query pays for opening one. */
struct reader {
    sqlite3 *conn;
    sqlite3_stmt *chunks;
};

#define READERS_KEPT 8

/* ---- hashing ---- */

/* Hash of a group's job and instance. */
static uint64_t group_hash(const char *job, const char *instance)
{
    return hash_bytes(job, strlen(job)) * 31 + hash_bytes(instance, strlen(instance));
}

static struct series *series_find(struct tsdb *db, const char *key, size_t len)
{
    struct series *s = db->shash[hash_bytes(key, len) & (db->shash_cap - 1)];
    for (; s; s = s->hnext)
        if (s->key_len == len && !memcmp(s->key, key, len))
            return s;
    return NULL;
}

static void series_json(const struct series *s, struct buf *out);

static void series_index(struct tsdb *db, struct series *s)
{
    struct buf j;
    buf_init(&j, 0);
    series_json(s, &j);
    s->json = buf_detach(&j, &s->json_len);

    if (db->nseries + 1 > db->shash_cap) {
        size_t cap = db->shash_cap * 2;
        struct series **h = xcalloc(cap, sizeof(*h));
        for (size_t i = 0; i < db->shash_cap; i++)
            for (struct series *x = db->shash[i], *nx; x; x = nx) {
                nx = x->hnext;
                size_t b = hash_bytes(x->key, x->key_len) & (cap - 1);
                x->hnext = h[b];
                h[b] = x;
            }
        free(db->shash);
        db->shash = h;
        db->shash_cap = cap;
    }
    s->key_len = strlen(s->key);
    size_t b = hash_bytes(s->key, s->key_len) & (db->shash_cap - 1);
    s->hnext = db->shash[b];
    db->shash[b] = s;
    db->nseries++;
    if (s->id >= db->by_id_cap) {
        size_t cap = db->by_id_cap ? db->by_id_cap : 1024;
        while (cap <= s->id)
            cap *= 2;
        db->by_id = xrealloc(db->by_id, cap * sizeof(*db->by_id));
        memset(db->by_id + db->by_id_cap, 0, (cap - db->by_id_cap) * sizeof(*db->by_id));
        db->by_id_cap = cap;
    }
    db->by_id[s->id] = s;
}

static struct group *group_find(struct tsdb *db, const char *job, const char *instance)
{
    struct group *g = db->ghash[group_hash(job, instance) & (db->ghash_cap - 1)];
    for (; g; g = g->hnext)
        if (!strcmp(g->job, job) && !strcmp(g->instance, instance))
            return g;
    return NULL;
}

static void group_index(struct tsdb *db, struct group *g)
{
    if (db->ngroups + 1 > db->ghash_cap) {
        size_t cap = db->ghash_cap * 2;
        struct group **h = xcalloc(cap, sizeof(*h));
        for (size_t i = 0; i < db->ngroups; i++) {
            struct group *x = db->groups[i];
            size_t b = group_hash(x->job, x->instance) & (cap - 1);
            x->hnext = h[b];
            h[b] = x;
        }
        free(db->ghash);
        db->ghash = h;
        db->ghash_cap = cap;
    }
    size_t b = group_hash(g->job, g->instance) & (db->ghash_cap - 1);
    g->hnext = db->ghash[b];
    db->ghash[b] = g;
    if (db->ngroups == db->groups_cap) {
        db->groups_cap = db->groups_cap ? db->groups_cap * 2 : 64;
        db->groups = xrealloc(db->groups, db->groups_cap * sizeof(*db->groups));
    }
    db->groups[db->ngroups++] = g;
}

/* ---- keys ---- */

static int cmp_label(const void *a, const void *b)
{
    const struct prom_label *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

int tsdb_key(const char *name, size_t name_len, const struct prom_label *labels, size_t nlabels,
             const struct prom_label *extra, size_t nextra, struct buf *out)
{
    struct prom_label all[PROM_MAX_LABELS_HARD + 8];
    size_t n = 0, start = out->len;

    if (nlabels + nextra > sizeof(all) / sizeof(all[0]))
        return -1;
    for (size_t i = 0; i < nextra; i++)
        if (extra[i].value_len)
            all[n++] = extra[i];
    for (size_t i = 0; i < nlabels; i++) {
        int overridden = 0;
        for (size_t j = 0; j < nextra; j++)
            overridden |= extra[j].name_len == labels[i].name_len &&
                          !memcmp(extra[j].name, labels[i].name, labels[i].name_len);
        /* empty values mean "no label", as in Prometheus */
        if (!overridden && labels[i].value_len)
            all[n++] = labels[i];
    }
    qsort(all, n, sizeof(all[0]), cmp_label);
    buf_append(out, name, name_len);
    if (n)
        buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (!expo_valid_utf8(all[i].value, all[i].value_len)) {
            out->len = start;
            return -1;
        }
        if (i)
            buf_putc(out, ',');
        buf_append(out, all[i].name, all[i].name_len);
        buf_puts(out, "=\"");
        /* copy runs without anything to escape in one go */
        const char *v = all[i].value, *vend = v + all[i].value_len;
        while (v < vend) {
            const char *r = v;
            while (r < vend && *r != '\\' && *r != '"' && *r != '\n')
                r++;
            buf_append(out, v, (size_t)(r - v));
            if (r == vend)
                break;
            buf_append(out, *r == '\n' ? "\\n" : *r == '"' ? "\\\"" : "\\\\", 2);
            v = r + 1;
        }
        buf_putc(out, '"');
    }
    if (n)
        buf_putc(out, '}');
    if (out->len - start > MAX_KEY) {
        out->len = start;
        return -1;
    }
    return 0;
}

/* Fills the name and labels of s from its key. */
static int parse_key(struct series *s)
{
    return serieskey_parse(s->key, strlen(s->key), &s->lab);
}

static const char *label_of(const struct series *s, const char *name)
{
    return serieskey_get(&s->lab, name);
}

static const char *label_get(void *arg, const char *name)
{
    return label_of(arg, name);
}

static void series_free(struct series *s)
{
    serieskey_free(&s->lab);
    free(s->key);
    free(s->json);
    free(s);
}

/* ---- heads ---- */

static void head_free(struct head *h)
{
    for (size_t c = 0; c < h->ncols; c++)
        free(h->vals[c]);
    free(h->vals);
    free(h->ids);
    free(h->ts);
    memset(h, 0, sizeof(*h));
}

static void head_clear(struct head *h)
{
    for (size_t c = 0; c < h->ncols; c++)
        free(h->vals[c]);
    h->nrows = 0;
    h->ncols = 0;
    h->gen++;
}

static size_t head_col(struct head *h, uint64_t id)
{
    for (size_t c = h->ncols; c-- > 0;)
        if (h->ids[c] == id)
            return c;
    if (h->ncols == h->colcap) {
        h->colcap = h->colcap ? h->colcap * 2 : 64;
        h->ids = xrealloc(h->ids, h->colcap * sizeof(*h->ids));
        h->vals = xrealloc(h->vals, h->colcap * sizeof(*h->vals));
    }
    double *v = xmalloc((h->cap ? h->cap : 1) * sizeof(double));
    for (size_t r = 0; r < h->cap; r++)
        v[r] = chunk_absent();
    h->ids[h->ncols] = id;
    h->vals[h->ncols] = v;
    return h->ncols++;
}

static void head_grow(struct head *h, size_t cap)
{
    if (cap <= h->cap)
        return;
    h->ts = xrealloc(h->ts, cap * sizeof(*h->ts));
    for (size_t c = 0; c < h->ncols; c++) {
        h->vals[c] = xrealloc(h->vals[c], cap * sizeof(double));
        for (size_t r = h->cap; r < cap; r++)
            h->vals[c][r] = chunk_absent();
    }
    h->cap = cap;
}

/* Row for ts, inserting one if needed. */
static size_t head_row(struct head *h, int64_t ts)
{
    if (h->nrows && ts == h->ts[h->nrows - 1])
        return h->nrows - 1;
    if (h->nrows == h->cap)
        head_grow(h, h->cap ? h->cap * 2 : 16);
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
    for (size_t c = 0; c < h->ncols; c++) {
        memmove(h->vals[c] + lo + 1, h->vals[c] + lo, (h->nrows - lo) * sizeof(double));
        h->vals[c][lo] = chunk_absent();
    }
    h->nrows++;
    return lo;
}

static void head_set(struct head *h, uint64_t id, int64_t ts, double v)
{
    size_t c = head_col(h, id);
    size_t r = head_row(h, ts);
    h->vals[c][r] = v;
}

/* Encodes h as a pending chunk of group g and empties h. */
/* dst becomes a copy of src's rows (dst's old contents freed). */
static void head_copy(struct head *dst, const struct head *src)
{
    head_free(dst);
    dst->nrows = dst->cap = src->nrows;
    dst->ncols = dst->colcap = src->ncols;
    dst->ts = xmalloc((src->nrows ? src->nrows : 1) * sizeof(int64_t));
    memcpy(dst->ts, src->ts, src->nrows * sizeof(int64_t));
    dst->ids = xmalloc((src->ncols ? src->ncols : 1) * sizeof(uint64_t));
    memcpy(dst->ids, src->ids, src->ncols * sizeof(uint64_t));
    dst->vals = xmalloc((src->ncols ? src->ncols : 1) * sizeof(double *));
    for (size_t c = 0; c < src->ncols; c++) {
        dst->vals[c] = xmalloc((src->nrows ? src->nrows : 1) * sizeof(double));
        memcpy(dst->vals[c], src->vals[c], src->nrows * sizeof(double));
    }
}

static void seal(struct tsdb *db, struct group *g, struct head *h, int tier)
{
    struct chunk_data cd;
    struct pending *p;

    if (!h->nrows)
        return;
    cd.nrows = h->nrows;
    cd.ncols = h->ncols;
    cd.ts = h->ts;
    cd.series = h->ids;
    cd.values = xmalloc((cd.nrows * cd.ncols != 0 ? cd.nrows * cd.ncols : 1) * sizeof(double));
    for (size_t c = 0; c < h->ncols; c++)
        memcpy(cd.values + c * cd.nrows, h->vals[c], cd.nrows * sizeof(double));
    if (db->npend == db->pend_cap) {
        db->pend_cap = db->pend_cap ? db->pend_cap * 2 : 32;
        db->pend = xrealloc(db->pend, db->pend_cap * sizeof(*db->pend));
    }
    p = &db->pend[db->npend];
    memset(p, 0, sizeof(*p));
    buf_init(&p->data, 0);
    if (chunk_encode(&cd, db->cfg.zstd_level, &p->data) < 0) {
        log_error("tsdb: cannot encode a chunk of %s/%s; %zu samples dropped", g->job,
                  g->instance, cd.nrows * cd.ncols);
        buf_free(&p->data);
        free(cd.values);
        head_clear(h);
        return;
    }
    p->grp = g->id;
    p->tier = tier;
    p->tmin = h->ts[0];
    p->tmax = h->ts[h->nrows - 1];
    p->rows = cd.nrows;
    p->cols = cd.ncols;
    db->npend++;
    free(cd.values);
    /* recent windows (alert rules) keep reading from memory after a seal */
    if (h == &g->head[TSDB_RAW])
        head_copy(&g->prev_raw, h);
    head_clear(h);
}

/* ---- roll-ups ---- */

static void acc_emit(struct tsdb *db, struct series *s, int tier);

static void acc_feed(struct tsdb *db, struct series *s, int tier, int64_t t, const double *st)
{
    struct acc *a = &s->acc[tier];
    int64_t bucket = t - (((t % TIER_RES_MS[tier]) + TIER_RES_MS[tier]) % TIER_RES_MS[tier]);

    if (a->has && bucket < a->bucket)
        return; /* older than the open bucket: only the raw tier keeps it */
    if (a->has && bucket > a->bucket)
        acc_emit(db, s, tier);
    if (!a->has) {
        a->has = 1;
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

static void acc_emit(struct tsdb *db, struct series *s, int tier)
{
    struct acc *a = &s->acc[tier];
    struct group *g = s->grp;
    struct head *h = &g->head[tier];

    if (!a->has)
        return;
    if (h->nrows >= TIER_ROWS[tier] && a->bucket > h->ts[h->nrows - 1])
        seal(db, g, h, tier);
    for (int k = 0; k < NSTAT; k++)
        head_set(h, (s->id << 3) | (uint64_t)k, a->bucket, a->st[k]);
    if (tier + 1 < TSDB_TIERS)
        acc_feed(db, s, tier + 1, a->bucket, a->st);
    a->has = 0;
}

/* ---- open/close ---- */

void tsdb_config_defaults(struct tsdb_config *cfg)
{
    cfg->retention_ms[TSDB_RAW] = 15LL * 86400000;
    cfg->retention_ms[TSDB_1M] = 90LL * 86400000;
    cfg->retention_ms[TSDB_1H] = 730LL * 86400000;
    cfg->head_rows = 120;
    cfg->zstd_level = 9;
    cfg->max_head_age_ms = 5 * 60000;
}

static struct group *group_new(struct tsdb *db, uint64_t id, const char *job, const char *inst)
{
    struct group *g = xcalloc(1, sizeof(*g));
    g->id = id;
    g->job = xstrdup(job);
    g->instance = xstrdup(inst);
    group_index(db, g);
    return g;
}

static void add_member(struct group *g, struct series *s)
{
    if (g->nmembers == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->members = xrealloc(g->members, g->cap * sizeof(*g->members));
    }
    g->members[g->nmembers++] = s;
}

static int load(struct tsdb *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = db_prepare(db->w, "SELECT id, job, instance FROM groups");
    if (!st)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW)
        group_new(db, (uint64_t)sqlite3_column_int64(st, 0),
                  (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2));
    sqlite3_finalize(st);
    st = db_prepare(db->w, "SELECT s.id, s.key, g.job, g.instance FROM series s JOIN groups g"
                           " ON g.id = s.grp");
    if (!st)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct series *s = xcalloc(1, sizeof(*s));
        s->id = (uint64_t)sqlite3_column_int64(st, 0);
        s->key = xstrdup((const char *)sqlite3_column_text(st, 1));
        if (parse_key(s) < 0) {
            log_warn("tsdb: series %llu has an unreadable key; skipped", (unsigned long long)s->id);
            series_free(s);
            continue;
        }
        s->grp = group_find(db, (const char *)sqlite3_column_text(st, 2),
                            (const char *)sqlite3_column_text(st, 3));
        if (!s->grp) {
            series_free(s);
            continue;
        }
        add_member(s->grp, s);
        series_index(db, s);
    }
    sqlite3_finalize(st);
    st = db_prepare(db->w, "SELECT grp, max(t_max) FROM chunks WHERE tier = 0 GROUP BY grp");
    if (!st)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint64_t gid = (uint64_t)sqlite3_column_int64(st, 0);
        for (size_t i = 0; i < db->ngroups; i++)
            if (db->groups[i]->id == gid)
                db->groups[i]->last_ts = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return 0;
fail:
    snprintf(err, errlen, "%s: cannot load the series index: %s", db->path, sqlite3_errmsg(db->w));
    return -1;
}

static void reader_free(struct reader *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->chunks);
    sqlite3_close(r->conn);
    free(r);
}

static struct reader *reader_open(struct tsdb *db)
{
    char err[256];
    struct reader *r = xcalloc(1, sizeof(*r));

    r->conn = db_open_reader(db->path, err, sizeof(err));
    if (r->conn)
        r->chunks = db_prepare(r->conn, "SELECT data FROM chunks WHERE grp = ? AND tier = ?"
                                        " AND t_max >= ? AND t_min <= ? ORDER BY t_min");
    if (!r->conn || !r->chunks) {
        log_error("tsdb: cannot open a reader: %s", r->conn ? sqlite3_errmsg(r->conn) : err);
        reader_free(r);
        return NULL;
    }
    return r;
}

static struct reader *reader_get(struct tsdb *db)
{
    struct reader *r = NULL;

    pthread_mutex_lock(&db->readers_lock);
    if (db->nidle)
        r = db->idle[--db->nidle];
    pthread_mutex_unlock(&db->readers_lock);
    return r ? r : reader_open(db);
}

static void reader_put(struct tsdb *db, struct reader *r)
{
    sqlite3_reset(r->chunks);
    sqlite3_clear_bindings(r->chunks);
    pthread_mutex_lock(&db->readers_lock);
    if (db->nidle < READERS_KEPT) {
        db->idle[db->nidle++] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&db->readers_lock);
    reader_free(r);
}

struct tsdb *tsdb_open(const char *path, const struct tsdb_config *cfg, char *err, size_t errlen)
{
    struct tsdb *db = xcalloc(1, sizeof(*db));

    db->path = xstrdup(path);
    db->cfg = *cfg;
    if (!db->cfg.head_rows)
        db->cfg.head_rows = 120;
    pthread_rwlock_init(&db->lock, NULL);
    pthread_mutex_init(&db->readers_lock, NULL);
    db->idle = xcalloc(READERS_KEPT, sizeof(*db->idle));
    db->shash_cap = 1024;
    db->shash = xcalloc(db->shash_cap, sizeof(*db->shash));
    db->ghash_cap = 64;
    db->ghash = xcalloc(db->ghash_cap, sizeof(*db->ghash));
    db->w = db_open(path, tsdb_steps, sizeof(tsdb_steps) / sizeof(tsdb_steps[0]), err, errlen);
    if (!db->w)
        goto fail;
    db->ins_series = db_prepare(db->w, "INSERT INTO series (key, grp) VALUES (?, ?)");
    db->ins_group = db_prepare(db->w, "INSERT INTO groups (job, instance) VALUES (?, ?)");
    db->ins_chunk = db_prepare(db->w, "INSERT INTO chunks (grp, tier, t_min, t_max, nrows, ncols,"
                                      " data) VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!db->ins_series || !db->ins_group || !db->ins_chunk) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db->w));
        goto fail;
    }
    if (load(db, err, errlen) < 0)
        goto fail;
    /* two warm readers, so the first queries open nothing */
    for (int i = 0; i < 2; i++) {
        struct reader *r = reader_open(db);
        if (r)
            reader_put(db, r);
    }
    return db;
fail:
    tsdb_close(db);
    return NULL;
}

void tsdb_close(struct tsdb *db)
{
    if (!db)
        return;
    if (db->w && db->ins_chunk) {
        pthread_rwlock_wrlock(&db->lock);
        for (size_t i = 0; i < db->by_id_cap; i++) {
            struct series *s = db->by_id[i];
            if (s)
                for (int t = 1; t < TSDB_TIERS; t++)
                    acc_emit(db, s, t);
        }
        for (size_t i = 0; i < db->ngroups; i++) {
            struct group *g = db->groups[i];
            seal(db, g, &g->ooo, TSDB_RAW);
            for (int t = 0; t < TSDB_TIERS; t++)
                seal(db, g, &g->head[t], t);
        }
        pthread_rwlock_unlock(&db->lock);
        tsdb_commit(db, now_wall_ms());
    }
    for (size_t i = 0; i < db->by_id_cap; i++)
        if (db->by_id[i])
            series_free(db->by_id[i]);
    for (size_t i = 0; i < db->ngroups; i++) {
        struct group *g = db->groups[i];
        for (int t = 0; t < TSDB_TIERS; t++)
            head_free(&g->head[t]);
        head_free(&g->ooo);
        head_free(&g->prev_raw);
        free(g->members);
        free(g->job);
        free(g->instance);
        free(g);
    }
    for (size_t i = 0; i < db->npend; i++)
        buf_free(&db->pend[i].data);
    free(db->pend);
    free(db->groups);
    free(db->ghash);
    free(db->shash);
    free(db->by_id);
    sqlite3_finalize(db->ins_series);
    sqlite3_finalize(db->ins_group);
    sqlite3_finalize(db->ins_chunk);
    /* readers first: the writer, closing last, checkpoints the WAL away */
    for (size_t i = 0; i < db->nidle; i++)
        reader_free(db->idle[i]);
    free(db->idle);
    sqlite3_close(db->w);
    pthread_mutex_destroy(&db->readers_lock);
    pthread_rwlock_destroy(&db->lock);
    free(db->path);
    free(db);
}

/* ---- writing ---- */

static struct group *group_get(struct tsdb *db, const char *job, const char *inst)
{
    struct group *g = group_find(db, job, inst);
    if (g)
        return g;
    sqlite3_reset(db->ins_group);
    sqlite3_bind_text(db->ins_group, 1, job, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(db->ins_group, 2, inst, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(db->ins_group) != SQLITE_DONE) {
        snprintf(db->st.last_error, sizeof(db->st.last_error), "new group: %s",
                 sqlite3_errmsg(db->w));
        db->st.write_errors++;
        return NULL;
    }
    return group_new(db, (uint64_t)sqlite3_last_insert_rowid(db->w), job, inst);
}

static struct series *series_get(struct tsdb *db, const char *key, size_t len)
{
    struct series *s = series_find(db, key, len);
    if (s)
        return s;
    if (len > MAX_KEY)
        return NULL;
    s = xcalloc(1, sizeof(*s));
    s->key = xstrndup(key, len);
    if (strlen(s->key) != len || parse_key(s) < 0) {
        series_free(s);
        return NULL;
    }
    const char *job = label_of(s, "job"), *inst = label_of(s, "instance");
    /* series without job and instance (imports) are grouped by metric name,
     * so unrelated series do not share one sparse head */
    s->grp = job || inst ? group_get(db, job ? job : "", inst ? inst : "")
                         : group_get(db, "", s->lab.name);
    if (!s->grp) {
        series_free(s);
        return NULL;
    }
    sqlite3_reset(db->ins_series);
    sqlite3_bind_text(db->ins_series, 1, s->key, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(db->ins_series, 2, (sqlite3_int64)s->grp->id);
    if (sqlite3_step(db->ins_series) != SQLITE_DONE) {
        snprintf(db->st.last_error, sizeof(db->st.last_error), "new series: %s",
                 sqlite3_errmsg(db->w));
        db->st.write_errors++;
        series_free(s);
        return NULL;
    }
    s->id = (uint64_t)sqlite3_last_insert_rowid(db->w);
    add_member(s->grp, s);
    series_index(db, s);
    return s;
}

static void append_one(struct tsdb *db, struct series *s, int64_t ts, double v)
{
    struct group *g = s->grp;
    struct head *h = &g->head[TSDB_RAW];

    if (h->nrows && ts < h->ts[0]) {
        /* older than the open head: a backfill or import of the past */
        if (g->ooo.nrows >= db->cfg.head_rows * 4 && ts > g->ooo.ts[g->ooo.nrows - 1])
            seal(db, g, &g->ooo, TSDB_RAW);
        head_set(&g->ooo, s->id, ts, v);
    } else {
        if (h->nrows >= db->cfg.head_rows && ts > h->ts[h->nrows - 1])
            seal(db, g, h, TSDB_RAW);
        if (!h->nrows)
            g->head_opened_ms = now_wall_ms();
        if (s->raw_gen != h->gen + 1 || s->raw_col >= h->ncols || h->ids[s->raw_col] != s->id) {
            s->raw_col = head_col(h, s->id);
            s->raw_gen = h->gen + 1; /* +1: a zeroed series never looks cached */
        }
        size_t row = head_row(h, ts); /* may grow every column: before indexing */
        h->vals[s->raw_col][row] = v;
    }
    if (ts >= s->last_ts) {
        s->last_ts = ts;
        s->last_value = v;
    }
    if (ts > g->last_ts)
        g->last_ts = ts;
    if (chunk_is_stale(v)) {
        s->has_prev = 0;
        return;
    }
    if (isnan(v))
        return;
    if (s->has_prev && ts <= s->prev_ts)
        return; /* out of order: raw only */
    double inc = 0;
    if (s->has_prev)
        inc = v >= s->prev_value ? v - s->prev_value : v; /* a counter reset restarts at v */
    s->prev_ts = ts;
    s->prev_value = v;
    s->has_prev = 1;
    double st[NSTAT] = {v, v, v, 1, v, inc};
    acc_feed(db, s, TSDB_1M, ts, st);
}

size_t tsdb_append(struct tsdb *db, const struct tsdb_sample *smp, size_t n)
{
    size_t stored = 0;
    int in_tx = 0;

    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < n; i++) {
        struct series *s = series_find(db, smp[i].key, smp[i].key_len);
        if (!s) {
            /* new series are inserted in one transaction per batch: a new
             * fleet brings hundreds of thousands at once */
            if (!in_tx)
                in_tx = db_exec(db->w, "BEGIN IMMEDIATE") == 0;
            s = series_get(db, smp[i].key, smp[i].key_len);
        }
        if (!s)
            continue;
        append_one(db, s, smp[i].ts_ms, smp[i].value);
        stored++;
    }
    if (in_tx && db_exec(db->w, "COMMIT") < 0) {
        db_exec(db->w, "ROLLBACK");
        log_error("tsdb: cannot record new series: %s", sqlite3_errmsg(db->w));
    }
    db->st.samples_appended += stored;
    pthread_rwlock_unlock(&db->lock);
    return stored;
}

void tsdb_scrape_done(struct tsdb *db, const char *job, const char *instance, int64_t ts_ms)
{
    pthread_rwlock_wrlock(&db->lock);
    struct group *g = group_find(db, job, instance);
    for (size_t i = 0; g && i < g->nmembers; i++) {
        struct series *s = g->members[i];
        if (s->last_ts && s->last_ts < ts_ms && !chunk_is_stale(s->last_value))
            append_one(db, s, ts_ms, chunk_stale());
    }
    pthread_rwlock_unlock(&db->lock);
}

static void retention(struct tsdb *db, int64_t now_ms)
{
    sqlite3_stmt *st = db_prepare(db->w, "DELETE FROM chunks WHERE tier = ? AND t_max < ?");
    if (!st)
        return;
    for (int t = 0; t < TSDB_TIERS; t++) {
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, t);
        sqlite3_bind_int64(st, 2, now_ms - __atomic_load_n(&db->cfg.retention_ms[t], __ATOMIC_RELAXED));
        if (sqlite3_step(st) != SQLITE_DONE)
            log_warn("tsdb: retention of tier %d failed: %s", t, sqlite3_errmsg(db->w));
    }
    sqlite3_finalize(st);
}

int tsdb_commit(struct tsdb *db, int64_t now_ms)
{
    size_t done = 0;
    int rc = 0;

    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < db->ngroups; i++) {
        struct group *g = db->groups[i];
        if (g->head[TSDB_RAW].nrows && now_ms - g->head_opened_ms > db->cfg.max_head_age_ms)
            seal(db, g, &g->head[TSDB_RAW], TSDB_RAW);
        if (g->ooo.nrows)
            seal(db, g, &g->ooo, TSDB_RAW);
    }
    if (db->npend && db_exec(db->w, "BEGIN IMMEDIATE") == 0) {
        for (; done < db->npend; done++) {
            struct pending *p = &db->pend[done];
            sqlite3_reset(db->ins_chunk);
            sqlite3_bind_int64(db->ins_chunk, 1, (sqlite3_int64)p->grp);
            sqlite3_bind_int(db->ins_chunk, 2, p->tier);
            sqlite3_bind_int64(db->ins_chunk, 3, p->tmin);
            sqlite3_bind_int64(db->ins_chunk, 4, p->tmax);
            sqlite3_bind_int64(db->ins_chunk, 5, (sqlite3_int64)p->rows);
            sqlite3_bind_int64(db->ins_chunk, 6, (sqlite3_int64)p->cols);
            sqlite3_bind_blob(db->ins_chunk, 7, p->data.data, (int)p->data.len, SQLITE_STATIC);
            if (sqlite3_step(db->ins_chunk) != SQLITE_DONE)
                break;
        }
        if (done < db->npend || db_exec(db->w, "COMMIT") < 0) {
            snprintf(db->st.last_error, sizeof(db->st.last_error), "writing chunks: %s",
                     sqlite3_errmsg(db->w));
            db->st.write_errors++;
            db_exec(db->w, "ROLLBACK");
            log_error("tsdb: %s; %zu chunks kept in memory and retried", db->st.last_error,
                      db->npend);
            done = 0;
            rc = -1;
        } else {
            db->st.last_error[0] = '\0';
        }
    } else if (db->npend) {
        rc = -1;
    }
    for (size_t i = 0; i < done; i++) {
        db->st.chunks_written++;
        db->st.chunk_bytes += db->pend[i].data.len;
        buf_free(&db->pend[i].data);
    }
    if (done && db->npend > done)
        memmove(db->pend, db->pend + done, (db->npend - done) * sizeof(*db->pend));
    db->npend -= done;
    pthread_rwlock_unlock(&db->lock);
    if (now_ms - db->last_retention_ms > 60000) {
        db->last_retention_ms = now_ms;
        retention(db, now_ms);
    }
    return rc;
}

int64_t tsdb_last_ts(struct tsdb *db, const char *job, const char *instance)
{
    int64_t t = 0;
    pthread_rwlock_rdlock(&db->lock);
    struct group *g = group_find(db, job, instance);
    if (g)
        t = g->last_ts;
    pthread_rwlock_unlock(&db->lock);
    return t;
}

/* ---- reading ---- */

size_t tsdb_select(struct tsdb *db, const struct selector *sel, size_t max,
                   struct tsdb_series_info **out)
{
    size_t n = 0, cap = 0;
    struct tsdb_series_info *v = NULL;

    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->by_id_cap; i++) {
        struct series *s = db->by_id[i];
        if (!s || (sel->metric && strcmp(sel->metric, s->lab.name)) ||
            !sel_matches(sel, label_get, s))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n].id = s->id;
        v[n].key = xstrdup(s->key);
        if (++n == max && max)
            break;
    }
    pthread_rwlock_unlock(&db->lock);
    *out = v;
    return n;
}

static void series_json(const struct series *s, struct buf *out)
{
    serieskey_json(&s->lab, out);
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

void tsdb_labels_json(struct tsdb *db, const struct selector *sel, const char *label,
                      struct buf *out)
{
    char **names = NULL;
    size_t n = 0, cap = 0;

    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->by_id_cap; i++) {
        struct series *s = db->by_id[i];
        if (!s || (sel && !sel_matches(sel, label_get, s)))
            continue;
        for (size_t k = 0; k <= s->lab.nlabels; k++) {
            const char *v;
            if (label)
                v = k == 0 ? label_of(s, label) : NULL;
            else
                v = k == 0 ? "__name__" : s->lab.labels[k - 1].name;
            if (!v)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                names = xrealloc(names, cap * sizeof(*names));
            }
            names[n++] = (char *)v;
        }
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    buf_putc(out, '[');
    for (size_t i = 0, w = 0; i < n; i++) {
        if (i && !strcmp(names[i], names[i - 1]))
            continue;
        if (w++)
            buf_putc(out, ',');
        buf_json_str(out, names[i]);
    }
    buf_putc(out, ']');
    pthread_rwlock_unlock(&db->lock);
    free(names);
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
            size_t lo = 0, hi = nrows;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (ts[mid] < start)
                    lo = mid + 1;
                else
                    hi = mid;
            }
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

static void collect_head(struct pts *p, int tier, uint64_t id, const struct head *h,
                         int64_t start, int64_t end)
{
    collect(p, tier, id, h->nrows, h->ts, h->ncols, h->ids, h->vals, start, end);
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
    if (p->n && !sorted)
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

    struct reader *rd = reader_get(db);
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
    reader_put(db, rd);
    if (rc != SQLITE_DONE) {
        free(p.v);
        return -1;
    }
    pthread_rwlock_rdlock(&db->lock);
    s = db->by_id[series_id];
    struct group *g = s->grp;
    if (tier == TSDB_RAW)
        collect_head(&p, tier, series_id, &g->ooo, lo, end);
    collect_head(&p, tier, series_id, &g->head[tier], lo, end);
    if (tier > TSDB_RAW && s->acc[tier].has && s->acc[tier].bucket <= end) {
        const double *a = s->acc[tier].st;
        struct tsdb_point pt = {s->acc[tier].bucket, a[0], a[1], a[2], a[3], a[4], a[5]};
        pts_add(&p, &pt);
    }
    pthread_rwlock_unlock(&db->lock);

    return finish_points(&p, tier, start, lo, 0, out);
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
    const struct head *h = &s->grp->head[TSDB_RAW], *prev = &s->grp->prev_raw;
    /* memory answers when the head, or the head sealed before it, reaches
     * back to start and nothing older is waiting in the out-of-order head */
    int in_head = h->nrows > 0 && h->ts[0] <= start;
    int in_prev = prev->nrows > 0 && prev->ts[0] <= start &&
                  (h->nrows == 0 || prev->ts[prev->nrows - 1] <= h->ts[0]);
    *covered = (in_head || in_prev) && s->grp->ooo.nrows == 0;
    if (*covered) {
        if (!in_head)
            collect_head(&p, TSDB_RAW, series_id, prev, start, end);
        collect_head(&p, TSDB_RAW, series_id, h, start, end);
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
    if (s && s->last_ts && !chunk_is_stale(s->last_value)) {
        *ts_ms = s->last_ts;
        *value = s->last_value;
        rc = 0;
    }
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

size_t tsdb_latest_json(struct tsdb *db, const struct selector *sel, struct buf *out)
{
    size_t n = 0;

    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->by_id_cap; i++) {
        struct series *s = db->by_id[i];
        if (!s || !s->last_ts || chunk_is_stale(s->last_value) ||
            (sel && sel->metric && strcmp(sel->metric, s->lab.name)) ||
            (sel && !sel_matches(sel, label_get, s)))
            continue;
        char tail[96], num[40];
        expo_format_value(num, sizeof(num), s->last_value);
        int64_t t = s->last_ts;
        int tl = snprintf(tail, sizeof(tail), ",\"value\":[%lld.%03lld,\"%s\"]}", (long long)(t / 1000),
                          (long long)(t % 1000 < 0 ? -(t % 1000) : t % 1000), num);
        if (n++)
            buf_putc(out, ',');
        buf_append(out, "{\"metric\":", 10);
        buf_append(out, s->json, s->json_len);
        buf_append(out, tail, (size_t)tl);
    }
    pthread_rwlock_unlock(&db->lock);
    return n;
}

void tsdb_stats(struct tsdb *db, struct tsdb_stats *st)
{
    pthread_rwlock_rdlock(&db->lock);
    *st = db->st;
    st->series = db->nseries;
    uint64_t h = 0;
    for (size_t i = 0; i < db->ngroups; i++)
        h += db->groups[i]->head[TSDB_RAW].nrows * db->groups[i]->head[TSDB_RAW].ncols;
    st->head_samples = h;
    pthread_rwlock_unlock(&db->lock);
}

void tsdb_set_retention(struct tsdb *db, int tier, int64_t ms)
{
    if (tier >= 0 && tier < TSDB_TIERS && ms > 0)
        __atomic_store_n(&db->cfg.retention_ms[tier], ms, __ATOMIC_RELAXED);
}
