/* Chunk codec. Layout (after the 4-byte magic, one zstd frame):
 *   varint nrows, varint ncols
 *   timestamps: zigzag first, zigzag first delta, then zigzag delta-of-deltas
 *   series ids: zigzag deltas from the previous id
 *   per column: its length in bytes (so a reader can skip it), a type byte,
 *   then
 *     0 all absent
 *     1 decimal: zigzag exponent, mode (1 delta, 2 delta-of-delta), count of
 *       rows holding special values, (row, 8 raw bytes) each, then the
 *       integers of the other rows
 *     2 xor: 8 raw bytes, then a varint XOR with the previous value per row
 *     3 sparse: varint count of runs, the runs' lengths (present rows
 *       first, then absent, alternating), then the rows present as a column
 *       of type 1 or 2. Series of one group that do not share timestamps
 *       (each GPU pushed on its own clock) leave most cells absent, which
 *       type 1 stores as specials of 9 bytes each (issue 18, defect 14).
 * Fixed decimals are how sensors report (temperatures, watts with three
 * decimals, counters), and their deltas are tiny where Gorilla's XOR of the
 * same doubles is not. */
#include "chunk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "../../lib/xalloc.h"
#include "varint.h"

static const char MAGIC[4] = {'G', 'F', 'C', '2'};


double chunk_absent(void)
{
    return chunk_of_bits(CHUNK_ABSENT_BITS);
}

double chunk_stale(void)
{
    return chunk_of_bits(STALE_NAN_BITS);
}

/* ---- decimals ---- */

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define MAX_EXP 15
#define MAX_MANTISSA 9007199254740992.0 /* 2^53: exact in a double */

static double from_decimal(int64_t m, int e)
{
    return e >= 0 ? (double)m * POW10[e] : (double)m / POW10[-e];
}

/* Finds m, e with from_decimal(m, e) bit-identical to v, smallest |e|. */
static int to_decimal(double v, int64_t *m, int *e)
{
    if (!isfinite(v) || (v == 0 && signbit(v)))
        return -1;
    for (int k = 0; k <= MAX_EXP; k++) {
        double scaled = v * POW10[k];
        if (fabs(scaled) >= MAX_MANTISSA)
            break;
        int64_t cand = (int64_t)llround(scaled);
        if (chunk_bits(from_decimal(cand, -k)) == chunk_bits(v)) {
            *m = cand;
            *e = -k;
            return 0;
        }
    }
    for (int k = 1; k <= MAX_EXP; k++) {
        double scaled = v / POW10[k];
        if (fabs(scaled) >= MAX_MANTISSA)
            continue;
        int64_t cand = (int64_t)llround(scaled);
        if (chunk_bits(from_decimal(cand, k)) == chunk_bits(v)) {
            *m = cand;
            *e = k;
            return 0;
        }
    }
    return -1;
}

static int is_special(double v)
{
    return !isfinite(v) || (v == 0 && signbit(v));
}

/* Tries the decimal encoding of one column; returns -1 when it does not
 * apply (then the caller uses XOR). */
static int encode_decimal(const double *col, size_t n, struct buf *out)
{
    int64_t *m = xmalloc((n ? n : 1) * sizeof(*m));
    int *ex = xmalloc((n ? n : 1) * sizeof(*ex));
    size_t nspecial = 0, nint = 0;
    int emin = MAX_EXP + 1, rc = -1;

    for (size_t i = 0; i < n; i++) {
        if (is_special(col[i])) {
            nspecial++;
            continue;
        }
        if (to_decimal(col[i], &m[i], &ex[i]) < 0)
            goto done;
        if (ex[i] < emin)
            emin = ex[i];
        nint++;
    }
    if (nint == 0 || nspecial * 4 > n)
        goto done;
    /* bring every mantissa to the common exponent, exactly */
    int64_t *ints = xmalloc(nint * sizeof(*ints));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_special(col[i]))
            continue;
        int shift = ex[i] - emin;
        int64_t v = m[i];
        for (int s = 0; s < shift; s++) {
            if (v > INT64_MAX / 10 || v < INT64_MIN / 10) {
                free(ints);
                goto done;
            }
            v *= 10;
        }
        if (fabs((double)v) >= MAX_MANTISSA || chunk_bits(from_decimal(v, emin)) != chunk_bits(col[i])) {
            free(ints);
            goto done;
        }
        ints[k++] = v;
    }
    /* pick deltas or delta-of-deltas, whichever is shorter */
    size_t len_delta = 0, len_dod = 0;
    for (size_t i = 0; i < nint; i++) {
        int64_t d = i ? ints[i] - ints[i - 1] : ints[0];
        int64_t dd = i >= 2 ? d - (ints[i - 1] - ints[i - 2]) : d;
        len_delta += varint_len(zigzag(d));
        len_dod += varint_len(zigzag(dd));
    }
    int mode = len_dod < len_delta ? 2 : 1;
    buf_putc(out, 1);
    varint_put(out, zigzag(emin));
    buf_putc(out, (char)mode);
    varint_put(out, nspecial);
    for (size_t i = 0; i < n; i++) {
        if (!is_special(col[i]))
            continue;
        varint_put(out, i);
        u64_put(out, chunk_bits(col[i]));
    }
    for (size_t i = 0; i < nint; i++) {
        int64_t d = i ? ints[i] - ints[i - 1] : ints[0];
        if (mode == 2 && i >= 2)
            d -= ints[i - 1] - ints[i - 2];
        varint_put(out, zigzag(d));
    }
    free(ints);
    rc = 0;
done:
    free(m);
    free(ex);
    return rc;
}

static void encode_dense(const double *col, size_t n, struct buf *out);

/* Type 3, when it is shorter than the absent cells as specials. */
static int encode_sparse(const double *col, size_t n, size_t absent, struct buf *out)
{
    struct buf runs, sparse;
    double *present = xmalloc((n - absent) * sizeof(double));
    size_t np = 0, nruns = 0;

    buf_init(&runs, 0);
    for (size_t i = 0; i < n;) {
        int want_absent = nruns % 2; /* runs alternate, present first */
        size_t j = i;
        for (; j < n && chunk_is_absent(col[j]) == want_absent; j++)
            if (!want_absent)
                present[np++] = col[j];
        varint_put(&runs, j - i);
        nruns++;
        i = j;
    }
    buf_init(&sparse, 0);
    buf_putc(&sparse, 3);
    varint_put(&sparse, nruns);
    buf_append(&sparse, runs.data, runs.len);
    encode_dense(present, np, &sparse);
    int rc = -1;
    struct buf plain;
    buf_init(&plain, 0);
    encode_dense(col, n, &plain);
    if (sparse.len < plain.len) {
        buf_append(out, sparse.data, sparse.len);
        rc = 0;
    }
    buf_free(&plain);
    buf_free(&sparse);
    buf_free(&runs);
    free(present);
    return rc;
}

static void encode_column(const double *col, size_t n, struct buf *out)
{
    size_t absent = 0;

    for (size_t i = 0; i < n; i++)
        absent += chunk_is_absent(col[i]);
    if (absent == n) {
        buf_putc(out, 0);
        return;
    }
    if (absent && encode_sparse(col, n, absent, out) == 0)
        return;
    encode_dense(col, n, out);
}

/* Type 1, else type 2. */
static void encode_dense(const double *col, size_t n, struct buf *out)
{
    if (encode_decimal(col, n, out) == 0)
        return;
    buf_putc(out, 2);
    uint64_t prev = chunk_bits(col[0]);
    u64_put(out, prev);
    for (size_t i = 1; i < n; i++) {
        uint64_t b = chunk_bits(col[i]);
        varint_put(out, b ^ prev);
        prev = b;
    }
}

int chunk_encode(const struct chunk_data *in, int zstd_level, struct buf *out)
{
    struct buf body;
    size_t n = in->nrows;

    buf_init(&body, 0);
    varint_put(&body, n);
    varint_put(&body, in->ncols);
    for (size_t i = 0; i < n; i++) {
        /* unsigned arithmetic: imported timestamps may be anything */
        uint64_t v = (uint64_t)in->ts[i];
        if (i >= 1)
            v -= (uint64_t)in->ts[i - 1];
        if (i >= 2)
            v -= (uint64_t)in->ts[i - 1] - (uint64_t)in->ts[i - 2];
        varint_put(&body, zigzag((int64_t)v));
    }
    uint64_t prev = 0;
    for (size_t c = 0; c < in->ncols; c++) {
        varint_put(&body, zigzag((int64_t)(in->series[c] - prev)));
        prev = in->series[c];
    }
    struct buf col;
    buf_init(&col, 0);
    for (size_t c = 0; c < in->ncols; c++) {
        buf_reset(&col);
        encode_column(in->values + c * n, n, &col);
        varint_put(&body, col.len);
        buf_append(&body, col.data, col.len);
    }
    buf_free(&col);

    size_t bound = ZSTD_compressBound(body.len);
    size_t start = out->len;
    buf_append(out, MAGIC, sizeof(MAGIC));
    char *dst = xmalloc(bound);
    size_t z = ZSTD_compress(dst, bound, body.data, body.len, zstd_level);
    buf_free(&body);
    if (ZSTD_isError(z)) {
        free(dst);
        out->len = start;
        return -1;
    }
    buf_append(out, dst, z);
    free(dst);
    return 0;
}

void chunk_data_free(struct chunk_data *c)
{
    free(c->ts);
    free(c->series);
    free(c->values);
    memset(c, 0, sizeof(*c));
}

static int decode_column(struct vin *r, double *col, size_t n, char *err, size_t errlen);

/* Type 3: the runs, then the present rows as a dense column. */
static int decode_sparse(struct vin *r, double *col, size_t n, char *err, size_t errlen)
{
    uint64_t nruns = varint_get(r), np = 0, total = 0;
    const unsigned char *runs = r->p;

    if (r->bad || nruns > n + 1) { /* + 1: a first run of no present rows */
        snprintf(err, errlen, "bad sparse column");
        return -1;
    }
    for (uint64_t k = 0; k < nruns && !r->bad; k++) {
        uint64_t len = varint_get(r);
        if (len > n - total) {
            r->bad = 1;
            break;
        }
        total += len;
        np += k % 2 ? 0 : len;
    }
    if (r->bad || total != n || r->p >= r->end || (*r->p != 1 && *r->p != 2)) {
        snprintf(err, errlen, "bad sparse column runs");
        return -1;
    }
    double *present = xmalloc((np ? np : 1) * sizeof(double));
    if (decode_column(r, present, np, err, errlen) < 0) {
        free(present);
        return -1;
    }
    struct vin rr = {runs, r->end, 0};
    size_t row = 0, p = 0;
    for (uint64_t k = 0; k < nruns; k++) {
        uint64_t len = varint_get(&rr);
        for (uint64_t i = 0; i < len; i++, row++)
            col[row] = k % 2 ? chunk_absent() : present[p++];
    }
    free(present);
    return 0;
}

static int decode_column(struct vin *r, double *col, size_t n, char *err, size_t errlen)
{
    if (r->p >= r->end) {
        snprintf(err, errlen, "truncated column");
        return -1;
    }
    int type = *r->p++;
    if (type == 3)
        return decode_sparse(r, col, n, err, errlen);
    if (type == 0) {
        for (size_t i = 0; i < n; i++)
            col[i] = chunk_absent();
        return 0;
    }
    if (type == 2) {
        uint64_t prev = u64_get(r);
        if (n)
            col[0] = chunk_of_bits(prev);
        for (size_t i = 1; i < n && !r->bad; i++) {
            prev ^= varint_get(r);
            col[i] = chunk_of_bits(prev);
        }
        return r->bad ? (snprintf(err, errlen, "truncated xor column"), -1) : 0;
    }
    if (type != 1) {
        snprintf(err, errlen, "unknown column type %d", type);
        return -1;
    }
    int64_t e = unzigzag(varint_get(r));
    if (r->p >= r->end || e < -MAX_EXP || e > MAX_EXP) {
        snprintf(err, errlen, "bad decimal exponent");
        return -1;
    }
    int mode = *r->p++;
    uint64_t nspecial = varint_get(r);
    if (r->bad || (mode != 1 && mode != 2) || nspecial > n) {
        snprintf(err, errlen, "bad decimal column header");
        return -1;
    }
    unsigned char *special = xcalloc(n ? n : 1, 1);
    for (uint64_t k = 0; k < nspecial && !r->bad; k++) {
        uint64_t row = varint_get(r);
        uint64_t b = u64_get(r);
        if (row >= n || special[row]) {
            r->bad = 1;
            break;
        }
        special[row] = 1;
        col[row] = chunk_of_bits(b);
    }
    int64_t v = 0, d = 0;
    size_t k = 0;
    for (size_t i = 0; i < n && !r->bad; i++) {
        if (special[i])
            continue;
        int64_t x = unzigzag(varint_get(r));
        if (k == 0) {
            v = x;
        } else if (mode == 1 || k == 1) {
            d = (int64_t)((uint64_t)x);
            v = (int64_t)((uint64_t)v + (uint64_t)d);
        } else {
            d = (int64_t)((uint64_t)d + (uint64_t)x);
            v = (int64_t)((uint64_t)v + (uint64_t)d);
        }
        col[i] = from_decimal(v, (int)e);
        k++;
    }
    free(special);
    if (r->bad) {
        snprintf(err, errlen, "truncated decimal column");
        return -1;
    }
    return 0;
}

int chunk_decode(const void *data, size_t len, struct chunk_data *out, char *err, size_t errlen)
{
    return chunk_decode_some(data, len, NULL, NULL, out, err, errlen);
}

/* Long on purpose: one pass over an untrusted chunk, every length checked
 * against what is left before it is read. */
int chunk_decode_some(const void *data, size_t len, int (*want)(void *arg, uint64_t series),
                      void *arg, struct chunk_data *out, char *err, size_t errlen)
{
    const unsigned char *src = data;
    unsigned char *body = NULL;
    uint64_t *ids = NULL;
    struct vin r;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (len < sizeof(MAGIC) || memcmp(src, MAGIC, sizeof(MAGIC))) {
        snprintf(err, errlen, "not a gpufleet chunk");
        return -1;
    }
    unsigned long long raw = ZSTD_getFrameContentSize(src + 4, len - 4);
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN ||
        raw > 16ULL * CHUNK_MAX_VALUES) {
        snprintf(err, errlen, "bad or oversized compressed frame");
        return -1;
    }
    body = xmalloc(raw ? raw : 1);
    size_t got = ZSTD_decompress(body, raw, src + 4, len - 4);
    if (ZSTD_isError(got) || got != raw) {
        snprintf(err, errlen, "corrupt compressed frame");
        goto fail;
    }
    r = (struct vin){body, body + raw, 0};
    uint64_t nrows = varint_get(&r), ncols = varint_get(&r);
    if (r.bad || nrows > CHUNK_MAX_ROWS || ncols > CHUNK_MAX_COLS ||
        nrows * ncols > CHUNK_MAX_VALUES) {
        snprintf(err, errlen, "chunk dimensions out of range");
        goto fail;
    }
    out->nrows = nrows;
    out->ts = xmalloc((nrows ? nrows : 1) * sizeof(int64_t));
    int64_t t = 0, d = 0;
    for (size_t i = 0; i < nrows && !r.bad; i++) {
        int64_t x = unzigzag(varint_get(&r));
        if (i == 0)
            t = x;
        else if (i == 1)
            d = x, t = (int64_t)((uint64_t)t + (uint64_t)d);
        else
            d = (int64_t)((uint64_t)d + (uint64_t)x), t = (int64_t)((uint64_t)t + (uint64_t)d);
        out->ts[i] = t;
    }
    ids = xmalloc((ncols ? ncols : 1) * sizeof(uint64_t));
    uint64_t id = 0;
    size_t nwant = 0;
    for (size_t c = 0; c < ncols && !r.bad; c++) {
        id += (uint64_t)unzigzag(varint_get(&r));
        ids[c] = id;
        nwant += !want || want(arg, id);
    }
    if (r.bad) {
        snprintf(err, errlen, "truncated chunk header");
        goto fail;
    }
    out->series = xmalloc((nwant ? nwant : 1) * sizeof(uint64_t));
    out->values = xmalloc((nrows * nwant != 0 ? nrows * nwant : 1) * sizeof(double));
    for (size_t c = 0; c < ncols; c++) {
        uint64_t clen = varint_get(&r);
        if (r.bad || clen > (uint64_t)(r.end - r.p)) {
            snprintf(err, errlen, "truncated column %zu", c);
            goto fail;
        }
        if (want && !want(arg, ids[c])) {
            r.p += clen; /* not asked for: skipped without decoding */
            continue;
        }
        struct vin cr = {r.p, r.p + clen, 0};
        if (decode_column(&cr, out->values + out->ncols * nrows, nrows, err, errlen) < 0)
            goto fail;
        out->series[out->ncols++] = ids[c];
        r.p += clen;
    }
    rc = 0;
fail:
    free(body);
    free(ids);
    if (rc < 0)
        chunk_data_free(out);
    return rc;
}
