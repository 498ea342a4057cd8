/* The time-series store: a series index (canonical key -> id), in-memory
 * heads per scrape group (job + instance) whose rows share one timestamp,
 * sealed into compressed chunks (chunk.h) kept as BLOBs in SQLite, with
 * roll-ups of 1 minute and 1 hour (min, max, sum, count, last, counter
 * increase) and a retention per tier.
 *
 * Threads: one writer calls tsdb_append*, tsdb_scrape_done and tsdb_commit;
 * any thread may call the read functions. A read-write lock guards the
 * in-memory state; readers use their own SQLite connection each. */
#ifndef GF_TSDB_H
#define GF_TSDB_H

#include <stddef.h>
#include <stdint.h>

#include "../../lib/buf.h"
#include "../../lib/promparse.h"
#include "chunk.h"
#include "selector.h"

enum tsdb_tier { TSDB_RAW = 0, TSDB_1M = 1, TSDB_1H = 2, TSDB_TIERS = 3 };

struct tsdb_config {
    int64_t retention_ms[TSDB_TIERS]; /* 0: kept for ever (the server sets them) */
    size_t head_rows;                 /* raw rows per chunk, default 120 */
    int zstd_level;                   /* default 9 */
    int64_t max_head_age_ms;          /* seal heads older than this, default 5 min */
    int64_t max_future_ms;            /* samples further ahead of the clock are
                                       * refused and counted; 0: none refused */
    int64_t query_budget_ms;          /* a query's time over the series index;
                                       * 0: unbounded */
    size_t cache_bytes;               /* decoded chunks kept for queries (tvcache.h),
                                       * default 128 MiB; 0: none */
};

void tsdb_config_defaults(struct tsdb_config *cfg);

struct tsdb;

/* Opens or creates the store at path. NULL with err on failure. */
struct tsdb *tsdb_open(const char *path, const struct tsdb_config *cfg, char *err, size_t errlen);

/* Seals every head (nothing held in memory is lost) and closes. */
void tsdb_close(struct tsdb *db);

/* Appends the canonical key of a sample to out: name{labels sorted by
 * name}, values escaped as in the exposition format, with extra labels
 * (which win over the sample's own of the same name) added, empty values
 * and any label named __name__ left out (the name is the series' own). Returns 0, or -1 (out unchanged) when a label value is not
 * valid UTF-8 or the key is longer than 16 KiB. */
int tsdb_key(const char *name, size_t name_len, const struct prom_label *labels, size_t nlabels,
             const struct prom_label *extra, size_t nextra, struct buf *out);

struct tsdb_sample {
    const char *key; /* canonical (tsdb_key) */
    size_t key_len;
    int64_t ts_ms;
    double value;
};

/* Appends samples (writer thread). Samples of one series may come in any
 * order; those older than a group's head go to a side head. Returns the
 * number of samples stored; a key that is not canonical, and a sample more
 * than max_future_ms ahead of the clock (one such sample would send every
 * later one of its group to the out-of-order path), are skipped. */
size_t tsdb_append(struct tsdb *db, const struct tsdb_sample *s, size_t n);

/* After a scrape of job/instance at ts_ms: series of that group absent from
 * it get a stale marker, as Prometheus does. */
void tsdb_scrape_done(struct tsdb *db, const char *job, const char *instance, int64_t ts_ms);

/* Seals full or old heads and writes chunks in one transaction; applies
 * retention now and then. Returns 0, or -1 when the write failed (disk full:
 * the chunks stay in memory and are retried). */
int tsdb_commit(struct tsdb *db, int64_t now_ms);

/* Seals every head (raw, out of order, roll-up buckets so far) and commits,
 * so the database file holds every sample stored: for a backup. Any thread
 * (it takes the write lock). 0, or -1 when the commit failed. */
int tsdb_checkpoint(struct tsdb *db, int64_t now_ms);

/* Newest sample time of job/instance (memory, else stored chunks), 0 if
 * none. */
int64_t tsdb_last_ts(struct tsdb *db, const char *job, const char *instance);

/* ---- reading (any thread) ---- */

struct tsdb_series_info {
    uint64_t id;
    char *key; /* malloc'd */
};

/* What a query got when it spent its budget (query_budget_ms). */
#define TSDB_BUDGET ((size_t)-1)

/* Series matching sel (at most max; 0 = no limit). Caller frees each key and
 * the array. TSDB_BUDGET (nothing returned) when the query budget ran out.
 * Like every query here, it holds the store's lock for a slice of series at
 * a time, never long enough to stall the writer. */
size_t tsdb_select(struct tsdb *db, const struct selector *sel, size_t max,
                   struct tsdb_series_info **out);

/* Label names of the series matching sel (NULL: all), or the values of one
 * label when label is not NULL, as a JSON array appended to out: of the
 * series whose group has raw samples between start and end (INT64_MIN and
 * INT64_MAX: all), a group's first and newest sample bounding it, as
 * coarse as Prometheus's blocks are. 0, or -1 when the query budget ran
 * out. */
int tsdb_labels_json(struct tsdb *db, const struct selector *sel, const char *label,
                     int64_t start, int64_t end, struct buf *out);

struct tsdb_point {
    int64_t t;
    double min, max, sum, count, last, inc; /* raw: count 1, inc from the previous sample */
};

/* Points of one series in [start, end] from tier (raw samples, or roll-up
 * buckets by their start time), oldest first, stale markers left out (NaN
 * samples kept). *out is malloc'd. Returns the count, or -1 on a storage error. */
long tsdb_points(struct tsdb *db, uint64_t series_id, enum tsdb_tier tier, int64_t start,
                 int64_t end, struct tsdb_point **out);

/* A raw sample: 16 bytes, for reads of many samples (PromQL). */
struct tsdb_tv {
    int64_t t;
    double v; /* a stale marker is kept as one (tsdb_is_stale) */
};

/* Whether a value is Prometheus's stale marker (inline: PromQL tests
 * every step's sample). */
static inline int tsdb_is_stale(double v)
{
    return chunk_is_stale(v);
}

/* Raw samples of n series in [start, end], stale markers kept, oldest
 * first: out[i] (malloc'd, NULL when empty) and counts[i] for ids[i]. Each
 * chunk of a group is read and decoded once for all of its series asked
 * (a dashboard asks for the 8 GPUs of a host together). 0, or -1 on a
 * storage error (nothing returned). */
int tsdb_samples_many(struct tsdb *db, const uint64_t *ids, size_t n, int64_t start, int64_t end,
                      struct tsdb_tv **out, long *counts);

/* The same read handing each series' samples to each(arg, i, pts, n) for
 * ids[i] (only those with samples; group by group, not in ids' order),
 * pts valid during the call only: no array per series is kept, so a read
 * of thousands of series needs the memory of one group's. No lock is held
 * during a call; a call answering nonzero stops the read. 0, -1 on a
 * storage error, or that nonzero answer (calls made before either stand). */
typedef int (*tsdb_each_fn)(void *arg, size_t i, const struct tsdb_tv *pts, long n);
int tsdb_samples_each(struct tsdb *db, const uint64_t *ids, size_t n, int64_t start, int64_t end,
                      tsdb_each_fn each, void *arg);

/* Raw points of one series in [start, end] from memory alone, when the
 * in-memory head reaches back to start (*covered = 1); otherwise nothing
 * (*covered = 0: ask tsdb_points). Same form and ownership as tsdb_points.
 * For frequent reads of recent windows (alert rules) without SQLite. */
long tsdb_recent(struct tsdb *db, uint64_t series_id, int64_t start, int64_t end,
                 struct tsdb_point **out, int *covered);

/* The latest sample of a series: 0; 1 when it is a stale marker (the
 * series ended then: its target went away or it left its exporter); -1
 * when there is none. */
int tsdb_last(struct tsdb *db, uint64_t series_id, int64_t *ts_ms, double *value);

/* Appends {"metric":{labels},"value":[ts_seconds,"v"]} objects for the
 * latest sample of every series matching sel (stale series left out),
 * comma-separated, to out. Returns the count, or -1 when the query budget
 * ran out. */
long tsdb_latest_json(struct tsdb *db, const struct selector *sel, struct buf *out);

/* Appends a series' labels as a JSON object ({"__name__":..., ...}). */
void tsdb_key_to_json(const char *key, struct buf *out);

struct tsdb_stats {
    uint64_t series, samples_appended, chunks_written, chunk_bytes, write_errors;
    uint64_t future_refused; /* samples past max_future_ms */
    uint64_t head_samples;
    /* memory: the heads (open, last sealed, out-of-order, roll-ups) and the
     * series (their index entries and packed labels), in bytes */
    uint64_t head_bytes, series_bytes;
    uint64_t log_bytes, log_write_errors; /* the sample log: on disk, records lost */
    /* the queries' cache of decoded chunk columns (tvcache) */
    uint64_t cache_entries, cache_bytes, cache_hits, cache_misses;
    char last_error[160];
};
void tsdb_stats(struct tsdb *db, struct tsdb_stats *st);

/* The labels of the series of key (packed, serieskey.h), or NULL when the
 * store has none yet: for a cache outside the store that would otherwise
 * keep the key. They stay valid and unchanged until tsdb_close (series
 * are never removed while it is open). Any thread. */
const char *tsdb_series_labels(struct tsdb *db, const char *key, size_t len);

/* Series in the store (they are never removed while it is open, so a
 * selection stays right while this is unchanged). */
uint64_t tsdb_series_count(struct tsdb *db);

/* Changes how long a tier keeps data (the writer prunes at its next pass).
 * Any thread. */
void tsdb_set_retention(struct tsdb *db, int tier, int64_t ms);

#endif
