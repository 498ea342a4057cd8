/* Non-cryptographic hashing for in-memory tables. */
#ifndef GF_HASH_H
#define GF_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A word-at-a-time 64-bit hash of n bytes: series keys are long and hashed
 * on every sample, so bytes are taken eight at a time. Not for anything an
 * attacker must not be able to collide on purpose. */
uint64_t hash_bytes(const char *s, size_t n);

/* A second 64-bit hash of n bytes, independent of hash_bytes (other
 * multipliers, every word avalanched): with it, two texts of one length
 * that agree on both are taken as equal (2^-64 a pair by chance). Where
 * that stands in for comparing the bytes (the scrape cache), an exporter
 * that collided on purpose could only move its own samples between its
 * own series. */
uint64_t hash_bytes_fp(const char *s, size_t n);

#endif
