/* Tests for src/agent/files.c: the listing program's records read back
 * (sizes, types, permissions, names with spaces, newlines and UTF-8). */
#include "testutil.h"

#include <jansson.h>

#include "../../src/agent/files.h"

static void reads_records(void **state)
{
    (void)state;
    static const char out[] = "4096 41ed 1700000000 bin\n\0"
                              "12 81a4 1700000001 été file.txt\n\0"
                              "7 a1ff 1700000002 link\n\0"
                              "3 81a4 1700000003 two\nlines\n\0"
                              "garbage\0"
                              "0 1000 1700000004 fifo\n";
    json_t *l = files_parse_listing(out, sizeof(out) - 1, "/x");
    json_t *e = json_object_get(l, "entries");
    assert_int_equal(json_array_size(e), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "type")), "dir");
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "mode")), "0755");
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "name")), "été file.txt");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 1), "size")), 12);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "type")), "file");
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 2), "type")), "link");
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 3), "name")), "two\nlines");
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 4), "type")), "other");
    assert_false(json_is_true(json_object_get(l, "truncated")));
    json_decref(l);
    /* a name that is not UTF-8 is shown replaced, not dropped */
    static const char bad[] = "1 81a4 1 \xff\xfe\n\0";
    l = files_parse_listing(bad, sizeof(bad) - 1, "/");
    assert_int_equal(json_array_size(json_object_get(l, "entries")), 1);
    json_decref(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
