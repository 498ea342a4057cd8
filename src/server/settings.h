/* Settings an admin changes at run time (retention, intervals): applied to
 * the running subsystems at once and kept in DATA/settings.conf, which the
 * next start reads over the config file and flags. */
#ifndef GF_SETTINGS_H
#define GF_SETTINGS_H

#include <jansson.h>

#include "server.h"

struct errinfo;

/* Reads DATA/settings.conf into app->opts when it exists (before the
 * subsystems start). Returns 0, or -1 with err naming the key. */
int settings_load(struct server_app *app, char *err, size_t errlen);

/* Every setting but secrets: [{"name","value","min","max","live"}]. New
 * reference. Any thread. */
json_t *settings_json(struct server_app *app);

/* Applies {"name": value, ...} (live settings only), writes the file, and
 * adds {"name":{"from":x,"to":y}} for each change to changes. Returns 0, or
 * -1 with e naming the field (nothing applied). Any thread. */
int settings_update(struct server_app *app, const json_t *body, json_t *changes, struct errinfo *e);

#endif
