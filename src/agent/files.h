/* Files inside a container, through its engine: a folder's listing, a
 * new folder, a removal (each a small program run in the container with
 * the path as its argument, never inside a command line), and uploads (a
 * tar unpacked by the engine's archive API). Downloads are streams
 * (attach.h, ATTACH_ARCHIVE). Paths are checked by ctrspec_valid_path;
 * they are the container's own, so a symlink resolves inside it. */
#ifndef GF_FILES_H
#define GF_FILES_H

#include <jansson.h>
#include <stdio.h>

#include "../lib/errinfo.h"

struct engine;

#define FILES_MAX_ENTRIES 10000
#define FILES_MAX_UPLOAD (64LL << 30) /* a tar the agent takes at most */

/* {"path","entries":[{"name","type":"file"|"dir"|"link"|"other","size",
 * "mode","mtime"}],"truncated":bool}, or NULL with e (404: no such
 * folder; 409: the container is not running or has no sh and stat). */
json_t *files_list(struct engine *eng, const char *id, const char *path, struct errinfo *e);

/* mkdir -p / rm -rf of path. 0, or -1 with e. */
int files_mkdir(struct engine *eng, const char *id, const char *path, struct errinfo *e);
int files_delete(struct engine *eng, const char *id, const char *path, struct errinfo *e);

/* Unpacks the tar of size bytes in f into folder dir. 0, or -1 with e. */
int files_upload(struct engine *eng, const char *id, const char *dir, FILE *f, long long size,
                 struct errinfo *e);

/* The listing program's output (records "SIZE HEXMODE MTIME NAME\n\0")
 * into entries. Exposed for the unit test and the fuzz target. */
json_t *files_parse_listing(const char *text, size_t len, const char *path);

#endif
