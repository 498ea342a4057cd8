/* The web UI: files embedded in the binary, sent pre-compressed with ETags;
 * hashed assets cached for a year, every other path of the single-page
 * app answered with index.html. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../webui.h"
#include "api.h"

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
    {".json", "application/json"},         {".png", "image/png"},
    {".ico", "image/x-icon"},              {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"}, {".webmanifest", "application/manifest+json"},
};

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* The files served: those built in, or a folder's (api_ui_load_dir). Set
 * once at start, before the HTTP server. */
static const struct webfile *files = webui_files;
static size_t nfiles;
static int loaded;

int api_ui_load_dir(const char *dir, char *err, size_t errlen)
{
    struct webfile *f;
    long n = webfiles_load(dir, (size_t)256 << 20, &f, err, errlen);
    if (n < 0)
        return -1;
    files = f;
    nfiles = (size_t)n;
    loaded = 1;
    return 0;
}

void api_ui_unload(void)
{
    if (loaded)
        webfiles_free((struct webfile *)files, nfiles);
    files = webui_files;
    loaded = 0;
}

static const struct webfile *find(const char *path)
{
    size_t lo = 0, hi = loaded ? nfiles : webui_nfiles;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(files[mid].path, path);
        if (!c)
            return &files[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int inflate_into(const struct webfile *f, struct http_response *resp)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 31) != Z_OK)
        return -1;
    char *out = malloc(f->raw_len + 1);
    if (!out) {
        inflateEnd(&z);
        return -1;
    }
    z.next_in = (unsigned char *)f->gz;
    z.avail_in = (uInt)f->gz_len;
    z.next_out = (unsigned char *)out;
    z.avail_out = (uInt)f->raw_len + 1;
    int rc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (rc != Z_STREAM_END || z.total_out != f->raw_len ||
        buf_append(&resp->body, out, f->raw_len) < 0) {
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

static void security_headers(struct http_response *resp)
{
    /* uPlot sizes its canvas through element styles, which 'self' allows */
    http_add_header(resp, "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    http_add_header(resp, "X-Content-Type-Options", "nosniff");
    http_add_header(resp, "Referrer-Policy", "same-origin");
    http_add_header(resp, "X-Frame-Options", "DENY");
}

void api_ui(void *appv, struct http_request *req, struct http_response *resp)
{
    (void)appv;
    const char *path = req->path;
    const struct webfile *f;
    int hashed = !strncmp(path, "/assets/", 8);

    if (!strncmp(path, "/api/", 5)) {
        http_error(resp, 404, "not_found", NULL, "no such path: %s", path);
        return;
    }
    f = find(path);
    if (!f && hashed) {
        http_error(resp, 404, "not_found", NULL, "no such file: %s", path);
        return;
    }
    if (!f) /* a page of the app: the app routes it */
        f = find("/index.html");
    if (!f) {
        resp->status = 503;
        resp->content_type = "text/plain; charset=utf-8";
        buf_puts(&resp->body, "The web UI is not part of this build: run scripts/build.sh "
                              "(it builds web/ with npm first), or use the API under /api/v1.\n");
        return;
    }
    security_headers(resp);
    http_add_header(resp, "ETag", f->etag);
    http_add_header(resp, "Vary", "Accept-Encoding");
    http_add_header(resp, "Cache-Control",
                    hashed ? "public, max-age=31536000, immutable" : "no-cache");
    resp->content_type = type_of(f->path);
    const char *inm = http_header(req, "If-None-Match");
    if (inm && (strstr(inm, f->etag) || !strcmp(inm, "*"))) {
        resp->status = 304;
        return;
    }
    resp->status = 200;
    if (http_accepts_gzip(req)) {
        http_add_header(resp, "Content-Encoding", "gzip");
        resp->data = f->gz; /* static: nothing to release */
        resp->data_len = f->gz_len;
        return;
    }
    if (inflate_into(f, resp) < 0)
        http_error(resp, 500, "internal", NULL, "cannot decompress %s", f->path);
}
