/* The host's images: list (with the containers that use each), remove,
 * and pulls that run in the background while the engine's progress stream
 * is read as it arrives, so the server (and the browser behind it) can
 * watch each layer's bytes without holding a request open for minutes. */
#ifndef GF_IMAGES_H
#define GF_IMAGES_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "../lib/buf.h"
#include "../lib/errinfo.h"
#include "engine.h"
#include "gitclone.h"

#define IMAGES_MAX_PULLS 32  /* pulls remembered, running or finished */
#define IMAGES_MAX_RUNNING 4 /* pulls at once; more are refused (429) */

struct images;

struct images *images_new(struct engine *eng);
/* Stops the pulls (each at its next chunk) and frees, waiting up to 5 s
 * for them. Returns how many were still running: then nothing is freed
 * (their threads still use im and the engine), as the process is ending. */
int images_free(struct images *im);

/* [{"id","tags":[...],"digests":[...],"size","created","containers":[names]}],
 * or NULL with e. */
json_t *images_list(struct images *im, struct errinfo *e);

/* The reader of the engine's /images/json answer; containers is
 * engine_list's (who uses each image). Exposed for the fuzz target. */
json_t *images_list_from_json(const char *text, size_t len, const json_t *containers,
                              struct errinfo *e);

/* Removes an image (a reference or an id). 409 when a container uses it
 * and not force. 0 or -1 with e. */
int images_remove(struct images *im, const char *ref, int force, struct errinfo *e);

/* A pull, a push, a build or an app's clone, run in the background like a
 * pull. */
#define IMAGES_PULL 0
#define IMAGES_PUSH 1
#define IMAGES_BUILD 2
#define IMAGES_CLONE 3 /* an app's git clone into its folder (engine_app_dir) */
struct images_job {
    int kind;
    const char *image;   /* pull, push: the reference; build: the tag it gets; clone: the app's name */
    const json_t *auth;  /* {"username","password","serveraddress"} or NULL */
    FILE *ctx;           /* build: the context (a tar), the job's from its start; or NULL */
    long long ctx_size;
    const char *remote;  /* build: a git URL ("#REF[:FOLDER]" allowed) instead of ctx, or NULL:
                          * the agent clones it (libgit2) and sends its tree, without .git,
                          * as the context, so every engine builds from git alike */
    long long git_max_bytes; /* build from remote: the clone's bound (0: none) */
    int git_stall_s;         /* build from remote: a clone silent this long is killed */
    /* clone: remote is the URL ("#REF", no folder); a fresh clone replaces
     * the folder once it is complete (what git does not track is lost),
     * fetch updates the clone there (untracked files stay); the folder is
     * then chowned to uid:gid (-1: left as is) */
    int fetch;
    long uid, gid;
    const struct gitclone_auth *git_auth; /* clone: a private repository's credentials (copied), or NULL */
};

/* Starts job: its first state (as images_pull_get, with "kind"), or NULL
 * with e (400 naming the field, 429 when IMAGES_MAX_RUNNING run already:
 * then ctx stays the caller's). */
json_t *images_job_start(struct images *im, const struct images_job *job, struct errinfo *e);

/* "X-Registry-Auth: " and auth as the engines read it (base64url JSON). A
 * new string. */
char *images_auth_header(const json_t *auth);

/* Starts pulling ref (":latest" when it names no tag or digest): the
 * pull's first state (see images_pull_get), or NULL with e (400 naming
 * "image", 429 when IMAGES_MAX_RUNNING run already). */
json_t *images_pull_start(struct images *im, const char *ref, struct errinfo *e);

/* One pull: {"id","image","state":"running"|"done"|"failed","status",
 * "error","layers":[{"id","status","current","total"}],"bytes_done",
 * "bytes_total","layers_done","started","finished"}, or NULL (404). */
json_t *images_pull_get(struct images *im, int id, struct errinfo *e);
/* Every remembered pull, newest first. */
json_t *images_pulls(struct images *im);

/* A build's log read as it grows: waits up to wait_ms for text past
 * *offset (0 at first) or the job's end; appends the new text to out and
 * advances *offset (text the job dropped as too old, past its newest 64 KB,
 * is skipped). Returns 1 while the job runs, 0 once it has ended and all
 * its text was given, -1 with e (404) when there is no such build. */
int images_build_log(struct images *im, int id, long long *offset, struct buf *out, int wait_ms, struct errinfo *e);

/* The reader of the engine's pull stream (JSON objects, one per line, in
 * chunks cut anywhere). Exposed for the fuzz target and the unit test. */
struct pullprog;
struct pullprog *pullprog_new(void);
void pullprog_free(struct pullprog *p);
/* Reads a chunk; lines that are not JSON objects are skipped. */
void pullprog_feed(struct pullprog *p, const char *data, size_t len);
/* What it says so far: {"status","error","layers","bytes_done",
 * "bytes_total","layers_done"} (error null unless the engine sent one). */
json_t *pullprog_json(const struct pullprog *p);
/* The engine's error line, or NULL. */
const char *pullprog_error(const struct pullprog *p);

#endif
