/* Series key reader: one tokenizer under every way of reading a key. */
#include "serieskey.h"

#include <stdlib.h>
#include <string.h>

#include "../../lib/expo.h"
#include "../../lib/xalloc.h"

static int name_char(char c, int first, int metric)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':'))
        return 1;
    return !first && c >= '0' && c <= '9';
}

/* Where the reader stands in a key. */
struct cursor {
    const char *p, *end;
};

/* The metric name: its length, or -1 when it is not one. */
static long read_name(struct cursor *c)
{
    const char *s = c->p;
    while (c->p < c->end && *c->p != '{' && name_char(*c->p, c->p == s, 1))
        c->p++;
    if (c->p == s || (c->p < c->end && *c->p != '{'))
        return -1;
    return c->p - s;
}

/* The next label: name and its value as written (escaped). Returns 1, 0
 * at the end of the key, -1 when malformed. */
static int next_label(struct cursor *c, const char **name, size_t *nlen, const char **raw,
                      size_t *rawlen)
{
    if (c->p == c->end)
        return 0;
    if (*c->p == '{' || *c->p == ',')
        c->p++;
    if (c->p < c->end && *c->p == '}')
        return c->p + 1 == c->end ? (c->p++, 0) : -1;
    const char *s = c->p;
    while (c->p < c->end && name_char(*c->p, c->p == s, 0))
        c->p++;
    if (c->p == s || c->end - c->p < 2 || c->p[0] != '=' || c->p[1] != '"')
        return -1;
    *name = s;
    *nlen = (size_t)(c->p - s);
    c->p += 2;
    *raw = c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\') {
            if (c->end - c->p < 2 || !strchr("\\\"n", c->p[1]))
                return -1;
            c->p++;
        }
        c->p++;
    }
    if (c->p == c->end)
        return -1;
    *rawlen = (size_t)(c->p - *raw);
    c->p++;
    if (c->p == c->end || (*c->p != ',' && *c->p != '}'))
        return -1;
    return 1;
}

/* Unescapes raw into dst (room for rawlen bytes); returns the length. */
static size_t unescape(char *dst, const char *raw, size_t rawlen)
{
    size_t n = 0;
    for (size_t i = 0; i < rawlen; i++) {
        char ch = raw[i];
        if (ch == '\\') {
            ch = raw[++i];
            if (ch == 'n')
                ch = '\n';
        }
        dst[n++] = ch;
    }
    return n;
}

/* Whether the last label read names one read before it: a key names each
 * label once (a reader of one label would see only the first). */
static int named_before(const struct serieskey *k, const struct prom_label *l)
{
    if (l->name_len == 8 && !memcmp(l->name, "__name__", 8))
        return 1; /* the name is before every label */
    for (const struct prom_label *p = k->labels; p < l; p++)
        if (p->name_len == l->name_len && !memcmp(p->name, l->name, l->name_len))
            return 1;
    return 0;
}

int serieskey_parse(const char *key, size_t len, struct serieskey *out)
{
    struct cursor c = {key, key + len};
    const char *name, *raw;
    size_t nlen, rawlen, n = 0;
    int r;

    memset(out, 0, sizeof(*out));
    if (len > SERIESKEY_MAX || memchr(key, '\0', len))
        return -1;
    long ml = read_name(&c);
    if (ml < 0)
        return -1;
    /* count the labels first: one block holds them all */
    struct cursor count = c;
    while ((r = next_label(&count, &name, &nlen, &raw, &rawlen)) == 1)
        n++;
    if (r < 0)
        return -1;
    /* one block: the labels, then their names and values (a series of the
     * store keeps this for its life: one allocation less per series) */
    size_t head = (n ? n : 1) * sizeof(*out->labels);
    out->labels = xcalloc(1, head + len + n + 2);
    char *p = out->store = (char *)out->labels + head;
    memcpy(p, key, (size_t)ml);
    p[ml] = '\0';
    out->name = p;
    out->name_len = (size_t)ml;
    p += ml + 1;
    while (next_label(&c, &name, &nlen, &raw, &rawlen) == 1) {
        struct prom_label *l = &out->labels[out->nlabels++];
        memcpy(p, name, nlen);
        p[nlen] = '\0';
        l->name = p;
        l->name_len = nlen;
        p += nlen + 1;
        l->value = p;
        l->value_len = unescape(p, raw, rawlen);
        p[l->value_len] = '\0';
        if (!expo_valid_utf8(l->value, l->value_len) || named_before(out, l)) {
            serieskey_free(out);
            return -1;
        }
        p += l->value_len + 1;
    }
    return 0;
}

void serieskey_free(struct serieskey *k)
{
    free(k->labels); /* the store is in its block */
    memset(k, 0, sizeof(*k));
}

void serieskey_escape(struct buf *out, const char *v, size_t len)
{
    const char *vend = v + len;
    while (v < vend) { /* runs without anything to escape in one go */
        const char *r = v;
        while (r < vend && *r != '\\' && *r != '"' && *r != '\n')
            r++;
        buf_append(out, v, (size_t)(r - v));
        if (r == vend)
            break;
        buf_append(out, *r == '\n' ? "\\n" : *r == '"' ? "\\\"" : "\\\\", 2);
        v = r + 1;
    }
}

/* Whether the next bytes at *p (before end) are s[0..n); moves past them. */
static int take(const char **p, const char *end, const char *s, size_t n)
{
    if ((size_t)(end - *p) < n || memcmp(*p, s, n))
        return 0;
    *p += n;
    return 1;
}

const char *serieskey_get(const struct serieskey *k, const char *label)
{
    if (!strcmp(label, "__name__"))
        return k->name;
    for (size_t i = 0; i < k->nlabels; i++)
        if (!strcmp(k->labels[i].name, label))
            return k->labels[i].value;
    return NULL;
}

int serieskey_label(const char *key, size_t len, const char *label, char *out, size_t outlen)
{
    struct cursor c = {key, key + len};
    const char *name, *raw;
    size_t nlen, rawlen, ll = strlen(label);

    if (!outlen || read_name(&c) < 0)
        return -1;
    while (next_label(&c, &name, &nlen, &raw, &rawlen) == 1) {
        if (nlen != ll || memcmp(name, label, ll))
            continue;
        char tmp[512];
        char *dst = rawlen < sizeof(tmp) ? tmp : xmalloc(rawlen + 1);
        size_t n = unescape(dst, raw, rawlen);
        size_t k = n < outlen - 1 ? n : outlen - 1;
        memcpy(out, dst, k);
        out[k] = '\0';
        if (dst != tmp)
            free(dst);
        return (int)n;
    }
    return -1;
}

void serieskey_json(const struct serieskey *k, struct buf *out)
{
    buf_puts(out, "{\"__name__\":");
    buf_json_str(out, k->name);
    for (size_t i = 0; i < k->nlabels; i++) {
        buf_putc(out, ',');
        buf_json_str(out, k->labels[i].name);
        buf_putc(out, ':');
        buf_json_str(out, k->labels[i].value);
    }
    buf_putc(out, '}');
}

/* ---- packed ---- */

size_t serieskey_packed_len(const struct serieskey *k)
{
    size_t n = k->name_len + 2;
    for (size_t i = 0; i < k->nlabels; i++)
        n += k->labels[i].name_len + k->labels[i].value_len + 2;
    return n;
}

size_t serieskey_packed_bytes(const char *p)
{
    const char *at = NULL, *name, *value;
    while (serieskey_packed_next(p, &at, &name, &value))
        ;
    const char *end = at ? at : p + strlen(p) + 1; /* the last '\0' */
    return (size_t)(end - p) + 1;
}

char *serieskey_pack(const struct serieskey *k)
{
    char *p = xmalloc(serieskey_packed_len(k));
    serieskey_pack_to(k, p);
    return p;
}

void serieskey_pack_to(const struct serieskey *k, char *p)
{
    char *w = p;
    memcpy(w, k->name, k->name_len + 1);
    w += k->name_len + 1;
    for (size_t i = 0; i < k->nlabels; i++) {
        memcpy(w, k->labels[i].name, k->labels[i].name_len + 1);
        w += k->labels[i].name_len + 1;
        memcpy(w, k->labels[i].value, k->labels[i].value_len + 1);
        w += k->labels[i].value_len + 1;
    }
    *w = '\0'; /* no label names an empty name: the end */
}

int serieskey_packed_next(const char *p, const char **at, const char **name, const char **value)
{
    const char *q = *at ? *at : p + strlen(p) + 1;
    if (!*q)
        return 0;
    *name = q;
    q += strlen(q) + 1;
    *value = q;
    *at = q + strlen(q) + 1;
    return 1;
}

const char *serieskey_packed_get(const char *p, const char *label)
{
    const char *at = NULL, *name, *value;
    if (!strcmp(label, "__name__"))
        return p;
    while (serieskey_packed_next(p, &at, &name, &value))
        if (!strcmp(name, label))
            return value;
    return NULL;
}

void serieskey_packed_write(const char *p, struct buf *out)
{
    const char *at = NULL, *name, *value;
    int n = 0;
    buf_puts(out, p);
    while (serieskey_packed_next(p, &at, &name, &value)) {
        buf_putc(out, n++ ? ',' : '{');
        buf_puts(out, name);
        buf_append(out, "=\"", 2);
        serieskey_escape(out, value, strlen(value));
        buf_putc(out, '"');
    }
    if (n)
        buf_putc(out, '}');
}

int serieskey_packed_is(const char *p, const char *key, size_t len)
{
    const char *q = key, *end = key + len, *at = NULL, *name, *value;
    int n = 0;
    if (!take(&q, end, p, strlen(p)))
        return 0;
    while (serieskey_packed_next(p, &at, &name, &value)) {
        if (!take(&q, end, n++ ? "," : "{", 1) || !take(&q, end, name, strlen(name)) ||
            !take(&q, end, "=\"", 2))
            return 0;
        for (; *value; value++) {
            char ch = *value;
            const char *esc = ch == '\n' ? "\\n" : ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : NULL;
            if (esc ? !take(&q, end, esc, 2) : (q == end || *q++ != ch))
                return 0;
        }
        if (!take(&q, end, "\"", 1))
            return 0;
    }
    if (n && !take(&q, end, "}", 1))
        return 0;
    return q == end;
}

void serieskey_packed_json(const char *p, struct buf *out)
{
    const char *at = NULL, *name, *value;
    buf_puts(out, "{\"__name__\":");
    buf_json_str(out, p);
    while (serieskey_packed_next(p, &at, &name, &value)) {
        buf_putc(out, ',');
        buf_json_str(out, name);
        buf_putc(out, ':');
        buf_json_str(out, value);
    }
    buf_putc(out, '}');
}
