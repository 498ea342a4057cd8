/* Metric family metadata from scrapes: a small sorted table under a mutex
 * (families are few, hundreds; each scrape notes each of its families,
 * and the common case, nothing changed, is one lookup). */
#include "metadata.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/promparse.h"
#include "../lib/xalloc.h"

struct family {
    char *name, *help, *unit;
    int type;
};

struct metadata {
    pthread_mutex_t lock;
    struct family *f; /* sorted by name */
    size_t n, cap, max;
};

struct metadata *metadata_new(size_t max_families)
{
    struct metadata *md = xcalloc(1, sizeof(*md));
    pthread_mutex_init(&md->lock, NULL);
    md->max = max_families ? max_families : 20000;
    return md;
}

void metadata_free(struct metadata *md)
{
    if (!md)
        return;
    for (size_t i = 0; i < md->n; i++) {
        free(md->f[i].name);
        free(md->f[i].help);
        free(md->f[i].unit);
    }
    free(md->f);
    pthread_mutex_destroy(&md->lock);
    free(md);
}

/* The index of name, or where it would go (*found 0). Lock held. */
static size_t find(const struct metadata *md, const char *name, int *found)
{
    size_t lo = 0, hi = md->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(md->f[mid].name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static void set_text(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? xstrdup(s) : NULL;
}

void metadata_note(struct metadata *md, const char *family, int type, const char *help,
                   const char *unit)
{
    if (!md || !family || !*family)
        return;
    int found;
    pthread_mutex_lock(&md->lock);
    size_t i = find(md, family, &found);
    if (found) {
        struct family *f = &md->f[i];
        if (f->type != type)
            f->type = type;
        if (!same(f->help, help))
            set_text(&f->help, help);
        if (!same(f->unit, unit))
            set_text(&f->unit, unit);
    } else if (md->n < md->max) {
        if (md->n == md->cap) {
            md->cap = md->cap ? md->cap * 2 : 64;
            md->f = xrealloc(md->f, md->cap * sizeof(*md->f));
        }
        memmove(&md->f[i + 1], &md->f[i], (md->n - i) * sizeof(*md->f));
        md->f[i] = (struct family){xstrdup(family), help ? xstrdup(help) : NULL,
                                   unit ? xstrdup(unit) : NULL, type};
        md->n++;
    }
    pthread_mutex_unlock(&md->lock);
}

static const char *type_name(int t)
{
    switch (t) {
    case PROM_COUNTER: return "counter";
    case PROM_GAUGE: return "gauge";
    case PROM_HISTOGRAM: return "histogram";
    case PROM_SUMMARY: return "summary";
    default: return "unknown";
    }
}

void metadata_json(struct metadata *md, const char *metric, size_t limit, struct buf *out)
{
    buf_putc(out, '{');
    pthread_mutex_lock(&md->lock);
    size_t w = 0;
    for (size_t i = 0; i < md->n && (!limit || w < limit); i++) {
        const struct family *f = &md->f[i];
        if (metric && strcmp(metric, f->name))
            continue;
        if (w++)
            buf_putc(out, ',');
        buf_json_str(out, f->name);
        buf_printf(out, ":[{\"type\":\"%s\",\"help\":", type_name(f->type));
        buf_json_str(out, f->help ? f->help : "");
        buf_puts(out, ",\"unit\":");
        buf_json_str(out, f->unit ? f->unit : "");
        buf_puts(out, "}]");
    }
    pthread_mutex_unlock(&md->lock);
    buf_putc(out, '}');
}
