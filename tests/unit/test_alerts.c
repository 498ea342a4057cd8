/* Tests for src/server/alerts.c (rule checks, templates, evaluation over a
 * real store) and src/lib/yamljson.c. */
#include <unistd.h>

#include "testutil.h"

#include "../../src/lib/yamljson.h"
#include "../../src/server/alerts.h"
#include "../../src/server/alerts_impl.h"
#include "../../src/lib/now.h"
#include "../../src/server/store/tsdb.h"

static void yaml_as_json(void **state)
{
    char err[200];
    (void)state;
    const char *y = "rules:\n  - name: A\n    threshold: 85\n    ratio: 0.5\n    on: true\n"
                    "    quoted: '85'\n    none: ~\n    list: [1, two]\n";
    json_t *j = yaml_to_json(y, strlen(y), err, sizeof(err));
    assert_non_null(j);
    json_t *r = json_array_get(json_object_get(j, "rules"), 0);
    assert_true(json_is_integer(json_object_get(r, "threshold")));
    assert_true(json_is_real(json_object_get(r, "ratio")));
    assert_true(json_is_true(json_object_get(r, "on")));
    assert_string_equal(json_string_value(json_object_get(r, "quoted")), "85");
    assert_true(json_is_null(json_object_get(r, "none")));
    assert_int_equal(json_array_size(json_object_get(r, "list")), 2);
    json_decref(j);
    assert_null(yaml_to_json("a: [1,\n", 7, err, sizeof(err)));
    assert_non_null(strstr(err, "line"));
    assert_null(yaml_to_json("a: 1\na: 2\n", 10, err, sizeof(err)));
    assert_non_null(strstr(err, "duplicate"));
    /* a billion laughs is bounded, not expanded */
    const char *lol = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    assert_null(yaml_to_json(lol, strlen(lol), err, sizeof(err)));
    assert_non_null(strstr(err, "too large"));
}

static void rule_checks_name_the_field(void **state)
{
    struct errinfo e;
    (void)state;
    const char *good = "rules:\n  - {name: Hot, metric: 'DCGM_FI_DEV_GPU_TEMP{gpu=\"0\"}', agg: avg, window: 1m,"
                       " op: '>', threshold: 85, for: 2m, severity: critical}\n";
    assert_int_equal(alert_rules_check_yaml(good, strlen(good), &e), 0);
    struct {
        const char *yaml, *want;
    } bad[] = {
        {"rules:\n  - {name: Hot, metric: x, op: '>'}\n", "rules[0] (Hot).threshold"},
        {"rules:\n  - {name: Ok, metric: x, op: '>', threshold: 1}\n  - {name: B, metric: x, op: '=>', threshold: 1}\n",
         "rules[1] (B).op"},
        {"rules:\n  - {name: Hot, metric: 'x{', op: '>', threshold: 1}\n", "rules[0] (Hot).metric"},
        {"rules:\n  - {name: Hot, metric: x, op: '>', threshold: 1, for: soon}\n", "rules[0] (Hot).for"},
        {"rules:\n  - {name: Hot, metric: x, op: '>', threshold: 1, agg: median}\n", "rules[0] (Hot).agg"},
        {"rules:\n  - {name: Hot, metric: x, op: '>', threshold: 1, colour: red}\n", "rules[0] (Hot).colour"},
        {"rules:\n  - {name: 9lives, metric: x, op: '>', threshold: 1}\n", "rules[0] (9lives).name"},
        {"rules:\n  - {name: A, metric: x, op: '>', threshold: 1}\n  - {name: A, metric: y, op: '<', threshold: 1}\n",
         "rules[1]: the name A"},
        {"rules:\n  - {name: A, metric: x, op: '>', threshold: 1, labels: {a: [1]}}\n", "rules[0] (A).labels.a"},
        {"rules: 3\n", "rules:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(alert_rules_check_yaml(bad[i].yaml, strlen(bad[i].yaml), &e), -1);
        if (!strstr(e.message, bad[i].want))
            fail_msg("case %zu: '%s' does not name '%s'", i, e.message, bad[i].want);
    }
}

static void templates(void **state)
{
    (void)state;
    json_t *l = json_pack("{s:s, s:s}", "gpu", "3", "Hostname", "gpu-7");
    char *s = alert_template("GPU {{ $labels.gpu }} on {{$host}} at {{ $value }} C {{ $nope }} {{", l, 91.5);
    assert_string_equal(s, "GPU 3 on gpu-7 at 91.5 C {{ $nope }} {{");
    free(s);
    json_decref(l);
}

/* Evaluation over a real store: pending, firing after for, resolved. */
static void evaluation_states(void **state)
{
    char dir[64] = "/tmp/gf-alerts-XXXXXX", path[128], err[256];
    struct tsdb_config cfg;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tsdb.db", dir);
    tsdb_config_defaults(&cfg);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    assert_non_null(db);
    snprintf(path, sizeof(path), "%s/rules.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("rules:\n  - {name: Hot, metric: temp, op: '>', threshold: 80, for: 10s}\n"
          "  - {name: HotAvg, metric: temp, agg: avg, window: 30s, op: '>', threshold: 80}\n", f);
    fclose(f);
    struct alerts_config ac = {.eval_interval_ms = 3600000, .rules_file = path, .default_rules = 0,
                               .external_url = "http://x"};
    char apath[128];
    snprintf(apath, sizeof(apath), "%s/alerts.db", dir);
    struct alerts *al = alerts_start(apath, &ac, db, err, sizeof(err));
    assert_non_null(al);
    int64_t t0 = now_wall_ms() - 60000;
    const char *key = "temp{gpu=\"0\"}";
    for (int i = 0; i < 60; i++) {
        struct tsdb_sample s = {key, strlen(key), t0 + i * 1000, i < 30 ? 50 : 90};
        tsdb_append(db, &s, 1);
    }
    tsdb_commit(db, t0 + 60000);
    /* at t0+35 s: last is 90 (pending for Hot), the 30 s average is 70 */
    assert_int_equal(alerts_eval_now(al, t0 + 35000), 2);
    json_t *a = alerts_list(al, "active", 10);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "state")), "pending");
    json_decref(a);
    alerts_eval_now(al, t0 + 46000);
    a = alerts_list(al, "firing", 10);
    assert_int_equal(json_array_size(a), 1);
    json_decref(a);
    /* at t0+59 s the 30 s average is 90: HotAvg fires at once (no for) */
    alerts_eval_now(al, t0 + 59000);
    a = alerts_list(al, "firing", 10);
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
    /* later, no samples within the 5 minute staleness: both resolve */
    alerts_eval_now(al, t0 + 59000 + 6 * 60000);
    a = alerts_list(al, "resolved", 10);
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
    a = alerts_list(al, "active", 10);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    /* history is kept 90 days (alert_history_days), then pruned */
    alerts_eval_now(al, t0 + 89LL * 86400000);
    a = alerts_list(al, "resolved", 10);
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
    alerts_eval_now(al, t0 + 92LL * 86400000);
    a = alerts_list(al, "resolved", 10);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    alerts_stop(al);
    tsdb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Routing: first match wins, continue goes on, what no route takes goes to
 * the receivers no route names; with no routes everyone gets everything. */
static int routed(struct alerts *al, const char *labels, const char *receiver)
{
    json_error_t jerr;
    json_t *l = json_loads(labels, 0, &jerr);
    pthread_mutex_lock(&al->lock);
    struct route_set *rs = alert_routes_load(al);
    pthread_mutex_unlock(&al->lock);
    int r = alert_routed(rs, l, receiver);
    alert_routes_free(rs);
    json_decref(l);
    return r;
}

static void routing(void **state)
{
    char dir[64] = "/tmp/gf-routes-XXXXXX", path[128], err[256];
    struct tsdb_config cfg;
    struct errinfo e;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tsdb.db", dir);
    tsdb_config_defaults(&cfg);
    struct tsdb *db = tsdb_open(path, &cfg, err, sizeof(err));
    struct alerts_config ac = {.eval_interval_ms = 3600000, .default_rules = 0, .external_url = "http://x"};
    snprintf(path, sizeof(path), "%s/alerts.db", dir);
    struct alerts *al = alerts_start(path, &ac, db, err, sizeof(err));
    assert_non_null(al);
    static const char *const names[] = {"pager", "vision", "ops", "rest"};
    for (int i = 0; i < 4; i++) {
        json_t *b = json_pack("{s:s, s:s}", "name", names[i], "url", "http://127.0.0.1:1/x");
        json_t *r = alerts_receiver_create(al, b, &e);
        assert_non_null(r);
        json_decref(r);
        json_decref(b);
    }
    const char *crit = "{\"alertname\":\"GpuHot\",\"severity\":\"critical\",\"team\":\"vision\"}";
    const char *vis = "{\"alertname\":\"GpuIdle\",\"severity\":\"info\",\"team\":\"vision\"}";
    const char *other = "{\"alertname\":\"DiskFull\",\"severity\":\"warning\"}";
    /* no routes: everyone */
    assert_true(routed(al, crit, "pager") && routed(al, other, "rest"));
    const char *body = "{\"routes\": [{\"matchers\": \"{severity=\\\"critical\\\"}\", \"receivers\": [\"pager\"], \"continue\": true},"
                       " {\"matchers\": \"{team=\\\"vision\\\"}\", \"receivers\": [\"vision\"]},"
                       " {\"matchers\": \"{alertname=~\\\".+\\\"}\", \"receivers\": [\"ops\"]}]}";
    json_error_t jerr;
    json_t *b = json_loads(body, 0, &jerr);
    assert_non_null(b);
    json_t *r = alerts_routes_set(al, b, &e);
    assert_non_null(r);
    /* "rest" is named by no route: it takes what no route takes */
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "default_receivers"), 0)), "rest");
    json_decref(r);
    json_decref(b);
    /* critical + vision: the pager (continue), then vision; ops not (vision stopped) */
    assert_true(routed(al, crit, "pager") && routed(al, crit, "vision"));
    assert_false(routed(al, crit, "ops") || routed(al, crit, "rest"));
    /* vision's info alert: vision only */
    assert_true(routed(al, vis, "vision"));
    assert_false(routed(al, vis, "pager") || routed(al, vis, "ops"));
    /* any other alert: the third route (ops); the default receiver only
     * gets alerts that no route matches at all */
    assert_true(routed(al, other, "ops"));
    assert_false(routed(al, other, "rest") || routed(al, other, "pager"));
    assert_true(routed(al, "{}", "rest")); /* no alertname: nothing matches */
    /* a receiver a route names is not removed; an unknown one is refused */
    json_t *list = alerts_receivers_list(al);
    assert_int_equal(alerts_receiver_delete(al, json_integer_value(json_object_get(json_array_get(list, 0), "id")), &e), -1);
    assert_int_equal(e.status, 409);
    json_decref(list);
    b = json_loads("{\"routes\": [{\"matchers\": \"{a=\\\"b\\\"}\", \"receivers\": [\"nobody\"]}]}", 0, &jerr);
    assert_null(alerts_routes_set(al, b, &e));
    assert_string_equal(e.field, "routes[0].receivers");
    json_decref(b);
    alerts_stop(al);
    tsdb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routing),
        cmocka_unit_test(yaml_as_json),
        cmocka_unit_test(rule_checks_name_the_field),
        cmocka_unit_test(templates),
        cmocka_unit_test(evaluation_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
