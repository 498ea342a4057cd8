/* Tests for src/server/registry.c: servers created, read, changed and
 * removed with every refusal naming its field; the targets the scraper
 * gets; status changes recorded once each, as events and through the hook
 * the live fleet listens on. */
#include <jansson.h>
#include <unistd.h>

#include "testutil.h"

#include "../../src/server/registry.h"

static char dir[64];

static struct registry *open_reg(void)
{
    char path[128], err[256];
    snprintf(dir, sizeof(dir), "/tmp/gf-reg-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/gpufleet.db", dir);
    struct registry *r = reg_open(path, err, sizeof(err));
    if (!r)
        fail_msg("open: %s", err);
    return r;
}

static void close_reg(struct registry *r)
{
    char cmd[128];
    reg_close(r);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static json_t *body(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return j;
}

static json_t *create(struct registry *r, const char *text, struct errinfo *e)
{
    json_t *b = body(text);
    json_t *out = reg_create(r, b, e);
    json_decref(b);
    return out;
}

static void crud(void **state)
{
    (void)state;
    struct registry *r = open_reg();
    struct errinfo e;
    uint64_t v0 = reg_version(r);
    json_t *s = create(r, "{\"name\":\"gpu-01\",\"address\":\"10.0.0.1\",\"agent_token\":\"0123456789abcdef\","
                          "\"labels\":{\"rack\":\"r1\"},\"targets\":[{\"name\":\"node\",\"url\":\"http://10.0.0.1:9100/metrics\"}]}",
                       &e);
    assert_non_null(s);
    assert_true(reg_version(r) > v0);
    int64_t id = json_integer_value(json_object_get(s, "id"));
    assert_int_equal(json_integer_value(json_object_get(s, "agent_port")), 9445);
    /* the token is write-only */
    assert_null(json_object_get(s, "agent_token"));
    assert_true(json_is_true(json_object_get(s, "agent_token_set")));
    assert_string_equal(json_string_value(json_object_get(s, "status")), "unknown");
    json_decref(s);

    /* a duplicate name is a conflict on the name */
    assert_null(create(r, "{\"name\":\"gpu-01\",\"address\":\"10.0.0.2\"}", &e));
    assert_int_equal(e.status, 409);
    assert_string_equal(e.field, "name");

    /* a patch keeps what it does not name */
    json_t *b = body("{\"labels\":{\"rack\":\"r2\"}}");
    s = reg_update(r, id, b, &e);
    json_decref(b);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s, "labels"), "rack")), "r2");
    assert_string_equal(json_string_value(json_object_get(s, "address")), "10.0.0.1");
    assert_int_equal(json_array_size(json_object_get(s, "targets")), 1);
    json_decref(s);

    /* the scraper's view: the agent with its token, and the extra target */
    struct reg_target *t;
    size_t n = reg_targets(r, 2000, 15000, &t);
    assert_int_equal(n, 2);
    assert_true(t[0].is_agent);
    assert_string_equal(t[0].url, "http://10.0.0.1:9445/metrics");
    assert_string_equal(t[0].token, "0123456789abcdef");
    assert_int_equal(t[0].interval_ms, 2000);
    assert_string_equal(t[1].job, "node");
    assert_string_equal(t[1].instance, "10.0.0.1:9100");
    assert_int_equal(t[1].interval_ms, 15000);
    free(t);

    json_t *list = reg_list(r);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    assert_int_equal(reg_delete(r, id, &e), 0);
    assert_int_equal(reg_delete(r, id, &e), -1);
    assert_int_equal(e.status, 404);
    assert_null(reg_get(r, id, &e));
    close_reg(r);
}

static void refusals_name_the_field(void **state)
{
    (void)state;
    struct registry *r = open_reg();
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"address\":\"h\"}", "name"},
        {"{\"name\":\"a b\",\"address\":\"h\"}", "name"},
        {"{\"name\":\"a\"}", "address"},
        {"{\"name\":\"a\",\"address\":\"h;rm\"}", "address"},
        {"{\"name\":\"a\",\"address\":\"h\",\"agent_port\":70000}", "agent_port"},
        {"{\"name\":\"a\",\"address\":\"h\",\"agent_token\":\"short\"}", "agent_token"},
        {"{\"name\":\"a\",\"address\":\"h\",\"labels\":{\"__x\":\"v\"}}", "labels"},
        {"{\"name\":\"a\",\"address\":\"h\",\"targets\":[{\"name\":\"n\",\"url\":\"file:///etc\"}]}", "targets[0].url"},
        {"{\"name\":\"a\",\"address\":\"h\",\"targets\":[{\"name\":\"n\",\"url\":\"http://u:p@h/\"}]}", "targets[0].url"},
        {"{\"name\":\"a\",\"address\":\"h\",\"targets\":[{\"name\":\"n\",\"url\":\"http://h/\",\"interval_ms\":5}]}", "targets[0].interval_ms"},
        {"{\"name\":\"a\",\"address\":\"h\",\"targets\":[{\"name\":\"n\",\"url\":\"http://h/\"},{\"name\":\"n\",\"url\":\"http://h/\"}]}", "targets[1].name"},
        {"{\"name\":\"a\",\"address\":\"h\",\"colour\":\"red\"}", "colour"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct errinfo e;
        json_t *s = create(r, bad[i].body, &e);
        if (s)
            fail_msg("accepted %s", bad[i].body);
        if (strcmp(e.field, bad[i].field))
            fail_msg("%s: field %s, want %s (%s)", bad[i].body, e.field, bad[i].field, e.message);
        assert_true(e.status == 400 || e.status == 409);
    }
    json_t *list = reg_list(r);
    assert_int_equal(json_array_size(list), 0); /* nothing half-made */
    json_decref(list);
    close_reg(r);
}

static int hook_calls;
static char hook_last[128];

static void on_status(void *arg, const char *server, const char *status, const char *detail,
                      int64_t since_ms)
{
    (void)arg;
    hook_calls++;
    snprintf(hook_last, sizeof(hook_last), "%s %s %s %lld", server, status, detail, (long long)since_ms);
}

static void status_changes(void **state)
{
    (void)state;
    struct registry *r = open_reg();
    struct errinfo e;
    reg_on_status(r, on_status, NULL);
    json_t *s = create(r, "{\"name\":\"gpu-02\",\"address\":\"127.0.0.1\"}", &e);
    int64_t id = json_integer_value(json_object_get(s, "id"));
    json_decref(s);

    reg_set_status(r, id, 1, "", 1000);
    reg_set_status(r, id, 1, "", 2000); /* no change: no event, no call */
    reg_set_status(r, id, 0, "Connection refused", 3000);
    assert_int_equal(hook_calls, 2);
    assert_string_equal(hook_last, "gpu-02 offline Connection refused 3000");
    s = reg_get(r, id, &e);
    assert_string_equal(json_string_value(json_object_get(s, "status")), "offline");
    assert_string_equal(json_string_value(json_object_get(s, "last_error")), "Connection refused");
    assert_int_equal(json_integer_value(json_object_get(s, "status_since_ms")), 3000);
    json_decref(s);
    /* a new reason while offline: told, kept, since unchanged, no event */
    reg_set_status(r, id, 0, "no answer within 2.0 s", 4000);
    assert_int_equal(hook_calls, 3);
    assert_string_equal(hook_last, "gpu-02 offline no answer within 2.0 s 3000");
    reg_set_status(r, id, 0, "no answer within 2.0 s", 5000); /* the same: nothing */
    assert_int_equal(hook_calls, 3);
    s = reg_get(r, id, &e);
    assert_string_equal(json_string_value(json_object_get(s, "last_error")), "no answer within 2.0 s");
    assert_int_equal(json_integer_value(json_object_get(s, "status_since_ms")), 3000);
    json_decref(s);
    json_t *ev = reg_events(r, id, 10, &e);
    assert_int_equal(json_array_size(ev), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "kind")), "offline");
    json_decref(ev);
    assert_null(reg_events(r, id + 100, 10, &e));
    assert_int_equal(e.status, 404);
    char ok[64];
    reg_integrity(r, ok, sizeof(ok));
    assert_string_equal(ok, "ok");
    close_reg(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crud),
        cmocka_unit_test(refusals_name_the_field),
        cmocka_unit_test(status_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
