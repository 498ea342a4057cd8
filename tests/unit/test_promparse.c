/* Tests for src/lib/promparse.c against real exporters' output (node_exporter
 * 1.5, nvidia_gpu_exporter, the agent's own) and hand-made edge cases. */
#include <math.h>

#include "testutil.h"

#include "../../src/lib/promparse.h"

struct seen {
    size_t n;
    char last_name[256];
    double last_value;
    int64_t last_ts;
    int has_ts;
    size_t nlabels;
    char label0[256];
    int type;
};

static int on_sample(void *arg, const struct prom_sample *s)
{
    struct seen *x = arg;
    x->n++;
    snprintf(x->last_name, sizeof(x->last_name), "%.*s", (int)s->name_len, s->name);
    x->last_value = s->value;
    x->last_ts = s->ts_ms;
    x->has_ts = s->has_ts;
    x->nlabels = s->nlabels;
    x->type = s->type;
    if (s->nlabels)
        snprintf(x->label0, sizeof(x->label0), "%.*s=%.*s", (int)s->labels[0].name_len,
                 s->labels[0].name, (int)s->labels[0].value_len, s->labels[0].value);
    return 0;
}

static size_t count_samples(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        if (*p != '#' && *p != '\n')
            n++;
    return n;
}

static void real_captures_parse_whole(void **state)
{
    const char *files[] = {
        "captures/node_exporter-1.5__debian12-vm.metrics",
        "captures/nvidia_gpu_exporter__linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load.metrics",
        "captures/nvidia_gpu_exporter__linux-x86_64__nvidia-l40s__595.80__idle.metrics",
        "captures/nvidia_gpu_exporter__linux-x86_64__nvidia-geforce-rtx-2080-super__610.57.04__load.metrics",
        "captures/gpufleet-agent-0.1.0__fake-8xh100.metrics",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t len;
        char *text = fixture(files[i], &len);
        struct seen x = {0};
        struct prom_error err;
        int rc = prom_parse(text, len, 0, NULL, on_sample, &x, &err);
        if (rc != 0)
            fail_msg("%s: line %zu: %s", files[i], err.line, err.msg);
        assert_int_equal(x.n, count_samples(text));
        free(text);
    }
}

static void node_exporter_values(void **state)
{
    char text[] = "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.25\n"
                  "# TYPE node_filesystem_avail_bytes gauge\n"
                  "node_filesystem_avail_bytes{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 8.1625632768e+10\n";
    struct seen x = {0};
    struct prom_error err;

    (void)state;
    assert_int_equal(prom_parse(text, strlen(text), 0, NULL, on_sample, &x, &err), 0);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.last_name, "node_filesystem_avail_bytes");
    assert_true(x.last_value == 8.1625632768e+10);
    assert_int_equal(x.nlabels, 3);
    assert_string_equal(x.label0, "device=/dev/vda");
    assert_int_equal(x.type, PROM_GAUGE);
}

static void escapes_specials_timestamps(void **state)
{
    char text[] = "m{path=\"C:\\\\x \\\"q\\\"\\nz\",} NaN 1700000000123\n"
                  "inf_a +Inf\ninf_b -Inf\n  spaced   42  \n";
    struct seen x = {0};
    struct prom_error err;

    (void)state;
    /* stop after the first sample to inspect it */
    char first[] = "m{path=\"C:\\\\x \\\"q\\\"\\nz\",} NaN 1700000000123\n";
    assert_int_equal(prom_parse(first, strlen(first), 0, NULL, on_sample, &x, &err), 0);
    assert_string_equal(x.label0, "path=C:\\x \"q\"\nz");
    assert_true(isnan(x.last_value));
    assert_true(x.has_ts);
    assert_int_equal(x.last_ts, 1700000000123LL);
    memset(&x, 0, sizeof(x));
    assert_int_equal(prom_parse(text, strlen(text), 0, NULL, on_sample, &x, &err), 0);
    assert_int_equal(x.n, 4);
    assert_string_equal(x.last_name, "spaced");
    assert_true(x.last_value == 42);
}

static void openmetrics(void **state)
{
    char text[] = "# TYPE acme_http_router_request_seconds summary\n"
                  "# UNIT acme_http_router_request_seconds seconds\n"
                  "acme_http_router_request_seconds_sum{path=\"/api/v1\"} 9036.32 1520879607.789\n"
                  "foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n"
                  "# EOF\n";
    struct seen x = {0};
    struct prom_error err;

    (void)state;
    assert_int_equal(prom_parse(text, strlen(text), 1, NULL, on_sample, &x, &err), 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.last_ts, 1520879607789LL); /* seconds become ms */
    char no_eof[] = "a 1\n";
    assert_int_equal(prom_parse(no_eof, strlen(no_eof), 1, NULL, on_sample, &x, &err), -1);
    assert_non_null(strstr(err.msg, "EOF"));
    char after[] = "a 1\n# EOF\nb 2\n";
    assert_int_equal(prom_parse(after, strlen(after), 1, NULL, on_sample, &x, &err), -1);
}

static void malformed_lines_named(void **state)
{
    const char *bad[] = {
        "m{a=\"1\" 2\n",         /* unterminated */
        "m{a=1} 2\n",            /* unquoted */
        "m{a=\"1\",a=\"2\"} 3\n", /* repeated label */
        "m{a=\"\\q\"} 1\n",      /* bad escape */
        "m 1 2 3\n",             /* junk after the timestamp */
        "m abc\n",               /* not a number */
        "m 0x10\n",              /* hex is not allowed */
        "9m 1\n",                /* bad name */
        "m\n",                   /* no value */
        "# TYPE m bogus\n",      /* unknown type */
    };
    struct seen x = {0};
    struct prom_error err;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "good 1\n%s", bad[i]);
        if (prom_parse(text, strlen(text), 0, NULL, on_sample, &x, &err) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(err.line, 2);
        assert_true(err.msg[0] != '\0');
    }
}

static void limits_hold(void **state)
{
    struct prom_limits lim = {.max_samples = 3, .max_labels = 2, .max_value_len = 8,
                              .max_line_len = 64};
    struct seen x = {0};
    struct prom_error err;
    char many[] = "a 1\nb 2\nc 3\nd 4\n";
    char labels[] = "m{a=\"1\",b=\"2\",c=\"3\"} 1\n";
    char longval[] = "m{a=\"123456789\"} 1\n";
    char longline[200];

    (void)state;
    assert_int_equal(prom_parse(many, strlen(many), 0, &lim, on_sample, &x, &err), -1);
    assert_non_null(strstr(err.msg, "more than 3 samples"));
    assert_int_equal(prom_parse(labels, strlen(labels), 0, &lim, on_sample, &x, &err), -1);
    assert_non_null(strstr(err.msg, "labels"));
    assert_int_equal(prom_parse(longval, strlen(longval), 0, &lim, on_sample, &x, &err), -1);
    memset(longline, 'a', sizeof(longline));
    memcpy(longline + 190, " 1\n", 4);
    assert_int_equal(prom_parse(longline, strlen(longline), 0, &lim, on_sample, &x, &err), -1);
    assert_non_null(strstr(err.msg, "longer"));
    char nul[] = "m 1\0\n";
    assert_int_equal(prom_parse(nul, 5, 0, NULL, on_sample, &x, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_captures_parse_whole),
        cmocka_unit_test(node_exporter_values),
        cmocka_unit_test(escapes_specials_timestamps),
        cmocka_unit_test(openmetrics),
        cmocka_unit_test(malformed_lines_named),
        cmocka_unit_test(limits_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
