/* Allocation wrappers: the one place that decides what out-of-memory means. */
#ifndef GF_XALLOC_H
#define GF_XALLOC_H

#include <stddef.h>

/* Each behaves as its libc namesake but never returns NULL: on exhaustion it
 * prints a message and aborts, so callers need no OOM branch. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
