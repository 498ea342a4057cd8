/* application/x-www-form-urlencoded bodies (a=b&c=d, %XX and '+' decoded),
 * as Grafana posts PromQL queries. */
#ifndef GF_FORMDATA_H
#define GF_FORMDATA_H

#include <stddef.h>

/* Calls fn for every name=value pair of the n bytes at s, in order; name
 * is NUL-terminated, value is len bytes (NUL-terminated too, but it may
 * hold a decoded NUL: len tells). Pairs without '=' are skipped. */
void form_parse(const char *s, size_t n,
                void (*fn)(void *arg, const char *name, const char *value, size_t len), void *arg);

#endif
