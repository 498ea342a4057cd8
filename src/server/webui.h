/* The web UI's files, embedded at build time by tools/embed_web.c. */
#ifndef GF_WEBUI_H
#define GF_WEBUI_H

#include <stddef.h>

#include "../lib/webfiles.h"

/* Sorted by path; webui_nfiles entries (0 when the UI was not built). */
extern const struct webfile webui_files[];
extern const size_t webui_nfiles;

#endif
