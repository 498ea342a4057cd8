/* The server's settings: defaults, the YAML file, then flags (see
 * docs/server.md for each). */
#ifndef GF_SERVER_OPTIONS_H
#define GF_SERVER_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "server.h"

struct auth_config;

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
/* Prints the table of settings (gpufleet settings [--markdown]). */
void server_options_print(FILE *f, int markdown);
/* Each subsystem's part of the settings. */
void server_options_scrape(const struct server_options *o, struct scrape_config *c);
void server_options_auth(const struct server_options *o, struct auth_config *c);
void server_options_store(const struct server_options *o, struct tsdb_config *c);
/* Cross-field checks. */
int server_options_finish(struct server_options *o, char *err, size_t errlen);

#endif
