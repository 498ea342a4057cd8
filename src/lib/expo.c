/* Prometheus text writer. Families open lazily so collectors can announce a
 * family and emit nothing when no device supports it. */
#include "expo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void expo_writer_init(struct expo_writer *w, struct buf *out)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
}

void expo_writer_free(struct expo_writer *w)
{
    free(w->series);
    free(w->values);
    w->series = NULL;
    w->values = NULL;
    w->nseries = w->cap = 0;
}

const char *expo_type_name(enum expo_type type)
{
    switch (type) {
    case EXPO_GAUGE:
        return "gauge";
    case EXPO_COUNTER:
        return "counter";
    default:
        return "untyped";
    }
}

void expo_family(struct expo_writer *w, const char *name, enum expo_type type, const char *help)
{
    w->name = name;
    w->help = help;
    w->type = type;
    w->header_done = 0;
}

static void put_help(struct buf *b, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            buf_puts(b, "\\\\");
        else if (*p == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *p);
    }
}

static void write_header(struct expo_writer *w)
{
    buf_printf(w->out, "# HELP %s ", w->name);
    put_help(w->out, w->help);
    buf_printf(w->out, "\n# TYPE %s %s\n", w->name, expo_type_name(w->type));
    w->header_done = 1;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned int cp;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* overlong forms, surrogates and out-of-range code points */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

int expo_valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    while (n) {
        if (*p >= 0x01 && *p < 0x80) { /* the common case: plain ASCII */
            p++;
            n--;
            continue;
        }
        size_t len = utf8_seq_len(p, n);
        if (len == 0 || (len == 1 && *p == 0))
            return 0;
        p += len;
        n -= len;
    }
    return 1;
}

void expo_escape_label_value(struct buf *b, const char *value)
{
    const unsigned char *p = (const unsigned char *)value;
    size_t n = strlen(value);

    while (n) {
        size_t len = utf8_seq_len(p, n);
        if (len == 0) {
            buf_puts(b, "\xef\xbf\xbd");
            p++;
            n--;
            continue;
        }
        if (*p == '\\')
            buf_puts(b, "\\\\");
        else if (*p == '"')
            buf_puts(b, "\\\"");
        else if (*p == '\n')
            buf_puts(b, "\\n");
        else
            buf_append(b, p, len);
        p += len;
        n -= len;
    }
}

size_t expo_format_value(char *dst, size_t cap, double v)
{
    int n;

    if (isnan(v))
        return (size_t)snprintf(dst, cap, "NaN");
    if (isinf(v))
        return (size_t)snprintf(dst, cap, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15) {
        /* integers are most values: format them without printf */
        char tmp[24];
        size_t nd = 0, k = 0;
        long long i = (long long)v;
        unsigned long long u = i < 0 ? (unsigned long long)(-i) : (unsigned long long)i;
        do
            tmp[nd++] = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (i < 0 || (i == 0 && signbit(v)))
            dst[k++] = '-';
        while (nd && k + 1 < cap)
            dst[k++] = tmp[--nd];
        dst[k] = '\0';
        return k;
    }
    n = snprintf(dst, cap, "%.15g", v);
    if (strtod(dst, NULL) != v)
        n = snprintf(dst, cap, "%.17g", v);
    return (size_t)n;
}

static void track_series(struct expo_writer *w, size_t key_off, double value)
{
    if (w->nseries == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        w->series = xrealloc(w->series, w->cap * sizeof(*w->series));
        w->values = xrealloc(w->values, w->cap * sizeof(*w->values));
    }
    w->series[w->nseries] = (struct expo_series){
        .key_off = (uint32_t)key_off,
        .key_len = (uint32_t)(w->out->len - key_off),
        .type = (uint8_t)w->type,
    };
    w->values[w->nseries++] = value;
}

void expo_sample(struct expo_writer *w, const struct expo_label *labels, size_t nlabels,
                 double value)
{
    char num[40];
    size_t key_off;

    if (!w->header_done)
        write_header(w);
    key_off = w->out->len;
    buf_puts(w->out, w->name);
    if (nlabels) {
        buf_putc(w->out, '{');
        for (size_t i = 0; i < nlabels; i++) {
            if (i)
                buf_putc(w->out, ',');
            buf_puts(w->out, labels[i].name);
            buf_puts(w->out, "=\"");
            expo_escape_label_value(w->out, labels[i].value ? labels[i].value : "");
            buf_putc(w->out, '"');
        }
        buf_putc(w->out, '}');
    }
    track_series(w, key_off, value);
    buf_putc(w->out, ' ');
    size_t n = expo_format_value(num, sizeof(num), value);
    buf_append(w->out, num, n);
    buf_putc(w->out, '\n');
}
