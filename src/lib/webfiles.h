/* A folder of web files (the UI's build) read into memory, each file
 * gzip-compressed once with a strong ETag of its content: what the server
 * sends. tools/embed_web.c writes such a table into the binary; the server
 * can also read one at start (the ui_dir setting). */
#ifndef GF_WEBFILES_H
#define GF_WEBFILES_H

#include <stddef.h>

struct webfile {
    const char *path;        /* URL path, "/index.html", "/assets/index-1a2b3c.js" */
    const unsigned char *gz; /* the content, gzip-compressed */
    size_t gz_len, raw_len;
    const char *etag;        /* quoted, from the content */
};

/* Reads every regular file under dir (names fit for URLs, at most max_bytes
 * in all) into a table sorted by path. Returns the count and *out (free
 * with webfiles_free), or -1 with a reason in err. */
long webfiles_load(const char *dir, size_t max_bytes, struct webfile **out, char *err,
                   size_t errlen);

void webfiles_free(struct webfile *files, size_t n);

#endif
