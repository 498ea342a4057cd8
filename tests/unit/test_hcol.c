/* Head columns: what is written reads back bit for bit (constants, small
 * integers, NaN, stale markers, infinities, absent gaps), appends stay
 * compressed and small, and writes that are not appends (a row inserted
 * before the last one, a cell written again) turn the column plain with
 * nothing lost — checked against a plain model over random operations. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/server/store/chunk.h"
#include "../../src/server/store/hcol.h"

static uint64_t bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static void assert_same(const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bits(a[i]) != bits(b[i]))
            fail_msg("row %zu: %.17g (%016llx) != %.17g (%016llx)", i, a[i],
                     (unsigned long long)bits(a[i]), b[i], (unsigned long long)bits(b[i]));
}

static void appends_compress(void **state)
{
    (void)state;
    struct hcol c = {0};
    double want[120];
    for (size_t r = 0; r < 120; r++) {
        want[r] = r % 10 == 3 ? chunk_absent() : 40.0 + (double)(r % 7);
        assert_int_equal(hcol_set(&c, r, want[r], r + 1, 120), 1);
    }
    assert_int_equal(c.plain, 0);
    /* a gauge of small integers: a byte a cell (steps under 64), where plain is 8 */
    assert_true(c.len <= 120 + 8);
    double got[130];
    hcol_read(&c, 130, got);
    assert_same(got, want, 120);
    for (size_t r = 120; r < 130; r++)
        assert_true(chunk_is_absent(got[r]));
    hcol_free(&c);

    /* a counter of whole numbers: a step of 1000 in three bytes or less */
    for (size_t r = 0; r < 120; r++)
        hcol_set(&c, r, 81000.0 + 1000.0 * (double)r, r + 1, 120);
    assert_true(c.len <= 3 * 120 + 8);
    hcol_free(&c);

    /* a constant: one byte a cell */
    for (size_t r = 0; r < 120; r++)
        hcol_set(&c, r, 80e9, r + 1, 120);
    assert_true(c.len <= 120 + 8);
    hcol_free(&c);
}

static void special_values(void **state)
{
    (void)state;
    struct hcol c = {0};
    double want[] = {NAN, chunk_stale(), INFINITY, -INFINITY, 0.0, -0.0, 1e-308, 5e-324,
                     1.7976931348623157e308, chunk_stale(), chunk_absent(), 3.25, NAN,
                     /* integers: steps small and wide, signs, zero's sign, 2^53 and past */
                     5, 6, 4, -120, 0, -0.0, 7, 9007199254740992.0, -9007199254740992.0,
                     9007199254740993.0 * 2, 1e18, 1e18 + 256, 3};
    size_t n = sizeof(want) / sizeof(want[0]);
    /* written with gaps: row 2r */
    double model[64];
    for (size_t r = 0; r < 2 * n; r++)
        model[r] = chunk_absent();
    for (size_t i = 0; i < n; i++) {
        hcol_set(&c, 2 * i, want[i], 2 * i + 1, 64);
        model[2 * i] = want[i];
    }
    assert_int_equal(c.plain, 0);
    double got[64];
    hcol_read(&c, 2 * n, got);
    assert_same(got, model, 2 * n);
    hcol_free(&c);
}

/* Random appends, rewrites and inserted rows against a plain model. */
static void random_against_model(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 200; round++) {
        struct hcol c = {0};
        double model[512];
        size_t rows = 0, room = 16;
        for (int op = 0; op < 300 && rows < 500; op++) {
            int kind = rand() % 20;
            double v = rand() % 3 == 0 ? (double)(rand() % 5) : rand() / 7.0;
            if (kind == 0 && rows) { /* a row inserted before the end */
                size_t at = (size_t)rand() % rows;
                if (rows + 1 > room) {
                    room *= 2;
                    hcol_grow(&c, room);
                }
                hcol_insert_row(&c, at, rows, room);
                memmove(model + at + 1, model + at, (rows - at) * sizeof(double));
                model[at] = chunk_absent();
                rows++;
                continue;
            }
            size_t r;
            if (kind == 1 && rows)
                r = (size_t)rand() % rows; /* written again, or a gap filled */
            else {
                r = rows + (size_t)(rand() % 3); /* appended, maybe past a gap */
                while (r + 1 > room) {
                    room *= 2;
                    hcol_grow(&c, room);
                }
                for (; rows <= r; rows++)
                    model[rows] = chunk_absent();
            }
            int was = chunk_is_absent(model[r]);
            assert_int_equal(hcol_set(&c, r, v, rows, room), was);
            model[r] = v;
        }
        double got[512];
        hcol_read(&c, rows, got);
        assert_same(got, model, rows);
        hcol_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_compress),
        cmocka_unit_test(special_values),
        cmocka_unit_test(random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
