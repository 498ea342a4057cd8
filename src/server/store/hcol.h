/* One column of an in-memory head (a series' raw values, or one roll-up
 * statistic), kept compressed while it is written in row order: each
 * value is XORed with the one before it and stored as its significant
 * bytes, so a constant takes one byte and a gauge of small integers two or
 * three, where a plain array takes eight (issue 18, memory per series).
 * A write that is not an append (a row inserted before the column's last
 * one, a cell written twice) turns the column plain: an array of doubles,
 * as every head was before. Readers decode a column into doubles. */
#ifndef GF_HCOL_H
#define GF_HCOL_H

#include <stddef.h>
#include <stdint.h>

struct hcol {
    uint8_t *b;        /* compressed bytes, or (plain) cap doubles */
    uint32_t len, cap; /* compressed: bytes used and allocated; plain: cap rows */
    uint32_t n;        /* cells written: rows from n on are absent */
    uint32_t plain;
    uint64_t last; /* bits of the last present value appended (compressed) */
};

/* Sets row r to v. rows: the head's rows (r < rows), room: the rows the
 * head has allocated (what a plain column is sized to). Returns 1 when the
 * cell was absent before, else 0. */
int hcol_set(struct hcol *c, size_t r, double v, size_t rows, size_t room);

/* Inserts an absent row before row r (rows: the head's rows before it,
 * room: its allocated rows, at least rows + 1). */
void hcol_insert_row(struct hcol *c, size_t r, size_t rows, size_t room);

/* The head's allocated rows grew to room (a plain column follows). */
void hcol_grow(struct hcol *c, size_t room);

/* The first rows cells, decoded into out (absent past what was written). */
void hcol_read(const struct hcol *c, size_t rows, double *out);

/* Bytes the column holds (for the store's memory figures). */
size_t hcol_bytes(const struct hcol *c);

void hcol_free(struct hcol *c);

#endif
