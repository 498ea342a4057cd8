/* Cloning a git repository on the host with libgit2: for builds from a
 * git URL (on every engine, Podman's API has no git) and for apps. URLs as
 * ctrspec_git_split takes them: https://, http://, git://, and ssh (with
 * a key: gitclone_auth). */
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

/* A private repository's credentials: user and password (a token) over
 * http(s); a private key over ssh, and the server's host key it must show
 * ("SHA256:..." as OpenSSH prints it; "" on first contact, which learns it:
 * gitclone_opts.host_key_out). Wiped by whoever holds them. */
struct gitclone_auth {
    char user[256];       /* ssh: when the URL names none ("git" when neither) */
    char password[1024];
    char ssh_key[16384];  /* OpenSSH or PEM private key text */
    char passphrase[256]; /* the key's, or "" */
    char host_key[64];
};

struct gitclone_opts {
    enum gitclone_mode mode;
    const char *url;      /* without "#..." */
    const char *ref;      /* a branch, a tag or a commit's hex; "" or NULL: the remote's HEAD */
    const struct gitclone_auth *auth; /* or NULL: a public repository */
    char *host_key_out;   /* or NULL; else 64 bytes: the ssh server's host key seen, or "" */
    const char *dir;      /* made by the clone: must not exist, or be empty */
    long long max_bytes;  /* the transfer's bound (0: none) */
    gitclone_fn progress; /* or NULL */
    void *arg;
};

/* Clones o->url into o->dir (or fetches into it, or only asks the remote:
 * o->mode) and checks out o->ref (detached). Fills sha (41 bytes) with the
 * commit checked out. Returns 0, or -1 with e: 502
 * (the remote could not be reached or refused, an ssh host key other than
 * the pinned one), 404 (no such ref), 413 (over max_bytes), 499 (stopped
 * by progress), 500. What was cloned of a failed clone is left in dir for
 * the caller to remove. */
int gitclone_run(const struct gitclone_opts *o, char sha[41], struct errinfo *e);

/* As gitclone_run, but in a child process (this binary again, its
 * "git-clone" subcommand): libgit2 1.5 leaks a little on each clone and
 * has no transfer timeout, so the clone runs where an exit frees all and a
 * kill ends it. A child silent for stall_s seconds is killed (504); a
 * progress callback that says stop kills it too (499). */
int gitclone_spawn(const struct gitclone_opts *o, int stall_s, char sha[41], struct errinfo *e);

/* The child's side: argv = {"git-clone", URL, REF, DIR, MAX_BYTES, MODE,
 * AUTH} (MODE "clone", "fetch" or "check"; AUTH "auth": the credentials are
 * on stdin, never in argv — user, password, passphrase and host key a line
 * each, then the private key to the end —, "-": none). Writes progress
 * lines "P total received indexed bytes files_total files_done", "H
 * SHA256:..." when an ssh server showed its host key, then "OK SHA" or
 * "ERR STATUS MESSAGE", on stdout. Its exit status: 0 or 1. */
int gitclone_child_main(int argc, char **argv);

/* Removes dir and everything under it (never following links). 0 or -1. */
int gitclone_remove_tree(const char *dir);

#endif
