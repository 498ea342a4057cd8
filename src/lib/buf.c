/* Growable byte buffer; every growth goes through reserve() and its bound. */
#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void buf_init(struct buf *b, size_t max_len)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max_len = max_len;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_trim(struct buf *b)
{
    if (!b->data || b->cap == b->len + 1)
        return;
    b->data = xrealloc(b->data, b->len + 1);
    b->cap = b->len + 1;
}

static int reserve(struct buf *b, size_t extra)
{
    size_t need;

    if (b->max_len && (extra > b->max_len || b->len > b->max_len - extra))
        return BUF_TOOBIG;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (reserve(b, len) < 0)
        return BUF_TOOBIG;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_file(struct buf *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t before = b->len, n;
    char chunk[65536];
    int rc = 0;

    if (!f)
        return -1;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(b, chunk, n);
    if (rc == 0 && ferror(f)) {
        rc = -1;
        errno = EIO;
    }
    fclose(f);
    if (rc < 0 && b->data) { /* as before the call */
        b->len = before;
        b->data[before] = '\0';
    }
    return rc;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n;

    va_copy(cp, ap);
    n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return -1;
    if (reserve(b, (size_t)n) < 0)
        return BUF_TOOBIG;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p = b->data ? b->data : xstrdup("");

    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_json_str(struct buf *out, const char *s)
{
    buf_putc(out, '"');
    while (*s) {
        /* copy the run that needs no escaping in one go */
        const char *r = s;
        while (*r && *r != '"' && *r != '\\' && (unsigned char)*r >= 0x20)
            r++;
        buf_append(out, s, (size_t)(r - s));
        if (!*r)
            break;
        unsigned char c = (unsigned char)*r;
        if (c == '"' || c == '\\')
            buf_putc(out, '\\'), buf_putc(out, (char)c);
        else
            buf_printf(out, "\\u%04x", c);
        s = r + 1;
    }
    buf_putc(out, '"');
}
