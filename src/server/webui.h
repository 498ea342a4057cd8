/* The web UI's files, embedded at build time by tools/embed_web.c. */
#ifndef GF_WEBUI_H
#define GF_WEBUI_H

#include <stddef.h>

struct webui_file {
    const char *path;        /* "/index.html", "/assets/index-1a2b3c.js" */
    const unsigned char *gz; /* the content, gzip-compressed */
    size_t gz_len, raw_len;
    const char *etag;        /* quoted, from the content */
};

/* Sorted by path; webui_nfiles entries (0 when the UI was not built). */
extern const struct webui_file webui_files[];
extern const size_t webui_nfiles;

#endif
