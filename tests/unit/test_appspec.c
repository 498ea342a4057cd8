/* Tests for src/server/appspec.c: an install request is checked with the
 * field named, a template's values are the defaults under the request's,
 * its variables are required and limited to their options, the container
 * body runs the start command as the app's, and templates files (ours and
 * Portainer's v2) import as they should. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "../../src/server/appspec.h"

static const struct appspec_defaults D = {.image = "nvcr.io/nvidia/pytorch:24.10-py3", .health_timeout_s = 900};

/* parse TEXT: 0, or the errinfo's status with its field in field */
static int parse(const char *text, const json_t *tpl, json_t **app, json_t **ctr, char *field)
{
    json_t *b = json_loads(text, 0, NULL);
    struct errinfo e = {0};
    assert_non_null(b);
    int rc = appspec_parse(b, tpl, &D, app, ctr, &e);
    json_decref(b);
    if (rc == 0)
        return 0;
    strcpy(field, e.field);
    return e.status;
}

static void fields_named(void **state)
{
    static const struct {
        const char *body, *field;
        int status;
    } cases[] = {
        {"{\"repository\":\"https://x/y.git\",\"port\":80}", "name", 400},
        {"{\"name\":\"UPPER\",\"port\":80}", "name", 400},
        {"{\"name\":\"-lead\",\"port\":80}", "name", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"file:///etc\"}", "repository", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"https://-oProxyCommand=x/y\"}", "repository", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"https://h/x/--upload-pack=touch\"}", "repository", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"https://h/x.git#main\"}", "repository", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"https://h/x.git\",\"ref\":\"-u\"}", "ref", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"https://h/x.git\",\"ref\":\"a..b\"}", "ref", 400},
        {"{\"name\":\"a\",\"port\":80,\"ref\":\"main\"}", "ref", 400},
        {"{\"name\":\"a\"}", "port", 400},
        {"{\"name\":\"a\",\"port\":70000}", "port", 400},
        {"{\"name\":\"a\",\"port\":80,\"health_path\":\"no-slash\"}", "health_path", 400},
        {"{\"name\":\"a\",\"port\":80,\"start_command\":\"a\\u0001b\"}", "start_command", 400},
        {"{\"name\":\"a\",\"port\":80,\"image\":\"UPPER/case\"}", "image", 400},
        {"{\"name\":\"a\",\"port\":80,\"gpus\":17}", "gpus", 400},
        {"{\"name\":\"a\",\"port\":80,\"memory\":\"lots\"}", "memory", 400},
        {"{\"name\":\"a\",\"port\":80,\"env\":{\"NVIDIA_VISIBLE_DEVICES\":\"all\"}}", "env", 400},
        {"{\"name\":\"a\",\"port\":80,\"run_as_root\":\"yes\"}", "run_as_root", 400},
        {"{\"name\":\"a\",\"port\":80,\"health_timeout_s\":0}", "health_timeout_s", 400},
        {"{\"name\":\"a\",\"port\":80,\"surprise\":1}", "surprise", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"git://h/x\",\"repository_auth\":{\"username\":\"u\",\"password\":\"p\"}}", "repository_auth", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"https://h/x\",\"repository_auth\":{\"username\":\"u\"}}", "repository_auth", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository_auth\":{\"username\":\"u\",\"password\":\"p\"}}", "repository_auth", 400},
        /* ssh: a key is a must, and must look like one */
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"git@h:x.git\"}", "repository_auth", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"ssh://h/x\",\"repository_auth\":{\"username\":\"u\",\"password\":\"p\"}}", "repository_auth", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"ssh://h/x\",\"repository_auth\":{\"ssh_key\":\"hunter2\"}}", "repository_auth", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"ssh://h/x\",\"repository_auth\":{\"ssh_key\":\"-----BEGIN OPENSSH PRIVATE KEY-----\\nx\",\"host_key\":\"MD5:aa\"}}", "repository_auth", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"ssh://h/-x\",\"repository_auth\":{\"ssh_key\":\"-----BEGIN OPENSSH PRIVATE KEY-----\"}}", "repository", 400},
        {"{\"name\":\"a\",\"port\":80,\"repository\":\"git@h:x/--upload-pack=y\",\"repository_auth\":{\"ssh_key\":\"-----BEGIN OPENSSH PRIVATE KEY-----\"}}", "repository", 400},
    };
    json_t *app, *ctr;
    char field[64];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        field[0] = 0;
        int status = parse(cases[i].body, NULL, &app, &ctr, field);
        if (status != cases[i].status || strcmp(field, cases[i].field))
            fail_msg("%s: %d %s, wanted %d %s", cases[i].body, status, field, cases[i].status, cases[i].field);
    }
}

static void container_of_an_app(void **state)
{
    json_t *app, *ctr;
    char field[64];
    (void)state;
    assert_int_equal(parse("{\"name\":\"sd\",\"repository\":\"https://github.com/a/b\",\"port\":7860,\"start_command\":"
                           "\"python app.py\",\"gpus\":{\"count\":1,\"min_memory_mib\":8000},\"env\":{\"A\":\"1\"}}",
                           NULL, &app, &ctr, field),
                     0);
    /* the default image, the app's name for its container, sh -c, one
     * port, no workspace (the app's folder is all it mounts), HOME there */
    assert_string_equal(json_string_value(json_object_get(app, "image")), D.image);
    assert_string_equal(json_string_value(json_object_get(ctr, "name")), "app-sd");
    assert_string_equal(json_string_value(json_array_get(json_object_get(ctr, "command"), 2)), "python app.py");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(ctr, "ports"), 0), "container")), 7860);
    assert_true(json_is_false(json_object_get(ctr, "workspace")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(ctr, "env"), "HOME")), "/app");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ctr, "gpus"), "min_memory_mib")), 8000);
    assert_int_equal(json_integer_value(json_object_get(app, "health_timeout_s")), 900);
    assert_null(json_object_get(app, "repository_auth"));
    json_decref(app);
    json_decref(ctr);
    /* a private repository's credentials are kept for the caller to take out */
    assert_int_equal(parse("{\"name\":\"p\",\"repository\":\"https://h/x.git\",\"port\":80,"
                           "\"repository_auth\":{\"username\":\"bot\",\"password\":\"tok\"}}",
                           NULL, &app, &ctr, field),
                     0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(app, "repository_auth"), "password")), "tok");
    assert_null(json_object_get(ctr, "repository_auth"));
    json_decref(app);
    json_decref(ctr);
    /* an ssh repository's deploy key, user and pinned host key */
    assert_int_equal(parse("{\"name\":\"s\",\"repository\":\"git@127.0.0.1:srv/app.git\",\"port\":80,"
                           "\"repository_auth\":{\"ssh_key\":\"-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----\\n\","
                           "\"host_key\":\"SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\"}}",
                           NULL, &app, &ctr, field),
                     0);
    json_t *auth = json_object_get(app, "repository_auth");
    assert_non_null(strstr(json_string_value(json_object_get(auth, "ssh_key")), "\nAAAA\n"));
    assert_string_equal(json_string_value(json_object_get(auth, "host_key")), "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s");
    assert_string_equal(json_string_value(json_object_get(auth, "username")), "");
    json_decref(app);
    json_decref(ctr);
}

static json_t *template(const char *text)
{
    json_t *raw = json_loads(text, 0, NULL), *t;
    struct errinfo e = {0};
    assert_non_null(raw);
    t = appspec_template(raw, &e);
    if (!t)
        fail_msg("%s: %s (%s)", text, e.message, e.field);
    json_decref(raw);
    return t;
}

static void template_defaults_and_variables(void **state)
{
    json_t *t = template("{\"slug\":\"nb\",\"title\":\"Notebook\",\"repository\":\"https://h/nb.git\",\"ref\":\"v1\","
                         "\"port\":8888,\"start_command\":\"jupyter lab\",\"image\":\"quay.io/jupyter/base:1\","
                         "\"gpus\":{\"count\":2},\"env\":[{\"name\":\"TOKEN\",\"required\":true},"
                         "{\"name\":\"MODE\",\"default\":\"a\",\"options\":[\"a\",\"b\"]}]}");
    json_t *app, *ctr;
    char field[64] = "";
    (void)state;
    assert_int_equal(parse("{\"name\":\"x\"}", t, &app, &ctr, field), 400);
    assert_string_equal(field, "env.TOKEN");
    assert_int_equal(parse("{\"name\":\"x\",\"env\":{\"TOKEN\":\"s\",\"MODE\":\"c\"}}", t, &app, &ctr, field), 400);
    assert_string_equal(field, "env.MODE");
    assert_int_equal(parse("{\"name\":\"x\",\"port\":9000,\"env\":{\"TOKEN\":\"s\",\"MORE\":\"m\"}}", t, &app, &ctr, field), 0);
    /* the template's values, the request's over them */
    assert_string_equal(json_string_value(json_object_get(app, "ref")), "v1");
    assert_int_equal(json_integer_value(json_object_get(app, "port")), 9000);
    assert_string_equal(json_string_value(json_object_get(app, "image")), "quay.io/jupyter/base:1");
    assert_string_equal(json_string_value(json_object_get(app, "template")), "nb");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ctr, "gpus"), "count")), 2);
    json_t *env = json_object_get(app, "env");
    assert_string_equal(json_string_value(json_object_get(env, "MODE")), "a");
    assert_string_equal(json_string_value(json_object_get(env, "MORE")), "m");
    /* promoted back: a template again, its secret's value left out */
    json_object_set_new(json_object_get(app, "env"), "TOKEN", json_string("s3cret"));
    json_t *back = appspec_template_of(app, "nb2", "Again"), *checked;
    struct errinfo e = {0};
    assert_non_null(checked = appspec_template(back, &e));
    assert_string_equal(json_string_value(json_object_get(checked, "promoted_from")), "x");
    char *dump = json_dumps(checked, 0);
    assert_null(strstr(dump, "s3cret"));
    free(dump);
    json_decref(back);
    json_decref(checked);
    json_decref(app);
    json_decref(ctr);
    json_decref(t);
}

static void templates_checked(void **state)
{
    static const char *const bad[][2] = {
        {"{\"slug\":\"Bad Slug\",\"title\":\"t\",\"port\":1}", "slug"},
        {"{\"slug\":\"s\",\"port\":1}", "title"},
        {"{\"slug\":\"s\",\"title\":\"t\"}", "port"},
        {"{\"slug\":\"s\",\"title\":\"t\",\"port\":1,\"logo\":\"javascript:alert(1)\"}", "logo"},
        {"{\"slug\":\"s\",\"title\":\"t\",\"port\":1,\"env\":[{\"name\":\"A\",\"default\":\"z\",\"options\":[\"x\"]}]}", "env.A"},
        {"{\"slug\":\"s\",\"title\":\"t\",\"port\":1,\"env\":[{\"name\":\"A\"},{\"name\":\"A\"}]}", "env"},
        {"{\"slug\":\"s\",\"title\":\"t\",\"port\":1,\"gpus\":{\"count\":99}}", "gpus"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *raw = json_loads(bad[i][0], 0, NULL);
        struct errinfo e = {0};
        json_t *t = appspec_template(raw, &e);
        if (t || strcmp(e.field, bad[i][1]))
            fail_msg("%s: field %s, wanted %s", bad[i][0], e.field, bad[i][1]);
        json_decref(raw);
    }
}

static void portainer_import(void **state)
{
    json_t *in = json_loads("{\"version\":\"2\",\"templates\":["
                            "{\"type\":1,\"title\":\"My App!\",\"image\":\"nginx:1\",\"ports\":[\"8080:80/tcp\"],"
                            "\"description\":\"d\",\"logo\":\"https://x/l.png\",\"command\":\"nginx -g 'daemon off;'\","
                            "\"env\":[{\"name\":\"E\",\"label\":\"E label\",\"default\":\"1\"}]},"
                            "{\"type\":1,\"title\":\"My App\",\"image\":\"nginx:1\",\"ports\":[\"81/tcp\"]},"
                            "{\"type\":1,\"title\":\"No port\",\"image\":\"x:1\"},"
                            "{\"type\":2,\"title\":\"Swarm\"}]}",
                            0, NULL);
    json_t *skipped = NULL, *list;
    struct errinfo e = {0};
    (void)state;
    assert_non_null(list = appspec_templates_import(in, &skipped, &e));
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_array_size(skipped), 2);
    json_t *a = json_array_get(list, 0), *b = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(a, "slug")), "my-app");
    assert_string_equal(json_string_value(json_object_get(b, "slug")), "my-app-2");
    assert_int_equal(json_integer_value(json_object_get(a, "port")), 80);
    assert_int_equal(json_integer_value(json_object_get(b, "port")), 81);
    assert_string_equal(json_string_value(json_object_get(a, "start_command")), "nginx -g 'daemon off;'");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(a, "env"), 0), "description")),
                        "E label");
    json_decref(list);
    json_decref(skipped);
    json_decref(in);
    /* neither format */
    in = json_loads("{\"templates\":[]}", 0, NULL);
    assert_null(appspec_templates_import(in, &skipped, &e));
    assert_string_equal(e.field, "body");
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_named),
        cmocka_unit_test(container_of_an_app),
        cmocka_unit_test(template_defaults_and_variables),
        cmocka_unit_test(templates_checked),
        cmocka_unit_test(portainer_import),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
