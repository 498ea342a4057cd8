/* git clones with libgit2 (see gitclone.h). */
#include "gitclone.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <git2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/buf.h"
#include "../lib/now.h"

extern char **environ;

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

/* ---- the clone in a child process ---- */

struct child_out {
    int64_t last_ns;
    int said_fetched, said_end;
};

static int child_progress(void *arg, const struct gitclone_progress *p)
{
    struct child_out *c = arg;
    int64_t now = now_mono_ns();
    int fetched = p->objects_total && p->objects_indexed == p->objects_total;
    int end = p->files_total && p->files_done == p->files_total;
    /* libgit2 calls per packet: a line each 100 ms, and the ends of the
     * transfer and of the checkout always */
    int edge = (fetched && !c->said_fetched) || (end && !c->said_end);
    if (!edge && now - c->last_ns < 100000000LL)
        return 0;
    c->said_fetched |= fetched;
    c->said_end |= end;
    c->last_ns = now;
    printf("P %u %u %u %llu %u %u\n", p->objects_total, p->objects_received, p->objects_indexed, p->bytes_received,
           p->files_total, p->files_done);
    fflush(stdout);
    return 0;
}

int gitclone_child_main(int argc, char **argv)
{
    struct child_out c = {0};
    struct errinfo e = {0};
    char sha[41];

    if (argc != 5) {
        printf("ERR 500 git-clone wants URL REF DIR MAX_BYTES\n");
        return 1;
    }
    struct gitclone_opts o = {.url = argv[1], .ref = argv[2], .dir = argv[3], .max_bytes = atoll(argv[4]),
                              .progress = child_progress, .arg = &c};
    if (gitclone_run(&o, sha, &e) < 0) {
        printf("ERR %d %s\n", e.status ? e.status : 500, e.message);
        return 1;
    }
    printf("OK %s\n", sha);
    return 0;
}

/* One line of the child's: progress, the end (1), or nothing known (0). */
static int child_line(const struct gitclone_opts *o, char *line, char sha[41], struct errinfo *e, int *stop)
{
    struct gitclone_progress p = {0};
    int status;
    char msg[300];

    if (sscanf(line, "P %u %u %u %llu %u %u", &p.objects_total, &p.objects_received, &p.objects_indexed,
               &p.bytes_received, &p.files_total, &p.files_done) == 6) {
        if (o->progress && o->progress(o->arg, &p))
            *stop = 1;
        return 0;
    }
    if (!strncmp(line, "OK ", 3) && strlen(line + 3) == 40) {
        memcpy(sha, line + 3, 41);
        return 1;
    }
    if (sscanf(line, "ERR %d %299[^\n]", &status, msg) == 2) {
        errinfo_set(e, status, status == 404 ? "not_found" : status == 413 ? "too_large" : "git_failed", "git", "%s",
                    msg);
        return 1;
    }
    return 0;
}

int gitclone_spawn(const struct gitclone_opts *o, int stall_s, char sha[41], struct errinfo *e)
{
    int fds[2] = {-1, -1}, done = 0, stop = 0, rc = -1;
    pid_t pid = -1;
    char maxb[32];
    /* the running binary even when an upgrade replaced its file meanwhile */
    const char *self = "/proc/self/exe";
    struct buf in;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;

    sha[0] = 0;
    buf_init(&in, 64u << 10);
    if (pipe2(fds, O_CLOEXEC) < 0) {
        errinfo_set(e, 500, "internal", NULL, "cannot start the clone: %s", strerror(errno));
        goto out;
    }
    snprintf(maxb, sizeof(maxb), "%lld", o->max_bytes);
    char *argv[] = {"gpufleet-agent", "git-clone", (char *)o->url, (char *)(o->ref ? o->ref : ""), (char *)o->dir, maxb, NULL};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    /* none of the agent's sockets (its listener, streams) in the child */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    /* the agent blocks termination signals in every thread: not the child */
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    int err = posix_spawn(&pid, self, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[1]);
    fds[1] = -1;
    if (err) {
        pid = -1;
        errinfo_set(e, 500, "internal", NULL, "cannot start the clone: %s", strerror(err));
        goto out;
    }
    while (!done && !stop) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, stall_s * 1000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            errinfo_set(e, 504, "git_stalled", "git", "cloning %.300s: nothing came for %d s", o->url, stall_s);
            break;
        }
        char chunk[4096];
        ssize_t k = read(fds[0], chunk, sizeof(chunk));
        if (k <= 0)
            break;
        if (buf_append(&in, chunk, (size_t)k) < 0)
            break; /* a line past 64 KB: not ours */
        char *nl;
        while (!done && !stop && (nl = memchr(in.data, '\n', in.len))) {
            *nl = 0;
            done = child_line(o, in.data, sha, e, &stop);
            size_t used = (size_t)(nl - in.data) + 1;
            memmove(in.data, in.data + used, in.len - used);
            in.len -= used;
        }
    }
    if (stop)
        errinfo_set(e, 499, "stopped", NULL, "the clone was stopped");
    else if (!done && !e->status)
        errinfo_set(e, 500, "git_failed", "git", "the clone of %.300s ended without a word", o->url);
    rc = done && sha[0] ? 0 : -1;
out:
    if (pid > 0) {
        int st;
        if (rc < 0)
            kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    buf_free(&in);
    return rc;
}
