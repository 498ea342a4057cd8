/* Varints (LEB128) and zigzag, shared by the chunk codec and the sample
 * log. Inline: both encode millions of them per second. */
#ifndef GF_VARINT_H
#define GF_VARINT_H

#include <stddef.h>
#include <stdint.h>

#include "../../lib/buf.h"

/* A bounded input; bad is set (and 0 returned) when a read runs past end. */
struct vin {
    const unsigned char *p, *end;
    int bad;
};

static inline void varint_put(struct buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;

    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    buf_append(b, tmp, n);
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint64_t varint_get(struct vin *r)
{
    uint64_t v = 0;
    unsigned shift = 0;

    while (r->p < r->end && shift < 64) {
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
        shift += 7;
    }
    r->bad = 1;
    return 0;
}

/* 8 bytes, little-endian. */
static inline uint64_t u64_get(struct vin *r)
{
    uint64_t v = 0;

    if (r->end - r->p < 8) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

static inline void u64_put(struct buf *b, uint64_t v)
{
    unsigned char tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (unsigned char)(v >> (8 * i));
    buf_append(b, tmp, 8);
}

#endif
