/* Compressed chunks of time series. A chunk holds the rows of one scrape
 * group: timestamps stored once, one column of values per series. Columns of
 * decimal values (integers, fixed decimals) become integer deltas or
 * delta-of-deltas; others XOR with the previous value; zstd on top. */
#ifndef GF_CHUNK_H
#define GF_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../lib/buf.h"

/* No sample for this series at this row (a NaN payload never produced by
 * arithmetic). Prometheus's stale marker is a different NaN and is kept. */
#define CHUNK_ABSENT_BITS 0x7ff8000000000de0ULL
#define STALE_NAN_BITS 0x7ff0000000000002ULL

/* Limits a decoder enforces on untrusted input. */
#define CHUNK_MAX_ROWS (1u << 20)
#define CHUNK_MAX_COLS (1u << 20)
#define CHUNK_MAX_VALUES (1u << 22)

struct chunk_data {
    size_t nrows, ncols;
    int64_t *ts;       /* nrows, ascending */
    uint64_t *series;  /* ncols series ids */
    double *values;    /* column-major: values[col * nrows + row] */
};

/* A double's bits and back (the codecs XOR and compare them). */
static inline uint64_t chunk_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static inline double chunk_of_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

/* Inline: readers test every sample. */
static inline int chunk_is_absent(double v)
{
    return chunk_bits(v) == CHUNK_ABSENT_BITS;
}

static inline int chunk_is_stale(double v)
{
    return chunk_bits(v) == STALE_NAN_BITS;
}

double chunk_absent(void);
double chunk_stale(void);

/* Encodes in (not modified) and appends to out. Lossless: every value,
 * NaN payloads included, decodes bit for bit. Returns 0 or -1 (zstd error). */
int chunk_encode(const struct chunk_data *in, int zstd_level, struct buf *out);

/* Decodes a chunk, allocating out's arrays (free with chunk_data_free).
 * Returns 0, or -1 with a reason in err for malformed or oversized input. */
int chunk_decode(const void *data, size_t len, struct chunk_data *out, char *err, size_t errlen);

/* As chunk_decode, but only the columns whose series id want() accepts are
 * decoded (the others are skipped unread); out holds those columns. */
int chunk_decode_some(const void *data, size_t len, int (*want)(void *arg, uint64_t series),
                      void *arg, struct chunk_data *out, char *err, size_t errlen);

void chunk_data_free(struct chunk_data *c);

#endif
