/* Snapshot publication. Readers never block the sampler for longer than a
 * pointer copy and a reference increment. */
#include "snapshot.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../lib/xalloc.h"

struct snapshot *snapshot_new(uint64_t seq, int64_t ts_ms, char *text, size_t text_len,
                              json_t *root)
{
    struct snapshot *s = xcalloc(1, sizeof(*s));

    s->refs = 1;
    s->seq = seq;
    s->ts_ms = ts_ms;
    s->text = text;
    s->text_len = text_len;
    s->json_root = root;
    pthread_mutex_init(&s->lazy_lock, NULL);
    return s;
}

void snapshot_put(struct snapshot *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    free(s->text);
    free(s->gz);
    free(s->json);
    json_decref(s->json_root);
    pthread_mutex_destroy(&s->lazy_lock);
    free(s);
}

static int gzip_text(const char *in, size_t len, char **out, size_t *outlen)
{
    z_stream zs;
    size_t cap = deflateBound(NULL, len) + 32;
    char *dst = xmalloc(cap);

    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16 asks zlib for a gzip wrapper; level 1 because it is
     * recompressed every sample and the bytes only cross a LAN */
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(dst);
        return -1;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)dst;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&zs);
        free(dst);
        return -1;
    }
    *outlen = zs.total_out;
    deflateEnd(&zs);
    *out = dst;
    return 0;
}

int snapshot_gzip(struct snapshot *s, const char **data, size_t *len)
{
    int rc = 0;

    pthread_mutex_lock(&s->lazy_lock);
    if (!s->gz)
        rc = gzip_text(s->text, s->text_len, &s->gz, &s->gz_len);
    pthread_mutex_unlock(&s->lazy_lock);
    *data = s->gz;
    *len = s->gz_len;
    return rc;
}

int snapshot_json(struct snapshot *s, const char **data, size_t *len)
{
    pthread_mutex_lock(&s->lazy_lock);
    if (!s->json) {
        s->json = json_dumps(s->json_root, JSON_COMPACT);
        s->json_len = s->json ? strlen(s->json) : 0;
    }
    pthread_mutex_unlock(&s->lazy_lock);
    *data = s->json;
    *len = s->json_len;
    return s->json ? 0 : -1;
}

void snapshot_store_init(struct snapshot_store *st)
{
    pthread_mutex_init(&st->lock, NULL);
    st->cur = NULL;
}

void snapshot_store_free(struct snapshot_store *st)
{
    snapshot_put(st->cur);
    st->cur = NULL;
    pthread_mutex_destroy(&st->lock);
}

void snapshot_publish(struct snapshot_store *st, struct snapshot *s)
{
    struct snapshot *old;

    pthread_mutex_lock(&st->lock);
    old = st->cur;
    st->cur = s;
    pthread_mutex_unlock(&st->lock);
    snapshot_put(old);
}

struct snapshot *snapshot_get(struct snapshot_store *st)
{
    struct snapshot *s;

    pthread_mutex_lock(&st->lock);
    s = st->cur;
    if (s)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&st->lock);
    return s;
}
