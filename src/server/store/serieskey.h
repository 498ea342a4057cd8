/* Canonical series keys (tsdb_key writes them: name{a="x",b="y"}, labels
 * sorted by name, values escaped as in the exposition format) read back
 * into a name and labels. The one reader of keys: the store, the scraper's
 * backfill, remote_write, the live fleet state and the alert evaluator all
 * come here. */
#ifndef GF_SERIESKEY_H
#define GF_SERIESKEY_H

#include <stddef.h>

#include "../../lib/buf.h"
#include "../../lib/promparse.h"

/* Keys longer than this are refused (tsdb_key writes none longer). */
#define SERIESKEY_MAX 16384

/* A key split up. name and every label name and value point into store and
 * are NUL-terminated; values are unescaped. Owned by the struct: free with
 * serieskey_free. */
struct serieskey {
    const char *name;
    size_t name_len;
    struct prom_label *labels; /* nlabels, in the key's order (sorted) */
    size_t nlabels;
    char *store;
};

/* Parses len bytes of key. Returns 0, or -1 (out zeroed) when it is not a
 * canonical key: a bad metric or label name, a label named twice (or
 * __name__: the name comes first), a missing
 * quote, an escape other than \\ \" \n, invalid UTF-8, or longer than
 * SERIESKEY_MAX. Labels need not be sorted (an agent's history keys are
 * in the order it wrote them). */
int serieskey_parse(const char *key, size_t len, struct serieskey *out);

void serieskey_free(struct serieskey *k);

/* A label's value (NUL-terminated), the metric name for "__name__", or
 * NULL when the key has no such label. */
const char *serieskey_get(const struct serieskey *k, const char *label);

/* One label's value of a key, unescaped into out (cut to outlen - 1 bytes),
 * without parsing the rest or allocating: for hot paths that want one or
 * two labels of every sample. Returns the value's full length, or -1 when
 * the key has no such label or is malformed up to it. */
int serieskey_label(const char *key, size_t len, const char *label, char *out, size_t outlen);

/* Appends the labels as a JSON object, the name first as "__name__". */
void serieskey_json(const struct serieskey *k, struct buf *out);

#endif
