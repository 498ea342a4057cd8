/* Tests for src/lib/buf.c. */
#include "testutil.h"

#include <stdlib.h>
#include <unistd.h>

#include "../../src/lib/buf.h"

static void grows_and_formats(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, "%d,", i), 0);
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    assert_int_equal(b.data[b.len], '\0');
    buf_free(&b);
}

static void refuses_past_bound(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 8);
    assert_int_equal(buf_puts(&b, "12345678"), 0);
    assert_int_equal(buf_putc(&b, '9'), BUF_TOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(buf_printf(&b, "%s", "x"), BUF_TOOBIG);
    buf_reset(&b);
    assert_int_equal(buf_append(&b, "abc", (size_t)-1), BUF_TOOBIG);
    buf_free(&b);
}

/* A whole file appended; one past the bound, or missing, leaves the buffer
 * as it was. */
static void appends_files(void **state)
{
    (void)state;
    char path[] = "/tmp/gf-test-buf.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    struct buf b;
    buf_init(&b, 14);
    buf_puts(&b, "ab");
    assert_int_equal(buf_append_file(&b, path), 0);
    assert_string_equal(b.data, "ab0123456789");
    assert_int_equal(buf_append_file(&b, path), BUF_TOOBIG);
    assert_string_equal(b.data, "ab0123456789");
    assert_int_equal(buf_append_file(&b, "/nonexistent/file"), -1);
    assert_int_equal(b.len, 12);
    buf_free(&b);
    unlink(path);
}

static void detaches(void **state)
{
    struct buf b;
    size_t len;
    char *p;

    (void)state;
    buf_init(&b, 0);
    p = buf_detach(&b, &len);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);
    buf_puts(&b, "hi");
    p = buf_detach(&b, &len);
    assert_string_equal(p, "hi");
    assert_null(b.data);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_formats),
        cmocka_unit_test(refuses_past_bound),
        cmocka_unit_test(detaches),
        cmocka_unit_test(appends_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
