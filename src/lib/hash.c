/* 64-bit multiply-xorshift hashing of byte strings. */
#include "hash.h"

#include <string.h>

uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, s + i, n - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

/* murmur3's finalizer: every input bit flips each output bit with odds 1/2 */
static uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

uint64_t hash_bytes_fp(const char *s, size_t n)
{
    uint64_t h = 0x243f6a8885a308d3ULL ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ fmix64(w)) * 0x87c37b91114253d5ULL;
        h = (h << 31) | (h >> 33);
    }
    uint64_t w = 0;
    memcpy(&w, s + i, n - i);
    return fmix64(h ^ fmix64(w ^ 0x4cf5ad432745937fULL));
}
