/* The fleet file: defaults filled from the site, every refusal naming the
 * key's path and line, secrets from their own file, and the plan against a
 * registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/server/fleetfile.h"

static const char good[] = "site: lab\n"
                           "ssh: {user: deploy, port: 2200}\n"
                           "bmc: {user: ADMIN}\n"
                           "agent: {port: 9500}\n"
                           "servers:\n"
                           "  - name: gpu-01\n"
                           "    address: 10.0.0.21\n"
                           "    labels: {rack: r1}\n"
                           "    bmc: {address: 10.0.1.21}\n"
                           "  - name: gpu-02\n"
                           "    address: 10.0.0.22\n"
                           "    agent_port: 9445\n"
                           "    gpu: false\n"
                           "    ssh: {port: 22, key: /root/.ssh/fleet}\n";

static json_t *parse(const char *text, const char *secrets, struct errinfo *e)
{
    return fleetfile_parse(text, strlen(text), secrets, secrets ? strlen(secrets) : 0, e);
}

static void defaults_filled(void **state)
{
    (void)state;
    struct errinfo e;
    json_t *f = parse(good, NULL, &e);
    assert_non_null(f);
    json_t *a = json_array_get(json_object_get(f, "servers"), 0), *b = json_array_get(json_object_get(f, "servers"), 1);
    assert_string_equal(json_string_value(json_object_get(f, "site")), "lab");
    assert_string_equal(json_string_value(json_object_get(f, "admin_user")), "admin");
    /* the site's SSH user and port, its agent port, its BMC user */
    assert_int_equal(json_integer_value(json_object_get(a, "agent_port")), 9500);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "ssh"), "user")), "deploy");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "ssh"), "port")), 2200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "bmc"), "user")), "ADMIN");
    assert_null(json_object_get(json_object_get(a, "bmc"), "password"));
    assert_true(json_is_true(json_object_get(a, "gpu")));
    /* the server's own win */
    assert_int_equal(json_integer_value(json_object_get(b, "agent_port")), 9445);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "ssh"), "port")), 22);
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "ssh"), "key")), "/root/.ssh/fleet");
    assert_true(json_is_false(json_object_get(b, "gpu")));
    assert_null(json_object_get(b, "bmc")); /* no BMC address: no BMC */
    json_decref(f);
}

/* Each bad file is refused naming the path and the line it is on. */
static void errors_name_key_and_line(void **state)
{
    (void)state;
    static const struct {
        const char *text, *field, *message;
    } bad[] = {
        {"servers: []\n", "site", "line 1: site: is required"},
        {"site: lab\nservers:\n  - name: a\n    adress: 10.0.0.1\n", "servers[0].adress", "line 4: servers[0].adress: unknown key"},
        {"site: lab\nservers:\n  - name: a\n    address: 10.0.0.1\n    ssh:\n      port: 70000\n", "servers[0].ssh.port",
         "line 6: servers[0].ssh.port: must be a port, 1-65535"},
        {"site: lab\nservers:\n  - name: a\n    address: 10.0.0.1\n  - name: a\n    address: 10.0.0.2\n", "servers[1].name",
         "line 5: servers[1].name: a second server of that name"},
        {"site: lab\nservers:\n  - name: a b\n    address: 10.0.0.1\n", "servers[0].name", "line 3: servers[0].name: name must"},
        {"site: lab\nservers:\n  - name: a\n    address: 10.0.0.1\n    labels: {__x: 1}\n", "servers[0].labels",
         "line 5: servers[0].labels: label '__x'"},
        {"site: lab\nservers:\n  - name: a\n", "servers[0].address", "line 3: servers[0].address: address is required"},
        {"site: lab\nssh: {user: Root!}\nservers: []\n", "ssh.user", "line 2: ssh.user: must be a user name"},
        {"site: lab\nagent: {interval_ms: 5}\nservers: []\n", "agent.interval_ms", "line 2: agent.interval_ms: must be 100-60000"},
        {"site: lab\nservers: {a: 1}\n", "servers", "line 2: servers: must be a list"},
        {"site: lab\nservers:\n  - name: a\n    address: 10.0.0.1\n    gpu: maybe\n", "servers[0].gpu", "line 5: servers[0].gpu: must be true or false"},
        {"site: [unclosed\n", "fleet", "line 2:"},
        /* the server would read any of its files and send it to a host */
        {"site: lab\nagent: {binary: /etc/shadow}\nservers: []\n", "agent.binary", "line 2: agent.binary: unknown key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct errinfo e;
        json_t *f = parse(bad[i].text, NULL, &e);
        if (f || strcmp(e.field, bad[i].field) || strncmp(e.message, bad[i].message, strlen(bad[i].message)))
            fail_msg("case %zu: got field '%s' message '%s'", i, f ? "(accepted)" : e.field, f ? "" : e.message);
        assert_int_equal(e.status, 400);
    }
}

static void secrets_apart(void **state)
{
    (void)state;
    struct errinfo e;
    json_t *f = parse(good, "bmc_password: site-wide\nservers:\n  gpu-01:\n    bmc_password: own\n", &e);
    assert_non_null(f);
    json_t *a = json_array_get(json_object_get(f, "servers"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "bmc"), "password")), "own");
    json_decref(f);
    f = parse(good, "bmc_password: site-wide\nssh_password: first\nservers: {gpu-02: {ssh_password: own}}\n", &e);
    a = json_array_get(json_object_get(f, "servers"), 0);
    json_t *b = json_array_get(json_object_get(f, "servers"), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "bmc"), "password")), "site-wide");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "ssh"), "password")), "first");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "ssh"), "password")), "own");
    json_decref(f);
    f = parse(good, NULL, &e); /* no secrets: no passwords */
    assert_null(json_object_get(json_object_get(json_array_get(json_object_get(f, "servers"), 0), "ssh"), "password"));
    json_decref(f);
    assert_null(parse(good, "servers:\n  gpu-09: {bmc_password: x}\n", &e));
    assert_string_equal(e.field, "servers.gpu-09");
    assert_string_equal(e.message, "secrets file: line 2: servers.gpu-09: no server of that name in the fleet file");
    assert_null(parse(good, "ipmi_password: x\n", &e));
    assert_string_equal(e.message, "secrets file: line 1: ipmi_password: unknown key");
}

static void plan_against_registry(void **state)
{
    (void)state;
    struct errinfo e;
    json_t *f = parse(good, NULL, &e);
    /* gpu-02 registered on another port, old not in the file */
    json_t *reg = json_pack("[{s:s, s:s, s:i, s:{}}, {s:s, s:s, s:i, s:{}}]", "name", "gpu-02", "address", "10.0.0.22",
                            "agent_port", 9446, "labels", "name", "old", "address", "10.0.0.9", "agent_port", 9445,
                            "labels");
    json_t *p = fleetfile_plan(f, reg);
    char *txt = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(txt, "{\"changes\":[{\"action\":\"install\",\"fields\":{},\"server\":\"gpu-01\"},"
                             "{\"action\":\"update\",\"fields\":{\"agent_port\":[9446,9445]},\"server\":\"gpu-02\"},"
                             "{\"action\":\"remove\",\"fields\":{},\"server\":\"old\"}],\"site\":\"lab\","
                             "\"summary\":{\"install\":1,\"remove\":1,\"unchanged\":0,\"update\":1}}");
    free(txt);
    json_decref(p);
    json_decref(reg);
    /* the file applied: nothing left to do */
    reg = json_pack("[{s:s, s:s, s:i, s:{s:s}}, {s:s, s:s, s:i, s:{}}]", "name", "gpu-01", "address", "10.0.0.21",
                    "agent_port", 9500, "labels", "rack", "r1", "name", "gpu-02", "address", "10.0.0.22",
                    "agent_port", 9445, "labels");
    p = fleetfile_plan(f, reg);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "summary"), "unchanged")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "summary"), "install")), 0);
    json_decref(p);
    json_decref(reg);
    json_decref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_filled),
        cmocka_unit_test(errors_name_key_and_line),
        cmocka_unit_test(secrets_apart),
        cmocka_unit_test(plan_against_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
