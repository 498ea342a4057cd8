/* Reading a UI build into memory (see webfiles.h). */
#include "webfiles.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "xalloc.h"

struct walk {
    struct webfile *files;
    size_t n, bytes, max;
    char *err;
    size_t errlen;
};

static int read_all(const char *path, unsigned char **data, size_t *len, struct walk *w)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 0, n = 0, r;
    unsigned char *d = NULL;

    if (!f) {
        snprintf(w->err, w->errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    do {
        if (n == cap)
            d = xrealloc(d, cap = cap ? cap * 2 : 65536);
        r = fread(d + n, 1, cap - n, f);
        n += r;
        if (w->bytes + n > w->max) {
            snprintf(w->err, w->errlen, "%s: the folder holds more than %zu bytes", path, w->max);
            fclose(f);
            free(d);
            return -1;
        }
    } while (r > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(w->err, w->errlen, "%s: cannot read", path);
        free(d);
        return -1;
    }
    w->bytes += n;
    *data = d;
    *len = n;
    return 0;
}

static unsigned char *gzip(const unsigned char *raw, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    /* 31: gzip wrapper; level 9 once, when read, costs nothing per request */
    if (deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, len) + 64;
    unsigned char *out = xmalloc(cap);
    z.next_in = (unsigned char *)raw;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static int add_file(struct walk *w, const char *fs_path, const char *url_path)
{
    size_t len, gz_len;
    unsigned char *raw, *gz;

    if (read_all(fs_path, &raw, &len, w) < 0)
        return -1;
    if (!(gz = gzip(raw, len, &gz_len))) {
        snprintf(w->err, w->errlen, "%s: cannot compress", fs_path);
        free(raw);
        return -1;
    }
    /* FNV-1a 64 and CRC-32 of the content: a strong ETag */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ raw[i]) * 1099511628211ULL;
    char etag[40];
    snprintf(etag, sizeof(etag), "\"%016llx%08lx\"", (unsigned long long)h,
             (unsigned long)crc32(0, raw, (uInt)len));
    free(raw);
    w->files = xrealloc(w->files, (w->n + 1) * sizeof(*w->files));
    w->files[w->n++] = (struct webfile){xstrdup(url_path), gz, gz_len, len, xstrdup(etag)};
    return 0;
}

static int walk(struct walk *w, const char *dir, const char *url_prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (!d) {
        snprintf(w->err, w->errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    while (rc == 0 && (e = readdir(d))) {
        char fs[4096], url[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        if (strpbrk(e->d_name, "\"\\?%#") || strlen(e->d_name) > 200) {
            snprintf(w->err, w->errlen, "%s/%s: a name unfit for a URL", dir, e->d_name);
            rc = -1;
            break;
        }
        snprintf(fs, sizeof(fs), "%s/%s", dir, e->d_name);
        snprintf(url, sizeof(url), "%s/%s", url_prefix, e->d_name);
        if (stat(fs, &st) < 0) {
            snprintf(w->err, w->errlen, "%s: %s", fs, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(w, fs, url);
        } else if (S_ISREG(st.st_mode)) {
            rc = add_file(w, fs, url);
        }
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const struct webfile *)a)->path, ((const struct webfile *)b)->path);
}

long webfiles_load(const char *dir, size_t max_bytes, struct webfile **out, char *err,
                   size_t errlen)
{
    struct walk w = {NULL, 0, 0, max_bytes, err, errlen};

    *out = NULL;
    if (walk(&w, dir, "") < 0) {
        webfiles_free(w.files, w.n);
        return -1;
    }
    if (w.n)
        qsort(w.files, w.n, sizeof(*w.files), by_path); /* the server bisects */
    *out = w.files;
    return (long)w.n;
}

void webfiles_free(struct webfile *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)files[i].path);
        free((unsigned char *)files[i].gz);
        free((char *)files[i].etag);
    }
    free(files);
}
