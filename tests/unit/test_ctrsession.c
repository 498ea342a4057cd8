/* Tests for src/server/ctrsession.c: log text made safe for JSON (UTF-8
 * kept, split sequences held back, invalid bytes replaced). Log
 * downloads (streamed through a pipe) are tested in test_ctr_streams.sh. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_is_valid_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
