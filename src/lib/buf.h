/* Growable byte buffer with an optional size bound (curl's dynbuf). */
#ifndef GF_BUF_H
#define GF_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;     /* always NUL-terminated when non-NULL */
    size_t len;     /* bytes used, excluding the NUL */
    size_t cap;     /* bytes allocated */
    size_t max_len; /* 0 = unbounded; appends past it fail with BUF_TOOBIG */
};

#define BUF_TOOBIG (-2)

/* Starts an empty buffer that may grow to max_len bytes (0: no bound). */
void buf_init(struct buf *b, size_t max_len);

/* Frees the storage; the buffer may be reused after buf_init. */
void buf_free(struct buf *b);

/* Empties the buffer but keeps its storage for reuse. */
void buf_reset(struct buf *b);

/* Gives back the storage past the bytes used (a buffer that is kept long
 * after it stopped growing). */
void buf_trim(struct buf *b);

/* Appends bytes / a string / formatted text. Return 0, or BUF_TOOBIG when the
 * bound would be passed (the buffer is then left as before the call). */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Appends the whole file at path. 0; -1 with errno set when it cannot be
 * read; BUF_TOOBIG when it is larger than the bound (the buffer then as
 * before the call). */
int buf_append_file(struct buf *b, const char *path);

/* Hands the storage to the caller (free() it) and empties the buffer. Returns
 * an empty string rather than NULL for an empty buffer. */
char *buf_detach(struct buf *b, size_t *len);

/* Appends s as a JSON string literal (quotes, \" \\ and \u00XX escapes). */
void buf_json_str(struct buf *b, const char *s);

#endif
