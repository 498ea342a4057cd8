/* Non-cryptographic hashing for in-memory tables. */
#ifndef GF_HASH_H
#define GF_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A word-at-a-time 64-bit hash of n bytes: series keys are long and hashed
 * on every sample, so bytes are taken eight at a time. Not for anything an
 * attacker must not be able to collide on purpose. */
uint64_t hash_bytes(const char *s, size_t n);

#endif
