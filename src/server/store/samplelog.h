/* The store's sample log (a write-ahead log): every new group and series,
 * every sample, every head sealed and every commit, in the order the store
 * applied them, appended to numbered segment files in a directory. Heads
 * live in memory for up to 5 minutes; after a crash (kill -9) the store
 * replays the log and loses at most the batch being written, as
 * Prometheus's WAL does. Seals and commits are logged so a replay
 * rebuilds the heads exactly as they were and drops what was committed.
 *
 * Not thread-safe: the store calls it under its write lock. */
#ifndef GF_SAMPLELOG_H
#define GF_SAMPLELOG_H

#include <stddef.h>
#include <stdint.h>

/* What a seal record names: a tier's head (0..2) or the out-of-order head. */
#define SLOG_OOO 3

struct slog;

/* What a replay hands back, record by record, in the order written. */
struct slog_ops {
    void (*group)(void *arg, uint64_t id, const char *job, const char *instance);
    void (*series)(void *arg, uint64_t id, uint64_t group_id, const char *key, size_t key_len);
    void (*sample)(void *arg, uint64_t id, int64_t ts_ms, double value);
    void (*seal)(void *arg, uint64_t group_id, int which);
    void (*commit)(void *arg);
};

struct slog_stats {
    uint64_t segments, bytes;   /* on disk now */
    uint64_t write_errors;      /* records lost to a failed write */
    uint64_t replayed_records, replayed_samples;
    uint64_t torn_bytes;        /* unreadable bytes skipped by the replay */
};

/* Opens (creating) the log in dir; nothing is written until slog_start.
 * NULL with err on failure. */
struct slog *slog_open(const char *dir, char *err, size_t errlen);

/* Replays every segment, oldest first. A torn or damaged record ends its
 * segment (counted in torn_bytes); the next segment is still read. 0, or -1
 * with err when a segment cannot be read at all. */
int slog_replay(struct slog *l, const struct slog_ops *ops, void *arg, char *err, size_t errlen);

/* Starts a new segment after the newest one. 0, or -1 with err. */
int slog_start(struct slog *l, char *err, size_t errlen);

/* The segment records go to now (heads remember the one they opened in). */
uint64_t slog_segment(const struct slog *l);

/* Records, buffered until slog_flush. */
void slog_group(struct slog *l, uint64_t id, const char *job, const char *instance);
void slog_series(struct slog *l, uint64_t id, uint64_t group_id, const char *key, size_t key_len);
void slog_sample(struct slog *l, uint64_t id, int64_t ts_ms, double value);
void slog_seal(struct slog *l, uint64_t group_id, int which);
void slog_commit(struct slog *l);

/* Writes what is buffered (one write(2)). 0, or -1 (errno set; the records
 * are dropped and counted: the store goes on from memory). */
int slog_flush(struct slog *l);

/* Starts a new segment when the current one is older than max_age_ms or
 * larger than max_bytes; the old one is synced by slog_sync_closed. */
void slog_maybe_rotate(struct slog *l, int64_t max_age_ms, uint64_t max_bytes);

/* fdatasync of the segment rotation closed last, if any: without the
 * store's lock (any one thread). */
void slog_sync_closed(struct slog *l);

/* Deletes the segments numbered below seq (their records are all in
 * committed chunks). */
void slog_drop_before(struct slog *l, uint64_t seq);

void slog_stats(const struct slog *l, struct slog_stats *st);

/* Closes; with drop_all (everything committed) every segment is deleted. */
void slog_close(struct slog *l, int drop_all);

/* Decodes one segment's bytes (for the replay and the fuzz target).
 * Returns the bytes read up to the first torn or damaged record. */
size_t slog_decode(const unsigned char *data, size_t len, const struct slog_ops *ops, void *arg,
                   uint64_t *records, uint64_t *samples);

/* Decodes one record's body, its checksum already verified (for the fuzz
 * target, whose mutations would rarely pass a checksum). 0, or -1 when it
 * is malformed (what it handed on before stays handed on). */
int slog_decode_record(int type, const unsigned char *p, size_t len, const struct slog_ops *ops,
                       void *arg, uint64_t *samples);

#endif
