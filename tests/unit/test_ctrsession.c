/* Tests for src/server/ctrsession.c: log text made safe for JSON (UTF-8
 * kept, split sequences held back, invalid bytes replaced) and a log
 * download read from a stream of frames, filtered and bounded. */
#include "testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/lib/muxframe.h"
#include "../../src/server/ctrsession.h"

/* The text as a JSON string's value, through jansson. */
static char *as_json(const char *p, size_t n, int final, size_t *used)
{
    struct buf b;
    buf_init(&b, 0);
    buf_putc(&b, '"');
    *used = ctrsession_json_text(&b, (const unsigned char *)p, n, final);
    buf_putc(&b, '"');
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    assert_non_null(j); /* always valid JSON */
    char *out = strdup(json_string_value(j));
    json_decref(j);
    buf_free(&b);
    return out;
}

static void text_is_valid_json(void **state)
{
    size_t used;
    char *s;
    (void)state;
    const char *good = "a\"b\\c\n\t\x01 \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    s = as_json(good, strlen(good), 0, &used);
    assert_string_equal(s, good);
    assert_int_equal(used, strlen(good));
    free(s);
    /* invalid bytes: a stray continuation, an overlong, a surrogate, 0xff */
    s = as_json("x\x80y\xc0\xafz\xed\xa0\x80w\xff", 11, 0, &used);
    assert_string_equal(s, "x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdw\xef\xbf\xbd");
    assert_int_equal(used, 11);
    free(s);
    /* a sequence cut at the end waits for its rest, unless it is the end */
    s = as_json("ok \xe2\x82", 5, 0, &used);
    assert_string_equal(s, "ok ");
    assert_int_equal(used, 3);
    free(s);
    s = as_json("ok \xe2\x82", 5, 1, &used);
    assert_string_equal(s, "ok \xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(used, 5);
    free(s);
}

static void put_frame(int fd, int stream, const char *text)
{
    unsigned char h[8];
    mux_header(h, stream, (uint32_t)strlen(text));
    assert_int_equal(write(fd, h, 8), 8);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static void download_filters_and_cuts(void **state)
{
    int sv[2];
    struct buf rest, out;
    int cut;
    (void)state;

    for (int mask = 1; mask <= 3; mask++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        buf_init(&rest, 0);
        unsigned char h[8];
        mux_header(h, MUX_STDOUT, 4);
        buf_append(&rest, (const char *)h, 8); /* came with the hello */
        buf_append(&rest, "one\n", 4);
        put_frame(sv[1], MUX_STDERR, "two\n");
        put_frame(sv[1], MUX_STDOUT, "three\n");
        close(sv[1]);
        buf_init(&out, 0);
        int want_out = mask & 1, want_err = mask & 2;
        assert_int_equal(ctrsession_collect_logs(sv[0], &rest, want_out << MUX_STDOUT | (want_err ? 1 << MUX_STDERR : 0), &out, &cut), 0);
        assert_int_equal(cut, 0);
        assert_string_equal(out.data ? out.data : "", mask == 1 ? "one\nthree\n" : mask == 2 ? "two\n" : "one\ntwo\nthree\n");
        buf_free(&out);
        buf_free(&rest);
        close(sv[0]);
    }
    /* past the bound: as much as fits, and cut says so */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    put_frame(sv[1], MUX_STDOUT, "0123456789");
    put_frame(sv[1], MUX_STDOUT, "abcdef");
    close(sv[1]);
    buf_init(&rest, 0);
    buf_init(&out, 12);
    assert_int_equal(ctrsession_collect_logs(sv[0], &rest, 1 << MUX_STDOUT, &out, &cut), 0);
    assert_int_equal(cut, 1);
    assert_int_equal(out.len, 12);
    assert_memory_equal(out.data, "0123456789ab", 12);
    buf_free(&out);
    close(sv[0]);
    /* not frames, or cut inside one: an error */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        if (i == 0)
            assert_int_equal(write(sv[1], "{\"message\":\"no\"}", 16), 16);
        else
            assert_int_equal(write(sv[1], "\x01\0\0\0\0\0\0\x09" "abc", 11), 11);
        close(sv[1]);
        buf_init(&out, 0);
        assert_int_equal(ctrsession_collect_logs(sv[0], &rest, 2, &out, &cut), -1);
        buf_free(&out);
        close(sv[0]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_is_valid_json),
        cmocka_unit_test(download_filters_and_cuts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
