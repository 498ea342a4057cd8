/* What the files of the store share (tsdb.c: open, close, the series
 * index; tsdb_write.c: heads, sealing, roll-ups, commits; tsdb_read.c:
 * queries). Not for other modules: tsdb.h is the interface. */
#ifndef GF_TSDB_IMPL_H
#define GF_TSDB_IMPL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "hcol.h"
#include "samplelog.h"
#include "serieskey.h"
#include "tsdb.h"
#include "tvcache.h"

#define NSTAT 6 /* roll-up columns per series: min max sum count last inc */
enum { ST_MIN, ST_MAX, ST_SUM, ST_COUNT, ST_LAST, ST_INC };
extern const int64_t TIER_RES_MS[TSDB_TIERS];
extern const size_t TIER_ROWS[TSDB_TIERS];      /* rows of a compacted roll-up chunk */
extern const size_t TIER_SEAL_ROWS[TSDB_TIERS]; /* rows a roll-up head is sealed at */
#define MAX_KEY 16384
#define READERS_KEPT 8

struct acc {
    int64_t bucket; /* ACC_NONE: no bucket open */
    double st[NSTAT];
};

#define ACC_NONE INT64_MIN
#define PREV_NONE INT64_MIN /* series.prev_ts: no sample to count an increase from */

/* A series in memory: its labels once (the key is written from them when
 * needed), where it stands, and its open roll-up buckets. Kept small: a
 * fleet has hundreds of thousands (issue 18, memory per series). */
struct series {
    uint64_t id;
    uint64_t hash;        /* of its key: its bucket in the index */
    struct group *grp;
    int64_t last_ts;
    double last_value;
    int64_t prev_ts; /* for the increase of counters (PREV_NONE: none) */
    double prev_value;
    struct acc acc[TSDB_TIERS - 1]; /* open buckets of the roll-up tiers: SACC */
    struct series *hnext;
    uint32_t raw_col; /* this series' column in its group's raw head, while that holds its id */
    char lab[];       /* name and labels, packed (serieskey.h), in the same
                       * allocation: the key is written from them when wanted */
};

/* The open roll-up bucket of series s in tier (TSDB_1M or later). */
#define SACC(s, tier) (&(s)->acc[(tier) - 1])

struct head {
    size_t nrows, cap, ncols, colcap;
    size_t filled; /* cells holding a value (the rest are absent) */
    size_t first_cap; /* rows allocated at first (0: 16): what the head
                       * holds when sealed, so none go unused */
    int64_t *ts;
    uint64_t *ids;
    struct hcol *cols; /* ncols columns of nrows cells (hcol.c) */
};

/* A closed roll-up bucket of one series, waiting with the others of its
 * group for their chunk. Roll-ups are kept as records, not as a head of
 * six columns a series: those cost 400 bytes a series for a few rows
 * (issue 18, memory per series). */
struct rrec {
    uint64_t id;
    int64_t t;
    double st[NSTAT];
};

struct rollup {
    struct rrec *v;
    size_t n, cap;
    size_t nts;     /* bucket times among them (newer than the one before) */
    int64_t last_t; /* the newest */
};

struct group {
    uint64_t id;
    char *job, *instance;
    struct head raw;                /* the open raw head */
    struct rollup roll[TSDB_TIERS]; /* by tier; [TSDB_RAW] unused */
    struct head ooo;
    struct head prev_raw; /* the raw head sealed last (moved, not copied), kept
                           * for recent reads */
    int64_t head_opened_ms;
    uint64_t raw_seg, ooo_seg; /* sample log segments the heads opened in */
    int64_t compacted_ms[TSDB_TIERS]; /* roll-up windows before this are merged */
    int64_t first_ts, last_ts; /* its oldest raw sample (at open: its oldest chunk's) and newest */
    int64_t ooo_newest; /* the newest sample that went to the out-of-order head */
    struct series **members;
    size_t nmembers, cap;
    struct group *hnext;
};

struct pending {
    uint64_t grp;
    int tier;
    int64_t tmin, tmax;
    size_t rows, cols;
    uint64_t seg; /* the oldest sample log segment it holds samples of */
    struct buf data;
};

struct tsdb {
    char *path;
    struct tsdb_config cfg;
    struct tvcache *cache; /* decoded chunk columns for queries */
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
    /* Ids are given here, not by SQLite, and new series and groups are
     * inserted in the commit of the chunks that name them: a failed commit
     * (disk full) keeps both in memory for the next one, and no chunk can
     * name a series the database lacks (issue 18, defect 17). */
    uint64_t next_series_id, next_group_id;
    struct series **new_series;
    size_t nnew_series, new_series_cap;
    struct group **new_groups;
    size_t nnew_groups, new_groups_cap;
    struct group **grp_by_id;
    size_t grp_by_id_cap;
    struct slog *log;  /* NULL: no sample log (its directory failed) */
    int replaying;     /* seals come from the log's records, not from fullness */
    int log_failing;   /* a flush failed in the last minute */
    uint64_t log_failures;
    int64_t log_failed_ms, log_failure_logged_ms;
    int64_t last_retention_ms;
    int64_t last_compact_ms;
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

/* ---- tsdb.c: the index (writer thread, or the lock held) ---- */
struct series *tsdb_series_find(struct tsdb *db, const char *key, size_t len);
void tsdb_series_index(struct tsdb *db, struct series *s);
struct group *tsdb_group_find(struct tsdb *db, const char *job, const char *instance);
struct group *tsdb_group_new(struct tsdb *db, uint64_t id, const char *job, const char *inst);
struct group *tsdb_group_by_id(struct tsdb *db, uint64_t id);
void tsdb_add_member(struct group *g, struct series *s);
/* A new series (id 0, no group) of a key: its labels and hash; NULL when
 * the key does not parse. Free with tsdb_series_free. */
struct series *tsdb_series_make(const char *key, size_t len);
/* Appends the key of s. */
void tsdb_series_key(const struct series *s, struct buf *out);
const char *tsdb_label_of(const struct series *s, const char *name);
/* label_of for sel_matches */
const char *tsdb_label_get(void *arg, const char *name);
void tsdb_series_free(struct series *s);
void tsdb_series_json(const struct series *s, struct buf *out);

/* ---- tsdb_write.c ---- */
void tsdb_head_free(struct head *h);
/* The bytes h holds (its columns and their arrays). */
size_t tsdb_head_bytes(const struct head *h);
/* Column c of h decoded into out (h->nrows cells). */
void tsdb_head_column(const struct head *h, size_t c, double *out);
/* The column of series (or roll-up statistic) id in h, or -1. */
long tsdb_head_find(const struct head *h, uint64_t id);
/* Encodes h (the raw head or the out-of-order one) as pending chunks of
 * group g and empties it. */
void tsdb_seal(struct tsdb *db, struct group *g, struct head *h);
/* The same for g's closed roll-up buckets of tier. */
void tsdb_seal_rollup(struct tsdb *db, struct group *g, int tier);
void tsdb_seal_all(struct tsdb *db);
/* Replays the sample log into memory (at open). Number of samples, or -1
 * with err. */
long tsdb_replay(struct tsdb *db, char *err, size_t errlen);
/* Closes s's open roll-up bucket of tier into its head. */
void tsdb_acc_emit(struct tsdb *db, struct series *s, int tier);

/* ---- tsdb_compact.c ---- */
/* Merges the small roll-up chunks of complete windows, for at most
 * budget_ms. Writer thread, without the lock (SQLite only). */
void tsdb_compact(struct tsdb *db, int64_t now_ms, int64_t budget_ms);

/* ---- tsdb_read.c: pooled read connections ---- */
struct reader *tsdb_reader_open(struct tsdb *db);
struct reader *tsdb_reader_get(struct tsdb *db);
void tsdb_reader_put(struct tsdb *db, struct reader *r);
void tsdb_reader_free(struct reader *r);

#endif
