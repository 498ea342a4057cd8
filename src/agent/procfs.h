/* Reading /proc and /sys files under a configurable root, so the same code
 * reads fixture trees in tests. */
#ifndef GF_AGENT_PROCFS_H
#define GF_AGENT_PROCFS_H

#include <stddef.h>

#include "../lib/buf.h"

/* Largest pseudo-file read (a 256-CPU /proc/stat is well under this). */
#define PROCFS_MAX_BYTES (4u << 20)

/* Reads root/rel into out (reset first). Returns 0, or -1 with errno set
 * (E2BIG when larger than PROCFS_MAX_BYTES). */
int procfs_read(const char *root, const char *rel, struct buf *out);

/* Joins root and rel into dst. Returns 0, or -1 when it does not fit. */
int procfs_path(char *dst, size_t cap, const char *root, const char *rel);

/* Splits text into lines: returns the line at *pos (NUL-terminating it in
 * place) and advances *pos, or NULL at the end. */
char *procfs_next_line(char *text, size_t len, size_t *pos);

#endif
