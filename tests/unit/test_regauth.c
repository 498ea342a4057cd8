/* Tests for src/server/regauth.c: which registry an image names, and
 * credentials kept owner-only and never listed. */
#include "testutil.h"

#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/server/regauth.h"

static void registry_of_images(void **state)
{
    char r[300];
    (void)state;
    regauth_registry_of("nvcr.io/nvidia/pytorch:24.05-py3", r, sizeof(r));
    assert_string_equal(r, "nvcr.io");
    regauth_registry_of("127.0.0.1:5000/team/app:1", r, sizeof(r));
    assert_string_equal(r, "127.0.0.1:5000");
    regauth_registry_of("localhost/app", r, sizeof(r));
    assert_string_equal(r, "localhost");
    regauth_registry_of("library/busybox:1", r, sizeof(r));
    assert_string_equal(r, "docker.io");
    regauth_registry_of("busybox", r, sizeof(r));
    assert_string_equal(r, "docker.io");
}

static void kept_and_never_shown(void **state)
{
    char dir[] = "/tmp/gf-regauth.XXXXXX", path[300];
    struct errinfo e;
    struct stat st;
    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(regauth_set(dir, "reg.example:5000", "ci", "s3cret-pass", &e), 0);
    snprintf(path, sizeof(path), "%s/registry_auth.json", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_t *l = regauth_list(dir);
    char *text = json_dumps(l, 0);
    assert_null(strstr(text, "s3cret"));
    assert_non_null(strstr(text, "\"has_password\": true"));
    free(text);
    json_decref(l);
    json_t *a = regauth_for_image(dir, "reg.example:5000/team/app:1");
    assert_string_equal(json_string_value(json_object_get(a, "password")), "s3cret-pass");
    assert_string_equal(json_string_value(json_object_get(a, "serveraddress")), "reg.example:5000");
    json_decref(a);
    assert_null(regauth_for_image(dir, "other.example/app:1"));
    assert_int_equal(regauth_set(dir, "bad host", "ci", "x", &e), -1);
    assert_string_equal(e.field, "registry");
    assert_int_equal(regauth_set(dir, "reg.example", "", "x", &e), -1);
    assert_string_equal(e.field, "user");
    assert_int_equal(regauth_set(dir, "reg.example", "ci", "a\nb", &e), -1);
    assert_string_equal(e.field, "password");
    assert_int_equal(regauth_delete(dir, "reg.example:5000", &e), 0);
    assert_int_equal(regauth_delete(dir, "reg.example:5000", &e), -1);
    assert_int_equal(e.status, 404);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_of_images),
        cmocka_unit_test(kept_and_never_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
