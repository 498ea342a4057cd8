/* Tests for src/lib/muxframe.c: the engine's multiplexed frames read in
 * pieces of any size. */
#include "testutil.h"

#include <stdlib.h>

#include "../../src/lib/buf.h"
#include "../../src/lib/muxframe.h"

struct got {
    struct buf out, err;
};

static int collect(void *arg, int stream, const char *data, size_t len)
{
    struct got *g = arg;
    buf_append(stream == MUX_STDERR ? &g->err : &g->out, data, len);
    return 0;
}

static size_t frame(unsigned char *to, int stream, const char *text)
{
    size_t n = strlen(text);
    mux_header(to, stream, (uint32_t)n);
    memcpy(to + 8, text, n);
    return 8 + n;
}

/* Whatever the cut, the same text comes out, each stream apart. */
static void any_cut_same_text(void **state)
{
    unsigned char s[256];
    size_t n = 0;
    (void)state;
    n += frame(s + n, MUX_STDOUT, "hello\n");
    n += frame(s + n, MUX_STDERR, "oops\n");
    n += frame(s + n, MUX_STDOUT, ""); /* an empty frame is legal */
    n += frame(s + n, MUX_STDOUT, "world\n");
    for (size_t step = 1; step <= n; step++) {
        struct mux_reader r;
        struct got g;
        buf_init(&g.out, 0);
        buf_init(&g.err, 0);
        mux_reader_init(&r);
        for (size_t i = 0; i < n; i += step)
            assert_int_equal(mux_reader_feed(&r, (const char *)s + i, step < n - i ? step : n - i, collect, &g), 0);
        assert_true(mux_reader_at_boundary(&r));
        assert_string_equal(g.out.data, "hello\nworld\n");
        assert_string_equal(g.err.data, "oops\n");
        buf_free(&g.out);
        buf_free(&g.err);
    }
}

/* A raw TTY stream or JSON is not frames: refused, and stays refused. */
static void refuses_what_is_not_frames(void **state)
{
    struct mux_reader r;
    struct got g;
    (void)state;
    buf_init(&g.out, 0);
    buf_init(&g.err, 0);
    mux_reader_init(&r);
    assert_int_equal(mux_reader_feed(&r, "{\"message\":\"x\"}", 15, collect, &g), -1);
    assert_int_equal(mux_reader_feed(&r, "", 0, collect, &g), -1);
    unsigned char bad[8] = {1, 0, 7, 0, 0, 0, 0, 1};
    mux_reader_init(&r);
    assert_int_equal(mux_reader_feed(&r, (const char *)bad, 8, collect, &g), -1);
    /* a stream cut inside a frame is not at a boundary */
    unsigned char s[32];
    size_t n = frame(s, MUX_STDOUT, "abcdef");
    mux_reader_init(&r);
    assert_int_equal(mux_reader_feed(&r, (const char *)s, n - 2, collect, &g), 0);
    assert_false(mux_reader_at_boundary(&r));
    buf_free(&g.out);
    buf_free(&g.err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(any_cut_same_text),
        cmocka_unit_test(refuses_what_is_not_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
