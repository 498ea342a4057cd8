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

enum gitclone_mode {
    GITCLONE_CLONE, /* a fresh clone into dir */
    GITCLONE_FETCH, /* dir is a clone already: fetch, then check out ref; files git does not track stay */
    GITCLONE_CHECK, /* no clone: ask the remote what ref is (its commit; zeros for a commit's hex) */
};

struct gitclone_opts {
    enum gitclone_mode mode;
    const char *url;      /* without "#..." */
    const char *ref;      /* a branch, a tag or a commit's hex; "" or NULL: the remote's HEAD */
    const char *user;     /* HTTP credentials for a private repository, or NULL */
    const char *password;
    const char *dir;      /* made by the clone: must not exist, or be empty */
    long long max_bytes;  /* the transfer's bound (0: none) */
    gitclone_fn progress; /* or NULL */
    void *arg;
};

/* Clones o->url into o->dir (or fetches into it, or only asks the remote:
 * o->mode) and checks out o->ref (detached). Fills sha (41 bytes) with the
 * commit checked out. Returns 0, or -1 with e: 502
 * (the remote could not be reached or refused), 404 (no such ref), 413
 * (over max_bytes), 499 (stopped by progress), 500. What was cloned of a
 * failed clone is left in dir for the caller to remove. */
int gitclone_run(const struct gitclone_opts *o, char sha[41], struct errinfo *e);

/* As gitclone_run, but in a child process (this binary again, its
 * "git-clone" subcommand): libgit2 1.5 leaks a little on each clone and
 * has no transfer timeout, so the clone runs where an exit frees all and a
 * kill ends it. A child silent for stall_s seconds is killed (504); a
 * progress callback that says stop kills it too (499). */
int gitclone_spawn(const struct gitclone_opts *o, int stall_s, char sha[41], struct errinfo *e);

/* The child's side: argv = {"git-clone", URL, REF, DIR, MAX_BYTES, MODE,
 * AUTH} (MODE "clone", "fetch" or "check"; AUTH "auth": the user and the
 * password are the first two lines of stdin, never in argv, "-": none).
 * Writes progress lines "P total received indexed bytes files_total
 * files_done", then "OK SHA" or "ERR STATUS MESSAGE", on stdout. Its exit
 * status: 0 or 1. */
int gitclone_child_main(int argc, char **argv);

/* Removes dir and everything under it (never following links). 0 or -1. */
int gitclone_remove_tree(const char *dir);

#endif
