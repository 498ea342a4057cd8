/* Writing ustar archives: the form the container engines take a build's
 * context and an upload in. One header per entry, the data padded to
 * 512-byte blocks, two zero blocks at the end. */
#ifndef GF_TARW_H
#define GF_TARW_H

#include <stdio.h>
#include <time.h>

#define TARW_BLOCK 512

enum { TARW_FILE = '0', TARW_SYMLINK = '2', TARW_DIR = '5' };

/* Fills h with the header of one entry: name (a path inside the archive,
 * "/"-separated, without a leading "/"), type, permission bits, size (a
 * file's; 0 for the others, up to 8 GiB - 1), mtime, and link (a symlink's
 * target, else NULL). A name over 100 bytes is split into ustar's prefix
 * at a '/'. Returns 0, or -1 when the name or link does not fit ustar. */
int tarw_header(char h[TARW_BLOCK], const char *name, int type, unsigned mode, long long size, time_t mtime,
                const char *link);

/* Writes the zero blocks after size bytes of data (to the next block) and
 * none when size is a multiple. Returns 0, or -1 on a write error. */
int tarw_pad(FILE *out, long long size);

/* Writes the archive's end (two zero blocks). Returns 0 or -1. */
int tarw_end(FILE *out);

/* Writes every entry under the folder root into out, with names relative
 * to it, in a stable order (sorted per folder), links as links (never
 * followed), leaving out entries named skip at any depth (".git"; NULL:
 * none) and anything that is not a file, a folder or a link. Stops with
 * -1 and a message in err when out passes max_bytes (0: no bound), a
 * name does not fit, or a file cannot be read. Does not write the end. */
int tarw_tree(FILE *out, const char *root, const char *skip, long long max_bytes, char *err, size_t errlen);

#endif
