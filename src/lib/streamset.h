/* Long-lived streams on upgraded connections (log follows, terminals):
 * each on its own thread, bounded in total and per user, and all ended
 * and joined at shutdown, before the HTTP server that owns their sockets
 * stops. */
#ifndef GF_STREAMSET_H
#define GF_STREAMSET_H

#include <stddef.h>
#include <stdint.h>

struct streamset;

/* At most max_total streams, max_per_user of one user (0: no per-user
 * bound). */
struct streamset *streamset_new(size_t max_total, size_t max_per_user);

/* Holds a seat for user before the upgrade is answered: 0, -1 when the set
 * is full or closing, -2 when user holds max_per_user already. */
int streamset_reserve(struct streamset *s, int64_t user);

/* Gives back a seat that will not become a stream (the upgrade failed). */
void streamset_unreserve(struct streamset *s, int64_t user);

/* Runs fn(arg), then cleanup(arg) (which closes fd1 and fd2 and frees
 * arg; may be NULL), on a new thread in a seat reserved for user. Until fn
 * returns, fd1 and fd2 (-1: none) are shut down when the set closes, so
 * that fn's poll or read returns; fn must not close them. Returns 0, or -1
 * (closing, no thread: neither runs, the seat is given back and the caller
 * cleans up arg). */
int streamset_run(struct streamset *s, int64_t user, void (*fn)(void *), void (*cleanup)(void *),
                  void *arg, int fd1, int fd2);

/* Whether the set is closing (fn should end). */
int streamset_closing(struct streamset *s);

/* Streams running now. */
size_t streamset_count(struct streamset *s);

/* Closes: refuses new seats and streams, shuts down every stream's
 * sockets, waits for their threads. Call before stopping the HTTP server
 * (the sockets are its upgraded connections). NULL is a no-op. */
void streamset_close(struct streamset *s);

/* Closes (when not yet) and frees. NULL is a no-op. */
void streamset_free(struct streamset *s);

#endif
