/* git clones with libgit2 (see gitclone.h). */
#include "gitclone.h"

#include <errno.h>
#include <ftw.h>
#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    git_libgit2_init();
}

struct run {
    const struct gitclone_opts *o;
    struct gitclone_progress p;
    int stopped, too_big;
};

static int on_transfer(const git_indexer_progress *s, void *arg)
{
    struct run *r = arg;
    r->p.objects_total = s->total_objects;
    r->p.objects_received = s->received_objects;
    r->p.objects_indexed = s->indexed_objects;
    r->p.bytes_received = s->received_bytes;
    if (r->o->max_bytes && (long long)s->received_bytes > r->o->max_bytes) {
        r->too_big = 1;
        return -1;
    }
    if (r->o->progress && r->o->progress(r->o->arg, &r->p)) {
        r->stopped = 1;
        return -1;
    }
    return 0;
}

static void on_checkout(const char *path, size_t done, size_t total, void *arg)
{
    struct run *r = arg;
    (void)path;
    r->p.files_done = (unsigned)done;
    r->p.files_total = (unsigned)total;
    if (r->o->progress && !r->stopped && r->o->progress(r->o->arg, &r->p))
        r->stopped = 1; /* a checkout cannot be stopped midway; the caller learns at its end */
}

static const char *last_error(void)
{
    const git_error *g = git_error_last();
    return g && g->message ? g->message : "unknown error";
}

/* The commit ref names: a remote branch first (what "main" means to a
 * user), then a tag, then anything git reads (a commit's hex). */
static int resolve(git_repository *repo, const char *ref, git_object **commit)
{
    char spec[300];
    git_object *obj = NULL;
    const char *forms[] = {"refs/remotes/origin/%s", "refs/tags/%s", "%s"};

    if (!ref || !*ref)
        return git_revparse_single(commit, repo, "HEAD^{commit}");
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        snprintf(spec, sizeof(spec), forms[i], ref);
        if (git_revparse_single(&obj, repo, spec) == 0) {
            int rc = git_object_peel(commit, obj, GIT_OBJECT_COMMIT);
            git_object_free(obj);
            return rc;
        }
    }
    return -1;
}

int gitclone_run(const struct gitclone_opts *o, char sha[41], struct errinfo *e)
{
    git_clone_options copts;
    git_checkout_options chk;
    git_repository *repo = NULL;
    git_object *commit = NULL;
    struct run r = {.o = o};
    int rc = -1;

    pthread_once(&init_once, init);
    /* the _INIT macros leave fields out, which -Wextra refuses */
    git_clone_options_init(&copts, GIT_CLONE_OPTIONS_VERSION);
    git_checkout_options_init(&chk, GIT_CHECKOUT_OPTIONS_VERSION);
    sha[0] = 0;
    copts.fetch_opts.callbacks.transfer_progress = on_transfer;
    copts.fetch_opts.callbacks.payload = &r;
    /* checked out below, at the ref asked for */
    copts.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
    if (git_clone(&repo, o->url, o->dir, &copts) != 0) {
        if (r.too_big)
            errinfo_set(e, 413, "too_large", "git", "the repository is over %lld MiB (git_clone_max_mib)",
                        o->max_bytes >> 20);
        else if (r.stopped)
            errinfo_set(e, 499, "stopped", NULL, "the clone was stopped");
        else
            errinfo_set(e, 502, "git_failed", "git", "cloning %.300s: %.200s", o->url, last_error());
        goto out;
    }
    if (resolve(repo, o->ref, &commit) != 0) {
        errinfo_set(e, 404, "not_found", "git", "%.300s has no branch, tag or commit \"%.100s\"", o->url,
                    o->ref && *o->ref ? o->ref : "HEAD");
        goto out;
    }
    chk.checkout_strategy = GIT_CHECKOUT_FORCE;
    chk.progress_cb = on_checkout;
    chk.progress_payload = &r;
    if (git_checkout_tree(repo, commit, &chk) != 0 || git_repository_set_head_detached(repo, git_object_id(commit)) != 0) {
        errinfo_set(e, 500, "git_failed", "git", "checking out %.100s: %.200s", o->ref && *o->ref ? o->ref : "HEAD",
                    last_error());
        goto out;
    }
    if (r.stopped) {
        errinfo_set(e, 499, "stopped", NULL, "the clone was stopped");
        goto out;
    }
    git_oid_tostr(sha, 41, git_object_id(commit));
    rc = 0;
out:
    git_object_free(commit);
    git_repository_free(repo);
    return rc;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int gitclone_remove_tree(const char *dir)
{
    /* depth first, links removed as links */
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
