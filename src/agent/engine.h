/* The host's container engine: a Docker Engine API client over the
 * engine's unix socket (Docker, or Podman through its compat API and, for
 * creates, its libpod API, which takes CDI GPU devices). API version pinned
 * at 1.41. The agent acts on containers only when the server asks. */
#ifndef GF_ENGINE_H
#define GF_ENGINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "../lib/ctrspec.h"
#include "../lib/errinfo.h"

#define ENGINE_API "v1.41" /* works with Docker 20.10+ and Podman 4+ */
#define ENGINE_LIBPOD "v4.0.0"
/* labels of the containers gpufleet made */
#define ENGINE_LABEL_MANAGED "gpufleet.managed"
#define ENGINE_LABEL_OWNER "gpufleet.owner"
#define ENGINE_LABEL_ID "gpufleet.id"
#define ENGINE_LABEL_APP "gpufleet.app" /* an app's container: the app's name */

struct engine;
struct buf;

/* An engine client on socket_path (none answering is not an error here).
 * cdi_dirs: colon-separated folders of CDI specs; workspace_root: where
 * the owners' workspaces are made; apps_root: the apps' folders (an app's
 * container mounts apps_root/NAME at /app). Free with engine_free. */
struct engine *engine_new(const char *socket_path, const char *cdi_dirs,
                          const char *workspace_root, const char *apps_root);

/* The apps_root ("" when none). */
const char *engine_apps_root(const struct engine *eng);

/* An app's folder on this host: apps_root/name. 0, or -1 when it does not
 * fit out. */
int engine_app_dir(const struct engine *eng, const char *name, char *out, size_t outlen);
void engine_free(struct engine *e);

/* What the engine is: {"engine":"docker"|"podman","version","api_version",
 * "gpu_requests":"nvidia"|"cdi"|"none","gpu_detail","cdi_devices":[...]}.
 * New reference, or NULL with e (502: the engine does not answer). */
json_t *engine_info(struct engine *eng, struct errinfo *e);

/* Every container of the engine, compact: [{"id","name","image","image_id","state",
 * "status","managed","owner","gf_id","gpus","ports","created"}]. */
json_t *engine_list(struct engine *eng, struct errinfo *e);

/* Creates (not starts) a container as s says. {"id":ENGINE_ID}, or NULL
 * with e (409 when the engine refuses: name taken, no such image, no CDI
 * spec for the GPUs asked). */
json_t *engine_create(struct engine *eng, const struct ctrspec *s, struct errinfo *e);

/* start, stop or restart. Containers gpufleet did not make are refused
 * (403) unless allow_unmanaged. 0 or -1 with e. */
int engine_action(struct engine *eng, const char *id, const char *action, int allow_unmanaged,
                  struct errinfo *e);

/* Removes a container (forcing it to stop). 0 or -1 with e (404: no such
 * container). */
int engine_remove(struct engine *eng, const char *id, int allow_unmanaged, struct errinfo *e);

/* One container in detail, or NULL with e (404). */
json_t *engine_inspect(struct engine *eng, const char *id, struct errinfo *e);

/* One container's usage now: {"cpu_seconds","memory_bytes",
 * "memory_limit_bytes","pids"}, or NULL with e. */
json_t *engine_stats(struct engine *eng, const char *id, struct errinfo *e);

/* The readers of the engine's answers (what engine_list, engine_inspect
 * and engine_stats return), from the engine's JSON text: NULL with e when
 * it is not what the API documents. Exposed for the fuzz targets. */
json_t *engine_list_from_json(const char *text, size_t len, struct errinfo *e);
json_t *engine_inspect_from_json(const char *text, size_t len, struct errinfo *e);
json_t *engine_stats_from_json(const char *text, size_t len, struct errinfo *e);

/* For the engine's other modules (images.c). */
/* libcurl's write callback: where an answer goes as it arrives */
typedef size_t (*engine_sink)(char *data, size_t size, size_t n, void *arg);

/* method path [body] on the engine: the HTTP status, the answer written
 * to sink(arg) as it arrives (NULL sink: arg is a struct buf), or -1 with
 * e (502) when the engine cannot be reached. */
long engine_call(struct engine *eng, const char *method, const char *path, const char *body,
                 long timeout_s, engine_sink sink, void *arg, struct errinfo *e);

/* What a call adds: one header ("X-Registry-Auth: ..."), and a body read
 * from a file (a build's context, sent as application/x-tar). */
struct engine_extra {
    const char *header;
    FILE *upload;
    long long upload_size;
};

/* engine_call with extra (may be NULL) and no JSON body. */
long engine_call_ex(struct engine *eng, const char *method, const char *path,
                    const struct engine_extra *extra, long timeout_s, engine_sink sink, void *arg,
                    struct errinfo *e);

/* GET path as a stream with no time limit (a log follow): the answer goes
 * to sink(arg) as it comes; alive(arg), asked about once a second, ends
 * the call by answering 0 (as does sink answering short). The HTTP status
 * (also after such an end), or -1 with e (502). */
long engine_stream(struct engine *eng, const char *path, engine_sink sink, void *arg,
                   int (*alive)(void *arg), struct errinfo *e);

/* PUT path with the size bytes of f as its body (a tar for the archive
 * API); the answer into out. The HTTP status, or -1 with e (502). */
long engine_put_file(struct engine *eng, const char *path, FILE *f, long long size, struct buf *out,
                     struct errinfo *e);

/* A socket connected to the engine, for a request whose connection the
 * engine takes over (an exec's Upgrade: tcp). The descriptor, or -1 with
 * e (502). */
int engine_connect(struct engine *eng, struct errinfo *e);

/* A call whose answer should be JSON: a new reference, or NULL with e (a
 * status >= 300 is the engine's refusal: 404 not_found, else 409). */
json_t *engine_call_json(struct engine *eng, const char *method, const char *path,
                         const char *body, long timeout_s, long *status, struct errinfo *e);

/* The engine's refusal (status >= 300, its answer in b) into e: 404 stays
 * not_found, any other becomes `other`, with the engine's own words. */
void engine_refused(const struct buf *b, long status, int other, struct errinfo *e);

/* Whether id can name a container in a path: [A-Za-z0-9_.-], 1..128. */
int engine_valid_id(const char *id);

#endif
