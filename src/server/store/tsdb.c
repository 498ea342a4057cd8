/* Time-series store: opening, closing and the series index. See tsdb.h for
 * the model, tsdb_write.c and tsdb_read.c for the two paths, chunk.c for
 * the encoding. */
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

const int64_t TIER_RES_MS[TSDB_TIERS] = {0, 60000, 3600000};
const size_t TIER_ROWS[TSDB_TIERS] = {0, 60, 24};
/* Roll-up heads held an hour (6 statistics x 60 rows) and a day (x 24) of
 * every series in memory: 4 of the 6.5 KB a series cost (issue 18, memory
 * per series). Closed buckets are records now, sealed as soon as a newer
 * bucket closes (a minute, an hour), and merged by tsdb_compact into
 * chunks of TIER_ROWS once their window is complete. */
const size_t TIER_SEAL_ROWS[TSDB_TIERS] = {0, 1, 1};

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

/* ---- hashing ---- */

/* Hash of a group's job and instance. */
static uint64_t group_hash(const char *job, const char *instance)
{
    return hash_bytes(job, strlen(job)) * 31 + hash_bytes(instance, strlen(instance));
}

struct series *tsdb_series_find(struct tsdb *db, const char *key, size_t len)
{
    uint64_t h = hash_bytes(key, len);
    struct series *s = db->shash[h & (db->shash_cap - 1)];
    for (; s; s = s->hnext)
        if (s->hash == h && serieskey_packed_is(s->lab, key, len))
            return s;
    return NULL;
}

const char *tsdb_series_labels(struct tsdb *db, const char *key, size_t len)
{
    pthread_rwlock_rdlock(&db->lock);
    struct series *s = tsdb_series_find(db, key, len);
    const char *lab = s ? s->lab : NULL;
    pthread_rwlock_unlock(&db->lock);
    return lab;
}

void tsdb_series_index(struct tsdb *db, struct series *s)
{
    if (db->nseries + 1 > db->shash_cap) {
        size_t cap = db->shash_cap * 2;
        struct series **h = xcalloc(cap, sizeof(*h));
        for (size_t i = 0; i < db->shash_cap; i++)
            for (struct series *x = db->shash[i], *nx; x; x = nx) {
                nx = x->hnext;
                size_t b = x->hash & (cap - 1);
                x->hnext = h[b];
                h[b] = x;
            }
        free(db->shash);
        db->shash = h;
        db->shash_cap = cap;
    }
    size_t b = s->hash & (db->shash_cap - 1);
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

struct group *tsdb_group_find(struct tsdb *db, const char *job, const char *instance)
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
    if (g->id >= db->grp_by_id_cap) {
        size_t cap = db->grp_by_id_cap ? db->grp_by_id_cap : 64;
        while (cap <= g->id)
            cap *= 2;
        db->grp_by_id = xrealloc(db->grp_by_id, cap * sizeof(*db->grp_by_id));
        memset(db->grp_by_id + db->grp_by_id_cap, 0,
               (cap - db->grp_by_id_cap) * sizeof(*db->grp_by_id));
        db->grp_by_id_cap = cap;
    }
    db->grp_by_id[g->id] = g;
}

struct group *tsdb_group_by_id(struct tsdb *db, uint64_t id)
{
    return id < db->grp_by_id_cap ? db->grp_by_id[id] : NULL;
}

/* ---- keys ---- */

static int cmp_label(const void *a, const void *b)
{
    const struct prom_label *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int is_name_label(const struct prom_label *l)
{
    return l->name_len == 8 && !memcmp(l->name, "__name__", 8);
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
        /* empty values mean "no label", as in Prometheus; a label named
         * __name__ would be a second name (the series has one: its own) */
        if (!overridden && labels[i].value_len && !is_name_label(&labels[i]))
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
        serieskey_escape(out, all[i].value, all[i].value_len);
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

struct series *tsdb_series_make(const char *key, size_t len)
{
    struct serieskey k;
    if (serieskey_parse(key, len, &k) < 0)
        return NULL;
    size_t n = serieskey_packed_len(&k);
    struct series *s = xcalloc(1, sizeof(*s) + n);
    serieskey_pack_to(&k, s->lab);
    serieskey_free(&k);
    s->hash = hash_bytes(key, len);
    s->prev_ts = PREV_NONE;
    for (int t = TSDB_1M; t < TSDB_TIERS; t++)
        SACC(s, t)->bucket = ACC_NONE;
    return s;
}

void tsdb_series_key(const struct series *s, struct buf *out)
{
    serieskey_packed_write(s->lab, out);
}

const char *tsdb_label_of(const struct series *s, const char *name)
{
    return serieskey_packed_get(s->lab, name);
}

const char *tsdb_label_get(void *arg, const char *name)
{
    return tsdb_label_of(arg, name);
}

void tsdb_series_free(struct series *s)
{
    free(s);
}

/* ---- open/close ---- */

/* The sample log beside the database (PATH-samples/): replayed into the
 * heads, which are then sealed and committed, so the log starts over. */
static int open_log(struct tsdb *db, char *err, size_t errlen)
{
    char dir[4200];

    snprintf(dir, sizeof(dir), "%s-samples", db->path);
    if (!(db->log = slog_open(dir, err, errlen)))
        return -1;
    int64_t t0 = now_mono_ns();
    long n = tsdb_replay(db, err, errlen);
    if (n < 0 || slog_start(db->log, err, errlen) < 0)
        return -1;
    if (!n)
        return 0;
    pthread_rwlock_wrlock(&db->lock);
    tsdb_seal_all(db);
    pthread_rwlock_unlock(&db->lock);
    int rc = tsdb_commit(db, now_wall_ms());
    log_info("tsdb: replayed %ld samples from the sample log in %lld ms%s", n,
             (long long)((now_mono_ns() - t0) / 1000000),
             rc < 0 ? "; they could not be written yet and stay in memory" : "");
    return 0;
}

void tsdb_config_defaults(struct tsdb_config *cfg)
{
    /* retention is a setting (options.c): 0 here keeps everything */
    for (int t = 0; t < TSDB_TIERS; t++)
        cfg->retention_ms[t] = 0;
    cfg->head_rows = 120;
    cfg->zstd_level = 9;
    cfg->max_head_age_ms = 5 * 60000;
    cfg->max_future_ms = 0; /* a setting of the server's (max_sample_future_ms) */
    cfg->query_budget_ms = 0; /* a setting of the server's (query_timeout_ms) */
    cfg->cache_bytes = 128u << 20;
}

struct group *tsdb_group_new(struct tsdb *db, uint64_t id, const char *job, const char *inst)
{
    struct group *g = xcalloc(1, sizeof(*g));
    g->id = id;
    g->raw.first_cap = db->cfg.head_rows;
    g->job = xstrdup(job);
    g->instance = xstrdup(inst);
    group_index(db, g);
    return g;
}

void tsdb_add_member(struct group *g, struct series *s)
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
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct group *g = tsdb_group_new(db, (uint64_t)sqlite3_column_int64(st, 0),
                                         (const char *)sqlite3_column_text(st, 1),
                                         (const char *)sqlite3_column_text(st, 2));
        if (g->id >= db->next_group_id)
            db->next_group_id = g->id + 1;
    }
    sqlite3_finalize(st);
    st = db_prepare(db->w, "SELECT s.id, s.key, g.job, g.instance FROM series s JOIN groups g"
                           " ON g.id = s.grp");
    if (!st)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
        if (id >= db->next_series_id)
            db->next_series_id = id + 1; /* even when skipped: ids are never reused */
        struct series *s = tsdb_series_make((const char *)sqlite3_column_text(st, 1),
                                            (size_t)sqlite3_column_bytes(st, 1));
        if (!s) {
            log_warn("tsdb: series %llu has an unreadable key; skipped", (unsigned long long)id);
            continue;
        }
        s->id = id;
        s->grp = tsdb_group_find(db, (const char *)sqlite3_column_text(st, 2),
                            (const char *)sqlite3_column_text(st, 3));
        if (!s->grp) {
            tsdb_series_free(s);
            continue;
        }
        tsdb_add_member(s->grp, s);
        tsdb_series_index(db, s);
    }
    sqlite3_finalize(st);
    st = db_prepare(db->w,
                    "SELECT grp, min(t_min), max(t_max) FROM chunks WHERE tier = 0 GROUP BY grp");
    if (!st)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct group *g = tsdb_group_by_id(db, (uint64_t)sqlite3_column_int64(st, 0));
        if (!g)
            continue;
        g->first_ts = sqlite3_column_int64(st, 1);
        g->last_ts = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    return 0;
fail:
    snprintf(err, errlen, "%s: cannot load the series index: %s", db->path, sqlite3_errmsg(db->w));
    return -1;
}

struct tsdb *tsdb_open(const char *path, const struct tsdb_config *cfg, char *err, size_t errlen)
{
    struct tsdb *db = xcalloc(1, sizeof(*db));

    db->path = xstrdup(path);
    db->cfg = *cfg;
    if (!db->cfg.head_rows)
        db->cfg.head_rows = 120;
    db->cache = tvcache_new(db->cfg.cache_bytes);
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
    db->next_series_id = db->next_group_id = 1;
    /* OR IGNORE: a log replayed onto a database that has the row already
     * must not stop every later commit */
    db->ins_series =
        db_prepare(db->w, "INSERT OR IGNORE INTO series (id, key, grp) VALUES (?, ?, ?)");
    db->ins_group =
        db_prepare(db->w, "INSERT OR IGNORE INTO groups (id, job, instance) VALUES (?, ?, ?)");
    db->ins_chunk = db_prepare(db->w, "INSERT INTO chunks (grp, tier, t_min, t_max, nrows, ncols,"
                                      " data) VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!db->ins_series || !db->ins_group || !db->ins_chunk) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db->w));
        goto fail;
    }
    if (load(db, err, errlen) < 0 || open_log(db, err, errlen) < 0)
        goto fail;
    /* two warm readers, so the first queries open nothing */
    for (int i = 0; i < 2; i++) {
        struct reader *r = tsdb_reader_open(db);
        if (r)
            tsdb_reader_put(db, r);
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
                    tsdb_acc_emit(db, s, t);
        }
        tsdb_seal_all(db);
        pthread_rwlock_unlock(&db->lock);
        int rc = tsdb_commit(db, now_wall_ms());
        /* all in the database: the log is no longer needed */
        slog_close(db->log, rc == 0 && !db->npend && !db->nnew_series && !db->nnew_groups);
    } else {
        slog_close(db->log, 0);
    }
    for (size_t i = 0; i < db->by_id_cap; i++)
        if (db->by_id[i])
            tsdb_series_free(db->by_id[i]);
    for (size_t i = 0; i < db->ngroups; i++) {
        struct group *g = db->groups[i];
        tsdb_head_free(&g->raw);
        for (int t = 0; t < TSDB_TIERS; t++)
            free(g->roll[t].v);
        tsdb_head_free(&g->ooo);
        tsdb_head_free(&g->prev_raw);
        free(g->members);
        free(g->job);
        free(g->instance);
        free(g);
    }
    for (size_t i = 0; i < db->npend; i++)
        buf_free(&db->pend[i].data);
    free(db->pend);
    tvcache_free(db->cache);
    free(db->new_series);
    free(db->new_groups);
    free(db->grp_by_id);
    free(db->groups);
    free(db->ghash);
    free(db->shash);
    free(db->by_id);
    sqlite3_finalize(db->ins_series);
    sqlite3_finalize(db->ins_group);
    sqlite3_finalize(db->ins_chunk);
    /* readers first: the writer, closing last, checkpoints the WAL away */
    for (size_t i = 0; i < db->nidle; i++)
        tsdb_reader_free(db->idle[i]);
    free(db->idle);
    sqlite3_close(db->w);
    pthread_mutex_destroy(&db->readers_lock);
    pthread_rwlock_destroy(&db->lock);
    free(db->path);
    free(db);
}

/* ---- writing ---- */

int64_t tsdb_last_ts(struct tsdb *db, const char *job, const char *instance)
{
    int64_t t = 0;
    pthread_rwlock_rdlock(&db->lock);
    struct group *g = tsdb_group_find(db, job, instance);
    if (g)
        t = g->last_ts;
    pthread_rwlock_unlock(&db->lock);
    return t;
}

/* ---- reading ---- */

uint64_t tsdb_series_count(struct tsdb *db)
{
    pthread_rwlock_rdlock(&db->lock);
    uint64_t n = db->nseries;
    pthread_rwlock_unlock(&db->lock);
    return n;
}

void tsdb_stats(struct tsdb *db, struct tsdb_stats *st)
{
    uint64_t h = 0, hb = 0, sb = 0;
    /* a group at a time: the writer waits for one group's sums at most */
    for (size_t i = 0;; i++) {
        pthread_rwlock_rdlock(&db->lock);
        int done = i >= db->ngroups;
        if (!done) {
            const struct group *g = db->groups[i];
            h += g->raw.filled;
            hb += tsdb_head_bytes(&g->raw) + tsdb_head_bytes(&g->prev_raw) +
                  tsdb_head_bytes(&g->ooo);
            for (int t = 0; t < TSDB_TIERS; t++)
                hb += g->roll[t].cap * sizeof(struct rrec);
            for (size_t m = 0; m < g->nmembers; m++)
                sb += sizeof(struct series) + serieskey_packed_bytes(g->members[m]->lab) +
                      2 * sizeof(void *);
        }
        pthread_rwlock_unlock(&db->lock);
        if (done)
            break;
    }
    pthread_rwlock_rdlock(&db->lock);
    *st = db->st;
    st->series = db->nseries;
    st->head_samples = h;
    st->head_bytes = hb;
    st->series_bytes = sb;
    if (db->log) {
        struct slog_stats ls;
        slog_stats(db->log, &ls);
        st->log_bytes = ls.bytes;
        st->log_write_errors = ls.write_errors;
    }
    pthread_rwlock_unlock(&db->lock);
    if (db->cache) { /* its own lock */
        size_t entries, bytes;
        tvcache_stats(db->cache, &entries, &bytes, &st->cache_hits, &st->cache_misses);
        st->cache_entries = entries;
        st->cache_bytes = bytes;
    }
}

void tsdb_set_retention(struct tsdb *db, int tier, int64_t ms)
{
    if (tier >= 0 && tier < TSDB_TIERS && ms > 0)
        __atomic_store_n(&db->cfg.retention_ms[tier], ms, __ATOMIC_RELAXED);
}
