/* POST /api/v1/import/prometheus: Prometheus text with optional timestamps
 * (milliseconds), as VictoriaMetrics' endpoint of the same path takes it,
 * for migrations and backfill. The body is parsed as it arrives, so an
 * import of any size uses bounded memory; the writer's queue pushes back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "../scrape.h"
#include "../options.h"
#include "api.h"

#define BATCH_SAMPLES 20000
#define MAX_LINE (64u * 1024)

struct import {
    struct server_app *app;
    struct buf carry;   /* the unfinished last line */
    struct ingest_batch *batch;
    struct key_cache *keys;
    long samples;
    size_t lines_done;
    size_t bytes;
    int64_t now_ms;
    char err[300];
    const char *field;
};

static void import_free(void *p)
{
    struct import *im = p;
    if (!im)
        return;
    buf_free(&im->carry);
    ingest_batch_free(im->batch);
    key_cache_free(im->keys);
    free(im);
}

static int flush(struct import *im, int wait_ms)
{
    if (!im->batch->n)
        return 0;
    if (ingest_push(im->app->in, im->batch, wait_ms) < 0) {
        im->batch = ingest_batch_new();
        snprintf(im->err, sizeof(im->err), "the store is overloaded; retry later");
        return -1;
    }
    im->batch = ingest_batch_new();
    return 0;
}

/* Parses complete lines in text[0..len). */
static int parse_lines(struct import *im, const char *text, size_t len)
{
    struct scrape_config cfg;
    char err[240];
    size_t lines = 0;

    size_t before = im->batch->n;

    server_options_scrape(im->app->opts, &cfg);
    cfg.max_series = 0; /* an import is not one scrape */
    cfg.meta = im->app->meta; /* HELP/TYPE lines of an import count too */
    long n = scrape_parse(text, len, 0, &cfg, NULL, 0, im->now_ms, im->keys, im->batch, err,
                          sizeof(err));
    if (n < 0) {
        /* make the line number absolute in the whole body */
        size_t rel = strtoul(err + 5, NULL, 10);
        const char *msg = strchr(err, ':');
        /* the lines of this chunk before the bad one are kept too */
        im->samples += (long)(im->batch->n - before);
        snprintf(im->err, sizeof(im->err), "line %zu%s; %ld samples before it were imported",
                 im->lines_done + rel, msg ? msg : "", im->samples);
        return -1;
    }
    for (const char *p = text, *end = text + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
        lines++;
    im->lines_done += lines;
    im->samples += n;
    if (im->batch->n >= BATCH_SAMPLES)
        return flush(im, 30000);
    return 0;
}

int api_import_stream(void *appv, struct http_request *req, const char *data, size_t len)
{
    struct import *im = req->stream_state;

    if (!im) {
        im = xcalloc(1, sizeof(*im));
        im->app = appv;
        buf_init(&im->carry, 0);
        im->batch = ingest_batch_new();
        im->keys = key_cache_new(200000);
        im->now_ms = now_wall_ms();
        req->stream_state = im;
        req->stream_cleanup = import_free;
    }
    im->bytes += len;
    if (im->bytes > (size_t)im->app->opts->max_import_bytes) {
        snprintf(im->err, sizeof(im->err), "body larger than %lld bytes; split the import",
                 (long long)im->app->opts->max_import_bytes);
        return -1;
    }
    buf_append(&im->carry, data, len);
    const char *nl = NULL;
    for (size_t i = im->carry.len; i-- > 0;)
        if (im->carry.data[i] == '\n') {
            nl = im->carry.data + i;
            break;
        }
    if (!nl) {
        if (im->carry.len > MAX_LINE) {
            snprintf(im->err, sizeof(im->err), "line %zu longer than %u bytes",
                     im->lines_done + 1, MAX_LINE);
            return -1;
        }
        return 0;
    }
    size_t upto = (size_t)(nl - im->carry.data) + 1;
    if (parse_lines(im, im->carry.data, upto) < 0)
        return -1;
    memmove(im->carry.data, im->carry.data + upto, im->carry.len - upto);
    im->carry.len -= upto;
    return 0;
}

void api_import_done(void *appv, struct http_request *req, struct http_response *resp)
{
    struct import *im = req->stream_state;
    struct server_app *app = appv;

    if (!im) {
        http_error(resp, 400, "invalid_body", "body", "the body is empty");
        return;
    }
    if (!req->stream_failed && im->carry.len)
        parse_lines(im, im->carry.data, im->carry.len);
    if (!im->err[0])
        flush(im, 30000);
    else if (im->batch->n)
        flush(im, 30000); /* what parsed before the bad line is kept */
    /* answer once the samples are stored, so a query right after sees them */
    ingest_sync(app->in);
    if (im->err[0])
        http_error(resp, 400, "invalid_body", "body", "%s", im->err);
    else
        api_json(resp, 200, json_pack("{s:I}", "imported", (json_int_t)im->samples));
    import_free(im);
    req->stream_state = NULL;
    req->stream_cleanup = NULL;
}
