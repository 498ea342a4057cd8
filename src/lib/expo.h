/* Prometheus text exposition (format 0.0.4) writer. */
#ifndef GF_EXPO_H
#define GF_EXPO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum expo_type { EXPO_GAUGE = 0, EXPO_COUNTER, EXPO_UNTYPED };

struct expo_label {
    const char *name;
    const char *value;
};

/* Where one series sits in the rendered text, so the history ring can keep
 * the key ("name{labels}") without copying it per sample. */
struct expo_series {
    uint32_t key_off;
    uint32_t key_len;
    uint8_t type;
};

struct expo_writer {
    struct buf *out;
    struct expo_series *series; /* one per sample written, parallel to values */
    double *values;
    size_t nseries, cap;
    /* the family whose header is written before its first sample */
    const char *name;
    const char *help;
    enum expo_type type;
    int header_done;
};

/* Starts a writer appending to out (not owned). */
void expo_writer_init(struct expo_writer *w, struct buf *out);

/* Frees the series index; out stays with its owner. */
void expo_writer_free(struct expo_writer *w);

/* Opens a family: name, type and help text (name and help must outlive the
 * next expo_family call). Its HELP/TYPE lines are written with its first
 * sample, so a family nobody fills costs nothing. */
void expo_family(struct expo_writer *w, const char *name, enum expo_type type, const char *help);

/* Writes one sample of the open family. Label values are escaped and any
 * invalid UTF-8 in them is replaced, as Prometheus rejects it. */
void expo_sample(struct expo_writer *w, const struct expo_label *labels, size_t nlabels,
                 double value);

/* Formats a sample value as Prometheus expects (NaN, +Inf, -Inf, integers
 * without exponent, shortest round-tripping decimal otherwise). Returns the
 * length written into dst (cap >= 32). */
size_t expo_format_value(char *dst, size_t cap, double value);

/* Appends a label value with \\, \" and \n escaped and invalid UTF-8 bytes
 * replaced by U+FFFD. */
void expo_escape_label_value(struct buf *b, const char *value);

/* Whether n bytes at s are valid UTF-8 without NUL bytes. */
int expo_valid_utf8(const char *s, size_t n);

/* Name of a type as in "# TYPE" lines. */
const char *expo_type_name(enum expo_type type);

#endif
