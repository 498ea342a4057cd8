/* The server's settings: defaults, the YAML file, then flags (see
 * docs/server.md for each). */
#ifndef GF_SERVER_OPTIONS_H
#define GF_SERVER_OPTIONS_H

#include <stddef.h>

#include "server.h"

void server_options_init(struct server_options *o);
void server_options_free(struct server_options *o);
int server_options_load(struct server_options *o, const char *path, char *err, size_t errlen);
int server_options_parse(struct server_options *o, const char *text, size_t len, char *err,
                         size_t errlen);
int server_options_set(struct server_options *o, const char *name, const char *value, char *err,
                       size_t errlen);
/* The table of settings (names, types, bounds), for the settings API. */
struct config_key;
const struct config_key *server_options_keys(size_t *n);
/* Cross-field checks. */
int server_options_finish(struct server_options *o, char *err, size_t errlen);

#endif
