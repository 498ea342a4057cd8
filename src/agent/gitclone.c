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

#include "../lib/base64.h"
#include "../lib/buf.h"
#include "../lib/now.h"

extern char **environ;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    git_libgit2_init();
    /* an app's clone belongs to the user the app runs as (the agent gives
     * it to them): git's check that a repository is the caller's own would
     * refuse the agent's fetch into it */
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
}

struct run {
    const struct gitclone_opts *o;
    struct gitclone_progress p;
    int stopped, too_big;
    unsigned asked; /* GIT_CREDENTIAL_* offered */
};

/* The credentials of a private repository, each kind offered once: a
 * remote that asks again refused them. Over ssh, libgit2 may ask for the
 * user name first (an ssh:// URL without one), then for the key. */
static int on_credentials(git_credential **out, const char *url, const char *user_from_url, unsigned int allowed,
                          void *arg)
{
    struct run *r = arg;
    const struct gitclone_auth *a = r->o->auth;
    const char *user = user_from_url && *user_from_url ? user_from_url : a && a->user[0] ? a->user : "git";

    (void)url;
    if ((allowed & (GIT_CREDENTIAL_SSH_KEY | GIT_CREDENTIAL_USERNAME)) && !(a && a->ssh_key[0])) {
        git_error_set_str(GIT_ERROR_SSH, "an ssh repository needs a private key (repository_auth.ssh_key)");
        return GIT_EAUTH;
    }
    if (!a || r->asked & allowed)
        return GIT_EAUTH;
    if (allowed & GIT_CREDENTIAL_SSH_KEY) {
        r->asked |= GIT_CREDENTIAL_SSH_KEY;
        return git_credential_ssh_key_memory_new(out, user, NULL, a->ssh_key, a->passphrase[0] ? a->passphrase : NULL);
    }
    if (allowed & GIT_CREDENTIAL_USERNAME) {
        r->asked |= GIT_CREDENTIAL_USERNAME;
        return git_credential_username_new(out, user);
    }
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && a->user[0]) {
        r->asked |= GIT_CREDENTIAL_USERPASS_PLAINTEXT;
        return git_credential_userpass_plaintext_new(out, a->user, a->password);
    }
    return GIT_EAUTH;
}

/* An ssh server's host key: the one pinned, or (none pinned yet) learnt
 * and reported. TLS certificates are libgit2's own to verify. */
static int on_certificate(git_cert *cert, int valid, const char *host, void *arg)
{
    struct run *r = arg;
    const git_cert_hostkey *k = (const git_cert_hostkey *)cert;
    const char *pin = r->o->auth ? r->o->auth->host_key : "";
    char fp[64] = "SHA256:", msg[300];

    (void)valid;
    if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
        return GIT_PASSTHROUGH;
    if (!(k->type & GIT_CERT_SSH_SHA256)) {
        git_error_set_str(GIT_ERROR_SSH, "the ssh server's host key came without a SHA-256 fingerprint");
        return GIT_ECERTIFICATE;
    }
    base64_encode(k->hash_sha256, sizeof(k->hash_sha256), 0, fp + 7, sizeof(fp) - 7);
    if (r->o->host_key_out)
        snprintf(r->o->host_key_out, 64, "%s", fp);
    if (*pin && strcmp(pin, fp)) {
        snprintf(msg, sizeof(msg), "the host key of %s changed: pinned %s, it shows %s (a new server, or someone in between)",
                 host, pin, fp);
        git_error_set_str(GIT_ERROR_SSH, msg);
        return GIT_ECERTIFICATE;
    }
    return 0;
}

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

/* Why a transfer failed: too big, stopped, or the remote's word. */
static void transfer_error(const struct gitclone_opts *o, const struct run *r, const char *doing, struct errinfo *e)
{
    if (r->too_big)
        errinfo_set(e, 413, "too_large", "git", "the repository is over %lld MiB (git_clone_max_mib)", o->max_bytes >> 20);
    else if (r->stopped)
        errinfo_set(e, 499, "stopped", NULL, "the clone was stopped");
    else
        errinfo_set(e, 502, "git_failed", "git", "%s %.300s: %.200s", doing, o->url, last_error());
}

/* The remote's heads and tags into dir's clone (refs/remotes/origin/...,
 * refs/tags/...); head gets the name of the branch the remote's HEAD is. */
static int fetch(const struct gitclone_opts *o, git_repository *repo, struct run *r, char *head, size_t headlen,
                 struct errinfo *e)
{
    char *specs[] = {"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"};
    git_strarray refspecs = {specs, 2};
    git_fetch_options fo;
    git_remote *remote = NULL;
    git_buf def = {0};
    int rc = -1;

    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks.transfer_progress = on_transfer;
    fo.callbacks.credentials = on_credentials;
    fo.callbacks.certificate_check = on_certificate;
    fo.callbacks.payload = r;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
    fo.prune = GIT_FETCH_PRUNE;
    if (git_remote_create_anonymous(&remote, repo, o->url) != 0 || git_remote_fetch(remote, &refspecs, &fo, NULL) != 0) {
        transfer_error(o, r, "fetching", e);
        goto out;
    }
    head[0] = 0;
    if (git_remote_default_branch(&def, remote) == 0 && !strncmp(def.ptr, "refs/heads/", 11))
        snprintf(head, headlen, "%s", def.ptr + 11);
    rc = 0;
out:
    git_buf_dispose(&def);
    git_remote_free(remote);
    return rc;
}

static int is_hex(const char *s)
{
    size_t n = strlen(s);
    return n >= 4 && n <= 40 && strspn(s, "0123456789abcdef") == n;
}

/* GITCLONE_CHECK: the remote's answer to ls-remote, no objects fetched. */
static int check(const struct gitclone_opts *o, char sha[41], struct errinfo *e)
{
    git_remote *remote = NULL;
    git_remote_callbacks cb;
    struct run r = {.o = o};
    const git_remote_head **heads;
    size_t n;
    char want[3][300];
    int rc = -1;
    const char *ref = o->ref ? o->ref : "";

    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    cb.credentials = on_credentials;
    cb.certificate_check = on_certificate;
    cb.payload = &r;
    if (git_remote_create_detached(&remote, o->url) != 0 ||
        git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL) != 0 || git_remote_ls(&heads, &n, remote) != 0) {
        errinfo_set(e, 502, "git_failed", "repository", "%.300s: %.200s", o->url, last_error());
        goto out;
    }
    /* a peeled tag (refs/tags/X^{}) names the commit; it comes after X */
    snprintf(want[0], sizeof(want[0]), "%s", *ref ? "" : "HEAD");
    snprintf(want[1], sizeof(want[1]), "refs/heads/%s", ref);
    snprintf(want[2], sizeof(want[2]), "refs/tags/%s", ref);
    for (size_t i = 0; i < n; i++) {
        const char *name = heads[i]->name;
        size_t tl = strlen(want[2]);
        int hit = *ref ? !strcmp(name, want[1]) || !strcmp(name, want[2]) ||
                             (!strncmp(name, want[2], tl) && !strcmp(name + tl, "^{}"))
                       : !strcmp(name, want[0]);
        if (hit)
            git_oid_tostr(sha, 41, &heads[i]->oid);
    }
    if (!sha[0] && is_hex(ref))
        memset(sha, '0', 40), sha[40] = 0; /* a commit: known once fetched */
    if (!sha[0]) {
        errinfo_set(e, 404, "not_found", "ref", "%.300s has no branch, tag or commit \"%.100s\"", o->url,
                    *ref ? ref : "HEAD");
        goto out;
    }
    rc = 0;
out:
    git_remote_free(remote);
    return rc;
}

int gitclone_run(const struct gitclone_opts *o, char sha[41], struct errinfo *e)
{
    git_clone_options copts;
    git_checkout_options chk;
    git_repository *repo = NULL;
    git_object *commit = NULL;
    struct run r = {.o = o};
    char head[320] = "";
    int rc = -1;

    pthread_once(&init_once, init);
    sha[0] = 0;
    if (o->mode == GITCLONE_CHECK)
        return check(o, sha, e);
    /* the _INIT macros leave fields out, which -Wextra refuses */
    git_clone_options_init(&copts, GIT_CLONE_OPTIONS_VERSION);
    git_checkout_options_init(&chk, GIT_CHECKOUT_OPTIONS_VERSION);
    copts.fetch_opts.callbacks.transfer_progress = on_transfer;
    copts.fetch_opts.callbacks.credentials = on_credentials;
    copts.fetch_opts.callbacks.certificate_check = on_certificate;
    copts.fetch_opts.callbacks.payload = &r;
    /* checked out below, at the ref asked for */
    copts.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
    if (o->mode == GITCLONE_FETCH) {
        if (git_repository_open(&repo, o->dir) != 0) {
            errinfo_set(e, 409, "not_a_clone", "git", "%s is not a git clone: %.200s", o->dir, last_error());
            goto out;
        }
        if (fetch(o, repo, &r, head, sizeof(head), e) < 0)
            goto out;
    } else if (git_clone(&repo, o->url, o->dir, &copts) != 0) {
        transfer_error(o, &r, "cloning", e);
        goto out;
    }
    /* the remote's HEAD after a fetch is its default branch, not ours */
    if (resolve(repo, o->ref && *o->ref ? o->ref : head, &commit) != 0) {
        errinfo_set(e, 404, "not_found", "git", "%.300s has no branch, tag or commit \"%.100s\"", o->url,
                    o->ref && *o->ref ? o->ref : "HEAD");
        goto out;
    }
    /* FORCE: what the clone tracks becomes the commit's; files it does not
     * track (an app's downloads) stay */
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

/* The credentials on stdin (see gitclone_child_main): 0, or -1. */
static int read_auth(struct gitclone_auth *a)
{
    char *lines[] = {a->user, a->password, a->passphrase, a->host_key};
    size_t lens[] = {sizeof(a->user), sizeof(a->password), sizeof(a->passphrase), sizeof(a->host_key)};

    for (size_t i = 0; i < 4; i++) {
        if (!fgets(lines[i], (int)lens[i], stdin))
            return -1;
        lines[i][strcspn(lines[i], "\n")] = 0;
    }
    size_t n = fread(a->ssh_key, 1, sizeof(a->ssh_key) - 1, stdin);
    a->ssh_key[n] = 0;
    return 0;
}

int gitclone_child_main(int argc, char **argv)
{
    struct child_out c = {0};
    struct errinfo e = {0};
    char sha[41], seen[64] = "";
    static struct gitclone_auth auth; /* 17 KB: not on the stack */
    int has_auth = argc == 7 && !strcmp(argv[6], "auth");

    if (argc != 7) {
        printf("ERR 500 git-clone wants URL REF DIR MAX_BYTES MODE AUTH\n");
        return 1;
    }
    if (has_auth && read_auth(&auth) < 0) {
        printf("ERR 500 git-clone: no credentials on stdin\n");
        return 1;
    }
    struct gitclone_opts o = {.url = argv[1], .ref = argv[2], .dir = argv[3], .max_bytes = atoll(argv[4]),
                              .auth = has_auth ? &auth : NULL, .host_key_out = seen,
                              .progress = child_progress, .arg = &c};
    o.mode = !strcmp(argv[5], "fetch") ? GITCLONE_FETCH : !strcmp(argv[5], "check") ? GITCLONE_CHECK : GITCLONE_CLONE;
    int rc = gitclone_run(&o, sha, &e);
    explicit_bzero(&auth, sizeof(auth));
    if (seen[0])
        printf("H %s\n", seen);
    if (rc < 0)
        printf("ERR %d %s\n", e.status ? e.status : 500, e.message);
    else
        printf("OK %s\n", sha);
    /* said before exit's handlers run (a sanitizer's may end the process) */
    fflush(stdout);
    return rc < 0 ? 1 : 0;
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
    if (!strncmp(line, "H SHA256:", 9) && strlen(line + 2) < 64) {
        if (o->host_key_out)
            snprintf(o->host_key_out, 64, "%s", line + 2);
        return 0;
    }
    if (!strncmp(line, "OK ", 3) && strlen(line + 3) == 40) {
        memcpy(sha, line + 3, 41);
        return 1;
    }
    if (sscanf(line, "ERR %d %299[^\n]", &status, msg) == 2) {
        errinfo_set(e, status, status == 404 ? "not_found" : status == 413 ? "too_large" : "git_failed",
                    o->mode == GITCLONE_CHECK ? (status == 404 ? "ref" : "repository") : "git", "%s", msg);
        return 1;
    }
    return 0;
}

int gitclone_spawn(const struct gitclone_opts *o, int stall_s, char sha[41], struct errinfo *e)
{
    int fds[2] = {-1, -1}, in[2] = {-1, -1}, done = 0, stop = 0, rc = -1;
    const struct gitclone_auth *a = o->auth;
    int auth = a != NULL;

    if (a && (strchr(a->user, '\n') || strchr(a->password, '\n') || strchr(a->passphrase, '\n') ||
              strchr(a->host_key, '\n'))) {
        errinfo_set(e, 400, "invalid_field", "repository_auth", "credentials have no line breaks");
        return -1;
    }
    if (o->host_key_out)
        o->host_key_out[0] = 0;
    pid_t pid = -1;
    char maxb[32];
    /* the running binary even when an upgrade replaced its file meanwhile */
    const char *self = "/proc/self/exe";
    struct buf got;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;

    sha[0] = 0;
    buf_init(&got, 64u << 10);
    if (pipe2(fds, O_CLOEXEC) < 0) {
        errinfo_set(e, 500, "internal", NULL, "cannot start the clone: %s", strerror(errno));
        goto out;
    }
    snprintf(maxb, sizeof(maxb), "%lld", o->max_bytes);
    static const char *const modes[] = {"clone", "fetch", "check"};
    char *argv[] = {"gpufleet-agent", "git-clone", (char *)o->url, (char *)(o->ref ? o->ref : ""),
                    (char *)(o->dir ? o->dir : "-"), maxb, (char *)modes[o->mode], (char *)(auth ? "auth" : "-"), NULL};
    /* credentials go on the child's stdin: argv is anyone's to read in /proc */
    if (auth && pipe2(in, O_CLOEXEC) < 0) {
        errinfo_set(e, 500, "internal", NULL, "cannot start the clone: %s", strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    if (auth)
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    else
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
    if (auth) { /* at most 18 KB: the pipe (64 KB) takes them at once */
        close(in[0]);
        in[0] = -1;
        dprintf(in[1], "%s\n%s\n%s\n%s\n%s", a->user, a->password, a->passphrase, a->host_key, a->ssh_key);
        close(in[1]);
        in[1] = -1;
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
        if (buf_append(&got, chunk, (size_t)k) < 0)
            break; /* a line past 64 KB: not ours */
        char *nl;
        while (!done && !stop && (nl = memchr(got.data, '\n', got.len))) {
            *nl = 0;
            done = child_line(o, got.data, sha, e, &stop);
            size_t used = (size_t)(nl - got.data) + 1;
            memmove(got.data, got.data + used, got.len - used);
            got.len -= used;
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
    if (in[0] >= 0)
        close(in[0]);
    if (in[1] >= 0)
        close(in[1]);
    buf_free(&got);
    return rc;
}
