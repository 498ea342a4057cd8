/* Filesystem collector (node_exporter's filesystem collector). statvfs runs
 * on a helper thread with a deadline: a hung network mount (an NFS home
 * whose server went away) blocks the thread that asks it, uninterruptibly,
 * and must not stop the sampler and with it every GPU figure. */
#include "collect_filesystem.h"

#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "../../lib/log.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../collector.h"
#include "../procfs.h"

#define MOUNT_MAX 512

static int match(const char *pattern, regex_t *re, int *compiled, const char *s)
{
    if (!*compiled) {
        if (regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
            return 0;
        *compiled = 1;
    }
    return regexec(re, s, 0, NULL, 0) == 0;
}

int mount_point_excluded(const char *mountpoint)
{
    static regex_t re;
    static int compiled;
    return match("^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/"
                 "storage/.+)($|/)",
                 &re, &compiled, mountpoint);
}

int fs_type_excluded(const char *fstype)
{
    static regex_t re;
    static int compiled;
    return match("^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|"
                 "hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|"
                 "securityfs|selinuxfs|squashfs|sysfs|tracefs)$",
                 &re, &compiled, fstype);
}

/* Copies src into dst decoding the kernel's octal escapes (\040 = space). */
static int unescape(char *dst, size_t cap, const char *src)
{
    size_t k = 0;

    for (const char *p = src; *p; p++) {
        if (k + 1 >= cap)
            return -1;
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            char c = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            dst[k++] = c ? c : '?';
            p += 3;
        } else {
            dst[k++] = *p;
        }
    }
    dst[k] = '\0';
    return 0;
}

size_t mounts_parse(char *text, size_t len, struct mount_entry *out, size_t max)
{
    size_t pos = 0, n = 0;
    char *line;

    while (n < max && (line = procfs_next_line(text, len, &pos))) {
        char *save = NULL;
        char *dev = strtok_r(line, " ", &save);
        char *mnt = dev ? strtok_r(NULL, " ", &save) : NULL;
        char *type = mnt ? strtok_r(NULL, " ", &save) : NULL;
        char *opts = type ? strtok_r(NULL, " ", &save) : NULL;
        struct mount_entry *e = &out[n];
        int dup = 0;

        if (!opts)
            continue;
        if (unescape(e->device, sizeof(e->device), dev) < 0 ||
            unescape(e->mountpoint, sizeof(e->mountpoint), mnt) < 0 ||
            unescape(e->fstype, sizeof(e->fstype), type) < 0)
            continue;
        if (mount_point_excluded(e->mountpoint) || fs_type_excluded(e->fstype))
            continue;
        e->readonly = !strncmp(opts, "ro", 2) && (opts[2] == ',' || opts[2] == '\0');
        for (size_t i = 0; i < n && !dup; i++)
            dup = !strcmp(out[i].device, e->device) && !strcmp(out[i].mountpoint, e->mountpoint) &&
                  !strcmp(out[i].fstype, e->fstype);
        if (!dup)
            n++;
    }
    return n;
}

struct fs_stat {
    double size, free, avail, files, files_free;
    int error, stale;
};

/* What the sampler and its statvfs helpers share. It outlives the
 * collector while a helper is still stuck in a mount (refs). */
#define STUCK_MAX 64
struct statter {
    pthread_mutex_t lock;
    pthread_cond_t done;
    int refs;
    char stuck[STUCK_MAX][256]; /* mount points whose statvfs has not returned */
};

/* One call, handed to a helper. The helper owns it once abandoned. */
struct job {
    struct statter *st;
    char path[4096], mountpoint[256];
    struct statvfs vfs;
    int rc, posted, finished, abandoned, quit;
};

struct fs_ctx {
    struct buf raw;
    struct mount_entry mounts[MOUNT_MAX];
    struct fs_stat st[MOUNT_MAX];
    struct statter *shared;
    struct job *helper; /* the helper's job slot; NULL: none running */
    int64_t timeout_ns;
};

static void statter_put(struct statter *st)
{
    pthread_mutex_lock(&st->lock);
    int last = --st->refs == 0;
    pthread_mutex_unlock(&st->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->done);
    free(st);
}

static int is_stuck(struct statter *st, const char *mountpoint)
{
    for (int i = 0; i < STUCK_MAX; i++)
        if (st->stuck[i][0] && !strcmp(st->stuck[i], mountpoint))
            return 1;
    return 0;
}

/* Runs the sampler's statvfs calls one after the other. When the sampler
 * gave up on one (abandoned), this thread is the mount's alone: once the
 * call returns at last, the mount is freed for the next sample and the
 * thread ends. */
static void *helper_main(void *arg)
{
    struct job *j = arg;
    struct statter *st = j->st;

    pthread_mutex_lock(&st->lock);
    for (;;) {
        while (!j->posted && !j->quit)
            pthread_cond_wait(&st->done, &st->lock);
        if (j->quit)
            break;
        pthread_mutex_unlock(&st->lock);
        struct statvfs vfs;
        int rc = statvfs(j->path, &vfs);
        pthread_mutex_lock(&st->lock);
        j->vfs = vfs;
        j->rc = rc;
        j->posted = 0;
        j->finished = 1;
        if (j->abandoned) {
            for (int i = 0; i < STUCK_MAX; i++)
                if (!strcmp(st->stuck[i], j->mountpoint))
                    st->stuck[i][0] = '\0';
            break;
        }
        pthread_cond_broadcast(&st->done);
    }
    pthread_mutex_unlock(&st->lock);
    free(j);
    statter_put(st);
    return NULL;
}

/* statvfs of path within the deadline. 0 with *vfs, -1 failed, -2 did not
 * answer in time (the mount is then stuck until its call returns). */
static int stat_within(struct fs_ctx *c, const char *path, const char *mountpoint, struct statvfs *vfs)
{
    struct statter *st = c->shared;
    if (!c->helper) {
        struct job *j = xcalloc(1, sizeof(*j));
        pthread_attr_t at;
        pthread_t t;
        j->st = st;
        pthread_mutex_lock(&st->lock);
        st->refs++;
        pthread_mutex_unlock(&st->lock);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, helper_main, j) != 0) {
            pthread_attr_destroy(&at);
            statter_put(st);
            free(j);
            return -1;
        }
        pthread_attr_destroy(&at);
        c->helper = j;
    }
    struct job *j = c->helper;
    int64_t deadline = now_mono_ns() + c->timeout_ns;
    pthread_mutex_lock(&st->lock);
    snprintf(j->path, sizeof(j->path), "%s", path);
    snprintf(j->mountpoint, sizeof(j->mountpoint), "%s", mountpoint);
    j->finished = 0;
    j->posted = 1;
    pthread_cond_broadcast(&st->done);
    while (!j->finished && now_cond_wait_until(&st->done, &st->lock, deadline) != ETIMEDOUT)
        ;
    int rc = j->finished ? (j->rc == 0 ? 0 : -1) : -2;
    if (rc == 0)
        *vfs = j->vfs;
    if (rc == -2) { /* the helper is the stuck mount's now; the next call gets another */
        j->abandoned = 1;
        for (int i = 0; i < STUCK_MAX; i++)
            if (!st->stuck[i][0]) {
                snprintf(st->stuck[i], sizeof(st->stuck[i]), "%s", mountpoint);
                break;
            }
        c->helper = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    if (rc == -2)
        log_warn("filesystem %s: statvfs did not answer in %lld ms; reported stale until it does",
                 mountpoint, (long long)(c->timeout_ns / 1000000));
    return rc;
}

static int fs_init(void **ctx, const struct agent_options *opts)
{
    struct fs_ctx *c = xcalloc(1, sizeof(*c));
    buf_init(&c->raw, 0);
    c->shared = xcalloc(1, sizeof(*c->shared));
    pthread_mutex_init(&c->shared->lock, NULL);
    now_cond_init(&c->shared->done);
    c->shared->refs = 1;
    c->timeout_ns = (opts ? opts->fs_timeout_ms : 1000) * 1000000LL;
    *ctx = c;
    return 0;
}

static void emit(struct sample_ctx *sc, struct fs_ctx *c, size_t n, const char *name,
                 const char *help, size_t field)
{
    expo_family(sc->w, name, EXPO_GAUGE, help);
    for (size_t i = 0; i < n; i++) {
        const struct fs_stat *s = &c->st[i];
        double v;
        if (s->error && field < 6)
            continue;
        switch (field) {
        case 0: v = s->size; break;
        case 1: v = s->free; break;
        case 2: v = s->avail; break;
        case 3: v = s->files; break;
        case 4: v = s->files_free; break;
        case 5: v = c->mounts[i].readonly; break;
        case 6: v = s->error; break;
        default: v = s->stale; break;
        }
        struct expo_label l[3] = {{"device", c->mounts[i].device},
                                  {"fstype", c->mounts[i].fstype},
                                  {"mountpoint", c->mounts[i].mountpoint}};
        expo_sample(sc->w, l, 3, v);
    }
}

static int fs_sample(void *ctx, struct sample_ctx *sc)
{
    struct fs_ctx *c = ctx;
    size_t n;
    char path[4096];

    if (procfs_read(sc->opts->proc_root, "proc/1/mounts", &c->raw) < 0 &&
        procfs_read(sc->opts->proc_root, "proc/self/mounts", &c->raw) < 0)
        return -1;
    n = mounts_parse(c->raw.data, c->raw.len, c->mounts, MOUNT_MAX);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        struct statvfs vfs;
        struct fs_stat *s = &c->st[i];
        memset(s, 0, sizeof(*s));
        pthread_mutex_lock(&c->shared->lock);
        s->stale = is_stuck(c->shared, c->mounts[i].mountpoint);
        pthread_mutex_unlock(&c->shared->lock);
        if (s->stale || procfs_path(path, sizeof(path), sc->opts->proc_root, c->mounts[i].mountpoint) < 0) {
            s->error = 1;
            continue;
        }
        int rc = stat_within(c, path, c->mounts[i].mountpoint, &vfs);
        if (rc < 0) {
            s->error = 1;
            s->stale = rc == -2;
            continue;
        }
        s->size = (double)vfs.f_blocks * (double)vfs.f_frsize;
        s->free = (double)vfs.f_bfree * (double)vfs.f_frsize;
        s->avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
        s->files = (double)vfs.f_files;
        s->files_free = (double)vfs.f_ffree;
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "device",
                                             c->mounts[i].device, "mountpoint",
                                             c->mounts[i].mountpoint, "fstype",
                                             c->mounts[i].fstype, "size_bytes",
                                             (json_int_t)s->size, "free_bytes",
                                             (json_int_t)s->free, "avail_bytes",
                                             (json_int_t)s->avail));
    }
    json_object_set_new(sc->host, "filesystems", arr);
    emit(sc, c, n, "node_filesystem_size_bytes", "Filesystem size in bytes.", 0);
    emit(sc, c, n, "node_filesystem_free_bytes", "Filesystem free space in bytes.", 1);
    emit(sc, c, n, "node_filesystem_avail_bytes",
         "Filesystem space available to non-root users in bytes.", 2);
    emit(sc, c, n, "node_filesystem_files", "Filesystem total file nodes.", 3);
    emit(sc, c, n, "node_filesystem_files_free", "Filesystem total free file nodes.", 4);
    emit(sc, c, n, "node_filesystem_readonly", "Filesystem read-only status.", 5);
    emit(sc, c, n, "node_filesystem_device_error",
         "Whether an error occurred while getting statistics for the given device.", 6);
    emit(sc, c, n, "gpufleet_filesystem_stale",
         "Whether the mount did not answer statvfs within fs_timeout_ms (a hung network mount).", 7);
    return 0;
}

static void fs_shutdown(void *ctx)
{
    struct fs_ctx *c = ctx;
    if (c->helper) { /* an idle helper ends; a stuck one ends when its call does */
        pthread_mutex_lock(&c->shared->lock);
        c->helper->quit = 1;
        pthread_cond_broadcast(&c->shared->done);
        pthread_mutex_unlock(&c->shared->lock);
    }
    statter_put(c->shared);
    buf_free(&c->raw);
    free(c);
}

const struct collector collect_filesystem = {"filesystem", fs_init, fs_sample, fs_shutdown};
