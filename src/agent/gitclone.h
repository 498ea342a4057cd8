/* Cloning a git repository on the host with libgit2: for builds from a
 * git URL (on every engine, Podman's API has no git) and for apps. Only
 * https://, http:// and git:// URLs reach it (ctrspec_git_split). */
#ifndef GF_GITCLONE_H
#define GF_GITCLONE_H

#include <stddef.h>

#include "../lib/errinfo.h"

struct gitclone_progress {
    unsigned objects_total, objects_received, objects_indexed;
    unsigned long long bytes_received;
    unsigned files_total, files_done; /* the checkout */
};

/* Called as the clone goes (often: it may throttle what it reports).
 * Returns 0 to go on, anything else to stop the clone. */
typedef int (*gitclone_fn)(void *arg, const struct gitclone_progress *p);

struct gitclone_opts {
    const char *url;      /* without "#..." */
    const char *ref;      /* a branch, a tag or a commit's hex; "" or NULL: the remote's HEAD */
    const char *dir;      /* made by the clone: must not exist, or be empty */
    long long max_bytes;  /* the transfer's bound (0: none) */
    gitclone_fn progress; /* or NULL */
    void *arg;
};

/* Clones o->url into o->dir and checks out o->ref (detached). Fills sha
 * (41 bytes) with the commit checked out. Returns 0, or -1 with e: 502
 * (the remote could not be reached or refused), 404 (no such ref), 413
 * (over max_bytes), 499 (stopped by progress), 500. What was cloned of a
 * failed clone is left in dir for the caller to remove. */
int gitclone_run(const struct gitclone_opts *o, char sha[41], struct errinfo *e);

/* Removes dir and everything under it (never following links). 0 or -1. */
int gitclone_remove_tree(const char *dir);

#endif
