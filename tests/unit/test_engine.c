/* Tests for src/agent/engine.c's readers and src/agent/ports.c, on answers
 * captured from Docker 20.10 and Podman 4.3 (tests/fixtures/engine) and a
 * real /proc/net/tcp: our labels read back, ports as numbers, usage, a
 * pull's progress from its stream cut anywhere, and answers that are not
 * what the API documents refused without a crash. */
#include <jansson.h>

#include "testutil.h"

#include "../../src/agent/engine.h"
#include "../../src/agent/images.h"
#include "../../src/agent/ports.h"
#include "../../src/lib/buf.h"

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/engine/%s", FIXTURES, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("fixture %s", path);
    char *text = calloc(1, 1 << 20);
    *len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    return text;
}

static json_t *read_with(json_t *(*reader)(const char *, size_t, struct errinfo *), const char *name)
{
    size_t len;
    char *text = slurp(name, &len);
    struct errinfo e = {0};
    json_t *out = reader(text, len, &e);
    free(text);
    if (!out)
        fail_msg("%s: %s", name, e.message);
    return out;
}

static json_t *by_name(json_t *list, const char *name)
{
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x)
        if (!strcmp(json_string_value(json_object_get(x, "name")), name))
            return x;
    fail_msg("no %s in the list", name);
    return NULL;
}

static void lists_read_our_labels(void **state)
{
    (void)state;
    json_t *d = read_with(engine_list_from_json, "docker-list.json");
    json_t *fx = by_name(d, "fx");
    assert_true(json_is_true(json_object_get(fx, "managed")));
    assert_string_equal(json_string_value(json_object_get(fx, "owner")), "alice");
    assert_int_equal(json_integer_value(json_object_get(fx, "gf_id")), 3);
    assert_int_equal(json_array_size(json_object_get(fx, "gpus")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(fx, "gpus"), 1)), "GPU-b");
    assert_string_equal(json_string_value(json_object_get(fx, "state")), "running");
    json_t *port = json_array_get(json_object_get(fx, "ports"), 0);
    assert_int_equal(json_integer_value(json_object_get(port, "host")), 18099);
    assert_int_equal(json_integer_value(json_object_get(port, "container")), 80);
    json_decref(d);

    json_t *p = read_with(engine_list_from_json, "podman-list.json");
    fx = by_name(p, "fx");
    assert_string_equal(json_string_value(json_object_get(fx, "owner")), "bob");
    assert_int_equal(json_array_size(json_object_get(fx, "gpus")), 0);
    port = json_array_get(json_object_get(fx, "ports"), 0);
    assert_int_equal(json_integer_value(json_object_get(port, "host")), 18098);
    json_decref(p);
}

static void inspect_and_stats(void **state)
{
    (void)state;
    json_t *i = read_with(engine_inspect_from_json, "docker-inspect.json");
    assert_string_equal(json_string_value(json_object_get(i, "name")), "fx");
    assert_true(json_is_true(json_object_get(i, "running")));
    assert_int_equal(json_integer_value(json_object_get(i, "memory_bytes")), 67108864);
    assert_int_equal(json_integer_value(json_object_get(i, "nano_cpus")), 500000000);
    json_t *port = json_array_get(json_object_get(i, "ports"), 0);
    assert_int_equal(json_integer_value(json_object_get(port, "host")), 18099);
    json_decref(i);
    i = read_with(engine_inspect_from_json, "podman-inspect.json");
    assert_string_equal(json_string_value(json_object_get(i, "owner")), "bob");
    port = json_array_get(json_object_get(i, "ports"), 0);
    assert_int_equal(json_integer_value(json_object_get(port, "host")), 18098);
    json_decref(i);

    json_t *s = read_with(engine_stats_from_json, "docker-stats.json");
    assert_int_equal(json_integer_value(json_object_get(s, "memory_limit_bytes")), 67108864);
    assert_true(json_integer_value(json_object_get(s, "memory_bytes")) > 0);
    assert_int_equal(json_integer_value(json_object_get(s, "pids")), 1);
    json_decref(s);
    s = read_with(engine_stats_from_json, "podman-stats.json");
    assert_true(json_integer_value(json_object_get(s, "memory_bytes")) > 0);
    json_decref(s);
}

static void wrong_answers_refused(void **state)
{
    struct errinfo e = {0};
    (void)state;
    assert_null(engine_list_from_json("{}", 2, &e));
    assert_int_equal(e.status, 502);
    assert_null(engine_inspect_from_json("[]", 2, &e));
    assert_null(engine_inspect_from_json("{\"Id\":1}", 8, &e));
    assert_null(engine_stats_from_json("{\"cpu_stats\":{}}", 16, &e));
    assert_null(engine_list_from_json("not json", 8, &e));
    /* entries without an Id are skipped, odd types read as empty */
    const char *odd = "[{\"Names\":3},{\"Id\":\"ab\",\"Names\":[7],\"Labels\":[],\"Ports\":{}}]";
    json_t *l = engine_list_from_json(odd, strlen(odd), &e);
    assert_non_null(l);
    assert_int_equal(json_array_size(l), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "name")), "");
    json_decref(l);
    assert_true(engine_valid_id("fx"));
    assert_true(engine_valid_id("bb26f37763ad"));
    assert_false(engine_valid_id("../x"));
    assert_false(engine_valid_id("a/b"));
    assert_false(engine_valid_id("-rf"));
    assert_false(engine_valid_id(""));
}

static void listening_ports(void **state)
{
    size_t len;
    char *text = slurp("proc-net-tcp", &len);
    uint16_t ports[64];
    (void)state;
    size_t n = ports_parse(text, len, 0, ports, 64);
    int saw_docker = 0, saw_podman = 0;
    for (size_t i = 0; i < n && i < 64; i++) {
        saw_docker |= ports[i] == 18099;
        saw_podman |= ports[i] == 18098;
    }
    assert_true(saw_docker && saw_podman);
    free(text);
    char garbage[] = "header\n  0: nocolon\n  1: 0100007F:XYZ 0:0 0A\n  2: 0100007F:1F90 00000000:0000 0A x\n";
    assert_int_equal(ports_parse(garbage, strlen(garbage), 0, ports, 64), 1);
    assert_int_equal(ports[0], 0x1F90);
    /* counts past max, writes no more than max */
    char two[] = "h\n 0: 0:0001 0:0 0A\n 1: 0:0002 0:0 0A\n";
    assert_int_equal(ports_parse(two, strlen(two), 0, ports, 1), 2);
}

static json_t *feed_in(const char *text, size_t len, size_t chunk)
{
    struct pullprog *p = pullprog_new();
    for (size_t off = 0; off < len; off += chunk)
        pullprog_feed(p, text + off, len - off < chunk ? len - off : chunk);
    json_t *out = pullprog_json(p);
    pullprog_free(p);
    return out;
}

static long long num(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* Docker 20.10's stream of a pull from a registry, read in every chunk size
 * from a byte to the whole: the same bytes and layers each time. */
static void pull_stream_in_any_chunks(void **state)
{
    size_t len;
    char *text = slurp("docker-pull.ndjson", &len);
    (void)state;
    for (size_t chunk = 1; chunk <= len; chunk = chunk < 64 ? chunk + 1 : chunk * 2) {
        json_t *p = feed_in(text, len, chunk);
        assert_int_equal(num(p, "bytes_total"), 1064765);
        assert_int_equal(num(p, "bytes_done"), 1064765);
        assert_int_equal(num(p, "layers_done"), 1);
        assert_int_equal(json_array_size(json_object_get(p, "layers")), 1);
        assert_true(json_is_null(json_object_get(p, "error")));
        assert_non_null(strstr(json_string_value(json_object_get(p, "status")), "Downloaded newer image"));
        json_decref(p);
    }
    /* half way: the bytes of the first "Downloading" line */
    const char *cut = strstr(text, "36.45kB");
    assert_non_null(cut);
    cut = strchr(cut, '\n'); /* Docker ends its lines with \r\n */
    assert_non_null(cut);
    json_t *p = feed_in(text, (size_t)(cut - text) + 1, 7);
    assert_int_equal(num(p, "bytes_done"), 36445);
    assert_int_equal(num(p, "layers_done"), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(p, "layers"), 0), "status")),
                        "Downloading");
    json_decref(p);
    free(text);
}

static void feed_str(struct pullprog *p, const char *s)
{
    pullprog_feed(p, s, strlen(s));
}

static void pull_errors_and_garbage(void **state)
{
    size_t len;
    char *text = slurp("docker-pull-missing.json", &len);
    (void)state;
    /* a refusal before the stream: {"message":...} without a newline */
    struct pullprog *p = pullprog_new();
    pullprog_feed(p, text, len);
    pullprog_feed(p, "\n", 1);
    assert_non_null(pullprog_error(p));
    assert_non_null(strstr(pullprog_error(p), "manifest unknown"));
    pullprog_free(p);
    free(text);

    /* an error line in the stream (the API's documented shape), after
     * garbage, an overlong line and lines that are not objects */
    p = pullprog_new();
    char *big = malloc(100000);
    memset(big, 'x', 99999);
    big[99999] = '\n';
    feed_str(p, "not json\n[1,2]\n\"s\"\n{\"status\":7}\n");
    pullprog_feed(p, big, 100000);
    feed_str(p, "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":-5,\"total\":-1},\"id\":\"L\"}\n");
    feed_str(p, "{\"errorDetail\":{\"message\":\"toomanyrequests\"},\"error\":\"toomanyrequests: rate limit\"}\r\n");
    assert_string_equal(pullprog_error(p), "toomanyrequests: rate limit");
    json_t *j = pullprog_json(p);
    assert_int_equal(num(j, "bytes_done"), 0);
    assert_int_equal(num(j, "bytes_total"), 0);
    json_decref(j);
    free(big);
    pullprog_free(p);

    /* "already up to date": no layers, the status says so */
    text = slurp("docker-pull-again.ndjson", &len);
    j = feed_in(text, len, len);
    assert_int_equal(json_array_size(json_object_get(j, "layers")), 0);
    assert_non_null(strstr(json_string_value(json_object_get(j, "status")), "Image is up to date"));
    json_decref(j);
    free(text);
}

/* Podman 4.3's compat stream: layers without bytes, done when downloaded. */
static void podman_pull_stream(void **state)
{
    size_t len;
    char *text = slurp("podman-pull.ndjson", &len);
    (void)state;
    json_t *p = feed_in(text, len, 5);
    assert_int_equal(json_array_size(json_object_get(p, "layers")), 2);
    assert_int_equal(num(p, "layers_done"), 2);
    assert_int_equal(num(p, "bytes_total"), 0);
    assert_true(json_is_null(json_object_get(p, "error")));
    json_decref(p);
    free(text);
}

/* The image list: tags without Docker's "<none>", and the containers that
 * use each image matched by id in either engine's spelling. */
static void image_list_users(void **state)
{
    const char *imgs = "[{\"Id\":\"sha256:aaaaaaaaaaaa\",\"RepoTags\":[\"x/y:1\",\"<none>:<none>\"],"
                       "\"RepoDigests\":null,\"Size\":5,\"Created\":7},{\"Id\":\"bbbbbbbbbbbb\",\"RepoTags\":null},"
                       "{\"RepoTags\":[\"no-id\"]}]";
    json_t *ctrs = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s}]", "name", "c1", "image_id", "aaaaaaaaaaaa", "name",
                             "c2", "image_id", "sha256:bbbbbbbbbbbb", "name", "c3");
    struct errinfo e = {0};
    (void)state;
    json_t *l = images_list_from_json(imgs, strlen(imgs), ctrs, &e);
    assert_non_null(l);
    assert_int_equal(json_array_size(l), 2);
    json_t *a = json_array_get(l, 0), *b = json_array_get(l, 1);
    assert_int_equal(json_array_size(json_object_get(a, "tags")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "containers"), 0)), "c1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(b, "containers"), 0)), "c2");
    assert_int_equal(num(a, "size"), 5);
    json_decref(l);
    assert_null(images_list_from_json("{}", 2, ctrs, &e));
    assert_int_equal(e.status, 502);
    json_decref(ctrs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lists_read_our_labels),
        cmocka_unit_test(inspect_and_stats),
        cmocka_unit_test(wrong_answers_refused),
        cmocka_unit_test(listening_ports),
        cmocka_unit_test(pull_stream_in_any_chunks),
        cmocka_unit_test(pull_errors_and_garbage),
        cmocka_unit_test(image_list_users),
        cmocka_unit_test(podman_pull_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
