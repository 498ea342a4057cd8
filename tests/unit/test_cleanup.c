/* Tests for src/agent/cleanup.c: plans from Docker's and Podman's
 * /system/df, with the container list saying who is gpufleet's. */
#include "testutil.h"

#include <jansson.h>

#include "../../src/agent/cleanup.h"

static const char *docker_df =
    "{\"Images\":["
    "{\"Id\":\"sha256:aaaa\",\"RepoTags\":[\"busybox:1\"],\"Size\":2000,\"SharedSize\":0,\"Containers\":2},"
    "{\"Id\":\"sha256:bbbb\",\"RepoTags\":[],\"Size\":500,\"SharedSize\":200,\"Containers\":0},"
    "{\"Id\":\"sha256:cccc\",\"RepoTags\":[\"spare:1\"],\"Size\":900,\"SharedSize\":0,\"Containers\":0},"
    "{\"Id\":\"sha256:dddd\",\"RepoTags\":[\"<none>:<none>\"],\"Size\":100,\"SharedSize\":-1,\"Containers\":-1},"
    "{\"Id\":\"sha256:eeee\",\"RepoTags\":[\"used-by-new:1\"],\"Size\":100,\"SharedSize\":0,\"Containers\":0}],"
    "\"Containers\":["
    "{\"Id\":\"c1\",\"Names\":[\"/junk\"],\"State\":\"exited\",\"SizeRw\":300},"
    "{\"Id\":\"c2\",\"Names\":[\"/mine\"],\"State\":\"exited\",\"SizeRw\":10},"
    "{\"Id\":\"c3\",\"Names\":[\"/alive\"],\"State\":\"running\",\"SizeRw\":10},"
    "{\"Id\":\"c4\",\"Names\":[\"/unlisted\"],\"State\":\"exited\",\"SizeRw\":10}],"
    "\"Volumes\":[{\"Name\":\"free\",\"UsageData\":{\"Size\":40,\"RefCount\":0}},"
    "{\"Name\":\"used\",\"UsageData\":{\"Size\":40,\"RefCount\":1}},"
    "{\"Name\":\"uncounted\",\"UsageData\":{\"Size\":-1,\"RefCount\":-1}}],"
    /* BuildKit's records, in the shape of the Engine API's BuildCache */
    "\"BuildCache\":[{\"ID\":\"hw53o5aio51xtltp5xjp8v7fx\",\"Parent\":\"\",\"Type\":\"regular\","
    "\"Description\":\"mount / from exec /bin/sh -c make\",\"InUse\":false,\"Shared\":false,\"Size\":5000,"
    "\"CreatedAt\":\"2026-11-30T10:00:00Z\",\"LastUsedAt\":\"2026-11-30T10:05:00Z\",\"UsageCount\":3},"
    "{\"ID\":\"busy0o5aio51xtltp5xjp8v7f\",\"Type\":\"exec.cachemount\",\"InUse\":true,\"Size\":9000},"
    "{\"ID\":\"bad id\",\"InUse\":false,\"Size\":1}]}";

static json_t *containers(void)
{
    return json_pack("[{s:s,s:b,s:s},{s:s,s:b,s:s},{s:s,s:b,s:s}]", "id", "c1", "managed", 0, "image_id",
                     "sha256:aaaa", "id", "c2", "managed", 1, "image_id", "sha256:aaaa", "id", "c3",
                     "managed", 0, "image_id", "eeee");
}

static char *names(json_t *plan)
{
    static char out[512];
    size_t i, n = 0;
    json_t *it;
    out[0] = '\0';
    json_array_foreach(json_object_get(plan, "items"), i, it)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s:%s", i ? " " : "",
                              json_string_value(json_object_get(it, "kind")),
                              json_string_value(json_object_get(it, "name")));
    return out;
}

static void plans_what_is_unused(void **state)
{
    struct errinfo e;
    json_t *c = containers(), *imgs = json_array();
    (void)state;
    /* the default: stopped containers not ours (one the list does not know
     * is left: it may be one made a moment ago), dangling images counted 0 */
    json_t *p = cleanup_plan_from_df(docker_df, strlen(docker_df), c, imgs, CLEANUP_CONTAINERS | CLEANUP_DANGLING, &e);
    assert_non_null(p);
    assert_string_equal(names(p), "container:junk image:<none>");
    /* an image's own bytes: what it shares with others stays */
    assert_int_equal(json_integer_value(json_object_get(p, "bytes")), 300 + 300);
    json_decref(p);
    /* everything: unused tagged images too (not one a container uses, even
     * when df counted 0), volumes counted unused */
    p = cleanup_plan_from_df(docker_df, strlen(docker_df), c, imgs, CLEANUP_CONTAINERS | CLEANUP_IMAGES | CLEANUP_VOLUMES, &e);
    assert_string_equal(names(p), "container:junk image:<none> image:spare:1 volume:free");
    json_decref(p);
    /* build cache: the records not in use, named by what made them */
    p = cleanup_plan_from_df(docker_df, strlen(docker_df), c, imgs, CLEANUP_CACHE, &e);
    assert_string_equal(names(p), "cache:mount / from exec /bin/sh -c make");
    assert_int_equal(json_integer_value(json_object_get(p, "bytes")), 5000);
    json_decref(p);
    /* Podman: bare ids, "<none>" tags, names from the image list */
    const char *podman_df = "{\"Images\":[{\"Id\":\"ffff\",\"RepoTags\":[\"<none>\"],\"Size\":7,\"SharedSize\":0,\"Containers\":0},"
                            "{\"Id\":\"9999\",\"RepoTags\":[\"1\"],\"Size\":8,\"SharedSize\":0,\"Containers\":0}]}";
    json_decref(imgs);
    imgs = json_pack("[{s:s,s:[s]}]", "Id", "sha256:9999", "RepoTags", "localhost/spare:1");
    p = cleanup_plan_from_df(podman_df, strlen(podman_df), c, imgs, CLEANUP_IMAGES, &e);
    assert_string_equal(names(p), "image:<none> image:localhost/spare:1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(p, "items"), 0), "id")), "sha256:ffff");
    json_decref(p);
    /* not df: an error, never a plan */
    assert_null(cleanup_plan_from_df("[]", 2, c, imgs, CLEANUP_IMAGES, &e));
    assert_int_equal(e.status, 502);
    json_decref(c);
    json_decref(imgs);
}

static void kinds_named(void **state)
{
    struct errinfo e;
    int m;
    (void)state;
    assert_int_equal(cleanup_kinds(NULL, &m, &e), 0);
    assert_int_equal(m, CLEANUP_CONTAINERS | CLEANUP_DANGLING);
    assert_int_equal(cleanup_kinds("volumes,images", &m, &e), 0);
    assert_int_equal(m, CLEANUP_VOLUMES | CLEANUP_IMAGES);
    assert_int_equal(cleanup_kinds("cache", &m, &e), 0);
    assert_int_equal(m, CLEANUP_CACHE);
    assert_int_equal(cleanup_kinds("images,disks", &m, &e), -1);
    assert_string_equal(e.field, "kinds");
    assert_int_equal(cleanup_kinds("image", &m, &e), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plans_what_is_unused),
        cmocka_unit_test(kinds_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
