/* Tests for src/server/settings.c: an admin's change of a live setting is
 * applied, kept in DATA/settings.conf and read again at the next start;
 * settings that need a restart, unknown ones, values out of bounds and
 * roll-up tiers kept shorter than finer ones are refused naming the field,
 * changing nothing; secrets are never listed. */
#include <jansson.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/server/options.h"
#include "../../src/server/settings.h"

static json_t *body(const char *t)
{
    json_error_t e;
    json_t *j = json_loads(t, 0, &e);
    assert_non_null(j);
    return j;
}

static int update(struct server_app *app, const char *t, struct errinfo *e, json_t **changes)
{
    json_t *b = body(t);
    *changes = json_object();
    int rc = settings_update(app, b, *changes, e);
    json_decref(b);
    return rc;
}

static void live_changes(void **state)
{
    (void)state;
    char dir[64], cmd[128];
    struct server_options o;
    struct server_app app;
    struct errinfo e;
    json_t *ch;

    snprintf(dir, sizeof(dir), "/tmp/gf-settings-XXXXXX");
    assert_non_null(mkdtemp(dir));
    server_options_init(&o);
    free(o.data_dir);
    o.data_dir = strdup(dir);
    o.admin_password = strdup("a-secret-password");
    memset(&app, 0, sizeof(app));
    app.opts = &o;

    assert_int_equal(update(&app, "{\"raw_retention_days\":20,\"agent_interval_ms\":1000}", &e, &ch), 0);
    assert_int_equal(o.raw_retention_days, 20);
    assert_int_equal(o.agent_interval_ms, 1000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ch, "raw_retention_days"), "from")), 15);
    json_decref(ch);

    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"listen\":\"0.0.0.0:1\"}", "listen"},                 /* needs a restart */
        {"{\"nope\":1}", "nope"},                                  /* no such setting */
        {"{\"agent_interval_ms\":5}", "agent_interval_ms"},        /* out of bounds */
        {"{\"agent_interval_ms\":\"1000\"}", "agent_interval_ms"}, /* not an integer */
        {"{\"m1_retention_days\":10}", "m1_retention_days"},       /* shorter than raw (20) */
        {"{\"h1_retention_days\":50}", "h1_retention_days"},       /* shorter than 1m (90) */
        {"{\"container_placement\":\"random\"}", "container_placement"}, /* not a choice */
        {"{\"container_placement\":1}", "container_placement"},        /* not a string */
        {"{\"container_placement\":\"spread\",\"quota_gpus\":-1}", "quota_gpus"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(update(&app, bad[i].body, &e, &ch), -1);
        json_decref(ch);
        if (strcmp(e.field, bad[i].field))
            fail_msg("%s: field %s, want %s", bad[i].body, e.field, bad[i].field);
    }
    assert_int_equal(o.agent_interval_ms, 1000); /* nothing half-applied */
    assert_int_equal(o.m1_retention_days, 90);
    assert_string_equal(o.container_placement, "binpack");

    /* a live string setting with choices: applied, reported, kept */
    assert_int_equal(update(&app, "{\"container_placement\":\"spread\"}", &e, &ch), 0);
    assert_string_equal(o.container_placement, "spread");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ch, "container_placement"), "from")), "binpack");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ch, "container_placement"), "to")), "spread");
    json_decref(ch);
    assert_int_equal(update(&app, "{\"container_placement\":\"spread\"}", &e, &ch), 0);
    assert_int_equal(json_object_size(ch), 0); /* the same value is no change */
    json_decref(ch);

    json_t *list = settings_json(&app);
    size_t i;
    json_t *s;
    int seen_live = 0, seen_choices = 0;
    json_array_foreach(list, i, s) {
        if (!strcmp(json_string_value(json_object_get(s, "name")), "container_placement")) {
            assert_string_equal(json_string_value(json_object_get(s, "value")), "spread");
            assert_string_equal(json_string_value(json_array_get(json_object_get(s, "choices"), 1)), "spread");
            seen_choices = 1;
        }
        assert_string_not_equal(json_string_value(json_object_get(s, "name")), "admin_password");
        assert_non_null(json_string_value(json_object_get(s, "help")));
        seen_live += json_is_true(json_object_get(s, "live"));
    }
    assert_int_equal(seen_live, 15); /* intervals, retentions, the container defaults, placement and quotas, the apps' user, root and health timeout */
    assert_true(seen_choices);
    json_decref(list);

    /* the next start reads the change over the defaults */
    struct server_options o2;
    struct server_app app2 = {.opts = &o2};
    char err[256];
    server_options_init(&o2);
    free(o2.data_dir);
    o2.data_dir = strdup(dir);
    assert_int_equal(settings_load(&app2, err, sizeof(err)), 0);
    assert_int_equal(o2.raw_retention_days, 20);
    assert_int_equal(o2.agent_interval_ms, 1000);
    assert_string_equal(o2.container_placement, "spread");
    server_options_free(&o2);
    server_options_free(&o);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(live_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
