/* Streams out of the host's containers for the server, on connections the
 * agent upgrades: a container's logs (follow or not) and an interactive
 * exec with a TTY (the web terminal). Each runs on a thread of its own in
 * a bounded set. On the upgraded connection the agent first writes one
 * JSON line, {"ok":true,...} or {"error":{"code","message"}}, then:
 *   logs: the engine's multiplexed frames (muxframe.h), a TTY container's
 *         raw output wrapped as stdout frames; the connection closes when
 *         the logs end (at once without follow, when the container stops
 *         with it);
 *   exec: the TTY's raw bytes both ways until either side closes;
 *   archive: the engine's tar of a path (GET /containers/{id}/archive),
 *         then the connection closes;
 *   build: a build job's log (images.h) as stdout frames as it grows,
 *         from its start (its newest 64 KB); closes when the build ends. */
#ifndef GF_ATTACH_H
#define GF_ATTACH_H

#include "../lib/errinfo.h"

struct engine;
struct images;
struct streamset;

/* the Upgrade the server asks for, and the streams open at once at most */
#define ATTACH_UPGRADE "gpufleet-stream"
#define ATTACH_MAX_STREAMS 64

#define ATTACH_LOGS 1
#define ATTACH_EXEC 2
#define ATTACH_ARCHIVE 3 /* a file or folder as the engine's tar, raw */
#define ATTACH_BUILD 4   /* a build job's log; id is the job's number */

struct attach_req {
    int kind;
    char id[129];       /* the engine's container id or name */
    /* logs */
    long tail;          /* lines from the end; -1: all */
    long long since_s;  /* 0: from the start */
    int follow, timestamps;
    /* exec */
    int rows, cols;     /* the terminal's size; 0: the engine's default */
    /* archive */
    char path[4097];
    /* build: the jobs (the caller's) */
    struct images *images;
};

/* Reads and checks a request's query parameters (each may be NULL) into
 * r for kind. 0, or -1 with e naming the parameter. */
int attach_parse(int kind, const char *id, const char *tail, const char *since,
                 const char *follow, const char *timestamps, const char *rows,
                 const char *cols, struct attach_req *r, struct errinfo *e);

/* Serves r on sock (an upgraded connection; mhd_urh is libmicrohttpd's
 * handle to close it, NULL: close(sock)) on a thread of set, whose seat
 * the caller reserved (user 0). Returns 0, or -1 (the set is closing: the
 * connection is closed and the seat given back). */
int attach_start(struct engine *eng, struct streamset *set, const struct attach_req *r,
                 int sock, void *mhd_urh);

/* Resizes an exec's TTY. 0, or -1 with e. */
int attach_resize(struct engine *eng, const char *exec_id, int rows, int cols, struct errinfo *e);

#endif
