/* Apps from git: a repository cloned on a GPU host into its folder
 * (<apps_root>/<name>, mounted at /app), run in a container the containers
 * module places (GPUs and ports from its ledgers), with a health light
 * (STARTING, RUNNING, STOPPED, FAILED) probed from the host and pushed to
 * browsers, lifecycle actions, and the marketplace of templates. Installs,
 * reinstalls and updates run in threads of their own; nothing here holds
 * the module's lock across a call to an agent. */
#ifndef GF_APPS_H
#define GF_APPS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "../lib/buf.h"
#include "../lib/errinfo.h"
#include "auth.h"
#include "server.h"

struct apps;

/* Opens (creating, migrating, seeding the templates once) the database at
 * path. Apps an install was running for when the server stopped are marked
 * failed. NULL with err. */
struct apps *apps_open(const char *path, struct server_app *app, char *err, size_t errlen);
/* Starts the health loop (a probe of every app each apps_probe_ms). */
int apps_start(struct apps *a);
/* Stops the loop and the running jobs (each at its next look), then closes. */
void apps_close(struct apps *a);
/* The live settings (default image, user, root, health timeout). */
void apps_set_limits(struct apps *a, const struct server_options *o);

/* Apps visible to owner_id (0: all), by name: {"apps":[...]}. New reference. */
json_t *apps_list(struct apps *a, int64_t owner_id);
/* One app (404 when not owner_id's, unless 0). */
json_t *apps_get(struct apps *a, const char *name, int64_t owner_id, struct errinfo *e);

/* Installs an app for who from body (appspec_parse's fields; "template"
 * a slug whose values are the defaults): checked, placed, its repository
 * and ref asked of the chosen host, then recorded and cloned in the
 * background (its progress in the app's "progress"), its container made
 * once the clone is there. The app as apps_get shows it, or NULL with e
 * (400 naming the field, 403 run_as_root, 404 template or host, 409 name
 * taken or no room, 502 the host or the repository). */
json_t *apps_install(struct apps *a, const struct auth_identity *who, const json_t *body, struct errinfo *e);

/* Imports an app's export (the tar of GET /api/v1/apps/NAME/export in
 * *tar, size bytes: its record, then its folder) on host ("" or NULL:
 * placed) as name (NULL: the record's): checked and placed as an install;
 * in the background its folder is made and filled by the host's agent and
 * given to the app's user, then its container is made.
 * *tar becomes the job's (NULL) when it starts. The app, or NULL with e
 * (400 naming body when it is not an export). */
json_t *apps_import(struct apps *a, const struct auth_identity *who, FILE **tar, long long size, const char *name,
                    const char *host, struct errinfo *e);

/* start, stop, restart, reinstall or update (body: {"ref"} for the last
 * two, optional). Reinstall clones afresh (what git does not track is
 * lost), update fetches into the clone (it stays); both recreate the
 * container. 0, or -1 with e (404, 409 busy or not installed). */
int apps_act(struct apps *a, const char *name, int64_t owner_id, const char *action, const json_t *body,
             struct errinfo *e);

/* Deinstalls: the container removed (its GPUs and ports released), the
 * folder removed unless keep_folder, the record deleted. 0 or -1 with e. */
int apps_remove(struct apps *a, const char *name, int64_t owner_id, int keep_folder, struct errinfo *e);

/* ---- templates (apps_tpl.c) ---- */
/* {"templates":[...]} by title. New reference. */
json_t *apps_templates(struct apps *a);
json_t *apps_template_get(struct apps *a, const char *slug, struct errinfo *e);
/* Creates (create set: 409 when the slug is taken) or replaces (404 when
 * there is none) a template. The stored template, or NULL with e. */
json_t *apps_template_put(struct apps *a, const json_t *body, int create, struct errinfo *e);
int apps_template_delete(struct apps *a, const char *slug, struct errinfo *e);
/* A template made from an installed app (body: {"slug","title",
 * "summary",...} over the app's values). */
json_t *apps_promote(struct apps *a, const char *name, int64_t owner_id, const json_t *body, struct errinfo *e);
/* {"gpufleet_templates":1,"templates":[...]} */
json_t *apps_templates_export(struct apps *a);
/* Ours or Portainer's v2 file: {"imported":[slugs],"replaced":[slugs],
 * "skipped":[{"title","why"}]}; replace: a slug that exists is replaced
 * (else it is skipped). NULL with e. */
json_t *apps_templates_import(struct apps *a, const json_t *body, int replace, struct errinfo *e);

/* The names of the apps on server, comma-separated ("" for none): what the
 * host's cleanup must not take for junk. A new string. */
char *apps_names_on(struct apps *a, const char *server);

/* For /metrics: apps by health, installs running. */
void apps_metrics(struct apps *a, struct buf *out);

#endif
