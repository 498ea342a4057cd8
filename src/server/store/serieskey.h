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

/* Appends a label value as keys hold it: \\, \" and \n escaped. */
void serieskey_escape(struct buf *out, const char *v, size_t len);

/* Appends the labels as a JSON object, the name first as "__name__". */
void serieskey_json(const struct serieskey *k, struct buf *out);

/* ---- packed: a key's name and labels in one block of text ----
 * What keeps many keys for long (the store's series) keeps them packed:
 * "name\0" then "label\0value\0" per label, then "\0" — about the key's
 * length, where a struct serieskey takes twice that and more (issue 18,
 * memory per series). Keys hold no NUL (serieskey_parse refuses one). */

/* k packed (malloc'd). */
char *serieskey_pack(const struct serieskey *k);
/* The bytes k takes packed, and k packed into p (that many bytes): for a
 * block that holds other things too (the store's series). */
size_t serieskey_packed_len(const struct serieskey *k);
/* The bytes packed p takes (its last end included). */
size_t serieskey_packed_bytes(const char *p);
void serieskey_pack_to(const struct serieskey *k, char *p);

/* The metric name of packed p. */
static inline const char *serieskey_packed_name(const char *p)
{
    return p;
}

/* Walks the labels of p: start with *at = NULL; each call gives the next
 * label's name and value and returns 1, or 0 after the last. */
int serieskey_packed_next(const char *p, const char **at, const char **name, const char **value);

/* serieskey_get and serieskey_json for p; the key p was packed from, as
 * tsdb_key writes keys (labels in p's order, values escaped); whether key
 * (len bytes) is that key, compared without writing it. */
const char *serieskey_packed_get(const char *p, const char *label);
void serieskey_packed_write(const char *p, struct buf *out);
int serieskey_packed_is(const char *p, const char *key, size_t len);
void serieskey_packed_json(const char *p, struct buf *out);

#endif
