/* Compaction of roll-up chunks: roll-up heads are sealed small (5 rows of
 * 1 minute, 1 row of 1 hour) so memory holds minutes of them, not hours;
 * once a window (an hour of 1-minute rows, a day of 1-hour rows) is
 * complete, its small chunks of a group are merged into one, as they would
 * have been sealed from a head held the whole window. One transaction per
 * window: a crash leaves either the small chunks or the merged one. */
#include "tsdb_impl.h"

#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "chunk.h"
#include "db.h"

struct parts {
    sqlite3_int64 *ids;
    struct chunk_data *cd;
    size_t n, cap;
};

static void parts_free(struct parts *p)
{
    for (size_t i = 0; i < p->n; i++)
        chunk_data_free(&p->cd[i]);
    free(p->ids);
    free(p->cd);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorted, without repeats; returns the new count. */
static size_t uniq(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    char *a = v;
    size_t w = 0;
    if (n)
        qsort(a, n, size, cmp);
    for (size_t i = 0; i < n; i++)
        if (!w || cmp(a + (w - 1) * size, a + i * size))
            memmove(a + w++ * size, a + i * size, size);
    return w;
}

/* The union of the parts' rows and columns; a later part wins a cell. */
static void merge(const struct parts *p, struct chunk_data *out)
{
    size_t nts = 0, nids = 0;
    for (size_t i = 0; i < p->n; i++) {
        nts += p->cd[i].nrows;
        nids += p->cd[i].ncols;
    }
    out->ts = xmalloc(nts * sizeof(*out->ts));
    out->series = xmalloc(nids * sizeof(*out->series));
    nts = nids = 0;
    for (size_t i = 0; i < p->n; i++) {
        memcpy(out->ts + nts, p->cd[i].ts, p->cd[i].nrows * sizeof(*out->ts));
        nts += p->cd[i].nrows;
        memcpy(out->series + nids, p->cd[i].series, p->cd[i].ncols * sizeof(*out->series));
        nids += p->cd[i].ncols;
    }
    out->nrows = uniq(out->ts, nts, sizeof(*out->ts), cmp_i64);
    out->ncols = uniq(out->series, nids, sizeof(*out->series), cmp_u64);
    out->values = xmalloc(out->nrows * out->ncols * sizeof(double));
    for (size_t k = 0; k < out->nrows * out->ncols; k++)
        out->values[k] = chunk_absent();
    for (size_t i = 0; i < p->n; i++) {
        const struct chunk_data *c = &p->cd[i];
        for (size_t col = 0; col < c->ncols; col++) {
            /* both are in the union: bsearch finds them */
            const uint64_t *sp = bsearch(&c->series[col], out->series, out->ncols,
                                         sizeof(*out->series), cmp_u64);
            size_t oc = (size_t)(sp - out->series);
            for (size_t r = 0; r < c->nrows; r++) {
                double v = c->values[col * c->nrows + r];
                const int64_t *tp = bsearch(&c->ts[r], out->ts, out->nrows, sizeof(*out->ts), cmp_i64);
                if (!chunk_is_absent(v))
                    out->values[oc * out->nrows + (size_t)(tp - out->ts)] = v;
            }
        }
    }
}

/* Reads the small chunks of one window. */
static int load_window(struct tsdb *db, uint64_t gid, int tier, int64_t w0, int64_t w1,
                       struct parts *p)
{
    sqlite3_stmt *st = db_prepare(db->w, "SELECT id, data FROM chunks WHERE grp = ? AND tier = ?"
                                         " AND t_max >= ? AND t_min < ? AND nrows < ? ORDER BY id");
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)gid);
    sqlite3_bind_int(st, 2, tier);
    sqlite3_bind_int64(st, 3, w0);
    sqlite3_bind_int64(st, 4, w1);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)TIER_ROWS[tier]);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char err[128];
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 16;
            p->ids = xrealloc(p->ids, p->cap * sizeof(*p->ids));
            p->cd = xrealloc(p->cd, p->cap * sizeof(*p->cd));
        }
        if (chunk_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                         &p->cd[p->n], err, sizeof(err)) < 0)
            continue; /* left as it is: reads skip it too */
        p->ids[p->n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Replaces the window's small chunks with their merge. */
static int compact_window(struct tsdb *db, uint64_t gid, int tier, int64_t w0, int64_t w1)
{
    struct parts p = {0};
    struct chunk_data m = {0};
    struct buf blob;
    sqlite3_stmt *del = NULL;
    int rc = -1;

    buf_init(&blob, 0);
    if (load_window(db, gid, tier, w0, w1, &p) < 0)
        goto out;
    if (p.n < 2) {
        rc = 0;
        goto out;
    }
    merge(&p, &m);
    if (m.nrows * m.ncols > CHUNK_MAX_VALUES || chunk_encode(&m, db->cfg.zstd_level, &blob) < 0) {
        rc = 0; /* too large to merge: the small ones stay, readable */
        goto out;
    }
    del = db_prepare(db->w, "DELETE FROM chunks WHERE id = ?");
    if (!del || db_exec(db->w, "BEGIN IMMEDIATE") < 0)
        goto out;
    sqlite3_reset(db->ins_chunk);
    sqlite3_bind_int64(db->ins_chunk, 1, (sqlite3_int64)gid);
    sqlite3_bind_int(db->ins_chunk, 2, tier);
    sqlite3_bind_int64(db->ins_chunk, 3, m.ts[0]);
    sqlite3_bind_int64(db->ins_chunk, 4, m.ts[m.nrows - 1]);
    sqlite3_bind_int64(db->ins_chunk, 5, (sqlite3_int64)m.nrows);
    sqlite3_bind_int64(db->ins_chunk, 6, (sqlite3_int64)m.ncols);
    sqlite3_bind_blob(db->ins_chunk, 7, blob.data, (int)blob.len, SQLITE_STATIC);
    int ok = sqlite3_step(db->ins_chunk) == SQLITE_DONE;
    for (size_t i = 0; ok && i < p.n; i++) {
        sqlite3_reset(del);
        sqlite3_bind_int64(del, 1, p.ids[i]);
        ok = sqlite3_step(del) == SQLITE_DONE;
    }
    if (!ok || db_exec(db->w, "COMMIT") < 0) {
        db_exec(db->w, "ROLLBACK");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(del);
    buf_free(&blob);
    chunk_data_free(&m);
    parts_free(&p);
    return rc;
}

/* The start of the oldest window of g holding small chunks that ended
 * before limit; 0, or -1 when there is none. */
static int next_window(struct tsdb *db, struct group *g, int tier, int64_t limit, int64_t *w0)
{
    int64_t span = TIER_RES_MS[tier] * (int64_t)TIER_ROWS[tier];
    sqlite3_stmt *st = db_prepare(db->w, "SELECT min(t_min) FROM chunks WHERE grp = ? AND tier = ?"
                                         " AND t_max >= ?3 AND t_min >= ?3 AND t_max < ?4"
                                         " AND nrows < ?5");
    int rc = -1;

    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)g->id);
    sqlite3_bind_int(st, 2, tier);
    sqlite3_bind_int64(st, 3, g->compacted_ms[tier]); /* t_max too: the index's range */
    sqlite3_bind_int64(st, 4, limit);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)TIER_ROWS[tier]);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        int64_t t = sqlite3_column_int64(st, 0);
        *w0 = t - ((t % span) + span) % span;
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

void tsdb_compact(struct tsdb *db, int64_t now_ms, int64_t budget_ms)
{
    int64_t t0 = now_mono_ns(), deadline = t0 + budget_ms * 1000000;
    size_t merged = 0;

    for (int tier = 1; tier < TSDB_TIERS; tier++) {
        int64_t span = TIER_RES_MS[tier] * (int64_t)TIER_ROWS[tier];
        /* a window is complete once its last bucket is closed and sealed:
         * the roll-up head of a quiet series can wait a seal row longer */
        int64_t limit = now_ms - 2 * TIER_RES_MS[tier] * (int64_t)(TIER_SEAL_ROWS[tier] + 1);
        limit -= ((limit % span) + span) % span;
        for (size_t i = 0; i < db->ngroups; i++) {
            struct group *g = db->groups[i];
            int64_t w0;
            while (g->compacted_ms[tier] < limit && next_window(db, g, tier, limit, &w0) == 0) {
                if (w0 + span > limit)
                    break;
                if (compact_window(db, g->id, tier, w0, w0 + span) < 0) {
                    log_warn("tsdb: compacting roll-ups of %s/%s failed: %s", g->job, g->instance,
                             sqlite3_errmsg(db->w));
                    return;
                }
                g->compacted_ms[tier] = w0 + span;
                merged++;
                if (now_mono_ns() > deadline)
                    goto done;
            }
        }
    }
done:
    if (merged)
        log_debug("tsdb: compacted %zu roll-up windows in %lld ms", merged,
                  (long long)((now_mono_ns() - t0) / 1000000));
}
