/* Disk cleanup on the host's engine: what could go (stopped containers
 * gpufleet did not make, dangling or unused images, unused volumes, build
 * cache) with
 * the bytes each frees, then a run that removes exactly the items of such
 * a plan that are still unused — never anything that appeared since, never
 * a container gpufleet made for a user (stopped or not), never an image or
 * volume any container still uses. */
#ifndef GF_CLEANUP_H
#define GF_CLEANUP_H

#include <jansson.h>

#include "../lib/errinfo.h"

struct engine;

#define CLEANUP_CONTAINERS 1 /* stopped containers gpufleet did not make */
#define CLEANUP_DANGLING 2   /* untagged images no container uses */
#define CLEANUP_IMAGES 4     /* every image no container uses (dangling too) */
#define CLEANUP_VOLUMES 8    /* volumes no container mounts */
#define CLEANUP_CACHE 16     /* build cache records not in use (BuildKit's, in /system/df) */
#define CLEANUP_APPS 32      /* folders under apps_root no app knows (the server says which it knows) */

/* "containers,dangling,images,volumes,cache,apps" (any of them, comma-separated; NULL
 * or "": containers and dangling) into a mask. 0, or -1 with e naming
 * "kinds". */
int cleanup_kinds(const char *text, int *mask, struct errinfo *e);

/* The plan: {"items":[{"kind":"container"|"image"|"volume"|"cache"|
 * "app_container"|"app_folder","id","name","bytes"}],"bytes":total}, from
 * the engine's /system/df and, for CLEANUP_APPS, the containers labelled
 * as an app's (running or not: a run removes them by force) and the
 * folders under the apps_root, whose app's name is not in known (the apps
 * the server has on this host, comma-separated; NULL: none). NULL with e. */
json_t *cleanup_plan(struct engine *eng, int mask, const char *known, struct errinfo *e);

/* The same from /system/df's text, the engine's container list
 * (engine_list's form: who is gpufleet's, which images are used) and its
 * /images/json (the images' full tags). For the tests and the fuzz target. */
json_t *cleanup_plan_from_df(const char *text, size_t len, const json_t *containers,
                             const json_t *images, int mask, struct errinfo *e);

/* Removes the items of body {"items":[{"kind","id"}...],"known":"a,b"} (at
 * most 10,000 items; known as for cleanup_plan) that a plan made now
 * still holds: {"removed":[{"kind","id","name",
 * "bytes"}],"skipped":[{"kind","id","reason"}],"bytes":freed}. NULL with
 * e (400 naming the field). */
json_t *cleanup_run(struct engine *eng, const json_t *body, struct errinfo *e);

#endif
