/* Request rate limits: a token bucket per caller (an API token, a
 * session, a proxy user, or the address of an anonymous caller), so no
 * one caller can take the server's time from the others. Any thread; one
 * short lock inside. */
#ifndef GF_RATELIMIT_H
#define GF_RATELIMIT_H

#include <stdint.h>

struct ratelimit;

/* per_s requests a second on average, burst at once; per_s 0: no limit
 * (ratelimit_take always admits). */
struct ratelimit *ratelimit_new(int64_t per_s, int64_t burst);
void ratelimit_free(struct ratelimit *rl);

/* Takes one request from key's bucket. 0: admitted; -1: refused, with the
 * wait until the next one in *retry_ms. */
int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, int64_t *retry_ms);

#endif
