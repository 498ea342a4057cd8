/* The sample log: records framed as [u32 length][u32 check][type][payload],
 * the check being the low half of hash_bytes over type and payload, so a
 * torn tail or a damaged record is found and replay stops there. Samples
 * go in runs of up to SAMPLES_PER_RECORD: series id and timestamp as
 * zigzag deltas from the previous sample of the run, integral values as
 * varints, others as 8 raw bytes (stale markers keep their bits); a run is
 * zstd-compressed (level 1) when that makes it smaller. */
#include "samplelog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "../../lib/buf.h"
#include "../../lib/hash.h"
#include "../../lib/log.h"
#include "../../lib/now.h"
#include "../../lib/xalloc.h"
#include "varint.h"

enum { R_GROUP = 1, R_SERIES, R_SAMPLES, R_SAMPLES_Z, R_SEAL, R_COMMIT };

#define SAMPLES_PER_RECORD 8192
#define MAX_RECORD (64u << 20) /* larger lengths are damage, not data */
#define HEADER 8

struct slog {
    char *dir;
    int fd;               /* current segment, -1 before slog_start */
    int closed_fd;        /* the segment rotation closed, awaiting its sync */
    uint64_t seq;         /* current segment's number */
    uint64_t *segs;       /* numbers of the segments on disk, ascending */
    size_t nsegs, segs_cap;
    uint64_t seg_bytes;   /* of the current segment */
    uint64_t old_bytes;   /* of the others */
    int64_t seg_started_ms;
    struct buf out;       /* framed records not yet written */
    struct buf run;       /* the open samples run */
    size_t run_n;
    uint64_t run_id;
    int64_t run_ts;
    ZSTD_CCtx *zc;
    struct slog_stats st;
};

/* ---- framing ---- */

static void frame(struct slog *l, int type, const void *payload, size_t len)
{
    unsigned char hdr[HEADER] = {0};
    uint32_t n = (uint32_t)len + 1;
    size_t at = l->out.len;

    /* the body goes straight into the output; its check is filled after */
    buf_append(&l->out, hdr, HEADER);
    buf_putc(&l->out, (char)type);
    buf_append(&l->out, payload, len);
    uint32_t check = (uint32_t)hash_bytes(l->out.data + at + HEADER, n);
    for (int i = 0; i < 4; i++) {
        l->out.data[at + i] = (char)(n >> (8 * i));
        l->out.data[at + 4 + i] = (char)(check >> (8 * i));
    }
}

/* Closes the open samples run into a record. */
static void end_run(struct slog *l)
{
    struct buf p;

    if (!l->run_n)
        return;
    buf_init(&p, 0);
    varint_put(&p, l->run_n);
    buf_append(&p, l->run.data, l->run.len);
    int type = R_SAMPLES;
    if (p.len > 512) {
        size_t bound = ZSTD_compressBound(p.len);
        char *z = xmalloc(bound);
        size_t zn = ZSTD_compressCCtx(l->zc, z, bound, p.data, p.len, 1);
        if (!ZSTD_isError(zn) && zn < p.len) {
            buf_reset(&p);
            buf_append(&p, z, zn);
            type = R_SAMPLES_Z;
        }
        free(z);
    }
    frame(l, type, p.data, p.len);
    buf_free(&p);
    buf_reset(&l->run);
    l->run_n = 0;
    l->run_id = 0;
    l->run_ts = 0;
}

void slog_group(struct slog *l, uint64_t id, const char *job, const char *instance)
{
    struct buf p;
    size_t jl = strlen(job), il = strlen(instance);

    end_run(l);
    buf_init(&p, 0);
    varint_put(&p, id);
    varint_put(&p, jl);
    buf_append(&p, job, jl);
    varint_put(&p, il);
    buf_append(&p, instance, il);
    frame(l, R_GROUP, p.data, p.len);
    buf_free(&p);
}

void slog_series(struct slog *l, uint64_t id, uint64_t group_id, const char *key, size_t key_len)
{
    struct buf p;

    end_run(l);
    buf_init(&p, 0);
    varint_put(&p, id);
    varint_put(&p, group_id);
    buf_append(&p, key, key_len);
    frame(l, R_SERIES, p.data, p.len);
    buf_free(&p);
}

static int integral(double v, int64_t *out)
{
    /* 2^53 bounds the integers a double holds exactly; -0.0 keeps its sign
     * only as raw bits */
    if (!(v >= -9007199254740992.0 && v <= 9007199254740992.0) || v != floor(v) ||
        (v == 0 && signbit(v)))
        return 0;
    *out = (int64_t)v;
    return 1;
}

void slog_sample(struct slog *l, uint64_t id, int64_t ts_ms, double value)
{
    int64_t iv;
    int is_int = integral(value, &iv);

    varint_put(&l->run, zigzag((int64_t)(id - l->run_id)) << 1 | (uint64_t)is_int);
    /* unsigned: imported timestamps may be anything */
    varint_put(&l->run, zigzag((int64_t)((uint64_t)ts_ms - (uint64_t)l->run_ts)));
    if (is_int) {
        varint_put(&l->run, zigzag(iv));
    } else {
        uint64_t bits;
        memcpy(&bits, &value, 8);
        u64_put(&l->run, bits);
    }
    l->run_id = id;
    l->run_ts = ts_ms;
    if (++l->run_n >= SAMPLES_PER_RECORD)
        end_run(l);
}

void slog_seal(struct slog *l, uint64_t group_id, int which)
{
    struct buf p;

    end_run(l);
    buf_init(&p, 0);
    varint_put(&p, group_id);
    varint_put(&p, (uint64_t)which);
    frame(l, R_SEAL, p.data, p.len);
    buf_free(&p);
}

void slog_commit(struct slog *l)
{
    end_run(l);
    frame(l, R_COMMIT, NULL, 0);
}

/* ---- decoding ---- */

static int decode_samples(const unsigned char *p, size_t len, const struct slog_ops *ops,
                          void *arg, uint64_t *samples)
{
    struct vin in = {p, p + len, 0};
    uint64_t n = varint_get(&in), id = 0;
    int64_t ts = 0;

    if (in.bad || n > SAMPLES_PER_RECORD)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t head = varint_get(&in);
        id += (uint64_t)unzigzag(head >> 1);
        ts = (int64_t)((uint64_t)ts + (uint64_t)unzigzag(varint_get(&in))); /* wraps, as written */
        double v;
        if (head & 1) {
            v = (double)unzigzag(varint_get(&in));
        } else {
            uint64_t bits = u64_get(&in);
            memcpy(&v, &bits, 8);
        }
        if (in.bad)
            return -1;
        ops->sample(arg, id, ts, v);
        (*samples)++;
    }
    return in.p == in.end ? 0 : -1;
}

static int decode_samples_z(const unsigned char *p, size_t len, const struct slog_ops *ops,
                            void *arg, uint64_t *samples)
{
    unsigned long long raw = ZSTD_getFrameContentSize(p, len);
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > MAX_RECORD)
        return -1;
    unsigned char *body = xmalloc(raw ? raw : 1);
    size_t got = ZSTD_decompress(body, raw, p, len);
    int rc = ZSTD_isError(got) || got != raw ? -1 : decode_samples(body, raw, ops, arg, samples);
    free(body);
    return rc;
}

int slog_decode_record(int type, const unsigned char *p, size_t len, const struct slog_ops *ops,
                       void *arg, uint64_t *samples)
{
    struct vin in = {p, p + len, 0};
    uint64_t id, a, b;
    char *job, *inst;

    switch (type) {
    case R_GROUP:
        id = varint_get(&in);
        a = varint_get(&in);
        if (in.bad || a > (uint64_t)(in.end - in.p))
            return -1;
        job = xstrndup((const char *)in.p, a);
        in.p += a;
        b = varint_get(&in);
        if (in.bad || b > (uint64_t)(in.end - in.p) || strlen(job) != a) {
            free(job);
            return -1;
        }
        inst = xstrndup((const char *)in.p, b);
        if (strlen(inst) == b)
            ops->group(arg, id, job, inst);
        free(job);
        free(inst);
        return 0;
    case R_SERIES:
        id = varint_get(&in);
        a = varint_get(&in);
        if (in.bad)
            return -1;
        ops->series(arg, id, a, (const char *)in.p, (size_t)(in.end - in.p));
        return 0;
    case R_SAMPLES:
        return decode_samples(p, len, ops, arg, samples);
    case R_SAMPLES_Z:
        return decode_samples_z(p, len, ops, arg, samples);
    case R_SEAL:
        id = varint_get(&in);
        a = varint_get(&in);
        if (in.bad || a > SLOG_OOO)
            return -1;
        ops->seal(arg, id, (int)a);
        return 0;
    case R_COMMIT:
        ops->commit(arg);
        return 0;
    }
    return -1;
}

size_t slog_decode(const unsigned char *data, size_t len, const struct slog_ops *ops, void *arg,
                   uint64_t *records, uint64_t *samples)
{
    size_t off = 0;

    while (len - off >= HEADER + 1) {
        uint32_t n = 0, check = 0;
        for (int i = 0; i < 4; i++) {
            n |= (uint32_t)data[off + i] << (8 * i);
            check |= (uint32_t)data[off + 4 + i] << (8 * i);
        }
        if (n < 1 || n > MAX_RECORD || n > len - off - HEADER)
            break;
        const unsigned char *body = data + off + HEADER;
        if ((uint32_t)hash_bytes((const char *)body, n) != check)
            break;
        if (slog_decode_record(body[0], body + 1, n - 1, ops, arg, samples) < 0)
            break;
        (*records)++;
        off += HEADER + n;
    }
    return off;
}

/* ---- segments ---- */

static void seg_path(const struct slog *l, uint64_t seq, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%016llu.seg", l->dir, (unsigned long long)seq);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void add_seg(struct slog *l, uint64_t seq)
{
    if (l->nsegs == l->segs_cap) {
        l->segs_cap = l->segs_cap ? l->segs_cap * 2 : 16;
        l->segs = xrealloc(l->segs, l->segs_cap * sizeof(*l->segs));
    }
    l->segs[l->nsegs++] = seq;
}

struct slog *slog_open(const char *dir, char *err, size_t errlen)
{
    struct slog *l = xcalloc(1, sizeof(*l));
    DIR *d = NULL;
    struct dirent *e;

    l->dir = xstrdup(dir);
    l->fd = l->closed_fd = -1;
    buf_init(&l->out, 0);
    buf_init(&l->run, 0);
    if (!(l->zc = ZSTD_createCCtx())) {
        snprintf(err, errlen, "%s: out of memory", dir);
        goto fail;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    if (!(d = opendir(dir))) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    while ((e = readdir(d))) {
        char *end;
        unsigned long long seq = strtoull(e->d_name, &end, 10);
        if (end != e->d_name && !strcmp(end, ".seg")) {
            char path[4200];
            struct stat sb;
            add_seg(l, seq);
            seg_path(l, seq, path, sizeof(path));
            if (stat(path, &sb) == 0)
                l->old_bytes += (uint64_t)sb.st_size;
        }
    }
    closedir(d);
    if (l->nsegs)
        qsort(l->segs, l->nsegs, sizeof(*l->segs), cmp_u64);
    return l;
fail:
    slog_close(l, 0);
    return NULL;
}

static int read_file(const char *path, unsigned char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    unsigned char *p = NULL;
    size_t got = 0;

    if (fd < 0 || fstat(fd, &sb) < 0)
        goto fail;
    p = xmalloc((size_t)sb.st_size + 1);
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, p + got, (size_t)sb.st_size - got);
        if (r <= 0)
            break; /* a shorter file than stat said: replay what was read */
        got += (size_t)r;
    }
    close(fd);
    *data = p;
    *len = got;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

int slog_replay(struct slog *l, const struct slog_ops *ops, void *arg, char *err, size_t errlen)
{
    for (size_t i = 0; i < l->nsegs; i++) {
        char path[4200];
        unsigned char *data = NULL;
        size_t len = 0;

        seg_path(l, l->segs[i], path, sizeof(path));
        if (read_file(path, &data, &len) < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        size_t used = slog_decode(data, len, ops, arg, &l->st.replayed_records,
                                  &l->st.replayed_samples);
        if (used < len) {
            log_warn("samplelog: %s: %zu bytes after offset %zu are torn or damaged; skipped",
                     path, len - used, used);
            l->st.torn_bytes += len - used;
        }
        free(data);
    }
    return 0;
}

static int open_segment(struct slog *l, uint64_t seq, char *err, size_t errlen)
{
    char path[4200];

    seg_path(l, seq, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    l->fd = fd;
    l->seq = seq;
    l->seg_bytes = 0;
    l->seg_started_ms = (now_mono_ns() / 1000000);
    add_seg(l, seq);
    return 0;
}

int slog_start(struct slog *l, char *err, size_t errlen)
{
    return open_segment(l, l->nsegs ? l->segs[l->nsegs - 1] + 1 : 1, err, errlen);
}

uint64_t slog_segment(const struct slog *l)
{
    return l->seq;
}

int slog_flush(struct slog *l)
{
    size_t off = 0;

    end_run(l);
    if (!l->out.len)
        return 0;
    if (l->fd < 0) {
        buf_reset(&l->out);
        return 0;
    }
    while (off < l->out.len) {
        ssize_t w = write(l->fd, l->out.data + off, l->out.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            l->st.write_errors++;
            /* a partial record would end the replay of this segment, so the
             * next records go to a new one */
            if (off) {
                l->seg_bytes += off;
                slog_maybe_rotate(l, 0, 0);
            }
            buf_reset(&l->out);
            errno = e;
            return -1;
        }
        off += (size_t)w;
    }
    l->seg_bytes += off;
    buf_reset(&l->out);
    return 0;
}

void slog_maybe_rotate(struct slog *l, int64_t max_age_ms, uint64_t max_bytes)
{
    char err[256];

    if (l->fd < 0)
        return;
    if (max_age_ms && (now_mono_ns() / 1000000) - l->seg_started_ms < max_age_ms &&
        (!max_bytes || l->seg_bytes < max_bytes))
        return;
    if (!l->seg_bytes && max_age_ms)
        return; /* nothing in it: keep it */
    slog_sync_closed(l); /* at most one waits */
    int old = l->fd;
    l->old_bytes += l->seg_bytes;
    if (open_segment(l, l->seq + 1, err, sizeof(err)) < 0) {
        log_warn("samplelog: cannot start a segment: %s; staying on the current one", err);
        l->fd = old;
        l->old_bytes -= l->seg_bytes;
        return;
    }
    __atomic_store_n(&l->closed_fd, old, __ATOMIC_RELEASE);
}

void slog_sync_closed(struct slog *l)
{
    int fd = __atomic_exchange_n(&l->closed_fd, -1, __ATOMIC_ACQ_REL);
    if (fd < 0)
        return;
    if (fdatasync(fd) < 0)
        log_warn("samplelog: sync of a segment failed: %s", strerror(errno));
    close(fd);
}

void slog_drop_before(struct slog *l, uint64_t seq)
{
    size_t keep = 0;

    for (size_t i = 0; i < l->nsegs; i++) {
        if (l->segs[i] >= seq || l->segs[i] == l->seq) {
            l->segs[keep++] = l->segs[i];
            continue;
        }
        char path[4200];
        struct stat sb;
        seg_path(l, l->segs[i], path, sizeof(path));
        if (stat(path, &sb) == 0 && l->old_bytes >= (uint64_t)sb.st_size)
            l->old_bytes -= (uint64_t)sb.st_size;
        if (unlink(path) < 0 && errno != ENOENT) {
            log_warn("samplelog: cannot delete %s: %s", path, strerror(errno));
            l->segs[keep++] = l->segs[i];
        }
    }
    l->nsegs = keep;
}

void slog_stats(const struct slog *l, struct slog_stats *st)
{
    *st = l->st;
    st->segments = l->nsegs;
    st->bytes = l->old_bytes + l->seg_bytes;
}

void slog_close(struct slog *l, int drop_all)
{
    if (!l)
        return;
    slog_sync_closed(l);
    if (l->fd >= 0) {
        if (!drop_all && fdatasync(l->fd) < 0)
            log_warn("samplelog: sync failed: %s", strerror(errno));
        close(l->fd);
    }
    if (drop_all) {
        l->fd = -1;
        l->seq = UINT64_MAX;
        slog_drop_before(l, UINT64_MAX);
    }
    buf_free(&l->out);
    buf_free(&l->run);
    ZSTD_freeCCtx(l->zc);
    free(l->segs);
    free(l->dir);
    free(l);
}
