/* Head columns: XOR byte compression while appended, plain past that. */
#include "hcol.h"

#include <stdlib.h>
#include <string.h>

#include "../../lib/xalloc.h"
#include "chunk.h"

/* A cell's first byte:
 *   0x00       the value before it again
 *   0x01-0x78  (trailing zero bytes << 4) | significant bytes (1-8) of its
 *              XOR with the value before it, those bytes following
 *   0x79-0x7f  an integer that many (1-7) bytes of zigzag delta from an
 *              integer before it (counters, bytes), the bytes following
 *   0x80-0xfe  an integer 1-127 zigzag steps from the one before it (a
 *              gauge of small integers: one byte)
 *   0xff       no value
 * Bytes that follow are lowest first. An integer delta is used only when
 * it gives back the same bits (so -0.0 or a huge value goes by XOR). */
#define SAME 0x00
#define INT_WIDE 0x78
#define INT_SMALL 0x80
#define ABSENT 0xff


static void reserve(struct hcol *c, size_t more)
{
    if (c->len + more <= c->cap)
        return;
    /* a quarter more than needed: a head's 120 appends make a few
     * reallocations, and little goes unused when it is sealed */
    size_t cap = (c->len + more) + (c->len + more) / 4 + 8;
    c->b = xrealloc(c->b, cap);
    c->cap = (uint32_t)cap;
}

static void put_absent(struct hcol *c, size_t k)
{
    reserve(c, k);
    memset(c->b + c->len, ABSENT, k);
    c->len += (uint32_t)k;
}

static int integral(double v)
{
    return v >= -9007199254740992.0 && v <= 9007199254740992.0 && v == (double)(int64_t)v;
}

/* v as an integer step from the value before it, when both are integers
 * and the step gives v back bit for bit. 1 when written. */
static int put_int(struct hcol *c, double v)
{
    double prev = chunk_of_bits(c->last);
    if (!integral(v) || !integral(prev))
        return 0;
    int64_t d = (int64_t)v - (int64_t)prev;
    if (chunk_bits(prev + (double)d) != chunk_bits(v))
        return 0;
    uint64_t zz = ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
    if (zz >= 1 && zz <= 127) {
        c->b[c->len++] = (uint8_t)(INT_SMALL + zz - 1);
        return 1;
    }
    int k = (64 - __builtin_clzll(zz) + 7) / 8;
    if (k > 7)
        return 0;
    c->b[c->len++] = (uint8_t)(INT_WIDE + k);
    for (int i = 0; i < k; i++, zz >>= 8)
        c->b[c->len++] = (uint8_t)zz;
    return 1;
}

static void put_value(struct hcol *c, double v)
{
    uint64_t b = chunk_bits(v), x = b ^ c->last;
    if (chunk_is_absent(v)) {
        put_absent(c, 1);
        return;
    }
    reserve(c, 9);
    if (!x) {
        c->b[c->len++] = SAME;
        return;
    }
    if (put_int(c, v)) {
        c->last = b;
        return;
    }
    int trail = __builtin_ctzll(x) / 8, lead = __builtin_clzll(x) / 8;
    int k = 8 - trail - lead;
    x >>= 8 * trail;
    c->b[c->len++] = (uint8_t)(trail << 4 | k);
    for (int i = 0; i < k; i++, x >>= 8)
        c->b[c->len++] = (uint8_t)x;
    c->last = b;
}

void hcol_read(const struct hcol *c, size_t rows, double *out)
{
    size_t r = 0;
    if (c->plain) {
        r = rows < c->cap ? rows : c->cap;
        memcpy(out, c->b, r * sizeof(double));
    } else {
        uint64_t last = 0;
        for (size_t i = 0; i < c->len && r < rows; r++) {
            uint8_t h = c->b[i++];
            if (h == ABSENT) {
                out[r] = chunk_absent();
                continue;
            }
            if (h > INT_WIDE) { /* an integer step */
                uint64_t zz = 0;
                if (h >= INT_SMALL) {
                    zz = (uint64_t)(h - INT_SMALL + 1);
                } else {
                    for (int j = 0; j < h - INT_WIDE; j++)
                        zz |= (uint64_t)c->b[i + j] << (8 * j);
                    i += (size_t)(h - INT_WIDE);
                }
                int64_t d = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
                last = chunk_bits(chunk_of_bits(last) + (double)d);
                out[r] = chunk_of_bits(last);
                continue;
            }
            int trail = h >> 4, k = h & 15;
            uint64_t x = 0;
            for (int j = 0; j < k; j++)
                x |= (uint64_t)c->b[i + j] << (8 * j);
            i += k;
            last ^= x << (8 * trail);
            out[r] = chunk_of_bits(last);
        }
    }
    for (; r < rows; r++)
        out[r] = chunk_absent();
}

/* Turns c into a plain array of room rows. rows: the head's rows. */
static void make_plain(struct hcol *c, size_t rows, size_t room)
{
    double *v = xmalloc((room ? room : 1) * sizeof(double));
    hcol_read(c, rows, v);
    for (size_t r = rows; r < room; r++)
        v[r] = chunk_absent();
    free(c->b);
    c->b = (uint8_t *)v;
    c->cap = (uint32_t)room;
    c->len = 0;
    c->plain = 1;
}

int hcol_set(struct hcol *c, size_t r, double v, size_t rows, size_t room)
{
    if (!c->plain && r >= c->n) {
        if (r > c->n)
            put_absent(c, r - c->n);
        put_value(c, v);
        c->n = (uint32_t)r + 1;
        return 1;
    }
    if (!c->plain)
        make_plain(c, rows, room);
    double *p = (double *)c->b;
    int was = chunk_is_absent(p[r]);
    p[r] = v;
    return was;
}

void hcol_insert_row(struct hcol *c, size_t r, size_t rows, size_t room)
{
    if (!c->plain && r >= c->n)
        return; /* nothing written from r on: the rows after shift by themselves */
    if (!c->plain)
        make_plain(c, rows, room);
    double *p = (double *)c->b;
    memmove(p + r + 1, p + r, (rows - r) * sizeof(double));
    p[r] = chunk_absent();
}

void hcol_grow(struct hcol *c, size_t room)
{
    if (!c->plain || room <= c->cap)
        return;
    double *p = xrealloc(c->b, room * sizeof(double));
    for (size_t r = c->cap; r < room; r++)
        p[r] = chunk_absent();
    c->b = (uint8_t *)p;
    c->cap = (uint32_t)room;
}

size_t hcol_bytes(const struct hcol *c)
{
    return sizeof(*c) + (c->plain ? c->cap * sizeof(double) : c->cap);
}

void hcol_free(struct hcol *c)
{
    free(c->b);
    memset(c, 0, sizeof(*c));
}
