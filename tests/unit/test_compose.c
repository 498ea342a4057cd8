/* Tests for src/agent/compose.c: an app's compose file, read back by a
 * YAML parser, says what the container is (image, entrypoint, the folder
 * at /app, ports, GPUs as device reservations, labels), and values with
 * quotes, newlines or YAML syntax stay values. */
#include "testutil.h"

#include <string.h>

#include "../../src/agent/compose.h"
#include "../../src/lib/yamljson.h"

static json_t *at(json_t *o, const char *path)
{
    char key[64];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        o = json_is_array(o) ? json_array_get(o, (size_t)atoi(key)) : json_object_get(o, key);
        path += n + (path[n] == '.');
    }
    return o;
}

static void reads_back(void **state)
{
    struct ctrspec s = {0};
    struct buf text;
    char err[200];
    (void)state;
    snprintf(s.name, sizeof(s.name), "app-sd");
    snprintf(s.image, sizeof(s.image), "nvcr.io/nvidia/pytorch:24.10-py3");
    snprintf(s.app, sizeof(s.app), "sd");
    snprintf(s.user, sizeof(s.user), "1000:1000");
    snprintf(s.owner, sizeof(s.owner), "alice");
    snprintf(s.host_ip, sizeof(s.host_ip), "0.0.0.0");
    s.gf_id = 7;
    s.command = json_pack("[s, s, s]", "sh", "-c", "python app.py --say \"hi\"\nkey: value # not a key");
    s.env = json_pack("{s:s, s:s}", "A", "x: {y}", "HOME", "/app");
    s.ngpus = 2;
    snprintf(s.gpus[0], sizeof(s.gpus[0]), "GPU-1");
    snprintf(s.gpus[1], sizeof(s.gpus[1]), "GPU-2");
    s.nports = 1;
    s.ports[0] = (struct ctrspec_port){.container = 7860, .host = 20001, .proto = "tcp"};
    s.nano_cpus = 2500000000LL;
    s.memory_bytes = 1LL << 30;
    buf_init(&text, 0);
    compose_text(&s, "/opt/dockerstore/sd", &text);
    json_t *y = yaml_to_json(text.data, text.len, err, sizeof(err));
    if (!y)
        fail_msg("%s\n%s", err, text.data);
    json_t *svc = at(y, "services.app");
    assert_non_null(svc);
    assert_string_equal(json_string_value(at(svc, "image")), s.image);
    assert_string_equal(json_string_value(at(svc, "container_name")), "app-sd");
    assert_string_equal(json_string_value(at(svc, "user")), "1000:1000");
    assert_string_equal(json_string_value(at(svc, "working_dir")), "/app");
    assert_string_equal(json_string_value(at(svc, "entrypoint.2")), json_string_value(json_array_get(s.command, 2)));
    assert_string_equal(json_string_value(at(svc, "environment.A")), "x: {y}");
    assert_string_equal(json_string_value(at(svc, "volumes.0")), "/opt/dockerstore/sd:/app");
    assert_string_equal(json_string_value(at(svc, "ports.0")), "0.0.0.0:20001:7860/tcp");
    assert_string_equal(json_string_value(at(svc, "deploy.resources.reservations.devices.0.driver")), "nvidia");
    assert_string_equal(json_string_value(at(svc, "deploy.resources.reservations.devices.0.device_ids.1")), "GPU-2");
    assert_string_equal(json_string_value(at(svc, "cpus")), "2.500");
    assert_null(at(svc, "environment.NVIDIA_VISIBLE_DEVICES")); /* it has GPUs */
    /* the labels the engine gets are compose's */
    json_t *labels = json_object();
    compose_labels(labels, &s, "/opt/dockerstore/sd");
    assert_string_equal(json_string_value(json_object_get(labels, "com.docker.compose.project")), "sd");
    assert_string_equal(json_string_value(json_object_get(labels, "com.docker.compose.service")), COMPOSE_SERVICE);
    assert_string_equal(json_string_value(json_object_get(labels, "com.docker.compose.project.config_files")),
                        "/opt/dockerstore/sd/" COMPOSE_FILE);
    json_decref(labels);
    json_decref(y);
    buf_free(&text);
    /* without GPUs, a CUDA image's own NVIDIA_VISIBLE_DEVICES=all is undone */
    s.ngpus = 0;
    buf_init(&text, 0);
    compose_text(&s, "/opt/dockerstore/sd", &text);
    y = yaml_to_json(text.data, text.len, err, sizeof(err));
    assert_string_equal(json_string_value(at(y, "services.app.environment.NVIDIA_VISIBLE_DEVICES")), "void");
    assert_null(at(y, "services.app.deploy"));
    json_decref(y);
    buf_free(&text);
    json_decref(s.command);
    json_decref(s.env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
