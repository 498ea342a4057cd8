/* Tests for src/agent/options.c and the config loader under it
 * (src/lib/config.c). */
#include <fcntl.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/agent/options.h"
#include "../../src/lib/config.h"
#include "../../src/server/options.h"

static int parse(struct agent_options *o, const char *yaml, char *err)
{
    return agent_options_parse(o, yaml, strlen(yaml), err, 256);
}

static void reads_every_setting(void **state)
{
    struct agent_options o;
    char err[256];

    (void)state;
    agent_options_init(&o);
    assert_int_equal(parse(&o, "# agent\nlisten: 127.0.0.1:9999\ninterval_ms: 250\n"
                               "slow_interval_ms: 2000\nhistory_minutes: 5\n"
                               "nvml_lib: /opt/nvml.so\nmetrics_need_token: no\n"
                               "hostname: gpu-07\nlog_level: debug\n",
                           err),
                     0);
    assert_string_equal(o.listen, "127.0.0.1:9999");
    assert_int_equal(o.interval_ms, 250);
    assert_int_equal(o.slow_interval_ms, 2000);
    assert_int_equal(o.history_minutes, 5);
    assert_string_equal(o.nvml_lib, "/opt/nvml.so");
    assert_string_equal(o.hostname, "gpu-07");
    assert_int_equal(agent_options_finish(&o, err, sizeof(err)), 0);
    agent_options_free(&o);
}

static void names_the_bad_setting(void **state)
{
    struct agent_options o;
    char err[256];

    (void)state;
    agent_options_init(&o);
    assert_int_equal(parse(&o, "listen: x:1\ninterval_ms: 50\n", err), -1);
    assert_non_null(strstr(err, "interval_ms"));
    assert_non_null(strstr(err, "line 2"));
    assert_int_equal(parse(&o, "intervall_ms: 500\n", err), -1);
    assert_non_null(strstr(err, "unknown setting 'intervall_ms'"));
    assert_int_equal(parse(&o, "listen:\n  - a\n  - b\n", err), -1);
    assert_non_null(strstr(err, "listen: expected a single value"));
    assert_int_equal(parse(&o, "metrics_need_token: maybe\n", err), -1);
    assert_non_null(strstr(err, "metrics_need_token"));
    assert_int_equal(parse(&o, "- a\n- b\n", err), -1);
    assert_non_null(strstr(err, "mapping"));
    assert_int_equal(parse(&o, "listen: [unclosed\n", err), -1);
    assert_int_equal(parse(&o, "interval_ms: 99999999999999999999999\n", err), -1);
    assert_non_null(strstr(err, "interval_ms"));
    /* nothing bad was stored */
    assert_int_equal(o.interval_ms, 1000);
    agent_options_free(&o);
}

static void empty_file_is_fine(void **state)
{
    struct agent_options o;
    char err[256];

    (void)state;
    agent_options_init(&o);
    assert_int_equal(parse(&o, "", err), 0);
    assert_int_equal(parse(&o, "# only a comment\n", err), 0);
    assert_int_equal(o.interval_ms, 1000);
    agent_options_free(&o);
}

static void flags_use_the_same_checks(void **state)
{
    struct agent_options o;
    char err[256];

    (void)state;
    agent_options_init(&o);
    assert_int_equal(agent_options_set(&o, "interval_ms", "100", err, sizeof(err)), 0);
    assert_int_equal(o.interval_ms, 100);
    assert_int_equal(agent_options_set(&o, "interval_ms", "10s", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "interval_ms"));
    agent_options_free(&o);
}

static void token_file_rules(void **state)
{
    struct agent_options o;
    char err[256], path[] = "/tmp/gf-token-XXXXXX";
    int fd = mkstemp(path);

    (void)state;
    assert_true(write(fd, "short\n", 6) == 6);
    close(fd);
    agent_options_init(&o);
    agent_options_set(&o, "token_file", path, err, sizeof(err));
    assert_int_equal(agent_options_finish(&o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "token_file"));
    assert_null(strstr(err, "short")); /* the secret is not echoed */
    agent_options_free(&o);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(write(fd, "0123456789abcdef0123\n", 21) == 21);
    close(fd);
    agent_options_init(&o);
    agent_options_set(&o, "token_file", path, err, sizeof(err));
    assert_int_equal(agent_options_finish(&o, err, sizeof(err)), 0);
    assert_string_equal(o.token, "0123456789abcdef0123");
    agent_options_free(&o);
    unlink(path);

    agent_options_init(&o);
    agent_options_set(&o, "metrics_need_token", "true", err, sizeof(err));
    assert_int_equal(agent_options_finish(&o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "metrics_need_token"));
    agent_options_free(&o);
}

static void load_file_errors_name_the_path(void **state)
{
    struct agent_options o;
    char err[256];

    (void)state;
    agent_options_init(&o);
    assert_int_equal(agent_options_load(&o, "/nonexistent/agent.yaml", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/agent.yaml"));
    agent_options_free(&o);
}

static void parse_int_is_strict(void **state)
{
    int64_t v;

    (void)state;
    assert_int_equal(config_parse_int("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(config_parse_int("42x", 0, 100, &v), -1);
    assert_int_equal(config_parse_int("", 0, 100, &v), -1);
    assert_int_equal(config_parse_int("101", 0, 100, &v), -1);
    assert_int_equal(config_parse_int("-1", 0, 100, &v), -1);
    assert_int_equal(config_parse_int(" 4", 0, 100, &v), -1);
}

/* Each table is sound: every default is a value its own row accepts, every
 * row has a description, names and flags are unique. */
static void check_table(const struct config_key *keys, size_t n, void *target)
{
    char err[200];
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &keys[i];
        assert_non_null(k->help);
        if (strlen(k->help) < 6)
            fail_msg("%s: no description", k->name);
        if (k->def && config_set(keys, n, target, k->name, k->def, err, sizeof(err)) < 0)
            fail_msg("%s: its default is refused: %s", k->name, err);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(keys[j].name, k->name);
            if (k->flag && keys[j].flag)
                assert_string_not_equal(keys[j].flag, k->flag);
        }
    }
}

static void tables_are_sound(void **state)
{
    (void)state;
    size_t n;
    struct server_options so;
    server_options_init(&so);
    const struct config_key *keys = server_options_keys(&n);
    check_table(keys, n, &so);
    assert_string_equal(so.listen, "127.0.0.1:8470");
    assert_int_equal(so.scrape_timeout_ms, 10000);
    server_options_free(&so);
    struct agent_options ao;
    agent_options_init(&ao);
    keys = agent_options_keys(&n);
    check_table(keys, n, &ao);
    assert_int_equal(ao.interval_ms, 1000);
    assert_string_equal(ao.proc_root, "/");
    agent_options_free(&ao);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_every_setting),
        cmocka_unit_test(names_the_bad_setting),
        cmocka_unit_test(empty_file_is_fine),
        cmocka_unit_test(flags_use_the_same_checks),
        cmocka_unit_test(token_file_rules),
        cmocka_unit_test(load_file_errors_name_the_path),
        cmocka_unit_test(parse_int_is_strict),
        cmocka_unit_test(tables_are_sound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
