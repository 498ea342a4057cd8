/* ustar archives for the engines' archive and build APIs (see tarw.h). */
#include "tarw.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

static void octal(char *field, size_t width, unsigned long long v)
{
    char num[32];
    snprintf(num, sizeof(num), "%0*llo", (int)(width - 1), v);
    memcpy(field, num, width - 1);
}

int tarw_header(char h[TARW_BLOCK], const char *name, int type, unsigned mode, long long size, time_t mtime,
                const char *link)
{
    size_t n = strlen(name), cut = 0;

    memset(h, 0, TARW_BLOCK);
    if (!n || size < 0 || size > 077777777777LL || (link && strlen(link) > 100))
        return -1;
    if (n > 100) {
        /* ustar: prefix (up to 155) "/" name (up to 100), cut at a '/' */
        const char *slash = NULL;
        for (const char *p = name + n - 101 > name ? name + n - 101 : name; p < name + n && !slash; p++)
            if (*p == '/' && (size_t)(p - name) <= 155)
                slash = p;
        if (!slash || slash == name || n - (size_t)(slash - name) - 1 > 100)
            return -1;
        cut = (size_t)(slash - name);
        memcpy(h + 345, name, cut);
        cut++;
    }
    memcpy(h, name + cut, n - cut);
    octal(h + 100, 8, mode & 07777);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, (unsigned long long)size);
    octal(h + 136, 12, (unsigned long long)(mtime > 0 ? mtime : 0) & 077777777777ULL);
    h[156] = (char)type;
    if (link)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < TARW_BLOCK; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return 0;
}

int tarw_pad(FILE *out, long long size)
{
    static const char zero[TARW_BLOCK];
    size_t rest = (size_t)(size % TARW_BLOCK);
    return rest && fwrite(zero, 1, TARW_BLOCK - rest, out) != TARW_BLOCK - rest ? -1 : 0;
}

int tarw_end(FILE *out)
{
    static const char zero[2 * TARW_BLOCK];
    return fwrite(zero, 1, sizeof(zero), out) == sizeof(zero) ? 0 : -1;
}

struct walk {
    FILE *out;
    const char *skip;
    long long max_bytes;
    char *err;
    size_t errlen;
};

static int too_big(struct walk *w)
{
    if (!w->max_bytes || ftello(w->out) <= w->max_bytes)
        return 0;
    snprintf(w->err, w->errlen, "the tree is over %lld MiB", w->max_bytes >> 20);
    return 1;
}

static int put_file(struct walk *w, int dirfd, const char *entry, const char *name, const struct stat *st)
{
    char h[TARW_BLOCK], chunk[65536];
    long long left = st->st_size;
    int fd = openat(dirfd, entry, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        snprintf(w->err, w->errlen, "%s: %s", name, strerror(errno));
        return -1;
    }
    if (tarw_header(h, name, TARW_FILE, st->st_mode, st->st_size, st->st_mtime, NULL) < 0 ||
        fwrite(h, 1, TARW_BLOCK, w->out) != TARW_BLOCK)
        goto fail;
    /* exactly the size in the header, even if the file changes meanwhile */
    while (left > 0 && (n = read(fd, chunk, left < (long long)sizeof(chunk) ? (size_t)left : sizeof(chunk))) > 0) {
        if (fwrite(chunk, 1, (size_t)n, w->out) != (size_t)n)
            goto fail;
        left -= n;
    }
    memset(chunk, 0, sizeof(chunk));
    while (left > 0) { /* it shrank */
        size_t k = left < (long long)sizeof(chunk) ? (size_t)left : sizeof(chunk);
        if (fwrite(chunk, 1, k, w->out) != k)
            goto fail;
        left -= (long long)k;
    }
    close(fd);
    return tarw_pad(w->out, st->st_size) < 0 || too_big(w) ? -1 : 0;
fail:
    if (!w->err[0])
        snprintf(w->err, w->errlen, "%s: cannot be put in the archive (a name over ustar's bounds, or no room)", name);
    close(fd);
    return -1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(struct walk *w, int fd, const char *prefix);

static int put_entry(struct walk *w, int dirfd, const char *entry, const char *prefix)
{
    char name[4200], h[TARW_BLOCK], link[PATH_MAX];
    struct stat st;
    int rc = 0;

    snprintf(name, sizeof(name), "%s%s", prefix, entry);
    if (fstatat(dirfd, entry, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        snprintf(w->err, w->errlen, "%s: %s", name, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode))
        return put_file(w, dirfd, entry, name, &st);
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlinkat(dirfd, entry, link, sizeof(link) - 1);
        if (n < 0)
            return 0; /* gone meanwhile */
        link[n] = 0;
        if (tarw_header(h, name, TARW_SYMLINK, 0777, 0, st.st_mtime, link) < 0)
            goto toolong;
        return fwrite(h, 1, TARW_BLOCK, w->out) == TARW_BLOCK ? 0 : -1;
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    strcat(name, "/");
    if (tarw_header(h, name, TARW_DIR, st.st_mode, 0, st.st_mtime, NULL) < 0)
        goto toolong;
    if (fwrite(h, 1, TARW_BLOCK, w->out) != TARW_BLOCK)
        return -1;
    int sub = openat(dirfd, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
        snprintf(w->err, w->errlen, "%s: %s", name, strerror(errno));
        return -1;
    }
    rc = walk_dir(w, sub, name); /* closes sub */
    return rc;
toolong:
    snprintf(w->err, w->errlen, "%.200s: the name or its link is too long for a tar", name);
    return -1;
}

static int walk_dir(struct walk *w, int fd, const char *prefix)
{
    DIR *d = fdopendir(fd);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (!d) {
        close(fd);
        snprintf(w->err, w->errlen, "%s: %s", *prefix ? prefix : ".", strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || (w->skip && !strcmp(de->d_name, w->skip)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = xstrdup(de->d_name);
    }
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = put_entry(w, dirfd(d), names[i], prefix);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    if (rc < 0 && !w->err[0])
        snprintf(w->err, w->errlen, "no room to write the archive");
    return rc;
}

int tarw_tree(FILE *out, const char *root, const char *skip, long long max_bytes, char *err, size_t errlen)
{
    struct walk w = {.out = out, .skip = skip, .max_bytes = max_bytes, .err = err, .errlen = errlen};
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    err[0] = 0;
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", root, strerror(errno));
        return -1;
    }
    return walk_dir(&w, fd, "");
}
