/* Tests for src/lib/ctrspec.c: the container requests users send and the
 * agent's form the server sends: every refusal names its field, sizes and
 * image references parse as the engines read them, and the agent's form
 * survives a round trip. */
#include <jansson.h>

#include "testutil.h"

#include "../../src/lib/ctrspec.h"

static int parse(const char *text, enum ctrspec_form form, struct ctrspec *s, struct errinfo *e)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, je.text);
    memset(e, 0, sizeof(*e));
    int rc = ctrspec_parse(j, form, s, e);
    json_decref(j);
    return rc;
}

static void refused(const char *text, const char *field)
{
    struct ctrspec s;
    struct errinfo e;
    if (parse(text, CTRSPEC_USER, &s, &e) == 0)
        fail_msg("accepted: %s", text);
    ctrspec_free(&s);
    assert_int_equal(e.status, 400);
    if (strcmp(e.field, field))
        fail_msg("%s: field '%s', want '%s' (%s)", text, e.field, field, e.message);
}

static void user_request_parses(void **state)
{
    struct ctrspec s;
    struct errinfo e;
    (void)state;
    assert_int_equal(parse("{\"name\":\"train-1\",\"image\":\"registry.local:5000/team/pytorch:2.3-cuda12\","
                           "\"command\":[\"python\",\"train.py\"],\"env\":{\"EPOCHS\":\"3\"},"
                           "\"gpus\":{\"count\":2,\"model\":\"H100\",\"min_memory_mib\":40000},"
                           "\"cpus\":1.5,\"memory\":\"4g\",\"ports\":[8888,\"6006/tcp\",{\"container\":53,\"proto\":\"udp\"}],"
                           "\"host\":\"gpu-07\",\"workspace\":false,\"tty\":true}",
                           CTRSPEC_USER, &s, &e), 0);
    assert_string_equal(s.name, "train-1");
    assert_int_equal(s.gpu_count, 2);
    assert_string_equal(s.gpu_model, "H100");
    assert_int_equal(s.gpu_min_memory_mib, 40000);
    assert_int_equal(s.nano_cpus, 1500000000LL);
    assert_int_equal(s.memory_bytes, 4LL << 30);
    assert_int_equal(s.nports, 3);
    assert_int_equal(s.ports[1].container, 6006);
    assert_string_equal(s.ports[2].proto, "udp");
    assert_string_equal(s.host, "gpu-07");
    assert_int_equal(s.workspace, 0);
    assert_int_equal(s.tty, 1);
    ctrspec_free(&s);
    /* host "auto" is automatic placement; the workspace is on by default */
    assert_int_equal(parse("{\"image\":\"busybox\",\"host\":\"auto\",\"gpus\":[\"GPU-1234abcd-0000\"]}",
                           CTRSPEC_USER, &s, &e), 0);
    assert_string_equal(s.host, "");
    assert_int_equal(s.ngpus, 1);
    assert_int_equal(s.workspace, 1);
    assert_int_equal(s.tty, 0);
    ctrspec_free(&s);
}

static void bad_input_names_the_field(void **state)
{
    (void)state;
    refused("[]", "body");
    refused("{}", "image");
    refused("{\"image\":\"x\",\"name\":\"-lead\"}", "name");
    refused("{\"image\":\"x\",\"name\":\"a/b\"}", "name");
    refused("{\"image\":\"Upper/case\"}", "image");
    refused("{\"image\":\"a b\"}", "image");
    refused("{\"image\":\"a:\"}", "image");
    refused("{\"image\":\"a@sha256:abc\"}", "image");
    refused("{\"image\":\"a//b\"}", "image");
    refused("{\"image\":\"x\",\"command\":\"sh -c x\"}", "command");
    refused("{\"image\":\"x\",\"command\":[1]}", "command");
    refused("{\"image\":\"x\",\"env\":{\"A-B\":\"1\"}}", "env");
    refused("{\"image\":\"x\",\"env\":{\"A\":1}}", "env");
    refused("{\"image\":\"x\",\"env\":{\"NVIDIA_VISIBLE_DEVICES\":\"all\"}}", "env");
    refused("{\"image\":\"x\",\"env\":{\"A\":\"a\\u0000b\"}}", "env");
    refused("{\"image\":\"x\",\"gpus\":17}", "gpus");
    refused("{\"image\":\"x\",\"gpus\":-1}", "gpus");
    refused("{\"image\":\"x\",\"gpus\":[\"GPU-1\",\"GPU-1\"]}", "gpus");
    refused("{\"image\":\"x\",\"gpus\":[\"../../etc\"]}", "gpus");
    refused("{\"image\":\"x\",\"gpus\":{\"model\":\"A100\"}}", "gpus.count");
    refused("{\"image\":\"x\",\"gpus\":{\"count\":1,\"colour\":1}}", "gpus");
    refused("{\"image\":\"x\",\"cpus\":0}", "cpus");
    refused("{\"image\":\"x\",\"cpus\":\"2\"}", "cpus");
    refused("{\"image\":\"x\",\"memory\":\"5m\"}", "memory");
    refused("{\"image\":\"x\",\"memory\":\"lots\"}", "memory");
    refused("{\"image\":\"x\",\"memory\":\"1e30\"}", "memory");
    refused("{\"image\":\"x\",\"ports\":[0]}", "ports");
    refused("{\"image\":\"x\",\"ports\":[65536]}", "ports");
    refused("{\"image\":\"x\",\"ports\":[\"80/sctp\"]}", "ports");
    refused("{\"image\":\"x\",\"ports\":[80,80]}", "ports");
    refused("{\"image\":\"x\",\"ports\":[{\"container\":80,\"host\":99999}]}", "ports.host");
    refused("{\"image\":\"x\",\"ports\":[{\"host\":8080}]}", "ports.container");
    refused("{\"image\":\"x\",\"workspace\":\"yes\"}", "workspace");
    refused("{\"image\":\"x\",\"tty\":1}", "tty");
    refused("{\"image\":\"x\",\"owner\":\"me\"}", "owner"); /* the agent's form only */
}

static void memory_sizes(void **state)
{
    int64_t b;
    (void)state;
    assert_int_equal(ctrspec_parse_memory("512m", &b), 0);
    assert_int_equal(b, 512LL << 20);
    assert_int_equal(ctrspec_parse_memory("1.5GiB", &b), 0);
    assert_int_equal(b, 3LL << 29);
    assert_int_equal(ctrspec_parse_memory("2gb", &b), 0);
    assert_int_equal(b, 2LL << 30);
    assert_int_equal(ctrspec_parse_memory("1048576", &b), 0);
    assert_int_equal(b, 1048576);
    assert_int_equal(ctrspec_parse_memory("1T", &b), 0);
    assert_int_equal(b, 1LL << 40);
    assert_int_equal(ctrspec_parse_memory("-1m", &b), -1);
    assert_int_equal(ctrspec_parse_memory("4 g", &b), -1);
    assert_int_equal(ctrspec_parse_memory("4gg", &b), -1);
    assert_int_equal(ctrspec_parse_memory("", &b), -1);
}

static void image_references(void **state)
{
    (void)state;
    assert_true(ctrspec_valid_image("busybox"));
    assert_true(ctrspec_valid_image("library/ubuntu:22.04"));
    assert_true(ctrspec_valid_image("nvcr.io/nvidia/pytorch:24.05-py3"));
    assert_true(ctrspec_valid_image("localhost:5000/a__b/c-d:v1"));
    assert_true(ctrspec_valid_image("ghcr.io/o/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(ctrspec_valid_image(""));
    assert_false(ctrspec_valid_image("UPPER"));
    assert_false(ctrspec_valid_image("a..b"));
    assert_false(ctrspec_valid_image("a___b"));
    assert_false(ctrspec_valid_image("-a"));
    assert_false(ctrspec_valid_image("a/"));
    assert_false(ctrspec_valid_image("host:port/x")); /* a port is digits */
    assert_false(ctrspec_valid_image("a:b:c"));
}

static void agent_form_round_trip(void **state)
{
    struct ctrspec s, t;
    struct errinfo e;
    (void)state;
    assert_int_equal(parse("{\"name\":\"n1\",\"image\":\"busybox:1\",\"command\":[\"sleep\",\"1\"],"
                           "\"env\":{\"A\":\"b\"},\"gpus\":[\"GPU-aaaa-1\",\"MIG-bbbb-2\"],"
                           "\"nano_cpus\":500000000,\"memory_bytes\":67108864,"
                           "\"ports\":[{\"container\":80,\"host\":20001,\"proto\":\"tcp\"}],"
                           "\"owner\":\"alice@lab\",\"gf_id\":7,\"host_ip\":\"127.0.0.1\"}",
                           CTRSPEC_AGENT, &s, &e), 0);
    json_t *j = ctrspec_agent_json(&s);
    memset(&e, 0, sizeof(e));
    assert_int_equal(ctrspec_parse(j, CTRSPEC_AGENT, &t, &e), 0);
    assert_string_equal(t.name, "n1");
    assert_int_equal(t.ngpus, 2);
    assert_string_equal(t.gpus[1], "MIG-bbbb-2");
    assert_int_equal(t.ports[0].host, 20001);
    assert_string_equal(t.owner, "alice@lab");
    assert_int_equal(t.gf_id, 7);
    assert_int_equal(t.memory_bytes, 67108864);
    assert_true(json_equal(s.env, t.env));
    json_decref(j);
    ctrspec_free(&s);
    ctrspec_free(&t);
    /* the agent takes no counts, and needs a host port for every port */
    assert_int_equal(parse("{\"name\":\"n\",\"image\":\"x\",\"gpus\":2,\"owner\":\"a\",\"gf_id\":1}",
                           CTRSPEC_AGENT, &s, &e), -1);
    assert_string_equal(e.field, "gpus");
    ctrspec_free(&s);
    assert_int_equal(parse("{\"name\":\"n\",\"image\":\"x\",\"ports\":[80],\"owner\":\"a\",\"gf_id\":1}",
                           CTRSPEC_AGENT, &s, &e), -1);
    assert_string_equal(e.field, "ports.host");
    ctrspec_free(&s);
    assert_int_equal(parse("{\"name\":\"n\",\"image\":\"x\",\"owner\":\"../root\",\"gf_id\":1}",
                           CTRSPEC_AGENT, &s, &e), -1);
    assert_string_equal(e.field, "owner");
    ctrspec_free(&s);
}

/* Paths of the file routes: nothing climbs out of where it says. */
static void paths_checked(void **state)
{
    (void)state;
    assert_true(ctrspec_valid_path("/", 1));
    assert_false(ctrspec_valid_path("/", 0));
    assert_true(ctrspec_valid_path("/workspace/été file.txt", 0));
    assert_true(ctrspec_valid_path("/tmp/up/", 0));
    assert_true(ctrspec_valid_path("/a/..b/.c", 0));
    const char *bad[] = {"", "tmp", "/tmp/../etc", "/..", "/tmp/.", "/tmp//x", "//x", "/a\nb", "/a\tb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(ctrspec_valid_path(bad[i], 1));
    assert_true(ctrspec_valid_git_url("https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"));
    assert_true(ctrspec_valid_git_url("git://127.0.0.1:9418/app.git#main:sub"));
    /* ssh, as a URL and as scp and GitHub write it */
    assert_true(ctrspec_valid_git_url("ssh://git@127.0.0.1:2222/srv/git/app.git#main"));
    assert_true(ctrspec_valid_git_url("git@github.com:org/repo.git"));
    assert_true(ctrspec_git_is_ssh("git@github.com:org/repo.git") && ctrspec_git_is_ssh("ssh://h/x"));
    assert_false(ctrspec_git_is_ssh("https://h/x") || ctrspec_git_is_ssh("git://h:9418/x") || ctrspec_git_is_ssh("/srv/x"));
    const char *badurl[] = {"", "file:///etc", "ssh://", "ssh://-oProxyCommand=x/y", "git@h:-u", "-git@h:x", "git@-h:x",
                            "git@h:", "@h:x", "h:x", "/srv/git/x", "https://", "https://a b", "https://a\"b",
                            "https://a`b", "-u https://x"};
    for (size_t i = 0; i < sizeof(badurl) / sizeof(badurl[0]); i++)
        assert_false(ctrspec_valid_git_url(badurl[i]));
    char url[100], ref[40], folder[40];
    struct errinfo e = {0};
    assert_int_equal(ctrspec_git_split("git://h:9418/app.git#v1.2/rc:sub/dir", "git", url, sizeof(url), ref, sizeof(ref),
                                       folder, sizeof(folder), &e), 0);
    assert_string_equal(url, "git://h:9418/app.git");
    assert_string_equal(ref, "v1.2/rc");
    assert_string_equal(folder, "sub/dir");
    assert_int_equal(ctrspec_git_split("https://h/a.git", "git", url, sizeof(url), ref, sizeof(ref), folder, sizeof(folder), &e), 0);
    assert_string_equal(ref, "");
    assert_int_equal(ctrspec_git_split("https://h/a.git#:docker/", "git", url, sizeof(url), ref, sizeof(ref), folder,
                                       sizeof(folder), &e), 0);
    assert_string_equal(folder, "docker/");
    const char *badsplit[] = {"https://h/a#-x", "https://h/a#a..b", "https://h/a#main:../x", "https://h/a#main:/etc",
                              "https://h/a#main:a//b", "https://h/a#main:a/./b", "https://h/a#m#n", "https://h/a#m@{1}",
                              "file:///x#main", "https://h/a#0123456789012345678901234567890123456789x"};
    for (size_t i = 0; i < sizeof(badsplit) / sizeof(badsplit[0]); i++) {
        memset(&e, 0, sizeof(e));
        assert_int_equal(ctrspec_git_split(badsplit[i], "git", url, sizeof(url), ref, sizeof(ref), folder, sizeof(folder), &e), -1);
        assert_string_equal(e.field, "git");
    }
    char enc[64];
    ctrspec_url_path("/a b/é&x", enc, sizeof(enc));
    assert_string_equal(enc, "/a%20b/%C3%A9%26x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paths_checked),
        cmocka_unit_test(user_request_parses),
        cmocka_unit_test(bad_input_names_the_field),
        cmocka_unit_test(memory_sizes),
        cmocka_unit_test(image_references),
        cmocka_unit_test(agent_form_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
