/* Tests for src/server/store/chunk.c: lossless round trips over random and
 * realistic series, and refusal of corrupt input. */
#include <math.h>

#include "testutil.h"

#include "../../src/server/store/chunk.h"

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double uniform(void)
{
    return (double)(next_rand() >> 11) / 9007199254740992.0;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

static void roundtrip(const struct chunk_data *in, size_t *bytes)
{
    struct buf out;
    struct chunk_data back;
    char err[128];

    buf_init(&out, 0);
    assert_int_equal(chunk_encode(in, 3, &out), 0);
    if (chunk_decode(out.data, out.len, &back, err, sizeof(err)) < 0)
        fail_msg("decode: %s", err);
    assert_int_equal(back.nrows, in->nrows);
    assert_int_equal(back.ncols, in->ncols);
    for (size_t r = 0; r < in->nrows; r++)
        assert_true(back.ts[r] == in->ts[r]);
    for (size_t c = 0; c < in->ncols; c++)
        assert_true(back.series[c] == in->series[c]);
    for (size_t i = 0; i < in->nrows * in->ncols; i++)
        if (!same_bits(back.values[i], in->values[i]))
            fail_msg("value %zu: %.17g came back as %.17g", i, in->values[i], back.values[i]);
    if (bytes)
        *bytes = out.len;
    chunk_data_free(&back);
    buf_free(&out);
}

static void alloc(struct chunk_data *c, size_t rows, size_t cols)
{
    c->nrows = rows;
    c->ncols = cols;
    c->ts = calloc(rows, sizeof(int64_t));
    c->series = calloc(cols, sizeof(uint64_t));
    c->values = calloc(rows * cols, sizeof(double));
}

static void random_series(void **state)
{
    (void)state;
    for (int iter = 0; iter < 60; iter++) {
        struct chunk_data c;
        size_t rows = 1 + next_rand() % 300, cols = 1 + next_rand() % 20;
        alloc(&c, rows, cols);
        int64_t t = 1795000000000LL + (int64_t)(next_rand() % 1000000);
        for (size_t r = 0; r < rows; r++) {
            /* irregular and jittered intervals, sometimes big jumps */
            t += (next_rand() % 10 == 0) ? (int64_t)(next_rand() % 3600000)
                                        : 1000 + (int64_t)(next_rand() % 7) - 3;
            c.ts[r] = t;
        }
        for (size_t k = 0; k < cols; k++)
            c.series[k] = 1 + next_rand() % 100000;
        for (size_t k = 0; k < cols; k++) {
            int kind = (int)(next_rand() % 6);
            double counter = 0;
            for (size_t r = 0; r < rows; r++) {
                double v;
                switch (kind) {
                case 0: v = uniform() * 1e6 - 5e5; break;                 /* arbitrary doubles */
                case 1: v = (double)(int)(uniform() * 100); break;       /* integers */
                case 2: v = round(uniform() * 700000) / 1000; break;     /* watts, 3 decimals */
                case 3:                                                  /* counter with resets */
                    counter = (next_rand() % 50 == 0) ? 0 : counter + uniform() * 1000;
                    v = floor(counter);
                    break;
                case 4: v = 42; break;                                   /* constant */
                default: v = uniform() < 0.5 ? uniform() : (double)(next_rand() % 10); break;
                }
                switch (next_rand() % 40) {
                case 0: v = NAN; break;
                case 1: v = INFINITY; break;
                case 2: v = -INFINITY; break;
                case 3: v = chunk_stale(); break;
                case 4: v = chunk_absent(); break;
                case 5: v = -0.0; break;
                default: break;
                }
                c.values[k * rows + r] = v;
            }
        }
        roundtrip(&c, NULL);
        chunk_data_free(&c);
    }
}

static void realistic_gpu_data_is_small(void **state)
{
    /* 20 dcgm-like series x 120 samples at 1 s with +-3 ms jitter */
    struct chunk_data c;
    size_t rows = 120, cols = 20, bytes;
    double util = 50, energy = 8e9;

    (void)state;
    alloc(&c, rows, cols);
    for (size_t r = 0; r < rows; r++)
        c.ts[r] = 1795000000000LL + (int64_t)r * 1000 + (int64_t)(next_rand() % 7) - 3;
    for (size_t k = 0; k < cols; k++)
        c.series[k] = 100 + k;
    for (size_t r = 0; r < rows; r++) {
        util += (uniform() - 0.5) * 10;
        util = util < 0 ? 0 : util > 100 ? 100 : util;
        double power = round((60 + util * 6.4 + uniform() * 3) * 1000) / 1000;
        energy += floor(power * 1000);
        double v[20] = {floor(util), floor(util / 3), 0, 0, 19818, 61262, 81559, 59 + (r / 40),
                        54, power, 700, energy, 1980, 2619, 0, 0, 0, 0, 0, 0};
        for (size_t k = 0; k < cols; k++)
            c.values[k * rows + r] = v[k];
    }
    roundtrip(&c, &bytes);
    double per_sample = (double)bytes / (double)(rows * cols);
    print_message("realistic chunk: %zu bytes, %.3f bytes/sample\n", bytes, per_sample);
    assert_true(per_sample < 1.0);
    chunk_data_free(&c);
}

static int want_odd(void *arg, uint64_t id)
{
    (void)arg;
    return id % 2 == 1;
}

/* Series of one head that do not share timestamps (each GPU on its own
 * clock) leave most cells absent: stored as runs, not one special each
 * (issue 18, defect 14). */
static void sparse_columns_are_small(void **state)
{
    (void)state;
    struct chunk_data c;
    size_t bytes;
    alloc(&c, 960, 8);
    for (size_t r = 0; r < 960; r++)
        c.ts[r] = 1795000000000LL + (int64_t)(r / 8) * 1000 + (int64_t)(r % 8) * 37 +
                  (int64_t)(next_rand() % 7);
    for (size_t k = 0; k < 8; k++) {
        c.series[k] = 100 + k;
        for (size_t r = 0; r < 960; r++)
            c.values[k * 960 + r] = r % 8 == k ? round(300000 + uniform() * 2000) / 1000
                                               : chunk_absent();
    }
    roundtrip(&c, &bytes);
    print_message("960 rows x 8 columns, 1 in 8 present: %zu bytes\n", bytes);
    /* 960 values of 11 random bits and 960 jittered timestamps (about
     * 1.7 KB of information) took 6,952 bytes with every absent cell a
     * special, 2,669 as runs */
    assert_true(bytes < 3500);
    chunk_data_free(&c);
}

static void decodes_only_wanted_columns(void **state)
{
    struct chunk_data c, back;
    struct buf out;
    char err[128];

    (void)state;
    alloc(&c, 30, 6);
    for (size_t r = 0; r < 30; r++)
        c.ts[r] = 1000 + (int64_t)r * 1000;
    for (size_t k = 0; k < 6; k++) {
        c.series[k] = 10 + k;
        for (size_t r = 0; r < 30; r++)
            c.values[k * 30 + r] = (double)(k * 100 + r);
    }
    buf_init(&out, 0);
    assert_int_equal(chunk_encode(&c, 3, &out), 0);
    assert_int_equal(chunk_decode_some(out.data, out.len, want_odd, NULL, &back, err, sizeof(err)), 0);
    assert_int_equal(back.ncols, 3);
    assert_int_equal(back.nrows, 30);
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(back.series[k], 11 + 2 * k);
        assert_true(back.values[k * 30 + 7] == (double)((1 + 2 * k) * 100 + 7));
    }
    chunk_data_free(&back);
    buf_free(&out);
    chunk_data_free(&c);
}

static void corrupt_input_refused(void **state)
{
    struct chunk_data c, back;
    struct buf out;
    char err[128];

    (void)state;
    alloc(&c, 50, 3);
    for (size_t r = 0; r < 50; r++)
        c.ts[r] = (int64_t)r * 1000;
    for (size_t i = 0; i < 150; i++)
        c.values[i] = (double)i;
    buf_init(&out, 0);
    assert_int_equal(chunk_encode(&c, 3, &out), 0);
    assert_int_equal(chunk_decode("nope", 4, &back, err, sizeof(err)), -1);
    assert_int_equal(chunk_decode(out.data, out.len / 2, &back, err, sizeof(err)), -1);
    for (size_t i = 4; i < out.len; i++) {
        char *copy = malloc(out.len);
        memcpy(copy, out.data, out.len);
        copy[i] ^= 0x5a;
        if (chunk_decode(copy, out.len, &back, err, sizeof(err)) == 0)
            chunk_data_free(&back); /* a flip may still decode: never a crash */
        free(copy);
    }
    buf_free(&out);
    chunk_data_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_series),
        cmocka_unit_test(realistic_gpu_data_is_small),
        cmocka_unit_test(sparse_columns_are_small),
        cmocka_unit_test(decodes_only_wanted_columns),
        cmocka_unit_test(corrupt_input_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
